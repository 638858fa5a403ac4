//! The fleet's statements (PostgreSQL only: `LISTEN`/`NOTIFY` and advisory
//! locks). Every change to the activations takes one transaction-scoped
//! advisory lock, so ids are taken in order and a rollback's target is
//! computed from a history nobody is appending to; the `NOTIFY` in the same
//! transaction is delivered on commit, never before the row is visible.

use serde_json::{Value, json};
use sqlx::postgres::PgPool;
use sqlx::{Postgres, Row, Transaction};

use crate::store::record::unix_ms;

/// The channel every instance listens on; the payload is the digest.
pub const CHANNEL: &str = "hotline_guest";
/// `pg_advisory_xact_lock`'s key for the activations ("hotline" in ASCII).
const LOCK: i64 = 0x0068_6f74_6c69_6e65;

/// How a version became active, as the activations table says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// The first instance's own guest, on a database with no activation.
    Start,
    Push,
    Rollback,
    AutoRollback,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::Start => "start",
            Action::Push => "push",
            Action::Rollback => "rollback",
            Action::AutoRollback => "auto-rollback",
        }
    }

    fn from_name(name: &str) -> Action {
        match name {
            "start" => Action::Start,
            "rollback" => Action::Rollback,
            "auto-rollback" => Action::AutoRollback,
            _ => Action::Push,
        }
    }

    pub fn is_rollback(self) -> bool {
        matches!(self, Action::Rollback | Action::AutoRollback)
    }
}

fn now() -> i64 {
    unix_ms(std::time::SystemTime::now())
}

async fn locked(pool: &PgPool) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(LOCK).execute(&mut *tx).await?;
    Ok(tx)
}

/// The next activation, announced on commit.
async fn append(
    tx: &mut Transaction<'static, Postgres>,
    digest: &str,
    action: Action,
    instance: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO guest_activations (id, digest, action, instance, at) \
         SELECT COALESCE(MAX(id), 0) + 1, $1, $2, $3, $4 FROM guest_activations",
    )
    .bind(digest)
    .bind(action.name())
    .bind(instance)
    .bind(now())
    .execute(&mut **tx)
    .await?;
    sqlx::query("SELECT pg_notify($1, $2)").bind(CHANNEL).bind(digest).execute(&mut **tx).await?;
    Ok(())
}

