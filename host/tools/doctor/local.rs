//! `hotline doctor --local`: the on-box checks people do by hand with `ss`,
//! `ulimit`, `df` and `free`, against the settings the server reads (the
//! same environment, through `Config`): `$PORT` and who listens on it, the
//! open-file limit, free disk where the cache and the records go, memory.
//! Linux only: it reads `/proc` and `/sys/fs/cgroup`.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use super::{Check, Report};
use crate::config::{Backend, Config};

/// Below this many open files, a busy server runs out of sockets.
const MIN_OPEN_FILES: u64 = 4096;
/// Free disk for the records below which writes are at risk, and a warning.
const DATA_FAIL_BYTES: u64 = 100 << 20;
const DATA_WARN_BYTES: u64 = 1 << 30;
/// Memory headroom below which a few calls more could be killed.
const MEMORY_FAIL_BYTES: u64 = 128 << 20;
const MEMORY_WARN_BYTES: u64 = 512 << 20;

/// Reading the machine failed (the check says so rather than guessing).
#[derive(Debug, thiserror::Error)]
enum ReadError {
    #[error("reading {0}: {1}")]
    Io(String, std::io::Error),
    #[error("{0}: no {1} line")]
    Missing(&'static str, &'static str),
}

fn read(path: &str) -> Result<String, ReadError> {
    std::fs::read_to_string(path).map_err(|e| ReadError::Io(path.to_string(), e))
}

/// Runs every local check with the server's settings as `get` gives them.
pub fn run(get: &dyn Fn(&str) -> Option<String>) -> Report {
    let mut report = Report::default();
    let config = match Config::from_lookup(get) {
        Ok(config) => {
            report.push(Check::pass("settings", "the server's variables parse: it would start with them"));
            Some(config)
        }
        Err(e) => {
            report.push(Check::fail(
                "settings",
                format!("the server would refuse to start: {e:#}"),
                "fix the variable named (its range is in `hotline serve --help`)",
            ));
            None
        }
    };
    let port = config.as_ref().map(|c| c.listen.port());
    match get("PORT") {
        Some(value) => report.push(Check::pass("port_env", format!("PORT={value}"))),
        None => report.push(Check::warn(
            "port_env",
            format!("PORT is not set: hotline listens on {}", port.unwrap_or(8080)),
            "platforms route to the port they put in $PORT: set it, or make the platform's internal port this one",
        )),
    }
    let mut pid = None;
    if let (Some(config), Some(port)) = (&config, port) {
        pid = listeners(port, config.listen.ip(), &mut report);
    }
    report.push(open_files(pid));
    if let Some(config) = &config {
        report.push(cache_disk(config));
        report.push(data_disk(config));
    }
    report.push(memory());
    report
}

/// A listening TCP socket from `/proc/net/tcp{,6}`.
#[derive(Debug, Clone, PartialEq)]
struct Listener {
    ip: IpAddr,
    port: u16,
    inode: u64,
}

/// The listening sockets of a `/proc/net/tcp` or `tcp6` table.
fn parse_listeners(table: &str, v6: bool) -> Vec<Listener> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
            if fields.len() < 10 || fields[3] != "0A" {
                return None;
            }
            let (addr, port) = fields[1].split_once(':')?;
            let port = u16::from_str_radix(port, 16).ok()?;
            let ip = parse_proc_ip(addr, v6)?;
            Some(Listener { ip, port, inode: fields[9].parse().ok()? })
        })
        .collect()
}

/// The kernel prints addresses as 32-bit words in host order (little-endian here).
fn parse_proc_ip(hex: &str, v6: bool) -> Option<IpAddr> {
    let words: Vec<u32> =
        (0..hex.len() / 8).map(|i| u32::from_str_radix(&hex[i * 8..i * 8 + 8], 16)).collect::<Result<_, _>>().ok()?;
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    match (v6, bytes.len()) {
        (false, 4) => Some(IpAddr::from(<[u8; 4]>::try_from(bytes).ok()?)),
        (true, 16) => {
            let ip = std::net::Ipv6Addr::from(<[u8; 16]>::try_from(bytes).ok()?);
            Some(ip.to_ipv4_mapped().map_or(IpAddr::V6(ip), IpAddr::V4))
        }
        _ => None,
    }
}

