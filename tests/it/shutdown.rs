//! SIGTERM against the real binary: readiness goes 503, new calls are
//! refused politely, live calls finish (or are closed with a close frame at
//! the drain deadline), and the process exits 0.

use std::process::Stdio;
use std::time::{Duration, Instant};

use hotline::sim::{CallOptions, place_call};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::support::*;

pub struct Child {
    pub process: tokio::process::Child,
    pub base: String,
    pub logs: tokio::sync::mpsc::UnboundedReceiver<String>,
}

pub async fn spawn_hotline(env: &[(&str, &str)]) -> Child {
    let mut process = hotline_command(env).stderr(Stdio::piped()).spawn().expect("spawn hotline");
    let mut lines = BufReader::new(process.stderr.take().unwrap()).lines();
    let (tx, mut logs) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            let _ = tx.send(line);
        }
    });
    let addr = loop {
        let line = tokio::time::timeout(Duration::from_secs(20), logs.recv()).await.expect("log line").expect("log");
        let json: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        if json["event"] == "listening" {
            break json["addr"].as_str().unwrap().to_string();
        }
    };
    let base = format!("http://{addr}");
    for _ in 0..200 {
        if let Ok(r) = reqwest::get(format!("{base}/readyz")).await
            && r.status() == 200
        {
            return Child { process, base, logs };
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("hotline never became ready");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_live_calls_and_exits_zero() {
    let mut child = spawn_hotline(&[("HOTLINE_DRAIN_SECS", "5")]).await;
    let base = child.base.clone();
    let short = CallOptions {
        server: base.clone(),
        audio: concat(&[silence(1000), tone(600, 300.0), silence(500)]),
        call_sid: "CAshort000000000000000000000000001".into(),
        idle_ms: 500,
        ..CallOptions::default()
    };
    let long = CallOptions {
        server: base.clone(),
        audio: silence(30_000),
        call_sid: "CAlong0000000000000000000000000001".into(),
        ..CallOptions::default()
    };
    let short = tokio::spawn(async move { place_call(&short).await });
    let long = tokio::spawn(async move { place_call(&long).await });
    tokio::time::sleep(Duration::from_millis(800)).await;

    let pid = child.process.id().expect("running") as i32;
    let signalled = Instant::now();
    // SAFETY: kill(2) on the child this test started; no memory is involved.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);

    let mut ready = 200;
    for _ in 0..100 {
        ready = reqwest::get(format!("{base}/readyz")).await.unwrap().status().as_u16();
        if ready == 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(ready, 503, "readiness must turn off during the drain");
    let refusal = reqwest::Client::new()
        .post(format!("{base}/webhook/incoming_call"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("CallSid=CAlate")
        .send()
        .await
        .unwrap();
    assert_eq!(refusal.status(), 200);
    assert!(!refusal.text().await.unwrap().contains("<Stream"), "no new stream while draining");

    // The short call ends on its own, normally.
    let short = short.await.unwrap().expect("short call completes");
    assert_eq!(short.close, Some((1000, "stream stopped".into())));
    assert_eq!(hotline::sim::reply_latencies(&short).len(), 1, "it was served in full during the drain");

    // The long one is closed at the deadline, with a close frame.
    let long = long.await.unwrap().expect("long call ends cleanly");
    assert_eq!(long.close, Some((1000, "server shutting down".into())));
    let cut_after = signalled.elapsed();
    assert!(cut_after >= Duration::from_secs(4), "closed after {cut_after:?}, before the 5 s budget");

    let status = tokio::time::timeout(Duration::from_secs(15), child.process.wait()).await.expect("exits").unwrap();
    assert!(status.success(), "exit status {status:?}");
    let mut events = Vec::new();
    // The reader ends at EOF of the exited process's stderr.
    while let Ok(Some(line)) = tokio::time::timeout(Duration::from_secs(5), child.logs.recv()).await {
        let json: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
        events.push(json["event"].as_str().unwrap_or("").to_string());
    }
    for expected in ["signal", "drain_start", "drain_timeout", "ws_shutdown_close", "shutdown_complete"] {
        assert!(events.iter().any(|e| e == expected), "no {expected} in the log: {events:?}");
    }
}
