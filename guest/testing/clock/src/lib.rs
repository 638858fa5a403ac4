//! A test guest that reads the wall clock, which imports `wasi:clocks`:
//! hotline must refuse it at validation (guests get time only in events).

use std::cell::RefCell;

use hotline_agent::Machine;
use hotline_agent::bindings::exports::hotline::call::{calls, incoming};
use hotline_agent::bindings::hotline::call::types::{Effect, Event, LogEntry, TwimlError, Webhook};

struct Clock;

impl incoming::Guest for Clock {
    fn incoming_call(call: Webhook) -> Result<String, TwimlError> {
        <hotline_agent::Agent as incoming::Guest>::incoming_call(call)
    }
}

impl calls::Guest for Clock {
    type Session = Session;
}

struct Session(RefCell<Machine>);

impl calls::GuestSession for Session {
    fn new() -> Self {
        Session(RefCell::new(Machine::default()))
    }

    fn handle(&self, event: Event) -> Vec<Effect> {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let mut effects = self.0.borrow_mut().handle(event);
        effects.push(Effect::Log(LogEntry { event: "clock".into(), fields: vec![("now".into(), now.as_secs().to_string())] }));
        effects
    }

    fn snapshot(&self) -> Vec<u8> {
        self.0.borrow().snapshot()
    }

    fn restore(snapshot: Vec<u8>) -> Result<calls::Session, String> {
        Machine::restore(&snapshot).map(|m| calls::Session::new(Session(RefCell::new(m))))
    }
}

hotline_agent::export!(Clock);
