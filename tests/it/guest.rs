//! The default guest as a component in the sandbox: scripted events in,
//! effects asserted. No sockets here; `calls.rs` drives the real server.

use std::time::Duration;

use hotline::config::Config;
use hotline::sandbox::wit::{
    self, CallMode, Effect, Event, ProviderError, ProviderKind, ReplyText, Role, SpeechAudio, Thought, ToolCall,
    Transcript, Transfer, TwimlError, Webhook,
};
use hotline::sandbox::{GuestError, Sandbox};
use hotline_audio::FRAME_BYTES;

use crate::support::*;

fn webhook(params: &[(&str, &str)], base: &str, mode: CallMode) -> Webhook {
    Webhook {
        params: params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        base_url: base.to_string(),
        mode,
    }
}

// ---- TwiML ------------------------------------------------------------------

#[tokio::test]
async fn stream_twiml_is_well_formed_and_escapes_hostile_values() {
    let hostile = r#"CA1"/><Hangup/><Say a='x'>&amp;</Say>"#;
    for base in ["https://agent.example.com", "https://agent.example.com/", "https://agent.example.com//"] {
        let twiml = default_guest()
            .incoming_call(&webhook(&[("CallSid", hostile), ("From", "+1<555>&\"'")], base, CallMode::Stream))
            .unwrap()
            .unwrap();
        let doc = roxmltree::Document::parse(&twiml).expect("well-formed XML");
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "Response");
        assert!(!root.descendants().any(|n| n.has_tag_name("Hangup")), "injection got through: {twiml}");
        let connect = root.children().find(|n| n.has_tag_name("Connect")).expect("<Connect>");
        assert_eq!(connect.attribute("action"), Some("https://agent.example.com/webhook/stream_ended"));
        let stream = connect.children().find(|n| n.has_tag_name("Stream")).expect("<Stream>");
        assert_eq!(stream.attribute("url"), Some("wss://agent.example.com/ws/twilio-media"));
        assert_eq!(stream.attribute("statusCallback"), Some("https://agent.example.com/webhook/stream_status"));
        let param = stream.children().find(|n| n.has_tag_name("Parameter")).expect("<Parameter>");
        assert_eq!(param.attribute("name"), Some("call_sid"));
        assert_eq!(param.attribute("value"), Some(hostile), "the value survives escaping intact");
        let after_scheme = &twiml.replace("https://", "").replace("wss://", "");
        assert!(!after_scheme.contains("//"), "double slash in {twiml}");
    }
}

#[tokio::test]
async fn record_twiml_says_and_records() {
    let twiml = default_guest()
        .incoming_call(&webhook(&[("CallSid", "CA1")], "https://a.example", CallMode::Record))
        .unwrap()
        .unwrap();
    let doc = roxmltree::Document::parse(&twiml).expect("well-formed XML");
    let names: Vec<&str> = doc.root_element().children().map(|n| n.tag_name().name()).collect();
    assert_eq!(names, ["Say", "Record"]);
    assert!(!twiml.contains("<Stream"));
}

#[tokio::test]
async fn a_base_url_without_scheme_is_a_bad_request() {
    let err = default_guest().incoming_call(&webhook(&[], "agent.example.com", CallMode::Stream)).unwrap();
    assert!(matches!(err, Err(TwimlError::BadRequest(_))), "{err:?}");
}

// ---- turn-taking ------------------------------------------------------------

fn plays(d: &Driver) -> Vec<(usize, usize)> {
    d.effects.iter().filter_map(|(i, e)| if let Effect::Play(a) = e { Some((*i, a.len())) } else { None }).collect()
}

/// The audio played at each frame that played any: one reply may come in
/// several `play`s (the chunks the guest kept it in).
fn bursts(d: &Driver) -> Vec<(usize, usize)> {
    let mut bursts: Vec<(usize, usize)> = Vec::new();
    for (frame, len) in plays(d) {
        match bursts.last_mut() {
            Some(last) if last.0 == frame => last.1 += len,
            _ => bursts.push((frame, len)),
        }
    }
    bursts
}

/// The effects with consecutive `play`s joined: what the caller hears and
/// the host is told, whichever pieces the audio was handed over in.
fn heard(effects: &[(usize, Effect)]) -> Vec<(usize, Effect)> {
    let mut heard: Vec<(usize, Effect)> = Vec::new();
    for (frame, effect) in effects {
        match (heard.last_mut(), effect) {
            (Some((at, Effect::Play(audio))), Effect::Play(more)) if at == frame => audio.extend_from_slice(more),
            _ => heard.push((*frame, effect.clone())),
        }
    }
    heard
}

