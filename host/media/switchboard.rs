//! What the webhooks know about phone calls beyond their streams, shared
//! between the routes and the calls (`Calls::switchboard`):
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
//! A transfer also holds the call's **record**: the stream that ended for
//! it leaves its finished record here instead of submitting it, so that a
//! phone call leaves one record. The dial's end is added to it; if the
//! caller does not come back (answered, the fallback message, a drain) it
//! goes to the store then, and a caller who does takes it on to the new
//! stream. A transfer that expires or is pushed out submits its record as
//! it is, and so does `close` at shutdown: nothing held is lost.
//!
//! Everything here is per process: in a fleet, the webhooks of one call
//! must reach the instance that served its stream (a sticky load balancer,
//! or one instance per number) for these to be found; when they are not,
//! the webhook answers as if there were none (`<Hangup/>`; a fresh session
//! for a returning caller). Entries are bounded in number and in age.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tracing::info;

use super::record::{Field, Recorder};
use crate::sandbox::wit;
use crate::store::Submitter;
use crate::store::record::{CallRecord, unix_ms};

/// Most entries of each kind kept at once; the oldest go first past it.
const MAX_ENTRIES: usize = 10_000;
/// How long a verdict waits for its stream to start.
const EARLY_SIGNAL_TTL: Duration = Duration::from_secs(60);
/// How long a transfer's state is kept beyond what it waits for (Twilio's
/// webhooks and the returning stream come within seconds of each other).
const TRANSFER_GRACE: Duration = Duration::from_secs(120);
/// How long a dial may last once Twilio has it: an answered one ends, and
/// `dial_ended` comes, when the person hangs up. Twilio's default
/// `<Dial timeLimit>` (we set none).
const DIAL_LIMIT: Duration = Duration::from_secs(4 * 3600);
/// How often expired transfers are looked for (`sweep`), so that a held
/// record reaches the store even when no other transfer comes along.
const SWEEP_EVERY: Duration = Duration::from_secs(30);

/// Something for a live call that did not come on its stream.
#[derive(Debug, Clone)]
pub enum Signal {
    AnsweredBy(wit::AnsweredBy),
}

/// A transfer between the stream's end and the caller's return (or not).
struct Transfer {
    target: String,
    caller_id: Option<String>,
    /// The session as it was when the transfer began; `None` if the
    /// snapshot failed (the caller then comes back to a fresh session).
    snapshot: Option<Vec<u8>>,
    /// Where the dial stands.
    phase: Phase,
    /// The finished record of the stream that ended for the transfer.
    record: Option<CallRecord>,
    /// How the dial ended, once `dial_ended` said.
    dial: Option<DialEnd>,
    /// When it began: past `MAX_ENTRIES` the oldest goes first.
    began: Instant,
    /// When it is forgotten (and its record submitted as it is).
    expires: Instant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The stream is closing or closed; `<Dial>` is (about to be) running.
    Dialing,
    /// Nobody answered; a stream back to the call logic was handed out.
    Returning(wit::DialStatus),
    /// The caller is not coming back, but the stream's record has not
    /// arrived yet (the webhook beat it): it is submitted when it does.
    Over,
}

/// What `stream_ended` needs for the `<Dial>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dial {
    pub target: String,
    pub caller_id: Option<String>,
}

/// How a transfer's dial ended (`/webhook/dial_ended`), for the record.
#[derive(Debug, Clone)]
pub struct DialEnd {
    /// `DialCallStatus`, as Twilio sent it.
    pub status: String,
    /// `DialCallDuration`: how long the dialled party was on the line.
    pub secs: Option<i64>,
    /// What the caller got next: `hangup`, `agent` or `message`.
    pub next: &'static str,
    /// When Twilio told us (Unix ms).
    pub at: i64,
}

impl DialEnd {
    pub fn now(status: &str, secs: Option<i64>, next: &'static str) -> DialEnd {
        DialEnd { status: status.to_string(), secs, next, at: unix_ms(SystemTime::now()) }
    }
}

