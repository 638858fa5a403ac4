//! Deepgram's live transcription (`/v1/listen`) over a real WebSocket: it
//! checks the handshake as Deepgram does (a `Token` key, μ-law at 8 kHz,
//! interim results), takes binary audio, answers with interim `Results`
//! while it hears voice and with a final one (`from_finalize`) on each
//! `Finalize`, and can be told to answer slowly or drop the socket. With
//! `endpointing` it also finds endpoints as Deepgram does: that much quiet
//! after voice, and the words so far come as a final (`speech_final`).
//!
//! It cannot recognize speech: each utterance's words come from
//! `Behavior::transcripts`, revealed word by word as voiced audio arrives.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hotline_audio::ulaw;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::server::Request;

use super::{WsMock, WsState};

pub const KEY: &str = "test-deepgram-key";
/// Interim results come every this much voiced audio.
const INTERIM_EVERY_BYTES: usize = 4000;

pub struct Behavior {
    /// The words of each utterance, in order; then `default_transcript`.
    pub transcripts: VecDeque<String>,
    pub default_transcript: String,
    /// Before the answer to a `Finalize`.
    pub finalize_delay: Duration,
    /// The next connection breaks (no close frame) once it has this many bytes of audio.
    pub drop_after_bytes: Option<usize>,
    /// Deepgram's own endpointing: after this much quiet audio following
    /// voice, the utterance's words come as a final without a `Finalize`.
    pub endpointing: Option<Duration>,
}

impl Default for Behavior {
    fn default() -> Self {
        Behavior {
            transcripts: VecDeque::new(),
            default_transcript: "what is the weather like today".into(),
            finalize_delay: Duration::from_millis(20),
            drop_after_bytes: None,
            endpointing: None,
        }
    }
}

/// One WebSocket connection as the stand-in saw it.
#[derive(Debug, Clone, Default)]
pub struct Connection {
    pub audio_bytes: usize,
    pub finalizes: usize,
    pub keep_alives: usize,
    /// The client said `CloseStream` or sent a close frame.
    pub closed_cleanly: bool,
}

type State = WsState<Behavior, Connection>;
pub type DeepgramMock = WsMock<Behavior, Connection>;

impl DeepgramMock {
    pub async fn start() -> DeepgramMock {
        WsMock::listen("/v1/listen", serve).await
    }

    /// With an LLM and a TTS from elsewhere (`env` of the OpenAI stand-in).
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("HOTLINE_STT", "deepgram".into()),
            ("DEEPGRAM_API_KEY", KEY.into()),
            ("HOTLINE_DEEPGRAM_URL", self.url.clone()),
        ]
    }
}

/// What the handshake must carry, as Deepgram checks it.
fn check(request: &Request) -> Result<(), String> {
    let auth = request.headers().get("authorization").and_then(|v| v.to_str().ok());
    if auth != Some(&format!("Token {KEY}")) {
        return Err(format!("authorization {auth:?}"));
    }
    if request.uri().path() != "/v1/listen" {
        return Err(format!("path {}", request.uri().path()));
    }
    let query = request.uri().query().unwrap_or("");
    for needed in ["encoding=mulaw", "sample_rate=8000", "channels=1", "interim_results=true"] {
        if !query.split('&').any(|p| p == needed) {
            return Err(format!("query {query:?} lacks {needed}"));
        }
    }
    Ok(())
}

