//! A call answered by OpenAI's Realtime API (`HOTLINE_AGENT=realtime`):
//! speech to speech over one WebSocket, with the guest still in charge of
//! turn-taking. The guest's effects are mapped onto the session, so the
//! contract does not change and any call logic that runs the AI path
//! (its greeting, prompt, tools, `fetch`es) runs here too:
//!
//! - `transcribe(utterance)` → the utterance's μ-law replaces the input
//!   buffer and is committed (`clear`, `append`s, `commit`); the guest is
//!   answered at once with a placeholder transcript, so it `think`s now.
//!   The real words come later (the session transcribes its input) and go
//!   to the call's record only.
//! - `think(thought)` → the function outputs of its trailing `tool` turns,
//!   a `session.update` when its system prompt or tools changed, then
//!   `response.create`. The conversation itself lives in the session: the
//!   guest's history is not sent.
//! - The response's audio transcript streams to the guest as `reply-text`
//!   (it cuts sentences and `speak`s them, as on the pipeline), its
//!   μ-law as `speech-audio` at 8 kHz (no resampling), its function calls as
//!   `tool-calls`, and `response.done` as the `reply-text` that is done.
//! - The guest's `speak`s of that text are answered with the response's
//!   audio: all of it goes to the first (the audio has no sentence
//!   boundaries to split it at), the others close empty after it. The
//!   audio is held until the guest has a `speak` for it; when the first
//!   audio comes before any whole sentence, the guest is handed a sentence
//!   break (`...`, for the guest only, never the record), so it speaks at
//!   once rather than after the first sentence has been generated.
//! - Any other `speak` (the greeting, a goodbye, a wrapper's `say`) is the
//!   call logic's own words: a response that says exactly them, in the
//!   session's voice, kept in the conversation.
//! - `cancel` → `response.cancel`, and with `clear` (a barge-in) the
//!   model's record of its own speech is cut at what the caller heard:
//!   `conversation.item.truncate` at the item's audio played up to the
//!   newest host mark Twilio echoed, plus the time since (bounded by the
//!   next mark).
//!
//! One task per call owns the socket (`Session`). A socket that drops is
//! reconnected at once, the session configured again and the conversation
//! so far replayed as text; a response it was giving fails (the guest
//! apologizes and listens); an utterance sent while it was down goes out
//! once it is back.

use std::collections::VecDeque;
use std::sync::Arc;

use hotline_audio::{SAMPLE_RATE, ulaw};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::task::AbortHandle;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tracing::{Instrument, Span, debug, info, warn};

use super::reconnect::{self, Opened, Read, Reconnect};
use crate::convert::Convert;
use crate::providers::realtime_agent::{RealtimeAgent, ServerEvent, client};
use crate::providers::streaming::{self, Socket};
use crate::providers::{ProviderError, ProviderKind, Providers, Role, Tool};
use crate::sandbox::wit::{self, Event};

/// μ-law bytes per millisecond at 8 kHz.
const BYTES_PER_MS: u64 = 8;
/// An utterance goes in appends of a second each.
const APPEND_BYTES: usize = 8000;
/// Turns of the conversation a new session is told (the newest).
const REPLAYED_TURNS: usize = 40;
/// What the guest is told the caller said: the model hears the audio
/// itself, and the words, transcribed later, go to the record.
pub const PLACEHOLDER_TRANSCRIPT: &str = "[audio]";
/// The host's own marks in the reply's audio (never seen by the guest).
const MARK_PREFIX: &str = "rt-";
/// An epoch for results that belong to no turn.
pub const ANY_EPOCH: u64 = u64::MAX;

/// What the session task hands the call, tagged with the epoch of the work
/// it belongs to.
pub enum Note {
    /// A provider result: to the guest and the record.
    Event(Event),
    /// To the guest only: the host's own shaping (the placeholder
    /// transcript, a sentence break).
    Guest(Event),
    /// To the record only: the caller's words.
    Record(Event),
    /// The reply audio that follows is this item's.
    Item { id: String, content_index: u32 },
}

