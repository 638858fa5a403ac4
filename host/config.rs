//! Settings, read once from the environment at start-up. Every variable is
//! optional; the defaults run the echo agent with no keys.
//! The README's table lists them; keep the two in step.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::sandbox::SandboxConfig;
use crate::providers::ProviderSettings;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// How the webhook's TwiML handles the call (`HOTLINE_CALL_MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallMode {
    Stream,
    Record,
}

impl CallMode {
    pub fn name(self) -> &'static str {
        match self {
            CallMode::Stream => "stream",
            CallMode::Record => "record",
        }
    }
}

/// What a swap does to calls already in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SwapPolicy {
    /// Move them to the new version at their next event (snapshot/restore).
    Migrate,
    /// Let them finish on the version they started with.
    Pin,
}

impl SwapPolicy {
    pub fn name(self) -> &'static str {
        match self {
            SwapPolicy::Migrate => "migrate",
            SwapPolicy::Pin => "pin",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    /// `0.0.0.0:$PORT`.
    pub listen: SocketAddr,
    /// Public base URL without a trailing slash; derived per request when unset.
    pub public_base_url: Option<String>,
    pub drain: Duration,
    pub deploy_id: Option<String>,
    pub log_format: LogFormat,
    /// A component to run instead of the built-in default guest.
    pub guest_path: Option<PathBuf>,
    pub mode: CallMode,
    pub eou_silence_ms: u32,
    pub barge_in_ms: u32,
    pub max_utterance_ms: u32,
    /// No reply audio this long after an utterance: the guest plays a filler.
    pub fallback_ms: u32,
    /// Speech-to-text, LLM and text-to-speech: which, where, how long to wait.
    pub providers: ProviderSettings,
    pub max_body_bytes: usize,
    pub keepalive: Duration,
    pub sandbox: SandboxConfig,
    pub swap: SwapPolicy,
    /// Enables `/admin/*` when set.
    pub admin_token: Option<String>,
    /// Largest component `PUT /admin/guest` accepts.
    pub admin_max_bytes: usize,
    /// A swapped-in version trapping this often within `rollback_window`
    /// is rolled back on its own.
    pub rollback_traps: usize,
    pub rollback_window: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
            public_base_url: None,
            drain: Duration::from_secs(25),
            deploy_id: None,
            log_format: LogFormat::Text,
            guest_path: None,
            mode: CallMode::Stream,
            eou_silence_ms: 500,
            barge_in_ms: 80,
            max_utterance_ms: 15_000,
            fallback_ms: 3000,
            providers: ProviderSettings::default(),
            max_body_bytes: 64 * 1024,
            keepalive: Duration::from_secs(10),
            sandbox: SandboxConfig { max_instances: 1000 + WEBHOOK_INSTANCES, ..SandboxConfig::default() },
            swap: SwapPolicy::Migrate,
            admin_token: None,
            admin_max_bytes: 64 << 20,
            rollback_traps: 3,
            rollback_window: Duration::from_secs(300),
        }
    }
}

