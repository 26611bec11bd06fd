//! A route's rate limits and quotas (`rate_limit = {...}` or `rate_limits = [...]`): as written
//! and validated.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::RawRoute;
use crate::error::{ConfigError, invalid};

/// One limit as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRateLimit {
    /// `"<count>/<unit>"`, unit `s`, `m`, `h` or `d`: e.g. `"100/s"`, `"10000/d"`.
    pub rate: String,
    /// Most requests allowed at once from a rested key. Default: the rate's count.
    pub burst: Option<u64>,
    /// Who shares one allowance: `"identity"` (default), `"service"`, `"tenant"`,
    /// `"client_ip"` or `"route"`.
    #[serde(default)]
    pub by: KeyBy,
    /// Name in metrics, logs and the `RateLimit` headers. Default `"<by>:<rate>"`.
    pub name: Option<String>,
    /// Other rates for some services: `{ billing = "500/s" }` or
    /// `{ billing = { rate = "500/s", burst = 50 } }`.
    #[serde(default)]
    pub overrides: BTreeMap<String, RawOverride>,
    /// Send `RateLimit-Policy` and `RateLimit` on allowed answers too (a refusal always has
    /// them). Default false.
    #[serde(default)]
    pub headers: bool,
}

/// A per-service rate: a rate alone, or a rate and its burst.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RawOverride {
    /// `"500/s"`: the burst is the count.
    Rate(String),
    /// `{ rate = "500/s", burst = 50 }`.
    Full {
        /// The rate.
        rate: String,
        /// The burst. Default: the count.
        burst: Option<u64>,
    },
}

/// Who shares one allowance. A caller without what the limit keys by (a user token on a
/// limit by service, a token without a tenant) is keyed by its identity; an anonymous caller by
/// its address.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyBy {
    /// Issuer and user id, or the service name.
    #[default]
    Identity,
    /// The service name.
    Service,
    /// The `x-tenant-id` the token vouches for.
    Tenant,
    /// The client address (after trusted proxies).
    ClientIp,
    /// Everyone: one allowance for the route.
    Route,
}

impl KeyBy {
    /// The name as written, for metrics and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyBy::Identity => "identity",
            KeyBy::Service => "service",
            KeyBy::Tenant => "tenant",
            KeyBy::ClientIp => "client_ip",
            KeyBy::Route => "route",
        }
    }
}

/// A rate: `count` requests per `period`, at most `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Requests per period.
    pub count: u64,
    /// The period.
    pub period: Duration,
    /// Most requests at once.
    pub burst: u64,
}

impl Rate {
    /// The emission interval: one request's share of the period, in nanoseconds.
    pub fn interval_nanos(&self) -> u64 {
        // A period is at most a day (8.64e13 ns): u64 arithmetic, no 128-bit division per request.
        self.period.as_nanos() as u64 / self.count
    }

    /// How far ahead of time a key may run: `burst - 1` intervals, in nanoseconds.
    pub fn tolerance_nanos(&self) -> u64 {
        self.interval_nanos().saturating_mul(self.burst - 1)
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.count, unit(self.period))?;
        if self.burst != self.count {
            write!(f, " burst {}", self.burst)?;
        }
        Ok(())
    }
}

/// One validated limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimit {
    /// Its name (metric label, `RateLimit` item), unique on the route.
    pub name: Arc<str>,
    /// Who shares one allowance.
    pub by: KeyBy,
    /// The rate for everyone not overridden.
    pub rate: Rate,
    /// Per-service rates.
    pub overrides: Vec<(String, Rate)>,
    /// Send the `RateLimit` headers on allowed answers.
    pub headers: bool,
}

impl RateLimit {
    /// The rate for a caller of `service` (if any).
    pub fn rate_for(&self, service: Option<&str>) -> &Rate {
        service
            .and_then(|s| self.overrides.iter().find(|(name, _)| name == s))
            .map_or(&self.rate, |(_, rate)| rate)
    }
}

/// The route's limits, in the order written.
pub(super) fn parse_rate_limits(
    route: &RawRoute,
    key: &str,
    file: &str,
) -> Result<Vec<RateLimit>, ConfigError> {
    let (raws, field): (Vec<&RawRateLimit>, &str) = match (&route.rate_limit, &route.rate_limits) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                file,
                &format!("{key}.rate_limit"),
                "set rate_limit or rate_limits, not both",
            ));
        }
        (Some(one), None) => (vec![one], "rate_limit"),
        (None, Some(many)) => (many.iter().collect(), "rate_limits"),
        (None, None) => return Ok(Vec::new()),
    };
    let mut limits: Vec<RateLimit> = Vec::with_capacity(raws.len());
    for (i, raw) in raws.into_iter().enumerate() {
        let key = if field == "rate_limit" {
            format!("{key}.rate_limit")
        } else {
            format!("{key}.rate_limits[{i}]")
        };
        let limit = parse_limit(raw, &key, file)?;
        if limits.iter().any(|l| l.name == limit.name) {
            return Err(invalid(
                file,
                &format!("{key}.name"),
                format!("a second limit named {:?} on this route", &*limit.name),
            ));
        }
        limits.push(limit);
    }
    Ok(limits)
}

