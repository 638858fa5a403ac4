//! The provider work of one call. The guest's `transcribe`, `think` and
//! `speak` effects become tasks; what they produce comes back as events
//! through one channel that the call loop reads like any other input.
//!
//! `cancel` (barge-in, an abandoned turn, a failed one) aborts every task:
//! dropping a request's future closes its connection, so the provider stops
//! generating. Results already in the channel carry the epoch they were
//! started in, and a cancel moves to a new epoch: late text or audio of a
//! cancelled turn never reaches the guest.
//!
//! Speech is synthesized one `speak` at a time, in order, by one worker per
//! epoch: the guest expects `speech-audio` for its oldest pending `speak`.
//!
//! Each turn ends in one `turn` log line with its timings (`turn_log.rs`).
//!
//! The guest's fetches (`media/fetch.rs`) run here too, as *lasting* tasks:
//! they belong to the call logic, not to a turn, so `cancel` leaves them
//! alone and their results are delivered whatever the epoch. Only the end
//! of the call aborts them.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::task::AbortHandle;
use tracing::{Instrument, Span, debug, info, warn};

use super::listen::Listener;
use super::realtime::{self, Note, Realtime};
use super::turn_log::{Outcome, TurnTimes, TurnTiming, ms_since};
use crate::convert::Convert;
use crate::providers::retry::{retry_once, retry_wanted};
use crate::providers::{self, Message, Pcm, ProviderKind, Providers, Tool, ToolCall};
use crate::sandbox::wit::{self, Event};

type Report = (u64, Event);

/// A result for the call: to its guest, to its record, or both.
pub struct Delivery {
    pub event: Event,
    pub to_guest: bool,
    pub to_record: bool,
}

/// The epoch of a lasting task's result: delivered in every epoch.
const LASTING: u64 = u64::MAX;

pub struct Work {
    providers: Arc<Providers>,
    /// Made on the first request: an echo call never has one (a tokio
    /// channel allocates a block of slots up front, in every call).
    channel: Option<(UnboundedSender<Report>, UnboundedReceiver<Report>)>,
    epoch: u64,
    tasks: Vec<AbortHandle>,
    /// Tasks `cancel` leaves alone (the guest's fetches).
    lasting: Vec<AbortHandle>,
    /// Streaming speech-to-text, started by the call's first frame when
    /// the provider streams (`listen.rs`).
    listener: Option<Arc<Listener>>,
    /// The realtime agent's session, from the call's first effect for it
    /// (`realtime.rs`).
    realtime: Option<Realtime>,
    /// Texts for this epoch's speech worker.
    speech: Option<UnboundedSender<String>>,
    timing: Option<TurnTiming>,
    turns: u32,
    /// The reply streamed so far, for the `llm_text` debug line.
    reply: String,
    /// The trailing silence that ends an utterance, for the turn log.
    eou_ms: u32,
    /// Turns ended since the call last took them (for its metrics and
    /// record; taken after every event, so it holds a turn or two).
    finished: Vec<TurnTimes>,
}

impl Work {
    pub fn new(providers: Arc<Providers>, eou_ms: u32) -> Work {
        Work {
            providers,
            channel: None,
            epoch: 0,
            tasks: Vec::new(),
            lasting: Vec::new(),
            listener: None,
            realtime: None,
            speech: None,
            timing: None,
            turns: 0,
            reply: String::new(),
            eou_ms,
            finished: Vec::new(),
        }
    }

