//! Request routing. Each handler is small; the WebSocket call itself lives
//! in `media`.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tracing::{error, info, warn};

use super::{base_url, ws};
use crate::app::App;
use crate::config::Mode;
use crate::guest::{CallMode, GuestError, TwimlError, Webhook};
use crate::twilio::form;

pub type Body = Full<Bytes>;

/// Largest WebSocket message accepted; Twilio's are a few hundred bytes.
pub const MAX_WS_MESSAGE: usize = 64 * 1024;

const REFUSAL_TWIML: &str = concat!(
    r#"<?xml version="1.0" encoding="UTF-8"?><Response>"#,
    "<Say>Sorry, we are updating our service right now. Please call back in a minute.</Say>",
    "<Hangup/></Response>"
);

pub async fn route(app: Arc<App>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let known = ["/healthz", "/readyz", "/version", "/ws/twilio-media"];
    let response = match (req.method(), req.uri().path()) {
        // Touches nothing shared: it must stay fast under any load.
        (&Method::GET | &Method::HEAD, "/healthz") => text(StatusCode::OK, "ok"),
        (&Method::GET, "/readyz") => readyz(&app),
        (&Method::GET, "/version") => version(&app),
        (&Method::POST, "/webhook/incoming_call") => incoming_call(&app, req).await,
        (&Method::POST, "/webhook/stream_status") => webhook_logged(&app, req, "stream_status").await,
        (&Method::POST, "/webhook/stream_ended") => webhook_logged(&app, req, "stream_ended").await,
        (&Method::GET, "/ws/twilio-media") => upgrade(app, req),
        (_, path) if path.starts_with("/admin/") => super::admin::handle(&app, req).await,
        (_, path) if known.contains(&path) || path.starts_with("/webhook/") => {
            text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
        }
        _ => text(StatusCode::NOT_FOUND, "not found"),
    };
    Ok(response)
}

fn respond(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, content_type)
        .body(Full::new(body.into()))
        .expect("static response parts are valid")
}

pub(super) fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    respond(status, "text/plain; charset=utf-8", body)
}

pub(super) fn json(status: StatusCode, value: serde_json::Value) -> Response<Body> {
    respond(status, "application/json", value.to_string())
}

fn xml(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    respond(status, "text/xml; charset=utf-8", body)
}

fn empty(status: StatusCode) -> Response<Body> {
    Response::builder().status(status).body(Full::default()).expect("static response parts are valid")
}

fn readyz(app: &App) -> Response<Body> {
    let active = app.versions.active();
    let draining = app.is_draining();
    let ready = active.is_some() && !draining;
    let body = json!({
        "ready": ready,
        "guest": { "loaded": active.is_some(), "digest": active.as_ref().map(|v| v.digest()) },
        // Configured or not, and how the newest request of each went: no
        // network call here, a failing provider does not make us unready.
        "providers": app.providers.health.report(),
        "draining": draining,
        "live_calls": app.calls.live(),
    });
    json(if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }, body)
}

fn version(app: &App) -> Response<Body> {
    let commit = option_env!("HOTLINE_GIT_COMMIT").filter(|c| !c.is_empty());
    let active = app.versions.active();
    json(
        StatusCode::OK,
        json!({
            "name": env!("CARGO_PKG_NAME"),
            "version": env!("CARGO_PKG_VERSION"),
            "git_commit": commit,
            "deploy_id": app.config.deploy_id,
            "guest_digest": active.as_ref().map(|v| v.digest()),
            "auto_rollback": app.versions.last_auto_rollback(),
        }),
    )
}

#[derive(Debug, thiserror::Error)]
pub(super) enum BodyError {
    #[error("body over {0} bytes")]
    TooLarge(usize),
    #[error("could not read body: {0}")]
    Read(String),
}

/// Reads a whole request body, refusing more than `limit` bytes.
pub(super) async fn read_body(req: Request<Incoming>, limit: usize) -> Result<Bytes, BodyError> {
    match Limited::new(req.into_body(), limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => Err(BodyError::TooLarge(limit)),
        Err(e) => Err(BodyError::Read(e.to_string())),
    }
}

