//! OpenAI's Realtime API as a speech-to-speech agent (`/v1/realtime?model=…`)
//! over a real WebSocket, in the GA shapes. It checks the handshake (the
//! OpenAI stand-in's key, a model) and every client event it knows
//! (a `session.update` of a `realtime` session with `audio/pcmu` both ways
//! and `turn_detection: null`; appends of base64; a truncate inside the
//! audio the item had), records them all, and answers as the API does:
//!
//! - a commit: `input_audio_buffer.committed`, then (later) the caller's
//!   words as `conversation.item.input_audio_transcription.completed`; a
//!   commit of less than 100 ms gets `input_audio_buffer_commit_empty`;
//! - `response.create`: `response.created`, after `first_audio` the
//!   assistant item with its audio as `response.output_audio.delta`s (20 ms
//!   of μ-law each, every `delta_every`) and its words as
//!   `response.output_audio_transcript.delta`s alongside, then a function
//!   call if the reply has one, then `response.done`. A `response.create`
//!   with its own instructions (the call logic's own words) says what they
//!   quote;
//! - `response.cancel`: the response stops and ends `cancelled`.
//!
//! It can be told to drop the socket (after a number of responses, or in
//! the middle of one) and to answer a `response.create` with an `error`.
//! It cannot understand speech: replies come from `Behavior::replies`,
//! then `default_reply`.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use futures_util::{SinkExt, StreamExt};
use hotline_audio::ulaw;
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::Request;

use super::openai::KEY;
use super::{WsMock, WsState};

/// μ-law bytes in one audio delta: 20 ms.
pub const DELTA_BYTES: usize = 160;
const MIN_COMMIT_BYTES: usize = 800;

#[derive(Debug, Clone)]
pub struct Reply {
    /// What the reply says (its transcript); empty: no audio.
    pub text: String,
    pub audio_ms: u64,
    /// A function call after the audio: (name, arguments).
    pub call: Option<(String, String)>,
}

impl Reply {
    pub fn speech(text: &str, audio_ms: u64) -> Reply {
        Reply { text: text.into(), audio_ms, call: None }
    }
}

pub struct Behavior {
    pub replies: VecDeque<Reply>,
    pub default_reply: Reply,
    /// From `response.create` to the first audio delta.
    pub first_audio: Duration,
    /// Between one 20 ms audio delta and the next.
    pub delta_every: Duration,
    /// The call logic's own words: this long per word.
    pub say_ms_per_word: u64,
    /// From a commit to the caller's words.
    pub transcribe_delay: Duration,
    pub caller_words: String,
    /// The next connection drops (no close frame) right after its Nth `response.done`.
    pub drop_after_responses: Option<usize>,
    /// The next connection drops once it has sent this much of a reply's audio.
    pub drop_mid_reply_after_ms: Option<u64>,
    /// The Nth reply asked for (counted over all connections, from 1; says
    /// are not counted) gets an `error` instead.
    pub error_on_reply: Option<usize>,
}

impl Default for Behavior {
    fn default() -> Self {
        Behavior {
            replies: VecDeque::new(),
            default_reply: Reply::speech("It is sunny today, with a light breeze from the west.", 2000),
            first_audio: Duration::from_millis(50),
            delta_every: Duration::from_millis(10),
            say_ms_per_word: 150,
            transcribe_delay: Duration::from_millis(50),
            caller_words: "what is the weather like today".into(),
            drop_after_responses: None,
            drop_mid_reply_after_ms: None,
            error_on_reply: None,
        }
    }
}

impl Behavior {
    /// The Realtime API's typical pace: about half a second from the
    /// request to the first audio, audio generated about twice as fast as
    /// it plays, the caller's words a little after the commit.
    #[allow(dead_code)] // the benchmark's
    pub fn realistic(&mut self) {
        self.first_audio = Duration::from_millis(500);
        self.delta_every = Duration::from_millis(10);
        self.transcribe_delay = Duration::from_millis(300);
    }
}

/// A response as the stand-in gave it.
#[derive(Debug, Clone, Default)]
pub struct Given {
    /// The instructions of a `response.create` that had its own (a say).
    pub said: Option<String>,
    pub item_id: String,
    pub text: String,
    /// The μ-law it sent.
    pub audio: Vec<u8>,
    pub status: String,
}

