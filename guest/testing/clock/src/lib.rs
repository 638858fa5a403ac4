//! A test guest that reads the wall clock, which imports `wasi:clocks`:
//! hotline must refuse it at validation (guests get time only in events).

use hotline_agent::bindings::hotline::call::types::{Effect, Event, LogEntry};
use hotline_agent::{Machine, Wrapped, Wrapper};

struct Clock;

impl Wrapper for Clock {
    fn handle(machine: &mut Machine, event: Event) -> Vec<Effect> {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let mut effects = machine.handle(event);
        effects.push(Effect::Log(LogEntry {
            event: "clock".into(),
            fields: vec![("now".into(), now.as_secs().to_string())],
        }));
        effects
    }
}

type Guest = Wrapped<Clock>;
hotline_agent::export!(Guest);
