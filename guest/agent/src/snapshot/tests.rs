use std::path::PathBuf;

use hotline_audio::{FRAME_BYTES, tone, ulaw};
use serde_json::{Value, json};

use crate::Machine;
use crate::bindings::hotline::call::types::{Config, Direction, Event, Media, Providers, Started};

/// Schema-3 snapshots taken mid-call by the last guest that wrote schema 3.
fn goldens() -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/snapshots");
    let mut found: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("golden snapshots in {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|x| x == "json"))
        .map(|path| (path.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&path).unwrap()))
        // The schema-3 ones: newer goldens are read by `tests/it/snapshots.rs`.
        .filter(|(_, bytes)| json(bytes)["schema"] == 3)
        .collect();
    found.sort();
    assert!(found.len() >= 4, "golden snapshots missing in {}", dir.display());
    found
}

pub(crate) fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

pub(crate) fn started(ai: bool) -> Event {
    Event::Started(Started {
        stream_sid: "MZtest".into(),
        call_sid: "CAtest".into(),
        custom_parameters: Vec::new(),
        config: Config {
            eou_silence_ms: 500,
            barge_in_ms: 80,
            max_utterance_ms: 15_000,
            fallback_ms: 3000,
            providers: Providers { stt: ai, llm: ai, tts: ai },
            greeting: None,
            system_prompt: None,
            transfer_to: None,
            voicemail_message: None,
            variables: Vec::new(),
        },
        direction: Direction::Inbound,
        from: "+15550100001".into(),
        to: "+15550100002".into(),
    })
}

/// `pcm` (8 kHz) as Twilio sends it: μ-law, 20 ms a message.
pub(crate) fn media(pcm: &[i16]) -> Vec<Event> {
    pcm.chunks(FRAME_BYTES)
        .map(|frame| {
            let mut payload = Vec::new();
            ulaw::encode_into(frame, &mut payload);
            Event::Media(Media { payload, timestamp_ms: 0 })
        })
        .collect()
}

fn speech(ms: u32) -> Vec<Event> {
    media(&tone(ms, 300.0, 8000, 8000.0))
}

pub(crate) fn silence(ms: u32) -> Vec<Event> {
    media(&vec![0; ms as usize * 8])
}

fn mark(name: &str) -> Vec<Event> {
    vec![Event::MarkPlayed(name.into())]
}

/// Everything `machine` does with `events`, comparable.
pub(crate) fn run(machine: &mut Machine, events: Vec<Event>) -> Vec<String> {
    events.into_iter().map(|e| format!("{:?}", machine.handle(e))).collect()
}

/// The v4 JSON a v3 snapshot must become, built from the v3 JSON alone.
fn expected_v4(v3: &Value) -> Value {
    let settings = &v3["settings"];
    let endpointer = &v3["endpointer"];
    let lower = |v: &Value| json!(v.as_str().unwrap().to_lowercase());
    json!({
        "schema": 4,
        "state": lower(&v3["state"]),
        "started": v3["started"],
        "media_ms": v3["media_ms"],
        "settings": {
            "eou_silence_ms": settings["eou_silence_ms"],
            "barge_in_ms": settings["barge_in_ms"],
            "max_utterance_ms": settings["max_utterance_ms"],
            "fallback_ms": settings["fallback_ms"],
            "ai": settings["ai"],
            "system_prompt": settings["system_prompt"],
        },
        "caller": {
            "utterance": v3["utterance"],
            "utterance_start_ms": v3["utterance_start_ms"],
            "endpointer": {
                "in_utterance": endpointer["in_utterance"],
                "speech_ms": endpointer["speech_ms"],
                "silence_ms": endpointer["silence_ms"],
                "vad": endpointer["vad"],
            },
        },
        "playback": {
            "turn": v3["turn"],
            "segments": v3["segments"],
            "dropped_marks": v3["dropped_marks"],
            "reply_complete": v3["reply_complete"],
        },
        "ai": {
            "awaiting": lower(&v3["awaiting"]),
            "conversation": v3["conversation"].as_array().unwrap().iter()
                .map(|pair| json!({ "role": lower(&pair[0]), "text": pair[1] }))
                .collect::<Vec<_>>(),
            "unspoken": v3["unspoken"],
            "speaking": v3["speaking"],
            "audio_started": v3["audio_started"],
            "filler": v3["filler"],
            "filler_fired": v3["filler_fired"],
            "resampler": v3["resampler"],
            "framer_carry": base64(v3["framer"]["pending"].as_array().unwrap()),
        },
    })
}

