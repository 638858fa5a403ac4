//! The per-call turn-taking state machine:
//! `LISTENING → THINKING → SPEAKING → LISTENING`.
//!
//! Time is media time: the machine counts the samples it is handed, so the
//! same audio always yields the same decisions, in a test or on a call.
//!
//! With no providers configured it is an echo agent: each utterance is
//! played back to the caller. With providers it asks the host to transcribe,
//! think and speak, through the same effects: the reply is spoken sentence
//! by sentence as the LLM streams it, a filler covers a slow turn, an
//! apology covers a failed one, and a barge-in cancels whatever is in
//! flight and keeps in the history only what the caller heard.
//!
//! Its state is kept in three parts, each with the code that changes it:
//! the caller's audio (`listening`), what is played and heard (`playback`)
//! and the providers' turn (`reply`). A snapshot is not these structs:
//! `crate::snapshot` is the format, and converts.

mod control;
mod listening;
mod playback;
mod reply;
mod tools;

#[cfg(test)]
mod tests;

use hotline_audio::chunked::ChunkedAudio;
use hotline_audio::endpoint::{EndpointConfig, Endpointer};

pub(crate) use listening::Caller;
pub(crate) use playback::{Playback, Segment};
pub(crate) use reply::{Ai, Awaiting};
pub(crate) use tools::Tools;
pub use tools::{END_CALL, Ending, MAX_TOOL_ROUNDS, TRANSFER_TO_HUMAN};

use crate::bindings::hotline::call::types::{Config, Effect, Event, LogEntry, Started};

const GREETING_MARK: &str = "greeting";
const GREETING_TEXT: &str = "Hello! This is hotline. How can I help?";
const SYSTEM_PROMPT: &str = "You are a friendly phone agent. Answer in one or two short spoken sentences.";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Listening,
    Thinking,
    Speaking,
    Ended,
}

impl State {
    fn name(self) -> &'static str {
        match self {
            State::Listening => "listening",
            State::Thinking => "thinking",
            State::Speaking => "speaking",
            State::Ended => "ended",
        }
    }
}

/// The call's tuning, fixed when it starts: the host's settings as they
/// come with `started`. The host defines them, with their defaults and
/// ranges (docs/configuration.md); the guest takes them as they are.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) eou_silence_ms: u32,
    pub(crate) barge_in_ms: u32,
    pub(crate) max_utterance_ms: u32,
    /// 0 disables the filler.
    pub(crate) fallback_ms: u32,
    pub(crate) ai: bool,
    pub(crate) system_prompt: String,
    /// Where `transfer_to_human` hands the caller; none: not offered.
    pub(crate) transfer_to: Option<String>,
    /// Left on an answering machine after its beep; none: hang up.
    pub(crate) voicemail_message: Option<String>,
}

impl From<&Config> for Settings {
    fn from(c: &Config) -> Self {
        Settings {
            eou_silence_ms: c.eou_silence_ms,
            barge_in_ms: c.barge_in_ms,
            max_utterance_ms: c.max_utterance_ms,
            fallback_ms: c.fallback_ms,
            ai: c.providers.stt && c.providers.llm && c.providers.tts,
            system_prompt: text_or(&c.system_prompt, SYSTEM_PROMPT),
            transfer_to: c.transfer_to.as_deref().map(str::trim).filter(|t| !t.is_empty()).map(str::to_string),
            voicemail_message: c
                .voicemail_message
                .as_deref()
                .map(str::trim)
                .filter(|t| !t.is_empty())
                .map(str::to_string),
        }
    }
}

/// The settings of a machine not yet `started`. It must have some (the
/// session exists before its first event), but until `started` replaces
/// them it ignores caller audio and has no turn in progress, so none of the
/// numbers is ever acted on: they are placeholders, not defaults. The
/// endpointer's own default only makes the early endpointer a valid one.
impl Default for Settings {
    fn default() -> Self {
        Settings {
            eou_silence_ms: EndpointConfig::default().eou_silence_ms,
            barge_in_ms: 0,
            max_utterance_ms: 0,
            fallback_ms: 0,
            ai: false,
            system_prompt: SYSTEM_PROMPT.to_string(),
            transfer_to: None,
            voicemail_message: None,
        }
    }
}

impl Settings {
    pub(crate) fn endpoint_config(&self) -> EndpointConfig {
        EndpointConfig { eou_silence_ms: self.eou_silence_ms, ..EndpointConfig::default() }
    }
}

/// The configured text, unless it is blank.
fn text_or(configured: &Option<String>, default: &str) -> String {
    configured.as_deref().map(str::trim).filter(|t| !t.is_empty()).unwrap_or(default).to_string()
}