#[tokio::test]
async fn greets_once_in_whole_frames_with_a_mark() {
    let mut d = Driver::start(default_guest(), call_config(500, 80, false)).await;
    let greeting = plays(&d);
    assert_eq!(greeting.len(), 1, "one greeting burst");
    assert!(greeting[0].1 >= 50 * FRAME_BYTES, "a real greeting, {} bytes", greeting[0].1);
    assert_eq!(greeting[0].1 % FRAME_BYTES, 0, "whole frames");
    assert_eq!(d.marks(), ["greeting"]);
    // A repeated start (or anything else) never greets again.
    d.send(Event::Started(hotline::sandbox::wit::Started {
        stream_sid: "MZtest".into(),
        call_sid: "CAtest".into(),
        custom_parameters: vec![],
        config: call_config(500, 80, false),
        direction: hotline::sandbox::wit::Direction::Inbound,
        from: "+15550100001".into(),
        to: "+15550100002".into(),
    }))
    .await;
    d.ack_marks().await;
    d.audio(&silence(2000)).await;
    assert_eq!(plays(&d).len(), 1);
}

/// EoU comes exactly `eou` ms after the last voiced frame, for the whole
/// sane range, and the reply is the utterance.
#[tokio::test]
async fn end_of_utterance_follows_the_configured_silence() {
    for eou in [300u32, 500, 600] {
        let mut d = Driver::start(default_guest(), call_config(eou, 80, false)).await;
        d.ack_marks().await;
        d.audio(&silence(400)).await;
        d.clear_effects();
        d.audio(&tone(600, 440.0)).await;
        let last_voiced = d.frames - 1;
        d.audio(&silence(eou + 400)).await;
        let replies = bursts(&d);
        assert_eq!(replies.len(), 1, "eou {eou}: one reply burst");
        assert_eq!(replies[0].0, last_voiced + (eou / 20) as usize, "eou {eou}: reply frame");
        let eou_logs = d.logs("eou");
        assert_eq!(eou_logs.len(), 1);
        // 600 ms of speech, plus up to 200 ms pre-roll and 100 ms of tail.
        let reply_ms = replies[0].1 / 8;
        assert!((600..=900).contains(&reply_ms), "eou {eou}: reply is {reply_ms} ms");
    }
}

#[tokio::test]
async fn each_utterance_gets_exactly_one_reply_and_short_noise_none() {
    let mut d = Driver::start(default_guest(), call_config(500, 80, false)).await;
    d.ack_marks().await;
    d.audio(&silence(300)).await;
    d.clear_effects();
    for _ in 0..3 {
        d.audio(&tone(500, 300.0)).await;
        d.audio(&silence(900)).await;
        d.ack_marks().await; // the reply is heard in full
        d.audio(&silence(1000)).await;
    }
    // A 40 ms click is not an utterance.
    d.audio(&tone(40, 300.0)).await;
    d.audio(&silence(1200)).await;
    let turns: Vec<String> = d.logs("eou").iter().map(|(_, l)| field(l, "turn").to_string()).collect();
    assert_eq!(turns, ["1", "2", "3"]);
    let first_marks: Vec<String> = d.marks().into_iter().filter(|m| m.ends_with("-s0")).collect();
    assert_eq!(first_marks, ["t1-s0", "t2-s0", "t3-s0"]);
    assert_eq!(d.at(|e| matches!(e, Effect::Clear)), Vec::<usize>::new());
}

#[tokio::test]
async fn barge_in_clears_within_the_minimum_and_knows_what_was_heard() {
    let mut d = Driver::start(default_guest(), call_config(500, 80, false)).await;
    d.ack_marks().await;
    d.audio(&silence(300)).await;
    // A 2.5 s utterance: its echo is three segments with three marks.
    d.audio(&tone(2500, 300.0)).await;
    d.audio(&silence(600)).await;
    let marks: Vec<String> = d.marks().into_iter().filter(|m| m.starts_with("t1")).collect();
    assert_eq!(marks, ["t1-s0", "t1-s1", "t1-s2"]);
    // The caller heard the first second, then talks over the rest.
    d.send(Event::MarkPlayed("t1-s0".into())).await;
    d.clear_effects();
    let onset = d.frames;
    d.audio(&tone(300, 500.0)).await;
    let clears = d.at(|e| matches!(e, Effect::Clear));
    assert_eq!(clears.len(), 1, "one clear");
    // 80 ms of speech is 4 frames: the 4th voiced frame clears.
    assert_eq!(clears[0], onset + 3, "clear at the barge-in minimum");
    let (_, barge) = &d.logs("barge_in")[0];
    assert_eq!(field(barge, "heard"), "t1-s0");
    assert_eq!(field(barge, "unheard"), "t1-s1,t1-s2");
    // Twilio echoes the dropped marks after the clear: not counted as heard.
    d.send(Event::MarkPlayed("t1-s1".into())).await;
    d.send(Event::MarkPlayed("t1-s2".into())).await;
    assert_eq!(d.logs("mark_dropped").len(), 2);
    // The interrupting speech is itself an utterance and gets one reply.
    d.audio(&silence(700)).await;
    assert_eq!(d.logs("eou").len(), 1);
    assert!(d.marks().contains(&"t2-s0".to_string()));
}

