//! `/metrics`: what Prometheus scrapes, in the OpenMetrics text format
//! (`prometheus-client`).
//!
//! Two kinds of numbers, kept apart:
//! - What the calls count as they go ([`Metrics`], in `media::Calls`): outcomes,
//!   turns, latencies, guest time per event, bad frames. On the frame path
//!   that is a few relaxed atomic adds ([`Timing`] is lock-free; the
//!   crate's own histogram takes a mutex per observation).
//! - What other parts already count for themselves (live calls, each guest
//!   version's traps and migrations, the providers' errors, the record
//!   queue): read when scraped (`http/observe.rs` reads them into a
//!   [`Scrape`]), never counted twice.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder, NoLabelSet, text};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Registry, Unit};

use crate::fetch::Outcome as FetchOutcome;
use crate::store::RecordCounts;
use crate::store::record::Outcome;
use crate::versions::Counts;

/// The content type of what [`render`] writes.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Bounds of the latency histograms, in seconds: a turn's stages.
const LATENCY_BOUNDS: &[f64] = &[0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0];
/// Bounds of the guest-time histogram, in seconds: one event, 2 µs to 20 ms.
const GUEST_BOUNDS: &[f64] = &[
    0.000_002, 0.000_005, 0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.02,
];

type Labels = [(&'static str, &'static str); 1];

/// How a turn ended, as the `outcome` field spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TurnOutcome {
    /// Its reply audio reached the caller.
    Spoken,
    /// A barge-in or an abandoned turn cancelled it.
    Cancelled,
    /// A provider failed.
    Failed,
    /// The next utterance came before any reply audio did.
    NoAudio,
}

impl TurnOutcome {
    pub const ALL: [TurnOutcome; 4] =
        [TurnOutcome::Spoken, TurnOutcome::Cancelled, TurnOutcome::Failed, TurnOutcome::NoAudio];

    pub fn name(self) -> &'static str {
        match self {
            TurnOutcome::Spoken => "spoken",
            TurnOutcome::Cancelled => "cancelled",
            TurnOutcome::Failed => "failed",
            TurnOutcome::NoAudio => "no_audio",
        }
    }
}

/// A finished turn's numbers, as its `turn` line gave them.
#[derive(Debug, Clone, Copy)]
pub struct TurnTimes {
    pub turn: u32,
    pub outcome: TurnOutcome,
    pub stt_ms: Option<f64>,
    pub llm_first_token_ms: Option<f64>,
    pub tts_first_byte_ms: Option<f64>,
    pub first_audio_ms: Option<f64>,
}

/// The numbers the calls count.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    calls: Family<Labels, Counter>,
    turns: Family<Labels, Counter>,
    first_audio: Timing,
    stt: Timing,
    llm_first_token: Timing,
    tts_first_byte: Timing,
    guest_event: Timing,
    bad_frames: Counter,
    fetches: Family<Labels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("hotline");
        let calls = Family::<Labels, Counter>::default();
        let turns = Family::<Labels, Counter>::default();
        // Every label value from the start, at zero: `rate()` needs the
        // series to exist before the first event.
        for outcome in Outcome::ALL {
            let _ = calls.get_or_create(&[("outcome", outcome.name())]);
        }
        for outcome in TurnOutcome::ALL {
            let _ = turns.get_or_create(&[("outcome", outcome.name())]);
        }
        registry.register("calls", "Calls ended, by how they ended", calls.clone());
        registry.register("turns", "Turns the providers worked on, by how they ended", turns.clone());
        let timing = |registry: &mut Registry, name: &str, help: &str, bounds| {
            let timing = Timing::new(bounds);
            registry.register_with_unit(name, help, Unit::Seconds, timing.clone());
            timing
        };
        let first_audio =
            timing(&mut registry, "first_audio", "End of utterance to the reply's first audio", LATENCY_BOUNDS);
        let stt = timing(&mut registry, "stt", "End of utterance to the transcript", LATENCY_BOUNDS);
        let llm_first_token =
            timing(&mut registry, "llm_first_token", "LLM request to its first token", LATENCY_BOUNDS);
        let tts_first_byte =
            timing(&mut registry, "tts_first_byte", "Speech request to its first audio", LATENCY_BOUNDS);
        let guest_help = "Guest time per event (a media frame, a mark, a provider result)";
        let guest_event = timing(&mut registry, "guest_event", guest_help, GUEST_BOUNDS);
        let bad_frames = Counter::default();
        registry.register("ws_bad_frames", "WebSocket frames refused as malformed or out of place", bad_frames.clone());
        let fetches = Family::<Labels, Counter>::default();
        for outcome in FetchOutcome::ALL {
            let _ = fetches.get_or_create(&[("outcome", outcome.name())]);
        }
        registry.register("guest_fetches", "Guests' fetch requests, by how they ended", fetches.clone());
        Metrics {
            registry,
            calls,
            turns,
            first_audio,
            stt,
            llm_first_token,
            tts_first_byte,
            guest_event,
            bad_frames,
            fetches,
        }
    }
}

