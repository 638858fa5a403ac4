//! Settings, read once at start-up: every one is optional; the defaults run
//! the echo agent with no keys. Each is defined once, in `defs.rs` (the
//! providers' in `providers/settings.rs`), with its variable, flag, default
//! and range; `env.rs` reads the variables; [`Config`] is the typed result
//! the rest of the host uses. docs/configuration.md's tables list the variables
//! (`tests/it/tidy.rs` checks it against the definitions).

mod control;
mod defs;
mod env;
mod fetch;
mod security;

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{ArgMatches, CommandFactory, FromArgMatches};

pub use control::{Control, ControlArgs, TransferFallback, is_transfer_target};
pub use defs::{EOU_MS_DEFAULT, SandboxArgs, ServeArgs};
pub use env::parse_with_env;
pub use fetch::{FetchArgs, GuestFetch, MAX_REQUEST_BYTES, Origin};
pub use hotline_store::{Backend, StoreArgs, StoreSettings};
pub use hotline_twilio::settings::{TwilioArgs, TwilioRest, is_phone_target};
pub use security::{Security, SecurityArgs};

use hotline_telemetry::LogFormat;

use crate::providers::ProviderSettings;
use crate::sandbox::SandboxConfig;

/// How the webhook's TwiML handles the call (`HOTLINE_CALL_MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
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
    /// `/metrics` needs it as a bearer token; `None`: open.
    pub metrics_token: Option<String>,
    /// Largest component `PUT /admin/guest` accepts.
    pub admin_max_bytes: usize,
    /// How long a dashboard session cookie is valid.
    pub session_lifetime: Duration,
    /// A swapped-in version trapping this often within `rollback_window`
    /// is rolled back on its own.
    pub rollback_traps: usize,
    pub rollback_window: Duration,
    /// Signatures, stream tokens, the public URL's source.
    pub security: Security,
    /// Call records: where they go, how long they stay.
    pub store: StoreSettings,
    /// Twilio's REST API, for call control; `None` without an account.
    pub twilio: Option<TwilioRest>,
    /// Transfers and answering machines.
    pub control: Control,
    /// What call logic may fetch, and the secrets and variables it names.
    pub fetch: GuestFetch,
}

/// Every setting's default, from the definitions (parsed with no
/// variables), with no compile cache and no records: their default places
/// come from the environment (`$XDG_CACHE_HOME`, `$XDG_DATA_HOME`,
/// `$HOME`), and there is none here.
impl Default for Config {
    fn default() -> Self {
        let mut config = Config::from_lookup(|_| None).expect("the defaults are valid settings");
        config.sandbox.cache_dir = None;
        config.sandbox.cache_off = None;
        config.store = StoreSettings::off();
        config
    }
}

impl Config {
    pub fn from_env() -> anyhow::Result<Self> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Builds the config from any variable source (tests pass a map); the
    /// process environment is not read.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let matches = parse_with_env(ServeArgs::command(), vec![OsString::from("hotline")], &get)?;
        Self::from_matches(&matches, &get)
    }

    /// The config from parsed [`ServeArgs`]; `get` supplies the variables
    /// that only shape defaults (`XDG_CACHE_HOME`, `XDG_DATA_HOME`, `HOME`).
    pub fn from_matches(matches: &ArgMatches, get: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let args = ServeArgs::from_arg_matches(matches)?;
        // OPENAI_BASE_URL configures OpenAI as a key does, but only when given.
        let openai_base_given = matches.value_source("openai_base_url") == Some(ValueSource::CommandLine);
        Ok(Config {
            listen: SocketAddr::new(args.bind, args.port),
            public_base_url: args.public_base_url,
            drain: Duration::from_secs(args.drain_secs),
            deploy_id: args.deploy_id,
            log_format: args.log_format,
            guest_path: args.guest,
            mode: args.call_mode,
            eou_silence_ms: args.eou_ms,
            barge_in_ms: args.barge_in_ms,
            max_utterance_ms: args.max_utterance_ms,
            fallback_ms: args.providers.fallback_ms,
            providers: args.providers.settings(openai_base_given)?,
            max_body_bytes: args.max_body_bytes,
            keepalive: Duration::from_secs(args.keepalive_secs),
            sandbox: args.sandbox.config(get),
            swap: args.swap,
            admin_token: args.admin_token,
            metrics_token: args.metrics_token,
            admin_max_bytes: args.admin_max_bytes,
            session_lifetime: Duration::from_secs(args.session_hours * 3600),
            rollback_traps: args.rollback_traps,
            rollback_window: Duration::from_secs(args.rollback_window_secs),
            twilio: args.twilio.settings(args.security.twilio_auth_token.as_deref())?,
            control: args.control.settings()?,
            fetch: args.fetch.settings()?,
            security: args.security.security()?,
            store: args.store.settings(get, args.port),
        })
    }
}

