//! The voice webhook (signed like Twilio's when given the token), its TwiML, and the callbacks it names.

use super::*;

/// `POST /webhook/incoming_call` as Twilio sends it; the TwiML's stream.
pub(super) async fn webhook(p: &Probe, report: &mut Report) -> Option<StreamTarget> {
    const CHECK: &str = "webhook";
    let dial = Dial {
        server: &p.base,
        call_sid: &p.call_sid,
        from: "+15550100000",
        direction: "inbound",
        subprotocol: true,
        auth_token: p.auth_token.as_ref(),
        public_url: Some(&p.public),
        webhook: stream::WEBHOOK,
        extra: &[],
    };
    let began = Instant::now();
    let answer = async {
        let response = stream::webhook_request(&p.client, &dial).send().await?;
        let status = response.status();
        let content_type = header_of(response.headers(), "content-type").unwrap_or_default();
        Ok::<_, reqwest::Error>((status, content_type, response.text().await?))
    };
    let (status, content_type, body) = match tokio::time::timeout(WEBHOOK_TIMEOUT, answer).await {
        Err(_) => {
            report.push(Check::fail(
                CHECK,
                format!("no answer in {} s", WEBHOOK_TIMEOUT.as_secs()),
                "Twilio gives up after 15 s and plays its error message: see the server's log",
            ));
            return None;
        }
        Ok(Err(e)) => {
            report.push(Check::fail(CHECK, chain(&e), "the webhook's connection failed: see the server's log"));
            return None;
        }
        Ok(Ok(answer)) => answer,
    };
    let ms = began.elapsed().as_millis();
    let seen = format!("{status} {content_type} in {ms} ms");
    match status.as_u16() {
        200 => {}
        401 | 403 if p.auth_token.is_none() => {
            p.unsigned_refused.store(true, Ordering::Relaxed);
            report.push(Check::warn(
                CHECK,
                format!("{seen}: the server checks Twilio signatures"),
                "pass --auth-token (the server's TWILIO_AUTH_TOKEN) to check the webhooks, the upgrade and a call",
            ));
            return None;
        }
        401 | 403 => {
            report.push(Check::fail(
                CHECK,
                format!("{seen}: the signature was refused"),
                format!(
                    "the token is not the server's TWILIO_AUTH_TOKEN, or the server's public URL is not {}: its \
                     PUBLIC_BASE_URL must be the URL Twilio requests (pass --public-url when doctor reaches it another way)",
                    p.public
                ),
            ));
            return None;
        }
        500..=599 => {
            report.push(Check::fail(
                CHECK,
                format!("{seen}: {}", excerpt(&body)),
                "the server failed to answer Twilio's webhook (Twilio plays \"an application error has occurred\"): \
                 see the server's log",
            ));
            return None;
        }
        _ => {
            report.push(Check::fail(CHECK, format!("{seen}: {}", excerpt(&body)), not_hotline_fix(status)));
            return None;
        }
    }
    match stream_target(&body) {
        Err(e) => {
            report.push(Check::fail(
                CHECK,
                format!("{seen}, not TwiML ({e}): {}", excerpt(&body)),
                "another app or the platform's page answers POST /webhook/incoming_call: route it to the server",
            ));
            None
        }
        Ok(None) => {
            report.push(Check::warn(
                CHECK,
                format!("{seen}: TwiML without <Connect><Stream>: {}", excerpt(&body)),
                "no live call: HOTLINE_CALL_MODE=record, or call logic that answers without a stream",
            ));
            None
        }
        Ok(Some(target)) => {
            report.push(Check::pass(CHECK, format!("{seen}: TwiML with <Connect><Stream>")));
            let bare = p.bare_host();
            let public_host = Url::parse(&p.public).ok().and_then(|u| u.host_str().map(str::to_string));
            let expected = public_host.as_deref().unwrap_or(bare).trim_start_matches('[').trim_end_matches(']');
            report.push(crate::doctor::twiml::stream_url(&target.url, expected, p.plain_loopback));
            report.push(crate::doctor::twiml::callbacks(target.action.as_deref(), target.status_callback.as_deref()));
            Some(target)
        }
    }
}

/// `stream_status` (204) and `stream_ended` (TwiML), at the URLs the
/// TwiML named (or the built-in ones), signed as Twilio signs them.
pub(super) async fn callbacks(p: &Probe, target: Option<&StreamTarget>, report: &mut Report) {
    if p.unsigned_refused() {
        report.push(Check::skip("stream_status", "needs --auth-token (signatures are on)"));
        report.push(Check::skip("stream_ended", "needs --auth-token (signatures are on)"));
        return;
    }
    let named = |url: Option<&String>, path: &str| url.cloned().unwrap_or_else(|| format!("{}{path}", p.public));
    let sid = |k: &str, v: &str| (k.to_string(), v.to_string());
    let stream_sid = format!("MZ{}", p.call_sid.trim_start_matches("CA"));
    let common = vec![sid("AccountSid", stream::ACCOUNT_SID), sid("CallSid", &p.call_sid)];

    let url = named(target.and_then(|t| t.status_callback.as_ref()), "/webhook/stream_status");
    let mut form = common.clone();
    form.extend([
        sid("StreamSid", &stream_sid),
        sid("StreamName", &stream_sid),
        sid("StreamEvent", "stream-started"),
        sid("Timestamp", "2026-01-01T00:00:00.000Z"),
    ]);
    match p.post(&url, form).await {
        Ok((StatusCode::NO_CONTENT, _, _)) => report.push(Check::pass("stream_status", format!("204 from {url}"))),
        Ok((status @ (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN), _, body)) => {
            report.push(signature_refused("stream_status", status, &url, &body))
        }
        Ok((status, content_type, body)) => report.push(Check::fail(
            "stream_status",
            format!("{status} {content_type} from {url}: {}", excerpt(&body)),
            "Twilio posts the stream's events here and expects 204: route POST /webhook/* to the server",
        )),
        Err(e) => report.push(Check::fail("stream_status", format!("{url}: {e}"), "see the server's log")),
    }

    let url = named(target.and_then(|t| t.action.as_ref()), "/webhook/stream_ended");
    let mut form = common;
    form.push(sid("CallStatus", "in-progress"));
    match p.post(&url, form).await {
        Ok((StatusCode::OK, content_type, body)) if is_twiml(&body) => {
            report.push(Check::pass("stream_ended", format!("200 {content_type} from {url}: {}", excerpt(&body))));
        }
        Ok((status @ (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN), _, body)) => {
            report.push(signature_refused("stream_ended", status, &url, &body))
        }
        Ok((status, content_type, body)) => report.push(Check::fail(
            "stream_ended",
            format!("{status} {content_type} from {url}: {}", excerpt(&body)),
            "Twilio asks this URL what to do when the stream ends and needs TwiML back (else the call drops with an \
             error): route POST /webhook/* to the server",
        )),
        Err(e) => report.push(Check::fail("stream_ended", format!("{url}: {e}"), "see the server's log")),
    }
}

fn signature_refused(check: &'static str, status: StatusCode, url: &str, body: &str) -> Check {
    Check::fail(
        check,
        format!("{status} from {url}: {}", excerpt(body)),
        "the signature was refused: the token is not the server's TWILIO_AUTH_TOKEN, or the server's PUBLIC_BASE_URL \
         is not the URL Twilio requests",
    )
}

fn is_twiml(body: &str) -> bool {
    roxmltree::Document::parse(body).is_ok_and(|d| d.root_element().has_tag_name("Response"))
}
