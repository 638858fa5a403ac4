//! `/metrics`: what a scrape shows after real calls, in the exposition
//! format (every line a comment or a sample, `# EOF` last), and behind its
//! token when one is set.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use hotline::sim::{CallOptions, place_call};
use reqwest::StatusCode;

use crate::support::*;

/// `name{labels}` → value. Panics on a line that is neither a comment nor
/// a sample, on a series that appears twice, and without the final `# EOF`.
pub fn samples(text: &str) -> HashMap<String, f64> {
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.last(), Some(&"# EOF"), "the exposition ends with # EOF");
    let mut out = HashMap::new();
    for line in &lines[..lines.len() - 1] {
        if ["# HELP ", "# TYPE ", "# UNIT "].iter().any(|p| line.starts_with(p)) {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("not a sample: {line:?}"));
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("not a number in {line:?}"));
        assert!(out.insert(series.to_string(), value).is_none(), "{series} appears twice");
    }
    out
}

pub async fn scrape(base: &str) -> HashMap<String, f64> {
    let response = reqwest::get(format!("{base}/metrics")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let kind = response.headers()["content-type"].to_str().unwrap().to_string();
    assert!(kind.starts_with("application/openmetrics-text"), "{kind}");
    samples(&response.text().await.unwrap())
}

/// The server counts a call when its task ends, a moment after the
/// simulator has seen the close: scrape until `series` reaches `value`.
pub async fn scrape_until(base: &str, series: &str, value: f64) -> HashMap<String, f64> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let m = scrape(base).await;
        if m.get(series) == Some(&value) || Instant::now() > deadline {
            return m;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn an_echo_call_is_counted_by_outcome_guest_time_bad_frames_and_version() {
    let s = start_server(|_| {}).await;
    let before = scrape(&s.base).await;
    assert_eq!(before["hotline_live_calls"], 0.0);
    for outcome in ["caller_hung_up", "agent_hung_up", "drained", "guest_failure", "refused", "connection_lost"] {
        let series = format!("hotline_calls_total{{outcome=\"{outcome}\"}}");
        assert_eq!(before.get(&series), Some(&0.0), "{series} exists from the start");
    }
    assert_eq!(before["hotline_guest_event_seconds_count"], 0.0);

    let audio = concat(&[silence(400), tone(800, 440.0), silence(1200)]);
    let bad = vec!["not json".to_string(), r#"{"event":"media"}"#.to_string()];
    let opts = CallOptions { server: s.base.clone(), audio, speed: 4.0, inject: bad, ..CallOptions::default() };
    let report = place_call(&opts).await.expect("call completes");
    let frames = (report.caller.len() / 160) as f64;

    let m = scrape_until(&s.base, "hotline_calls_total{outcome=\"caller_hung_up\"}", 1.0).await;
    assert_eq!(m["hotline_calls_total{outcome=\"caller_hung_up\"}"], 1.0);
    assert_eq!(m["hotline_calls_total{outcome=\"connection_lost\"}"], 0.0);
    assert_eq!(m["hotline_live_calls"], 0.0);
    assert_eq!(m["hotline_ws_bad_frames_total"], 2.0);
    // Every frame, plus `started`, marks and `stopped`, went through the guest once.
    let events = m["hotline_guest_event_seconds_count"];
    assert!(events >= frames + 2.0, "{events} guest events for {frames} frames");
    assert_eq!(m["hotline_guest_event_seconds_bucket{le=\"+Inf\"}"], events, "+Inf holds every event");
    assert!(m["hotline_guest_event_seconds_sum"] > 0.0);

    let digest = active_digest(&s.base).await;
    assert_eq!(m[&format!("hotline_guest_calls_total{{version=\"{digest}\"}}")], 1.0);
    assert_eq!(m[&format!("hotline_guest_active{{version=\"{digest}\"}}")], 1.0);
    assert_eq!(m[&format!("hotline_guest_traps_total{{version=\"{digest}\"}}")], 0.0);
    // No providers configured: no provider series (not a row of zeros).
    assert!(!m.keys().any(|k| k.starts_with("hotline_provider_errors")), "{:?}", m.keys());
}

#[tokio::test]
async fn a_metrics_token_is_required_when_set() {
    let token = "metrics-token-0123456789";
    let s = start_server(|c| c.metrics_token = Some(token.into())).await;
    let url = format!("{}/metrics", s.base);
    let client = reqwest::Client::new();
    assert_eq!(client.get(&url).send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    let wrong = client.get(&url).bearer_auth("metrics-token-9876543210").send().await.unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let right = client.get(&url).bearer_auth(token).send().await.unwrap();
    assert_eq!(right.status(), StatusCode::OK);
    samples(&right.text().await.unwrap());
    // The rest of the server does not care about this token.
    assert_eq!(client.get(format!("{}/healthz", s.base)).send().await.unwrap().status(), StatusCode::OK);
}