/// The processes holding each socket inode (`/proc/<pid>/fd`), with
/// their names; the ones this user may not read are left out.
fn socket_owners(inodes: &[u64]) -> BTreeMap<u64, (u32, String)> {
    let mut owners = BTreeMap::new();
    let Ok(procs) = std::fs::read_dir("/proc") else { return owners };
    for entry in procs.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else { continue };
        for fd in fds.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else { continue };
            let target = target.to_string_lossy();
            let Some(inode) = target.strip_prefix("socket:[").and_then(|s| s.strip_suffix(']')) else { continue };
            if let Ok(inode) = inode.parse::<u64>()
                && inodes.contains(&inode)
            {
                let name = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
                owners.insert(inode, (pid, name.trim().to_string()));
            }
        }
    }
    owners
}

/// Who listens on `port`: someone (else FAIL), on an address a platform can
/// reach (else WARN), and only one process. Returns the listener's pid.
fn listeners(port: u16, bind: IpAddr, report: &mut Report) -> Option<u32> {
    let mut found = Vec::new();
    for (path, v6) in [("/proc/net/tcp", false), ("/proc/net/tcp6", true)] {
        match read(path) {
            Ok(table) => found.extend(parse_listeners(&table, v6).into_iter().filter(|l| l.port == port)),
            // No IPv6 on this machine: no tcp6 table.
            Err(_) if v6 => {}
            Err(e) => {
                report.push(Check::fail("listening", e.to_string(), "run on Linux, where /proc/net/tcp exists"));
                return None;
            }
        }
    }
    if found.is_empty() {
        report.push(Check::fail(
            "listening",
            format!("nothing listens on port {port}"),
            format!(
                "start hotline here (it binds {bind}:$PORT before anything else); if it runs, it read another PORT \
                 than this shell: compare the platform's environment"
            ),
        ));
        report.push(Check::skip("single_listener", "no listener"));
        return None;
    }
    let owners = socket_owners(&found.iter().map(|l| l.inode).collect::<Vec<_>>());
    let who = |l: &Listener| match owners.get(&l.inode) {
        Some((pid, name)) => format!("{}:{port} (pid {pid} {name})", show_ip(l.ip)),
        None => format!("{}:{port} (a process of another user)", show_ip(l.ip)),
    };
    let shown: Vec<String> = found.iter().map(who).collect();
    if found.iter().all(|l| l.ip.is_loopback()) {
        report.push(Check::warn(
            "listening",
            format!("{} only: a platform's proxy cannot reach it", shown.join(", ")),
            "listen on every address: HOTLINE_BIND=0.0.0.0 (the default), or :: for IPv6 too",
        ));
    } else {
        report.push(Check::pass("listening", shown.join(", ")));
    }
    let pids: std::collections::BTreeSet<Option<u32>> =
        found.iter().map(|l| owners.get(&l.inode).map(|o| o.0)).collect();
    if found.len() > 1 && (pids.len() > 1 || pids.contains(&None)) {
        report.push(Check::fail(
            "single_listener",
            format!("{} listeners on port {port}: {}", found.len(), shown.join(", ")),
            "another process shares the port (an old instance still running, or SO_REUSEPORT): connections go to \
             either; stop the other",
        ));
    } else {
        report.push(Check::pass("single_listener", format!("one process on port {port}")));
    }
    owners.get(&found[0].inode).map(|o| o.0)
}

fn show_ip(ip: IpAddr) -> String {
    match ip {
        IpAddr::V6(v6) => format!("[{v6}]"),
        IpAddr::V4(v4) => v4.to_string(),
    }
}

