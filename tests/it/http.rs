//! The HTTP surface over a real socket: health, readiness, version,
//! webhooks and their errors, the WebSocket handshake, and an in-process drain.

use futures_util::StreamExt;
use reqwest::StatusCode;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use crate::support::*;

const FORM: &str = "application/x-www-form-urlencoded";

async fn post_form(url: String, body: impl Into<reqwest::Body>) -> reqwest::Response {
    reqwest::Client::new().post(url).header("content-type", FORM).body(body).send().await.unwrap()
}

#[tokio::test]
async fn health_readiness_version_and_unknown_routes() {
    let s = start_server(|c| c.deploy_id = Some("deploy-42".into())).await;
    let get = |path: &str| reqwest::get(format!("{}{path}", s.base));
    let health = get("/healthz").await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    assert_eq!(health.text().await.unwrap(), "ok");

    let ready: serde_json::Value = get("/readyz").await.unwrap().json().await.unwrap();
    assert_eq!(ready["ready"], true);
    assert_eq!(ready["guest"]["loaded"], true);
    assert_eq!(ready["draining"], false);

    let version: serde_json::Value = get("/version").await.unwrap().json().await.unwrap();
    assert_eq!(version["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(version["deploy_id"], "deploy-42");
    assert_eq!(version["guest_digest"].as_str().map(str::len), Some(64), "sha256 hex: {version}");
    assert_eq!(version["guest_digest"], ready["guest"]["digest"]);

    let root = get("/").await.unwrap();
    assert_eq!(root.status(), StatusCode::OK, "a platform's check of the root passes");
    assert!(root.text().await.unwrap().contains("/healthz"));
    assert_eq!(get("/nope").await.unwrap().status(), StatusCode::NOT_FOUND);
    let post_root = reqwest::Client::new().post(format!("{}/", s.base)).send().await.unwrap();
    assert_eq!(post_root.status(), StatusCode::METHOD_NOT_ALLOWED);
    let wrong_method = reqwest::Client::new().post(format!("{}/healthz", s.base)).send().await.unwrap();
    assert_eq!(wrong_method.status(), StatusCode::METHOD_NOT_ALLOWED);
    let get_webhook = get("/webhook/incoming_call").await.unwrap();
    assert_eq!(get_webhook.status(), StatusCode::METHOD_NOT_ALLOWED);
}

#[tokio::test]
async fn incoming_call_answers_twiml_built_from_the_proxy_headers() {
    /// The voice webhook, as sent through a proxy that names this host.
    async fn via_proxy(base: &str, host: &str) -> reqwest::Response {
        reqwest::Client::new()
            .post(format!("{base}/webhook/incoming_call"))
            .header("content-type", FORM)
            .header("x-forwarded-proto", "https")
            .header("x-forwarded-host", host)
            .body("CallSid=CA123&From=%2B15551234567")
            .send()
            .await
            .unwrap()
    }
    let s = start_server(|c| c.security.trust_proxy = true).await;
    let response = via_proxy(&s.base, "agent.example.com").await;
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_string();
    assert!(content_type.starts_with("text/xml"), "{content_type}");
    let twiml = response.text().await.unwrap();
    let target = hotline::sim::twiml::stream_target(&twiml).unwrap().expect("a <Stream>");
    assert_eq!(target.url, "wss://agent.example.com/ws/twilio-media");
    assert_eq!(target.parameters[0], ("call_sid".to_string(), "CA123".to_string()));
    assert_eq!(target.parameters[1].0, "hotline_token");

    // Untrusted, the same headers are ignored: any client can send them.
    let untrusted = start_server(|_| {}).await;
    let twiml = via_proxy(&untrusted.base, "evil.example").await.text().await.unwrap();
    let target = hotline::sim::twiml::stream_target(&twiml).unwrap().expect("a <Stream>");
    assert_eq!(target.url, format!("{}/ws/twilio-media", untrusted.base.replace("http://", "wss://")));

    // PUBLIC_BASE_URL (with a trailing slash) beats the headers.
    let fixed = start_server(|c| c.public_base_url = Some("https://fixed.example".into())).await;
    let twiml = post_form(format!("{}/webhook/incoming_call", fixed.base), "CallSid=CA1").await.text().await.unwrap();
    assert!(twiml.contains(r#"action="https://fixed.example/webhook/stream_ended""#), "{twiml}");
}

#[tokio::test]
async fn bad_webhooks_get_clear_errors() {
    let s = start_server(|c| c.max_body_bytes = 1024).await;
    let url = format!("{}/webhook/incoming_call", s.base);

    let malformed = post_form(url.clone(), "CallSid=%zz").await;
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    assert!(malformed.text().await.unwrap().contains("percent-escape"));

    let not_form = reqwest::Client::new().post(&url).header("content-type", "application/json").body("{}");
    assert_eq!(not_form.send().await.unwrap().status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    let huge = format!("CallSid=CA1&Junk={}", "x".repeat(4096));
    let too_big = post_form(url.clone(), huge).await;
    assert_eq!(too_big.status(), StatusCode::PAYLOAD_TOO_LARGE);

    let status = post_form(format!("{}/webhook/stream_status", s.base), "StreamEvent=stream-started&CallSid=CA1").await;
    assert_eq!(status.status(), StatusCode::NO_CONTENT);
    let ended = post_form(format!("{}/webhook/stream_ended", s.base), "CallSid=CA1").await;
    assert_eq!(ended.status(), StatusCode::OK);
    assert!(ended.text().await.unwrap().ends_with("<Response><Hangup/></Response>"));

    // The server is still fine.
    assert_eq!(post_form(url, "CallSid=CA2").await.status(), StatusCode::OK);
}

/// `audio.twilio.com` is echoed if and only if it was offered.
#[tokio::test]
async fn websocket_handshake_echoes_the_subprotocol_only_when_offered() {
    let s = start_server(|_| {}).await;
    let url = format!("ws://{}/ws/twilio-media", s.server.local_addr());
    for offered in [Some("audio.twilio.com"), Some("chat, audio.twilio.com"), None] {
        let mut request = url.as_str().into_client_request().unwrap();
        if let Some(p) = offered {
            request.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static(p));
        }
        let (mut ws, response) = tokio_tungstenite::connect_async(request).await.expect("handshake");
        let echoed = response.headers().get("sec-websocket-protocol").map(|v| v.to_str().unwrap().to_string());
        match offered {
            Some(_) => assert_eq!(echoed.as_deref(), Some("audio.twilio.com")),
            None => assert_eq!(echoed, None),
        }
        ws.close(None).await.unwrap();
        while ws.next().await.is_some() {}
    }
    // Not an upgrade at all: a 400 with a reason, not a hang.
    let plain = reqwest::get(format!("{}/ws/twilio-media", s.base)).await.unwrap();
    assert_eq!(plain.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_drain_turns_readiness_off_and_refuses_new_calls_politely() {
    let s = start_server(|c| c.drain = std::time::Duration::from_secs(5)).await;
    let base = s.base.clone();
    // Hold a call open so the drain has something to wait for.
    let mut request = format!("ws://{}/ws/twilio-media", s.server.local_addr()).into_client_request().unwrap();
    request.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static("audio.twilio.com"));
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();

    s.server.begin_drain();
    let mut readiness = StatusCode::OK;
    for _ in 0..100 {
        readiness = reqwest::get(format!("{base}/readyz")).await.unwrap().status();
        if readiness == StatusCode::SERVICE_UNAVAILABLE {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(readiness, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reqwest::get(format!("{base}/healthz")).await.unwrap().status(), StatusCode::OK);
    let refusal = post_form(format!("{base}/webhook/incoming_call"), "CallSid=CA9").await;
    assert_eq!(refusal.status(), StatusCode::OK);
    let twiml = refusal.text().await.unwrap();
    assert!(hotline::sim::twiml::stream_target(&twiml).unwrap().is_none(), "no stream while draining: {twiml}");
    assert!(twiml.contains("<Say>"));

    // The caller hangs up; the drain then completes.
    ws.close(None).await.unwrap();
    while ws.next().await.is_some() {}
    tokio::time::timeout(std::time::Duration::from_secs(10), s.server.wait()).await.expect("drain completes");
}

/// A call that arrives while the first guest version compiles (start-up,
/// nothing cached) is held until the guest is in, not refused.
#[tokio::test]
async fn a_call_during_start_up_is_held_not_refused() {
    hotline::providers::install_tls();
    let mut config = hotline::config::Config { listen: "127.0.0.1:0".parse().unwrap(), ..Default::default() };
    config.sandbox.cache_dir = None;
    let server = hotline::http::Server::start(config).await.unwrap();
    let base = format!("http://{}", server.local_addr());
    let ready = reqwest::get(format!("{base}/readyz")).await.unwrap().status();
    assert_eq!(ready, StatusCode::SERVICE_UNAVAILABLE, "setup: the guest is still compiling");
    let response = post_form(format!("{base}/webhook/incoming_call"), "CallSid=CAearly").await;
    assert_eq!(response.status(), StatusCode::OK);
    let twiml = response.text().await.unwrap();
    let target = hotline::sim::twiml::stream_target(&twiml).unwrap();
    assert!(target.is_some(), "a stream, not the refusal: {twiml}");
    assert_eq!(reqwest::get(format!("{base}/readyz")).await.unwrap().status(), StatusCode::OK);
}
