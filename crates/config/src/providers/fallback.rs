//! Where a provider's values come from when the entry does not set them: the environment
//! variables existing deployments set, and secret files.

use std::time::Duration;

use crate::Invalid;
use crate::env::Env;
use crate::values::Secret;

/// The configured value, else the environment variable, else an error naming both.
pub(super) fn value_or_env(
    value: Option<&str>,
    key: &str,
    var: &str,
    env: &Env,
) -> Result<String, Invalid> {
    match value.map(str::trim) {
        Some(v) if !v.is_empty() => Ok(v.to_owned()),
        _ => env
            .get(var)
            .filter(|v| !v.trim().is_empty())
            .ok_or_else(|| {
                Invalid::new(
                    key,
                    format!("not set, and environment variable {var} is not set"),
                )
            }),
    }
}

/// The secret in `{key}_file` (refused together with `key`), else `key`, else the environment
/// variable `var` when there is one.
pub(super) fn secret_value(
    value: Option<&str>,
    file: &Option<String>,
    key: &str,
    var: Option<&str>,
    env: &Env,
) -> Result<Secret, Invalid> {
    if let Some(path) = file {
        if value.is_some() {
            return Err(Invalid::new(
                format!("{key}_file"),
                format!("set either {key} or {key}_file"),
            ));
        }
        let bytes = std::fs::read(path).map_err(|e| {
            Invalid::new(format!("{key}_file"), format!("cannot read {path:?}: {e}"))
        })?;
        let text = String::from_utf8(bytes)
            .map_err(|_| Invalid::new(format!("{key}_file"), format!("{path:?} is not UTF-8")))?;
        return Ok(Secret::new(
            text.trim_end_matches(['\r', '\n']).as_bytes().to_vec(),
        ));
    }
    let text = match var {
        Some(var) => value_or_env(value, key, var, env)?,
        None => value
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| Invalid::new(key, format!("set {key} or {key}_file")))?,
    };
    Ok(Secret::new(text.into_bytes()))
}

/// A duration from the environment: bare seconds as the seed wrote them (`30`, `2.5`), or
/// humantime like every other duration (`30s`, `1m`).
pub(super) fn env_duration(env: &Env, var: &str, key: &str) -> Result<Option<Duration>, Invalid> {
    let Some(text) = env.get(var).filter(|v| !v.trim().is_empty()) else {
        return Ok(None);
    };
    let text = text.trim();
    let seconds = text
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .and_then(|s| Duration::try_from_secs_f64(s).ok());
    match seconds {
        Some(d) => Ok(Some(d)),
        None => crate::values::parse_duration(text).map(Some).map_err(|e| {
            Invalid::new(
                key,
                format!("environment variable {var} is not seconds or a duration ({e}): {text:?}"),
            )
        }),
    }
}

/// A number from the environment variable `var`, when set; `key` names the setting it stands
/// for in errors.
pub(super) fn env_number<T: std::str::FromStr>(
    env: &Env,
    var: &str,
    key: &str,
) -> Result<Option<T>, Invalid> {
    match env.get(var).filter(|v| !v.trim().is_empty()) {
        None => Ok(None),
        Some(v) => v.trim().parse().map(Some).map_err(|_| {
            Invalid::new(
                key,
                format!("environment variable {var} is not a number: {v:?}"),
            )
        }),
    }
}
