//! A test guest that looks fine (it answers the webhook and handles audio)
//! but traps when a call ends, so the host's smoke scenario must reject it.

use std::cell::RefCell;

use hotline_agent::Machine;
use hotline_agent::bindings::exports::hotline::call::{calls, incoming};
use hotline_agent::bindings::hotline::call::types::{Effect, Event, TwimlError, Webhook};

struct Broken;

impl incoming::Guest for Broken {
    fn incoming_call(call: Webhook) -> Result<String, TwimlError> {
        <hotline_agent::Agent as incoming::Guest>::incoming_call(call)
    }
}

impl calls::Guest for Broken {
    type Session = Session;
}

struct Session(RefCell<Machine>);

impl calls::GuestSession for Session {
    fn new() -> Self {
        Session(RefCell::new(Machine::default()))
    }

    fn handle(&self, event: Event) -> Vec<Effect> {
        if matches!(event, Event::Stopped) {
            panic!("broken guest: cannot handle the end of a call");
        }
        self.0.borrow_mut().handle(event)
    }

    fn snapshot(&self) -> Vec<u8> {
        self.0.borrow().snapshot()
    }

    fn restore(snapshot: Vec<u8>) -> Result<calls::Session, String> {
        Machine::restore(&snapshot).map(|m| calls::Session::new(Session(RefCell::new(m))))
    }
}

hotline_agent::export!(Broken);
