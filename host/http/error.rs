//! Every way a request can fail, and the one place that turns a failure
//! into a response and a log line (as axum's `AppError`): the same failure
//! gets the same status and the same log event wherever it happens.

use http::{HeaderValue, Response, StatusCode, header};
use serde_json::json;
use tracing::{error, info, warn};

use super::respond::{Body, json, text, xml};
use super::session::Invalid;
use crate::sandbox::GuestError;
use crate::twilio::form::FormError;
use crate::twilio::signature::Rejection;
use crate::versions::{LoadError, NothingToRollBack};

/// What a caller hears when the call cannot be taken right now (draining,
/// no guest loaded yet): Twilio speaks it and hangs up.
const REFUSAL_TWIML: &str = concat!(
    r#"<?xml version="1.0" encoding="UTF-8"?><Response>"#,
    "<Say>Sorry, we are updating our service right now. Please call back in a minute.</Say>",
    "<Hangup/></Response>"
);

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("expected {0}")]
    UnsupportedMediaType(&'static str),
    #[error("body over {0} bytes")]
    BodyTooLarge(usize),
    #[error("body not received within {0:?}")]
    BodyTimeout(std::time::Duration),
    #[error("could not read body: {0}")]
    BodyUnreadable(String),
    #[error("malformed form: {0}")]
    BadForm(#[from] FormError),
    /// A webhook that lacks what it needs (a usable host name...); also the
    /// call logic's own `bad-request` answer to a webhook.
    #[error("{0}")]
    BadRequest(String),
    /// Not a WebSocket upgrade hotline can accept.
    #[error("{0}")]
    Handshake(String),
    /// A new call while the server drains: refused politely, in TwiML.
    #[error("draining")]
    Draining,
    /// A new call or stream before the first guest version is active.
    #[error("no call logic loaded yet")]
    NoGuest,
    /// A WebSocket upgrade before the first guest version is active.
    #[error("no call logic loaded yet")]
    NoGuestForStream,
    /// A WebSocket upgrade refused: draining, or at the call limit.
    #[error("stream refused: {0}")]
    StreamRefused(&'static str),
    /// The call logic failed (trap, deadline) or had no free instance.
    #[error("{0}")]
    Guest(#[from] GuestError),
    /// The call logic ran but says it cannot produce TwiML.
    #[error("{0}")]
    Twiml(String),
    #[error("missing or wrong bearer token")]
    Unauthorized { path: String },
    /// Too many wrong admin tokens from this address lately.
    #[error("too many failed attempts; retry in {}s", retry_after.as_secs().max(1))]
    TooManyAttempts { retry_after: std::time::Duration },
    /// A webhook or upgrade without a valid `X-Twilio-Signature`; `url` is
    /// the URL the signature was checked against.
    #[error("Twilio signature {reason}")]
    Signature { reason: Rejection, url: String },
    /// A component upload that did not pass the load pipeline (which logs
    /// its own `guest_rejected`).
    #[error(transparent)]
    Rejected(#[from] LoadError),
    /// A component upload that could not even be read.
    #[error("{0}")]
    UploadUnreadable(Box<AppError>),
    #[error(transparent)]
    NothingToRollBack(#[from] NothingToRollBack),
    /// A push or rollback the fleet's database could not take (logged by
    /// `fleet`, as `fleet_push_failed`): nothing changed anywhere.
    #[error("{0}: nothing was activated")]
    FleetUnavailable(String),
    /// A records API query that cannot be understood (names the parameter).
    #[error("{0}")]
    BadQuery(String),
    /// The records API with records off (`HOTLINE_DATA_DIR=off`).
    #[error("call records are off (HOTLINE_DATA_DIR=off, no DATABASE_URL)")]
    RecordsOff,
    /// A recorded call without a recording (recordings off, or refused).
    #[error("this call has no recording")]
    NoRecording,
    /// The record names a recording whose file cannot be read (removed by
    /// hand, or the data directory moved).
    #[error("the recording's file cannot be read: {0}")]
    RecordingUnreadable(String),
    /// A `Range` outside the file (its length given back).
    #[error("range not satisfiable (the file has {0} bytes)")]
    RangeNotSatisfiable(u64),
    /// Call control without Twilio's REST API configured.
    #[error("call control is off: set TWILIO_ACCOUNT_SID with TWILIO_AUTH_TOKEN (or an API key)")]
    CallControlOff,
    /// Twilio's REST API refused or failed a request.
    #[error("{0}")]
    Twilio(crate::twilio::rest::RestError),
    /// The records' database failed to answer a read.
    #[error("the records database failed: {0}")]
    Store(String),
    /// A session cookie that is not (or no longer) valid: signed with
    /// another token, tampered with, or expired.
    #[error("session {}: sign in again", match why { Invalid::Expired => "expired", _ => "invalid" })]
    SessionInvalid { why: Invalid, path: String },
    /// A wrong token at `POST /api/auth/login`.
    #[error("wrong token")]
    LoginFailed { ip: Option<std::net::IpAddr> },
    /// A state-changing request a browser sent from another site (or a
    /// cookie-authenticated one without `X-Hotline-CSRF`).
    #[error("cross-site request refused: {0}")]
    CrossSite(&'static str),
    /// A binary built without `ui/dist` (it is committed; only a checkout
    /// that deleted it gets here).
    #[error("the dashboard is not built into this binary (cd ui && npm ci && npm run build)")]
    DashboardNotBuilt,
}

impl AppError {
    /// The response, and the log line, for this failure.
    pub fn into_response(self) -> Response<Body> {
        let reason = self.to_string();
        match self {
            AppError::NotFound => text(StatusCode::NOT_FOUND, reason),
            AppError::MethodNotAllowed => text(StatusCode::METHOD_NOT_ALLOWED, reason),
            AppError::UnsupportedMediaType(_) => text(StatusCode::UNSUPPORTED_MEDIA_TYPE, reason),
            AppError::BodyTooLarge(_) => {
                warn!(event = "webhook_rejected", reason);
                text(StatusCode::PAYLOAD_TOO_LARGE, reason)
            }
            AppError::BodyUnreadable(_) => text(StatusCode::BAD_REQUEST, reason),
            AppError::BodyTimeout(_) => {
                warn!(event = "webhook_rejected", reason);
                text(StatusCode::REQUEST_TIMEOUT, reason)
            }
            AppError::BadForm(_) | AppError::BadRequest(_) => {
                hotline_telemetry::warn_throttled!(event = "webhook_rejected", reason);
                text(StatusCode::BAD_REQUEST, reason)
            }
            AppError::Draining => {
                info!(event = "incoming_refused", reason = "draining");
                xml(StatusCode::OK, REFUSAL_TWIML)
            }
            AppError::NoGuest => {
                warn!(event = "incoming_refused", reason = "no guest loaded");
                xml(StatusCode::SERVICE_UNAVAILABLE, REFUSAL_TWIML)
            }
            AppError::Handshake(_) => {
                hotline_telemetry::warn_throttled!(event = "ws_handshake_rejected", reason);
                text(StatusCode::BAD_REQUEST, reason)
            }
            AppError::NoGuestForStream => text(StatusCode::SERVICE_UNAVAILABLE, reason),
            AppError::StreamRefused(why) => {
                warn!(event = "ws_refused", reason = why);
                text(StatusCode::SERVICE_UNAVAILABLE, reason)
            }
            // No free instance for a webhook: the caller hears the polite
            // refusal (Twilio plays an "application error" for a non-2xx).
            AppError::Guest(e @ GuestError::NoCapacity(_)) => {
                warn!(event = "incoming_refused", reason = "no capacity", error = %e);
                xml(StatusCode::OK, REFUSAL_TWIML)
            }
            AppError::Guest(e) => {
                error!(event = e.event(), error = %e);
                text(StatusCode::INTERNAL_SERVER_ERROR, "call logic failed")
            }
            AppError::Twiml(_) => {
                error!(event = "twiml_error", reason);
                text(StatusCode::INTERNAL_SERVER_ERROR, reason)
            }
            AppError::Signature { reason, url } => {
                hotline_telemetry::warn_throttled!(event = "signature_rejected", reason = reason.name(), url);
                text(StatusCode::FORBIDDEN, "invalid Twilio signature")
            }
            AppError::TooManyAttempts { retry_after } => {
                let mut response = text(StatusCode::TOO_MANY_REQUESTS, reason);
                let secs = retry_after.as_secs().max(1).to_string();
                response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_str(&secs).expect("digits"));
                response
            }
            AppError::Unauthorized { path } => {
                hotline_telemetry::warn_throttled!(event = "admin_unauthorized", path);
                let mut response = text(StatusCode::UNAUTHORIZED, reason);
                response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                response
            }
            AppError::Rejected(e) => rejection(StatusCode::UNPROCESSABLE_ENTITY, &e.step.to_string(), &e.reason),
            AppError::UploadUnreadable(inner) => {
                warn!(event = "guest_rejected", source = "admin upload", step = "read", reason);
                let status = match *inner {
                    AppError::BodyTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
                    _ => StatusCode::BAD_REQUEST,
                };
                rejection(status, "read", &reason)
            }
            AppError::NothingToRollBack(_) => rejection(StatusCode::CONFLICT, "rollback", &reason),
            AppError::FleetUnavailable(_) => rejection(StatusCode::SERVICE_UNAVAILABLE, "fleet", &reason),
            AppError::BadQuery(_) => api_error(StatusCode::BAD_REQUEST, &reason),
            AppError::RecordsOff | AppError::NoRecording => api_error(StatusCode::NOT_FOUND, &reason),
            AppError::CallControlOff => api_error(StatusCode::CONFLICT, &reason),
            AppError::Twilio(e) => {
                hotline_telemetry::warn_throttled!(event = "twilio_rest_failed", class = e.class(), reason);
                api_error(StatusCode::BAD_GATEWAY, &reason)
            }
            AppError::RecordingUnreadable(_) => {
                hotline_telemetry::warn_throttled!(event = "recording_unreadable", reason);
                api_error(StatusCode::NOT_FOUND, &reason)
            }
            AppError::RangeNotSatisfiable(len) => {
                let mut response = api_error(StatusCode::RANGE_NOT_SATISFIABLE, &reason);
                let range = http::HeaderValue::from_str(&format!("bytes */{len}")).expect("digits are a header value");
                response.headers_mut().insert(http::header::CONTENT_RANGE, range);
                response
            }
            AppError::Store(_) => {
                hotline_telemetry::warn_throttled!(event = "api_store_error", reason);
                api_error(StatusCode::SERVICE_UNAVAILABLE, "the records database is unavailable")
            }
            AppError::SessionInvalid { why, path } => {
                // Expiry is routine; a forged or malformed cookie is not.
                if why == Invalid::Expired {
                    info!(event = "session_refused", why = ?why, path);
                } else {
                    hotline_telemetry::warn_throttled!(event = "session_refused", why = ?why, path);
                }
                api_error(StatusCode::UNAUTHORIZED, &reason)
            }
            AppError::LoginFailed { ip } => {
                hotline_telemetry::warn_throttled!(event = "login_failed", ip = ip.map(|ip| ip.to_string()));
                api_error(StatusCode::UNAUTHORIZED, &reason)
            }
            AppError::DashboardNotBuilt => text(StatusCode::SERVICE_UNAVAILABLE, reason),
            AppError::CrossSite(why) => {
                hotline_telemetry::warn_throttled!(event = "cross_site_refused", why);
                api_error(StatusCode::FORBIDDEN, &reason)
            }
        }
    }
}

/// A records API request that failed, as JSON.
fn api_error(status: StatusCode, reason: &str) -> Response<Body> {
    json(status, json!({ "error": reason }))
}

/// An admin request the server refused: which step, and why.
fn rejection(status: StatusCode, step: &str, reason: &str) -> Response<Body> {
    json(status, json!({ "error": { "step": step, "reason": reason } }))
}

impl From<crate::admission::Refused> for AppError {
    fn from(refused: crate::admission::Refused) -> Self {
        use crate::admission::Refused;
        match refused {
            Refused::NoPublicUrl(reason) => AppError::BadRequest(reason),
            Refused::Signature { reason, url } => AppError::Signature { reason, url },
        }
    }
}

impl From<crate::fleet::FleetError> for AppError {
    fn from(e: crate::fleet::FleetError) -> Self {
        use crate::fleet::FleetError;
        match e {
            FleetError::Load(e) => AppError::Rejected(e),
            FleetError::NothingToRollBack(e) => AppError::NothingToRollBack(e),
            other => AppError::FleetUnavailable(other.to_string()),
        }
    }
}
