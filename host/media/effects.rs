//! The guest's effects performed: audio, marks and clears as Twilio frames,
//! timers, provider work, fetches (`fetch.rs`), hang-up and guest logs.

use std::time::Duration;

use futures_util::SinkExt;
use hotline_audio::FRAME_BYTES;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tracing::{debug, info, warn};

use super::record::Field;
use super::{Call, Flow};
use crate::live::State;
use crate::sandbox::wit::{Effect, LogEntry};
use crate::twilio::messages::{Mark, MediaFrames, Outbound};

impl<S: AsyncRead + AsyncWrite + Unpin> Call<S> {
    pub(super) async fn apply(&mut self, effect: Effect) -> Flow {
        match effect {
            Effect::Play(audio) => {
                if audio.len() % FRAME_BYTES != 0 {
                    warn!(event = "guest_bad_effect", reason = "play is not whole 160-byte frames", len = audio.len());
                }
                self.audio_sent = true;
                self.live_state(State::Speaking);
                if let Flow::Gone = self.send_audio(&audio).await {
                    return Flow::Gone;
                }
                match self.work.played(audio.len()) {
                    Some(mark) => self.send_host_mark(mark).await,
                    None => Flow::Continue,
                }
            }
            Effect::Mark(name) => self.send_mark(name).await,
            Effect::Clear => {
                info!(event = "clear_sent");
                self.note("clear_sent", &[]);
                self.live_state(State::Listening);
                self.work.cleared();
                self.send_clear().await
            }
            Effect::SetTimer(timer) => {
                self.timers.set(timer.id, Duration::from_millis(timer.ms as u64));
                Flow::Continue
            }
            Effect::CancelTimer(id) => {
                self.timers.cancel(id);
                Flow::Continue
            }
            Effect::Transcribe(utterance) => {
                self.live_state(State::Thinking);
                self.work.transcribe(utterance);
                Flow::Continue
            }
            Effect::Think(thought) => {
                self.live_state(State::Thinking);
                self.work.think(thought);
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
                self.note("hangup", &[]);
                Flow::Close(CloseCode::Normal, "call ended by agent")
            }
            Effect::Fetch(request) => {
                self.fetch(request);
                Flow::Continue
            }
            Effect::Transfer(transfer) => self.begin_transfer(transfer).await,
            Effect::Log(entry) => {
                if let Some(record) = &mut self.record {
                    record.guest_log(self.media_ms, &entry);
                }
                if entry.event == "eou" {
                    self.live_turn();
                }
                guest_log(entry);
                Flow::Continue
            }
        }
    }

    /// Sends μ-law audio as 20 ms media messages; a short last frame is
    /// padded with silence (Twilio plays whole frames best).
    pub(super) async fn send_audio(&mut self, audio: &[u8]) -> Flow {
        let frames = audio.len().div_ceil(FRAME_BYTES);
        self.tape_agent(audio);
        let messages = MediaFrames::new(&self.stream_sid);
        for frame in audio.chunks(FRAME_BYTES) {
            if let Flow::Gone = ready(&mut self.ws).await {
                return Flow::Gone;
            }
            let mut padded = [hotline_audio::ulaw::SILENCE; FRAME_BYTES];
            padded[..frame.len()].copy_from_slice(frame);
            if let Flow::Gone = queue(&mut self.ws, Message::Text(messages.frame(&padded).into())) {
                return Flow::Gone;
            }
        }
        self.stats.frames_out += frames as u64;
        debug!(event = "media_tx", frames);
        Flow::Continue
    }

    pub(super) async fn send_mark(&mut self, name: String) -> Flow {
        info!(event = "mark_sent", name);
        self.note("mark_sent", &[("name", Field::Str(&name))]);
        self.stats.marks_sent += 1;
        self.send(&Outbound::Mark { stream_sid: self.stream_sid.clone(), mark: Mark { name } }).await
    }

