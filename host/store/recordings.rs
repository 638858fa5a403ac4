//! Call recordings (`HOTLINE_RECORD_AUDIO=true`): a stereo WAV per call,
//! the caller on the left and what the agent played on the right, 8 kHz
//! 16-bit, in `<data dir>/recordings/<UTC day>/<call SID>.wav`.
//!
//! Calls never touch a file. Each hands its audio over in chunks of a few
//! seconds (`media/tape.rs`) to one writer thread, which appends them to
//! the file and rewrites the WAV header after every chunk: the file is a
//! valid recording at every moment, and a crash loses at most the chunks
//! still queued. The queue is bounded in bytes; a chunk that does not fit
//! is dropped, and that call's recording stops there (a recording with a
//! hole in it would put the caller's words against the wrong replies).
//! No descriptor is held between chunks: a thousand recorded calls do not
//! take a thousand files from the connection budget.
//!
//! Retention: day directories whose whole day is past the retention go, on
//! the writer's own hourly tick (a day's recordings may outlive their
//! records by up to a day).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, SystemTime};

use hotline_audio::{SAMPLE_RATE, ulaw};
use tracing::{info, warn};

use super::db::create_private_dir;
use super::record::{RecordingRef, unix_ms};

/// Bytes of μ-law the queue holds at most (about 35 minutes of stereo
/// audio across all calls): past it chunks are dropped.
const QUEUE_BYTES: usize = 32 << 20;
const PURGE_EVERY: Duration = Duration::from_secs(3600);
const DAY_MS: i64 = 86_400_000;

/// What the writer thread is asked.
enum Job {
    /// A new recording: an empty WAV at this path.
    Create(PathBuf),
    /// Interleaved μ-law (caller, agent, caller, agent, …) for the end of a file.
    Append(PathBuf, Vec<u8>),
    /// Everything before this is written: say so.
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// The recordings of this process: where they go and the writer's queue.
pub struct Recordings {
    dir: PathBuf,
    jobs: mpsc::Sender<Job>,
    queued_bytes: Arc<AtomicUsize>,
    pub dropped_chunks: Arc<AtomicU64>,
}

/// One call's recording, as the call holds it.
pub struct Recording {
    /// Relative to the recordings directory (`2026-11-26/CA….wav`): what
    /// the record keeps.
    pub name: String,
    path: PathBuf,
    /// Sample pairs handed over so far.
    pub samples: u64,
    /// A chunk was dropped: nothing more is written.
    broken: AtomicBool,
}

impl Recording {
    /// The size of the WAV once what was handed over is written.
    pub fn bytes(&self) -> u64 {
        WAV_HEADER + self.samples * 4
    }

    pub fn duration_ms(&self) -> u64 {
        self.samples * 1000 / u64::from(SAMPLE_RATE)
    }

    pub fn is_broken(&self) -> bool {
        self.broken.load(Ordering::Relaxed)
    }
}

/// The header hound writes for 16-bit PCM.
const WAV_HEADER: u64 = 44;

impl Recordings {
    /// Creates the directory (mode 0700, as the data directory) and starts
    /// the writer thread.
    pub fn start(dir: PathBuf, retention: Option<Duration>) -> std::io::Result<Recordings> {
        create_private_dir(&dir)?;
        let (jobs, rx) = mpsc::channel();
        let queued_bytes = Arc::new(AtomicUsize::new(0));
        let dropped_chunks = Arc::new(AtomicU64::new(0));
        let writer = Writer { dir: dir.clone(), queued_bytes: queued_bytes.clone(), retention };
        std::thread::Builder::new().name("hotline-recordings".into()).spawn(move || writer.run(rx))?;
        info!(event = "recordings", dir = %dir.display(), retention_days = retention.map_or(0, |r| r.as_secs() / 86_400));
        Ok(Recordings { dir, jobs, queued_bytes, dropped_chunks })
    }

    /// A recording for this call, or none if its SID cannot be a file name
    /// (Twilio's are `CA` and 32 hex digits; anything else is refused
    /// rather than escaped).
    pub fn open(&self, call_sid: &str) -> Option<Recording> {
        if call_sid.is_empty() || call_sid.len() > 64 || !call_sid.bytes().all(|b| b.is_ascii_alphanumeric()) {
            warn!(event = "recording_refused", reason = "the call SID is not a plain name", call_sid);
            return None;
        }
        let name = format!("{}/{call_sid}.wav", day(unix_ms(SystemTime::now())));
        let path = self.dir.join(&name);
        let _ = self.jobs.send(Job::Create(path.clone()));
        Some(Recording { name, path, samples: 0, broken: AtomicBool::new(false) })
    }

