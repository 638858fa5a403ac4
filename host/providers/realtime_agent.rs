//! OpenAI's Realtime API as the whole agent (`HOTLINE_AGENT=realtime`):
//! speech in, speech out, over one WebSocket per call. This file is the
//! wire: how to connect, the session, the client events hotline sends and
//! the server events it reads. What a call does with them (the guest's
//! effects mapped onto them, reconnects) is `media/realtime.rs`.
//!
//! Shapes followed: the GA Realtime API (`session.update` with a session of
//! `type: "realtime"`, its audio under `audio.input` / `audio.output` as
//! `{type: "audio/pcmu"}`, `output_modalities`; server events
//! `response.output_audio.delta`, `response.output_audio_transcript.delta`,
//! `response.function_call_arguments.done`, `response.done`), not the
//! beta's `input_audio_format: "g711_ulaw"` and `response.audio.delta`.
//!
//! μ-law 8 kHz goes in and comes out as it is: Twilio's audio needs no
//! resampling on either side. Server turn detection is off: the guest's
//! endpointer decides when the caller is done, and the host commits then.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use super::realtime_socket::Dialer;
use super::settings::RealtimeAgentSettings;
use super::streaming::Socket;
use super::{ProviderError, ProviderSettings, Result, Role, Tool};

pub struct RealtimeAgent {
    settings: RealtimeAgentSettings,
    /// ISO-639-1, the first part of `HOTLINE_LANGUAGE`, for the caller's transcription.
    language: String,
    dialer: Dialer,
}

impl RealtimeAgent {
    /// Fails on a CA file it cannot read (as the HTTP client does).
    pub fn new(settings: RealtimeAgentSettings, providers: &ProviderSettings) -> Result<RealtimeAgent> {
        let dialer = Dialer::new(providers)?;
        Ok(RealtimeAgent { settings, language: providers.language_code(), dialer })
    }

    pub fn model(&self) -> &str {
        &self.settings.model
    }

    fn url(&self) -> String {
        format!("{}?model={}", self.settings.url, self.settings.model)
    }

    /// Opens one session's socket (the session is configured by the first
    /// `session.update`, which the caller sends).
    pub async fn connect(&self) -> Result<Socket> {
        self.dialer.open(&self.url(), &self.settings.api_key).await
    }

    /// The session: μ-law both ways, no turn detection (commits are ours),
    /// no noise reduction (the line's audio is what the guest heard too),
    /// the caller's words transcribed for the records, the call logic's
    /// system prompt and tools.
    pub fn session_update(&self, instructions: &str, tools: &[Tool]) -> Result<Message> {
        let tools = tools.iter().map(tool).collect::<Result<Vec<_>>>()?;
        let update = json!({
            "type": "session.update",
            "session": {
                "type": "realtime",
                "model": self.settings.model,
                "output_modalities": ["audio"],
                "instructions": instructions,
                "audio": {
                    "input": {
                        "format": { "type": "audio/pcmu" },
                        "transcription": { "model": self.settings.transcription_model, "language": self.language },
                        "turn_detection": null,
                        "noise_reduction": null
                    },
                    "output": {
                        "format": { "type": "audio/pcmu" },
                        "voice": self.settings.voice
                    }
                },
                "tools": tools,
                "tool_choice": "auto"
            }
        });
        Ok(Message::text(update.to_string()))
    }
}

/// A tool as a session offers it; its parameters must be a JSON object.
fn tool(tool: &Tool) -> Result<Value> {
    let parameters: Value = serde_json::from_str(&tool.parameters)
        .map_err(|e| ProviderError::Request(format!("tool {:?}: parameters are not JSON: {e}", tool.name)))?;
    if !parameters.is_object() {
        return Err(ProviderError::Request(format!("tool {:?}: parameters are not a JSON object", tool.name)));
    }
    Ok(json!({ "type": "function", "name": tool.name, "description": tool.description, "parameters": parameters }))
}

/// The client events hotline sends.
pub mod client {
    use super::*;

    fn event(value: Value) -> Message {
        Message::text(value.to_string())
    }

    pub fn clear() -> Message {
        event(json!({ "type": "input_audio_buffer.clear" }))
    }

    pub fn append(ulaw: &[u8]) -> Message {
        event(json!({ "type": "input_audio_buffer.append", "audio": B64.encode(ulaw) }))
    }

    pub fn commit() -> Message {
        event(json!({ "type": "input_audio_buffer.commit" }))
    }

    /// A reply to the conversation so far, as the session is configured.
    pub fn respond() -> Message {
        event(json!({ "type": "response.create" }))
    }

    /// The call logic's own words (a greeting, a goodbye), spoken in the
    /// session's voice and kept in the conversation, so the model knows it
    /// said them. No tools: these words end in nothing but themselves.
    pub fn say(text: &str) -> Message {
        let instructions =
            format!("Say exactly the following words, in the language they are written in, and nothing else: {text}");
        event(json!({
            "type": "response.create",
            "response": { "instructions": instructions, "tool_choice": "none" }
        }))
    }

