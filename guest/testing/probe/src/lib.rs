//! A test guest: the default agent, plus misbehaviour on DTMF digits so the
//! host's tests can provoke each failure on one call while others go on.
//!
//! - `9` panics (a trap)
//! - `8` loops forever (the epoch deadline must stop it)
//! - `6` allocates without bound (the memory cap must stop it)
//! - `7` sets timer 7 for 50 ms; when it fires, the probe sends mark `timer-7`
//! - `0` hangs up
//! - `5` transfers to +15550100003, `4` to a target that is not one
//! - `transfer-failed` and `answered-by` are answered with a mark naming
//!   them (`transfer-failed-NoAnswer`, `answered-by-MachineEndBeep`)

use hotline_agent::bindings::hotline::call::types::{Effect, Event, Timer, Transfer};
use hotline_agent::{Machine, Wrapped, Wrapper};

struct Probe;

impl Wrapper for Probe {
    fn handle(machine: &mut Machine, event: Event) -> Vec<Effect> {
        match event {
            Event::Dtmf('9') => panic!("probe: panic requested by DTMF 9"),
            Event::Dtmf('8') => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            Event::Dtmf('6') => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            Event::Dtmf('7') => vec![Effect::SetTimer(Timer { id: 7, ms: 50 })],
            Event::Timer(7) => vec![Effect::Mark("timer-7".to_string())],
            Event::Dtmf('0') => vec![Effect::Hangup],
            Event::Dtmf('5') => vec![transfer("+15550100003")],
            Event::Dtmf('4') => vec![transfer("the front desk")],
            Event::TransferFailed(failed) => vec![Effect::Mark(format!("transfer-failed-{:?}", failed.status))],
            Event::AnsweredBy(verdict) => vec![Effect::Mark(format!("answered-by-{verdict:?}"))],
            other => machine.handle(other),
        }
    }
}

fn transfer(target: &str) -> Effect {
    Effect::Transfer(Transfer { target: target.into(), caller_id: Some("+15550100001".into()) })
}

type Guest = Wrapped<Probe>;
hotline_agent::export!(Guest);
