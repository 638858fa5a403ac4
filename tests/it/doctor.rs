//! `hotline doctor`, the real binary, against a real server: healthy (with
//! and without signatures), and with faults injected between them by
//! loopback stand-ins for a proxy (written here with hyper): nothing on the
//! port, the subprotocol stripped from the 101, HTML for every path, a
//! webhook answering 500, a slow `/healthz`. And `--local` against a live
//! port and a free one.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support::*;

const AUTH_TOKEN: &str = "0123456789abcdef0123456789abcdef";

/// A doctor's run: its exit code, its printed text, and each check's status.
struct Run {
    code: i32,
    text: String,
    checks: Vec<(String, String)>,
}

impl Run {
    fn status(&self, check: &str) -> &str {
        self.checks.iter().find(|(c, _)| c == check).map_or("absent", |(_, s)| s.as_str())
    }

    /// The printed line of `check`, and its fix line when there is one.
    fn line(&self, check: &str) -> String {
        let mut lines = self.text.lines().skip_while(|l| l.split_whitespace().nth(1) != Some(check));
        let first = lines.next().unwrap_or_default().to_string();
        match lines.next() {
            Some(fix) if fix.trim_start().starts_with("fix:") => format!("{first}\n{fix}"),
            _ => first,
        }
    }

    /// Everything that is neither PASS nor in `allowed` (check, status).
    fn unexpected(&self, allowed: &[(&str, &str)]) -> Vec<&(String, String)> {
        self.checks.iter().filter(|(c, s)| s != "PASS" && !allowed.contains(&(c.as_str(), s.as_str()))).collect()
    }
}

/// Runs `hotline doctor` with `args` and only the variables in `env`.
async fn doctor(args: &[&str], env: &[(&str, &str)]) -> Run {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_hotline"))
        .arg("doctor")
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .await
        .expect("hotline runs");
    let text = String::from_utf8(output.stdout).unwrap();
    eprintln!("$ hotline doctor {}\n{text}{}", args.join(" "), String::from_utf8_lossy(&output.stderr));
    let checks = text
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            match (words.next(), words.next()) {
                (Some(s @ ("PASS" | "WARN" | "FAIL" | "SKIP")), Some(c)) => Some((c.to_string(), s.to_string())),
                _ => None,
            }
        })
        .collect();
    Run { code: output.status.code().expect("an exit code"), text, checks }
}

/// Every remote check a healthy run prints.
const REMOTE: [&str; 22] = [
    "dns",
    "tcp",
    "tls",
    "healthz",
    "version",
    "readyz",
    "providers",
    "database",
    "signatures",
    "webhook",
    "stream_url",
    "callbacks",
    "stream_status",
    "stream_ended",
    "ws_subprotocol",
    "ws_plain",
    "call_greeting",
    "call_barge_in",
    "call_answer",
    "call_marks",
    "call_ping",
    "call_close",
];

/// A server as a deployment runs it: a DEPLOY_ID, and pings every second
/// (the default 10 s would make each simulated call wait that long).
async fn server(tokens: &[&str]) -> TestServer {
    let tokens: Vec<_> = tokens.iter().map(|t| hotline_common::Secret::new(*t)).collect();
    start_server(move |c| {
        c.deploy_id = Some("doctor-test".into());
        c.keepalive = Duration::from_secs(1);
        c.security.auth_tokens = tokens;
    })
    .await
}

fn assert_healthy(run: &Run) {
    let names: Vec<&str> = run.checks.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(names, REMOTE, "{}", run.text);
    // Plain http on loopback: the only check that cannot run.
    assert_eq!(run.unexpected(&[("tls", "SKIP")]), Vec::<&(String, String)>::new(), "{}", run.text);
    assert_eq!(run.code, 0, "{}", run.text);
}

#[tokio::test]
async fn a_healthy_server_passes_every_check() {
    let s = server(&[]).await;
    let run = doctor(&[&s.base], &[]).await;
    assert_healthy(&run);
    assert!(run.line("version").contains("DEPLOY_ID=doctor-test"), "{}", run.text);
    assert!(run.line("ws_subprotocol").contains("audio.twilio.com"), "{}", run.text);
    assert!(run.line("call_answer").contains("echo agent"), "{}", run.text);
}