    pub fn cancel() -> Message {
        event(json!({ "type": "response.cancel" }))
    }

    /// Cuts the model's record of its own speech at what the caller heard.
    pub fn truncate(item_id: &str, content_index: u32, audio_end_ms: u64) -> Message {
        event(json!({
            "type": "conversation.item.truncate",
            "item_id": item_id,
            "content_index": content_index,
            "audio_end_ms": audio_end_ms
        }))
    }

    pub fn function_output(call_id: &str, output: &str) -> Message {
        event(json!({
            "type": "conversation.item.create",
            "item": { "type": "function_call_output", "call_id": call_id, "output": output }
        }))
    }

    /// A turn of the conversation as text: how a new session (after a
    /// dropped socket) learns what was said before it.
    pub fn history(role: Role, text: &str) -> Option<Message> {
        let (role, kind) = match role {
            Role::User => ("user", "input_text"),
            Role::Assistant => ("assistant", "output_text"),
            Role::System | Role::Tool => return None,
        };
        Some(event(json!({
            "type": "conversation.item.create",
            "item": { "type": "message", "role": role, "content": [{ "type": kind, "text": text }] }
        })))
    }
}

/// What one server event says, as far as a call needs it.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerEvent {
    ResponseCreated,
    /// A chunk of the reply's speech: μ-law, decoded from base64.
    Audio {
        item_id: String,
        content_index: u32,
        ulaw: Vec<u8>,
    },
    /// The words of the reply's speech, as they come.
    Transcript {
        delta: String,
    },
    /// The model wants a tool called.
    FunctionCall {
        call_id: String,
        name: String,
        arguments: String,
    },
    /// The response is over: `completed`, `cancelled`, `failed` or
    /// `incomplete`, with the reason of a failure.
    ResponseDone {
        status: String,
        reason: Option<String>,
    },
    /// What the caller said, transcribed (for the records).
    CallerWords {
        transcript: String,
    },
    Error {
        code: String,
        message: String,
    },
    /// Nothing a call needs (session.created, item events, rate limits...).
    Other,
}

/// Reads one text message of the server.
pub fn read(text: &str) -> Result<ServerEvent> {
    let incoming: Incoming =
        serde_json::from_str(text).map_err(|e| ProviderError::Protocol(format!("realtime event: {e}")))?;
    Ok(match incoming {
        Incoming::ResponseCreated => ServerEvent::ResponseCreated,
        Incoming::AudioDelta { item_id, content_index, delta } => {
            let ulaw = B64
                .decode(delta.as_bytes())
                .map_err(|e| ProviderError::Protocol(format!("realtime audio is not base64: {e}")))?;
            ServerEvent::Audio { item_id, content_index, ulaw }
        }
        Incoming::TranscriptDelta { delta } => ServerEvent::Transcript { delta },
        Incoming::FunctionCall { call_id, name, arguments } => ServerEvent::FunctionCall { call_id, name, arguments },
        Incoming::ResponseDone { response } => {
            let reason = response.status_details.as_ref().and_then(|d| {
                let error = d.get("error");
                let said = error.and_then(|e| e.get("message")).or_else(|| d.get("reason"));
                said.and_then(Value::as_str).map(str::to_string)
            });
            ServerEvent::ResponseDone { status: response.status, reason }
        }
        Incoming::CallerWords { transcript } => ServerEvent::CallerWords { transcript },
        Incoming::Error { error } => {
            ServerEvent::Error { code: error.code.unwrap_or_else(|| "none".into()), message: error.message }
        }
        Incoming::Other => ServerEvent::Other,
    })
}

#[derive(Deserialize)]
#[serde(tag = "type")]
enum Incoming {
    #[serde(rename = "response.created")]
    ResponseCreated,
    #[serde(rename = "response.output_audio.delta")]
    AudioDelta {
        item_id: String,
        #[serde(default)]
        content_index: u32,
        delta: String,
    },
    #[serde(rename = "response.output_audio_transcript.delta")]
    TranscriptDelta {
        #[serde(default)]
        delta: String,
    },
    #[serde(rename = "response.function_call_arguments.done")]
    FunctionCall { call_id: String, name: String, arguments: String },
    #[serde(rename = "response.done")]
    ResponseDone { response: ResponseBody },
    #[serde(rename = "conversation.item.input_audio_transcription.completed")]
    CallerWords {
        #[serde(default)]
        transcript: String,
    },
    #[serde(rename = "error")]
    Error { error: ErrorDetail },
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct ResponseBody {
    status: String,
    #[serde(default)]
    status_details: Option<Value>,
}

#[derive(Deserialize)]
struct ErrorDetail {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use hotline_common::Secret;

