//! Golden snapshots: sessions of the default guest snapshotted mid-call by an
//! earlier build, committed under `tests/data/snapshots/`. The current guest
//! must restore each one and carry the call on correctly: this is what live
//! migration from an older version relies on, and what a rename inside the
//! guest would silently break.
//!
//! `HOTLINE_BLESS_SNAPSHOTS=1 cargo test --release snapshots` writes any
//! golden file that is missing (it never overwrites one: a golden is an old
//! build's output, and a change that cannot read it must keep reading it
//! under its old schema, not replace it).

use std::path::PathBuf;

use hotline::sandbox::wit::{self, Effect, Event, ReplyText, Role, SpeechAudio, ToolCall, Transcript, Transfer};

use crate::support::*;

fn golden_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/snapshots").join(format!("{name}.json"))
}

/// Snapshot of `d` under `name`: the committed golden if there is one, else
/// (when blessing) this build's, written down.
async fn golden(name: &str, d: &mut Driver) -> Vec<u8> {
    let path = golden_path(name);
    if let Ok(bytes) = std::fs::read(&path) {
        return bytes;
    }
    assert!(
        std::env::var_os("HOTLINE_BLESS_SNAPSHOTS").is_some(),
        "golden snapshot {} is missing (HOTLINE_BLESS_SNAPSHOTS=1 writes it)",
        path.display()
    );
    let bytes = d.session.snapshot().expect("snapshot");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, &bytes).unwrap();
    bytes
}

/// A driver on a fresh instance of the current default guest, restored
/// from `snapshot`, its media clock at `frames`.
async fn resume(snapshot: &[u8], frames: usize) -> Driver {
    let session = default_guest().restore(snapshot).expect("the current guest restores the golden snapshot");
    Driver { session, frames, effects: Vec::new() }
}

fn plays(d: &Driver) -> Vec<usize> {
    d.effects.iter().filter_map(|(_, e)| if let Effect::Play(a) = e { Some(a.len()) } else { None }).collect()
}

/// Echo agent, greeting heard, the caller 300 ms into an utterance.
#[tokio::test]
async fn listening_with_speech_in_progress() {
    let mut d = Driver::start(default_guest(), call_config(500, 80, false)).await;
    d.ack_marks().await;
    d.audio(&silence(400)).await;
    d.audio(&tone(300, 300.0)).await;
    let snapshot = golden("listening-speech", &mut d).await;

    let mut r = resume(&snapshot, 35).await;
    r.audio(&tone(300, 300.0)).await;
    r.audio(&silence(900)).await;
    let eou = r.logs("eou");
    assert_eq!(eou.len(), 1, "the utterance begun before the snapshot ends once: {:?}", r.effects);
    assert_eq!(field(&eou[0].1, "turn"), "1");
    // Speech began before the snapshot: 600 ms of it, not the 300 after.
    let speech_ms: u32 = field(&eou[0].1, "speech_ms").parse().unwrap();
    assert!((560..=660).contains(&speech_ms), "speech_ms {speech_ms}");
    let played: usize = plays(&r).iter().sum();
    assert!((600 * 8..=900 * 8).contains(&played), "the echo holds the whole utterance, {played} bytes");
    assert_eq!(r.marks(), ["t1-s0"]);
}

/// Echo agent speaking a two-segment reply, both marks still pending.
#[tokio::test]
async fn speaking_with_marks_pending() {
    let mut d = Driver::start(default_guest(), call_config(500, 80, false)).await;
    d.ack_marks().await;
    d.audio(&silence(300)).await;
    d.audio(&tone(1200, 300.0)).await;
    d.audio(&silence(700)).await;
    assert_eq!(d.marks(), ["greeting", "t1-s0", "t1-s1"], "setup: a two-segment echo is playing");
    let snapshot = golden("speaking-marks-pending", &mut d).await;

    let mut r = resume(&snapshot, d.frames).await;
    // Quiet caller: nothing new is said while the reply plays.
    r.audio(&silence(200)).await;
    assert!(r.logs("eou").is_empty() && plays(&r).is_empty());
    r.send(Event::MarkPlayed("t1-s0".into())).await;
    assert!(r.logs("reply_done").is_empty(), "one mark is still out");
    r.send(Event::MarkPlayed("t1-s1".into())).await;
    let done = r.logs("reply_done");
    assert_eq!(done.len(), 1, "{:?}", r.effects);
    assert_eq!(field(&done[0].1, "segments"), "2");
    // The turn counter carried over: the next reply is turn 2.
    r.audio(&tone(400, 300.0)).await;
    r.audio(&silence(700)).await;
    assert!(r.marks().contains(&"t2-s0".to_string()), "{:?}", r.marks());
}