    /// The recording `earlier` goes on: a caller back from a transfer
    /// nobody answered is heard after the first stream's audio, in the
    /// same file (none if the name is not one this store made).
    pub fn resume(&self, earlier: &RecordingRef) -> Option<Recording> {
        let path = self.path(&earlier.name)?;
        let samples = (earlier.bytes as u64).saturating_sub(WAV_HEADER) / 4;
        Some(Recording { name: earlier.name.clone(), path, samples, broken: AtomicBool::new(false) })
    }

    /// Queues interleaved μ-law for the end of `recording`; never waits.
    pub fn append(&self, recording: &mut Recording, interleaved: Vec<u8>) {
        if recording.is_broken() || interleaved.is_empty() {
            return;
        }
        let len = interleaved.len();
        if self.queued_bytes.fetch_add(len, Ordering::Relaxed) + len > QUEUE_BYTES {
            self.queued_bytes.fetch_sub(len, Ordering::Relaxed);
            recording.broken.store(true, Ordering::Relaxed);
            let dropped = self.dropped_chunks.fetch_add(1, Ordering::Relaxed) + 1;
            hotline_telemetry::warn_throttled!(event = "recording_dropped", recording = recording.name, dropped);
            return;
        }
        recording.samples += (len / 2) as u64;
        let _ = self.jobs.send(Job::Append(recording.path.clone(), interleaved));
    }

    /// Waits (up to `budget`) until everything queued is on disk.
    pub async fn flush(&self, budget: Duration) {
        let (done, written) = tokio::sync::oneshot::channel();
        if self.jobs.send(Job::Flush(done)).is_ok() && tokio::time::timeout(budget, written).await.is_err() {
            warn!(event = "recordings_flush_timeout", queued_bytes = self.queued_bytes.load(Ordering::Relaxed));
        }
    }

    /// The file of a recording the store names; `None` for a name that is
    /// not one this module makes (the database is not trusted with paths).
    pub fn path(&self, name: &str) -> Option<PathBuf> {
        let (day, file) = name.split_once('/')?;
        let sid = file.strip_suffix(".wav")?;
        let plain = |s: &str, extra: u8| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == extra);
        (plain(day, b'-') && plain(sid, b'_')).then(|| self.dir.join(day).join(file))
    }
}

struct Writer {
    dir: PathBuf,
    queued_bytes: Arc<AtomicUsize>,
    retention: Option<Duration>,
}

impl Writer {
    fn run(self, jobs: mpsc::Receiver<Job>) {
        self.purge();
        let mut next_purge = std::time::Instant::now() + PURGE_EVERY;
        loop {
            let job = match jobs.recv_timeout(next_purge.saturating_duration_since(std::time::Instant::now())) {
                Ok(job) => job,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    self.purge();
                    next_purge = std::time::Instant::now() + PURGE_EVERY;
                    continue;
                }
                // Every sender is gone: the process is ending.
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            };
            match job {
                Job::Create(path) => {
                    if let Err(e) = create(&path) {
                        warn!(event = "recording_write_failed", path = %path.display(), error = %e);
                    }
                }
                Job::Append(path, interleaved) => {
                    let len = interleaved.len();
                    if let Err(e) = append(&path, &interleaved) {
                        hotline_telemetry::warn_throttled!(event = "recording_write_failed", path = %path.display(), error = %e);
                    }
                    self.queued_bytes.fetch_sub(len, Ordering::Relaxed);
                }
                Job::Flush(done) => {
                    let _ = done.send(());
                }
            }
        }
    }

    /// Removes the day directories wholly past the retention.
    fn purge(&self) {
        let Some(retention) = self.retention else { return };
        let cutoff = unix_ms(SystemTime::now() - retention);
        let Ok(days) = std::fs::read_dir(&self.dir) else { return };
        let mut removed = 0;
        for entry in days.flatten() {
            let name = entry.file_name();
            let Some(start) = name.to_str().and_then(day_start) else { continue };
            if start + DAY_MS <= cutoff {
                match std::fs::remove_dir_all(entry.path()) {
                    Ok(()) => removed += 1,
                    Err(e) => warn!(event = "recordings_purge_failed", day = ?name, error = %e),
                }
            }
        }
        if removed > 0 {
            info!(event = "recordings_purged", days = removed);
        }
    }
}

fn spec() -> hound::WavSpec {
    hound::WavSpec {
        channels: 2,
        sample_rate: SAMPLE_RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    }
}

