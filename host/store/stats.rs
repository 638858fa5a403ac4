//! `GET /api/stats`: calls per hour by outcome, end-of-utterance → first
//! audio p50/p95 per hour, and provider errors, over the last hours.
//!
//! Hours are UTC hours of the calls' starts (a turn counts in the hour its
//! call started). The database groups the calls; the turns' latencies come
//! back as rows and their percentiles are computed here, the same way for
//! SQLite and PostgreSQL (neither has a percentile both accept).

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::Row;

use super::db::{Db, on_pool};
use super::record::Outcome;

pub const HOUR_MS: i64 = 3_600_000;
/// Hours a request may ask for (a week), and by default (a day).
pub const MAX_HOURS: u32 = 168;
pub const DEFAULT_HOURS: u32 = 24;

/// One hour, or the whole window (`start` absent).
#[derive(Debug, Default, Serialize, PartialEq)]
pub struct Bucket {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<i64>,
    pub calls: u64,
    pub outcomes: BTreeMap<&'static str, u64>,
    pub turns: u64,
    pub first_audio_ms: Percentiles,
    pub provider_errors: ProviderErrors,
    /// Turns with a provider error ÷ turns; null without turns.
    pub provider_error_rate: Option<f64>,
    #[serde(skip)]
    first_audio: Vec<f64>,
    #[serde(skip)]
    turns_with_errors: u64,
}

#[derive(Debug, Default, Serialize, PartialEq)]
pub struct Percentiles {
    pub p50: Option<f64>,
    pub p95: Option<f64>,
}

#[derive(Debug, Default, Serialize, PartialEq)]
pub struct ProviderErrors {
    pub stt: u64,
    pub llm: u64,
    pub tts: u64,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct Stats {
    pub since: i64,
    pub until: i64,
    /// Oldest first, one per hour, empty hours included.
    pub hours: Vec<Bucket>,
    pub total: Bucket,
}

impl Bucket {
    fn add_calls(&mut self, outcome: &str, count: u64) {
        self.calls += count;
        // Unknown names (a newer hotline's) are counted in `calls` only.
        if let Some(outcome) = Outcome::from_name(outcome) {
            *self.outcomes.entry(outcome.name()).or_default() += count;
        }
    }

    fn add_turn(&mut self, first_audio_ms: Option<f64>, errors: Option<&str>) {
        self.turns += 1;
        self.first_audio.extend(first_audio_ms);
        let Some(errors) = errors.filter(|e| !e.is_empty()) else { return };
        self.turns_with_errors += 1;
        // One line per error, each "kind: message" (`media/record.rs`).
        for line in errors.lines() {
            match line.split(':').next() {
                Some("stt") => self.provider_errors.stt += 1,
                Some("llm") => self.provider_errors.llm += 1,
                Some("tts") => self.provider_errors.tts += 1,
                _ => {}
            }
        }
    }

