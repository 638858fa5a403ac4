//! The composition root: every part of the server made once, at start,
//! and shared by the listener and the routes. Calls get [`Calls`] (what
//! they share), never `App`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::admission::Auth;
use crate::admission::limits::{AuthFailures, Connections};
use crate::config::{Config, WEBHOOK_INSTANCES};
use crate::fetch::Fetcher;
use crate::fleet::Fleet;
use crate::live::Live;
use crate::media::Calls;
use crate::media::switchboard::Switchboard;
use crate::metrics::Metrics;
use crate::providers::Providers;
use crate::sandbox::Sandbox;
use crate::store::Records;
use crate::twilio::rest::Rest;
use crate::versions::{Registry, RollbackPolicy};

pub struct App {
    pub config: Arc<Config>,
    /// Signatures, stream tokens, the public URL.
    pub auth: Auth,
    /// Open connections, in all and per address.
    pub connections: Arc<Connections>,
    /// Failed admin authentications per address.
    pub admin_failures: AuthFailures,
    pub sandbox: Sandbox,
    pub draining: AtomicBool,
    /// What every call shares (versions, providers, records, metrics, the
    /// live list, the switchboard, fetch, Twilio's REST API, the calls'
    /// tasks); the routes reach them here too.
    pub calls: Arc<Calls>,
    /// With PostgreSQL: the instances sharing it, one active guest version.
    pub fleet: Option<Arc<Fleet>>,
}

impl App {
    pub fn new(config: Config, sandbox: Sandbox, providers: Providers, records: Records) -> Arc<Self> {
        let config = Arc::new(config);
        let twilio = config.twilio.clone().map(|settings| Rest::new(providers.client.clone(), settings));
        let fetch = Fetcher::new(providers.fetch_client.clone(), config.fetch.clone());
        let switchboard = Arc::new(Switchboard::new(records.submitter()));
        let versions =
            Arc::new(Registry::new(RollbackPolicy { traps: config.rollback_traps, window: config.rollback_window }));
        let fleet = Fleet::new(records.db(), &config.store.instance, &sandbox, &versions);
        let auth = Auth::new(&config);
        let calls = Arc::new(Calls {
            config: config.clone(),
            versions,
            providers: Arc::new(providers),
            stream_tokens: auth.stream_tokens.clone(),
            records,
            metrics: Metrics::default(),
            live: Live::default(),
            switchboard,
            fetch,
            twilio,
            tasks: TaskTracker::new(),
            close_all: CancellationToken::new(),
        });
        Arc::new(App {
            auth,
            connections: connection_limits(&config),
            admin_failures: AuthFailures::new(ADMIN_FAILURES, ADMIN_LOCKOUT),
            sandbox,
            draining: AtomicBool::new(false),
            calls,
            fleet,
            config,
        })
    }

    /// Calls (WebSockets) served at once: the instance slots minus the
    /// webhooks' reserve.
    pub fn max_calls(&self) -> usize {
        max_calls(&self.config)
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }
}

fn max_calls(config: &Config) -> usize {
    config.sandbox.max_instances.saturating_sub(WEBHOOK_INSTANCES).max(1) as usize
}

/// Wrong admin tokens an address may send per lockout window.
const ADMIN_FAILURES: u32 = 10;
const ADMIN_LOCKOUT: std::time::Duration = std::time::Duration::from_secs(60);
/// Descriptors kept free beyond the connection limit: the listener, the
/// log, the compile cache, provider requests.
const SPARE_DESCRIPTORS: usize = 64;

/// The connection limits: as configured, or from the open-file limit
/// (raised to its maximum first) and the call limit.
fn connection_limits(config: &Config) -> Arc<Connections> {
    let security = &config.security;
    let descriptors = raise_open_file_limit();
    let usable = (descriptors as usize).saturating_sub(SPARE_DESCRIPTORS);
    let total = security.max_connections.unwrap_or(usable.max(16));
    let per_ip = security.max_connections_per_ip.unwrap_or(max_calls(config) + SPARE_DESCRIPTORS);
    tracing::info!(
        event = "connection_limits",
        open_files = descriptors,
        max_connections = total,
        per_address = per_ip
    );
    if total > usable {
        tracing::warn!(
            event = "connection_limits",
            open_files = descriptors,
            max_connections = total,
            "HOTLINE_MAX_CONNECTIONS is above the open-file limit: connections may fail with EMFILE; raise `ulimit -n`"
        );
    }
    Connections::new(total, per_ip)
}

/// Raises the soft open-file limit to the hard one (as Go's runtime does):
/// a socket per call needs more than the usual soft 1024. Returns the limit.
pub fn raise_open_file_limit() -> u64 {
    // SAFETY: getrlimit/setrlimit on a stack value.
    unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 1024;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                return raised.rlim_cur;
            }
        }
        limit.rlim_cur
    }
}
