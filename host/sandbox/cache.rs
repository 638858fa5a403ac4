//! Compiled components kept on disk between runs, so a restart skips
//! compiling: `<dir>/<component sha256>-<engine settings hash>.cwasm`. A hit
//! needs the same bytes and the same compiler, target and settings.
//!
//! An entry is native code that the process maps and runs, so nothing that
//! could have been altered is ever deserialized:
//!
//! - **Each entry carries its own digest.** The file is `MAGIC` (8 bytes),
//!   the SHA-256 of the serialized component (32 bytes), then the serialized
//!   component. The digest is checked before deserializing: a damaged body
//!   (a bad disk, a torn write after a power cut, a truncated copy) would
//!   otherwise crash the process at every start, logging nothing. An entry
//!   that fails the check is logged (`guest_cache_corrupt`), deleted, and
//!   written again after the compile.
//! - **The directory is this user's alone.** A digest does not stop someone
//!   who can write the directory (they can write a digest too), so hotline
//!   creates it with mode 0700 and refuses an existing one that another
//!   user owns or that group or others may write: the cache is then off,
//!   logged once at start (`guest_cache_off`, with the reason). So is a
//!   cache with no safe default place (`config/mod.rs`).
//! - **Writes are atomic and leave nothing behind.** An entry is written to
//!   a temp file (`*.tmp<pid>-<n>`) renamed into place; a failed write (a
//!   full disk) removes its temp file, and at start temp files older than
//!   [`STALE_TMP`] (a process killed mid-write) are removed.
//!
//! Bounded: after each write, the least recently used entries (by
//! modification time, refreshed on every hit) are removed until the
//! directory's entries fit `max_bytes`.

use std::hash::{Hash, Hasher};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};
use wasmtime::Engine;
use wasmtime::component::Component;

use super::engine::SandboxConfig;

const EXTENSION: &str = "cwasm";
/// The entry format's mark; part of the file name's hash too, so entries of
/// an older format are never read (they age out of the bound).
const MAGIC: &[u8; 8] = b"hotline1";
const DIGEST_LEN: usize = 32;
/// A temp file this old is no write in progress: its process died.
const STALE_TMP: Duration = Duration::from_secs(60);

/// Tells apart the temp files of one process's concurrent writes.
static WRITES: AtomicU64 = AtomicU64::new(0);

pub(super) struct Cache {
    dir: PathBuf,
    /// Engine settings, so one directory can serve several builds.
    engine_hash: u64,
    max_bytes: u64,
}

impl Cache {
    /// The cache `config` asks for, if its directory is safe to run code
    /// from; otherwise none, and the reason logged (once: at start).
    pub fn open(config: &SandboxConfig, engine: &Engine) -> Option<Cache> {
        let Some(dir) = config.cache_dir.clone() else {
            if let Some(reason) = config.cache_off {
                tracing::warn!(
                    event = "guest_cache_off",
                    reason,
                    "compiled guests are not kept: set HOTLINE_CACHE_DIR"
                );
            }
            return None;
        };
        if let Err(reason) = private_dir(&dir) {
            tracing::warn!(
                event = "guest_cache_off",
                path = %dir.display(),
                reason,
                "compiled guests are not kept: HOTLINE_CACHE_DIR must be a directory only this user can write"
            );
            return None;
        }
        remove_stale_temp_files(&dir);
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        env!("CARGO_PKG_VERSION").hash(&mut hasher);
        MAGIC.hash(&mut hasher);
        Some(Cache { dir, engine_hash: hasher.finish(), max_bytes: config.cache_max_bytes })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, digest: &str) -> PathBuf {
        self.dir.join(format!("{digest}-{:016x}.{EXTENSION}", self.engine_hash))
    }

    pub fn get(&self, engine: &Engine, digest: &str) -> Option<Component> {
        let path = self.path(digest);
        // Read into memory rather than `deserialize_file`: a mapped file that
        // someone truncates under a running server is a SIGBUS, a copy is not.
        let entry = match std::fs::read(&path) {
            Ok(entry) => entry,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::warn!(event = "guest_cache_unusable", path = %path.display(), error = %e);
                return None;
            }
        };
        let serialized = match verified(&entry) {
            Ok(serialized) => serialized,
            Err(reason) => {
                tracing::warn!(event = "guest_cache_corrupt", path = %path.display(), reason, "removed; compiling again");
                remove(&path);
                return None;
            }
        };
        // SAFETY: these bytes are exactly what `Component::serialize` wrote
        // (their SHA-256 matches the one written beside them) in a directory
        // only this user can write (`private_dir`), under a name made of the
        // source digest and the engine's settings; wasmtime also checks the
        // header for compatibility and refuses a mismatch.
        match unsafe { Component::deserialize(engine, serialized) } {
            Ok(component) => {
                touch(&path);
                Some(component)
            }
            Err(e) => {
                tracing::warn!(event = "guest_cache_unusable", path = %path.display(), error = %e);
                None
            }
        }
    }

    /// Writes atomically (temp file, then rename) so a crash never leaves a
    /// torn entry under its name; a cache that cannot be written only costs
    /// a compile later, and leaves no temp file behind.
    pub fn put(&self, digest: &str, component: &Component) {
        let path = self.path(digest);
        let tmp = path.with_extension(format!("tmp{}-{}", std::process::id(), WRITES.fetch_add(1, Ordering::Relaxed)));
        let result = component.serialize().map_err(|e| e.to_string()).and_then(|serialized| {
            private_dir(&self.dir)?;
            write_entry(&tmp, &serialized).map_err(|e| e.to_string())?;
            std::fs::rename(&tmp, &path).map_err(|e| e.to_string())
        });
        match result {
            Ok(()) => self.evict(&path),
            Err(error) => {
                let _ = std::fs::remove_file(&tmp);
                tracing::warn!(event = "guest_cache_write_failed", path = %path.display(), error);
            }
        }
    }

    /// Removes least recently used entries beyond the size bound, never
    /// the one just written.
    fn evict(&self, keep: &Path) {
        let Ok(dir) = std::fs::read_dir(&self.dir) else { return };
        let mut entries: Vec<(SystemTime, u64, PathBuf)> = dir
            .filter_map(|e| e.ok())
            .filter(|e| e.path().extension().is_some_and(|x| x == EXTENSION))
            .filter_map(|e| {
                let meta = e.metadata().ok()?;
                Some((meta.modified().ok()?, meta.len(), e.path()))
            })
            .collect();
        let mut total: u64 = entries.iter().map(|(_, len, _)| len).sum();
        entries.sort();
        for (_, len, path) in entries {
            if total <= self.max_bytes {
                break;
            }
            if path == keep {
                continue;
            }
            match std::fs::remove_file(&path) {
                Ok(()) => {
                    total -= len;
                    tracing::info!(event = "guest_cache_evicted", path = %path.display(), bytes = len);
                }
                Err(e) => tracing::warn!(event = "guest_cache_write_failed", path = %path.display(), error = %e),
            }
        }
    }
}

