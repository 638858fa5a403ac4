//! The records section of `hotline serve`'s settings: where call records
//! go (SQLite in the data directory, or PostgreSQL), how many may wait for
//! the writer, how long they are kept, whether phone numbers are masked,
//! and whether calls' audio is recorded. Defined once here, as the server's own settings are in `config/defs.rs`; docs/records.md
//! explains each.

use std::path::PathBuf;
use std::time::Duration;

use clap::value_parser;
use hotline_common::Secret;

#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Records")]
pub struct StoreArgs {
    /// Directory of the call records' SQLite database (created with mode 0700); `off`: no records
    /// (unless DATABASE_URL is set). [default: $XDG_DATA_HOME/hotline, else $HOME/.local/share/hotline, else none]
    #[arg(long, env = "HOTLINE_DATA_DIR")]
    pub data_dir: Option<String>,
    /// A postgres:// URL: records go to PostgreSQL instead of the SQLite file.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, value_parser = postgres_url)]
    pub database_url: Option<String>,
    /// Finished calls' records waiting for the writer at most (1-1000000); past it records are dropped and counted.
    #[arg(long, env = "HOTLINE_RECORD_QUEUE", default_value_t = 1024)]
    #[arg(value_parser = value_parser!(u32).range(1..=1_000_000))]
    pub record_queue: u32,
    /// Days a call record is kept (0-36500; 0 keeps them forever).
    #[arg(long, env = "HOTLINE_RETENTION_DAYS", default_value_t = 30)]
    #[arg(value_parser = value_parser!(u32).range(0..=36_500))]
    pub retention_days: u32,
    /// Keep only the last 4 digits of the caller's and the called number in records (true/false).
    #[arg(long, env = "HOTLINE_MASK_NUMBERS", default_value_t = true, action = clap::ArgAction::Set)]
    #[arg(value_parser = clap::builder::BoolishValueParser::new())]
    pub mask_numbers: bool,
    /// Record each call's audio as a stereo WAV (caller left, agent right) in <data dir>/recordings (true/false).
    #[arg(long, env = "HOTLINE_RECORD_AUDIO", default_value_t = false, action = clap::ArgAction::Set)]
    #[arg(value_parser = clap::builder::BoolishValueParser::new())]
    pub record_audio: bool,
    /// This instance's name in a fleet (records, guest status); unique per instance.
    /// [default: $FLY_MACHINE_ID, else $HOSTNAME, else the host name; then :$PORT]
    #[arg(long, env = "HOTLINE_INSTANCE", value_parser = instance_name)]
    pub instance: Option<String>,
}

