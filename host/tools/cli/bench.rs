//! `hotline bench`: places rising numbers of concurrent real-time calls
//! against a hotline server (started here, pinned to one core, unless
//! `--url` names one) and, with `--peer`, against another server in the
//! same run, then prints one table and the ratios.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::bench::{LevelOptions, LevelReport, Target, measure, run_level};

#[derive(Debug, clap::Args)]
pub struct BenchArgs {
    /// Numbers of concurrent calls, one level after another.
    #[arg(long, value_delimiter = ',', default_value = "100,300,1000,2000,3000")]
    pub levels: Vec<usize>,
    /// Length of each call, in seconds of real-time audio.
    #[arg(long, default_value_t = 20)]
    pub secs: u32,
    /// Seconds over which a level's calls start [default: calls / 400,
    /// between 2 and 8].
    #[arg(long)]
    pub ramp_secs: Option<f64>,
    /// Benchmark a running hotline at this URL instead of starting one
    /// (CPU and RSS need `--pid`).
    #[arg(long)]
    pub url: Option<String>,
    /// Process id of the server behind `--url`.
    #[arg(long, requires = "url")]
    pub pid: Option<u32>,
    /// Also benchmark another server: a shell command that serves on $PORT,
    /// e.g. "node ../node-ws/server.js".
    #[arg(long)]
    pub peer: Option<String>,
    /// Core for the server(s); the load generator takes another one.
    #[arg(long, default_value_t = 0)]
    pub server_core: usize,
    /// Core for the load generator.
    #[arg(long, default_value_t = 1)]
    pub load_core: usize,
    /// Call records of the server started here: `on` (as `hotline serve`
    /// keeps them, into a fresh SQLite database removed afterwards; with
    /// DATABASE_URL set, into that database) or `off`.
    #[arg(long, value_enum, default_value_t = Records::On)]
    pub records: Records,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Records {
    On,
    Off,
}

/// Runs the benchmark; builds its own single-threaded runtime, pinned.
pub fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    let fds = crate::app::raise_open_file_limit();
    let pinned = measure::cores() >= 2 && measure::pin_to_core(args.load_core).is_ok();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    println!(
        "hotline bench: {} s calls, levels {:?}; open-file limit {fds}; {}",
        args.secs,
        args.levels,
        if pinned {
            format!("server on core {}, load on core {}", args.server_core, args.load_core)
        } else {
            "not pinned (one core, or pinning refused)".into()
        }
    );
    let max_calls = args.levels.iter().copied().max().unwrap_or(0);
    let mut results: Vec<(String, Vec<LevelReport>)> = Vec::new();
    // Never the user's own data directory: a fresh one, gone afterwards.
    let data_dir = std::env::temp_dir().join(format!("hotline-bench-data-{}", std::process::id()));
    let hotline = match &args.url {
        Some(url) => Server::external(url, args.pid),
        None => {
            let mut command = hotline_command(max_calls)?;
            command.env(
                "HOTLINE_DATA_DIR",
                match args.records {
                    Records::On => data_dir.as_os_str(),
                    Records::Off => "off".as_ref(),
                },
            );
            Server::spawn("hotline", command, pinned.then_some(args.server_core))?
        }
    };
    let measured = runtime.block_on(levels(&hotline, &args));
    drop(hotline);
    let _ = std::fs::remove_dir_all(&data_dir);
    results.push(("hotline".into(), measured?));
    if let Some(peer) = &args.peer {
        let mut command = Command::new("sh");
        // `exec`: the measured process is the server, not the shell.
        command.args(["-c", &format!("exec {peer}")]);
        let server = Server::spawn("peer", command, pinned.then_some(args.server_core))?;
        results.push(("peer".into(), runtime.block_on(levels(&server, &args))?));
    }
    print_table(&results);
    Ok(ExitCode::SUCCESS)
}

fn hotline_command(max_calls: usize) -> anyhow::Result<Command> {
    let mut command = Command::new(std::env::current_exe().context("finding the hotline binary")?);
    let calls = max_calls + 100;
    // Every caller comes from the generator's one address, as from behind
    // a proxy: room for each call's WebSocket and a webhook connection
    // (the default, the call limit plus 64, refused a connection at 3000
    // calls while webhooks queued on a saturated server).
    command
        .arg("serve")
        .env("HOTLINE_MAX_CALLS", calls.to_string())
        .env("HOTLINE_MAX_CONNECTIONS_PER_IP", (2 * calls).to_string());
    Ok(command)
}

