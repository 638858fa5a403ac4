//! What the webhooks know about phone calls beyond their streams, shared
//! between the routes and the calls (`App::switchboard`):
//!
//! - **Signals** for a live call that arrive by webhook, not on its stream:
//!   answering-machine detection's verdict (`/webhook/amd`). Only outbound
//!   calls register (detection exists only for calls we place); a verdict
//!   that comes before its stream starts waits here briefly.
//! - **Transfers** in progress: a call that asked for one closes its stream,
//!   and Twilio then asks `/webhook/stream_ended` what next (`<Dial>`), and
//!   `/webhook/dial_ended` how it went. The snapshot taken when the transfer
//!   began waits here, so that a caller nobody answered comes back to the
//!   call logic where it left off.
//!
//! Everything here is per process: in a fleet, the webhooks of one call
//! must reach the instance that served its stream (a sticky load balancer,
//! or one instance per number) for these to be found; when they are not,
//! the webhook answers as if there were none (`<Hangup/>`; a fresh session
//! for a returning caller). Entries are bounded in number and in age.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use crate::sandbox::wit;

/// Most entries of each kind kept at once; the oldest go first past it.
const MAX_ENTRIES: usize = 10_000;
/// How long a verdict waits for its stream to start.
const EARLY_SIGNAL_TTL: Duration = Duration::from_secs(60);
/// How long a transfer's state is kept beyond its dial timeout (Twilio's
/// webhooks and the returning stream come within seconds of each other).
const TRANSFER_GRACE: Duration = Duration::from_secs(120);

/// Something for a live call that did not come on its stream.
#[derive(Debug, Clone)]
pub enum Signal {
    AnsweredBy(wit::AnsweredBy),
}

/// A transfer between the stream's end and the caller's return (or not).
#[derive(Debug, Clone)]
pub struct Transfer {
    pub target: String,
    pub caller_id: Option<String>,
    /// The session as it was when the transfer began; `None` if the
    /// snapshot failed (the caller then comes back to a fresh session).
    pub snapshot: Option<Vec<u8>>,
    /// Where the dial stands.
    pub phase: Phase,
    at: Instant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The stream is closing or closed; `<Dial>` is (about to be) running.
    Dialing,
    /// Nobody answered; a stream back to the call logic was handed out.
    Returning(wit::DialStatus),
}

#[derive(Default)]
pub struct Switchboard {
    calls: Mutex<HashMap<String, UnboundedSender<Signal>>>,
    early: Mutex<HashMap<String, (Signal, Instant)>>,
    transfers: Mutex<HashMap<String, Transfer>>,
}

impl Switchboard {
    /// A live outbound call listens for its signals until the returned
    /// guard is dropped. Signals that came early are waiting in it.
    pub fn register(self: &Arc<Self>, call_sid: &str) -> Registration {
        let (tx, rx) = unbounded_channel();
        if let Some((signal, at)) = lock(&self.early).remove(call_sid)
            && at.elapsed() < EARLY_SIGNAL_TTL
        {
            let _ = tx.send(signal);
        }
        lock(&self.calls).insert(call_sid.to_string(), tx);
        Registration { board: self.clone(), call_sid: call_sid.to_string(), signals: rx }
    }

    /// Hands a signal to its live call; kept briefly if the call has not
    /// started yet. False when it was kept rather than delivered.
    pub fn signal(&self, call_sid: &str, signal: Signal) -> bool {
        if let Some(tx) = lock(&self.calls).get(call_sid)
            && tx.send(signal.clone()).is_ok()
        {
            return true;
        }
        let mut early = lock(&self.early);
        early.retain(|_, (_, at)| at.elapsed() < EARLY_SIGNAL_TTL);
        make_room(&mut early, |(_, at)| *at);
        early.insert(call_sid.to_string(), (signal, Instant::now()));
        false
    }

