//! The compile cache never runs a file that could have been altered: a
//! damaged entry is recompiled and replaced (in the sandbox and in the real
//! binary, which must keep serving), a directory other users could write is
//! refused, a failed write leaves no temp file, and stale ones are removed;
//! `hotline guest compile` fills it ahead of a start.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use std::time::{Duration, SystemTime};

use hotline::config::Config;
use hotline::sandbox::{Sandbox, SandboxConfig};
use hotline::versions::DEFAULT_GUEST;
use reqwest::StatusCode;

use crate::support::hotline_command;

/// A fresh directory for one test (absent: the cache creates it).
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hotline-cache-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn sandbox(dir: &Path) -> Sandbox {
    let config = SandboxConfig { max_instances: 4, cache_dir: Some(dir.to_path_buf()), ..Config::default().sandbox };
    Sandbox::new(config).expect("sandbox")
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

/// The cache's one entry in `dir`.
fn entry(dir: &Path) -> PathBuf {
    let entries: Vec<String> = names(dir).into_iter().filter(|n| n.ends_with(".cwasm")).collect();
    assert_eq!(entries.len(), 1, "one entry: {:?}", names(dir));
    dir.join(&entries[0])
}

/// Overwrites 4 KiB in the middle of the file: its start (and any header)
/// stays intact, its body does not.
fn damage(path: &Path) -> Vec<u8> {
    let mut bytes = std::fs::read(path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle..middle + 4096].fill(0xcc);
    std::fs::write(path, &bytes).unwrap();
    bytes
}

#[test]
fn a_damaged_entry_is_recompiled_and_replaced_never_loaded() {
    let dir = scratch("damaged");
    assert!(!sandbox(&dir).load(DEFAULT_GUEST).unwrap().from_cache());
    let entry = entry(&dir);
    let damaged = damage(&entry);

    // A fresh sandbox, as after a restart: the damage is noticed, not run.
    let guest = sandbox(&dir).load(DEFAULT_GUEST).expect("loads despite the damaged entry");
    assert!(!guest.from_cache(), "recompiled, not loaded from the damaged entry");
    assert_ne!(std::fs::read(&entry).unwrap(), damaged, "the entry was replaced");
    assert!(sandbox(&dir).load(DEFAULT_GUEST).unwrap().from_cache(), "the fresh entry is a hit");
    assert_eq!(names(&dir).len(), 1, "nothing else left: {:?}", names(&dir));

    // Cut short: too short to hold its digest.
    std::fs::write(&entry, b"short").unwrap();
    assert!(!sandbox(&dir).load(DEFAULT_GUEST).unwrap().from_cache());
    assert!(sandbox(&dir).load(DEFAULT_GUEST).unwrap().from_cache());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_cache_dir_it_creates_is_private() {
    let dir = scratch("private").join("nested");
    assert!(!sandbox(&dir).load(DEFAULT_GUEST).unwrap().from_cache());
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "mode {mode:o}");
    let _ = std::fs::remove_dir_all(dir.parent().unwrap());
}

#[test]
fn a_failed_write_leaves_no_temp_file_and_stale_ones_are_removed() {
    let dir = scratch("tmp");
    assert!(!sandbox(&dir).load(DEFAULT_GUEST).unwrap().from_cache());
    // The entry's name taken by a directory: the temp file is written, the
    // rename fails.
    let entry = entry(&dir);
    std::fs::remove_file(&entry).unwrap();
    std::fs::create_dir(&entry).unwrap();
    std::fs::write(entry.join("keep"), b"").unwrap();
    assert!(!sandbox(&dir).load(DEFAULT_GUEST).expect("loads without a cache").from_cache());
    let left = names(&dir);
    assert!(left.iter().all(|n| !n.contains(".tmp")), "temp files left: {left:?}");
    std::fs::remove_dir_all(&entry).unwrap();

    // Temp files of earlier processes (killed mid-write): removed at start,
    // unless recent enough to be another process's write in progress.
    let stale = dir.join("0123-4567.tmp99999");
    let fresh = dir.join("89ab-cdef.tmp99998");
    std::fs::write(&stale, b"partial").unwrap();
    std::fs::write(&fresh, b"partial").unwrap();
    let hour_ago = SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::options().append(true).open(&stale).unwrap().set_modified(hour_ago).unwrap();
    let _sandbox = sandbox(&dir);
    assert!(!stale.exists(), "a stale temp file is removed");
    assert!(fresh.exists(), "a recent one may be another process's write: kept");
    let _ = std::fs::remove_dir_all(&dir);
}

// ---- the real binary -----------------------------------------------------------

struct Hotline {
    process: tokio::process::Child,
    base: String,
    log: PathBuf,
}

impl Hotline {
    /// Starts the binary (JSON logs into a file, kept whole) and waits until
    /// it listens.
    async fn start(name: &str, env: &[(&str, &str)]) -> Hotline {
        let log = std::env::temp_dir().join(format!("hotline-cache-{name}-{}.log", std::process::id()));
        let process = hotline_command(env).stderr(std::fs::File::create(&log).unwrap()).spawn().expect("spawn hotline");
        let mut hotline = Hotline { process, base: String::new(), log };
        for _ in 0..400 {
            if let Some(line) = hotline.lines().into_iter().find(|l| l["event"] == "listening") {
                hotline.base = format!("http://{}", line["addr"].as_str().unwrap());
                return hotline;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("hotline never listened: {}", std::fs::read_to_string(&hotline.log).unwrap_or_default());
    }

    fn lines(&self) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
    }

    fn logged(&self, event: &str) -> Option<serde_json::Value> {
        self.lines().into_iter().find(|l| l["event"] == event)
    }

    /// Ready (the guest is in) and serving a webhook, and still alive.
    async fn serves(&mut self) {
        let mut ready = None;
        for _ in 0..400 {
            if let Some(status) = self.process.try_wait().unwrap() {
                panic!("hotline died ({status}): {}", std::fs::read_to_string(&self.log).unwrap_or_default());
            }
            ready = reqwest::get(format!("{}/readyz", self.base)).await.ok().map(|r| r.status());
            if ready == Some(StatusCode::OK) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        assert_eq!(ready, Some(StatusCode::OK), "never ready");
        let health = reqwest::get(format!("{}/healthz", self.base)).await.unwrap();
        assert_eq!(health.status(), StatusCode::OK);
        let webhook = reqwest::Client::new()
            .post(format!("{}/webhook/incoming_call", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("CallSid=CAcache")
            .send()
            .await
            .unwrap();
        assert_eq!(webhook.status(), StatusCode::OK);
        assert!(webhook.text().await.unwrap().contains("<Stream"), "the guest answered");
        assert!(self.process.try_wait().unwrap().is_none(), "still running");
    }

    async fn stop(mut self) {
        self.process.kill().await.unwrap();
        let _ = std::fs::remove_file(&self.log);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_survives_a_damaged_cache_entry() {
    let dir = scratch("server-damaged");
    let cache = dir.to_str().unwrap();
    let mut first = Hotline::start("first", &[("HOTLINE_CACHE_DIR", cache)]).await;
    first.serves().await;
    first.stop().await;
    let entry = entry(&dir);
    let damaged = damage(&entry);

    let mut second = Hotline::start("second", &[("HOTLINE_CACHE_DIR", cache)]).await;
    second.serves().await;
    let corrupt = second.logged("guest_cache_corrupt").expect("the damage is logged");
    assert_eq!(corrupt["path"], entry.to_str().unwrap(), "{corrupt}");
    assert_eq!(corrupt["level"], "WARN", "{corrupt}");
    assert_ne!(std::fs::read(&entry).unwrap(), damaged, "the entry was replaced");
    second.stop().await;

    let mut third = Hotline::start("third", &[("HOTLINE_CACHE_DIR", cache)]).await;
    third.serves().await;
    assert!(third.logged("guest_cache_corrupt").is_none(), "the replaced entry is sound");
    third.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cache_dir_others_can_write_is_refused() {
    for mode in [0o777, 0o770] {
        let dir = scratch(&format!("shared-{mode:o}"));
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode)).unwrap();
        let mut hotline = Hotline::start("shared", &[("HOTLINE_CACHE_DIR", dir.to_str().unwrap())]).await;
        hotline.serves().await;
        let off = hotline.logged("guest_cache_off").expect("the refusal is logged");
        assert_eq!(off["path"], dir.to_str().unwrap(), "{off}");
        assert!(off["reason"].as_str().unwrap().contains("writable"), "{off}");
        assert!(names(&dir).is_empty(), "nothing written there: {:?}", names(&dir));
        hotline.stop().await;
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// `hotline guest compile` fills the cache a server then starts from (an
/// image build runs it), and fails, saying why, when it has nowhere to
/// write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guest_compile_fills_the_cache_the_server_starts_from() {
    let dir = scratch("compile");
    let cache = dir.to_str().unwrap();
    let compile = |env: &[(&str, &str)]| {
        let mut command = hotline_command(env);
        command.args(["guest", "compile"]).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
        command.output()
    };
    let first = compile(&[("HOTLINE_CACHE_DIR", cache)]).await.unwrap();
    assert!(first.status.success(), "{first:?}");
    let entry = entry(&dir);
    let said = String::from_utf8_lossy(&first.stdout);
    assert!(said.starts_with("compiled in ") && said.contains(entry.to_str().unwrap()), "{said}");
    let again = compile(&[("HOTLINE_CACHE_DIR", cache)]).await.unwrap();
    assert!(String::from_utf8_lossy(&again.stdout).starts_with("already compiled in "), "{again:?}");

    let mut hotline = Hotline::start("compiled", &[("HOTLINE_CACHE_DIR", cache)]).await;
    hotline.serves().await;
    let loaded = hotline.logged("guest_loaded").expect("the guest is loaded");
    assert_eq!(loaded["cached"], true, "{loaded}");
    hotline.stop().await;

    for refused in ["off", "/proc/hotline-no-such-dir"] {
        let out = compile(&[("HOTLINE_CACHE_DIR", refused)]).await.unwrap();
        assert!(!out.status.success(), "{refused}: {out:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("no compile cache"), "{refused}: {out:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
