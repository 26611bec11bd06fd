//! The token steps: where the token came from, what it says, and each verification check in the
//! verifier's order, marked passed, failed or not reached from the core's verdict.

use http::HeaderMap;
use serde_json::Value;

use tollgate_auth::Refusal;
use tollgate_auth::extract::TokenSources;
use tollgate_config::Config;
use tollgate_core::Core;
use tollgate_core::error::GatewayError;

use super::Step;
use super::upstream::mask_token;

/// The checks of a token, in the verifier's order ([`AuthError::check`] names the one each
/// refusal failed).
const CHECKS: [&str; 13] = [
    "structure and size",
    "issuer (iss)",
    "algorithm allow-list",
    "critical headers (crit)",
    "token typ",
    "key (kid)",
    "signature",
    "expiry and not-before (exp, nbf)",
    "audience (aud)",
    "token type (type, is_service)",
    "claims",
    "issued-at and lifetime (iat)",
    "revocation",
];

/// The token steps of a request that matched `route`.
pub(super) fn explain_token(
    steps: &mut Vec<Step>,
    config: &Config,
    core: &Core,
    route: &tollgate_config::Route,
    headers: &HeaderMap,
    query: Option<&str>,
    error: Option<&GatewayError>,
) {
    let sources = core.verifier().sources();
    let tokens = tollgate_auth::extract::extract(headers, query, sources).unwrap_or_default();
    let source = token_source(headers, sources);
    let Some(token) = tokens.first() else {
        steps.push(no_token(route, error));
        return;
    };
    steps.push(Step {
        step: "token".into(),
        result: "info",
        detail: format!("from {source}: {}", mask_token(token)),
    });
    push_checks(steps, check_details(config, token), error);
}

/// Where the token was found, in the order the extractor looks.
fn token_source(headers: &HeaderMap, sources: &TokenSources) -> &'static str {
    if headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().len() > 7 && v.trim()[..7].eq_ignore_ascii_case("bearer "))
    {
        "the Authorization header"
    } else if sources.cookies.iter().any(|c| {
        headers
            .get_all(http::header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.split(';').any(|p| p.trim().starts_with(&format!("{c}="))))
    }) {
        "a token cookie"
    } else {
        "the query"
    }
}

/// The token step of a request without a token: a failure only when the core refused it so.
fn no_token(route: &tollgate_config::Route, error: Option<&GatewayError>) -> Step {
    let detail = match error {
        Some(GatewayError::Refused(Refusal::Unauthenticated(e))) => e.to_string(),
        _ if !route.policy.requires_token() => "none; this route is public".to_owned(),
        _ => "none".to_owned(),
    };
    let result = if matches!(
        error,
        Some(GatewayError::Refused(Refusal::Unauthenticated(_)))
    ) {
        "failed"
    } else {
        "info"
    };
    Step {
        step: "token".into(),
        result,
        detail,
    }
}

/// One step per check: those before the one that failed passed, those after it were not
/// reached; without a failed check, all passed unless verification was never reached.
fn push_checks(steps: &mut Vec<Step>, details: [String; 13], error: Option<&GatewayError>) {
    let (failed_at, refusal, verified) = match error {
        Some(GatewayError::Refused(Refusal::Unauthenticated(e))) => (
            e.check()
                .and_then(|check| CHECKS.iter().position(|c| *c == check)),
            e.to_string(),
            false,
        ),
        _ => (None, String::new(), true),
    };
    for (i, (check, detail)) in CHECKS.iter().zip(details).enumerate() {
        let (result, detail) = match failed_at {
            Some(at) if i == at => ("failed", format!("{refusal}; {detail}")),
            Some(at) if i > at => ("not reached", detail),
            _ if verified || failed_at.is_some() => ("ok", detail),
            _ => ("not reached", detail),
        };
        steps.push(Step {
            step: format!("check {check}"),
            result,
            detail: detail.trim_end_matches("; ").to_owned(),
        });
    }
}

