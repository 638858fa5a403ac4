//! OpenAI's realtime transcription (`/v1/realtime?intent=transcription`)
//! over a real WebSocket, in the GA shapes: it checks the handshake (the
//! bearer key of the OpenAI stand-in, the intent) and the first message (a
//! `session.update` of a transcription session: `audio/pcmu`, a model,
//! `turn_detection: null`), decodes each `input_audio_buffer.append`'s
//! base64 μ-law and counts it, and answers each `input_audio_buffer.commit`
//! as OpenAI does: `input_audio_buffer.committed` with the new item, then
//! the item's words as `...input_audio_transcription.delta`s and the whole
//! `...completed`; a commit of less than 100 ms of audio gets the
//! `input_audio_buffer_commit_empty` error. It can be told to transcribe
//! slowly or to drop the socket (after some audio, or at a commit).
//!
//! It cannot recognize speech: an item whose audio had voice gets the next
//! of `Behavior::transcripts` (then `default_transcript`), one with none
//! gets no words.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use futures_util::{SinkExt, StreamExt};
use hotline_audio::ulaw;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::Request;

use super::openai::KEY;
use super::{WsMock, WsState};

/// OpenAI commits no less than this much audio (100 ms of μ-law).
const MIN_COMMIT_BYTES: usize = 800;

pub struct Behavior {
    /// The words of each voiced item, in order; then `default_transcript`.
    pub transcripts: VecDeque<String>,
    pub default_transcript: String,
    /// From a commit to the item's first delta.
    pub transcribe_delay: Duration,
    /// Between one delta (a word) and the next, and the last and `completed`.
    pub delta_every: Duration,
    /// The next connection breaks (no close frame) once it has this many bytes of audio.
    pub drop_after_bytes: Option<usize>,
    /// The next connection breaks at its first commit, before answering it.
    pub drop_at_commit: bool,
}

impl Default for Behavior {
    fn default() -> Self {
        Behavior {
            transcripts: VecDeque::new(),
            default_transcript: "what is the weather like today".into(),
            transcribe_delay: Duration::from_millis(20),
            delta_every: Duration::from_millis(5),
            drop_after_bytes: None,
            drop_at_commit: false,
        }
    }
}

/// One WebSocket connection as the stand-in saw it.
#[derive(Debug, Clone, Default)]
pub struct Connection {
    /// The `session.update` it got first, if any.
    pub session: Option<Value>,
    pub audio_bytes: usize,
    pub commits: usize,
    pub empty_commits: usize,
    pub clears: usize,
    /// The audio in the buffer at each commit that made an item.
    pub item_bytes: Vec<usize>,
    /// The words of each item it transcribed.
    pub items: Vec<String>,
    pub closed_cleanly: bool,
}

type State = WsState<Behavior, Connection>;
pub type OpenAiRealtimeMock = WsMock<Behavior, Connection>;

impl OpenAiRealtimeMock {
    pub async fn start() -> OpenAiRealtimeMock {
        WsMock::listen("/v1/realtime", serve).await
    }

    /// With the OpenAI stand-in's `env` (its key, its LLM and TTS).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![("HOTLINE_STT", "openai-realtime".into()), ("HOTLINE_OPENAI_REALTIME_URL", self.url.clone())]
    }
}

fn check(request: &Request) -> Result<(), String> {
    let auth = request.headers().get("authorization").and_then(|v| v.to_str().ok());
    if auth != Some(&format!("Bearer {KEY}")) {
        return Err(format!("authorization {auth:?}"));
    }
    if request.uri().path() != "/v1/realtime" {
        return Err(format!("path {}", request.uri().path()));
    }
    let query = request.uri().query().unwrap_or("");
    if !query.split('&').any(|p| p == "intent=transcription") {
        return Err(format!("query {query:?} lacks intent=transcription"));
    }
    Ok(())
}

/// What OpenAI would refuse in a transcription session's `session.update`.
fn check_session(update: &Value) -> Result<(), String> {
    let session = &update["session"];
    if session["type"] != "transcription" {
        return Err(format!("session.type {}", session["type"]));
    }
    let input = &session["audio"]["input"];
    if input["format"]["type"] != "audio/pcmu" {
        return Err(format!("audio.input.format {}", input["format"]));
    }
    if !input["transcription"]["model"].as_str().is_some_and(|m| m.contains("transcribe") || m == "whisper-1") {
        return Err(format!("audio.input.transcription {}", input["transcription"]));
    }
    // The guest decides where an utterance ends: no server VAD.
    if !input.get("turn_detection").is_some_and(Value::is_null) {
        return Err(format!("audio.input.turn_detection {:?}", input.get("turn_detection")));
    }
    Ok(())
}

