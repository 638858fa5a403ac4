//! A stand-in for OpenAI's API (and for OpenAI-compatible chat servers,
//! such as Vertex AI's, which `google.rs` reuses): transcriptions from a
//! multipart WAV upload, chat completions as server-sent events, speech as
//! raw 24 kHz PCM16 streamed in chunks.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use hyper::{Response, StatusCode};
use serde_json::{Value, json};

use super::{Body, Log, Piece, Recorded, bearer, json_response, streamed, tone};

pub const KEY: &str = "sk-test-0123456789abcdef";
pub const STT_MODEL: &str = "gpt-4o-mini-transcribe";
pub const LLM_MODEL: &str = "gpt-4o-mini";
pub const TTS_MODEL: &str = "gpt-4o-mini-tts";
pub const VOICE: &str = "alloy";
pub const TTS_RATE: u32 = 24_000;

/// How the mock behaves; tests change it between and during calls.
pub struct Behavior {
    /// Answers to successive transcriptions; then `default_transcript`.
    pub transcripts: VecDeque<String>,
    pub default_transcript: String,
    /// Replies to successive chat requests (split into words as deltas).
    pub replies: VecDeque<String>,
    /// Tool calls streamed after the text of successive chat requests
    /// (none once empty), as OpenAI streams them.
    pub tool_calls: VecDeque<Vec<MockToolCall>>,
    pub default_reply: String,
    pub llm_first_delay: Duration,
    pub llm_token_delay: Duration,
    /// Break the chat stream after this many deltas.
    pub llm_break_after: Option<usize>,
    /// Status codes for the next transcription requests (then 200).
    pub stt_statuses: VecDeque<u16>,
    /// Delays before answering the next transcription requests.
    pub stt_delays: VecDeque<Duration>,
    /// Speech requests whose input contains this fail with 500.
    pub tts_fail_containing: Option<String>,
    /// Milliseconds of audio per character of input.
    pub tts_ms_per_char: u32,
    /// Pause between 100 ms chunks of audio (100 ms = real time).
    pub tts_chunk_pause: Duration,
    /// Pause before the first chunk of audio (the time to first byte).
    pub tts_first_delay: Duration,
}

impl Default for Behavior {
    fn default() -> Self {
        Behavior {
            transcripts: VecDeque::new(),
            default_transcript: "what is the weather like".into(),
            replies: VecDeque::new(),
            tool_calls: VecDeque::new(),
            default_reply: "It is sunny today. Have a nice day.".into(),
            llm_first_delay: Duration::ZERO,
            llm_token_delay: Duration::ZERO,
            llm_break_after: None,
            stt_statuses: VecDeque::new(),
            stt_delays: VecDeque::new(),
            tts_fail_containing: None,
            tts_ms_per_char: 20,
            tts_chunk_pause: Duration::ZERO,
            tts_first_delay: Duration::ZERO,
        }
    }
}

/// A tool call the stand-in makes: id and name in its first delta, the
/// arguments over several more.
#[derive(Debug, Clone)]
pub struct MockToolCall {
    pub id: String,
    pub name: String,
    pub arguments: String,
}

impl MockToolCall {
    pub fn new(id: &str, name: &str, arguments: &str) -> MockToolCall {
        MockToolCall { id: id.into(), name: name.into(), arguments: arguments.into() }
    }
}

/// What a transcription request carried, decoded.
#[derive(Debug, Clone)]
pub struct Upload {
    pub model: String,
    pub rate: u32,
    pub samples: Vec<i16>,
}

#[derive(Default)]
pub struct State {
    pub log: Arc<Log>,
    pub behavior: Mutex<Behavior>,
    pub uploads: Mutex<Vec<Upload>>,
    /// The `messages` of each chat request.
    pub chats: Mutex<Vec<Vec<(String, String)>>>,
    /// Each chat request's whole body (its `tools`, its tool messages).
    pub chat_bodies: Mutex<Vec<Value>>,
    /// The `input` of each speech request.
    pub speech: Mutex<Vec<String>>,
}

pub struct OpenAiMock {
    pub url: String,
    pub state: Arc<State>,
}

