//! Every conversion between the host's own types and the contract's, in
//! one place. Routes, calls and provider work use these `From` impls and
//! never build one side from the other by hand.

use super::wit;
use crate::config::{CallMode, Config};
use crate::providers::{self, Choice, Message, Pcm, ProviderKind, ProviderSettings, Tool, ToolCall};

impl From<CallMode> for wit::CallMode {
    fn from(mode: CallMode) -> Self {
        match mode {
            CallMode::Stream => wit::CallMode::Stream,
            CallMode::Record => wit::CallMode::Record,
        }
    }
}

/// Which providers a call has: those the settings chose.
impl From<&ProviderSettings> for wit::Providers {
    fn from(s: &ProviderSettings) -> Self {
        // The realtime agent hears, thinks and speaks: the call logic runs its AI path.
        let all = s.realtime_agent.is_some();
        wit::Providers {
            stt: all || s.stt != Choice::None,
            llm: all || s.llm != Choice::None,
            tts: all || s.tts != Choice::None,
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
            providers: wit::Providers::from(&c.providers),
            greeting: c.providers.greeting.clone(),
            system_prompt: c.providers.system_prompt.clone(),
            transfer_to: c.control.transfer_to.clone(),
            voicemail_message: c.control.voicemail_message.clone(),
            variables: c.fetch.variables.clone(),
        }
    }
}

/// `inbound` or `outbound`, as `media::record::direction_of` names them.
impl From<&str> for wit::Direction {
    fn from(direction: &str) -> Self {
        if direction == "outbound" { wit::Direction::Outbound } else { wit::Direction::Inbound }
    }
}

impl From<ProviderKind> for wit::ProviderKind {
    fn from(kind: ProviderKind) -> Self {
        match kind {
            ProviderKind::Stt => wit::ProviderKind::Stt,
            ProviderKind::Llm => wit::ProviderKind::Llm,
            ProviderKind::Tts => wit::ProviderKind::Tts,
        }
    }
}

impl From<wit::Turn> for Message {
    fn from(turn: wit::Turn) -> Self {
        let role = match turn.role {
            wit::Role::System => providers::Role::System,
            wit::Role::User => providers::Role::User,
            wit::Role::Assistant => providers::Role::Assistant,
            wit::Role::Tool => providers::Role::Tool,
        };
        let tool_calls = turn.tool_calls.into_iter().map(ToolCall::from).collect();
        Message { role, content: turn.text, tool_calls, tool_call_id: turn.tool_call_id }
    }
}

impl From<wit::Tool> for Tool {
    fn from(t: wit::Tool) -> Self {
        Tool { name: t.name, description: t.description, parameters: t.parameters }
    }
}

impl From<wit::ToolCall> for ToolCall {
    fn from(c: wit::ToolCall) -> Self {
        ToolCall { id: c.id, name: c.name, arguments: c.arguments }
    }
}

impl From<ToolCall> for wit::ToolCall {
    fn from(c: ToolCall) -> Self {
        wit::ToolCall { id: c.id, name: c.name, arguments: c.arguments }
    }
}

impl From<wit::Utterance> for Pcm {
    fn from(u: wit::Utterance) -> Self {
        Pcm { samples: u.samples, rate: u.sample_rate }
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