async fn store_component(
    tx: &mut Transaction<'static, Postgres>,
    digest: &str,
    bytes: &[u8],
    source: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO guest_versions (digest, component, source, size, created_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (digest) DO NOTHING",
    )
    .bind(digest)
    .bind(bytes)
    .bind(source)
    .bind(bytes.len() as i64)
    .bind(now())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A push: the component (kept once per digest) and its activation.
pub async fn push(pool: &PgPool, digest: &str, bytes: &[u8], source: &str, instance: &str) -> Result<(), sqlx::Error> {
    let mut tx = locked(pool).await?;
    store_component(&mut tx, digest, bytes, source).await?;
    append(&mut tx, digest, Action::Push, instance).await?;
    tx.commit().await
}

/// Records this instance's own guest as the fleet's first version, unless
/// the database has an activation already; returns whether it did.
pub async fn seed(
    pool: &PgPool,
    digest: &str,
    bytes: &[u8],
    source: &str,
    instance: &str,
) -> Result<bool, sqlx::Error> {
    let mut tx = locked(pool).await?;
    let any: Option<i64> =
        sqlx::query_scalar("SELECT id FROM guest_activations LIMIT 1").fetch_optional(&mut *tx).await?;
    if any.is_some() {
        return Ok(false);
    }
    store_component(&mut tx, digest, bytes, source).await?;
    append(&mut tx, digest, Action::Start, instance).await?;
    tx.commit().await?;
    Ok(true)
}

/// The fleet's active version and how it became active.
pub async fn active(pool: &PgPool) -> Result<Option<(String, Action)>, sqlx::Error> {
    let row = sqlx::query("SELECT digest, action FROM guest_activations ORDER BY id DESC LIMIT 1")
        .fetch_optional(pool)
        .await?;
    row.map(|r| Ok((r.try_get("digest")?, Action::from_name(r.try_get::<&str, _>("action")?)))).transpose()
}

/// What a fleet-wide rollback found.
pub enum RolledBack {
    /// Activated (and announced): the version before the current one.
    To(String),
    /// Nothing older to return to.
    Nothing,
    /// The active version is no longer `from` (an automatic rollback that
    /// came late: someone pushed or rolled back since).
    Moved,
}

/// Returns the fleet to the version active before the current one. The
/// history is read as a stack: a push or a start puts a version on it, a
/// rollback takes the top off (and puts its target there, should the two
/// disagree). With `from`, only when that is still the active version.
pub async fn rollback(
    pool: &PgPool,
    action: Action,
    instance: &str,
    from: Option<&str>,
) -> Result<RolledBack, sqlx::Error> {
    let mut tx = locked(pool).await?;
    let rows = sqlx::query("SELECT digest, action FROM guest_activations ORDER BY id").fetch_all(&mut *tx).await?;
    let mut stack: Vec<String> = Vec::new();
    for row in rows {
        let digest: String = row.try_get("digest")?;
        if Action::from_name(row.try_get::<&str, _>("action")?).is_rollback() {
            stack.pop();
            if stack.last() != Some(&digest) {
                stack.push(digest);
            }
        } else {
            stack.push(digest);
        }
    }
    if from.is_some_and(|from| stack.last().map(String::as_str) != Some(from)) {
        return Ok(RolledBack::Moved);
    }
    let Some(target) = stack.len().checked_sub(2).map(|i| stack[i].clone()) else {
        return Ok(RolledBack::Nothing);
    };
    append(&mut tx, &target, action, instance).await?;
    tx.commit().await?;
    Ok(RolledBack::To(target))
}

/// A stored component and where it came from.
pub async fn component(pool: &PgPool, digest: &str) -> Result<Option<(Vec<u8>, String)>, sqlx::Error> {
    let row = sqlx::query("SELECT component, source FROM guest_versions WHERE digest = $1")
        .bind(digest)
        .fetch_optional(pool)
        .await?;
    row.map(|r| Ok((r.try_get("component")?, r.try_get("source")?))).transpose()
}

/// This instance's row: what it serves and how the newest load went.
pub async fn report(
    pool: &PgPool,
    instance: &str,
    serving: Option<&str>,
    target: Option<&str>,
    state: &str,
    error: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO guest_instances (instance, digest, target, state, error, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (instance) DO UPDATE SET digest = excluded.digest, target = excluded.target, \
         state = excluded.state, error = excluded.error, updated_at = excluded.updated_at",
    )
    .bind(instance)
    .bind(serving)
    .bind(target)
    .bind(state)
    .bind(error)
    .bind(now())
    .execute(pool)
    .await?;
    Ok(())
}

/// Every instance's row, and the newest activations, for `GET /admin/guest`.
pub async fn overview(pool: &PgPool, activations: i64) -> Result<Value, sqlx::Error> {
    let instances =
        sqlx::query("SELECT instance, digest, target, state, error, updated_at FROM guest_instances ORDER BY instance")
            .fetch_all(pool)
            .await?
            .iter()
            .map(|r| {
                Ok(json!({
                    "instance": r.try_get::<String, _>("instance")?,
                    "digest": r.try_get::<Option<String>, _>("digest")?,
                    "target": r.try_get::<Option<String>, _>("target")?,
                    "state": r.try_get::<String, _>("state")?,
                    "error": r.try_get::<Option<String>, _>("error")?,
                    "updated_at": r.try_get::<i64, _>("updated_at")?,
                }))
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
    let history =
        sqlx::query("SELECT id, digest, action, instance, at FROM guest_activations ORDER BY id DESC LIMIT $1")
            .bind(activations)
            .fetch_all(pool)
            .await?
            .iter()
            .map(|r| {
                Ok(json!({
                    "id": r.try_get::<i64, _>("id")?,
                    "digest": r.try_get::<String, _>("digest")?,
                    "action": r.try_get::<String, _>("action")?,
                    "instance": r.try_get::<String, _>("instance")?,
                    "at": r.try_get::<i64, _>("at")?,
                }))
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok(json!({ "instances": instances, "activations": history }))
}