impl Metrics {
    pub fn call_ended(&self, outcome: Outcome) {
        self.calls.get_or_create(&[("outcome", outcome.name())]).inc();
    }

    pub fn turn(&self, t: &TurnTimes) {
        self.turns.get_or_create(&[("outcome", t.outcome.name())]).inc();
        let pairs = [
            (&self.first_audio, t.first_audio_ms),
            (&self.stt, t.stt_ms),
            (&self.llm_first_token, t.llm_first_token_ms),
            (&self.tts_first_byte, t.tts_first_byte_ms),
        ];
        for (timing, ms) in pairs {
            if let Some(ms) = ms {
                timing.observe(Duration::from_secs_f64(ms / 1000.0));
            }
        }
    }

    /// Once per event handed to a guest: a few atomic adds.
    pub fn guest_event(&self, took: Duration) {
        self.guest_event.observe(took);
    }

    pub fn bad_frame(&self) {
        self.bad_frames.inc();
    }

    pub fn guest_fetch(&self, outcome: FetchOutcome) {
        self.fetches.get_or_create(&[("outcome", outcome.name())]).inc();
    }
}

/// Everything `/metrics` shows: what the calls counted, and what the rest
/// of the server counts for itself, read at this scrape (`http` reads it).
pub fn render(metrics: &Metrics, scrape: Scrape) -> String {
    let mut now = Registry::with_prefix("hotline");
    now.register_collector(Box::new(scrape));
    let mut out = String::with_capacity(8 * 1024);
    // Writing into a String cannot fail.
    let _ = text::encode_registry(&mut out, &metrics.registry);
    let _ = text::encode_registry(&mut out, &now);
    let _ = text::encode_eof(&mut out);
    out
}