#[tokio::test]
async fn with_an_ai_agent_the_utterance_gets_a_reply() {
    // OpenAI's protocols spoken by a loopback stand-in: the greeting and
    // the reply are synthesized, the caller's words transcribed.
    let mock = crate::mocks::openai::OpenAiMock::start().await;
    let providers = config_from(&mock.env()).providers;
    let s = start_server(move |c| {
        c.providers = providers;
        c.deploy_id = Some("doctor-test".into());
        c.keepalive = Duration::from_secs(1);
    })
    .await;
    let run = doctor(&[&s.base], &[]).await;
    assert_healthy(&run);
    assert!(run.line("providers").contains("stt openai ok"), "{}", run.text);
    assert!(run.line("call_answer").contains("AI agent"), "{}", run.text);
    assert_eq!(mock.state.uploads.lock().unwrap().len(), 1, "one utterance transcribed");
}

#[tokio::test]
async fn with_signatures_on_it_needs_the_token_and_passes_with_it() {
    let s = server(&[AUTH_TOKEN]).await;
    let run = doctor(&["--auth-token", AUTH_TOKEN, &s.base], &[]).await;
    assert_healthy(&run);
    assert!(run.line("signatures").contains("on"), "{}", run.text);

    // Without it: nothing is wrong with the server, but what needs a
    // signature is not checked, and the doctor says how to check it.
    let unsigned = doctor(&[&s.base], &[]).await;
    assert_eq!(unsigned.code, 0, "{}", unsigned.text);
    assert_eq!(unsigned.status("webhook"), "WARN");
    assert!(unsigned.line("webhook").contains("--auth-token"), "{}", unsigned.text);
    for check in ["stream_status", "stream_ended", "ws_subprotocol", "ws_plain", "call_greeting", "call_close"] {
        assert_eq!(unsigned.status(check), "SKIP", "{check}: {}", unsigned.text);
    }

    // The token from the environment, as on the server's own box; a wrong one fails.
    let from_env = doctor(&[&s.base], &[("TWILIO_AUTH_TOKEN", AUTH_TOKEN)]).await;
    assert_eq!(from_env.status("call_close"), "PASS", "{}", from_env.text);
    let wrong = doctor(&["--auth-token", "fedcba9876543210fedcba9876543210", &s.base], &[]).await;
    assert_eq!(wrong.status("webhook"), "FAIL", "{}", wrong.text);
    assert_eq!(wrong.code, 1);
}

#[tokio::test]
async fn nothing_listening_fails_at_the_port_and_stops() {
    // A server on another port than the one the platform routes to.
    let _s = server(&[]).await;
    let free = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap();
    let run = doctor(&[&format!("http://{free}")], &[]).await;
    assert_eq!(run.status("dns"), "PASS");
    assert_eq!(run.status("tcp"), "FAIL", "{}", run.text);
    assert!(run.line("tcp").contains("nothing listens on port"), "{}", run.text);
    assert_eq!(run.checks.len(), 2, "nothing after the port: {}", run.text);
    assert_eq!(run.code, 1);
}

#[tokio::test]
async fn a_proxy_that_strips_the_subprotocol_is_named_with_error_31920() {
    let run = through(Fault::StripSubprotocol).await;
    assert_eq!(run.status("ws_subprotocol"), "FAIL", "{}", run.text);
    assert!(run.line("ws_subprotocol").contains("31920"), "{}", run.text);
    // Everything else works, the call too (without the offer, as some edges connect).
    assert_eq!(run.unexpected(&[("tls", "SKIP"), ("ws_subprotocol", "FAIL")]), Vec::<&(String, String)>::new());
    assert!(run.line("call_greeting").contains("without the subprotocol offer"), "{}", run.text);
    assert_eq!(run.code, 1);
}

#[tokio::test]
async fn html_for_every_path_is_not_hotline() {
    let run = through(Fault::Html).await;
    for check in ["healthz", "version", "readyz", "webhook", "ws_subprotocol", "ws_plain"] {
        assert_eq!(run.status(check), "FAIL", "{check}: {}", run.text);
    }
    assert!(run.line("webhook").contains("not TwiML"), "{}", run.text);
    assert!(run.line("ws_plain").contains("200"), "{}", run.text);
    assert!(run.line("ws_plain").contains("does not pass WebSocket upgrades"), "{}", run.text);
    assert_eq!(run.status("call_greeting"), "SKIP", "{}", run.text);
    assert_eq!(run.code, 1);
}

#[tokio::test]
async fn a_webhook_answering_500_fails_the_webhook() {
    let run = through(Fault::Webhook500).await;
    assert_eq!(run.status("healthz"), "PASS", "{}", run.text);
    assert_eq!(run.status("webhook"), "FAIL", "{}", run.text);
    assert!(run.line("webhook").contains("500"), "{}", run.text);
    assert_eq!(run.status("call_greeting"), "SKIP", "{}", run.text);
    assert_eq!(run.code, 1);
}

