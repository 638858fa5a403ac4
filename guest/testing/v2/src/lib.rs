//! A test guest: the default agent with its marks renamed `v2-…`, so the
//! tests can see on the wire which version served each reply. It shares the
//! default agent's snapshot format, so live calls migrate to it.

use hotline_agent::bindings::hotline::call::types::{Effect, Event};
use hotline_agent::{Machine, Wrapped, Wrapper};

const PREFIX: &str = "v2-";

struct V2;

impl Wrapper for V2 {
    fn handle(machine: &mut Machine, event: Event) -> Vec<Effect> {
        let event = match event {
            Event::MarkPlayed(name) => Event::MarkPlayed(name.strip_prefix(PREFIX).unwrap_or(&name).to_string()),
            other => other,
        };
        let effects = machine.handle(event);
        effects
            .into_iter()
            .map(|e| match e {
                Effect::Mark(name) => Effect::Mark(format!("{PREFIX}{name}")),
                other => other,
            })
            .collect()
    }
}

type Guest = Wrapped<V2>;
hotline_agent::export!(Guest);
