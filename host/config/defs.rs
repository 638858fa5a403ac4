//! The definition of every setting `hotline serve` reads: its flag, its
//! environment variable, its default, its range and its help line, each
//! written once, here (the security section is `security.rs`); the floors
//! define their own sections, which `ServeArgs` flattens in: the providers'
//! (`host/providers/settings.rs`), the records' (`host/store/settings.rs`)
//! and Twilio's REST API's (`host/twilio/settings.rs`).
//! `hotline serve --help` lists them; docs/configuration.md's tables list them too, and
//! `tests/it/tidy.rs` checks that the two agree.
//!
//! To add one: a field here, its use in `Config` (`mod.rs`), a row in docs/configuration.md.

use std::net::IpAddr;
use std::path::PathBuf;

use hotline_common::clamped;
use hotline_telemetry::LogFormat;

use super::StoreArgs;
use super::security::SecurityArgs;
use super::{CallMode, SwapPolicy};
use crate::providers::settings::ProviderArgs;

/// `HOTLINE_EOU_MS`'s default, also the simulator's (`hotline call
/// --eou-ms`), whose detector must match the server's.
pub const EOU_MS_DEFAULT: u32 = 500;

/// `hotline serve`'s settings (also those of `hotline` with no subcommand).
/// Every value may come from its variable or its flag; the flag wins.
#[derive(clap::Parser)]
pub struct ServeArgs {
    /// Listen port.
    #[arg(long, env = "PORT", default_value_t = 8080)]
    pub port: u16,
    /// Listen address.
    #[arg(long, env = "HOTLINE_BIND", default_value = "0.0.0.0")]
    pub bind: IpAddr,
    /// Public https:// base for TwiML URLs and signatures (a trailing slash is fine); without it,
    /// built from Host (or the proxy headers, with HOTLINE_TRUST_PROXY).
    #[arg(long, env = "PUBLIC_BASE_URL", value_parser = base_url)]
    pub public_base_url: Option<String>,
    /// stream (TwiML Connect/Stream) or record (Say + Record, a fallback).
    #[arg(long, env = "HOTLINE_CALL_MODE", value_enum, default_value_t = CallMode::Stream)]
    pub call_mode: CallMode,
    /// Call-logic component to run instead of the built-in guest.
    #[arg(long, env = "HOTLINE_GUEST")]
    pub guest: Option<PathBuf>,
    /// What a swap does to live calls: migrate them at their next event, or pin them to their version.
    #[arg(long, env = "HOTLINE_SWAP", value_enum, default_value_t = SwapPolicy::Migrate)]
    pub swap: SwapPolicy,
    /// Enables /admin/*, for requests that send it as a bearer token (at least 16 characters).
    #[arg(long, env = "HOTLINE_ADMIN_TOKEN", hide_env_values = true, value_parser = secret_of_at_least::<16>)]
    pub admin_token: Option<String>,
    /// Bearer token /metrics requires (at least 16 characters). [default: none: /metrics is open]
    #[arg(long, env = "HOTLINE_METRICS_TOKEN", hide_env_values = true, value_parser = secret_of_at_least::<16>)]
    pub metrics_token: Option<String>,
    /// A swapped-in version that traps this often (1-10000)...
    #[arg(long, env = "HOTLINE_ROLLBACK_TRAPS", default_value_t = 3, value_parser = usize_in(1, 10_000))]
    pub rollback_traps: usize,
    /// ...within this many seconds (1-86400) is rolled back on its own.
    #[arg(long, env = "HOTLINE_ROLLBACK_WINDOW_SECS", default_value_t = 300)]
    #[arg(value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub rollback_window_secs: u64,
    /// Largest component PUT /admin/guest accepts, in bytes (64 KiB-1 GiB).
    #[arg(long, env = "HOTLINE_ADMIN_MAX_BYTES", default_value_t = 64 << 20, value_parser = usize_in(64 << 10, 1 << 30))]
    pub admin_max_bytes: usize,
    /// How long a dashboard sign-in lasts, in hours (1-720).
    #[arg(long, env = "HOTLINE_SESSION_HOURS", default_value_t = 12)]
    #[arg(value_parser = clap::value_parser!(u64).range(1..=720))]
    pub session_hours: u64,
    /// Silence that ends an utterance, in ms (300-600 is sane).
    #[arg(long, env = "HOTLINE_EOU_MS", default_value_t = EOU_MS_DEFAULT)]
    #[arg(value_parser = clap::value_parser!(u32).range(100..=5000))]
    pub eou_ms: u32,
    /// Caller speech while the agent talks before it yields, in ms.
    #[arg(long, env = "HOTLINE_BARGE_IN_MS", default_value_t = 80)]
    #[arg(value_parser = clap::value_parser!(u32).range(20..=2000))]
    pub barge_in_ms: u32,
    /// An utterance longer than this (in ms; taken as 1000 at least, 120000 at most) is cut and answered.
    #[arg(long, env = "HOTLINE_MAX_UTTERANCE_MS", default_value_t = 15_000, value_parser = clamped::<1000, 120_000>)]
    pub max_utterance_ms: u32,
    /// On SIGTERM/SIGINT, how long live calls may continue, in seconds (0-3600).
    #[arg(long, env = "HOTLINE_DRAIN_SECS", default_value_t = 25)]
    #[arg(value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub drain_secs: u64,
    /// WebSocket ping interval, in seconds (1-300).
    #[arg(long, env = "HOTLINE_KEEPALIVE_SECS", default_value_t = 10)]
    #[arg(value_parser = clap::value_parser!(u64).range(1..=300))]
    pub keepalive_secs: u64,
    /// Webhook body limit, in bytes (1024-16777216).
    #[arg(long, env = "HOTLINE_MAX_BODY_BYTES", default_value_t = 64 * 1024, value_parser = usize_in(1024, 16 << 20))]
    pub max_body_bytes: usize,
    /// text or json (one JSON object per line).
    #[arg(long, env = "HOTLINE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Shown by /version.
    #[arg(long, env = "DEPLOY_ID")]
    pub deploy_id: Option<String>,
    #[command(flatten)]
    pub sandbox: SandboxArgs,
    #[command(flatten)]
    pub security: SecurityArgs,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub twilio: super::TwilioArgs,
    #[command(flatten)]
    pub control: super::control::ControlArgs,
    #[command(flatten)]
    pub fetch: super::fetch::FetchArgs,
    #[command(flatten)]
    pub providers: ProviderArgs,
}

