//! Log setup: `tracing` with `RUST_LOG` filtering (default `info`), as text
//! or JSON lines (`HOTLINE_LOG_FORMAT=json`). Every line carries an `event`
//! field with a stable name; calls add a `call` span with `call_sid` and
//! `stream_sid`.
//!
//! Lines are formatted on the thread that logs and written by a background
//! thread through a buffer, so a call never waits on stderr; colour codes
//! only when stderr is a terminal.

use std::io::IsTerminal;

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// The filter when `RUST_LOG` is unset (or unusable).
pub const DEFAULT_FILTER: &str = "info";

/// Lines the log buffer holds before it drops (and counts) new ones: a few
/// seconds of a busy server's lines. The writer's default, 128 000, costs
/// 4 MB of memory up front.
const LOG_BUFFER_LINES: usize = 16_384;

/// Installs the subscriber; keep the guard alive while logging, dropping it
/// writes out what is still buffered.
pub fn init(format: LogFormat) -> WorkerGuard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let (writer, guard) = NonBlockingBuilder::default()
        .thread_name("hotline-log")
        .buffered_lines_limit(LOG_BUFFER_LINES)
        .finish(std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(std::io::stderr().is_terminal());
    // A second init (tests, embedding) keeps the first subscriber.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).try_init(),
    };
    guard
}
