//! Log setup: `tracing` with `RUST_LOG` filtering (default `info`), as text
//! or JSON lines (`HOTLINE_LOG_FORMAT=json`). Every line carries an `event`
//! field with a stable name; calls add a `call` span with `call_sid` and
//! `stream_sid`.

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// The filter when `RUST_LOG` is unset (or unusable).
pub const DEFAULT_FILTER: &str = "info";

pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // A second init (tests, embedding) keeps the first subscriber.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).try_init(),
    };
}