impl OpenAiMock {
    pub async fn start() -> OpenAiMock {
        Self::start_with(None).await
    }

    /// Served over HTTPS with a certificate from a private CA.
    pub async fn start_tls(tls: tokio_rustls::TlsAcceptor) -> OpenAiMock {
        Self::start_with(Some(tls)).await
    }

    async fn start_with(tls: Option<tokio_rustls::TlsAcceptor>) -> OpenAiMock {
        let state = Arc::new(State::default());
        let s = state.clone();
        let scheme = if tls.is_some() { "https" } else { "http" };
        let addr = super::serve(
            move |r| {
                let s = s.clone();
                async move { handle(s, r).await }
            },
            tls,
        )
        .await;
        OpenAiMock { url: format!("{scheme}://{addr}/v1"), state }
    }

    pub fn behave(&self, f: impl FnOnce(&mut Behavior)) {
        f(&mut self.state.behavior.lock().unwrap());
    }

    pub fn log(&self) -> &Log {
        &self.state.log
    }

    /// The environment that points hotline at this mock.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![("OPENAI_API_KEY", KEY.into()), ("OPENAI_BASE_URL", self.url.clone())]
    }
}

async fn handle(state: Arc<State>, r: Recorded) -> Response<Body> {
    state.log.requests.lock().unwrap().push(r.clone());
    if r.path == "/" {
        // The host's root, as hotline's warm-up asks for it: the API has
        // nothing there, with or without a key.
        return json_response(StatusCode::NOT_FOUND, json!({ "error": { "message": "Invalid URL (HEAD /)" } }));
    }
    if bearer(&r).as_deref() != Some(KEY) {
        return state.log.refuse(StatusCode::UNAUTHORIZED, format!("{}: missing or wrong API key", r.path));
    }
    match r.path.as_str() {
        "/v1/audio/transcriptions" => transcription(&state, &r).await,
        "/v1/chat/completions" => {
            if let Ok(body) = serde_json::from_slice(&r.body) {
                state.chat_bodies.lock().unwrap().push(body);
            }
            chat(&state.log, &state.behavior, &state.chats, &r, LLM_MODEL)
        }
        "/v1/audio/speech" => speech(&state, &r),
        other => state.log.refuse(StatusCode::NOT_FOUND, format!("no route {other}")),
    }
}

async fn transcription(state: &State, r: &Recorded) -> Response<Body> {
    let (status, delay) = {
        let mut b = state.behavior.lock().unwrap();
        (b.stt_statuses.pop_front(), b.stt_delays.pop_front())
    };
    if let Some(d) = delay {
        tokio::time::sleep(d).await;
    }
    if let Some(code) = status {
        return json_response(StatusCode::from_u16(code).unwrap(), json!({ "error": { "message": "mock failure" } }));
    }
    let upload = match parse_upload(r).await {
        Ok(u) => u,
        Err(why) => return state.log.refuse(StatusCode::BAD_REQUEST, format!("transcription: {why}")),
    };
    if upload.model != STT_MODEL {
        return state.log.refuse(StatusCode::BAD_REQUEST, format!("transcription model {}", upload.model));
    }
    state.uploads.lock().unwrap().push(upload);
    let text = {
        let mut b = state.behavior.lock().unwrap();
        b.transcripts.pop_front().unwrap_or_else(|| b.default_transcript.clone())
    };
    json_response(StatusCode::OK, json!({ "text": text }))
}

