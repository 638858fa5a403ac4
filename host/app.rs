//! State shared by the listener, the routes and the calls.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{Config, WEBHOOK_INSTANCES};
use crate::http::auth::Auth;
use crate::providers::Providers;
use crate::sandbox::Sandbox;
use crate::versions::{Registry, RollbackPolicy};

pub struct App {
    pub config: Config,
    /// Signatures, stream tokens, the public URL.
    pub auth: Auth,
    pub sandbox: Sandbox,
    /// Speech-to-text, LLM, text-to-speech (any may be absent) and their health.
    pub providers: Arc<Providers>,
    /// Guest versions: the active one is empty until the first load finishes.
    pub versions: Registry,
    pub draining: AtomicBool,
    /// Every call's task (from its WebSocket upgrade to its close): how
    /// many are live, and what a drain waits for.
    pub calls: TaskTracker,
    /// Cancelled when the drain budget is spent: every call closes now.
    pub close_calls: CancellationToken,
}

impl App {
    pub fn new(config: Config, sandbox: Sandbox, providers: Providers) -> Arc<Self> {
        Arc::new(App {
            auth: Auth::new(&config),
            sandbox,
            providers: Arc::new(providers),
            versions: Registry::new(RollbackPolicy { traps: config.rollback_traps, window: config.rollback_window }),
            draining: AtomicBool::new(false),
            calls: TaskTracker::new(),
            close_calls: CancellationToken::new(),
            config,
        })
    }

    /// Calls (WebSockets) served at once: the instance pool minus the
    /// webhooks' reserve.
    pub fn max_calls(&self) -> usize {
        self.config.sandbox.max_instances.saturating_sub(WEBHOOK_INSTANCES).max(1) as usize
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }
}
