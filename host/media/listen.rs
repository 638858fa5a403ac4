//! A call's streaming speech-to-text (`HOTLINE_STT=deepgram` or
//! `openai-realtime`): every
//! inbound frame goes to the provider as it arrives, so when the guest
//! asks to `transcribe` an utterance the words are mostly known already
//! and one flush (`finalize`) brings the rest.
//!
//! One task per call owns the provider's socket. It keeps the audio that
//! no final result covers yet: when the socket drops mid-call, it
//! reconnects and sends that audio again, so nothing the caller said is
//! lost. Partial results go to the guest as `transcript(text, false)`.
//!
//! A provider that finds its own endpoints (Deepgram) usually has the
//! utterance's words final before the guest's end-of-utterance silence is
//! over: then `finalize` answers at once, without a flush and its round
//! trip, which is what keeps the streaming path within a few milliseconds
//! of silence + LLM + TTS.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use futures_util::SinkExt;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::sync::oneshot;
use tokio::task::AbortHandle;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tracing::{Instrument, Span, debug, info, warn};

use super::reconnect::{self, Opened, Read, Reconnect};
use crate::providers::streaming::{self, Protocol, Socket};
use crate::providers::{Heard, ProviderError, StreamingStt};
use crate::sandbox::wit::{self, Event};

/// μ-law bytes per millisecond at 8 kHz.
const BYTES_PER_MS: u64 = 8;
/// How long a `finalize` waits for the provider's flushed result before
/// it answers with what it has (finals, then the latest partial).
const FINALIZE_WAIT: Duration = Duration::from_millis(1500);
/// Audio kept for a resend: past it the oldest goes (a provider that never
/// finalizes anything must not grow the call without bound).
const MAX_UNFINAL_BYTES: usize = 30 * 1000 * BYTES_PER_MS as usize;
/// Finals that end this long before an utterance began still count as
/// its words (the guest's pre-roll, the provider's timing).
const UTTERANCE_SLACK_MS: u64 = 500;
/// A provider that heard no audio this long gets a keep-alive.
const KEEP_ALIVE_AFTER: Duration = Duration::from_secs(5);

type Answer = oneshot::Sender<Result<String, ProviderError>>;

/// What answered a `finalize` (the `by` of `stt_final`).
#[derive(Clone, Copy, PartialEq)]
enum AnsweredBy {
    /// Finals the provider sent on its own already cover the voice.
    Endpoint,
    /// The provider's answer to the flush.
    Flush,
    /// No flushed answer in time: the finals and the latest partial.
    Timeout,
    /// The stream is down: what was heard before it went.
    Down,
}

impl AnsweredBy {
    fn name(self) -> &'static str {
        match self {
            AnsweredBy::Endpoint => "endpoint",
            AnsweredBy::Flush => "flush",
            AnsweredBy::Timeout => "timeout",
            AnsweredBy::Down => "down",
        }
    }
}

enum Request {
    Audio(Vec<u8>),
    /// Everything heard of the last `utterance_ms`, final; the voice
    /// ended `silence_ms` ago (the guest's end-of-utterance silence).
    Finalize {
        utterance_ms: u64,
        silence_ms: u64,
        answer: Answer,
    },
}

/// The call's side: drop it and the stream closes.
pub struct Listener {
    requests: UnboundedSender<Request>,
    task: AbortHandle,
}

impl Listener {
    /// Starts listening; partial results are handed to `partial`.
    pub fn start(stt: Arc<dyn StreamingStt>, partial: impl Fn(Event) + Send + Sync + 'static) -> Listener {
        let (requests, rx) = unbounded_channel();
        let task = tokio::spawn(listen(stt, rx, partial).instrument(Span::current())).abort_handle();
        Listener { requests, task }
    }

    pub fn audio(&self, ulaw: &[u8]) {
        let _ = self.requests.send(Request::Audio(ulaw.to_vec()));
    }

    /// The words of the utterance that ended now, `utterance_ms` long, its
    /// voice `silence_ms` ago.
    pub async fn finalize(&self, utterance_ms: u64, silence_ms: u64) -> Result<String, ProviderError> {
        let (answer, rx) = oneshot::channel();
        let gone = || ProviderError::Stream("the speech-to-text stream ended".into());
        self.requests.send(Request::Finalize { utterance_ms, silence_ms, answer }).map_err(|_| gone())?;
        rx.await.map_err(|_| gone())?
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        // It says goodbye to the provider once the channel closes.
        super::task::abort_after_grace(&self.task);
    }
}

/// A final result, where it ends in the call's audio.
struct Final {
    text: String,
    end_byte: u64,
}

/// One connection to the provider, and its side of the protocol.
struct Stream {
    socket: Socket,
    protocol: Box<dyn Protocol>,
}