/// The multipart form: `model`, `language`, and `file` as a PCM16 WAV.
async fn parse_upload(r: &Recorded) -> Result<Upload, String> {
    let content_type = r.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    let boundary = multer::parse_boundary(content_type).map_err(|e| format!("content-type {content_type:?}: {e}"))?;
    let body = r.body.clone();
    let stream = futures_util::stream::once(async move { Ok::<Bytes, std::io::Error>(body) });
    let mut form = multer::Multipart::new(stream, boundary);
    let (mut model, mut wav) = (None, None);
    while let Some(field) = form.next_field().await.map_err(|e| e.to_string())? {
        match field.name() {
            Some("model") => model = Some(field.text().await.map_err(|e| e.to_string())?),
            Some("file") => {
                if !field.file_name().is_some_and(|f| f.ends_with(".wav")) {
                    return Err("file has no .wav name".into());
                }
                wav = Some(field.bytes().await.map_err(|e| e.to_string())?);
            }
            _ => {}
        }
    }
    let wav = wav.ok_or("no file")?;
    let reader = hound::WavReader::new(std::io::Cursor::new(wav.to_vec())).map_err(|e| format!("WAV: {e}"))?;
    let spec = reader.spec();
    if spec.channels != 1 || spec.bits_per_sample != 16 || spec.sample_format != hound::SampleFormat::Int {
        return Err(format!("WAV is not PCM16 mono: {spec:?}"));
    }
    let samples = reader.into_samples::<i16>().collect::<Result<Vec<_>, _>>().map_err(|e| format!("WAV data: {e}"))?;
    Ok(Upload { model: model.ok_or("no model")?, rate: spec.sample_rate, samples })
}

/// A streamed chat completion; shared with the Vertex AI stand-in.
pub fn chat(
    log: &Arc<Log>,
    behavior: &Mutex<Behavior>,
    chats: &Mutex<Vec<Vec<(String, String)>>>,
    r: &Recorded,
    model: &str,
) -> Response<Body> {
    let body: Value = match serde_json::from_slice(&r.body) {
        Ok(v) => v,
        Err(e) => return log.refuse(StatusCode::BAD_REQUEST, format!("chat body: {e}")),
    };
    if body["model"] != model || body["stream"] != true {
        return log.refuse(StatusCode::BAD_REQUEST, format!("chat wants model {model} and stream: true, got {body}"));
    }
    let Some(messages) = body["messages"].as_array() else {
        return log.refuse(StatusCode::BAD_REQUEST, "chat without messages".into());
    };
    let messages: Vec<(String, String)> = messages
        .iter()
        .map(|m| (m["role"].as_str().unwrap_or("?").to_string(), m["content"].as_str().unwrap_or("").to_string()))
        .collect();
    if let Err(why) = check_messages(&body) {
        return log.refuse(StatusCode::BAD_REQUEST, format!("chat messages malformed: {why}: {body}"));
    }
    chats.lock().unwrap().push(messages);
    let b = &mut behavior.lock().unwrap();
    let calls = b.tool_calls.pop_front().unwrap_or_default();
    let reply =
        b.replies.pop_front().unwrap_or_else(|| if calls.is_empty() { b.default_reply.clone() } else { String::new() });
    let mut pieces = vec![Piece::Pause(b.llm_first_delay)];
    let words: Vec<String> = reply.split_inclusive(' ').map(str::to_string).collect();
    for (i, word) in words.iter().enumerate() {
        if b.llm_break_after == Some(i) {
            pieces.push(Piece::Break);
            break;
        }
        let chunk = json!({ "object": "chat.completion.chunk", "choices": [{ "index": 0, "delta": { "content": word }, "finish_reason": null }] });
        pieces.push(Piece::Data(Bytes::from(format!("data: {chunk}\n\n"))));
        pieces.push(Piece::Pause(b.llm_token_delay));
    }
    for chunk in tool_call_chunks(&calls) {
        pieces.push(Piece::Data(Bytes::from(format!("data: {chunk}\n\n"))));
    }
    let finish = if calls.is_empty() { "stop" } else { "tool_calls" };
    let last =
        json!({ "object": "chat.completion.chunk", "choices": [{ "index": 0, "delta": {}, "finish_reason": finish }] });
    pieces.push(Piece::Data(Bytes::from(format!("data: {last}\n\ndata: [DONE]\n\n"))));
    streamed(log.clone(), r.path.clone(), "text/event-stream", pieces)
}

