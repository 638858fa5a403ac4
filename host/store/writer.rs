//! The one writer: takes finished calls' records off the queue and writes
//! them in batches (one transaction per batch: up to `BATCH` records, or
//! what arrived within `BATCH_WINDOW` of the first). A crash loses at most
//! the batch in hand and the queue.
//!
//! The database failing or slow never reaches a call: while a batch
//! fails the writer retries it (backing off) and reads nothing more, so the
//! bounded queue fills and further records are dropped and counted
//! (`Records::submit`). The health it reports is what `/readyz` shows. A
//! batch the database refuses while it answers pings is given up after a
//! few tries rather than blocking every later record.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc::Receiver;
use tokio::time::{Instant, sleep, sleep_until, timeout};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use super::db::Db;
use super::record::{CallRecord, unix_ms};
use super::write::{purge, write_batch};
use super::{Health, Stats};

const BATCH: usize = 64;
const BATCH_WINDOW: Duration = Duration::from_millis(200);
/// A batch that takes longer than this counts as failed (and the database
/// as degraded).
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// With nothing to write, the database is pinged this often, so `/readyz`
/// says when it goes away or comes back.
const PING_EVERY: Duration = Duration::from_secs(2);
const PING_TIMEOUT: Duration = Duration::from_secs(3);
const RETRY_FIRST: Duration = Duration::from_millis(250);
const RETRY_MAX: Duration = Duration::from_secs(5);
/// Tries of a batch the database refuses while reachable.
const REFUSED_TRIES: u32 = 3;
const PURGE_EVERY: Duration = Duration::from_secs(3600);

pub struct Writer {
    pub db: Db,
    /// The database, as errors name it.
    pub what: String,
    /// The schema is this binary's (else: the database was unreachable at
    /// start-up, and migrating comes first).
    pub migrated: bool,
    pub queue: Receiver<CallRecord>,
    pub stats: Arc<Stats>,
    /// `HOTLINE_INSTANCE`, written with every record.
    pub instance: String,
    pub retention: Option<Duration>,
    /// Cancelled on shutdown: write what is held and queued, then stop.
    pub finish: CancellationToken,
    /// How long the final flush may take.
    pub flush_budget: Duration,
}