/// What the token shows for each of [`CHECKS`], in the same order.
fn check_details(config: &Config, token: &str) -> [String; 13] {
    let token_parts = Parts::decode(token);
    let [structure, issuer, algorithm] = token_parts.issuer_checks(config, token);
    let [crit, typ, kid, signature] = token_parts.header_checks();
    let now = tollgate_state::clock::now();
    let [times, audience, token_type, claims, issued_at, revocation] =
        token_parts.claim_checks(now);
    [
        structure, issuer, algorithm, crit, typ, kid, signature, times, audience, token_type,
        claims, issued_at, revocation,
    ]
}

/// A token's header and claims, decoded without verification (`None` where unreadable).
struct Parts {
    header: Option<Value>,
    claims: Option<Value>,
}

impl Parts {
    /// Decodes the first two segments of `token`.
    fn decode(token: &str) -> Self {
        let mut parts = token.split('.');
        let (header, claims) = (decode(parts.next()), decode(parts.next()));
        Self { header, claims }
    }

    /// A header field as text, `-` when absent.
    fn header_str(&self, name: &str) -> &str {
        self.header
            .as_ref()
            .and_then(|h| h.get(name))
            .and_then(Value::as_str)
            .unwrap_or("-")
    }

    /// The size, issuer and algorithm checks, against the issuer the token names.
    fn issuer_checks(&self, config: &Config, token: &str) -> [String; 3] {
        let iss = self
            .claims
            .as_ref()
            .and_then(|c| c.get("iss"))
            .and_then(Value::as_str)
            .unwrap_or("-");
        let issuer = config.issuers.iter().find(|i| i.issuer == iss);
        let alg = self.header_str("alg");
        [
            format!("{} bytes", token.len()),
            match issuer {
                Some(issuer) => format!("{iss}: issuer {}", issuer.name),
                None => format!("{iss}: no configured issuer"),
            },
            format!(
                "{alg}; the issuer allows {}",
                issuer.map_or("-".to_owned(), |i| {
                    i.algorithms
                        .iter()
                        .map(|a| format!("{a:?}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
            ),
        ]
    }

    /// The header checks: `crit`, `typ`, `kid` and the signature's algorithm.
    fn header_checks(&self) -> [String; 4] {
        let field = |name: &str| self.header.as_ref().and_then(|h| h.get(name));
        let text = |name: &str| {
            field(name)
                .and_then(Value::as_str)
                .unwrap_or("none")
                .to_owned()
        };
        [
            field("crit").map_or("none".to_owned(), Value::to_string),
            text("typ"),
            text("kid"),
            format!("{} signature", self.header_str("alg")),
        ]
    }

    /// The claim checks: validity times, audience, token type, identity claims and `jti`.
    fn claim_checks(&self, now: u64) -> [String; 6] {
        let claim = |name: &str| self.claims.as_ref().and_then(|c| c.get(name));
        [
            [self.when("exp", now), self.when("nbf", now)]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(", "),
            claim("aud").map_or("none".to_owned(), Value::to_string),
            claim("type").map_or("none".to_owned(), Value::to_string),
            ["user_id", "sub", "service", "role"]
                .iter()
                .filter_map(|name| Some(format!("{name} {}", claim(name)?)))
                .collect::<Vec<_>>()
                .join(", "),
            self.when("iat", now).unwrap_or_else(|| "no iat".to_owned()),
            claim("jti")
                .and_then(Value::as_str)
                .map_or("no jti".to_owned(), |j| format!("jti {j}")),
        ]
    }

    /// A time claim as a date and its distance from `now`: `exp 2026-01-01T00:00:00Z (in 1h)`.
    fn when(&self, name: &str, now: u64) -> Option<String> {
        let t = self.claims.as_ref()?.get(name)?.as_f64()? as i64;
        let delta = t - now as i64;
        let at =
            std::time::UNIX_EPOCH.checked_add(std::time::Duration::from_secs(t.max(0) as u64))?;
        let relative =
            humantime::format_duration(std::time::Duration::from_secs(delta.unsigned_abs()));
        Some(format!(
            "{name} {} ({})",
            humantime::format_rfc3339_seconds(at),
            if delta == 0 {
                "now".to_owned()
            } else if delta > 0 {
                format!("in {relative}")
            } else {
                format!("{relative} ago")
            }
        ))
    }
}

/// A base64url JSON segment of a token.
fn decode(part: Option<&str>) -> Option<Value> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part?)
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}