async fn serve(state: Arc<State>, tcp: tokio::net::TcpStream) {
    let Some((mut ws, index)) = state.accept(tcp, "openai-realtime", check).await else { return };
    let violation = |why: String| state.log.violations.lock().unwrap().push(format!("openai-realtime: {why}"));
    let update = |f: &dyn Fn(&mut Connection)| f(&mut state.connections.lock().unwrap()[index]);
    let mut events = 0u64;
    let mut event = |value: Value| {
        events += 1;
        let mut value = value;
        value["event_id"] = json!(format!("event_{index}_{events}"));
        Message::text(value.to_string())
    };
    let created = json!({"type": "session.created", "session": {"type": "transcription", "id": "sess_mock"}});
    if ws.send(event(created)).await.is_err() {
        return;
    }
    let (drop_after, drop_at_commit) = {
        let mut b = state.behavior.lock().unwrap();
        (b.drop_after_bytes.take(), std::mem::take(&mut b.drop_at_commit))
    };
    let (mut buffer, mut voiced, mut items) = (0usize, false, 0usize);
    let mut previous_item: Option<String> = None;
    while let Some(Ok(message)) = ws.next().await {
        let text = match message {
            Message::Text(text) => text,
            Message::Close(_) => {
                update(&|c| c.closed_cleanly = true);
                return;
            }
            Message::Binary(_) => {
                violation("binary message".into());
                continue;
            }
            _ => continue,
        };
        let Ok(message) = serde_json::from_str::<Value>(text.as_str()) else {
            violation(format!("not JSON: {text}"));
            continue;
        };
        let session = state.connections.lock().unwrap()[index].session.clone();
        match message["type"].as_str() {
            Some("session.update") => {
                if let Err(why) = check_session(&message) {
                    violation(why);
                }
                let first = session.is_none();
                update(&|c| c.session = Some(message.clone()));
                if first {
                    let _ = ws.send(event(json!({"type": "session.updated", "session": message["session"]}))).await;
                }
            }
            _ if session.is_none() => violation(format!("{text} before session.update")),
            Some("input_audio_buffer.append") => {
                let Some(audio) = message["audio"].as_str().and_then(|a| B64.decode(a).ok()) else {
                    violation(format!("append without base64 audio: {text}"));
                    continue;
                };
                update(&|c| c.audio_bytes += audio.len());
                buffer += audio.len();
                voiced |= audio.iter().any(|&b| (ulaw::decode(b) as i32).abs() > 1000);
                let total = state.connections.lock().unwrap()[index].audio_bytes;
                if drop_after.is_some_and(|limit| total >= limit) {
                    return; // dropped: no close frame, the TCP connection just ends
                }
            }
            Some("input_audio_buffer.commit") => {
                update(&|c| c.commits += 1);
                if drop_at_commit {
                    return;
                }
                if buffer < MIN_COMMIT_BYTES {
                    update(&|c| c.empty_commits += 1);
                    let error = json!({"type": "error", "error": {"type": "invalid_request_error",
                        "code": "input_audio_buffer_commit_empty",
                        "message": format!("Error committing input audio buffer: buffer too small. Expected at least 100ms of audio, but buffer only has {}ms of audio.", buffer / 8),
                        "param": null, "event_id": message["event_id"]}});
                    let _ = ws.send(event(error)).await;
                    continue;
                }
                items += 1;
                let item_id = format!("item_{index}_{items}");
                let words = if voiced {
                    let mut b = state.behavior.lock().unwrap();
                    b.transcripts.pop_front().unwrap_or_else(|| b.default_transcript.clone())
                } else {
                    String::new()
                };
                update(&|c| {
                    c.items.push(words.clone());
                    c.item_bytes.push(buffer);
                });
                (buffer, voiced) = (0, false);
                let committed = json!({"type": "input_audio_buffer.committed",
                    "previous_item_id": previous_item, "item_id": item_id});
                previous_item = Some(item_id.clone());
                if ws.send(event(committed)).await.is_err() {
                    return;
                }
                let (delay, every) = {
                    let b = state.behavior.lock().unwrap();
                    (b.transcribe_delay, b.delta_every)
                };
                tokio::time::sleep(delay).await;
                // Deltas are increments: each word with the space before it.
                for (i, word) in words.split_whitespace().enumerate() {
                    let delta = if i == 0 { word.to_string() } else { format!(" {word}") };
                    let delta = json!({"type": "conversation.item.input_audio_transcription.delta",
                        "item_id": item_id, "content_index": 0, "delta": delta});
                    if ws.send(event(delta)).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(every).await;
                }
                let completed = json!({"type": "conversation.item.input_audio_transcription.completed",
                    "item_id": item_id, "content_index": 0, "transcript": words,
                    "usage": {"type": "duration", "seconds": 1}});
                if ws.send(event(completed)).await.is_err() {
                    return;
                }
            }
            Some("input_audio_buffer.clear") => {
                update(&|c| c.clears += 1);
                (buffer, voiced) = (0, false);
                let _ = ws.send(event(json!({"type": "input_audio_buffer.cleared"}))).await;
            }
            _ => violation(format!("unknown message {text}")),
        }
    }
}
