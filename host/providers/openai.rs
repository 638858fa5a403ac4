//! OpenAI, and any server that speaks its API (`OPENAI_BASE_URL`):
//! `/audio/transcriptions`, `/chat/completions` streamed as server-sent
//! events, `/audio/speech` as raw 24 kHz PCM16 streamed in chunks.

use std::time::Duration;

use eventsource_stream::Eventsource as _;
use futures_util::future::BoxFuture;
use futures_util::{FutureExt, StreamExt};
use hotline_audio::resample::Resampler;
use reqwest::Client;
use reqwest::multipart::{Form, Part};
use serde::Deserialize;
use serde_json::json;

use super::settings::OpenAiSettings;
use super::{
    Llm, Message, Pcm, ProviderError, ProviderSettings, Result, Role, SpeechToText, TextToSpeech, Tool, ToolCall, http,
    wav,
};

/// What `/audio/transcriptions` is sent: Whisper-family models are trained
/// on 16 kHz, and anything else is resampled to it server-side anyway.
pub const STT_RATE: u32 = 16_000;
/// What `/audio/speech` returns for `response_format: "pcm"`.
pub const TTS_RATE: u32 = 24_000;

pub struct OpenAi {
    client: Client,
    settings: OpenAiSettings,
    /// ISO-639-1 (`en` of `en-US`), as the transcription API wants it.
    language: String,
    timeout: Duration,
}

impl OpenAi {
    pub fn new(client: Client, settings: OpenAiSettings, common: &ProviderSettings) -> OpenAi {
        let language = common.language_code();
        OpenAi { client, settings, language, timeout: common.request_timeout }
    }

    /// Where its requests go (`warm.rs` opens a connection ahead).
    pub fn urls(&self) -> Vec<String> {
        vec![self.settings.base_url.clone()]
    }

    fn post(&self, path: &str) -> reqwest::RequestBuilder {
        let request = self.client.post(format!("{}{path}", self.settings.base_url));
        match &self.settings.api_key {
            Some(key) => request.bearer_auth(key.expose()),
            None => request,
        }
    }
}

impl SpeechToText for OpenAi {
    fn transcribe(&self, utterance: Pcm) -> BoxFuture<'_, Result<String>> {
        async move {
            let wav = wav::pcm16(&to_rate(&utterance, STT_RATE), STT_RATE);
            let file = Part::bytes(wav).file_name("utterance.wav").mime_str("audio/wav").expect("static mime");
            let form = Form::new()
                .part("file", file)
                .text("model", self.settings.stt_model.clone())
                .text("language", self.language.clone())
                .text("response_format", "json");
            let response = http::send(self.post("/audio/transcriptions").multipart(form), self.timeout).await?;
            #[derive(Deserialize)]
            struct Transcription {
                text: String,
            }
            let t: Transcription =
                response.json().await.map_err(|e| ProviderError::Protocol(format!("transcription: {e}")))?;
            Ok(t.text)
        }
        .boxed()
    }
}

impl Llm for OpenAi {
    fn reply<'a>(
        &'a self,
        messages: &'a [Message],
        tools: &'a [Tool],
        delta: &'a mut (dyn FnMut(&str) + Send),
    ) -> BoxFuture<'a, Result<Vec<ToolCall>>> {
        async move {
            let body = chat_body(&self.settings.llm_model, messages, tools)?;
            let response = http::send(self.post("/chat/completions").json(&body), self.timeout).await?;
            chat_stream(response, self.timeout, delta).await
        }
        .boxed()
    }
}

/// The body of a streamed chat completion request. A tool whose schema is
/// not a JSON object is refused here, before anything is sent.
pub fn chat_body(model: &str, messages: &[Message], tools: &[Tool]) -> Result<serde_json::Value> {
    let messages: Vec<_> = messages.iter().map(chat_message).collect();
    let mut body = json!({ "model": model, "messages": messages, "stream": true });
    if !tools.is_empty() {
        body["tools"] = tools.iter().map(chat_tool).collect::<Result<Vec<_>>>()?.into();
    }
    Ok(body)
}

fn chat_message(m: &Message) -> serde_json::Value {
    match m.role {
        Role::Assistant if !m.tool_calls.is_empty() => {
            let calls: Vec<_> = m
                .tool_calls
                .iter()
                .map(|c| json!({ "id": c.id, "type": "function", "function": { "name": c.name, "arguments": c.arguments } }))
                .collect();
            // The API wants null, not "", for an assistant that only called tools.
            let content = if m.content.is_empty() { serde_json::Value::Null } else { m.content.as_str().into() };
            json!({ "role": "assistant", "content": content, "tool_calls": calls })
        }
        Role::Tool => json!({
            "role": "tool",
            "tool_call_id": m.tool_call_id.as_deref().unwrap_or_default(),
            "content": m.content,
        }),
        role => json!({ "role": role.as_str(), "content": m.content }),
    }
}