/// One WebSocket connection as the stand-in saw it.
#[derive(Debug, Clone, Default)]
pub struct Connection {
    /// Every client event, in order (appends' audio replaced by its length).
    pub events: Vec<Value>,
    /// The newest `session.update`'s session.
    pub session: Option<Value>,
    /// The audio in the buffer at each commit that made an item.
    pub commits: Vec<usize>,
    pub responses: Vec<Given>,
    pub closed_cleanly: bool,
}

impl Connection {
    pub fn of_type(&self, kind: &str) -> Vec<Value> {
        self.events.iter().filter(|e| e["type"] == kind).cloned().collect()
    }
}

#[derive(Default)]
pub struct Counts {
    replies: usize,
}

type State = WsState<(Behavior, Counts), Connection>;
pub type RealtimeAgentMock = WsMock<(Behavior, Counts), Connection>;

impl RealtimeAgentMock {
    pub async fn start() -> RealtimeAgentMock {
        WsMock::listen("/v1/realtime", serve).await
    }

    pub fn set(&self, f: impl FnOnce(&mut Behavior)) {
        self.behave(|(b, _)| f(b));
    }

    /// The server's settings for the realtime agent against this stand-in.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("HOTLINE_AGENT", "realtime".into()),
            ("OPENAI_API_KEY", KEY.into()),
            ("HOTLINE_OPENAI_REALTIME_URL", self.url.clone()),
        ]
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
    if !query.split('&').any(|p| p.strip_prefix("model=").is_some_and(|m| !m.is_empty())) {
        return Err(format!("query {query:?} names no model"));
    }
    Ok(())
}

/// What the API would refuse in a realtime session's `session.update`.
fn check_session(update: &Value) -> Result<(), String> {
    let session = &update["session"];
    if session["type"] != "realtime" {
        return Err(format!("session.type {}", session["type"]));
    }
    for side in ["input", "output"] {
        if session["audio"][side]["format"]["type"] != "audio/pcmu" {
            return Err(format!("audio.{side}.format {}", session["audio"][side]["format"]));
        }
    }
    if !session["audio"]["input"].get("turn_detection").is_some_and(Value::is_null) {
        return Err(format!("audio.input.turn_detection {:?}", session["audio"]["input"].get("turn_detection")));
    }
    if session["output_modalities"] != json!(["audio"]) {
        return Err(format!("output_modalities {}", session["output_modalities"]));
    }
    for tool in session["tools"].as_array().into_iter().flatten() {
        if tool["type"] != "function" || !tool["parameters"].is_object() || !tool["name"].is_string() {
            return Err(format!("tool {tool}"));
        }
    }
    Ok(())
}

/// A reply's audio: a rising tone, so each stretch of it is unique and
/// can be found in what the caller heard.
pub fn reply_audio(ms: u64, seed: usize) -> Vec<u8> {
    let n = (ms * 8) as usize;
    let mut phase = 0.0f64;
    (0..n)
        .map(|i| {
            let f = 300.0 + 50.0 * seed as f64 + i as f64 / 40.0;
            phase += 2.0 * std::f64::consts::PI * f / 8000.0;
            ulaw::encode((phase.sin() * 6000.0) as i16)
        })
        .collect()
}

