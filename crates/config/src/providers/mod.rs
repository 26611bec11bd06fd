//! `[[providers]]`: how to obtain a vendor's bearer token, as written and validated: explicit
//! values first, then the `API_AUTH_*` and `API_EXECUTOR_*` environment variables existing
//! deployments already set.

mod fallback;

use std::time::Duration;

use http::Uri;
use serde::Deserialize;

use super::Invalid;
use super::env::Env;
use super::values::{HumanDuration, Secret, SecretText};
use fallback::{env_duration, env_number, secret_value, value_or_env};

/// `[[providers]]`: how to obtain a vendor's bearer token.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProvider {
    /// Name routes refer to with `upstream_auth`. Required.
    pub name: String,
    /// `login` (JSON email/password login) or `client_credentials` (OAuth 2.0, RFC 6749 §4.4).
    pub kind: RawProviderKind,
    /// login: the auth API URL. Default: `$API_AUTH_URL`.
    pub auth_url: Option<String>,
    /// login: the account email. Default: `$API_AUTH_EMAIL`.
    pub email: Option<String>,
    /// login: the password. Default: `$API_AUTH_PASSWORD` (or `password_file`).
    pub password: Option<SecretText>,
    /// login: file holding the password (trailing newline ignored).
    pub password_file: Option<String>,
    /// login: JSON field name for the email. Default `"email"`.
    pub email_field: Option<String>,
    /// login: JSON field name for the password. Default `"password"`.
    pub password_field: Option<String>,
    /// login: dot path of the token in the response. Default: the first of `accessToken`,
    /// `access_token`, `token`, `authToken`.
    pub token_path: Option<String>,
    /// client_credentials: the token endpoint.
    pub token_url: Option<String>,
    /// client_credentials: the client id.
    pub client_id: Option<String>,
    /// client_credentials: the client secret (or `client_secret_file`).
    pub client_secret: Option<SecretText>,
    /// client_credentials: file holding the client secret.
    pub client_secret_file: Option<String>,
    /// client_credentials: `"basic"` (HTTP Basic, default) or `"body"` (form fields).
    pub client_auth: Option<String>,
    /// client_credentials: requested scope.
    pub scope: Option<String>,
    /// client_credentials: requested audience.
    pub audience: Option<String>,
    /// Per-attempt timeout. Default: `$API_EXECUTOR_TIMEOUT` seconds, else `"30s"`.
    pub timeout: Option<HumanDuration>,
    /// Retries after a failed attempt. Default: `$API_EXECUTOR_MAX_RETRIES`, else 3.
    pub max_retries: Option<u32>,
    /// Token lifetime when neither its `exp` nor `expires_in` says. Default `"1h"`.
    pub ttl: Option<HumanDuration>,
    /// Refresh when less than this remains. Default `"5m"`.
    pub refresh_before: Option<HumanDuration>,
    /// After all retries fail, answer 503 at once for this long. Default `"5s"`.
    pub failure_cooldown: Option<HumanDuration>,
    /// Readiness waits for this provider's first token. Default false.
    #[serde(default)]
    pub required: bool,
    /// Request bodies up to this size are kept so a request can be replayed after a vendor
    /// `401`. Default 65536.
    pub replay_body_bytes: Option<u64>,
    /// After a vendor `401`, at most one new login per this interval; within it the vendor's
    /// `401` is returned to the caller (or the request retried with a token a login already
    /// obtained). Default `"10s"`.
    pub relogin_interval: Option<HumanDuration>,
    /// Longest a request waits for a token (also capped by its route's `timeout`); past it
    /// the request gets 503 at once while the login goes on. Default: the route's timeout.
    pub acquire_timeout: Option<HumanDuration>,
    /// PEM bundle of the certificate authorities the auth API's certificate is checked
    /// against, instead of the public web roots (a private CA). Default: public roots.
    pub ca_file: Option<String>,
    /// Accept a plain `http://` auth URL to a host that is not loopback (the password or
    /// client secret then crosses the network readable). Default false.
    #[serde(default)]
    pub allow_insecure_http: bool,
}

/// The credential grant a provider uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RawProviderKind {
    /// `POST {"email", "password"}` → `{"accessToken": ...}`.
    Login,
    /// OAuth 2.0 client credentials.
    ClientCredentials,
}

/// Token fields tried, in order, when a login provider sets no `token_path`.
pub const DEFAULT_TOKEN_FIELDS: [&str; 4] = ["accessToken", "access_token", "token", "authToken"];

