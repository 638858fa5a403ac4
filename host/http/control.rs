//! The webhooks of call control: what the phone call does once its stream
//! has ended (`/webhook/stream_ended`, the `<Connect action>`), how a
//! transfer's dial ended (`/webhook/dial_ended`, the `<Dial action>`), and
//! answering-machine detection's verdict on a call we placed
//! (`/webhook/amd`). The switchboard (`switchboard.rs`) is what they share
//! with the calls.

use http::{Request, Response, StatusCode};
use hyper::body::Incoming;
use tracing::{info, warn};

use super::error::AppError;
use super::respond::{Body, empty, xml};
use super::routes::{param, signed_form, stream_twiml};
use crate::app::App;
use crate::config::TransferFallback;
use crate::convert::{answered_by, dial_status};
use crate::media::switchboard::{DialEnd, Signal};
use crate::sandbox::wit;

use crate::twilio::twiml;

/// The stream ended: `<Dial>` when the call logic asked for a transfer,
/// otherwise `<Hangup/>`. Answering nothing would leave the next step to
/// chance (a trailing verb, or silence on an open line).
pub async fn stream_ended(app: &App, req: Request<Incoming>) -> Result<Response<Body>, AppError> {
    let (params, headers) = signed_form(app, req).await?;
    let (call_sid, call_status) = (param(&params, "CallSid"), param(&params, "CallStatus"));
    if let Some(transfer) = app.calls.switchboard.dial(call_sid) {
        let base = app.auth.public_base(&headers).map_err(AppError::BadRequest)?;
        let action = format!("{base}/webhook/dial_ended");
        let timeout = app.config.control.transfer_timeout;
        let twiml = twiml::dial(&transfer.target, transfer.caller_id.as_deref(), timeout, &action);
        info!(
            event = "stream_ended",
            call_sid,
            call_status,
            next = "dial",
            target = app.calls.records.shown(&transfer.target)
        );
        return Ok(xml(StatusCode::OK, twiml));
    }
    info!(event = "stream_ended", call_sid, call_status, next = "hangup");
    Ok(xml(StatusCode::OK, twiml::HANGUP.to_string()))
}

/// A transfer's `<Dial>` ended. Answered: the call is over when the person
/// hangs up. Not answered: the fallback (`HOTLINE_TRANSFER_FALLBACK`), the
/// call logic again on a new stream or a message and a hang-up. Either
/// way the switchboard learns how it ended, for the call's record: kept
/// for the returning stream, or submitted now that the call is over.
pub async fn dial_ended(app: &App, req: Request<Incoming>) -> Result<Response<Body>, AppError> {
    let (params, headers) = signed_form(app, req).await?;
    let call_sid = param(&params, "CallSid").to_string();
    let text = param(&params, "DialCallStatus").to_string();
    let status = dial_status(&text)
        .ok_or_else(|| AppError::BadRequest(format!("DialCallStatus {text:?} is not one Twilio sends")))?;
    let secs = param(&params, "DialCallDuration").to_string();
    let answered = matches!(status, wit::DialStatus::Completed | wit::DialStatus::Answered);
    let control = &app.config.control;
    // A drain sends no caller back to a server that is about to stop.
    let to_agent = !answered && control.transfer_fallback == TransferFallback::Agent && !app.is_draining();
    let message = || twiml::say_then_hangup(&control.transfer_fallback_message);
    // What the caller gets next is settled before the switchboard hears of
    // it: the record says what happened, a stream that could not be
    // offered included.
    let (next, twiml) = if answered {
        ("hangup", twiml::HANGUP.to_string())
    } else if !to_agent {
        ("message", message())
    } else {
        // Back to the call logic, as a webhook would bring a caller, with the dial's outcome.
        match stream_twiml(app, params, &headers, &[(crate::twilio::params::TRANSFER, &text)]).await {
            Ok(stream) => ("agent", stream),
            Err(e) => {
                warn!(event = "transfer_return_failed", call_sid, error = %e);
                ("message", message())
            }
        }
    };
    let end = DialEnd::now(&text, secs.parse().ok(), next);
    let transfer = app.calls.switchboard.dial_ended(&call_sid, status, end, next == "agent");
    let target = transfer.as_deref().map(|t| app.calls.records.shown(t));
    if answered {
        info!(event = "transfer_answered", call_sid, target, status = text, secs);
    } else {
        warn!(event = "transfer_unanswered", call_sid, target, status = text, next);
    }
    Ok(xml(StatusCode::OK, twiml))
}

/// Answering-machine detection's verdict (`AsyncAmdStatusCallback`), for
/// the live call it is about.
pub async fn amd(app: &App, req: Request<Incoming>) -> Result<Response<Body>, AppError> {
    let (params, _) = signed_form(app, req).await?;
    let call_sid = param(&params, "CallSid");
    let text = param(&params, "AnsweredBy");
    let verdict = answered_by(text)
        .ok_or_else(|| AppError::BadRequest(format!("AnsweredBy {text:?} is not one Twilio sends")))?;
    let delivered = app.calls.switchboard.signal(call_sid, Signal::AnsweredBy(verdict));
    let detection_ms = param(&params, "MachineDetectionDuration");
    info!(event = "answered_by", call_sid, answered_by = text, delivered, detection_ms);
    Ok(empty(StatusCode::NO_CONTENT))
}