async fn serve(state: Arc<State>, tcp: tokio::net::TcpStream) {
    let Some((ws, index)) = state.accept(tcp, "realtime-agent", check).await else { return };
    let (mut sink, mut stream) = ws.split();
    let violation = |why: String| state.log.violations.lock().unwrap().push(format!("realtime-agent: {why}"));
    let update = |f: &mut dyn FnMut(&mut Connection)| f(&mut state.connections.lock().unwrap()[index]);

    // One writer: responses stream while client events keep coming.
    let (out, mut outgoing) = mpsc::unbounded_channel::<Value>();
    let writer = tokio::spawn(async move {
        let mut n = 0u64;
        while let Some(mut value) = outgoing.recv().await {
            n += 1;
            value["event_id"] = json!(format!("event_{index}_{n}"));
            if sink.send(Message::text(value.to_string())).await.is_err() {
                return;
            }
        }
    });
    let _ = out.send(json!({"type": "session.created", "session": {"type": "realtime", "id": "sess_mock"}}));
    let (drop_after, drop_mid) = {
        let mut b = state.behavior.lock().unwrap();
        (b.0.drop_after_responses.take(), b.0.drop_mid_reply_after_ms.take())
    };
    // The response in progress: its cancel switch; and when one ends, the
    // reader hears of it (`finished`).
    let mut active: Option<watch::Sender<bool>> = None;
    let (finished_tx, mut finished) = mpsc::unbounded_channel::<Result<Given, ()>>();
    let (mut buffer, mut items, mut responses_done) = (0usize, 0usize, 0usize);
    let mut call_ids: Vec<String> = Vec::new();
    let mut item_audio: Vec<(String, usize)> = Vec::new();
    let mut made_items: Vec<String> = Vec::new();
    loop {
        let message = tokio::select! {
            message = stream.next() => message,
            done = finished.recv() => {
                active = None;
                match done {
                    Some(Ok(given)) => {
                        responses_done += 1;
                        item_audio.push((given.item_id.clone(), given.audio.len()));
                        update(&mut |c| c.responses.push(given.clone()));
                        if drop_after.is_some_and(|n| responses_done >= n) {
                            writer.abort();
                            return; // dropped: no close frame
                        }
                    }
                    // Dropped in the middle of a reply.
                    _ => {
                        writer.abort();
                        return;
                    }
                }
                continue;
            }
        };
        let Some(Ok(message)) = message else { break };
        let text = match message {
            Message::Text(text) => text,
            Message::Close(_) => {
                update(&mut |c| c.closed_cleanly = true);
                break;
            }
            _ => continue,
        };
        let Ok(event) = serde_json::from_str::<Value>(text.as_str()) else {
            violation(format!("not JSON: {text}"));
            continue;
        };
        let mut kept = event.clone();
        if let Some(audio) = event["audio"].as_str() {
            kept["audio"] = json!(B64.decode(audio).map(|a| a.len()).unwrap_or(0));
        }
        update(&mut |c| c.events.push(kept.clone()));
        let has_session = state.connections.lock().unwrap()[index].session.is_some();
        match event["type"].as_str() {
            Some("session.update") => {
                if let Err(why) = check_session(&event) {
                    violation(why);
                }
                update(&mut |c| c.session = Some(event["session"].clone()));
                let _ = out.send(json!({"type": "session.updated", "session": event["session"]}));
            }
            _ if !has_session => violation(format!("{text} before session.update")),
            Some("input_audio_buffer.append") => match event["audio"].as_str().and_then(|a| B64.decode(a).ok()) {
                Some(audio) => buffer += audio.len(),
                None => violation(format!("append without base64 audio: {text}")),
            },
            Some("input_audio_buffer.clear") => {
                buffer = 0;
                let _ = out.send(json!({"type": "input_audio_buffer.cleared"}));
            }
            Some("input_audio_buffer.commit") => {
                if buffer < MIN_COMMIT_BYTES {
                    let _ = out.send(json!({"type": "error", "error": {"type": "invalid_request_error",
                        "code": "input_audio_buffer_commit_empty", "message": "buffer too small"}}));
                    continue;
                }
                items += 1;
                let item_id = format!("item_in_{index}_{items}");
                update(&mut |c| c.commits.push(buffer));
                buffer = 0;
                let _ = out.send(json!({"type": "input_audio_buffer.committed", "item_id": item_id}));
                let (delay, words) = {
                    let b = state.behavior.lock().unwrap();
                    (b.0.transcribe_delay, b.0.caller_words.clone())
                };
                let out = out.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    let _ = out.send(json!({"type": "conversation.item.input_audio_transcription.completed",
                        "item_id": item_id, "content_index": 0, "transcript": words}));
                });
            }
            Some("conversation.item.create") => {
                let item = &event["item"];
                match item["type"].as_str() {
                    Some("function_call_output") => {
                        let id = item["call_id"].as_str().unwrap_or("");
                        if !call_ids.iter().any(|c| c == id) {
                            violation(format!("function_call_output for unknown call {id:?}"));
                        }
                    }
                    Some("message") => {
                        let kind = item["content"][0]["type"].as_str().unwrap_or("");
                        let ok = match item["role"].as_str() {
                            Some("user") => kind == "input_text",
                            Some("assistant") => kind == "output_text",
                            _ => false,
                        };
                        if !ok {
                            violation(format!("message item {item}"));
                        }
                    }
                    _ => violation(format!("item {item}")),
                }
                let _ = out.send(json!({"type": "conversation.item.added", "item": item}));
            }
            Some("response.create") => {
                if active.is_some() {
                    let _ = out.send(json!({"type": "error", "error": {"type": "invalid_request_error",
                        "code": "conversation_already_has_active_response", "message": "busy"}}));
                    violation("response.create while a response is active".into());
                    continue;
                }
                let said = event["response"]["instructions"].as_str().map(str::to_string);
                let (reply, behavior) = {
                    let mut b = state.behavior.lock().unwrap();
                    let (behavior, counts) = &mut *b;
                    let reply = match &said {
                        Some(instructions) => {
                            let words = instructions.rsplit(": ").next().unwrap_or("").to_string();
                            let ms = behavior.say_ms_per_word * words.split_whitespace().count().max(1) as u64;
                            Some(Reply::speech(&words, ms))
                        }
                        None => {
                            counts.replies += 1;
                            if behavior.error_on_reply == Some(counts.replies) {
                                None
                            } else {
                                Some(behavior.replies.pop_front().unwrap_or_else(|| behavior.default_reply.clone()))
                            }
                        }
                    };
                    (reply, (behavior.first_audio, behavior.delta_every))
                };
                let Some(reply) = reply else {
                    let _ = out.send(json!({"type": "error", "error": {"type": "server_error",
                        "code": "mock_error", "message": "The stand-in was told to fail this one."}}));
                    continue;
                };
                if let Some((_, _)) = &reply.call {
                    call_ids.push(format!("call_{index}_{}", call_ids.len() + 1));
                }
                let (cancel, cancelled) = watch::channel(false);
                active = Some(cancel);
                let n = state.connections.lock().unwrap()[index].responses.len() + 1;
                made_items.push(format!("item_out_{index}_{n}"));
                let call_id = call_ids.last().cloned().unwrap_or_default();
                tokio::spawn(respond(
                    out.clone(),
                    finished_tx.clone(),
                    cancelled,
                    Response { index, n, said, reply, call_id, timing: behavior, drop_mid },
                ));
            }
            Some("response.cancel") => match active.take() {
                Some(cancel) => {
                    let _ = cancel.send(true);
                }
                None => {
                    let _ = out.send(json!({"type": "error", "error": {"type": "invalid_request_error",
                        "code": "response_cancel_not_active", "message": "no active response"}}));
                }
            },
            Some("conversation.item.truncate") => {
                let id = event["item_id"].as_str().unwrap_or("");
                let end = event["audio_end_ms"].as_u64();
                // The item's audio so far: a response still streaming counts what it sent.
                let had = item_audio.iter().find(|(i, _)| i == id).map(|(_, n)| *n);
                match (end, had) {
                    _ if !made_items.iter().any(|i| i == id) => violation(format!("truncate of unknown item {id:?}")),
                    (None, _) => violation(format!("truncate without audio_end_ms: {text}")),
                    (Some(end), Some(bytes)) if end * 8 > bytes as u64 => {
                        violation(format!("truncate at {end} ms of {} ms", bytes / 8));
                        let _ = out.send(json!({"type": "error", "error": {"type": "invalid_request_error",
                            "code": "invalid_value", "message": "audio_end_ms is longer than the audio"}}));
                    }
                    _ => {
                        let _ = out.send(json!({"type": "conversation.item.truncated", "item_id": id,
                            "content_index": 0, "audio_end_ms": end}));
                    }
                }
            }
            _ => violation(format!("unknown event {text}")),
        }
    }
    if let Some(cancel) = active.take() {
        let _ = cancel.send(true);
    }
    drop(out);
    let _ = writer.await;
}

