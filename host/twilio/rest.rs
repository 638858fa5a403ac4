//! Twilio's REST API, the two requests call control needs: update a live
//! call (`Twiml`, `Url`, or `Status=completed`) and create one. Form posts
//! with HTTP Basic auth over the providers' HTTP client (same TLS, same
//! timeouts). Twilio's errors come back as `{code, message, status}`.
//!
//! Retries: an update is safe to repeat (it sets the call's state), so it
//! gets one retry after a 429, a 5xx or a transport failure; a create is
//! not (a 5xx may have placed the call), so it is retried only when Twilio
//! certainly did nothing: a 429, or a connection that never opened.

use std::time::Duration;

use reqwest::{Client, StatusCode};
use serde::Deserialize;
use tracing::warn;

use crate::settings::TwilioRest;

/// Pause before the one retry.
const RETRY_DELAY: Duration = Duration::from_millis(500);

/// What an update does to a live call.
#[derive(Debug, Clone, PartialEq)]
pub enum CallUpdate {
    /// Replace what the call runs with this TwiML (e.g. a `<Dial>`).
    Twiml(String),
    /// Have Twilio fetch TwiML from here.
    Url(String),
    /// Hang up.
    Complete,
}

/// A call to place.
#[derive(Debug, Clone, PartialEq)]
pub struct NewCall {
    pub to: String,
    pub from: String,
    /// Where Twilio fetches the TwiML once the call is answered.
    pub url: String,
    pub status_callback: Option<String>,
    /// Answering-machine detection, reported asynchronously to this URL.
    pub amd_callback: Option<String>,
}

/// Twilio's answer about a call.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CallInfo {
    pub sid: String,
    pub status: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RestError {
    /// Twilio answered with an error (its code and message when it gave them).
    #[error("Twilio answered {status}{}: {message}", code.map(|c| format!(" (error {c})")).unwrap_or_default())]
    Status { status: u16, code: Option<i64>, message: String },
    /// No answer: DNS, connection, TLS, timeout.
    #[error("Twilio's API did not answer: {message}")]
    Transport { message: String, connected: bool },
    /// A 2xx whose body was not the call Twilio describes.
    #[error("Twilio's answer was not a call: {0}")]
    Unreadable(String),
}

impl RestError {
    /// Repeating the request may help.
    fn transient(&self) -> bool {
        match self {
            RestError::Status { status, .. } => *status == 429 || *status >= 500,
            RestError::Transport { .. } => true,
            RestError::Unreadable(_) => false,
        }
    }

    /// Twilio certainly did nothing (so even a create may be repeated).
    fn refused_before_acting(&self) -> bool {
        match self {
            RestError::Status { status, .. } => *status == 429,
            RestError::Transport { connected, .. } => !connected,
            RestError::Unreadable(_) => false,
        }
    }

    /// The call is not there (over already, or never was): 404.
    pub fn is_not_found(&self) -> bool {
        matches!(self, RestError::Status { status: 404, .. })
    }

    /// A short class for logs and metrics.
    pub fn class(&self) -> &'static str {
        match self {
            RestError::Status { status: 401 | 403, .. } => "unauthorized",
            RestError::Status { status: 404, .. } => "not_found",
            RestError::Status { status: 429, .. } => "rate_limited",
            RestError::Status { status, .. } if *status >= 500 => "server_error",
            RestError::Status { .. } => "rejected",
            RestError::Transport { .. } => "unreachable",
            RestError::Unreadable(_) => "unreadable",
        }
    }
}

pub struct Rest {
    client: Client,
    settings: TwilioRest,
}

impl Rest {
    pub fn new(client: Client, settings: TwilioRest) -> Rest {
        Rest { client, settings }
    }

    /// Outbound calls' default caller ID.
    pub fn dial_from(&self) -> Option<&str> {
        self.settings.dial_from.as_deref()
    }

