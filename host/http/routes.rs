//! Request routing. Each handler is small and returns `Result<_, AppError>`;
//! `error.rs` turns failures into responses. The WebSocket call itself lives
//! in `media`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::{HeaderMap, Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tracing::{Instrument, Span, field, info, info_span, warn};

use super::error::AppError;
use super::gather::GatherWrites;
use super::respond::{Body, empty, json, read_form, text, xml};
use super::table::{Entry, Found, find};
use super::ws;
use crate::admission::limits::Peer;
use crate::app::App;
use crate::sandbox::wit;
use crate::twilio::{params, stream_token};

/// Largest WebSocket message accepted; Twilio's are a few hundred bytes.
pub const MAX_WS_MESSAGE: usize = 64 * 1024;
/// Read buffer of a call's WebSocket (tungstenite's default is 128 KiB).
/// A media message is ~330 bytes; a bigger one (`start`) grows the buffer
/// to its length. The codec zero-fills up to this much before every read,
/// and a live call keeps it: 1 KiB still takes three frames a read when
/// the server is behind.
const WS_READ_BUFFER: usize = 1024;
/// What a call's socket may hold unsent when the peer stops reading: a
/// long reply's frames at once (15 s of audio is ~250 KiB of JSON), and no
/// more. Past it the write fails and the call ends; unbounded, a peer that
/// pings without reading the pongs grew the server by gigabytes.
const MAX_WS_WRITE_BUFFER: usize = 1 << 20;
/// How long a webhook or an upgrade that arrives while the first guest
/// version loads (start-up) is held before it is refused. Twilio waits 15 s
/// for a webhook.
const GUEST_LOAD_WAIT: Duration = Duration::from_secs(5);

/// The server's own routes; `/admin/*`, `/api/*` and `/app/*` have tables
/// of their own (`admin.rs`, `api.rs` with `session.rs`, `dashboard.rs`).
#[derive(Clone, Copy)]
pub(super) enum Endpoint {
    Root,
    Healthz,
    Readyz,
    Version,
    Metrics,
    IncomingCall,
    StreamStatus,
    StreamEnded,
    DialEnded,
    Amd,
    CallStatus,
    Media,
}

pub(super) const ROUTES: &[Entry<Endpoint>] = &[
    // Platforms that check a deployment at its root (Replit, some load
    // balancers) get a 200 too; nothing is served there.
    Entry::new(Method::GET, "/", Endpoint::Root),
    Entry::new(Method::HEAD, "/", Endpoint::Root),
    Entry::new(Method::GET, "/healthz", Endpoint::Healthz),
    Entry::new(Method::HEAD, "/healthz", Endpoint::Healthz),
    Entry::new(Method::GET, "/readyz", Endpoint::Readyz),
    Entry::new(Method::GET, "/version", Endpoint::Version),
    Entry::new(Method::GET, "/metrics", Endpoint::Metrics),
    Entry::new(Method::POST, "/webhook/incoming_call", Endpoint::IncomingCall),
    Entry::new(Method::POST, "/webhook/stream_status", Endpoint::StreamStatus),
    Entry::new(Method::POST, "/webhook/stream_ended", Endpoint::StreamEnded),
    Entry::new(Method::POST, "/webhook/dial_ended", Endpoint::DialEnded),
    Entry::new(Method::POST, "/webhook/amd", Endpoint::Amd),
    Entry::new(Method::POST, "/webhook/call_status", Endpoint::CallStatus),
    Entry::new(Method::GET, "/ws/twilio-media", Endpoint::Media),
];

pub async fn route(app: Arc<App>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path();
    let result = match find(ROUTES, req.method(), path) {
        Found::Route(endpoint, _) => match endpoint {
            // Touches nothing shared: it must stay fast under any load.
            Endpoint::Healthz => Ok(text(StatusCode::OK, "ok")),
            Endpoint::Root => Ok(text(StatusCode::OK, "hotline: see /healthz, /readyz, /version")),
            Endpoint::Readyz => Ok(readyz(&app)),
            Endpoint::Version => Ok(version(&app)),
            Endpoint::Metrics => metrics(&app, &req),
            Endpoint::IncomingCall => webhook(incoming_call(&app, req)).await,
            Endpoint::StreamStatus => webhook(webhook_logged(&app, req, "stream_status")).await,
            Endpoint::StreamEnded => webhook(super::control::stream_ended(&app, req)).await,
            Endpoint::DialEnded => webhook(super::control::dial_ended(&app, req)).await,
            Endpoint::Amd => webhook(super::control::amd(&app, req)).await,
            Endpoint::CallStatus => webhook(webhook_logged(&app, req, "call_status")).await,
            Endpoint::Media => upgrade(app, req).await,
        },
        // Any other method on a webhook's path, known or not, is refused
        // as a webhook's would be.
        Found::WrongMethod => Err(AppError::MethodNotAllowed),
        Found::Unknown if path.starts_with("/admin/") => super::admin::handle(&app, req).await,
        Found::Unknown if path.starts_with("/api/") => super::api::handle(&app, req).await,
        Found::Unknown if path == "/app" || path.starts_with("/app/") => super::dashboard::handle(&app, &req),
        Found::Unknown if path.starts_with("/webhook/") => Err(AppError::MethodNotAllowed),
        Found::Unknown => Err(AppError::NotFound),
    };
    Ok(result.unwrap_or_else(AppError::into_response))
}