    /// A mark of the host's own (the realtime agent's measure of what was
    /// heard): one per chunk of reply audio, so not logged or recorded.
    async fn send_host_mark(&mut self, name: String) -> Flow {
        self.stats.marks_sent += 1;
        self.send(&Outbound::Mark { stream_sid: self.stream_sid.clone(), mark: Mark { name } }).await
    }

    pub(super) async fn send_clear(&mut self) -> Flow {
        self.tape_clear();
        self.send(&Outbound::Clear { stream_sid: self.stream_sid.clone() }).await
    }

    async fn send(&mut self, message: &Outbound) -> Flow {
        if let Flow::Gone = ready(&mut self.ws).await {
            return Flow::Gone;
        }
        let json = serde_json::to_string(message).expect("outbound messages always serialize");
        queue(&mut self.ws, Message::Text(json.into()))
    }
}

/// Waits until the socket takes another message (at once, unless the peer
/// has fallen behind); with [`queue`], what `feed` does, except that the
/// message is made after the wait, so no call's task keeps room for one
/// across it.
async fn ready<S: AsyncRead + AsyncWrite + Unpin>(ws: &mut WebSocketStream<S>) -> Flow {
    written(std::future::poll_fn(|cx| ws.poll_ready_unpin(cx))).await
}

/// Hands a message to the socket, after [`ready`]: it goes out with the
/// dispatch's flush.
fn queue<S: AsyncRead + AsyncWrite + Unpin>(ws: &mut WebSocketStream<S>, message: Message) -> Flow {
    match ws.start_send_unpin(message) {
        Ok(()) => Flow::Continue,
        Err(_) => Flow::Gone,
    }
}

/// A peer that has not taken what was written for this long has stopped
/// reading (Twilio reads continuously): the call ends rather than wait, or
/// buffer, without limit.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// Waits for a write, a flush or a close to go through. Cheap when it goes
/// through at once, as it nearly always does: the timer is armed only if
/// the write has to wait.
pub(super) async fn written(op: impl Future<Output = Result<(), WsError>>) -> Flow {
    match tokio::time::timeout(WRITE_TIMEOUT, op).await {
        Ok(Ok(())) => Flow::Continue,
        Ok(Err(_)) => Flow::Gone,
        Err(_) => {
            warn!(event = "ws_write_timeout", after_secs = WRITE_TIMEOUT.as_secs());
            Flow::Gone
        }
    }
}

fn guest_log(entry: LogEntry) {
    info!(target: "hotline::guest", event = %entry.event, "{}", Fields(&entry.fields));
}

/// A guest log's fields as `key=value ...`, written straight into the line
/// (the guest logs several times per utterance of every call).
struct Fields<'a>(&'a [(String, String)]);

impl std::fmt::Display for Fields<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (key, value)) in self.0.iter().enumerate() {
            let sep = if i == 0 { "" } else { " " };
            write!(f, "{sep}{key}={value}")?;
        }
        Ok(())
    }
}

/// The guest's timers: ids are the guest's own, per call; setting an id
/// again restarts it. A call has one or two at a time, so a short list does
/// (a timer wheel, such as tokio-util's `DelayQueue`, allocates kilobytes
/// up front in every call).
#[derive(Default)]
pub(super) struct Timers {
    due: Vec<(u32, Instant)>,
}

impl Timers {
    pub fn set(&mut self, id: u32, after: Duration) {
        self.cancel(id);
        self.due.push((id, Instant::now() + after));
    }

    pub fn cancel(&mut self, id: u32) {
        self.due.retain(|&(timer, _)| timer != id);
    }

    /// The next timer to fire; pending while none is set. Cancel-safe: a
    /// timer leaves the list only when this returns it.
    pub async fn next(&mut self) -> u32 {
        let Some(&(id, at)) = self.due.iter().min_by_key(|&&(_, at)| at) else {
            return std::future::pending().await;
        };
        tokio::time::sleep_until(at).await;
        self.cancel(id);
        id
    }
}
