//! Whole calls against a real server over real sockets, driven by the
//! simulator exactly as Twilio would drive them. The table below is the
//! data: each scenario is caller audio, DTMF, and what must be observed.

use hotline::sim::{CallOptions, CallReport, Moment, place_call};

use crate::support::*;

#[derive(Clone, Copy, PartialEq)]
enum GuestKind {
    Default,
    Probe,
}

#[derive(Debug, Clone, Copy)]
enum Expect {
    SubprotocolEchoed(bool),
    /// The greeting was played to the end and its mark came back.
    GreetingHeard,
    /// The reply after the first EoU is the caller's own audio.
    EchoOfUtterance,
    /// Replies that followed a caller EoU.
    Replies(usize),
    NoClear,
    /// A `clear` arrived within this many ms (media time) of speech onset.
    ClearWithin(f64),
    MarkReceived(&'static str),
    /// The server closed with this code and reason.
    Closed(u16, &'static str),
}

struct Scenario {
    name: &'static str,
    guest: GuestKind,
    audio: fn() -> Vec<i16>,
    speed: f64,
    subprotocol: bool,
    dtmf: &'static [(u64, char)],
    expect: &'static [Expect],
}

/// The greeting is ~4.7 s; callers who wait for it stay silent this long.
const AFTER_GREETING_MS: u32 = 5200;

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "polite caller: greeting, one sentence, echo",
        guest: GuestKind::Default,
        audio: || concat(&[silence(AFTER_GREETING_MS), fox()]),
        speed: 8.0,
        subprotocol: true,
        dtmf: &[],
        expect: &[
            Expect::SubprotocolEchoed(true),
            Expect::GreetingHeard,
            Expect::NoClear,
            Expect::EchoOfUtterance,
            Expect::Replies(1),
            Expect::MarkReceived("t1-s0"),
            Expect::Closed(1000, "stream stopped"),
        ],
    },
    Scenario {
        name: "no subprotocol offered: none echoed, call works",
        guest: GuestKind::Default,
        audio: || concat(&[silence(AFTER_GREETING_MS), tone(600, 300.0), silence(1000)]),
        speed: 8.0,
        subprotocol: false,
        dtmf: &[],
        expect: &[Expect::SubprotocolEchoed(false), Expect::Replies(1), Expect::Closed(1000, "stream stopped")],
    },
    Scenario {
        name: "barge-in over the greeting",
        guest: GuestKind::Default,
        audio: || concat(&[silence(400), fox()]),
        speed: 1.0,
        subprotocol: true,
        dtmf: &[],
        expect: &[Expect::ClearWithin(200.0), Expect::EchoOfUtterance, Expect::Closed(1000, "stream stopped")],
    },
    Scenario {
        name: "two turns: marks acknowledged, so the second is no barge-in",
        guest: GuestKind::Default,
        audio: || {
            concat(&[
                silence(AFTER_GREETING_MS),
                tone(600, 300.0),
                // Room for the ~0.9 s echo to play and its marks to return,
                // even when a loaded machine delivers it late.
                silence(4000),
                tone(600, 400.0),
                silence(1000),
            ])
        },
        speed: 6.0,
        subprotocol: true,
        dtmf: &[],
        expect: &[Expect::Replies(2), Expect::NoClear, Expect::MarkReceived("t2-s0")],
    },
    Scenario {
        name: "guest timer fires through the host",
        guest: GuestKind::Probe,
        audio: || silence(1500),
        speed: 4.0,
        subprotocol: true,
        dtmf: &[(300, '7')],
        expect: &[Expect::MarkReceived("timer-7"), Expect::Closed(1000, "stream stopped")],
    },
    Scenario {
        name: "guest hangs up",
        guest: GuestKind::Probe,
        audio: || silence(3000),
        speed: 4.0,
        subprotocol: true,
        dtmf: &[(400, '0')],
        expect: &[Expect::Closed(1000, "call ended by agent")],
    },
];