/// Runs a webhook handler in a span that carries the call's SID once the
/// handler has read it, so its failures are logged with it.
async fn webhook(handler: impl Future<Output = Result<Response<Body>, AppError>>) -> Result<Response<Body>, AppError> {
    let span = info_span!("webhook", call_sid = field::Empty);
    async { Ok(handler.await.unwrap_or_else(AppError::into_response)) }.instrument(span).await
}

pub(super) fn param<'a>(params: &'a [(String, String)], key: &str) -> &'a str {
    params.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()).unwrap_or("")
}

fn readyz(app: &App) -> Response<Body> {
    let active = app.calls.versions.active();
    let draining = app.is_draining();
    let full = app.calls.tasks.len() >= app.max_calls();
    let ready = active.is_some() && !draining && !full;
    let body = json!({
        "ready": ready,
        "guest": { "loaded": active.is_some(), "digest": active.as_ref().map(|v| v.digest()) },
        // Configured or not, and how the newest request of each went: no
        // network call here, a failing provider does not make us unready.
        "providers": app.calls.providers.health.report(),
        "draining": draining,
        "live_calls": app.calls.tasks.len(),
        "max_calls": app.max_calls(),
        "twilio_signature": if app.auth.signatures_checked() { "on" } else { "off" },
        // The call records' database: `ok`, `degraded` (writes failing or
        // slow: records are queued, then dropped, calls go on) or `off`.
        "db": app.calls.records.status(),
        "records": app.calls.records.report(),
        // In a fleet: the fleet's version and whether it loaded here. A
        // version that failed here leaves this instance ready on the one
        // it runs: it still serves calls well, and a fleet whose every
        // instance failed the same way must not stop answering at all.
        "fleet": app.fleet.as_ref().map(|f| f.report()),
        "instance": app.config.store.instance,
    });
    json(if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }, body)
}

fn version(app: &App) -> Response<Body> {
    let commit = option_env!("HOTLINE_GIT_COMMIT").filter(|c| !c.is_empty());
    let active = app.calls.versions.active();
    json(
        StatusCode::OK,
        json!({
            "name": "hotline",
            "version": env!("CARGO_PKG_VERSION"),
            "git_commit": commit,
            "deploy_id": app.config.deploy_id,
            "instance": app.config.store.instance,
            "guest_digest": active.as_ref().map(|v| v.digest()),
            "auto_rollback": app.calls.versions.last_auto_rollback(),
        }),
    )
}

/// Prometheus' scrape (`metrics.rs` decides what is in it).
fn metrics(app: &App, req: &Request<Incoming>) -> Result<Response<Body>, AppError> {
    super::session::authorize_metrics(app, req)?;
    let body = crate::metrics::render(&app.calls.metrics, super::observe::scrape(app));
    Ok(Response::builder()
        .header(header::CONTENT_TYPE, crate::metrics::CONTENT_TYPE)
        .body(super::respond::full(body))
        .expect("valid response"))
}

/// A webhook's form, once its signature has been checked (when signatures
/// are on): every webhook handler reads its form through this.
pub(super) async fn signed_form(
    app: &App,
    req: Request<Incoming>,
) -> Result<(Vec<(String, String)>, HeaderMap), AppError> {
    let (headers, uri) = (req.headers().clone(), req.uri().clone());
    let params = read_form(req, app.config.max_body_bytes, app.config.security.body_timeout).await?;
    Span::current().record("call_sid", param(&params, "CallSid"));
    app.auth.check_webhook(&headers, &uri, &params)?;
    Ok((params, headers))
}

async fn incoming_call(app: &App, req: Request<Incoming>) -> Result<Response<Body>, AppError> {
    let (params, headers) = signed_form(app, req).await?;
    if app.is_draining() {
        return Err(AppError::Draining);
    }
    // Signed and accepted: a call is coming, and its providers can get ready.
    app.calls.providers.prepare();
    let call_sid = param(&params, "CallSid").to_string();
    let twiml = stream_twiml(app, params, &headers, &[]).await?;
    info!(event = "incoming_call", call_sid, mode = app.config.mode.name());
    Ok(xml(StatusCode::OK, twiml))
}

