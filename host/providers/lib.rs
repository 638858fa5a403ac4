//! Outbound speech-to-text, LLM and text-to-speech: each behind a small
//! trait, chosen by environment (`settings.rs`), performed by the host for
//! the guest's `transcribe` / `think` / `speak` effects (see
//! `media/work.rs`, which owns retries, cancellation and timing).
//!
//! Providers know HTTP and their vendor's wire format, nothing about calls:
//! audio goes in as PCM16 with its rate, text and audio come out through a
//! callback as they stream in. Dropping a provider future aborts its
//! request (the connection closes): that is how barge-in cancels.

mod deepgram;
mod error;
mod google;
mod health;
mod http;
pub use http::{install_tls, probe_client};
mod openai;
mod openai_realtime;
pub mod realtime_agent;
mod realtime_socket;
pub mod retry;
pub mod settings;
mod speech_cache;
pub mod streaming;
mod warm;
mod wav;

use std::sync::Arc;

use futures_util::future::BoxFuture;

pub use error::{ErrorClass, ProviderError};
pub use health::{Health, ProviderKind};
pub use settings::{Choice, ProviderSettings};
pub use speech_cache::SpeechCache;
pub use streaming::{Heard, StreamingStt};

pub type Result<T> = std::result::Result<T, ProviderError>;

/// Mono linear PCM16.
#[derive(Debug, Clone)]
pub struct Pcm {
    pub samples: Vec<i16>,
    pub rate: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    System,
    User,
    Assistant,
    /// A tool's result.
    Tool,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Message {
    pub role: Role,
    pub content: String,
    /// An assistant message's tool calls (its content may then be empty).
    pub tool_calls: Vec<ToolCall>,
    /// A tool message: the call it answers.
    pub tool_call_id: Option<String>,
}

/// A tool the LLM may call.
#[derive(Debug, Clone)]
pub struct Tool {
    pub name: String,
    pub description: String,
    /// JSON Schema of the arguments object, as the call logic wrote it.
    pub parameters: String,
}

/// A tool call the LLM made, assembled from its streamed pieces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    /// A JSON object as the LLM wrote it: unchecked.
    pub arguments: String,
}

pub trait SpeechToText: Send + Sync {
    /// The final transcript of one utterance.
    fn transcribe(&self, utterance: Pcm) -> BoxFuture<'_, Result<String>>;
}

pub trait Llm: Send + Sync {
    /// Streams the reply: `delta` is called with each piece of text as it
    /// arrives; the tool calls the model made (of `tools`) come back whole
    /// once the stream ends.
    fn reply<'a>(
        &'a self,
        messages: &'a [Message],
        tools: &'a [Tool],
        delta: &'a mut (dyn FnMut(&str) + Send),
    ) -> BoxFuture<'a, Result<Vec<ToolCall>>>;
}

pub trait TextToSpeech: Send + Sync {
    /// Streams speech for `text`: `audio` is called with each chunk.
    fn speak<'a>(&'a self, text: &'a str, audio: &'a mut (dyn FnMut(Pcm) + Send)) -> BoxFuture<'a, Result<()>>;
}

/// The providers this process has, and how they are doing.
pub struct Providers {
    /// Speech-to-text one utterance at a time...
    pub stt: Option<Arc<dyn SpeechToText>>,
    /// ...or streaming, the call's audio as it arrives (`media/listen.rs`).
    pub listen: Option<Arc<dyn StreamingStt>>,
    pub llm: Option<Arc<dyn Llm>>,
    pub tts: Option<Arc<dyn TextToSpeech>>,
    /// `HOTLINE_AGENT=realtime`: speech to speech, in place of the three
    /// above (`media/realtime.rs`).
    pub realtime: Option<Arc<realtime_agent::RealtimeAgent>>,
    pub health: Health,
    /// Speech of short texts already synthesized (greetings, fillers).
    pub speech_cache: SpeechCache,
    pub settings: ProviderSettings,
    /// The one HTTP client (pool, TLS): Twilio's REST API uses it too.
    pub client: reqwest::Client,
    /// The guests' `fetch` client: the same TLS, no redirects (`http::fetch_client`).
    pub fetch_client: reqwest::Client,
    /// What `warm`/`prepare` make ready ahead of a call (`warm.rs`).
    warmer: warm::Warmer,
}

impl Providers {
    /// Builds the clients `settings` asks for. Reads the Google credentials
    /// (and fails on bad ones) but makes no network call.
    pub fn new(settings: ProviderSettings) -> anyhow::Result<Providers> {
        let client = http::client(&settings)?;
        let fetch_client = http::fetch_client(&settings)?;
        let openai =
            settings.openai.as_ref().map(|o| Arc::new(openai::OpenAi::new(client.clone(), o.clone(), &settings)));
        let google = match &settings.google {
            Some(g) if [settings.stt, settings.llm, settings.tts].contains(&Choice::Google) => {
                Some(Arc::new(google::Google::new(client.clone(), g.clone(), &settings)?))
            }
            _ => None,
        };
        // Each kind is served by the vendor chosen for it (coercions to the trait objects).
        let stt: Option<Arc<dyn SpeechToText>> = match settings.stt {
            Choice::OpenAi => openai.clone().map(|o| o as _),
            Choice::Google => google.clone().map(|g| g as _),
            Choice::Deepgram | Choice::OpenAiRealtime | Choice::None => None,
        };
        let realtime = match &settings.realtime_agent {
            Some(r) => Some(Arc::new(realtime_agent::RealtimeAgent::new(r.clone(), &settings)?)),
            None => None,
        };
        let listen: Option<Arc<dyn StreamingStt>> = match (settings.stt, &settings.deepgram, &settings.openai_realtime)
        {
            // The realtime agent hears the caller itself.
            _ if realtime.is_some() => None,
            (Choice::Deepgram, Some(d), _) => Some(Arc::new(deepgram::Deepgram::new(d.clone(), &settings)?)),
            (Choice::OpenAiRealtime, _, Some(o)) => {
                Some(Arc::new(openai_realtime::OpenAiRealtime::new(o.clone(), &settings)?))
            }
            _ => None,
        };
        let llm: Option<Arc<dyn Llm>> = match settings.llm {
            Choice::OpenAi => openai.clone().map(|o| o as _),
            Choice::Google => google.clone().map(|g| g as _),
            Choice::Deepgram | Choice::OpenAiRealtime | Choice::None => None,
        };
        // The HTTP vendors in use, for the connections opened ahead of a call.
        let kinds = [settings.stt, settings.llm, settings.tts];
        let openai_urls = openai.as_ref().filter(|_| kinds.contains(&Choice::OpenAi)).map(|o| o.urls());
        let urls = openai_urls.into_iter().chain(google.as_ref().map(|g| g.urls())).flatten().collect();
        let warmer = warm::Warmer::new(urls, google.clone(), settings.preopen);
        let tts: Option<Arc<dyn TextToSpeech>> = match settings.tts {
            Choice::OpenAi => openai.map(|o| o as _),
            Choice::Google => google.map(|g| g as _),
            Choice::Deepgram | Choice::OpenAiRealtime | Choice::None => None,
        };
        let health = Health::new([settings.stt, settings.llm, settings.tts]);
        let speech_cache = SpeechCache::new(settings.tts_cache_bytes);
        Ok(Providers { stt, listen, llm, tts, realtime, health, speech_cache, settings, client, fetch_client, warmer })
    }

    /// All three are present: the guest can run the AI path.
    pub fn complete(&self) -> bool {
        self.realtime.is_some()
            || (self.stt.is_some() || self.listen.is_some()) && self.llm.is_some() && self.tts.is_some()
    }
}
