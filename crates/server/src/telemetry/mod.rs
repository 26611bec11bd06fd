//! Logging setup: human-readable or JSON lines, filtered like `RUST_LOG`, written to stderr by
//! one writer thread (see [`writer`]).

pub mod events;
mod line;
#[cfg(test)]
mod test_support;
pub mod writer;

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use tollgate_config::{LogConfig, LogFormat};

pub use events::{AccessLine, AuditLine};
pub use line::Style;
pub use writer::LogGuard;

/// Installs the global subscriber and the log writer; `RUST_LOG` overrides the configured level.
/// Keep the guard until the process ends: dropping it writes what is pending.
pub fn init(log: &LogConfig) -> Option<LogGuard> {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&log.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only for a person at a terminal: a log collector would store the escape codes.
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(writer::LogWriter);
    // The access and audit lines are written in the same style as tracing's own events.
    let (style, result) = match log.format {
        LogFormat::Json => (Style::Json, builder.json().flatten_event(true).try_init()),
        LogFormat::Text => (Style::Text { ansi }, builder.try_init()),
    };
    // A subscriber already installed (tests, embedding) is kept, and so is its writer.
    result
        .ok()
        .map(|()| writer::install(style, Box::new(std::io::stderr())))
}