fn chat_tool(tool: &Tool) -> Result<serde_json::Value> {
    let parameters: serde_json::Value = serde_json::from_str(&tool.parameters)
        .map_err(|e| ProviderError::Request(format!("tool {:?}: parameters are not JSON: {e}", tool.name)))?;
    if !parameters.is_object() {
        return Err(ProviderError::Request(format!("tool {:?}: parameters are not a JSON object", tool.name)));
    }
    Ok(json!({
        "type": "function",
        "function": { "name": tool.name, "description": tool.description, "parameters": parameters },
    }))
}

/// Reads a streamed chat completion (server-sent events), for OpenAI and
/// for the OpenAI-compatible endpoints of other vendors: text goes to
/// `delta` as it comes, tool calls are assembled and returned at the end.
pub async fn chat_stream(
    response: reqwest::Response,
    timeout: Duration,
    delta: &mut (dyn FnMut(&str) + Send),
) -> Result<Vec<ToolCall>> {
    let mut events = response.bytes_stream().eventsource();
    let mut finished = false;
    let mut calls = ToolCalls::default();
    while let Some(event) = events.next().await {
        let event = event.map_err(|e| match e {
            eventsource_stream::EventStreamError::Transport(e) => ProviderError::from_reqwest(e, timeout),
            other => ProviderError::Protocol(format!("server-sent events: {other}")),
        })?;
        let data = event.data.trim();
        if data == "[DONE]" {
            return calls.finish();
        }
        if data.is_empty() {
            continue;
        }
        let chunk: ChatChunk =
            serde_json::from_str(data).map_err(|e| ProviderError::Protocol(format!("chat chunk: {e}")))?;
        if let Some(error) = chunk.error {
            return Err(ProviderError::Protocol(format!("chat stream error: {error}")));
        }
        for choice in chunk.choices {
            if let Some(d) = choice.delta {
                if let Some(text) = d.content.filter(|t| !t.is_empty()) {
                    delta(&text);
                }
                d.tool_calls.into_iter().for_each(|piece| calls.add(piece));
            }
            finished |= choice.finish_reason.is_some();
        }
    }
    // Some compatible servers end with a finish reason and no `[DONE]`.
    if finished { calls.finish() } else { Err(ProviderError::Stream("chat stream ended before it finished".into())) }
}

/// Tool calls as they stream: each is announced by its `index` with its id
/// and name, then its arguments arrive in pieces under the same index.
#[derive(Default)]
struct ToolCalls {
    by_index: std::collections::BTreeMap<u32, ToolCall>,
}

impl ToolCalls {
    fn add(&mut self, piece: ToolCallDelta) {
        let call = self.by_index.entry(piece.index).or_insert_with(|| ToolCall {
            id: String::new(),
            name: String::new(),
            arguments: String::new(),
        });
        if let Some(id) = piece.id.filter(|id| !id.is_empty()) {
            call.id = id;
        }
        if let Some(f) = piece.function {
            // Names come whole in practice; appending also covers a server
            // that splits them.
            call.name.push_str(&f.name.unwrap_or_default());
            call.arguments.push_str(&f.arguments.unwrap_or_default());
        }
    }

    /// The calls in index order; one without an id or a name cannot be
    /// answered, so the reply is refused rather than half delivered.
    fn finish(self) -> Result<Vec<ToolCall>> {
        let calls: Vec<ToolCall> = self.by_index.into_values().collect();
        if let Some(bad) = calls.iter().find(|c| c.id.is_empty() || c.name.is_empty()) {
            return Err(ProviderError::Protocol(format!("tool call without an id or a name: {:?}", bad.name)));
        }
        Ok(calls)
    }
}

#[derive(Deserialize)]
struct ChatChunk {
    #[serde(default)]
    choices: Vec<ChatChoice>,
    error: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct ChatChoice {
    delta: Option<ChatDelta>,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct ChatDelta {
    content: Option<String>,
    #[serde(default)]
    tool_calls: Vec<ToolCallDelta>,
}

#[derive(Deserialize)]
struct ToolCallDelta {
    index: u32,
    id: Option<String>,
    function: Option<FunctionDelta>,
}

#[derive(Deserialize)]
struct FunctionDelta {
    name: Option<String>,
    arguments: Option<String>,
}

impl TextToSpeech for OpenAi {
    fn speak<'a>(&'a self, text: &'a str, audio: &'a mut (dyn FnMut(Pcm) + Send)) -> BoxFuture<'a, Result<()>> {
        async move {
            let body = json!({
                "model": self.settings.tts_model,
                "input": text,
                "voice": self.settings.voice,
                "response_format": "pcm",
            });
            let response = http::send(self.post("/audio/speech").json(&body), self.timeout).await?;
            let mut stream = response.bytes_stream();
            // A chunk may end in the middle of a sample.
            let mut odd: Option<u8> = None;
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| ProviderError::from_reqwest(e, self.timeout))?;
                let samples = pcm16_le(&mut odd, &chunk);
                if !samples.is_empty() {
                    audio(Pcm { samples, rate: TTS_RATE });
                }
            }
            Ok(())
        }
        .boxed()
    }
}