impl Config {
    pub fn from_env() -> anyhow::Result<Self> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Builds the config from any variable source (tests pass a map).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let mut c = Config::default();
        let get = |k: &str| get(k).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let bind: IpAddr = parse(&get, "HOTLINE_BIND")?.unwrap_or(c.listen.ip());
        let port: u16 = parse(&get, "PORT")?.unwrap_or(c.listen.port());
        c.listen = SocketAddr::new(bind, port);
        if let Some(url) = get("PUBLIC_BASE_URL") {
            let url = url.trim_end_matches('/').to_string();
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                bail!("PUBLIC_BASE_URL must start with https:// or http://, got {url:?}");
            }
            c.public_base_url = Some(url);
        }
        if let Some(secs) = parse::<u64>(&get, "HOTLINE_DRAIN_SECS")? {
            c.drain = Duration::from_secs(secs);
        }
        c.deploy_id = get("DEPLOY_ID");
        c.log_format = match get("HOTLINE_LOG_FORMAT").as_deref() {
            None | Some("text") => LogFormat::Text,
            Some("json") => LogFormat::Json,
            Some(other) => bail!("HOTLINE_LOG_FORMAT must be text or json, got {other:?}"),
        };
        c.guest_path = get("HOTLINE_GUEST").map(PathBuf::from);
        c.mode = match get("HOTLINE_CALL_MODE").as_deref() {
            None | Some("stream") => CallMode::Stream,
            Some("record") => CallMode::Record,
            Some(other) => bail!("HOTLINE_CALL_MODE must be stream or record, got {other:?}"),
        };
        c.eou_silence_ms = parse(&get, "HOTLINE_EOU_MS")?.unwrap_or(c.eou_silence_ms);
        if !(100..=5000).contains(&c.eou_silence_ms) {
            bail!("HOTLINE_EOU_MS must be 100..=5000 (300-600 is sane), got {}", c.eou_silence_ms);
        }
        c.barge_in_ms = parse(&get, "HOTLINE_BARGE_IN_MS")?.unwrap_or(c.barge_in_ms);
        if !(20..=2000).contains(&c.barge_in_ms) {
            bail!("HOTLINE_BARGE_IN_MS must be 20..=2000, got {}", c.barge_in_ms);
        }
        c.max_utterance_ms = parse(&get, "HOTLINE_MAX_UTTERANCE_MS")?.unwrap_or(c.max_utterance_ms);
        c.fallback_ms = parse(&get, "HOTLINE_FALLBACK_MS")?.unwrap_or(c.fallback_ms);
        c.providers = ProviderSettings::from_lookup(&get)?;
        c.max_body_bytes = parse(&get, "HOTLINE_MAX_BODY_BYTES")?.unwrap_or(c.max_body_bytes);
        if let Some(secs) = parse::<u64>(&get, "HOTLINE_KEEPALIVE_SECS")? {
            c.keepalive = Duration::from_secs(secs.max(1));
        }
        if let Some(mb) = parse::<usize>(&get, "HOTLINE_GUEST_MEMORY_MB")? {
            c.sandbox.memory_bytes = mb.max(1) << 20;
        }
        if let Some(ms) = parse::<u64>(&get, "HOTLINE_GUEST_DEADLINE_MS")? {
            c.sandbox.deadline = Duration::from_millis(ms.max(1));
        }
        c.sandbox.cache_dir = match get("HOTLINE_CACHE_DIR").as_deref() {
            Some("off") => None,
            Some(dir) => Some(PathBuf::from(dir)),
            None => default_cache_dir(&get),
        };
        if let Some(n) = parse::<u32>(&get, "HOTLINE_MAX_CALLS")? {
            c.sandbox.max_instances = n.max(1) + WEBHOOK_INSTANCES;
        }
        c.swap = match get("HOTLINE_SWAP").as_deref() {
            None | Some("migrate") => SwapPolicy::Migrate,
            Some("pin") => SwapPolicy::Pin,
            Some(other) => bail!("HOTLINE_SWAP must be migrate or pin, got {other:?}"),
        };
        c.admin_token = get("HOTLINE_ADMIN_TOKEN");
        if c.admin_token.as_ref().is_some_and(|t| t.len() < 16) {
            bail!("HOTLINE_ADMIN_TOKEN must be at least 16 characters");
        }
        c.admin_max_bytes = parse(&get, "HOTLINE_ADMIN_MAX_BYTES")?.unwrap_or(c.admin_max_bytes);
        c.rollback_traps = parse::<usize>(&get, "HOTLINE_ROLLBACK_TRAPS")?.unwrap_or(c.rollback_traps).max(1);
        if let Some(secs) = parse::<u64>(&get, "HOTLINE_ROLLBACK_WINDOW_SECS")? {
            c.rollback_window = Duration::from_secs(secs.max(1));
        }
        Ok(c)
    }
}

/// `$XDG_CACHE_HOME/hotline`, else `$HOME/.cache/hotline`, else the temp dir.
fn default_cache_dir(get: &impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let base = get("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| get("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    Some(base.join("hotline"))
}

/// Pool slots kept beyond the call limit for webhooks in flight.
pub const WEBHOOK_INSTANCES: u32 = 32;

fn parse<T: std::str::FromStr>(get: &impl Fn(&str) -> Option<String>, key: &str) -> anyhow::Result<Option<T>>
where
    T::Err: std::fmt::Display + Send + Sync + std::error::Error + 'static,
{
    get(key).map(|v| v.parse::<T>().with_context(|| format!("{key}={v:?}"))).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(pairs: &[(&str, &str)]) -> anyhow::Result<Config> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_need_no_variables() {
        let c = cfg(&[]).unwrap();
        assert_eq!(c.listen.to_string(), "0.0.0.0:8080");
        assert_eq!(c.public_base_url, None);
        assert_eq!(c.drain, Duration::from_secs(25));
    }

    #[test]
    fn port_and_base_url_are_tolerant_and_errors_name_the_variable() {
        let c = cfg(&[("PORT", "9000"), ("PUBLIC_BASE_URL", "https://x.example/")]).unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.public_base_url.as_deref(), Some("https://x.example"));
        let err = cfg(&[("PORT", "eighty")]).unwrap_err();
        assert!(format!("{err:#}").contains("PORT"), "{err:#}");
        assert!(cfg(&[("PUBLIC_BASE_URL", "x.example")]).is_err());
        assert!(cfg(&[("HOTLINE_EOU_MS", "20")]).is_err());
    }
}