impl SandboxArgs {
    /// The sandbox these settings describe; `get` supplies the variables
    /// that shape the cache's default place.
    pub fn config(&self, get: &dyn Fn(&str) -> Option<String>) -> SandboxConfig {
        let (cache_dir, cache_off) = match self.cache_dir.as_deref() {
            Some("off") => (None, None),
            Some(dir) => (Some(PathBuf::from(dir)), None),
            None => match default_cache_dir(get) {
                Some(dir) => (Some(dir), None),
                None => (None, Some(NO_DEFAULT_CACHE_DIR)),
            },
        };
        SandboxConfig {
            memory_bytes: self.guest_memory_mb << 20,
            deadline: Duration::from_millis(self.guest_deadline_ms),
            max_instances: self.max_calls.saturating_add(WEBHOOK_INSTANCES),
            cache_dir,
            cache_off,
            cache_max_bytes: self.cache_max_mb << 20,
            perfmap: self.guest_perfmap,
        }
    }
}

/// Why there is no cache when nothing says where it goes.
const NO_DEFAULT_CACHE_DIR: &str = "neither XDG_CACHE_HOME nor HOME is set to an absolute path";

/// `$XDG_CACHE_HOME/hotline`, else `$HOME/.cache/hotline`, else none: the
/// cache holds code this process runs, so it never falls back to a shared
/// place such as the temp dir, which other users can write. Relative values
/// are ignored, as the XDG spec says.
fn default_cache_dir(get: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let get = |k: &str| get(k).map(|v| PathBuf::from(v.trim())).filter(|p| p.is_absolute());
    let base = get("XDG_CACHE_HOME").or_else(|| get("HOME").map(|home| home.join(".cache")))?;
    Some(base.join("hotline"))
}

