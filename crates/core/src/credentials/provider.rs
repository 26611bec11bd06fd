//! One attempt at obtaining a vendor token: the `login` and `client_credentials` grants, and
//! reading the token's lifetime.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use http::{Request, StatusCode};
use http_body_util::Full;
use serde_json::Value;

use tollgate_client::fetch::{FetchClient, FetchError, fetch};
use tollgate_config::{Grant, ProviderConfig};

/// Largest auth API response read.
const MAX_RESPONSE_BYTES: usize = 256 * 1024;

/// The client used for vendor logins.
pub type LoginClient = FetchClient;

/// Why one attempt failed. Messages never contain the password, the secret or a token.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// Connect or protocol failure.
    #[error("auth API unreachable: {0}")]
    Unreachable(#[source] tollgate_http::BoxError),
    /// No answer within the attempt timeout.
    #[error("auth API timed out after {0:?}")]
    Timeout(Duration),
    /// A non-2xx status.
    #[error("auth API answered status {0}")]
    Status(StatusCode),
    /// The body's own `statusCode` says the login failed.
    #[error("auth API answered statusCode {0} in its body")]
    BodyStatus(i64),
    /// Not JSON, or too large.
    #[error("auth API answered an invalid body: {0}")]
    InvalidBody(String),
    /// JSON without a token where one was expected.
    #[error("auth API response has no token (looked for {0})")]
    NoToken(String),
}

impl ProviderError {
    /// Whether trying again can succeed: no answer, a timeout, or the vendor's own trouble
    /// (5xx, 408, 429). A refusal of the credentials (401, 403, any other 4xx or a failed
    /// `statusCode`) or an answer that cannot be read would be refused again, and repeating a
    /// bad password risks locking the vendor account.
    pub fn retryable(&self) -> bool {
        let transient = |code: u16| code >= 500 || code == 408 || code == 429;
        match self {
            ProviderError::Unreachable(_) | ProviderError::Timeout(_) => true,
            ProviderError::Status(status) => transient(status.as_u16()),
            ProviderError::BodyStatus(code) => u16::try_from(*code).is_ok_and(transient),
            ProviderError::InvalidBody(_) | ProviderError::NoToken(_) => false,
        }
    }
}

pub use tollgate_state::vendor_token::Fetched;

/// Makes one attempt, bounded by the provider's timeout.
pub async fn fetch_once(
    client: &LoginClient,
    config: &ProviderConfig,
) -> Result<Fetched, ProviderError> {
    let request = build_request(&config.grant);
    let answer = fetch(client, request, config.timeout, MAX_RESPONSE_BYTES).await;
    let body = match answer {
        Ok((head, body)) if head.status.is_success() => body,
        Ok((head, _)) => return Err(ProviderError::Status(head.status)),
        Err(FetchError::Unreachable(e)) => return Err(ProviderError::Unreachable(e)),
        Err(FetchError::Timeout(after)) => return Err(ProviderError::Timeout(after)),
        Err(FetchError::Body(e)) => return Err(ProviderError::InvalidBody(e.to_string())),
    };
    let json: Value =
        serde_json::from_slice(&body).map_err(|e| ProviderError::InvalidBody(e.to_string()))?;
    parse_response(&json, config, SystemTime::now())
}

