//! The call's record, built as the call goes and handed to the store when
//! it ends (`store::Records::submit`). Only per-event and per-turn paths
//! touch it (a start, a guest log, a provider result, a mark, the close):
//! never a media frame. Everything it keeps is bounded: a call that talks
//! for hours keeps its first `MAX_TIMELINE` timeline entries and counts
//! the rest, its first `MAX_TURNS` turns, and texts cut at `MAX_TEXT`.
//!
//! One phone call, one record, whatever its streams: a stream that ends
//! for a transfer leaves its finished record on the switchboard, where
//! the dial's end is added to it (`reopen`), and a caller who comes back
//! continues it on the new stream (`resume`). The timeline has one clock:
//! the first stream's media time (ms since it started, as Twilio counts).
//! What comes after that stream (a webhook, a later stream's start) is
//! placed by the wall clock since the record's `started_at`, and never
//! before the newest entry already there (a simulated stream may run
//! faster than real time); a later stream's events are at its start plus
//! their own media time.

use std::time::SystemTime;

use serde::ser::{Serialize, SerializeMap, Serializer};

use super::turn_log::TurnTimes;
use crate::sandbox::wit::{Event, LogEntry, ProviderKind};
use crate::store::record::{CallRecord, Outcome, RecordingRef, TurnRecord, unix_ms};

const MAX_TIMELINE: usize = 2000;
const MAX_TURNS: usize = 500;
/// Characters of a transcript, a reply or a field value kept.
const MAX_TEXT: usize = 4000;

pub struct Recorder {
    record: CallRecord,
    /// Timeline entries written into `record.timeline`.
    entries: usize,
    /// Where this stream's media time 0 is on the record's clock: `None`
    /// on the call's first stream (the clock is its media time).
    offset_ms: Option<u64>,
    /// The newest entry's time: what comes later is never placed before it.
    last_ms: u64,
    /// The code of the close frame the peer sent, if it sent one.
    pub peer_close_code: Option<u16>,
}

impl Recorder {
    /// A call that Twilio started (its stream token checked).
    pub fn start(
        call_sid: &str,
        stream_sid: &str,
        direction: &'static str,
        (from, to): (Option<String>, Option<String>),
        guest: &str,
    ) -> Recorder {
        let record = CallRecord {
            call_sid: clean(call_sid),
            stream_sid: clean(stream_sid),
            direction: direction.into(),
            from: from.map(|f| clean(&f)),
            to: to.map(|t| clean(&t)),
            started_at: unix_ms(SystemTime::now()),
            guests: vec![guest.to_string()],
            ..CallRecord::default()
        };
        Recorder { record, entries: 0, offset_ms: None, last_ms: 0, peer_close_code: None }
    }

    /// A record finished by an earlier part of the call, opened again to
    /// add what happened since (the dial's end): its counts go on, and
    /// `close` gives it back with its end as it was.
    pub fn reopen(mut record: CallRecord) -> Recorder {
        let (entries, last_ms) = timeline_extent(&record.timeline);
        if record.timeline.ends_with(']') {
            record.timeline.pop();
        }
        Recorder { record, entries, offset_ms: None, last_ms, peer_close_code: None }
    }

    /// A later stream of the call (a caller back from a transfer) continues
    /// its record: turns, timeline, frames and guest versions go on, and
    /// `finish` sets the call's end from this stream's. The record keeps
    /// the first stream's SID (this one's is in its timeline).
    pub fn resume(record: CallRecord, guest: &str) -> Recorder {
        let mut recorder = Recorder::reopen(record);
        recorder.offset_ms = Some(recorder.wall_ms(unix_ms(SystemTime::now())));
        recorder.guest_version(guest);
        recorder
    }

    /// The recording a resumed record already has (the first stream's).
    pub fn recording(&self) -> Option<&RecordingRef> {
        self.record.recording.as_ref()
    }

    /// A Unix time on the record's clock: the time since the call started,
    /// never before the newest entry.
    fn wall_ms(&self, unix_ms: i64) -> u64 {
        let since_start = u64::try_from(unix_ms.saturating_sub(self.record.started_at)).unwrap_or(0);
        since_start.max(self.last_ms)
    }

