//! Cuts audio of any length into whole 20 ms frames, carrying the remainder
//! from one chunk to the next (TTS and resamplers hand out odd sizes).

use crate::FRAME_BYTES;
use crate::ulaw;

#[derive(Debug, Default, Clone, PartialEq)]
pub struct Framer {
    pending: Vec<u8>,
}

impl Framer {
    pub fn new() -> Self {
        Self::default()
    }

    /// The μ-law bytes carried over to the next frame (fewer than a frame):
    /// all a framer needs to continue. Part of the guests' snapshot format.
    pub fn carry(&self) -> &[u8] {
        &self.pending
    }

    /// A framer continuing with `carry` (see [`Framer::carry`]); a whole
    /// frame or more cannot be a carry-over, and would be cut by `flush`.
    pub fn from_carry(carry: Vec<u8>) -> Result<Self, String> {
        if carry.len() >= FRAME_BYTES {
            return Err(format!("framer carry-over of {} bytes, a frame is {FRAME_BYTES}", carry.len()));
        }
        Ok(Self { pending: carry })
    }

    /// Adds μ-law bytes; returns every whole frame now available,
    /// concatenated (its length is a multiple of [`FRAME_BYTES`]).
    pub fn push(&mut self, ulaw_bytes: &[u8]) -> Vec<u8> {
        self.pending.extend_from_slice(ulaw_bytes);
        let whole = self.pending.len() / FRAME_BYTES * FRAME_BYTES;
        let rest = self.pending.split_off(whole);
        std::mem::replace(&mut self.pending, rest)
    }

    /// Encodes PCM16 (already at 8 kHz) and frames it.
    pub fn push_pcm(&mut self, samples: &[i16]) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(samples.len());
        ulaw::encode_into(samples, &mut bytes);
        self.push(&bytes)
    }

    /// Pads the remainder with μ-law silence into one last frame (empty if
    /// nothing is pending).
    pub fn flush(&mut self) -> Vec<u8> {
        let mut last = std::mem::take(&mut self.pending);
        if !last.is_empty() {
            last.resize(FRAME_BYTES, ulaw::SILENCE);
        }
        last
    }

    /// Bytes waiting for a whole frame.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }
}

/// Encodes PCM16 (8 kHz) as μ-law, one whole 20 ms frame at a time; the last
/// frame is padded with silence. For callers that send frame by frame.
pub fn ulaw_frames(pcm: &[i16]) -> impl Iterator<Item = Vec<u8>> + '_ {
    pcm.chunks(FRAME_BYTES).map(|chunk| {
        let mut frame = Vec::with_capacity(FRAME_BYTES);
        ulaw::encode_into(chunk, &mut frame);
        frame.resize(FRAME_BYTES, ulaw::SILENCE);
        frame
    })
}
