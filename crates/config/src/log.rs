//! `[log]`: the log format and filter, as written and validated.

use serde::Deserialize;

use super::env::Env;
use super::error::{ConfigError, invalid};

/// `[log]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLog {
    /// `"text"` (default) or `"json"`; the `TOLLGATE_LOG_FORMAT` variable overrides it.
    #[serde(default = "default_log_format")]
    pub format: String,
    /// A `RUST_LOG`-style filter. Default `"info"`; `RUST_LOG` overrides it.
    #[serde(default = "default_log_level")]
    pub level: String,
}

impl Default for RawLog {
    fn default() -> Self {
        Self {
            format: default_log_format(),
            level: default_log_level(),
        }
    }
}

fn default_log_format() -> String {
    "text".to_owned()
}
fn default_log_level() -> String {
    "info".to_owned()
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Logging settings.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// Output format.
    pub format: LogFormat,
    /// `RUST_LOG`-style filter.
    pub level: String,
}

/// Checks `[log]`; `TOLLGATE_LOG_FORMAT` overrides the file's format.
pub(super) fn validate_log(raw: &RawLog, env: &Env, file: &str) -> Result<LogConfig, ConfigError> {
    let format = match env
        .get("TOLLGATE_LOG_FORMAT")
        .unwrap_or_else(|| raw.format.clone())
        .as_str()
    {
        "text" => LogFormat::Text,
        "json" => LogFormat::Json,
        other => {
            return Err(invalid(
                file,
                "log.format",
                format!("expected \"text\" or \"json\", got {other:?}"),
            ));
        }
    };
    Ok(LogConfig {
        format,
        level: raw.level.clone(),
    })
}
