//! The WebSocket handshake for Media Streams, done by hand on hyper so the
//! subprotocol rule is explicit: echo `audio.twilio.com` if and only if the
//! client offered it (a missing echo is Twilio error 31920; an unoffered
//! one breaks RFC 6455 clients).

use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use crate::twilio::SUBPROTOCOL;

/// Checks an upgrade request; on success returns the 101 response to send.
pub fn accept(headers: &HeaderMap) -> Result<Response<()>, String> {
    let has_token = |name: header::HeaderName, token: &str| {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    };
    if !has_token(header::UPGRADE, "websocket") {
        return Err("missing Upgrade: websocket".into());
    }
    if !has_token(header::CONNECTION, "upgrade") {
        return Err("missing Connection: upgrade".into());
    }
    if headers.get(header::SEC_WEBSOCKET_VERSION).map(|v| v.as_bytes()) != Some(b"13") {
        return Err("Sec-WebSocket-Version must be 13".into());
    }
    let key = headers.get(header::SEC_WEBSOCKET_KEY).ok_or("missing Sec-WebSocket-Key")?;
    let mut response = Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::UPGRADE, "websocket")
        .header(header::CONNECTION, "Upgrade")
        .header(header::SEC_WEBSOCKET_ACCEPT, derive_accept_key(key.as_bytes()))
        .body(())
        .expect("static response parts are valid");
    if has_token(header::SEC_WEBSOCKET_PROTOCOL, SUBPROTOCOL) {
        response.headers_mut().insert(header::SEC_WEBSOCKET_PROTOCOL, HeaderValue::from_static(SUBPROTOCOL));
    }
    Ok(response)
}
