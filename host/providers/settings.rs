//! Which providers serve a call, and how to reach them: read once from the
//! environment by `config.rs`. Secrets are wrapped in [`Secret`] so that no
//! `Debug` or log line can print them.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};

/// A value that must never be printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Read from JSON (key files, token responses) straight into hiding.
impl<'de> serde::Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret::new)
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Choice {
    None,
    OpenAi,
    Google,
}

impl Choice {
    pub fn name(self) -> &'static str {
        match self {
            Choice::None => "none",
            Choice::OpenAi => "openai",
            Choice::Google => "google",
        }
    }
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
}

impl Default for ProviderSettings {
    fn default() -> Self {
        ProviderSettings {
            stt: Choice::None,
            llm: Choice::None,
            tts: Choice::None,
            openai: None,
            google: None,
            language: "en-US".into(),
            system_prompt: None,
            greeting: None,
            connect_timeout: Duration::from_secs(3),
            request_timeout: Duration::from_secs(15),
            retry_delay: Duration::from_millis(250),
            ca_file: None,
        }
    }
}

impl ProviderSettings {
    /// `get` returns trimmed, non-empty values only.
    pub fn from_lookup(get: &impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let mut s = ProviderSettings::default();
        let key = get("OPENAI_API_KEY").map(Secret::new);
        let base = get("OPENAI_BASE_URL");
        if key.is_some() || base.is_some() {
            let base_url = base.unwrap_or_else(|| "https://api.openai.com/v1".into());
            s.openai = Some(OpenAiSettings {
                base_url: checked_url("OPENAI_BASE_URL", &base_url)?,
                api_key: key,
                stt_model: get("HOTLINE_OPENAI_STT_MODEL").unwrap_or_else(|| "gpt-4o-mini-transcribe".into()),
                llm_model: get("HOTLINE_OPENAI_LLM_MODEL").unwrap_or_else(|| "gpt-4o-mini".into()),
                tts_model: get("HOTLINE_OPENAI_TTS_MODEL").unwrap_or_else(|| "gpt-4o-mini-tts".into()),
                voice: get("HOTLINE_OPENAI_VOICE").unwrap_or_else(|| "alloy".into()),
            });
        }
        let credentials = match (get("GOOGLE_CLOUD_SERVICE_ACCOUNT_JSON"), get("GOOGLE_APPLICATION_CREDENTIALS")) {
            (Some(json), _) => Some(Credentials::Inline(Secret::new(json))),
            (None, Some(path)) => Some(Credentials::File(PathBuf::from(path))),
            (None, None) => None,
        };
        if let Some(credentials) = credentials {
            let url = |k: &str, default: &str| checked_url(k, &get(k).unwrap_or_else(|| default.into()));
            s.google = Some(GoogleSettings {
                credentials,
                stt_url: url("HOTLINE_GOOGLE_STT_URL", "https://speech.googleapis.com")?,
                tts_url: url("HOTLINE_GOOGLE_TTS_URL", "https://texttospeech.googleapis.com")?,
                llm_url: get("HOTLINE_GOOGLE_LLM_URL").map(|u| checked_url("HOTLINE_GOOGLE_LLM_URL", &u)).transpose()?,
                location: get("HOTLINE_GOOGLE_LOCATION").unwrap_or_else(|| "us-central1".into()),
                stt_model: get("HOTLINE_GOOGLE_STT_MODEL").unwrap_or_else(|| "phone_call".into()),
                llm_model: get("HOTLINE_GOOGLE_LLM_MODEL").unwrap_or_else(|| "google/gemini-2.5-flash".into()),
                voice: get("HOTLINE_GOOGLE_VOICE"),
            });
        }
        // OpenAI first when both are configured: it is the only one with all three.
        let default = match (&s.openai, &s.google) {
            (Some(_), _) => Choice::OpenAi,
            (None, Some(_)) => Choice::Google,
            (None, None) => Choice::None,
        };
        s.stt = choice(get, "HOTLINE_STT", default)?;
        s.llm = choice(get, "HOTLINE_LLM", default)?;
        s.tts = choice(get, "HOTLINE_TTS", default)?;
        for (var, c) in [("HOTLINE_STT", s.stt), ("HOTLINE_LLM", s.llm), ("HOTLINE_TTS", s.tts)] {
            if c == Choice::OpenAi && s.openai.is_none() {
                bail!("{var}=openai needs OPENAI_API_KEY (or OPENAI_BASE_URL for a local server)");
            }
            if c == Choice::Google && s.google.is_none() {
                bail!("{var}=google needs GOOGLE_CLOUD_SERVICE_ACCOUNT_JSON or GOOGLE_APPLICATION_CREDENTIALS");
            }
        }
        if let Some(lang) = get("HOTLINE_LANGUAGE") {
            s.language = lang;
        }
        s.system_prompt = get("HOTLINE_SYSTEM_PROMPT");
        s.greeting = get("HOTLINE_GREETING");
        let ms = |k: &str| -> anyhow::Result<Option<Duration>> {
            get(k).map(|v| v.parse::<u64>().map(Duration::from_millis).with_context(|| format!("{k}={v:?}"))).transpose()
        };
        if let Some(d) = ms("HOTLINE_PROVIDER_CONNECT_TIMEOUT_MS")? {
            s.connect_timeout = d.max(Duration::from_millis(1));
        }
        if let Some(d) = ms("HOTLINE_PROVIDER_TIMEOUT_MS")? {
            s.request_timeout = d.max(Duration::from_millis(1));
        }
        if let Some(d) = ms("HOTLINE_PROVIDER_RETRY_MS")? {
            s.retry_delay = d;
        }
        s.ca_file = get("HOTLINE_PROVIDER_CA_FILE").map(PathBuf::from);
        Ok(s)
    }
}

fn choice(get: &impl Fn(&str) -> Option<String>, var: &str, default: Choice) -> anyhow::Result<Choice> {
    Ok(match get(var).as_deref() {
        None => default,
        Some("none") => Choice::None,
        Some("openai") => Choice::OpenAi,
        Some("google") => Choice::Google,
        Some(other) => bail!("{var} must be openai, google or none, got {other:?}"),
    })
}

fn checked_url(var: &str, url: &str) -> anyhow::Result<String> {
    let url = url.trim_end_matches('/');
    let parsed = reqwest::Url::parse(url).with_context(|| format!("{var}={url:?} is not a URL"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        bail!("{var} must be an http:// or https:// URL, got {url:?}");
    }
    Ok(url.to_string())
}
