//! The admin API, present only when `HOTLINE_ADMIN_TOKEN` is set:
//! `PUT /admin/guest` (upload and activate a component), `GET /admin/guest`
//! (active version and history), `POST /admin/guest/rollback`.
//! Every request needs `Authorization: Bearer <token>`, compared in
//! constant time.

use std::sync::Arc;

use http::{Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use serde_json::json;
use subtle::ConstantTimeEq;
use tracing::info;

use super::error::AppError;
use super::limits::Peer;
use super::respond::{Body, json, read_body};
use crate::app::App;
use crate::versions::install;

/// A component upload (up to `HOTLINE_ADMIN_MAX_BYTES`) may come over a slow link.
const ADMIN_UPLOAD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

pub async fn handle(app: &Arc<App>, req: Request<Incoming>) -> Result<Response<Body>, AppError> {
    check_token(app, &req)?;
    match (req.method(), req.uri().path()) {
        (&Method::PUT, "/admin/guest") => upload(app, req).await,
        (&Method::GET, "/admin/guest") => Ok(status(app)),
        (&Method::POST, "/admin/guest/rollback") => rollback(app),
        (_, "/admin/guest" | "/admin/guest/rollback") => Err(AppError::MethodNotAllowed),
        _ => Err(AppError::NotFound),
    }
}

/// The admin token's check, shared with `/api/*`: 404 when no token is
/// configured, 401 for a wrong one, 429 for an address that keeps trying.
pub fn check_token<B>(app: &App, req: &Request<B>) -> Result<(), AppError> {
    let token = app.config.admin_token.as_deref().ok_or(AppError::NotFound)?;
    check_bearer(app, req, token)
}

/// `/metrics`: open without `HOTLINE_METRICS_TOKEN`; with it, checked as
/// the admin token is (the same lockout for an address that keeps trying).
pub fn check_metrics_token<B>(app: &App, req: &Request<B>) -> Result<(), AppError> {
    match app.config.metrics_token.as_deref() {
        None => Ok(()),
        Some(token) => check_bearer(app, req, token),
    }
}

fn check_bearer<B>(app: &App, req: &Request<B>, token: &str) -> Result<(), AppError> {
    // An address that keeps sending wrong tokens waits, right token or not.
    let ip = req.extensions().get::<Peer>().map(|p| p.addr.ip());
    if let Some(retry_after) = ip.and_then(|ip| app.admin_failures.locked(ip)) {
        return Err(AppError::TooManyAttempts { retry_after });
    }
    if !authorized(req.headers(), token) {
        if let Some(ip) = ip {
            app.admin_failures.failed(ip);
        }
        return Err(AppError::Unauthorized { path: req.uri().path().to_string() });
    }
    Ok(())
}

fn authorized(headers: &http::HeaderMap, token: &str) -> bool {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    // Equal lengths first (that leaks only the length), then constant time.
    given.len() == token.len() && bool::from(given.as_bytes().ct_eq(token.as_bytes()))
}

async fn upload(app: &Arc<App>, req: Request<Incoming>) -> Result<Response<Body>, AppError> {
    let bytes = read_body(req, app.config.admin_max_bytes, ADMIN_UPLOAD_TIMEOUT)
        .await
        .map_err(|e| AppError::UploadUnreadable(Box::new(e)))?;
    let version = install(&app.sandbox, &app.versions, bytes.to_vec(), "admin upload".into()).await?;
    Ok(json(StatusCode::OK, json!({ "active": version.to_json() })))
}

fn status(app: &App) -> Response<Body> {
    let history: Vec<_> = app.versions.history().iter().map(|v| v.to_json()).collect();
    let active = app.versions.active().map(|v| v.to_json());
    json(StatusCode::OK, json!({ "active": active, "history": history, "swap": app.config.swap.name() }))
}

fn rollback(app: &App) -> Result<Response<Body>, AppError> {
    let from = app.versions.active().map(|v| v.digest().to_string());
    let version = app.versions.rollback()?;
    info!(event = "guest_rolled_back", from, to = version.digest(), reason = "admin");
    Ok(json(StatusCode::OK, json!({ "active": version.to_json() })))
}
