//! Guest versions: the active one, the history of activations, and what
//! each version has done (calls, traps, migrations).
//!
//! A version stays alive while anything holds its `Arc`: the registry's
//! history, or a live call pinned to it. So an old version is unloaded only
//! once its last call has ended.

mod load;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwapOption;
use hotline_common::Lock;
use serde_json::{Value, json};
use tokio::sync::{Notify, broadcast};

use crate::sandbox::Guest;

pub use load::{LoadError, Step, activate, admit, install, validate};

/// The built-in guest (the echo agent), compiled from `guest/default` by build.rs.
pub static DEFAULT_GUEST: &[u8] = include_bytes!(env!("HOTLINE_GUEST_DEFAULT_WASM"));

/// Automatic rollbacks a slow listener may fall behind by: each is a
/// version that trapped its way out, so a few at once is already rare.
const AUTO_ROLLBACKS: usize = 16;

/// Activations remembered for rollback and `GET /admin/guest`.
const HISTORY: usize = 16;

pub struct Version {
    pub guest: Guest,
    /// Where it came from: `built-in`, a file path, `admin upload`.
    pub source: String,
    pub loaded_at: SystemTime,
    /// Compile + validation time.
    pub load_ms: u64,
    pub stats: Stats,
}

#[derive(Default)]
pub struct Stats {
    /// Calls that started on this version.
    pub calls: AtomicU64,
    pub traps: AtomicU64,
    /// Live calls moved onto this version by a swap.
    pub migrations: AtomicU64,
    /// Live calls whose snapshot this version refused.
    pub refusals: AtomicU64,
    /// Times this version was rolled back from (by hand or automatically).
    pub rollbacks: AtomicU64,
    /// When recent traps happened, for the auto-rollback window.
    recent_traps: Mutex<VecDeque<Instant>>,
}

/// A version's counters read at one moment (`/admin/guest`, `/metrics`).
#[derive(Debug, Clone, Copy)]
pub struct Counts {
    pub calls: u64,
    pub traps: u64,
    pub migrations: u64,
    pub refusals: u64,
    pub rollbacks: u64,
}

impl Stats {
    pub fn counts(&self) -> Counts {
        let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Counts {
            calls: n(&self.calls),
            traps: n(&self.traps),
            migrations: n(&self.migrations),
            refusals: n(&self.refusals),
            rollbacks: n(&self.rollbacks),
        }
    }
}

impl Version {
    pub fn digest(&self) -> &str {
        self.guest.digest()
    }

    pub fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn to_json(&self) -> Value {
        let c = self.stats.counts();
        json!({
            "digest": self.digest(),
            "source": self.source,
            "loaded_at": self.loaded_at.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
            "load_ms": self.load_ms,
            "cached": self.guest.from_cache(),
            "contract": self.guest.contract(),
            "calls": c.calls,
            "traps": c.traps,
            "migrations": c.migrations,
            "refusals": c.refusals,
        })
    }
}

/// When a freshly swapped version is rolled back on its own.
#[derive(Debug, Clone, Copy)]
pub struct RollbackPolicy {
    /// This many traps...
    pub traps: usize,
    /// ...within this window.
    pub window: Duration,
}

impl Default for RollbackPolicy {
    fn default() -> Self {
        RollbackPolicy { traps: 3, window: Duration::from_secs(300) }
    }
}

/// The last automatic rollback, shown by `/version`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AutoRollback {
    pub from: String,
    pub to: String,
    pub traps: usize,
    pub window_secs: u64,
    pub at: u64,
}

/// The last rollback of either kind, shown by `GET /admin/guest`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Rollback {
    pub from: String,
    pub to: String,
    /// `admin` (asked for) or `traps` (automatic).
    pub reason: &'static str,
    pub at_unix_ms: u64,
}

pub struct Registry {
    policy: RollbackPolicy,
    last_auto_rollback: Mutex<Option<AutoRollback>>,
    /// Each automatic rollback as it happens, for whoever acts on them
    /// beyond this instance (the fleet): a call that reports a trap only
    /// tells the registry.
    auto_rollbacks: broadcast::Sender<AutoRollback>,
    last_rollback: Mutex<Option<Rollback>>,
    active: ArcSwapOption<Version>,
    /// Bumped on every activation; calls compare it at each event to notice
    /// a swap without touching anything else.
    generation: AtomicU64,
    /// Activations, oldest first; the last one is the active version.
    history: Mutex<Vec<Arc<Version>>>,
    /// Woken on every activation, for requests waiting for the first one.
    activated: Notify,
}

