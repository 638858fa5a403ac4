//! Which providers serve a call, and how to reach them: the providers'
//! section of `hotline serve`'s settings ([`ProviderArgs`], one definition
//! per variable, read by `config/`), and what they become
//! ([`ProviderSettings`]). Secrets are wrapped in `hotline_common::Secret`
//! so that no `Debug` or log line can print them.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;
use hotline_common::{Secret, clamped};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Choice {
    None,
    #[value(name = "openai")]
    OpenAi,
    Google,
    /// Speech-to-text only: streaming (`providers/deepgram.rs`).
    Deepgram,
    /// Speech-to-text only: OpenAI's realtime transcription, streaming
    /// (`providers/openai_realtime.rs`).
    #[value(name = "openai-realtime")]
    OpenAiRealtime,
}

impl Choice {
    pub fn name(self) -> &'static str {
        match self {
            Choice::None => "none",
            Choice::OpenAi => "openai",
            Choice::Google => "google",
            Choice::Deepgram => "deepgram",
            Choice::OpenAiRealtime => "openai-realtime",
        }
    }

    /// Serves speech-to-text only, streaming.
    pub fn streaming_only(self) -> bool {
        matches!(self, Choice::Deepgram | Choice::OpenAiRealtime)
    }
}

/// Who answers the call (`HOTLINE_AGENT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Agent {
    /// Speech-to-text, then the LLM, then text-to-speech (the providers chosen above).
    Pipeline,
    /// OpenAI's Realtime API, speech to speech (`media/realtime.rs`).
    Realtime,
}

/// The speech-to-speech agent (`HOTLINE_AGENT=realtime`).
#[derive(Debug, Clone)]
pub struct RealtimeAgentSettings {
    /// The realtime endpoint, `wss://…/v1/realtime` (`ws://` for a local
    /// stand-in); `?model=` is added.
    pub url: String,
    pub api_key: Secret,
    pub model: String,
    pub voice: String,
    /// Transcribes the caller's side for the records (`HOTLINE_OPENAI_STT_MODEL`).
    pub transcription_model: String,
}

#[derive(Debug, Clone)]
pub struct DeepgramSettings {
    /// The live endpoint, `wss://…/v1/listen` (`ws://` for a local stand-in).
    pub url: String,
    pub api_key: Secret,
    pub model: String,
}

#[derive(Debug, Clone)]
pub struct OpenAiRealtimeSettings {
    /// The realtime endpoint, `wss://…/v1/realtime` (`ws://` for a local
    /// stand-in); `?intent=transcription` is added.
    pub url: String,
    pub api_key: Secret,
    /// `HOTLINE_OPENAI_STT_MODEL`: the transcription models are the batch ones.
    pub model: String,
}

#[derive(Debug, Clone)]
pub struct OpenAiSettings {
    /// Up to and including `/v1`, no trailing slash.
    pub base_url: String,
    /// Optional: local OpenAI-compatible servers often need none.
    pub api_key: Option<Secret>,
    pub stt_model: String,
    pub llm_model: String,
    pub tts_model: String,
    pub voice: String,
}

/// Where the service-account JSON comes from.
#[derive(Debug, Clone)]
pub enum Credentials {
    Inline(Secret),
    File(PathBuf),
}