/// The listener's open-file limit (hotline raises its soft limit to the
/// hard one at start, so the hard one is what it gets); without a
/// listener to read, this shell's hard limit, which a server started here
/// would raise to.
fn open_files(pid: Option<u32>) -> Check {
    let from_proc = pid.and_then(|pid| {
        let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
        let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
        let soft = line.split_whitespace().nth(3)?.parse::<u64>().ok()?;
        Some((soft, format!("pid {pid}")))
    });
    let (limit, whose) = from_proc.unwrap_or_else(|| (hard_open_files(), "this shell's hard limit".to_string()));
    if limit < MIN_OPEN_FILES {
        Check::warn(
            "open_files",
            format!("{limit} open files ({whose}): about {} connections", limit.saturating_sub(64)),
            format!(
                "raise it to {MIN_OPEN_FILES} or more: `ulimit -n`, LimitNOFILE= (systemd), --ulimit nofile= (docker)"
            ),
        )
    } else {
        Check::pass("open_files", format!("{limit} open files ({whose})"))
    }
}

fn hard_open_files() -> u64 {
    // SAFETY: getrlimit fills a stack value.
    unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 0;
        }
        limit.rlim_max
    }
}

/// Free bytes on the filesystem of `dir`, or of its nearest existing
/// parent (the server creates the directory when it first writes).
fn free_bytes(dir: &Path) -> std::io::Result<(PathBuf, u64)> {
    let existing = dir.ancestors().find(|p| p.exists()).unwrap_or(Path::new("/")).to_path_buf();
    let c_path = std::ffi::CString::new(existing.as_os_str().as_encoded_bytes()).map_err(std::io::Error::other)?;
    // SAFETY: statvfs fills a stack value from a valid C string.
    unsafe {
        let mut stat: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(c_path.as_ptr(), &mut stat) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok((existing, stat.f_bavail as u64 * stat.f_frsize as u64))
    }
}

fn show_bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.1} GiB", n as f64 / (1u64 << 30) as f64),
        n => format!("{} MiB", n >> 20),
    }
}

fn cache_disk(config: &Config) -> Check {
    let sandbox = &config.sandbox;
    let Some(dir) = &sandbox.cache_dir else {
        return match sandbox.cache_off {
            Some(why) => Check::warn(
                "disk_cache",
                format!("no compile cache: {why}"),
                "set HOTLINE_CACHE_DIR (or HOME) so a restart skips compiling the guest",
            ),
            None => Check::pass("disk_cache", "HOTLINE_CACHE_DIR=off: every start compiles the guest"),
        };
    };
    match free_bytes(dir) {
        Err(e) => Check::fail("disk_cache", format!("{}: {e}", dir.display()), "check the cache directory's volume"),
        Ok((at, free)) if free < sandbox.cache_max_bytes => Check::warn(
            "disk_cache",
            format!("{}: {} free on {}, less than HOTLINE_CACHE_MAX_MB", dir.display(), show_bytes(free), at.display()),
            "free space, or lower HOTLINE_CACHE_MAX_MB",
        ),
        Ok((at, free)) => {
            Check::pass("disk_cache", format!("{}: {} free on {}", dir.display(), show_bytes(free), at.display()))
        }
    }
}

fn data_disk(config: &Config) -> Check {
    let store = &config.store;
    let dir = match &store.backend {
        Backend::Sqlite(dir) => dir.clone(),
        Backend::Postgres(_) => match store.recordings_dir() {
            Some(dir) => dir,
            None => {
                return Check::pass(
                    "disk_data",
                    "records in PostgreSQL (DATABASE_URL), no recordings: no data directory",
                );
            }
        },
        Backend::Off(None) => return Check::pass("disk_data", "HOTLINE_DATA_DIR=off: no call records"),
        Backend::Off(Some(why)) => {
            return Check::warn(
                "disk_data",
                format!("no data directory: {why}"),
                "set HOTLINE_DATA_DIR (or DATABASE_URL) to keep call records",
            );
        }
    };
    match free_bytes(&dir) {
        Err(e) => Check::fail("disk_data", format!("{}: {e}", dir.display()), "check the data directory's volume"),
        Ok((at, free)) => {
            let seen = format!("{}: {} free on {}", dir.display(), show_bytes(free), at.display());
            let fix = "free space or give the data directory a bigger volume (records and recordings grow with \
                       calls; HOTLINE_RETENTION_DAYS bounds them)";
            at_least("disk_data", free, (DATA_FAIL_BYTES, DATA_WARN_BYTES), seen, fix)
        }
    }
}