enum Command {
    Utterance(Vec<u8>),
    Respond {
        epoch: u64,
        instructions: String,
        tools: Vec<Tool>,
        outputs: Vec<(String, String)>,
    },
    Say {
        epoch: u64,
        text: String,
    },
    /// The guest has a `speak` of the reply in progress.
    Spoken {
        epoch: u64,
    },
    /// Stop what is in progress; work of epochs before `epoch` is dropped.
    Cancel {
        epoch: u64,
        truncate: Option<Truncate>,
    },
    Truncate(Truncate),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Truncate {
    pub item_id: String,
    pub content_index: u32,
    pub audio_end_ms: u64,
}

/// The call's side: what it tells the session, and what it knows of the
/// reply's audio on its way to the caller. Dropping it ends the session.
pub struct Realtime {
    commands: UnboundedSender<Command>,
    notes_tx: UnboundedSender<(u64, Note)>,
    pub notes: UnboundedReceiver<(u64, Note)>,
    task: AbortHandle,
    /// Reply text the guest was given and has not `speak`ed yet.
    unmatched: String,
    item: Option<ItemAudio>,
    marks: u64,
}

/// One item's audio: given to the guest, sent to Twilio, heard.
struct ItemAudio {
    id: String,
    content_index: u32,
    delivered: u64,
    sent: u64,
    /// Bytes heard at the newest echoed mark, and when it came.
    heard: (u64, Instant),
    /// Marks sent and not echoed: (number, bytes sent before it).
    pending: VecDeque<(u64, u64)>,
    /// Truncated already (a clear, then the cancel, of one barge-in).
    cut: bool,
}

impl Realtime {
    pub fn start(agent: Arc<RealtimeAgent>, providers: Arc<Providers>) -> Realtime {
        let (commands, rx) = unbounded_channel();
        let (notes_tx, notes) = unbounded_channel();
        let session = Session::new(agent, providers, notes_tx.clone());
        let task = tokio::spawn(session.run(rx).instrument(Span::current())).abort_handle();
        Realtime { commands, notes_tx, notes, task, unmatched: String::new(), item: None, marks: 0 }
    }

    fn send(&self, command: Command) {
        let _ = self.commands.send(command);
    }

    /// Tells the guest something now, through the call's notes.
    pub fn note(&self, epoch: u64, note: Note) {
        let _ = self.notes_tx.send((epoch, note));
    }

    pub fn utterance(&mut self, samples: &[i16]) {
        let mut ulaw_bytes = Vec::with_capacity(samples.len());
        ulaw::encode_into(samples, &mut ulaw_bytes);
        self.send(Command::Utterance(ulaw_bytes));
    }

    pub fn respond(&mut self, epoch: u64, thought: wit::Thought) {
        self.unmatched.clear();
        let turns = &thought.turns;
        let instructions = turns.iter().find(|t| t.role == wit::Role::System).map(|t| t.text.clone());
        // The tool results not yet in the session: the turns after the last
        // assistant turn that called tools.
        let outputs = turns
            .iter()
            .rev()
            .take_while(|t| t.role == wit::Role::Tool)
            .filter_map(|t| Some((t.tool_call_id.clone()?, t.text.clone())))
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let tools = thought.tools.into_iter().map(Convert::convert).collect();
        self.send(Command::Respond { epoch, instructions: instructions.unwrap_or_default(), tools, outputs });
    }

    /// A `speak` of the guest: a sentence of the reply in progress (its
    /// audio is already coming), or words of its own to be said.
    pub fn speak(&mut self, epoch: u64, text: String) {
        let rest = self.unmatched.trim_start();
        if !text.is_empty() && rest.starts_with(text.as_str()) {
            self.unmatched = rest[text.len()..].to_string();
            self.send(Command::Spoken { epoch });
        } else {
            self.send(Command::Say { epoch, text });
        }
    }

    /// The guest's `cancel` (a barge-in, an abandoned turn): the response
    /// stops, and the item's audio is cut at what was heard.
    pub fn cancel(&mut self, epoch: u64) {
        self.unmatched.clear();
        let truncate = self.interrupt(false);
        self.send(Command::Cancel { epoch, truncate });
    }