/// A caller back after a transfer nobody answered: what the new stream
/// continues from.
pub struct Returning {
    pub target: String,
    pub snapshot: Option<Vec<u8>>,
    pub status: wit::DialStatus,
    /// The call's record so far, the dial's end included.
    pub record: Option<CallRecord>,
}

#[derive(Default)]
struct Transfers {
    map: HashMap<String, Transfer>,
    /// Shut down (`close`): records handed over now go straight to the store.
    closed: bool,
}

#[derive(Default)]
pub struct Switchboard {
    calls: Mutex<HashMap<String, UnboundedSender<Signal>>>,
    early: Mutex<HashMap<String, (Signal, Instant)>>,
    transfers: Mutex<Transfers>,
    /// Where a held record goes once its call is over.
    records: Submitter,
}

impl Switchboard {
    pub fn new(records: Submitter) -> Switchboard {
        Switchboard { records, ..Switchboard::default() }
    }

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

    /// A call's stream is ending for a transfer that rings for up to `keep`.
    pub fn transfer_begins(
        &self,
        call_sid: &str,
        target: String,
        caller_id: Option<String>,
        snapshot: Option<Vec<u8>>,
        keep: Duration,
    ) {
        let now = Instant::now();
        let mut gone = Vec::new();
        {
            let mut transfers = lock(&self.transfers);
            gone.extend(expired(&mut transfers.map, now));
            if transfers.map.len() >= MAX_ENTRIES
                && let Some(oldest) = transfers.map.iter().min_by_key(|(_, t)| t.began).map(|(k, _)| k.clone())
            {
                gone.extend(transfers.map.remove_entry(&oldest).map(|(sid, t)| (sid, t, "full")));
            }
            let phase = Phase::Dialing;
            let expires = now + keep + TRANSFER_GRACE;
            let transfer =
                Transfer { target, caller_id, snapshot, phase, record: None, dial: None, began: now, expires };
            // The same call transferred again before its last transfer was
            // done with (its webhooks went elsewhere): that one is over.
            let replaced = transfers.map.insert(call_sid.to_string(), transfer);
            gone.extend(replaced.map(|t| (call_sid.to_string(), t, "replaced")));
        }
        self.forget(gone);
    }

    /// The stream that ended for a transfer hands over its finished record:
    /// held until the phone call's next step is known. Submitted at once
    /// when there is no transfer to hold it (it expired), when the caller
    /// is known not to come back, or after `close`.
    pub fn hold(&self, call_sid: &str, record: CallRecord) {
        let mut transfers = lock(&self.transfers);
        let Transfers { map, closed } = &mut *transfers;
        let transfer = match map.get_mut(call_sid) {
            Some(transfer) if !*closed => transfer,
            _ => {
                drop(transfers);
                return self.records.submit(record);
            }
        };
        transfer.record = Some(record);
        if transfer.phase == Phase::Over {
            let transfer = map.remove(call_sid);
            drop(transfers);
            self.release(transfer);
        }
    }

    /// Twilio asks for the transfer's `<Dial>`. From now on the transfer
    /// may last as long as a dial can: an answered one ends (and
    /// `dial_ended` comes) when the person hangs up.
    pub fn dial(&self, call_sid: &str) -> Option<Dial> {
        let mut transfers = lock(&self.transfers);
        let transfer = transfers.map.get_mut(call_sid).filter(|t| t.phase == Phase::Dialing)?;
        transfer.expires = Instant::now() + DIAL_LIMIT + TRANSFER_GRACE;
        Some(Dial { target: transfer.target.clone(), caller_id: transfer.caller_id.clone() })
    }

