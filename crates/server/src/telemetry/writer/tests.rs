//! The writer under threads and a stuck stderr.

use super::*;
use crate::telemetry::test_support::Captured;
use std::sync::Arc;

/// A sink whose writes wait until the test opens it, to hold the writer thread in a write.
#[derive(Clone, Default)]
struct Gate {
    out: Captured,
    state: Arc<(Mutex<(bool, bool)>, std::sync::Condvar)>,
}

impl Write for Gate {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let (lock, cond) = &*self.state;
        let mut state = lock.lock().unwrap();
        state.0 = true; // entered
        cond.notify_all();
        while !state.1 {
            state = cond.wait(state).unwrap();
        }
        self.out.write(bytes)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_stuck_stderr_drops_access_lines_past_the_bound_and_stop_writes_the_rest() {
    let gate = Gate::default();
    let guard = Appender::start(Style::Json, Box::new(gate.clone()));
    let appender = guard.appender;
    appender.append(b"one\n", true);
    let (lock, cond) = &*gate.state;
    drop(cond.wait_while(lock.lock().unwrap(), |s| !s.0).unwrap());
    // The writer is stuck writing "one": lines gather, up to the bound.
    let dropped = DROPPED.get();
    let big = [vec![b'x'; MAX_PENDING - 1], vec![b'\n']].concat();
    appender.append(&big, false);
    appender.append(b"too many\n", false);
    appender.append(&big, false);
    assert_eq!(
        DROPPED.get() - dropped,
        2,
        "two lines past 4 MiB pending are dropped"
    );
    appender.append(b"urgent\n", true);
    lock.lock().unwrap().1 = true;
    cond.notify_all();
    while !super::lock(&appender.pending).is_empty() {
        std::thread::yield_now();
    }
    // Not urgent, not due for 50 ms: stopping the writer writes it.
    appender.append(b"late\n", false);
    drop(guard);
    appender.append(b"after\n", false);
    let text = gate.out.text();
    assert_eq!(text.len(), 4 + MAX_PENDING + 7 + 5 + 6);
    assert!(text.starts_with("one\nxxx"));
    assert!(
        text.ends_with("x\nurgent\nlate\nafter\n"),
        "warnings are never dropped, and lines after the stop are written by their caller"
    );
}

#[test]
fn lines_from_many_threads_arrive_whole() {
    let sink = Captured::default();
    let guard = Appender::start(Style::Json, Box::new(sink.clone()));
    let appender = guard.appender;
    std::thread::scope(|s| {
        for t in 0..4 {
            s.spawn(move || {
                for i in 0..2_000 {
                    appender.append(format!("thread {t} line {i}\n").as_bytes(), false);
                }
            });
        }
    });
    drop(guard);
    let text = sink.text();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 8_000);
    for t in 0..4 {
        let mine: Vec<&str> = lines
            .iter()
            .copied()
            .filter(|l| l.starts_with(&format!("thread {t} ")))
            .collect();
        let expected: Vec<String> = (0..2_000).map(|i| format!("thread {t} line {i}")).collect();
        assert_eq!(mine, expected, "thread {t}'s lines in order");
    }
}