fn build_request(grant: &Grant) -> Request<Full<Bytes>> {
    let (url, content_type, body, basic) = match grant {
        Grant::Login {
            url,
            email,
            password,
            fields,
            ..
        } => {
            let mut map = serde_json::Map::new();
            map.insert(fields.0.clone(), Value::String(email.clone()));
            map.insert(
                fields.1.clone(),
                Value::String(String::from_utf8_lossy(password.expose()).into_owned()),
            );
            (
                url,
                "application/json",
                Value::Object(map).to_string().into_bytes(),
                None,
            )
        }
        Grant::ClientCredentials {
            url,
            client_id,
            client_secret,
            basic_auth,
            scope,
            audience,
        } => {
            let secret = String::from_utf8_lossy(client_secret.expose()).into_owned();
            let (body, basic) = client_credentials_form(
                client_id,
                &secret,
                *basic_auth,
                scope.as_deref(),
                audience.as_deref(),
            );
            (url, "application/x-www-form-urlencoded", body, basic)
        }
    };
    let mut request = Request::post(url.clone())
        .header(CONTENT_TYPE, content_type)
        .header(ACCEPT, "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|_| Request::new(Full::new(Bytes::new())));
    if let Some(basic) = basic
        && let Ok(mut value) = HeaderValue::from_str(&basic)
    {
        value.set_sensitive(true);
        request.headers_mut().insert(AUTHORIZATION, value);
    }
    request
}

/// The OAuth 2.0 client-credentials form (RFC 6749 §4.4.2), and the Basic credential when the
/// client authenticates with it (§2.3.1) instead of in the form.
fn client_credentials_form(
    client_id: &str,
    secret: &str,
    basic_auth: bool,
    scope: Option<&str>,
    audience: Option<&str>,
) -> (Vec<u8>, Option<String>) {
    let mut form: Vec<(&str, &str)> = vec![("grant_type", "client_credentials")];
    if let Some(scope) = scope {
        form.push(("scope", scope));
    }
    if let Some(audience) = audience {
        form.push(("audience", audience));
    }
    let basic = if basic_auth {
        // RFC 6749 §2.3.1: id and secret are form-encoded before Basic encoding.
        let id = serde_urlencoded::to_string([("", client_id)]).unwrap_or_default();
        let sec = serde_urlencoded::to_string([("", secret)]).unwrap_or_default();
        Some(format!(
            "Basic {}",
            STANDARD.encode(format!("{}:{}", &id[1..], &sec[1..]))
        ))
    } else {
        form.push(("client_id", client_id));
        form.push(("client_secret", secret));
        None
    };
    let body = serde_urlencoded::to_string(&form).unwrap_or_default();
    (body.into_bytes(), basic)
}

/// Reads the token and its lifetime from a successful response (public for the property tests).
pub fn parse_response(
    json: &Value,
    config: &ProviderConfig,
    now: SystemTime,
) -> Result<Fetched, ProviderError> {
    // Whatever its spelling (500, 500.0, "500"), a failure status in the body is a failure.
    if let Some(code) = json.get("statusCode").and_then(|v| match v {
        Value::String(s) => s.trim().parse::<f64>().ok(),
        other => other.as_f64(),
    }) && code >= 400.0
    {
        return Err(ProviderError::BodyStatus(code.min(i64::MAX as f64) as i64));
    }
    let paths: Vec<&str> = match &config.grant {
        Grant::Login { token_paths, .. } => token_paths.iter().map(String::as_str).collect(),
        Grant::ClientCredentials { .. } => vec!["access_token"],
    };
    let token = paths
        .iter()
        .find_map(|path| {
            path.split('.')
                .try_fold(json, |v, seg| v.get(seg))
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
        })
        .ok_or_else(|| ProviderError::NoToken(paths.join(", ")))?;
    if HeaderValue::from_str(&format!("Bearer {token}")).is_err() {
        return Err(ProviderError::InvalidBody(
            "token is not a valid header value".into(),
        ));
    }
    let expires_at = token_expiry(token, json, config, now)?;
    if expires_at <= now {
        return Err(ProviderError::InvalidBody(
            "token already expired when received".into(),
        ));
    }
    Ok(Fetched {
        token: token.to_owned(),
        expires_at,
    })
}

/// When the token expires: its own `exp` if it is a JWT, else `expires_in` from the response,
/// else the provider's `ttl`. Numbers from outside: every conversion checked. A lifetime that is
/// not a representable time is a failed login (503 and the cooldown), never a panic.
fn token_expiry(
    token: &str,
    json: &Value,
    config: &ProviderConfig,
    now: SystemTime,
) -> Result<SystemTime, ProviderError> {
    let unrepresentable =
        |what: &str| ProviderError::InvalidBody(format!("{what} is not a usable time"));
    Ok(match jwt_expiry(token) {
        Some(Some(at)) => at,
        Some(None) => return Err(unrepresentable("the token's exp")),
        None => match json.get("expires_in").or_else(|| json.get("expiresIn")) {
            // Whole seconds, as a number or (some OAuth servers) a string of digits; a
            // negative, fractional or other value is not silently replaced by the ttl.
            Some(value) => match value {
                Value::Number(n) => n.as_u64(),
                Value::String(s) => s.trim().parse::<u64>().ok(),
                _ => None,
            }
            .and_then(|secs| now.checked_add(Duration::from_secs(secs)))
            .ok_or_else(|| unrepresentable("expires_in"))?,
            None => now
                .checked_add(config.ttl)
                .ok_or_else(|| unrepresentable("ttl"))?,
        },
    })
}

/// The `exp` of a JWT, decoded but not verified: it is the vendor's token, not ours to check.
/// `None` when the token carries none; `Some(None)` when its `exp` is not a time (negative,
/// not finite, or past what `SystemTime` can hold).
pub fn jwt_expiry(token: &str) -> Option<Option<SystemTime>> {
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    let exp = serde_json::from_slice::<Value>(&bytes)
        .ok()?
        .get("exp")?
        .clone();
    Some(
        exp.as_f64()
            .filter(|e| e.is_finite() && *e > 0.0)
            .and_then(|e| Duration::try_from_secs_f64(e).ok())
            .and_then(|d| UNIX_EPOCH.checked_add(d)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tollgate_config::Secret;

    fn login_config(token_paths: &[&str]) -> ProviderConfig {
        ProviderConfig {
            name: "vendor".into(),
            grant: Grant::Login {
                url: "http://127.0.0.1:9/login".parse().unwrap(),
                email: "a@b.c".into(),
                password: Secret::new(b"pw".to_vec()),
                fields: ("email".into(), "password".into()),
                token_paths: token_paths.iter().map(|s| s.to_string()).collect(),
            },
            timeout: Duration::from_secs(1),
            max_retries: 0,
            ttl: Duration::from_secs(3600),
            refresh_before: Duration::from_secs(300),
            failure_cooldown: Duration::from_secs(5),
            required: false,
            replay_body_bytes: 0,
            relogin_interval: Duration::from_secs(10),
            acquire_timeout: Duration::from_secs(1),
            roots: Default::default(),
            fingerprint: Default::default(),
        }
    }

    #[test]
    fn token_fields_and_failures() {
        let config = login_config(&tollgate_config::DEFAULT_TOKEN_FIELDS);
        let now = SystemTime::now();
        for field in tollgate_config::DEFAULT_TOKEN_FIELDS {
            let body = json!({"statusCode": 200, field: "opaque"});
            let fetched = parse_response(&body, &config, now).unwrap();
            assert_eq!(fetched.token, "opaque");
            assert_eq!(
                fetched.expires_at,
                now + Duration::from_secs(3600),
                "ttl fallback"
            );
        }
        assert!(matches!(
            parse_response(
                &json!({"statusCode": 401, "accessToken": "x"}),
                &config,
                now
            ),
            Err(ProviderError::BodyStatus(401))
        ));
        let err = parse_response(&json!({"ok": true}), &config, now)
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "auth API response has no token (looked for accessToken, access_token, token, authToken)"
        );
        let nested = login_config(&["data.jwt"]);
        assert_eq!(
            parse_response(&json!({"data": {"jwt": "n"}}), &nested, now)
                .unwrap()
                .token,
            "n"
        );
    }

    #[test]
    fn lifetime_from_exp_then_expires_in() {
        let config = login_config(&["accessToken"]);
        let now = SystemTime::now();
        let payload = URL_SAFE_NO_PAD.encode(br#"{"exp": 2000000000}"#);
        let jwt = format!("e30.{payload}.sig");
        let fetched = parse_response(&json!({"accessToken": jwt}), &config, now).unwrap();
        assert_eq!(
            fetched.expires_at,
            UNIX_EPOCH + Duration::from_secs(2_000_000_000)
        );
        let body = json!({"accessToken": "very-secret-token", "expires_in": 60});
        let fetched = parse_response(&body, &config, now).unwrap();
        assert_eq!(fetched.expires_at, now + Duration::from_secs(60));
        assert!(!format!("{fetched:?}").contains("very-secret-token"));
    }

    #[test]
    fn lifetimes_from_outside_never_panic_and_expired_tokens_are_failures() {
        let config = login_config(&["accessToken"]);
        let now = SystemTime::now();
        let jwt = |exp: &str| {
            let payload = URL_SAFE_NO_PAD.encode(format!("{{\"exp\": {exp}}}"));
            json!({"accessToken": format!("e30.{payload}.sig")})
        };
        for (body, want) in [
            (jwt("1e300"), "the token's exp is not a usable time"),
            (jwt("-5"), "the token's exp is not a usable time"),
            (jwt("1000"), "token already expired when received"),
            (
                json!({"accessToken": "t", "expires_in": u64::MAX}),
                "expires_in is not a usable time",
            ),
            (
                json!({"accessToken": "t", "expires_in": 0}),
                "token already expired when received",
            ),
        ] {
            let err = parse_response(&body, &config, now).unwrap_err().to_string();
            assert!(err.ends_with(want), "{body}: {err}");
        }
    }
}
