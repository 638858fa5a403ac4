//! What operators watch, read from the whole server at the moment they
//! ask: `/metrics`' scrape (what `metrics.rs` renders beside the calls'
//! own counts) and `/api/live`'s stream of Server-Sent Events (the changes
//! `live.rs` renders as they happen).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use tokio::sync::broadcast::error::RecvError;

use crate::app::App;
use crate::metrics::Scrape;

/// What `/metrics` reads at a scrape from the parts that count for
/// themselves.
pub(super) fn scrape(app: &App) -> Scrape {
    let active = app.calls.versions.active();
    let versions = app
        .calls
        .versions
        .history()
        .iter()
        .map(|v| {
            let counts = v.stats.counts();
            let is_active = active.as_ref().is_some_and(|a| a.digest() == v.digest());
            (v.digest().to_string(), is_active, counts)
        })
        .collect();
    Scrape {
        live_calls: app.calls.tasks.len() as i64,
        draining: app.is_draining() as i64,
        versions,
        provider_errors: app.calls.providers.health.error_counts(),
        records: app.calls.records.counts(),
    }
}

/// The comment SSE clients ignore, sent when nothing happened for a while
/// so proxies keep the connection open and a dead client is noticed.
const KEEPALIVE: &[u8] = b": keepalive\n\n";
/// How long a quiet stream waits before it sends `KEEPALIVE`.
const KEEPALIVE_EVERY: Duration = Duration::from_secs(15);

/// `GET /api/live`'s body: the snapshot, then each change as it happens,
/// a keepalive when nothing does, a new snapshot after falling behind. It
/// ends when the server closes its calls (the end of a drain), so an open
/// dashboard never holds a shutdown up.
pub(super) fn live_stream(app: Arc<App>) -> impl Stream<Item = Bytes> + Send + 'static {
    let (snapshot, changes) = app.calls.live.subscribe();
    futures_util::stream::unfold((app, changes, Some(snapshot)), |(app, mut changes, first)| async move {
        if let Some(snapshot) = first {
            return Some((snapshot, (app, changes, None)));
        }
        let next = tokio::select! {
            _ = app.calls.close_all.cancelled() => return None,
            next = tokio::time::timeout(KEEPALIVE_EVERY, changes.recv()) => next,
        };
        let chunk = match next {
            Err(_) => Bytes::from_static(KEEPALIVE),
            Ok(Ok(change)) => change,
            Ok(Err(RecvError::Lagged(_))) => {
                let (snapshot, fresh) = app.calls.live.subscribe();
                changes = fresh;
                snapshot
            }
            Ok(Err(RecvError::Closed)) => return None,
        };
        Some((chunk, (app, changes, None)))
    })
}
