//! What can go wrong talking to a provider, in terms the caller can act on:
//! whether one retry may help, and a message safe to log (never a secret,
//! never a whole response body).

/// Longest piece of an error body kept in a message.
const BODY_SNIPPET: usize = 300;

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("could not connect: {0}")]
    Connect(String),
    #[error("timed out after {0:?}")]
    Timeout(std::time::Duration),
    #[error("HTTP {status}: {body}")]
    Status { status: u16, body: String },
    /// The connection broke after the response had started.
    #[error("stream broke: {0}")]
    Stream(String),
    /// The response was not what the API promises.
    #[error("unexpected response: {0}")]
    Protocol(String),
    #[error("authentication failed: {0}")]
    Auth(String),
    /// What the call logic asked for cannot be sent (a tool's schema that
    /// is not a JSON object): refused before any request, like a 400.
    #[error("bad request: {0}")]
    Request(String),
}

/// What kind of failure, as `/metrics` labels it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    Connect,
    Timeout,
    RateLimited,
    Http4xx,
    Http5xx,
    Stream,
    Protocol,
    Auth,
}

impl ErrorClass {
    pub const ALL: [ErrorClass; 8] = [
        ErrorClass::Connect,
        ErrorClass::Timeout,
        ErrorClass::RateLimited,
        ErrorClass::Http4xx,
        ErrorClass::Http5xx,
        ErrorClass::Stream,
        ErrorClass::Protocol,
        ErrorClass::Auth,
    ];

    pub fn name(self) -> &'static str {
        match self {
            ErrorClass::Connect => "connect",
            ErrorClass::Timeout => "timeout",
            ErrorClass::RateLimited => "rate_limited",
            ErrorClass::Http4xx => "http_4xx",
            ErrorClass::Http5xx => "http_5xx",
            ErrorClass::Stream => "stream",
            ErrorClass::Protocol => "protocol",
            ErrorClass::Auth => "auth",
        }
    }
}

impl ProviderError {
    pub fn class(&self) -> ErrorClass {
        match self {
            ProviderError::Connect(_) => ErrorClass::Connect,
            ProviderError::Timeout(_) => ErrorClass::Timeout,
            ProviderError::Status { status: 429, .. } => ErrorClass::RateLimited,
            ProviderError::Status { status: 401 | 403, .. } | ProviderError::Auth(_) => ErrorClass::Auth,
            ProviderError::Status { status, .. } if *status >= 500 => ErrorClass::Http5xx,
            ProviderError::Status { .. } | ProviderError::Request(_) => ErrorClass::Http4xx,
            ProviderError::Stream(_) => ErrorClass::Stream,
            ProviderError::Protocol(_) => ErrorClass::Protocol,
        }
    }

    /// One retry may help: the request never got an answer, or the server
    /// said it was overloaded or broken.
    pub fn retryable(&self) -> bool {
        match self {
            ProviderError::Connect(_) | ProviderError::Timeout(_) => true,
            ProviderError::Status { status, .. } => *status == 429 || *status >= 500,
            ProviderError::Stream(_)
            | ProviderError::Protocol(_)
            | ProviderError::Auth(_)
            | ProviderError::Request(_) => false,
        }
    }

    pub fn status(status: reqwest::StatusCode, body: &str) -> ProviderError {
        let mut body: String = body.chars().filter(|c| !c.is_control()).take(BODY_SNIPPET).collect();
        if body.is_empty() {
            body = status.canonical_reason().unwrap_or("no body").to_string();
        }
        ProviderError::Status { status: status.as_u16(), body }
    }

    /// Classifies a reqwest error. `timeout` is the request's budget.
    pub fn from_reqwest(e: reqwest::Error, timeout: std::time::Duration) -> ProviderError {
        // reqwest's Display includes the URL, which never holds a secret here
        // (keys travel in headers), but not the error's cause: add it.
        let message = error_chain(&e);
        if e.is_timeout() {
            ProviderError::Timeout(timeout)
        } else if e.is_connect() {
            ProviderError::Connect(message)
        } else if e.is_body() || e.is_decode() {
            ProviderError::Stream(message)
        } else {
            ProviderError::Connect(message)
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    message
}