    fn agent() -> RealtimeAgent {
        let settings = RealtimeAgentSettings {
            url: "wss://api.openai.com/v1/realtime".into(),
            api_key: Secret::new("k"),
            model: "gpt-realtime".into(),
            voice: "marin".into(),
            transcription_model: "gpt-4o-mini-transcribe".into(),
        };
        RealtimeAgent::new(settings, &crate::settings::defaults()).unwrap()
    }

    fn value(message: Message) -> Value {
        serde_json::from_str(message.to_text().unwrap()).unwrap()
    }

    #[test]
    fn the_session_is_mulaw_both_ways_without_turn_detection_with_the_prompt_and_tools() {
        let a = agent();
        assert_eq!(a.url(), "wss://api.openai.com/v1/realtime?model=gpt-realtime");
        let tools =
            [Tool { name: "end_call".into(), description: "d".into(), parameters: r#"{"type":"object"}"#.into() }];
        let update = value(a.session_update("Be brief.", &tools).unwrap());
        assert_eq!(update["type"], "session.update");
        let s = &update["session"];
        assert_eq!((s["type"].as_str(), s["instructions"].as_str()), (Some("realtime"), Some("Be brief.")));
        assert_eq!(s["output_modalities"], json!(["audio"]));
        assert_eq!(s["audio"]["input"]["format"], json!({"type": "audio/pcmu"}));
        assert_eq!(s["audio"]["output"]["format"], json!({"type": "audio/pcmu"}));
        assert_eq!(s["audio"]["output"]["voice"], "marin");
        assert!(s["audio"]["input"].as_object().unwrap().get("turn_detection").is_some_and(Value::is_null));
        assert_eq!(
            s["tools"][0],
            json!({"type": "function", "name": "end_call", "description": "d",
            "parameters": {"type": "object"}})
        );
        let bad = [Tool { name: "t".into(), description: "d".into(), parameters: "[]".into() }];
        assert!(matches!(a.session_update("x", &bad), Err(ProviderError::Request(_))));
    }

    #[test]
    fn client_events_have_the_ga_shapes() {
        assert_eq!(
            value(client::append(&[0xff, 0x7f, 0x00])),
            json!({"type": "input_audio_buffer.append", "audio": "/38A"})
        );
        assert_eq!(
            value(client::truncate("item_1", 0, 1234)),
            json!({"type": "conversation.item.truncate", "item_id": "item_1", "content_index": 0, "audio_end_ms": 1234})
        );
        let output = value(client::function_output("call_1", r#"{"ok":true}"#));
        assert_eq!(
            output["item"],
            json!({"type": "function_call_output", "call_id": "call_1", "output": "{\"ok\":true}"})
        );
        let say = value(client::say("Hello!"));
        assert!(say["response"]["instructions"].as_str().unwrap().ends_with("Hello!"));
        let history = value(client::history(Role::Assistant, "Hi.").unwrap());
        assert_eq!(history["item"]["content"][0], json!({"type": "output_text", "text": "Hi."}));
        assert!(client::history(Role::Tool, "x").is_none());
    }

    #[test]
    fn server_events_are_read_and_the_rest_skipped() {
        let audio = r#"{"type":"response.output_audio.delta","event_id":"e","response_id":"r","item_id":"i","output_index":0,"content_index":0,"delta":"/38A"}"#;
        assert_eq!(
            read(audio).unwrap(),
            ServerEvent::Audio { item_id: "i".into(), content_index: 0, ulaw: vec![0xff, 0x7f, 0x00] }
        );
        let done = r#"{"type":"response.done","response":{"id":"r","status":"failed","status_details":{"type":"failed","error":{"type":"server_error","message":"boom"}},"output":[]}}"#;
        assert_eq!(
            read(done).unwrap(),
            ServerEvent::ResponseDone { status: "failed".into(), reason: Some("boom".into()) }
        );
        let call = r#"{"type":"response.function_call_arguments.done","response_id":"r","item_id":"i","output_index":0,"call_id":"c","name":"end_call","arguments":"{}"}"#;
        assert_eq!(
            read(call).unwrap(),
            ServerEvent::FunctionCall { call_id: "c".into(), name: "end_call".into(), arguments: "{}".into() }
        );
        let error = r#"{"type":"error","error":{"type":"invalid_request_error","code":"x","message":"m"}}"#;
        assert_eq!(read(error).unwrap(), ServerEvent::Error { code: "x".into(), message: "m".into() });
        assert_eq!(read(r#"{"type":"session.updated","session":{}}"#).unwrap(), ServerEvent::Other);
        assert!(matches!(read("not json"), Err(ProviderError::Protocol(_))));
        let bad_audio = r#"{"type":"response.output_audio.delta","item_id":"i","delta":"***"}"#;
        assert!(matches!(read(bad_audio), Err(ProviderError::Protocol(_))));
    }
}