/// AI path, greeting heard, an utterance sent to speech-to-text.
#[tokio::test]
async fn thinking_on_the_ai_path() {
    let mut d = Driver::start(default_guest(), call_config(500, 80, true)).await;
    let tts: Vec<i16> = tone(500, 300.0);
    d.send(Event::SpeechAudio(SpeechAudio { samples: tts, sample_rate: 8000, done: true })).await;
    d.ack_marks().await;
    d.audio(&silence(300)).await;
    d.audio(&tone(500, 300.0)).await;
    d.audio(&silence(600)).await;
    assert!(d.effects.iter().any(|(_, e)| matches!(e, Effect::Transcribe(_))), "setup: transcribing");
    let snapshot = golden("thinking-ai", &mut d).await;

    let mut r = resume(&snapshot, d.frames).await;
    let fx = r.send(Event::Transcript(Transcript { text: "what time is it".into(), is_final: true })).await;
    let Some(Effect::Think(turns)) = fx.iter().find(|e| matches!(e, Effect::Think(_))) else {
        panic!("a final transcript while thinking asks the LLM: {fx:?}");
    };
    let roles: Vec<Role> = turns.turns.iter().map(|t| t.role).collect();
    assert_eq!(roles, [Role::System, Role::Assistant, Role::User], "the heard greeting is in the history");
    assert_eq!(turns.turns[2].text, "what time is it");
    let fx = r.send(Event::ReplyText(ReplyText { delta: "It is noon. ".into(), done: true })).await;
    assert!(fx.iter().any(|e| matches!(e, Effect::Speak(t) if t == "It is noon.")), "{fx:?}");
    let fx = r.send(Event::SpeechAudio(SpeechAudio { samples: tone(300, 300.0), sample_rate: 8000, done: true })).await;
    assert!(fx.iter().any(|e| matches!(e, Effect::Mark(m) if m == "t1-s0")), "{fx:?}");
}

/// Echo agent, the caller talked over the greeting: cleared, the greeting's
/// mark still to come back as dropped, the caller still talking.
#[tokio::test]
async fn after_a_barge_in() {
    let mut d = Driver::start(default_guest(), call_config(500, 80, false)).await;
    d.audio(&silence(200)).await;
    d.audio(&tone(300, 300.0)).await;
    assert_eq!(d.logs("barge_in").len(), 1, "setup: the greeting was interrupted");
    let snapshot = golden("after-barge-in", &mut d).await;

    let mut r = resume(&snapshot, d.frames).await;
    r.send(Event::MarkPlayed("greeting".into())).await;
    assert_eq!(r.logs("mark_dropped").len(), 1, "the cleared greeting's mark is known as dropped: {:?}", r.effects);
    assert!(r.logs("mark_unknown").is_empty());
    r.audio(&tone(200, 300.0)).await;
    r.audio(&silence(700)).await;
    assert_eq!(r.logs("eou").len(), 1);
    assert_eq!(r.marks(), ["t1-s0"], "the interrupting utterance is answered");
}

/// Schema 5: AI path with a transfer target, one tool round answered (an
/// unknown tool), then `transfer_to_human`: its "One moment" is playing and
/// the transfer waits for its mark.
#[tokio::test]
async fn a_transfer_pending_after_a_tool_round() {
    let config = wit::Config { transfer_to: Some("+15550100099".into()), ..call_config(500, 80, true) };
    let mut d = Driver::start(default_guest(), config).await;
    d.send(Event::SpeechAudio(SpeechAudio { samples: tone(500, 300.0), sample_rate: 8000, done: true })).await;
    d.ack_marks().await;
    d.audio(&concat(&[silence(300), tone(500, 300.0), silence(600)])).await;
    d.send(Event::Transcript(Transcript { text: "a person please".into(), is_final: true })).await;
    let call = |id: &str, name: &str| ToolCall { id: id.into(), name: name.into(), arguments: "{}".into() };
    let done = || Event::ReplyText(ReplyText { delta: String::new(), done: true });
    d.send(Event::ToolCalls(vec![call("c1", "weather")])).await;
    d.send(done()).await;
    d.send(Event::ToolCalls(vec![call("c2", "transfer_to_human")])).await;
    d.send(done()).await;
    d.send(Event::SpeechAudio(SpeechAudio { samples: tone(300, 300.0), sample_rate: 8000, done: true })).await;
    assert!(!d.effects.iter().any(|(_, e)| matches!(e, Effect::Transfer(_))), "setup: the transfer waits");
    let snapshot = golden("transfer-pending", &mut d).await;
    let json: serde_json::Value = serde_json::from_slice(&snapshot).unwrap();
    assert_eq!(json["schema"], 5);

    let mut r = resume(&snapshot, d.frames).await;
    let fx = r.send(Event::MarkPlayed("t1-s0".into())).await;
    let transfer = Transfer { target: "+15550100099".into(), caller_id: None };
    assert!(fx.contains(&Effect::Transfer(transfer)), "the restored call transfers once it is heard: {fx:?}");
    let again: serde_json::Value = serde_json::from_slice(&r.session.snapshot().unwrap()).unwrap();
    let turns = again["ai"]["conversation"].as_array().unwrap();
    assert!(turns.iter().any(|t| t["role"] == "tool" && t["tool_call_id"] == "c1"), "{again}");
}