impl Writer {
    pub async fn run(mut self) {
        if !self.migrated && !self.migrate().await {
            return self.abandon().await;
        }
        let mut batch: Vec<CallRecord> = Vec::with_capacity(BATCH);
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first tick is now: a restart purges at once.
        let mut purge_tick = tokio::time::interval(PURGE_EVERY);
        purge_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            // Wait for a record (pinging and purging meanwhile)...
            let first = tokio::select! {
                biased;
                _ = self.finish.cancelled() => break,
                record = self.queue.recv() => match record {
                    Some(record) => record,
                    None => break,
                },
                _ = purge_tick.tick() => {
                    self.purge().await;
                    continue;
                }
                _ = ping.tick() => {
                    let healthy = matches!(timeout(PING_TIMEOUT, self.db.ping()).await, Ok(Ok(())));
                    self.stats.set(if healthy { Health::Ok } else { Health::Degraded });
                    continue;
                }
            };
            batch.push(first);
            // ...then for more, up to a batch or the window.
            let window = Instant::now() + BATCH_WINDOW;
            while batch.len() < BATCH {
                tokio::select! {
                    record = self.queue.recv() => match record {
                        Some(record) => batch.push(record),
                        None => break,
                    },
                    _ = sleep_until(window) => break,
                    _ = self.finish.cancelled() => break,
                }
            }
            if !self.write_until_done(&mut batch).await {
                break; // shutting down with the database away: the flush tries once more
            }
            ping.reset();
        }
        self.flush(batch).await;
    }

    /// Writes the batch, retrying while the database is away. Returns
    /// false if shutdown came first (the batch is still held).
    async fn write_until_done(&mut self, batch: &mut Vec<CallRecord>) -> bool {
        let mut wait = RETRY_FIRST;
        let mut refused = 0;
        loop {
            match self.write(batch).await {
                Ok(()) => return true,
                Err(reason) => {
                    self.stats.set(Health::Degraded);
                    hotline_telemetry::warn_throttled!(event = "record_write_failed", records = batch.len(), error = %reason);
                    let reachable = matches!(timeout(PING_TIMEOUT, self.db.ping()).await, Ok(Ok(())));
                    if reachable {
                        refused += 1;
                        if refused >= REFUSED_TRIES {
                            error!(event = "records_lost", records = batch.len(), error = %reason, "the database refuses this batch");
                            self.stats.dropped.fetch_add(batch.len() as u64, std::sync::atomic::Ordering::Relaxed);
                            batch.clear();
                            return true;
                        }
                    }
                }
            }
            tokio::select! {
                _ = sleep(wait) => {}
                _ = self.finish.cancelled() => return false,
            }
            wait = (wait * 2).min(RETRY_MAX);
        }
    }

    /// One try at the batch; written, it is cleared.
    async fn write(&self, batch: &mut Vec<CallRecord>) -> Result<(), String> {
        match timeout(WRITE_TIMEOUT, write_batch(&self.db, batch, &self.instance)).await {
            Ok(Ok(())) => {
                self.stats.written.fetch_add(batch.len() as u64, std::sync::atomic::Ordering::Relaxed);
                self.stats.set(Health::Ok);
                batch.clear();
                Ok(())
            }
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err(format!("no answer within {WRITE_TIMEOUT:?}")),
        }
    }

    /// Shutdown: what is held and what is queued, written within the budget.
    async fn flush(mut self, mut batch: Vec<CallRecord>) {
        self.queue.close();
        while let Ok(record) = self.queue.try_recv() {
            batch.push(record);
        }
        let held = batch.len();
        let deadline = Instant::now() + self.flush_budget;
        let mut written = 0;
        while !batch.is_empty() && Instant::now() < deadline {
            let take = batch.len().min(BATCH);
            let mut chunk: Vec<CallRecord> = batch.drain(..take).collect();
            while !chunk.is_empty() && Instant::now() < deadline {
                if self.write(&mut chunk).await.is_ok() {
                    written += take;
                } else {
                    tokio::time::sleep(RETRY_FIRST).await;
                }
            }
            if !chunk.is_empty() {
                batch.extend(chunk);
                break;
            }
        }
        let lost = batch.len();
        if lost > 0 {
            warn!(event = "records_lost", records = lost, "the database did not take them before shutdown");
            self.stats.dropped.fetch_add(lost as u64, std::sync::atomic::Ordering::Relaxed);
        }
        info!(event = "records_flushed", held, written);
        self.db.close().await;
    }

    /// Shutdown without a database of this binary's schema: what is
    /// queued is counted as lost, never written.
    async fn abandon(mut self) {
        self.queue.close();
        let mut lost = 0;
        while self.queue.try_recv().is_ok() {
            lost += 1;
        }
        if lost > 0 {
            warn!(event = "records_lost", records = lost, "the database never became usable");
            self.stats.dropped.fetch_add(lost, std::sync::atomic::Ordering::Relaxed);
        }
        info!(event = "records_flushed", held = lost, written = 0);
        self.db.close().await;
    }

    /// Brings the database to this binary's schema once it answers.
    /// False if shutdown came first, or the database refuses (a newer
    /// schema): then nothing is written, and records queue up and drop.
    async fn migrate(&mut self) -> bool {
        let mut wait = RETRY_FIRST;
        loop {
            match self.db.migrate(&self.what).await {
                Ok(()) => {
                    info!(event = "records_db_ready", schema = Db::known_version());
                    self.stats.set(Health::Ok);
                    return true;
                }
                Err(e) if e.is_unreachable() => {
                    hotline_telemetry::warn_throttled!(event = "records_db_unreachable", error = %e);
                }
                Err(e) => {
                    error!(event = "records_refused", error = %e, "no records are written");
                    self.finish.cancelled().await;
                    return false;
                }
            }
            tokio::select! {
                _ = sleep(wait) => {}
                _ = self.finish.cancelled() => return false,
            }
            wait = (wait * 2).min(RETRY_MAX);
        }
    }

    async fn purge(&self) {
        let Some(retention) = self.retention else { return };
        let cutoff = unix_ms(SystemTime::now() - retention);
        match purge(&self.db, cutoff).await {
            Ok(0) => {}
            Ok(calls) => info!(event = "records_purged", calls, retention_days = retention.as_secs() / 86_400),
            Err(e) => warn!(event = "records_purge_failed", error = %e),
        }
    }
}
