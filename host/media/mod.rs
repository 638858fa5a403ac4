//! One Media Streams call: Twilio frames in, guest events out; guest
//! effects in, Twilio frames, timers and the close out.
//!
//! The call owns its WebSocket, its guest instance and its timers; nothing
//! here is shared with other calls, so one call's bad input or trapping
//! guest ends that call only.
//!
//! - `mod.rs`: the call loop (`Input` → `Flow`) and the close handshake.
//! - `inbound.rs`: Twilio's frames decoded into guest events.
//! - `instance.rs`: the call's guest instance (swaps, snapshots, recovery).
//! - `effects.rs`: the guest's effects performed, and its timers.
//! - `apology.rs`: what a call does once its guest is beyond help.
//! - `control.rs`: the phone call's end when the agent hangs up (REST).
//! - `transfer.rs`: the guest's `transfer`, and the caller's return.
//! - `work.rs` + `turn_log.rs`: the call's provider requests and their timing.
//! - `realtime.rs`: the realtime agent's session (`HOTLINE_AGENT=realtime`).
//! - `reconnect.rs`: a provider socket opened again when it drops (the
//!   realtime session's, and `listen.rs`'s streaming speech-to-text).
//! - `fetch.rs`: the guest's HTTP requests (`fetch`), run with the provider work.
//! - `live.rs`: the call's entry in the dashboard's live list.
//! - `tape.rs`: the call's audio for its recording, when calls are recorded.
//! - `record.rs`: the call's record for the store, built per event (never
//!   per media frame) and handed over when the call ends.
//! - `switchboard.rs`: what webhooks know about calls beyond their
//!   streams (answering-machine verdicts, transfers and their records).
//! - `calls.rs`: [`Calls`], what every call shares (never `App`).

mod apology;
mod calls;
mod control;
mod effects;
mod fetch;
mod inbound;
mod instance;
mod listen;
mod live;
mod realtime;
mod reconnect;
pub mod record;
pub mod switchboard;
mod tape;
mod task;
mod transfer;
mod turn_log;
mod work;

/// Real speech (the host's apology): `hotline doctor`'s caller says it.
pub use apology::APOLOGY;
pub use calls::Calls;

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::stream::FusedStream;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tracing::{Instrument, field, info, info_span, warn};

use crate::sandbox::GuestError;
use crate::sandbox::wit::{self, Event};
use crate::store::record::Outcome;
use crate::versions::Version;
use effects::{Timers, written};
use instance::Instance;
use record::{Field, Recorder};
use switchboard::{Registration, Signal};
use work::Work;

/// The next signal for a call on the switchboard; pending for the others.
async fn next_signal(registration: &mut Option<Box<Registration>>) -> Option<Signal> {
    match registration {
        Some(r) => r.signals.recv().await,
        None => std::future::pending().await,
    }
}

/// What the guest made of an event (`Call::ask_guest`).
enum Answer {
    Effects(Vec<wit::Effect>),
    /// It failed and could not be recovered: the call apologizes and ends.
    BeyondHelp,
}

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

// One at a time, on the stack of the call loop: boxing the large event would
// allocate for every provider result instead.
#[allow(clippy::large_enum_variant)]
enum Input {
    Frame(Option<Result<Message, WsError>>),
    Timer(u32),
    /// A provider produced something for the guest (or its record).
    Provider(work::Delivery),
    /// A webhook had something for this call (`switchboard.rs`).
    Signal(Signal),
    Ping,
    Shutdown,
    /// The apology after a failed guest has had its time.
    ApologyOver,
    /// The socket's deadline: no `start` yet, or nothing received lately.
    Watchdog,
}

/// Frames a call may send per second, on average: ten times Twilio's
/// fifty messages, so a simulator or an edge catching up may run faster than real
/// time for a while; a peer pushing thousands a second is slowed down.
const MESSAGE_RATE: f64 = 500.0;
/// ...and at once, before the rate applies (20 s of real-time media).
const MESSAGE_BURST: f64 = 1000.0;

