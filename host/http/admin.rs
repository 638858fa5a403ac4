//! The admin API, present only when `HOTLINE_ADMIN_TOKEN` is set:
//! `PUT /admin/guest` (upload and activate a component), `GET /admin/guest`
//! (active version and history), `POST /admin/guest/rollback`.
//! Every request needs `Authorization: Bearer <token>` or a dashboard
//! session (`session.rs`, which checks both).

use std::sync::Arc;

use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use serde_json::json;

use super::error::AppError;
use super::respond::{Body, json, read_body};
use super::session::authorize;
use super::table::{Entry, Found, find};
use crate::app::App;

/// A component upload (up to `HOTLINE_ADMIN_MAX_BYTES`) may come over a slow link.
const ADMIN_UPLOAD_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

#[derive(Clone, Copy)]
pub(super) enum Endpoint {
    Upload,
    Status,
    Rollback,
}

pub(super) const ROUTES: &[Entry<Endpoint>] = &[
    Entry::new(Method::PUT, "/admin/guest", Endpoint::Upload),
    Entry::new(Method::GET, "/admin/guest", Endpoint::Status),
    Entry::new(Method::POST, "/admin/guest/rollback", Endpoint::Rollback),
];

pub async fn handle(app: &Arc<App>, req: Request<Incoming>) -> Result<Response<Body>, AppError> {
    authorize(app, &req)?;
    match find(ROUTES, req.method(), req.uri().path()) {
        Found::Route(Endpoint::Upload, _) => upload(app, req).await,
        Found::Route(Endpoint::Status, _) => Ok(status(app).await),
        Found::Route(Endpoint::Rollback, _) => rollback(app).await,
        Found::WrongMethod => Err(AppError::MethodNotAllowed),
        Found::Unknown => Err(AppError::NotFound),
    }
}

async fn upload(app: &Arc<App>, req: Request<Incoming>) -> Result<Response<Body>, AppError> {
    let bytes = read_body(req, app.config.admin_max_bytes, ADMIN_UPLOAD_TIMEOUT)
        .await
        .map_err(|e| AppError::UploadUnreadable(Box::new(e)))?;
    let version = crate::fleet::push(
        &app.sandbox,
        &app.calls.versions,
        app.fleet.as_deref(),
        bytes.to_vec(),
        "admin upload".into(),
    )
    .await?;
    Ok(json(StatusCode::OK, json!({ "active": version.to_json() })))
}

/// The active version, the history with each version's counters, the
/// swap policy, the last rollback and, in a fleet, every instance's status
/// and the fleet's activations (also `GET /api/guests`).
pub(super) async fn status(app: &App) -> Response<Body> {
    let history: Vec<_> = app.calls.versions.history().iter().map(|v| v.to_json()).collect();
    let active = app.calls.versions.active().map(|v| v.to_json());
    let last_rollback = app.calls.versions.last_rollback();
    let swap = app.config.swap.name();
    let fleet = match &app.fleet {
        Some(fleet) => fleet.overview().await,
        None => serde_json::Value::Null,
    };
    let body =
        json!({ "active": active, "history": history, "swap": swap, "last_rollback": last_rollback, "fleet": fleet });
    json(StatusCode::OK, body)
}

/// Back to the version before the current one: here, or in a fleet
/// fleet-wide (the database decides which version that is).
async fn rollback(app: &App) -> Result<Response<Body>, AppError> {
    let version = crate::fleet::rollback(&app.calls.versions, app.fleet.as_deref()).await?;
    Ok(json(StatusCode::OK, json!({ "active": version.to_json() })))
}
