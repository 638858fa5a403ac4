//! Reloads the guest when its file changes (`--guest` / `HOTLINE_GUEST`).
//!
//! The parent directory is watched, not the file, so the usual atomic
//! deploy (write a temp file, rename it over the old one) is seen; events
//! are debounced so a half-written file is not loaded mid-copy.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use notify_debouncer_mini::notify::RecursiveMode;
use notify_debouncer_mini::{DebounceEventResult, new_debouncer};
use tracing::{debug, info, warn};

use super::Fleet;
use crate::sandbox::{Sandbox, digest_of};
use crate::versions::Registry;

const DEBOUNCE: Duration = Duration::from_millis(300);

/// Starts watching; the watch lives as long as the returned task.
pub fn spawn(
    sandbox: Sandbox,
    versions: Arc<Registry>,
    fleet: Option<Arc<Fleet>>,
    path: PathBuf,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let name = path.file_name().context("guest path has no file name")?.to_owned();
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut debouncer = new_debouncer(DEBOUNCE, move |result: DebounceEventResult| match result {
        Ok(events) => {
            if events.iter().any(|e| e.path.file_name() == Some(name.as_os_str())) {
                let _ = tx.send(());
            }
        }
        Err(e) => warn!(event = "guest_watch_error", error = %e),
    })?;
    debouncer
        .watcher()
        .watch(&dir, RecursiveMode::NonRecursive)
        .with_context(|| format!("watching {}", dir.display()))?;
    info!(event = "guest_watch", path = %path.display());
    Ok(tokio::spawn(async move {
        let _debouncer = debouncer; // dropping it stops the watch
        while rx.recv().await.is_some() {
            reload(&sandbox, &versions, fleet.as_deref(), &path).await;
        }
    }))
}

async fn reload(sandbox: &Sandbox, versions: &Registry, fleet: Option<&Fleet>, path: &PathBuf) {
    let source = path.display().to_string();
    let bytes = match tokio::fs::read(path).await {
        Ok(b) => b,
        Err(e) => {
            // Mid-rename, or deleted: the next event will tell.
            debug!(event = "guest_watch_unreadable", source, error = %e);
            return;
        }
    };
    let previous = versions.active();
    if previous.as_ref().is_some_and(|p| p.digest() == digest_of(&bytes)) {
        debug!(event = "guest_unchanged", source);
        return;
    }
    // A rejection is logged on its way; the active version stays. In a
    // fleet, the file is a push like the admin API's.
    let _ = super::push(sandbox, versions, fleet, bytes, source).await;
}
