//! Who may come in, before any route or call runs.
//!
//! - `mod.rs` ([`Auth`]): who may start a call: Twilio's signature on
//!   every webhook and on the WebSocket upgrade (when an auth token is
//!   configured), the public URL those signatures cover, and the per-call
//!   stream token the TwiML carries (always). The checks are here; the
//!   refusals' responses and log lines are `http::AppError`'s (from
//!   [`Refused`]).
//! - `base_url.rs`: the public URL Twilio reaches us at.
//! - `limits.rs`: connections in all and per address, admin failures.

pub mod base_url;
pub mod limits;

use std::sync::Arc;

use http::{HeaderMap, Uri};
use tracing::warn;

use crate::config::Config;
use crate::twilio::signature::Rejection;
use crate::twilio::signature::{self, Verifier};
use crate::twilio::stream_token::{SecretSource, StreamTokens};

/// Why a request was refused here; `http::AppError` turns it into a
/// response and a log line.
#[derive(Debug)]
pub enum Refused {
    /// The request's public URL could not be derived (no usable host).
    NoPublicUrl(String),
    /// No valid `X-Twilio-Signature` over `url`.
    Signature { reason: Rejection, url: String },
}

pub struct Auth {
    /// `None` when no auth token is configured: signatures are not checked.
    signatures: Option<Verifier>,
    /// Shared with the calls, which check what the webhook issued.
    pub stream_tokens: Arc<StreamTokens>,
    public_base_url: Option<String>,
    trust_proxy: bool,
}

impl Auth {
    pub fn new(config: &Config) -> Auth {
        let security = &config.security;
        let signatures = (!security.auth_tokens.is_empty()).then(|| Verifier::new(&security.auth_tokens));
        let tokens: Vec<_> = security.auth_tokens.iter().collect();
        let (stream_tokens, source) = StreamTokens::new(security.stream_secret.as_ref(), &tokens);
        match &signatures {
            Some(_) => tracing::info!(
                event = "security",
                twilio_signature = "on",
                tokens = security.auth_tokens.len(),
                stream_secret = source.name(),
            ),
            None => warn!(
                event = "security",
                twilio_signature = "off",
                stream_secret = source.name(),
                "TWILIO_AUTH_TOKEN is unset: webhooks and streams are NOT checked for Twilio's signature; \
                 anyone who can reach this server can start calls. Set it for any public deployment \
                 (and HOTLINE_REQUIRE_SIGNATURE=true to refuse to start without it)"
            ),
        }
        if source == SecretSource::Random {
            tracing::info!(
                event = "stream_secret_random",
                "stream tokens are keyed per process: streams must reach the server that answered their webhook \
                 (set HOTLINE_STREAM_SECRET for several servers behind one number)"
            );
        }
        Auth {
            signatures,
            stream_tokens: Arc::new(stream_tokens),
            public_base_url: config.public_base_url.clone(),
            trust_proxy: security.trust_proxy,
        }
    }

    pub fn signatures_checked(&self) -> bool {
        self.signatures.is_some()
    }

    /// The public base URL (`https://host`) of this request.
    pub fn public_base(&self, headers: &HeaderMap) -> Result<String, String> {
        base_url::derive(self.public_base_url.as_deref(), self.trust_proxy, headers)
    }

    /// A webhook's signature: over its public URL and its form parameters.
    pub fn check_webhook(&self, headers: &HeaderMap, uri: &Uri, params: &[(String, String)]) -> Result<(), Refused> {
        let Some(verifier) = &self.signatures else { return Ok(()) };
        let url = format!("{}{}", self.public_base(headers).map_err(Refused::NoPublicUrl)?, path_and_query(uri));
        verifier.verify(&url, params, signature_of(headers)).map_err(|reason| Refused::Signature { reason, url })
    }

    /// An upgrade's signature: over the `wss://` URL the TwiML named, with
    /// no parameters (the guest names `wss://` on the public host).
    pub fn check_upgrade(&self, headers: &HeaderMap, uri: &Uri) -> Result<(), Refused> {
        let Some(verifier) = &self.signatures else { return Ok(()) };
        let base = self.public_base(headers).map_err(Refused::NoPublicUrl)?;
        let url = format!("{}{}", base_url::stream_base(&base), path_and_query(uri));
        verifier.verify(&url, &[], signature_of(headers)).map_err(|reason| Refused::Signature { reason, url })
    }
}

fn signature_of(headers: &HeaderMap) -> Option<&[u8]> {
    headers.get(signature::HEADER).map(|v| v.as_bytes())
}

fn path_and_query(uri: &Uri) -> &str {
    uri.path_and_query().map_or("/", |p| p.as_str())
}
