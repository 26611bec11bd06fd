//! A route's rate limits and quotas, applied after the caller is known and before anything is
//! spent on its behalf (a vendor credential, the upstream).
//!
//! Each limit keys the caller by what it names (`by`); a caller without it (a user on a limit by
//! service, a token without a tenant) is keyed by its identity, an anonymous one by its address.
//! Limits are checked in order and the first refusal stops: later ones are not charged.

use std::fmt::Write;

use http::HeaderValue;
use tollgate_config::{KeyBy, RateLimit, Route};
use tollgate_http::identity::{Identity, X_TENANT_ID};
use tollgate_state::ratelimit::{Keeper, LimitKey, RateLimiter, Verdict};

use crate::error::{GatewayError, seconds_up};
use crate::trace::{LimitNote, Trace};

/// The caller's key for one limit: its class and up to two parts.
fn caller_key<'a>(
    by: KeyBy,
    identity: Option<&'a Identity>,
    client: &'a [u8],
) -> (&'static str, &'a [u8], &'a [u8]) {
    if by == KeyBy::Route {
        return ("route", b"", b"");
    }
    let Some(identity) = identity.filter(|_| by != KeyBy::ClientIp) else {
        return ("client_ip", client, b"");
    };
    if by == KeyBy::Tenant
        && let Some((_, tenant)) = identity
            .headers
            .iter()
            .find(|(name, _)| name == X_TENANT_ID)
    {
        return ("tenant", tenant.as_bytes(), b"");
    }
    match &identity.service {
        Some(service) => ("service", service.as_bytes(), b""),
        None => (
            "user",
            identity.issuer.as_bytes(),
            identity.subject.as_bytes(),
        ),
    }
}

/// Checks the route's limits for this caller (`online` false: only looks, for `explain`);
/// notes in `trace` what the answer and the observers need: nothing for a plain pass on a route
/// that sends no headers, so a limit costs one map update. The refusal is `429 rate_limited`.
pub async fn apply(
    (limiter, places): (&RateLimiter, &[u64]),
    route: &Route,
    identity: Option<&Identity>,
    client: &HeaderValue,
    trace: &mut Trace,
    online: bool,
) -> Result<(), GatewayError> {
    if route.rate_limits.is_empty() {
        return Ok(());
    }
    let service = identity.and_then(|i| i.service.as_deref());
    let keep_all = !online || route.rate_limits.iter().any(|l| l.headers);
    // Filled only when the answer shows every limit (no allocation otherwise).
    let mut verdicts: Vec<(&RateLimit, Verdict)> = Vec::new();
    let mut refused = None;
    let mut fallback = false;
    for (i, limit) in route.rate_limits.iter().enumerate() {
        let (class, a, b) = caller_key(limit.by, identity, client.as_bytes());
        let key = LimitKey {
            place: places.get(i).copied().unwrap_or_default(),
            names: [&route.name, &limit.name],
            class,
            caller: [a, b],
        };
        let rate = limit.rate_for(service);
        let verdict = if !online {
            limiter.peek(&key, rate)
        } else if limiter.is_shared() {
            // Boxed: the Redis call's future would otherwise grow every request's.
            Box::pin(limiter.check_shared(&key, rate)).await
        } else {
            limiter.check(&key, rate)
        };
        fallback |= verdict.keeper == Keeper::Fallback;
        if keep_all || !verdict.allowed {
            verdicts.push((limit, verdict));
        }
        if !verdict.allowed {
            refused = Some((limit, verdict));
            break;
        }
    }
    if keep_all || refused.is_some() || fallback {
        trace.limits = Some(Box::new(note(
            &verdicts, identity, client, online, fallback,
        )));
    }
    match refused {
        Some((limit, verdict)) if online => Err(GatewayError::RateLimited {
            limit: limit.name.clone(),
            retry_after: verdict.retry_after,
        }),
        _ => Ok(()),
    }
}

/// What the limits said, for the answer's headers, the observers and `explain`.
fn note(
    verdicts: &[(&RateLimit, Verdict)],
    identity: Option<&Identity>,
    client: &HeaderValue,
    online: bool,
    fallback: bool,
) -> LimitNote {
    let service = identity.and_then(|i| i.service.as_deref());
    let refused = verdicts.last().filter(|(_, v)| !v.allowed);
    LimitNote {
        headers: (online && !verdicts.is_empty()).then(|| headers(verdicts, service)),
        refused_by: refused.map(|(l, _)| (l.name.clone(), l.by)),
        keeper: match verdicts.first() {
            _ if fallback => Keeper::Fallback,
            Some((_, v)) => v.keeper,
            None => Keeper::Local,
        },
        checked: if online {
            Vec::new()
        } else {
            verdicts
                .iter()
                .map(|(l, _)| {
                    let (class, _, _) = caller_key(l.by, identity, client.as_bytes());
                    (l.name.clone(), l.rate_for(service).to_string(), class)
                })
                .collect()
        },
    }
}

/// `RateLimit-Policy` and `RateLimit` (draft-ietf-httpapi-ratelimit-headers): one item per
/// limit checked, named as the limit; `q` the count per window `w` (seconds), `r` the requests
/// left now, `t` the seconds until the whole allowance is back.
fn headers(
    verdicts: &[(&RateLimit, Verdict)],
    service: Option<&str>,
) -> (HeaderValue, HeaderValue) {
    let mut policy = String::new();
    let mut state = String::new();
    for (i, (limit, verdict)) in verdicts.iter().enumerate() {
        let separator = if i == 0 { "" } else { ", " };
        let rate = limit.rate_for(service);
        let _ = write!(
            policy,
            "{separator}\"{}\";q={};w={}",
            limit.name,
            rate.count,
            rate.period.as_secs()
        );
        let _ = write!(
            state,
            "{separator}\"{}\";r={};t={}",
            limit.name,
            verdict.remaining,
            seconds_up(verdict.reset_after)
        );
    }
    // Names are checked at load time to be letters, digits and `._:/-`: always a valid value.
    let value = |s: String| HeaderValue::try_from(s).unwrap_or(HeaderValue::from_static(""));
    (value(policy), value(state))
}