/// A validated credential provider.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    /// Name routes refer to.
    pub name: String,
    /// How the token is obtained.
    pub grant: Grant,
    /// Per-attempt timeout.
    pub timeout: Duration,
    /// Retries after a failed attempt.
    pub max_retries: u32,
    /// Lifetime when the response does not say.
    pub ttl: Duration,
    /// Refresh when less than this remains.
    pub refresh_before: Duration,
    /// How long a final failure is remembered.
    pub failure_cooldown: Duration,
    /// Readiness waits for the first token.
    pub required: bool,
    /// Largest request body kept for a replay after a vendor 401.
    pub replay_body_bytes: u64,
    /// Least time between two logins caused by the vendor refusing the token.
    pub relogin_interval: Duration,
    /// Longest a request waits for a token (the route's timeout caps it too).
    pub acquire_timeout: Duration,
    /// The certificate authorities the auth API is checked against.
    pub roots: super::TrustRoots,
    /// Identity of these settings and secrets, for reloads.
    pub fingerprint: super::Fingerprint,
}

/// How a provider obtains its token.
#[derive(Debug, Clone)]
pub enum Grant {
    /// JSON email/password login.
    Login {
        /// Auth API URL.
        url: Uri,
        /// Account email.
        email: String,
        /// Account password.
        password: Secret,
        /// JSON field names for email and password.
        fields: (String, String),
        /// Token location: one dot path, or the default fallbacks.
        token_paths: Vec<String>,
    },
    /// OAuth 2.0 client credentials grant (RFC 6749 §4.4).
    ClientCredentials {
        /// Token endpoint.
        url: Uri,
        /// Client id.
        client_id: String,
        /// Client secret.
        client_secret: Secret,
        /// Send credentials with HTTP Basic (true) or in the form body.
        basic_auth: bool,
        /// Requested scope.
        scope: Option<String>,
        /// Requested audience.
        audience: Option<String>,
    },
}

fn parse_url(text: &str, key: &str) -> Result<Uri, Invalid> {
    if super::has_userinfo(text) {
        return Err(Invalid::new(key, super::USERINFO_REFUSED));
    }
    let uri: Uri = text
        .parse()
        .map_err(|e| Invalid::new(key, format!("invalid URL {text:?}: {e}")))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.authority().is_none() {
        return Err(Invalid::new(
            key,
            format!("invalid URL {text:?}: need http(s)://host/..."),
        ));
    }
    Ok(uri)
}

/// Most retries after a failed login attempt.
pub const MAX_RETRIES: u32 = 10;
/// Longest single login attempt.
pub const MAX_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(300);

/// Validates one `[[providers]]` entry; error keys are relative to the entry.
pub fn validate_provider(raw: &RawProvider, env: &Env) -> Result<ProviderConfig, Invalid> {
    if raw.name.trim().is_empty() {
        return Err(Invalid::new("name", "must not be empty"));
    }
    let grant = match raw.kind {
        RawProviderKind::Login => login_grant(raw, env)?,
        RawProviderKind::ClientCredentials => client_credentials_grant(raw, env)?,
    };
    let (url, url_key) = match &grant {
        Grant::Login { url, .. } => (url, "auth_url"),
        Grant::ClientCredentials { url, .. } => (url, "token_url"),
    };
    super::outbound::check_transport(url, raw.allow_insecure_http)
        .map_err(|e| Invalid::new(url_key, e))?;
    let roots =
        super::TrustRoots::load(raw.ca_file.as_deref()).map_err(|e| Invalid::new("ca_file", e))?;
    let timeout = attempt_timeout(raw, env)?;
    let max_retries = max_retries(raw, env)?;
    if raw.acquire_timeout.is_some_and(|t| t.0.is_zero()) {
        return Err(Invalid::new("acquire_timeout", "must be greater than 0"));
    }
    let fingerprint = fingerprint(raw, &grant, timeout, max_retries);
    Ok(ProviderConfig {
        name: raw.name.clone(),
        grant,
        timeout,
        max_retries,
        ttl: raw.ttl.map_or(Duration::from_secs(3600), |d| d.0),
        refresh_before: raw.refresh_before.map_or(Duration::from_secs(300), |d| d.0),
        failure_cooldown: raw.failure_cooldown.map_or(Duration::from_secs(5), |d| d.0),
        required: raw.required,
        replay_body_bytes: raw.replay_body_bytes.unwrap_or(64 * 1024),
        relogin_interval: raw
            .relogin_interval
            .map_or(Duration::from_secs(10), |d| d.0),
        acquire_timeout: raw
            .acquire_timeout
            .map_or(super::values::MAX_DURATION, |d| d.0),
        roots,
        fingerprint,
    })
}

