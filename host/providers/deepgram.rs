//! Deepgram's live transcription (`/v1/listen` over a WebSocket): the
//! call's μ-law goes in as is (binary frames, `encoding=mulaw`, 8 kHz),
//! interim and final `Results` come back; `Finalize` flushes what was sent.
//! Endpointing stays the guest's: Deepgram's own (`endpointing`) only
//! decides where its final segments fall.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use serde::Deserialize;
use tokio_tungstenite::tungstenite::Message;

use super::settings::DeepgramSettings;
use super::streaming::{self, Heard, Protocol, Socket, StreamingStt};
use super::{ProviderError, ProviderSettings, Result};

pub struct Deepgram {
    settings: DeepgramSettings,
    providers: ProviderSettings,
    tls: Arc<rustls::ClientConfig>,
}

impl Deepgram {
    /// Fails on a CA file it cannot read (as the HTTP client does).
    pub fn new(settings: DeepgramSettings, providers: &ProviderSettings) -> Result<Deepgram> {
        let tls = streaming::tls_config(providers)?;
        Ok(Deepgram { settings, providers: providers.clone(), tls })
    }

    fn url(&self) -> String {
        let query: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("model", &self.settings.model)
            .append_pair("language", &self.providers.language)
            .append_pair("encoding", "mulaw")
            .append_pair("sample_rate", "8000")
            .append_pair("channels", "1")
            .append_pair("interim_results", "true")
            .append_pair("punctuate", "true")
            .append_pair("smart_format", "true")
            .finish();
        format!("{}?{query}", self.settings.url)
    }
}

impl StreamingStt for Deepgram {
    fn name(&self) -> &'static str {
        "deepgram"
    }

    fn connect(&self) -> BoxFuture<'_, Result<(Socket, Box<dyn Protocol>)>> {
        Box::pin(async move {
            let auth = format!("Token {}", self.settings.api_key.expose());
            let request = streaming::request(&self.url(), &[("authorization", &auth)])?;
            let socket = streaming::open(&self.providers, &self.tls, request).await?;
            Ok((socket, Box::new(Live) as Box<dyn Protocol>))
        })
    }
}

/// Deepgram's answers carry their own timing: a connection remembers nothing.
struct Live;

impl Protocol for Live {
    fn audio(&mut self, ulaw: &[u8]) -> Message {
        Message::binary(ulaw.to_vec())
    }

    /// Deepgram has heard all of it, and its finals say where they fall.
    fn finalize(&mut self, _utterance: &[u8]) -> Vec<Message> {
        vec![Message::text(r#"{"type":"Finalize"}"#)]
    }

    fn keep_alive(&mut self) -> Option<Message> {
        Some(Message::text(r#"{"type":"KeepAlive"}"#))
    }

    fn heard(&mut self, text: &str) -> Result<Heard> {
        let message: Incoming =
            serde_json::from_str(text).map_err(|e| ProviderError::Protocol(format!("deepgram message: {e}")))?;
        Ok(match message {
            Incoming::Results { channel, is_final, from_finalize, start, duration } => {
                let text = channel.alternatives.into_iter().next().map(|a| a.transcript).unwrap_or_default();
                if is_final {
                    let end_ms = ((start + duration) * 1000.0).round().max(0.0) as u64;
                    Heard::Final { text, end_ms, flushed: from_finalize }
                } else {
                    Heard::Partial(text)
                }
            }
            Incoming::Other => Heard::Nothing,
        })
    }
}

/// The messages Deepgram sends; only `Results` matter here (`Metadata`,
/// `SpeechStarted` and `UtteranceEnd` are read and skipped).
#[derive(Deserialize)]
#[serde(tag = "type")]
enum Incoming {
    Results {
        channel: Channel,
        #[serde(default)]
        is_final: bool,
        #[serde(default)]
        from_finalize: bool,
        #[serde(default)]
        start: f64,
        #[serde(default)]
        duration: f64,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct Channel {
    alternatives: Vec<Alternative>,
}

#[derive(Deserialize)]
struct Alternative {
    transcript: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use hotline_common::Secret;

    fn deepgram() -> Deepgram {
        let settings = DeepgramSettings {
            url: "wss://api.deepgram.com/v1/listen".into(),
            api_key: Secret::new("k"),
            model: "nova-3".into(),
        };
        let providers = crate::settings::defaults();
        Deepgram::new(settings, &providers).unwrap()
    }

    #[test]
    fn results_become_partials_and_finals_and_the_rest_is_skipped() {
        let mut dg = Live;
        let interim = r#"{"type":"Results","channel_index":[0,1],"duration":1.2,"start":0.5,"is_final":false,
            "speech_final":false,"channel":{"alternatives":[{"transcript":"what time","confidence":0.9,"words":[]}]}}"#;
        assert_eq!(dg.heard(interim).unwrap(), Heard::Partial("what time".into()));
        let last = r#"{"type":"Results","duration":1.5,"start":0.5,"is_final":true,"from_finalize":true,
            "channel":{"alternatives":[{"transcript":"What time is it?","confidence":0.9,"words":[]}]}}"#;
        let expected = Heard::Final { text: "What time is it?".into(), end_ms: 2000, flushed: true };
        assert_eq!(dg.heard(last).unwrap(), expected);
        for other in [r#"{"type":"Metadata","request_id":"x"}"#, r#"{"type":"UtteranceEnd","last_word_end":2.1}"#] {
            assert_eq!(dg.heard(other).unwrap(), Heard::Nothing);
        }
        assert!(matches!(dg.heard("not json"), Err(ProviderError::Protocol(_))));
    }

    #[test]
    fn the_url_asks_for_mulaw_at_8khz_with_interim_results() {
        let url = deepgram().url();
        for part in ["encoding=mulaw", "sample_rate=8000", "channels=1", "interim_results=true", "model=nova-3"] {
            assert!(url.contains(part), "{url} lacks {part}");
        }
        assert!(url.starts_with("wss://api.deepgram.com/v1/listen?"));
    }
}
