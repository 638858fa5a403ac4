//! One benchmark call, as cheap as the load generator can make it: the
//! voice webhook, the WebSocket with the subprotocol, `connected` and
//! `start`, then a real-time stream of 20 ms μ-law frames (1 s of tone and
//! noise, 1 s of near-silence, repeated), marks echoed as Twilio does (when
//! the audio queued before them has played, or at once on `clear`), `stop`
//! and the close.
//!
//! What it measures: reply latency (the frame that ended an utterance →
//! the first reply frame), frames sent and received, utterances left
//! without a reply, and how late its own 20 ms ticks were.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures_util::{SinkExt, StreamExt};
use hotline_audio::{FRAME_BYTES, ulaw};
use tokio::time::MissedTickBehavior;
use tokio_tungstenite::tungstenite::Message;

use crate::sim::stream::{self, Dial, Refused, Stream};

/// Frames in one cycle of the caller's pattern: 1 s of speech, 1 s of quiet.
pub const CYCLE_FRAMES: usize = 100;
const SPEECH_FRAMES: usize = 50;
pub const FRAME: Duration = Duration::from_millis(20);

/// The caller's audio, base64 μ-law per frame of one cycle, shared by every call.
pub struct Pattern {
    frames: Vec<String>,
}

impl Pattern {
    pub fn new() -> Arc<Pattern> {
        // One cycle: SPEECH_FRAMES of tone in noise, then a near-silent line.
        let pcm = hotline_audio::load_caller_cycle();
        debug_assert_eq!(pcm.len(), CYCLE_FRAMES * FRAME_BYTES);
        debug_assert_eq!(SPEECH_FRAMES * FRAME_BYTES, 8000);
        let frames = pcm
            .chunks(FRAME_BYTES)
            .map(|f| BASE64.encode(f.iter().map(|&s| ulaw::encode(s)).collect::<Vec<u8>>()))
            .collect();
        Arc::new(Pattern { frames })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Streamed in full and closed cleanly.
    Ok,
    /// The webhook answered without a `<Stream>` (or not 200), or the
    /// upgrade was refused.
    Refused,
    /// Anything else went wrong (connection error, early close).
    Failed,
}

#[derive(Debug, Default)]
pub struct CallStats {
    pub frames_sent: u64,
    pub frames_received: u64,
    /// Frames the call meant to send but could not (the call died early).
    pub frames_unsent: u64,
    pub utterances: u64,
    pub replies_missing: u64,
    /// Milliseconds, one per answered utterance.
    pub reply_ms: Vec<f32>,
    /// Milliseconds each tick of this call's clock fired late.
    pub lateness_ms: Vec<f32>,
    pub subprotocol_echoed: bool,
    /// Why a failed call failed (its error, with its causes).
    pub failure: Option<String>,
}

pub struct CallSpec {
    /// `http://host:port`.
    pub server: String,
    pub call_sid: String,
    pub frames: usize,
    /// Where in the 20 ms period this call's frames go out, from `epoch`.
    /// Real callers' phases are independent: the level spreads them
    /// evenly rather than letting each WebSocket's opening set them (a
    /// server that answers upgrades in batches would give many calls one
    /// phase, and the load it sees would come in bunches).
    pub phase: Duration,
    pub epoch: tokio::time::Instant,
}

pub async fn run(client: &reqwest::Client, pattern: &Pattern, spec: &CallSpec) -> (Outcome, CallStats) {
    let mut stats = CallStats::default();
    let outcome = match stream(client, pattern, spec, &mut stats).await {
        Ok(outcome) => outcome,
        Err(e) => {
            stats.failure = Some(format!("{e:#}"));
            Outcome::Failed
        }
    };
    stats.frames_unsent = spec.frames as u64 - stats.frames_sent.min(spec.frames as u64);
    (outcome, stats)
}

async fn stream(
    client: &reqwest::Client,
    pattern: &Pattern,
    spec: &CallSpec,
    stats: &mut CallStats,
) -> anyhow::Result<Outcome> {
    let dial = Dial {
        server: &spec.server,
        call_sid: &spec.call_sid,
        from: "+15550100000",
        direction: "inbound",
        subprotocol: true,
        auth_token: None,
        public_url: None,
        webhook: stream::WEBHOOK,
        extra: &[],
    };
    let Stream { mut ws, stream_sid, subprotocol_echoed, .. } = match stream::open(client, &dial).await {
        Ok(stream) => stream,
        Err(e) if e.is::<Refused>() => return Ok(Outcome::Refused),
        Err(e) => return Err(e),
    };
    stats.subprotocol_echoed = subprotocol_echoed;

    let began = first_tick(spec.epoch, spec.phase, tokio::time::Instant::now());
    let mut tick = tokio::time::interval_at(began, FRAME);
    tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut next_frame = 0usize;
    let mut last_sent = Instant::now();
    // The utterance whose ending frame was sent and whose reply is awaited.
    let mut awaiting_reply = false;
    // When the agent audio queued so far will have played, and the marks
    // waiting for it.
    let mut played_until = Instant::now();
    let mut marks: VecDeque<(Instant, String)> = VecDeque::new();
    loop {
        tokio::select! {
            scheduled = tick.tick() => {
                let late = scheduled.elapsed();
                stats.lateness_ms.push(late.as_secs_f32() * 1000.0);
                let now = Instant::now();
                while marks.front().is_some_and(|(at, _)| *at <= now) {
                    let (_, name) = marks.pop_front().expect("checked");
                    ws.feed(Message::text(mark_json(&stream_sid, &name))).await?;
                }
                if next_frame == spec.frames {
                    break;
                }
                let i = next_frame;
                let json = format!(
                    r#"{{"event":"media","sequenceNumber":"{n}","streamSid":"{stream_sid}","media":{{"track":"inbound","chunk":"{n}","timestamp":"{ms}","payload":"{payload}"}}}}"#,
                    n = i + 2,
                    ms = i * 20,
                    payload = pattern.frames[i % CYCLE_FRAMES],
                );
                ws.send(Message::text(json)).await?;
                last_sent = Instant::now();
                stats.frames_sent += 1;
                next_frame += 1;
                // The 25th quiet frame (500 ms) after the speech ends the
                // utterance; its reply is due now.
                if i % CYCLE_FRAMES == SPEECH_FRAMES + 24 {
                    if awaiting_reply {
                        stats.replies_missing += 1;
                    }
                    stats.utterances += 1;
                    awaiting_reply = true;
                }
            }
            msg = ws.next() => {
                let Some(msg) = msg else { bail!("server closed the connection mid-call") };
                let text = match msg? {
                    Message::Text(text) => text,
                    Message::Close(_) => bail!("server closed the stream mid-call"),
                    _ => continue,
                };
                let now = Instant::now();
                match event_of(text.as_str()) {
                    Some("media") => {
                        stats.frames_received += 1;
                        played_until = played_until.max(now) + FRAME;
                        if std::mem::take(&mut awaiting_reply) {
                            stats.reply_ms.push((now - last_sent).as_secs_f32() * 1000.0);
                        }
                    }
                    Some("mark") => {
                        let name = mark_name(text.as_str()).unwrap_or_default();
                        marks.push_back((played_until.max(now), name));
                    }
                    Some("clear") => {
                        played_until = now;
                        for (_, name) in marks.drain(..) {
                            ws.feed(Message::text(mark_json(&stream_sid, &name))).await?;
                        }
                        ws.flush().await?;
                    }
                    _ => {}
                }
            }
        }
    }
    if awaiting_reply {
        stats.replies_missing += 1;
    }
    ws.send(Message::text(format!(r#"{{"event":"stop","streamSid":"{stream_sid}"}}"#))).await?;
    // The server closes after `stop`; wait for its close (bounded).
    let closed = tokio::time::timeout(Duration::from_secs(5), async { while let Some(Ok(_)) = ws.next().await {} });
    let _ = closed.await;
    Ok(Outcome::Ok)
}

/// The first instant at or after `now` that lies `phase` into a period
/// counted from `epoch`.
fn first_tick(epoch: tokio::time::Instant, phase: Duration, now: tokio::time::Instant) -> tokio::time::Instant {
    let since = now.saturating_duration_since(epoch + phase).as_micros();
    let period = FRAME.as_micros();
    let periods = since.div_ceil(period);
    epoch + phase + Duration::from_micros((periods * period) as u64)
}

fn mark_json(stream_sid: &str, name: &str) -> String {
    serde_json::json!({"event": "mark", "streamSid": stream_sid, "mark": {"name": name}}).to_string()
}

/// The `event` of a server message without parsing the whole of it (a
/// media message carries 200 bytes of base64 the generator never reads).
fn event_of(text: &str) -> Option<&str> {
    let rest = &text[text.find(r#""event":""#)? + 9..];
    Some(&rest[..rest.find('"')?])
}

fn mark_name(text: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    Some(value["mark"]["name"].as_str()?.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_calls_first_tick_is_the_next_instant_at_its_phase() {
        let epoch = tokio::time::Instant::now();
        let ms = Duration::from_millis;
        // Before the phase's first instant: that instant.
        assert_eq!(first_tick(epoch, ms(7), epoch + ms(3)), epoch + ms(7));
        // Just past it: one period later.
        assert_eq!(first_tick(epoch, ms(7), epoch + ms(8)), epoch + ms(27));
        // On it: now.
        assert_eq!(first_tick(epoch, ms(7), epoch + ms(47)), epoch + ms(47));
    }
}
