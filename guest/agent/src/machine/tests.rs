//! The caller's first utterance, as the echo agent hears it: from the first
//! frame of the call (over the greeting), or after a long silence; steady
//! line noise is never one. The audio is `hotline-audio`'s fixtures
//! (espeak-ng speech, SoX noise).

use std::path::PathBuf;

use hotline_audio::{FRAME_BYTES, ulaw};

use crate::Machine;
use crate::bindings::hotline::call::types::{Effect, Event, LogEntry, Media};
use crate::snapshot::tests::{json, run, started};

/// A fixture's samples (8 kHz μ-law on disk).
fn fixture(name: &str) -> Vec<i16> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../audio/testdata").join(format!("{name}.ulaw"));
    std::fs::read(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .iter()
        .map(|&b| ulaw::decode(b))
        .collect()
}

/// `speech` (at sample `at`) over white line noise at about -50 dBFS, `ms`
/// long, as the μ-law a caller sends.
fn caller(ms: usize, speech: &[(usize, &str)]) -> Vec<u8> {
    let noise = fixture("noise-white");
    let mut pcm: Vec<i32> = (0..ms * 8).map(|i| noise[i % noise.len()] as i32 / 30).collect();
    for &(at, clip) in speech {
        for (i, s) in fixture(&format!("speech-{clip}")).into_iter().enumerate() {
            pcm[at + i] += s as i32;
        }
    }
    pcm.into_iter().map(|s| ulaw::encode(s.clamp(-32768, 32767) as i16)).collect()
}

fn frames(audio: &[u8]) -> Vec<Event> {
    audio.chunks(FRAME_BYTES).map(|f| Event::Media(Media { payload: f.to_vec(), timestamp_ms: 0 })).collect()
}

fn handle_all(machine: &mut Machine, events: Vec<Event>) -> Vec<Effect> {
    events.into_iter().flat_map(|e| machine.handle(e)).collect()
}

fn logs<'a>(fx: &'a [Effect], event: &str) -> Vec<&'a LogEntry> {
    fx.iter().filter_map(|e| if let Effect::Log(l) = e { Some(l) } else { None }).filter(|l| l.event == event).collect()
}

fn played(fx: &[Effect]) -> Vec<u8> {
    fx.iter()
        .filter_map(|e| if let Effect::Play(a) = e { Some(a.as_slice()) } else { None })
        .collect::<Vec<_>>()
        .concat()
}

/// The machine's audio kept between utterances, from its snapshot.
fn kept_bytes(machine: &Machine) -> usize {
    let snapshot = json(&machine.snapshot());
    let utterance = snapshot["caller"]["utterance"].as_str().unwrap();
    utterance.len() * 3 / 4 - utterance.matches('=').count()
}

#[test]
fn a_word_from_the_first_frame_over_the_greeting_is_answered_whole() {
    let mut m = Machine::default();
    m.handle(started(false));
    // "Yes." the moment the call connects: its own noise floor, once.
    let audio = caller(2000, &[(0, "yes")]);
    let fx = handle_all(&mut m, frames(&audio));
    assert!(fx.iter().any(|e| matches!(e, Effect::Clear)), "the greeting is cleared: {fx:?}");
    assert_eq!(logs(&fx, "barge_in").len(), 1);
    assert_eq!(logs(&fx, "speech_start").len(), 1, "{fx:?}");
    let eou = logs(&fx, "eou");
    assert_eq!(eou.len(), 1, "the word is an utterance, not a click: {fx:?}");
    let speech_ms: u32 = eou[0].fields.iter().find(|(k, _)| k == "speech_ms").unwrap().1.parse().unwrap();
    assert!(speech_ms >= 200, "the whole word counts as speech: {speech_ms} ms");
    let echo = played(&fx);
    assert!(echo.len() >= 2 * FRAME_BYTES, "{} bytes echoed", echo.len());
    assert_eq!(&echo[..FRAME_BYTES], &audio[..FRAME_BYTES], "the echo begins with the call's first frame");
}

#[test]
fn a_steady_sound_from_the_first_frame_that_stops_is_answered() {
    // The load generator's caller: 1 s of a tone in noise from the first
    // frame, then a quiet line. Only its end shows it was not the floor.
    let mut m = Machine::default();
    m.handle(started(false));
    // The tone in noise, then a second and a half of near-silent line.
    let cycle = hotline_audio::load_caller_cycle();
    let mut pcm = cycle.clone();
    pcm.extend(&cycle[8000..12_000]);
    let audio: Vec<u8> = pcm.iter().map(|&s| ulaw::encode(s)).collect();
    let fx = handle_all(&mut m, frames(&audio));
    let start = logs(&fx, "speech_start");
    assert_eq!(start.len(), 1, "{fx:?}");
    let lookback = start[0].fields.iter().find(|(k, _)| k == "lookback_ms").map(|(_, v)| v.as_str());
    assert_eq!(lookback, Some("1000"), "found at its end, dated to its start: {:?}", start[0]);
    assert_eq!(logs(&fx, "barge_in").len(), 1, "the greeting is cleared: {fx:?}");
    assert_eq!(logs(&fx, "eou").len(), 1, "{fx:?}");
    let echo = played(&fx);
    assert!(echo.len() >= 8000, "{} bytes echoed", echo.len());
    assert_eq!(&echo[..8000], &audio[..8000], "the echo is the whole second, from the call's first frame");
}