struct State {
    stt: Arc<dyn StreamingStt>,
    stream: Option<Stream>,
    /// Audio since the listener started, in bytes.
    total: u64,
    /// Where the current connection's audio starts in the call's audio.
    base: u64,
    /// The audio no final covers yet, ending at `total`.
    unfinal: VecDeque<u8>,
    finals: Vec<Final>,
    partial: String,
    partials: u32,
    /// The `finalize` being answered, and when it was asked.
    waiting: Option<(Answer, Instant)>,
    /// How much of the end of `unfinal` that `finalize`'s utterance is (with
    /// the slack before it).
    utterance_bytes: u64,
    last_sent: Instant,
    /// The socket's reconnects (none for a while after a run of failed ones).
    reconnect: Reconnect,
}

async fn listen(stt: Arc<dyn StreamingStt>, mut requests: UnboundedReceiver<Request>, partial: impl Fn(Event)) {
    let mut s = State {
        stt,
        stream: None,
        total: 0,
        base: 0,
        unfinal: VecDeque::new(),
        finals: Vec::new(),
        partial: String::new(),
        partials: 0,
        waiting: None,
        utterance_bytes: 0,
        last_sent: Instant::now(),
        reconnect: Reconnect::default(),
    };
    s.reconnect().await;
    loop {
        let deadline = s.waiting.as_ref().map(|(_, asked)| *asked + FINALIZE_WAIT);
        let heard = reconnect::next(s.stream.as_mut().map(|stream| &mut stream.socket));
        tokio::select! {
            request = requests.recv() => match request {
                Some(Request::Audio(ulaw)) => s.audio(ulaw).await,
                Some(Request::Finalize { utterance_ms, silence_ms, answer }) => {
                    s.finalize(utterance_ms, silence_ms, answer).await
                }
                None => break,
            },
            message = heard => s.on_message(message, &partial).await,
            _ = sleep_until(deadline) => {
                warn!(event = "stt_finalize_timeout", provider = s.stt.name(), after_ms = FINALIZE_WAIT.as_millis() as u64);
                s.answer(AnsweredBy::Timeout);
            }
            _ = tokio::time::sleep_until(s.last_sent + KEEP_ALIVE_AFTER) => s.keep_alive().await,
        }
    }
    if let Some(mut stream) = s.stream.take() {
        let _ = stream.socket.close(None).await;
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl State {
    async fn audio(&mut self, ulaw: Vec<u8>) {
        self.total += ulaw.len() as u64;
        self.unfinal.extend(&ulaw);
        if self.unfinal.len() > MAX_UNFINAL_BYTES {
            let excess = self.unfinal.len() - MAX_UNFINAL_BYTES;
            self.unfinal.drain(..excess);
        }
        let Some(stream) = self.stream.as_mut() else {
            self.reconnect().await;
            return; // a new connection sends all of `unfinal`, this frame too
        };
        let message = stream.protocol.audio(&ulaw);
        self.send(message).await;
    }

    async fn finalize(&mut self, utterance_ms: u64, silence_ms: u64, answer: Answer) {
        let since = self.total.saturating_sub((utterance_ms + UTTERANCE_SLACK_MS) * BYTES_PER_MS);
        // Finals of earlier speech (noise, words the guest ignored) are not this utterance's.
        self.finals.retain(|f| f.end_byte > since);
        self.waiting = Some((answer, Instant::now()));
        self.utterance_bytes = (utterance_ms + UTTERANCE_SLACK_MS) * BYTES_PER_MS;
        // Nothing pending (no partial since the last final) and the last
        // final reaches past the voice: every word is in, no flush needed.
        let voice_end = self.total.saturating_sub(silence_ms * BYTES_PER_MS);
        if self.partial.is_empty() && self.finals.last().is_some_and(|f| f.end_byte >= voice_end) {
            return self.answer(AnsweredBy::Endpoint);
        }
        let utterance = self.utterance();
        let Some(stream) = self.stream.as_mut() else {
            // Connecting sends the flush once the audio is resent.
            return self.reconnect().await;
        };
        let messages = stream.protocol.finalize(&utterance);
        self.send_all(messages).await;
    }

    /// The audio of the utterance being finalized, as far as it is kept.
    fn utterance(&self) -> Vec<u8> {
        let len = (self.utterance_bytes as usize).min(self.unfinal.len());
        self.unfinal.range(self.unfinal.len() - len..).copied().collect()
    }

    /// Answers the `finalize` waiting, with the finals and, when the flush
    /// never came, the latest partial.
    fn answer(&mut self, by: AnsweredBy) {
        let Some((answer, asked)) = self.waiting.take() else { return };
        let mut words: Vec<String> = self.finals.drain(..).map(|f| f.text).filter(|t| !t.is_empty()).collect();
        if matches!(by, AnsweredBy::Timeout | AnsweredBy::Down) && !self.partial.is_empty() {
            words.push(std::mem::take(&mut self.partial));
        }
        let text = words.join(" ");
        let waited_ms = asked.elapsed().as_millis() as u64;
        info!(
            event = "stt_final",
            provider = self.stt.name(),
            by = by.name(),
            partials = self.partials,
            finalize_ms = waited_ms,
            chars = text.len()
        );
        debug!(event = "stt_final_text", text = %text);
        self.partials = 0;
        if self.stream.is_none() && text.is_empty() {
            let _ = answer.send(Err(ProviderError::Connect("the speech-to-text stream is down".into())));
        } else {
            let _ = answer.send(Ok(text));
        }
    }

    async fn on_message(&mut self, message: Read, partial: &impl Fn(Event)) {
        let text = match message {
            Read::Text(text) => text,
            Read::Nothing => return,
            Read::Lost(why) => return self.lost(&why).await,
        };
        let Some(stream) = self.stream.as_mut() else { return };
        match stream.protocol.heard(text.as_str()) {
            Ok(Heard::Partial(words)) => {
                if words.is_empty() || words == self.partial {
                    return;
                }
                self.partials += 1;
                debug!(event = "stt_partial", provider = self.stt.name(), text = %words);
                self.partial.clone_from(&words);
                partial(Event::Transcript(wit::Transcript { text: words, is_final: false }));
            }
            Ok(Heard::Final { text, end_ms, flushed }) => {
                let end_byte = self.base + end_ms * BYTES_PER_MS;
                let covered = end_byte.saturating_sub(self.total - self.unfinal.len() as u64);
                self.unfinal.drain(..(covered as usize).min(self.unfinal.len()));
                self.partial.clear();
                self.finals.push(Final { text, end_byte });
                if flushed {
                    self.answer(AnsweredBy::Flush);
                }
            }
            Ok(Heard::Nothing) => {}
            Err(e) => warn!(event = "stt_bad_message", provider = self.stt.name(), error = %e),
        }
    }

    async fn send(&mut self, message: Message) {
        let Some(stream) = self.stream.as_mut() else { return };
        self.last_sent = Instant::now();
        if let Err(e) = stream.socket.send(message).await {
            self.lost(&e.to_string()).await;
        }
    }

    /// Several messages, written together (a reconnect in between would
    /// send a flush of its own).
    async fn send_all(&mut self, messages: Vec<Message>) {
        let Some(stream) = self.stream.as_mut() else { return };
        self.last_sent = Instant::now();
        if let Err(e) = streaming::send_batch(&mut stream.socket, messages).await {
            self.lost(&e.to_string()).await;
        }
    }

    async fn keep_alive(&mut self) {
        self.last_sent = Instant::now();
        if let Some(message) = self.stream.as_mut().and_then(|stream| stream.protocol.keep_alive()) {
            self.send(message).await;
        }
    }

    /// The socket broke: connect again and send what is not final yet.
    async fn lost(&mut self, why: &str) {
        warn!(
            event = "stt_stream_lost",
            provider = self.stt.name(),
            reason = why,
            unfinal_ms = self.unfinal.len() as u64 / BYTES_PER_MS
        );
        self.stream = None;
        self.reconnect().await;
    }

    async fn reconnect(&mut self) {
        let stt = &self.stt;
        let failed = |attempt: usize, e: &ProviderError| {
            warn!(event = "stt_stream_failed", provider = stt.name(), attempt, error = %e);
        };
        match self.reconnect.open(|| stt.connect(), failed).await {
            Opened::Open { socket: (socket, protocol), attempt } => {
                self.stream = Some(Stream { socket, protocol });
                self.base = self.total - self.unfinal.len() as u64;
                info!(
                    event = "stt_stream_open",
                    provider = self.stt.name(),
                    attempt,
                    resent_ms = self.unfinal.len() as u64 / BYTES_PER_MS
                );
                self.resend().await
            }
            // Nobody can flush now: answer with what was heard.
            Opened::GaveUp => self.answer(AnsweredBy::Down),
            Opened::Down => {}
        }
    }

    /// Sends the audio no final covers yet (the start of a connection), and
    /// the flush a `finalize` was waiting for.
    async fn resend(&mut self) {
        let Some(stream) = self.stream.as_mut() else { return };
        let frames: Vec<Message> = {
            let (a, b) = self.unfinal.as_slices();
            [a, b].iter().flat_map(|part| part.chunks(1600)).map(|chunk| stream.protocol.audio(chunk)).collect()
        };
        let result = streaming::send_batch(&mut stream.socket, frames).await;
        self.last_sent = Instant::now();
        if let Err(e) = result {
            warn!(event = "stt_stream_lost", provider = self.stt.name(), reason = %e, unfinal_ms = self.unfinal.len() as u64 / BYTES_PER_MS);
            self.stream = None;
            return;
        }
        if self.waiting.is_some() {
            let utterance = self.utterance();
            if let Some(stream) = self.stream.as_mut() {
                let messages = stream.protocol.finalize(&utterance);
                self.send_boxed(messages).await;
            }
        }
    }

    /// `send_all` from inside a reconnect (which `send_all` itself may start).
    fn send_boxed(&mut self, messages: Vec<Message>) -> futures_util::future::BoxFuture<'_, ()> {
        Box::pin(self.send_all(messages))
    }
}
