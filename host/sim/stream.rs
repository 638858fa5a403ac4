//! A stream opened as Twilio opens one, for the simulator (`call.rs`) and
//! the benchmark's load generator (`bench/caller.rs`): the voice webhook
//! (signed, when given the auth token), the WebSocket to the TwiML's
//! `<Stream>` (subprotocol offered, signed), then `connected` and `start`
//! with the TwiML's parameters, the stream token among them.

use anyhow::Context;
use futures_util::SinkExt;
use serde_json::json;
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use super::twiml;
use crate::providers::Secret;
use crate::twilio::SUBPROTOCOL;
use crate::twilio::signature::{self, Verifier};

pub type Socket = WebSocketStream<TcpStream>;

/// The voice webhook: where a call's stream normally comes from.
pub const WEBHOOK: &str = "/webhook/incoming_call";
const ACCOUNT_SID: &str = "ACsimulated00000000000000000000000";

/// Who calls, and how.
pub struct Dial<'a> {
    /// `http://host:port` of the server.
    pub server: &'a str,
    pub call_sid: &'a str,
    pub from: &'a str,
    /// The webhook's `Direction`: `inbound`, or `outbound-api` for a call
    /// placed through the REST API.
    pub direction: &'a str,
    /// Offer `audio.twilio.com`, as some Twilio edges do.
    pub subprotocol: bool,
    /// Sign the webhook and the upgrade as Twilio does.
    pub auth_token: Option<&'a Secret>,
    /// The public base URL the webhook's signature covers; `server` when unset.
    pub public_url: Option<&'a str>,
    /// The webhook whose TwiML has the stream: [`WEBHOOK`], or another that
    /// answers with one (`/webhook/dial_ended` after a transfer nobody answered)...
    pub webhook: &'a str,
    /// ...and the form parameters it gets beyond a voice webhook's.
    pub extra: &'a [(String, String)],
}

/// A started stream.
pub struct Stream {
    pub ws: Socket,
    /// The webhook's answer.
    pub twiml: String,
    pub stream_sid: String,
    /// The server answered the handshake with `audio.twilio.com`.
    pub subprotocol_echoed: bool,
}

/// The server did not take the call (an answer, not a broken connection).
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("the webhook answered {status}: {body}")]
    Webhook { status: reqwest::StatusCode, body: String },
    #[error("TwiML has no <Stream>: {0}")]
    NoStream(String),
    #[error("the upgrade was refused with {0}")]
    Upgrade(u16),
}

pub async fn open(client: &reqwest::Client, dial: &Dial<'_>) -> anyhow::Result<Stream> {
    let server = dial.server.trim_end_matches('/');
    let authority =
        server.strip_prefix("http://").with_context(|| format!("server {server:?} must be http://host:port"))?;

    let form: Vec<(String, String)> = [
        ("CallSid", dial.call_sid),
        ("AccountSid", ACCOUNT_SID),
        ("From", dial.from),
        ("To", "+15550199999"),
        ("CallStatus", "ringing"),
        ("Direction", dial.direction),
    ]
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .into_iter()
    .chain(dial.extra.iter().cloned())
    .collect();
    let webhook = dial.webhook;
    let mut request = client.post(format!("{server}{webhook}")).form(&form);
    if let Some(token) = dial.auth_token {
        let public = dial.public_url.unwrap_or(server).trim_end_matches('/');
        request = request.header(signature::HEADER, Verifier::sign(token, &format!("{public}{webhook}"), &form));
    }
    let response = request.send().await.with_context(|| format!("POST {webhook}"))?;
    let status = response.status();
    let twiml = response.text().await?;
    if !status.is_success() {
        return Err(Refused::Webhook { status, body: twiml }.into());
    }
    let Some(target) = twiml::stream_target(&twiml)? else { return Err(Refused::NoStream(twiml).into()) };

    let ws_url = twiml::local_ws_url(&target.url, authority)?;
    let mut request = ws_url.as_str().into_client_request()?;
    if dial.subprotocol {
        request.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static(SUBPROTOCOL));
    }
    if let Some(token) = dial.auth_token {
        // Twilio signs the stream URL as the TwiML names it.
        request
            .headers_mut()
            .insert(signature::HEADER, HeaderValue::from_str(&Verifier::sign(token, &target.url, &[]))?);
    }
    let tcp = TcpStream::connect(authority).await.with_context(|| format!("connecting {ws_url}"))?;
    // Twilio streams small frames every 20 ms; Nagle would hold them back.
    tcp.set_nodelay(true)?;
    let (mut ws, handshake) = match tokio_tungstenite::client_async(request, tcp).await {
        Ok(pair) => pair,
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => return Err(Refused::Upgrade(r.status().as_u16()).into()),
        Err(e) => return Err(anyhow::Error::new(e).context(format!("connecting {ws_url}"))),
    };
    let subprotocol_echoed =
        handshake.headers().get("sec-websocket-protocol").is_some_and(|v| v.as_bytes() == SUBPROTOCOL.as_bytes());

    let stream_sid = format!("MZ{}", dial.call_sid.trim_start_matches("CA"));
    let parameters: serde_json::Map<String, serde_json::Value> =
        target.parameters.into_iter().map(|(k, v)| (k, v.into())).collect();
    let connected = json!({"event": "connected", "protocol": "Call", "version": "1.0.0"});
    ws.feed(Message::text(connected.to_string())).await?;
    let start = json!({
        "event": "start", "sequenceNumber": "1", "streamSid": stream_sid,
        "start": {
            "streamSid": stream_sid, "accountSid": ACCOUNT_SID, "callSid": dial.call_sid,
            "tracks": ["inbound"], "customParameters": parameters,
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}
        }
    });
    ws.send(Message::text(start.to_string())).await?;
    Ok(Stream { ws, twiml, stream_sid, subprotocol_echoed })
}