    /// A time this stream gives (its media time, or a guest's own `at_ms`)
    /// on the record's clock.
    fn stream_ms(&self, media_ms: u64, own: Option<u64>) -> u64 {
        match self.offset_ms {
            None => own.unwrap_or(media_ms),
            // A session restored from the first stream's snapshot counts its
            // media time on from where that stream left off; this stream's
            // own is the one that is sure, so a guest's time may say earlier
            // than it, never later.
            Some(offset) => offset + own.map_or(media_ms, |own| own.min(media_ms)),
        }
    }

    /// The call now runs on this guest version (a migration, or a recovery).
    pub fn guest_version(&mut self, digest: &str) {
        if self.record.guests.last().is_none_or(|last| last != digest) {
            self.record.guests.push(digest.to_string());
        }
    }

    /// A host event of the timeline, at this stream's media time.
    pub fn host(&mut self, media_ms: u64, event: &str, fields: &[(&str, Field)]) {
        let at_ms = self.stream_ms(media_ms, None);
        self.push(at_ms, "host", event, HostFields(fields));
    }

    /// A host event that happened away from any stream (a webhook), at
    /// `unix_ms` (wall clock).
    pub fn host_at(&mut self, unix_ms: i64, event: &str, fields: &[(&str, Field)]) {
        let at_ms = self.wall_ms(unix_ms);
        self.push(at_ms, "host", event, HostFields(fields));
    }

    /// A guest's `log` effect: a timeline entry (at its own `at_ms` when it
    /// gives one), and what it says about the turns.
    pub fn guest_log(&mut self, media_ms: u64, entry: &LogEntry) {
        let field = |key: &str| entry.fields.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
        let at_ms = self.stream_ms(media_ms, field("at_ms").and_then(|v| v.parse().ok()));
        let turn: Option<i64> = field("turn").and_then(|v| v.parse().ok());
        match entry.event.as_str() {
            "eou" => {
                if let Some(turn) = turn
                    && self.record.turns.len() < MAX_TURNS
                {
                    let eou_at_ms = Some(at_ms as i64);
                    self.record.turns.push(TurnRecord { turn, eou_at_ms, ..TurnRecord::default() });
                }
            }
            "barge_in" => {
                if let Some(t) = self.record.turns.last_mut() {
                    t.barged_in = true;
                    t.heard = field("heard").map(clean);
                    t.unheard = field("unheard").map(clean);
                }
            }
            "fallback_fired" | "fallback_cleared" => {
                let state = if entry.event == "fallback_fired" { "fired" } else { "cleared" };
                if let Some(t) = self.turn_mut(turn) {
                    t.fallback = Some(state.into());
                }
            }
            _ => {}
        }
        self.push(at_ms, "guest", &entry.event, GuestFields(&entry.fields));
    }

    /// A provider's result, as the guest is about to see it.
    pub fn provider_event(&mut self, event: &Event) {
        let Some(t) = self.record.turns.last_mut() else { return };
        match event {
            // Partials (streaming speech-to-text) are on their way to it.
            Event::Transcript(tr) if tr.is_final => t.transcript = Some(clean(&tr.text)),
            Event::ReplyText(r) if !r.delta.is_empty() => {
                let reply = t.reply.get_or_insert_with(String::new);
                if reply.len() < MAX_TEXT {
                    reply.push_str(&clean(&r.delta));
                }
            }
            Event::ProviderError(e) => {
                let kind = match e.kind {
                    ProviderKind::Stt => "stt",
                    ProviderKind::Llm => "llm",
                    ProviderKind::Tts => "tts",
                };
                let line = clean(&format!("{kind}: {}", e.message));
                match &mut t.errors {
                    Some(errors) if errors.len() < MAX_TEXT => {
                        errors.push('\n');
                        errors.push_str(&line);
                    }
                    Some(_) => {}
                    None => t.errors = Some(line),
                }
            }
            _ => {}
        }
    }

    /// A provider turn's timings, as its `turn` log line gave them.
    pub fn turn_times(&mut self, times: &TurnTimes) {
        let turn = Some(i64::from(times.turn));
        let Some(t) = self.turn_mut(turn) else { return };
        t.outcome = Some(times.outcome.name().into());
        t.stt_ms = times.stt_ms;
        t.llm_first_token_ms = times.llm_first_token_ms;
        t.tts_first_byte_ms = times.tts_first_byte_ms;
        t.first_audio_ms = times.first_audio_ms;
    }