    /// The turns that ended since the last time this was asked.
    pub fn finished_turns(&mut self) -> impl Iterator<Item = TurnTimes> + '_ {
        self.finished.drain(..)
    }

    /// The next result of current work (pending while there is none).
    pub async fn next(&mut self) -> Delivery {
        loop {
            let (epoch, note) = tokio::select! {
                (epoch, event) = next_report(&mut self.channel) => (epoch, Note::Event(event)),
                (epoch, note) = next_note(&mut self.realtime) => (epoch, note),
            };
            if epoch != self.epoch && epoch != LASTING {
                continue;
            }
            let (event, to_guest, to_record) = match note {
                Note::Event(event) => (event, true, true),
                Note::Guest(event) => (event, true, false),
                Note::Record(event) => return Delivery { event, to_guest: false, to_record: true },
                Note::Item { id, content_index } => {
                    if let Some(rt) = &mut self.realtime {
                        rt.begin_item(id, content_index);
                    }
                    continue;
                }
            };
            if let Some(rt) = &mut self.realtime {
                rt.observe(&event);
            }
            self.observe(&event);
            return Delivery { event, to_guest, to_record };
        }
    }

    /// The realtime agent's session, started on first use.
    fn realtime(&mut self) -> Option<&mut Realtime> {
        if self.realtime.is_none() {
            let agent = self.providers.realtime.clone()?;
            self.realtime = Some(Realtime::start(agent, self.providers.clone()));
        }
        self.realtime.as_mut()
    }

    /// The call sent `bytes` of the guest's audio to Twilio: a host mark to
    /// follow them, when the realtime agent needs to know when they are heard.
    pub fn played(&mut self, bytes: usize) -> Option<String> {
        self.realtime.as_mut()?.played(bytes)
    }

    /// Twilio echoed `name`: true if it was the host's own (not the guest's).
    pub fn mark_played(&mut self, name: &str) -> bool {
        self.realtime.as_mut().is_some_and(|rt| rt.mark_played(name))
    }

    /// The guest cleared Twilio's audio.
    pub fn cleared(&mut self) {
        if let Some(rt) = &mut self.realtime {
            rt.cleared();
        }
    }

    /// A frame of the caller's μ-law: to the streaming speech-to-text, if
    /// there is one and the call logic can use it (all three providers).
    pub fn media(&mut self, ulaw: &[u8]) {
        if self.providers.realtime.is_some() {
            return; // it hears the utterance whole, when it ends
        }
        if let Some(listener) = self.listener() {
            listener.audio(ulaw);
        }
    }

    fn listener(&mut self) -> Option<&Arc<Listener>> {
        if self.listener.is_none() {
            let stt = self.providers.listen.clone().filter(|_| self.providers.complete())?;
            // Partials belong to no turn: delivered whatever the epoch.
            let partial = self.lasting_reporter();
            self.listener = Some(Arc::new(Listener::start(stt, partial)));
        }
        self.listener.as_ref()
    }

    pub fn transcribe(&mut self, utterance: wit::Utterance) {
        self.end_turn(Outcome::NoAudio);
        self.turns += 1;
        self.timing = Some(TurnTiming::new(self.turns));
        let epoch = self.epoch;
        if let Some(rt) = self.realtime() {
            rt.utterance(&utterance.samples);
            let heard = wit::Transcript { text: realtime::PLACEHOLDER_TRANSCRIPT.into(), is_final: true };
            return rt.note(epoch, Note::Guest(Event::Transcript(heard)));
        }
        if let Some(listener) = self.listener().cloned() {
            // The words are (mostly) in already: one flush brings the rest.
            let rate = utterance.sample_rate.max(1) as u64;
            let utterance_ms = utterance.samples.len() as u64 * 1000 / rate;
            let silence_ms = u64::from(self.eou_ms);
            let (providers, report) = (self.providers.clone(), self.reporter());
            return self.spawn(async move {
                let result = listener.finalize(utterance_ms, silence_ms).await;
                report(match finish(&providers, ProviderKind::Stt, result) {
                    Ok(text) => Event::Transcript(wit::Transcript { text, is_final: true }),
                    Err(e) => Event::ProviderError(e),
                });
            });
        }
        let Some(stt) = self.providers.stt.clone() else { return self.missing(ProviderKind::Stt) };
        let pcm: Pcm = utterance.convert();
        let retry_delay = self.providers.settings.retry_delay;
        let (providers, report) = (self.providers.clone(), self.reporter());
        self.spawn(async move {
            let result = retry_once(ProviderKind::Stt, retry_delay, || stt.transcribe(pcm.clone())).await;
            report(match finish(&providers, ProviderKind::Stt, result) {
                Ok(text) => Event::Transcript(wit::Transcript { text, is_final: true }),
                Err(e) => Event::ProviderError(e),
            });
        });
    }

    pub fn think(&mut self, thought: wit::Thought) {
        if let Some(t) = &mut self.timing {
            t.think_at = Some(Instant::now());
        }
        let epoch = self.epoch;
        if let Some(rt) = self.realtime() {
            return rt.respond(epoch, thought);
        }
        let Some(llm) = self.providers.llm.clone() else { return self.missing(ProviderKind::Llm) };
        let messages: Vec<Message> = thought.turns.into_iter().map(Convert::convert).collect();
        let tools: Vec<Tool> = thought.tools.into_iter().map(Convert::convert).collect();
        let (providers, report) = (self.providers.clone(), self.reporter());
        self.spawn(async move {
            let mut delta = |d: &str| report(Event::ReplyText(wit::ReplyText { delta: d.to_string(), done: false }));
            let result = llm.reply(&messages, &tools, &mut delta).await;
            match finish(&providers, ProviderKind::Llm, result) {
                Ok(calls) => {
                    // The contract's order: the calls, then the reply's end.
                    if !calls.is_empty() {
                        log_tool_calls(&calls);
                        report(Event::ToolCalls(calls.into_iter().map(Convert::convert).collect()));
                    }
                    report(Event::ReplyText(wit::ReplyText { delta: String::new(), done: true }));
                }
                Err(e) => report(Event::ProviderError(e)),
            }
        });
    }

    pub fn speak(&mut self, text: String) {
        if let Some(t) = self.timing.as_mut().filter(|t| t.speak_at.is_none()) {
            t.speak_at = Some(Instant::now());
        }
        let epoch = self.epoch;
        if let Some(rt) = self.realtime() {
            return rt.speak(epoch, text);
        }
        if self.speech.is_none() {
            let Some(tts) = self.providers.tts.clone() else { return self.missing(ProviderKind::Tts) };
            let (tx, rx) = unbounded_channel();
            self.speech = Some(tx);
            let worker = speech_worker(tts, self.providers.clone(), rx, self.reporter());
            self.spawn(worker);
        }
        if let Some(speech) = &self.speech {
            let _ = speech.send(text);
        }
    }

    /// Aborts everything in flight; what it would still have produced is
    /// dropped.
    pub fn cancel(&mut self) {
        let aborted = self.tasks.iter().filter(|t| !t.is_finished()).count();
        for task in self.tasks.drain(..) {
            task.abort();
        }
        self.speech = None;
        self.reply.clear();
        self.epoch += 1;
        if let Some(rt) = &mut self.realtime {
            rt.cancel(self.epoch);
        }
        info!(event = "provider_cancel", aborted);
        self.end_turn(Outcome::Cancelled);
    }

    /// The call flushed media frames to Twilio.
    pub fn audio_sent(&mut self) {
        if self.timing.as_ref().is_some_and(|t| t.tts_first_byte_ms.is_some()) {
            self.end_turn(Outcome::Spoken);
        }
    }

    /// Timings from the events as the call loop receives them; the
    /// reply text (kept past the turn's timing, which ends at its first
    /// audio) for the debug log.
    fn observe(&mut self, event: &Event) {
        if let Event::ReplyText(r) = event {
            self.reply.push_str(&r.delta);
            if r.done {
                debug!(event = "llm_text", turn = self.turns, text = %self.reply);
                self.reply.clear();
            }
        }
        let Some(t) = &mut self.timing else { return };
        match event {
            Event::Transcript(tr) if tr.is_final => {
                t.stt_ms = Some(t.since_eou());
                debug!(event = "stt_text", turn = t.turn, text = %tr.text);
            }
            Event::ReplyText(r) if t.llm_first_token_ms.is_none() && !r.delta.is_empty() => {
                t.llm_first_token_ms = t.think_at.map(ms_since);
            }
            Event::SpeechAudio(_) if t.tts_first_byte_ms.is_none() => {
                t.tts_first_byte_ms = Some(t.speak_at.map(ms_since).unwrap_or(0.0));
            }
            Event::ProviderError(_) => self.end_turn(Outcome::Failed),
            _ => {}
        }
    }

    fn end_turn(&mut self, outcome: Outcome) {
        if let Some(t) = self.timing.take() {
            let times = t.log(outcome, self.eou_ms);
            self.finished.push(times);
        }
    }

    fn missing(&mut self, kind: ProviderKind) {
        warn!(event = "provider_missing", kind = kind.name());
        let message = format!("no {} provider is configured", kind.name());
        let error = wit::ProviderError { kind: kind.convert(), message };
        (self.reporter())(Event::ProviderError(error));
    }

    /// Hands the guest the host's own answer to one of its effects (a
    /// refused fetch or transfer) through the call loop, as a result would
    /// come back (never from inside the guest's own dispatch). Lasting: it
    /// answers the call logic, not a turn, so a `cancel` in the same
    /// dispatch does not drop it (each `fetch` gets exactly one `fetched`).
    pub fn report(&mut self, event: Event) {
        (self.lasting_reporter())(event);
    }

    /// Sends events delivered whatever the epoch.
    fn lasting_reporter(&mut self) -> impl Fn(Event) + Send + Sync + 'static {
        let tx = self.sender().clone();
        move |event| {
            let _ = tx.send((LASTING, event));
        }
    }

    /// Sends an event tagged with the current epoch.
    fn reporter(&mut self) -> impl Fn(Event) + Send + Sync + 'static {
        let epoch = self.epoch;
        let tx = self.sender().clone();
        move |event| {
            let _ = tx.send((epoch, event));
        }
    }

    fn sender(&mut self) -> &UnboundedSender<Report> {
        &self.channel.get_or_insert_with(unbounded_channel).0
    }

    /// Runs `task` until it is done or the call ends (never cancelled
    /// with the turn); the event it ends with goes to the guest.
    pub fn spawn_lasting(&mut self, task: impl Future<Output = Event> + Send + 'static) {
        let report = self.lasting_reporter();
        let task = async move { report(task.await) };
        self.lasting.retain(|t| !t.is_finished());
        self.lasting.push(tokio::spawn(task.instrument(Span::current())).abort_handle());
    }

    /// Lasting tasks not done yet.
    pub fn lasting_in_flight(&mut self) -> usize {
        self.lasting.retain(|t| !t.is_finished());
        self.lasting.len()
    }

    fn spawn(&mut self, task: impl Future<Output = ()> + Send + 'static) {
        self.tasks.retain(|t| !t.is_finished());
        self.tasks.push(tokio::spawn(task.instrument(Span::current())).abort_handle());
    }
}