/// `MemAvailable`, and within a cgroup (a container's limit) what the
/// limit leaves: the smaller is the headroom.
fn memory() -> Check {
    let available = read("/proc/meminfo").and_then(|m| mem_available(&m));
    let available = match available {
        Ok(bytes) => bytes,
        Err(e) => return Check::fail("memory", e.to_string(), "run on Linux, where /proc/meminfo exists"),
    };
    let cgroup = cgroup_headroom();
    let (headroom, seen) = match cgroup {
        Some((left, max)) if left < available => {
            (left, format!("{} left under the cgroup's limit of {}", show_bytes(left), show_bytes(max)))
        }
        _ => (available, format!("{} available (MemAvailable)", show_bytes(available))),
    };
    let fix = "each call needs its guest's memory (HOTLINE_GUEST_MEMORY_MB) and buffers: give the machine or the \
               container more memory, or lower HOTLINE_MAX_CALLS";
    at_least("memory", headroom, (MEMORY_FAIL_BYTES, MEMORY_WARN_BYTES), seen, fix)
}

/// FAIL below the first bound, WARN below the second, else PASS.
fn at_least(check: &'static str, value: u64, (fail, warn): (u64, u64), seen: String, fix: &str) -> Check {
    if value < fail {
        Check::fail(check, seen, fix)
    } else if value < warn {
        Check::warn(check, seen, fix)
    } else {
        Check::pass(check, seen)
    }
}

fn mem_available(meminfo: &str) -> Result<u64, ReadError> {
    let line = meminfo
        .lines()
        .find(|l| l.starts_with("MemAvailable:"))
        .ok_or(ReadError::Missing("/proc/meminfo", "MemAvailable"))?;
    let kb: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .ok_or(ReadError::Missing("/proc/meminfo", "MemAvailable"))?;
    Ok(kb * 1024)
}

/// cgroup v2: `memory.max` minus `memory.current`, when there is a limit.
fn cgroup_headroom() -> Option<(u64, u64)> {
    let max: u64 = read("/sys/fs/cgroup/memory.max").ok()?.trim().parse().ok()?;
    let current: u64 = read("/sys/fs/cgroup/memory.current").ok()?.trim().parse().ok()?;
    Some((max.saturating_sub(current), max))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listening_sockets_are_read_from_the_kernel_tables() {
        let tcp = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1 0000000000000000 100 0 0 10 0\n\
   1: 0100007F:0CEA 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 23456 1 0000000000000000 100 0 0 10 0\n\
   2: 0100007F:1F90 0100007F:D3C2 01 00000000:00000000 00:00000000 00000000     0        0 34567 1 0000000000000000 100 0 0 10 0\n";
        let found = parse_listeners(tcp, false);
        assert_eq!(
            found,
            vec![
                Listener { ip: "0.0.0.0".parse().unwrap(), port: 8080, inode: 12345 },
                Listener { ip: "127.0.0.1".parse().unwrap(), port: 3306, inode: 23456 },
            ]
        );
        let tcp6 = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 45678 1 0000000000000000 100 0 0 10 0\n";
        assert_eq!(parse_listeners(tcp6, true)[0].ip, "::1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn memory_available_is_read_in_bytes() {
        assert_eq!(mem_available("MemTotal: 10 kB\nMemAvailable:    2048 kB\n").unwrap(), 2 << 20);
        assert!(mem_available("MemTotal: 10 kB\n").is_err());
    }
}
