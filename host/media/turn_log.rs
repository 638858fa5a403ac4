//! The per-turn timing log: one `turn` line per utterance the providers
//! worked on, with how long each stage took from the end of the utterance.

use std::time::Instant;

use tracing::info;

pub use crate::metrics::{TurnOutcome as Outcome, TurnTimes};

pub struct TurnTiming {
    pub turn: u32,
    eou: Instant,
    pub stt_ms: Option<f64>,
    pub think_at: Option<Instant>,
    pub llm_first_token_ms: Option<f64>,
    pub speak_at: Option<Instant>,
    pub tts_first_byte_ms: Option<f64>,
}

impl TurnTiming {
    /// Starts timing turn `turn` at its end of utterance (now).
    pub fn new(turn: u32) -> Self {
        TurnTiming {
            turn,
            eou: Instant::now(),
            stt_ms: None,
            think_at: None,
            llm_first_token_ms: None,
            speak_at: None,
            tts_first_byte_ms: None,
        }
    }

    pub fn since_eou(&self) -> f64 {
        ms_since(self.eou)
    }

    /// Logs the turn's `turn` line; returns its numbers (for the call's record).
    pub fn log(self, outcome: Outcome, eou_ms: u32) -> TurnTimes {
        let first_audio_ms = (outcome == Outcome::Spoken).then(|| ms_since(self.eou));
        info!(
            event = "turn",
            turn = self.turn,
            outcome = outcome.name(),
            eou_ms,
            stt_ms = self.stt_ms,
            llm_first_token_ms = self.llm_first_token_ms,
            tts_first_byte_ms = self.tts_first_byte_ms,
            first_audio_ms,
        );
        TurnTimes {
            turn: self.turn,
            outcome,
            stt_ms: self.stt_ms,
            llm_first_token_ms: self.llm_first_token_ms,
            tts_first_byte_ms: self.tts_first_byte_ms,
            first_audio_ms,
        }
    }
}

pub fn ms_since(at: Instant) -> f64 {
    at.elapsed().as_secs_f64() * 1000.0
}
