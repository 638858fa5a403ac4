//! Compiled components kept on disk between runs, so a restart skips
//! compiling: `<dir>/<component sha256>-<engine settings hash>.cwasm`. A hit
//! needs the same bytes and the same compiler, target and settings.
//!
//! Bounded: after each write, the least recently used entries (by
//! modification time, refreshed on every hit) are removed until the
//! directory's entries fit `max_bytes`.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use wasmtime::Engine;
use wasmtime::component::Component;

const EXTENSION: &str = "cwasm";

pub(super) struct Cache {
    dir: PathBuf,
    /// Engine settings, so one directory can serve several builds.
    engine_hash: u64,
    max_bytes: u64,
}

impl Cache {
    pub fn new(dir: PathBuf, engine: &Engine, max_bytes: u64) -> Cache {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        env!("CARGO_PKG_VERSION").hash(&mut hasher);
        Cache { dir, engine_hash: hasher.finish(), max_bytes }
    }

    fn path(&self, digest: &str) -> PathBuf {
        self.dir.join(format!("{digest}-{:016x}.{EXTENSION}", self.engine_hash))
    }

    pub fn get(&self, engine: &Engine, digest: &str) -> Option<Component> {
        let path = self.path(digest);
        // Read into memory rather than `deserialize_file`: a mapped file that
        // someone truncates under a running server is a SIGBUS, a copy is not.
        let bytes = std::fs::read(&path).ok()?;
        // SAFETY: the bytes come from hotline's own cache directory, written
        // by `Component::serialize` (atomically) under a name made of the
        // source digest and the engine's settings; wasmtime also checks the
        // header for compatibility and refuses a mismatch.
        match unsafe { Component::deserialize(engine, &bytes) } {
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
    /// torn entry; a cache that cannot be written only costs a compile later.
    pub fn put(&self, digest: &str, component: &Component) {
        let path = self.path(digest);
        let result = component.serialize().map_err(|e| e.to_string()).and_then(|bytes| {
            std::fs::create_dir_all(&self.dir).map_err(|e| e.to_string())?;
            let tmp = path.with_extension(format!("tmp{}", std::process::id()));
            std::fs::write(&tmp, bytes).map_err(|e| e.to_string())?;
            std::fs::rename(&tmp, &path).map_err(|e| e.to_string())
        });
        match result {
            Ok(()) => self.evict(&path),
            Err(error) => tracing::warn!(event = "guest_cache_write_failed", path = %path.display(), error),
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

/// Marks an entry as recently used.
fn touch(path: &Path) {
    if let Ok(file) = std::fs::File::options().append(true).open(path) {
        let _ = file.set_modified(SystemTime::now());
    }
}
