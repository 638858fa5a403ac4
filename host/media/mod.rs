//! One Media Streams call: Twilio frames in, guest events out; guest
//! effects in, Twilio frames, timers and the close out.
//!
//! The call owns its WebSocket, its guest instance and its timers; nothing
//! here is shared with other calls, so one call's bad input or trapping
//! guest ends that call only (see `recovery.rs` for what a trap does).

mod recovery;
mod work;

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::error::ProtocolError;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_util::time::{DelayQueue, delay_queue};
use tracing::{Instrument, Span, debug, error, field, info, info_span, warn};

use crate::app::App;
use crate::config::SwapPolicy;
use crate::guest::{Effect, Event, LogEntry, Media, ProviderError, ProviderKind, Providers, Session, Started};
use crate::versions::Version;
use crate::twilio::messages::{Inbound, Mark, OutMedia, Outbound};
use work::Work;
use hotline_audio::FRAME_BYTES;

/// A peer that keeps sending garbage is not Twilio; stop listening to it.
const MAX_BAD_FRAMES: u32 = 100;
/// How long a close handshake may take before the socket is dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(3);

/// What the call loop does next.
enum Flow {
    Continue,
    /// We close, with this code and reason.
    Close(CloseCode, &'static str),
    /// The peer sent a close frame; answer it.
    PeerClosed,
    /// The connection is gone; nothing can be sent.
    Gone,
}

enum Input {
    Frame(Option<Result<Message, WsError>>),
    Timer(u32),
    /// A provider produced something for the guest.
    Provider(Event),
    Ping,
    Shutdown,
    /// The apology after a failed guest has had its time.
    ApologyOver,
}

#[derive(Default)]
struct Stats {
    frames_in: u64,
    frames_out: u64,
    marks_sent: u64,
    marks_acked: u64,
    bad_frames: u32,
    /// Longest time one input took, from receipt to effects flushed (µs):
    /// what a swap, a slow guest or a starved worker costs a call.
    max_event_us: u64,
}

pub async fn run_call<S>(app: Arc<App>, version: Arc<Version>, ws: WebSocketStream<S>, subprotocol: bool)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let _live = app.calls.enter();
    let span = info_span!("call", call_sid = field::Empty, stream_sid = field::Empty);
    let generation = app.versions.generation();
    let work = Work::new(app.providers.clone(), app.config.eou_silence_ms);
    let call = Call {
        work,
        audio_sent: false,
        app,
        version,
        generation,
        ws,
        session: None,
        stream_sid: String::new(),
        timers: DelayQueue::new(),
        timer_keys: HashMap::new(),
        stopped: false,
        stats: Stats::default(),
        last_snapshot: None,
        events_since_snapshot: 0,
        recovered: false,
        ending: None,
    };
    call.run(subprotocol).instrument(span).await
}

