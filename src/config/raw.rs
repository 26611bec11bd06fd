//! The config file as written: a serde mirror of `tollgate.toml`, before validation.
//!
//! Every struct denies unknown fields so that a typo never silently turns a check off.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// A duration written as a humantime string: `"250ms"`, `"30s"`, `"15m"`, `"12h"`, `"365d"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        humantime::parse_duration(&text)
            .map(HumanDuration)
            .map_err(|e| serde::de::Error::custom(format!("invalid duration {text:?}: {e}")))
    }
}

/// Parses a humantime duration (`30s`, `15m`, `365d`).
pub fn parse_duration(text: &str) -> Result<Duration, humantime::DurationError> {
    humantime::parse_duration(text)
}

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Listeners and shutdown.
    #[serde(default)]
    pub server: RawServer,
    /// Connection and request limits.
    #[serde(default)]
    pub limits: RawLimits,
    /// Logging.
    #[serde(default)]
    pub log: RawLog,
    /// Routes, matched by host and longest path prefix.
    #[serde(default)]
    pub routes: Vec<RawRoute>,
}

/// `[server]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    /// Data listeners. Default `["127.0.0.1:8080"]`.
    #[serde(default = "default_listen")]
    pub listen: Vec<String>,
    /// Admin listener (health, readiness). Default `"127.0.0.1:9901"`; `""` disables it.
    #[serde(default = "default_admin_listen")]
    pub admin_listen: String,
    /// How long requests in flight may run after SIGTERM. Default `"30s"`.
    #[serde(default = "default_drain_timeout")]
    pub drain_timeout: HumanDuration,
}

impl Default for RawServer {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            admin_listen: default_admin_listen(),
            drain_timeout: default_drain_timeout(),
        }
    }
}

fn default_listen() -> Vec<String> {
    vec!["127.0.0.1:8080".to_owned()]
}
fn default_admin_listen() -> String {
    "127.0.0.1:9901".to_owned()
}
fn default_drain_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(30))
}

/// `[limits]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    /// Largest request head (request line plus headers) in bytes. Default 16384, minimum 8192.
    #[serde(default = "default_max_header_bytes")]
    pub max_header_bytes: usize,
    /// Most request headers. Default 100.
    #[serde(default = "default_max_headers")]
    pub max_headers: usize,
    /// A client must send its whole request head within this time. Default `"10s"`.
    #[serde(default = "default_header_read_timeout")]
    pub header_read_timeout: HumanDuration,
    /// A connection with no request in flight is closed after this long. Default `"60s"`.
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout: HumanDuration,
    /// Most client connections open at once; further clients wait in the accept queue.
    /// Default 10000.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Default largest request body in bytes for routes that set none. Default 10 MiB.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: u64,
    /// Default time to wait for an upstream's response head. Default `"30s"`.
    #[serde(default = "default_upstream_timeout")]
    pub upstream_timeout: HumanDuration,
}

impl Default for RawLimits {
    fn default() -> Self {
        Self {
            max_header_bytes: default_max_header_bytes(),
            max_headers: default_max_headers(),
            header_read_timeout: default_header_read_timeout(),
            idle_timeout: default_idle_timeout(),
            max_connections: default_max_connections(),
            max_body_bytes: default_max_body_bytes(),
            upstream_timeout: default_upstream_timeout(),
        }
    }
}

fn default_max_header_bytes() -> usize {
    16 * 1024
}
fn default_max_headers() -> usize {
    100
}
fn default_header_read_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(10))
}
fn default_idle_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(60))
}
fn default_max_connections() -> usize {
    10_000
}
fn default_max_body_bytes() -> u64 {
    10 * 1024 * 1024
}
fn default_upstream_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(30))
}

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

/// `[[routes]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    /// Name used in logs and metrics. Default: the prefix.
    pub name: Option<String>,
    /// Path prefix, segment-aware: `/api` matches `/api` and `/api/x`, not `/apix`.
    pub prefix: String,
    /// Only requests for this host (port ignored, any letter case). Default: any host.
    pub host: Option<String>,
    /// `http://` or `https://` URL (its path is prepended), or `echo` for the built-in echo.
    pub upstream: String,
    /// Remove the prefix before forwarding. Default false.
    #[serde(default)]
    pub strip_prefix: bool,
    /// Replace the prefix with this path before forwarding. Default: none.
    pub rewrite: Option<String>,
    /// Time to wait for the upstream's response head. Default: `limits.upstream_timeout`.
    pub timeout: Option<HumanDuration>,
    /// Largest request body in bytes. Default: `limits.max_body_bytes`.
    pub max_body_bytes: Option<u64>,
    /// Forward the client's `Host` instead of the upstream's authority. Default false.
    #[serde(default)]
    pub preserve_host: bool,
}
