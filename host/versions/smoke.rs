//! The smoke scenario every new guest must survive before it takes calls:
//! TwiML that parses, and a session that lives through a start, a few
//! seconds of silence and speech, its own marks coming back, a snapshot
//! (which migration relies on) and the end of the call.

use hotline_audio::frame::ulaw_frames;

use crate::guest::{CallMode, Effect, Event, Guest, Media, Providers, Started, Webhook};

pub async fn run(guest: &Guest) -> Result<(), String> {
    let webhook = Webhook {
        params: vec![("CallSid".into(), "CAsmoke".into()), ("From".into(), "+15550100000".into())],
        base_url: "https://smoke.invalid".into(),
        mode: CallMode::Stream,
    };
    let twiml = guest
        .incoming_call(&webhook)
        .await
        .map_err(|e| format!("incoming-call: {e}"))?
        .map_err(|e| format!("incoming-call returned {e:?}"))?;
    roxmltree::Document::parse(&twiml).map_err(|e| format!("incoming-call TwiML does not parse: {e}"))?;

    let mut session = guest.session().await.map_err(|e| format!("session: {e}"))?;
    let mut marks = Vec::new();
    let mut step = |effects: Vec<Effect>| {
        marks.extend(effects.into_iter().filter_map(|e| if let Effect::Mark(m) = e { Some(m) } else { None }));
    };
    let started = Event::Started(Started {
        stream_sid: "MZsmoke".into(),
        call_sid: "CAsmoke".into(),
        custom_parameters: vec![("call_sid".into(), "CAsmoke".into())],
        config: crate::config::Config::default().call_config(Providers { stt: false, llm: false, tts: false }),
    });
    step(session.handle(&started).await.map_err(|e| format!("started: {e}"))?);
    for (i, frame) in ulaw_frames(&caller_audio()).enumerate() {
        let media = Event::Media(Media { payload: frame, timestamp_ms: i as u64 * 20 });
        step(session.handle(&media).await.map_err(|e| format!("media frame {i}: {e}"))?);
    }
    for mark in std::mem::take(&mut marks) {
        session.handle(&Event::MarkPlayed(mark.clone())).await.map_err(|e| format!("mark-played {mark}: {e}"))?;
    }
    session.snapshot().await.map_err(|e| format!("snapshot: {e}"))?;
    session.handle(&Event::Stopped).await.map_err(|e| format!("stopped: {e}"))?;
    Ok(())
}

/// 1 s of silence, 1 s of a voice-band tone, 1.5 s of silence.
fn caller_audio() -> Vec<i16> {
    let tone = (0..8000).map(|i| (8000.0 * (i as f64 * 2.0 * std::f64::consts::PI * 300.0 / 8000.0).sin()) as i16);
    std::iter::repeat_n(0, 8000).chain(tone).chain(std::iter::repeat_n(0, 12_000)).collect()
}