/// Little-endian PCM16 from a byte stream cut anywhere.
fn pcm16_le(odd: &mut Option<u8>, bytes: &[u8]) -> Vec<i16> {
    let mut out = Vec::with_capacity(bytes.len() / 2 + 1);
    let mut rest = bytes;
    if let Some(low) = odd.take() {
        match rest.split_first() {
            Some((&high, tail)) => {
                out.push(i16::from_le_bytes([low, high]));
                rest = tail;
            }
            None => *odd = Some(low),
        }
    }
    let mut pairs = rest.chunks_exact(2);
    out.extend(pairs.by_ref().map(|p| i16::from_le_bytes([p[0], p[1]])));
    if let [last] = pairs.remainder() {
        *odd = Some(*last);
    }
    out
}

/// `pcm` at `rate`, resampled with the same band-limited resampler the
/// guest uses (never a naive sample-rate relabel: that is the "chipmunk or
/// silence" bug).
pub fn to_rate(pcm: &Pcm, rate: u32) -> Vec<i16> {
    if pcm.rate == rate {
        return pcm.samples.clone();
    }
    let mut r = Resampler::new(pcm.rate, rate);
    let mut out = r.process(&pcm.samples);
    out.extend(r.flush());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcm_survives_any_chunking() {
        let samples: Vec<i16> = (0..50).map(|i| (i * 997 - 20_000) as i16).collect();
        let bytes: Vec<u8> = samples.iter().flat_map(|s| s.to_le_bytes()).collect();
        for cut in 1..7 {
            let mut odd = None;
            let got: Vec<i16> = bytes.chunks(cut).flat_map(|c| pcm16_le(&mut odd, c)).collect();
            assert_eq!(got, samples, "chunks of {cut}");
            assert_eq!(odd, None);
        }
    }

    fn piece(index: u32, id: Option<&str>, name: Option<&str>, arguments: &str) -> ToolCallDelta {
        ToolCallDelta {
            index,
            id: id.map(str::to_string),
            function: Some(FunctionDelta { name: name.map(str::to_string), arguments: Some(arguments.to_string()) }),
        }
    }

    #[test]
    fn tool_calls_are_assembled_by_index() {
        let mut calls = ToolCalls::default();
        calls.add(piece(1, Some("c2"), Some("b"), ""));
        calls.add(piece(0, Some("c1"), Some("a"), "{\"x\""));
        calls.add(piece(1, None, None, "{}"));
        calls.add(piece(0, None, None, ":1}"));
        let got = calls.finish().unwrap();
        let want = [("c1", "a", "{\"x\":1}"), ("c2", "b", "{}")].map(|(id, name, arguments)| ToolCall {
            id: id.into(),
            name: name.into(),
            arguments: arguments.into(),
        });
        assert_eq!(got, want);
    }

    #[test]
    fn a_tool_call_without_a_name_is_an_error() {
        let mut calls = ToolCalls::default();
        calls.add(piece(0, Some("c1"), None, "{}"));
        assert!(matches!(calls.finish(), Err(ProviderError::Protocol(_))));
    }

    #[test]
    fn a_tool_schema_that_is_not_an_object_is_refused() {
        let tool = |parameters: &str| Tool { name: "t".into(), description: "d".into(), parameters: parameters.into() };
        for bad in ["[]", "not json", "\"x\""] {
            assert!(matches!(chat_body("m", &[], &[tool(bad)]), Err(ProviderError::Request(_))), "{bad}");
        }
        let body = chat_body("m", &[], &[tool(r#"{"type":"object"}"#)]).unwrap();
        assert_eq!(body["tools"][0]["function"]["parameters"]["type"], "object");
        assert!(chat_body("m", &[], &[]).unwrap().get("tools").is_none());
    }

    #[test]
    fn upsampling_doubles_the_length() {
        let pcm = Pcm { samples: vec![1000; 8000], rate: 8000 };
        let out = to_rate(&pcm, 16_000);
        assert!((out.len() as i64 - 16_000).abs() <= 2, "{}", out.len());
    }
}
