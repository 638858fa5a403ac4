//! The listener, the guest's first load, and graceful shutdown.
//!
//! The socket is bound before the guest compiles, so `/healthz` answers
//! from the first milliseconds while `/readyz` says 503 until the guest is
//! in. A drain keeps the listener open (readiness must be able to say 503
//! and late webhooks get a polite refusal) until the live calls end or the
//! budget runs out; then every WebSocket gets a close frame, the records
//! of transferred calls still held on the switchboard are handed over,
//! and the call records' writer flushes what it holds.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use crate::admission::limits::Peer;
use crate::app::App;
use crate::config::Config;
use crate::providers::Providers;
use crate::sandbox::Sandbox;
use crate::store::Records;
use crate::versions::DEFAULT_GUEST;

/// Time the calls get to finish their close handshakes once told to close.
const CLOSE_GRACE: Duration = Duration::from_secs(5);
/// Time idle HTTP connections get to finish at the very end.
const HTTP_GRACE: Duration = Duration::from_secs(2);

pub struct Server {
    app: Arc<App>,
    local_addr: SocketAddr,
    drain: CancellationToken,
    done: JoinHandle<()>,
    guest_load: Option<JoinHandle<anyhow::Result<()>>>,
}

impl Server {
    /// Binds `config.listen`, starts serving, and starts loading the guest.
    pub async fn start(config: Config) -> anyhow::Result<Server> {
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding {} (PORT, HOTLINE_BIND)", config.listen))?;
        let local_addr = listener.local_addr()?;
        let sandbox = Sandbox::new(config.sandbox.clone()).context("setting up the wasm sandbox")?;
        let providers = Providers::new(config.providers.clone()).context("setting up the providers")?;
        let p = &config.providers;
        let agent = if p.realtime_agent.is_some() { "realtime" } else { "pipeline" };
        info!(event = "providers", agent, stt = p.stt.name(), llm = p.llm.name(), tts = p.tts.name());
        let records = Records::open(&config.store).await.context("opening the call records' database")?;
        let app = App::new(config, sandbox, providers, records);
        app.calls.providers.warm();
        info!(event = "listening", addr = %local_addr);
        let guest_load = Some(tokio::spawn(load_guest(app.clone())));
        let drain = CancellationToken::new();
        let done = tokio::spawn(run(app.clone(), listener, drain.clone()));
        Ok(Server { app, local_addr, drain, done, guest_load })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    pub fn app(&self) -> &Arc<App> {
        &self.app
    }

    /// Resolves when the first guest load finished (or failed).
    pub async fn guest_loaded(&mut self) -> anyhow::Result<()> {
        match self.guest_load.take() {
            Some(handle) => handle.await.context("guest load task")?,
            None => Ok(()),
        }
    }

    /// What SIGTERM does: stop being ready, let calls finish, then close.
    pub fn begin_drain(&self) {
        self.drain.cancel();
    }

    /// Resolves once the drain has completed.
    pub async fn wait(self) {
        if let Err(e) = self.done.await {
            error!(event = "server_task_failed", error = %e);
        }
    }
}

/// The first version: in a fleet, the fleet's active one when it loads
/// here; else this instance's own (`HOTLINE_GUEST` or the built-in), which
/// seeds a fleet that has none yet. Then the fleet's listener starts.
async fn load_guest(app: Arc<App>) -> anyhow::Result<()> {
    let path = app.config.guest_path.clone();
    let source = path.as_ref().map_or("built-in".to_string(), |p| p.display().to_string());
    let bytes = match &path {
        Some(p) => {
            tokio::fs::read(p).await.with_context(|| format!("reading guest {} (HOTLINE_GUEST)", p.display()))?
        }
        None => DEFAULT_GUEST.to_vec(),
    };
    let from_fleet = match &app.fleet {
        Some(fleet) => {
            fleet.set_own(bytes.clone(), source.clone());
            fleet.start().await
        }
        None => false,
    };
    if !from_fleet {
        let installed = crate::versions::install(&app.sandbox, &app.calls.versions, bytes, source.clone()).await;
        installed.map_err(|e| anyhow::Error::new(e).context(format!("loading guest {source}")))?;
    }
    if let Some(fleet) = &app.fleet {
        crate::fleet::spawn_listener(fleet.clone());
    }
    if let Some(path) = &path {
        crate::fleet::watch::spawn(app.sandbox.clone(), app.calls.versions.clone(), app.fleet.clone(), path.clone())?;
    }
    Ok(())
}

async fn run(app: Arc<App>, listener: TcpListener, drain: CancellationToken) {
    let connections = TaskTracker::new();
    let stop_accepting = CancellationToken::new();
    let acceptor = tokio::spawn(accept_loop(app.clone(), listener, connections.clone(), stop_accepting.clone()));
    // Transfers whose webhooks never came hand their records over in time.
    let sweeper = tokio::spawn(app.calls.switchboard.clone().sweep());

    drain.cancelled().await;
    app.draining.store(true, std::sync::atomic::Ordering::SeqCst);
    let budget = app.config.drain;
    info!(event = "drain_start", live_calls = app.calls.tasks.len(), budget_secs = budget.as_secs());
    if let Some(fleet) = &app.fleet {
        fleet.mark("draining").await;
    }
    // Closed, the tracker's `wait` resolves once no call is left (calls that
    // still arrive are tracked and waited for too).
    app.calls.tasks.close();
    if tokio::time::timeout(budget, app.calls.tasks.wait()).await.is_err() {
        warn!(event = "drain_timeout", live_calls = app.calls.tasks.len());
    }
    app.calls.close_all.cancel();
    if tokio::time::timeout(CLOSE_GRACE, app.calls.tasks.wait()).await.is_err() {
        warn!(event = "calls_not_closed", live_calls = app.calls.tasks.len());
    }
    // Every call has handed over its record; a transferred call's may still
    // wait on the switchboard for its dial or its caller: it goes now, and
    // the writer writes what it holds.
    sweeper.abort();
    app.calls.switchboard.close();
    if let Some(fleet) = &app.fleet {
        fleet.mark("stopped").await;
    }
    app.calls.records.flush().await;
    // Ends the accept loop and asks every keep-alive connection to close
    // after its current request.
    stop_accepting.cancel();
    if let Err(e) = acceptor.await {
        error!(event = "accept_loop_failed", error = %e);
    }
    connections.close();
    if tokio::time::timeout(HTTP_GRACE, connections.wait()).await.is_err() {
        warn!(event = "http_connections_cut");
    }
    info!(event = "shutdown_complete");
}

async fn accept_loop(app: Arc<App>, listener: TcpListener, connections: TaskTracker, stop: CancellationToken) {
    let mut builder = http1::Builder::new();
    // Headers, and an idle keep-alive connection's next request, within the
    // timeout: slowloris and silent connections are closed.
    builder.timer(TokioTimer::new()).header_read_timeout(app.config.security.header_timeout);
    loop {
        let (stream, peer) = tokio::select! {
            _ = stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    hotline_telemetry::warn_throttled!(event = "accept_failed", error = %e);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let connection = match app.connections.admit(peer.ip()) {
            Ok(guard) => Arc::new(guard),
            Err(refusal) => {
                // Closed at once: its descriptor is free again, and a client
                // holding many cannot starve the others (`/healthz` included).
                hotline_telemetry::warn_throttled!(event = "connection_refused", reason = refusal.name(), %peer);
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service = service_fn(move |mut req| {
            req.extensions_mut().insert(Peer::new(peer, connection.clone()));
            super::routes::route(app.clone(), req)
        });
        let conn = builder.serve_connection(TokioIo::new(stream), service).with_upgrades();
        let stop = stop.clone();
        connections.spawn(async move {
            let mut conn = std::pin::pin!(conn);
            let result = tokio::select! {
                result = conn.as_mut() => result,
                _ = stop.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = result {
                tracing::debug!(event = "http_conn_error", %peer, error = %e);
            }
        });
    }
}

/// Runs until SIGTERM or SIGINT, then drains. The process's `serve` command.
pub async fn serve(config: Config) -> anyhow::Result<()> {
    let mut server = Server::start(config).await?;
    let mut signal = std::pin::pin!(shutdown_signal());
    let signalled = tokio::select! {
        loaded = server.guest_loaded() => { loaded?; false }
        _ = &mut signal => true,
    };
    if !signalled {
        signal.await;
    }
    server.begin_drain();
    server.wait().await;
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("install SIGINT handler");
    let name = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    };
    info!(event = "signal", signal = name);
}
