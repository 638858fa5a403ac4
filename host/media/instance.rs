//! The call's guest instance: hand it an event, follow a swap, keep
//! recovery snapshots, recover after a trap.
//!
//! Swap and recovery are one mechanism: restore a snapshot into a fresh
//! instance of some version ([`Instance::move_to`]). A swap takes the
//! snapshot now and restores it into the newly active version; a recovery
//! restores the last good snapshot into the same version. The recovery
//! snapshot is refreshed soon after an event with effects other than logs
//! (something the call would miss: audio, a mark, provider work) and at
//! least every two seconds of media otherwise, so a recovered call loses at
//! most 0.1 s of what it did and 2 s of what it was only hearing; the event
//! that trapped is skipped, since replaying it would most likely trap again.
//! (Snapshotting every half second regardless cost a tenth of the host's
//! CPU: mid-utterance, a snapshot carries seconds of audio.)

use std::sync::Arc;

use tracing::{error, info, warn};

use super::Calls;
use crate::config::SwapPolicy;
use crate::sandbox::{GuestError, Session, wit};
use crate::versions::Version;

/// Events after a change before the snapshot is refreshed (5 media frames
/// = 0.1 s): a burst of effects (marks coming back, a streamed reply) is
/// one snapshot, not one per event.
const SNAPSHOT_AFTER_CHANGE: u32 = 5;
/// Events between two snapshots when nothing visible happens (100 media
/// frames = 2 s): only the voice detector and the caller's audio moved.
const SNAPSHOT_EVERY: u32 = 100;

pub struct Instance {
    /// The guest version serving this call; held here, it stays loaded.
    version: Arc<Version>,
    /// The registry generation this call last looked at.
    generation: u64,
    /// Created at Twilio's `start`; `None` before it and after a failure.
    session: Option<Session>,
    /// The newest snapshot known to be good, for recovery after a trap.
    last_snapshot: Option<Vec<u8>>,
    events_since_snapshot: u32,
    /// An event since the last snapshot returned effects.
    changed_since_snapshot: bool,
    /// A failure already cost this call its one recovery.
    recovered: bool,
}

impl Instance {
    pub fn new(version: Arc<Version>, generation: u64) -> Instance {
        Instance {
            version,
            generation,
            session: None,
            last_snapshot: None,
            events_since_snapshot: 0,
            changed_since_snapshot: false,
            recovered: false,
        }
    }

    pub fn digest(&self) -> &str {
        self.version.digest()
    }

    /// A session exists: the call has started and its guest is not lost.
    pub fn is_live(&self) -> bool {
        self.session.is_some()
    }

    /// Creates the call's session, on the newest version (a swap may have
    /// happened since the WebSocket opened).
    pub fn start(&mut self, calls: &Calls) -> Result<(), GuestError> {
        if let Some(active) = calls.versions.active() {
            self.version = active;
            self.generation = calls.versions.generation();
        }
        self.session = Some(self.version.guest.session()?);
        Version::count(&self.version.stats.calls);
        Ok(())
    }

    /// Continues a call from `snapshot` (a caller back from a transfer) in a
    /// fresh instance of the active version, replacing any session.
    pub fn resume(&mut self, calls: &Calls, snapshot: Vec<u8>) -> Result<(), GuestError> {
        if let Some(active) = calls.versions.active() {
            self.version = active;
            self.generation = calls.versions.generation();
        }
        self.session = None;
        self.move_to(self.version.clone(), snapshot)
    }

    /// The session's state now, if it can say it.
    pub fn snapshot(&mut self) -> Option<Vec<u8>> {
        match self.session.as_mut()?.snapshot() {
            Ok(snapshot) => Some(snapshot),
            Err(e) => {
                warn!(event = "snapshot_failed", error = %e);
                None
            }
        }
    }

    /// One event in, its effects out. A failure drops the session (the
    /// caller decides whether to [`recover`](Self::recover)).
    pub fn handle(&mut self, event: &wit::Event) -> Option<Result<Vec<wit::Effect>, GuestError>> {
        let session = self.session.as_mut()?;
        let result = session.handle(event);
        if result.is_err() {
            self.session = None;
        }
        Some(result)
    }

