//! Transfers and answering-machine verdicts, over real sockets with the
//! probe guest (`5` transfers to +15550100003, `4` to something that is not
//! a target; `transfer-failed` and `answered-by` come back as marks): the
//! agent's last words play out before the stream ends, `stream_ended`
//! dials, `dial_ended` hangs up after an answer, and a caller nobody
//! answered comes back to the session where it left off (or hears the
//! fallback message); a verdict reaches its live outbound call, even one
//! that arrives before the stream. The phone call leaves one record: the
//! dial's end in it, and a returning caller's stream continuing it.

use std::time::{Duration, Instant};

use hotline::config::{Backend, StoreSettings, TransferFallback};
use hotline::sim::{CallOptions, CallReport, Moment, place_call};
use reqwest::StatusCode;
use serde_json::Value;

use crate::postgres::TempDir;
use crate::support::*;

async fn probe_server(fallback: TransferFallback) -> TestServer {
    start_server(|c| {
        c.guest_path = Some(PROBE_GUEST.into());
        c.control.transfer_fallback = fallback;
    })
    .await
}

/// The probe guest with call records in SQLite and the API on.
async fn recording_server(fallback: TransferFallback, dir: &TempDir) -> TestServer {
    let data = dir.path().join("data");
    start_server(move |c| {
        c.guest_path = Some(PROBE_GUEST.into());
        c.control.transfer_fallback = fallback;
        c.admin_token = Some(TOKEN.into());
        c.store = StoreSettings { backend: Backend::Sqlite(data), record_audio: true, ..StoreSettings::off() };
    })
    .await
}

/// `GET /api/calls/{sid}`: the status and the record.
async fn record_of(base: &str, sid: &str) -> (StatusCode, Value) {
    let response = reqwest::Client::new().get(format!("{base}/api/calls/{sid}")).bearer_auth(TOKEN).send().await;
    let response = response.unwrap();
    (response.status(), response.json().await.unwrap_or_default())
}

