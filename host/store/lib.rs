//! Call records in a database: SQLite in the data directory by default,
//! PostgreSQL with `DATABASE_URL`.
//!
//! - `record.rs`: what a record holds (built by the call, `media/record.rs`).
//! - `db.rs`: the two pools as one `Db`, opening, the embedded migrations.
//! - `writer.rs`: the one writer task: batches, retries, health, purge, the
//!   flush at shutdown; `write.rs` its statements.
//! - `read.rs`: the API's queries; `stats.rs` its hourly figures.
//! - `recordings.rs`: calls' audio as WAV files, written by a thread of its own.
//!
//! A call hands its finished record to [`Records::submit`], which never
//! waits: the queue is bounded, and a full one drops the record (counted,
//! and logged at most once a second). Records held elsewhere for a while
//! (a transferred call's, on the switchboard) go the same way through a
//! [`Submitter`].

pub mod db;
pub mod read;
pub mod record;
pub mod recordings;
pub mod settings;
pub mod stats;
mod write;
mod writer;

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::mpsc::{self, Sender, error::TrySendError};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use db::{Db, OpenError};
use record::CallRecord;
use recordings::Recordings;
pub use settings::{Backend, StoreArgs, StoreSettings};

/// How the database is doing, as `/readyz` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Health {
    Ok = 0,
    /// The newest write or ping failed or timed out.
    Degraded = 1,
}

/// The record queue at one moment, for `/readyz` and `/metrics`.
#[derive(Debug, Clone, Copy)]
pub struct RecordCounts {
    pub queued: usize,
    pub queue_max: usize,
    pub written: u64,
    pub dropped: u64,
    /// Recording chunks dropped (the recordings' queue full); `None` when
    /// calls are not recorded.
    pub recording_chunks_dropped: Option<u64>,
}

/// Counters the writer and the calls share: atomics only.
#[derive(Default)]
pub struct Stats {
    health: AtomicU8,
    pub written: AtomicU64,
    pub dropped: AtomicU64,
}

impl Stats {
    fn set(&self, health: Health) {
        self.health.store(health as u8, Ordering::Relaxed);
    }

    fn health(&self) -> Health {
        match self.health.load(Ordering::Relaxed) {
            0 => Health::Ok,
            _ => Health::Degraded,
        }
    }
}

/// The way into the writer's queue, for whoever hands records over: the
/// calls (through `Records`) and the switchboard, which holds a
/// transferred call's record until the phone call's end is known. Without
/// a database it drops what it is given.
#[derive(Clone, Default)]
pub struct Submitter {
    queue: Option<Sender<CallRecord>>,
    stats: Arc<Stats>,
}

impl Submitter {
    pub fn enabled(&self) -> bool {
        self.queue.is_some()
    }

    /// Hands a finished call's record to the writer; never waits. A full
    /// queue (the database slow or away) drops it.
    pub fn submit(&self, record: CallRecord) {
        let Some(queue) = &self.queue else { return };
        match queue.try_send(record) {
            Ok(()) => {}
            Err(TrySendError::Full(record) | TrySendError::Closed(record)) => {
                let dropped = self.stats.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                hotline_telemetry::warn_throttled!(event = "record_dropped", call_sid = record.call_sid, dropped);
            }
        }
    }

    /// A submitter into a queue of `n` that the caller reads instead of a
    /// writer: for tests of what submits (the server's switchboard).
    #[doc(hidden)]
    pub fn channel(n: usize) -> (Submitter, mpsc::Receiver<CallRecord>) {
        let (tx, rx) = mpsc::channel(n);
        (Submitter { queue: Some(tx), stats: Arc::default() }, rx)
    }
}

/// The store as the rest of the host sees it; without a database every
/// method is a no-op and `enabled` is false.
pub struct Records {
    sink: Submitter,
    db: Option<Db>,
    mask_numbers: bool,
    finish: CancellationToken,
    writer: std::sync::Mutex<Option<JoinHandle<()>>>,
    /// With `HOTLINE_RECORD_AUDIO=true` (and records on).
    recordings: Option<Recordings>,
}

/// How long the writer gets at shutdown for what it holds.
const FLUSH_BUDGET: Duration = Duration::from_secs(5);

impl Records {
    pub fn off() -> Records {
        Records {
            sink: Submitter::default(),
            db: None,
            mask_numbers: true,
            finish: CancellationToken::new(),
            writer: std::sync::Mutex::new(None),
            recordings: None,
        }
    }

