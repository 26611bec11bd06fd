//! Environment lookup and `${VAR}` / `${VAR:-default}` interpolation of config string values.

use std::collections::HashMap;
use std::path::Path;

/// Where configuration reads environment variables from; tests pass a map instead of mutating
/// the process environment.
#[derive(Clone, Default)]
pub struct Env {
    overrides: Option<HashMap<String, String>>,
    dotenv: HashMap<String, String>,
}

impl std::fmt::Debug for Env {
    // Values may be secrets: only the names are worth showing.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Env")
            .field("overrides", &self.overrides.as_ref().map(|m| m.len()))
            .field("dotenv_keys", &self.dotenv.len())
            .finish()
    }
}

impl Env {
    /// The process environment, with `.env` in the working directory as a fallback (the real
    /// environment wins, as dotenv tools do).
    pub fn from_process() -> Self {
        Self::from_process_with_dotenv(Path::new(".env"))
    }

    /// The process environment with the given `.env` file as a fallback.
    pub fn from_process_with_dotenv(path: &Path) -> Self {
        let mut dotenv = HashMap::new();
        if let Ok(iter) = dotenvy::from_path_iter(path) {
            for (key, value) in iter.flatten() {
                dotenv.insert(key, value);
            }
        }
        Self {
            overrides: None,
            dotenv,
        }
    }

    /// Only the given variables: nothing from the process environment.
    pub fn from_map<I, K, V>(vars: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Self {
            overrides: Some(
                vars.into_iter()
                    .map(|(k, v)| (k.into(), v.into()))
                    .collect(),
            ),
            dotenv: HashMap::new(),
        }
    }

    /// The value of `name`, if set.
    pub fn get(&self, name: &str) -> Option<String> {
        match &self.overrides {
            Some(map) => map.get(name).cloned(),
            None => std::env::var(name)
                .ok()
                .or_else(|| self.dotenv.get(name).cloned()),
        }
    }
}

/// Why a string could not be interpolated.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InterpolateError {
    /// `${NAME}` with no default and no such variable.
    #[error("environment variable {0} is not set")]
    Missing(String),
    /// `${` without a closing `}` or with an empty name.
    #[error("malformed variable reference {0:?}")]
    Malformed(String),
}

/// Replaces `${VAR}` and `${VAR:-default}` in `input`; `$$` stands for a literal `$`.
pub fn interpolate(input: &str, env: &Env) -> Result<String, InterpolateError> {
    if !input.contains('$') {
        return Ok(input.to_owned());
    }
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let end = body
                .find('}')
                .ok_or_else(|| InterpolateError::Malformed(rest.to_owned()))?;
            let expr = &body[..end];
            let (name, default) = match expr.split_once(":-") {
                Some((name, default)) => (name, Some(default)),
                None => (expr, None),
            };
            let valid_name =
                !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !valid_name {
                return Err(InterpolateError::Malformed(format!("${{{expr}}}")));
            }
            match env.get(name).filter(|v| !v.is_empty() || default.is_none()) {
                Some(value) => out.push_str(&value),
                None => match default {
                    Some(default) => out.push_str(default),
                    None => return Err(InterpolateError::Missing(name.to_owned())),
                },
            }
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Env {
        Env::from_map([("HOST", "example.com"), ("EMPTY", "")])
    }

    #[test]
    fn replaces_variables_and_defaults() {
        let env = env();
        assert_eq!(
            interpolate("http://${HOST}/x", &env).unwrap(),
            "http://example.com/x"
        );
        assert_eq!(interpolate("${NOPE:-fallback}", &env).unwrap(), "fallback");
        assert_eq!(interpolate("${EMPTY:-fallback}", &env).unwrap(), "fallback");
        assert_eq!(interpolate("${EMPTY}", &env).unwrap(), "");
        assert_eq!(interpolate("cost $$5 $x", &env).unwrap(), "cost $5 $x");
    }

    #[test]
    fn missing_variable_is_named() {
        assert_eq!(
            interpolate("${NOPE}", &env()),
            Err(InterpolateError::Missing("NOPE".into()))
        );
        assert!(matches!(
            interpolate("${UNCLOSED", &env()),
            Err(InterpolateError::Malformed(_))
        ));
        assert!(matches!(
            interpolate("${bad-name}", &env()),
            Err(InterpolateError::Malformed(_))
        ));
    }

    #[test]
    fn debug_shows_no_values() {
        let env = Env::from_map([("SECRET", "hunter2hunter2")]);
        assert!(!format!("{env:?}").contains("hunter2"));
    }
}
