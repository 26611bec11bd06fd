//! The log writer. A request formats its access (and audit) line into a thread-local buffer and
//! appends it to a pending batch; a writer thread writes the batch to stderr in one `write`
//! every [`FLUSH_INTERVAL`] (sooner when [`FLUSH_AT`] bytes wait). So a request never waits on
//! stderr, and a thousand requests a second cost twenty writes, not a thousand.
//!
//! tracing's own events (warnings, lifecycle) go through the same batch, so lines keep their
//! order, but they are written at once: a warning is never held back.

use std::cell::RefCell;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{LazyLock, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread::{self, JoinHandle, Thread};
use std::time::{Duration, SystemTime};

use prometheus_client::metrics::counter::Counter;
use tracing_subscriber::fmt::MakeWriter;

use super::line::{Line, Stamp, Style};

/// How long access and audit lines gather before they are written.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(50);
/// Pending bytes that wake the writer before the interval ends.
pub const FLUSH_AT: usize = 64 * 1024;
/// Pending bytes past which an access or audit line is dropped (and counted) rather than held: stderr
/// is not being read fast enough, and memory must not grow without bound.
pub const MAX_PENDING: usize = 4 * 1024 * 1024;

/// Access and audit lines dropped because stderr could not keep up.
pub static DROPPED: LazyLock<Counter> = LazyLock::new(Counter::default);

/// The process's log writer, once `install`ed.
static INSTALLED: OnceLock<&'static Appender> = OnceLock::new();

thread_local! {
    /// Each thread's line buffer and cached timestamp prefix, reused for every line.
    static LINE: RefCell<(Vec<u8>, Stamp)> = RefCell::new((Vec::with_capacity(512), Stamp::default()));
}

/// Writes `line` through the process's writer; with none installed (an embedder's or a test's
/// subscriber), runs `fallback`, which logs the same fields as an ordinary tracing event. The
/// caller has checked that its target is enabled.
pub fn write(line: &Line<'_>, fallback: impl FnOnce()) {
    let Some(appender) = INSTALLED.get() else {
        fallback();
        return;
    };
    LINE.with_borrow_mut(|(buf, stamp)| {
        buf.clear();
        line.write(appender.style, SystemTime::now(), stamp, buf);
        appender.append(buf, false);
    });
}

/// The pending batch and the thread that writes it.
pub struct Appender {
    style: Style,
    pending: Mutex<Vec<u8>>,
    /// Set when a line must not wait for the interval.
    urgent: AtomicBool,
    /// Set (under the `pending` lock) when the writer is told to finish; lines after it are
    /// written by their caller.
    stopped: AtomicBool,
    sink: Mutex<Box<dyn Write + Send>>,
    writer: OnceLock<Thread>,
}

impl std::fmt::Debug for Appender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Appender")
            .field("style", &self.style)
            .finish_non_exhaustive()
    }
}

/// Stops the writer when dropped, after it wrote everything pending.
#[derive(Debug)]
pub struct LogGuard {
    appender: &'static Appender,
    thread: Option<JoinHandle<()>>,
}

/// Starts the process's writer to `sink`, lines in `style`.
pub fn install(style: Style, sink: Box<dyn Write + Send>) -> LogGuard {
    let guard = Appender::start(style, sink);
    // Only one subscriber is installed per process, so only one writer reaches here.
    let _ = INSTALLED.set(guard.appender);
    guard
}

impl Appender {
    /// A new appender (leaked: it lives as long as the process) and its writer thread.
    pub fn start(style: Style, sink: Box<dyn Write + Send>) -> LogGuard {
        let appender: &'static Appender = Box::leak(Box::new(Appender {
            style,
            pending: Mutex::new(Vec::with_capacity(FLUSH_AT)),
            urgent: AtomicBool::new(false),
            stopped: AtomicBool::new(false),
            sink: Mutex::new(sink),
            writer: OnceLock::new(),
        }));
        let thread = thread::Builder::new()
            .name("tollgate-log".into())
            .spawn(move || appender.run())
            .expect("the log writer thread starts");
        let _ = appender.writer.set(thread.thread().clone());
        LogGuard {
            appender,
            thread: Some(thread),
        }
    }

    /// Adds `bytes` (whole lines) to the batch; `urgent` has it written without waiting.
    pub fn append(&self, bytes: &[u8], urgent: bool) {
        let mut pending = lock(&self.pending);
        if self.stopped.load(Ordering::Acquire) {
            drop(pending);
            let _ = lock(&self.sink).write_all(bytes);
            return;
        }
        if !urgent && pending.len() + bytes.len() > MAX_PENDING {
            DROPPED.inc();
            return;
        }
        let was_empty = pending.is_empty();
        let crossed = pending.len() < FLUSH_AT && pending.len() + bytes.len() >= FLUSH_AT;
        pending.extend_from_slice(bytes);
        drop(pending);
        if urgent {
            self.urgent.store(true, Ordering::Release);
        }
        if was_empty || crossed || urgent {
            self.wake();
        }
    }

    fn wake(&self) {
        if let Some(writer) = self.writer.get() {
            writer.unpark();
        }
    }

    /// The writer thread: wait for lines, let more gather, write them all, until stopped.
    fn run(&self) {
        let mut batch = Vec::with_capacity(FLUSH_AT);
        loop {
            let stopped = self.wait_for_lines();
            std::mem::swap(&mut *lock(&self.pending), &mut batch);
            if !batch.is_empty() {
                let mut sink = lock(&self.sink);
                let _ = sink.write_all(&batch);
                let _ = sink.flush();
                batch.clear();
            }
            if stopped && lock(&self.pending).is_empty() {
                return;
            }
        }
    }

    /// Parks until a line waits, then up to [`FLUSH_INTERVAL`] more unless it is urgent or the
    /// batch grows past [`FLUSH_AT`]; returns whether the writer was told to stop.
    fn wait_for_lines(&self) -> bool {
        loop {
            if self.stopped.load(Ordering::Acquire) {
                return true;
            }
            if !lock(&self.pending).is_empty() {
                break;
            }
            thread::park();
        }
        if !self.urgent.swap(false, Ordering::AcqRel) {
            let until = std::time::Instant::now() + FLUSH_INTERVAL;
            loop {
                let left = until.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() || self.urgent.swap(false, Ordering::AcqRel) {
                    break;
                }
                if lock(&self.pending).len() >= FLUSH_AT || self.stopped.load(Ordering::Acquire) {
                    break;
                }
                thread::park_timeout(left);
            }
        }
        self.stopped.load(Ordering::Acquire)
    }
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        {
            let _pending = lock(&self.appender.pending);
            self.appender.stopped.store(true, Ordering::Release);
        }
        self.appender.wake();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves bytes, not a broken invariant: keep logging.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// tracing's writer: each formatted event goes to the batch, written at once.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        match INSTALLED.get() {
            Some(appender) => appender.append(bytes, true),
            None => std::io::stderr().write_all(bytes)?,
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogWriter {
    type Writer = LogWriter;

    fn make_writer(&'a self) -> Self::Writer {
        LogWriter
    }
}

#[cfg(test)]
mod tests;
