//! Who may start a call. Signatures here are computed by the tests' own
//! HMAC (RustCrypto's `hmac`, `sha1`, `sha2`), not by the server's code
//! (`ring`), from Twilio's published recipe.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use futures_util::{SinkExt, StreamExt};
use hmac::{Hmac, Mac};
use hotline::sim::{CallOptions, place_call, reply_latencies};
use hotline_common::Secret;
use reqwest::StatusCode;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::support::*;

const AUTH_TOKEN: &str = "0123456789abcdef0123456789abcdef";
const OTHER_TOKEN: &str = "fedcba9876543210fedcba9876543210";
const STREAM_SECRET: &str = "a-stream-secret-of-at-least-32-chars!";

/// Twilio's recipe: base64(HMAC-SHA1(token, url + sorted name+value pairs)).
fn twilio_signature(token: &str, url: &str, params: &[(&str, &str)]) -> String {
    let mut sorted = params.to_vec();
    sorted.sort();
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(token.as_bytes()).unwrap();
    mac.update(url.as_bytes());
    for (k, v) in sorted {
        mac.update(k.as_bytes());
        mac.update(v.as_bytes());
    }
    STANDARD.encode(mac.finalize().into_bytes())
}

/// A stream token as documented in `twilio/stream_token.rs`.
fn forge_token(secret: &str, call_sid: &str, expiry: u64) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{call_sid}\n{expiry}").as_bytes());
    format!("{expiry}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

const CALL: [(&str, &str); 3] = [("CallSid", "CAsigned"), ("From", "+15551234567"), ("To", "+15550000000")];

async fn post(
    url: &str,
    params: &[(&str, &str)],
    signature: Option<String>,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let mut request = reqwest::Client::new().post(url).form(params);
    if let Some(sig) = signature {
        request = request.header("X-Twilio-Signature", sig);
    }
    for (k, v) in extra {
        request = request.header(*k, *v);
    }
    request.send().await.unwrap()
}

async fn signed_server(public: Option<&str>) -> TestServer {
    let public = public.map(str::to_string);
    start_server(move |c| {
        c.security.auth_tokens = vec![Secret::new(AUTH_TOKEN), Secret::new(OTHER_TOKEN)];
        c.public_base_url = public;
    })
    .await
}

#[tokio::test]
async fn webhooks_need_a_valid_signature_over_their_public_url() {
    let s = signed_server(Some("https://agent.example")).await;
    let local = format!("{}/webhook/incoming_call", s.base);
    let public = "https://agent.example/webhook/incoming_call";

    let valid = post(&local, &CALL, Some(twilio_signature(AUTH_TOKEN, public, &CALL)), &[]).await;
    assert_eq!(valid.status(), StatusCode::OK);
    assert!(valid.text().await.unwrap().contains("<Stream"));

    // The default port may or may not be in the URL Twilio signed.
    let with_port = twilio_signature(AUTH_TOKEN, "https://agent.example:443/webhook/incoming_call", &CALL);
    assert_eq!(post(&local, &CALL, Some(with_port), &[]).await.status(), StatusCode::OK);
    // The secondary token, during a rotation.
    let secondary = twilio_signature(OTHER_TOKEN, public, &CALL);
    assert_eq!(post(&local, &CALL, Some(secondary), &[]).await.status(), StatusCode::OK);

    let refused = [
        ("missing", None),
        (
            "tampered parameter",
            Some(twilio_signature(AUTH_TOKEN, public, &[("From", "+19999999999"), CALL[0], CALL[2]])),
        ),
        (
            "http instead of https",
            Some(twilio_signature(AUTH_TOKEN, "http://agent.example/webhook/incoming_call", &CALL)),
        ),
        ("another port", Some(twilio_signature(AUTH_TOKEN, "https://agent.example:8443/webhook/incoming_call", &CALL))),
        ("another path", Some(twilio_signature(AUTH_TOKEN, "https://agent.example/webhook/stream_ended", &CALL))),
        ("another account", Some(twilio_signature("ffffffffffffffffffffffffffffffff", public, &CALL))),
    ];
    for (case, signature) in refused {
        let response = post(&local, &CALL, signature, &[]).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{case}");
        assert_eq!(response.text().await.unwrap(), "invalid Twilio signature", "{case}");
    }

    // The other webhooks are signed too.
    for (path, more) in [
        ("/webhook/stream_status", None),
        ("/webhook/stream_ended", None),
        ("/webhook/call_status", Some(("CallStatus", "completed"))),
        ("/webhook/dial_ended", Some(("DialCallStatus", "completed"))),
        ("/webhook/amd", Some(("AnsweredBy", "human"))),
    ] {
        let form: Vec<(&str, &str)> = CALL.iter().copied().chain(more).collect();
        let url = format!("{}{path}", s.base);
        assert_eq!(post(&url, &form, None, &[]).await.status(), StatusCode::FORBIDDEN, "{path}");
        let sig = twilio_signature(AUTH_TOKEN, &format!("https://agent.example{path}"), &form);
        assert!(post(&url, &form, Some(sig), &[]).await.status().is_success(), "{path}");
    }

    let ready: serde_json::Value = reqwest::get(format!("{}/readyz", s.base)).await.unwrap().json().await.unwrap();
    assert_eq!(ready["twilio_signature"], "on");
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_url_is_the_signed_one() {
    let s = start_server(|c| {
        c.security.auth_tokens = vec![Secret::new(AUTH_TOKEN)];
        c.security.trust_proxy = true;
    })
    .await;
    let local = format!("{}/webhook/incoming_call", s.base);
    let proxy = [("X-Forwarded-Proto", "https"), ("X-Forwarded-Host", "agent.example")];
    let sig = twilio_signature(AUTH_TOKEN, "https://agent.example/webhook/incoming_call", &CALL);
    assert_eq!(post(&local, &CALL, Some(sig.clone()), &proxy).await.status(), StatusCode::OK);
    // Without the proxy's headers the request arrived at another URL.
    assert_eq!(post(&local, &CALL, Some(sig), &[]).await.status(), StatusCode::FORBIDDEN);

    // Untrusted, the headers do not count.
    let strict = signed_server(None).await;
    let sig = twilio_signature(AUTH_TOKEN, "https://agent.example/webhook/incoming_call", &CALL);
    let url = format!("{}/webhook/incoming_call", strict.base);
    assert_eq!(post(&url, &CALL, Some(sig), &proxy).await.status(), StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_upgrade_is_signed_over_the_stream_url() {
    let s = signed_server(None).await;
    let ws_url = format!("{}/ws/twilio-media", s.base.replace("http://", "ws://"));

    let unsigned = tokio_tungstenite::connect_async(ws_url.as_str()).await;
    match unsigned {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), StatusCode::FORBIDDEN)
        }
        other => panic!("an unsigned upgrade must be refused with 403, got {other:?}"),
    }
    let mut request = ws_url.as_str().into_client_request().unwrap();
    // Twilio opens (and signs) only wss:// URLs: the TLS terminator in front
    // of the server turns them into plain ws.
    let wrong = twilio_signature(AUTH_TOKEN, &ws_url, &[]);
    request.headers_mut().insert("X-Twilio-Signature", wrong.parse().unwrap());
    assert!(tokio_tungstenite::connect_async(request).await.is_err(), "signed for ws://, not wss://");
    let mut request = ws_url.as_str().into_client_request().unwrap();
    let right = twilio_signature(AUTH_TOKEN, &ws_url.replace("ws://", "wss://"), &[]);
    request.headers_mut().insert("X-Twilio-Signature", right.parse().unwrap());
    assert!(tokio_tungstenite::connect_async(request).await.is_ok(), "signed for the wss:// URL");

    // The simulator signs like Twilio: webhook and upgrade; the call works.
    let opts = CallOptions {
        server: s.base.clone(),
        audio: concat(&[silence(300), tone(600, 300.0), silence(900)]),
        speed: 2.0,
        idle_ms: 800,
        auth_token: Some(Secret::new(AUTH_TOKEN)),
        ..CallOptions::default()
    };
    let report = place_call(&opts).await.expect("a signed call");
    assert_eq!(reply_latencies(&report).len(), 1, "echoed: {:?}", report.timeline);
    let unsigned_call = CallOptions { auth_token: None, ..opts };
    let err = place_call(&unsigned_call).await.unwrap_err();
    assert!(format!("{err:#}").contains("403"), "{err:#}");
}

#[tokio::test]
async fn without_a_token_calls_work_and_readyz_says_signatures_are_off() {
    let s = start_server(|_| {}).await;
    let ready: serde_json::Value = reqwest::get(format!("{}/readyz", s.base)).await.unwrap().json().await.unwrap();
    assert_eq!(ready["twilio_signature"], "off");
    let url = format!("{}/webhook/incoming_call", s.base);
    assert_eq!(post(&url, &CALL, None, &[]).await.status(), StatusCode::OK);
}

/// Opens a stream, sends `start` with these parameters, and returns what
/// the server did: the close code, and whether any media came first.
async fn start_with(s: &TestServer, call_sid: &str, parameters: serde_json::Value) -> (Option<u16>, bool) {
    let url = format!("{}/ws/twilio-media", s.base.replace("http://", "ws://"));
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    ws.send(start_message(call_sid, parameters)).await.unwrap();
    let mut media = false;
    let outcome = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(msg) = ws.next().await {
            match msg {
                Ok(Message::Close(frame)) => return frame.map(|f| u16::from(f.code)),
                Ok(Message::Text(t)) if t.contains("\"media\"") => {
                    media = true;
                    return None;
                }
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
        None
    })
    .await;
    (outcome.unwrap_or(None), media)
}

#[tokio::test]
async fn a_stream_must_carry_the_token_of_its_own_webhook() {
    let s = start_server(|c| c.security.stream_secret = Some(Secret::new(STREAM_SECRET))).await;
    let issued = stream_token(&s.base, "CAbound").await;

    // The real token, for its own call: the guest answers (the greeting).
    assert_eq!(start_with(&s, "CAbound", json!({"hotline_token": issued})).await, (None, true));

    let later = now_secs() + 60;
    let refused = [
        ("no token", "CAbound", json!({})),
        ("another call's token", "CAother", json!({"hotline_token": issued})),
        (
            "forged with another secret",
            "CAbound",
            json!({"hotline_token": forge_token(&"x".repeat(40), "CAbound", later)}),
        ),
        ("expired", "CAbound", json!({"hotline_token": forge_token(STREAM_SECRET, "CAbound", now_secs() - 1)})),
        ("garbage", "CAbound", json!({"hotline_token": "not-a-token"})),
    ];
    for (case, sid, params) in refused {
        assert_eq!(start_with(&s, sid, params).await, (Some(1008), false), "{case}");
    }
    // A token made with the server's secret by the recipe is accepted: the
    // test's reading of the format is the server's.
    let forged_right = forge_token(STREAM_SECRET, "CAbound", later);
    assert_eq!(start_with(&s, "CAbound", json!({"hotline_token": forged_right})).await, (None, true));
}
