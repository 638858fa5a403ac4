//! The security section of `hotline serve`'s settings: who may start a
//! call (Twilio's signatures, the per-call stream token), what the public
//! URL is, and how long a client may take. Defined once here, as the rest
//! in `defs.rs`; docs/security.md explains each.

use std::time::Duration;

use clap::value_parser;
use hotline_common::Secret;

use super::defs::secret_of_at_least;

#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Security")]
pub struct SecurityArgs {
    /// Twilio auth token: every webhook and WebSocket upgrade must carry a valid X-Twilio-Signature.
    #[arg(long, env = "TWILIO_AUTH_TOKEN", hide_env_values = true, value_parser = secret_of_at_least::<16>)]
    pub twilio_auth_token: Option<String>,
    /// A second accepted token, while the account's token is rotated.
    #[arg(long, env = "TWILIO_AUTH_TOKEN_SECONDARY", hide_env_values = true, value_parser = secret_of_at_least::<16>)]
    pub twilio_auth_token_secondary: Option<String>,
    /// Refuse to start without TWILIO_AUTH_TOKEN (true/false).
    #[arg(long, env = "HOTLINE_REQUIRE_SIGNATURE", default_value_t = false, action = clap::ArgAction::Set)]
    #[arg(value_parser = clap::builder::BoolishValueParser::new())]
    pub require_signature: bool,
    /// Build the public URL from X-Forwarded-Proto / X-Forwarded-Host when PUBLIC_BASE_URL is unset
    /// (only behind a proxy that sets them) (true/false).
    #[arg(long, env = "HOTLINE_TRUST_PROXY", default_value_t = false, action = clap::ArgAction::Set)]
    #[arg(value_parser = clap::builder::BoolishValueParser::new())]
    pub trust_proxy: bool,
    /// Key of the per-call stream tokens (at least 32 characters); servers behind one number share it.
    /// [default: derived from TWILIO_AUTH_TOKEN, else random per process]
    #[arg(long, env = "HOTLINE_STREAM_SECRET", hide_env_values = true, value_parser = secret_of_at_least::<32>)]
    pub stream_secret: Option<String>,
    /// Time a client gets to send a request's headers, and an idle keep-alive connection its next request, in seconds.
    #[arg(long, env = "HOTLINE_HEADER_TIMEOUT_SECS", default_value_t = 10)]
    #[arg(value_parser = value_parser!(u64).range(1..=300))]
    pub header_timeout_secs: u64,
    /// Time a client gets to send a webhook's body, in seconds.
    #[arg(long, env = "HOTLINE_BODY_TIMEOUT_SECS", default_value_t = 10)]
    #[arg(value_parser = value_parser!(u64).range(1..=300))]
    pub body_timeout_secs: u64,
    /// Time from a WebSocket upgrade to Twilio's `start` message, in seconds.
    #[arg(long, env = "HOTLINE_START_TIMEOUT_SECS", default_value_t = 5)]
    #[arg(value_parser = value_parser!(u64).range(1..=60))]
    pub start_timeout_secs: u64,
    /// A started stream that receives nothing for this long is closed, in seconds (Twilio sends media every 20 ms).
    #[arg(long, env = "HOTLINE_STREAM_IDLE_SECS", default_value_t = 15)]
    #[arg(value_parser = value_parser!(u64).range(2..=300))]
    pub stream_idle_secs: u64,
    /// Open connections (HTTP and WebSocket) at most; more are closed at once.
    /// [default: the open-file limit, raised to its maximum at start, minus 64]
    #[arg(long, env = "HOTLINE_MAX_CONNECTIONS", value_parser = value_parser!(u64).range(16..=10_000_000))]
    pub max_connections: Option<u64>,
    /// Open connections from one address at most. Behind a proxy every connection comes from it:
    /// leave room for every call. [default: HOTLINE_MAX_CALLS + 64]
    #[arg(long, env = "HOTLINE_MAX_CONNECTIONS_PER_IP", value_parser = value_parser!(u64).range(1..=10_000_000))]
    pub max_connections_per_ip: Option<u64>,
}

/// What the host checks, as the rest of it uses it.
#[derive(Debug, Clone)]
pub struct Security {
    /// The tokens signatures are checked against (primary first); none
    /// means signatures are not checked.
    pub auth_tokens: Vec<Secret>,
    pub trust_proxy: bool,
    pub stream_secret: Option<Secret>,
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub start_timeout: Duration,
    pub stream_idle: Duration,
    /// `None`: from the open-file limit.
    pub max_connections: Option<usize>,
    /// `None`: the call limit plus room for webhooks and probes.
    pub max_connections_per_ip: Option<usize>,
}

impl SecurityArgs {
    pub fn security(&self) -> anyhow::Result<Security> {
        let auth_tokens: Vec<Secret> = [&self.twilio_auth_token, &self.twilio_auth_token_secondary]
            .into_iter()
            .flatten()
            .map(Secret::new)
            .collect();
        if self.twilio_auth_token.is_none() && self.twilio_auth_token_secondary.is_some() {
            anyhow::bail!("TWILIO_AUTH_TOKEN_SECONDARY is set without TWILIO_AUTH_TOKEN");
        }
        if self.require_signature && auth_tokens.is_empty() {
            anyhow::bail!(
                "HOTLINE_REQUIRE_SIGNATURE is on but TWILIO_AUTH_TOKEN is unset: set the token (Twilio console, Account Info)"
            );
        }
        Ok(Security {
            auth_tokens,
            trust_proxy: self.trust_proxy,
            stream_secret: self.stream_secret.as_ref().map(Secret::new),
            header_timeout: Duration::from_secs(self.header_timeout_secs),
            body_timeout: Duration::from_secs(self.body_timeout_secs),
            start_timeout: Duration::from_secs(self.start_timeout_secs),
            stream_idle: Duration::from_secs(self.stream_idle_secs),
            max_connections: self.max_connections.map(|n| n as usize),
            max_connections_per_ip: self.max_connections_per_ip.map(|n| n as usize),
        })
    }
}