    /// The guest's `clear`: a barge-in after the whole reply was given
    /// (no `cancel` follows), or the filler cut as the reply begins (none of
    /// the item was sent: nothing to truncate).
    pub fn cleared(&mut self) {
        if let Some(truncate) = self.interrupt(true) {
            self.send(Command::Truncate(truncate));
        }
    }

    /// What the caller heard of the item, once per item.
    fn interrupt(&mut self, only_if_sent: bool) -> Option<Truncate> {
        let item = self.item.as_mut().filter(|i| !i.cut && i.delivered > 0)?;
        if only_if_sent && item.sent == 0 {
            return None;
        }
        let (at_mark, since) = item.heard;
        // Twilio plays in real time after the newest echo, up to what the
        // next mark covers (nothing beyond it had been sent).
        let bound = item.pending.front().map_or(item.sent, |&(_, bytes)| bytes);
        let heard = (at_mark + since.elapsed().as_millis() as u64 * BYTES_PER_MS).min(bound).max(at_mark);
        item.cut = true;
        item.pending.clear();
        if heard >= item.delivered {
            return None; // heard to its end
        }
        let audio_end_ms = heard / BYTES_PER_MS;
        info!(event = "realtime_heard", item = %item.id, audio_end_ms, delivered_ms = item.delivered / BYTES_PER_MS);
        Some(Truncate { item_id: item.id.clone(), content_index: item.content_index, audio_end_ms })
    }

    /// Notes what the guest is handed: reply text to match its `speak`s
    /// against, audio of the current item.
    pub fn observe(&mut self, event: &Event) {
        match event {
            Event::ReplyText(r) => self.unmatched.push_str(&r.delta),
            Event::SpeechAudio(a) => {
                if let Some(item) = &mut self.item {
                    item.delivered += a.samples.len() as u64;
                }
            }
            _ => {}
        }
    }

    pub fn begin_item(&mut self, id: String, content_index: u32) {
        let now = Instant::now();
        let item = ItemAudio {
            id,
            content_index,
            delivered: 0,
            sent: 0,
            heard: (0, now),
            pending: VecDeque::new(),
            cut: false,
        };
        self.item = Some(item);
    }

    /// The call sent `bytes` of audio to Twilio: while they are the item's,
    /// a host mark to follow them, whose echo says they were heard.
    pub fn played(&mut self, bytes: usize) -> Option<String> {
        let item = self.item.as_mut().filter(|i| !i.cut && i.sent < i.delivered)?;
        if item.sent == 0 {
            item.heard.1 = Instant::now(); // it starts playing now
        }
        // The guest pads the last frame: that silence is not the item's.
        item.sent = (item.sent + bytes as u64).min(item.delivered);
        self.marks += 1;
        item.pending.push_back((self.marks, item.sent));
        Some(format!("{MARK_PREFIX}{}", self.marks))
    }