    /// At an event boundary, moves the call to a newly activated version.
    /// A refusal (or `HOTLINE_SWAP=pin`) keeps the call where it is until
    /// it ends. Timers and the socket are the host's and carry over.
    ///
    /// Checked before every event, needed almost never: one compare of
    /// the registry's generation. True when a swap was looked at (the call
    /// may run another version now).
    pub fn follow_swap(&mut self, calls: &Calls) -> bool {
        let generation = calls.versions.generation();
        if generation == self.generation {
            return false;
        }
        self.generation = generation;
        self.migrate(calls);
        true
    }

    fn migrate(&mut self, calls: &Calls) {
        let Some(target) = calls.versions.active() else { return };
        if calls.config.swap == SwapPolicy::Pin || target.digest() == self.version.digest() {
            return;
        }
        let Some(session) = self.session.as_mut() else {
            self.version = target; // nothing to carry over yet
            return;
        };
        let (from, to) = (self.version.digest().to_string(), target.digest().to_string());
        let snapshot = match session.snapshot() {
            Ok(s) => s,
            Err(e) => {
                warn!(event = "migration_failed", from, to, step = "snapshot", error = %e);
                return;
            }
        };
        let snapshot_bytes = snapshot.len();
        match self.move_to(target.clone(), snapshot) {
            Ok(()) => {
                Version::count(&target.stats.migrations);
                info!(event = "migrated", from, to, snapshot_bytes);
            }
            Err(e) => {
                Version::count(&target.stats.refusals);
                warn!(event = "migration_refused", from, to, error = %e);
            }
        }
    }

    /// Refreshes the recovery snapshot when it is due.
    /// `changed`: the event just handled returned effects other than logs.
    pub fn keep_snapshot(&mut self, changed: bool) {
        self.events_since_snapshot += 1;
        self.changed_since_snapshot |= changed;
        let due = match self.changed_since_snapshot {
            true => SNAPSHOT_AFTER_CHANGE,
            false => SNAPSHOT_EVERY,
        };
        if self.last_snapshot.is_some() && self.events_since_snapshot < due {
            return;
        }
        let Some(session) = self.session.as_mut() else { return };
        match session.snapshot() {
            Ok(snapshot) => {
                self.last_snapshot = Some(snapshot);
                self.events_since_snapshot = 0;
                self.changed_since_snapshot = false;
            }
            Err(e) => warn!(event = "snapshot_failed", error = %e),
        }
    }

    /// Logs and counts the failure (it may roll the version back), then
    /// tries the call's one recovery from its last snapshot.
    pub fn recover(&mut self, calls: &Calls, failure: GuestError) -> bool {
        error!(event = failure.event(), guest = self.version.digest(), error = %failure);
        if let Some(rollback) = calls.versions.report_trap(&self.version) {
            warn!(
                event = "guest_auto_rollback",
                from = rollback.from,
                to = rollback.to,
                traps = rollback.traps,
                window_secs = rollback.window_secs
            );
        }
        if self.recovered {
            return false;
        }
        self.recovered = true;
        let Some(snapshot) = self.last_snapshot.clone() else {
            warn!(event = "guest_recovery_failed", reason = "no snapshot yet");
            return false;
        };
        let snapshot_bytes = snapshot.len();
        match self.move_to(self.version.clone(), snapshot) {
            Ok(()) => {
                info!(event = "guest_recovered", snapshot_bytes);
                true
            }
            Err(e) => {
                warn!(event = "guest_recovery_failed", error = %e);
                false
            }
        }
    }

    /// Continues the call in a fresh instance of `target` restored from
    /// `snapshot`, which becomes the recovery point (the target accepted it).
    fn move_to(&mut self, target: Arc<Version>, snapshot: Vec<u8>) -> Result<(), GuestError> {
        let session = target.guest.restore(&snapshot)?;
        self.session = Some(session);
        self.version = target;
        self.last_snapshot = Some(snapshot);
        self.events_since_snapshot = 0;
        self.changed_since_snapshot = false;
        Ok(())
    }
}
