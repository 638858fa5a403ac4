//! The agent's recorded prompts (the echo greeting, the filler, the
//! apology), played straight from the component's data.
//!
//! A guest's heap never shrinks, so whatever it holds at its busiest stays
//! resident in every live call until the call ends. Copying the 4.6 s
//! greeting into the heap to hand it to the host made the greeting the
//! biggest thing a call ever held (37 KB of the ~40 KB it needs at most).
//! Instead, in the component, a prompt's `Vec` points at the prompt's own
//! bytes in the data segment, and the allocator leaves memory below
//! the heap alone (`alloc.rs`): the `Vec` is freed after the host has
//! copied the effect out, and that free does nothing. The bytes are never written
//! (a prompt is padded to whole frames at compile time, so nothing resizes
//! it; a realloc would copy it into the heap, never write over it).
//!
//! Built for the host's own target (tests), a prompt is an ordinary copy.

use hotline_audio::{FRAME_BYTES, ulaw};

// μ-law 8 kHz, made by `scripts/make-prompts.sh`.
const GREETING_RAW: &[u8] = include_bytes!("../assets/greeting.ulaw");
const FILLER_RAW: &[u8] = include_bytes!("../assets/filler.ulaw");
const APOLOGY_RAW: &[u8] = include_bytes!("../assets/apology.ulaw");
/// The echo agent's greeting.
pub(crate) static GREETING: [u8; whole_frames(GREETING_RAW.len())] = padded(GREETING_RAW);
/// The filler for a slow turn ("One moment.").
pub(crate) static FILLER: [u8; whole_frames(FILLER_RAW.len())] = padded(FILLER_RAW);
/// The apology for a failed turn.
pub(crate) static APOLOGY: [u8; whole_frames(APOLOGY_RAW.len())] = padded(APOLOGY_RAW);

/// A prompt's length once padded to whole frames.
pub(crate) const fn whole_frames(len: usize) -> usize {
    len.div_ceil(FRAME_BYTES) * FRAME_BYTES
}

/// `raw` followed by μ-law silence up to `N` bytes; for statics, at
/// compile time: `static P: [u8; whole_frames(RAW.len())] = padded(RAW);`.
pub(crate) const fn padded<const N: usize>(raw: &[u8]) -> [u8; N] {
    let mut out = [ulaw::SILENCE; N];
    let mut i = 0;
    while i < raw.len() {
        out[i] = raw[i];
        i += 1;
    }
    out
}

/// The prompt as the `list<u8>` of a `play` effect, without copying it in
/// the component.
#[cfg(target_arch = "wasm32")]
pub(crate) fn play(prompt: &'static [u8]) -> Vec<u8> {
    debug_assert!(prompt.len().is_multiple_of(FRAME_BYTES));
    // SAFETY: the pointer lies below the heap, where `alloc::Allocator` never
    // frees and reallocates by copying; the bytes are not written through
    // it (see the module's comment), and the prompt lives as long as the
    // component does.
    unsafe { Vec::from_raw_parts(prompt.as_ptr().cast_mut(), prompt.len(), prompt.len()) }
}

#[cfg(not(target_arch = "wasm32"))]
pub(crate) fn play(prompt: &'static [u8]) -> Vec<u8> {
    prompt.to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prompt_is_padded_with_silence_to_whole_frames() {
        const RAW: &[u8] = &[1, 2, 3];
        static P: [u8; whole_frames(RAW.len())] = padded(RAW);
        assert_eq!(P.len(), FRAME_BYTES);
        assert_eq!(&P[..3], RAW);
        assert!(P[3..].iter().all(|&b| b == ulaw::SILENCE));
        assert_eq!(whole_frames(FRAME_BYTES), FRAME_BYTES);
        assert_eq!(whole_frames(0), 0);
    }

    #[test]
    fn the_prompts_are_their_recordings_in_whole_frames() {
        for (prompt, raw) in [(&GREETING[..], GREETING_RAW), (&FILLER[..], FILLER_RAW), (&APOLOGY[..], APOLOGY_RAW)] {
            assert_eq!(prompt.len() % FRAME_BYTES, 0);
            assert_eq!(&prompt[..raw.len()], raw);
            assert_eq!(play(prompt), prompt);
        }
    }
}