    /// Twilio echoed a mark: true if it was one of the host's (the guest
    /// never hears of those).
    pub fn mark_played(&mut self, name: &str) -> bool {
        let Some(number) = name.strip_prefix(MARK_PREFIX).and_then(|n| n.parse::<u64>().ok()) else { return false };
        if let Some(item) = &mut self.item
            && let Some(at) = item.pending.iter().position(|&(n, _)| n == number)
        {
            let (_, bytes) = item.pending[at];
            item.pending.drain(..=at);
            item.heard = (bytes, Instant::now());
        }
        true
    }
}

impl Drop for Realtime {
    fn drop(&mut self) {
        // It closes the socket once the commands stop.
        super::task::abort_after_grace(&self.task);
    }
}

/// A response asked for, waiting for the one in progress to end.
struct Job {
    epoch: u64,
    say: Option<String>,
}

/// The response in progress.
struct Response {
    epoch: u64,
    /// The call logic's own words (else a reply to the conversation).
    say: bool,
    /// `response.created` came: an error now is not about its creation.
    created: bool,
    cancelled: bool,
    /// The guest's `speak`s of this reply so far: the first carries the audio.
    speaks: u32,
    /// Audio that came before the guest had a `speak` for it.
    held: Vec<u8>,
    audio: bool,
    /// A sentence break was handed to the guest.
    broke: bool,
    text: String,
    calls: Vec<wit::ToolCall>,
    item: Option<String>,
}

/// The reply that ended last: the guest may still `speak` its last words.
struct Ended {
    epoch: u64,
    /// Its audio still waits for a `speak` to carry it.
    held: Option<Vec<u8>>,
}

struct Session {
    agent: Arc<RealtimeAgent>,
    providers: Arc<Providers>,
    notes: UnboundedSender<(u64, Note)>,
    socket: Option<Socket>,
    reconnect: Reconnect,
    instructions: String,
    tools: Vec<Tool>,
    /// The `session.update` this socket's session last got.
    configured: Option<String>,
    /// The conversation as text, for a new session: a caller's turn waits
    /// for its transcription (None until then).
    history: Vec<(Role, Option<String>)>,
    jobs: VecDeque<Job>,
    active: Option<Response>,
    ended: Option<Ended>,
    /// An utterance the socket was down for.
    unsent: Option<Vec<u8>>,
    /// Work of epochs before this was cancelled.
    epoch: u64,
    /// The items this socket's session made (another's cannot be truncated here).
    items: Vec<String>,
}

impl Session {
    fn new(agent: Arc<RealtimeAgent>, providers: Arc<Providers>, notes: UnboundedSender<(u64, Note)>) -> Session {
        Session {
            agent,
            providers,
            notes,
            socket: None,
            reconnect: Reconnect::default(),
            instructions: String::new(),
            tools: Vec::new(),
            configured: None,
            history: Vec::new(),
            jobs: VecDeque::new(),
            active: None,
            ended: None,
            unsent: None,
            epoch: 0,
            items: Vec::new(),
        }
    }

    async fn run(mut self, mut commands: UnboundedReceiver<Command>) {
        self.reconnect().await;
        loop {
            let heard = reconnect::next(self.socket.as_mut());
            tokio::select! {
                command = commands.recv() => match command {
                    Some(command) => self.command(command).await,
                    None => break,
                },
                message = heard => self.on_message(message).await,
            }
        }
        if let Some(mut socket) = self.socket.take() {
            let _ = socket.close(None).await;
        }
    }

    fn note(&self, epoch: u64, note: Note) {
        let _ = self.notes.send((epoch, note));
    }

    fn audio(&self, epoch: u64, ulaw_bytes: &[u8], done: bool) {
        let mut samples = Vec::with_capacity(ulaw_bytes.len());
        ulaw::decode_into(ulaw_bytes, &mut samples);
        let audio = wit::SpeechAudio { samples, sample_rate: SAMPLE_RATE, done };
        self.note(epoch, Note::Event(Event::SpeechAudio(audio)));
    }

    async fn command(&mut self, command: Command) {
        match command {
            Command::Utterance(audio) => {
                self.history.push((Role::User, None));
                if self.socket.is_none() {
                    self.unsent = Some(audio);
                    return self.reconnect().await;
                }
                self.send_utterance(audio).await;
            }
            Command::Respond { epoch, instructions, tools, outputs } => {
                if epoch < self.epoch {
                    return;
                }
                (self.instructions, self.tools) = (instructions, tools);
                let messages: Vec<Message> = outputs.iter().map(|(id, out)| client::function_output(id, out)).collect();
                self.send_all(messages).await;
                self.jobs.push_back(Job { epoch, say: None });
                self.next_job().await;
            }
            Command::Say { epoch, text } => {
                if epoch < self.epoch {
                    return;
                }
                self.jobs.push_back(Job { epoch, say: Some(text) });
                self.next_job().await;
            }
            Command::Spoken { epoch } => self.spoken(epoch),
            Command::Cancel { epoch, truncate } => {
                self.epoch = epoch;
                self.jobs.retain(|j| j.epoch >= epoch);
                self.ended = None;
                let mut messages = Vec::new();
                if let Some(active) = self.active.as_mut().filter(|a| !a.cancelled) {
                    active.cancelled = true;
                    messages.push(client::cancel());
                }
                if let Some(t) = truncate.filter(|t| self.items.contains(&t.item_id)) {
                    messages.push(client::truncate(&t.item_id, t.content_index, t.audio_end_ms));
                }
                info!(event = "realtime_cancel", responses = messages.len());
                self.send_all(messages).await;
            }
            Command::Truncate(t) if self.items.contains(&t.item_id) => {
                // A barge-in: the response, if it still runs, stops first
                // (the guest's `cancel` follows in the same breath).
                let mut messages = Vec::new();
                if let Some(active) = self.active.as_mut().filter(|a| !a.cancelled) {
                    active.cancelled = true;
                    messages.push(client::cancel());
                }
                messages.push(client::truncate(&t.item_id, t.content_index, t.audio_end_ms));
                self.send_all(messages).await;
            }
            // An item of a session gone with its socket.
            Command::Truncate(_) => {}
        }
    }

