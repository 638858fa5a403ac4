//! What the caller hears: replies played in segments, each closed by a
//! mark, and which of them Twilio reports as played.

use hotline_audio::{FRAME_BYTES, ulaw};

use super::{Machine, State, log};
use crate::bindings::hotline::call::types::{Effect, Role};

#[derive(Debug, Clone, Default)]
pub(crate) struct Playback {
    /// Replies started so far; names the marks.
    pub(crate) turn: u32,
    /// Segments of the reply being spoken, in order.
    pub(crate) segments: Vec<Segment>,
    /// Marks of segments cut off by a barge-in: Twilio still echoes them.
    pub(crate) dropped_marks: Vec<String>,
    /// The reply is fully handed to the host (its last mark is queued).
    pub(crate) reply_complete: bool,
}

/// A played piece of a reply, closed by a mark of the same name.
#[derive(Debug, Clone)]
pub(crate) struct Segment {
    pub(crate) mark: String,
    pub(crate) heard: bool,
    /// What the piece says, for the history; empty for echoes and prompts.
    pub(crate) text: String,
}

impl Machine {
    pub(super) fn begin_reply(&mut self, fx: &mut Vec<Effect>) {
        self.playback.segments.clear();
        self.playback.reply_complete = false;
        self.ai.unspoken.clear();
        self.set_state(State::Speaking, fx);
    }

    /// Plays `audio`, in one piece or several (each padded to whole
    /// frames), followed by its mark.
    pub(super) fn play_segment(
        &mut self,
        audio: impl IntoIterator<Item = Vec<u8>>,
        mark: String,
        text: String,
        fx: &mut Vec<Effect>,
    ) {
        audio.into_iter().for_each(|piece| play(piece, fx));
        fx.push(Effect::Mark(mark.clone()));
        self.playback.segments.push(Segment { mark, heard: false, text });
    }

    pub(super) fn on_mark(&mut self, name: String, fx: &mut Vec<Effect>) {
        let playback = &mut self.playback;
        if let Some(pos) = playback.dropped_marks.iter().position(|m| *m == name) {
            playback.dropped_marks.remove(pos);
            fx.push(log("mark_dropped", &[("name", name)]));
            return;
        }
        if self.ai.filler.as_deref() == Some(name.as_str()) {
            self.ai.filler = None; // played to its end
            return;
        }
        let Some(segment) = playback.segments.iter_mut().find(|s| s.mark == name) else {
            fx.push(log("mark_unknown", &[("name", name)]));
            return;
        };
        segment.heard = true;
        let all_heard = playback.segments.iter().all(|s| s.heard);
        if self.state == State::Speaking && playback.reply_complete && self.ai.speaking.is_empty() && all_heard {
            let turn = playback.turn.to_string();
            fx.push(log("reply_done", &[("turn", turn), ("segments", playback.segments.len().to_string())]));
            self.record_heard_reply();
            self.playback.segments.clear();
            self.set_state(State::Listening, fx);
            self.end_if_heard(fx);
        }
    }

    /// Keeps in the conversation only what the caller actually heard:
    /// the sentences whose marks came back.
    pub(super) fn record_heard_reply(&mut self) {
        let segments = &mut self.playback.segments;
        let heard: Vec<&str> =
            segments.iter().filter(|s| s.heard && !s.text.is_empty()).map(|s| s.text.as_str()).collect();
        if self.settings.ai && !heard.is_empty() {
            self.ai.conversation.push(super::reply::turn(Role::Assistant, heard.join(" ")));
        }
        // Recorded once: a segment's text is not counted again.
        segments.iter_mut().for_each(|s| s.text.clear());
    }
}

/// Plays `audio` (padded to whole frames) followed by its mark.
pub(super) fn play_with_mark(audio: Vec<u8>, mark: &str, fx: &mut Vec<Effect>) {
    play(audio, fx);
    fx.push(Effect::Mark(mark.to_string()));
}

/// Plays `audio` padded to whole frames (nothing, if it is empty).
fn play(mut audio: Vec<u8>, fx: &mut Vec<Effect>) {
    let whole = audio.len().div_ceil(FRAME_BYTES) * FRAME_BYTES;
    // Exactly: `resize` alone may double the buffer.
    audio.reserve_exact(whole - audio.len());
    audio.resize(whole, ulaw::SILENCE);
    if !audio.is_empty() {
        fx.push(Effect::Play(audio));
    }
}
