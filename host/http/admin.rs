//! The admin API, present only when `HOTLINE_ADMIN_TOKEN` is set:
//! `PUT /admin/guest` (upload and activate a component), `GET /admin/guest`
//! (active version and history), `POST /admin/guest/rollback`.
//! Every request needs `Authorization: Bearer <token>`, compared in
//! constant time.

use std::sync::Arc;

use http::{Method, Request, StatusCode, header};
use hyper::body::Incoming;
use serde_json::json;
use subtle::ConstantTimeEq;
use tracing::{info, warn};

use super::routes::{Body, BodyError, json, read_body, text};
use crate::app::App;
use crate::versions::install;

pub async fn handle(app: &Arc<App>, req: Request<Incoming>) -> http::Response<Body> {
    let Some(token) = app.config.admin_token.as_deref() else {
        return text(StatusCode::NOT_FOUND, "not found");
    };
    if !authorized(req.headers(), token) {
        warn!(event = "admin_unauthorized", path = req.uri().path());
        let mut response = text(StatusCode::UNAUTHORIZED, "missing or wrong bearer token");
        response.headers_mut().insert(header::WWW_AUTHENTICATE, http::HeaderValue::from_static("Bearer"));
        return response;
    }
    match (req.method(), req.uri().path()) {
        (&Method::PUT, "/admin/guest") => upload(app, req).await,
        (&Method::GET, "/admin/guest") => status(app),
        (&Method::POST, "/admin/guest/rollback") => rollback(app),
        (_, "/admin/guest" | "/admin/guest/rollback") => text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
        _ => text(StatusCode::NOT_FOUND, "not found"),
    }
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

async fn upload(app: &Arc<App>, req: Request<Incoming>) -> http::Response<Body> {
    let bytes = match read_body(req, app.config.admin_max_bytes).await {
        Ok(body) => body.to_vec(),
        Err(e @ BodyError::TooLarge(_)) => return read_failed(StatusCode::PAYLOAD_TOO_LARGE, &e),
        Err(e) => return read_failed(StatusCode::BAD_REQUEST, &e),
    };
    match install(&app.sandbox, &app.versions, bytes, "admin upload".into()).await {
        Ok(version) => json(StatusCode::OK, json!({ "active": version.to_json() })),
        Err(e) => rejection(StatusCode::UNPROCESSABLE_ENTITY, &e.step.to_string(), &e.reason),
    }
}

/// An upload that never reached the load pipeline (which logs its own).
fn read_failed(status: StatusCode, e: &BodyError) -> http::Response<Body> {
    warn!(event = "guest_rejected", source = "admin upload", step = "read", reason = %e);
    rejection(status, "read", &e.to_string())
}

fn rejection(status: StatusCode, step: &str, reason: &str) -> http::Response<Body> {
    json(status, json!({ "error": { "step": step, "reason": reason } }))
}

fn status(app: &App) -> http::Response<Body> {
    let history: Vec<_> = app.versions.history().iter().map(|v| v.to_json()).collect();
    let active = app.versions.active().map(|v| v.to_json());
    json(StatusCode::OK, json!({ "active": active, "history": history, "swap": format!("{:?}", app.config.swap).to_lowercase() }))
}

fn rollback(app: &App) -> http::Response<Body> {
    let from = app.versions.active().map(|v| v.digest().to_string());
    match app.versions.rollback() {
        Ok(version) => {
            info!(event = "guest_rolled_back", from, to = version.digest(), reason = "admin");
            json(StatusCode::OK, json!({ "active": version.to_json() }))
        }
        Err(e) => json(StatusCode::CONFLICT, json!({ "error": { "step": "rollback", "reason": e.to_string() } })),
    }
}