    /// The dial ended with `status`. If the caller comes back (nobody
    /// answered, and the fallback is the agent) the transfer waits for its
    /// stream (`returning`); otherwise the call is over, and its record
    /// goes to the store with the dial's end. The transfer's target, if
    /// there was one.
    pub fn dial_ended(
        &self,
        call_sid: &str,
        status: wit::DialStatus,
        end: DialEnd,
        caller_returns: bool,
    ) -> Option<String> {
        let mut transfers = lock(&self.transfers);
        let transfer = transfers.map.get_mut(call_sid)?;
        let target = transfer.target.clone();
        transfer.dial = Some(end);
        if caller_returns || (transfer.record.is_none() && self.records.enabled()) {
            transfer.phase = if caller_returns { Phase::Returning(status) } else { Phase::Over };
            transfer.expires = Instant::now() + TRANSFER_GRACE;
            return Some(target);
        }
        let transfer = transfers.map.remove(call_sid);
        drop(transfers);
        self.release(transfer);
        Some(target)
    }

    /// The stream that brings a caller back: its transfer, taken, with the
    /// call's record so far.
    pub fn returning(&self, call_sid: &str) -> Option<Returning> {
        let mut transfers = lock(&self.transfers);
        let Phase::Returning(status) = transfers.map.get(call_sid)?.phase else { return None };
        let transfer = transfers.map.remove(call_sid)?;
        drop(transfers);
        let record = transfer.record.map(|r| with_dial_end(r, transfer.dial.as_ref()));
        Some(Returning { target: transfer.target, snapshot: transfer.snapshot, status, record })
    }

    /// Forgets the transfers past their time; their records go to the
    /// store as they are.
    pub fn expire(&self) {
        let gone = expired(&mut lock(&self.transfers).map, Instant::now());
        self.forget(gone);
    }

    /// Runs `expire` every `SWEEP_EVERY`, for as long as the server runs.
    pub async fn sweep(self: Arc<Self>) {
        let mut tick = tokio::time::interval(SWEEP_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            self.expire();
        }
    }

    /// At shutdown, once the calls have ended and before the store's last
    /// flush: every record held goes to the store (with the dial's end if
    /// it came), and one handed over later goes straight there. The
    /// transfers stay, for the webhooks still to come.
    pub fn close(&self) {
        let held: Vec<_> = {
            let mut transfers = lock(&self.transfers);
            transfers.closed = true;
            transfers.map.values_mut().filter_map(|t| Some((t.record.take()?, t.dial.clone()))).collect()
        };
        for (record, dial) in held {
            self.records.submit(with_dial_end(record, dial.as_ref()));
        }
    }