#[test]
fn speech_after_a_long_silence_is_answered() {
    let mut m = Machine::default();
    m.handle(started(false));
    m.handle(Event::MarkPlayed("greeting".into()));
    let at = 12_000 * 8;
    let audio = caller(15_000, &[(at, "hello")]);
    let fx = handle_all(&mut m, frames(&audio));
    assert_eq!(logs(&fx, "eou").len(), 1, "{fx:?}");
    assert!(!fx.iter().any(|e| matches!(e, Effect::Clear)));
    let echo = played(&fx);
    // From the pre-roll before "Hello" on.
    let from = audio.windows(echo.len()).position(|w| w == echo).expect("the echo is the caller's audio");
    assert!((at - 1600..=at).contains(&from), "echo from byte {from}, speech at {at}");
}

#[test]
fn steady_line_noise_is_never_an_utterance_and_its_audio_is_not_kept() {
    let mut m = Machine::default();
    m.handle(started(false));
    let noise = fixture("noise-pink");
    // Loud (-26 dBFS) pink noise for 20 s from the first frame.
    let pcm: Vec<u8> = (0..160_000).map(|i| ulaw::encode(noise[i % noise.len()] / 2)).collect();
    let (first, rest) = pcm.split_at(8000);
    let fx = handle_all(&mut m, frames(first));
    assert_eq!(kept_bytes(&m), 8000, "while the floor learns, the audio since the start is kept");
    let mut fx2 = handle_all(&mut m, frames(rest));
    fx2.extend(fx);
    for event in ["speech_start", "eou", "barge_in", "vad_noise"] {
        assert!(logs(&fx2, event).is_empty(), "{event} in line noise: {fx2:?}");
    }
    assert!(kept_bytes(&m) <= 2 * 1600, "then only the pre-roll: {} bytes", kept_bytes(&m));
}

#[test]
fn a_call_snapshotted_while_its_first_word_is_undecided_carries_on_identically() {
    let mut whole = Machine::default();
    whole.handle(started(false));
    let audio = caller(2000, &[(0, "yes")]);
    let events = frames(&audio);
    let (before, after) = events.split_at(8);
    run(&mut whole, before.to_vec());
    let snapshot = whole.snapshot();
    // Nothing new in the format: older guests (schema 4) can take the call.
    assert_eq!(json(&snapshot)["schema"], 4);
    assert_eq!(kept_bytes(&whole), 8 * FRAME_BYTES, "the audio the look-back needs travels with it");
    let mut resumed = Machine::restore(&snapshot).unwrap();
    let (a, b) = (run(&mut whole, after.to_vec()), run(&mut resumed, after.to_vec()));
    assert!(a.iter().any(|fx| fx.contains("\"eou\"")), "{a:?}");
    assert_eq!(a, b);
}

/// `handle-media` + `take-effects` (the host's path for every frame) is
/// `handle(media)`: the same effects, in order, frame for frame.
#[test]
fn the_media_fast_path_answers_as_handle_does() {
    use crate::bindings::exports::hotline::call::calls::GuestSession;
    type Session = crate::WrappedSession<crate::Plain>;
    let (fast, slow) = (Session::new(), Session::new());
    fast.handle(started(false));
    slow.handle(started(false));
    let audio = caller(3000, &[(800, "yes")]);
    let (mut with_effects, mut total) = (0, 0);
    for (i, frame) in audio.chunks(FRAME_BYTES).enumerate() {
        let at = i as u64 * 20;
        let expected = slow.handle(crate::media(frame.to_vec(), at));
        let caused = fast.handle_media(frame.to_vec(), at);
        assert_eq!(caused, !expected.is_empty(), "frame {i}");
        let got = if caused { fast.take_effects() } else { Vec::new() };
        assert_eq!(format!("{got:?}"), format!("{expected:?}"), "frame {i}");
        assert!(fast.take_effects().is_empty(), "taking leaves none held");
        with_effects += caused as usize;
        total += got.len();
    }
    assert!(with_effects >= 2 && total >= 4, "the utterance caused effects: {with_effects} frames, {total} effects");
}

/// Effects a host has not taken yet are kept, oldest first, behind newer ones.
#[test]
fn an_outbox_keeps_effects_until_taken() {
    let outbox = crate::Outbox::default();
    assert!(!outbox.hold(Vec::new()));
    assert!(outbox.hold(vec![Effect::Clear]));
    assert!(outbox.hold(Vec::new()), "still holding the clear");
    assert!(outbox.hold(vec![Effect::Hangup]));
    assert_eq!(format!("{:?}", outbox.take()), format!("{:?}", vec![Effect::Clear, Effect::Hangup]));
    assert!(outbox.take().is_empty());
    assert!(!outbox.hold(Vec::new()));
}
