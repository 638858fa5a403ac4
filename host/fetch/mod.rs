//! The guests' `fetch`: one HTTP request made by the host for call logic,
//! under the host's policy (`HOTLINE_GUEST_*`), answered as the `fetched`
//! event. A refusal, a timeout, a body past the size limit or a failed
//! connection is an answer too, never a trap.
//!
//! - `policy.rs`: the checks before anything is sent.
//! - `mod.rs`: the request made, timed, size-limited and logged: one line
//!   per fetch with its method, origin, path (no query), status, size and
//!   time; never a header value or a body, so no secret reaches a log.
//!
//! `media/fetch.rs` runs them for a call (its cap on requests in flight).

mod policy;

use std::time::Instant;

use reqwest::Client;
use tracing::{info, warn};

use crate::config::GuestFetch;
use crate::sandbox::wit::{FetchError, HttpRequest, HttpResponse};
pub use policy::Checked;

/// The policy and the client (no redirects; `providers::http::fetch_client`).
pub struct Fetcher {
    client: Client,
    policy: GuestFetch,
}

/// How one fetch ended, for the logs and `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Refused,
    Timeout,
    TooLarge,
    Failed,
}

impl Outcome {
    pub const ALL: [Outcome; 5] = [Outcome::Ok, Outcome::Refused, Outcome::Timeout, Outcome::TooLarge, Outcome::Failed];

    pub fn name(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Refused => "refused",
            Outcome::Timeout => "timeout",
            Outcome::TooLarge => "too_large",
            Outcome::Failed => "failed",
        }
    }

    pub fn of(result: &Result<HttpResponse, FetchError>) -> Outcome {
        match result {
            Ok(_) => Outcome::Ok,
            Err(FetchError::Refused(_)) => Outcome::Refused,
            Err(FetchError::Timeout) => Outcome::Timeout,
            Err(FetchError::TooLarge) => Outcome::TooLarge,
            Err(FetchError::Failed(_)) => Outcome::Failed,
        }
    }
}

impl Fetcher {
    pub fn new(client: Client, policy: GuestFetch) -> Fetcher {
        Fetcher { client, policy }
    }

    pub fn policy(&self) -> &GuestFetch {
        &self.policy
    }

    /// Checks `request` against the policy; a refusal is logged here.
    pub fn check(&self, request: HttpRequest) -> Result<Checked, FetchError> {
        let id = request.id;
        policy::check(&self.policy, request).map_err(|reason| refused(id, reason))
    }

    /// Makes the request: its response, or why there is none.
    pub async fn perform(&self, request: Checked) -> Result<HttpResponse, FetchError> {
        let began = Instant::now();
        let (id, method, origin, path) =
            (request.id, request.method.clone(), request.origin(), request.url.path().to_string());
        let result = match tokio::time::timeout(self.policy.timeout, self.send(request)).await {
            Ok(result) => result,
            Err(_) => Err(FetchError::Timeout),
        };
        let ms = began.elapsed().as_millis() as u64;
        match &result {
            Ok(r) => {
                info!(event = "guest_fetch", id, %method, origin, path, status = r.status, bytes = r.body.len(), ms)
            }
            Err(e) => {
                let error = match e {
                    FetchError::Failed(why) => why.as_str(),
                    FetchError::Timeout => "timeout",
                    FetchError::TooLarge => "too large",
                    FetchError::Refused(why) => why.as_str(),
                };
                warn!(event = "guest_fetch_failed", id, %method, origin, path, outcome = Outcome::of(&result).name(), error, ms);
            }
        }
        result
    }

    async fn send(&self, request: Checked) -> Result<HttpResponse, FetchError> {
        let max = self.policy.max_bytes;
        let mut response = self
            .client
            .request(request.method, request.url)
            .headers(request.headers)
            .body(request.body)
            .send()
            .await
            .map_err(failure)?;
        if response.content_length().is_some_and(|len| len > max as u64) {
            return Err(FetchError::TooLarge);
        }
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| (name.as_str().to_string(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
            .collect();
        // Read by chunk and stop past the limit: a huge or endless body
        // costs at most the limit (plus one chunk) of memory.
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(failure)? {
            if body.len() + chunk.len() > max {
                return Err(FetchError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(HttpResponse { status, headers, body })
    }
}

fn refused(id: u32, reason: String) -> FetchError {
    warn!(event = "guest_fetch_refused", id, reason);
    FetchError::Refused(reason)
}

/// A connection or protocol failure, described without the URL (its query
/// is the guest's business, and never logged).
fn failure(e: reqwest::Error) -> FetchError {
    if e.is_timeout() {
        return FetchError::Timeout;
    }
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    FetchError::Failed(text)
}
