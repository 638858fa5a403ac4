//! Utterance boundaries from per-frame voice decisions: where speech starts,
//! how much of it there was, and when enough trailing silence has passed to
//! call it the end of the utterance (EoU).

use crate::chunked::ChunkedAudio;
use crate::samples_to_ms;
use crate::vad::{Vad, VadState, rms, rms_ulaw};

/// The caller's μ-law audio before the frame being pushed, as the
/// look-back reads it: newest byte first. A slice, or the chunks a guest
/// keeps it in.
pub trait Earlier {
    fn newest_first(&self) -> impl Iterator<Item = u8> + '_;
}

impl Earlier for [u8] {
    fn newest_first(&self) -> impl Iterator<Item = u8> + '_ {
        self.iter().rev().copied()
    }
}

impl Earlier for ChunkedAudio {
    fn newest_first(&self) -> impl Iterator<Item = u8> + '_ {
        ChunkedAudio::newest_first(self)
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EndpointConfig {
    /// Trailing silence that ends an utterance.
    pub eou_silence_ms: u32,
    /// Less voiced audio than this is a click or a cough, not an utterance.
    pub min_speech_ms: u32,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        Self { eou_silence_ms: 500, min_speech_ms: 120 }
    }
}

/// What one frame changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Boundary {
    /// First voiced frame of a possible utterance. `lookback_ms` is how
    /// long before this frame the speech began: 0, unless the detector
    /// found it late, looking back over the start of the call
    /// ([`Endpointer::push_after`]); then this frame may be a quiet one.
    SpeechStart { lookback_ms: u32 },
    /// The utterance ended after `speech_ms` of voiced audio.
    EndOfUtterance { speech_ms: u32 },
    /// Too little speech to count; forget it.
    Noise,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Endpointer {
    config: EndpointConfig,
    vad: Vad,
    in_utterance: bool,
    speech_ms: u32,
    silence_ms: u32,
}

/// What an endpointer needs, besides its configuration, to continue an
/// utterance in progress. Part of the guests' snapshot format.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EndpointerState {
    pub vad: VadState,
    pub in_utterance: bool,
    pub speech_ms: u32,
    pub silence_ms: u32,
}

impl Endpointer {
    pub fn new(config: EndpointConfig) -> Self {
        Self { config, vad: Vad::default(), in_utterance: false, speech_ms: 0, silence_ms: 0 }
    }

    /// The configuration is not part of the state: its owner keeps that.
    pub fn state(&self) -> EndpointerState {
        EndpointerState {
            vad: self.vad.state(),
            in_utterance: self.in_utterance,
            speech_ms: self.speech_ms,
            silence_ms: self.silence_ms,
        }
    }

    pub fn from_state(config: EndpointConfig, state: EndpointerState) -> Result<Self, String> {
        Ok(Self {
            config,
            vad: Vad::from_state(state.vad)?,
            in_utterance: state.in_utterance,
            speech_ms: state.speech_ms,
            silence_ms: state.silence_ms,
        })
    }

    /// Feeds one frame (any length; normally 160 samples), without the
    /// look-back: speech from the very start of a call may go unheard.
    pub fn push(&mut self, pcm: &[i16]) -> Option<Boundary> {
        self.push_after::<[u8]>(&[], pcm)
    }

    /// Feeds one frame (any length; normally 160 samples). `earlier` is the
    /// caller's μ-law audio before it, since the last utterance ended (or
    /// the call started), newest last; only its last
    /// [`Self::lookback_bytes`] are read. While the noise floor is still
    /// learning (the first 2 s), a frame that lowers it has the detector
    /// look back over that audio: speech it finds there starts an
    /// utterance now, as long ago as it began.
    pub fn push_after<E: Earlier + ?Sized>(&mut self, earlier: &E, pcm: &[i16]) -> Option<Boundary> {
        self.push_level(earlier, rms(pcm), pcm.len())
    }