    async fn send_utterance(&mut self, audio: Vec<u8>) {
        info!(event = "realtime_commit", audio_ms = audio.len() as u64 / BYTES_PER_MS);
        let mut messages = vec![client::clear()];
        messages.extend(audio.chunks(APPEND_BYTES).map(client::append));
        messages.push(client::commit());
        self.send_all(messages).await;
    }

    /// The guest `speak`s a sentence of the reply: the first releases the
    /// audio held for it; one after the reply's end closes at once.
    fn spoken(&mut self, epoch: u64) {
        if let Some(r) = self.active.as_mut().filter(|r| r.epoch == epoch && !r.say) {
            r.speaks += 1;
            if r.speaks == 1 && !r.held.is_empty() {
                let held = std::mem::take(&mut r.held);
                self.audio(epoch, &held, false);
            }
            return;
        }
        let Some(ended) = self.ended.as_mut().filter(|e| e.epoch == epoch) else { return };
        match ended.held.take() {
            // The reply's audio, whole, and its end.
            Some(held) => {
                self.audio(epoch, &held, false);
                self.audio(epoch, &[], true);
            }
            None => self.audio(epoch, &[], true),
        }
    }

    async fn next_job(&mut self) {
        if self.active.is_some() {
            return;
        }
        while let Some(job) = self.jobs.pop_front() {
            if job.epoch < self.epoch {
                continue;
            }
            if self.socket.is_none() {
                self.reconnect().await;
            }
            if self.socket.is_none() {
                let error = ProviderError::Connect("the realtime session is down".into());
                self.failed(job.epoch, &error);
                continue;
            }
            let mut messages = Vec::new();
            if job.say.is_none() {
                match self.session_update() {
                    Ok(Some(update)) => messages.push(update),
                    Ok(None) => {}
                    Err(e) => {
                        self.failed(job.epoch, &e);
                        continue;
                    }
                }
            }
            messages.push(match &job.say {
                Some(text) => client::say(text),
                None => client::respond(),
            });
            debug!(event = "realtime_response", say = job.say.is_some());
            self.active = Some(Response {
                epoch: job.epoch,
                say: job.say.is_some(),
                created: false,
                cancelled: false,
                speaks: 0,
                held: Vec::new(),
                audio: false,
                broke: false,
                text: String::new(),
                calls: Vec::new(),
                item: None,
            });
            self.send_all(messages).await;
            return;
        }
    }

    /// The `session.update` for the prompt and tools, if this session has
    /// not had it yet.
    fn session_update(&mut self) -> Result<Option<Message>, ProviderError> {
        let update = self.agent.session_update(&self.instructions, &self.tools)?;
        let text = update.to_text().unwrap_or_default().to_string();
        if self.configured.as_deref() == Some(text.as_str()) {
            return Ok(None);
        }
        self.configured = Some(text);
        Ok(Some(update))
    }

    /// A response (or one asked for) that cannot be: the guest hears of it
    /// as of any provider's failure.
    fn failed(&self, epoch: u64, error: &ProviderError) {
        let message = error.to_string();
        warn!(event = "realtime_response_failed", error = %message);
        self.providers.health.failed(ProviderKind::Llm, error.class(), &message);
        let error = wit::ProviderError { kind: ProviderKind::Llm.convert(), message };
        self.note(epoch, Note::Event(Event::ProviderError(error)));
    }

