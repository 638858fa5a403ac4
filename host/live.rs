//! Live calls, for the dashboard: each call's current state, published when
//! it changes (the start, listening → thinking → speaking, a turn, another
//! guest version, the end; never per media frame), and those changes as a
//! stream of Server-Sent Events (`GET /api/live`, served by `http/observe.rs`).
//!
//! A change is rendered to its SSE message once, under the registry's
//! lock, and shared by every subscriber; a subscriber that falls behind
//! gets a fresh snapshot instead of the changes it missed.

use std::collections::HashMap;
use std::sync::Mutex;

use bytes::Bytes;
use hotline_common::Lock;
use serde::Serialize;
use tokio::sync::broadcast;

use crate::store::record::Outcome;

/// Changes a subscriber may fall behind by before it gets a new snapshot.
const BACKLOG: usize = 256;

/// What the agent is doing, as the host sees it from the guest's effects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// Waiting for the caller (nothing queued to play, no provider work).
    Listening,
    /// Provider work in flight (transcription, the LLM, speech synthesis).
    Thinking,
    /// Audio sent and not yet played out (its mark has not come back).
    Speaking,
}

/// One live call as the dashboard shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LiveCall {
    pub call_sid: String,
    pub stream_sid: String,
    pub direction: &'static str,
    /// Masked as in the record (`HOTLINE_MASK_NUMBERS`).
    pub from: Option<String>,
    pub to: Option<String>,
    /// Unix milliseconds.
    pub started_at: i64,
    pub state: State,
    /// The digest of the guest version serving the call.
    pub guest: String,
    /// Utterances the guest has ended (its `eou` logs), as the record counts turns.
    pub turns: u32,
}

#[derive(Serialize)]
struct Ended<'a> {
    call_sid: &'a str,
    outcome: Outcome,
    duration_ms: i64,
}

pub struct Live {
    calls: Mutex<HashMap<String, LiveCall>>,
    changes: broadcast::Sender<Bytes>,
}

impl Default for Live {
    fn default() -> Self {
        Live { calls: Mutex::default(), changes: broadcast::channel(BACKLOG).0 }
    }
}

impl Live {
    /// A call appeared or changed.
    pub fn publish(&self, call: &LiveCall) {
        let mut calls = self.calls.locked();
        match calls.get_mut(&call.call_sid) {
            Some(known) => known.clone_from(call),
            None => {
                calls.insert(call.call_sid.clone(), call.clone());
            }
        }
        // Rendered only for someone watching (usually nobody is).
        if self.changes.receiver_count() > 0 {
            let _ = self.changes.send(event("call", call));
        }
    }

    /// A call ended (it must have been published, or nothing is sent).
    pub fn ended(&self, call_sid: &str, outcome: Outcome, duration_ms: i64) {
        let mut calls = self.calls.locked();
        if calls.remove(call_sid).is_some() && self.changes.receiver_count() > 0 {
            let _ = self.changes.send(event("ended", &Ended { call_sid, outcome, duration_ms }));
        }
    }

    /// The calls now (as a `snapshot` message) and every change after it:
    /// taken together under the lock, so none falls between the two.
    pub fn subscribe(&self) -> (Bytes, broadcast::Receiver<Bytes>) {
        let calls = self.calls.locked();
        let mut list: Vec<&LiveCall> = calls.values().collect();
        list.sort_by(|a, b| (a.started_at, &a.call_sid).cmp(&(b.started_at, &b.call_sid)));
        let snapshot = event("snapshot", &serde_json::json!({ "calls": list }));
        (snapshot, self.changes.subscribe())
    }
}

/// One Server-Sent Event: its name and its JSON on one `data` line (JSON
/// has no raw newlines, so one line always holds it).
fn event(name: &str, data: &impl Serialize) -> Bytes {
    let json = serde_json::to_string(data).expect("live events always serialize");
    Bytes::from(format!("event: {name}\ndata: {json}\n\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(sid: &str, state: State) -> LiveCall {
        LiveCall {
            call_sid: sid.into(),
            stream_sid: format!("MZ{sid}"),
            direction: "inbound",
            from: Some("+1555***0100".into()),
            to: None,
            started_at: 1_700_000_000_000,
            state,
            guest: "abc".into(),
            turns: 0,
        }
    }

    impl Live {
        fn len(&self) -> usize {
            self.calls.lock().unwrap().len()
        }
    }

    fn text(b: &Bytes) -> &str {
        std::str::from_utf8(b).unwrap()
    }

    #[test]
    fn a_subscriber_gets_the_calls_then_every_change_in_order() {
        let live = Live::default();
        live.publish(&call("CA1", State::Listening));
        let (snapshot, mut changes) = live.subscribe();
        assert!(text(&snapshot).starts_with("event: snapshot\ndata: {\"calls\":[{\"call_sid\":\"CA1\""));
        assert!(text(&snapshot).ends_with("\n\n"));
        live.publish(&call("CA1", State::Speaking));
        live.ended("CA1", Outcome::CallerHungUp, 1234);
        live.ended("CA1", Outcome::CallerHungUp, 1234); // once only
        let first = changes.try_recv().unwrap();
        assert!(text(&first).starts_with("event: call\n") && text(&first).contains("\"state\":\"speaking\""));
        let second = changes.try_recv().unwrap();
        let want = "event: ended\ndata: {\"call_sid\":\"CA1\",\"outcome\":\"caller_hung_up\",\"duration_ms\":1234}\n\n";
        assert_eq!(text(&second), want);
        assert!(changes.try_recv().is_err());
        assert_eq!(live.len(), 0);
    }

    #[test]
    fn a_subscriber_that_falls_behind_is_told_so() {
        let live = Live::default();
        let (_, mut changes) = live.subscribe();
        for i in 0..BACKLOG + 1 {
            live.publish(&call(&format!("CA{i}"), State::Thinking));
        }
        assert!(matches!(changes.try_recv(), Err(broadcast::error::TryRecvError::Lagged(1))));
        assert_eq!(live.len(), BACKLOG + 1);
    }
}
