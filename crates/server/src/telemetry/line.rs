//! A log line written by hand into a reused buffer, in exactly the shape tracing's formatter
//! gives an `info!` event with the same fields: the same keys in the same order, the same
//! escaping, the same timestamp. tracing's field visitors, `dyn Debug` formatting and per-event
//! JSON map cost about 45,000 instructions a request for the access line alone; this costs a
//! few thousand.

use std::time::{SystemTime, UNIX_EPOCH};

/// How tracing would have recorded a field, which decides how it is written.
#[derive(Debug, Clone, Copy)]
pub enum Value<'a> {
    /// A `&str` field: quoted and escaped in text (tracing writes it with `Debug`).
    Str(&'a str),
    /// A `%value` field: written as it is in text.
    Display(&'a str),
    /// An integer.
    Number(u64),
}

/// One log line: its target and its fields in order. A `None` field is left out, as tracing
/// leaves out a `None`.
#[derive(Debug, Clone, Copy)]
pub struct Line<'a> {
    /// The `target` tracing would have given it (`access`, `audit`).
    pub target: &'static str,
    /// The fields, named as tracing names them.
    pub fields: &'a [(&'static str, Option<Value<'a>>)],
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

impl Line<'_> {
    /// Appends this line, newline included, in `style`.
    pub fn write(&self, style: Style, now: SystemTime, stamp: &mut Stamp, out: &mut Vec<u8>) {
        match style {
            Style::Json => self.write_json(now, stamp, out),
            Style::Text { ansi } => self.write_text(ansi, now, stamp, out),
        }
        out.push(b'\n');
    }

    fn present(&self) -> impl Iterator<Item = (&'static str, Value<'_>)> {
        self.fields
            .iter()
            .filter_map(|(name, value)| value.map(|v| (*name, v)))
    }

    fn write_json(&self, now: SystemTime, stamp: &mut Stamp, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"timestamp\":\"");
        stamp.write(now, out);
        out.extend_from_slice(b"\",\"level\":\"INFO\"");
        let mut json = Json { out };
        for (name, value) in self.present() {
            match value {
                Value::Str(s) | Value::Display(s) => json.string(name, s),
                Value::Number(n) => json.number(name, n),
            }
        }
        json.string("target", self.target);
        out.push(b'}');
    }

    fn write_text(&self, ansi: bool, now: SystemTime, stamp: &mut Stamp, out: &mut Vec<u8>) {
        let mut text = Text { out, ansi };
        text.paint(DIM, |out| stamp.write(now, out));
        text.out.push(b' ');
        text.paint(GREEN, |out| out.extend_from_slice(b" INFO"));
        text.out.push(b' ');
        text.paint(DIM, |out| out.extend_from_slice(self.target.as_bytes()));
        text.paint(DIM, |out| out.push(b':'));
        for (name, value) in self.present() {
            match value {
                Value::Str(s) => text.quoted(name, s),
                Value::Display(s) => text.field(name, |out| out.extend_from_slice(s.as_bytes())),
                Value::Number(n) => text.number(name, n),
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

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
}
