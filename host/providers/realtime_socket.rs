//! The WebSocket of OpenAI's Realtime API, opened the same way by both of
//! its clients here: the transcription (`openai_realtime.rs`) and the whole
//! agent (`realtime_agent.rs`). TLS built once per provider, the API key as
//! a bearer token, the connect timeout; each client gives its own URL (its
//! query) and sends its own first messages.

use std::sync::Arc;

use hotline_common::Secret;

use super::streaming::{self, Socket};
use super::{ProviderSettings, Result};

/// Opens the sockets of one client (TLS built once, not per call).
pub struct Dialer {
    providers: ProviderSettings,
    tls: Arc<rustls::ClientConfig>,
}

impl Dialer {
    /// Fails on a CA file it cannot read (as the HTTP client does).
    pub fn new(providers: &ProviderSettings) -> Result<Dialer> {
        let tls = streaming::tls_config(providers)?;
        Ok(Dialer { providers: providers.clone(), tls })
    }

    /// Opens one socket to `url` (the endpoint with the client's query).
    pub async fn open(&self, url: &str, api_key: &Secret) -> Result<Socket> {
        let auth = format!("Bearer {}", api_key.expose());
        let request = streaming::request(url, &[("authorization", &auth)])?;
        streaming::open(&self.providers, &self.tls, request).await
    }
}
