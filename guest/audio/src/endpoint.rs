//! Utterance boundaries from per-frame voice decisions: where speech starts,
//! how much of it there was, and when enough trailing silence has passed to
//! call it the end of the utterance (EoU).

use crate::samples_to_ms;
use crate::vad::{Vad, VadState};

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
    /// First voiced frame of a possible utterance.
    SpeechStart,
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

    /// Feeds one frame (any length; normally 160 samples).
    pub fn push(&mut self, pcm: &[i16]) -> Option<Boundary> {
        let ms = samples_to_ms(pcm.len());
        let voiced = self.vad.is_speech(pcm);
        if voiced {
            self.silence_ms = 0;
            self.speech_ms += ms;
            if !self.in_utterance {
                self.in_utterance = true;
                return Some(Boundary::SpeechStart);
            }
            return None;
        }
        if !self.in_utterance {
            return None;
        }
        self.silence_ms += ms;
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
