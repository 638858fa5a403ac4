//! Pure telephony audio, shared by the guests (which run it per frame) and by
//! the host's tools (simulator, benchmarks), so it is written once.
//!
//! Nothing here does I/O or keeps a clock: time is counted in samples.

pub mod chunked;
pub mod endpoint;
pub mod frame;
pub mod resample;
mod tone;
pub mod ulaw;
pub mod vad;

pub use tone::{load_caller_cycle, tone};

/// Twilio Media Streams audio: G.711 μ-law, 8 kHz, mono.
pub const SAMPLE_RATE: u32 = 8000;
/// One 20 ms frame: 160 samples, one μ-law byte each.
pub const FRAME_BYTES: usize = 160;
pub const FRAME_MS: u32 = 20;

/// Milliseconds of 8 kHz audio in `samples` samples.
pub fn samples_to_ms(samples: usize) -> u32 {
    (samples as u64 * 1000 / SAMPLE_RATE as u64) as u32
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod vad_cases;
