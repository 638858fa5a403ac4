//! The default hotline call logic.
//!
//! Two exports (see `wit/call.wit`): `incoming-call`, which turns the voice
//! webhook into TwiML, and the `session` resource, one per live call, which
//! is a pure state machine: an event in, a list of effects out. Nothing here
//! performs I/O or reads a clock; the host does both.
//!
//! This crate is a library so that other guests (the test probe, your own)
//! can reuse and wrap it; `hotline-guest-default` exports it as a component.

pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "agent",
        pub_export_macro: true,
        default_bindings_module: "hotline_agent::bindings",
    });
}

mod machine;
mod twiml;

use std::cell::RefCell;

use bindings::exports::hotline::call::{calls, incoming};
use bindings::hotline::call::types::{Effect, Event, Webhook, TwimlError};

pub use bindings::export;
pub use machine::{Machine, SNAPSHOT_SCHEMA};

/// The component's export implementation.
pub struct Agent;

impl incoming::Guest for Agent {
    fn incoming_call(call: Webhook) -> Result<String, TwimlError> {
        twiml::respond(&call)
    }
}

impl calls::Guest for Agent {
    type Session = Session;
}

/// One live call. The component model hands out `&self`, hence the cell.
pub struct Session(RefCell<Machine>);

impl Session {
    pub fn from_machine(machine: Machine) -> Self {
        Self(RefCell::new(machine))
    }
}

impl calls::GuestSession for Session {
    fn new() -> Self {
        Self::from_machine(Machine::default())
    }

    fn handle(&self, event: Event) -> Vec<Effect> {
        self.0.borrow_mut().handle(event)
    }

    fn snapshot(&self) -> Vec<u8> {
        self.0.borrow().snapshot()
    }

    fn restore(snapshot: Vec<u8>) -> Result<calls::Session, String> {
        Machine::restore(&snapshot).map(|m| calls::Session::new(Self::from_machine(m)))
    }
}