/// A token bucket over a call's inbound messages.
struct Pace {
    tokens: f64,
    at: tokio::time::Instant,
    /// The call has been told (logged) once.
    reported: bool,
}

impl Pace {
    fn new(now: tokio::time::Instant) -> Pace {
        Pace { tokens: MESSAGE_BURST, at: now, reported: false }
    }

    /// How long to wait before handling one more message, if over the rate.
    fn take(&mut self, now: tokio::time::Instant) -> Option<Duration> {
        let refill = now.saturating_duration_since(self.at).as_secs_f64() * MESSAGE_RATE;
        self.tokens = (self.tokens + refill).min(MESSAGE_BURST) - 1.0;
        self.at = now;
        (self.tokens < 0.0).then(|| Duration::from_secs_f64(-self.tokens / MESSAGE_RATE))
    }
}

#[derive(Default)]
struct Stats {
    frames_in: u64,
    frames_out: u64,
    marks_sent: u64,
    marks_acked: u64,
    bad_frames: u32,
    /// Twilio's `connected` has arrived (it comes once).
    connected: bool,
    /// Longest time one input took, from receipt to effects flushed (µs):
    /// what a swap, a slow guest or a starved worker costs a call.
    max_event_us: u64,
}

/// The call, as a future built in place: an `async fn` here would keep its
/// arguments beside the `Call` they move into, in every call's task.
pub fn run_call<S>(
    calls: Arc<Calls>,
    version: Arc<Version>,
    ws: WebSocketStream<S>,
    subprotocol: bool,
) -> impl Future<Output = ()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let span = info_span!("call", call_sid = field::Empty, stream_sid = field::Empty);
    let generation = calls.versions.generation();
    let call = Call {
        work: Work::new(calls.providers.clone(), calls.config.eou_silence_ms),
        audio_sent: false,
        guest: Instance::new(version, generation),
        calls,
        ws,
        stream_sid: String::new(),
        call_sid: String::new(),
        timers: Timers::default(),
        stopped: false,
        stats: Stats::default(),
        ending: None,
        record: None,
        live: None,
        tape: None,
        media_ms: 0,
        transfer: None,
        signals: None,
    };
    call.run(subprotocol).instrument(span)
}

