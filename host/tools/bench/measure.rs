//! What the benchmark reads off the machine: a process's CPU time and
//! resident memory from `/proc`, the load generator's own CPU, core
//! pinning, and percentiles.

use std::time::{Duration, Instant};

/// A process's CPU time (user + system) and RSS, read from
/// `/proc/<pid>`: cheap enough to read every second.
#[derive(Debug, Clone, Copy)]
pub struct ProcSample {
    pub at: Instant,
    pub cpu: Duration,
    pub rss_kib: u64,
}

pub fn sample(pid: u32) -> Option<ProcSample> {
    let at = Instant::now();
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) in parentheses.
    let fields: Vec<&str> = stat[stat.rfind(')')? + 2..].split(' ').collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    let hz = clock_ticks_per_second();
    let cpu = Duration::from_secs_f64(ticks as f64 / hz as f64);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kib = kib(&status, "VmRSS:")?;
    Some(ProcSample { at, cpu, rss_kib })
}

/// A process's PSS, which counts a page shared by N mappings as 1/N: the
/// guest instances map their component's initial memory image
/// copy-on-write, and RSS counts those shared pages once per instance.
/// Costly: the kernel walks every mapping (milliseconds with a thousand
/// instances), so it is read once per level, off the generator's thread.
pub fn pss_kib(pid: u32) -> Option<u64> {
    kib(&std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?, "Pss:")
}

/// A `Key:   123 kB` line of a `/proc` file, in KiB.
fn kib(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| l.strip_prefix(key)).and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// CPU used between two samples, in percent of one core.
pub fn cpu_percent(from: &ProcSample, to: &ProcSample) -> f64 {
    let wall = to.at.duration_since(from.at).as_secs_f64();
    if wall <= 0.0 { 0.0 } else { 100.0 * (to.cpu.saturating_sub(from.cpu)).as_secs_f64() / wall }
}

fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf reads a constant of the running system.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 { hz as u64 } else { 100 }
}

/// Pins the calling process (its threads created from now on) to `core`.
pub fn pin_to_core(core: usize) -> std::io::Result<()> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET writes in it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(core, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Cores this machine has.
pub fn cores() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// The `p`-quantile (0..=1) of `values` (sorted here), `NaN` when empty.
pub fn percentile(values: &mut [f32], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f32::total_cmp);
    values[((values.len() - 1) as f64 * p).round() as usize] as f64
}