    /// [`Self::push_after`] for a frame of μ-law, as it came: the level is
    /// read from the codes, with no frame decoded.
    pub fn push_ulaw_after<E: Earlier + ?Sized>(&mut self, earlier: &E, codes: &[u8]) -> Option<Boundary> {
        self.push_level(earlier, rms_ulaw(codes), codes.len())
    }

    fn push_level<E: Earlier + ?Sized>(&mut self, earlier: &E, level: f32, samples: usize) -> Option<Boundary> {
        let ms = samples_to_ms(samples);
        // Frames before this one the look-back may reach (while learning).
        let since_start = self.vad.frames_since_start();
        let floor = self.vad.noise_floor();
        let voiced = self.vad.is_speech_at(level);
        if voiced {
            self.silence_ms = 0;
            self.speech_ms += ms;
            if !self.in_utterance {
                self.in_utterance = true;
                return Some(Boundary::SpeechStart { lookback_ms: 0 });
            }
            return None;
        }
        let look_back = since_start.filter(|_| self.vad.noise_floor() < floor);
        if !self.in_utterance {
            return look_back.and_then(|frames| self.look_back(earlier, frames, ms));
        }
        self.silence_ms += ms;
        if let Some(frames) = look_back {
            // Under the lower floor more of the utterance may be speech (a
            // word from the first frame: the floor learned its quietest part).
            self.recount(earlier, frames, ms);
        }
        if self.silence_ms < self.config.eou_silence_ms {
            return None;
        }
        let speech_ms = self.speech_ms;
        self.reset();
        Some(if speech_ms >= self.config.min_speech_ms {
            Boundary::EndOfUtterance { speech_ms }
        } else {
            Boundary::Noise
        })
    }

    /// How much of the caller's audio before the next frame
    /// [`Self::push_after`] may read: all of it since the call started
    /// while the floor is learning, none after.
    pub fn lookback_bytes(&self) -> usize {
        self.vad.frames_since_start().map_or(0, |frames| frames as usize * crate::FRAME_BYTES)
    }

    /// Speech found in `earlier` starts an utterance if there is enough of
    /// it to be one (less is a click, not worth a barge-in).
    fn look_back<E: Earlier + ?Sized>(&mut self, earlier: &E, frames: u32, ms: u32) -> Option<Boundary> {
        let found = self.vad.look_back(earlier.newest_first(), frames)?;
        let frame_ms = crate::FRAME_MS;
        if found.voiced * frame_ms < self.config.min_speech_ms {
            return None;
        }
        self.in_utterance = true;
        self.speech_ms = found.voiced * frame_ms;
        self.silence_ms = found.last_ago * frame_ms - frame_ms + ms;
        Some(Boundary::SpeechStart { lookback_ms: found.first_ago * frame_ms })
    }

    /// The utterance in progress measured again against the floor as it
    /// is now: never less speech than was counted, nor more silence.
    fn recount<E: Earlier + ?Sized>(&mut self, earlier: &E, frames: u32, ms: u32) {
        if let Some(found) = self.vad.look_back(earlier.newest_first(), frames) {
            let frame_ms = crate::FRAME_MS;
            self.speech_ms = self.speech_ms.max(found.voiced * frame_ms);
            self.silence_ms = self.silence_ms.min(found.last_ago * frame_ms - frame_ms + ms);
        }
    }

    /// Forces the current utterance to end now (e.g. it ran too long).
    pub fn cut(&mut self) -> u32 {
        let speech_ms = self.speech_ms;
        self.reset();
        speech_ms
    }

    fn reset(&mut self) {
        self.in_utterance = false;
        self.speech_ms = 0;
        self.silence_ms = 0;
    }

    pub fn in_utterance(&self) -> bool {
        self.in_utterance
    }

    /// Voiced milliseconds in the current utterance.
    pub fn speech_ms(&self) -> u32 {
        self.speech_ms
    }

    /// Silence since the last voiced frame of the current utterance.
    pub fn silence_ms(&self) -> u32 {
        self.silence_ms
    }

    pub fn config(&self) -> EndpointConfig {
        self.config
    }
}
