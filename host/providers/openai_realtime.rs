//! OpenAI's realtime transcription (`/v1/realtime?intent=transcription`
//! over a WebSocket): the call's μ-law goes in as is (`audio/pcmu`, base64
//! in `input_audio_buffer.append`), and each `input_audio_buffer.commit`
//! becomes a conversation item whose words come back as deltas, then
//! whole.
//!
//! Shapes followed: the GA Realtime API (`session.update` with a session of
//! `type: "transcription"` and its settings under `audio.input`), not the
//! beta's `transcription_session.update` with `input_audio_format`.
//!
//! Server turn detection is off (`turn_detection: null`): the guest
//! decides where an utterance ends, and a `finalize` is a commit. OpenAI
//! transcribes only what is committed, so the words arrive after the
//! utterance, not while it is spoken; and a commit takes the whole buffer,
//! so a `finalize` first clears it and appends the utterance again (what
//! the listener kept of it): an item is the utterance, not the pauses, the
//! agent's echo or the noise the guest ignored since the last one. Its
//! events say nothing of where in the audio an item ends, so each
//! connection ([`Transcription`]) counts the audio it streamed and
//! remembers it at each commit, and hands the items' words over in the
//! order they were committed.

use std::collections::VecDeque;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use futures_util::SinkExt;
use futures_util::future::BoxFuture;
use serde::Deserialize;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;
use tracing::warn;

use super::realtime_socket::Dialer;
use super::settings::OpenAiRealtimeSettings;
use super::streaming::{Heard, Protocol, Socket, StreamingStt};
use super::{ProviderError, ProviderSettings, Result};

/// μ-law bytes per millisecond at 8 kHz.
const BYTES_PER_MS: u64 = 8;
/// What OpenAI answers a commit of less than 100 ms of audio with.
const COMMIT_EMPTY: &str = "input_audio_buffer_commit_empty";
/// An utterance appended again goes in appends of a second each.
const APPEND_BYTES: usize = 8000;

pub struct OpenAiRealtime {
    settings: OpenAiRealtimeSettings,
    /// ISO-639-1, the first part of `HOTLINE_LANGUAGE` (as batch OpenAI gets it).
    language: String,
    dialer: Dialer,
}

impl OpenAiRealtime {
    /// Fails on a CA file it cannot read (as the HTTP client does).
    pub fn new(settings: OpenAiRealtimeSettings, providers: &ProviderSettings) -> Result<OpenAiRealtime> {
        let dialer = Dialer::new(providers)?;
        Ok(OpenAiRealtime { settings, language: providers.language_code(), dialer })
    }

    fn url(&self) -> String {
        format!("{}?intent=transcription", self.settings.url)
    }

    /// The first message: a transcription session of μ-law at 8 kHz, no
    /// turn detection (commits are ours), no noise reduction (the line's
    /// audio is what the guest heard too).
    fn session_update(&self) -> serde_json::Value {
        json!({
            "type": "session.update",
            "session": {
                "type": "transcription",
                "audio": {
                    "input": {
                        "format": { "type": "audio/pcmu" },
                        "transcription": { "model": self.settings.model, "language": self.language },
                        "turn_detection": null,
                        "noise_reduction": null
                    }
                }
            }
        })
    }
}

impl StreamingStt for OpenAiRealtime {
    fn name(&self) -> &'static str {
        "openai-realtime"
    }

    fn connect(&self) -> BoxFuture<'_, Result<(Socket, Box<dyn Protocol>)>> {
        Box::pin(async move {
            let mut socket = self.dialer.open(&self.url(), &self.settings.api_key).await?;
            socket
                .send(Message::text(self.session_update().to_string()))
                .await
                .map_err(|e| ProviderError::Stream(format!("session.update: {e}")))?;
            Ok((socket, Box::new(Transcription::default()) as Box<dyn Protocol>))
        })
    }
}

/// One connection's transcription: the audio it sent, its commits not yet
/// answered, and the items committed whose words are not all handed over.
#[derive(Default)]
struct Transcription {
    sent_bytes: u64,
    /// Where each commit not yet answered (`committed` or an error) ends,
    /// in ms of this connection's audio; oldest first.
    commits: VecDeque<u64>,
    /// Committed items, oldest first, until their words are handed over.
    items: VecDeque<Item>,
}

