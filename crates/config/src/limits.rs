//! `[limits]`: connection and request limits, as written, validated, and the check between.

use std::time::Duration;

use serde::Deserialize;

use super::error::{ConfigError, invalid, positive};
use super::values::HumanDuration;

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
    /// Longest request target (path and query) in bytes; longer ones get 414. Default 8192.
    #[serde(default = "default_max_uri_bytes")]
    pub max_uri_bytes: usize,
    /// A client must send its whole request head within this time. Default `"10s"`.
    #[serde(default = "default_header_read_timeout")]
    pub header_read_timeout: HumanDuration,
    /// A client that sends nothing for this long in the middle of its request body gets 408
    /// and its buffer is freed. Default `"15s"`.
    #[serde(default = "default_body_read_timeout")]
    pub body_read_timeout: HumanDuration,
    /// An HTTP/2 connection with no stream opened or open for this long gets GOAWAY and is
    /// closed (checked every second); also the HTTP/2 ping interval. (HTTP/1 idle connections close after `header_read_timeout`.) Default
    /// `"60s"`.
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout: HumanDuration,
    /// Any connection older than this is drained (checked every second): GOAWAY (HTTP/2) or
    /// `Connection: close` on its response in flight (HTTP/1); requests in flight finish.
    /// Default `"1h"`.
    #[serde(default = "default_max_connection_age")]
    pub max_connection_age: HumanDuration,
    /// Most streams at once on one HTTP/2 connection. Default 100.
    #[serde(default = "default_max_concurrent_streams")]
    pub max_concurrent_streams: u32,
    /// Most client connections open at once; further clients wait in the accept queue.
    /// Default 10000.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Most connections open at once from one client address; more are closed on accept.
    /// Peers in `server.trusted_proxies` are exempt. Default 256.
    #[serde(default = "default_max_connections_per_ip")]
    pub max_connections_per_ip: usize,
    /// Default largest request body in bytes for routes that set none. Default 10 MiB.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: u64,
    /// Default time to wait for an upstream's response head. Default `"30s"`.
    #[serde(default = "default_upstream_timeout")]
    pub upstream_timeout: HumanDuration,
    /// Time to wait for a TCP connection to a plain-HTTP upstream, apart from the response
    /// timeout; a refused or timed-out connect is tried once more for an idempotent request.
    /// Default `"3s"`.
    #[serde(default = "default_upstream_connect_timeout")]
    pub upstream_connect_timeout: HumanDuration,
    /// Most requests in flight to one upstream (host and port); more get 503 at once.
    /// Default 1024 (Envoy's circuit-breaker default).
    #[serde(default = "default_upstream_max")]
    pub upstream_max_requests: usize,
    /// Most connections open to one plain-HTTP upstream, idle ones included; a request that
    /// would need another gets 503 at once. Default 1024.
    #[serde(default = "default_upstream_max")]
    pub upstream_max_connections: usize,
    /// Most rate-limit keys (caller × limit) one gateway remembers; beyond it the most rested
    /// are forgotten first, so callers minting new identities cannot grow memory without
    /// bound (about 40 bytes each). Default 100000.
    #[serde(default = "default_rate_limit_keys")]
    pub rate_limit_keys: usize,
}

fn default_rate_limit_keys() -> usize {
    100_000
}

impl Default for RawLimits {
    fn default() -> Self {
        Self {
            max_header_bytes: default_max_header_bytes(),
            max_headers: default_max_headers(),
            max_uri_bytes: default_max_uri_bytes(),
            header_read_timeout: default_header_read_timeout(),
            body_read_timeout: default_body_read_timeout(),
            idle_timeout: default_idle_timeout(),
            max_connection_age: default_max_connection_age(),
            max_concurrent_streams: default_max_concurrent_streams(),
            max_connections_per_ip: default_max_connections_per_ip(),
            max_connections: default_max_connections(),
            max_body_bytes: default_max_body_bytes(),
            upstream_timeout: default_upstream_timeout(),
            upstream_connect_timeout: default_upstream_connect_timeout(),
            upstream_max_requests: default_upstream_max(),
            upstream_max_connections: default_upstream_max(),
            rate_limit_keys: default_rate_limit_keys(),
        }
    }
}