#[derive(Debug, thiserror::Error)]
#[error("no earlier version to roll back to")]
pub struct NothingToRollBack;

impl Registry {
    pub fn new(policy: RollbackPolicy) -> Self {
        Registry {
            policy,
            last_auto_rollback: Mutex::default(),
            auto_rollbacks: broadcast::channel(AUTO_ROLLBACKS).0,
            last_rollback: Mutex::default(),
            active: ArcSwapOption::default(),
            generation: AtomicU64::default(),
            history: Mutex::default(),
            activated: Notify::new(),
        }
    }

    /// Automatic rollbacks from now on, as they happen.
    pub fn auto_rollbacks(&self) -> broadcast::Receiver<AutoRollback> {
        self.auto_rollbacks.subscribe()
    }

    pub fn active(&self) -> Option<Arc<Version>> {
        self.active.load_full()
    }

    /// The active version, waiting up to `wait` for one while none is
    /// (the first load at start-up): a call that arrives then is held, not
    /// refused.
    pub async fn active_within(&self, wait: Duration) -> Option<Arc<Version>> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let activated = self.activated.notified();
            if let Some(version) = self.active() {
                return Some(version);
            }
            if tokio::time::timeout_at(deadline, activated).await.is_err() {
                return self.active();
            }
        }
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Makes `version` the one new calls start on; returns the one it replaces.
    pub fn activate(&self, version: Arc<Version>) -> Option<Arc<Version>> {
        let mut history = self.history.locked();
        history.push(version.clone());
        if history.len() > HISTORY {
            history.remove(0);
        }
        let previous = self.active.swap(Some(version));
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.activated.notify_waiters();
        previous
    }

    /// Returns to the version active before the current one; `reason` is
    /// `admin` or `traps`, for `last_rollback`.
    pub fn rollback(&self, reason: &'static str) -> Result<Arc<Version>, NothingToRollBack> {
        let mut history = self.history.locked();
        if history.len() < 2 {
            return Err(NothingToRollBack);
        }
        let current = history.pop().expect("checked above");
        Version::count(&current.stats.rollbacks);
        let previous = history.last().expect("checked above").clone();
        self.active.store(Some(previous.clone()));
        self.generation.fetch_add(1, Ordering::AcqRel);
        let at_unix_ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
        let from = current.digest().to_string();
        let rollback = Rollback { from, to: previous.digest().to_string(), reason, at_unix_ms };
        *self.last_rollback.locked() = Some(rollback);
        Ok(previous)
    }

    pub fn last_rollback(&self) -> Option<Rollback> {
        self.last_rollback.locked().clone()
    }

    /// Counts a trap against `version`. If it is the active version, came
    /// in by a swap, and has trapped `policy.traps` times within the window,
    /// the previous version becomes active again; returns that rollback.
    pub fn report_trap(&self, version: &Version) -> Option<AutoRollback> {
        Version::count(&version.stats.traps);
        let now = Instant::now();
        let recent = {
            let mut traps = version.stats.recent_traps.locked();
            traps.push_back(now);
            while traps.front().is_some_and(|t| now.duration_since(*t) > self.policy.window) {
                traps.pop_front();
            }
            traps.len()
        };
        let active = self.active()?;
        if active.digest() != version.digest() || recent < self.policy.traps {
            return None;
        }
        let to = self.rollback("traps").ok()?;
        let rollback = AutoRollback {
            from: version.digest().to_string(),
            to: to.digest().to_string(),
            traps: recent,
            window_secs: self.policy.window.as_secs(),
            at: SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
        };
        *self.last_auto_rollback.locked() = Some(rollback.clone());
        // Nobody listening (no fleet) is no error.
        let _ = self.auto_rollbacks.send(rollback.clone());
        Some(rollback)
    }

    pub fn last_auto_rollback(&self) -> Option<AutoRollback> {
        self.last_auto_rollback.locked().clone()
    }

    /// Activations, newest first.
    pub fn history(&self) -> Vec<Arc<Version>> {
        self.history.locked().iter().rev().cloned().collect()
    }
}
