//! Building responses and reading request bodies: small helpers every
//! handler shares.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use http::{Request, Response, StatusCode, header};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Either, Full, Limited, StreamBody};
use hyper::body::Frame;
use hyper::body::Incoming;

use super::error::AppError;
use crate::twilio::form;

/// Every response's body: whole (nearly all of them, no allocation beyond
/// the bytes), or a stream (Server-Sent Events), boxed.
pub type Body = Either<Full<Bytes>, UnsyncBoxBody<Bytes, Infallible>>;

/// A whole body.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Either::Left(Full::new(bytes.into()))
}

fn respond(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, content_type)
        .body(full(body))
        .expect("static response parts are valid")
}

/// A `text/event-stream` response whose body is the stream's chunks, as
/// they come; it ends when the stream does.
pub fn event_stream(chunks: impl Stream<Item = Bytes> + Send + 'static) -> Response<Body> {
    use futures_util::StreamExt;
    let body = StreamBody::new(chunks.map(|chunk| Ok::<_, Infallible>(Frame::data(chunk))));
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        // Proxies that buffer responses (nginx) would hold the events back.
        .header("x-accel-buffering", "no")
        .body(Either::Right(UnsyncBoxBody::new(body)))
        .expect("static response parts are valid")
}

pub fn text(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    respond(status, "text/plain; charset=utf-8", body)
}

pub fn json(status: StatusCode, value: serde_json::Value) -> Response<Body> {
    respond(status, "application/json", value.to_string())
}

pub fn xml(status: StatusCode, body: impl Into<Bytes>) -> Response<Body> {
    respond(status, "text/xml; charset=utf-8", body)
}

pub fn empty(status: StatusCode) -> Response<Body> {
    Response::builder().status(status).body(full(Bytes::new())).expect("static response parts are valid")
}

/// Reads a whole request body, refusing more than `limit` bytes or a body
/// that takes longer than `timeout` (a client that sends half its body and
/// stops would hold the connection forever).
pub async fn read_body(req: Request<Incoming>, limit: usize, timeout: Duration) -> Result<Bytes, AppError> {
    let collected = tokio::time::timeout(timeout, Limited::new(req.into_body(), limit).collect()).await;
    let Ok(collected) = collected else { return Err(AppError::BodyTimeout(timeout)) };
    match collected {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => Err(AppError::BodyTooLarge(limit)),
        Err(e) => Err(AppError::BodyUnreadable(e.to_string())),
    }
}

/// Reads a size-limited, strictly parsed form body.
pub async fn read_form(req: Request<Incoming>, limit: usize, timeout: Duration) -> Result<form::Form, AppError> {
    const FORM: &str = "application/x-www-form-urlencoded";
    let content_type = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if !content_type.trim_start().to_ascii_lowercase().starts_with(FORM) {
        return Err(AppError::UnsupportedMediaType(FORM));
    }
    let body = read_body(req, limit, timeout).await?;
    Ok(form::parse(&body)?)
}