#[tokio::test]
async fn speech_shorter_than_the_barge_in_minimum_does_not_interrupt() {
    let mut d = Driver::start(default_guest(), call_config(500, 100, false)).await;
    d.audio(&silence(200)).await;
    d.audio(&tone(60, 500.0)).await; // 60 ms < 100 ms minimum
    d.audio(&silence(800)).await;
    assert!(d.at(|e| matches!(e, Effect::Clear)).is_empty());
    assert!(d.logs("eou").is_empty(), "no reply to a cough while speaking");
}

#[tokio::test]
async fn every_play_is_whole_frames() {
    let mut d = Driver::start(default_guest(), call_config(400, 80, false)).await;
    d.ack_marks().await;
    d.audio(&silence(200)).await;
    d.audio(&fox()).await;
    d.audio(&silence(1000)).await;
    assert!(plays(&d).len() >= 2);
    for (_, len) in plays(&d) {
        assert_eq!(len % FRAME_BYTES, 0);
    }
}

// ---- snapshot / restore -------------------------------------------------------

#[tokio::test]
async fn a_restored_session_continues_exactly_where_the_snapshot_was_taken() {
    let first_half = concat(&[silence(300), tone(400, 300.0)]);
    let second_half = concat(&[tone(300, 300.0), silence(800)]);

    let mut whole = Driver::start(default_guest(), call_config(500, 80, false)).await;
    whole.ack_marks().await;
    whole.audio(&first_half).await;
    let snapshot = whole.session.snapshot().unwrap();
    whole.clear_effects();
    whole.audio(&second_half).await;

    let mut resumed = Driver {
        session: default_guest().restore(&snapshot).expect("restore"),
        frames: whole.frames - second_half.len() / 160,
        effects: Vec::new(),
    };
    resumed.audio(&second_half).await;
    assert!(!whole.effects.is_empty());
    assert_eq!(heard(&resumed.effects), heard(&whole.effects));
}

