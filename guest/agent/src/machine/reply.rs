//! The AI's side of a turn (STT → LLM → TTS): the transcript becomes a
//! reply, the reply text is cut into sentences as it streams, each is
//! spoken, and its audio is converted and played. A filler covers a slow
//! turn, an apology a failed one.

use hotline_audio::chunked::ChunkedAudio;
use hotline_audio::frame::Framer;
use hotline_audio::resample::Resampler;
use hotline_audio::{SAMPLE_RATE, ulaw};

use super::playback::play_with_mark;
use super::{Machine, Segment, State, log};
use crate::bindings::hotline::call::types::{
    Effect, ProviderError, ProviderKind, ReplyText, Restart, Role, SpeechAudio, Thought, Timer, Transcript, Turn,
    Utterance,
};
use crate::prompts;

/// Timer id of the fallback filler (ids are per call and the guest's own).
pub(super) const FALLBACK_TIMER: u32 = 1;

/// What a THINKING call waits for from the host's providers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Awaiting {
    #[default]
    Nothing,
    Transcript,
    Reply,
}

/// The conversation so far and the providers' work on the turn in flight.
#[derive(Debug, Clone, Default)]
pub(crate) struct Ai {
    pub(crate) awaiting: Awaiting,
    /// What the LLM is told was said, after its system prompt.
    pub(crate) conversation: Vec<Turn>,
    /// Reply text not yet cut into a sentence.
    pub(crate) unspoken: String,
    /// Speak requests whose audio has not fully arrived, in order; each
    /// becomes a segment when its audio is complete.
    pub(crate) speaking: Vec<Segment>,
    /// Reply audio of the current turn has begun to play.
    pub(crate) audio_started: bool,
    /// Mark of the filler while it may still be playing.
    pub(crate) filler: Option<String>,
    /// The filler played this turn (so its end is logged once).
    pub(crate) filler_fired: bool,
    /// Converts the speech being received to 8 kHz.
    pub(crate) resampler: Option<Resampler>,
    /// Holds converted speech until it fills a whole frame.
    pub(crate) framer: Framer,
}

impl Machine {
    /// Starts the AI's turn on the caller's utterance.
    pub(super) fn transcribe(&mut self, utterance: &ChunkedAudio, fx: &mut Vec<Effect>) {
        let mut samples = Vec::with_capacity(utterance.len());
        utterance.slices().for_each(|piece| ulaw::decode_into(piece, &mut samples));
        self.ai.awaiting = Awaiting::Transcript;
        self.ai.audio_started = false;
        self.ai.filler_fired = false;
        fx.push(Effect::Transcribe(Utterance { samples, sample_rate: SAMPLE_RATE }));
        if self.settings.fallback_ms > 0 {
            fx.push(Effect::SetTimer(Timer { id: FALLBACK_TIMER, ms: self.settings.fallback_ms }));
        }
    }

    pub(super) fn on_transcript(&mut self, t: Transcript, fx: &mut Vec<Effect>) {
        if self.ai.awaiting != Awaiting::Transcript || !t.is_final {
            return;
        }
        let text = t.text.trim().to_string();
        fx.push(log("stt_final", &[("chars", text.len().to_string())]));
        if text.is_empty() {
            self.forget_provider_work(fx);
            self.set_state(State::Listening, fx);
            return;
        }
        self.ai.conversation.push(turn(Role::User, text));
        self.tools.rounds = 0;
        self.think(fx);
    }

    /// Asks the LLM to answer the conversation so far, with the tools.
    pub(super) fn think(&mut self, fx: &mut Vec<Effect>) {
        self.ai.awaiting = Awaiting::Reply;
        let mut turns = vec![turn(Role::System, self.settings.system_prompt.clone())];
        turns.extend(self.ai.conversation.iter().cloned());
        fx.push(Effect::Think(Thought { turns, tools: self.tools_offered() }));
    }

    pub(super) fn on_reply_text(&mut self, r: ReplyText, fx: &mut Vec<Effect>) {
        if self.ai.awaiting != Awaiting::Reply {
            return;
        }
        if self.state == State::Thinking {
            self.begin_reply(fx);
        }
        self.ai.unspoken.push_str(&r.delta);
        while let Some(end) = sentence_end(&self.ai.unspoken) {
            let sentence: String = self.ai.unspoken.drain(..end).collect();
            self.speak(sentence.trim().to_string(), fx);
        }
        if r.done {
            let rest = std::mem::take(&mut self.ai.unspoken);
            if !rest.trim().is_empty() {
                self.speak(rest.trim().to_string(), fx);
            }
            self.ai.awaiting = Awaiting::Nothing;
            self.playback.reply_complete = true;
            if self.on_reply_done_with_tools(fx) {
                return;
            }
            if self.ai.speaking.is_empty() && self.playback.segments.is_empty() {
                self.stop_filler(fx);
                self.set_state(State::Listening, fx);
            }
        }
    }

    pub(super) fn speak(&mut self, text: String, fx: &mut Vec<Effect>) {
        if text.is_empty() {
            return;
        }
        let mark = format!("t{}-s{}", self.playback.turn, self.playback.segments.len() + self.ai.speaking.len());
        self.ai.speaking.push(Segment { mark, heard: false, text: text.clone() });
        fx.push(Effect::Speak(text));
    }

