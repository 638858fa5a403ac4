//! Loopback stand-ins for the providers, speaking their real wire
//! protocols over real HTTP, so the host's real clients run against them.
//! They check each request's shape (a wrong one gets the 4xx the real API
//! would give, and is kept in `violations`), answer like the real thing
//! (server-sent events, chunked audio), and can be told to be slow, fail,
//! or break a stream. They record every request, and every streamed
//! response the client walked away from.

pub mod deepgram;
pub mod google;
pub mod openai;
pub mod openai_realtime;
pub mod realtime_agent;
pub mod twilio;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::stream;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::server as ws;

pub type Body = BoxBody<Bytes, std::io::Error>;

/// A WebSocket stand-in (Deepgram's, OpenAI's realtime one): what it
/// logged, how it is told to behave (`B`), and each connection as it saw
/// it (`C`); its `serve` runs one connection.
pub struct WsState<B, C> {
    pub log: Log,
    pub behavior: Mutex<B>,
    pub connections: Mutex<Vec<C>>,
}

impl<B, C: Default> WsState<B, C> {
    /// The handshake, checked by `check` (a refusal is a 401 and a
    /// violation, named after `name`), then the connection registered:
    /// the socket and its index in `connections`.
    pub async fn accept(
        &self,
        tcp: tokio::net::TcpStream,
        name: &str,
        check: fn(&ws::Request) -> Result<(), String>,
    ) -> Option<(tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>, usize)> {
        // The handshake callback's signature is tungstenite's.
        #[allow(clippy::result_large_err)]
        let callback = |request: &ws::Request, response: ws::Response| -> Result<ws::Response, ws::ErrorResponse> {
            match check(request) {
                Ok(()) => Ok(response),
                Err(why) => {
                    self.log.violations.lock().unwrap().push(format!("{name} handshake: {why}"));
                    let mut refusal = ws::ErrorResponse::new(Some("Unauthorized".into()));
                    *refusal.status_mut() = http::StatusCode::UNAUTHORIZED;
                    Err(refusal)
                }
            }
        };
        let ws = tokio_tungstenite::accept_hdr_async(tcp, callback).await.ok()?;
        let mut connections = self.connections.lock().unwrap();
        connections.push(C::default());
        Some((ws, connections.len() - 1))
    }
}

pub struct WsMock<B, C> {
    pub url: String,
    pub state: Arc<WsState<B, C>>,
}

impl<B: Default + Send + 'static, C: Clone + Send + 'static> WsMock<B, C> {
    /// Listens on a loopback port; `ws://…{path}` is its URL.
    pub async fn listen<F>(path: &str, serve: fn(Arc<WsState<B, C>>, tokio::net::TcpStream) -> F) -> Self
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ws://{}{path}", listener.local_addr().unwrap());
        let state =
            Arc::new(WsState { log: Log::default(), behavior: Mutex::default(), connections: Mutex::default() });
        let st = state.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                tokio::spawn(serve(st.clone(), tcp));
            }
        });
        WsMock { url, state }
    }

    pub fn behave(&self, f: impl FnOnce(&mut B)) {
        f(&mut self.state.behavior.lock().unwrap());
    }

    pub fn connections(&self) -> Vec<C> {
        self.state.connections.lock().unwrap().clone()
    }
}

#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: hyper::Method,
    pub path: String,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
    pub at: Instant,
    /// Which TCP connection it came on, counted from 0 per stand-in.
    pub conn: usize,
}

/// What every mock keeps.
#[derive(Default)]
pub struct Log {
    pub requests: Mutex<Vec<Recorded>>,
    /// Paths of streamed responses the client dropped before their end.
    pub disconnects: Mutex<Vec<String>>,
    /// Requests the real API would have refused, and why.
    pub violations: Mutex<Vec<String>>,
    /// When a streamed response of this path was sent to its end.
    pub completed: Mutex<Vec<(String, Instant)>>,
}

impl Log {
    pub fn requests(&self, path: &str) -> Vec<Recorded> {
        self.requests.lock().unwrap().iter().filter(|r| r.path.ends_with(path)).cloned().collect()
    }

    pub fn disconnected(&self, path: &str) -> bool {
        self.disconnects.lock().unwrap().iter().any(|p| p.ends_with(path))
    }