#[derive(Debug, Clone)]
pub struct GoogleSettings {
    pub credentials: Credentials,
    pub stt_url: String,
    pub tts_url: String,
    /// Vertex AI's OpenAI-compatible endpoint; `None` derives it from the
    /// project in the credentials and `location`.
    pub llm_url: Option<String>,
    pub location: String,
    pub stt_model: String,
    pub llm_model: String,
    /// `None` lets Google pick a voice for the language.
    pub voice: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ProviderSettings {
    pub stt: Choice,
    pub llm: Choice,
    pub tts: Choice,
    pub openai: Option<OpenAiSettings>,
    pub google: Option<GoogleSettings>,
    pub deepgram: Option<DeepgramSettings>,
    /// With `OPENAI_API_KEY` (a key, not just a local server).
    pub openai_realtime: Option<OpenAiRealtimeSettings>,
    /// `HOTLINE_AGENT=realtime`: the Realtime API answers the calls; the
    /// choices above then serve nothing but the records' defaults.
    pub realtime_agent: Option<RealtimeAgentSettings>,
    /// BCP-47, e.g. `en-US`.
    pub language: String,
    pub system_prompt: Option<String>,
    pub greeting: Option<String>,
    pub connect_timeout: Duration,
    /// Whole request, streamed body included.
    pub request_timeout: Duration,
    /// Pause before the one retry of an idempotent request.
    pub retry_delay: Duration,
    /// Extra root certificates (PEM) trusted besides the system's, for a
    /// private CA or a TLS-inspecting proxy.
    pub ca_file: Option<PathBuf>,
    /// Speech kept by its text (`speech_cache.rs`); 0 keeps none.
    pub tts_cache_bytes: usize,
    /// Open provider connections when a webhook says a call is coming (`warm.rs`).
    pub preopen: bool,
}

impl ProviderSettings {
    /// ISO-639-1, the first part of `HOTLINE_LANGUAGE` (`en` of `en-US`), as
    /// OpenAI's transcription wants it.
    pub fn language_code(&self) -> String {
        self.language.split(['-', '_']).next().unwrap_or("en").to_lowercase()
    }
}

/// The providers' settings, a section of `config::ServeArgs`.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Providers")]
pub struct ProviderArgs {
    /// Who answers: pipeline (speech-to-text, LLM, text-to-speech) or realtime (OpenAI's Realtime API, speech to
    /// speech; needs OPENAI_API_KEY).
    #[arg(long, env = "HOTLINE_AGENT", value_enum, default_value = "pipeline")]
    pub agent: Agent,
    /// OpenAI's speech-to-speech model, for HOTLINE_AGENT=realtime.
    #[arg(long, env = "HOTLINE_OPENAI_REALTIME_MODEL", default_value = "gpt-realtime")]
    pub openai_realtime_model: String,
    /// Speech-to-text: openai, google, deepgram or openai-realtime (streaming) or none [default: from the OpenAI
    /// or Google keys present].
    #[arg(long, env = "HOTLINE_STT", value_enum)]
    pub stt: Option<Choice>,
    /// The LLM: openai, google or none [default: from the keys present].
    #[arg(long, env = "HOTLINE_LLM", value_enum)]
    pub llm: Option<Choice>,
    /// Text-to-speech: openai, google or none [default: from the keys present].
    #[arg(long, env = "HOTLINE_TTS", value_enum)]
    pub tts: Option<Choice>,
    /// OpenAI key (sent as a bearer token; optional for local servers).
    #[arg(long, env = "OPENAI_API_KEY", hide_env_values = true, value_parser = secret)]
    pub openai_api_key: Option<Secret>,
    /// Any OpenAI-compatible server, up to /v1.
    #[arg(long, env = "OPENAI_BASE_URL", default_value = "https://api.openai.com/v1", value_parser = http_url)]
    pub openai_base_url: String,
    /// OpenAI speech-to-text model, batch or realtime, e.g. whisper-1.
    #[arg(long, env = "HOTLINE_OPENAI_STT_MODEL", default_value = "gpt-4o-mini-transcribe")]
    pub openai_stt_model: String,
    /// OpenAI chat model.
    #[arg(long, env = "HOTLINE_OPENAI_LLM_MODEL", default_value = "gpt-4o-mini")]
    pub openai_llm_model: String,
    /// OpenAI speech model, e.g. tts-1.
    #[arg(long, env = "HOTLINE_OPENAI_TTS_MODEL", default_value = "gpt-4o-mini-tts")]
    pub openai_tts_model: String,
    /// OpenAI speech voice (text-to-speech and the realtime agent).
    #[arg(long, env = "HOTLINE_OPENAI_VOICE", default_value = "alloy")]
    pub openai_voice: String,
    /// A Google Cloud service-account key, the whole JSON.
    #[arg(long, env = "GOOGLE_CLOUD_SERVICE_ACCOUNT_JSON", hide_env_values = true, value_parser = secret)]
    pub google_cloud_service_account_json: Option<Secret>,
    /// ...or the path of the key file.
    #[arg(long, env = "GOOGLE_APPLICATION_CREDENTIALS")]
    pub google_application_credentials: Option<PathBuf>,
    /// Google Speech-to-Text model.
    #[arg(long, env = "HOTLINE_GOOGLE_STT_MODEL", default_value = "phone_call")]
    pub google_stt_model: String,
    /// Google speech voice, e.g. en-US-Neural2-F [default: chosen by Google for the language].
    #[arg(long, env = "HOTLINE_GOOGLE_VOICE")]
    pub google_voice: Option<String>,
    /// Vertex AI model id.
    #[arg(long, env = "HOTLINE_GOOGLE_LLM_MODEL", default_value = "google/gemini-2.5-flash")]
    pub google_llm_model: String,
    /// Vertex AI region.
    #[arg(long, env = "HOTLINE_GOOGLE_LOCATION", default_value = "us-central1")]
    pub google_location: String,
    /// Google Speech-to-Text endpoint (for proxies and tests).
    #[arg(long, env = "HOTLINE_GOOGLE_STT_URL", default_value = "https://speech.googleapis.com")]
    #[arg(value_parser = http_url)]
    pub google_stt_url: String,
    /// Google Text-to-Speech endpoint (for proxies and tests).
    #[arg(long, env = "HOTLINE_GOOGLE_TTS_URL", default_value = "https://texttospeech.googleapis.com")]
    #[arg(value_parser = http_url)]
    pub google_tts_url: String,
    /// Vertex AI's OpenAI-compatible endpoint, up to /endpoints/openapi [default: from the key's project and
    /// HOTLINE_GOOGLE_LOCATION].
    #[arg(long, env = "HOTLINE_GOOGLE_LLM_URL", value_parser = http_url)]
    pub google_llm_url: Option<String>,
    /// Deepgram key, for HOTLINE_STT=deepgram.
    #[arg(long, env = "DEEPGRAM_API_KEY", hide_env_values = true, value_parser = secret)]
    pub deepgram_api_key: Option<Secret>,
    /// Deepgram's live transcription endpoint (for proxies and tests).
    #[arg(long, env = "HOTLINE_DEEPGRAM_URL", default_value = "wss://api.deepgram.com/v1/listen", value_parser = ws_url)]
    pub deepgram_url: String,
    /// Deepgram model.
    #[arg(long, env = "HOTLINE_DEEPGRAM_MODEL", default_value = "nova-3")]
    pub deepgram_model: String,
    /// OpenAI's realtime endpoint, for HOTLINE_STT=openai-realtime (?intent=transcription is added) and
    /// HOTLINE_AGENT=realtime (?model= is added); for proxies and tests.
    #[arg(long, env = "HOTLINE_OPENAI_REALTIME_URL", default_value = "wss://api.openai.com/v1/realtime")]
    #[arg(value_parser = ws_url)]
    pub openai_realtime_url: String,
    /// BCP-47 language of the call (OpenAI gets its first part).
    #[arg(long, env = "HOTLINE_LANGUAGE", default_value = "en-US")]
    pub language: String,
    /// First thing the AI agent says [default: the guest's own greeting].
    #[arg(long, env = "HOTLINE_GREETING")]
    pub greeting: Option<String>,
    /// The LLM's system prompt [default: the guest's own, a short phone-agent prompt].
    #[arg(long, env = "HOTLINE_SYSTEM_PROMPT")]
    pub system_prompt: Option<String>,
    /// No reply audio this long (in ms, 60000 at most) after the caller stops: a short filler plays; 0 disables.
    #[arg(long, env = "HOTLINE_FALLBACK_MS", default_value_t = 3000, value_parser = clamped::<0, 60_000>)]
    pub fallback_ms: u32,
    /// Connect timeout of every provider request, in ms.
    #[arg(long, env = "HOTLINE_PROVIDER_CONNECT_TIMEOUT_MS", default_value_t = 3000)]
    #[arg(value_parser = clap::value_parser!(u64).range(100..=60_000))]
    pub provider_connect_timeout_ms: u64,
    /// Overall timeout of one provider request, streamed body included, in ms.
    #[arg(long, env = "HOTLINE_PROVIDER_TIMEOUT_MS", default_value_t = 15_000)]
    #[arg(value_parser = clap::value_parser!(u64).range(500..=600_000))]
    pub provider_timeout_ms: u64,
    /// Pause before the one retry of a transcription or speech request, in ms.
    #[arg(long, env = "HOTLINE_PROVIDER_RETRY_MS", default_value_t = 250)]
    #[arg(value_parser = clap::value_parser!(u64).range(0..=10_000))]
    pub provider_retry_ms: u64,
    /// Speech of short texts (greetings, fillers) kept for the next call, in KiB; 0 disables.
    #[arg(long, env = "HOTLINE_TTS_CACHE_KB", default_value_t = 4096)]
    #[arg(value_parser = clap::value_parser!(u64).range(0..=1_048_576))]
    pub tts_cache_kb: u64,
    /// PEM root certificates to trust besides the system's (private CA, TLS-inspecting proxy).
    #[arg(long, env = "HOTLINE_PROVIDER_CA_FILE")]
    pub provider_ca_file: Option<PathBuf>,
    /// When a call's webhook arrives, open a connection to each HTTP provider not used lately (a HEAD request), so
    /// the call's first request finds TCP and TLS done.
    #[arg(long, env = "HOTLINE_PROVIDER_PREOPEN", default_value_t = true, action = clap::ArgAction::Set)]
    pub provider_preopen: bool,
}

impl ProviderArgs {
    /// What the settings configure. `openai_base_given`: OPENAI_BASE_URL
    /// was set (not defaulted), which configures OpenAI as a key does.
    pub fn settings(self, openai_base_given: bool) -> anyhow::Result<ProviderSettings> {
        let realtime_agent = match (self.agent, &self.openai_api_key) {
            (Agent::Pipeline, _) => None,
            (Agent::Realtime, None) => bail!("HOTLINE_AGENT=realtime needs OPENAI_API_KEY"),
            (Agent::Realtime, Some(api_key)) => Some(RealtimeAgentSettings {
                url: self.openai_realtime_url.clone(),
                api_key: api_key.clone(),
                model: self.openai_realtime_model,
                voice: self.openai_voice.clone(),
                transcription_model: self.openai_stt_model.clone(),
            }),
        };
        let openai_realtime = self.openai_api_key.clone().map(|api_key| OpenAiRealtimeSettings {
            url: self.openai_realtime_url,
            api_key,
            model: self.openai_stt_model.clone(),
        });
        let openai = (self.openai_api_key.is_some() || openai_base_given).then_some(OpenAiSettings {
            base_url: self.openai_base_url,
            api_key: self.openai_api_key,
            stt_model: self.openai_stt_model,
            llm_model: self.openai_llm_model,
            tts_model: self.openai_tts_model,
            voice: self.openai_voice,
        });
        let credentials = match (self.google_cloud_service_account_json, self.google_application_credentials) {
            (Some(json), _) => Some(Credentials::Inline(json)),
            (None, Some(path)) => Some(Credentials::File(path)),
            (None, None) => None,
        };
        let google = credentials.map(|credentials| GoogleSettings {
            credentials,
            stt_url: self.google_stt_url,
            tts_url: self.google_tts_url,
            llm_url: self.google_llm_url,
            location: self.google_location,
            stt_model: self.google_stt_model,
            llm_model: self.google_llm_model,
            voice: self.google_voice,
        });
        let deepgram = self.deepgram_api_key.map(|api_key| DeepgramSettings {
            url: self.deepgram_url,
            api_key,
            model: self.deepgram_model,
        });
        // OpenAI first when both are configured: it is the only one with all three.
        let default = match (&openai, &google) {
            (Some(_), _) => Choice::OpenAi,
            (None, Some(_)) => Choice::Google,
            (None, None) => Choice::None,
        };
        let (stt, llm, tts) = (self.stt.unwrap_or(default), self.llm.unwrap_or(default), self.tts.unwrap_or(default));
        for (var, c) in [("HOTLINE_STT", stt), ("HOTLINE_LLM", llm), ("HOTLINE_TTS", tts)] {
            if c == Choice::OpenAi && openai.is_none() {
                bail!("{var}=openai needs OPENAI_API_KEY (or OPENAI_BASE_URL for a local server)");
            }
            if c == Choice::Google && google.is_none() {
                bail!("{var}=google needs GOOGLE_CLOUD_SERVICE_ACCOUNT_JSON or GOOGLE_APPLICATION_CREDENTIALS");
            }
            if c.streaming_only() && var != "HOTLINE_STT" {
                let name = c.name();
                bail!("{var}={name}: streaming speech-to-text only (HOTLINE_STT={name})");
            }
            if c == Choice::Deepgram && deepgram.is_none() {
                bail!("{var}=deepgram needs DEEPGRAM_API_KEY");
            }
            if c == Choice::OpenAiRealtime && openai_realtime.is_none() {
                bail!("{var}=openai-realtime needs OPENAI_API_KEY");
            }
        }
        Ok(ProviderSettings {
            stt,
            llm,
            tts,
            openai,
            google,
            deepgram,
            openai_realtime,
            realtime_agent,
            language: self.language,
            system_prompt: self.system_prompt,
            greeting: self.greeting,
            connect_timeout: Duration::from_millis(self.provider_connect_timeout_ms),
            request_timeout: Duration::from_millis(self.provider_timeout_ms),
            retry_delay: Duration::from_millis(self.provider_retry_ms),
            ca_file: self.provider_ca_file,
            tts_cache_bytes: self.tts_cache_kb as usize * 1024,
            preopen: self.provider_preopen,
        })
    }
}

fn secret(value: &str) -> Result<Secret, std::convert::Infallible> {
    Ok(Secret::new(value))
}

/// Without its trailing slash; http(s) only.
fn http_url(value: &str) -> Result<String, String> {
    url_of(value, ["http", "https"])
}

/// Without its trailing slash; ws(s) only (streaming providers).
fn ws_url(value: &str) -> Result<String, String> {
    url_of(value, ["ws", "wss"])
}

fn url_of(value: &str, [plain, secure]: [&str; 2]) -> Result<String, String> {
    let url = value.trim_end_matches('/');
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
    if ![plain, secure].contains(&parsed.scheme()) {
        return Err(format!("must start with {plain}:// or {secure}://"));
    }
    Ok(url.to_string())
}

/// Every provider setting at its default (no variables), as the server
/// reads them with none set: for the tests of this crate, which has no
/// `Config`.
#[cfg(test)]
pub(crate) fn defaults() -> ProviderSettings {
    use clap::{Args, FromArgMatches};
    let matches = ProviderArgs::augment_args(clap::Command::new("providers")).get_matches_from(["providers"]);
    ProviderArgs::from_arg_matches(&matches)
        .expect("the defaults parse")
        .settings(false)
        .expect("the defaults are valid")
}
