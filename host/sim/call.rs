//! One simulated Twilio call, from the voice webhook to the close frame.
//!
//! Media time drives everything: every tick sends one 20 ms caller frame and
//! plays one 20 ms agent frame from the playout buffer, as a phone would.
//! Marks are echoed when the audio queued before them has played, or at once
//! on `clear`, which is what Twilio does.

use std::collections::VecDeque;
use std::time::Duration;

use anyhow::{Context, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures_util::{SinkExt, StreamExt};
use hotline_audio::endpoint::{Boundary, EndpointConfig, Endpointer};
use hotline_audio::frame::ulaw_frames;
use hotline_audio::{FRAME_BYTES, FRAME_MS, ulaw};
use hotline_twilio::messages::{Mark, Outbound};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use super::stream::{self, Dial, Stream};

use hotline_common::Secret;

#[derive(Debug, Clone)]
pub struct CallOptions {
    /// `http://host:port` of the server.
    pub server: String,
    /// Caller audio, 8 kHz mono PCM16.
    pub audio: Vec<i16>,
    /// 1.0 is real time; 10.0 sends ten frames per 20 ms.
    pub speed: f64,
    pub call_sid: String,
    pub from: String,
    /// The webhook's `Direction` (`outbound-api`: a call placed by REST).
    pub direction: &'static str,
    /// Offer `audio.twilio.com` in the handshake, as some Twilio edges do.
    pub subprotocol: bool,
    /// Once the caller audio is over, stop when the agent has been silent
    /// this long...
    pub idle_ms: u64,
    /// ...or at the latest this long after the audio.
    pub max_tail_ms: u64,
    /// DTMF digits to press, at media times (ms).
    pub dtmf: Vec<(u64, char)>,
    /// Raw text frames to send right after `start` (for malformed-input tests).
    pub inject: Vec<String>,
    /// EoU silence the timeline's own detector uses (match the server's).
    pub eou_silence_ms: u32,
    /// Sign the webhook and the upgrade as Twilio does, with this auth token.
    pub auth_token: Option<Secret>,
    /// The public base URL Twilio would request (the server's `PUBLIC_BASE_URL`);
    /// the webhook's signature covers it. `server` when unset.
    pub public_url: Option<String>,
    /// The webhook that answers with the stream (`stream::WEBHOOK` unless a
    /// test follows a call elsewhere) and its extra form parameters.
    pub webhook: String,
    pub webhook_params: Vec<(String, String)>,
    /// Hold the caller's audio until the agent's first audio frame, then
    /// start it this many ms later: a caller who talks over the greeting,
    /// however long it takes to come. `None`: from the first frame.
    pub talk_over_agent_ms: Option<u64>,
    /// Do not hang up before the server's first WebSocket ping (still
    /// within `max_tail_ms`).
    pub wait_for_ping: bool,
}

impl Default for CallOptions {
    fn default() -> Self {
        CallOptions {
            server: "http://127.0.0.1:8080".into(),
            audio: Vec::new(),
            speed: 1.0,
            call_sid: "CAsimulated0000000000000000000000".into(),
            from: "+15550100000".into(),
            direction: "inbound",
            subprotocol: true,
            idle_ms: 1500,
            max_tail_ms: 30_000,
            dtmf: Vec::new(),
            inject: Vec::new(),
            // The server's default (its config holds the two equal).
            eou_silence_ms: hotline_audio::endpoint::EndpointConfig::default().eou_silence_ms,
            auth_token: None,
            public_url: None,
            webhook: stream::WEBHOOK.into(),
            webhook_params: Vec::new(),
            talk_over_agent_ms: None,
            wait_for_ping: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Moment {
    StreamStart,
    /// The caller started / stopped talking (the simulator's own detector).
    CallerSpeechStart,
    CallerEou,
    /// First agent frame after a silence of the playout buffer.
    ReplyStart,
    /// The playout buffer ran dry.
    ReplyEnd,
    Clear,
    /// A mark arrived from the server.
    MarkReceived(String),
    /// The simulator echoed a mark back (played, or dropped by a clear).
    MarkEchoed(String),
    Dtmf(char),
    /// A WebSocket ping from the server (answered with a pong).
    Ping,
    Stop,
    ServerClosed(u16, String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct TimelineEntry {
    /// Media time, ms since the stream started.
    pub at_ms: f64,
    pub moment: Moment,
}

#[derive(Debug, Clone, Default)]
pub struct CallReport {
    pub twiml: String,
    /// The server answered the handshake with `audio.twilio.com`.
    pub subprotocol_echoed: bool,
    pub timeline: Vec<TimelineEntry>,
    /// μ-law the caller sent, one byte per sample.
    pub caller: Vec<u8>,
    /// μ-law the agent played, aligned with `caller`.
    pub agent: Vec<u8>,
    /// Media frames received from the server.
    pub frames_received: usize,
    /// Media frames received whose payload was not exactly 160 bytes.
    pub odd_frames: usize,
    /// The server's close frame, if it sent one.
    pub close: Option<(u16, String)>,
}

impl CallReport {
    /// Kept in time order: the caller's speech start can be found late
    /// (the detector looking back over the start of the call).
    pub fn record(&mut self, at_ms: f64, moment: Moment) {
        let at = self.timeline.partition_point(|e| e.at_ms <= at_ms);
        self.timeline.insert(at, TimelineEntry { at_ms, moment });
    }

    pub fn at(&self, pred: impl Fn(&Moment) -> bool) -> Vec<f64> {
        self.timeline.iter().filter(|e| pred(&e.moment)).map(|e| e.at_ms).collect()
    }

    pub fn first(&self, pred: impl Fn(&Moment) -> bool) -> Option<f64> {
        self.at(pred).first().copied()
    }
}

enum Queued {
    Frame(Vec<u8>),
    Mark(String),
}

/// Places one call and returns what happened.
pub async fn place_call(opts: &CallOptions) -> anyhow::Result<CallReport> {
    let client = reqwest::Client::new();
    let dial = Dial {
        server: &opts.server,
        call_sid: &opts.call_sid,
        from: &opts.from,
        direction: opts.direction,
        subprotocol: opts.subprotocol,
        auth_token: opts.auth_token.as_ref(),
        public_url: opts.public_url.as_deref(),
        webhook: &opts.webhook,
        extra: &opts.webhook_params,
    };
    play(stream::open(&client, &dial).await?, opts).await
}

/// Plays a call on a started stream (from `stream::open`, or from the
/// doctor's own steps) and returns what happened.
pub async fn play(stream: Stream, opts: &CallOptions) -> anyhow::Result<CallReport> {
    let mut report = CallReport::default();
    let Stream { mut ws, twiml, stream_sid, subprotocol_echoed } = stream;
    report.twiml = twiml;
    report.subprotocol_echoed = subprotocol_echoed;
    for raw in &opts.inject {
        ws.send(Message::Text(raw.clone().into())).await?;
    }

    let speed = opts.speed.max(0.01);
    report.record(0.0, Moment::StreamStart);

    let mut caller_frames: Vec<Vec<u8>> = ulaw_frames(&opts.audio).collect();
    caller_frames.reverse();
    // Ticks since the caller's audio ran out, and ticks it was held back
    // waiting for the agent (`talk_over_agent_ms`).
    let (mut ticks_after_audio, mut ticks_held) = (0u64, 0u64);
    let mut first_agent_ms: Option<u64> = None;
    let mut pinged = false;
    let mut endpointer = Endpointer::new(EndpointConfig { eou_silence_ms: opts.eou_silence_ms, ..Default::default() });
    // Where the caller's audio after their last utterance begins.
    let mut heard = 0;
    let mut playout: VecDeque<Queued> = VecDeque::new();
    let mut playing = false;
    let mut last_agent_ms: u64 = 0;
    let mut dtmf: Vec<(u64, char)> = opts.dtmf.clone();
    dtmf.sort_by_key(|d| std::cmp::Reverse(d.0));
    let mut seq: u64 = 2;
    let tick_every = Duration::from_secs_f64(FRAME_MS as f64 / 1000.0 / speed);
    let mut ticker = tokio::time::interval(tick_every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tick: u64 = 0;
    let mut server_closed = false;

    'call: loop {
        tokio::select! {
            _ = ticker.tick() => {
                let now_ms = tick * FRAME_MS as u64;
                // Caller: one frame of audio, then silence.
                let held = match (opts.talk_over_agent_ms, first_agent_ms) {
                    (None, _) => false,
                    (Some(after), Some(at)) => now_ms < at + after,
                    (Some(_), None) => true,
                };
                let next = if held { None } else { caller_frames.pop() };
                match (&next, held) {
                    (_, true) => ticks_held += 1,
                    (None, false) => ticks_after_audio += 1,
                    (Some(_), false) => {}
                }
                let frame = next.unwrap_or_else(|| vec![ulaw::SILENCE; FRAME_BYTES]);
                let pcm: Vec<i16> = frame.iter().map(|&c| ulaw::decode(c)).collect();
                // The guest's detector, fed as the guest feeds it: with the
                // caller's audio since their last utterance ended.
                match endpointer.push_after(&report.caller[heard..], &pcm) {
                    Some(Boundary::SpeechStart { lookback_ms }) => {
                        let at = now_ms.saturating_sub(lookback_ms as u64);
                        report.record(at as f64, Moment::CallerSpeechStart);
                    }
                    Some(Boundary::EndOfUtterance { .. }) => {
                        report.record((now_ms + FRAME_MS as u64) as f64, Moment::CallerEou);
                        heard = report.caller.len() + frame.len();
                    }
                    _ => {}
                }
                let msg = json!({
                    "event": "media", "sequenceNumber": seq.to_string(), "streamSid": stream_sid,
                    "media": {"track": "inbound", "chunk": (tick + 1).to_string(), "timestamp": now_ms.to_string(),
                              "payload": BASE64.encode(&frame)}
                });
                seq += 1;
                report.caller.extend_from_slice(&frame);
                if ws.send(Message::Text(msg.to_string().into())).await.is_err() {
                    break 'call;
                }
                while dtmf.last().is_some_and(|(at, _)| *at <= now_ms) {
                    let (_, digit) = dtmf.pop().unwrap();
                    report.record(now_ms as f64, Moment::Dtmf(digit));
                    let msg = json!({"event": "dtmf", "streamSid": stream_sid, "sequenceNumber": seq.to_string(),
                                     "dtmf": {"track": "inbound_track", "digit": digit.to_string()}});
                    seq += 1;
                    if ws.send(Message::Text(msg.to_string().into())).await.is_err() {
                        break 'call;
                    }
                }
                // Agent: play one frame, then echo the marks it uncovered.
                let played = match playout.front() {
                    Some(Queued::Frame(_)) => match playout.pop_front() {
                        Some(Queued::Frame(f)) => Some(f),
                        _ => None,
                    },
                    _ => None,
                };
                match played {
                    Some(f) => {
                        report.agent.extend_from_slice(&f);
                        last_agent_ms = now_ms + FRAME_MS as u64;
                    }
                    None => {
                        report.agent.extend_from_slice(&[ulaw::SILENCE; FRAME_BYTES]);
                        if playing {
                            playing = false;
                            report.record(now_ms as f64, Moment::ReplyEnd);
                        }
                    }
                }
                let end_ms = (now_ms + FRAME_MS as u64) as f64;
                if echo_ready_marks(&mut ws, &mut playout, &stream_sid, &mut seq, &mut report, end_ms).await.is_err() {
                    break 'call;
                }
                tick += 1;
                // Hang up once the audio is over and the agent has been quiet
                // for a while (or the tail budget is spent).
                let now_ms = tick * FRAME_MS as u64;
                let after_audio = ticks_after_audio * FRAME_MS as u64;
                let agent_quiet = playout.is_empty() && now_ms.saturating_sub(last_agent_ms) >= opts.idle_ms;
                let done = after_audio >= opts.idle_ms && agent_quiet && !endpointer.in_utterance();
                if (done && (pinged || !opts.wait_for_ping))
                    || after_audio >= opts.max_tail_ms
                    || ticks_held * FRAME_MS as u64 >= opts.max_tail_ms
                {
                    break 'call;
                }
            }
            msg = ws.next() => {
                // Media time of arrival: the end of the last frame sent, the
                // clock Twilio's own timestamps run on.
                let at = (tick * FRAME_MS as u64) as f64;
                match msg {
                    Some(Ok(Message::Text(text))) => {
                        let out: Outbound = match serde_json::from_str(text.as_str()) {
                            Ok(o) => o,
                            Err(e) => bail!("server sent an invalid frame ({e}): {text}"),
                        };
                        match out {
                            Outbound::Media { media, .. } => {
                                let payload = BASE64.decode(media.payload.as_bytes()).context("server media is not base64")?;
                                report.frames_received += 1;
                                if payload.len() != FRAME_BYTES {
                                    report.odd_frames += 1;
                                }
                                if !playing && playout.iter().all(|q| matches!(q, Queued::Mark(_))) {
                                    playing = true;
                                    first_agent_ms.get_or_insert(at as u64);
                                    report.record(at, Moment::ReplyStart);
                                }
                                playout.push_back(Queued::Frame(payload));
                            }
                            Outbound::Mark { mark, .. } => {
                                report.record(at, Moment::MarkReceived(mark.name.clone()));
                                playout.push_back(Queued::Mark(mark.name));
                                if echo_ready_marks(&mut ws, &mut playout, &stream_sid, &mut seq, &mut report, at).await.is_err() {
                                    break 'call;
                                }
                            }
                            Outbound::Clear { .. } => {
                                report.record(at, Moment::Clear);
                                playout.retain(|q| matches!(q, Queued::Mark(_)));
                                if playing {
                                    playing = false;
                                    report.record(at, Moment::ReplyEnd);
                                }
                                if echo_ready_marks(&mut ws, &mut playout, &stream_sid, &mut seq, &mut report, at).await.is_err() {
                                    break 'call;
                                }
                            }
                        }
                    }
                    Some(Ok(Message::Close(frame))) => {
                        let (code, reason) = frame.map_or((1005, String::new()), |f| (u16::from(f.code), f.reason.to_string()));
                        report.record(at, Moment::ServerClosed(code, reason.clone()));
                        report.close = Some((code, reason));
                        server_closed = true;
                        break 'call;
                    }
                    Some(Ok(Message::Ping(_))) => {
                        pinged = true;
                        report.record(at, Moment::Ping);
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => bail!("WebSocket error from server: {e}"),
                    None => { server_closed = true; break 'call; }
                }
            }
        }
    }

    let end_ms = (tick * FRAME_MS as u64) as f64;
    if !server_closed {
        let at = end_ms;
        report.record(at, Moment::Stop);
        let stop = json!({"event": "stop", "sequenceNumber": seq.to_string(), "streamSid": stream_sid,
                          "stop": {"accountSid": "ACsimulated00000000000000000000000", "callSid": opts.call_sid}});
        let _ = ws.send(Message::Text(stop.to_string().into())).await;
        // The server closes after `stop`; read until its close frame.
        let wait = async {
            while let Some(msg) = ws.next().await {
                if let Ok(Message::Close(frame)) = msg {
                    return frame.map(|f| (u16::from(f.code), f.reason.to_string()));
                }
            }
            None
        };
        if let Ok(Some((code, reason))) = tokio::time::timeout(Duration::from_secs(5), wait).await {
            report.record(end_ms, Moment::ServerClosed(code, reason.clone()));
            report.close = Some((code, reason));
        }
    }
    let _ = ws.close(None).await;
    Ok(report)
}

/// Echoes the marks at the head of the playout buffer: their audio is done.
async fn echo_ready_marks<S>(
    ws: &mut S,
    playout: &mut VecDeque<Queued>,
    stream_sid: &str,
    seq: &mut u64,
    report: &mut CallReport,
    at_ms: f64,
) -> anyhow::Result<()>
where
    S: futures_util::Sink<Message> + Unpin,
    S::Error: std::error::Error + Send + Sync + 'static,
{
    while let Some(Queued::Mark(_)) = playout.front() {
        let Some(Queued::Mark(name)) = playout.pop_front() else { unreachable!() };
        let msg = json!({"event": "mark", "streamSid": stream_sid, "sequenceNumber": seq.to_string(),
                         "mark": Mark { name: name.clone() }});
        *seq += 1;
        ws.send(Message::Text(msg.to_string().into())).await?;
        report.record(at_ms, Moment::MarkEchoed(name));
    }
    Ok(())
}