    /// Opens the database, brings it to this binary's schema and starts the
    /// writer. A database that cannot be opened, or whose schema is newer
    /// than this binary, stops the start-up; a PostgreSQL server that does
    /// not answer does not: calls are taken, records wait in the queue (and
    /// past it are dropped) while the writer keeps trying.
    pub async fn open(settings: &StoreSettings) -> Result<Records, OpenError> {
        if let Backend::Off(reason) = &settings.backend {
            match reason {
                Some(reason) => warn!(event = "records_off", reason, "no call records: set HOTLINE_DATA_DIR"),
                None => info!(event = "records_off", reason = "HOTLINE_DATA_DIR=off"),
            }
            if settings.record_audio {
                warn!(event = "recordings_off", reason = "no call records", "HOTLINE_RECORD_AUDIO needs records");
            }
            return Ok(Records::off());
        }
        let Some((db, what)) = Db::connect(&settings.backend).await? else { return Ok(Records::off()) };
        let migrated = match db.migrate(&what).await {
            Ok(()) => true,
            Err(e) if e.is_unreachable() && matches!(db, Db::Postgres(_)) => {
                warn!(event = "records_db_unreachable", error = %e, "calls are taken; records wait for the database");
                false
            }
            Err(e) => return Err(e),
        };
        let backend = match db {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        };
        info!(
            event = "records",
            backend,
            database = %what,
            schema = Db::known_version(),
            queue = settings.queue,
            retention_days = settings.retention.map_or(0, |r| r.as_secs() / 86_400),
            mask_numbers = settings.mask_numbers,
        );
        let (tx, rx) = mpsc::channel(settings.queue);
        let stats = Arc::new(Stats::default());
        if !migrated {
            stats.set(Health::Degraded);
        }
        let finish = CancellationToken::new();
        let writer = writer::Writer {
            db: db.clone(),
            what,
            migrated,
            queue: rx,
            stats: stats.clone(),
            instance: settings.instance.clone(),
            retention: settings.retention,
            finish: finish.clone(),
            flush_budget: FLUSH_BUDGET,
        };
        let writer = tokio::spawn(writer.run());
        let recordings = match settings.recordings_dir() {
            Some(dir) => Some(
                Recordings::start(dir.clone(), settings.retention)
                    .map_err(|error| OpenError::DataDir { dir: dir.display().to_string(), error })?,
            ),
            None if settings.record_audio => {
                warn!(event = "recordings_off", reason = "no data directory", "set HOTLINE_DATA_DIR for recordings");
                None
            }
            None => None,
        };
        Ok(Records {
            recordings,
            sink: Submitter { queue: Some(tx), stats },
            db: Some(db),
            mask_numbers: settings.mask_numbers,
            finish,
            writer: std::sync::Mutex::new(Some(writer)),
        })
    }

    pub fn enabled(&self) -> bool {
        self.sink.enabled()
    }

    /// A handle that submits records into the same queue.
    pub fn submitter(&self) -> Submitter {
        self.sink.clone()
    }

    pub fn mask_numbers(&self) -> bool {
        self.mask_numbers
    }

    /// A phone number as records, logs and the live list show it: masked
    /// unless `HOTLINE_MASK_NUMBERS=false`.
    pub fn shown(&self, number: &str) -> String {
        if self.mask_numbers { record::mask_number(number) } else { number.to_string() }
    }

    /// The recordings' writer, when calls are recorded.
    pub fn recordings(&self) -> Option<&Recordings> {
        self.recordings.as_ref()
    }

    /// For the API's reads.
    pub fn db(&self) -> Option<&Db> {
        self.db.as_ref()
    }

    /// Hands a finished call's record to the writer; never waits. A full
    /// queue (the database slow or away) drops it.
    pub fn submit(&self, record: CallRecord) {
        self.sink.submit(record);
    }

    /// `"ok"`, `"degraded"` or `"off"`.
    pub fn status(&self) -> &'static str {
        match (&self.sink.queue, self.sink.stats.health()) {
            (None, _) => "off",
            (Some(_), Health::Ok) => "ok",
            (Some(_), Health::Degraded) => "degraded",
        }
    }

    /// The queue and its counters; `None` with records off.
    pub fn counts(&self) -> Option<RecordCounts> {
        let queue = self.sink.queue.as_ref()?;
        Some(RecordCounts {
            queued: queue.max_capacity() - queue.capacity(),
            queue_max: queue.max_capacity(),
            written: self.sink.stats.written.load(Ordering::Relaxed),
            dropped: self.sink.stats.dropped.load(Ordering::Relaxed),
            recording_chunks_dropped: self.recordings.as_ref().map(|r| r.dropped_chunks.load(Ordering::Relaxed)),
        })
    }

    /// The counters `/readyz` shows.
    pub fn report(&self) -> Value {
        let Some(c) = self.counts() else { return Value::Null };
        json!({
            "queued": c.queued,
            "queue_max": c.queue_max,
            "written": c.written,
            "dropped": c.dropped,
            "recording_chunks_dropped": c.recording_chunks_dropped,
        })
    }

    /// At shutdown, once the calls have ended: the writer writes what it
    /// holds and what is queued (within its budget), then stops.
    pub async fn flush(&self) {
        if let Some(recordings) = &self.recordings {
            recordings.flush(FLUSH_BUDGET).await;
        }
        self.finish.cancel();
        let writer = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(writer) = writer {
            let _ = tokio::time::timeout(FLUSH_BUDGET + Duration::from_secs(1), writer).await;
        }
    }
}
