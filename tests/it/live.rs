//! `GET /api/live`: the dashboard's live calls as Server-Sent Events, over
//! a real HTTP connection while real calls run: a call appears, changes
//! state, ends; a late subscriber's snapshot holds the calls already live;
//! the stream ends when the server shuts down.

use std::time::Duration;

use hotline::sim::{CallOptions, place_call};
use reqwest::StatusCode;
use serde_json::Value;

use crate::support::*;

/// An open event stream, read event by event.
struct Events {
    response: reqwest::Response,
    buffer: String,
}

impl Events {
    async fn open(base: &str) -> Events {
        let response = reqwest::Client::new().get(format!("{base}/api/live")).bearer_auth(TOKEN).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        assert_eq!(response.headers()["cache-control"], "no-cache");
        Events { response, buffer: String::new() }
    }

    /// The next event's name and data (comments skipped); `None` once the
    /// stream has ended.
    async fn next(&mut self) -> Option<(String, Value)> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                if block.starts_with(':') {
                    continue;
                }
                let mut lines = block.lines();
                let name = lines.next()?.strip_prefix("event: ").expect("an event name first").to_string();
                let data = lines.next()?.strip_prefix("data: ").expect("one data line");
                return Some((name, serde_json::from_str(data).expect("JSON data")));
            }
            let chunk = tokio::time::timeout(Duration::from_secs(20), self.response.chunk())
                .await
                .expect("an event within 20 s")
                .expect("the stream reads");
            self.buffer.push_str(std::str::from_utf8(&chunk?).unwrap());
        }
    }
}

fn echo_call(base: &str, sid: &str) -> CallOptions {
    // Two utterances: the echo guest answers each, so the call goes
    // listening → speaking → listening twice.
    let speech = || fox()[..8000].to_vec();
    CallOptions {
        server: base.to_string(),
        audio: concat(&[silence(300), speech(), silence(1200), speech(), silence(1500)]),
        speed: 2.0,
        call_sid: sid.into(),
        idle_ms: 1500,
        ..CallOptions::default()
    }
}

#[tokio::test]
async fn a_call_appears_changes_state_and_ends_on_the_live_stream() {
    let s = start_server(|c| c.admin_token = Some(TOKEN.into())).await;
    let mut events = Events::open(&s.base).await;
    let (name, data) = events.next().await.unwrap();
    assert_eq!((name.as_str(), &data), ("snapshot", &serde_json::json!({ "calls": [] })));

    let sid = "CAlive0000000000000000000000000001";
    let call = tokio::spawn(async move {
        let opts = echo_call(&s.base, sid);
        let report = place_call(&opts).await.unwrap();
        (s, report)
    });
    let mut states = Vec::new();
    let mut late = None;
    let mut turns = 0;
    let ended = loop {
        let (name, data) = events.next().await.expect("the stream stays open");
        assert_eq!(data["call_sid"], sid, "{name}: {data}");
        match name.as_str() {
            "call" => {
                if states.is_empty() {
                    assert_eq!(data["direction"], "inbound");
                    assert_eq!(data["turns"], 0);
                    assert!(data["stream_sid"].as_str().unwrap().starts_with("MZ"), "{data}");
                    assert!(data["guest"].as_str().unwrap().len() >= 12, "{data}");
                }
                turns = data["turns"].as_u64().unwrap();
                if states.last() != Some(&data["state"]) {
                    states.push(data["state"].clone());
                }
                // A dashboard opened mid-call sees the call at once.
                if late.is_none() {
                    late = Some(Events::open(&base_of(&events)).await);
                }
            }
            "ended" => break data,
            other => panic!("unexpected event {other}: {data}"),
        }
    };
    // Listening, then speaking and listening again for each reply (the
    // greeting's, then one per utterance).
    let states: Vec<&str> = states.iter().map(|s| s.as_str().unwrap()).collect();
    let speaking = states.iter().filter(|&&s| s == "speaking").count();
    assert!(speaking >= 2 && states.first() == Some(&"listening") && states.last() == Some(&"listening"), "{states:?}");
    assert!(states.iter().all(|&s| s == "listening" || s == "speaking"), "the echo never thinks: {states:?}");
    assert_eq!(turns, 2, "two utterances ended");
    assert_eq!(ended["outcome"], "caller_hung_up");
    assert!(ended["duration_ms"].as_i64().unwrap() > 1000, "{ended}");
    let (name, snapshot) = late.unwrap().next().await.unwrap();
    assert_eq!(name, "snapshot");
    assert_eq!(snapshot["calls"][0]["call_sid"], sid, "{snapshot}");

    let (s, report) = call.await.unwrap();
    assert!(report.frames_received > 50, "the echo answered: {} frames", report.frames_received);
    // Shutting down ends the stream: an open dashboard holds nothing up.
    let mut events = Events::open(&s.base).await;
    assert_eq!(events.next().await.unwrap().0, "snapshot");
    s.server.begin_drain();
    assert!(events.next().await.is_none(), "the stream ends with the drain");
}

/// The response's own address, for a second subscriber.
fn base_of(events: &Events) -> String {
    let url = events.response.url();
    format!("{}://{}", url.scheme(), url.authority())
}

#[tokio::test]
async fn the_live_stream_needs_the_admin_token_and_exists_only_with_one() {
    let s = start_server(|c| c.admin_token = Some(TOKEN.into())).await;
    let c = reqwest::Client::new();
    let anonymous = c.get(format!("{}/api/live", s.base)).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    let post = c.post(format!("{}/api/live", s.base)).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(post.status(), StatusCode::METHOD_NOT_ALLOWED);
    let off = start_server(|_| {}).await;
    let response = c.get(format!("{}/api/live", off.base)).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_ai_call_is_seen_thinking_between_listening_and_speaking() {
    let mock = crate::mocks::openai::OpenAiMock::start().await;
    let env = mock.env();
    let from_env = config_from(&env);
    let s = start_server(move |c| {
        c.admin_token = Some(TOKEN.into());
        c.providers = from_env.providers;
    })
    .await;
    let mut events = Events::open(&s.base).await;
    assert_eq!(events.next().await.unwrap().0, "snapshot");
    let sid = "CAlive0000000000000000000000000002";
    let opts = CallOptions {
        server: s.base.clone(),
        audio: concat(&[silence(1500), fox()[..16_000].to_vec(), silence(4000)]),
        idle_ms: 2000,
        call_sid: sid.into(),
        ..CallOptions::default()
    };
    let call = tokio::spawn(async move { place_call(&opts).await });
    let mut states: Vec<String> = Vec::new();
    while let Some((name, data)) = events.next().await {
        if name == "ended" {
            break;
        }
        let state = data["state"].as_str().unwrap().to_string();
        if states.last() != Some(&state) {
            states.push(state);
        }
    }
    call.await.unwrap().unwrap();
    // The greeting, then the question: thinking until the reply plays.
    let thinking = states.iter().position(|s| s == "thinking").unwrap_or_else(|| panic!("{states:?}"));
    assert_eq!(states[thinking - 1], "listening", "{states:?}");
    assert_eq!(states[thinking + 1], "speaking", "{states:?}");
    assert_eq!(states.last().unwrap(), "listening", "{states:?}");
}
