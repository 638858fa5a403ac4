//! The contract (`wit/`), as Rust types: one `bindgen!` per supported
//! version of `hotline:call`, and the one path (`sandbox::wit::…`) by which
//! the rest of the host reaches the contract's types, always those of the
//! newest version.
//!
//! Older versions live in modules of their own (`v0_2.rs`, `v0_1.rs`), each
//! with its conversions to and from the version after it (so a new version
//! needs one new adapter, and the older ones chain through it); `sandbox/guest.rs` picks the
//! version a component was built against and converts at the boundary.
//! `wit/README.md` has the rule: a released version never changes.

pub(super) mod v0_1;
pub(super) mod v0_2;

/// The newest contract's version, named once: `bindgen!` below needs its
/// path as a literal, so a tidy test (`tests/it/tidy.rs`) holds that path,
/// `wit/`'s newest directory and the docs that name it to this.
pub const NEWEST: &str = "0.3.0";

/// `hotline:call@0.3.0`, the newest contract ([`NEWEST`]).
pub(super) mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit/v0.3.0",
        world: "agent",
        additional_derives: [PartialEq],
    });
}

pub use bindings::hotline::call::types::{
    AnsweredBy, CallMode, Config, DialStatus, Direction, Effect, Event, FetchError, Fetched, HttpRequest, HttpResponse,
    LogEntry, Media, ProviderError, ProviderKind, Providers, ReplyText, Restart, Role, SpeechAudio, Started, Thought,
    Timer, Tool, ToolCall, Transcript, Transfer, TransferFailed, Turn, TwimlError, Utterance, Webhook,
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
            Event::AnsweredBy(_) => "answered-by",
            Event::ToolCalls(_) => "tool-calls",
            Event::Fetched(_) => "fetched",
            Event::TransferFailed(_) => "transfer-failed",
            Event::Stopped => "stopped",
        }
    }
}