fn create(path: &Path) -> Result<(), hound::Error> {
    if let Some(day) = path.parent() {
        create_private_dir(day)?;
    }
    hound::WavWriter::create(path, spec())?.finalize()
}

/// Appends and rewrites the header's sizes (hound's `append` + `finalize`).
fn append(path: &Path, interleaved: &[u8]) -> Result<(), hound::Error> {
    let mut writer = hound::WavWriter::append(path)?;
    {
        let mut samples = writer.get_i16_writer(interleaved.len() as u32);
        for &code in interleaved {
            samples.write_sample(ulaw::decode(code));
        }
        samples.flush()?;
    }
    writer.finalize()
}

/// `YYYY-MM-DD` (UTC) of a Unix-ms time.
fn day(unix_ms: i64) -> String {
    let (y, m, d) = civil_from_days(unix_ms.div_euclid(DAY_MS));
    format!("{y:04}-{m:02}-{d:02}")
}

/// The Unix ms a `YYYY-MM-DD` day starts at; `None` for any other name.
fn day_start(name: &str) -> Option<i64> {
    let mut parts = name.split('-');
    let (y, m, d) = (parts.next()?.parse().ok()?, parts.next()?.parse().ok()?, parts.next()?.parse().ok()?);
    if parts.next().is_some() || name.len() != 10 {
        return None;
    }
    let days = days_from_civil(y, m, d)?;
    (day(days * DAY_MS) == name).then_some(days * DAY_MS)
}

/// Howard Hinnant's `civil_from_days`: days since 1970-01-01 → (y, m, d).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Its inverse; `None` for a month or day out of range.
fn days_from_civil(y: i64, m: u32, d: u32) -> Option<i64> {
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_utc_calendar_days_both_ways() {
        assert_eq!(day(0), "1970-01-01");
        assert_eq!(day(DAY_MS - 1), "1970-01-01");
        assert_eq!(day(1_795_651_200_000), "2026-11-26");
        assert_eq!(day(951_782_400_000), "2000-02-29");
        assert_eq!(day_start("2026-11-26"), Some(1_795_651_200_000));
        assert_eq!(day_start("2000-02-29"), Some(951_782_400_000));
        for bad in ["2026-02-30", "2026-13-01", "26-11-26", "2026-11-26x", "notes", "2026-1-05"] {
            assert_eq!(day_start(bad), None, "{bad}");
        }
    }

    #[test]
    fn only_names_this_module_makes_become_paths() {
        let (jobs, _rx) = mpsc::channel();
        let r = Recordings {
            dir: "/data/recordings".into(),
            jobs,
            queued_bytes: Arc::default(),
            dropped_chunks: Arc::default(),
        };
        assert_eq!(r.path("2026-11-26/CA0123abcd.wav"), Some("/data/recordings/2026-11-26/CA0123abcd.wav".into()));
        for bad in ["../x/CA1.wav", "2026-11-26/../../etc/passwd", "2026-11-26/CA1.mp3", "/abs/CA1.wav", "CA1.wav"] {
            assert_eq!(r.path(bad), None, "{bad}");
        }
        assert!(r.open("CA/../../x").is_none());
        assert!(r.open("CA0123").is_some_and(|rec| rec.name.ends_with("/CA0123.wav")));
    }

    #[test]
    fn chunks_append_to_a_wav_that_is_valid_after_each() {
        let dir = std::env::temp_dir().join(format!("hotline-rec-test-{}", std::process::id()));
        let path = dir.join("2026-11-26/CA1.wav");
        create(&path).unwrap();
        let caller_agent = |c: u8, a: u8, n: usize| [c, a].repeat(n);
        append(&path, &caller_agent(ulaw::encode(1000), ulaw::SILENCE, 800)).unwrap();
        let after_one = hound::WavReader::open(&path).unwrap();
        assert_eq!((after_one.spec(), after_one.duration()), (spec(), 800));
        append(&path, &caller_agent(ulaw::SILENCE, ulaw::encode(-2000), 400)).unwrap();
        let mut reader = hound::WavReader::open(&path).unwrap();
        assert_eq!(reader.duration(), 1200);
        let samples: Vec<i16> = reader.samples::<i16>().map(Result::unwrap).collect();
        assert!((samples[0] - 1000).abs() < 40 && samples[1] == 0, "caller left: {:?}", &samples[..2]);
        assert!(samples[1600] == 0 && (samples[1601] + 2000).abs() < 80, "agent right: {:?}", &samples[1600..1602]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
