//! TwiML for the voice webhook.
//!
//! Every interpolated value is XML-escaped: `CallSid`, `From` and the base
//! URL all come from outside and must not be able to break the document
//! (`hotline_twiml::escape`, the host's escape too).

use hotline_twiml::escape;

use crate::bindings::hotline::call::types::{CallMode, TwimlError, Webhook};

pub fn respond(call: &Webhook) -> Result<String, TwimlError> {
    let base = call.base_url.trim_end_matches('/');
    let (scheme, host) =
        base.split_once("://").ok_or_else(|| TwimlError::BadRequest(format!("base URL {base:?} has no scheme")))?;
    if host.is_empty() || !matches!(scheme, "http" | "https") {
        return Err(TwimlError::BadRequest(format!("base URL {base:?} is not http(s)")));
    }
    let param = |name: &str| call.params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let call_sid = param("CallSid").unwrap_or("");
    let xml = match call.mode {
        CallMode::Stream => {
            // Twilio only opens wss:// streams; a plain-http base still gets
            // wss (the TLS terminator in front of us serves it).
            let ws_url = format!("wss://{host}/ws/twilio-media");
            format!(
                concat!(
                    r#"<?xml version="1.0" encoding="UTF-8"?>"#,
                    r#"<Response><Connect action="{action}">"#,
                    r#"<Stream url="{ws}" statusCallback="{status}">"#,
                    r#"<Parameter name="call_sid" value="{sid}"/>"#,
                    r#"</Stream></Connect></Response>"#
                ),
                action = escape(&format!("{base}/webhook/stream_ended")),
                ws = escape(&ws_url),
                status = escape(&format!("{base}/webhook/stream_status")),
                sid = escape(call_sid),
            )
        }
        CallMode::Record => format!(
            concat!(
                r#"<?xml version="1.0" encoding="UTF-8"?>"#,
                r#"<Response><Say>Sorry, our agent cannot take live calls right now. "#,
                r#"Please leave a message after the tone.</Say>"#,
                r#"<Record maxLength="120" playBeep="true" action="{action}"/></Response>"#
            ),
            action = escape(&format!("{base}/webhook/stream_ended")),
        ),
    };
    Ok(xml)
}
