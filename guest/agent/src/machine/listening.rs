//! The caller's side: their audio, where an utterance starts and ends, the
//! echo agent's answer to it, and barge-in.

use hotline_audio::chunked::ChunkedAudio;
use hotline_audio::endpoint::{Boundary, Endpointer};
use hotline_audio::{FRAME_BYTES, SAMPLE_RATE, samples_to_ms};

use super::{Machine, State, log};
use crate::bindings::hotline::call::types::Effect;

/// Caller audio kept from before speech onset, so the first syllable is not
/// clipped by the detector's reaction time.
const PREROLL_BYTES: usize = 200 * SAMPLE_RATE as usize / 1000;
/// One echo segment (and one mark) per second of reply audio.
const SEGMENT_BYTES: usize = 50 * FRAME_BYTES;
/// Trailing silence kept at the end of an echoed utterance.
const ECHO_TAIL_MS: u32 = 100;

/// The caller's audio on its way to becoming an utterance.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub(crate) endpointer: Endpointer,
    /// μ-law of the utterance in progress; between utterances, the pre-roll
    /// (up to twice its length: trimmed to it when speech starts), or, while
    /// the detector may look back (a call's first 2 s), everything since the
    /// call started or its last utterance ended.
    pub(crate) utterance: ChunkedAudio,
    pub(crate) utterance_start_ms: u64,
}

impl Caller {
    pub(crate) fn new(endpointer: Endpointer, utterance: ChunkedAudio, utterance_start_ms: u64) -> Self {
        Caller { endpointer, utterance, utterance_start_ms }
    }
}

impl Machine {
    pub(super) fn on_media(&mut self, payload: &[u8], fx: &mut Vec<Effect>) {
        if !self.started {
            return;
        }
        let caller = &mut self.caller;
        self.media_ms += samples_to_ms(payload.len()) as u64;
        let boundary = caller.endpointer.push_ulaw_after(&caller.utterance, payload);
        caller.utterance.extend_from_slice(payload);
        match boundary {
            Some(Boundary::SpeechStart { lookback_ms }) => {
                // The utterance begins with the pre-roll before its first
                // voiced frame: this one, or one the detector looked back to.
                let lookback = lookback_ms as usize * SAMPLE_RATE as usize / 1000;
                let keep = PREROLL_BYTES + lookback + payload.len();
                caller.utterance.trim_front(caller.utterance.len().saturating_sub(keep));
                caller.utterance_start_ms = self.media_ms.saturating_sub(samples_to_ms(caller.utterance.len()) as u64);
                let mut fields = vec![("at_ms", self.media_ms.to_string())];
                if lookback_ms > 0 {
                    // Found late: the floor was still learning when it began.
                    fields.push(("lookback_ms", lookback_ms.to_string()));
                }
                fx.push(log("speech_start", &fields));
            }
            Some(Boundary::EndOfUtterance { speech_ms }) => {
                self.on_end_of_utterance(speech_ms, fx);
                return;
            }
            Some(Boundary::Noise) => {
                fx.push(log("vad_noise", &[("at_ms", self.media_ms.to_string())]));
            }
            None => {}
        }
        if self.caller.endpointer.in_utterance() {
            let barging = self.caller.endpointer.speech_ms() >= self.settings.barge_in_ms;
            if self.state == State::Speaking && barging && !self.ending() {
                self.barge_in(fx);
            } else if self.state == State::Thinking && barging {
                // The caller goes on talking: the pending reply is stale.
                fx.push(log("think_abandoned", &[("turn", self.playback.turn.to_string())]));
                self.stop_filler(fx);
                self.forget_provider_work(fx);
                self.set_state(State::Listening, fx);
            }
            let max_bytes = self.settings.max_utterance_ms as usize * SAMPLE_RATE as usize / 1000;
            if self.caller.utterance.len() >= max_bytes {
                let speech_ms = self.caller.endpointer.cut();
                fx.push(log("utterance_cut", &[("at_ms", self.media_ms.to_string())]));
                self.on_end_of_utterance(speech_ms, fx);
            }
        } else {
            // Between utterances: the pre-roll, or (while the detector may
            // still look back) everything since the last utterance.
            let keep = PREROLL_BYTES.max(self.caller.endpointer.lookback_bytes());
            if self.caller.utterance.len() >= keep + PREROLL_BYTES {
                let excess = self.caller.utterance.len() - keep;
                self.caller.utterance.trim_front(excess);
            }
        }
    }