async fn serve(state: Arc<State>, tcp: tokio::net::TcpStream) {
    let Some((mut ws, index)) = state.accept(tcp, "deepgram", check).await else { return };
    let drop_after = state.behavior.lock().unwrap().drop_after_bytes.take();
    let mut heard = Hearing::default();
    while let Some(Ok(message)) = ws.next().await {
        let update = |f: &dyn Fn(&mut Connection)| f(&mut state.connections.lock().unwrap()[index]);
        match message {
            Message::Binary(audio) => {
                update(&|c| c.audio_bytes += audio.len());
                let total = state.connections.lock().unwrap()[index].audio_bytes;
                if drop_after.is_some_and(|limit| total >= limit) {
                    return; // dropped: no close frame, the TCP connection just ends
                }
                if let Some(results) = heard.audio(&audio, &state) {
                    let _ = ws.send(Message::text(results.to_string())).await;
                }
            }
            Message::Text(text) => {
                let kind = serde_json::from_str::<Value>(text.as_str())
                    .ok()
                    .and_then(|v| v["type"].as_str().map(String::from));
                match kind.as_deref() {
                    Some("Finalize") => {
                        update(&|c| c.finalizes += 1);
                        let delay = state.behavior.lock().unwrap().finalize_delay;
                        tokio::time::sleep(delay).await;
                        let _ = ws.send(Message::text(heard.finalize(true).to_string())).await;
                    }
                    Some("KeepAlive") => update(&|c| c.keep_alives += 1),
                    Some("CloseStream") => {
                        update(&|c| c.closed_cleanly = true);
                        let _ = ws.send(Message::text(json!({"type": "Metadata", "duration": 0.0}).to_string())).await;
                        let _ = ws.close(None).await;
                        return;
                    }
                    _ => state.log.violations.lock().unwrap().push(format!("deepgram: unknown message {text}")),
                }
            }
            Message::Close(_) => {
                update(&|c| c.closed_cleanly = true);
                return;
            }
            _ => {}
        }
    }
}

/// The stand-in's "recognition": voiced audio reveals the utterance's words.
#[derive(Default)]
struct Hearing {
    /// Audio bytes of this connection, and where the last final ended.
    bytes: usize,
    final_end: usize,
    voiced: usize,
    /// Quiet bytes since the last voiced audio.
    quiet: usize,
    words: Option<Vec<String>>,
}

impl Hearing {
    /// Interim results while voice comes; with endpointing, a final once
    /// enough quiet follows it.
    fn audio(&mut self, ulaw_bytes: &[u8], state: &State) -> Option<Value> {
        self.bytes += ulaw_bytes.len();
        let loud = ulaw_bytes.iter().map(|&b| (ulaw::decode(b) as i32).abs()).max().unwrap_or(0) > 1000;
        if !loud {
            self.quiet += ulaw_bytes.len();
            let endpointing = state.behavior.lock().unwrap().endpointing?;
            let endpoint_bytes = endpointing.as_millis() as usize * 8;
            let at_endpoint = self.quiet >= endpoint_bytes && self.quiet - ulaw_bytes.len() < endpoint_bytes;
            return (at_endpoint && self.words.is_some()).then(|| self.finalize(false));
        }
        self.quiet = 0;
        self.voiced += ulaw_bytes.len();
        let words = self.words.get_or_insert_with(|| {
            let mut b = state.behavior.lock().unwrap();
            let text = b.transcripts.pop_front().unwrap_or_else(|| b.default_transcript.clone());
            text.split_whitespace().map(String::from).collect()
        });
        if self.voiced % INTERIM_EVERY_BYTES >= ulaw_bytes.len() {
            return None;
        }
        let shown = words[..(self.voiced / INTERIM_EVERY_BYTES).min(words.len())].join(" ");
        Some(self.results(shown, false))
    }

    /// The words heard so far, final: flushed (the answer to `Finalize`) or
    /// at an endpoint the stand-in found itself.
    fn finalize(&mut self, flushed: bool) -> Value {
        let text = self.words.take().map(|w| w.join(" ")).unwrap_or_default();
        self.voiced = 0;
        let mut results = self.results(text, true);
        results["from_finalize"] = flushed.into();
        self.final_end = self.bytes;
        results
    }

    fn results(&self, transcript: String, is_final: bool) -> Value {
        let start = self.final_end as f64 / 8000.0;
        let duration = (self.bytes - self.final_end) as f64 / 8000.0;
        json!({
            "type": "Results",
            "channel_index": [0, 1],
            "duration": duration,
            "start": start,
            "is_final": is_final,
            "speech_final": is_final,
            "from_finalize": is_final,
            "channel": { "alternatives": [{ "transcript": transcript, "confidence": 0.98, "words": [] }] },
            "metadata": { "request_id": "mock", "model_info": { "name": "nova-3" } }
        })
    }
}
