//! The retry policy: one quick retry, for requests that are safe to repeat,
//! and never in the middle of a stream (only failures that got no usable
//! answer: connection errors, timeouts, 429, 5xx).

use std::future::Future;
use std::time::Duration;

use tracing::warn;

use super::{ProviderKind, Result};

/// Runs `attempt`, and once more after `delay` if it failed in a way a
/// retry may fix.
pub async fn retry_once<T, F, Fut>(kind: ProviderKind, delay: Duration, mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let result = attempt().await;
    if retry_wanted(kind, &result, true) {
        tokio::time::sleep(delay).await;
        return attempt().await;
    }
    result
}

/// Whether `result` deserves its one retry; `allowed` is false once part of
/// the answer was already handed on (repeating it would duplicate it).
pub fn retry_wanted<T>(kind: ProviderKind, result: &Result<T>, allowed: bool) -> bool {
    match result {
        Err(e) if allowed && e.retryable() => {
            warn!(event = "provider_retry", kind = kind.name(), error = %e);
            true
        }
        _ => false,
    }
}