    fn on_end_of_utterance(&mut self, speech_ms: u32, fx: &mut Vec<Effect>) {
        let utterance = std::mem::take(&mut self.caller.utterance);
        if self.state != State::Listening {
            // Speech too short to barge in while the agent talks: ignore it.
            fx.push(log(
                "speech_ignored",
                &[("speech_ms", speech_ms.to_string()), ("state", self.state.name().into())],
            ));
            return;
        }
        self.playback.turn += 1;
        fx.push(log(
            "eou",
            &[
                ("turn", self.playback.turn.to_string()),
                ("at_ms", self.media_ms.to_string()),
                ("speech_ms", speech_ms.to_string()),
                ("utterance_ms", samples_to_ms(utterance.len()).to_string()),
                ("started_ms", self.caller.utterance_start_ms.to_string()),
            ],
        ));
        self.set_state(State::Thinking, fx);
        if self.settings.ai {
            self.transcribe(&utterance, fx);
        } else {
            self.echo(utterance, fx);
        }
    }

    fn echo(&mut self, mut utterance: ChunkedAudio, fx: &mut Vec<Effect>) {
        let silence_ms = self.settings.eou_silence_ms.saturating_sub(ECHO_TAIL_MS);
        let trim = (silence_ms as usize * SAMPLE_RATE as usize / 1000).min(utterance.len());
        utterance.truncate(utterance.len() - trim);
        self.begin_reply(fx);
        let turn = self.playback.turn;
        // The chunks the audio was kept in are played as they are: a copy
        // would hold the utterance twice. At least one segment, so that a
        // mark ends the reply.
        let mut pieces = utterance.into_pieces().peekable();
        for i in 0.. {
            let mut segment = Vec::new();
            let mut bytes = 0;
            while bytes < SEGMENT_BYTES
                && let Some(piece) = pieces.next()
            {
                bytes += piece.len();
                segment.push(piece);
            }
            self.play_segment(segment, format!("t{turn}-s{i}"), String::new(), fx);
            if pieces.peek().is_none() {
                break;
            }
        }
        self.playback.reply_complete = true;
    }

    fn barge_in(&mut self, fx: &mut Vec<Effect>) {
        let segments = &self.playback.segments;
        let heard: Vec<&str> = segments.iter().filter(|s| s.heard).map(|s| s.mark.as_str()).collect();
        let unheard: Vec<&str> = segments.iter().filter(|s| !s.heard).map(|s| s.mark.as_str()).collect();
        let entry = log(
            "barge_in",
            &[
                ("at_ms", self.media_ms.to_string()),
                ("speech_ms", self.caller.endpointer.speech_ms().to_string()),
                ("heard", heard.join(",")),
                ("unheard", unheard.join(",")),
            ],
        );
        fx.push(Effect::Clear);
        fx.push(entry);
        self.drop_unheard(fx);
    }

    /// Stops the agent mid-sentence (an answering machine's verdict): as a
    /// barge-in does, without one.
    pub(super) fn silence(&mut self, fx: &mut Vec<Effect>) {
        fx.push(Effect::Clear);
        self.drop_unheard(fx);
    }

    /// After a `clear`: the reply keeps what was heard, the marks of the rest
    /// will come back dropped, and the turn's work is abandoned.
    fn drop_unheard(&mut self, fx: &mut Vec<Effect>) {
        let unheard = self.playback.segments.iter().filter(|s| !s.heard).map(|s| s.mark.clone());
        let unheard: Vec<String> = unheard.collect();
        self.record_heard_reply();
        self.playback.dropped_marks.extend(unheard);
        self.playback.segments.clear();
        // The clear dropped the filler too, if it was playing.
        self.playback.dropped_marks.extend(self.ai.filler.take());
        self.forget_provider_work(fx);
        self.set_state(State::Listening, fx);
    }
}