    fn finish(&mut self) {
        self.first_audio.sort_by(f64::total_cmp);
        self.first_audio_ms =
            Percentiles { p50: percentile(&self.first_audio, 50), p95: percentile(&self.first_audio, 95) };
        self.provider_error_rate = (self.turns > 0).then(|| self.turns_with_errors as f64 / self.turns as f64);
    }
}

/// The nearest-rank percentile of sorted values, to a tenth of a millisecond.
fn percentile(sorted: &[f64], p: usize) -> Option<f64> {
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted.get(rank - 1).map(|v| (v * 10.0).round() / 10.0)
}

/// The window of `hours` whole UTC hours that ends with the current one.
pub fn window(now_ms: i64, hours: u32) -> (i64, i64) {
    let until = (now_ms.div_euclid(HOUR_MS) + 1) * HOUR_MS;
    (until - i64::from(hours) * HOUR_MS, until)
}

pub async fn stats(db: &Db, now_ms: i64, hours: u32) -> Result<Stats, sqlx::Error> {
    let (since, until) = window(now_ms, hours.clamp(1, MAX_HOURS));
    let calls_sql = "SELECT started_at / 3600000 AS hour, outcome, COUNT(*) AS n FROM calls \
         WHERE started_at >= $1 AND started_at < $2 GROUP BY started_at / 3600000, outcome";
    let turns_sql = "SELECT c.started_at / 3600000 AS hour, t.first_audio_ms, t.errors \
         FROM turns t JOIN calls c ON c.call_sid = t.call_sid WHERE c.started_at >= $1 AND c.started_at < $2";
    let mut buckets: Vec<Bucket> = (since..until)
        .step_by(HOUR_MS as usize)
        .map(|start| Bucket { start: Some(start), ..Bucket::default() })
        .collect();
    let first_hour = since / HOUR_MS;
    let count = buckets.len();
    let index = |hour: i64| usize::try_from(hour - first_hour).ok().filter(|&i| i < count);
    on_pool!(db, pool => {
        for row in sqlx::query(calls_sql).bind(since).bind(until).fetch_all(pool).await? {
            let (hour, outcome, n): (i64, String, i64) = (row.try_get("hour")?, row.try_get("outcome")?, row.try_get("n")?);
            if let Some(i) = index(hour) {
                buckets[i].add_calls(&outcome, n as u64);
            }
        }
        for row in sqlx::query(turns_sql).bind(since).bind(until).fetch_all(pool).await? {
            let hour: i64 = row.try_get("hour")?;
            let first_audio: Option<f64> = row.try_get("first_audio_ms")?;
            let errors: Option<String> = row.try_get("errors")?;
            if let Some(i) = index(hour) {
                buckets[i].add_turn(first_audio, errors.as_deref());
            }
        }
    });
    let mut total = Bucket::default();
    for bucket in &mut buckets {
        total.calls += bucket.calls;
        for (outcome, n) in &bucket.outcomes {
            *total.outcomes.entry(outcome).or_default() += n;
        }
        total.turns += bucket.turns;
        total.turns_with_errors += bucket.turns_with_errors;
        total.first_audio.extend_from_slice(&bucket.first_audio);
        let (e, t) = (&bucket.provider_errors, &mut total.provider_errors);
        (t.stt, t.llm, t.tts) = (t.stt + e.stt, t.llm + e.llm, t.tts + e.tts);
        bucket.finish();
    }
    total.finish();
    Ok(Stats { since, until, hours: buckets, total })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let values: Vec<f64> = (1..=20).map(f64::from).collect();
        assert_eq!((percentile(&values, 50), percentile(&values, 95)), (Some(10.0), Some(19.0)));
        assert_eq!((percentile(&[7.04], 50), percentile(&[7.04], 95)), (Some(7.0), Some(7.0)));
        assert_eq!(percentile(&[], 50), None);
    }

    #[test]
    fn the_window_is_whole_hours_ending_with_the_current_one() {
        let now = 10 * HOUR_MS + 1234;
        assert_eq!(window(now, 1), (10 * HOUR_MS, 11 * HOUR_MS));
        assert_eq!(window(now, 24), (-13 * HOUR_MS, 11 * HOUR_MS));
        assert_eq!(window(11 * HOUR_MS, 1), (11 * HOUR_MS, 12 * HOUR_MS), "an hour's first moment is in it");
    }

    #[test]
    fn a_bucket_counts_outcomes_turns_and_errors_by_kind() {
        let mut b = Bucket::default();
        b.add_calls("caller_hung_up", 3);
        b.add_calls("from_the_future", 1);
        b.add_turn(Some(800.0), None);
        b.add_turn(None, Some("stt: timed out\nllm: 429 too many requests"));
        b.add_turn(Some(600.0), Some("tts: 500"));
        b.add_turn(Some(700.0), Some(""));
        b.finish();
        assert_eq!((b.calls, b.outcomes.get("caller_hung_up"), b.turns), (4, Some(&3), 4));
        assert_eq!(b.provider_errors, ProviderErrors { stt: 1, llm: 1, tts: 1 });
        assert_eq!(b.provider_error_rate, Some(0.5));
        assert_eq!(b.first_audio_ms, Percentiles { p50: Some(700.0), p95: Some(800.0) });
    }
}
