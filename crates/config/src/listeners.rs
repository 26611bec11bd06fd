//! `[server]` as written, and the validation of its addresses: the data and TLS listeners, the
//! admin listener and the trusted proxies.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

use super::tls::TlsConfig;
use super::values::HumanDuration;
use super::{ConfigError, invalid};

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
    /// Peers (CIDR networks or addresses) whose `X-Forwarded-*` and `x-request-id` headers are
    /// believed. Default: none; every client's proxy headers are removed.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// Most admin connections open at once; further ones wait in the accept queue. Default 64.
    #[serde(default = "default_admin_max_connections")]
    pub admin_max_connections: usize,
    /// An admin connection is closed this long after it was accepted, whatever it is doing
    /// (probes and scrapes take milliseconds). Default `"30s"`.
    #[serde(default = "default_admin_connection_timeout")]
    pub admin_connection_timeout: HumanDuration,
    /// TLS listeners and their certificates. Default: none.
    #[serde(default)]
    pub tls: super::tls::RawTls,
}

fn default_admin_max_connections() -> usize {
    64
}
fn default_admin_connection_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(30))
}

impl Default for RawServer {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            admin_listen: default_admin_listen(),
            drain_timeout: default_drain_timeout(),
            trusted_proxies: Vec::new(),
            admin_max_connections: default_admin_max_connections(),
            admin_connection_timeout: default_admin_connection_timeout(),
            tls: super::tls::RawTls::default(),
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

/// Limits of the admin listener: tight, since it serves only probes and scrapes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminLimits {
    /// Most admin connections at once.
    pub max_connections: usize,
    /// Longest life of one admin connection.
    pub connection_timeout: Duration,
}

/// The admin listener's limits, as `[server]` sets them (checked with `[limits]`).
pub(super) fn admin_limits(server: &RawServer) -> AdminLimits {
    AdminLimits {
        max_connections: server.admin_max_connections,
        connection_timeout: server.admin_connection_timeout.0,
    }
}

/// Checks `server.listen` and `[server.tls]`: at least one listener, plain or TLS.
pub(super) fn validate_listeners(
    server: &RawServer,
    file: &str,
) -> Result<(Vec<SocketAddr>, Option<TlsConfig>), ConfigError> {
    let listen = server
        .listen
        .iter()
        .enumerate()
        .map(|(i, addr)| {
            parse_addr(addr).map_err(|e| invalid(file, &format!("server.listen[{i}]"), e))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let tls = super::tls::validate(&server.tls).map_err(|e| e.in_file(file))?;
    if listen.is_empty() && tls.is_none() {
        return Err(invalid(
            file,
            "server.listen",
            "at least one address is required (here or in server.tls.listen)",
        ));
    }
    Ok((listen, tls))
}

/// Checks `server.admin_listen`; `""` turns the admin listener off.
pub(super) fn validate_admin_listen(
    server: &RawServer,
    file: &str,
) -> Result<Option<SocketAddr>, ConfigError> {
    match server.admin_listen.trim() {
        "" => Ok(None),
        addr => Ok(Some(
            parse_addr(addr).map_err(|e| invalid(file, "server.admin_listen", e))?,
        )),
    }
}

/// The admin address the config file `text` names in `server.admin_listen`, with only that value
/// interpolated, so that a health probe needs none of the variables other sections use (secrets
/// a probe never sees); `None` when the file turns the admin listener off.
pub fn admin_address(
    text: &str,
    file: &str,
    env: &super::Env,
) -> Result<Option<SocketAddr>, ConfigError> {
    let table = super::error::parse_table(text, file)?;
    let key = "server.admin_listen";
    let written = match table.get("server").and_then(|s| s.get("admin_listen")) {
        None => default_admin_listen(),
        Some(toml::Value::String(value)) => value.clone(),
        Some(_) => return Err(invalid(file, key, "expected a string")),
    };
    let value = super::env::interpolate(&written, env).map_err(|e| invalid(file, key, e))?;
    match value.trim() {
        "" => Ok(None),
        addr => Ok(Some(parse_addr(addr).map_err(|e| invalid(file, key, e))?)),
    }
}

/// Checks `server.trusted_proxies`: networks or single addresses.
pub(super) fn validate_trusted_proxies(
    server: &RawServer,
    file: &str,
) -> Result<Vec<ipnet::IpNet>, ConfigError> {
    server
        .trusted_proxies
        .iter()
        .enumerate()
        .map(|(i, net)| {
            parse_network(net)
                .map_err(|e| invalid(file, &format!("server.trusted_proxies[{i}]"), e))
        })
        .collect()
}

/// A CIDR network (`10.0.0.0/8`, `fd00::/8`) or a single address.
fn parse_network(text: &str) -> Result<ipnet::IpNet, String> {
    let text = text.trim();
    text.parse::<ipnet::IpNet>()
        .or_else(|_| text.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map(|net| net.trunc())
        .map_err(|_| format!("{text:?} is not an IP network (a.b.c.d/n) or address"))
}

/// A socket address, `host:port`.
fn parse_addr(addr: &str) -> Result<SocketAddr, String> {
    addr.trim()
        .parse()
        .map_err(|e| format!("invalid socket address {addr:?}: {e}"))
}
