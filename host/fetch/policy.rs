//! What the host checks before a guest's request leaves: the method, the
//! URL and its origin against `HOTLINE_GUEST_ALLOWED_HOSTS`, the headers
//! (no hop-by-hop ones, no `Host`), the body's size and the secrets it
//! names. Anything wrong is a refusal with its reason; nothing is sent.

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Url};

use crate::config::{GuestFetch, MAX_REQUEST_BYTES};
use crate::sandbox::wit::HttpRequest;

/// A request that passed the checks, ready to send.
pub struct Checked {
    pub id: u32,
    pub method: Method,
    pub url: Url,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Checked {
    /// `scheme://host[:port]`, for the logs.
    pub fn origin(&self) -> String {
        self.url.origin().ascii_serialization()
    }
}

/// Headers a guest may not set: the connection's own (hop-by-hop), and
/// those the client computes from the URL and the body.
const FORBIDDEN: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
];

/// More headers than a call's request plausibly needs.
const MAX_HEADERS: usize = 64;

/// The request as it will be sent, or why it will not be.
pub fn check(policy: &GuestFetch, request: HttpRequest) -> Result<Checked, String> {
    let method = match request.method.as_str() {
        "GET" => Method::GET,
        "POST" => Method::POST,
        "PUT" => Method::PUT,
        "PATCH" => Method::PATCH,
        "DELETE" => Method::DELETE,
        "HEAD" => Method::HEAD,
        other => return Err(format!("method {:?} is not GET, POST, PUT, PATCH, DELETE or HEAD", short(other))),
    };
    let url = Url::parse(&request.url).map_err(|e| format!("the URL does not parse: {e}"))?;
    if !matches!(url.scheme(), "https" | "http") || url.host_str().is_none() {
        return Err("the URL must be https:// (or http:// to an allowed loopback host)".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("the URL may not carry a user or password: use secret-headers".into());
    }
    if policy.allowed.is_empty() {
        return Err("fetch is off: HOTLINE_GUEST_ALLOWED_HOSTS is empty".into());
    }
    if !policy.allowed.iter().any(|origin| origin.allows(&url)) {
        let origin = url.origin().ascii_serialization();
        return Err(format!("{origin} is not in HOTLINE_GUEST_ALLOWED_HOSTS"));
    }
    if request.body.len() > MAX_REQUEST_BYTES {
        return Err(format!("the body is {} bytes, more than {MAX_REQUEST_BYTES}", request.body.len()));
    }
    if request.headers.len() + request.secret_headers.len() > MAX_HEADERS {
        return Err(format!("more than {MAX_HEADERS} headers"));
    }
    let mut headers = HeaderMap::new();
    for (name, value) in &request.headers {
        let value =
            HeaderValue::from_str(value).map_err(|_| format!("header {:?} has an invalid value", short(name)))?;
        headers.append(header_name(name)?, value);
    }
    for (name, secret) in &request.secret_headers {
        let secret = policy.secrets.get(secret).ok_or_else(|| format!("unknown secret {:?}", short(secret)))?;
        // Checked when the settings were read.
        let mut value = HeaderValue::from_str(secret.expose()).map_err(|_| "a secret is not a header value")?;
        value.set_sensitive(true);
        headers.insert(header_name(name)?, value);
    }
    Ok(Checked { id: request.id, method, url, headers, body: request.body })
}

fn header_name(name: &str) -> Result<HeaderName, String> {
    let parsed =
        HeaderName::from_bytes(name.as_bytes()).map_err(|_| format!("{:?} is not a header name", short(name)))?;
    if FORBIDDEN.contains(&parsed.as_str()) {
        return Err(format!("header {:?} is the host's to set", parsed.as_str()));
    }
    Ok(parsed)
}

/// At most 64 characters of something the guest wrote, for a message.
fn short(text: &str) -> &str {
    match text.char_indices().nth(64) {
        Some((at, _)) => &text[..at],
        None => text,
    }
}