async fn levels(server: &Server, args: &BenchArgs) -> anyhow::Result<Vec<LevelReport>> {
    server.wait_ready().await?;
    let mut reports = Vec::new();
    for &calls in &args.levels {
        let ramp = args.ramp_secs.unwrap_or((calls as f64 / 400.0).clamp(2.0, 8.0));
        let opts = LevelOptions { calls, secs: args.secs, ramp: Duration::from_secs_f64(ramp) };
        let report = run_level(&server.target, opts).await;
        println!("  {:<8} {}", server.target.name, row(&report, reports.last()));
        print_failures(&report);
        reports.push(report);
        // Let the calls' sockets close before the next level.
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    Ok(reports)
}

/// A server under test, and its process when this command started it.
struct Server {
    target: Target,
    child: Option<Child>,
}

impl Server {
    fn external(url: &str, pid: Option<u32>) -> Server {
        let target = Target { name: "hotline".into(), base: url.trim_end_matches('/').to_string(), pid };
        Server { target, child: None }
    }

    /// Starts `command` with `PORT` set to a free port, pinned to `core`;
    /// its log goes to a file in the temp dir.
    fn spawn(name: &str, mut command: Command, core: Option<usize>) -> anyhow::Result<Server> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let log_path = std::env::temp_dir().join(format!("hotline-bench-{name}-{port}.log"));
        let log = std::fs::File::create(&log_path)?;
        command.env("PORT", port.to_string()).stdout(Stdio::null()).stderr(log);
        if let Some(core) = core {
            // SAFETY: only an async-signal-safe syscall between fork and exec.
            unsafe {
                command.pre_exec(move || measure::pin_to_core(core));
            }
        }
        let child = command.spawn().with_context(|| format!("starting the {name} server"))?;
        println!("  {name}: pid {}, port {port}, log {}", child.id(), log_path.display());
        let target = Target { name: name.into(), base: format!("http://127.0.0.1:{port}"), pid: Some(child.id()) };
        Ok(Server { target, child: Some(child) })
    }

    /// `/healthz` answers 200 (and `/readyz` does, where there is one).
    async fn wait_ready(&self) -> anyhow::Result<()> {
        let client = reqwest::Client::new();
        let began = Instant::now();
        while began.elapsed() < Duration::from_secs(60) {
            let ok = |path: &'static str| {
                let request = client.get(format!("{}{path}", self.target.base)).send();
                async move { request.await.map(|r| r.status()) }
            };
            if let Ok(status) = ok("/healthz").await
                && status.is_success()
                && ok("/readyz").await.is_ok_and(|s| s.is_success() || s == reqwest::StatusCode::NOT_FOUND)
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("{} never became ready at {}", self.target.name, self.target.base)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

const HEADER: &str = "calls   ok/ref/fail  cpu%   cpu%/call  rss MiB  RSS KiB/call  PSS KiB/call  reply ms p50/p99/max  healthz ms p50/p99  frames sent/recv/unsent  no-reply  gen-late p99  gen cpu%  ";

fn row(r: &LevelReport, below: Option<&LevelReport>) -> String {
    let [rss_per_call, pss_per_call] = r.marginal_kib(below);
    let opt = |v: Option<f64>, digits: usize| v.map_or("-".into(), |v| format!("{v:.digits$}"));
    format!(
        "{:<7} {:>4}/{}/{:<4} {:>6} {:>9} {:>8} {:>13} {:>13} {:>7.1}/{:.1}/{:.1} {:>10.2}/{:.2} {:>9}/{}/{} {:>6} {:>8.1} ms {:>8.1} {}",
        r.calls,
        r.ok,
        r.refused,
        r.failed,
        opt(r.cpu_pct, 1),
        opt(r.cpu_pct.map(|c| c / r.calls as f64), 3),
        opt(r.rss_kib.map(|k| k as f64 / 1024.0), 0),
        opt(rss_per_call, 0),
        opt(pss_per_call, 0),
        r.reply_ms[0],
        r.reply_ms[1],
        r.reply_ms[2],
        r.healthz_ms[0],
        r.healthz_ms[1],
        r.frames_sent,
        r.frames_received,
        r.frames_unsent,
        r.replies_missing,
        r.lateness_p99_ms,
        r.generator_cpu_pct,
        if r.valid() { "" } else { "INVALID (the generator lagged)" },
    )
}

/// Why calls failed, a line per distinct error (the most common first).
fn print_failures(report: &LevelReport) {
    const SHOWN: usize = 5;
    for (n, reason) in report.failures.iter().take(SHOWN) {
        println!("           {n} failed: {reason}");
    }
    if report.failures.len() > SHOWN {
        println!("           and {} other errors", report.failures.len() - SHOWN);
    }
}

fn print_table(results: &[(String, Vec<LevelReport>)]) {
    println!("\n{:<8} {HEADER}", "server");
    for (name, reports) in results {
        for (i, r) in reports.iter().enumerate() {
            println!("{name:<8} {}", row(r, i.checked_sub(1).map(|b| &reports[b])));
        }
    }
    let [(_, ours), (_, theirs)] = results else { return };
    println!("\nhotline / peer, per level:");
    for (i, (a, b)) in ours.iter().zip(theirs).enumerate() {
        let below = i.checked_sub(1);
        let [a_rss, a_pss] = a.marginal_kib(below.map(|j| &ours[j]));
        let [b_rss, b_pss] = b.marginal_kib(below.map(|j| &theirs[j]));
        let ratio = |x: Option<f64>, y: Option<f64>| match (x, y) {
            // A slope under 1 (KiB, or % of a core) is noise: no ratio.
            (Some(x), Some(y)) if y >= 1.0 => format!("{:.2}", x / y),
            _ => "-".into(),
        };
        println!(
            "  {:>5} calls: CPU {}, RSS/call {}, PSS/call {}, healthz p99 {:.2}",
            a.calls,
            ratio(a.cpu_pct, b.cpu_pct),
            ratio(a_rss, b_rss),
            ratio(a_pss, b_pss),
            a.healthz_ms[1] / b.healthz_ms[1]
        );
    }
}
