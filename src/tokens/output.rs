//! Printing issued tokens: plain, JSON lines, env lines, or a Kubernetes `Secret` manifest.

use std::fmt::Write as _;
use std::str::FromStr;
use std::time::{Duration, UNIX_EPOCH};

use serde_json::Value;

use super::{IssuedToken, MAX_EXPIRY, TokenError, VARIABLE_PREFIX};

/// How `token issue` prints tokens.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OutputFormat {
    /// The tokens only, one per line.
    #[default]
    Text,
    /// One JSON object per line: `service`, `token`, `expires_at` (RFC 3339, UTC), `issuer`.
    Json,
    /// `SERVICE_TOKEN_<NAME>=<token>` lines.
    Env,
    /// A Kubernetes `Secret` manifest with one `SERVICE_TOKEN_<NAME>` key per token.
    K8sSecret,
}

/// Name and namespace of the Kubernetes `Secret` that `--format k8s-secret` prints.
#[derive(Debug, Clone)]
pub struct SecretMeta {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`.
    pub namespace: String,
}

impl FromStr for OutputFormat {
    type Err = TokenError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "text" => Ok(OutputFormat::Text),
            "json" => Ok(OutputFormat::Json),
            "env" => Ok(OutputFormat::Env),
            "k8s-secret" => Ok(OutputFormat::K8sSecret),
            other => Err(TokenError::UnknownFormat(other.to_owned())),
        }
    }
}

/// `SERVICE_TOKEN_<NAME>`: the name uppercased, `-` turned into `_`.
pub fn variable_name(service: &str) -> String {
    format!(
        "{VARIABLE_PREFIX}{}",
        service.to_ascii_uppercase().replace('-', "_")
    )
}

/// Renders tokens in `format`; `secret` names the Kubernetes Secret for `k8s-secret`.
pub fn render(
    tokens: &[IssuedToken],
    format: OutputFormat,
    secret: &SecretMeta,
) -> Result<String, TokenError> {
    let mut out = String::new();
    match format {
        OutputFormat::Text => {
            for t in tokens {
                let _ = writeln!(out, "{}", t.token);
            }
        }
        OutputFormat::Json => {
            for t in tokens {
                let line = serde_json::json!({
                    "service": t.name,
                    "token": t.token,
                    "expires_at": rfc3339(t.expires_at),
                    "issuer": t.issuer,
                });
                let _ = writeln!(out, "{line}");
            }
        }
        OutputFormat::Env => {
            for t in tokens {
                let _ = writeln!(out, "{}={}", variable_name(&t.name), t.token);
            }
        }
        OutputFormat::K8sSecret => out = kubernetes_secret(tokens, secret)?,
    }
    Ok(out)
}

/// A duration in the largest unit that gives at least 2 once rounded to the nearest:
/// `45 seconds`, `3 minutes`, `30 hours`, `364 days`.
pub fn in_words(secs: u64) -> String {
    let units = [(86_400, "day"), (3_600, "hour"), (60, "minute")];
    let (n, unit) = units
        .into_iter()
        .map(|(size, unit)| (secs.saturating_add(size / 2) / size, unit))
        .find(|(n, _)| *n >= 2)
        .unwrap_or((secs, "second"));
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// Seconds since the epoch as RFC 3339 UTC, e.g. `2027-01-31T12:00:00Z`.
pub fn rfc3339(secs: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs.min(MAX_EXPIRY)))
        .to_string()
}

fn kubernetes_secret(tokens: &[IssuedToken], secret: &SecretMeta) -> Result<String, TokenError> {
    check_kubernetes_name("--secret-name", &secret.name, 253, true)?;
    check_kubernetes_name("--namespace", &secret.namespace, 63, false)?;
    // Strings are written as JSON strings, which YAML reads as double-quoted scalars.
    let quote = |s: &str| Value::from(s).to_string();
    let mut out = String::new();
    let _ = writeln!(out, "# Service tokens minted by tollgate token issue.");
    for t in tokens {
        let _ = writeln!(
            out,
            "# {}: issuer {}, expires {}",
            t.name,
            t.issuer,
            rfc3339(t.expires_at)
        );
    }
    let _ = writeln!(out, "apiVersion: v1\nkind: Secret\nmetadata:");
    let _ = writeln!(out, "  name: {}", quote(&secret.name));
    let _ = writeln!(out, "  namespace: {}", quote(&secret.namespace));
    let _ = writeln!(out, "type: Opaque\nstringData:");
    for t in tokens {
        let _ = writeln!(out, "  {}: {}", variable_name(&t.name), quote(&t.token));
    }
    Ok(out)
}

/// RFC 1123 names: lowercase letters, digits and `-` (and `.` for subdomains), starting and
/// ending with a letter or digit.
pub(super) fn check_kubernetes_name(
    what: &'static str,
    value: &str,
    max: usize,
    dots: bool,
) -> Result<(), TokenError> {
    let edge_ok = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let valid = value.len() <= max
        && edge_ok(value.bytes().next())
        && edge_ok(value.bytes().last())
        && value.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || (dots && b == b'.')
        });
    if valid {
        Ok(())
    } else {
        Err(TokenError::InvalidKubernetesName {
            what,
            value: value.to_owned(),
            rule: if dots {
                "use lowercase letters, digits, '-' and '.', at most 253 characters"
            } else {
                "use lowercase letters, digits and '-', at most 63 characters"
            },
        })
    }
}
