//! Energy voice detection with an adaptive noise floor.
//!
//! Telephone audio arrives with very different line noise from call to call,
//! so a fixed threshold either misses quiet callers or hears the line hum.
//! The floor follows the quietest recent energy quickly and rises only
//! slowly, so steady noise becomes "silence" while speech stands out.
//!
//! At the start of a call the floor knows nothing yet: a caller who talks
//! from the first frame is, for a while, their own floor. Speech pauses
//! within a few hundred milliseconds and steady noise never does, so the
//! detector decides those first frames when the floor first falls below
//! them: [`Vad::look_back`] measures the audio kept since the call started
//! against the floor it has now. Nothing else about the floor changes.

use crate::ulaw;

/// RMS below which nothing counts as speech, whatever the floor (≈ -46 dBFS).
const MIN_SPEECH_RMS: f32 = 160.0;
/// Speech must stand this far above the floor (≈ +9.5 dB).
const SNR_RATIO: f32 = 3.0;
const FLOOR_MIN: f32 = 20.0;
const FLOOR_MAX: f32 = 4000.0;
/// The floor is the quietest frame of the last `BLOCKS` blocks of
/// `BLOCK_FRAMES` frames (2 s): speech always has gaps within that, a
/// steady noise does not.
const BLOCK_FRAMES: u32 = 25;
/// Blocks the floor looks back over (the length of [`VadState::blocks`]).
pub const BLOCKS: usize = 4;

#[derive(Debug, Clone, PartialEq)]
pub struct Vad {
    block_min: f32,
    block_frames: u32,
    /// Minimum of each finished block, newest last (`f32::MAX` = none yet).
    blocks: [f32; BLOCKS],
}

impl Default for Vad {
    fn default() -> Self {
        Self { block_min: f32::MAX, block_frames: 0, blocks: [f32::MAX; BLOCKS] }
    }
}

/// What a detector needs to continue on a later frame exactly as it would
/// have: its noise-floor history. Part of the guests' snapshot format, so a
/// call keeps its floor across a migration; a change here is a change there.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VadState {
    /// Quietest frame of the block in progress (`f32::MAX` = none yet).
    pub block_min: f32,
    /// Frames in the block in progress, below the block length (25).
    pub block_frames: u32,
    /// Minimum of each finished block, newest last (`f32::MAX` = none yet).
    pub blocks: [f32; BLOCKS],
}

impl Vad {
    pub fn state(&self) -> VadState {
        VadState { block_min: self.block_min, block_frames: self.block_frames, blocks: self.blocks }
    }

    /// Refuses a block count this detector could never have reached, on
    /// which its floor would stop adapting.
    pub fn from_state(state: VadState) -> Result<Self, String> {
        if state.block_frames >= BLOCK_FRAMES {
            return Err(format!("VAD block of {} frames, at most {} expected", state.block_frames, BLOCK_FRAMES - 1));
        }
        Ok(Self { block_min: state.block_min, block_frames: state.block_frames, blocks: state.blocks })
    }

    /// Classifies one frame of PCM16 and adapts the floor.
    pub fn is_speech(&mut self, pcm: &[i16]) -> bool {
        self.is_speech_at(rms(pcm))
    }

    /// Classifies a frame by its level (RMS) and adapts the floor.
    pub(crate) fn is_speech_at(&mut self, level: f32) -> bool {
        self.block_min = lesser(self.block_min, level);
        let floor = self.noise_floor();
        self.block_frames += 1;
        if self.block_frames == BLOCK_FRAMES {
            self.blocks.rotate_left(1);
            self.blocks[BLOCKS - 1] = self.block_min;
            self.block_min = f32::MAX;
            self.block_frames = 0;
        }
        level >= MIN_SPEECH_RMS && level >= floor * SNR_RATIO
    }

    /// Current estimate of the background level (RMS).
    pub fn noise_floor(&self) -> f32 {
        self.blocks.iter().copied().fold(self.block_min, lesser).clamp(FLOOR_MIN, FLOOR_MAX)
    }

    /// Frames since the call's first, while the floor's window still
    /// reaches back to it (fewer than [`BLOCKS`] blocks finished: the first
    /// 2 s); `None` once the floor has a whole window of history.
    pub fn frames_since_start(&self) -> Option<u32> {
        let finished = self.blocks.iter().filter(|&&b| b != f32::MAX).count();
        (finished < BLOCKS).then(|| finished as u32 * BLOCK_FRAMES + self.block_frames)
    }

    /// The frames of `earlier` (μ-law, newest byte first, in whole 20 ms
    /// frames counted from the newest; at most `frames` of them: those
    /// since the call started, [`Self::frames_since_start`] before the
    /// current frame) that stand out of the floor as it is now: speech the
    /// floor could not tell while it had only that speech to learn from.
    pub fn look_back(&self, mut earlier: impl Iterator<Item = u8>, frames: u32) -> Option<LookBack> {
        let threshold = (self.noise_floor() * SNR_RATIO).max(MIN_SPEECH_RMS);
        let mut found: Option<LookBack> = None;
        for ago in 1..=frames {
            // A frame's bytes in reverse: its energy is the same.
            let (mut energy, mut read) = (0u64, 0);
            for code in earlier.by_ref().take(FRAME_SAMPLES) {
                energy += u64::from(ulaw::square(code));
                read += 1;
            }
            if read < FRAME_SAMPLES {
                break;
            }
            if level(energy, FRAME_SAMPLES) >= threshold {
                let f = found.get_or_insert(LookBack { voiced: 0, first_ago: ago, last_ago: ago });
                f.voiced += 1;
                f.first_ago = ago;
            }
        }
        found
    }
}

const FRAME_SAMPLES: usize = crate::FRAME_BYTES;

/// Speech found by looking back: `voiced` frames, the oldest `first_ago`
/// frames before the current one and the newest `last_ago` (1 = the frame
/// just before it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LookBack {
    pub voiced: u32,
    pub first_ago: u32,
    pub last_ago: u32,
}

pub fn rms(pcm: &[i16]) -> f32 {
    let sum: i64 = pcm.iter().map(|&s| s as i64 * s as i64).sum();
    level(sum as u64, pcm.len())
}

/// [`rms`] of the samples μ-law `codes` decode to, the same to the bit.
pub fn rms_ulaw(codes: &[u8]) -> f32 {
    level(ulaw::energy(codes), codes.len())
}

/// `f32::min` for levels, which are never NaN: without its NaN rule, which
/// in a component is a call to libm's `fminf` (a dozen a frame).
fn lesser(a: f32, b: f32) -> f32 {
    if b < a { b } else { a }
}

/// RMS from a sum of squared samples.
fn level(energy: u64, samples: usize) -> f32 {
    if samples == 0 {
        return 0.0;
    }
    ((energy as f64 / samples as f64).sqrt()) as f32
}
