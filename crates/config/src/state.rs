//! `[state]`: where the revocation list, the token usage log and the shared vendor token live;
//! as written, validated, and the check between.

use std::time::Duration;

use serde::Deserialize;

use super::roots::TrustRoots;
use super::values::{HumanDuration, Secret, SecretText};
use super::{ConfigError, invalid};

/// `[state]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawState {
    /// `"file"` (the embedded store, one JSON file on this machine) or `"redis"` (shared by a
    /// fleet). Default `"file"`.
    #[serde(default = "default_state_backend")]
    pub backend: String,
    /// file: the file's path. Default `"tollgate-state/revocations.json"` (relative to the
    /// working directory).
    #[serde(default = "default_state_path")]
    pub path: String,
    /// redis: `redis://host:port/db`, usually `"${REDIS_URL}"`.
    pub url: Option<String>,
    /// redis: the password (`AUTH`), usually `"${REDIS_PASSWORD}"`. Default: none.
    pub password: Option<SecretText>,
    /// redis: PEM bundle of the CA that signed a `rediss://` server's certificate (instead of
    /// the system roots). Default: the system roots.
    pub ca_file: Option<String>,
    /// redis: allow plain `redis://` to a host that is not loopback (the password, the
    /// revocation list and the shared vendor token cross the network in clear). Default false.
    #[serde(default)]
    pub allow_plaintext: bool,
    /// redis: 32 bytes, base64, usually `"${TOLLGATE_STATE_KEY}"`: the shared vendor token is
    /// stored encrypted with it (AES-256-GCM). Default: stored as is.
    pub encryption_key: Option<SecretText>,
    /// redis: a file holding the encryption key (base64), e.g. a mounted Secret.
    pub encryption_key_file: Option<String>,
    /// redis: where this replica keeps a copy of the last revocation list it read, and starts
    /// from when Redis is unreachable at start-up. Default
    /// `"tollgate-state/revocations-copy-<hash of url and key_prefix>.json"`; `""` keeps none.
    pub copy_path: Option<String>,
    /// redis: refuse service tokens while no revocation list was ever read (neither from Redis
    /// nor from the copy), instead of accepting them unchecked. Default false.
    #[serde(default)]
    pub fail_closed: bool,
    /// redis: prefix of every key tollgate uses. Default `"tollgate:"`.
    #[serde(default = "default_key_prefix")]
    pub key_prefix: String,
    /// How often a gateway writes which service tokens it saw (`tollgate token usage`), and
    /// once more when it stops. Default `"10s"`.
    #[serde(default = "default_usage_flush_interval")]
    pub usage_flush_interval: HumanDuration,
    /// redis: how many replicas share the fleet's rate limits. While Redis is unreachable each
    /// replica enforces its share of every limit (rate and burst divided by this) on its own.
    /// Default 1.
    #[serde(default = "default_replicas")]
    pub replicas: u32,
    /// redis: how many requests of one caller a replica reserves from a shared limit per Redis
    /// call, then admits on its own (1: one call per request, exact). More takes the round trip
    /// off most requests; a fleet may then refuse up to `replicas × batch` early, never admit
    /// more. Capped per limit at `burst / (2 × replicas)`. Default 1.
    #[serde(default = "default_replicas")]
    pub rate_limit_batch: u32,
}

fn default_replicas() -> u32 {
    1
}

impl Default for RawState {
    fn default() -> Self {
        Self {
            backend: default_state_backend(),
            path: default_state_path(),
            url: None,
            password: None,
            ca_file: None,
            allow_plaintext: false,
            encryption_key: None,
            encryption_key_file: None,
            key_prefix: default_key_prefix(),
            copy_path: None,
            fail_closed: false,
            usage_flush_interval: default_usage_flush_interval(),
            replicas: default_replicas(),
            rate_limit_batch: default_replicas(),
        }
    }
}

fn default_usage_flush_interval() -> HumanDuration {
    HumanDuration(Duration::from_secs(10))
}

fn default_key_prefix() -> String {
    "tollgate:".to_owned()
}

fn default_state_backend() -> String {
    "file".to_owned()
}

fn default_state_path() -> String {
    "tollgate-state/revocations.json".to_owned()
}

/// The state store (`[state]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateConfig {
    /// The embedded store: one JSON file.
    File {
        /// Its path.
        path: std::path::PathBuf,
    },
    /// Redis, shared by every replica of a fleet.
    Redis {
        /// `redis://host:port/db` or `rediss://` (no credentials: those are in `password`).
        url: String,
        /// `AUTH` password.
        password: Option<Secret>,
        /// For `rediss://`: the PEM roots to trust instead of the system's.
        ca_pem: Option<String>,
        /// Key the shared vendor token is encrypted with (AES-256-GCM, 32 bytes).
        encryption_key: Option<Secret>,
        /// Prefix of every key.
        key_prefix: String,
        /// Where the last list read is copied (none: no copy).
        copy: Option<std::path::PathBuf>,
        /// Refuse service tokens while no list was ever read.
        fail_closed: bool,
        /// Replicas sharing the rate limits (each one's share while Redis is down).
        replicas: u32,
        /// Requests reserved per Redis call for one caller (1: a call per request).
        rate_limit_batch: u32,
    },
}