fn default_max_header_bytes() -> usize {
    16 * 1024
}
fn default_max_headers() -> usize {
    100
}
fn default_max_uri_bytes() -> usize {
    8192
}
fn default_header_read_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(10))
}
fn default_body_read_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(15))
}
fn default_idle_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(60))
}
fn default_max_connection_age() -> HumanDuration {
    HumanDuration(Duration::from_secs(3600))
}
fn default_max_concurrent_streams() -> u32 {
    100
}
fn default_max_connections_per_ip() -> usize {
    256
}
fn default_max_connections() -> usize {
    10_000
}
fn default_max_body_bytes() -> u64 {
    10 * 1024 * 1024
}
fn default_upstream_max() -> usize {
    1024
}
fn default_upstream_connect_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(3))
}
fn default_upstream_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(30))
}

/// Connection and request limits.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request head in bytes.
    pub max_header_bytes: usize,
    /// Most request headers.
    pub max_headers: usize,
    /// Longest request target.
    pub max_uri_bytes: usize,
    /// Deadline for a whole request head.
    pub header_read_timeout: Duration,
    /// Longest silence in the middle of a client's request body.
    pub body_read_timeout: Duration,
    /// How long an HTTP/2 connection may go without a stream (also its ping interval).
    pub idle_timeout: Duration,
    /// Connections older than this are drained.
    pub max_connection_age: Duration,
    /// Most concurrent streams per HTTP/2 connection.
    pub max_concurrent_streams: u32,
    /// Most connections from one client address (trusted proxies exempt).
    pub max_connections_per_ip: usize,
    /// Most concurrent client connections.
    pub max_connections: usize,
    /// Most requests in flight per upstream.
    pub upstream_max_requests: usize,
    /// Most connections per plain-HTTP upstream.
    pub upstream_max_connections: usize,
    /// Longest wait for a TCP connection to a plain-HTTP upstream.
    pub upstream_connect_timeout: Duration,
    /// Most rate-limit keys remembered.
    pub rate_limit_keys: usize,
}

/// Hyper refuses smaller read buffers.
const MIN_HEADER_BYTES: usize = 8192;

/// Checks `[limits]` and, with its other counts, `server.admin_max_connections`: a header
/// buffer hyper accepts, and no count of 0, which would refuse everything.
pub(super) fn validate_limits(
    l: &RawLimits,
    admin_max_connections: usize,
    file: &str,
) -> Result<Limits, ConfigError> {
    if l.max_header_bytes < MIN_HEADER_BYTES {
        return Err(invalid(
            file,
            "limits.max_header_bytes",
            format!("must be at least {MIN_HEADER_BYTES}"),
        ));
    }
    for (key, value) in [
        ("limits.max_headers", l.max_headers),
        ("limits.max_connections", l.max_connections),
        ("server.admin_max_connections", admin_max_connections),
        ("limits.upstream_max_requests", l.upstream_max_requests),
        (
            "limits.upstream_max_connections",
            l.upstream_max_connections,
        ),
        ("limits.rate_limit_keys", l.rate_limit_keys),
    ] {
        if value == 0 {
            return Err(invalid(file, key, "must be greater than 0"));
        }
    }
    Ok(Limits {
        max_header_bytes: l.max_header_bytes,
        max_headers: l.max_headers,
        max_uri_bytes: l.max_uri_bytes,
        header_read_timeout: l.header_read_timeout.0,
        body_read_timeout: l.body_read_timeout.0,
        idle_timeout: l.idle_timeout.0,
        max_connection_age: l.max_connection_age.0,
        max_concurrent_streams: l.max_concurrent_streams,
        max_connections_per_ip: l.max_connections_per_ip,
        max_connections: l.max_connections,
        upstream_max_requests: l.upstream_max_requests,
        upstream_max_connections: l.upstream_max_connections,
        rate_limit_keys: l.rate_limit_keys,
        upstream_connect_timeout: positive(
            file,
            "limits.upstream_connect_timeout",
            l.upstream_connect_timeout.0,
        )?,
    })
}