    /// The finished record: the call ends with this stream (whose frames
    /// add to those of the streams before it).
    pub fn finish(mut self, outcome: Outcome, close_code: Option<u16>, frames: (u64, u64)) -> CallRecord {
        let r = &mut self.record;
        r.ended_at = unix_ms(SystemTime::now()).max(r.started_at);
        r.duration_ms = r.ended_at - r.started_at;
        r.outcome = Some(outcome);
        r.close_code = close_code;
        r.frames_in += frames.0 as i64;
        r.frames_out += frames.1 as i64;
        self.close()
    }

    /// The record with its timeline closed again, its end as it was.
    pub fn close(mut self) -> CallRecord {
        if !self.record.timeline.is_empty() {
            self.record.timeline.push(']');
        }
        self.record
    }

    /// The turn numbered `turn`, else the newest one.
    fn turn_mut(&mut self, turn: Option<i64>) -> Option<&mut TurnRecord> {
        let turns = &mut self.record.turns;
        let at = turn.and_then(|n| turns.iter().rposition(|t| t.turn == n)).or(turns.len().checked_sub(1))?;
        turns.get_mut(at)
    }

    /// Appends one entry to the timeline's JSON text.
    fn push(&mut self, at_ms: u64, source: &'static str, event: &str, fields: impl Serialize) {
        if self.entries >= MAX_TIMELINE {
            self.record.timeline_dropped += 1;
            return;
        }
        let entry = Entry { at_ms, source, event: cut(event), fields };
        let Ok(json) = serde_json::to_string(&entry) else { return };
        let timeline = &mut self.record.timeline;
        timeline.push(if timeline.is_empty() { '[' } else { ',' });
        timeline.push_str(&json);
        self.entries += 1;
        self.last_ms = self.last_ms.max(at_ms);
    }
}

/// How many entries a finished timeline holds, and the newest one's time
/// (read back once per reopening: a transfer's, never a frame's).
fn timeline_extent(timeline: &str) -> (usize, u64) {
    #[derive(serde::Deserialize)]
    struct At {
        at_ms: u64,
    }
    let entries: Vec<At> = serde_json::from_str(timeline).unwrap_or_default();
    (entries.len(), entries.iter().map(|e| e.at_ms).max().unwrap_or(0))
}

#[derive(serde::Serialize)]
struct Entry<'a, F> {
    at_ms: u64,
    source: &'static str,
    event: &'a str,
    fields: F,
}

/// A guest log's fields as a JSON object, each value cut at `MAX_TEXT`.
struct GuestFields<'a>(&'a [(String, String)]);

impl Serialize for GuestFields<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            map.serialize_entry(cut(k), cut(v))?;
        }
        map.end()
    }
}

/// A host event's field value: borrowed, so a call without a record
/// builds nothing for it.
#[derive(Debug, Clone, Copy)]
pub enum Field<'a> {
    Str(&'a str),
    Char(char),
    Int(Option<i64>),
    Bool(bool),
}

impl Serialize for Field<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Field::Str(text) => s.serialize_str(cut(text)),
            Field::Char(c) => s.serialize_char(*c),
            Field::Int(n) => n.serialize(s),
            Field::Bool(b) => s.serialize_bool(*b),
        }
    }
}

struct HostFields<'a>(&'a [(&'a str, Field<'a>)]);

impl Serialize for HostFields<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

/// At most `MAX_TEXT` characters of `text` (JSON escapes the rest, NUL
/// included).
fn cut(text: &str) -> &str {
    match text.char_indices().nth(MAX_TEXT) {
        Some((at, _)) => &text[..at],
        None => text,
    }
}

/// How a call that we closed with `code` and `reason` ended. The reasons
/// are those `media/` closes with (this test's list names them all).
pub fn outcome_of_close(code: u16, reason: &str) -> Outcome {
    match (code, reason) {
        (1000, "call ended by agent") => Outcome::AgentHungUp,
        (1000, "server shutting down") => Outcome::Drained,
        (1000, super::transfer::TRANSFERRED) => Outcome::Transferred,
        (1000, _) => Outcome::CallerHungUp,
        (1011, _) => Outcome::GuestFailure,
        (1013, _) => Outcome::Refused,
        (1008, "stream idle") => Outcome::ConnectionLost,
        (1008, "stream not authorized" | "no start in time") => Outcome::Refused,
        _ => Outcome::ProtocolError,
    }
}