fn check(report: &CallReport, expect: Expect) -> Result<(), String> {
    let eous = report.at(|m| matches!(m, Moment::CallerEou));
    let replies = hotline::sim::reply_latencies(report);
    match expect {
        Expect::SubprotocolEchoed(want) if report.subprotocol_echoed == want => Ok(()),
        Expect::SubprotocolEchoed(want) => {
            Err(format!("subprotocol echoed: {}, want {want}", report.subprotocol_echoed))
        }
        Expect::GreetingHeard => {
            let echoed = report.first(|m| *m == Moment::MarkEchoed("greeting".into()));
            let clear = report.first(|m| *m == Moment::Clear);
            match (echoed, clear) {
                (Some(at), None) if at > 3000.0 => Ok(()),
                other => Err(format!("greeting not heard in full: (echo, clear) = {other:?}")),
            }
        }
        Expect::EchoOfUtterance => echo_is_contiguous(report, EouPick::First),
        Expect::Replies(n) if replies.len() == n && eous.len() == n => Ok(()),
        Expect::Replies(n) => Err(format!("{} EoUs and {} replies, want {n}", eous.len(), replies.len())),
        Expect::NoClear => match report.first(|m| *m == Moment::Clear) {
            None => Ok(()),
            Some(at) => Err(format!("unexpected clear at {at} ms")),
        },
        Expect::ClearWithin(limit) => {
            let onset = report.first(|m| *m == Moment::CallerSpeechStart).ok_or("no caller speech")?;
            let clear = report.first(|m| *m == Moment::Clear).ok_or("no clear")?;
            let delay = clear - onset;
            if (0.0..=limit).contains(&delay) { Ok(()) } else { Err(format!("clear {delay} ms after onset")) }
        }
        Expect::MarkReceived(name) => match report.first(|m| *m == Moment::MarkReceived(name.into())) {
            Some(_) => Ok(()),
            None => Err(format!("mark {name} never arrived")),
        },
        Expect::Closed(code, reason) => match &report.close {
            Some((c, r)) if *c == code && r == reason => Ok(()),
            other => Err(format!("close {other:?}, want ({code}, {reason:?})")),
        },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_scenarios() {
    let default = start_server(|_| {}).await;
    let probe = start_server(|c| c.guest_path = Some(PROBE_GUEST.into())).await;
    let mut tasks = Vec::new();
    for (i, s) in SCENARIOS.iter().enumerate() {
        let server = if s.guest == GuestKind::Default { &default.base } else { &probe.base };
        let opts = CallOptions {
            server: server.clone(),
            audio: (s.audio)(),
            speed: s.speed,
            subprotocol: s.subprotocol,
            dtmf: s.dtmf.to_vec(),
            call_sid: format!("CAscenario{i:024}"),
            idle_ms: 1200,
            ..CallOptions::default()
        };
        tasks.push((s, tokio::spawn(async move { place_call(&opts).await })));
    }
    let mut failures = Vec::new();
    for (s, task) in tasks {
        let report = match task.await.unwrap() {
            Ok(r) => r,
            Err(e) => {
                failures.push(format!("{}: call failed: {e:#}", s.name));
                continue;
            }
        };
        for &e in s.expect {
            if let Err(why) = check(&report, e) {
                failures.push(format!("{}: {e:?}: {why}", s.name));
            }
        }
    }
    assert!(failures.is_empty(), "scenario failures:\n{}", failures.join("\n"));
}

/// A caller who speaks the moment the call connects ("Yes.", over quiet
/// line noise; then the load generator's 1 s tone, which is steady until
/// it stops) is heard and answered, through the real binary: the greeting
/// is cleared and the echo is their first utterance, from its first frame.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_words_of_a_call_are_answered_by_the_real_binary() {
    let fixture = |name: &str| -> Vec<i16> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("guest/audio/testdata").join(name);
        std::fs::read(path).unwrap().iter().map(|&b| hotline_audio::ulaw::decode(b)).collect()
    };
    let noise = fixture("noise-white.ulaw");
    let line = |ms: usize| -> Vec<i32> { (0..ms * 8).map(|i| noise[i % noise.len()] as i32 / 30).collect() };
    let mut yes = line(2500);
    for (s, v) in yes.iter_mut().zip(fixture("speech-yes.ulaw")) {
        *s += v as i32;
    }
    let mut burst = line(2500);
    for (s, v) in burst.iter_mut().zip(tone(1000, 440.0)) {
        *s += v as i32;
    }
    let child = crate::shutdown::spawn_hotline(&[]).await;
    let calls: Vec<_> = [yes, burst]
        .into_iter()
        .enumerate()
        .map(|(i, audio)| {
            let opts = CallOptions {
                server: child.base.clone(),
                audio: audio.into_iter().map(|s| s.clamp(-32768, 32767) as i16).collect(),
                speed: 2.0,
                call_sid: format!("CAfirstword{i:023}"),
                idle_ms: 1200,
                ..CallOptions::default()
            };
            tokio::spawn(async move { place_call(&opts).await })
        })
        .collect();
    for (name, call) in ["a word", "a steady sound"].into_iter().zip(calls) {
        let report = call.await.unwrap().unwrap_or_else(|e| panic!("{name}: call failed: {e:#}"));
        let onset = report.first(|m| *m == Moment::CallerSpeechStart).unwrap_or_else(|| panic!("{name}: not heard"));
        assert!(onset <= 200.0, "{name}: speech from {onset} ms, spoken from 0");
        assert!(report.first(|m| *m == Moment::Clear).is_some(), "{name}: the greeting was not cleared");
        let eou = *report.at(|m| *m == Moment::CallerEou).first().unwrap_or_else(|| panic!("{name}: no EoU"));
        let replies = hotline::sim::reply_latencies(&report);
        assert_eq!(replies.len(), 1, "{name}: one utterance, one reply: {:?}", report.timeline);
        let start = report.at(|m| *m == Moment::ReplyStart).into_iter().find(|&t| t >= eou - 20.0).unwrap();
        let end = report.at(|m| *m == Moment::ReplyEnd).into_iter().find(|&t| t > start).expect("reply ended");
        let echo = &report.agent[(start * 8.0) as usize..(end * 8.0) as usize];
        assert!(echo.len() >= 2400, "{name}: a {}-byte echo", echo.len());
        assert_eq!(&echo[..1600], &report.caller[..1600], "{name}: the echo begins with the call's first frames");
        assert_eq!(report.close, Some((1000, "stream stopped".into())), "{name}");
    }
}
