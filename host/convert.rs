//! Every conversion between the host's own types and the contract's, in
//! one place. Routes, calls and provider work use these (`From` where the
//! host defines one side, [`Convert`] where neither side is this crate's)
//! and never build one side from the other by hand.

use crate::config::{CallMode, Config};
use crate::providers::{self, Choice, Message, Pcm, ProviderKind, ProviderSettings, Tool, ToolCall};
use crate::sandbox::wit;

/// A conversion between two types this crate does not define (the
/// contract's and a floor's, such as the providers'), where the orphan rule
/// forbids `From`: the same conversions, named, and still all in this file.
pub trait Convert<T> {
    fn convert(self) -> T;
}

impl From<CallMode> for wit::CallMode {
    fn from(mode: CallMode) -> Self {
        match mode {
            CallMode::Stream => wit::CallMode::Stream,
            CallMode::Record => wit::CallMode::Record,
        }
    }
}

/// Which providers a call has: those the settings chose.
impl Convert<wit::Providers> for &ProviderSettings {
    fn convert(self) -> wit::Providers {
        // The realtime agent hears, thinks and speaks: the call logic runs its AI path.
        let all = self.realtime_agent.is_some();
        wit::Providers {
            stt: all || self.stt != Choice::None,
            llm: all || self.llm != Choice::None,
            tts: all || self.tts != Choice::None,
        }
    }
}

/// What each call's guest is told in `started`.
impl From<&Config> for wit::Config {
    fn from(c: &Config) -> Self {
        wit::Config {
            eou_silence_ms: c.eou_silence_ms,
            barge_in_ms: c.barge_in_ms,
            max_utterance_ms: c.max_utterance_ms,
            fallback_ms: c.fallback_ms,
            providers: (&c.providers).convert(),
            greeting: c.providers.greeting.clone(),
            system_prompt: c.providers.system_prompt.clone(),
            transfer_to: c.control.transfer_to.clone(),
            voicemail_message: c.control.voicemail_message.clone(),
            variables: c.fetch.variables.clone(),
        }
    }
}

/// `inbound` or `outbound`, as `media::params::direction_of` names them.
impl Convert<wit::Direction> for &str {
    fn convert(self) -> wit::Direction {
        if self == "outbound" { wit::Direction::Outbound } else { wit::Direction::Inbound }
    }
}

impl Convert<wit::ProviderKind> for ProviderKind {
    fn convert(self) -> wit::ProviderKind {
        match self {
            ProviderKind::Stt => wit::ProviderKind::Stt,
            ProviderKind::Llm => wit::ProviderKind::Llm,
            ProviderKind::Tts => wit::ProviderKind::Tts,
        }
    }
}

impl Convert<Message> for wit::Turn {
    fn convert(self) -> Message {
        let role = match self.role {
            wit::Role::System => providers::Role::System,
            wit::Role::User => providers::Role::User,
            wit::Role::Assistant => providers::Role::Assistant,
            wit::Role::Tool => providers::Role::Tool,
        };
        let tool_calls = self.tool_calls.into_iter().map(Convert::convert).collect();
        Message { role, content: self.text, tool_calls, tool_call_id: self.tool_call_id }
    }
}

impl Convert<Tool> for wit::Tool {
    fn convert(self) -> Tool {
        Tool { name: self.name, description: self.description, parameters: self.parameters }
    }
}

impl Convert<ToolCall> for wit::ToolCall {
    fn convert(self) -> ToolCall {
        ToolCall { id: self.id, name: self.name, arguments: self.arguments }
    }
}

impl Convert<wit::ToolCall> for ToolCall {
    fn convert(self) -> wit::ToolCall {
        wit::ToolCall { id: self.id, name: self.name, arguments: self.arguments }
    }
}

impl Convert<Pcm> for wit::Utterance {
    fn convert(self) -> Pcm {
        Pcm { samples: self.samples, rate: self.sample_rate }
    }
}

/// Twilio's `DialCallStatus` values (the `<Dial action>` webhook) and the
/// contract's.
const DIAL_STATUS: [(&str, wit::DialStatus); 6] = [
    ("completed", wit::DialStatus::Completed),
    ("answered", wit::DialStatus::Answered),
    ("busy", wit::DialStatus::Busy),
    ("no-answer", wit::DialStatus::NoAnswer),
    ("failed", wit::DialStatus::Failed),
    ("canceled", wit::DialStatus::Canceled),
];

/// Twilio's `AnsweredBy` values (asynchronous answering-machine detection)
/// and the contract's.
const ANSWERED_BY: [(&str, wit::AnsweredBy); 7] = [
    ("human", wit::AnsweredBy::Human),
    ("machine_start", wit::AnsweredBy::MachineStart),
    ("machine_end_beep", wit::AnsweredBy::MachineEndBeep),
    ("machine_end_silence", wit::AnsweredBy::MachineEndSilence),
    ("machine_end_other", wit::AnsweredBy::MachineEndOther),
    ("fax", wit::AnsweredBy::Fax),
    ("unknown", wit::AnsweredBy::Unknown),
];

/// `None` for a value Twilio does not send.
pub fn dial_status(twilio: &str) -> Option<wit::DialStatus> {
    DIAL_STATUS.iter().find(|(name, _)| *name == twilio).map(|(_, s)| *s)
}

/// `None` for a value Twilio does not send.
pub fn answered_by(twilio: &str) -> Option<wit::AnsweredBy> {
    ANSWERED_BY.iter().find(|(name, _)| *name == twilio).map(|(_, a)| *a)
}

/// The verdict as Twilio spells it.
pub fn answered_by_name(verdict: wit::AnsweredBy) -> &'static str {
    ANSWERED_BY.iter().find(|(_, a)| *a == verdict).map_or("unknown", |(name, _)| name)
}
