//! `[admin]`: the read-only console on the admin listener, as written and validated.

use std::net::SocketAddr;

use serde::Deserialize;

use super::error::{ConfigError, invalid};
use super::values::{Secret, SecretText};

/// Most refusals the console keeps (`[admin] recent_refusals`).
pub const MAX_RECENT_REFUSALS: usize = 10_000;

/// `[admin]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    /// Serve the read-only console at `/console` on the admin listener. Default false.
    #[serde(default)]
    pub console: bool,
    /// The admin credential: the console asks for it (HTTP Basic, any user name) when set;
    /// required when the console is on and `admin_listen` is not loopback. Usually
    /// `"${TOLLGATE_ADMIN_TOKEN}"`, at least 16 characters. Default: none.
    pub token: Option<SecretText>,
    /// How many recent refusals the console shows. Default 100 (at most 10000).
    #[serde(default = "default_recent_refusals")]
    pub recent_refusals: usize,
    /// Host names (port optional) the console answers besides the admin listener's own
    /// address and `localhost`, e.g. `["admin.internal"]`: any other `Host` or `Origin` is
    /// refused, so a web page cannot reach the console through DNS rebinding. Default: none.
    #[serde(default)]
    pub hosts: Vec<String>,
}

impl Default for RawAdmin {
    fn default() -> Self {
        Self {
            console: false,
            token: None,
            recent_refusals: default_recent_refusals(),
            hosts: Vec::new(),
        }
    }
}

fn default_recent_refusals() -> usize {
    100
}

/// The admin console (`[admin]`).
#[derive(Debug, Clone, Default)]
pub struct ConsoleConfig {
    /// Whether `/console` is served.
    pub enabled: bool,
    /// The admin credential, when one is required.
    pub token: Option<Secret>,
    /// How many recent refusals are kept (0 while the console is off).
    pub recent_refusals: usize,
    /// Host names the console answers besides its listener's address and `localhost`
    /// (lowercase, without port).
    pub hosts: Vec<String>,
}

/// Checks `[admin]`: the console needs the admin listener, and a token when that listener is
/// reachable from other machines.
pub(super) fn validate_console(
    raw: &RawAdmin,
    admin_listen: Option<SocketAddr>,
    file: &str,
) -> Result<ConsoleConfig, ConfigError> {
    if raw.recent_refusals > MAX_RECENT_REFUSALS {
        return Err(invalid(
            file,
            "admin.recent_refusals",
            format!("at most {MAX_RECENT_REFUSALS}"),
        ));
    }
    let token = raw
        .token
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty());
    if let Some(token) = token
        && token.len() < 16
    {
        return Err(invalid(
            file,
            "admin.token",
            "at least 16 characters (e.g. `openssl rand -base64 24`)",
        ));
    }
    if raw.console && admin_listen.is_none() {
        return Err(invalid(
            file,
            "admin.console",
            "the console is served on the admin listener, and server.admin_listen is off",
        ));
    }
    if raw.console && token.is_none() && admin_listen.is_some_and(|a| !a.ip().is_loopback()) {
        return Err(invalid(
            file,
            "admin.token",
            "required when the console is on and server.admin_listen is not loopback",
        ));
    }
    Ok(ConsoleConfig {
        enabled: raw.console,
        token: token.map(|t| Secret::new(t.as_bytes().to_vec())),
        recent_refusals: if raw.console { raw.recent_refusals } else { 0 },
        hosts: raw
            .hosts
            .iter()
            .map(|h| h.trim_end_matches('.').to_ascii_lowercase())
            .collect(),
    })
}