/// The email/password login: URL, email and password from the entry or the `API_AUTH_*`
/// variables, in that order.
fn login_grant(raw: &RawProvider, env: &Env) -> Result<Grant, Invalid> {
    let url = value_or_env(raw.auth_url.as_deref(), "auth_url", "API_AUTH_URL", env)?;
    Ok(Grant::Login {
        url: parse_url(&url, "auth_url")?,
        email: value_or_env(raw.email.as_deref(), "email", "API_AUTH_EMAIL", env)?,
        password: secret_value(
            raw.password.as_deref(),
            &raw.password_file,
            "password",
            Some("API_AUTH_PASSWORD"),
            env,
        )?,
        fields: (
            raw.email_field
                .clone()
                .unwrap_or_else(|| "email".to_owned()),
            raw.password_field
                .clone()
                .unwrap_or_else(|| "password".to_owned()),
        ),
        token_paths: match &raw.token_path {
            Some(path) => vec![path.clone()],
            None => DEFAULT_TOKEN_FIELDS.iter().map(|f| f.to_string()).collect(),
        },
    })
}

/// The OAuth client credentials grant: token URL, client id and secret, and how the
/// credentials are sent (`client_auth`).
fn client_credentials_grant(raw: &RawProvider, env: &Env) -> Result<Grant, Invalid> {
    let url = raw
        .token_url
        .as_deref()
        .ok_or_else(|| Invalid::new("token_url", "required for client_credentials"))?;
    Ok(Grant::ClientCredentials {
        url: parse_url(url, "token_url")?,
        client_id: raw
            .client_id
            .clone()
            .filter(|c| !c.is_empty())
            .ok_or_else(|| Invalid::new("client_id", "required for client_credentials"))?,
        client_secret: secret_value(
            raw.client_secret.as_deref(),
            &raw.client_secret_file,
            "client_secret",
            None,
            env,
        )?,
        basic_auth: match raw.client_auth.as_deref() {
            None | Some("basic") => true,
            Some("body") => false,
            Some(other) => {
                return Err(Invalid::new(
                    "client_auth",
                    format!("expected \"basic\" or \"body\", got {other:?}"),
                ));
            }
        },
        scope: raw.scope.clone(),
        audience: raw.audience.clone(),
    })
}

/// The per-attempt timeout (`timeout`, else `API_EXECUTOR_TIMEOUT`, else 30s), at most
/// [`MAX_ATTEMPT_TIMEOUT`].
fn attempt_timeout(raw: &RawProvider, env: &Env) -> Result<Duration, Invalid> {
    let timeout = match raw.timeout {
        Some(t) => t.0,
        None => {
            env_duration(env, "API_EXECUTOR_TIMEOUT", "timeout")?.unwrap_or(Duration::from_secs(30))
        }
    };
    if timeout.is_zero() || timeout > MAX_ATTEMPT_TIMEOUT {
        return Err(Invalid::new(
            "timeout",
            format!(
                "must be between 1ms and {} per attempt (got {})",
                humantime::format_duration(MAX_ATTEMPT_TIMEOUT),
                humantime::format_duration(timeout)
            ),
        ));
    }
    Ok(timeout)
}

/// The retries after a failed attempt (`max_retries`, else `API_EXECUTOR_MAX_RETRIES`,
/// else 3), at most [`MAX_RETRIES`].
fn max_retries(raw: &RawProvider, env: &Env) -> Result<u32, Invalid> {
    let max_retries = match raw.max_retries {
        Some(n) => n,
        None => env_number(env, "API_EXECUTOR_MAX_RETRIES", "max_retries")?.unwrap_or(3),
    };
    if max_retries > MAX_RETRIES {
        return Err(Invalid::new(
            "max_retries",
            format!(
                "at most {MAX_RETRIES} (got {max_retries}); requests wait at most their route's \
                 timeout anyway, and a login that fails {MAX_RETRIES} times in a row is better \
                 retried after failure_cooldown"
            ),
        ));
    }
    Ok(max_retries)
}

/// The provider's settings, its secret and its CA bundle, hashed, so that a reload can tell
/// whether its cached token may be kept.
fn fingerprint(
    raw: &RawProvider,
    grant: &Grant,
    timeout: Duration,
    max_retries: u32,
) -> super::Fingerprint {
    let secret = match grant {
        Grant::Login { password, .. } => password.expose().to_vec(),
        Grant::ClientCredentials { client_secret, .. } => client_secret.expose().to_vec(),
    };
    let ca = raw
        .ca_file
        .as_ref()
        .map(|path| std::fs::read(path).unwrap_or_default())
        .unwrap_or_default();
    super::Fingerprint::of(&[
        format!("{grant:?}|{timeout:?}|{max_retries}|{raw:?}").as_bytes(),
        &secret,
        &ca,
    ])
}
