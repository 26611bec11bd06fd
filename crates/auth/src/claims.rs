//! What a verified token's claims say about its holder, whatever the issuer's conventions:
//! its type (tollgate's `type` claim, or a standard OAuth client-credentials token) and the
//! grants route rules judge (scopes, roles at a configured path, selected claims).

use serde_json::{Map, Value};

use crate::AuthError;
use tollgate_config::{IssuerConfig, TokenTypes};
use tollgate_http::identity::{Grants, TokenKind};

/// The token's kind and, for a service, its name. Tokens that carry tollgate's `type` or
/// `is_service` follow tollgate's rules whatever the issuer, so every refusal of those stays.
pub(crate) fn token_kind(
    claims: &Map<String, Value>,
    issuer: &IssuerConfig,
) -> Result<(TokenKind, Option<String>), AuthError> {
    let tollgate_shaped = claims.contains_key("type") || claims.contains_key("is_service");
    if issuer.token_types == TokenTypes::Tollgate || tollgate_shaped {
        return tollgate_kind(claims, issuer);
    }
    match machine_client(claims)? {
        // Only an issuer allowed to vouch for services names one; from any other, a
        // client-credentials token is a caller without a service name.
        Some(client) if issuer.service_tokens => Ok((TokenKind::Service, Some(client))),
        _ => Ok((TokenKind::Access, None)),
    }
}

/// The client a standard token was issued to without an end user (the client-credentials
/// grant), as providers mark it: Auth0's `gty`, Entra's `idtyp = "app"`, Keycloak's service
/// account user, or a `client_id`/`cid` that is also the subject (oidc-provider, Okta) or with
/// no subject at all.
fn machine_client(claims: &Map<String, Value>) -> Result<Option<String>, AuthError> {
    let text = |name: &str| optional_text(claims, name);
    let client = match (
        text("client_id")?,
        text("cid")?,
        text("azp")?,
        text("appid")?,
    ) {
        (Some(id), ..) | (None, Some(id), ..) | (None, None, Some(id), _) => Some(id),
        (None, None, None, app) => app,
    };
    let Some(client) = client.filter(|c| !c.is_empty()) else {
        return Ok(None);
    };
    let subject = text("sub")?;
    let machine = text("gty")?.as_deref() == Some("client-credentials")
        || text("idtyp")?.as_deref() == Some("app")
        || text("preferred_username")?.is_some_and(|u| u.starts_with("service-account-"))
        || subject.is_none()
        || subject.as_deref() == Some(client.as_str())
        || subject.as_deref() == Some(format!("{client}@clients").as_str());
    Ok(machine.then_some(client))
}

/// The grants of a token: scopes (`scope`, space-separated, or `scp`, an array or a string),
/// roles at the issuer's `roles_claim`, and the claims route rules name (`rule_claims`).
pub(crate) fn grants(
    claims: &Map<String, Value>,
    issuer: &IssuerConfig,
    rule_claims: &[(String, Vec<String>)],
) -> Result<Grants, AuthError> {
    let scopes = match (claims.get("scope"), claims.get("scp")) {
        (Some(Value::String(s)), _) | (None, Some(Value::String(s))) => words(s),
        (None, Some(Value::Array(items))) => strings(items, "scp")?,
        (None | Some(Value::Null), None | Some(Value::Null)) => Vec::new(),
        (Some(_), _) => return Err(AuthError::InvalidClaim("scope".into())),
        (None, Some(_)) => return Err(AuthError::InvalidClaim("scp".into())),
    };
    let roles = match issuer
        .roles_claim
        .as_deref()
        .and_then(|p| lookup(claims, p))
    {
        None => Vec::new(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => strings(items, "roles_claim")?,
        Some(_) => return Err(AuthError::InvalidClaim("roles_claim".into())),
    };
    let claims = rule_claims
        .iter()
        .filter_map(|(key, path)| lookup(claims, path).map(|v| (key.clone(), v.to_string())))
        .collect();
    Ok(Grants {
        scopes,
        roles,
        claims,
    })
}

fn words(text: &str) -> Vec<String> {
    text.split_ascii_whitespace().map(str::to_owned).collect()
}

/// An array of strings; any other element makes the claim invalid.
fn strings(items: &[Value], claim: &str) -> Result<Vec<String>, AuthError> {
    items
        .iter()
        .map(|item| match item {
            Value::String(s) => Ok(s.clone()),
            _ => Err(AuthError::InvalidClaim(claim.to_owned())),
        })
        .collect()
}

/// The token's type from `type` and `is_service`, which must agree; a service token names its
/// service and comes from an issuer allowed to vouch for services.
fn tollgate_kind(
    claims: &Map<String, Value>,
    issuer: &IssuerConfig,
) -> Result<(TokenKind, Option<String>), AuthError> {
    let kind = match claims.get("type") {
        Some(Value::String(t)) if t == "access" => TokenKind::Access,
        Some(Value::String(t)) if t == "service" => TokenKind::Service,
        _ => return Err(AuthError::TokenTypeNotAccepted),
    };
    if kind == TokenKind::Service && !issuer.service_tokens {
        return Err(AuthError::ServiceIssuerNotAllowed);
    }
    let is_service = match claims.get("is_service") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(AuthError::InvalidClaim("is_service".into())),
    };
    if is_service != (kind == TokenKind::Service) {
        return Err(AuthError::TokenTypeNotAccepted);
    }
    let service = match kind {
        TokenKind::Service => Some(
            optional_text(claims, "service")?
                .filter(|s| !s.is_empty())
                .ok_or_else(|| AuthError::MissingClaim("service".into()))?,
        ),
        TokenKind::Access => None,
    };
    Ok((kind, service))
}

pub(crate) fn optional_text(
    claims: &Map<String, Value>,
    name: &str,
) -> Result<Option<String>, AuthError> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(AuthError::InvalidClaim(name.to_owned())),
    }
}

/// A string or integer claim as text. A number that is not an exact integer (a fraction, or
/// beyond 2^64 and so parsed as a float) is refused: `18446744073709551616` and
/// `18446744073709551617` would both become `1.8446744073709552e19`, one identity for two users.
pub(crate) fn optional_scalar(
    claims: &Map<String, Value>,
    name: &str,
) -> Result<Option<String>, AuthError> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) if !n.is_f64() => Ok(Some(n.to_string())),
        Some(_) => Err(AuthError::InvalidClaim(name.to_owned())),
    }
}

pub(crate) fn lookup<'a>(claims: &'a Map<String, Value>, path: &[String]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    rest.iter()
        .try_fold(claims.get(first)?, |value, segment| value.get(segment))
        .filter(|v| !v.is_null())
}

/// A claim as header text; arrays are joined with commas. `None` when an element contains a
/// comma or is padded with whitespace: `["staff,admins"]` and `["staff", " admins"]` would
/// otherwise reach the upstream as the same header as `["staff", "admins"]`.
pub(crate) fn claim_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Array(items) => {
            let mut joined = Vec::with_capacity(items.len());
            for item in items {
                let text = claim_text(item)?;
                if text.contains(',') || text.trim() != text {
                    return None;
                }
                joined.push(text);
            }
            Some(joined.join(","))
        }
        other => Some(other.to_string()),
    }
}