    /// A call's stream is ending for a transfer.
    pub fn transfer_begins(
        &self,
        call_sid: &str,
        target: String,
        caller_id: Option<String>,
        snapshot: Option<Vec<u8>>,
        keep: Duration,
    ) {
        let mut transfers = lock(&self.transfers);
        transfers.retain(|_, t| t.at.elapsed() < keep + TRANSFER_GRACE);
        make_room(&mut transfers, |t| t.at);
        let transfer = Transfer { target, caller_id, snapshot, phase: Phase::Dialing, at: Instant::now() };
        transfers.insert(call_sid.to_string(), transfer);
    }

    /// The transfer of a call whose dial has not ended yet.
    pub fn dialing(&self, call_sid: &str) -> Option<Transfer> {
        lock(&self.transfers).get(call_sid).filter(|t| t.phase == Phase::Dialing).cloned()
    }

    /// The dial ended with `status`. If the caller comes back (nobody
    /// answered, and the fallback is the agent) the transfer waits for its
    /// stream (`returning`); otherwise it is over and forgotten.
    pub fn dial_ended(&self, call_sid: &str, status: wit::DialStatus, caller_returns: bool) -> Option<Transfer> {
        let mut transfers = lock(&self.transfers);
        if !caller_returns {
            return transfers.remove(call_sid);
        }
        let transfer = transfers.get_mut(call_sid)?;
        transfer.phase = Phase::Returning(status);
        Some(transfer.clone())
    }

    /// The stream that brings a caller back: its transfer, taken.
    pub fn returning(&self, call_sid: &str) -> Option<(Transfer, wit::DialStatus)> {
        let mut transfers = lock(&self.transfers);
        let Phase::Returning(status) = transfers.get(call_sid)?.phase else { return None };
        transfers.remove(call_sid).map(|t| (t, status))
    }

    /// Transfers waiting (dialing or returning).
    #[cfg(test)]
    fn transfers_pending(&self) -> usize {
        lock(&self.transfers).len()
    }
}

/// A call's place on the switchboard; leaving it (dropping) unregisters.
pub struct Registration {
    board: Arc<Switchboard>,
    call_sid: String,
    pub signals: UnboundedReceiver<Signal>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        lock(&self.board.calls).remove(&self.call_sid);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Drops the oldest entry when the map is full.
fn make_room<V>(map: &mut HashMap<String, V>, at: impl Fn(&V) -> Instant) {
    if map.len() < MAX_ENTRIES {
        return;
    }
    if let Some(oldest) = map.iter().min_by_key(|(_, v)| at(v)).map(|(k, _)| k.clone()) {
        map.remove(&oldest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signal_before_the_stream_waits_for_it() {
        let board = Arc::new(Switchboard::default());
        assert!(!board.signal("CA1", Signal::AnsweredBy(wit::AnsweredBy::MachineStart)));
        let mut call = board.register("CA1");
        assert!(matches!(call.signals.try_recv(), Ok(Signal::AnsweredBy(wit::AnsweredBy::MachineStart))));
        assert!(board.signal("CA1", Signal::AnsweredBy(wit::AnsweredBy::MachineEndBeep)));
        assert!(call.signals.try_recv().is_ok());
        drop(call);
        assert!(!board.signal("CA1", Signal::AnsweredBy(wit::AnsweredBy::Human)), "gone with its call");
    }

    #[test]
    fn a_transfer_goes_dialing_then_returning_then_is_taken() {
        let board = Switchboard::default();
        board.transfer_begins("CA1", "+15550100003".into(), None, Some(vec![1, 2]), Duration::from_secs(20));
        assert!(board.dialing("CA1").is_some());
        assert!(board.returning("CA1").is_none(), "not before the dial ended");
        board.dial_ended("CA1", wit::DialStatus::NoAnswer, true);
        assert!(board.dialing("CA1").is_none());
        let (transfer, status) = board.returning("CA1").expect("returning");
        assert_eq!((transfer.snapshot, status), (Some(vec![1, 2]), wit::DialStatus::NoAnswer));
        assert_eq!(board.transfers_pending(), 0);

        board.transfer_begins("CA2", "+15550100003".into(), None, None, Duration::from_secs(20));
        board.dial_ended("CA2", wit::DialStatus::Completed, false);
        assert_eq!(board.transfers_pending(), 0, "answered: forgotten");
    }
}
