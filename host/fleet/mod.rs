//! A fleet: several instances on one PostgreSQL database (`DATABASE_URL`)
//! run one active guest version.
//!
//! - `sql.rs`: the components, the activations (the newest is the fleet's
//!   active version) and each instance's status; `NOTIFY` on every change.
//! - `listen.rs`: each instance's `LISTEN` task: on a notification, and on
//!   every (re)connect to catch what it missed, [`Fleet::sync`].
//!
//! A push or a rollback anywhere (the admin API, the watched file, an
//! automatic rollback) is written to the database first and only then
//! activated here: a database that cannot take it refuses the change, so
//! the fleet never splits. The others load it themselves (compile cache,
//! then compiler) and swap as a local push does, live calls migrating. A
//! call never moves between instances: it belongs to its socket.
//!
//! Without PostgreSQL there is no fleet: the same functions act on this
//! instance alone. The fleet knows the sandbox and the registry, not the
//! server: an automatic rollback reaches it from the registry
//! (`Registry::auto_rollbacks`), never from a call.

mod listen;
pub mod sql;
pub mod watch;

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use hotline_common::Lock;
use serde_json::{Value, json};
use sqlx::postgres::PgPool;
use tokio::sync::broadcast;
use tracing::{error, info, warn};

use crate::sandbox::{Sandbox, digest_of};
use crate::store::db::Db;
use crate::versions::{AutoRollback, LoadError, NothingToRollBack, Registry, Version, activate, install, validate};
use sql::{Action, RolledBack};

pub use listen::spawn as spawn_listener;

/// Activations `GET /admin/guest` shows.
const SHOWN_ACTIVATIONS: i64 = 16;

#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("the fleet's database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("version {0} is the fleet's active version but its component is not in the database")]
    Missing(String),
    #[error("the component stored as {digest} has digest {actual}: refused")]
    Corrupt { digest: String, actual: String },
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    NothingToRollBack(#[from] NothingToRollBack),
}

/// This instance's view of the fleet, for `/readyz`.
#[derive(Debug, Clone, serde::Serialize)]
struct Status {
    /// `starting`, `in_sync`, `failed` (the fleet's version could not be
    /// loaded here: the previous one still serves) or `db_unreachable`.
    state: &'static str,
    /// The fleet's active version as last read.
    active: Option<String>,
    error: Option<String>,
}

pub struct Fleet {
    pool: PgPool,
    /// What loads a version here, and what holds this instance's versions.
    sandbox: Sandbox,
    versions: Arc<Registry>,
    instance: String,
    /// Held while this instance's version and the fleet's are brought
    /// together (a push, a rollback, a notification): the instance that
    /// pushed finds its own notification already applied.
    apply: tokio::sync::Mutex<()>,
    status: Mutex<Status>,
    /// A version that failed to load here: not tried again until the fleet
    /// moves on (a new push or a rollback).
    failed: Mutex<Option<String>>,
    /// The component this instance started with, with its source: the
    /// fleet's first version when the database has none yet.
    own: OnceLock<(Vec<u8>, String)>,
    /// This instance's automatic rollbacks since the fleet was made, until
    /// the task that follows them takes the receiver (`listen::spawn`).
    auto_rollbacks: Mutex<Option<broadcast::Receiver<AutoRollback>>>,
}

impl Fleet {
    /// A fleet when the records go to PostgreSQL; none otherwise.
    pub fn new(db: Option<&Db>, instance: &str, sandbox: &Sandbox, versions: &Arc<Registry>) -> Option<Arc<Fleet>> {
        let Some(Db::Postgres(pool)) = db else { return None };
        Some(Arc::new(Fleet {
            pool: pool.clone(),
            sandbox: sandbox.clone(),
            versions: versions.clone(),
            instance: instance.to_string(),
            apply: tokio::sync::Mutex::new(()),
            status: Mutex::new(Status { state: "starting", active: None, error: None }),
            failed: Mutex::new(None),
            own: OnceLock::new(),
            auto_rollbacks: Mutex::new(Some(versions.auto_rollbacks())),
        }))
    }

    pub fn instance(&self) -> &str {
        &self.instance
    }

    fn set(&self, state: &'static str, active: Option<&str>, error: Option<String>) {
        let mut status = self.status.locked();
        status.state = state;
        if active.is_some() {
            status.active = active.map(str::to_string);
        }
        status.error = error;
    }

    /// `/readyz`'s `fleet`: this instance's state and the fleet's version.
    pub fn report(&self) -> Value {
        let status = self.status.locked().clone();
        json!({ "instance": self.instance, "state": status.state, "active": status.active, "error": status.error })
    }

