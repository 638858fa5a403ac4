//! The contract (`wit/`), as Rust types: one `bindgen!` per supported
//! version of `hotline:call`, and the one path (`sandbox::wit::…`) by which
//! the rest of the host reaches the contract's types, always those of the
//! newest version.
//!
//! Older versions live in modules of their own (`v0_1.rs`) with their
//! conversions to and from the newest; `sandbox/guest.rs` picks the
//! version a component was built against and converts at the boundary.
//! `wit/README.md` has the rule: a released version never changes.

pub(super) mod v0_1;

/// `hotline:call@0.2.0`, the newest contract.
pub(super) mod bindings {
    wasmtime::component::bindgen!({
        path: "wit/v0.2.0",
        world: "agent",
        additional_derives: [PartialEq],
        imports: { default: async },
        exports: { default: async },
    });
}

pub use bindings::hotline::call::types::{
    CallMode, Config, Effect, Event, LogEntry, Media, ProviderError, ProviderKind, Providers, ReplyText, Restart, Role,
    SpeechAudio, Started, Timer, Transcript, Turn, TwimlError, Utterance, Webhook,
};

impl Event {
    /// The case's name as the contract spells it, for messages and logs.
    pub fn name(&self) -> &'static str {
        match self {
            Event::Started(_) => "started",
            Event::Media(_) => "media",
            Event::MarkPlayed(_) => "mark-played",
            Event::Dtmf(_) => "dtmf",
            Event::Timer(_) => "timer",
            Event::Transcript(_) => "transcript",
            Event::ReplyText(_) => "reply-text",
            Event::SpeechAudio(_) => "speech-audio",
            Event::ProviderError(_) => "provider-error",
            Event::Restarted(_) => "restarted",
            Event::Stopped => "stopped",
        }
    }
}
