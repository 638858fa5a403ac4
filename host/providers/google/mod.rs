//! Google Cloud: Speech-to-Text `speech:recognize` and Text-to-Speech
//! `text:synthesize`, both in μ-law 8 kHz, the phone's own format (nothing
//! to resample); the LLM through Vertex AI's OpenAI-compatible chat
//! endpoint. Every request carries a service-account access token
//! (`auth.rs`); a 401 drops the token and tries once more with a new one.

mod auth;

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use hotline_audio::ulaw;
use reqwest::{Client, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::openai::{chat_body, chat_stream, to_rate};
use super::settings::{Credentials, GoogleSettings};
use super::{
    Llm, Message, Pcm, ProviderError, ProviderSettings, Result, SpeechToText, TextToSpeech, Tool, ToolCall, http, wav,
};
use auth::{ServiceAccount, TokenSource};

/// The rate of the phone line, which both APIs take and give directly.
const RATE: u32 = 8000;
/// Synthesized audio reaches the guest in pieces of this many samples, so
/// no single guest call converts a whole long sentence.
const CHUNK_SAMPLES: usize = RATE as usize;

pub struct Google {
    client: Client,
    tokens: TokenSource,
    settings: GoogleSettings,
    language: String,
    /// `…/chat/completions` of the OpenAI-compatible endpoint; `None`
    /// when neither the settings nor the credentials say where it is.
    chat_url: Option<String>,
    timeout: Duration,
}

impl Google {
    pub fn new(client: Client, settings: GoogleSettings, common: &ProviderSettings) -> anyhow::Result<Google> {
        let json = match &settings.credentials {
            Credentials::Inline(json) => json.expose().to_string(),
            Credentials::File(path) => std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("GOOGLE_APPLICATION_CREDENTIALS={}: {e}", path.display()))?,
        };
        let account = ServiceAccount::parse(&json)?;
        let tokens = TokenSource::new(client.clone(), &account, common.request_timeout)?;
        let base = match (&settings.llm_url, &account.project_id) {
            (Some(url), _) => Some(url.clone()),
            (None, Some(project)) => Some(format!(
                "https://{loc}-aiplatform.googleapis.com/v1/projects/{project}/locations/{loc}/endpoints/openapi",
                loc = settings.location
            )),
            (None, None) => None,
        };
        Ok(Google {
            client,
            tokens,
            language: common.language.clone(),
            chat_url: base.map(|b| format!("{b}/chat/completions")),
            settings,
            timeout: common.request_timeout,
        })
    }

    /// Where its requests go (`warm.rs` opens a connection ahead; the
    /// token endpoint is warmed by [`Google::warm_token`]).
    pub fn urls(&self) -> Vec<String> {
        let (stt, tts) = (self.settings.stt_url.clone(), self.settings.tts_url.clone());
        [Some(stt), Some(tts), self.chat_url.clone()].into_iter().flatten().collect()
    }

    /// Fetches an access token now if the cached one is due, so a call's
    /// first request does not wait for the token endpoint.
    pub async fn warm_token(&self) -> Result<()> {
        self.tokens.token().await.map(drop)
    }

    /// POSTs JSON with a bearer token, once more with a new token on 401.
    async fn post_json(&self, url: &str, body: &Value) -> Result<Response> {
        let mut refreshed = false;
        loop {
            let token = self.tokens.token().await?;
            let request = self.client.post(url).bearer_auth(token.expose()).json(body);
            match http::send(request, self.timeout).await {
                Err(ProviderError::Status { status: 401, .. }) if !refreshed => {
                    self.tokens.invalidate(&token).await;
                    refreshed = true;
                }
                other => return other,
            }
        }
    }
}