struct Call<S> {
    calls: Arc<Calls>,
    ws: WebSocketStream<S>,
    /// The call's guest instance and the version serving it.
    guest: Instance,
    stream_sid: String,
    /// From the `start` on.
    call_sid: String,
    timers: Timers,
    /// The guest has seen `stopped`.
    stopped: bool,
    stats: Stats,
    /// Set once the guest is beyond help: the apology is playing and the
    /// call closes when its mark returns or at this instant.
    ending: Option<tokio::time::Instant>,
    /// Transcription, LLM and speech requests in flight for this call.
    work: Work,
    /// Media frames were queued during the current dispatch.
    audio_sent: bool,
    /// The call's record, from a valid `start` on, when records are on
    /// (boxed: a call without one carries a pointer).
    record: Option<Box<Recorder>>,
    /// The call as the live list shows it, from a valid `start` on (boxed
    /// as the record is).
    live: Option<Box<crate::live::LiveCall>>,
    /// The call's recording as it is made (`HOTLINE_RECORD_AUDIO`).
    tape: Option<Box<(tape::Tape, crate::store::recordings::Recording)>>,
    /// Media time at the end of the newest media frame: when host events
    /// happened, for the record.
    media_ms: u64,
    /// A transfer waiting for what was played before it to be heard.
    transfer: Option<Box<wit::Transfer>>,
    /// An outbound call's place on the switchboard (answering-machine verdicts).
    signals: Option<Box<Registration>>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Call<S> {
    async fn run(mut self, subprotocol: bool) {
        let began = Instant::now();
        info!(event = "ws_connect", subprotocol, guest = self.guest.digest());
        let keepalive = self.calls.config.keepalive;
        let mut ping = tokio::time::interval_at(tokio::time::Instant::now() + keepalive, keepalive);
        let close_calls = self.calls.close_all.clone();
        // One waiter for the whole call: a fresh `cancelled()` per input
        // would take the token's lock twice per media frame, in every call.
        let shutdown = close_calls.cancelled();
        tokio::pin!(shutdown);
        // One timer for the socket's two deadlines: `start` within the start
        // timeout, then something received within the idle timeout. Frames
        // only note when they came; the timer wakes once per period and is
        // pushed back if something did.
        let security = &self.calls.config.security;
        let (start_timeout, idle) = (security.start_timeout, security.stream_idle);
        let watchdog = tokio::time::sleep(start_timeout);
        tokio::pin!(watchdog);
        let mut last_inbound = tokio::time::Instant::now();
        let mut pace = Pace::new(last_inbound);
        let end = loop {
            let apology_over = async {
                match self.ending {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            // In this order, not at random: a frame (fifty a second) is
            // taken without polling the four branches after it, which are
            // nearly always pending. Those before it end the call, and must
            // not wait: frames a flooding peer sent are parsed from the
            // codec's buffer, with no read that would make the task yield,
            // so while they last the branches after the frame's are not
            // polled (a flooding call's timers and replies wait; Twilio
            // never floods).
            let input = tokio::select! {
                biased;
                _ = &mut shutdown => Input::Shutdown,
                _ = apology_over => Input::ApologyOver,
                _ = &mut watchdog => Input::Watchdog,
                msg = self.ws.next() => Input::Frame(msg),
                id = self.timers.next() => Input::Timer(id),
                event = self.work.next() => Input::Provider(event),
                Some(signal) = next_signal(&mut self.signals) => Input::Signal(signal),
                _ = ping.tick() => Input::Ping,
            };
            // The one clock read for the input's pacing, activity and timing.
            let now = tokio::time::Instant::now();
            let began_input = now.into_std();
            let flow = match input {
                Input::Frame(msg) => {
                    // Messages count as activity, control frames do not: a
                    // client that only answers pings is holding a slot, not
                    // streaming.
                    if let Some(Ok(Message::Text(_))) = &msg {
                        last_inbound = now;
                    }
                    // Every frame counts toward the rate (a ping flood too):
                    // over it, this call stops reading for a moment, and TCP
                    // slows the peer down.
                    if let Some(Ok(_)) = &msg
                        && let Some(wait) = pace.take(now)
                    {
                        if !std::mem::replace(&mut pace.reported, true) {
                            warn!(event = "ws_rate_limited", per_sec = MESSAGE_RATE);
                        }
                        tokio::time::sleep(wait).await;
                    }
                    self.on_frame(msg).await
                }
                Input::Watchdog if self.stream_sid.is_empty() && !self.stopped => {
                    warn!(event = "ws_start_timeout", after_secs = start_timeout.as_secs());
                    Flow::Close(CloseCode::Policy, "no start in time")
                }
                Input::Watchdog if last_inbound.elapsed() >= idle => {
                    warn!(event = "ws_idle_timeout", after_secs = idle.as_secs());
                    Flow::Close(CloseCode::Policy, "stream idle")
                }
                Input::Watchdog => {
                    watchdog.as_mut().reset(last_inbound + idle);
                    Flow::Continue
                }
                Input::Timer(id) => self.dispatch(Event::Timer(id)).await,
                Input::Provider(work::Delivery { event, to_guest, to_record }) => {
                    if to_record && let Some(record) = &mut self.record {
                        record.provider_event(&event);
                    }
                    if !to_guest {
                        continue;
                    }
                    // The work failed: what the guest does about it (a
                    // filler, an apology) sets the state again.
                    if let Event::ProviderError(_) = event {
                        self.live_state(crate::live::State::Listening);
                    }
                    self.dispatch(event).await
                }
                Input::Signal(Signal::AnsweredBy(verdict)) => {
                    self.note("answered_by", &[("answered_by", Field::Str(crate::convert::answered_by_name(verdict)))]);
                    self.dispatch(Event::AnsweredBy(verdict)).await
                }
                Input::Ping => written(self.ws.send(Message::Ping(Default::default()))).await,
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
        // Boxed: closing needs more future than a frame does, once per call.
        Box::pin(self.finish(end)).await;
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

    async fn dispatch_stopped(&mut self) -> Flow {
        if self.stopped || !self.guest.is_live() {
            return Flow::Continue;
        }
        self.stopped = true;
        self.dispatch(Event::Stopped).await
    }

    /// Hands one event to the guest and performs the effects it returns;
    /// after a recovery, also the event that tells the new instance it was
    /// restarted.
    ///
    /// Not an `async fn`: the guest's part runs here, at once, and only
    /// performing the effects is left to await. The event (hundreds of
    /// bytes) never enters the future, which every call's task holds room
    /// for at each of its awaits.
    fn dispatch(&mut self, event: Event) -> impl Future<Output = Flow> + '_ {
        let answer = self.ask_guest(event);
        self.perform(answer)
    }

    /// The guest's effects for `event`; after a failure, the recovered
    /// instance's for `restarted`; none when there is no guest to ask;
    /// `BeyondHelp` when it failed and could not be recovered.
    fn ask_guest(&mut self, event: Event) -> Answer {
        if self.guest.follow_swap(&self.calls) {
            if let Some(record) = &mut self.record {
                record.guest_version(self.guest.digest());
            }
            self.live_guest();
        }
        // At most two events: the one given, then `restarted` after a
        // recovery (no queue to allocate per media frame).
        let mut next = Some(event);
        while let Some(event) = next.take() {
            match self.guest_handle(event) {
                None => break,
                Some(Ok(effects)) => return Answer::Effects(effects),
                Some(Err(failure)) => {
                    // Whatever the failed instance asked of the providers
                    // is moot: drop it. The restored instance may be waiting
                    // for a result its predecessor already consumed, so
                    // `restarted` tells it the work is gone.
                    self.work.cancel();
                    let reason = failure.summary();
                    self.note("guest_trap", &[("error", Field::Str(&reason))]);
                    if !self.guest.recover(&self.calls, failure) {
                        return Answer::BeyondHelp;
                    }
                    self.note("guest_recovered", &[]);
                    self.live_guest();
                    // The event that failed is skipped, not replayed.
                    let work_dropped = self.calls.providers.complete();
                    next = Some(Event::Restarted(wit::Restart { reason, work_dropped }));
                }
            }
        }
        Answer::Effects(Vec::new())
    }

    /// Performs the guest's answer, then flushes what it wrote.
    async fn perform(&mut self, answer: Answer) -> Flow {
        let effects = match answer {
            Answer::Effects(effects) => effects,
            Answer::BeyondHelp => return Box::pin(self.apologize()).await,
        };
        // Most media frames: nothing to do, and only effects write to the
        // socket in a dispatch, so there is nothing to flush either (a flush
        // costs a clock read for its timeout and a pass through the codec;
        // tungstenite sends its own pongs as it reads).
        if effects.is_empty() {
            self.guest.keep_snapshot(false);
            self.take_turns();
            return Flow::Continue;
        }
        // A log alone changes nothing the call would miss after a
        // recovery (the detector's `speech_start`, say): not worth a
        // snapshot, which mid-utterance carries seconds of audio.
        let changed = effects.iter().any(|effect| !matches!(effect, wit::Effect::Log(_)));
        for effect in effects {
            match self.apply(effect).await {
                Flow::Continue => {}
                other => {
                    let _ = written(self.ws.flush()).await;
                    return other;
                }
            }
        }
        self.guest.keep_snapshot(changed);
        let flushed = written(self.ws.flush()).await;
        if let Flow::Continue = flushed
            && std::mem::take(&mut self.audio_sent)
        {
            self.work.audio_sent();
        }
        self.take_turns();
        flushed
    }

    /// The guest's answer to one event, timed for the metrics. The event is
    /// taken by value and dropped here, before the effects' awaits: borrowed
    /// in `dispatch`, it would keep its room in every call's task.
    fn guest_handle(&mut self, event: Event) -> Option<Result<Vec<wit::Effect>, GuestError>> {
        let began = Instant::now();
        let handled = self.guest.handle(&event);
        self.calls.metrics.guest_event(began.elapsed());
        handled
    }

    /// A host event for the call's record (none without one).
    fn note(&mut self, event: &str, fields: &[(&str, Field)]) {
        if let Some(record) = &mut self.record {
            record.host(self.media_ms, event, fields);
        }
    }

    /// Turns the providers finished: into the metrics and the record.
    fn take_turns(&mut self) {
        for times in self.work.finished_turns() {
            self.calls.metrics.turn(&times);
            if let Some(record) = &mut self.record {
                record.turn_times(&times);
            }
        }
    }

    /// The stream is over: it is counted, and its record goes to the store,
    /// or, when it ended for a transfer, to the switchboard, where it waits
    /// for the rest of the phone call (the dial's end, the caller's return).
    fn hand_over_record(&mut self, end: &Flow) {
        self.take_turns();
        let outcome = match end {
            // Once the apology played, however the socket ended.
            _ if self.ending.is_some() => Outcome::GuestFailure,
            Flow::Close(code, reason) => record::outcome_of_close(u16::from(*code), reason),
            Flow::PeerClosed => Outcome::CallerHungUp,
            Flow::Gone | Flow::Continue => Outcome::ConnectionLost,
        };
        self.calls.metrics.call_ended(outcome);
        self.live_end(outcome);
        if outcome == Outcome::AgentHungUp {
            self.complete_call();
        }
        let recording = self.tape_end();
        let Some(mut record) = self.record.take() else { return };
        let code = match end {
            Flow::Close(code, _) => Some(u16::from(*code)),
            Flow::PeerClosed => record.peer_close_code,
            Flow::Gone | Flow::Continue => None,
        };
        let code_field = Field::Int(code.map(i64::from));
        record.host(
            self.media_ms,
            "call_ended",
            &[("outcome", Field::Str(outcome.name())), ("close_code", code_field)],
        );
        let frames = (self.stats.frames_in, self.stats.frames_out);
        let mut record = record.finish(outcome, code, frames);
        // A stream that continues the record may have no recording of its own.
        record.recording = recording.or(record.recording.take());
        if outcome == Outcome::Transferred {
            self.calls.switchboard.hold(&self.call_sid, record);
        } else {
            self.calls.records.submit(record);
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
                matches!(written(self.ws.close(Some(frame))).await, Flow::Continue)
            }
            // tungstenite queued the echo of the peer's close; send it.
            Flow::PeerClosed => matches!(written(self.ws.flush()).await, Flow::Continue),
            Flow::Gone | Flow::Continue => false,
        };
        self.hand_over_record(&end);
        if closing {
            // Wait for the other side to finish the handshake.
            let drain = async {
                // A stream that already ended ended on an error: the codec
                // refused a frame.
                let refused = self.ws.is_terminated()
                    || loop {
                        match self.ws.next().await {
                            Some(Ok(_)) => continue,
                            // The peer's close came: the handshake is done, and
                            // the server closes the connection first (RFC 6455
                            // 7.1.1; a client waits for it, so waiting for the
                            // client's end here would cost every call the timeout).
                            None => break false,
                            Some(Err(_)) => break true,
                        }
                    };
                if !refused {
                    return;
                }
                // A frame the codec refused (too big, malformed) leaves bytes
                // it will never read: read and drop them, so that closing the
                // socket sends a FIN, not a reset that would destroy our
                // close frame on its way to the peer.
                let mut sink = [0u8; 4096];
                while let Ok(n) = self.ws.get_mut().read(&mut sink).await
                    && n > 0
                {}
            };
            if tokio::time::timeout(CLOSE_TIMEOUT, drain).await.is_err() {
                warn!(event = "ws_close_timeout");
            }
        }
    }
}