/// Where records go.
#[derive(Debug, Clone)]
pub enum Backend {
    /// No records: `HOTLINE_DATA_DIR=off`, or no place for the data
    /// directory (with the reason, for the start-up log).
    Off(Option<&'static str>),
    /// `hotline.db` in this directory.
    Sqlite(PathBuf),
    /// `DATABASE_URL` (it may hold a password).
    Postgres(Secret),
}

/// The store's settings, as the rest of the host uses them.
#[derive(Debug, Clone)]
pub struct StoreSettings {
    pub backend: Backend,
    pub queue: usize,
    /// `None`: keep records forever.
    pub retention: Option<Duration>,
    pub mask_numbers: bool,
    /// Record calls' audio (`HOTLINE_RECORD_AUDIO`), in `recordings_dir`.
    pub record_audio: bool,
    /// The data directory when the records go to PostgreSQL: where the
    /// recordings go then (with SQLite, the database's own directory).
    pub data_dir: Option<PathBuf>,
    /// `HOTLINE_INSTANCE`: written with every record and, in a fleet, with
    /// this instance's guest status.
    pub instance: String,
}

impl StoreArgs {
    /// `get` supplies the variables that shape the data directory's
    /// default place (`XDG_DATA_HOME`, `HOME`) and the instance's default
    /// name (`FLY_MACHINE_ID`, `HOSTNAME`), with `port`.
    pub fn settings(&self, get: &dyn Fn(&str) -> Option<String>, port: u16) -> StoreSettings {
        let data_dir = match self.data_dir.as_deref() {
            Some("off") => None,
            Some(dir) => Some(PathBuf::from(dir)),
            None => default_data_dir(get),
        };
        let backend = match (&self.database_url, self.data_dir.as_deref()) {
            (Some(url), _) => Backend::Postgres(Secret::new(url)),
            (None, Some("off")) => Backend::Off(None),
            (None, Some(dir)) => Backend::Sqlite(PathBuf::from(dir)),
            (None, None) => match default_data_dir(get) {
                Some(dir) => Backend::Sqlite(dir),
                None => Backend::Off(Some(NO_DEFAULT_DATA_DIR)),
            },
        };
        StoreSettings {
            backend,
            queue: self.record_queue as usize,
            retention: (self.retention_days > 0).then(|| Duration::from_secs(u64::from(self.retention_days) * 86_400)),
            mask_numbers: self.mask_numbers,
            record_audio: self.record_audio,
            data_dir,
            instance: self.instance.clone().unwrap_or_else(|| default_instance(get, port)),
        }
    }
}

impl StoreSettings {
    /// No records at all.
    pub fn off() -> StoreSettings {
        StoreSettings {
            backend: Backend::Off(None),
            queue: 1024,
            retention: None,
            mask_numbers: true,
            record_audio: false,
            data_dir: None,
            instance: "hotline".into(),
        }
    }

    /// Where recordings go: `recordings` in the data directory, when they
    /// are on and there is one.
    pub fn recordings_dir(&self) -> Option<PathBuf> {
        if !self.record_audio {
            return None;
        }
        match &self.backend {
            Backend::Sqlite(dir) => Some(dir.join("recordings")),
            Backend::Postgres(_) => self.data_dir.as_ref().map(|dir| dir.join("recordings")),
            Backend::Off(_) => None,
        }
    }
}

/// Why there is no store when nothing says where it goes.
pub const NO_DEFAULT_DATA_DIR: &str = "neither XDG_DATA_HOME nor HOME is set to an absolute path";

/// `$XDG_DATA_HOME/hotline`, else `$HOME/.local/share/hotline`, else none
/// (never a shared place such as the temp dir). Relative values are
/// ignored, as the XDG spec says.
fn default_data_dir(get: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let get = |k: &str| get(k).map(|v| PathBuf::from(v.trim())).filter(|p| p.is_absolute());
    let base = get("XDG_DATA_HOME").or_else(|| get("HOME").map(|home| home.join(".local/share")))?;
    Some(base.join("hotline"))
}

/// PostgreSQL only: SQLite's place is `HOTLINE_DATA_DIR`. The value is a
/// secret (it may hold a password): errors never quote it.
fn postgres_url(value: &str) -> Result<String, String> {
    if !(value.starts_with("postgres://") || value.starts_with("postgresql://")) {
        return Err("must be a postgres:// URL (SQLite needs no URL: it lives in HOTLINE_DATA_DIR)".into());
    }
    Ok(value.to_string())
}

/// The machine's name as platforms give it (Fly's machine ID, the pod or
/// container name in `HOSTNAME`, else the kernel's host name), then the
/// port: two instances on one host differ, and a restarted instance keeps
/// its name (its status row is updated, not duplicated).
fn default_instance(get: &dyn Fn(&str) -> Option<String>, port: u16) -> String {
    let host = get("FLY_MACHINE_ID")
        .or_else(|| get("HOSTNAME"))
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "hotline".into());
    format!("{host}:{port}")
}

/// Shown in logs, the API and the dashboard: printable, short.
fn instance_name(value: &str) -> Result<String, String> {
    let ok = |c: char| c.is_ascii_alphanumeric() || "-_.:@".contains(c);
    if value.is_empty() || value.len() > 64 || !value.chars().all(ok) {
        return Err("1-64 characters among letters, digits and - _ . : @".into());
    }
    Ok(value.to_string())
}
