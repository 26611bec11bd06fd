//! One access-log line, written by hand into a reused buffer in exactly the shape the `tracing`
//! formatter gives an `info!(target: "access", ...)` event: the same keys in the same order, the
//! same escaping, the same timestamp. tracing's field visitors, `dyn Debug` formatting and
//! per-event JSON map cost about 45,000 instructions a request; this costs a few thousand.

use std::time::{SystemTime, UNIX_EPOCH};

/// One request's access-log fields, in the order they are written.
#[derive(Debug, Clone, Copy)]
pub struct AccessLine<'a> {
    /// The gateway's request id.
    pub request_id: &'a str,
    /// The client's address (the forwarded one when the peer is a trusted proxy).
    pub client: Option<&'a str>,
    /// The request id the client sent, kept apart from the gateway's own.
    pub client_request_id: Option<&'a str>,
    /// The request method.
    pub method: &'a str,
    /// The normalised path, or `-`.
    pub path: &'a str,
    /// The route's name, or `-`.
    pub route: &'a str,
    /// The status answered.
    pub status: u16,
    /// From the request's arrival to its response head.
    pub duration_us: u64,
    /// How long the upstream took, when it was asked.
    pub upstream_us: Option<u64>,
    /// The response body's size, when known.
    pub bytes_out: Option<u64>,
}

/// How lines look: tracing-subscriber's JSON (flattened) or its text format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// `{"timestamp":...,"level":"INFO",<fields>,"target":"access"}`.
    Json,
    /// `<timestamp>  INFO access: key=value ...`, coloured like tracing's when `ansi`.
    Text {
        /// Whether to paint it with tracing's escape codes.
        ansi: bool,
    },
}

/// The timestamp's text up to the second, cached: it changes once a second, lines come far
/// more often.
#[derive(Debug, Default)]
pub struct Stamp {
    second: u64,
    /// `YYYY-MM-DDTHH:MM:SS.` for `second`, or empty before the first line.
    prefix: String,
}

impl Stamp {
    /// Appends `now` as tracing writes it: RFC 3339, UTC, microseconds, `Z`.
    pub fn write(&mut self, now: SystemTime, out: &mut Vec<u8>) {
        let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
        if self.prefix.is_empty() || since.as_secs() != self.second {
            let whole = UNIX_EPOCH + std::time::Duration::from_secs(since.as_secs());
            let text = humantime::format_rfc3339_seconds(whole).to_string();
            self.prefix.clear();
            self.prefix.push_str(text.trim_end_matches('Z'));
            self.prefix.push('.');
            self.second = since.as_secs();
        }
        out.extend_from_slice(self.prefix.as_bytes());
        let micros = since.subsec_micros();
        let mut digits = [b'0'; 6];
        let mut rest = micros;
        for d in digits.iter_mut().rev() {
            *d = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
        out.extend_from_slice(&digits);
        out.push(b'Z');
    }
}

impl AccessLine<'_> {
    /// Appends this line, newline included, in `style`.
    pub fn write(&self, style: Style, now: SystemTime, stamp: &mut Stamp, out: &mut Vec<u8>) {
        match style {
            Style::Json => self.write_json(now, stamp, out),
            Style::Text { ansi } => self.write_text(ansi, now, stamp, out),
        }
        out.push(b'\n');
    }

