//! Bad input and bad guests: each gets a defined outcome on its own call,
//! while other calls on the same server carry on.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hotline::sim::{CallOptions, Moment, place_call};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

use crate::support::*;

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(s: &TestServer) -> Ws {
    let mut request = format!("ws://{}/ws/twilio-media", s.server.local_addr()).into_client_request().unwrap();
    request.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static("audio.twilio.com"));
    tokio_tungstenite::connect_async(request).await.unwrap().0
}

/// A `start` for the raw sockets here, with a stream token from a real webhook.
async fn start_frame(s: &TestServer) -> Message {
    let token = stream_token(&s.base, "CAraw").await;
    start_message("CAraw", json!({ "hotline_token": token }))
}

/// Reads until the server's close frame; returns its code.
async fn close_code(ws: &mut Ws) -> Option<u16> {
    let read = async {
        while let Some(msg) = ws.next().await {
            match msg {
                Ok(Message::Close(frame)) => return frame.map(|f| u16::from(f.code)),
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
        None
    };
    tokio::time::timeout(Duration::from_secs(10), read).await.expect("server closes in time")
}

fn echo_call(s: &TestServer, sid: &str) -> CallOptions {
    CallOptions {
        server: s.base.clone(),
        audio: concat(&[silence(400), tone(700, 300.0), silence(1000)]),
        speed: 2.0,
        call_sid: sid.into(),
        idle_ms: 1000,
        ..CallOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_frames_are_logged_and_skipped_and_other_calls_carry_on() {
    let s = start_server(|_| {}).await;
    let healthy_opts = echo_call(&s, "CAhealthy0000000000000000000001");
    let healthy = tokio::spawn(async move { place_call(&healthy_opts).await });

    // Junk after start: each frame is skipped, and the call still echoes.
    let junk_call = CallOptions {
        inject: vec![
            "{not json".into(),
            json!({"event": "media", "streamSid": "MZ", "media": {"payload": "***not base64***"}}).to_string(),
            json!({"event": "brand-new-event", "whatever": [1, 2]}).to_string(),
            json!({"event": "dtmf", "dtmf": {"digit": "12"}}).to_string(),
            json!({"event": "media"}).to_string(),
        ],
        ..echo_call(&s, "CAjunk000000000000000000000000001")
    };
    let junk = place_call(&junk_call).await.expect("the junk call completes");
    assert_eq!(hotline::sim::reply_latencies(&junk).len(), 1, "still echoes: {:?}", junk.timeline);
    assert_eq!(junk.close, Some((1000, "stream stopped".into())));

    // Media before start: skipped; the call goes on once it starts.
    let mut early = connect(&s).await;
    let media = json!({"event": "media", "streamSid": "MZraw", "media": {"timestamp": "0", "payload": "//8="}});
    early.send(Message::Text(media.to_string().into())).await.unwrap();
    early.send(start_frame(&s).await).await.unwrap();
    let first = tokio::time::timeout(Duration::from_secs(5), early.next()).await.unwrap().unwrap().unwrap();
    assert!(first.to_text().unwrap().contains("\"media\""), "greeting after start: {first:?}");

    // A 1 MiB frame: the call is closed with 1009 (message too big).
    let mut big = connect(&s).await;
    big.send(start_frame(&s).await).await.unwrap();
    let _ = big.send(Message::Text("x".repeat(1 << 20).into())).await;
    assert_eq!(close_code(&mut big).await, Some(1009));

    // Binary garbage, over and over: the peer is cut off with 1008.
    let mut spammer = connect(&s).await;
    for _ in 0..100 {
        if spammer.send(Message::Binary(vec![0xde, 0xad].into())).await.is_err() {
            break;
        }
    }
    assert_eq!(close_code(&mut spammer).await, Some(1008));

    let report = healthy.await.unwrap().expect("the healthy call completes");
    assert_eq!(hotline::sim::reply_latencies(&report).len(), 1);
    assert_eq!(report.close, Some((1000, "stream stopped".into())));
    assert_eq!(reqwest::get(format!("{}/healthz", s.base)).await.unwrap().status(), 200);
    early.close(None).await.ok();
}

/// A trap costs the call its one recovery (from the last snapshot); a second
/// trap gets the host's apology and a clean close. Other calls never notice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trapping_guest_recovers_once_then_apologizes_and_only_its_call_ends() {
    let s = start_server(|c| c.guest_path = Some(PROBE_GUEST.into())).await;
    let doomed = CallOptions {
        audio: concat(&[silence(400), tone(700, 300.0), silence(3000)]),
        dtmf: vec![(600, '9'), (3000, '9')],
        idle_ms: 8000,
        ..echo_call(&s, "CAdoomed000000000000000000000001")
    };
    let healthy = echo_call(&s, "CAhealthy0000000000000000000002");
    let (doomed, healthy) = tokio::join!(place_call(&doomed), place_call(&healthy));
    let doomed = doomed.expect("doomed call runs");
    // Recovered from the first trap: the utterance still got its reply.
    assert_eq!(hotline::sim::reply_latencies(&doomed).len(), 1, "{:?}", doomed.timeline);
    // The second trap: the apology plays in full, then a clean close.
    let apology = doomed.first(|m| *m == Moment::MarkReceived("hotline-apology".into())).expect("apology mark");
    assert!((3000.0..3500.0).contains(&apology), "apology sent at {apology} ms");
    let heard = doomed.first(|m| *m == Moment::MarkEchoed("hotline-apology".into())).expect("apology played");
    assert!(heard - apology > 3000.0, "the apology is ~3.4 s long, heard after {} ms", heard - apology);
    assert_eq!(doomed.close, Some((1011, "call logic failed".into())));

    let healthy = healthy.expect("healthy call runs");
    assert_eq!(hotline::sim::reply_latencies(&healthy).len(), 1);
    assert_eq!(healthy.close, Some((1000, "stream stopped".into())));

    // And the server keeps taking calls.
    let after = place_call(&echo_call(&s, "CAafter00000000000000000000000001")).await.unwrap();
    assert_eq!(after.close, Some((1000, "stream stopped".into())));
}

/// An infinite loop and a memory bomb, each on its own call: the deadline
/// and the memory cap stop them, each call recovers, and the server keeps
/// answering health checks and serving a healthy call meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loops_and_memory_bombs_are_stopped_and_only_their_calls_notice() {
    let s = start_server(|c| {
        c.guest_path = Some(PROBE_GUEST.into());
        c.admin_token = Some("robustness-admin-token".into());
    })
    .await;
    let looping = CallOptions { dtmf: vec![(600, '8')], ..echo_call(&s, "CAloop00000000000000000000000001") };
    let bomb = CallOptions { dtmf: vec![(600, '6')], ..echo_call(&s, "CAbomb00000000000000000000000001") };
    let healthy = echo_call(&s, "CAhealthy0000000000000000000003");
    let base = s.base.clone();
    let health = tokio::spawn(async move {
        let mut statuses = Vec::new();
        for _ in 0..40 {
            statuses.push(reqwest::get(format!("{base}/healthz")).await.map(|r| r.status().as_u16()).unwrap_or(0));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        statuses
    });
    let (looping, bomb, healthy) = tokio::join!(place_call(&looping), place_call(&bomb), place_call(&healthy));
    for (name, report) in [("loop", looping.unwrap()), ("bomb", bomb.unwrap()), ("healthy", healthy.unwrap())] {
        assert_eq!(report.close, Some((1000, "stream stopped".into())), "{name}: recovered and finished");
        assert_eq!(hotline::sim::reply_latencies(&report).len(), 1, "{name}: still answered the caller");
    }
    assert!(health.await.unwrap().iter().all(|&s| s == 200), "healthz answered throughout");
    let admin: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/admin/guest", s.base))
        .bearer_auth("robustness-admin-token")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(admin["active"]["traps"], 2, "{admin}");
}

/// After the close handshake the server closes the connection first (RFC
/// 6455 7.1.1). A client that waits for that, as tungstenite's does, is not
/// left holding the call open until the server's close timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_close_handshake_the_server_closes_the_connection_first() {
    let mut child = crate::shutdown::spawn_hotline(&[]).await;
    let url = format!("{}/ws/twilio-media", child.base.replacen("http", "ws", 1));
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert("Sec-WebSocket-Protocol", HeaderValue::from_static("audio.twilio.com"));
    let mut ws = tokio_tungstenite::connect_async(request).await.unwrap().0;
    let token = stream_token(&child.base, "CAclose").await;
    ws.send(start_message("CAclose", json!({ "hotline_token": token }))).await.unwrap();
    ws.send(Message::Text(json!({"event": "stop", "streamSid": "MZclose"}).to_string().into())).await.unwrap();
    assert_eq!(close_code(&mut ws).await, Some(1000));
    // This read sends tungstenite's answer to the close; the socket stays
    // open on this side until the test ends.
    assert!(ws.next().await.is_none(), "the handshake is complete");
    let mut events = Vec::new();
    while events.last().is_none_or(|e| e != "ws_closed") {
        let line =
            tokio::time::timeout(Duration::from_secs(20), child.logs.recv()).await.expect("log line").expect("log");
        let json: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        if let Some(event) = json["event"].as_str() {
            events.push(event.to_string());
        }
    }
    assert!(!events.iter().any(|e| e == "ws_close_timeout"), "{events:?}");
    drop(ws);
}