    pub(super) fn on_speech_audio(&mut self, a: SpeechAudio, fx: &mut Vec<Effect>) {
        if self.ai.speaking.is_empty() {
            return; // audio for a reply a barge-in already cancelled
        }
        if !self.ai.audio_started {
            self.ai.audio_started = true;
            fx.push(Effect::CancelTimer(FALLBACK_TIMER));
            self.stop_filler(fx);
        }
        let ai = &mut self.ai;
        let resampler = ai.resampler.get_or_insert_with(|| Resampler::new(a.sample_rate, SAMPLE_RATE));
        if resampler.in_rate() != a.sample_rate {
            *resampler = Resampler::new(a.sample_rate, SAMPLE_RATE);
        }
        let mut pcm = resampler.process(&a.samples);
        if a.done {
            pcm.extend(resampler.flush());
        }
        let mut frames = ai.framer.push_pcm(&pcm);
        if a.done {
            frames.extend(ai.framer.flush());
        }
        if !frames.is_empty() {
            fx.push(Effect::Play(frames));
        }
        if a.done {
            let segment = ai.speaking.remove(0);
            fx.push(Effect::Mark(segment.mark.clone()));
            self.playback.segments.push(segment);
            ai.resampler = None;
        }
    }

    /// The turn is slow: cover the silence, once, until real audio comes.
    pub(super) fn on_fallback_timer(&mut self, fx: &mut Vec<Effect>) {
        let ai = &mut self.ai;
        let waiting = ai.awaiting != Awaiting::Nothing || !ai.speaking.is_empty();
        if !waiting || ai.audio_started || ai.filler_fired {
            return;
        }
        let turn = self.playback.turn;
        let mark = format!("t{turn}-filler");
        fx.push(log(
            "fallback_fired",
            &[("turn", turn.to_string()), ("after_ms", self.settings.fallback_ms.to_string())],
        ));
        play_with_mark(prompts::play(&prompts::FILLER), &mark, fx);
        ai.filler = Some(mark);
        ai.filler_fired = true;
    }

    /// Ends the filler's part in the turn: cut it if it is still playing.
    pub(super) fn stop_filler(&mut self, fx: &mut Vec<Effect>) {
        if !self.ai.filler_fired {
            return;
        }
        self.ai.filler_fired = false;
        let cut = self.ai.filler.is_some();
        if let Some(mark) = self.ai.filler.take() {
            fx.push(Effect::Clear);
            self.playback.dropped_marks.push(mark); // Twilio echoes the marks a clear drops
        }
        fx.push(log("fallback_cleared", &[("turn", self.playback.turn.to_string()), ("cut", cut.to_string())]));
    }

    /// Stops waiting for transcripts, replies and speech, and asks the host
    /// to abort those requests: results that still arrive for them are
    /// ignored, half-converted audio is dropped.
    pub(super) fn forget_provider_work(&mut self, fx: &mut Vec<Effect>) {
        if !self.settings.ai {
            return;
        }
        let ai = &mut self.ai;
        let in_flight = ai.awaiting != Awaiting::Nothing || !ai.speaking.is_empty();
        ai.awaiting = Awaiting::Nothing;
        ai.speaking.clear();
        ai.unspoken.clear();
        ai.resampler = None;
        ai.framer = Framer::new();
        self.drop_tool_round();
        fx.push(Effect::CancelTimer(FALLBACK_TIMER));
        if in_flight {
            fx.push(Effect::Cancel);
        }
    }

    pub(super) fn on_provider_error(&mut self, e: ProviderError, fx: &mut Vec<Effect>) {
        let kind = match e.kind {
            ProviderKind::Stt => "stt",
            ProviderKind::Llm => "llm",
            ProviderKind::Tts => "tts",
        };
        fx.push(log("provider_error", &[("kind", kind.into()), ("message", e.message)]));
        self.abandon_turn(fx);
    }

    /// The host re-created this session from a snapshot after a failure.
    /// If it dropped the call's provider work, results this turn waits for
    /// may never come: give the turn up as after a provider error.
    pub(super) fn on_restarted(&mut self, r: Restart, fx: &mut Vec<Effect>) {
        fx.push(log("restarted", &[("reason", r.reason), ("work_dropped", r.work_dropped.to_string())]));
        if r.work_dropped {
            self.abandon_turn(fx);
        }
    }

    /// A turn that cannot be finished: drop the rest of its work, let what
    /// is already queued play, then apologize and listen again.
    pub(super) fn abandon_turn(&mut self, fx: &mut Vec<Effect>) {
        if self.state == State::Listening || self.state == State::Ended {
            return; // nothing of this turn is left to save
        }
        self.stop_filler(fx);
        self.forget_provider_work(fx);
        if self.state == State::Thinking {
            self.begin_reply(fx);
        }
        let mark = format!("t{}-apology", self.playback.turn);
        self.play_segment([prompts::play(&prompts::APOLOGY)], mark, String::new(), fx);
        self.playback.reply_complete = true;
    }
}

/// Byte index just past the first complete sentence, if any.
fn sentence_end(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    (0..bytes.len().saturating_sub(1))
        .find(|&i| matches!(bytes[i], b'.' | b'!' | b'?') && bytes[i + 1].is_ascii_whitespace())
        .map(|i| i + 1)
}

/// A turn of plain text.
pub(super) fn turn(role: Role, text: String) -> Turn {
    Turn { role, text, tool_calls: Vec::new(), tool_call_id: None }
}