/// The sandbox the guests run in: `serve`'s and `guest test`'s.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Sandbox")]
pub struct SandboxArgs {
    /// Concurrent guest instances (calls; 1-100000), plus 32 for webhooks.
    #[arg(long, env = "HOTLINE_MAX_CALLS", default_value_t = 1000)]
    #[arg(value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max_calls: u32,
    /// Linear-memory cap per guest instance, in MB (1-4096).
    #[arg(long, env = "HOTLINE_GUEST_MEMORY_MB", default_value_t = 16, value_parser = usize_in(1, 4096))]
    pub guest_memory_mb: usize,
    /// Running-time budget of one guest call, in 1 ms ticks (5-10000); past it the call traps. A guest
    /// call runs on a worker thread and holds it that long at most, plus up to 5 ms before its first tick.
    #[arg(long, env = "HOTLINE_GUEST_DEADLINE_MS", default_value_t = 20)]
    #[arg(value_parser = clap::value_parser!(u64).range(5..=10_000))]
    pub guest_deadline_ms: u64,
    /// Directory of precompiled guests, so a restart skips compiling; `off` disables it.
    /// [default: $XDG_CACHE_HOME/hotline, else $HOME/.cache/hotline, else none]
    #[arg(long, env = "HOTLINE_CACHE_DIR")]
    pub cache_dir: Option<String>,
    /// Size bound of that directory, in MB (1-1048576): the least recently used entries go first.
    #[arg(long, env = "HOTLINE_CACHE_MAX_MB", default_value_t = 256)]
    #[arg(value_parser = clap::value_parser!(u64).range(1..=1_048_576))]
    pub cache_max_mb: u64,
    /// Write /tmp/perf-<pid>.map, so `perf` names the guest's functions when profiling call logic
    /// (true/false).
    #[arg(long, env = "HOTLINE_GUEST_PERFMAP", default_value_t = false, action = clap::ArgAction::Set)]
    #[arg(value_parser = clap::builder::BoolishValueParser::new())]
    pub guest_perfmap: bool,
}

/// A size or count in `lo..=hi`; out of range is refused (clap's error
/// gives the range, and `env.rs` the variable).
fn usize_in(lo: u64, hi: u64) -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::new().range(lo..=hi)
}

/// Without its trailing slash; http(s) only.
fn base_url(value: &str) -> Result<String, String> {
    let url = value.trim_end_matches('/');
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err("must start with https:// or http://".into());
    }
    Ok(url.to_string())
}

/// A secret at least `N` characters long: a shorter one is a placeholder
/// or a truncated paste, or too easy to guess.
pub(crate) fn secret_of_at_least<const N: usize>(value: &str) -> Result<String, String> {
    if value.len() < N {
        return Err(format!("must be at least {N} characters"));
    }
    Ok(value.to_string())
}