    /// Writes this instance's row; a database that is away is logged, the
    /// next sync writes it again.
    async fn report_row(&self, serving: Option<&str>, target: Option<&str>, state: &str, error: Option<&str>) {
        if let Err(e) = sql::report(&self.pool, &self.instance, serving, target, state, error).await {
            hotline_telemetry::warn_throttled!(event = "fleet_db_unreachable", error = %e);
        }
    }

    /// Marks this instance's row at a drain's start and end (`draining`,
    /// `stopped`): the others' rows stay as they are.
    pub async fn mark(&self, state: &'static str) {
        let serving = self.versions.active().map(|v| v.digest().to_string());
        let target = self.status.locked().active.clone();
        self.report_row(serving.as_deref(), target.as_deref(), state, None).await;
    }

    /// Remembers the component this instance would run on its own.
    pub fn set_own(&self, bytes: Vec<u8>, source: String) {
        let _ = self.own.set((bytes, source));
    }

    /// At start-up: loads the fleet's active version, if the database has
    /// one and it loads here. `false`: the instance's own guest is loaded
    /// instead (and the listener seeds the fleet with it, or catches up).
    pub async fn start(&self) -> bool {
        let _held = self.apply.lock().await;
        let active = match sql::active(&self.pool).await {
            Ok(Some(active)) => active,
            Ok(None) => return false,
            Err(e) => {
                warn!(event = "fleet_db_unreachable", error = %e, "starting on this instance's own guest");
                self.set("db_unreachable", None, Some(e.to_string()));
                return false;
            }
        };
        self.bring(&active.0, active.1).await.is_ok()
    }

    /// Brings this instance to the fleet's active version: seeds an empty
    /// fleet with this instance's version, loads a version it does not run
    /// yet. An error is the database's (the caller reconnects).
    pub async fn sync(&self) -> Result<(), sqlx::Error> {
        let _held = self.apply.lock().await;
        let active = match sql::active(&self.pool).await {
            Ok(active) => active,
            Err(e) => {
                self.set("db_unreachable", None, Some(e.to_string()));
                return Err(e);
            }
        };
        let (digest, action) = match active {
            Some(active) => active,
            None => match (self.own.get(), self.versions.active()) {
                (Some((bytes, source)), Some(local)) if digest_of(bytes) == local.digest() => {
                    if sql::seed(&self.pool, local.digest(), bytes, source, &self.instance).await? {
                        info!(event = "fleet_seeded", digest = local.digest(), source, instance = self.instance);
                    }
                    sql::active(&self.pool).await?.unwrap_or((local.digest().to_string(), Action::Start))
                }
                // Nothing to seed with yet (the first load is still running).
                _ => return Ok(()),
            },
        };
        if self.failed.locked().as_deref() == Some(digest.as_str()) {
            return Ok(());
        }
        let _ = self.bring(&digest, action).await;
        Ok(())
    }

    /// Makes `digest` active here (already active, then nothing), and
    /// writes the outcome to this instance's row and its status.
    async fn bring(&self, digest: &str, action: Action) -> Result<Arc<Version>, FleetError> {
        let started = Instant::now();
        let already = self.versions.active().is_some_and(|v| v.digest() == digest);
        match self.apply_locally(digest, action).await {
            Ok(version) => {
                *self.failed.locked() = None;
                self.set("in_sync", Some(digest), None);
                if !already {
                    let ms = started.elapsed().as_millis() as u64;
                    info!(event = "fleet_sync", digest, action = action.name(), ms, instance = self.instance);
                }
                self.report_row(Some(digest), Some(digest), "loaded", None).await;
                Ok(version)
            }
            Err(e) => {
                let reason = e.to_string();
                error!(event = "fleet_load_failed", digest, action = action.name(), error = reason);
                if !matches!(e, FleetError::Db(_)) {
                    *self.failed.locked() = Some(digest.to_string());
                }
                self.set("failed", Some(digest), Some(reason.clone()));
                let serving = self.versions.active().map(|v| v.digest().to_string());
                self.report_row(serving.as_deref(), Some(digest), "failed", Some(&reason)).await;
                Err(e)
            }
        }
    }