/// Instance slots kept beyond the call limit for webhooks in flight.
pub const WEBHOOK_INSTANCES: u32 = 32;

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn cfg(pairs: &[(&str, &str)]) -> anyhow::Result<Config> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn twilio_rest_needs_an_account_and_whole_credentials() {
        let token = "0123456789abcdef0123456789abcdef";
        let sid = "AC0123456789abcdef0123456789abcdef";
        assert!(cfg(&[]).unwrap().twilio.is_none());
        assert!(cfg(&[("TWILIO_AUTH_TOKEN", token)]).unwrap().twilio.is_none(), "signatures only");
        let rest = cfg(&[("TWILIO_ACCOUNT_SID", sid), ("TWILIO_AUTH_TOKEN", token)]).unwrap().twilio.unwrap();
        assert_eq!(
            (rest.user.as_str(), rest.secret.expose(), rest.api_url.as_str()),
            (sid, token, "https://api.twilio.com")
        );
        let key = [("TWILIO_ACCOUNT_SID", sid), ("TWILIO_API_KEY", "SK1"), ("TWILIO_API_SECRET", "s3cret")];
        let rest = cfg(&key).unwrap().twilio.unwrap();
        assert_eq!((rest.user.as_str(), rest.account_sid.as_str()), ("SK1", sid));
        let err = |pairs: &[(&str, &str)]| cfg(pairs).unwrap_err().to_string();
        assert!(err(&[("TWILIO_ACCOUNT_SID", sid)]).contains("without credentials"));
        assert!(err(&[("TWILIO_ACCOUNT_SID", "CA1"), ("TWILIO_AUTH_TOKEN", token)]).contains("account SID"));
        assert!(err(&[("TWILIO_ACCOUNT_SID", sid), ("TWILIO_API_KEY", "SK1")]).contains("without TWILIO_API_SECRET"));
        assert!(err(&[("TWILIO_API_KEY", "SK1")]).contains("without TWILIO_ACCOUNT_SID"));
        let stand_in = [
            ("TWILIO_ACCOUNT_SID", sid),
            ("TWILIO_AUTH_TOKEN", token),
            ("HOTLINE_TWILIO_API_URL", "http://127.0.0.1:9/"),
        ];
        assert_eq!(cfg(&stand_in).unwrap().twilio.unwrap().api_url, "http://127.0.0.1:9");
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

    #[test]
    fn values_are_trimmed_and_empty_ones_are_unset() {
        let c = cfg(&[("PORT", " 9000\n"), ("HOTLINE_EOU_MS", ""), ("HOTLINE_LOG_FORMAT", "  ")]).unwrap();
        assert_eq!(c.listen.port(), 9000);
        assert_eq!(c.eou_silence_ms, EOU_MS_DEFAULT);
        assert_eq!(c.log_format, LogFormat::Text);
    }

    #[test]
    fn errors_name_the_variable_and_keep_secrets_out() {
        let err = |pairs: &[(&str, &str)]| format!("{:#}", cfg(pairs).unwrap_err());
        assert_eq!(err(&[("HOTLINE_EOU_MS", "20")]), r#"HOTLINE_EOU_MS="20": 20 is not in 100..=5000"#);
        assert_eq!(err(&[("HOTLINE_SWAP", "stay")]), r#"HOTLINE_SWAP="stay": must be one of migrate, pin"#);
        let short = err(&[("HOTLINE_ADMIN_TOKEN", "hunter2")]);
        assert!(short.starts_with("HOTLINE_ADMIN_TOKEN: ") && !short.contains("hunter2"), "{short}");
        for var in
            ["TWILIO_AUTH_TOKEN", "TWILIO_AUTH_TOKEN_SECONDARY", "HOTLINE_STREAM_SECRET", "HOTLINE_METRICS_TOKEN"]
        {
            let short = err(&[(var, "hunter2")]);
            assert!(short.starts_with(&format!("{var}: must be at least")) && !short.contains("hunter2"), "{short}");
        }
    }

    #[test]
    fn signatures_can_be_required_and_a_secondary_token_needs_a_primary() {
        let token = "0123456789abcdef0123456789abcdef";
        let err = |pairs: &[(&str, &str)]| format!("{:#}", cfg(pairs).unwrap_err());
        assert!(err(&[("HOTLINE_REQUIRE_SIGNATURE", "true")]).contains("TWILIO_AUTH_TOKEN is unset"));
        assert!(err(&[("TWILIO_AUTH_TOKEN_SECONDARY", token)]).contains("without TWILIO_AUTH_TOKEN"));
        let c = cfg(&[("HOTLINE_REQUIRE_SIGNATURE", "yes"), ("TWILIO_AUTH_TOKEN", token)]).unwrap();
        assert_eq!(c.security.auth_tokens.len(), 1);
        assert!(!cfg(&[]).unwrap().security.trust_proxy);
    }

    #[test]
    fn values_the_readme_says_are_taken_as_the_nearest_are_clamped() {
        let c = cfg(&[("HOTLINE_MAX_UTTERANCE_MS", "500"), ("HOTLINE_FALLBACK_MS", "90000")]).unwrap();
        assert_eq!((c.max_utterance_ms, c.fallback_ms), (1000, 60_000));
    }

    /// Every numeric setting of `defs.rs` (and `security.rs`, the store's `settings.rs`) with its allowed range.
    const RANGES: &[(&str, u64, u64)] = &[
        ("HOTLINE_ROLLBACK_TRAPS", 1, 10_000),
        ("HOTLINE_ROLLBACK_WINDOW_SECS", 1, 86_400),
        ("HOTLINE_ADMIN_MAX_BYTES", 65_536, 1 << 30),
        ("HOTLINE_SESSION_HOURS", 1, 720),
        ("HOTLINE_EOU_MS", 100, 5000),
        ("HOTLINE_BARGE_IN_MS", 20, 2000),
        ("HOTLINE_DRAIN_SECS", 0, 3600),
        ("HOTLINE_KEEPALIVE_SECS", 1, 300),
        ("HOTLINE_MAX_BODY_BYTES", 1024, 16 << 20),
        ("HOTLINE_MAX_CALLS", 1, 100_000),
        ("HOTLINE_GUEST_MEMORY_MB", 1, 4096),
        ("HOTLINE_GUEST_DEADLINE_MS", 5, 10_000),
        ("HOTLINE_CACHE_MAX_MB", 1, 1 << 20),
        ("HOTLINE_HEADER_TIMEOUT_SECS", 1, 300),
        ("HOTLINE_BODY_TIMEOUT_SECS", 1, 300),
        ("HOTLINE_START_TIMEOUT_SECS", 1, 60),
        ("HOTLINE_STREAM_IDLE_SECS", 2, 300),
        ("HOTLINE_RECORD_QUEUE", 1, 1_000_000),
        ("HOTLINE_RETENTION_DAYS", 0, 36_500),
        ("HOTLINE_TRANSFER_TIMEOUT_SECS", 5, 600),
        ("HOTLINE_GUEST_FETCH_TIMEOUT_MS", 100, 60_000),
        ("HOTLINE_GUEST_FETCH_MAX_BYTES", 1024, 64 << 20),
        ("HOTLINE_GUEST_FETCH_MAX_IN_FLIGHT", 1, 64),
    ];
    /// The providers' (`providers/settings.rs`).
    const PROVIDER_RANGES: &[(&str, u64, u64)] = &[
        ("HOTLINE_PROVIDER_CONNECT_TIMEOUT_MS", 100, 60_000),
        ("HOTLINE_PROVIDER_TIMEOUT_MS", 500, 600_000),
        ("HOTLINE_PROVIDER_RETRY_MS", 0, 10_000),
        ("HOTLINE_TTS_CACHE_KB", 0, 1_048_576),
    ];

    #[test]
    fn out_of_range_values_are_refused_naming_the_variable_and_the_range() {
        for &(var, lo, hi) in RANGES.iter().chain(PROVIDER_RANGES) {
            let mut refused = vec![hi + 1, 4_294_967_290];
            refused.extend(lo.checked_sub(1));
            for value in refused {
                let value = value.to_string();
                let err = format!("{:#}", cfg(&[(var, &value)]).unwrap_err());
                assert_eq!(err, format!("{var}={value:?}: {value} is not in {lo}..={hi}"));
            }
            // Not a number of the setting's type: named, with the parse error.
            for value in ["-1", "18446744073709551616", "ten"] {
                let err = format!("{:#}", cfg(&[(var, value)]).unwrap_err());
                assert!(err.starts_with(&format!("{var}={value:?}: ")), "{err}");
            }
        }
        assert_eq!(
            format!("{:#}", cfg(&[("HOTLINE_MAX_BODY_BYTES", "0")]).unwrap_err()),
            r#"HOTLINE_MAX_BODY_BYTES="0": 0 is not in 1024..=16777216"#
        );
    }

    #[test]
    fn the_edges_of_each_range_are_accepted() {
        for &(var, lo, hi) in RANGES.iter().chain(PROVIDER_RANGES) {
            for value in [lo, hi] {
                assert!(cfg(&[(var, &value.to_string())]).is_ok(), "{var}={value}");
            }
        }
        let c = cfg(&[("HOTLINE_MAX_CALLS", "100000"), ("HOTLINE_GUEST_DEADLINE_MS", "5")]).unwrap();
        assert_eq!(c.sandbox.max_instances, 100_000 + WEBHOOK_INSTANCES);
        assert_eq!(c.sandbox.deadline, Duration::from_millis(5));
        let c = cfg(&[("HOTLINE_MAX_BODY_BYTES", "1024"), ("HOTLINE_GUEST_MEMORY_MB", "4096")]).unwrap();
        assert_eq!((c.max_body_bytes, c.sandbox.memory_bytes), (1024, 4096 << 20));
    }

    #[test]
    fn every_numeric_setting_of_defs_has_its_range_checked_here() {
        use clap::Args;
        let variable = |a: &clap::Arg| a.get_env().map(|e| e.to_string_lossy().into_owned());
        // The providers' settings are defined (and ranged) in providers/settings.rs.
        let providers = crate::providers::settings::ProviderArgs::augment_args(clap::Command::new("providers"));
        let theirs: Vec<String> = providers.get_arguments().filter_map(variable).collect();
        let numeric = ServeArgs::command()
            .get_arguments()
            .filter(|a| a.get_default_values().first().is_some_and(|d| d.to_string_lossy().parse::<u64>().is_ok()))
            .filter_map(variable)
            .filter(|v| !theirs.contains(v))
            .collect::<Vec<_>>();
        // Taken as the nearest sane value, as docs/configuration.md says; the port's whole range is valid.
        let unranged = ["HOTLINE_MAX_UTTERANCE_MS", "PORT"];
        for var in &numeric {
            let ranged = RANGES.iter().any(|(v, ..)| v == var);
            assert!(ranged || unranged.contains(&var.as_str()), "{var} has no range in this test: add it to RANGES");
        }
        assert!(numeric.len() >= RANGES.len(), "{numeric:?}");
    }

    #[test]
    fn flags_win_over_variables_and_only_the_lookup_is_read() {
        let get = |k: &str| (k == "PORT").then(|| "9000".to_string());
        let argv = ["hotline", "--port", "9001"].map(OsString::from).to_vec();
        let matches = parse_with_env(ServeArgs::command(), argv, &get).unwrap();
        assert_eq!(Config::from_matches(&matches, &get).unwrap().listen.port(), 9001);
        assert_eq!(Config::default().sandbox.cache_dir, None);
    }

    #[test]
    fn the_cache_never_defaults_to_a_shared_place() {
        let dir = |pairs: &[(&str, &str)]| {
            let sandbox = cfg(pairs).unwrap().sandbox;
            (sandbox.cache_dir.map(|d| d.display().to_string()), sandbox.cache_off)
        };
        let xdg = dir(&[("XDG_CACHE_HOME", "/x/cache"), ("HOME", "/home/a")]);
        assert_eq!(xdg, (Some("/x/cache/hotline".into()), None));
        assert_eq!(dir(&[("HOME", "/home/a")]), (Some("/home/a/.cache/hotline".into()), None));
        assert_eq!(dir(&[("XDG_CACHE_HOME", "rel"), ("HOME", "/home/a")]).0.as_deref(), Some("/home/a/.cache/hotline"));
        for nothing_safe in [&[][..], &[("HOME", "relative")], &[("HOME", "  ")]] {
            assert_eq!(dir(nothing_safe), (None, Some(NO_DEFAULT_CACHE_DIR)), "{nothing_safe:?}");
        }
        assert_eq!(dir(&[("HOTLINE_CACHE_DIR", "off"), ("HOME", "/home/a")]), (None, None));
        assert_eq!(dir(&[("HOTLINE_CACHE_DIR", "/srv/c")]), (Some("/srv/c".into()), None));
    }

    #[test]
    fn records_live_in_the_data_directory_unless_postgres_is_named() {
        let backend = |pairs: &[(&str, &str)]| match cfg(pairs).unwrap().store.backend {
            Backend::Sqlite(dir) => format!("sqlite {}", dir.display()),
            Backend::Postgres(url) => format!("postgres {}", url.expose()),
            Backend::Off(reason) => format!("off {reason:?}"),
        };
        assert_eq!(backend(&[("XDG_DATA_HOME", "/x/data"), ("HOME", "/home/a")]), "sqlite /x/data/hotline");
        assert_eq!(backend(&[("HOME", "/home/a")]), "sqlite /home/a/.local/share/hotline");
        assert_eq!(backend(&[("XDG_DATA_HOME", "rel"), ("HOME", "/home/a")]), "sqlite /home/a/.local/share/hotline");
        assert_eq!(backend(&[]), format!("off {:?}", Some(hotline_store::settings::NO_DEFAULT_DATA_DIR)));
        assert_eq!(backend(&[("HOTLINE_DATA_DIR", "off"), ("HOME", "/home/a")]), "off None");
        assert_eq!(backend(&[("HOTLINE_DATA_DIR", "/srv/d")]), "sqlite /srv/d");
        let url = "postgres://hotline:pw@db.internal/calls";
        assert_eq!(backend(&[("DATABASE_URL", url), ("HOTLINE_DATA_DIR", "off")]), format!("postgres {url}"));
        let err = format!("{:#}", cfg(&[("DATABASE_URL", "mysql://u:hunter2@h/db")]).unwrap_err());
        assert!(err.starts_with("DATABASE_URL: must be a postgres:// URL") && !err.contains("hunter2"), "{err}");
        let c = cfg(&[("HOTLINE_RETENTION_DAYS", "0"), ("HOTLINE_MASK_NUMBERS", "false")]).unwrap();
        assert_eq!((c.store.retention, c.store.mask_numbers), (None, false));
        let c = cfg(&[]).unwrap();
        assert_eq!(
            (c.store.retention, c.store.mask_numbers, c.store.queue),
            (Some(Duration::from_secs(30 * 86_400)), true, 1024)
        );
        assert!(matches!(Config::default().store.backend, Backend::Off(None)));
    }

    #[test]
    fn a_base_url_alone_configures_openai_but_its_default_does_not() {
        use crate::providers::Choice;
        let local = cfg(&[("OPENAI_BASE_URL", "http://localhost:11434/v1/")]).unwrap();
        assert_eq!(
            (local.providers.llm, local.providers.openai.unwrap().base_url.as_str()),
            (Choice::OpenAi, "http://localhost:11434/v1")
        );
        assert_eq!(cfg(&[]).unwrap().providers.llm, Choice::None);
    }

    #[test]
    fn the_realtime_agent_needs_a_key_and_takes_the_openai_voice_and_url() {
        assert!(cfg(&[]).unwrap().providers.realtime_agent.is_none(), "the pipeline by default");
        let err = cfg(&[("HOTLINE_AGENT", "realtime")]).unwrap_err().to_string();
        assert!(err.contains("HOTLINE_AGENT=realtime needs OPENAI_API_KEY"), "{err}");
        let c = cfg(&[
            ("HOTLINE_AGENT", "realtime"),
            ("OPENAI_API_KEY", "sk-test"),
            ("HOTLINE_OPENAI_VOICE", "marin"),
            ("HOTLINE_OPENAI_REALTIME_URL", "ws://127.0.0.1:9/v1/realtime"),
        ])
        .unwrap();
        let agent = c.providers.realtime_agent.unwrap();
        assert_eq!((agent.model.as_str(), agent.voice.as_str()), ("gpt-realtime", "marin"));
        assert_eq!(agent.url, "ws://127.0.0.1:9/v1/realtime");
        assert_eq!(agent.transcription_model, "gpt-4o-mini-transcribe");
    }

    #[test]
    fn openai_realtime_transcribes_only_and_needs_a_key() {
        use crate::providers::Choice;
        let key = ("OPENAI_API_KEY", "sk-test");
        let c = cfg(&[key, ("HOTLINE_STT", "openai-realtime")]).unwrap();
        assert_eq!(
            (c.providers.stt, c.providers.llm, c.providers.tts),
            (Choice::OpenAiRealtime, Choice::OpenAi, Choice::OpenAi)
        );
        let realtime = c.providers.openai_realtime.unwrap();
        assert_eq!(realtime.url, "wss://api.openai.com/v1/realtime");
        assert_eq!(realtime.model, "gpt-4o-mini-transcribe", "the batch transcription model, one setting");
        let stand_in =
            [key, ("HOTLINE_STT", "openai-realtime"), ("HOTLINE_OPENAI_REALTIME_URL", "ws://127.0.0.1:9/v1/realtime/")];
        assert_eq!(cfg(&stand_in).unwrap().providers.openai_realtime.unwrap().url, "ws://127.0.0.1:9/v1/realtime");

        for (settings, says) in [
            (
                &[key, ("HOTLINE_LLM", "openai-realtime")][..],
                "HOTLINE_LLM=openai-realtime: streaming speech-to-text only",
            ),
            (
                &[key, ("HOTLINE_TTS", "openai-realtime")][..],
                "HOTLINE_TTS=openai-realtime: streaming speech-to-text only",
            ),
            (&[("HOTLINE_STT", "openai-realtime")][..], "HOTLINE_STT=openai-realtime needs OPENAI_API_KEY"),
            // A local server's base URL is not a key: the realtime API is OpenAI's own.
            (
                &[("OPENAI_BASE_URL", "http://localhost:11434/v1"), ("HOTLINE_STT", "openai-realtime")][..],
                "HOTLINE_STT=openai-realtime needs OPENAI_API_KEY",
            ),
            (
                &[key, ("HOTLINE_OPENAI_REALTIME_URL", "https://api.openai.com/v1/realtime")][..],
                "HOTLINE_OPENAI_REALTIME_URL",
            ),
        ] {
            let err = format!("{:#}", cfg(settings).unwrap_err());
            assert!(err.contains(says), "{settings:?}: {err}");
        }
    }

    #[test]
    fn names_agree_with_the_definitions() {
        use clap::ValueEnum;
        let name = |v: &dyn Fn() -> Option<clap::builder::PossibleValue>| v().unwrap().get_name().to_string();
        for mode in CallMode::value_variants() {
            assert_eq!(name(&|| mode.to_possible_value()), mode.name());
        }
        for swap in SwapPolicy::value_variants() {
            assert_eq!(name(&|| swap.to_possible_value()), swap.name());
        }
        for choice in crate::providers::Choice::value_variants() {
            assert_eq!(name(&|| choice.to_possible_value()), choice.name());
        }
        // The endpointer's own default (its tests and benchmarks use it) is the server's.
        assert_eq!(hotline_audio::endpoint::EndpointConfig::default().eou_silence_ms, EOU_MS_DEFAULT);
    }
}
