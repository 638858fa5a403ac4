//! The contract (`wit/`), as Rust types: the one `bindgen!` per supported
//! version of `hotline:call`, and the one path (`sandbox::wit::…`) by which
//! the rest of the host reaches the contract's types.

pub(super) mod bindings {
    wasmtime::component::bindgen!({
        path: "wit",
        world: "agent",
        additional_derives: [PartialEq],
        imports: { default: async },
        exports: { default: async },
    });
}

pub use bindings::hotline::call::types::{
    CallMode, Config, Effect, Event, LogEntry, Media, ProviderError, ProviderKind, Providers, ReplyText, Role,
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
            Event::Stopped => "stopped",
        }
    }
}