impl StateConfig {
    /// Where the list lives, for messages: the file's path or the Redis URL.
    pub fn describe(&self) -> String {
        match self {
            StateConfig::File { path } => path.display().to_string(),
            StateConfig::Redis {
                url, key_prefix, ..
            } => format!("{url} ({key_prefix}*)"),
        }
    }
}

/// Checks `[state]` for its backend (`file` or `redis`).
pub(super) fn validate_state(raw: &RawState, file: &str) -> Result<StateConfig, ConfigError> {
    match raw.backend.as_str() {
        "file" => file_state(raw, file),
        "redis" => redis_state(raw, file),
        other => Err(invalid(
            file,
            "state.backend",
            format!("expected \"file\" or \"redis\", got {other:?}"),
        )),
    }
}

/// Checks the embedded store's path, and that no Redis-only setting is given with it.
fn file_state(raw: &RawState, file: &str) -> Result<StateConfig, ConfigError> {
    if raw.url.is_some() || raw.password.is_some() {
        return Err(invalid(
            file,
            "state.url",
            "url and password are for backend = \"redis\"",
        ));
    }
    if raw.path.trim().is_empty() {
        return Err(invalid(file, "state.path", "must not be empty"));
    }
    Ok(StateConfig::File {
        path: raw.path.clone().into(),
    })
}

/// Checks the Redis URL, its CA bundle and the encryption key.
fn redis_state(raw: &RawState, file: &str) -> Result<StateConfig, ConfigError> {
    let (url, tls) = redis_url(raw, file)?;
    let ca_pem = redis_ca_pem(raw, tls, file)?;
    let encryption_key = state_encryption_key(raw, file)?;
    Ok(StateConfig::Redis {
        url: url.to_owned(),
        password: raw
            .password
            .as_ref()
            .map(|p| Secret::new(p.as_bytes().to_vec())),
        ca_pem,
        encryption_key,
        key_prefix: raw.key_prefix.clone(),
        copy: match raw.copy_path.as_deref() {
            None => Some(default_copy_path(url, &raw.key_prefix)),
            Some("") => None,
            Some(path) => Some(path.into()),
        },
        fail_closed: raw.fail_closed,
        replicas: match raw.replicas {
            0 => return Err(invalid(file, "state.replicas", "must be greater than 0")),
            n => n,
        },
        rate_limit_batch: match raw.rate_limit_batch {
            0 | 1001.. => {
                let reason = "must be from 1 to 1000";
                return Err(invalid(file, "state.rate_limit_batch", reason));
            }
            n => n,
        },
    })
}

/// The default place of a replica's copy of the revocation list: one file per store (URL and
/// key prefix), so gateways of two fleets on one machine never start from each other's list.
fn default_copy_path(url: &str, prefix: &str) -> std::path::PathBuf {
    // FNV-1a: a stable name, not a secret.
    let hash = format!("{url}\n{prefix}")
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    format!("tollgate-state/revocations-copy-{hash:016x}.json").into()
}

/// Checks `state.url`: present, without credentials, `redis://` or `rediss://`, and encrypted
/// unless the host is this machine or `allow_plaintext` says so. Also returns whether it is
/// `rediss://`.
fn redis_url<'a>(raw: &'a RawState, file: &str) -> Result<(&'a str, bool), ConfigError> {
    let url = raw
        .url
        .as_deref()
        .filter(|u| !u.trim().is_empty())
        .ok_or_else(|| invalid(file, "state.url", "required for backend = \"redis\""))?;
    if super::has_userinfo(url) {
        return Err(invalid(
            file,
            "state.url",
            "credentials in the URL are refused (they would be printed); use state.password",
        ));
    }
    let tls = url.starts_with("rediss://");
    if !tls && !url.starts_with("redis://") {
        return Err(invalid(
            file,
            "state.url",
            format!("need redis://host:port/db or rediss://, got {url:?}"),
        ));
    }
    let parsed = parse_redis_url(url).map_err(|e| invalid(file, "state.url", e))?;
    if !tls && !raw.allow_plaintext && !is_loopback_redis(&parsed) {
        return Err(invalid(
            file,
            "state.url",
            "plain redis:// to a host that is not loopback sends the password, the \
             revocation list and the shared vendor token readable and forgeable on the \
             network; use rediss:// (with ca_file for a private CA), or set \
             state.allow_plaintext = true",
        ));
    }
    Ok((url, tls))
}

