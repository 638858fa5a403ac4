//! No client can exhaust the server: stalled connections are closed within
//! their timeouts, a peer that stops reading is cut off with memory
//! bounded, streams beyond the call limit are refused, and a flood of
//! useless messages does not become a flood of log lines.

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

use crate::shutdown::spawn_hotline;
use crate::support::*;

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<TcpStream>>;

async fn open_ws(base: &str) -> Ws {
    let url = format!("{}/ws/twilio-media", base.replace("http://", "ws://"));
    tokio_tungstenite::connect_async(url).await.expect("upgrade").0
}

/// A stream that has started, as Twilio's would, with a token from a real webhook.
async fn started_ws(base: &str, call_sid: &str) -> Ws {
    let token = stream_token(base, call_sid).await;
    let mut ws = open_ws(base).await;
    ws.send(start_message(call_sid, json!({ "hotline_token": token }))).await.unwrap();
    ws
}

/// Reads until the server's close frame: its code and reason.
async fn close_of(ws: &mut Ws, within: Duration) -> Option<(u16, String)> {
    let read = async {
        while let Some(msg) = ws.next().await {
            match msg {
                Ok(Message::Close(frame)) => return frame.map(|f| (u16::from(f.code), f.reason.to_string())),
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
        None
    };
    tokio::time::timeout(within, read).await.expect("the server closes in time")
}

/// Reads a raw connection until the server closes it; returns what it sent.
async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> String {
    let mut got = Vec::new();
    let read = async {
        let mut buf = [0u8; 1024];
        while let Ok(n) = stream.read(&mut buf).await
            && n > 0
        {
            got.extend_from_slice(&buf[..n]);
        }
    };
    tokio::time::timeout(within, read).await.expect("the server closes the connection in time");
    String::from_utf8_lossy(&got).into_owned()
}

async fn healthz_ms(base: &str) -> u128 {
    let began = Instant::now();
    let r = reqwest::get(format!("{base}/healthz")).await.unwrap();
    assert_eq!(r.status(), 200);
    began.elapsed().as_millis()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_connections_are_closed_within_their_timeouts() {
    let s = start_server(|c| {
        c.security.header_timeout = Duration::from_secs(1);
        c.security.body_timeout = Duration::from_secs(1);
        c.security.start_timeout = Duration::from_secs(1);
        c.security.stream_idle = Duration::from_secs(2);
    })
    .await;
    let addr = s.server.local_addr();
    let limit = Duration::from_secs(6);

    // A connection that sends nothing.
    let mut silent = TcpStream::connect(addr).await.unwrap();
    // Slowloris: a header byte now and then, never the whole head.
    let mut slow = TcpStream::connect(addr).await.unwrap();
    let slowloris = tokio::spawn(async move {
        let began = Instant::now();
        for byte in b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".iter() {
            if slow.write_all(&[*byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let _ = read_until_closed(&mut slow, Duration::from_secs(10)).await;
        began.elapsed()
    });
    // Keep-alive: one request answered, then idle.
    let mut idle = TcpStream::connect(addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    // A body promised and never finished, plain and chunked.
    let mut half = TcpStream::connect(addr).await.unwrap();
    half.write_all(
        b"POST /webhook/incoming_call HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\nCallSid=CA1",
    )
    .await
    .unwrap();
    let mut chunked = TcpStream::connect(addr).await.unwrap();
    chunked
        .write_all(b"POST /webhook/incoming_call HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nCallS")
        .await
        .unwrap();
    // A WebSocket never started, and one started that goes quiet.
    let mut unstarted = open_ws(&s.base).await;
    let mut quiet = started_ws(&s.base, "CAquiet").await;

    assert!(healthz_ms(&s.base).await < 1000, "/healthz answers meanwhile");
    let began = Instant::now();
    assert_eq!(read_until_closed(&mut silent, limit).await, "", "a silent connection is closed, unanswered");
    let answered = read_until_closed(&mut idle, limit).await;
    assert!(answered.starts_with("HTTP/1.1 200"), "the request was served, then the idle connection closed");
    let timed_out = read_until_closed(&mut half, limit).await;
    assert!(timed_out.starts_with("HTTP/1.1 408"), "half-sent body: {timed_out:?}");
    let timed_out = read_until_closed(&mut chunked, limit).await;
    assert!(timed_out.starts_with("HTTP/1.1 408"), "endless chunked body: {timed_out:?}");
    assert_eq!(close_of(&mut unstarted, limit).await, Some((1008, "no start in time".into())));
    assert_eq!(close_of(&mut quiet, limit).await, Some((1008, "stream idle".into())));
    assert!(began.elapsed() < limit, "all closed within their timeouts: {:?}", began.elapsed());
    let slow_for = slowloris.await.unwrap();
    assert!(slow_for < Duration::from_secs(5), "slowloris cut off after {slow_for:?}");
    assert!(healthz_ms(&s.base).await < 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_pings_without_reading_is_cut_off_with_memory_bounded() {
    let mut child = spawn_hotline(&[("HOTLINE_STREAM_IDLE_SECS", "3")]).await;
    let pid = child.process.id().unwrap();
    let rss_kib = || {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap()
    };
    let before = rss_kib();
    let mut ws = started_ws(&child.base, "CAflood").await;
    let began = Instant::now();
    let mut peak = before;
    let mut sent = 0u64;
    // Pings as fast as the socket takes them; the pongs are never read.
    while began.elapsed() < Duration::from_secs(8) {
        let burst = async {
            for _ in 0..1000 {
                ws.feed(Message::Ping(vec![7u8; 125].into())).await?;
            }
            ws.flush().await
        };
        match tokio::time::timeout(Duration::from_secs(2), burst).await {
            Ok(Ok(())) => sent += 1000,
            _ => break, // cut off, or our side is blocked by the server no longer reading
        }
        peak = peak.max(rss_kib());
    }
    peak = peak.max(rss_kib());
    eprintln!("ping flood: {sent} pings unread; server RSS {before} KiB before, {peak} KiB at its peak");
    assert!(sent >= 1000, "the flood got going: {sent} pings");
    assert!(peak < before + 64 * 1024, "RSS {before} KiB before, peak {peak} KiB during the flood");
    // The flood's socket is closed (its write buffer full, or silent since);
    // the server serves on.
    assert!(healthz_ms(&child.base).await < 2000);
    let mut saw_end = false;
    while let Ok(Some(line)) = tokio::time::timeout(Duration::from_secs(15), child.logs.recv()).await {
        if line.contains("\"ws_closed\"") {
            saw_end = true;
            break;
        }
    }
    assert!(saw_end, "the flooding call ended");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn useless_messages_are_cut_off_and_their_logging_is_bounded() {
    let mut child = spawn_hotline(&[]).await;
    let mut ws = started_ws(&child.base, "CAspam").await;
    let connected = json!({"event": "connected", "protocol": "Call", "version": "1.0.0"}).to_string();
    let mark = json!({"event": "mark", "streamSid": "MZCAspam", "mark": {"name": "never-sent"}}).to_string();
    let unknown = json!({"event": "brand-new", "x": 1}).to_string();
    for i in 0..5000 {
        let text = [&connected, &mark, &unknown][i % 3].clone();
        if ws.send(Message::Text(text.into())).await.is_err() {
            break;
        }
    }
    assert_eq!(close_of(&mut ws, Duration::from_secs(10)).await, Some((1008, "too many malformed frames".into())));
    let mut lines = 0;
    while let Ok(Some(line)) = tokio::time::timeout(Duration::from_secs(2), child.logs.recv()).await {
        lines += 1;
        if line.contains("\"ws_closed\"") {
            assert!(line.contains("\"bad_frames\":100"), "{line}");
            break;
        }
    }
    assert!(lines < 40, "a few lines for 5000 useless messages, not one each: {lines}");
}

#[tokio::test]
async fn a_text_frame_that_is_not_utf8_gets_1007() {
    let s = start_server(|_| {}).await;
    let mut ws = started_ws(&s.base, "CAutf8").await;
    let invalid = Frame::message(vec![0x7b, 0xff, 0xfe, 0x7d], OpCode::Data(Data::Text), true);
    ws.send(Message::Frame(invalid)).await.unwrap();
    let close = close_of(&mut ws, Duration::from_secs(5)).await;
    assert_eq!(close.map(|c| c.0), Some(1007));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_beyond_the_call_limit_are_refused_and_webhooks_keep_their_reserve() {
    let s = start_server(|c| c.sandbox.max_instances = 3 + hotline::config::WEBHOOK_INSTANCES).await;
    let mut squatters = Vec::new();
    for i in 0..3 {
        squatters.push(started_ws(&s.base, &format!("CAsquat{i}")).await);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let url = format!("{}/ws/twilio-media", s.base.replace("http://", "ws://"));
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 503),
        other => panic!("a fourth stream must be refused with 503, got {other:?}"),
    }
    let ready = reqwest::get(format!("{}/readyz", s.base)).await.unwrap();
    assert_eq!(ready.status(), 503, "at the call limit the server is not ready for more");
    // The webhooks' instances are still theirs: a webhook is answered.
    let twiml = reqwest::Client::new()
        .post(format!("{}/webhook/incoming_call", s.base))
        .form(&[("CallSid", "CAnext")])
        .send()
        .await
        .unwrap();
    assert_eq!(twiml.status(), 200);
    assert!(twiml.text().await.unwrap().contains("<Stream"));
    drop(squatters);
}

#[test]
fn guest_instances_beyond_the_limit_are_refused_until_one_ends() {
    use hotline::config::Config;
    use hotline::sandbox::{GuestError, Sandbox, SandboxConfig};
    use hotline::versions::DEFAULT_GUEST;

    let sandbox = Sandbox::new(SandboxConfig { max_instances: 2, ..Config::default().sandbox }).expect("sandbox");
    let guest = sandbox.load(DEFAULT_GUEST).expect("the default guest loads");
    let first = guest.session().expect("a first instance");
    let second = guest.restore(&first_snapshot(&guest)).expect("a second instance");
    match guest.session() {
        Err(e @ GuestError::NoCapacity(2)) => assert_eq!(e.event(), "no_capacity"),
        Err(other) => panic!("a third instance must be refused for capacity, got {other}"),
        Ok(_) => panic!("a third instance must be refused for capacity"),
    }
    drop(first);
    let third = guest.session().expect("the ended call's slot is free again");
    drop((second, third));
}

/// A snapshot of a fresh session, taken in a throwaway instance.
fn first_snapshot(guest: &hotline::sandbox::Guest) -> Vec<u8> {
    guest.session().expect("an instance").snapshot().expect("a snapshot")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrades_are_refused_during_a_drain() {
    let s = start_server(|c| c.drain = Duration::from_secs(10)).await;
    let _live = started_ws(&s.base, "CAlive").await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    s.server.begin_drain();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let url = format!("{}/ws/twilio-media", s.base.replace("http://", "ws://"));
    match tokio_tungstenite::connect_async(url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status(), 503),
        other => panic!("an upgrade during a drain must be refused with 503, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_take_every_connection() {
    let s = start_server(|c| c.security.max_connections_per_ip = Some(50)).await;
    let addr = s.server.local_addr();
    // 200 silent connections from another loopback address.
    let mut held = Vec::new();
    let mut closed_at_once = 0;
    for _ in 0..200 {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        let mut stream = socket.connect(addr).await.unwrap();
        let mut byte = [0u8; 1];
        match tokio::time::timeout(Duration::from_millis(100), stream.read(&mut byte)).await {
            Ok(Ok(0)) | Ok(Err(_)) => closed_at_once += 1,
            _ => held.push(stream),
        }
    }
    assert_eq!(held.len(), 50, "the address's share is held open");
    assert_eq!(closed_at_once, 150, "the rest are closed at once");
    // Everyone else is still served.
    for _ in 0..5 {
        assert!(healthz_ms(&s.base).await < 1000);
    }
}

#[tokio::test]
async fn admin_token_guessing_is_throttled_per_address() {
    let s = admin_server(hotline::config::SwapPolicy::Migrate).await;
    let client = reqwest::Client::new();
    let get = |token: &str| client.get(format!("{}/admin/guest", s.base)).bearer_auth(token).send();
    let mut statuses = Vec::new();
    for i in 0..12 {
        statuses.push(get(&format!("wrong-token-{i:04}-xxxxxxxx")).await.unwrap().status().as_u16());
    }
    assert_eq!(&statuses[..10], &[401; 10], "{statuses:?}");
    assert_eq!(&statuses[10..], &[429, 429], "{statuses:?}");
    let locked = get(TOKEN).await.unwrap();
    assert_eq!(locked.status(), 429, "locked out, right token or not");
    let retry: u64 = locked.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "Retry-After: {retry}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_cannot_push_messages_thousands_of_times_faster_than_real_time() {
    let s = start_server(|_| {}).await;
    let mut ws = started_ws(&s.base, "CAfast").await;
    let media = json!({"event": "media", "streamSid": "MZCAfast",
        "media": {"track": "inbound", "chunk": "1", "timestamp": "0", "payload": STANDARD.encode([0xffu8; 160])}})
    .to_string();
    let began = Instant::now();
    // 1600 frames (32 s of audio) as fast as the socket takes them, then stop.
    for _ in 0..1600 {
        ws.feed(Message::Text(media.clone().into())).await.unwrap();
    }
    ws.send(Message::Text(json!({"event": "stop", "streamSid": "MZCAfast"}).to_string().into())).await.unwrap();
    assert_eq!(close_of(&mut ws, Duration::from_secs(30)).await.map(|c| c.0), Some(1000));
    // 1000 at once, then 500 a second: the stop cannot be read before 1.2 s.
    let took = began.elapsed();
    assert!(took >= Duration::from_millis(1100), "the call was slowed to its rate: {took:?}");
}
