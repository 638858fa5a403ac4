//! The default hotline call logic.
//!
//! Two exports (see `wit/v0.3.0/call.wit`): `incoming-call`, which turns the voice
//! webhook into TwiML, and the `session` resource, one per live call, which
//! is a pure state machine: an event in, a list of effects out. Nothing here
//! performs I/O or reads a clock; the host does both.
//!
//! This crate is a library so that other guests (the test probe, your own)
//! can reuse and wrap it; `hotline-guest-default` exports it as a component.

/// The contract this crate builds against: the newest `hotline:call`.
/// (Components built against older versions are kept as built, in
/// `tests/data/guests/`, to prove the host still serves them.)
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit/v0.3.0",
        world: "agent",
        pub_export_macro: true,
        default_bindings_module: "hotline_agent::bindings",
    });
}

mod alloc;
mod machine;
mod prompts;
mod snapshot;
mod twiml;

use std::cell::RefCell;
use std::marker::PhantomData;

use bindings::exports::hotline::call::{calls, incoming};
use bindings::hotline::call::types::{Effect, Event, Media, TwimlError, Webhook};

pub use bindings::export;
pub use machine::{END_CALL, Ending, MAX_TOOL_ROUNDS, Machine, TRANSFER_TO_HUMAN};
pub use snapshot::SNAPSHOT_SCHEMA;

/// The default agent: every event goes to the [`Machine`].
pub struct Plain;

impl Wrapper for Plain {
    fn handle(machine: &mut Machine, event: Event) -> Vec<Effect> {
        machine.handle(event)
    }
}

/// The default agent as a component.
pub type Agent = Wrapped<Plain>;

/// Call logic built on the default agent: it sees every event first and
/// decides what to do, usually handing most of them to the `Machine`.
/// `Wrapped<Self>` is then a complete guest (TwiML, sessions, snapshots
/// compatible with the default agent's, so live calls can migrate):
///
/// ```ignore
/// struct Keypad;
/// impl hotline_agent::Wrapper for Keypad {
///     fn handle(machine: &mut Machine, event: Event) -> Vec<Effect> {
///         match event {
///             Event::Dtmf('0') => vec![Effect::Hangup],
///             other => machine.handle(other),
///         }
///     }
/// }
/// type Guest = hotline_agent::Wrapped<Keypad>;
/// hotline_agent::export!(Guest);
/// ```
pub trait Wrapper: 'static {
    fn handle(machine: &mut Machine, event: Event) -> Vec<Effect>;
}

/// The guest a [`Wrapper`] makes.
pub struct Wrapped<W>(PhantomData<W>);

impl<W: Wrapper> incoming::Guest for Wrapped<W> {
    fn incoming_call(call: Webhook) -> Result<String, TwimlError> {
        twiml::respond(&call)
    }
}

impl<W: Wrapper> calls::Guest for Wrapped<W> {
    type Session = WrappedSession<W>;
}

pub struct WrappedSession<W>(RefCell<Machine>, Outbox, PhantomData<W>);

impl<W: Wrapper> calls::GuestSession for WrappedSession<W> {
    fn new() -> Self {
        Self(RefCell::new(Machine::default()), Outbox::default(), PhantomData)
    }

    fn handle(&self, event: Event) -> Vec<Effect> {
        W::handle(&mut self.0.borrow_mut(), event)
    }

    fn handle_media(&self, payload: Vec<u8>, timestamp_ms: u64) -> bool {
        self.1.hold(self.handle(media(payload, timestamp_ms)))
    }

    fn take_effects(&self) -> Vec<Effect> {
        self.1.take()
    }

    fn snapshot(&self) -> Vec<u8> {
        self.0.borrow().snapshot()
    }

    fn restore(snapshot: Vec<u8>) -> Result<calls::Session, String> {
        Machine::restore(&snapshot).map(|m| calls::Session::new(Self(RefCell::new(m), Outbox::default(), PhantomData)))
    }
}

/// The `media` event `handle-media` stands for.
pub fn media(payload: Vec<u8>, timestamp_ms: u64) -> Event {
    Event::Media(Media { payload, timestamp_ms })
}

/// A session's effects between `handle-media`, which only says whether a
/// frame caused any, and `take-effects`, which hands them over. (Most
/// frames cause none; answering with a flag spares the host a list to
/// read and the guest a call to free it, fifty times a second.) A session
/// written by hand keeps one:
///
/// ```ignore
/// fn handle_media(&self, payload: Vec<u8>, timestamp_ms: u64) -> bool {
///     self.outbox.hold(self.handle(hotline_agent::media(payload, timestamp_ms)))
/// }
/// fn take_effects(&self) -> Vec<Effect> {
///     self.outbox.take()
/// }
/// ```
#[derive(Default)]
pub struct Outbox(RefCell<Vec<Effect>>);

impl Outbox {
    /// Keeps `effects` after any not yet taken; true when some are held.
    pub fn hold(&self, effects: Vec<Effect>) -> bool {
        let mut held = self.0.borrow_mut();
        if held.is_empty() {
            *held = effects;
        } else {
            held.extend(effects);
        }
        !held.is_empty()
    }

    /// Everything held, oldest first; none is left.
    pub fn take(&self) -> Vec<Effect> {
        std::mem::take(&mut self.0.borrow_mut())
    }
}
