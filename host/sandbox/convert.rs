//! Every conversion between the host's own types and the contract's, in
//! one place. Routes, calls and provider work use these `From` impls and
//! never build one side from the other by hand.

use super::wit;
use crate::config::{CallMode, Config};
use crate::providers::{self, Choice, Message, Pcm, ProviderKind, ProviderSettings};

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
        wit::Providers { stt: s.stt != Choice::None, llm: s.llm != Choice::None, tts: s.tts != Choice::None }
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
        Message { role, content: turn.text }
    }
}

impl From<wit::Utterance> for Pcm {
    fn from(u: wit::Utterance) -> Self {
        Pcm { samples: u.samples, rate: u.sample_rate }
    }
}