fn parse_limit(raw: &RawRateLimit, key: &str, file: &str) -> Result<RateLimit, ConfigError> {
    let rate = parse_rate(&raw.rate, raw.burst)
        .map_err(|e| invalid(file, &format!("{key}.{}", e.field), e.reason))?;
    let name = match &raw.name {
        Some(name) => {
            check_name(name).map_err(|e| invalid(file, &format!("{key}.name"), e))?;
            name.clone()
        }
        None => format!("{}:{}/{}", raw.by.as_str(), rate.count, unit(rate.period)),
    };
    let mut overrides = Vec::with_capacity(raw.overrides.len());
    for (service, value) in &raw.overrides {
        let (text, burst) = match value {
            RawOverride::Rate(text) => (text, None),
            RawOverride::Full { rate, burst } => (rate, *burst),
        };
        let at = |field: &str| {
            if field == "rate" && matches!(value, RawOverride::Rate(_)) {
                format!("{key}.overrides.{service}")
            } else {
                format!("{key}.overrides.{service}.{field}")
            }
        };
        if service.is_empty() {
            return Err(invalid(file, &at("rate"), "a service name is not empty"));
        }
        let rate = parse_rate(text, burst).map_err(|e| invalid(file, &at(e.field), e.reason))?;
        overrides.push((service.clone(), rate));
    }
    Ok(RateLimit {
        name: name.into(),
        by: raw.by,
        rate,
        overrides,
        headers: raw.headers,
    })
}

fn unit(period: Duration) -> &'static str {
    match period.as_secs() {
        1 => "s",
        60 => "m",
        3600 => "h",
        _ => "d",
    }
}

/// A name fits in a structured-field string without escapes and reads well as a label.
fn check_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:/-".contains(&b))
    {
        return Err("1 to 64 letters, digits and . _ : / -");
    }
    Ok(())
}

/// Why a rate was refused, and which field holds the mistake.
#[derive(Debug)]
struct RateError {
    field: &'static str,
    reason: String,
}

/// `"<count>/<unit>"` with an optional burst.
fn parse_rate(text: &str, burst: Option<u64>) -> Result<Rate, RateError> {
    let bad_rate = |reason: String| RateError {
        field: "rate",
        reason,
    };
    let (count, unit) = text.trim().split_once('/').ok_or_else(|| {
        bad_rate(format!(
            "{text:?} is not a rate: write <count>/<unit>, unit s, m, h or d (e.g. \"100/s\")"
        ))
    })?;
    let count: u64 = count
        .trim()
        .parse()
        .ok()
        .filter(|c| (1..=1_000_000_000).contains(c))
        .ok_or_else(|| bad_rate(format!("{count:?} is not a count from 1 to 1000000000")))?;
    let period = match unit.trim() {
        "s" | "sec" | "second" => Duration::from_secs(1),
        "m" | "min" | "minute" => Duration::from_secs(60),
        "h" | "hour" => Duration::from_secs(3600),
        "d" | "day" => Duration::from_secs(86_400),
        other => return Err(bad_rate(format!("{other:?} is not a unit: s, m, h or d"))),
    };
    let burst = burst.unwrap_or(count);
    if !(1..=1_000_000_000).contains(&burst) {
        return Err(RateError {
            field: "burst",
            reason: "must be from 1 to 1000000000".to_owned(),
        });
    }
    Ok(Rate {
        count,
        period,
        burst,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_read_as_written() {
        let rate = parse_rate("100/s", Some(20)).unwrap();
        assert_eq!(rate.interval_nanos(), 10_000_000);
        assert_eq!(rate.tolerance_nanos(), 19 * 10_000_000);
        assert_eq!(rate.to_string(), "100/s burst 20");
        let daily = parse_rate("10000/d", None).unwrap();
        assert_eq!(daily.burst, 10_000);
        assert_eq!(daily.interval_nanos(), 8_640_000_000);
        assert_eq!(daily.to_string(), "10000/d");
        for (text, burst, field) in [
            ("100", None, "rate"),
            ("0/s", None, "rate"),
            ("-1/s", None, "rate"),
            ("10/w", None, "rate"),
            ("10/s", Some(0), "burst"),
            ("2000000000/s", None, "rate"),
        ] {
            assert_eq!(parse_rate(text, burst).unwrap_err().field, field, "{text}");
        }
    }

    #[test]
    fn names_are_plain() {
        assert!(check_name("daily-quota").is_ok());
        assert!(check_name("identity:100/s").is_ok());
        assert!(check_name("a \"b\"").is_err());
        assert!(check_name("").is_err());
    }
}