/// The numbers other parts keep, copied at one scrape.
#[derive(Debug)]
pub struct Scrape {
    pub live_calls: i64,
    pub draining: i64,
    /// Per guest version: its digest, whether it is active, its counters.
    pub versions: Vec<(String, bool, Counts)>,
    /// Per provider kind and error class: failures so far.
    pub provider_errors: Vec<(&'static str, &'static str, u64)>,
    pub records: Option<RecordCounts>,
}

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        gauge(&mut encoder, "live_calls", "Calls in progress (WebSockets open)", self.live_calls)?;
        gauge(&mut encoder, "draining", "1 while the server drains for a shutdown", self.draining)?;

        let mut active = encoder.encode_descriptor(
            "guest_active",
            "1 for the version serving new calls",
            None,
            MetricType::Gauge,
        )?;
        for (version, is_active, _) in &self.versions {
            ConstGauge::new(*is_active as i64).encode(active.encode_family(&[("version", version.as_str())])?)?;
        }
        type Pick = fn(&Counts) -> u64;
        let per_version: [(&str, &str, Pick); 5] = [
            ("guest_calls", "Calls started on a guest version", |c| c.calls),
            ("guest_traps", "Guest failures (trap, deadline, memory) of a version", |c| c.traps),
            ("guest_migrations", "Live calls moved onto a version by a swap", |c| c.migrations),
            ("guest_refusals", "Live calls whose snapshot a version refused", |c| c.refusals),
            ("guest_rollbacks", "Times a version was rolled back from (by hand or automatically)", |c| c.rollbacks),
        ];
        for (name, help, pick) in per_version {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
            for (version, _, counts) in &self.versions {
                ConstCounter::new(pick(counts)).encode(family.encode_family(&[("version", version.as_str())])?)?;
            }
        }

        let mut errors = encoder.encode_descriptor(
            "provider_errors",
            "Failed provider requests, by provider kind and error",
            None,
            MetricType::Counter,
        )?;
        for (kind, class, n) in &self.provider_errors {
            ConstCounter::new(*n).encode(errors.encode_family(&[("kind", *kind), ("error", *class)])?)?;
        }

        if let Some(r) = &self.records {
            gauge(&mut encoder, "records_queued", "Call records waiting for the database writer", r.queued as i64)?;
            gauge(
                &mut encoder,
                "records_queue_max",
                "Capacity of the record queue (HOTLINE_RECORD_QUEUE)",
                r.queue_max as i64,
            )?;
            let written = ConstCounter::new(r.written);
            written.encode(encoder.encode_descriptor(
                "records_written",
                "Call records written",
                None,
                MetricType::Counter,
            )?)?;
            let dropped = ConstCounter::new(r.dropped);
            let help = "Call records dropped (queue full, or refused by the database)";
            dropped.encode(encoder.encode_descriptor("records_dropped", help, None, MetricType::Counter)?)?;
            if let Some(n) = r.recording_chunks_dropped {
                let help =
                    "Recording chunks dropped (the recordings' writer behind); that call's recording stops there";
                let name = "recording_chunks_dropped";
                ConstCounter::new(n).encode(encoder.encode_descriptor(name, help, None, MetricType::Counter)?)?;
            }
        }
        Ok(())
    }
}

fn gauge(encoder: &mut DescriptorEncoder, name: &str, help: &str, value: i64) -> Result<(), std::fmt::Error> {
    let gauge = ConstGauge::new(value);
    gauge.encode(encoder.encode_descriptor(name, help, None, MetricType::Gauge)?)
}

/// A histogram of durations with atomic buckets: observing is a bucket
/// search over a dozen bounds and three relaxed adds, never a lock.
#[derive(Debug, Clone)]
pub struct Timing(std::sync::Arc<TimingInner>);

#[derive(Debug)]
struct TimingInner {
    /// Upper bounds in seconds, ascending; `+Inf` is implied.
    bounds: &'static [f64],
    /// Per bucket (not cumulative), one more than `bounds` for `+Inf`.
    counts: Box<[AtomicU64]>,
    sum_ns: AtomicU64,
}

impl Timing {
    fn new(bounds: &'static [f64]) -> Timing {
        let counts = (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect();
        Timing(std::sync::Arc::new(TimingInner { bounds, counts, sum_ns: AtomicU64::new(0) }))
    }

    pub fn observe(&self, took: Duration) {
        let secs = took.as_secs_f64();
        let i = self.0.bounds.partition_point(|&upper| upper < secs);
        self.0.counts[i].fetch_add(1, Ordering::Relaxed);
        self.0.sum_ns.fetch_add(took.as_nanos() as u64, Ordering::Relaxed);
    }
}

impl EncodeMetric for Timing {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let counts: Vec<u64> = self.0.counts.iter().map(|c| c.load(Ordering::Relaxed)).collect();
        let buckets: Vec<(f64, u64)> =
            self.0.bounds.iter().copied().chain([f64::INFINITY]).zip(counts.iter().copied()).collect();
        let count = counts.iter().sum();
        let sum = self.0.sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}