/// At most `MAX_TEXT` characters, without NUL (PostgreSQL's text refuses it).
fn clean(text: &str) -> String {
    text.chars().filter(|&c| c != '\0').take(MAX_TEXT).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::wit;
    use serde_json::Value;

    fn log(event: &str, fields: &[(&str, &str)]) -> LogEntry {
        LogEntry { event: event.into(), fields: fields.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect() }
    }

    #[test]
    fn guest_logs_and_provider_results_become_turns_and_a_timeline() {
        let mut r = Recorder::start("CA1", "MZ1", "inbound", (Some("+*0000".into()), None), "d1");
        r.guest_log(100, &log("eou", &[("turn", "1"), ("at_ms", "2500")]));
        r.provider_event(&Event::Transcript(wit::Transcript { text: "hel\0lo".into(), is_final: true }));
        for delta in ["Hi ", "there."] {
            r.provider_event(&Event::ReplyText(wit::ReplyText { delta: delta.into(), done: false }));
        }
        r.guest_log(3000, &log("barge_in", &[("heard", "t1-s0"), ("unheard", "t1-s1")]));
        r.guest_version("d1");
        r.guest_version("d2");
        r.host(3100, "mark_sent", &[("name", Field::Str("t1-s0"))]);
        let record = r.finish(Outcome::CallerHungUp, Some(1000), (10, 5));
        assert_eq!(record.guests, ["d1", "d2"]);
        let t = &record.turns[0];
        assert_eq!((t.turn, t.eou_at_ms), (1, Some(2500)));
        assert_eq!(t.transcript.as_deref(), Some("hello"));
        assert_eq!(t.reply.as_deref(), Some("Hi there."));
        assert!(t.barged_in);
        assert_eq!((t.heard.as_deref(), t.unheard.as_deref()), (Some("t1-s0"), Some("t1-s1")));
        let timeline: Vec<Value> = serde_json::from_str(&record.timeline).unwrap();
        let at: Vec<_> = timeline
            .iter()
            .map(|e| (e["at_ms"].as_i64().unwrap(), e["source"].as_str().unwrap(), e["event"].as_str().unwrap()))
            .collect();
        assert_eq!(at, [(2500, "guest", "eou"), (3000, "guest", "barge_in"), (3100, "host", "mark_sent")]);
        assert_eq!(timeline[1]["fields"], serde_json::json!({"heard": "t1-s0", "unheard": "t1-s1"}));
        assert_eq!(timeline[2]["fields"], serde_json::json!({"name": "t1-s0"}));
        assert_eq!(record.outcome, Some(Outcome::CallerHungUp));
    }

    #[test]
    fn every_close_has_its_outcome() {
        let closes = [
            (1000, "stream stopped", Outcome::CallerHungUp),
            (1000, "call ended by agent", Outcome::AgentHungUp),
            (1000, "server shutting down", Outcome::Drained),
            (1011, "call logic failed", Outcome::GuestFailure),
            (1013, "no capacity for the call", Outcome::Refused),
            (1008, "stream idle", Outcome::ConnectionLost),
            (1008, "stream not authorized", Outcome::Refused),
            (1008, "no start in time", Outcome::Refused),
            (1008, "too many malformed frames", Outcome::ProtocolError),
            (1009, "message too big", Outcome::ProtocolError),
            (1007, "text frame is not UTF-8", Outcome::ProtocolError),
            (1002, "protocol error", Outcome::ProtocolError),
        ];
        for (code, reason, outcome) in closes {
            assert_eq!(outcome_of_close(code, reason), outcome, "{code} {reason}");
        }
        // The reasons above are the ones the call loop closes with.
        let sources: String = ["mod.rs", "inbound.rs", "effects.rs", "apology.rs"]
            .map(|f| std::fs::read_to_string(format!("{}/media/{f}", env!("CARGO_MANIFEST_DIR"))).unwrap())
            .concat();
        for (at, _) in sources.match_indices("Flow::Close(CloseCode::") {
            let reason = sources[at..].split('"').nth(1).unwrap();
            assert!(closes.iter().any(|(_, r, _)| *r == reason), "close reason {reason:?} has no outcome here");
        }
    }

    #[test]
    fn a_later_stream_continues_the_record_on_one_clock() {
        let mut first = Recorder::start("CA1", "MZ1", "inbound", (None, None), "d1");
        first.guest_log(900, &log("eou", &[("turn", "1"), ("at_ms", "900")]));
        first.host(2000, "transfer_started", &[]);
        let mut record = first.finish(Outcome::Transferred, Some(1000), (100, 40));
        // The first stream started 10 s ago; the dial ended 6 s in.
        record.started_at -= 10_000;
        let mut dial = Recorder::reopen(record);
        dial.host_at(dial.record.started_at + 6000, "transfer_dial_ended", &[("status", Field::Str("no-answer"))]);
        let record = dial.close();
        assert_eq!(record.outcome, Some(Outcome::Transferred), "reopening leaves the end as it was");

        let mut back = Recorder::resume(record, "d2");
        back.host(500, "ws_start", &[]);
        // A session restored from the snapshot counts on from its first
        // stream (2000 + 700): this stream's media time bounds it.
        back.guest_log(700, &log("eou", &[("turn", "2"), ("at_ms", "2700")]));
        back.guest_log(800, &log("speech_start", &[("at_ms", "650")]));
        let record = back.finish(Outcome::CallerHungUp, Some(1000), (50, 10));
        assert_eq!((record.call_sid.as_str(), record.stream_sid.as_str()), ("CA1", "MZ1"));
        assert_eq!((record.outcome, record.frames_in, record.frames_out), (Some(Outcome::CallerHungUp), 150, 50));
        assert!(record.duration_ms >= 10_000, "from the first stream's start: {}", record.duration_ms);
        assert_eq!(record.guests, ["d1", "d2"]);
        let timeline: Vec<Value> = serde_json::from_str(&record.timeline).unwrap();
        let at: Vec<_> =
            timeline.iter().map(|e| (e["at_ms"].as_u64().unwrap(), e["event"].as_str().unwrap())).collect();
        let names: Vec<_> = at.iter().map(|(_, e)| *e).collect();
        assert_eq!(names, ["eou", "transfer_started", "transfer_dial_ended", "ws_start", "eou", "speech_start"]);
        assert_eq!(&at[..3], [(900, "eou"), (2000, "transfer_started"), (6000, "transfer_dial_ended")]);
        // The second stream starts at the wall clock's 10 s (a little more).
        let offset = at[3].0 - 500;
        assert!((10_000..11_000).contains(&offset), "{at:?}");
        assert_eq!((at[4].0, at[5].0), (offset + 700, offset + 650));
        let eous: Vec<_> = record.turns.iter().map(|t| (t.turn, t.eou_at_ms)).collect();
        assert_eq!(eous, [(1, Some(900)), (2, Some((offset + 700) as i64))]);
    }

    #[test]
    fn a_reopened_timeline_keeps_its_bound() {
        let mut r = Recorder::start("CA1", "MZ1", "inbound", (None, None), "d1");
        for i in 0..MAX_TIMELINE - 1 {
            r.host(i as u64, "mark_ack", &[]);
        }
        let mut r = Recorder::resume(r.finish(Outcome::Transferred, Some(1000), (0, 0)), "d1");
        r.host(0, "ws_start", &[]);
        r.host(1, "mark_ack", &[]);
        let record = r.finish(Outcome::CallerHungUp, Some(1000), (0, 0));
        let timeline: Vec<Value> = serde_json::from_str(&record.timeline).unwrap();
        assert_eq!((timeline.len(), record.timeline_dropped), (MAX_TIMELINE, 1));
        assert_eq!(timeline.last().unwrap()["event"], "ws_start");
    }

    #[test]
    fn the_timeline_is_bounded() {
        let mut r = Recorder::start("CA1", "MZ1", "inbound", (None, None), "d1");
        for i in 0..MAX_TIMELINE + 7 {
            r.host(i as u64, "mark_ack", &[]);
        }
        let record = r.finish(Outcome::ConnectionLost, None, (0, 0));
        let timeline: Vec<Value> = serde_json::from_str(&record.timeline).unwrap();
        assert_eq!((timeline.len(), record.timeline_dropped), (MAX_TIMELINE, 7));
        let none =
            Recorder::start("CA2", "MZ2", "outbound", (None, None), "d1").finish(Outcome::Refused, Some(1013), (0, 0));
        assert_eq!(none.timeline, "");
    }
}