    async fn on_message(&mut self, message: Read) {
        let text = match message {
            Read::Text(text) => text,
            Read::Nothing => return,
            Read::Lost(why) => return self.lost(&why).await,
        };
        match crate::providers::realtime_agent::read(text.as_str()) {
            Ok(event) => self.on_event(event).await,
            Err(e) => warn!(event = "realtime_bad_message", error = %e),
        }
    }

    async fn on_event(&mut self, event: ServerEvent) {
        match event {
            ServerEvent::ResponseCreated => {
                if let Some(r) = &mut self.active {
                    r.created = true;
                }
            }
            ServerEvent::Transcript { delta } => {
                let Some(r) = self.active.as_mut().filter(|r| !r.cancelled) else { return };
                r.text.push_str(&delta);
                if !r.say {
                    let reply = wit::ReplyText { delta, done: false };
                    let epoch = r.epoch;
                    self.note(epoch, Note::Event(Event::ReplyText(reply)));
                }
            }
            ServerEvent::Audio { item_id, content_index, ulaw } => self.on_audio(item_id, content_index, ulaw),
            ServerEvent::FunctionCall { call_id, name, arguments } => {
                let Some(r) = self.active.as_mut().filter(|r| !r.cancelled) else { return };
                info!(event = "llm_tool_calls", count = 1, names = %name);
                r.calls.push(wit::ToolCall { id: call_id, name, arguments });
            }
            ServerEvent::ResponseDone { status, reason } => {
                let Some(r) = self.active.take() else { return };
                self.response_done(r, &status, reason);
                self.next_job().await;
            }
            ServerEvent::CallerWords { transcript } => {
                debug!(event = "stt_text", text = %transcript);
                if let Some(slot) = self.history.iter_mut().find(|(role, text)| *role == Role::User && text.is_none()) {
                    slot.1 = Some(transcript.clone());
                }
                let words = wit::Transcript { text: transcript, is_final: true };
                self.note(ANY_EPOCH, Note::Record(Event::Transcript(words)));
            }
            ServerEvent::Error { code, message } => {
                warn!(event = "realtime_error", code = %code, message = %message);
                // An error before `response.created` refuses the response
                // just asked for: the guest must not wait for it.
                if self.active.as_ref().is_some_and(|r| !r.created && !r.cancelled)
                    && let Some(r) = self.active.take()
                {
                    self.failed(r.epoch, &ProviderError::Protocol(format!("{code}: {message}")));
                    self.next_job().await;
                }
            }
            ServerEvent::Other => {}
        }
    }

    fn on_audio(&mut self, item_id: String, content_index: u32, audio: Vec<u8>) {
        let Some(r) = self.active.as_mut().filter(|r| !r.cancelled) else { return };
        let epoch = r.epoch;
        if r.item.as_deref() != Some(item_id.as_str()) {
            r.item = Some(item_id.clone());
            self.items.push(item_id.clone());
            let _ = self.notes.send((epoch, Note::Item { id: item_id, content_index }));
        }
        r.audio = true;
        if !r.say && r.speaks == 0 && !r.broke {
            r.broke = true;
            if let Some(delta) = sentence_break(&r.text) {
                let reply = wit::ReplyText { delta: delta.into(), done: false };
                let _ = self.notes.send((epoch, Note::Guest(Event::ReplyText(reply))));
            }
        }
        if r.say || r.speaks > 0 {
            self.audio(epoch, &audio, false);
        } else {
            r.held.extend_from_slice(&audio);
        }
    }

    fn response_done(&mut self, r: Response, status: &str, reason: Option<String>) {
        debug!(event = "realtime_response_done", status, audio = r.audio, speaks = r.speaks);
        if r.cancelled {
            return; // the guest has moved on
        }
        if status == "failed" {
            let why = reason.unwrap_or_else(|| "the response failed".into());
            return self.failed(r.epoch, &ProviderError::Stream(why));
        }
        // `completed`, `incomplete` (cut short: what came is played).
        self.providers.health.ok(ProviderKind::Llm);
        self.history.push((Role::Assistant, Some(r.text.clone())));
        let epoch = r.epoch;
        if r.say {
            self.audio(epoch, &[], true);
            return;
        }
        // The `speak` that carried the audio, then the others of this reply.
        let mut ended = Ended { epoch, held: None };
        if r.speaks == 0 && r.audio {
            ended.held = Some(r.held); // for the `speak` still to come
        }
        for _ in 0..r.speaks {
            self.audio(epoch, &[], true);
        }
        self.ended = Some(ended);
        if !r.calls.is_empty() {
            self.note(epoch, Note::Event(Event::ToolCalls(r.calls)));
        }
        let done = wit::ReplyText { delta: String::new(), done: true };
        self.note(epoch, Note::Event(Event::ReplyText(done)));
    }