struct Item {
    id: String,
    end_ms: u64,
    /// The deltas so far.
    partial: String,
    /// The whole words, once `completed` (or failed: none).
    done: Option<String>,
}

impl Transcription {
    fn sent_ms(&self) -> u64 {
        self.sent_bytes / BYTES_PER_MS
    }

    /// Nothing sent is still waiting for its words.
    fn settled(&self) -> bool {
        self.commits.is_empty() && self.items.is_empty()
    }

    /// The words of item `id`, done. Completions may come out of order
    /// (each item is transcribed on its own): the words go to the listener
    /// in commit order, all the items done at the front at once.
    fn done(&mut self, id: &str, text: String) -> Heard {
        match self.items.iter_mut().find(|item| item.id == id) {
            Some(item) => item.done = Some(text),
            // An item this connection did not commit (none should exist):
            // its words end with what was sent.
            None => {
                let end_ms = self.sent_ms();
                self.items.push_front(Item { id: id.to_string(), end_ms, partial: String::new(), done: Some(text) });
            }
        }
        let mut words = Vec::new();
        let mut end_ms = None;
        while self.items.front().is_some_and(|item| item.done.is_some()) {
            let Some(item) = self.items.pop_front() else { break };
            words.extend(item.done.filter(|t| !t.trim().is_empty()).map(|t| t.trim().to_string()));
            end_ms = Some(item.end_ms);
        }
        match end_ms {
            Some(end_ms) => Heard::Final { text: words.join(" "), end_ms, flushed: self.settled() },
            None => Heard::Nothing,
        }
    }
}

impl Protocol for Transcription {
    fn audio(&mut self, ulaw: &[u8]) -> Message {
        self.sent_bytes += ulaw.len() as u64;
        append(ulaw)
    }

