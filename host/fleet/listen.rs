//! Each instance's `LISTEN hotline_guest` task. A notification means "the
//! fleet's active version may have changed": the task reads the database
//! (the newest activation wins, so a burst of notifications costs one
//! load) and brings this instance to it. Notifications are not queued for
//! a listener that is away, so every (re)connect is followed by a sync:
//! nothing missed while the database was gone stays missed. A database
//! that vanishes is logged and waited for; calls go on with the version
//! this instance runs.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use super::Fleet;
use super::sql::CHANNEL;

const RETRY_FIRST: Duration = Duration::from_millis(250);
const RETRY_MAX: Duration = Duration::from_secs(5);

/// Starts following the fleet: its notifications, and this instance's
/// automatic rollbacks (which the fleet follows too).
pub fn spawn(fleet: Arc<Fleet>) -> JoinHandle<()> {
    tokio::spawn(super::follow_auto_rollbacks(fleet.clone()));
    tokio::spawn(run(fleet))
}

async fn run(fleet: Arc<Fleet>) {
    let mut backoff = RETRY_FIRST;
    loop {
        match listen(&fleet).await {
            // The records' pool closed: the server is shutting down.
            Ok(()) => return,
            Err(e) => {
                hotline_telemetry::warn_throttled!(event = "fleet_listener_lost", error = %e, retry_ms = backoff.as_millis() as u64);
                fleet.set("db_unreachable", None, Some(e.to_string()));
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(RETRY_MAX);
    }
}

/// One connection's life: `LISTEN`, catch up, then follow notifications
/// until the connection fails (an error) or the pool closes (`Ok`).
async fn listen(fleet: &Fleet) -> Result<(), sqlx::Error> {
    let mut listener = match PgListener::connect_with(&fleet.pool).await {
        Err(sqlx::Error::PoolClosed) => return Ok(()),
        other => other?,
    };
    listener.listen(CHANNEL).await?;
    info!(event = "fleet_listening", channel = CHANNEL, instance = fleet.instance);
    fleet.sync().await?;
    loop {
        match listener.try_recv().await {
            Ok(Some(notification)) => {
                debug!(event = "fleet_notified", digest = notification.payload());
                fleet.sync().await?;
            }
            // Lost and already reconnected (and listening again): what
            // came in between is read from the table.
            Ok(None) => {
                warn!(event = "fleet_listener_lost", reconnected = true);
                fleet.sync().await?;
            }
            Err(sqlx::Error::PoolClosed) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
}
