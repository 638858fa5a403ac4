//! The floor under hotline's cost per call: the Node peer's echo job, on the
//! crates hotline serves calls with (tokio, hyper, tokio-tungstenite,
//! serde_json, base64) and nothing else: no sandbox, no records, no logs,
//! no signatures, no timers, no recovery. What `hotline bench` measures for
//! it is what any server on this stack spends on the sockets, the frames
//! and the JSON; what hotline spends beyond it is what its features cost.
//!
//! ```sh
//! cargo build --release --example echo_floor
//! hotline bench --levels 100,300 --peer target/release/examples/echo_floor
//! ```
//!
//! The echo agent is the Node peer's (`shared/peers/node-ws`), rule for
//! rule: speech when a frame's RMS passes 1000 (16-bit linear), 25 quiet
//! frames end an utterance, whose voiced frames go back at once, then a
//! mark; 3 voiced frames while a mark is pending send `clear`. `PORT`
//! (default 8080) and `BIND` (default 127.0.0.1) as the Node peer's.

use std::borrow::Cow;
use std::collections::HashSet;
use std::convert::Infallible;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures_util::{SinkExt, StreamExt};
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

const THRESHOLD: f64 = 1000.0;
const EOU_SILENCE_FRAMES: u32 = 25;
const BARGE_IN_FRAMES: u32 = 3;
const FRAME_BYTES: usize = 160;
const SUBPROTOCOL: &str = "audio.twilio.com";

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port = std::env::var("PORT").ok().and_then(|p| p.parse().ok()).unwrap_or(8080u16);
    let bind = std::env::var("BIND").unwrap_or_else(|_| "127.0.0.1".into());
    let listener = TcpListener::bind((bind.as_str(), port)).await?;
    println!("echo_floor listening on http://{bind}:{port}");
    loop {
        let (socket, _) = listener.accept().await?;
        let _ = socket.set_nodelay(true);
        tokio::spawn(async move {
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(socket), service_fn(route))
                .with_upgrades();
            let _ = connection.await;
        });
    }
}

type Body = Full<Bytes>;

fn reply(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Response<Body> {
    let mut response = Response::new(Full::new(body.into()));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static(content_type));
    response
}

async fn route(req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    Ok(match (req.method(), req.uri().path()) {
        (&Method::GET, "/healthz") => reply(StatusCode::OK, "text/plain", "ok"),
        (&Method::POST, "/webhook/incoming_call") => incoming_call(req).await,
        (&Method::POST, "/webhook/stream_status" | "/webhook/stream_ended") => {
            let _ = req.into_body().collect().await;
            reply(StatusCode::NO_CONTENT, "text/plain", "")
        }
        (&Method::GET, "/ws/twilio-media") => upgrade(req),
        _ => reply(StatusCode::NOT_FOUND, "text/plain", "not found"),
    })
}

async fn incoming_call(req: Request<Incoming>) -> Response<Body> {
    let host = req.headers().get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost").to_string();
    let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let call_sid =
        form_urlencoded::parse(&body).find(|(k, _)| k == "CallSid").map(|(_, v)| v.into_owned()).unwrap_or_default();
    // Hosts and SIDs in a load test need no escaping; a real server would.
    let twiml = format!(
        r#"<Response><Connect action="http://{host}/webhook/stream_ended"><Stream url="wss://{host}/ws/twilio-media" statusCallback="http://{host}/webhook/stream_status"><Parameter name="call_sid" value="{call_sid}"/></Stream></Connect></Response>"#
    );
    reply(StatusCode::OK, "text/xml", twiml)
}

fn upgrade(mut req: Request<Incoming>) -> Response<Body> {
    let Some(key) = req.headers().get(header::SEC_WEBSOCKET_KEY) else {
        return reply(StatusCode::BAD_REQUEST, "text/plain", "not a WebSocket upgrade");
    };
    let accept = derive_accept_key(key.as_bytes());
    let offered = req
        .headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.split(',').any(|p| p.trim() == SUBPROTOCOL));
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else { return };
        // The codec zero-fills its read buffer up to this size on every
        // read: Twilio's messages are a few hundred bytes.
        let config = WebSocketConfig::default().read_buffer_size(4096);
        let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config)).await;
        serve_call(ws).await;
    });
    let mut response = reply(StatusCode::SWITCHING_PROTOCOLS, "text/plain", "");
    let headers = response.headers_mut();
    headers.remove(header::CONTENT_TYPE);
    headers.insert(header::UPGRADE, header::HeaderValue::from_static("websocket"));
    headers.insert(header::CONNECTION, header::HeaderValue::from_static("Upgrade"));
    headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept.parse().expect("base64 is a valid header value"));
    if offered {
        headers.insert(header::SEC_WEBSOCKET_PROTOCOL, header::HeaderValue::from_static(SUBPROTOCOL));
    }
    response
}