fn base64(bytes: &[Value]) -> String {
    use base64::Engine as _;
    let bytes: Vec<u8> = bytes.iter().map(|b| b.as_u64().unwrap() as u8).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// What a call does next, whatever state a golden left it in: the caller
/// speaks and is quiet, every reply mark comes back, and the call ends.
fn continuation() -> Vec<Event> {
    let mut events = silence(300);
    events.extend(speech(400));
    events.extend(silence(800));
    for name in ["greeting", "t0-s0", "t1-s0", "t1-s1", "t2-s0", "t2-s1"] {
        events.extend(mark(name));
    }
    events.extend(speech(300));
    events.extend(silence(800));
    events.push(Event::Stopped);
    events
}

#[test]
fn a_schema_3_golden_restores_and_its_schema_4_snapshot_restores_to_the_same_call() {
    for (name, v3) in goldens() {
        assert_eq!(json(&v3)["schema"], 3, "{name}");
        let mut from_v3 = Machine::restore(&v3).unwrap_or_else(|e| panic!("{name}: {e}"));
        let v4 = from_v3.snapshot();
        assert_eq!(json(&v4), expected_v4(&json(&v3)), "{name}: every field carried over");

        let mut from_v4 = Machine::restore(&v4).unwrap_or_else(|e| panic!("{name} as schema 4: {e}"));
        assert_eq!(from_v4.snapshot(), v4, "{name}: schema 4 round trip");
        assert_eq!(from_v4.state(), from_v3.state(), "{name}");
        let (a, b) = (run(&mut from_v3, continuation()), run(&mut from_v4, continuation()));
        assert!(a.iter().any(|fx| fx != "[]"), "{name}: the call carries on");
        assert_eq!(a, b, "{name}: the same call after the schema 4 round trip");
    }
}

#[test]
fn an_echo_call_carries_on_identically_after_a_round_trip() {
    let mut whole = Machine::default();
    let mut first = vec![started(false)];
    first.extend(mark("greeting"));
    first.extend(silence(300));
    first.extend(speech(1300));
    first.extend(silence(800));
    first.extend(mark("t1-s0"));
    first.extend(silence(100));
    first.extend(speech(60)); // snapshot with speech in progress during a reply
    let mut second = speech(200); // barge-in
    second.extend(mark("t1-s1"));
    second.extend(silence(800));
    second.extend(mark("t2-s0"));
    second.push(Event::Stopped);

    run(&mut whole, first);
    let snapshot = whole.snapshot();
    assert_eq!(json(&snapshot)["schema"], 4);
    let mut resumed = Machine::restore(&snapshot).unwrap();
    let (a, b) = (run(&mut whole, second.clone()), run(&mut resumed, second));
    assert!(a.iter().any(|fx| fx.contains("barge_in")), "{a:?}");
    assert_eq!(a, b);
}

#[test]
fn restore_refuses_what_it_does_not_understand() {
    let future = Machine::restore(br#"{"schema": 99}"#).err().unwrap();
    assert!(future.contains("99"), "{future}");
    let garbage = Machine::restore(b"not a snapshot").err().unwrap();
    assert!(garbage.contains("not a snapshot"), "{garbage}");
    let truncated = Machine::restore(br#"{"schema": 4, "state": "listening"}"#).err().unwrap();
    assert!(truncated.contains("bad snapshot"), "{truncated}");
}

#[test]
fn restore_refuses_audio_state_it_could_not_continue_from() {
    let good = json(&Machine::default().snapshot());
    let refused = |path: &[&str], value: Value| {
        let mut bad = good.clone();
        let field = path.iter().fold(&mut bad, |v, key| &mut v[*key]);
        *field = value;
        Machine::restore(&serde_json::to_vec(&bad).unwrap()).err().unwrap_or_else(|| panic!("{path:?} accepted"))
    };
    let carry = refused(&["ai", "framer_carry"], json!(base64(&vec![json!(255); FRAME_BYTES])));
    assert!(carry.contains("framer"), "{carry}");
    let vad = refused(&["caller", "endpointer", "vad", "block_frames"], json!(25));
    assert!(vad.contains("VAD"), "{vad}");
    let resampler = json!({ "in_rate": 24000, "out_rate": 8000, "history": [0.0], "pos": 0 });
    let resampler = refused(&["ai", "resampler"], resampler);
    assert!(resampler.contains("resampler position"), "{resampler}");
}