    /// Updates a live call; one retry where safe.
    pub async fn update_call(&self, call_sid: &str, update: &CallUpdate) -> Result<CallInfo, RestError> {
        let path = format!("Calls/{call_sid}.json");
        let form: Vec<(&str, &str)> = match update {
            CallUpdate::Twiml(twiml) => vec![("Twiml", twiml)],
            CallUpdate::Url(url) => vec![("Url", url), ("Method", "POST")],
            CallUpdate::Complete => vec![("Status", "completed")],
        };
        self.with_retry(|e| e.transient(), || self.post(&path, &form)).await
    }

    /// Places a call; retried only when Twilio certainly did not act.
    pub async fn create_call(&self, call: &NewCall) -> Result<CallInfo, RestError> {
        let mut form: Vec<(&str, &str)> = vec![("To", &call.to), ("From", &call.from), ("Url", &call.url)];
        if let Some(url) = &call.status_callback {
            form.extend([
                ("StatusCallback", url.as_str()),
                ("StatusCallbackEvent", "initiated ringing answered completed"),
            ]);
        }
        if let Some(url) = &call.amd_callback {
            form.extend([
                ("MachineDetection", "DetectMessageEnd"),
                ("AsyncAmd", "true"),
                ("AsyncAmdStatusCallback", url.as_str()),
            ]);
        }
        self.with_retry(RestError::refused_before_acting, || self.post("Calls.json", &form)).await
    }

    async fn with_retry<F, Fut>(&self, worth_it: impl Fn(&RestError) -> bool, attempt: F) -> Result<CallInfo, RestError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<CallInfo, RestError>>,
    {
        match attempt().await {
            Err(e) if worth_it(&e) => {
                warn!(event = "twilio_rest_retry", error = %e);
                tokio::time::sleep(RETRY_DELAY).await;
                attempt().await
            }
            result => result,
        }
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> Result<CallInfo, RestError> {
        let s = &self.settings;
        let url = format!("{}/2010-04-01/Accounts/{}/{path}", s.api_url, s.account_sid);
        let response = self
            .client
            .post(url)
            .basic_auth(&s.user, Some(s.secret.expose()))
            .form(form)
            .send()
            .await
            .map_err(|e| RestError::Transport { message: e.to_string(), connected: !e.is_connect() })?;
        let status = response.status();
        let body =
            response.bytes().await.map_err(|e| RestError::Transport { message: e.to_string(), connected: true })?;
        if !status.is_success() {
            return Err(error_of(status, &body));
        }
        serde_json::from_slice(&body).map_err(|e| RestError::Unreadable(e.to_string()))
    }
}

/// Twilio's error body (`{"code": 20404, "message": "...", "status": 404}`),
/// or the start of whatever came instead.
fn error_of(status: StatusCode, body: &[u8]) -> RestError {
    #[derive(Deserialize)]
    struct TwilioError {
        code: Option<i64>,
        message: Option<String>,
    }
    let parsed: Option<TwilioError> = serde_json::from_slice(body).ok();
    let message = match parsed.as_ref().and_then(|e| e.message.clone()) {
        Some(message) => message,
        None => String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
    };
    RestError::Status { status: status.as_u16(), code: parsed.and_then(|e| e.code), message }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twilio_errors_keep_their_code_and_message() {
        let body = br#"{"code": 20404, "message": "The requested resource was not found", "more_info": "https://www.twilio.com/docs/errors/20404", "status": 404}"#;
        let e = error_of(StatusCode::NOT_FOUND, body);
        assert!(e.is_not_found() && !e.transient());
        assert_eq!(e.to_string(), "Twilio answered 404 (error 20404): The requested resource was not found");
        let e = error_of(StatusCode::BAD_GATEWAY, b"<html>bad gateway</html>");
        assert!(e.transient() && !e.refused_before_acting());
        assert_eq!(
            (e.class(), e.to_string().as_str()),
            ("server_error", "Twilio answered 502: <html>bad gateway</html>")
        );
        let e = error_of(StatusCode::TOO_MANY_REQUESTS, br#"{"code": 20429, "message": "Too Many Requests"}"#);
        assert!(e.transient() && e.refused_before_acting());
        assert_eq!(error_of(StatusCode::UNAUTHORIZED, b"{}").class(), "unauthorized");
    }
}
