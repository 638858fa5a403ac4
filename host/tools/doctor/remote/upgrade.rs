//! The WebSocket upgrade to the TwiML's stream, offering `audio.twilio.com` and not.

use super::*;

/// The stream's URL to connect to (the TwiML's path on the target) and
/// the URL Twilio would sign (the TwiML's, as named).
pub(in crate::doctor) fn stream_urls(p: &Probe, target: Option<&StreamTarget>) -> (String, String) {
    let named = target.map(|t| t.url.clone()).unwrap_or_else(|| {
        let authority = p.public.split_once("://").map_or(p.public.as_str(), |(_, a)| a);
        format!("wss://{authority}{STREAM_PATH}")
    });
    let path = Url::parse(&named).map(|u| u.path().to_string()).unwrap_or_else(|_| STREAM_PATH.to_string());
    (p.ws_url(&path), named)
}

/// The upgrade offering `audio.twilio.com` (101 and the echo, or Twilio's
/// error 31920), and without the offer (still 101, nothing echoed).
/// Returns whether the call should offer the subprotocol: when the offer
/// got its echo (or was never tested).
pub(super) async fn upgrades(p: &Probe, target: Option<&StreamTarget>, report: &mut Report) -> bool {
    use tokio_tungstenite::tungstenite::Error as WsError;
    use tokio_tungstenite::tungstenite::error::{ProtocolError, SubProtocolError};
    let (ws_url, named) = stream_urls(p, target);
    let mut offer_works = true;
    for (check, offer) in [("ws_subprotocol", true), ("ws_plain", false)] {
        if p.unsigned_refused() {
            report.push(Check::skip(check, "needs --auth-token (signatures are on)"));
            continue;
        }
        let request = match stream::upgrade_request(&ws_url, &named, offer, p.auth_token.as_ref()) {
            Ok(r) => r,
            Err(e) => {
                report.push(Check::fail(check, format!("{ws_url}: {e:#}"), "the stream URL is not a valid URL"));
                continue;
            }
        };
        let began = Instant::now();
        let outcome = tokio::time::timeout(TIMEOUT, stream::connect(request, Some(p.tls.clone()))).await;
        let ms = began.elapsed().as_millis();
        let result = match outcome {
            Err(_) => Check::fail(
                check,
                format!("{ws_url}: no answer in {} s", TIMEOUT.as_secs()),
                "the proxy hangs on upgrades",
            ),
            Ok(Ok((mut ws, response))) => {
                let echoed = header_of(response.headers(), "sec-websocket-protocol");
                // Closed before `start`: the server ends it as a stream that never began.
                let _ = tokio::time::timeout(Duration::from_secs(2), ws.close(None)).await;
                match (offer, echoed) {
                    (true, Some(proto)) => {
                        Check::pass(check, format!("101 in {ms} ms from {ws_url}, Sec-WebSocket-Protocol: {proto}"))
                    }
                    (false, None) => {
                        Check::pass(check, format!("101 in {ms} ms from {ws_url}, no subprotocol offered or echoed"))
                    }
                    // tungstenite refuses these itself; kept for completeness.
                    (true, None) => subprotocol_missing(check, &ws_url),
                    (false, Some(proto)) => subprotocol_unasked(check, &ws_url, &proto),
                }
            }
            Ok(Err(WsError::Protocol(ProtocolError::SecWebSocketSubProtocolError(
                SubProtocolError::NoSubProtocol,
            )))) => subprotocol_missing(check, &ws_url),
            Ok(Err(WsError::Protocol(ProtocolError::SecWebSocketSubProtocolError(
                SubProtocolError::ServerSentSubProtocolNoneRequested,
            )))) => subprotocol_unasked(check, &ws_url, "a subprotocol"),
            Ok(Err(WsError::Http(response))) => {
                let status = response.status();
                let body = response.body().as_deref().map(String::from_utf8_lossy).unwrap_or_default();
                let seen = format!("{status} from {ws_url}, not 101: {}", excerpt(&body));
                match status.as_u16() {
                    401 | 403 if p.auth_token.is_none() => Check::warn(
                        check,
                        format!("{seen} (the server checks signatures)"),
                        "pass --auth-token (the server's TWILIO_AUTH_TOKEN)",
                    ),
                    401 | 403 => Check::fail(
                        check,
                        format!("{seen}: the upgrade's signature was refused"),
                        "the server signs the stream URL its TwiML names: its PUBLIC_BASE_URL must be the URL Twilio uses",
                    ),
                    503 => Check::fail(check, seen, "the server is draining or at its call limit (see /readyz)"),
                    200..=299 => Check::fail(
                        check,
                        seen,
                        "the proxy does not pass WebSocket upgrades: enable WebSockets for the route (forward \
                         `Upgrade` and `Connection`, HTTP/1.1 to the server)",
                    ),
                    _ => {
                        Check::fail(check, seen, "the upgrade does not reach hotline: route GET /ws/twilio-media to it")
                    }
                }
            }
            Ok(Err(e)) => {
                Check::fail(check, format!("{ws_url}: {}", chain(&e)), "the upgrade's connection failed: see the proxy")
            }
        };
        if offer && result.status != Status::Pass {
            offer_works = false;
        }
        report.push(result);
    }
    offer_works
}

fn subprotocol_missing(check: &'static str, ws_url: &str) -> Check {
    Check::fail(
        check,
        format!("101 from {ws_url} without Sec-WebSocket-Protocol: audio.twilio.com"),
        "the proxy strips Sec-WebSocket-Protocol: Twilio fails with error 31920; pass the header through",
    )
}

fn subprotocol_unasked(check: &'static str, ws_url: &str, proto: &str) -> Check {
    Check::fail(
        check,
        format!("101 from {ws_url} echoing {proto} that was not offered"),
        "something in front of the server adds Sec-WebSocket-Protocol: echo only what the client offered (RFC 6455 \
         clients drop the connection)",
    )
}