    /// Transfers that ended without their caller's return: logged, and
    /// their records submitted.
    fn forget(&self, gone: Vec<(String, Transfer, &'static str)>) {
        for (call_sid, transfer, reason) in gone {
            info!(event = "transfer_expired", call_sid, reason, record = transfer.record.is_some());
            self.release(Some(transfer));
        }
    }

    /// A transfer is over: its record, if it holds one, goes to the store.
    fn release(&self, transfer: Option<Transfer>) {
        if let Some(Transfer { record: Some(record), dial, .. }) = transfer {
            self.records.submit(with_dial_end(record, dial.as_ref()));
        }
    }

    /// Transfers waiting (dialing or returning).
    #[cfg(test)]
    fn transfers_pending(&self) -> usize {
        lock(&self.transfers).map.len()
    }
}

/// Removes the transfers whose time is up.
fn expired(map: &mut HashMap<String, Transfer>, now: Instant) -> Vec<(String, Transfer, &'static str)> {
    let sids: Vec<String> = map.iter().filter(|(_, t)| t.expires <= now).map(|(k, _)| k.clone()).collect();
    sids.into_iter().filter_map(|sid| map.remove_entry(&sid)).map(|(sid, t)| (sid, t, "age")).collect()
}

/// The record with the dial's end on its timeline, when it came: its
/// status (`completed` when answered), the seconds the dialled party was
/// on the line, and what the caller got next.
fn with_dial_end(record: CallRecord, dial: Option<&DialEnd>) -> CallRecord {
    let Some(dial) = dial else { return record };
    let mut recorder = Recorder::reopen(record);
    let fields =
        [("status", Field::Str(&dial.status)), ("secs", Field::Int(dial.secs)), ("next", Field::Str(dial.next))];
    recorder.host_at(dial.at, "transfer_dial_ended", &fields);
    recorder.close()
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
    use crate::store::record::Outcome;

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

    fn end(status: &str, next: &'static str) -> DialEnd {
        DialEnd::now(status, None, next)
    }

    /// A finished record of `sid`'s first stream, with one timeline entry.
    fn record(sid: &str) -> CallRecord {
        let mut r = Recorder::start(sid, "MZ1", "inbound", (None, None), "d1");
        r.host(1500, "transfer_started", &[]);
        r.finish(Outcome::Transferred, Some(1000), (75, 50))
    }

    fn events(record: &CallRecord) -> Vec<(String, serde_json::Value)> {
        let timeline: Vec<serde_json::Value> = serde_json::from_str(&record.timeline).unwrap();
        timeline.into_iter().map(|e| (e["event"].as_str().unwrap().to_string(), e["fields"].clone())).collect()
    }

    #[test]
    fn a_transfer_goes_dialing_then_returning_then_is_taken() {
        let board = Switchboard::default();
        board.transfer_begins("CA1", "+15550100003".into(), None, Some(vec![1, 2]), Duration::from_secs(20));
        let dial = board.dial("CA1").expect("dialing");
        assert_eq!(dial, Dial { target: "+15550100003".into(), caller_id: None });
        assert!(board.returning("CA1").is_none(), "not before the dial ended");
        board.dial_ended("CA1", wit::DialStatus::NoAnswer, end("no-answer", "agent"), true);
        assert!(board.dial("CA1").is_none());
        let back = board.returning("CA1").expect("returning");
        assert_eq!((back.snapshot, back.status), (Some(vec![1, 2]), wit::DialStatus::NoAnswer));
        assert!(back.record.is_none(), "records are off");
        assert_eq!(board.transfers_pending(), 0);

        board.transfer_begins("CA2", "+15550100003".into(), None, None, Duration::from_secs(20));
        board.dial_ended("CA2", wit::DialStatus::Completed, end("completed", "hangup"), false);
        assert_eq!(board.transfers_pending(), 0, "answered: forgotten");
    }

    #[test]
    fn an_answered_transfer_submits_its_record_with_the_dial_end() {
        let (sink, mut store) = Submitter::channel(8);
        let board = Switchboard::new(sink);
        board.transfer_begins("CA1", "+15550100003".into(), None, None, Duration::from_secs(20));
        board.hold("CA1", record("CA1"));
        assert!(store.try_recv().is_err(), "held while the dial runs");
        board.dial("CA1");
        board.dial_ended("CA1", wit::DialStatus::Completed, DialEnd::now("completed", Some(42), "hangup"), false);
        let r = store.try_recv().expect("submitted once the dial ended");
        assert_eq!((r.outcome, r.frames_in), (Some(Outcome::Transferred), 75));
        let events = events(&r);
        assert_eq!(events.last().unwrap().0, "transfer_dial_ended", "{events:?}");
        let fields = &events.last().unwrap().1;
        assert_eq!(*fields, serde_json::json!({"status": "completed", "secs": 42, "next": "hangup"}));
        assert_eq!(board.transfers_pending(), 0);
    }

    #[test]
    fn a_returning_caller_takes_the_record_and_a_dial_end_before_the_record_waits_for_it() {
        let (sink, mut store) = Submitter::channel(8);
        let board = Switchboard::new(sink);
        board.transfer_begins("CA1", "+15550100003".into(), None, Some(vec![1]), Duration::from_secs(20));
        board.hold("CA1", record("CA1"));
        board.dial_ended("CA1", wit::DialStatus::NoAnswer, end("no-answer", "agent"), true);
        let back = board.returning("CA1").unwrap();
        let held = back.record.expect("the record so far");
        let names: Vec<_> = events(&held).into_iter().map(|e| e.0).collect();
        assert_eq!(names, ["transfer_started", "transfer_dial_ended"]);
        let timeline: Vec<serde_json::Value> = serde_json::from_str(&held.timeline).unwrap();
        assert_eq!(timeline[1]["at_ms"], 1500, "never before the newest entry (the wall clock says ~0 ms)");
        assert!(store.try_recv().is_err(), "the new stream submits it");

        // Twilio's webhook before the stream's record (a race): the record
        // is submitted when it arrives, with the dial's end.
        board.transfer_begins("CA2", "+15550100003".into(), None, None, Duration::from_secs(20));
        board.dial_ended("CA2", wit::DialStatus::Busy, end("busy", "message"), false);
        assert!(store.try_recv().is_err());
        board.hold("CA2", record("CA2"));
        let r = store.try_recv().expect("submitted on arrival");
        assert_eq!(events(&r).last().unwrap().1["status"], "busy");
        assert_eq!(board.transfers_pending(), 0);
    }

    #[test]
    fn held_records_are_submitted_when_their_transfer_expires_is_pushed_out_or_the_server_stops() {
        let (sink, mut store) = Submitter::channel(MAX_ENTRIES + 8);
        let board = Switchboard::new(sink);
        // Past its time (a dial that never ended here): submitted as it is.
        board.transfer_begins("CA1", "+15550100003".into(), None, None, Duration::ZERO);
        board.hold("CA1", record("CA1"));
        lock(&board.transfers).map.get_mut("CA1").unwrap().expires = Instant::now();
        board.expire();
        let r = store.try_recv().expect("submitted at expiry");
        assert_eq!((r.call_sid.as_str(), r.outcome), ("CA1", Some(Outcome::Transferred)));
        assert!(events(&r).iter().all(|(e, _)| e != "transfer_dial_ended"), "no dial end ever came");
        assert_eq!(board.transfers_pending(), 0);

        // Pushed out by the bound on their number: the oldest goes first.
        board.transfer_begins("CAold", "+15550100003".into(), None, None, Duration::from_secs(20));
        board.hold("CAold", record("CAold"));
        for i in 1..MAX_ENTRIES {
            board.transfer_begins(&format!("CA{i}"), "+15550100003".into(), None, None, Duration::from_secs(20));
        }
        assert!(store.try_recv().is_err());
        board.transfer_begins("CAnew", "+15550100003".into(), None, None, Duration::from_secs(20));
        assert_eq!(store.try_recv().expect("the oldest pushed out").call_sid, "CAold");
        assert_eq!(board.transfers_pending(), MAX_ENTRIES);

        // Shutdown: what is held goes, with the dial's end when it came;
        // the transfers stay for their webhooks, and later records go at once.
        board.hold("CA1", record("CA1"));
        board.hold("CA2", record("CA2"));
        board.dial_ended("CA2", wit::DialStatus::NoAnswer, end("no-answer", "agent"), true);
        board.close();
        let mut closed: Vec<_> = std::iter::from_fn(|| store.try_recv().ok()).collect();
        closed.sort_by(|a, b| a.call_sid.cmp(&b.call_sid));
        assert_eq!(closed.iter().map(|r| r.call_sid.as_str()).collect::<Vec<_>>(), ["CA1", "CA2"]);
        assert_eq!(events(&closed[1]).last().unwrap().0, "transfer_dial_ended");
        assert!(board.dial("CA3").is_some(), "still there for stream_ended");
        board.hold("CA3", record("CA3"));
        assert_eq!(store.try_recv().expect("straight to the store").call_sid, "CA3");
    }
}