impl SpeechToText for Google {
    fn transcribe(&self, utterance: Pcm) -> BoxFuture<'_, Result<String>> {
        async move {
            let mut mulaw = Vec::new();
            ulaw::encode_into(&to_rate(&utterance, RATE), &mut mulaw);
            let body = json!({
                "config": {
                    "encoding": "MULAW",
                    "sampleRateHertz": RATE,
                    "languageCode": self.language,
                    "model": self.settings.stt_model,
                },
                "audio": { "content": BASE64.encode(&mulaw) },
            });
            let url = format!("{}/v1/speech:recognize", self.settings.stt_url);
            let response = self.post_json(&url, &body).await?;
            #[derive(Deserialize)]
            struct Recognized {
                #[serde(default)]
                results: Vec<RecognitionResult>,
            }
            #[derive(Deserialize)]
            struct RecognitionResult {
                #[serde(default)]
                alternatives: Vec<Alternative>,
            }
            #[derive(Deserialize)]
            struct Alternative {
                #[serde(default)]
                transcript: String,
            }
            let r: Recognized =
                response.json().await.map_err(|e| ProviderError::Protocol(format!("recognize response: {e}")))?;
            let parts: Vec<String> = r
                .results
                .into_iter()
                .filter_map(|r| r.alternatives.into_iter().next())
                .map(|a| a.transcript.trim().to_string())
                .filter(|t| !t.is_empty())
                .collect();
            Ok(parts.join(" "))
        }
        .boxed()
    }
}

impl Llm for Google {
    fn reply<'a>(
        &'a self,
        messages: &'a [Message],
        tools: &'a [Tool],
        delta: &'a mut (dyn FnMut(&str) + Send),
    ) -> BoxFuture<'a, Result<Vec<ToolCall>>> {
        async move {
            let Some(url) = &self.chat_url else {
                return Err(ProviderError::Auth(
                    "the credentials name no project_id; set HOTLINE_GOOGLE_LLM_URL".into(),
                ));
            };
            // A 401 comes with the response head, before any delta: the
            // token retry in `post_json` covers the stream too.
            let response = self.post_json(url, &chat_body(&self.settings.llm_model, messages, tools)?).await?;
            chat_stream(response, self.timeout, delta).await
        }
        .boxed()
    }
}

impl TextToSpeech for Google {
    fn speak<'a>(&'a self, text: &'a str, audio: &'a mut (dyn FnMut(Pcm) + Send)) -> BoxFuture<'a, Result<()>> {
        async move {
            let mut voice = json!({ "languageCode": self.language });
            if let Some(name) = &self.settings.voice {
                voice["name"] = json!(name);
            }
            let body = json!({
                "input": { "text": text },
                "voice": voice,
                "audioConfig": { "audioEncoding": "MULAW", "sampleRateHertz": RATE },
            });
            let url = format!("{}/v1/text:synthesize", self.settings.tts_url);
            let response = self.post_json(&url, &body).await?;
            #[derive(Deserialize)]
            #[serde(rename_all = "camelCase")]
            struct Synthesized {
                audio_content: String,
            }
            let s: Synthesized =
                response.json().await.map_err(|e| ProviderError::Protocol(format!("synthesize response: {e}")))?;
            let bytes = BASE64
                .decode(s.audio_content.as_bytes())
                .map_err(|e| ProviderError::Protocol(format!("audioContent is not base64: {e}")))?;
            let pcm = decode_audio(&bytes)?;
            for chunk in pcm.samples.chunks(CHUNK_SAMPLES) {
                audio(Pcm { samples: chunk.to_vec(), rate: pcm.rate });
            }
            Ok(())
        }
        .boxed()
    }
}

/// Google's MULAW (and LINEAR16) audio comes inside a WAV header; bare
/// μ-law is accepted too.
fn decode_audio(bytes: &[u8]) -> Result<Pcm> {
    if !bytes.starts_with(b"RIFF") {
        let mut samples = Vec::with_capacity(bytes.len());
        ulaw::decode_into(bytes, &mut samples);
        return Ok(Pcm { samples, rate: RATE });
    }
    let w = wav::parse(bytes)?;
    if w.channels != 1 {
        return Err(ProviderError::Protocol(format!("audio has {} channels, expected 1", w.channels)));
    }
    let samples = match (w.format, w.bits) {
        (7, 8) => {
            let mut s = Vec::with_capacity(w.data.len());
            ulaw::decode_into(w.data, &mut s);
            s
        }
        (1, 16) => w.data.chunks_exact(2).map(|p| i16::from_le_bytes([p[0], p[1]])).collect(),
        (format, bits) => {
            return Err(ProviderError::Protocol(format!(
                "audio format {format} with {bits} bits is not μ-law or PCM16"
            )));
        }
    };
    Ok(Pcm { samples, rate: w.rate })
}
