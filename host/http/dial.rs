//! `POST /api/calls`: place an outbound call through Twilio's REST API
//! (`{"to": "+1555…", "from": "+1555…"}`, `from` defaulting to
//! `HOTLINE_DIAL_FROM`). Twilio fetches the TwiML from this server's own
//! `/webhook/incoming_call` once the call is answered, so an outbound call
//! runs exactly as an inbound one does (the guest sees `Direction` in the
//! webhook, the record and the live list say `outbound`), and reports its
//! progress to `/webhook/call_status`. With answering-machine detection
//! (`"detect_machine": true`), Twilio's verdict comes to `/webhook/amd`.

use std::time::Duration;

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use serde::Deserialize;
use serde_json::json;
use tracing::info;

use super::error::AppError;
use super::respond::{Body, json, read_body};
use crate::app::App;
use crate::config::is_phone_target;
use crate::twilio::rest::NewCall;

const MAX_BODY: usize = 4096;
const BODY_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Dial {
    to: String,
    from: Option<String>,
    /// Answering-machine detection (asynchronous: the call connects at
    /// once, the verdict reaches the guest as `answered-by`). Default: on
    /// when there is a voicemail message to leave (`HOTLINE_VOICEMAIL_MESSAGE`).
    detect_machine: Option<bool>,
}

pub async fn place(app: &App, req: Request<Incoming>) -> Result<Response<Body>, AppError> {
    let rest = app.calls.twilio.as_ref().ok_or(AppError::CallControlOff)?;
    let base = app.auth.public_base(req.headers()).map_err(AppError::BadQuery)?;
    let body = read_body(req, MAX_BODY, BODY_TIMEOUT).await?;
    let dial: Dial = serde_json::from_slice(&body).map_err(|e| {
        AppError::BadQuery(format!(
            "a JSON body {{\"to\": \"+1…\", \"from\": \"+1…\", \"detect_machine\": true}} expected: {e}"
        ))
    })?;
    let from = dial.from.or_else(|| rest.dial_from().map(str::to_string));
    let from = from.ok_or_else(|| AppError::BadQuery("from: needed (or set HOTLINE_DIAL_FROM)".into()))?;
    for (name, number) in [("to", &dial.to), ("from", &from)] {
        if !is_phone_target(number) {
            return Err(AppError::BadQuery(format!("{name}: an E.164 number (+15551234567) expected")));
        }
    }
    let detect_machine = dial.detect_machine.unwrap_or(app.config.control.voicemail_message.is_some());
    let call = NewCall {
        to: dial.to,
        from,
        url: format!("{base}/webhook/incoming_call"),
        status_callback: Some(format!("{base}/webhook/call_status")),
        amd_callback: detect_machine.then(|| format!("{base}/webhook/amd")),
    };
    let placed = rest.create_call(&call).await.map_err(AppError::Twilio)?;
    let to = app.calls.records.shown(&call.to);
    info!(event = "call_placed", call_sid = placed.sid, to, status = placed.status, detect_machine);
    Ok(json(StatusCode::CREATED, json!({ "call_sid": placed.sid, "status": placed.status })))
}
