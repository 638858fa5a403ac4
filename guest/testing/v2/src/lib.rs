//! A test guest: the default agent with its marks renamed `v2-…`, so the
//! tests can see on the wire which version served each reply. It shares the
//! default agent's snapshot format, so live calls migrate to it.

use std::cell::RefCell;

use hotline_agent::Machine;
use hotline_agent::bindings::exports::hotline::call::{calls, incoming};
use hotline_agent::bindings::hotline::call::types::{Effect, Event, TwimlError, Webhook};

const PREFIX: &str = "v2-";

struct V2;

impl incoming::Guest for V2 {
    fn incoming_call(call: Webhook) -> Result<String, TwimlError> {
        <hotline_agent::Agent as incoming::Guest>::incoming_call(call)
    }
}

impl calls::Guest for V2 {
    type Session = Session;
}

struct Session(RefCell<Machine>);

impl calls::GuestSession for Session {
    fn new() -> Self {
        Session(RefCell::new(Machine::default()))
    }

    fn handle(&self, event: Event) -> Vec<Effect> {
        let event = match event {
            Event::MarkPlayed(name) => Event::MarkPlayed(name.strip_prefix(PREFIX).unwrap_or(&name).to_string()),
            other => other,
        };
        let effects = self.0.borrow_mut().handle(event);
        effects
            .into_iter()
            .map(|e| match e {
                Effect::Mark(name) => Effect::Mark(format!("{PREFIX}{name}")),
                other => other,
            })
            .collect()
    }

    fn snapshot(&self) -> Vec<u8> {
        self.0.borrow().snapshot()
    }

    fn restore(snapshot: Vec<u8>) -> Result<calls::Session, String> {
        Machine::restore(&snapshot).map(|m| calls::Session::new(Session(RefCell::new(m))))
    }
}

hotline_agent::export!(V2);