    /// Clear, the utterance again, commit. The item still ends where the
    /// stream was at the commit (`sent_bytes`: the utterance appended again
    /// is no new audio).
    fn finalize(&mut self, utterance: &[u8]) -> Vec<Message> {
        self.commits.push_back(self.sent_ms());
        let mut messages = vec![Message::text(r#"{"type":"input_audio_buffer.clear"}"#)];
        messages.extend(utterance.chunks(APPEND_BYTES).map(append));
        messages.push(Message::text(r#"{"type":"input_audio_buffer.commit"}"#));
        messages
    }

    /// No client event is a no-op here; a ping keeps proxies from closing
    /// an idle socket, and OpenAI answers it as WebSocket servers do.
    fn keep_alive(&mut self) -> Option<Message> {
        Some(Message::Ping(Default::default()))
    }

    fn heard(&mut self, text: &str) -> Result<Heard> {
        let message: Incoming =
            serde_json::from_str(text).map_err(|e| ProviderError::Protocol(format!("openai-realtime message: {e}")))?;
        Ok(match message {
            Incoming::Committed { item_id } => {
                let end_ms = self.commits.pop_front().unwrap_or_else(|| self.sent_ms());
                self.items.push_back(Item { id: item_id, end_ms, partial: String::new(), done: None });
                Heard::Nothing
            }
            Incoming::Delta { item_id, delta } => match self.items.iter_mut().find(|item| item.id == item_id) {
                Some(item) => {
                    item.partial.push_str(&delta);
                    Heard::Partial(item.partial.trim().to_string())
                }
                None => Heard::Nothing,
            },
            Incoming::Completed { item_id, transcript } => self.done(&item_id, transcript),
            Incoming::Failed { item_id, error } => {
                warn!(event = "stt_error", provider = "openai-realtime", code = %error.code(), message = %error.message);
                self.done(&item_id, String::new())
            }
            // A commit with (almost) nothing in the buffer: nothing to hear,
            // said now so that the listener does not wait for words.
            Incoming::Error { error } if error.code.as_deref() == Some(COMMIT_EMPTY) && !self.commits.is_empty() => {
                let end_ms = self.commits.pop_front().unwrap_or_default();
                if self.items.is_empty() {
                    Heard::Final { text: String::new(), end_ms, flushed: self.commits.is_empty() }
                } else {
                    Heard::Nothing // the items before it answer, when done
                }
            }
            Incoming::Error { error } => {
                warn!(event = "stt_error", provider = "openai-realtime", code = %error.code(), message = %error.message);
                Heard::Nothing
            }
            Incoming::Other => Heard::Nothing,
        })
    }
}

fn append(ulaw: &[u8]) -> Message {
    Message::text(json!({ "type": "input_audio_buffer.append", "audio": B64.encode(ulaw) }).to_string())
}

/// The server events that matter here; the rest (`session.created`,
/// `session.updated`, `conversation.item.added`/`done`...) are skipped.
#[derive(Deserialize)]
#[serde(tag = "type")]
enum Incoming {
    #[serde(rename = "input_audio_buffer.committed")]
    Committed { item_id: String },
    #[serde(rename = "conversation.item.input_audio_transcription.delta")]
    Delta {
        item_id: String,
        #[serde(default)]
        delta: String,
    },
    #[serde(rename = "conversation.item.input_audio_transcription.completed")]
    Completed {
        item_id: String,
        #[serde(default)]
        transcript: String,
    },
    #[serde(rename = "conversation.item.input_audio_transcription.failed")]
    Failed { item_id: String, error: ErrorDetail },
    #[serde(rename = "error")]
    Error { error: ErrorDetail },
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct ErrorDetail {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: String,
}

impl ErrorDetail {
    fn code(&self) -> &str {
        self.code.as_deref().unwrap_or("none")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hotline_common::Secret;

    fn realtime() -> OpenAiRealtime {
        let settings = OpenAiRealtimeSettings {
            url: "wss://api.openai.com/v1/realtime".into(),
            api_key: Secret::new("k"),
            model: "gpt-4o-transcribe".into(),
        };
        let providers = crate::settings::defaults();
        OpenAiRealtime::new(settings, &providers).unwrap()
    }

    fn event(value: serde_json::Value) -> String {
        value.to_string()
    }

    fn committed(id: &str) -> String {
        event(json!({"type": "input_audio_buffer.committed", "event_id": "e", "previous_item_id": null, "item_id": id}))
    }

    fn delta(id: &str, delta: &str) -> String {
        event(json!({"type": "conversation.item.input_audio_transcription.delta", "event_id": "e",
            "item_id": id, "content_index": 0, "delta": delta}))
    }

    fn completed(id: &str, transcript: &str) -> String {
        event(json!({"type": "conversation.item.input_audio_transcription.completed", "event_id": "e",
            "item_id": id, "content_index": 0, "transcript": transcript, "usage": {"type": "duration", "seconds": 2}}))
    }

    #[test]
    fn the_session_is_transcription_of_mulaw_without_turn_detection() {
        let rt = realtime();
        assert_eq!(rt.url(), "wss://api.openai.com/v1/realtime?intent=transcription");
        let update = rt.session_update();
        assert_eq!(update["type"], "session.update");
        assert_eq!(update["session"]["type"], "transcription");
        let input = &update["session"]["audio"]["input"];
        assert_eq!(input["format"], json!({"type": "audio/pcmu"}));
        assert_eq!(input["transcription"], json!({"model": "gpt-4o-transcribe", "language": "en"}));
        assert!(input["turn_detection"].is_null() && input.as_object().unwrap().contains_key("turn_detection"));
    }

    fn kinds(messages: &[Message]) -> Vec<(String, usize)> {
        let read = |m: &Message| serde_json::from_str::<serde_json::Value>(m.to_text().unwrap()).unwrap();
        messages
            .iter()
            .map(read)
            .map(|v| {
                let audio = v["audio"].as_str().map_or(0, |a| B64.decode(a).unwrap().len());
                (v["type"].as_str().unwrap().to_string(), audio)
            })
            .collect()
    }

    #[test]
    fn audio_is_appended_as_base64_and_a_finalize_is_the_utterance_again_then_a_commit() {
        let mut t = Transcription::default();
        let append = t.audio(&[0xff, 0x7f, 0x00]);
        let append: serde_json::Value = serde_json::from_str(append.to_text().unwrap()).unwrap();
        assert_eq!(append, json!({"type": "input_audio_buffer.append", "audio": "/38A"}));
        t.audio(&[0xff; 7997]);
        let sent = t.finalize(&[0xff; 12_000]);
        let expected = [("input_audio_buffer.clear", 0), ("input_audio_buffer.append", 8000)]
            .into_iter()
            .chain([("input_audio_buffer.append", 4000), ("input_audio_buffer.commit", 0)])
            .map(|(k, n)| (k.to_string(), n))
            .collect::<Vec<_>>();
        assert_eq!(kinds(&sent), expected);
        // The commit ends where the stream was: the utterance again is no new audio.
        assert_eq!(t.commits, [1000]);
        assert_eq!(
            kinds(&t.finalize(&[])),
            [("input_audio_buffer.clear".to_string(), 0), ("input_audio_buffer.commit".to_string(), 0)]
        );
    }

    #[test]
    fn deltas_accumulate_and_the_completed_item_is_final_where_its_commit_ended() {
        let mut t = Transcription::default();
        t.audio(&[0xff; 8000]); // 1 s
        t.finalize(&[]);
        assert_eq!(t.heard(&committed("item_1")).unwrap(), Heard::Nothing);
        t.audio(&[0xff; 800]); // audio after the commit is not the item's
        assert_eq!(t.heard(&delta("item_1", "Is it")).unwrap(), Heard::Partial("Is it".into()));
        assert_eq!(t.heard(&delta("item_1", " going to")).unwrap(), Heard::Partial("Is it going to".into()));
        let done = t.heard(&completed("item_1", "Is it going to rain?")).unwrap();
        assert_eq!(done, Heard::Final { text: "Is it going to rain?".into(), end_ms: 1000, flushed: true });
        for other in [r#"{"type":"session.updated","session":{}}"#, r#"{"type":"conversation.item.added","item":{}}"#] {
            assert_eq!(t.heard(other).unwrap(), Heard::Nothing);
        }
        assert!(matches!(t.heard("not json"), Err(ProviderError::Protocol(_))));
    }

    #[test]
    fn items_are_handed_over_in_commit_order_and_only_the_last_is_flushed() {
        let mut t = Transcription::default();
        t.audio(&[0xff; 1600]);
        t.finalize(&[]);
        t.audio(&[0xff; 1600]);
        t.finalize(&[]);
        t.heard(&committed("a")).unwrap();
        t.heard(&committed("b")).unwrap();
        // The second is transcribed first: it waits for the first.
        assert_eq!(t.heard(&completed("b", "world")).unwrap(), Heard::Nothing);
        let both = t.heard(&completed("a", "hello")).unwrap();
        assert_eq!(both, Heard::Final { text: "hello world".into(), end_ms: 400, flushed: true });

        // A first item done before the second commit is answered: not flushed.
        t.audio(&[0xff; 800]);
        t.finalize(&[]);
        t.heard(&committed("c")).unwrap();
        t.finalize(&[]);
        let first = t.heard(&completed("c", "again")).unwrap();
        assert_eq!(first, Heard::Final { text: "again".into(), end_ms: 500, flushed: false });
    }

    #[test]
    fn an_empty_commit_is_nothing_heard_at_once_and_other_errors_are_skipped() {
        let mut t = Transcription::default();
        t.finalize(&[]);
        let empty = event(json!({"type": "error", "event_id": "e", "error": {"type": "invalid_request_error",
            "code": COMMIT_EMPTY, "message": "buffer too small", "param": null, "event_id": null}}));
        assert_eq!(t.heard(&empty).unwrap(), Heard::Final { text: String::new(), end_ms: 0, flushed: true });
        let other = event(json!({"type": "error", "event_id": "e", "error": {"type": "server_error",
            "code": null, "message": "oops"}}));
        assert_eq!(t.heard(&other).unwrap(), Heard::Nothing);
        // A failed transcription answers with no words, not with a wait.
        t.audio(&[0xff; 800]);
        t.finalize(&[]);
        t.heard(&committed("x")).unwrap();
        let failed = event(json!({"type": "conversation.item.input_audio_transcription.failed", "event_id": "e",
            "item_id": "x", "content_index": 0, "error": {"type": "transcription_error", "code": "audio_unintelligible",
            "message": "no"}}));
        assert_eq!(t.heard(&failed).unwrap(), Heard::Final { text: String::new(), end_ms: 100, flushed: true });
    }
}
