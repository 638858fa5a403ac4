//! `hotline bench`: the same echo job, measured at rising levels of
//! concurrent real-time calls, for hotline and (with `--peer`) another
//! server in the same run. See `cli/bench.rs` for the command and
//! docs/performance.md for a run.
//!
//! - `caller.rs`: one call, as a cheap load generator makes it.
//! - `measure.rs`: CPU and RSS from `/proc`, pinning, percentiles.

pub mod caller;
pub mod measure;

use std::time::{Duration, Instant};

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use caller::{CallSpec, CallStats, Outcome, Pattern};
use measure::{ProcSample, cpu_percent, percentile, sample};

/// A server under test.
pub struct Target {
    pub name: String,
    /// `http://127.0.0.1:port`.
    pub base: String,
    /// Its process, for CPU and RSS; `None` when only its URL is known.
    pub pid: Option<u32>,
}

#[derive(Debug, Clone, Copy)]
pub struct LevelOptions {
    pub calls: usize,
    /// Length of each call.
    pub secs: u32,
    /// Calls start spread over this long, as independent callers would.
    pub ramp: Duration,
}

/// The generator's own clock may run this late (p99) before a level is
/// marked invalid: it then measured itself, not the server.
const MAX_LATENESS_MS: f64 = 10.0;
/// Distinct phases of the calls' 20 ms clocks (0.2 ms apart).
const PHASES: usize = 100;
const HEALTHZ_EVERY: Duration = Duration::from_millis(100);

#[derive(Debug, Default)]
pub struct LevelReport {
    pub calls: usize,
    pub ok: usize,
    pub refused: usize,
    pub failed: usize,
    /// The failed calls by what went wrong, most common first.
    pub failures: Vec<(usize, String)>,
    pub subprotocol_echoed: usize,
    /// Server CPU over the steady window, % of one core.
    pub cpu_pct: Option<f64>,
    /// Peak server RSS over the steady window (PSS at its end), and before
    /// the level began.
    pub rss_kib: Option<u64>,
    pub idle_rss_kib: Option<u64>,
    pub pss_kib: Option<u64>,
    pub idle_pss_kib: Option<u64>,
    pub reply_ms: [f64; 3],
    pub healthz_ms: [f64; 2],
    pub healthz_failed: usize,
    pub frames_sent: u64,
    pub frames_received: u64,
    pub frames_unsent: u64,
    pub utterances: u64,
    pub replies_missing: u64,
    pub lateness_p99_ms: f64,
    /// The generator's own CPU over the window, % of one core: a generator
    /// late at low CPU was held up, not short of time.
    pub generator_cpu_pct: f64,
}

impl LevelReport {
    /// The generator kept its own clock: the figures are the server's.
    pub fn valid(&self) -> bool {
        self.lateness_p99_ms <= MAX_LATENESS_MS && self.generator_cpu_pct < 90.0
    }

    /// What each added live call costs in memory, KiB of RSS and of PSS:
    /// the slope from the level below (a server's heap does not shrink
    /// between levels), or from the idle server for the first level.
    pub fn marginal_kib(&self, below: Option<&LevelReport>) -> [Option<f64>; 2] {
        let slope = |peak: Option<u64>, base: Option<u64>, base_calls: usize| {
            let calls = self.calls.checked_sub(base_calls).filter(|&n| n > 0)?;
            Some((peak? as f64 - base? as f64) / calls as f64)
        };
        match below {
            Some(b) => [slope(self.rss_kib, b.rss_kib, b.calls), slope(self.pss_kib, b.pss_kib, b.calls)],
            None => [slope(self.rss_kib, self.idle_rss_kib, 0), slope(self.pss_kib, self.idle_pss_kib, 0)],
        }
    }
}

