//! The access-log writer against tracing's own formatter, and under threads and a stuck stderr.
use super::*;
use std::sync::Arc;
use std::time::UNIX_EPOCH;

/// A sink the test can read back.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Captured {
        self.clone()
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

fn lines() -> Vec<AccessLine<'static>> {
    let plain = AccessLine {
        request_id: "5b30a77f-cfff-4e17-b36e-db66974227fc",
        client: Some("127.0.0.1"),
        client_request_id: None,
        method: "GET",
        path: "/echo/x",
        route: "echo",
        status: 200,
        duration_us: 49,
        upstream_us: None,
        bytes_out: Some(477),
    };
    let hostile = AccessLine {
        client_request_id: Some("id \"quoted\" \\ back"),
        path: "/a\u{1b}[31m\n\t\u{7f}\u{85}é\u{0}",
        route: "-",
        status: 502,
        upstream_us: Some(1_234_567),
        bytes_out: None,
        ..plain
    };
    let bare = AccessLine {
        client: None,
        method: "PROPFIND",
        status: 404,
        duration_us: 0,
        bytes_out: None,
        ..plain
    };
    vec![plain, hostile, bare]
}

/// What tracing-subscriber itself writes for `line` in `style` (the old access log).
fn by_tracing(style: Style, line: &AccessLine<'_>) -> String {
    let out = Captured::default();
    let builder = tracing_subscriber::fmt().with_writer(out.clone());
    match style {
        Style::Json => {
            tracing::subscriber::with_default(builder.json().flatten_event(true).finish(), || {
                fallback(line)
            })
        }
        Style::Text { ansi } => {
            tracing::subscriber::with_default(builder.with_ansi(ansi).finish(), || fallback(line))
        }
    }
    out.text()
}

/// `text` with its timestamp cut out (the two were written at different times).
fn untimed(style: Style, text: &str) -> String {
    match style {
        Style::Json => {
            let start = text.find("\"timestamp\":\"").unwrap() + 13;
            let end = start + text[start..].find('"').unwrap();
            format!("{}{}", &text[..start], &text[end..])
        }
        Style::Text { .. } => text.split_once(' ').unwrap().1.to_owned(),
    }
}

#[test]
fn a_line_is_byte_for_byte_what_tracing_writes() {
    let styles = [
        Style::Json,
        Style::Text { ansi: false },
        Style::Text { ansi: true },
    ];
    for style in styles {
        for line in lines() {
            let mut ours = Vec::new();
            line.write(style, SystemTime::now(), &mut Stamp::default(), &mut ours);
            let ours = String::from_utf8(ours).unwrap();
            let theirs = by_tracing(style, &line);
            assert_eq!(untimed(style, &ours), untimed(style, &theirs), "{style:?}");
            if style == Style::Json {
                let parsed: serde_json::Value = serde_json::from_str(&ours).unwrap();
                assert_eq!(parsed["path"], line.path);
            }
        }
    }
}

#[test]
fn the_timestamp_is_rfc3339_with_microseconds_across_second_boundaries() {
    let mut stamp = Stamp::default();
    let base = UNIX_EPOCH + Duration::from_secs(1_796_518_799);
    for offset_us in [
        0,
        1,
        999_999,
        1_000_000,
        1_000_001,
        61_500_000,
        86_400_000_007,
    ] {
        let at = base + Duration::from_micros(offset_us);
        let mut ours = Vec::new();
        stamp.write(at, &mut ours);
        let expected = humantime::format_rfc3339_micros(at).to_string();
        assert_eq!(String::from_utf8(ours).unwrap(), expected);
    }
}

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