    pub fn violations(&self) -> Vec<String> {
        self.violations.lock().unwrap().clone()
    }

    pub fn completed(&self, path: &str) -> Vec<Instant> {
        self.completed.lock().unwrap().iter().filter(|(p, _)| p.ends_with(path)).map(|(_, t)| *t).collect()
    }

    /// Refuses the request as the API would, and remembers why.
    pub fn refuse(&self, status: StatusCode, why: String) -> Response<Body> {
        self.violations.lock().unwrap().push(why.clone());
        json_response(status, serde_json::json!({ "error": { "message": why } }))
    }
}

/// Serves `handle` on a loopback port until the test ends; over TLS when
/// given an acceptor.
pub async fn serve<H, F>(handle: H, tls: Option<tokio_rustls::TlsAcceptor>) -> SocketAddr
where
    H: Fn(Recorded) -> F + Send + Sync + Clone + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        for conn in 0.. {
            let Ok((stream, _)) = listener.accept().await else { return };
            // As real API front ends do: small streamed chunks go out at once.
            let _ = stream.set_nodelay(true);
            let (handle, tls) = (handle.clone(), tls.clone());
            tokio::spawn(async move {
                let service = service_fn(move |req: Request<Incoming>| {
                    let handle = handle.clone();
                    async move {
                        let (method, path) = (req.method().clone(), req.uri().path().to_string());
                        let headers = req.headers().clone();
                        let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
                        let recorded = Recorded { method, path, headers, body, at: Instant::now(), conn };
                        Ok::<_, Infallible>(handle(recorded).await)
                    }
                });
                let http = hyper::server::conn::http1::Builder::new();
                match tls {
                    None => {
                        let _ = http.serve_connection(TokioIo::new(stream), service).await;
                    }
                    Some(tls) => {
                        // A client that refuses our certificate ends here.
                        let Ok(stream) = tls.accept(stream).await else { return };
                        let _ = http.serve_connection(TokioIo::new(stream), service).await;
                    }
                }
            });
        }
    });
    addr
}

/// A throwaway CA and a certificate it signed for 127.0.0.1: the CA's PEM
/// (for the client to trust) and an acceptor serving the certificate.
pub fn private_ca() -> (String, tokio_rustls::TlsAcceptor) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["127.0.0.1".to_string()]).unwrap().signed_by(&key, &issuer).unwrap();
    let config = tokio_rustls::rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], rustls_pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()))
        .unwrap();
    (ca.pem(), tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config)))
}

pub fn json_response(status: StatusCode, value: serde_json::Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(value.to_string())).map_err(|e: Infallible| match e {}).boxed())
        .unwrap()
}

/// One piece of a streamed response.
pub enum Piece {
    Data(Bytes),
    Pause(Duration),
    /// Break the connection mid-stream (no terminating chunk).
    Break,
}

/// A chunked response fed by `pieces`, paced by its pauses. A client that
/// goes away is noticed at once (not at the next write) and recorded.
pub fn streamed(log: Arc<Log>, path: String, content_type: &str, pieces: Vec<Piece>) -> Response<Body> {
    let (tx, rx) = mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(4);
    tokio::spawn(async move {
        for piece in pieces {
            let gone = match piece {
                Piece::Data(bytes) => tx.send(Ok(Frame::data(bytes))).await.is_err(),
                Piece::Pause(d) => tokio::select! {
                    _ = tokio::time::sleep(d) => false,
                    _ = tx.closed() => true,
                },
                Piece::Break => {
                    let _ = tx.send(Err(std::io::Error::other("mock breaks the stream"))).await;
                    return;
                }
            };
            if gone {
                log.disconnects.lock().unwrap().push(path);
                return;
            }
        }
        log.completed.lock().unwrap().push((path, Instant::now()));
    });
    let body = StreamBody::new(stream::unfold(rx, |mut rx| async { rx.recv().await.map(|item| (item, rx)) }));
    Response::builder().status(200).header("content-type", content_type).body(BoxBody::new(body)).unwrap()
}

pub use hotline_audio::tone;

/// `Authorization: Bearer <token>`, if present.
pub fn bearer(r: &Recorded) -> Option<String> {
    let value = r.headers.get("authorization")?.to_str().ok()?;
    value.strip_prefix("Bearer ").map(str::to_string)
}
