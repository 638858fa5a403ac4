//! Where log lines go: appended to a shared buffer by the thread that logs,
//! written to stderr by a background thread in one write per batch.
//!
//! Why not `tracing_appender::non_blocking`: it hands every line over a
//! channel to its thread, waking that thread (a futex call and a context
//! switch on the server's core) and writing to the unbuffered stderr (a
//! `write` call) once per line. A busy server logs thousands of lines a
//! second; here a line costs a lock and a copy, the thread wakes at most
//! once per [`BATCH`], and a batch is one `write`.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing::warn;
use tracing_subscriber::fmt::MakeWriter;

/// How long the first line of a batch waits for others: lines reach stderr
/// this late at most (a busy moment's whole batch is then one write).
const BATCH: Duration = Duration::from_millis(20);

/// Bytes held for the writer thread before new lines are dropped (and
/// counted, and reported once there is room): stderr blocked or far too
/// slow must not grow the process without bound, nor slow calls down.
pub const MAX_BUFFERED: usize = 2 << 20;

struct Shared {
    state: Mutex<State>,
    /// The buffer became non-empty, or the log is closing.
    wake: Condvar,
}

#[derive(Default)]
struct State {
    lines: Vec<u8>,
    dropped: u64,
    closing: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A thread that panicked while holding the lock left whole lines
        // (appends are single `extend`s): keep logging.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The subscriber's writer (cheap to clone: one per logging call site).
#[derive(Clone)]
pub struct LogWriter {
    shared: Arc<Shared>,
}

/// Keeps the writer thread; dropping it writes out what is buffered.
pub struct LogGuard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// A writer into `out` and the guard of its thread.
pub fn batched(out: impl Write + Send + 'static) -> (LogWriter, LogGuard) {
    let writer = LogWriter { shared: Arc::new(Shared { state: Mutex::new(State::default()), wake: Condvar::new() }) };
    let guard = writer.start(out);
    (writer, guard)
}

impl LogWriter {
    /// The thread that writes this writer's lines to `out`.
    fn start(&self, out: impl Write + Send + 'static) -> LogGuard {
        let shared = self.shared.clone();
        let thread = std::thread::Builder::new()
            .name("hotline-log".into())
            .spawn(move || write_batches(&shared, out))
            .expect("the log thread starts");
        LogGuard { shared: self.shared.clone(), thread: Some(thread) }
    }
}

fn write_batches(shared: &Shared, mut out: impl Write) {
    let mut batch = Vec::new();
    loop {
        let mut state = shared.lock();
        while state.lines.is_empty() && !state.closing {
            state = shared.wake.wait(state).unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        if state.lines.is_empty() {
            return; // closing, and nothing left
        }
        if !state.closing {
            drop(state);
            std::thread::sleep(BATCH);
            state = shared.lock();
        }
        std::mem::swap(&mut batch, &mut state.lines);
        let dropped = std::mem::take(&mut state.dropped);
        drop(state);
        // Nowhere to report a failing stderr: the lines are lost either way.
        let _ = out.write_all(&batch).and_then(|()| out.flush());
        batch.clear();
        if dropped > 0 {
            warn!(event = "log_lines_dropped", count = dropped, max_buffered_bytes = MAX_BUFFERED);
        }
    }
}

impl Write for &LogWriter {
    /// One formatted line (the subscriber writes each whole).
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        let mut state = self.shared.lock();
        if state.lines.len() + line.len() > MAX_BUFFERED {
            state.dropped += 1;
        } else {
            let was_empty = state.lines.is_empty();
            state.lines.extend_from_slice(line);
            if was_empty {
                self.shared.wake.notify_one();
            }
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogWriter {
    type Writer = &'a LogWriter;

    fn make_writer(&'a self) -> Self::Writer {
        self
    }
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        self.shared.lock().closing = true;
        self.shared.wake.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `Write` the test can read back.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<(Vec<u8>, usize)>>);

    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let mut sink = self.0.lock().unwrap();
            sink.0.extend_from_slice(buf);
            sink.1 += 1;
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn unstarted() -> LogWriter {
        LogWriter { shared: Arc::new(Shared { state: Mutex::new(State::default()), wake: Condvar::new() }) }
    }

    #[test]
    fn what_is_buffered_goes_out_whole_in_order_in_one_write() {
        let writer = unstarted();
        for i in 0..1000 {
            (&writer).write_all(format!("line {i}\n").as_bytes()).unwrap();
        }
        let sink = Sink::default();
        drop(writer.start(sink.clone()));
        let (text, writes) = sink.0.lock().unwrap().clone();
        let expected: String = (0..1000).map(|i| format!("line {i}\n")).collect();
        assert_eq!((String::from_utf8(text).unwrap(), writes), (expected, 1));
    }

    #[test]
    fn lines_logged_while_running_are_all_written_by_the_guards_drop() {
        let sink = Sink::default();
        let (writer, guard) = batched(sink.clone());
        (&writer).write_all(b"first\n").unwrap();
        std::thread::sleep(BATCH * 2); // the first batch is out
        (&writer).write_all(b"second\n").unwrap();
        drop(guard);
        assert_eq!(sink.0.lock().unwrap().0, b"first\nsecond\n");
    }

    #[test]
    fn past_the_bound_lines_are_dropped_and_counted() {
        let writer = unstarted();
        let line = vec![b'x'; 1 << 20];
        for _ in 0..3 {
            (&writer).write_all(&line).unwrap();
        }
        let state = writer.shared.lock();
        assert_eq!((state.dropped, state.lines.len()), (1, 2 << 20));
    }
}