/// The call's record once the writer has written it (it batches for 200 ms).
async fn record_once_written(base: &str, sid: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, record) = record_of(base, sid).await;
        if status == StatusCode::OK {
            return record;
        }
        assert!(Instant::now() < deadline, "{sid} was never recorded: {status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The timeline's entries as (at_ms, event, fields).
fn timeline(record: &Value) -> Vec<(i64, String, Value)> {
    let entries = record["timeline"].as_array().unwrap_or_else(|| panic!("no timeline: {record}"));
    entries
        .iter()
        .map(|e| (e["at_ms"].as_i64().unwrap(), e["event"].as_str().unwrap().to_string(), e["fields"].clone()))
        .collect()
}

/// Where `event` first is in the timeline with its field `key` at `value`
/// (`Null`: any).
fn position(entries: &[(i64, String, Value)], event: &str, (key, value): (&str, Value)) -> usize {
    entries
        .iter()
        .position(|(_, e, fields)| e == event && (value.is_null() || fields[key] == value))
        .unwrap_or_else(|| panic!("no {event} with {key} {value}: {entries:?}"))
}

fn call(base: &str, sid: &str, dtmf: Vec<(u64, char)>) -> CallOptions {
    keypad_call(base, sid, dtmf)
}

/// A webhook as Twilio posts it; its status and body.
async fn post(base: &str, path: &str, form: &[(&str, &str)]) -> (StatusCode, String) {
    let response = reqwest::Client::new().post(format!("{base}{path}")).form(form).send().await.unwrap();
    (response.status(), response.text().await.unwrap())
}

/// The TwiML's verbs, in order, with the `<Dial>`'s attributes and noun.
fn verbs(twiml: &str) -> Vec<String> {
    let doc = roxmltree::Document::parse(twiml).unwrap_or_else(|e| panic!("{e}: {twiml}"));
    doc.root_element().children().filter(|n| n.is_element()).map(|n| n.tag_name().name().to_string()).collect()
}

fn received(report: &CallReport, prefix: &str) -> Vec<String> {
    report
        .timeline
        .iter()
        .filter_map(|e| match &e.moment {
            Moment::MarkReceived(name) if name.starts_with(prefix) => Some(name.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_transfer_plays_out_dials_and_an_unanswered_caller_comes_back_where_they_left_off() {
    let s = probe_server(TransferFallback::Agent).await;
    let sid = "CAxfer0000000000000000000000000001";
    // `5` while the greeting still plays: the transfer waits for it.
    let report = place_call(&call(&s.base, sid, vec![(200, '5')])).await.unwrap();
    assert_eq!(report.close, Some((1000, "call transferred".into())), "{:?}", report.timeline);
    let echoed = |name: &str| report.first(|m| *m == Moment::MarkEchoed(name.into()));
    let (greeting, transfer) = (echoed("greeting").expect("greeting heard"), echoed("hotline-transfer"));
    assert!(transfer.is_some_and(|t| t >= greeting), "the greeting was heard before the hand-over");
    let closed = report.first(|m| matches!(m, Moment::ServerClosed(..))).unwrap();
    assert!(closed >= transfer.unwrap(), "the stream ends once the last words were heard");

    // Twilio asks what next: the dial, back to us when it ends.
    let (status, twiml) = post(&s.base, "/webhook/stream_ended", &[("CallSid", sid)]).await;
    assert_eq!(status, StatusCode::OK);
    let doc = roxmltree::Document::parse(&twiml).unwrap();
    let dial = doc.descendants().find(|n| n.has_tag_name("Dial")).unwrap_or_else(|| panic!("{twiml}"));
    assert_eq!(dial.attribute("timeout"), Some("20"));
    assert_eq!(dial.attribute("callerId"), Some("+15550100001"));
    assert_eq!(dial.attribute("action"), Some(format!("{}/webhook/dial_ended", s.base).as_str()));
    let number = dial.first_element_child().unwrap();
    assert_eq!((number.tag_name().name(), number.text()), ("Number", Some("+15550100003")));

    // Nobody answered: the caller is back, in the session that asked (no
    // second greeting), and it hears why.
    let mut back = call(&s.base, sid, vec![]);
    back.webhook = "/webhook/dial_ended".into();
    back.webhook_params = vec![("DialCallStatus".into(), "no-answer".into())];
    let report = place_call(&back).await.unwrap();
    assert_eq!(received(&report, "greeting"), Vec::<String>::new(), "restored, not started again");
    let failed = received(&report, "transfer-failed");
    assert!(failed.len() == 1 && failed[0].contains("NoAnswer"), "{failed:?}");
    assert_eq!(report.close, Some((1000, "stream stopped".into())));

    // Answered transfers end the call; the transfer is forgotten.
    let (_, twiml) = post(&s.base, "/webhook/stream_ended", &[("CallSid", sid)]).await;
    assert_eq!(verbs(&twiml), ["Hangup"], "no transfer pending any more");
    let form = [("CallSid", sid), ("DialCallStatus", "completed"), ("DialCallDuration", "42")];
    let (status, twiml) = post(&s.base, "/webhook/dial_ended", &form).await;
    assert_eq!((status, verbs(&twiml)), (StatusCode::OK, vec!["Hangup".to_string()]));
}

#[tokio::test]
async fn an_unanswered_transfer_and_the_callers_return_leave_one_record() {
    let dir = TempDir::new("transfer-record");
    let s = recording_server(TransferFallback::Agent, &dir).await;
    let sid = "CAxfer0000000000000000000000000011";
    let first = place_call(&call(&s.base, sid, vec![(200, '5')])).await.unwrap();
    assert_eq!(first.close, Some((1000, "call transferred".into())));
    post(&s.base, "/webhook/stream_ended", &[("CallSid", sid)]).await;
    let mut back = call(&s.base, sid, vec![]);
    back.webhook = "/webhook/dial_ended".into();
    back.webhook_params = vec![("DialCallStatus".into(), "no-answer".into())];
    let second = place_call(&back).await.unwrap();
    assert_eq!(second.close, Some((1000, "stream stopped".into())), "the caller hung up");

    let record = record_once_written(&s.base, sid).await;
    // The end is the second stream's, the start the first's.
    assert_eq!(record["outcome"], "caller_hung_up", "{record}");
    assert_eq!(record["close_code"], 1000);
    let (frames, second_sent) = (record["frames_in"].as_u64().unwrap(), second.caller.len() as u64 / 160);
    assert!(frames > second_sent && first.caller.len() > 1600, "both streams' frames: {frames}");
    assert!(record["duration_ms"].as_i64().unwrap() > 1500, "from the first stream's start: {record}");
    let entries = timeline(&record);
    let requested = position(&entries, "transfer_requested", ("target", "+*******0003".into()));
    let started = position(&entries, "transfer_started", ("snapshot", true.into()));
    let transferred = position(&entries, "call_ended", ("outcome", "transferred".into()));
    let dial = position(&entries, "transfer_dial_ended", ("status", "no-answer".into()));
    assert_eq!(entries[dial].2["next"], "agent");
    let returned = position(&entries, "transfer_returned", ("resumed", true.into()));
    assert_eq!(entries[returned].2["stream_sid"], format!("MZ{}", &sid[2..]));
    let stop = position(&entries, "ws_stop", ("", Value::Null));
    let ended = position(&entries, "call_ended", ("outcome", "caller_hung_up".into()));
    let order = [requested, started, transferred, dial, returned, stop, ended];
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}: {entries:?}");
    // What the restored session said on the second stream is there too.
    let failed =
        |(_, e, f): &(i64, String, Value)| e == "mark_sent" && f["name"].to_string().contains("transfer-failed");
    assert!(entries[returned..].iter().any(failed), "{entries:?}");
    let at: Vec<i64> = entries.iter().map(|(at, _, _)| *at).collect();
    assert!(at.windows(2).all(|w| w[0] <= w[1] + 100), "one clock, going forward: {at:?}");
    assert!(at[dial] >= at[transferred] && at[returned] >= at[dial], "{at:?}");
    // One recording: the second stream's audio follows the first's in the same file.
    let heard_ms = (first.caller.len() + second.caller.len()) as i64 / 8;
    let recorded = record["recording"]["duration_ms"].as_i64().expect("a recording");
    assert!((recorded - heard_ms).abs() <= 200, "recorded {recorded} ms of {heard_ms} ms: {record}");
    let url = format!("{}{}", s.base, record["recording"]["url"].as_str().unwrap());
    // The writer thread may still be appending the last chunk.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let wav = reqwest::Client::new().get(&url).bearer_auth(TOKEN).send().await.unwrap().bytes().await.unwrap();
        let on_disk = hound::WavReader::new(std::io::Cursor::new(wav)).map_or(0, |r| r.duration() as i64 / 8);
        if (on_disk - heard_ms).abs() <= 200 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the file holds {on_disk} ms of {heard_ms} ms");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn an_answered_transfer_is_recorded_when_its_dial_ends() {
    let dir = TempDir::new("transfer-answered");
    let s = recording_server(TransferFallback::Agent, &dir).await;
    let sid = "CAxfer0000000000000000000000000012";
    let report = place_call(&call(&s.base, sid, vec![(200, '5')])).await.unwrap();
    assert_eq!(report.close, Some((1000, "call transferred".into())));
    let (_, twiml) = post(&s.base, "/webhook/stream_ended", &[("CallSid", sid)]).await;
    assert_eq!(verbs(&twiml), ["Dial"]);
    // The person talks: the record waits for the dial (past the writer's window).
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(record_of(&s.base, sid).await.0, StatusCode::NOT_FOUND, "held until the dial ends");

    let form = [("CallSid", sid), ("DialCallStatus", "completed"), ("DialCallDuration", "42")];
    let (_, twiml) = post(&s.base, "/webhook/dial_ended", &form).await;
    assert_eq!(verbs(&twiml), ["Hangup"]);
    let record = record_once_written(&s.base, sid).await;
    assert_eq!(record["outcome"], "transferred", "{record}");
    let entries = timeline(&record);
    let transferred = position(&entries, "call_ended", ("outcome", "transferred".into()));
    let dial = position(&entries, "transfer_dial_ended", ("status", "completed".into()));
    assert_eq!(entries[dial].2, serde_json::json!({"status": "completed", "secs": 42, "next": "hangup"}));
    assert_eq!(dial, entries.len() - 1, "the dial's end closes the call: {entries:?}");
    assert!(transferred < dial && entries[transferred].0 <= entries[dial].0, "{entries:?}");
}

#[tokio::test]
async fn a_record_held_for_a_dial_is_written_when_the_server_stops() {
    let dir = TempDir::new("transfer-drain");
    let s = recording_server(TransferFallback::Agent, &dir).await;
    let sid = "CAxfer0000000000000000000000000013";
    place_call(&call(&s.base, sid, vec![(200, '5')])).await.unwrap();
    post(&s.base, "/webhook/stream_ended", &[("CallSid", sid)]).await;
    // The person is still talking when the server is told to stop.
    s.server.begin_drain();
    tokio::time::timeout(Duration::from_secs(20), s.server.wait()).await.expect("drain completes");

    let s = recording_server(TransferFallback::Agent, &dir).await;
    let (status, record) = record_of(&s.base, sid).await;
    assert_eq!(status, StatusCode::OK, "written before the store's last flush");
    assert_eq!(record["outcome"], "transferred", "{record}");
    let entries = timeline(&record);
    position(&entries, "transfer_started", ("", Value::Null));
    assert!(entries.iter().all(|(_, e, _)| e != "transfer_dial_ended"), "the dial had not ended: {entries:?}");
}

#[tokio::test]
async fn a_caller_the_server_knows_nothing_of_comes_back_to_a_fresh_session() {
    // Another instance served the first stream, or it expired: a new session
    // hears `started` (so it greets) and then why the caller is back.
    let s = probe_server(TransferFallback::Agent).await;
    let mut back = call(&s.base, "CAxfer0000000000000000000000000002", vec![]);
    back.webhook = "/webhook/dial_ended".into();
    back.webhook_params = vec![("DialCallStatus".into(), "busy".into())];
    let report = place_call(&back).await.unwrap();
    assert_eq!(received(&report, "greeting"), ["greeting"]);
    let failed = received(&report, "transfer-failed");
    assert!(failed.len() == 1 && failed[0].contains("Busy"), "{failed:?}");

    let (status, body) =
        post(&s.base, "/webhook/dial_ended", &[("CallSid", "CA1"), ("DialCallStatus", "ringing")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "not a status Twilio sends: {body}");
}

#[tokio::test]
async fn with_the_message_fallback_an_unanswered_caller_hears_it_and_the_call_ends() {
    let s = probe_server(TransferFallback::Message).await;
    let (status, twiml) =
        post(&s.base, "/webhook/dial_ended", &[("CallSid", "CA3"), ("DialCallStatus", "no-answer")]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(verbs(&twiml), ["Say", "Hangup"], "{twiml}");
    assert!(twiml.contains("nobody is available"), "{twiml}");
}

#[tokio::test]
async fn a_transfer_that_cannot_be_dialled_is_refused_and_the_call_goes_on() {
    let s = probe_server(TransferFallback::Agent).await;
    let sid = "CAxfer0000000000000000000000000004";
    let report = place_call(&call(&s.base, sid, vec![(200, '4')])).await.unwrap();
    let failed = received(&report, "transfer-failed");
    assert!(failed.len() == 1 && failed[0].contains("Failed"), "{failed:?}");
    assert_eq!(report.close, Some((1000, "stream stopped".into())), "the call went on to its end");
    let (_, twiml) = post(&s.base, "/webhook/stream_ended", &[("CallSid", sid)]).await;
    assert_eq!(verbs(&twiml), ["Hangup"]);
}

#[tokio::test]
async fn answering_machine_verdicts_reach_their_outbound_call_even_before_it_starts() {
    let s = probe_server(TransferFallback::Agent).await;
    let (early, late) = ("CAamd00000000000000000000000000001", "CAamd00000000000000000000000000002");
    // Before the stream: kept for it.
    let (status, _) = post(&s.base, "/webhook/amd", &[("CallSid", early), ("AnsweredBy", "machine_start")]).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let outbound = |sid: &str| CallOptions { direction: "outbound-api", speed: 1.0, ..call(&s.base, sid, vec![]) };
    let report = place_call(&outbound(early)).await.unwrap();
    let verdicts = received(&report, "answered-by");
    assert!(verdicts.len() == 1 && verdicts[0].contains("MachineStart"), "{verdicts:?}");

    // During the call.
    let opts = outbound(late);
    let running = tokio::spawn(async move { place_call(&opts).await });
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    let form = [("CallSid", late), ("AnsweredBy", "machine_end_beep"), ("MachineDetectionDuration", "2100")];
    let (status, _) = post(&s.base, "/webhook/amd", &form).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let report = running.await.unwrap().unwrap();
    let verdicts = received(&report, "answered-by");
    assert!(verdicts.len() == 1 && verdicts[0].contains("MachineEndBeep"), "{verdicts:?}");

    let (status, _) = post(&s.base, "/webhook/amd", &[("CallSid", late), ("AnsweredBy", "robot")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}
