//! Validation of `[state]`: where the revocation list, the token usage log and the shared vendor
//! token live.

use super::raw::RawState;
use super::roots::TrustRoots;
use super::{ConfigError, Secret, StateConfig, invalid};

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