#[tokio::test]
async fn a_slow_healthz_is_a_warning() {
    let run = through(Fault::SlowHealthz).await;
    assert_eq!(run.status("healthz"), "WARN", "{}", run.text);
    assert!(run.line("healthz").contains("slow"), "{}", run.text);
    assert_eq!(run.unexpected(&[("tls", "SKIP"), ("healthz", "WARN")]), Vec::<&(String, String)>::new());
    assert_eq!(run.code, 0, "a warning is not a failure");
}

#[tokio::test]
async fn https_is_checked_down_to_the_certificate_and_the_call_goes_over_wss() {
    hotline::providers::install_tls();
    // A TLS terminator in front of the server, with a certificate from a
    // private CA; the server's public URL is the terminator's.
    let (ca_pem, tls) = crate::mocks::private_ca();
    let front = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let public = format!("https://{}", front.local_addr().unwrap());
    let base = public.clone();
    let s = start_server(move |c| {
        c.deploy_id = Some("doctor-test".into());
        c.keepalive = Duration::from_secs(1);
        c.security.auth_tokens = vec![hotline_common::Secret::new(AUTH_TOKEN)];
        c.public_base_url = Some(base);
    })
    .await;
    let upstream = s.server.local_addr();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = front.accept().await {
            let tls = tls.clone();
            tokio::spawn(async move {
                let (Ok(mut outside), Ok(mut inside)) = (tls.accept(tcp).await, TcpStream::connect(upstream).await)
                else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut outside, &mut inside).await;
            });
        }
    });
    let ca = std::env::temp_dir().join(format!("hotline-doctor-ca-{}.pem", std::process::id()));
    std::fs::write(&ca, ca_pem).unwrap();

    let run = doctor(&["--auth-token", AUTH_TOKEN, "--ca-file", ca.to_str().unwrap(), &public], &[]).await;
    let names: Vec<&str> = run.checks.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(names, REMOTE, "{}", run.text);
    assert_eq!(run.unexpected(&[]), Vec::<&(String, String)>::new(), "{}", run.text);
    assert!(run.line("tls").contains("days left"), "{}", run.text);
    assert!(run.line("ws_subprotocol").contains("wss://"), "{}", run.text);
    assert_eq!(run.code, 0);

    // Without the CA, the certificate's issuer is unknown: the run stops there.
    let untrusted = doctor(&[&public], &[]).await;
    assert_eq!(untrusted.status("tls"), "FAIL", "{}", untrusted.text);
    assert!(untrusted.line("tls").contains("issuer"), "{}", untrusted.text);
    assert_eq!(untrusted.checks.len(), 3, "{}", untrusted.text);
    assert_eq!(untrusted.code, 1);
}

#[tokio::test]
async fn json_is_one_array_of_the_same_checks() {
    let s = server(&[]).await;
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_hotline"))
        .args(["doctor", "--json", &s.base])
        .env_clear()
        .output()
        .await
        .unwrap();
    assert!(output.status.success());
    let checks: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout).expect("JSON");
    let names: Vec<&str> = checks.iter().map(|c| c["check"].as_str().unwrap()).collect();
    assert_eq!(names, REMOTE);
    for c in &checks {
        assert!(["PASS", "SKIP"].contains(&c["status"].as_str().unwrap()), "{c}");
        assert!(c["evidence"].is_string() && (c["fix"].is_null() || c["fix"].is_string()), "{c}");
    }
}

#[tokio::test]
async fn local_checks_find_the_listener_on_port_or_nothing() {
    let s = start_server(|c| c.listen = "0.0.0.0:0".parse().unwrap()).await;
    let port = s.server.local_addr().port().to_string();
    let dir = std::env::temp_dir().join(format!("hotline-doctor-{}", std::process::id()));
    let (data, cache) = (dir.join("data").display().to_string(), dir.join("cache").display().to_string());
    let env = |port: &str| {
        vec![("PORT", port.to_string()), ("HOTLINE_DATA_DIR", data.clone()), ("HOTLINE_CACHE_DIR", cache.clone())]
    };
    let live = env(&port);
    let live: Vec<(&str, &str)> = live.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let run = doctor(&["--local"], &live).await;
    assert_eq!(run.unexpected(&[]), Vec::<&(String, String)>::new(), "{}", run.text);
    assert!(run.line("listening").contains(&format!("0.0.0.0:{port}")), "{}", run.text);
    assert_eq!(run.code, 0);

    let free = TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port().to_string();
    let idle = env(&free);
    let idle: Vec<(&str, &str)> = idle.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let run = doctor(&["--local"], &idle).await;
    assert_eq!(run.status("listening"), "FAIL", "{}", run.text);
    assert!(run.line("listening").contains(&format!("nothing listens on port {free}")), "{}", run.text);
    assert_eq!(run.code, 1);
}