    fn write_json(&self, now: SystemTime, stamp: &mut Stamp, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"timestamp\":\"");
        stamp.write(now, out);
        out.extend_from_slice(b"\",\"level\":\"INFO\"");
        let mut json = Json { out };
        json.string("request_id", self.request_id);
        if let Some(client) = self.client {
            json.string("client", client);
        }
        if let Some(id) = self.client_request_id {
            json.string("client_request_id", id);
        }
        json.string("method", self.method);
        json.string("path", self.path);
        json.string("route", self.route);
        json.number("status", u64::from(self.status));
        json.number("duration_us", self.duration_us);
        if let Some(us) = self.upstream_us {
            json.number("upstream_us", us);
        }
        if let Some(bytes) = self.bytes_out {
            json.number("bytes_out", bytes);
        }
        out.extend_from_slice(b",\"target\":\"access\"}");
    }

    fn write_text(&self, ansi: bool, now: SystemTime, stamp: &mut Stamp, out: &mut Vec<u8>) {
        let mut text = Text { out, ansi };
        text.paint(DIM, |out| stamp.write(now, out));
        text.out.push(b' ');
        text.paint(GREEN, |out| out.extend_from_slice(b" INFO"));
        text.out.push(b' ');
        text.paint(DIM, |out| out.extend_from_slice(b"access"));
        text.paint(DIM, |out| out.push(b':'));
        text.quoted("request_id", self.request_id);
        if let Some(client) = self.client {
            // tracing writes this one with Display: no quotes, no escapes.
            text.field("client", |out| out.extend_from_slice(client.as_bytes()));
        }
        if let Some(id) = self.client_request_id {
            text.quoted("client_request_id", id);
        }
        text.field("method", |out| {
            out.extend_from_slice(self.method.as_bytes())
        });
        text.quoted("path", self.path);
        text.quoted("route", self.route);
        text.number("status", u64::from(self.status));
        text.number("duration_us", self.duration_us);
        if let Some(us) = self.upstream_us {
            text.number("upstream_us", us);
        }
        if let Some(bytes) = self.bytes_out {
            text.number("bytes_out", bytes);
        }
    }
}

/// Whether `s` needs no escaping in a JSON string nor in Rust's `Debug` for `str`: printable
/// ASCII other than `"` and `\` (the common case: paths are percent-encoded, ids are tokens).
fn plain(s: &str) -> bool {
    s.bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
}

struct Json<'a> {
    out: &'a mut Vec<u8>,
}

impl Json<'_> {
    fn key(&mut self, key: &str) {
        self.out.extend_from_slice(b",\"");
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
    }

    fn string(&mut self, key: &str, value: &str) {
        self.key(key);
        if plain(value) {
            self.out.push(b'"');
            self.out.extend_from_slice(value.as_bytes());
            self.out.push(b'"');
        } else {
            // serde_json is what tracing's JSON formatter escapes with.
            let _ = serde_json::to_writer(&mut *self.out, value);
        }
    }

    fn number(&mut self, key: &str, value: u64) {
        self.key(key);
        self.out
            .extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
    }
}

const DIM: &[u8] = b"\x1b[2m";
const GREEN: &[u8] = b"\x1b[32m";
const ITALIC: &[u8] = b"\x1b[3m";
const RESET: &[u8] = b"\x1b[0m";

struct Text<'a> {
    out: &'a mut Vec<u8>,
    ansi: bool,
}

impl Text<'_> {
    /// Writes what `write` appends, between `style` and a reset when colouring.
    fn paint(&mut self, style: &[u8], write: impl FnOnce(&mut Vec<u8>)) {
        if self.ansi {
            self.out.extend_from_slice(style);
        }
        write(self.out);
        if self.ansi {
            self.out.extend_from_slice(RESET);
        }
    }

    /// ` key=value`, the key italic and the `=` dimmed when colouring.
    fn field(&mut self, key: &str, value: impl FnOnce(&mut Vec<u8>)) {
        self.out.push(b' ');
        self.paint(ITALIC, |out| out.extend_from_slice(key.as_bytes()));
        self.paint(DIM, |out| out.push(b'='));
        value(self.out);
    }

    /// A string field as tracing writes a `&str`: with `Debug`, so quoted and escaped.
    fn quoted(&mut self, key: &str, value: &str) {
        self.field(key, |out| {
            if plain(value) {
                out.push(b'"');
                out.extend_from_slice(value.as_bytes());
                out.push(b'"');
            } else {
                use std::io::Write;
                let _ = write!(out, "{value:?}");
            }
        });
    }

    fn number(&mut self, key: &str, value: u64) {
        self.field(key, |out| {
            out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
        });
    }
}