    async fn send_all(&mut self, messages: Vec<Message>) {
        if messages.is_empty() {
            return;
        }
        let Some(socket) = self.socket.as_mut() else { return };
        if let Err(e) = streaming::send_batch(socket, messages).await {
            self.lost(&e.to_string()).await;
        }
    }

    /// The socket broke: the response it was giving fails, a new one is
    /// opened at once and told what was said.
    async fn lost(&mut self, why: &str) {
        warn!(event = "realtime_stream_lost", reason = why);
        self.socket = None;
        if let Some(r) = self.active.take()
            && !r.cancelled
        {
            self.failed(r.epoch, &ProviderError::Stream(why.to_string()));
        }
        self.boxed_reconnect().await;
    }

    fn boxed_reconnect(&mut self) -> futures_util::future::BoxFuture<'_, ()> {
        Box::pin(self.reconnect())
    }

    async fn reconnect(&mut self) {
        let agent = &self.agent;
        let failed = |attempt: usize, e: &ProviderError| warn!(event = "realtime_connect_failed", attempt, error = %e);
        let Opened::Open { socket, attempt } = self.reconnect.open(|| agent.connect(), failed).await else { return };
        self.socket = Some(socket);
        self.configured = None;
        self.items.clear();
        info!(event = "realtime_open", model = self.agent.model(), attempt, replayed = self.replayable());
        self.resume().await
    }

    fn replayable(&self) -> usize {
        self.history.iter().filter(|(_, text)| text.is_some()).count().min(REPLAYED_TURNS)
    }

    /// A new socket: the session configured, the conversation so far told,
    /// then what was waiting for it.
    async fn resume(&mut self) {
        let mut messages = Vec::new();
        match self.session_update() {
            Ok(Some(update)) => messages.push(update),
            Ok(None) => {}
            Err(e) => warn!(event = "realtime_bad_session", error = %e),
        }
        let said: Vec<&(Role, Option<String>)> = self.history.iter().filter(|(_, text)| text.is_some()).collect();
        let from = said.len().saturating_sub(REPLAYED_TURNS);
        messages.extend(said[from..].iter().filter_map(|(role, text)| client::history(*role, text.as_deref()?)));
        self.send_boxed(messages).await;
        if let Some(audio) = self.unsent.take() {
            Box::pin(self.send_utterance(audio)).await;
        }
        Box::pin(self.next_job()).await;
    }

    fn send_boxed(&mut self, messages: Vec<Message>) -> futures_util::future::BoxFuture<'_, ()> {
        Box::pin(self.send_all(messages))
    }
}

/// What to hand the guest so that it `speak`s the reply's first words now:
/// nothing when its text already holds a whole sentence (as the default
/// agent cuts them: `.`, `!` or `?` then a space).
fn sentence_break(text: &str) -> Option<&'static str> {
    let bytes = text.as_bytes();
    let whole = (0..bytes.len().saturating_sub(1))
        .any(|i| matches!(bytes[i], b'.' | b'!' | b'?') && bytes[i + 1].is_ascii_whitespace());
    if whole {
        None
    } else if text.ends_with(['.', '!', '?']) {
        Some(" ")
    } else {
        Some("... ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sentence_break_only_when_the_text_has_no_whole_sentence() {
        assert_eq!(sentence_break(""), Some("... "));
        assert_eq!(sentence_break("Sure"), Some("... "));
        assert_eq!(sentence_break("Sure."), Some(" "));
        assert_eq!(sentence_break("Sure. I"), None);
    }
}