struct Response {
    index: usize,
    n: usize,
    said: Option<String>,
    reply: Reply,
    call_id: String,
    timing: (Duration, Duration),
    drop_mid: Option<u64>,
}

/// Sleeps `d`; true if the response was cancelled meanwhile.
async fn wait(d: Duration, cancelled: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => false,
        _ = cancelled.wait_for(|&v| v) => true,
    }
}

/// Streams one response; ends it `cancelled` when told to stop.
async fn respond(
    out: mpsc::UnboundedSender<Value>,
    finished: mpsc::UnboundedSender<Result<Given, ()>>,
    mut cancelled: watch::Receiver<bool>,
    r: Response,
) {
    let response_id = format!("resp_{}_{}", r.index, r.n);
    let item_id = format!("item_out_{}_{}", r.index, r.n);
    let (first_audio, delta_every) = r.timing;
    let mut given = Given { said: r.said.clone(), item_id: item_id.clone(), ..Given::default() };
    let _ = out.send(json!({"type": "response.created", "response": {"id": response_id, "status": "in_progress"}}));
    let mut stopped = wait(first_audio, &mut cancelled).await;
    if !stopped && !r.reply.text.is_empty() {
        let audio = reply_audio(r.reply.audio_ms, r.n + 10 * r.index);
        let _ = out.send(json!({"type": "response.output_item.added", "response_id": response_id, "output_index": 0,
            "item": {"id": item_id, "type": "message", "role": "assistant", "status": "in_progress", "content": []}}));
        let _ = out.send(json!({"type": "response.content_part.added", "response_id": response_id,
            "item_id": item_id, "output_index": 0, "content_index": 0, "part": {"type": "audio", "transcript": ""}}));
        // The words go alongside the audio, each when its share of it has gone.
        let words: Vec<&str> = r.reply.text.split_whitespace().collect();
        let chunks: Vec<&[u8]> = audio.chunks(DELTA_BYTES).collect();
        let mut said = 0;
        for (i, chunk) in chunks.iter().enumerate() {
            while said < words.len() && said * chunks.len() <= i * words.len() {
                let delta = if said == 0 { words[0].to_string() } else { format!(" {}", words[said]) };
                given.text.push_str(&delta);
                let _ = out.send(json!({"type": "response.output_audio_transcript.delta", "response_id": response_id,
                    "item_id": item_id, "output_index": 0, "content_index": 0, "delta": delta}));
                said += 1;
            }
            let _ = out.send(json!({"type": "response.output_audio.delta", "response_id": response_id,
                "item_id": item_id, "output_index": 0, "content_index": 0, "delta": B64.encode(chunk)}));
            given.audio.extend_from_slice(chunk);
            if r.said.is_none() && r.drop_mid.is_some_and(|ms| given.audio.len() as u64 >= ms * 8) {
                let _ = finished.send(Err(()));
                return;
            }
            if wait(delta_every, &mut cancelled).await {
                stopped = true;
                break;
            }
        }
        if !stopped {
            for word in &words[said..] {
                let delta = format!(" {word}");
                given.text.push_str(&delta);
                let _ = out.send(json!({"type": "response.output_audio_transcript.delta", "response_id": response_id,
                    "item_id": item_id, "output_index": 0, "content_index": 0, "delta": delta}));
            }
            let _ = out.send(json!({"type": "response.output_audio.done", "response_id": response_id,
                "item_id": item_id, "output_index": 0, "content_index": 0}));
            let _ = out.send(json!({"type": "response.output_audio_transcript.done", "response_id": response_id,
                "item_id": item_id, "output_index": 0, "content_index": 0, "transcript": given.text}));
        }
    }
    if !stopped && let Some((name, arguments)) = &r.reply.call {
        let _ = out.send(json!({"type": "response.function_call_arguments.done", "response_id": response_id,
            "item_id": format!("{item_id}_call"), "output_index": 1, "call_id": r.call_id, "name": name,
            "arguments": arguments}));
    }
    given.status = if stopped { "cancelled" } else { "completed" }.into();
    let _ = out.send(json!({"type": "response.done", "response": {"id": response_id, "status": given.status,
        "status_details": if stopped { json!({"type": "cancelled", "reason": "client_cancelled"}) } else { Value::Null },
        "output": []}}));
    let _ = finished.send(Ok(given));
}
