//! A test guest that looks fine (it answers the webhook and handles audio)
//! but traps when a call ends, so the host's smoke scenario must reject it.

use hotline_agent::bindings::hotline::call::types::{Effect, Event};
use hotline_agent::{Machine, Wrapped, Wrapper};

struct Broken;

impl Wrapper for Broken {
    fn handle(machine: &mut Machine, event: Event) -> Vec<Effect> {
        if matches!(event, Event::Stopped) {
            panic!("broken guest: cannot handle the end of a call");
        }
        machine.handle(event)
    }
}

type Guest = Wrapped<Broken>;
hotline_agent::export!(Guest);