#[tokio::test]
async fn restore_refuses_what_it_does_not_understand() {
    let garbage = default_guest().restore(b"not a snapshot");
    assert!(matches!(garbage, Err(GuestError::Refused(_))));
    let future = default_guest().restore(br#"{"schema": 99}"#);
    match future {
        Err(GuestError::Refused(reason)) => assert!(reason.contains("99"), "{reason}"),
        _ => panic!("schema 99 must be refused"),
    }
}

// ---- with providers: the same effects, asked of the host -----------------------

#[tokio::test]
async fn with_providers_an_utterance_becomes_transcribe_think_speak_play() {
    let mut d = Driver::start(default_guest(), call_config(500, 80, true)).await;
    // The greeting is spoken by TTS, not played from the embedded audio.
    assert!(d.effects.iter().any(|(_, e)| matches!(e, Effect::Speak(_))));
    assert!(plays(&d).is_empty());
    let tts_24k = hotline_audio::tone(1000, 191.0, 24_000, 8000.0);
    d.send(Event::SpeechAudio(SpeechAudio { samples: tts_24k[..12_001].to_vec(), sample_rate: 24_000, done: false }))
        .await;
    d.send(Event::SpeechAudio(SpeechAudio { samples: tts_24k[12_001..].to_vec(), sample_rate: 24_000, done: true }))
        .await;
    let played: usize = plays(&d).iter().map(|(_, n)| n).sum();
    assert_eq!(played % FRAME_BYTES, 0);
    assert!((7_900..=8_300).contains(&played), "1 s at 24 kHz is ~8000 samples at 8 kHz, got {played}");
    d.ack_marks().await;

    d.audio(&silence(300)).await;
    d.clear_effects();
    d.audio(&tone(500, 300.0)).await;
    d.audio(&silence(600)).await;
    let utterance =
        d.effects.iter().find_map(|(_, e)| if let Effect::Transcribe(u) = e { Some(u.clone()) } else { None });
    let utterance = utterance.expect("transcribe after EoU");
    assert_eq!(utterance.sample_rate, 8000);
    assert!(utterance.samples.len() >= 4000, "linear PCM of the utterance");

    let fx = d.send(Event::Transcript(Transcript { text: "what time is it".into(), is_final: true })).await;
    let Some(Effect::Think(turns)) = fx.iter().find(|e| matches!(e, Effect::Think(_))) else {
        panic!("think after the final transcript: {fx:?}")
    };
    assert_eq!(turns.turns.first().map(|t| t.role), Some(Role::System));
    assert_eq!(turns.turns.last().map(|t| (t.role, t.text.as_str())), Some((Role::User, "what time is it")));

    let mut spoken = Vec::new();
    for delta in ["It is ", "noon. Anything", " else?"] {
        let done = delta == " else?";
        for e in d.send(Event::ReplyText(ReplyText { delta: delta.into(), done })).await {
            if let Effect::Speak(text) = e {
                spoken.push(text);
            }
        }
    }
    assert_eq!(spoken, ["It is noon.", "Anything else?"], "one speak per sentence, as soon as it is complete");
}

/// A call with providers whose greeting has been spoken and heard, then one
/// utterance that ended (the guest asked for its transcript).
async fn ai_call_after_one_utterance() -> Driver {
    let mut d = Driver::start(default_guest(), call_config(500, 80, true)).await;
    d.send(speech(8000, true)).await;
    d.ack_marks().await;
    d.audio(&silence(300)).await;
    d.audio(&tone(500, 300.0)).await;
    d.audio(&silence(600)).await;
    assert!(d.effects.iter().any(|(_, e)| matches!(e, Effect::Transcribe(_))), "EoU asks for a transcript");
    d
}

fn speech(samples: u32, done: bool) -> Event {
    let pcm = hotline_audio::tone(samples / 8, 382.0, 8000, 6000.0);
    Event::SpeechAudio(SpeechAudio { samples: pcm, sample_rate: 8000, done })
}

fn states(d: &Driver) -> Vec<String> {
    d.logs("state").iter().map(|(_, l)| field(l, "to").to_string()).collect()
}

#[tokio::test]
async fn a_provider_error_apologizes_then_listens() {
    let mut d = ai_call_after_one_utterance().await;
    d.clear_effects();
    let fx = d.send(Event::ProviderError(ProviderError { kind: ProviderKind::Stt, message: "timeout".into() })).await;
    assert!(fx.iter().any(|e| matches!(e, Effect::Play(a) if a.len() > 8000)), "the apology plays: {fx:?}");
    assert!(fx.contains(&Effect::Mark("t1-apology".into())), "{fx:?}");
    assert!(fx.contains(&Effect::Cancel), "the rest of the turn's work is cancelled");
    assert_eq!(states(&d).last().map(String::as_str), Some("speaking"));
    d.ack_marks().await;
    assert_eq!(states(&d).last().map(String::as_str), Some("listening"), "after the apology, the call listens");
    // And the next utterance is a normal turn again.
    d.clear_effects();
    d.audio(&tone(500, 300.0)).await;
    d.audio(&silence(600)).await;
    assert!(d.effects.iter().any(|(_, e)| matches!(e, Effect::Transcribe(_))));
}

#[tokio::test]
async fn a_slow_turn_gets_the_filler_which_real_audio_cuts() {
    let mut d = ai_call_after_one_utterance().await;
    let timer = d.effects.iter().find_map(|(_, e)| if let Effect::SetTimer(t) = e { Some(*t) } else { None });
    let timer = timer.expect("EoU arms the fallback timer");
    assert_eq!(timer.ms, 3000, "HOTLINE_FALLBACK_MS default");
    d.send(Event::Transcript(Transcript { text: "hello".into(), is_final: true })).await;
    d.clear_effects();
    let fx = d.send(Event::Timer(timer.id)).await;
    assert!(fx.iter().any(|e| matches!(e, Effect::Play(_))), "filler plays: {fx:?}");
    assert_eq!(d.logs("fallback_fired").len(), 1);
    assert!(d.send(Event::Timer(timer.id)).await.iter().all(|e| !matches!(e, Effect::Play(_))), "only once a turn");
    d.send(Event::ReplyText(ReplyText { delta: "Hi there. ".into(), done: false })).await;
    d.clear_effects();
    let fx = d.send(speech(1600, false)).await;
    let clear = fx.iter().position(|e| *e == Effect::Clear).expect("the filler is cut");
    let play = fx.iter().position(|e| matches!(e, Effect::Play(_))).expect("real audio plays");
    assert!(clear < play, "cut first, then the reply: {fx:?}");
    assert_eq!(d.logs("fallback_cleared").len(), 1);
    assert_eq!(field(&d.logs("fallback_cleared")[0].1, "cut"), "true");
    // The filler's mark comes back (dropped by the clear) and is not taken
    // for a piece of the reply.
    d.send(Event::MarkPlayed("t1-filler".into())).await;
    assert_eq!(d.logs("mark_dropped").len(), 1);
}

#[tokio::test]
async fn a_fast_turn_disarms_the_filler() {
    let mut d = ai_call_after_one_utterance().await;
    d.send(Event::Transcript(Transcript { text: "hello".into(), is_final: true })).await;
    d.send(Event::ReplyText(ReplyText { delta: "Hi. ".into(), done: false })).await;
    let fx = d.send(speech(800, false)).await;
    assert!(fx.contains(&Effect::CancelTimer(1)), "{fx:?}");
    assert!(!fx.contains(&Effect::Clear));
    assert!(d.send(Event::Timer(1)).await.iter().all(|e| !matches!(e, Effect::Play(_))), "a late timer does nothing");
}

#[tokio::test]
async fn barge_in_cancels_the_work_and_keeps_only_what_was_heard() {
    let mut d = ai_call_after_one_utterance().await;
    d.send(Event::Transcript(Transcript { text: "tell me a story".into(), is_final: true })).await;
    d.send(Event::ReplyText(ReplyText { delta: "Once upon a time. There was a fox. It ".into(), done: false })).await;
    assert_eq!(d.effects.iter().filter(|(_, e)| matches!(e, Effect::Speak(_))).count(), 3, "greeting + 2 sentences");
    d.send(speech(4000, true)).await; // "Once upon a time." complete: t1-s0
    d.send(speech(4000, false)).await; // half of "There was a fox."
    d.send(Event::MarkPlayed("t1-s0".into())).await;
    d.clear_effects();
    d.audio(&tone(300, 300.0)).await;
    assert!(d.effects.iter().any(|(_, e)| *e == Effect::Clear), "barge-in clears");
    assert!(d.effects.iter().any(|(_, e)| *e == Effect::Cancel), "and cancels the LLM and TTS still running");
    // A late chunk of the cancelled turn is not played.
    d.clear_effects();
    d.send(speech(4000, true)).await;
    assert!(d.effects.iter().all(|(_, e)| !matches!(e, Effect::Play(_) | Effect::Mark(_))), "{:?}", d.effects);
    // The barge-in utterance's turn: the history has the heard sentence only.
    d.audio(&silence(600)).await;
    let fx = d.send(Event::Transcript(Transcript { text: "wait".into(), is_final: true })).await;
    let Some(Effect::Think(turns)) = fx.iter().find(|e| matches!(e, Effect::Think(_))) else { panic!("{fx:?}") };
    let assistant: Vec<&str> =
        turns.turns.iter().filter(|t| t.role == Role::Assistant).map(|t| t.text.as_str()).collect();
    assert_eq!(assistant, ["Hello! This is hotline. How can I help?", "Once upon a time."]);
}

#[tokio::test]
async fn speech_while_thinking_cancels_without_a_clear() {
    let mut d = ai_call_after_one_utterance().await;
    d.send(Event::Transcript(Transcript { text: "hello".into(), is_final: true })).await;
    d.clear_effects();
    d.audio(&tone(300, 300.0)).await;
    assert_eq!(d.logs("think_abandoned").len(), 1);
    assert!(d.effects.iter().any(|(_, e)| *e == Effect::Cancel));
    assert!(!d.effects.iter().any(|(_, e)| *e == Effect::Clear), "nothing was playing");
}

// ---- tools ----------------------------------------------------------------------

/// An AI call whose caller asked something, with the `think` it made
/// (the effects so far cleared).
async fn thinking_call(transfer_to: Option<&str>) -> (Driver, Thought) {
    let config = wit::Config { transfer_to: transfer_to.map(str::to_string), ..call_config(500, 80, true) };
    let mut d = Driver::start(default_guest(), config).await;
    d.send(speech(8000, true)).await;
    d.ack_marks().await;
    d.audio(&concat(&[silence(300), tone(500, 300.0), silence(600)])).await;
    d.send(Event::Transcript(Transcript { text: "bye now".into(), is_final: true })).await;
    let think = last_think(&d);
    d.clear_effects();
    (d, think)
}

fn call(id: &str, name: &str) -> ToolCall {
    ToolCall { id: id.into(), name: name.into(), arguments: "{}".into() }
}

async fn reply_done(d: &mut Driver) -> Vec<Effect> {
    d.send(Event::ReplyText(ReplyText { delta: String::new(), done: true })).await
}

fn last_think(d: &Driver) -> Thought {
    d.effects
        .iter()
        .rev()
        .find_map(|(_, e)| if let Effect::Think(t) = e { Some(t.clone()) } else { None })
        .expect("a think")
}

fn tool_names(t: &Thought) -> Vec<String> {
    t.tools.iter().map(|t| t.name.clone()).collect()
}

#[tokio::test]
async fn end_call_is_offered_and_transfer_to_human_only_with_a_target() {
    let (_, think) = thinking_call(None).await;
    assert_eq!(tool_names(&think), ["end_call"]);
    let schema: serde_json::Value = serde_json::from_str(&think.tools[0].parameters).unwrap();
    assert_eq!(schema["type"], "object");
    let (_, think) = thinking_call(Some("+15550100099")).await;
    assert_eq!(tool_names(&think), ["end_call", "transfer_to_human"]);
}

#[tokio::test]
async fn end_call_says_goodbye_and_hangs_up_once_it_is_heard() {
    let (mut d, _) = thinking_call(None).await;
    d.send(Event::ToolCalls(vec![call("c1", "end_call")])).await;
    let fx = reply_done(&mut d).await;
    assert!(fx.contains(&Effect::Speak("Goodbye.".into())), "{fx:?}");
    assert!(!fx.contains(&Effect::Hangup), "not before the goodbye is heard");
    d.send(speech(4000, true)).await;
    assert_eq!(d.marks(), ["t1-s0"]);
    // The caller talking over the goodbye does not stop it.
    d.clear_effects();
    d.audio(&tone(300, 300.0)).await;
    assert!(!d.effects.iter().any(|(_, e)| *e == Effect::Clear || *e == Effect::Hangup), "{:?}", d.effects);
    let fx = d.send(Event::MarkPlayed("t1-s0".into())).await;
    assert!(fx.contains(&Effect::Hangup), "hang-up once the goodbye is heard: {fx:?}");
}

#[tokio::test]
async fn end_call_with_words_of_its_own_says_only_those() {
    let (mut d, _) = thinking_call(None).await;
    d.send(Event::ReplyText(ReplyText { delta: "Thanks for calling, bye!".into(), done: false })).await;
    d.send(Event::ToolCalls(vec![call("c1", "end_call")])).await;
    reply_done(&mut d).await;
    let speaks: Vec<&Effect> = d.effects.iter().map(|(_, e)| e).filter(|e| matches!(e, Effect::Speak(_))).collect();
    assert_eq!(speaks, [&Effect::Speak("Thanks for calling, bye!".into())]);
    let fx = d.send(speech(4000, true)).await;
    assert!(!fx.contains(&Effect::Hangup));
    let fx = d.send(Event::MarkPlayed("t1-s0".into())).await;
    assert!(fx.contains(&Effect::Hangup), "{fx:?}");
}

#[tokio::test]
async fn transfer_to_human_says_one_moment_then_transfers() {
    let (mut d, _) = thinking_call(Some("sip:desk@example.com")).await;
    d.send(Event::ToolCalls(vec![call("c1", "transfer_to_human")])).await;
    let fx = reply_done(&mut d).await;
    assert!(fx.contains(&Effect::Speak("One moment, I'm connecting you.".into())), "{fx:?}");
    assert!(!fx.iter().any(|e| matches!(e, Effect::Transfer(_))));
    d.send(speech(4000, true)).await;
    let fx = d.send(Event::MarkPlayed("t1-s0".into())).await;
    let transfer = Transfer { target: "sip:desk@example.com".into(), caller_id: None };
    assert!(fx.contains(&Effect::Transfer(transfer)), "{fx:?}");
}

#[tokio::test]
async fn transfer_to_human_without_a_target_is_an_unknown_tool() {
    let (mut d, _) = thinking_call(None).await;
    d.send(Event::ToolCalls(vec![call("c1", "transfer_to_human")])).await;
    reply_done(&mut d).await;
    assert!(!d.effects.iter().any(|(_, e)| matches!(e, Effect::Speak(_) | Effect::Transfer(_))));
    assert_eq!(d.logs("tool_unknown").len(), 1);
}

#[tokio::test]
async fn an_unknown_tool_gets_an_error_result_and_the_llm_goes_on() {
    let (mut d, _) = thinking_call(None).await;
    d.send(Event::ReplyText(ReplyText { delta: "Let me see. ".into(), done: false })).await;
    d.send(Event::ToolCalls(vec![call("c1", "weather"), call("c2", "stock")])).await;
    reply_done(&mut d).await;
    let think = last_think(&d);
    let n = think.turns.len();
    let tail = &think.turns[n - 3..];
    assert_eq!(tail[0].role, Role::Assistant);
    assert_eq!(tail[0].tool_calls, [call("c1", "weather"), call("c2", "stock")]);
    for (turn, id) in tail[1..].iter().zip(["c1", "c2"]) {
        assert_eq!((turn.role, turn.tool_call_id.as_deref()), (Role::Tool, Some(id)));
        assert_eq!(turn.text, r#"{"error":"unknown tool"}"#);
    }
    // The sentence said before the calls is still playing: the reply goes
    // on with the next answer, and its heard text joins the history.
    d.send(speech(4000, true)).await;
    d.send(Event::MarkPlayed("t1-s0".into())).await;
    assert!(d.logs("reply_done").is_empty(), "the reply is not over yet");
    d.send(Event::ReplyText(ReplyText { delta: "Sorry, I cannot.".into(), done: true })).await;
    d.send(speech(4000, true)).await;
    d.send(Event::MarkPlayed("t1-s1".into())).await;
    assert_eq!(d.logs("reply_done").len(), 1);
    d.audio(&concat(&[tone(500, 300.0), silence(600)])).await;
    d.send(Event::Transcript(Transcript { text: "ok".into(), is_final: true })).await;
    let assistant: Vec<String> = last_think(&d)
        .turns
        .iter()
        .filter(|t| t.role == Role::Assistant && t.tool_calls.is_empty())
        .map(|t| t.text.clone())
        .collect();
    assert_eq!(assistant.last().map(String::as_str), Some("Let me see. Sorry, I cannot."));
}

#[tokio::test]
async fn tool_round_trips_are_capped_per_caller_turn() {
    let (mut d, _) = thinking_call(None).await;
    for round in 0..4 {
        d.clear_effects();
        d.send(Event::ToolCalls(vec![call(&format!("c{round}"), "weather")])).await;
        reply_done(&mut d).await;
        assert_eq!(d.at(|e| matches!(e, Effect::Think(_))).len(), 1, "round {round} asks again");
    }
    d.clear_effects();
    d.send(Event::ToolCalls(vec![call("c9", "weather")])).await;
    let fx = reply_done(&mut d).await;
    assert!(!fx.iter().any(|e| matches!(e, Effect::Think(_))), "{fx:?}");
    assert_eq!(d.logs("tool_rounds_exceeded").len(), 1);
    assert!(fx.contains(&Effect::Mark("t1-apology".into())), "the caller hears the apology: {fx:?}");
}

#[tokio::test]
async fn a_pending_end_and_tool_turns_survive_a_snapshot() {
    let (mut d, _) = thinking_call(None).await;
    let plain: serde_json::Value = serde_json::from_slice(&d.session.snapshot().unwrap()).unwrap();
    assert_eq!(plain["schema"], 4, "nothing schema 4 cannot say: an older guest can take the call");
    d.send(Event::ToolCalls(vec![call("c1", "weather")])).await;
    reply_done(&mut d).await;
    d.send(Event::ToolCalls(vec![call("c2", "end_call")])).await;
    reply_done(&mut d).await;
    d.send(speech(4000, true)).await;
    let bytes = d.session.snapshot().unwrap();
    let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(json["schema"], 5);
    let mut r = Driver { session: default_guest().restore(&bytes).unwrap(), frames: d.frames, effects: Vec::new() };
    let fx = r.send(Event::MarkPlayed("t1-s0".into())).await;
    assert!(fx.contains(&Effect::Hangup), "the restored call still ends after its goodbye: {fx:?}");
    let again = r.session.snapshot().unwrap();
    let json: serde_json::Value = serde_json::from_slice(&again).unwrap();
    let turns = json["ai"]["conversation"].as_array().unwrap();
    assert!(turns.iter().any(|t| t["tool_call_id"] == "c1"), "{json}");
}

// ---- a trapping guest -----------------------------------------------------------

#[tokio::test]
async fn a_panicking_guest_traps_with_its_message_and_only_its_session_dies() {
    let mut doomed = Driver::start(probe_guest(), call_config(500, 80, false)).await;
    let mut healthy = Driver::start(probe_guest(), call_config(500, 80, false)).await;
    let err = doomed.session.handle(&Event::Dtmf('9')).unwrap_err();
    match &err {
        GuestError::Trap { stderr, .. } => assert!(stderr.contains("panic requested by DTMF 9"), "{err}"),
        other => panic!("expected a trap, got {other}"),
    }
    healthy.ack_marks().await;
    healthy.audio(&concat(&[silence(300), tone(300, 300.0), silence(600)])).await;
    assert_eq!(healthy.logs("eou").len(), 1);
}

#[tokio::test]
async fn a_looping_guest_is_stopped_by_the_deadline() {
    let mut d = Driver::start(probe_guest(), call_config(500, 80, false)).await;
    let err = d.session.handle(&Event::Dtmf('8')).unwrap_err();
    assert!(matches!(err, GuestError::Deadline(_)), "{err}");
}

/// A sandbox's epoch does not tick while no instance is alive: its first
/// instance must wake the ticker, or a looping guest would run on unbounded.
#[test]
fn the_first_instance_of_an_idle_sandbox_is_held_to_the_deadline() {
    let sandbox = Sandbox::new(Config::default().sandbox).expect("sandbox");
    let guest = sandbox.load(&std::fs::read(PROBE_GUEST).unwrap()).expect("probe guest loads");
    // Idle a while: the ticker has gone to sleep.
    std::thread::sleep(Duration::from_millis(50));
    let (done, result) = std::sync::mpsc::channel();
    // Its own thread: if the guest is never stopped, the test fails rather
    // than waits on it.
    std::thread::spawn(move || {
        let mut session = guest.session().expect("session");
        let _ = done.send(session.handle(&Event::Dtmf('8')));
    });
    let result = result.recv_timeout(Duration::from_secs(20)).expect("the looping guest was never stopped");
    let err = result.unwrap_err();
    assert!(matches!(err, GuestError::Deadline(_)), "{err}");
}

#[tokio::test]
async fn a_memory_bomb_hits_the_cap() {
    let mut d = Driver::start(probe_guest(), call_config(500, 80, false)).await;
    let err = d.session.handle(&Event::Dtmf('6')).unwrap_err();
    assert!(matches!(err, GuestError::Trap { .. }), "{err}");
}

// ---- the phone call itself: answering machines, a transfer nobody took -----

fn voicemail_config(ai: bool, message: Option<&str>) -> wit::Config {
    wit::Config { voicemail_message: message.map(str::to_string), ..call_config(500, 80, ai) }
}

#[tokio::test]
async fn an_answering_machine_hears_the_voicemail_after_the_beep_then_the_hang_up() {
    let mut d =
        Driver::start(default_guest(), voicemail_config(true, Some("Hi, this is hotline. Call us back."))).await;
    d.send(speech(8000, true)).await; // the greeting, playing to a machine
    let fx = d.send(Event::AnsweredBy(wit::AnsweredBy::MachineStart)).await;
    assert!(fx.contains(&Effect::Clear), "no talking over the machine's greeting: {fx:?}");
    assert!(!fx.contains(&Effect::Hangup));
    d.ack_marks().await; // Twilio echoes the marks a clear dropped
    let fx = d.send(Event::AnsweredBy(wit::AnsweredBy::MachineEndBeep)).await;
    assert!(fx.contains(&Effect::Speak("Hi, this is hotline. Call us back.".into())), "{fx:?}");
    assert!(!fx.contains(&Effect::Hangup), "not before the message is heard");
    d.send(speech(4000, true)).await;
    let mark = d.marks().last().cloned().expect("the message is played with a mark");
    let fx = d.send(Event::MarkPlayed(mark)).await;
    assert!(fx.contains(&Effect::Hangup), "{fx:?}");
    assert_eq!(d.logs("voicemail").len(), 1);
}

#[tokio::test]
async fn without_a_message_or_a_voice_a_machine_or_a_fax_is_hung_up_on_and_people_are_not() {
    for (config, verdict) in [
        (voicemail_config(true, None), wit::AnsweredBy::MachineEndSilence),
        (voicemail_config(false, Some("unspoken: no text-to-speech")), wit::AnsweredBy::MachineEndBeep),
        (voicemail_config(true, Some("not for a fax")), wit::AnsweredBy::Fax),
    ] {
        let mut d = Driver::start(default_guest(), config).await;
        d.ack_marks().await;
        let fx = d.send(Event::AnsweredBy(verdict)).await;
        assert!(fx.contains(&Effect::Hangup), "{verdict:?}: {fx:?}");
        assert!(!fx.iter().any(|e| matches!(e, Effect::Speak(_))), "{fx:?}");
    }
    let mut d = Driver::start(default_guest(), voicemail_config(true, Some("x"))).await;
    d.ack_marks().await;
    for verdict in [wit::AnsweredBy::Human, wit::AnsweredBy::Unknown] {
        let fx = d.send(Event::AnsweredBy(verdict)).await;
        assert!(!fx.iter().any(|e| matches!(e, Effect::Hangup | Effect::Clear | Effect::Speak(_))), "{fx:?}");
    }
}

#[tokio::test]
async fn a_caller_back_from_a_transfer_nobody_took_is_told_so_and_the_call_goes_on() {
    let (mut d, _) = thinking_call(Some("+15550100099")).await;
    let failed = wit::TransferFailed { target: "+15550100099".into(), status: wit::DialStatus::NoAnswer };
    let fx = d.send(Event::TransferFailed(failed.clone())).await;
    let said = nobody_answered();
    assert!(fx.contains(&Effect::Speak(said)), "{fx:?}");
    assert!(!fx.contains(&Effect::Hangup));
    assert_eq!(field(&d.logs("transfer_failed")[0].1, "status"), "no-answer");

    // The echo agent has no voice to say it with: noted, nothing else.
    let mut d = Driver::start(default_guest(), call_config(500, 80, false)).await;
    d.ack_marks().await;
    let fx = d.send(Event::TransferFailed(failed)).await;
    assert!(!fx.iter().any(|e| matches!(e, Effect::Speak(_) | Effect::Play(_) | Effect::Hangup)), "{fx:?}");
}

/// The default guest's words for a caller back from a transfer (its
/// `machine/control.rs`).
fn nobody_answered() -> String {
    "I'm sorry, nobody could take your call right now. Is there anything else I can help you with?".into()
}
