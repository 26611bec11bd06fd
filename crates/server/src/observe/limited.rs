//! The callers most often refused by a rate limit, for the console: a bounded table of counts
//! (the "space saving" heavy-hitters sketch: when full, the smallest count makes room).
//!
//! A caller is named by what the limit keyed it by: a service or tenant as the token names it,
//! a client by its address (both already in the access log), a user by its issuer and a keyed
//! pseudonym of its id (the console shows no user id; the request id finds the audit line).

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use tollgate_config::KeyBy;
use tollgate_http::identity::{Identity, X_TENANT_ID};

/// Most callers tracked.
pub const CAPACITY: usize = 256;

/// One limited caller.
#[derive(Debug, Clone, Serialize)]
pub struct LimitedCaller {
    /// Who, as the limit keyed it.
    pub caller: String,
    /// The route that refused it last.
    pub route: String,
    /// The limit's name.
    pub limit: String,
    /// Refusals counted (an upper bound once the table has been full).
    pub refused: u64,
    /// The last refusal, seconds since the epoch.
    pub last_at: u64,
    /// The last refused request's id.
    pub last_request_id: String,
}

/// The table; empty and never filled when the console is off.
#[derive(Debug)]
pub struct LimitedCallers {
    on: bool,
    kept: Mutex<HashMap<String, LimitedCaller>>,
    pseudonyms: std::collections::hash_map::RandomState,
}

impl LimitedCallers {
    /// A table that counts only when `on` (the console is on).
    pub fn new(on: bool) -> Self {
        Self {
            on,
            kept: Mutex::new(HashMap::new()),
            pseudonyms: std::collections::hash_map::RandomState::new(),
        }
    }

    /// Whether it counts (the console is on).
    pub fn is_on(&self) -> bool {
        self.on
    }

    /// The caller's name under a limit keyed `by`.
    fn name(&self, by: KeyBy, identity: Option<&Identity>, client: &str) -> String {
        let Some(identity) = identity.filter(|_| !matches!(by, KeyBy::ClientIp | KeyBy::Route))
        else {
            return match by {
                KeyBy::Route => "everyone (route)".to_owned(),
                _ => format!("client {client}"),
            };
        };
        let tenant = identity
            .headers
            .iter()
            .find(|(name, _)| name == X_TENANT_ID);
        match (&identity.service, tenant) {
            (_, Some((_, tenant))) if by == KeyBy::Tenant => {
                format!("tenant {}", String::from_utf8_lossy(tenant.as_bytes()))
            }
            (Some(service), _) => format!("service {service}"),
            (None, _) => format!(
                "user of {} #{:06x}",
                identity.issuer,
                self.pseudonyms.hash_one(&identity.subject) & 0xff_ffff
            ),
        }
    }

    /// Counts one refusal of the caller.
    pub fn record(
        &self,
        (route, limit, by): (&Arc<str>, &Arc<str>, KeyBy),
        identity: Option<&Identity>,
        client: &str,
        request_id: &str,
    ) {
        if !self.on {
            return;
        }
        let caller = self.name(by, identity, client);
        let Ok(mut kept) = self.kept.lock() else {
            return;
        };
        let floor = if kept.len() >= CAPACITY && !kept.contains_key(&caller) {
            let smallest = kept
                .iter()
                .min_by_key(|(_, c)| c.refused)
                .map(|(name, c)| (name.clone(), c.refused));
            smallest.map_or(0, |(name, refused)| {
                kept.remove(&name);
                refused
            })
        } else {
            0
        };
        let entry = kept.entry(caller.clone()).or_insert_with(|| LimitedCaller {
            caller,
            route: String::new(),
            limit: String::new(),
            refused: floor,
            last_at: 0,
            last_request_id: String::new(),
        });
        entry.refused += 1;
        if *entry.route != **route || *entry.limit != **limit {
            entry.route = route.to_string();
            entry.limit = limit.to_string();
        }
        entry.last_at = tollgate_state::clock::now();
        entry.last_request_id = request_id.to_owned();
    }

    /// The `n` callers refused most, most first.
    pub fn top(&self, n: usize) -> Vec<LimitedCaller> {
        let mut all: Vec<LimitedCaller> = self
            .kept
            .lock()
            .map(|kept| kept.values().cloned().collect())
            .unwrap_or_default();
        all.sort_by(|a, b| b.refused.cmp(&a.refused).then(a.caller.cmp(&b.caller)));
        all.truncate(n);
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_heaviest_callers_stay_and_the_table_stays_bounded() {
        let table = LimitedCallers::new(true);
        let (route, limit): (Arc<str>, Arc<str>) = ("/api".into(), "ip".into());
        let place = (&route, &limit, KeyBy::ClientIp);
        for _ in 0..50 {
            table.record(place, None, "10.0.0.1", "r");
        }
        for i in 0..10_000 {
            table.record(place, None, &format!("10.1.{}.{}", i / 256, i % 256), "r");
        }
        let top = table.top(3);
        assert_eq!(top[0].caller, "client 10.0.0.1");
        assert_eq!(top[0].refused, 50);
        assert!(table.kept.lock().unwrap().len() <= CAPACITY);
        assert!(LimitedCallers::new(false).top(5).is_empty());
    }
}
