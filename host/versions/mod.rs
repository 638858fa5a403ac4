//! Guest versions: the active one, the history of activations, and what
//! each version has done (calls, traps, migrations).
//!
//! A version stays alive while anything holds its `Arc`: the registry's
//! history, or a live call pinned to it. So an old version is unloaded only
//! once its last call has ended.

mod load;
mod smoke;
pub mod watch;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwapOption;
use serde_json::{Value, json};

use crate::guest::Guest;

pub use load::{LoadError, Step, admit};

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
}

impl Version {
    pub fn digest(&self) -> &str {
        self.guest.digest()
    }

    pub fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn to_json(&self) -> Value {
        let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
        json!({
            "digest": self.digest(),
            "source": self.source,
            "loaded_at": self.loaded_at.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
            "load_ms": self.load_ms,
            "cached": self.guest.from_cache(),
            "calls": n(&self.stats.calls),
            "traps": n(&self.stats.traps),
            "migrations": n(&self.stats.migrations),
            "refusals": n(&self.stats.refusals),
        })
    }
}

#[derive(Default)]
pub struct Registry {
    active: ArcSwapOption<Version>,
    /// Bumped on every activation; calls compare it at each event to notice
    /// a swap without touching anything else.
    generation: AtomicU64,
    /// Activations, oldest first; the last one is the active version.
    history: Mutex<Vec<Arc<Version>>>,
}

#[derive(Debug, thiserror::Error)]
#[error("no earlier version to roll back to")]
pub struct NothingToRollBack;

impl Registry {
    pub fn active(&self) -> Option<Arc<Version>> {
        self.active.load_full()
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Makes `version` the one new calls start on.
    pub fn activate(&self, version: Arc<Version>) {
        let mut history = self.history.lock().expect("history lock");
        history.push(version.clone());
        if history.len() > HISTORY {
            history.remove(0);
        }
        self.active.store(Some(version));
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Returns to the version active before the current one.
    pub fn rollback(&self) -> Result<Arc<Version>, NothingToRollBack> {
        let mut history = self.history.lock().expect("history lock");
        if history.len() < 2 {
            return Err(NothingToRollBack);
        }
        history.pop();
        let previous = history.last().expect("checked above").clone();
        self.active.store(Some(previous.clone()));
        self.generation.fetch_add(1, Ordering::AcqRel);
        Ok(previous)
    }

    /// Activations, newest first.
    pub fn history(&self) -> Vec<Arc<Version>> {
        self.history.lock().expect("history lock").iter().rev().cloned().collect()
    }
}