    /// The way to `digest` that costs least: a rollback to the version
    /// below (as the pushing instance did), a version still in this
    /// instance's history, else the component from the database, checked
    /// against its digest, through the load pipeline.
    async fn apply_locally(&self, digest: &str, action: Action) -> Result<Arc<Version>, FleetError> {
        let current = self.versions.active();
        if let Some(current) = current.as_ref().filter(|v| v.digest() == digest) {
            return Ok(current.clone());
        }
        let history = self.versions.history();
        if action.is_rollback() && history.get(1).is_some_and(|v| v.digest() == digest) {
            let reason = if action == Action::AutoRollback { "traps" } else { "admin" };
            let version = self.versions.rollback(reason)?;
            let from = current.as_ref().map(|v| v.digest().to_string());
            info!(event = "guest_rolled_back", from, to = version.digest(), reason);
            return Ok(version);
        }
        if let Some(version) = history.into_iter().find(|v| v.digest() == digest) {
            activate(&self.versions, version.clone());
            return Ok(version);
        }
        let (bytes, source) =
            sql::component(&self.pool, digest).await?.ok_or_else(|| FleetError::Missing(digest.into()))?;
        let actual = digest_of(&bytes);
        if actual != digest {
            return Err(FleetError::Corrupt { digest: digest.into(), actual });
        }
        Ok(install(&self.sandbox, &self.versions, bytes, format!("fleet: {source}")).await?)
    }

    /// `GET /admin/guest`'s `fleet`: every instance's row and the newest
    /// activations (or why they cannot be read).
    pub async fn overview(&self) -> Value {
        let mut overview = match sql::overview(&self.pool, SHOWN_ACTIVATIONS).await {
            Ok(overview) => overview,
            Err(e) => json!({ "error": format!("the fleet's database: {e}") }),
        };
        overview["instance"] = json!(self.instance);
        overview["status"] = self.report();
        overview
    }
}

/// A new version from the admin API or the watched file: validated here,
/// then (in a fleet) stored and announced, then activated here. A fleet
/// whose database cannot take it changes nowhere.
pub async fn push(
    sandbox: &Sandbox,
    versions: &Registry,
    fleet: Option<&Fleet>,
    bytes: Vec<u8>,
    source: String,
) -> Result<Arc<Version>, FleetError> {
    let Some(fleet) = fleet else {
        return Ok(install(sandbox, versions, bytes, source).await?);
    };
    let version = validate(sandbox, bytes.clone(), format!("{source} on {}", fleet.instance)).await?;
    let digest = version.digest().to_string();
    let _held = fleet.apply.lock().await;
    if let Err(e) = sql::push(&fleet.pool, &digest, &bytes, &version.source, &fleet.instance).await {
        error!(event = "fleet_push_failed", digest, error = %e, "the version was activated nowhere");
        return Err(e.into());
    }
    info!(event = "fleet_push", digest, instance = fleet.instance, bytes = bytes.len());
    activate(versions, version.clone());
    *fleet.failed.locked() = None;
    fleet.set("in_sync", Some(&digest), None);
    fleet.report_row(Some(&digest), Some(&digest), "loaded", None).await;
    Ok(version)
}

/// `POST /admin/guest/rollback`: the version before the current one, here
/// or (in a fleet) fleet-wide.
pub async fn rollback(versions: &Registry, fleet: Option<&Fleet>) -> Result<Arc<Version>, FleetError> {
    let Some(fleet) = fleet else {
        let from = versions.active().map(|v| v.digest().to_string());
        let version = versions.rollback("admin")?;
        info!(event = "guest_rolled_back", from, to = version.digest(), reason = "admin");
        return Ok(version);
    };
    let _held = fleet.apply.lock().await;
    let target = match sql::rollback(&fleet.pool, Action::Rollback, &fleet.instance, None).await {
        Ok(RolledBack::To(target)) => target,
        Ok(RolledBack::Nothing | RolledBack::Moved) => return Err(NothingToRollBack.into()),
        Err(e) => {
            error!(event = "fleet_push_failed", action = "rollback", error = %e, "nothing was rolled back");
            return Err(e.into());
        }
    };
    info!(event = "fleet_rollback", to = target, action = "rollback", instance = fleet.instance);
    fleet.bring(&target, Action::Rollback).await
}

/// After this instance rolled a trapping version back on its own (the
/// registry announces it): the fleet follows, unless it has moved on since.
async fn follow_auto_rollbacks(fleet: Arc<Fleet>) {
    let Some(mut rollbacks) = fleet.auto_rollbacks.locked().take() else { return };
    loop {
        let from = match rollbacks.recv().await {
            Ok(rollback) => rollback.from,
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                warn!(
                    event = "fleet_rollback_skipped",
                    missed,
                    reason = "automatic rollbacks came faster than the fleet took them"
                );
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        match sql::rollback(&fleet.pool, Action::AutoRollback, &fleet.instance, Some(&from)).await {
            Ok(RolledBack::To(target)) => {
                warn!(event = "fleet_rollback", from, to = target, action = "auto-rollback", instance = fleet.instance)
            }
            Ok(RolledBack::Nothing | RolledBack::Moved) => {
                info!(event = "fleet_rollback_skipped", from, reason = "the fleet's active version is not it")
            }
            Err(e) => error!(event = "fleet_push_failed", action = "auto-rollback", from, error = %e),
        }
    }
}