/// The rules OpenAI enforces on a conversation with tools: a system
/// message first; text in every message but an assistant's that calls
/// tools; each `tool` message answering a call of the assistant message
/// before it; every call answered before the next non-tool message; and
/// tools declared as functions with an object schema.
fn check_messages(body: &Value) -> Result<(), String> {
    let messages = body["messages"].as_array().ok_or("no messages")?;
    if messages.first().and_then(|m| m["role"].as_str()) != Some("system") {
        return Err("the first message is not the system prompt".into());
    }
    let mut open: Vec<String> = Vec::new();
    for m in messages {
        let role = m["role"].as_str().unwrap_or("?");
        let text = m["content"].as_str().unwrap_or("");
        if role == "tool" {
            let id = m["tool_call_id"].as_str().ok_or("a tool message without tool_call_id")?;
            let pos = open.iter().position(|o| o == id).ok_or(format!("tool result for {id}, not an open call"))?;
            open.remove(pos);
            continue;
        }
        if !open.is_empty() {
            return Err(format!("calls {open:?} unanswered before a {role} message"));
        }
        match m["tool_calls"].as_array() {
            Some(calls) if role == "assistant" => {
                for c in calls {
                    if c["type"] != "function" || !c["function"]["name"].is_string() {
                        return Err(format!("bad tool call {c}"));
                    }
                    open.push(c["id"].as_str().ok_or("a tool call without id")?.to_string());
                }
            }
            _ if text.is_empty() => return Err(format!("an empty {role} message")),
            _ => {}
        }
    }
    if !open.is_empty() {
        return Err(format!("calls {open:?} unanswered"));
    }
    for tool in body["tools"].as_array().into_iter().flatten() {
        if tool["type"] != "function" || !tool["function"]["parameters"].is_object() {
            return Err(format!("bad tool {tool}"));
        }
    }
    Ok(())
}

/// The calls as OpenAI streams them: per call, a first delta with its
/// index, id, type and name (arguments empty), then its arguments in
/// pieces of a few characters, calls one after another.
fn tool_call_chunks(calls: &[MockToolCall]) -> Vec<Value> {
    let delta = |tool_call: Value| {
        json!({ "object": "chat.completion.chunk",
                "choices": [{ "index": 0, "delta": { "tool_calls": [tool_call] }, "finish_reason": null }] })
    };
    let mut chunks = Vec::new();
    for (index, call) in calls.iter().enumerate() {
        chunks.push(delta(json!({ "index": index, "id": call.id, "type": "function",
                                  "function": { "name": call.name, "arguments": "" } })));
        let chars: Vec<char> = call.arguments.chars().collect();
        for piece in chars.chunks(3) {
            let piece: String = piece.iter().collect();
            chunks.push(delta(json!({ "index": index, "function": { "arguments": piece } })));
        }
    }
    chunks
}

fn speech(state: &State, r: &Recorded) -> Response<Body> {
    let body: Value = match serde_json::from_slice(&r.body) {
        Ok(v) => v,
        Err(e) => return state.log.refuse(StatusCode::BAD_REQUEST, format!("speech body: {e}")),
    };
    let input = body["input"].as_str().unwrap_or("").to_string();
    if body["model"] != TTS_MODEL || body["voice"] != VOICE || body["response_format"] != "pcm" || input.is_empty() {
        return state.log.refuse(StatusCode::BAD_REQUEST, format!("speech request malformed: {body}"));
    }
    state.speech.lock().unwrap().push(input.clone());
    let b = state.behavior.lock().unwrap();
    if b.tts_fail_containing.as_ref().is_some_and(|f| input.contains(f.as_str())) {
        return json_response(StatusCode::INTERNAL_SERVER_ERROR, json!({ "error": { "message": "mock TTS failure" } }));
    }
    let ms = input.chars().count() as u32 * b.tts_ms_per_char;
    let bytes: Vec<u8> = tone(ms, 440.0, TTS_RATE, 9000.0).iter().flat_map(|s| s.to_le_bytes()).collect();
    // 100 ms chunks plus one byte: every other chunk ends inside a sample,
    // as network chunks do.
    let mut pieces = vec![Piece::Pause(b.tts_first_delay)];
    for chunk in bytes.chunks(TTS_RATE as usize / 10 * 2 + 1) {
        pieces.push(Piece::Data(Bytes::copy_from_slice(chunk)));
        pieces.push(Piece::Pause(b.tts_chunk_pause));
    }
    streamed(state.log.clone(), r.path.clone(), "application/octet-stream", pieces)
}