/// Checks `state.ca_file` (for `rediss://` only, a usable bundle) and reads it.
fn redis_ca_pem(raw: &RawState, tls: bool, file: &str) -> Result<Option<String>, ConfigError> {
    match raw.ca_file.as_deref() {
        Some(_) if !tls => Err(invalid(file, "state.ca_file", "is for rediss:// URLs")),
        Some(path) => {
            TrustRoots::load(Some(path)).map_err(|e| invalid(file, "state.ca_file", e))?;
            Ok(Some(std::fs::read_to_string(path).map_err(|e| {
                invalid(file, "state.ca_file", format!("{path}: {e}"))
            })?))
        }
        None => Ok(None),
    }
}

/// Whether a `redis://` URL's host is this machine: `localhost` or a loopback address.
fn is_loopback_redis(url: &http::Uri) -> bool {
    let host = url.host().unwrap_or_default();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Parses `redis://host[:port][/db]` (or `rediss://`) the way the Redis client will: a host is
/// required and the path, if any, is a database number.
fn parse_redis_url(url: &str) -> Result<http::Uri, String> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| format!("not a redis:// URL ({e}): {url:?}"))?;
    if uri.host().is_none_or(str::is_empty) {
        return Err(format!("no host in {url:?}"));
    }
    if uri.query().is_some() {
        return Err(format!("a query is not supported in {url:?}"));
    }
    let db = uri.path().trim_start_matches('/');
    if !db.is_empty() && db.parse::<u16>().is_err() {
        return Err(format!("the path must be a database number, got {db:?}"));
    }
    Ok(uri)
}

/// The shared vendor token's encryption key: 32 bytes, base64, inline or in a file.
fn state_encryption_key(raw: &RawState, file: &str) -> Result<Option<Secret>, ConfigError> {
    use base64::Engine;
    let (key, text) = match (&raw.encryption_key, &raw.encryption_key_file) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                file,
                "state.encryption_key",
                "set encryption_key or encryption_key_file, not both",
            ));
        }
        (Some(text), None) => ("state.encryption_key", text.0.clone()),
        (None, Some(path)) => (
            "state.encryption_key_file",
            std::fs::read_to_string(path)
                .map_err(|e| invalid(file, "state.encryption_key_file", format!("{path}: {e}")))?,
        ),
        (None, None) => return Ok(None),
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .ok()
        .filter(|b| b.len() == 32)
        .ok_or_else(|| {
            invalid(
                file,
                key,
                "need 32 random bytes in base64 (e.g. `openssl rand -base64 32`)",
            )
        })?;
    Ok(Some(Secret::new(bytes)))
}

#[cfg(test)]
mod tests {
    use crate::{Config, ConfigError, Env, StateConfig};

    fn load(text: &str) -> Result<Config, ConfigError> {
        Config::from_toml(
            text,
            "t.toml",
            &Env::from_map([("UP", "http://127.0.0.1:9")]),
        )
    }

    #[test]
    fn a_shared_store_off_this_machine_must_be_encrypted_or_say_it_need_not() {
        let state = |extra: &str| load(&format!("[state]\nbackend = \"redis\"\n{extra}"));
        let error = |extra: &str| state(extra).unwrap_err().to_string();
        assert!(
            error("url = \"redis://redis.internal:6379/0\"")
                .contains("t.toml: state.url: plain redis:// to a host that is not loopback")
        );
        for fine in [
            "url = \"redis://127.0.0.1:6379/0\"",
            "url = \"redis://localhost/0\"",
            "url = \"redis://redis.internal:6379/0\"\nallow_plaintext = true",
            "url = \"rediss://redis.internal:6380/0\"",
        ] {
            assert!(state(fine).is_ok(), "{fine}");
        }
        assert!(
            error("url = \"redis://127.0.0.1/0\"\nca_file = \"ca.pem\"")
                .contains("t.toml: state.ca_file: is for rediss:// URLs")
        );
        assert!(
            error("url = \"rediss://r:6380/0\"\nca_file = \"/nonexistent/ca.pem\"")
                .contains("t.toml: state.ca_file: cannot read \"/nonexistent/ca.pem\"")
        );
        assert!(
            error("url = \"redis://127.0.0.1/0\"\nencryption_key = \"c2hvcnQ=\"")
                .contains("t.toml: state.encryption_key: need 32 random bytes in base64")
        );
        let key = "url = \"redis://127.0.0.1/0\"\nencryption_key = \"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\"";
        let Ok(Config {
            state: StateConfig::Redis { encryption_key, .. },
            ..
        }) = state(key)
        else {
            panic!("a 32-byte key loads");
        };
        assert_eq!(encryption_key.unwrap().expose().len(), 32);
        assert!(!format!("{:?}", state(key).unwrap().state).contains("AAECAwQF"));
    }
}