async fn next_report(channel: &mut Option<(UnboundedSender<Report>, UnboundedReceiver<Report>)>) -> Report {
    // We hold a sender, so the channel never closes.
    let Some((_, rx)) = channel.as_mut() else { return std::future::pending().await };
    match rx.recv().await {
        Some(report) => report,
        None => std::future::pending().await,
    }
}

async fn next_note(realtime: &mut Option<Realtime>) -> (u64, Note) {
    // The call holds a sender too: the channel never closes.
    let Some(rt) = realtime.as_mut() else { return std::future::pending().await };
    match rt.notes.recv().await {
        Some(note) => note,
        None => std::future::pending().await,
    }
}

impl Drop for Work {
    fn drop(&mut self) {
        // The call is over: nobody wants these results.
        for task in self.tasks.iter().chain(&self.lasting) {
            task.abort();
        }
    }
}

/// Synthesizes the texts one after another; each ends with a `done` chunk.
async fn speech_worker(
    tts: Arc<dyn providers::TextToSpeech>,
    providers: Arc<Providers>,
    mut texts: UnboundedReceiver<String>,
    report: impl Fn(Event) + Send + Sync + 'static,
) {
    while let Some(text) = texts.recv().await {
        // The rate of the last chunk: the closing `done` chunk repeats it,
        // so the guest's resampler flushes instead of starting over.
        let rate = AtomicU32::new(0);
        let cache = &providers.speech_cache;
        if let Some(chunks) = cache.get(&text) {
            debug!(event = "tts_cache_hit", chars = text.len());
            for pcm in chunks.iter() {
                rate.store(pcm.rate, Ordering::Relaxed);
                let samples = pcm.samples.clone();
                report(Event::SpeechAudio(wit::SpeechAudio { samples, sample_rate: pcm.rate, done: false }));
            }
            report(speech_done(rate.load(Ordering::Relaxed)));
            continue;
        }
        let mut kept = cache.wants(&text).then(Vec::new);
        let mut audio = |pcm: Pcm| {
            rate.store(pcm.rate, Ordering::Relaxed);
            if let Some(kept) = &mut kept {
                kept.push(pcm.clone());
            }
            report(Event::SpeechAudio(wit::SpeechAudio { samples: pcm.samples, sample_rate: pcm.rate, done: false }));
        };
        let mut result = tts.speak(&text, &mut audio).await;
        // Never once audio has been handed on: it would play twice.
        if retry_wanted(ProviderKind::Tts, &result, rate.load(Ordering::Relaxed) == 0) {
            tokio::time::sleep(providers.settings.retry_delay).await;
            result = tts.speak(&text, &mut audio).await;
        }
        if let (Ok(()), Some(kept)) = (&result, kept) {
            cache.put(&text, kept);
        }
        match finish(&providers, ProviderKind::Tts, result) {
            Ok(()) => report(speech_done(rate.load(Ordering::Relaxed))),
            Err(e) => return report(Event::ProviderError(e)),
        }
    }
}

