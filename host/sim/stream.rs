//! A stream opened as Twilio opens one, for the simulator (`call.rs`), the
//! benchmark's load generator (`bench/caller.rs`) and `hotline doctor`:
//! the voice webhook (signed, when given the auth token), the WebSocket to
//! the TwiML's `<Stream>` (subprotocol offered, signed), then `connected`
//! and `start` with the TwiML's parameters, the stream token among them.
//! Each step is its own function, so the doctor can check them one by one.

use std::sync::Arc;

use anyhow::Context;
use futures_util::SinkExt;
use hotline_common::Secret;
use hotline_twilio::SUBPROTOCOL;
use hotline_twilio::signature::{self, Verifier};
use serde_json::json;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::{Request, Response};
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

use super::twiml::{self, StreamTarget};

/// Plain for a local server, TLS for a deployment's `wss://`.
pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The voice webhook: where a call's stream normally comes from.
pub const WEBHOOK: &str = "/webhook/incoming_call";
pub const ACCOUNT_SID: &str = "ACsimulated00000000000000000000000";

/// Who calls, and how.
pub struct Dial<'a> {
    /// `http://host:port` of the server (or `https://` of a deployment).
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

/// The webhook's POST as Twilio sends it: the call's form, signed over
/// the public URL when there is a token.
pub fn webhook_request(client: &reqwest::Client, dial: &Dial<'_>) -> reqwest::RequestBuilder {
    let server = dial.server.trim_end_matches('/');
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
    let public = dial.public_url.unwrap_or(server).trim_end_matches('/');
    signed_post(
        client,
        &format!("{server}{}", dial.webhook),
        &format!("{public}{}", dial.webhook),
        form,
        dial.auth_token,
    )
}

/// A form POST to `url`, signed (with a token) over `signed_url`: the URL
/// Twilio would have requested, which the server's signature check covers.
pub fn signed_post(
    client: &reqwest::Client,
    url: &str,
    signed_url: &str,
    form: Vec<(String, String)>,
    auth_token: Option<&Secret>,
) -> reqwest::RequestBuilder {
    let mut request = client.post(url).form(&form);
    if let Some(token) = auth_token {
        request = request.header(signature::HEADER, Verifier::sign(token, signed_url, &form));
    }
    request
}

/// Where the stream of `target` is opened from here: the TwiML's URL for a
/// deployment (`https://`), its path on the local server for `http://`
/// (the TwiML names `wss://`, which a local server does not speak).
pub fn ws_url(server: &str, target: &StreamTarget) -> anyhow::Result<String> {
    match server.trim_end_matches('/').strip_prefix("http://") {
        Some(authority) => twiml::local_ws_url(&target.url, authority),
        None => Ok(target.url.clone()),
    }
}

/// The upgrade request to `ws_url`, offering the subprotocol when asked,
/// signed over `signed_url` (the stream URL as the TwiML names it, which is
/// what Twilio signs).
pub fn upgrade_request(
    ws_url: &str,
    signed_url: &str,
    subprotocol: bool,
    auth_token: Option<&Secret>,
) -> anyhow::Result<Request> {
    let mut request = ws_url.into_client_request()?;
    if subprotocol {
        request.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static(SUBPROTOCOL));
    }
    if let Some(token) = auth_token {
        request
            .headers_mut()
            .insert(signature::HEADER, HeaderValue::from_str(&Verifier::sign(token, signed_url, &[]))?);
    }
    Ok(request)
}

/// Opens the WebSocket: plain TCP for `ws://`, TLS for `wss://` with `tls`
/// (the platform's roots when `None`). The error is tungstenite's own, so
/// a caller can tell a refused upgrade (`Http`) from a missing subprotocol
/// echo (`Protocol`).
pub async fn connect(
    request: Request,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> Result<(Socket, Response), tokio_tungstenite::tungstenite::Error> {
    let uri = request.uri();
    let host = uri.host().unwrap_or_default().trim_start_matches('[').trim_end_matches(']').to_string();
    let tls_needed = uri.scheme_str() == Some("wss");
    let port = uri.port_u16().unwrap_or(if tls_needed { 443 } else { 80 });
    let tcp = TcpStream::connect((host.as_str(), port)).await?;
    // Twilio streams small frames every 20 ms; Nagle would hold them back.
    tcp.set_nodelay(true)?;
    let connector = match (tls_needed, tls) {
        (false, _) => Connector::Plain,
        (true, Some(config)) => Connector::Rustls(config),
        (true, None) => Connector::Rustls(
            hotline_providers::streaming::tls_config_with(None).map_err(|e| std::io::Error::other(e.to_string()))?,
        ),
    };
    let config = WebSocketConfig::default().read_buffer_size(READ_BUFFER);
    tokio_tungstenite::client_async_tls_with_config(request, tcp, Some(config), Some(connector)).await
}

/// Read buffer of the stand-in's socket. tungstenite's default (128 KiB) is
/// zero-filled before every read: with hundreds of calls in one load
/// generator that memset was 40 % of its CPU. A reply's burst of frames
/// takes a few reads of 4 KiB instead.
const READ_BUFFER: usize = 4 * 1024;

/// Twilio's first two messages: `connected`, then `start` with the TwiML's
/// parameters (the stream token among them). Returns the stream's SID.
pub async fn start(ws: &mut Socket, call_sid: &str, target: &StreamTarget) -> anyhow::Result<String> {
    let stream_sid = format!("MZ{}", call_sid.trim_start_matches("CA"));
    let parameters: serde_json::Map<String, serde_json::Value> =
        target.parameters.iter().map(|(k, v)| (k.clone(), v.clone().into())).collect();
    let connected = json!({"event": "connected", "protocol": "Call", "version": "1.0.0"});
    ws.feed(Message::text(connected.to_string())).await?;
    let start = json!({
        "event": "start", "sequenceNumber": "1", "streamSid": stream_sid,
        "start": {
            "streamSid": stream_sid, "accountSid": ACCOUNT_SID, "callSid": call_sid,
            "tracks": ["inbound"], "customParameters": parameters,
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}
        }
    });
    ws.send(Message::text(start.to_string())).await?;
    Ok(stream_sid)
}

pub async fn open(client: &reqwest::Client, dial: &Dial<'_>) -> anyhow::Result<Stream> {
    let server = dial.server.trim_end_matches('/');
    let webhook = dial.webhook;
    let response = webhook_request(client, dial).send().await.with_context(|| format!("POST {webhook}"))?;
    let status = response.status();
    let twiml = response.text().await?;
    if !status.is_success() {
        return Err(Refused::Webhook { status, body: twiml }.into());
    }
    let Some(target) = twiml::stream_target(&twiml)? else { return Err(Refused::NoStream(twiml).into()) };

    let ws_url = ws_url(server, &target)?;
    // Twilio signs the stream URL as the TwiML names it.
    let request = upgrade_request(&ws_url, &target.url, dial.subprotocol, dial.auth_token)?;
    let (mut ws, handshake) = match connect(request, None).await {
        Ok(pair) => pair,
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => return Err(Refused::Upgrade(r.status().as_u16()).into()),
        Err(e) => return Err(anyhow::Error::new(e).context(format!("connecting {ws_url}"))),
    };
    let subprotocol_echoed =
        handshake.headers().get("sec-websocket-protocol").is_some_and(|v| v.as_bytes() == SUBPROTOCOL.as_bytes());
    let stream_sid = start(&mut ws, dial.call_sid, &target).await?;
    Ok(Stream { ws, twiml, stream_sid, subprotocol_echoed })
}