struct Call<S> {
    app: Arc<App>,
    /// The guest version serving this call; held here, it stays loaded.
    version: Arc<Version>,
    /// The registry generation this call last looked at.
    generation: u64,
    ws: WebSocketStream<S>,
    /// Created at Twilio's `start`; `None` before it and after a trap.
    session: Option<Session>,
    stream_sid: String,
    timers: DelayQueue<u32>,
    timer_keys: HashMap<u32, delay_queue::Key>,
    /// The guest has seen `stopped`.
    stopped: bool,
    stats: Stats,
    /// The newest snapshot known to be good, for recovery after a trap.
    last_snapshot: Option<Vec<u8>>,
    events_since_snapshot: u32,
    /// A trap already cost this call its one recovery.
    recovered: bool,
    /// Set once the guest is beyond help: the apology is playing and the
    /// call closes when its mark returns or at this instant.
    ending: Option<tokio::time::Instant>,
    /// Transcription, LLM and speech requests in flight for this call.
    work: Work,
    /// Media frames were queued during the current dispatch.
    audio_sent: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Call<S> {
    async fn run(mut self, subprotocol: bool) {
        let began = Instant::now();
        info!(event = "ws_connect", subprotocol, guest = self.version.digest());
        let keepalive = self.app.config.keepalive;
        let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + keepalive, keepalive);
        let close_calls = self.app.close_calls.clone();
        let end = loop {
            let apology_over = async {
                match self.ending {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            let input = tokio::select! {
                _ = close_calls.cancelled() => Input::Shutdown,
                _ = apology_over => Input::ApologyOver,
                msg = self.ws.next() => Input::Frame(msg),
                Some(expired) = self.timers.next(), if !self.timers.is_empty() => Input::Timer(expired.into_inner()),
                event = self.work.next() => Input::Provider(event),
                _ = ping.tick() => Input::Ping,
            };
            let began_input = Instant::now();
            let flow = match input {
                Input::Frame(msg) => self.on_frame(msg).await,
                Input::Timer(id) => {
                    self.timer_keys.remove(&id);
                    self.dispatch(Event::Timer(id)).await
                }
                Input::Provider(event) => self.dispatch(event).await,
                Input::Ping => match self.ws.send(Message::Ping(Default::default())).await {
                    Ok(()) => Flow::Continue,
                    Err(_) => Flow::Gone,
                },
                Input::Shutdown => {
                    info!(event = "ws_shutdown_close");
                    Flow::Close(CloseCode::Normal, "server shutting down")
                }
                Input::ApologyOver => Flow::Close(CloseCode::Error, "call logic failed"),
            };
            self.stats.max_event_us = self.stats.max_event_us.max(began_input.elapsed().as_micros() as u64);
            if !matches!(flow, Flow::Continue) {
                break flow;
            }
        };
        self.finish(end).await;
        let s = &self.stats;
        info!(
            event = "ws_closed",
            frames_in = s.frames_in,
            frames_out = s.frames_out,
            marks_sent = s.marks_sent,
            marks_acked = s.marks_acked,
            bad_frames = s.bad_frames,
            max_event_us = s.max_event_us,
            secs = began.elapsed().as_secs_f32(),
        );
    }

    async fn on_frame(&mut self, msg: Option<Result<Message, WsError>>) -> Flow {
        match msg {
            None => {
                info!(event = "ws_gone", reason = "connection ended without a close frame");
                Flow::Gone
            }
            Some(Err(WsError::Capacity(e))) => {
                warn!(event = "ws_frame_too_large", error = %e);
                Flow::Close(CloseCode::Size, "message too big")
            }
            Some(Err(WsError::Protocol(ProtocolError::ResetWithoutClosingHandshake))) => {
                info!(event = "ws_gone", reason = "reset without a close frame");
                Flow::Gone
            }
            Some(Err(WsError::Protocol(e))) => {
                warn!(event = "ws_protocol_error", error = %e);
                Flow::Close(CloseCode::Protocol, "protocol error")
            }
            Some(Err(e)) => {
                info!(event = "ws_gone", error = %e);
                Flow::Gone
            }
            Some(Ok(Message::Text(text))) => self.on_text(text.as_str()).await,
            Some(Ok(Message::Binary(_))) => self.bad_frame("binary frame (Twilio sends JSON text)"),
            Some(Ok(Message::Close(frame))) => {
                info!(event = "ws_close_received", code = frame.as_ref().map(|f| u16::from(f.code)));
                Flow::PeerClosed
            }
            Some(Ok(_)) => Flow::Continue, // ping/pong: tungstenite answers pings itself
        }
    }

    fn bad_frame(&mut self, reason: &str) -> Flow {
        self.stats.bad_frames += 1;
        warn!(event = "ws_bad_frame", reason, count = self.stats.bad_frames);
        if self.stats.bad_frames >= MAX_BAD_FRAMES {
            return Flow::Close(CloseCode::Policy, "too many malformed frames");
        }
        Flow::Continue
    }

    async fn on_text(&mut self, text: &str) -> Flow {
        let inbound: Inbound = match serde_json::from_str(text) {
            Ok(m) => m,
            Err(e) => return self.bad_frame(&format!("bad JSON: {e}")),
        };
        if self.ending.is_some() {
            return self.while_apologizing(inbound);
        }
        match inbound {
            Inbound::Connected { protocol, version } => {
                info!(event = "ws_connected", protocol = protocol.as_deref(), version = version.as_deref());
                Flow::Continue
            }
            Inbound::Start { stream_sid, start } => {
                if self.session.is_some() || self.stopped {
                    return self.bad_frame("second start");
                }
                let span = Span::current();
                span.record("call_sid", start.call_sid.as_str());
                span.record("stream_sid", stream_sid.as_str());
                info!(event = "ws_start", tracks = ?start.tracks, format = ?start.media_format);
                // A swap before the call began: start on the newest version.
                if let Some(active) = self.app.versions.active() {
                    self.version = active;
                    self.generation = self.app.versions.generation();
                }
                self.session = match self.version.guest.session().await {
                    Ok(s) => {
                        Version::count(&self.version.stats.calls);
                        Some(s)
                    }
                    Err(e) => {
                        error!(event = "guest_start_failed", error = %e);
                        return Flow::Close(CloseCode::Again, "no capacity for the call");
                    }
                };
                self.stream_sid = stream_sid.clone();
                let p = &self.app.providers;
                let providers = Providers { stt: p.stt.is_some(), llm: p.llm.is_some(), tts: p.tts.is_some() };
                self.dispatch(Event::Started(Started {
                    stream_sid,
                    call_sid: start.call_sid,
                    custom_parameters: start.custom_parameters.into_iter().collect(),
                    config: self.app.config.call_config(providers),
                }))
                .await
            }
            Inbound::Media { media, .. } => {
                if self.session.is_none() {
                    return self.bad_frame("media before start");
                }
                let payload = match BASE64.decode(media.payload.as_bytes()) {
                    Ok(p) => p,
                    Err(e) => return self.bad_frame(&format!("bad base64 in media: {e}")),
                };
                self.stats.frames_in += 1;
                self.dispatch(Event::Media(Media { payload, timestamp_ms: media.timestamp })).await
            }
            Inbound::Dtmf { dtmf, .. } => {
                let mut chars = dtmf.digit.chars();
                match (chars.next(), chars.next(), self.session.is_some()) {
                    (Some(digit), None, true) => {
                        info!(event = "dtmf", digit = %digit);
                        self.dispatch(Event::Dtmf(digit)).await
                    }
                    (_, _, false) => self.bad_frame("dtmf before start"),
                    _ => self.bad_frame("dtmf digit is not one character"),
                }
            }
            Inbound::Mark { mark, .. } => {
                if self.session.is_none() {
                    return self.bad_frame("mark before start");
                }
                self.stats.marks_acked += 1;
                info!(event = "mark_ack", name = mark.name);
                self.dispatch(Event::MarkPlayed(mark.name)).await
            }
            Inbound::Stop { .. } => {
                info!(event = "ws_stop");
                let flow = self.dispatch_stopped().await;
                match flow {
                    Flow::Continue => Flow::Close(CloseCode::Normal, "stream stopped"),
                    other => other,
                }
            }
            Inbound::Unknown => {
                info!(event = "ws_unknown_event", len = text.len());
                Flow::Continue
            }
        }
    }

    async fn dispatch_stopped(&mut self) -> Flow {
        if self.stopped || self.session.is_none() {
            return Flow::Continue;
        }
        self.stopped = true;
        self.dispatch(Event::Stopped).await
    }

    /// Hands one event to the guest and performs the effects it returns;
    /// after a recovery, also the event that tells the new instance its
    /// pending work is gone.
    async fn dispatch(&mut self, event: Event) -> Flow {
        self.follow_swap().await;
        let mut queue = VecDeque::from([event]);
        while let Some(event) = queue.pop_front() {
            let Some(session) = self.session.as_mut() else { break };
            let effects = match session.handle(&event).await {
                Ok(effects) => effects,
                Err(e) => {
                    self.session = None;
                    // Whatever the failed instance asked of the providers
                    // is moot; the restored one may be waiting for a result
                    // its predecessor already consumed. An error ends that
                    // wait (a listening guest ignores it).
                    self.work.cancel();
                    if self.recover(e).await {
                        // The event that trapped is skipped.
                        if self.app.providers.complete() {
                            queue.push_back(Event::ProviderError(ProviderError {
                                kind: ProviderKind::Llm,
                                message: "call logic restarted; work in flight was dropped".into(),
                            }));
                        }
                        continue;
                    }
                    return self.apologize().await;
                }
            };
            for effect in effects {
                match self.apply(effect).await {
                    Flow::Continue => {}
                    other => {
                        let _ = self.ws.flush().await;
                        return other;
                    }
                }
            }
        }
        self.keep_snapshot().await;
        match self.ws.flush().await {
            Ok(()) => {
                if std::mem::take(&mut self.audio_sent) {
                    self.work.audio_sent();
                }
                Flow::Continue
            }
            Err(_) => Flow::Gone,
        }
    }

    /// At an event boundary, moves the call to a newly activated version:
    /// snapshot here, restore there. A refusal (or `HOTLINE_SWAP=pin`) keeps
    /// the call where it is until it ends. Timers and the socket are the
    /// host's and carry over untouched.
    async fn follow_swap(&mut self) {
        let generation = self.app.versions.generation();
        if generation == self.generation {
            return;
        }
        self.generation = generation;
        let Some(target) = self.app.versions.active() else { return };
        if self.app.config.swap == SwapPolicy::Pin || target.digest() == self.version.digest() {
            return;
        }
        let Some(session) = self.session.as_mut() else {
            self.version = target; // nothing to carry over yet
            return;
        };
        let (from, to) = (self.version.digest().to_string(), target.digest().to_string());
        let snapshot = match session.snapshot().await {
            Ok(s) => s,
            Err(e) => {
                warn!(event = "migration_failed", from, to, step = "snapshot", error = %e);
                return;
            }
        };
        match target.guest.restore(&snapshot).await {
            Ok(restored) => {
                self.session = Some(restored);
                Version::count(&target.stats.migrations);
                self.version = target;
                info!(event = "migrated", from, to, snapshot_bytes = snapshot.len());
                // The new version accepted it: it is the recovery point now.
                self.last_snapshot = Some(snapshot);
                self.events_since_snapshot = 0;
            }
            Err(e) => {
                Version::count(&target.stats.refusals);
                warn!(event = "migration_refused", from, to, error = %e);
            }
        }
    }

    /// Sends μ-law audio as 20 ms media messages; a short last frame is
    /// padded with silence (Twilio plays whole frames best).
    async fn send_audio(&mut self, audio: &[u8]) -> Flow {
        let frames = audio.len().div_ceil(FRAME_BYTES);
        for frame in audio.chunks(FRAME_BYTES) {
            let mut payload = frame.to_vec();
            payload.resize(FRAME_BYTES, hotline_audio::ulaw::SILENCE);
            let media = Outbound::Media { stream_sid: self.stream_sid.clone(), media: OutMedia { payload: BASE64.encode(&payload) } };
            if let Flow::Gone = self.send(&media).await {
                return Flow::Gone;
            }
        }
        self.stats.frames_out += frames as u64;
        debug!(event = "media_tx", frames);
        Flow::Continue
    }

    async fn send(&mut self, message: &Outbound) -> Flow {
        let json = serde_json::to_string(message).expect("outbound messages always serialize");
        match self.ws.feed(Message::Text(json.into())).await {
            Ok(()) => Flow::Continue,
            Err(_) => Flow::Gone,
        }
    }

    async fn apply(&mut self, effect: Effect) -> Flow {
        match effect {
            Effect::Play(audio) => {
                if audio.len() % FRAME_BYTES != 0 {
                    warn!(event = "guest_bad_effect", reason = "play is not whole 160-byte frames", len = audio.len());
                }
                self.audio_sent = true;
                self.send_audio(&audio).await
            }
            Effect::Mark(name) => {
                info!(event = "mark_sent", name);
                self.stats.marks_sent += 1;
                self.send(&Outbound::Mark { stream_sid: self.stream_sid.clone(), mark: Mark { name } }).await
            }
            Effect::Clear => {
                info!(event = "clear_sent");
                self.send(&Outbound::Clear { stream_sid: self.stream_sid.clone() }).await
            }
            Effect::SetTimer(timer) => {
                if let Some(key) = self.timer_keys.remove(&timer.id) {
                    self.timers.remove(&key);
                }
                let key = self.timers.insert(timer.id, Duration::from_millis(timer.ms as u64));
                self.timer_keys.insert(timer.id, key);
                Flow::Continue
            }
            Effect::CancelTimer(id) => {
                if let Some(key) = self.timer_keys.remove(&id) {
                    self.timers.remove(&key);
                }
                Flow::Continue
            }
            Effect::Transcribe(utterance) => {
                self.work.transcribe(utterance);
                Flow::Continue
            }
            Effect::Think(turns) => {
                self.work.think(turns);
                Flow::Continue
            }
            Effect::Speak(text) => {
                self.work.speak(text);
                Flow::Continue
            }
            Effect::Cancel => {
                self.work.cancel();
                Flow::Continue
            }
            Effect::Hangup => {
                info!(event = "hangup");
                Flow::Close(CloseCode::Normal, "call ended by agent")
            }
            Effect::Log(entry) => {
                guest_log(entry);
                Flow::Continue
            }
        }
    }

    async fn finish(&mut self, end: Flow) {
        // Let the guest see the end of the call (it may log a summary). If
        // the peer is gone, whatever it asks to send fails harmlessly.
        let _ = self.dispatch_stopped().await;
        let closing = match end {
            Flow::Close(code, reason) => {
                let frame = CloseFrame { code, reason: reason.into() };
                info!(event = "ws_close_sent", code = u16::from(code), reason);
                self.ws.close(Some(frame)).await.is_ok()
            }
            // tungstenite queued the echo of the peer's close; send it.
            Flow::PeerClosed => self.ws.flush().await.is_ok(),
            Flow::Gone | Flow::Continue => false,
        };
        if closing {
            // Wait for the other side to finish the handshake.
            let drain = async { while self.ws.next().await.is_some() {} };
            if tokio::time::timeout(CLOSE_TIMEOUT, drain).await.is_err() {
                warn!(event = "ws_close_timeout");
            }
        }
    }
}

fn guest_log(entry: LogEntry) {
    let fields: Vec<String> = entry.fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
    info!(target: "hotline::guest", event = %entry.event, "{}", fields.join(" "));
}
