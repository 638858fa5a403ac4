//! The doctor's simulated call, on the same stream Twilio would open: the
//! simulator (`sim::play`) plays it in media time, and this file reads its
//! timeline into checks. The caller waits for the agent's first audio,
//! talks over it (real speech: the host's apology prompt, so an AI agent's
//! speech-to-text hears words), stops, and listens; the call ends after
//! the answer and the server's first ping.

use std::time::Duration;

use hotline_audio::ulaw;

use super::remote::{Probe, chain, stream_urls};
use super::{Check, Report};
use crate::sim::stream::{self, Stream};
use crate::sim::twiml::StreamTarget;
use crate::sim::{CallOptions, CallReport, Moment, play, reply_latencies};

/// The caller starts talking this long into the agent's first audio.
const TALK_OVER_MS: u64 = 300;
/// How much of the prompt the caller says: a short sentence.
const UTTERANCE_MS: usize = 1500;
/// Once the audio is over, the call lasts at most this long: enough for an
/// AI agent's answer and for the first ping at the default
/// `HOTLINE_KEEPALIVE_SECS` (10 s).
const MAX_TAIL_MS: u64 = 9500;
const CHECKS: [&str; 6] = ["call_greeting", "call_barge_in", "call_answer", "call_marks", "call_ping", "call_close"];

pub(super) async fn run(p: &Probe, target: Option<StreamTarget>, offer: bool, ai: bool, report: &mut Report) {
    let skip_all = |report: &mut Report, why: &str| {
        for check in CHECKS {
            report.push(Check::skip(check, why.to_string()));
        }
    };
    if p.unsigned_refused() {
        return skip_all(report, "needs --auth-token (signatures are on)");
    }
    let Some(target) = target else { return skip_all(report, "no stream: the webhook gave none") };
    let (ws_url, named) = stream_urls(p, Some(&target));
    let opened = async {
        let request = stream::upgrade_request(&ws_url, &named, offer, p.auth_token.as_ref())?;
        let (mut ws, _) = stream::connect(request, Some(p.tls.clone())).await?;
        let stream_sid = stream::start(&mut ws, &p.call_sid, &target).await?;
        anyhow::Ok(Stream { ws, twiml: String::new(), stream_sid, subprotocol_echoed: offer })
    };
    let stream = match tokio::time::timeout(Duration::from_secs(10), opened).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(e)) => return skip_all(report, &format!("the stream did not open: {}", chain(e.as_ref()))),
        Err(_) => return skip_all(report, "the stream did not open in 10 s"),
    };
    let speech: Vec<i16> = crate::media::APOLOGY.iter().take(UTTERANCE_MS * 8).map(|&b| ulaw::decode(b)).collect();
    let opts = CallOptions {
        server: p.base.clone(),
        audio: speech,
        call_sid: p.call_sid.clone(),
        idle_ms: 1000,
        max_tail_ms: MAX_TAIL_MS,
        talk_over_agent_ms: Some(TALK_OVER_MS),
        wait_for_ping: true,
        ..CallOptions::default()
    };
    match play(stream, &opts).await {
        Ok(call) => read(&call, offer, ai, report),
        Err(e) => {
            report.push(Check::fail(
                "call_greeting",
                format!("the call broke: {}", chain(e.as_ref())),
                "the stream's connection failed mid-call: see the server's log and the proxy's timeouts",
            ));
            for check in &CHECKS[1..] {
                report.push(Check::skip(check, "the call broke"));
            }
        }
    }
}

/// The checks a call's timeline answers.
fn read(call: &CallReport, offer: bool, ai: bool, report: &mut Report) {
    let first = |pred: fn(&Moment) -> bool| call.first(pred);
    let agent = if ai { "AI agent" } else { "echo agent" };
    let how = if offer { "" } else { " (without the subprotocol offer, which failed)" };

    let Some(greeting) = first(|m| matches!(m, Moment::ReplyStart)) else {
        report.push(Check::fail(
            "call_greeting",
            format!("no audio from the agent in {} s{how}", call.timeline.last().map_or(0.0, |e| e.at_ms) / 1000.0),
            "the call logic sent nothing: see the server's log (guest errors, or a failing text-to-speech)",
        ));
        for check in &CHECKS[1..5] {
            report.push(Check::skip(check, "the agent never spoke"));
        }
        report.push(close(call));
        return;
    };
    let mark = call.timeline.iter().find_map(|e| match &e.moment {
        Moment::MarkReceived(name) => Some(format!(", mark `{name}`")),
        _ => None,
    });
    report.push(Check::pass(
        "call_greeting",
        format!("first audio {greeting:.0} ms after start{}{how}", mark.unwrap_or_default()),
    ));

    let speech = first(|m| matches!(m, Moment::CallerSpeechStart));
    let clear = speech.and_then(|s| call.at(|m| matches!(m, Moment::Clear)).into_iter().find(|&c| c >= s));
    match (speech, clear) {
        (Some(s), Some(c)) => report.push(Check::pass(
            "call_barge_in",
            format!("clear {:.0} ms after the caller talked over the agent", c - s),
        )),
        _ => report.push(Check::fail(
            "call_barge_in",
            "the caller talked over the agent and no clear came",
            "the agent talks over callers: check HOTLINE_BARGE_IN_MS and the call logic's barge-in",
        )),
    }

    match reply_latencies(call).first() {
        Some(ms) => {
            report.push(Check::pass("call_answer", format!("{agent}: end of utterance → reply audio in {ms:.0} ms")))
        }
        None => report.push(Check::fail(
            "call_answer",
            format!("{agent}: the utterance got no answer"),
            if ai {
                "see /readyz's providers and the server's log (speech-to-text, LLM, text-to-speech)"
            } else {
                "see the server's log (`eou` and guest errors)"
            },
        )),
    }

    let sent = call.at(|m| matches!(m, Moment::MarkReceived(_))).len();
    let echoed = call.at(|m| matches!(m, Moment::MarkEchoed(_))).len();
    if sent > 0 && echoed == sent {
        report.push(Check::pass("call_marks", format!("{sent} marks sent by the server, all echoed back when played")));
    } else {
        report.push(Check::fail(
            "call_marks",
            format!("{sent} marks sent, {echoed} echoed"),
            "the server must follow its audio with marks (Twilio echoes them when played): see the server's log",
        ));
    }

    match first(|m| matches!(m, Moment::Ping)) {
        Some(at) => report.push(Check::pass("call_ping", format!("ping at {at:.0} ms, answered"))),
        None => report.push(Check::warn(
            "call_ping",
            format!("no ping in {:.1} s", call.timeline.last().map_or(0.0, |e| e.at_ms) / 1000.0),
            "the server pings every HOTLINE_KEEPALIVE_SECS (10 s by default): a longer interval, or a proxy that \
             swallows WebSocket control frames",
        )),
    }
    report.push(close(call));
}

fn close(call: &CallReport) -> Check {
    match &call.close {
        Some((1000, reason)) => Check::pass("call_close", format!("after `stop`, close 1000 `{reason}`")),
        Some((code, reason)) => Check::fail(
            "call_close",
            format!("closed with {code} `{reason}`"),
            "the server ended the call abnormally (1008: refused, 1011: call logic failed): see the server's log",
        ),
        None => Check::fail(
            "call_close",
            "no close frame from the server",
            "the connection was cut: a proxy's idle or request timeout shorter than a call?",
        ),
    }
}