/// The serialized component inside an entry, if the entry is whole: its
/// mark, its digest, and a body that has that digest.
fn verified(entry: &[u8]) -> Result<&[u8], &'static str> {
    let rest = entry.strip_prefix(MAGIC.as_slice()).ok_or("no hotline header")?;
    if rest.len() < DIGEST_LEN {
        return Err("too short to hold its digest");
    }
    let (digest, serialized) = rest.split_at(DIGEST_LEN);
    if Sha256::digest(serialized).as_slice() != digest {
        return Err("its contents do not match their digest");
    }
    Ok(serialized)
}

/// Writes `MAGIC`, the digest and the serialized component, readable by
/// this user only.
fn write_entry(tmp: &Path, serialized: &[u8]) -> std::io::Result<()> {
    let mut file = std::fs::File::options().write(true).create(true).truncate(true).mode(0o600).open(tmp)?;
    file.write_all(MAGIC)?;
    file.write_all(&Sha256::digest(serialized))?;
    file.write_all(serialized)
}

/// Creates `dir` (mode 0700) if missing, then makes sure it is a directory
/// that only this user can write; the reason if not.
fn private_dir(dir: &Path) -> Result<(), String> {
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|e| format!("cannot create it: {e}"))?;
    let meta = std::fs::metadata(dir).map_err(|e| format!("cannot read it: {e}"))?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    match refusal(meta.is_dir(), meta.uid(), meta.mode(), me) {
        Some(reason) => Err(reason),
        None => Ok(()),
    }
}

/// Why a directory with this owner and mode must not hold code this user
/// runs: anyone else who can write it could plant some.
fn refusal(is_dir: bool, owner: u32, mode: u32, me: u32) -> Option<String> {
    if !is_dir {
        return Some("not a directory".into());
    }
    if owner != me {
        return Some(format!("owned by uid {owner}, not by this user (uid {me})"));
    }
    if mode & 0o022 != 0 {
        return Some(format!("writable by group or others (mode {:o})", mode & 0o7777));
    }
    None
}

/// Removes temp files that earlier processes left (killed mid-write).
/// Recent ones may be another process's write in progress: kept.
fn remove_stale_temp_files(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.filter_map(|e| e.ok()) {
        let path = entry.path();
        let is_temp = path.extension().is_some_and(|x| x.to_string_lossy().starts_with("tmp"));
        let age = entry.metadata().ok().and_then(|m| m.modified().ok()).and_then(|t| t.elapsed().ok());
        if is_temp && age.is_some_and(|age| age > STALE_TMP) {
            remove(&path);
        }
    }
}

fn remove(path: &Path) {
    if let Err(e) = std::fs::remove_file(path) {
        tracing::warn!(event = "guest_cache_write_failed", path = %path.display(), error = %e);
    }
}

/// Marks an entry as recently used.
fn touch(path: &Path) {
    if let Ok(file) = std::fs::File::options().append(true).open(path) {
        let _ = file.set_modified(SystemTime::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_is_trusted_only_whole() {
        let body = b"serialized component".as_slice();
        let mut entry = MAGIC.to_vec();
        entry.extend_from_slice(&Sha256::digest(body));
        entry.extend_from_slice(body);
        assert_eq!(verified(&entry), Ok(body));
        let mut flipped = entry.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert_eq!(verified(&flipped), Err("its contents do not match their digest"));
        assert_eq!(verified(&entry[..MAGIC.len() + 31]), Err("too short to hold its digest"));
        assert_eq!(verified(body), Err("no hotline header"));
        assert_eq!(verified(b""), Err("no hotline header"));
    }

    #[test]
    fn only_a_directory_of_this_users_own_is_trusted() {
        assert_eq!(refusal(true, 1000, 0o40700, 1000), None);
        assert_eq!(refusal(true, 1000, 0o40755, 1000), None, "readable by others is fine");
        assert!(refusal(true, 1000, 0o40775, 1000).unwrap().contains("writable by group or others (mode 775)"));
        assert!(refusal(true, 1000, 0o41777, 1000).unwrap().contains("writable"), "/tmp");
        assert!(refusal(true, 0, 0o40700, 1000).unwrap().contains("owned by uid 0"));
        assert_eq!(refusal(false, 1000, 0o100600, 1000).as_deref(), Some("not a directory"));
    }
}