/// Reads a size-limited, strictly parsed form body.
async fn read_form(app: &App, req: Request<Incoming>) -> Result<form::Form, Response<Body>> {
    let content_type = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !content_type.trim_start().to_ascii_lowercase().starts_with("application/x-www-form-urlencoded") {
        return Err(text(StatusCode::UNSUPPORTED_MEDIA_TYPE, "expected application/x-www-form-urlencoded"));
    }
    let limit = app.config.max_body_bytes;
    let body = match read_body(req, limit).await {
        Ok(body) => body,
        Err(e @ BodyError::TooLarge(_)) => {
            warn!(event = "webhook_rejected", reason = %e);
            return Err(text(StatusCode::PAYLOAD_TOO_LARGE, e.to_string()));
        }
        Err(e) => return Err(text(StatusCode::BAD_REQUEST, e.to_string())),
    };
    form::parse(&body).map_err(|e| {
        warn!(event = "webhook_rejected", reason = %e);
        text(StatusCode::BAD_REQUEST, format!("malformed form: {e}"))
    })
}

async fn incoming_call(app: &App, req: Request<Incoming>) -> Response<Body> {
    let base = base_url::derive(app.config.public_base_url.as_deref(), req.headers());
    let params = match read_form(app, req).await {
        Ok(p) => p,
        Err(response) => return response,
    };
    let call_sid = params.iter().find(|(k, _)| k == "CallSid").map(|(_, v)| v.clone()).unwrap_or_default();
    if app.is_draining() {
        info!(event = "incoming_refused", call_sid, reason = "draining");
        return xml(StatusCode::OK, REFUSAL_TWIML);
    }
    let Some(version) = app.versions.active() else {
        warn!(event = "incoming_refused", call_sid, reason = "no guest loaded");
        return xml(StatusCode::SERVICE_UNAVAILABLE, REFUSAL_TWIML);
    };
    let base_url = match base {
        Ok(b) => b,
        Err(reason) => return text(StatusCode::BAD_REQUEST, reason),
    };
    let mode = match app.config.mode {
        Mode::Stream => CallMode::Stream,
        Mode::Record => CallMode::Record,
    };
    let webhook = Webhook { params, base_url, mode };
    match version.guest.incoming_call(&webhook).await {
        Ok(Ok(twiml)) => {
            info!(event = "incoming_call", call_sid, mode = ?app.config.mode);
            xml(StatusCode::OK, twiml)
        }
        Ok(Err(TwimlError::BadRequest(reason))) => {
            warn!(event = "webhook_rejected", call_sid, reason);
            text(StatusCode::BAD_REQUEST, reason)
        }
        Ok(Err(TwimlError::Internal(reason))) => {
            error!(event = "twiml_error", call_sid, reason);
            text(StatusCode::INTERNAL_SERVER_ERROR, reason)
        }
        Err(e) => guest_failed(&call_sid, e),
    }
}

fn guest_failed(call_sid: &str, e: GuestError) -> Response<Body> {
    error!(event = "guest_trap", call_sid, error = %e, "incoming_call failed");
    text(StatusCode::INTERNAL_SERVER_ERROR, "call logic failed")
}

async fn webhook_logged(app: &App, req: Request<Incoming>, event: &'static str) -> Response<Body> {
    match read_form(app, req).await {
        Ok(params) => {
            let get = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str()).unwrap_or("");
            info!(
                event,
                call_sid = get("CallSid"),
                stream_sid = get("StreamSid"),
                stream_event = get("StreamEvent"),
                stream_error = get("StreamError"),
            );
            empty(StatusCode::NO_CONTENT)
        }
        Err(response) => response,
    }
}

fn upgrade(app: Arc<App>, mut req: Request<Incoming>) -> Response<Body> {
    let Some(version) = app.versions.active() else {
        return text(StatusCode::SERVICE_UNAVAILABLE, "no call logic loaded yet");
    };
    let accepted = match ws::accept(req.headers()) {
        Ok(r) => r,
        Err(reason) => {
            warn!(event = "ws_handshake_rejected", reason);
            return text(StatusCode::BAD_REQUEST, reason);
        }
    };
    let subprotocol = accepted.headers().contains_key(header::SEC_WEBSOCKET_PROTOCOL);
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => {
                warn!(event = "ws_upgrade_failed", error = %e);
                return;
            }
        };
        let config = WebSocketConfig::default()
            .max_message_size(Some(MAX_WS_MESSAGE))
            .max_frame_size(Some(MAX_WS_MESSAGE));
        let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config)).await;
        crate::media::run_call(app, version, ws, subprotocol).await;
    });
    let (parts, ()) = accepted.into_parts();
    Response::from_parts(parts, Full::default())
}
