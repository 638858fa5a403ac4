//! The one HTTP client every provider shares (connection pool, TLS,
//! timeouts), and the response checks they all need.

use anyhow::Context as _;
use reqwest::{Certificate, Client, RequestBuilder, Response};

use super::{ProviderError, ProviderSettings, Result};

/// Makes rustls with ring the process's TLS crypto (ring needs only a C
/// compiler to build, not cmake). Every reqwest client needs it; calling
/// it again is harmless.
pub fn install_tls() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

pub fn client(settings: &ProviderSettings) -> anyhow::Result<Client> {
    Ok(builder(settings)?.timeout(settings.request_timeout).build()?)
}

/// The client for the guests' `fetch`: the providers' TLS settings (their
/// CA file too), but redirects are not followed (the guest sees the 3xx and
/// decides: a redirect could leave the allowed origins) and the time limit
/// is the fetch's own, applied per request.
pub fn fetch_client(settings: &ProviderSettings) -> anyhow::Result<Client> {
    Ok(builder(settings)?.redirect(reqwest::redirect::Policy::none()).build()?)
}

/// `hotline doctor`'s client: the same TLS, redirects shown rather than
/// followed (a redirect is evidence), no whole-request timeout (the doctor
/// times each request itself).
pub fn probe_client(settings: &ProviderSettings) -> anyhow::Result<Client> {
    Ok(builder(settings)?.redirect(reqwest::redirect::Policy::none()).build()?)
}

fn builder(settings: &ProviderSettings) -> anyhow::Result<reqwest::ClientBuilder> {
    install_tls();
    let mut builder = Client::builder();
    if let Some(path) = &settings.ca_file {
        let pem = std::fs::read(path).with_context(|| format!("HOTLINE_PROVIDER_CA_FILE={}", path.display()))?;
        let certs = Certificate::from_pem_bundle(&pem)
            .with_context(|| format!("HOTLINE_PROVIDER_CA_FILE={}: not PEM certificates", path.display()))?;
        builder = builder.tls_certs_merge(certs);
    }
    Ok(builder
        .connect_timeout(settings.connect_timeout)
        .tcp_nodelay(true)
        .user_agent(concat!("hotline/", env!("CARGO_PKG_VERSION"))))
}

/// Sends `request`; a non-2xx answer becomes [`ProviderError::Status`]
/// with the start of its body.
pub async fn send(request: RequestBuilder, settings_timeout: std::time::Duration) -> Result<Response> {
    let response = request.send().await.map_err(|e| ProviderError::from_reqwest(e, settings_timeout))?;
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let body = response.text().await.unwrap_or_default();
    Err(ProviderError::status(status, &body))
}