/// The active guest's TwiML for a call (a webhook's `params`), with the
/// stream's `<Parameter>`s the host adds: the stream token, the direction,
/// the numbers, and `extra` (a returning transfer's).
pub(super) async fn stream_twiml(
    app: &App,
    params: Vec<(String, String)>,
    headers: &HeaderMap,
    extra: &[(&str, &str)],
) -> Result<String, AppError> {
    let call_sid = param(&params, "CallSid").to_string();
    let version = app.calls.versions.active_within(GUEST_LOAD_WAIT).await.ok_or(AppError::NoGuest)?;
    let base_url = app.auth.public_base(headers).map_err(AppError::BadRequest)?;
    let webhook = wit::Webhook { params, base_url, mode: app.config.mode.into() };
    match version.guest.incoming_call(&webhook)? {
        Ok(twiml) => {
            // The stream must prove it follows this answer (`stream_token.rs`).
            let token = app.auth.stream_tokens.issue(&call_sid, SystemTime::now());
            let mut parameters = vec![(params::TOKEN, token)];
            // Placed by us (`POST /api/calls`) or dialled in: for the guest, the record and the live list.
            let direction = params::direction_of(param(&webhook.params, "Direction"));
            parameters.push((params::DIRECTION, direction.into()));
            // The numbers travel with the stream: the guest hears them in
            // `started`; the record and the live list mask them (unless told
            // otherwise). Twilio's `start` carries no numbers of its own.
            for (name, key) in [(params::FROM, "From"), (params::TO, "To")] {
                let number = param(&webhook.params, key);
                if !number.is_empty() {
                    parameters.push((name, number.to_string()));
                }
            }
            parameters.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
            let parameters: Vec<(&str, &str)> = parameters.iter().map(|(k, v)| (*k, v.as_str())).collect();
            stream_token::add_parameters(&twiml, &parameters).map_err(AppError::Twiml)
        }
        Err(wit::TwimlError::BadRequest(reason)) => Err(AppError::BadRequest(reason)),
        Err(wit::TwimlError::Internal(reason)) => Err(AppError::Twiml(reason)),
    }
}

async fn webhook_logged(app: &App, req: Request<Incoming>, event: &'static str) -> Result<Response<Body>, AppError> {
    let (params, _) = signed_form(app, req).await?;
    info!(
        event,
        call_sid = param(&params, "CallSid"),
        stream_sid = param(&params, "StreamSid"),
        stream_event = param(&params, "StreamEvent"),
        stream_error = param(&params, "StreamError"),
        call_status = param(&params, "CallStatus"),
    );
    Ok(empty(StatusCode::NO_CONTENT))
}

async fn upgrade(app: Arc<App>, mut req: Request<Incoming>) -> Result<Response<Body>, AppError> {
    app.auth.check_upgrade(req.headers(), req.uri())?;
    if app.is_draining() {
        return Err(AppError::StreamRefused("draining"));
    }
    // One socket per call: at the call limit, the instances left are the
    // webhooks' reserve, and a socket that never starts is not let in.
    if app.calls.tasks.len() >= app.max_calls() {
        return Err(AppError::StreamRefused("at the call limit"));
    }
    let version = app.calls.versions.active_within(GUEST_LOAD_WAIT).await.ok_or(AppError::NoGuestForStream)?;
    let accepted = ws::accept(req.headers()).map_err(AppError::Handshake)?;
    let subprotocol = accepted.headers().contains_key(header::SEC_WEBSOCKET_PROTOCOL);
    let on_upgrade = hyper::upgrade::on(&mut req);
    // The call holds its connection's place until it ends.
    let peer = req.extensions_mut().remove::<Peer>();
    app.calls.tasks.clone().spawn(async move {
        let _peer = peer;
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => {
                warn!(event = "ws_upgrade_failed", error = %e);
                return;
            }
        };
        // Twilio's messages are a few hundred bytes: small buffers (the
        // codec zero-fills its read buffer up to this size on every read,
        // and keeps it per connection). Larger messages still fit: the
        // buffer grows to the message, up to the size limit.
        let config = WebSocketConfig::default()
            .read_buffer_size(WS_READ_BUFFER)
            // Written through to `GatherWrites`, which holds a reply's
            // frames until the flush and keeps no buffer between replies.
            .write_buffer_size(0)
            .max_write_buffer_size(MAX_WS_WRITE_BUFFER)
            .max_message_size(Some(MAX_WS_MESSAGE))
            .max_frame_size(Some(MAX_WS_MESSAGE));
        let ws =
            WebSocketStream::from_raw_socket(GatherWrites::new(TokioIo::new(upgraded)), Role::Server, Some(config))
                .await;
        crate::media::run_call(app.calls.clone(), version, ws, subprotocol).await;
    });
    let (parts, ()) = accepted.into_parts();
    Ok(Response::from_parts(parts, super::respond::full(bytes::Bytes::new())))
}