// ---- a proxy stand-in --------------------------------------------------------

/// The doctor against a healthy server behind a proxy with `fault`.
async fn through(fault: Fault) -> Run {
    let s = server(&[]).await;
    let proxy = proxy(s.server.local_addr(), fault).await;
    doctor(&[&format!("http://{proxy}")], &[]).await
}

#[derive(Clone, Copy)]
enum Fault {
    /// Forwards the upgrade but drops `Sec-WebSocket-Protocol` from the 101.
    StripSubprotocol,
    /// Answers every path with an HTML page (a platform's placeholder).
    Html,
    /// `POST /webhook/incoming_call` answers 500.
    Webhook500,
    /// `/healthz` takes 1.5 s.
    SlowHealthz,
}

/// A reverse proxy on loopback in front of `upstream`, with `fault`.
async fn proxy(upstream: SocketAddr, fault: Fault) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let client = client.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| forward(req, upstream, fault, client.clone()));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service)
                    .with_upgrades()
                    .await;
            });
        }
    });
    addr
}

async fn forward(
    req: Request<Incoming>,
    upstream: SocketAddr,
    fault: Fault,
    client: reqwest::Client,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_string();
    match fault {
        Fault::Html => {
            let page = "<!DOCTYPE html><html><body><h1>Welcome</h1><p>Your app is almost ready.</p></body></html>";
            return Ok(Response::builder()
                .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
                .body(Full::new(Bytes::from(page)))
                .unwrap());
        }
        Fault::Webhook500 if path == "/webhook/incoming_call" => {
            return Ok(Response::builder()
                .status(StatusCode::INTERNAL_SERVER_ERROR)
                .header(header::CONTENT_TYPE, "text/plain")
                .body(Full::new(Bytes::from("Internal Server Error")))
                .unwrap());
        }
        Fault::SlowHealthz if path == "/healthz" => tokio::time::sleep(Duration::from_millis(1500)).await,
        _ => {}
    }
    if req.headers().contains_key(header::UPGRADE) {
        return Ok(upgrade(req, upstream, fault).await);
    }
    let (parts, body) = req.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    let target = format!("http://{upstream}{}", parts.uri.path_and_query().map_or("/", |p| p.as_str()));
    // The Host header too, as proxies keep it: the server's URLs name the proxy.
    let response = client.request(parts.method, target).headers(parts.headers).body(body).send().await.unwrap();
    let mut out = Response::builder().status(response.status());
    for (k, v) in response.headers() {
        if k != header::TRANSFER_ENCODING && k != header::CONTENT_LENGTH {
            out = out.header(k, v);
        }
    }
    Ok(out.body(Full::new(response.bytes().await.unwrap())).unwrap())
}

/// The upgrade forwarded by hand: the request head to the server, its
/// response head back (without the subprotocol, for that fault), then the
/// two sockets joined.
async fn upgrade(mut req: Request<Incoming>, upstream: SocketAddr, fault: Fault) -> Response<Full<Bytes>> {
    let mut up = TcpStream::connect(upstream).await.unwrap();
    let mut head = format!("{} {} HTTP/1.1\r\n", req.method(), req.uri());
    for (k, v) in req.headers() {
        head.push_str(&format!("{k}: {}\r\n", v.to_str().unwrap()));
    }
    head.push_str("\r\n");
    up.write_all(head.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    while !answer.ends_with(b"\r\n\r\n") {
        answer.push(up.read_u8().await.unwrap());
    }
    let answer = String::from_utf8(answer).unwrap();
    let mut lines = answer.split("\r\n");
    let status: u16 = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let mut out = Response::builder().status(status);
    for line in lines.filter(|l| !l.is_empty()) {
        let (k, v) = line.split_once(':').unwrap();
        let stripped = matches!(fault, Fault::StripSubprotocol) && k.eq_ignore_ascii_case("sec-websocket-protocol");
        // A refusal's body is not forwarded: hyper sets the length of ours.
        if !stripped && !k.eq_ignore_ascii_case("content-length") {
            out = out.header(k.trim(), v.trim());
        }
    }
    if status == 101 {
        let on_upgrade = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            let mut client = TokioIo::new(on_upgrade.await.unwrap());
            let _ = tokio::io::copy_bidirectional(&mut client, &mut up).await;
        });
    }
    out.body(Full::new(Bytes::new())).unwrap()
}
