//! The database: SQLite in the data directory or PostgreSQL, opened and
//! brought to this binary's schema at start-up.
//!
//! One code path for both: [`Db`] is an enum over the two pools, and
//! [`on_pool!`] expands the same code for each (the statements are written
//! once, in SQL both dialects accept: `$1` parameters, `ON CONFLICT DO
//! NOTHING`, TEXT/BIGINT/DOUBLE PRECISION). Not sqlx's `Any` driver: that
//! erases types at run time, needs a driver registry, and would hide each
//! driver's own options (SQLite's WAL mode and busy timeout, Postgres'
//! TLS), which this keeps.

use std::borrow::Cow;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::SqlSafeStr;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

use crate::settings::Backend;

/// The migrations, embedded: version, description, SQL. A release that
/// changes the schema adds one; a released one never changes (its checksum
/// is checked against the database).
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "calls", include_str!("migrations/0001_calls.sql")),
    (2, "recordings", include_str!("migrations/0002_recordings.sql")),
    (3, "fleet", include_str!("migrations/0003_fleet.sql")),
];
/// Our own bookkeeping table: a PostgreSQL database shared with another
/// sqlx application keeps both apart.
const MIGRATIONS_TABLE: &str = "hotline_migrations";
/// How long a connection may take (start-up included): an unreachable
/// server is reported, not waited for.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Clone, Debug)]
pub enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to whichever pool `$db` holds: the same
/// code, compiled for each driver.
macro_rules! on_pool {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::db::Db::Sqlite($pool) => $body,
            $crate::db::Db::Postgres($pool) => $body,
        }
    };
}
pub(crate) use on_pool;

/// Why the store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("creating the data directory {dir} (HOTLINE_DATA_DIR): {error}")]
    DataDir { dir: String, error: std::io::Error },
    #[error("opening {what}: {error}")]
    Connect { what: String, error: sqlx::Error },
    #[error(
        "the database's schema is version {found}, newer than this hotline knows (up to {known}): \
         it was written by a newer hotline; run that one, or point {what} elsewhere"
    )]
    SchemaTooNew { found: i64, known: i64, what: String },
    #[error("bringing {what} to schema version {known}: {error}")]
    Migrate { what: String, known: i64, error: sqlx::migrate::MigrateError },
}

impl OpenError {
    /// The database could not be reached (a connection refused or timed
    /// out): worth waiting for, unlike a refusal.
    pub fn is_unreachable(&self) -> bool {
        let unreachable = |e: &sqlx::Error| matches!(e, sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut);
        match self {
            OpenError::Connect { error, .. } => unreachable(error),
            OpenError::Migrate { error: sqlx::migrate::MigrateError::Execute(error), .. } => unreachable(error),
            _ => false,
        }
    }
}

impl Db {
    /// Opens the database `backend` names: the SQLite file (created), or a
    /// PostgreSQL pool that connects when first used. `None` when records
    /// are off. The schema is [`migrate`](Self::migrate)'s business.
    pub async fn connect(backend: &Backend) -> Result<Option<(Db, String)>, OpenError> {
        match backend {
            Backend::Off(_) => Ok(None),
            Backend::Sqlite(dir) => Ok(Some((open_sqlite(dir).await?, dir.join(SQLITE_FILE).display().to_string()))),
            Backend::Postgres(url) => {
                let what = "DATABASE_URL".to_string();
                let options = PgConnectOptions::from_str(url.expose())
                    .map_err(|error| OpenError::Connect { what: what.clone(), error })?;
                // Five: one is held by the fleet's LISTEN task for as long as it runs.
                let pool =
                    PgPoolOptions::new().max_connections(5).acquire_timeout(ACQUIRE_TIMEOUT).connect_lazy_with(options);
                Ok(Some((Db::Postgres(pool), what)))
            }
        }
    }

    /// The newest schema version this binary knows.
    pub fn known_version() -> i64 {
        MIGRATIONS.iter().map(|m| m.0).max().unwrap_or(0)
    }

    /// Applies the missing migrations, after making sure the database is
    /// not from a newer hotline (whose schema this binary would misread).
    pub async fn migrate(&self, what: &str) -> Result<(), OpenError> {
        let known = Db::known_version();
        if let Some(found) = self.schema_version().await
            && found > known
        {
            return Err(OpenError::SchemaTooNew { found, known, what: what.into() });
        }
        let migrations = MIGRATIONS
            .iter()
            .map(|&(version, description, sql)| {
                Migration::new(version, Cow::Borrowed(description), MigrationType::Simple, sql.into_sql_str(), false)
            })
            .collect();
        let mut migrator = Migrator::with_migrations(migrations);
        migrator.dangerous_set_table_name(MIGRATIONS_TABLE);
        let result = on_pool!(self, pool => migrator.run(pool).await);
        result.map_err(|error| match error {
            sqlx::migrate::MigrateError::VersionMissing(found) => {
                OpenError::SchemaTooNew { found, known, what: what.into() }
            }
            error => OpenError::Migrate { what: what.into(), known, error },
        })
    }

    /// The newest migration applied, if the database has any.
    pub async fn schema_version(&self) -> Option<i64> {
        let sql = "SELECT MAX(version) FROM hotline_migrations";
        on_pool!(self, pool => sqlx::query_scalar::<_, Option<i64>>(sql).fetch_one(pool).await).ok().flatten()
    }

    /// A cheap round trip: is the database there?
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        on_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()))
    }

    pub async fn close(&self) {
        on_pool!(self, pool => pool.close().await)
    }
}

/// The database file in the data directory.
pub const SQLITE_FILE: &str = "hotline.db";

/// `dir` and its parents, mode 0700: records and recordings are the
/// operator's alone.
pub(crate) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

/// `hotline.db` in `dir` (created, mode 0700, with its parents), in WAL
/// mode: the API reads while the writer writes.
async fn open_sqlite(dir: &Path) -> Result<Db, OpenError> {
    create_private_dir(dir).map_err(|error| OpenError::DataDir { dir: dir.display().to_string(), error })?;
    let path = dir.join(SQLITE_FILE);
    let options = SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(Duration::from_secs(5));
    let pool = SqlitePoolOptions::new()
        .max_connections(4)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(options)
        .await
        .map_err(|error| OpenError::Connect { what: path.display().to_string(), error })?;
    Ok(Db::Sqlite(pool))
}
