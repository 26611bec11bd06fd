//! `tollgate token usage`: one row per service, from the usage log and the revocation list.

use std::collections::BTreeMap;

use serde::Serialize;

use super::TokenUse;
use crate::revocation::Revocation;

/// A token expiring within this many seconds counts as expiring soon (30 days).
pub const EXPIRING_SOON_SECS: u64 = 30 * 24 * 3600;

/// One service's tokens, as `tollgate token usage` prints them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ServiceUsage {
    /// The service.
    pub service: String,
    /// Whether the service is in the config's `[tokens] services`.
    pub registered: bool,
    /// Tokens seen and still valid: not expired, not revoked.
    pub tokens_in_use: usize,
    /// The latest sighting of any of its tokens, seconds since the epoch.
    pub last_seen: Option<u64>,
    /// Of the tokens in use, those expiring within 30 days.
    pub expiring_soon: usize,
    /// The earliest expiry among the tokens in use.
    pub next_expiry: Option<u64>,
    /// Tokens seen that are now revoked (by `jti` or by the service's revocation).
    pub revoked_tokens: usize,
    /// When the whole service was last revoked, if a service revocation is in force.
    pub service_revoked_at: Option<u64>,
}

/// A row per service of `registry` (in its order, also when never seen), then per other
/// service seen (by name).
pub fn report(
    registry: &[String],
    usage: &[(String, TokenUse)],
    revocations: &[Revocation],
    now: u64,
) -> Vec<ServiceUsage> {
    let in_force = || revocations.iter().filter(|r| r.expires_at > now);
    let revoked_jti = |jti: &str| in_force().any(|r| r.jti.as_deref() == Some(jti));
    let service_revoked = |service: &str| {
        in_force()
            .filter(|r| r.service.as_deref() == Some(service))
            .map(|r| r.revoked_at)
            .max()
    };
    let mut rows: BTreeMap<&str, ServiceUsage> = BTreeMap::new();
    for service in registry {
        rows.entry(service).or_insert_with(|| ServiceUsage {
            service: service.clone(),
            registered: true,
            service_revoked_at: service_revoked(service),
            ..ServiceUsage::default()
        });
    }
    for (jti, seen) in usage.iter().filter(|(_, u)| u.expires_at > now) {
        let row = rows
            .entry(seen.service.as_str())
            .or_insert_with(|| ServiceUsage {
                service: seen.service.clone(),
                service_revoked_at: service_revoked(&seen.service),
                ..ServiceUsage::default()
            });
        row.last_seen = row.last_seen.max(Some(seen.last_seen));
        // A token seen before its service was revoked may be the revoked one; the list does
        // not keep `iat`, so a sighting up to the revocation counts as revoked.
        let by_service = row
            .service_revoked_at
            .is_some_and(|at| seen.last_seen <= at);
        if revoked_jti(jti) || by_service {
            row.revoked_tokens += 1;
            continue;
        }
        row.tokens_in_use += 1;
        if seen.expires_at <= now.saturating_add(EXPIRING_SOON_SECS) {
            row.expiring_soon += 1;
        }
        row.next_expiry = Some(
            row.next_expiry
                .map_or(seen.expires_at, |e| e.min(seen.expires_at)),
        );
    }
    let order = |row: &ServiceUsage| {
        registry
            .iter()
            .position(|s| *s == row.service)
            .unwrap_or(usize::MAX)
    };
    let mut rows: Vec<ServiceUsage> = rows.into_values().collect();
    rows.sort_by_key(|row| order(row));
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(service: &str, last_seen: u64, expires_at: u64) -> TokenUse {
        TokenUse {
            service: service.into(),
            issuer: "internal".into(),
            last_seen,
            expires_at,
        }
    }

    #[test]
    fn each_service_counts_its_live_tokens_the_expiring_and_the_revoked() {
        let now = 1_000_000;
        let day = 24 * 3600;
        let usage = vec![
            ("o1".to_owned(), seen("orders", now - 10, now + 365 * day)),
            ("o2".to_owned(), seen("orders", now - 5, now + 10 * day)),
            ("o3".to_owned(), seen("orders", now - 50, now + 365 * day)),
            ("x1".to_owned(), seen("stranger", now - 1, now + 365 * day)),
            ("gone".to_owned(), seen("billing", now - 1, now - 1)),
        ];
        let revocations = vec![Revocation {
            jti: Some("o3".into()),
            service: None,
            revoked_at: now - 20,
            expires_at: now + day,
            reason: None,
        }];
        let rows = report(
            &["billing".to_owned(), "orders".to_owned()],
            &usage,
            &revocations,
            now,
        );
        let names: Vec<_> = rows.iter().map(|r| r.service.as_str()).collect();
        assert_eq!(names, ["billing", "orders", "stranger"]);
        assert_eq!(
            rows[0],
            ServiceUsage {
                service: "billing".into(),
                registered: true,
                ..ServiceUsage::default()
            },
            "an expired token is not in use; a registered service is listed anyway"
        );
        let orders = &rows[1];
        assert_eq!(orders.tokens_in_use, 2);
        assert_eq!(orders.expiring_soon, 1);
        assert_eq!(orders.revoked_tokens, 1);
        assert_eq!(orders.last_seen, Some(now - 5));
        assert_eq!(orders.next_expiry, Some(now + 10 * day));
        assert!(!rows[2].registered);
    }
}
