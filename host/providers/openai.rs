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
use super::{Llm, Message, Pcm, ProviderError, ProviderSettings, Result, SpeechToText, TextToSpeech, http, wav};

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
        let language = common.language.split(['-', '_']).next().unwrap_or("en").to_lowercase();
        OpenAi { client, settings, language, timeout: common.request_timeout }
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
        delta: &'a mut (dyn FnMut(&str) + Send),
    ) -> BoxFuture<'a, Result<()>> {
        async move {
            let body = chat_body(&self.settings.llm_model, messages);
            let response = http::send(self.post("/chat/completions").json(&body), self.timeout).await?;
            chat_stream(response, self.timeout, delta).await
        }
        .boxed()
    }
}

/// The body of a streamed chat completion request.
pub fn chat_body(model: &str, messages: &[Message]) -> serde_json::Value {
    let messages: Vec<_> = messages.iter().map(|m| json!({ "role": m.role.as_str(), "content": m.content })).collect();
    json!({ "model": model, "messages": messages, "stream": true })
}

/// Reads a streamed chat completion (server-sent events), for OpenAI and
/// for the OpenAI-compatible endpoints of other vendors.
pub async fn chat_stream(
    response: reqwest::Response,
    timeout: Duration,
    delta: &mut (dyn FnMut(&str) + Send),
) -> Result<()> {
    let mut events = response.bytes_stream().eventsource();
    let mut finished = false;
    while let Some(event) = events.next().await {
        let event = event.map_err(|e| match e {
            eventsource_stream::EventStreamError::Transport(e) => ProviderError::from_reqwest(e, timeout),
            other => ProviderError::Protocol(format!("server-sent events: {other}")),
        })?;
        let data = event.data.trim();
        if data == "[DONE]" {
            return Ok(());
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
            if let Some(text) = choice.delta.and_then(|d| d.content).filter(|t| !t.is_empty()) {
                delta(&text);
            }
            finished |= choice.finish_reason.is_some();
        }
    }
    // Some compatible servers end with a finish reason and no `[DONE]`.
    if finished { Ok(()) } else { Err(ProviderError::Stream("chat stream ended before it finished".into())) }
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

    #[test]
    fn upsampling_doubles_the_length() {
        let pcm = Pcm { samples: vec![1000; 8000], rate: 8000 };
        let out = to_rate(&pcm, 16_000);
        assert!((out.len() as i64 - 16_000).abs() <= 2, "{}", out.len());
    }
}