#[derive(Deserialize)]
struct Inbound<'a> {
    #[serde(borrow)]
    event: Cow<'a, str>,
    #[serde(borrow)]
    start: Option<Start<'a>>,
    #[serde(borrow)]
    media: Option<Media<'a>>,
    #[serde(borrow)]
    mark: Option<Mark<'a>>,
}

#[derive(Deserialize)]
struct Start<'a> {
    #[serde(borrow, rename = "streamSid")]
    stream_sid: Cow<'a, str>,
}

#[derive(Deserialize)]
struct Media<'a> {
    #[serde(borrow)]
    payload: Cow<'a, str>,
}

#[derive(Deserialize)]
struct Mark<'a> {
    #[serde(borrow)]
    name: Cow<'a, str>,
}

async fn serve_call<S>(mut ws: WebSocketStream<S>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut agent: Option<EchoAgent> = None;
    while let Some(Ok(message)) = ws.next().await {
        let Message::Text(text) = message else { continue };
        let Ok(msg) = serde_json::from_str::<Inbound>(&text) else { continue };
        let out = match (msg.event.as_ref(), msg.start, msg.media, msg.mark) {
            ("media", _, Some(media), _) => match (agent.as_mut(), BASE64.decode(media.payload.as_bytes())) {
                (Some(agent), Ok(ulaw)) => agent.on_media(&ulaw),
                _ => Vec::new(),
            },
            ("start", Some(start), _, _) => {
                agent = Some(EchoAgent::new(start.stream_sid.into_owned()));
                Vec::new()
            }
            ("mark", _, _, Some(mark)) => {
                if let Some(agent) = agent.as_mut() {
                    agent.pending_marks.remove(mark.name.as_ref());
                }
                Vec::new()
            }
            ("stop", ..) => {
                let _ = ws.close(None).await;
                break;
            }
            _ => Vec::new(),
        };
        if out.is_empty() {
            continue;
        }
        for text in out {
            if ws.feed(Message::text(text)).await.is_err() {
                return;
            }
        }
        if ws.flush().await.is_err() {
            return;
        }
    }
}

struct EchoAgent {
    stream_sid: String,
    in_utterance: bool,
    audio: Vec<u8>,
    /// Bytes of `audio` up to its last voiced frame.
    voiced_len: usize,
    silence: u32,
    speech_run: u32,
    pending_marks: HashSet<String>,
    utterances: u32,
}

impl EchoAgent {
    fn new(stream_sid: String) -> Self {
        EchoAgent {
            stream_sid,
            in_utterance: false,
            audio: Vec::new(),
            voiced_len: 0,
            silence: 0,
            speech_run: 0,
            pending_marks: HashSet::new(),
            utterances: 0,
        }
    }

    /// The messages to send for one inbound frame.
    fn on_media(&mut self, ulaw: &[u8]) -> Vec<String> {
        let mut out = Vec::new();
        if rms(ulaw) > THRESHOLD {
            self.speech_run += 1;
            if !self.pending_marks.is_empty() && self.speech_run == BARGE_IN_FRAMES {
                out.push(format!(r#"{{"event":"clear","streamSid":"{}"}}"#, self.stream_sid));
                self.pending_marks.clear();
            }
            if !self.in_utterance {
                self.in_utterance = true;
                self.audio.clear();
            }
            self.audio.extend_from_slice(ulaw);
            self.voiced_len = self.audio.len();
            self.silence = 0;
        } else {
            self.speech_run = 0;
            if self.in_utterance {
                self.audio.extend_from_slice(ulaw);
                self.silence += 1;
                if self.silence >= EOU_SILENCE_FRAMES {
                    self.reply(&mut out);
                    self.in_utterance = false;
                    self.audio.clear();
                    self.silence = 0;
                }
            }
        }
        out
    }

    fn reply(&mut self, out: &mut Vec<String>) {
        for frame in self.audio[..self.voiced_len].chunks(FRAME_BYTES) {
            out.push(format!(
                r#"{{"event":"media","streamSid":"{}","media":{{"payload":"{}"}}}}"#,
                self.stream_sid,
                BASE64.encode(frame)
            ));
        }
        self.utterances += 1;
        let name = format!("utt-{}", self.utterances);
        out.push(format!(r#"{{"event":"mark","streamSid":"{}","mark":{{"name":"{name}"}}}}"#, self.stream_sid));
        self.pending_marks.insert(name);
    }
}

/// μ-law to 16-bit linear (G.711), as the Node peer's table.
fn linear(code: u8) -> i32 {
    let u = !code;
    let exponent = (u >> 4) & 0x07;
    let mantissa = (u & 0x0f) as i32;
    let magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    if u & 0x80 != 0 { -magnitude } else { magnitude }
}

fn rms(ulaw: &[u8]) -> f64 {
    if ulaw.is_empty() {
        return 0.0;
    }
    let sum: f64 = ulaw.iter().map(|&c| (linear(c) as f64).powi(2)).sum();
    (sum / ulaw.len() as f64).sqrt()
}