/// The `done` chunk that closes a `speak`, at the rate of its last chunk
/// (0: none came, the call's own rate).
fn speech_done(rate: u32) -> Event {
    let sample_rate = if rate == 0 { hotline_audio::SAMPLE_RATE } else { rate };
    Event::SpeechAudio(wit::SpeechAudio { samples: Vec::new(), sample_rate, done: true })
}

/// Names and count only: the arguments may hold what the caller said
/// (names, numbers), so they are logged at debug level at most.
fn log_tool_calls(calls: &[ToolCall]) {
    let names: Vec<&str> = calls.iter().map(|c| c.name.as_str()).collect();
    info!(event = "llm_tool_calls", count = calls.len(), names = %names.join(","));
    for call in calls {
        debug!(event = "llm_tool_call_arguments", id = %call.id, name = %call.name, arguments = %call.arguments);
    }
}

/// Records the outcome in the provider's health; a failure becomes what
/// the guest's `provider-error` event carries.
fn finish<T>(providers: &Providers, kind: ProviderKind, result: providers::Result<T>) -> Result<T, wit::ProviderError> {
    match result {
        Ok(value) => {
            providers.health.ok(kind);
            Ok(value)
        }
        Err(e) => {
            let message = e.to_string();
            warn!(event = "provider_error", kind = kind.name(), error = %message);
            providers.health.failed(kind, e.class(), &message);
            Err(wit::ProviderError { kind: kind.convert(), message })
        }
    }
}
