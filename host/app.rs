//! State shared by the listener, the routes and the calls.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::sandbox::Sandbox;
use crate::providers::Providers;
use crate::versions::{Registry, RollbackPolicy};

pub struct App {
    pub config: Config,
    pub sandbox: Sandbox,
    /// Speech-to-text, LLM, text-to-speech (any may be absent) and their health.
    pub providers: Arc<Providers>,
    /// Guest versions: the active one is empty until the first load finishes.
    pub versions: Registry,
    pub draining: AtomicBool,
    pub calls: Arc<CallTracker>,
    /// Cancelled when the drain budget is spent: every call closes now.
    pub close_calls: CancellationToken,
}

impl App {
    pub fn new(config: Config, sandbox: Sandbox, providers: Providers) -> Arc<Self> {
        Arc::new(App {
            sandbox,
            providers: Arc::new(providers),
            versions: Registry::new(RollbackPolicy { traps: config.rollback_traps, window: config.rollback_window }),
            draining: AtomicBool::new(false),
            calls: Arc::default(),
            close_calls: CancellationToken::new(),
            config,
        })
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }
}

/// Counts live calls so a drain knows when the last one has ended.
#[derive(Default)]
pub struct CallTracker {
    live: AtomicUsize,
    changed: Notify,
}

impl CallTracker {
    pub fn enter(self: &Arc<Self>) -> CallGuard {
        self.live.fetch_add(1, Ordering::SeqCst);
        CallGuard(self.clone())
    }

    pub fn live(&self) -> usize {
        self.live.load(Ordering::SeqCst)
    }

    /// Resolves once no call is live.
    pub async fn idle(&self) {
        loop {
            let notified = self.changed.notified();
            if self.live() == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// Held by each call task; dropping it marks the call as ended.
pub struct CallGuard(Arc<CallTracker>);

impl Drop for CallGuard {
    fn drop(&mut self) {
        self.0.live.fetch_sub(1, Ordering::SeqCst);
        self.0.changed.notify_waiters();
    }
}
