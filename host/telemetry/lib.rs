//! Log setup: `tracing` with `RUST_LOG` filtering (default `info`), as text
//! or JSON lines (`HOTLINE_LOG_FORMAT=json`). Every line carries an `event`
//! field with a stable name; calls add a `call` span with `call_sid` and
//! `stream_sid`.
//!
//! Lines are formatted on the thread that logs and written by a background
//! thread in batches (`writer.rs`), so a call never waits on stderr; colour
//! codes only when stderr is a terminal; timestamps made once a second
//! (`timestamp.rs`).

mod timestamp;
mod writer;

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

pub use writer::LogGuard;

/// How lines are written (`HOTLINE_LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// The filter when `RUST_LOG` is unset (or unusable).
pub const DEFAULT_FILTER: &str = "info";

/// Installs the subscriber; keep the guard alive while logging, dropping it
/// writes out what is still buffered.
pub fn init(format: LogFormat) -> LogGuard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let (writer, guard) = writer::batched(std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_timer(timestamp::Timestamps)
        .with_ansi(std::io::stderr().is_terminal());
    // A second init (tests, embedding) keeps the first subscriber.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).try_init(),
    };
    guard
}

/// At most one line per second from one place in the code, for refusals a
/// client can repeat at will (bad signatures, wrong admin tokens, refused
/// connections): the log says what happened without one line per attempt.
/// The lines left out are counted and reported with the next one.
pub struct LogThrottle {
    /// Milliseconds since the process's first throttled line, when the
    /// next line may be written.
    next_ms: std::sync::atomic::AtomicU64,
    skipped: std::sync::atomic::AtomicU64,
}

impl LogThrottle {
    const EVERY_MS: u64 = 1000;

    pub const fn new() -> LogThrottle {
        LogThrottle { next_ms: std::sync::atomic::AtomicU64::new(0), skipped: std::sync::atomic::AtomicU64::new(0) }
    }

    /// `Some(lines skipped since the last one)` when a line may be written.
    pub fn allow(&self) -> Option<u64> {
        use std::sync::atomic::Ordering::Relaxed;
        static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        let now = EPOCH.get_or_init(std::time::Instant::now).elapsed().as_millis() as u64;
        let next = self.next_ms.load(Relaxed);
        if now >= next && self.next_ms.compare_exchange(next, now + Self::EVERY_MS, Relaxed, Relaxed).is_ok() {
            return Some(self.skipped.swap(0, Relaxed));
        }
        self.skipped.fetch_add(1, Relaxed);
        None
    }
}

/// `tracing::warn!` through a [`LogThrottle`] of its own (one per call
/// site), with the count of lines skipped as the `skipped` field.
#[macro_export]
macro_rules! warn_throttled {
    ($($fields:tt)*) => {{
        static LOG: $crate::LogThrottle = $crate::LogThrottle::new();
        if let Some(skipped) = LOG.allow() {
            tracing::warn!(skipped, $($fields)*);
        }
    }};
}

impl Default for LogThrottle {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_gets_one_line_and_the_next_one_counts_the_rest() {
        let t = LogThrottle::new();
        assert_eq!(t.allow(), Some(0));
        assert!((0..1000).all(|_| t.allow().is_none()));
        t.next_ms.store(0, std::sync::atomic::Ordering::Relaxed); // a second later
        assert_eq!(t.allow(), Some(1000));
    }
}