/// Places `opts.calls` calls against `target` and measures the level.
pub async fn run_level(target: &Target, opts: LevelOptions) -> LevelReport {
    let idle = target.pid.and_then(sample);
    let idle_pss = target.pid.and_then(measure::pss_kib);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("http client");
    let pattern = Pattern::new();
    let frames = opts.secs as usize * 50;
    let mut calls = JoinSet::new();
    let epoch = tokio::time::Instant::now();
    for i in 0..opts.calls {
        // Phases spread evenly over the 20 ms period.
        let phase = caller::FRAME.mul_f64((i % PHASES) as f64 / PHASES as f64);
        let (client, pattern, base) = (client.clone(), pattern.clone(), target.base.clone());
        let delay = opts.ramp.mul_f64(i as f64 / opts.calls.max(1) as f64);
        calls.spawn(async move {
            tokio::time::sleep(delay).await;
            let spec = CallSpec { server: base, call_sid: format!("CAbench{i:026}"), frames, phase, epoch };
            caller::run(&client, &pattern, &spec).await
        });
    }
    let stop = CancellationToken::new();
    let prober = spawn_prober(target.base.clone(), stop.clone());
    // The steady window: every call started, none finished yet (all are
    // live from the end of the ramp to the end of the first call).
    let window_start = opts.ramp + Duration::from_secs(1);
    let window = Duration::from_secs(opts.secs as u64)
        .saturating_sub(opts.ramp + Duration::from_secs(2))
        .max(Duration::from_secs(2));
    let sampler = tokio::spawn(sample_window(target.pid, window_start, window));

    let mut report = LevelReport {
        calls: opts.calls,
        idle_rss_kib: idle.map(|s| s.rss_kib),
        idle_pss_kib: idle_pss,
        ..LevelReport::default()
    };
    let (mut reply, mut lateness) = (Vec::new(), Vec::new());
    let mut failures = std::collections::HashMap::<String, usize>::new();
    while let Some(joined) = calls.join_next().await {
        let (outcome, stats): (Outcome, CallStats) = joined.expect("call task");
        match outcome {
            Outcome::Ok => report.ok += 1,
            Outcome::Refused => report.refused += 1,
            Outcome::Failed => report.failed += 1,
        }
        if let Some(failure) = stats.failure {
            *failures.entry(failure).or_default() += 1;
        }
        report.subprotocol_echoed += stats.subprotocol_echoed as usize;
        report.frames_sent += stats.frames_sent;
        report.frames_received += stats.frames_received;
        report.frames_unsent += stats.frames_unsent;
        report.utterances += stats.utterances;
        report.replies_missing += stats.replies_missing;
        reply.extend(stats.reply_ms);
        lateness.extend(stats.lateness_ms);
    }
    report.failures = failures.into_iter().map(|(reason, n)| (n, reason)).collect();
    report.failures.sort_by(|a, b| b.cmp(a));
    stop.cancel();
    let (mut healthz, healthz_failed) =
        tokio::task::spawn_blocking(move || prober.join().expect("prober thread")).await.expect("joining the prober");
    let (server, generator) = sampler.await.expect("sampler task");
    report.cpu_pct = server.map(|u| u.cpu_pct);
    report.rss_kib = server.map(|u| u.rss_kib);
    report.pss_kib = server.and_then(|u| u.pss_kib);
    report.generator_cpu_pct = generator.map_or(0.0, |u| u.cpu_pct);
    report.reply_ms = [percentile(&mut reply, 0.5), percentile(&mut reply, 0.99), percentile(&mut reply, 1.0)];
    report.healthz_ms = [percentile(&mut healthz, 0.5), percentile(&mut healthz, 0.99)];
    report.healthz_failed = healthz_failed;
    report.lateness_p99_ms = percentile(&mut lateness, 0.99);
    report
}

/// Probes `/healthz` on a thread (and event loop) of its own. As a task on
/// the generator's loop, each probe waited for the loop's turn, and the
/// generator's own lateness was counted as the server's.
fn spawn_prober(base: String, stop: CancellationToken) -> std::thread::JoinHandle<(Vec<f32>, usize)> {
    std::thread::Builder::new()
        .name("healthz-prober".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("prober runtime");
            runtime.block_on(probe_healthz(base, stop))
        })
        .expect("spawn the prober thread")
}

/// `GET /healthz` every 100 ms on a fresh connection, as a platform's probe
/// does; returns the latencies (ms) and the failures.
async fn probe_healthz(base: String, stop: CancellationToken) -> (Vec<f32>, usize) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(2))
        .build()
        .expect("http client");
    let (mut latencies, mut failed) = (Vec::new(), 0);
    let mut every = tokio::time::interval(HEALTHZ_EVERY);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return (latencies, failed),
            _ = every.tick() => {}
        }
        let began = Instant::now();
        match client.get(format!("{base}/healthz")).send().await {
            Ok(r) if r.status().is_success() => latencies.push(began.elapsed().as_secs_f32() * 1000.0),
            _ => failed += 1,
        }
    }
}

/// A process over the steady window: CPU %, peak RSS, and PSS at the
/// window's end.
#[derive(Debug, Clone, Copy)]
struct Usage {
    cpu_pct: f64,
    rss_kib: u64,
    pss_kib: Option<u64>,
}

/// How the server and this generator used the machine over the window.
/// Reading `/proc` blocks (PSS for milliseconds), so it runs on a thread
/// of its own: on the generator's thread it would hold up every call's
/// clock, and the generator would measure itself.
async fn sample_window(server: Option<u32>, start: Duration, window: Duration) -> (Option<Usage>, Option<Usage>) {
    tokio::time::sleep(start).await;
    let sampled = tokio::task::spawn_blocking(move || {
        let me = std::process::id();
        let first = (server.and_then(sample), sample(me));
        let mut rss = first.0.map_or(0, |s| s.rss_kib);
        let end = Instant::now() + window;
        while Instant::now() < end {
            std::thread::sleep(Duration::from_secs(1).min(end - Instant::now()));
            if let Some(s) = server.and_then(sample) {
                rss = rss.max(s.rss_kib);
            }
        }
        let last = (server.and_then(sample), sample(me));
        let pss = server.and_then(measure::pss_kib);
        let usage = |a: Option<ProcSample>, b: Option<ProcSample>, rss_kib, pss_kib| {
            Some(Usage { cpu_pct: cpu_percent(&a?, &b?), rss_kib, pss_kib })
        };
        (usage(first.0, last.0, rss, pss), usage(first.1, last.1, 0, None))
    });
    sampled.await.expect("sampler thread")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_level_says_why_its_calls_failed() {
        crate::providers::install_tls(); // as the CLI does before any client
        // A port nothing listens on: every call fails at its webhook.
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let target = Target { name: "nobody".into(), base: format!("http://127.0.0.1:{port}"), pid: None };
        let report = run_level(&target, LevelOptions { calls: 3, secs: 1, ramp: Duration::ZERO }).await;
        assert_eq!((report.ok, report.refused, report.failed), (0, 0, 3));
        assert_eq!(report.failures.len(), 1, "one cause, counted once per call: {:?}", report.failures);
        let (n, reason) = &report.failures[0];
        assert_eq!(*n, 3);
        assert!(reason.starts_with("POST /webhook/incoming_call") && reason.contains("refused"), "{reason}");
        assert_eq!(report.frames_unsent, 3 * 50);
    }
}