#[derive(Debug, Clone)]
pub struct Machine {
    pub(crate) settings: Settings,
    pub(crate) state: State,
    /// Caller audio counts, and the greeting is played, from `Started` on.
    pub(crate) started: bool,
    /// Media time seen so far, from the sample count.
    pub(crate) media_ms: u64,
    pub(crate) caller: Caller,
    pub(crate) playback: Playback,
    pub(crate) ai: Ai,
    pub(crate) tools: Tools,
}

impl Default for Machine {
    fn default() -> Self {
        let settings = Settings::default();
        Machine {
            caller: Caller::new(Endpointer::new(settings.endpoint_config()), ChunkedAudio::new(), 0),
            settings,
            state: State::Listening,
            started: false,
            media_ms: 0,
            playback: Playback::default(),
            ai: Ai::default(),
            tools: Tools::default(),
        }
    }
}

fn log(event: &str, fields: &[(&str, String)]) -> Effect {
    Effect::Log(LogEntry {
        event: event.to_string(),
        fields: fields.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(),
    })
}

impl Machine {
    pub fn snapshot(&self) -> Vec<u8> {
        crate::snapshot::write(self)
    }

    /// Reads a snapshot of this schema or an older one it still knows.
    pub fn restore(bytes: &[u8]) -> Result<Machine, String> {
        crate::snapshot::read(bytes)
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// Says `text` as the agent's next reply, through text-to-speech (so
    /// only with providers): for call logic on top of this machine that
    /// answers something itself, such as the result of a lookup.
    pub fn say(&mut self, text: &str) -> Vec<Effect> {
        let mut fx = Vec::new();
        self.say_next(text.to_string(), &mut fx);
        fx
    }

    /// Speaks `text` after whatever the agent is saying (or as a new reply).
    pub(super) fn say_next(&mut self, text: String, fx: &mut Vec<Effect>) {
        if self.state != State::Speaking {
            self.begin_reply(fx);
        }
        self.speak(text, fx);
        self.playback.reply_complete = true;
    }

    pub fn handle(&mut self, event: Event) -> Vec<Effect> {
        let mut fx = Vec::new();
        if self.state == State::Ended {
            return fx;
        }
        match event {
            Event::Started(s) => self.on_started(s, &mut fx),
            Event::Media(m) => self.on_media(&m.payload, &mut fx),
            Event::MarkPlayed(name) => self.on_mark(name, &mut fx),
            Event::Dtmf(digit) => fx.push(log("dtmf", &[("digit", digit.to_string())])),
            Event::Timer(reply::FALLBACK_TIMER) => self.on_fallback_timer(&mut fx),
            Event::Timer(id) => fx.push(log("timer_unexpected", &[("id", id.to_string())])),
            Event::Transcript(t) => self.on_transcript(t, &mut fx),
            Event::ReplyText(r) => self.on_reply_text(r, &mut fx),
            Event::SpeechAudio(a) => self.on_speech_audio(a, &mut fx),
            Event::ProviderError(e) => self.on_provider_error(e, &mut fx),
            Event::Restarted(r) => self.on_restarted(r, &mut fx),
            Event::ToolCalls(calls) => self.on_tool_calls(calls, &mut fx),
            Event::AnsweredBy(verdict) => self.on_answered_by(verdict, &mut fx),
            Event::TransferFailed(failed) => self.on_transfer_failed(failed, &mut fx),
            // Never asked for by this agent (a wrapper's own fetches): noted, nothing else.
            Event::Fetched(_) => fx.push(log("event_ignored", &[])),
            Event::Stopped => {
                fx.push(log(
                    "call_end",
                    &[("turns", self.playback.turn.to_string()), ("media_ms", self.media_ms.to_string())],
                ));
                self.set_state(State::Ended, &mut fx);
            }
        }
        fx
    }

    fn set_state(&mut self, to: State, fx: &mut Vec<Effect>) {
        if self.state != to {
            fx.push(log(
                "state",
                &[("from", self.state.name().into()), ("to", to.name().into()), ("at_ms", self.media_ms.to_string())],
            ));
            self.state = to;
        }
    }

    fn on_started(&mut self, s: Started, fx: &mut Vec<Effect>) {
        if self.started {
            fx.push(log("start_repeated", &[]));
            return;
        }
        self.started = true;
        self.settings = Settings::from(&s.config);
        self.caller.endpointer = Endpointer::new(self.settings.endpoint_config());
        let agent = if self.settings.ai { "ai" } else { "echo" };
        fx.push(log("agent", &[("mode", agent.into()), ("call_sid", s.call_sid)]));
        self.begin_reply(fx);
        if self.settings.ai {
            self.speak(text_or(&s.config.greeting, GREETING_TEXT), fx);
        } else {
            self.play_segment(
                [crate::prompts::play(&crate::prompts::GREETING)],
                GREETING_MARK.to_string(),
                String::new(),
                fx,
            );
        }
        self.playback.reply_complete = true;
    }
}
