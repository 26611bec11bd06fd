//! The events the other crates report through their observer traits, as metrics: the
//! verifier's, the vendor credential caches' and the state stores'.

use std::time::{Duration, SystemTime};

use super::{IssuerReason, Metrics, ProviderLabel, ProviderReason};

/// The verifier's background events.
impl tollgate_auth::AuthEvents for Metrics {
    fn jwks_fetched(&self, issuer: &str, ok: bool) {
        self.record_jwks_fetch(issuer, ok);
    }

    fn jwks_key_refused(&self, issuer: &str, reason: &'static str) {
        self.jwks_keys_refused
            .get_or_create(&IssuerReason {
                issuer: issuer.to_owned(),
                reason,
            })
            .inc();
    }

    fn service_token_verified(&self, service: &str, expires_at: u64) {
        self.record_service_token(service, expires_at);
    }
}

/// The vendor credential caches' events.
impl tollgate_core::credentials::events::CredentialEvents for Metrics {
    fn login_started(&self, provider: &str, reason: &'static str) {
        self.upstream_login_reasons
            .get_or_create(&ProviderReason {
                provider: provider.to_owned(),
                reason,
            })
            .inc();
    }

    fn login_finished(&self, provider: &str, ok: bool, duration: Duration) {
        self.record_login(provider, ok, duration);
    }

    fn login_suppressed(&self, provider: &str) {
        self.upstream_logins_suppressed
            .get_or_create(&ProviderLabel {
                provider: provider.to_owned(),
            })
            .inc();
    }

    fn token_obtained(&self, provider: &str, expires_at: SystemTime) {
        self.record_token_expiry(provider, expires_at);
    }
}

/// The state stores' background events, as gauges and counters.
impl tollgate_state::events::StateEvents for Metrics {
    fn store_reachable(&self, up: bool) {
        self.state_store_up.set(i64::from(up));
    }

    // The gauge is read from the limiter when /metrics is scraped; this only logs the change.
    fn rate_limits_shared(&self, up: bool) {
        if up {
            tracing::info!("rate limits are kept in Redis again");
        } else {
            tracing::warn!("Redis unreachable: each replica keeps its share of every rate limit");
        }
    }

    fn revocations_loaded(&self, in_force: usize, unreadable: usize) {
        self.revocations_in_force
            .set(i64::try_from(in_force).unwrap_or(i64::MAX));
        self.revocation_entries_unreadable
            .set(i64::try_from(unreadable).unwrap_or(i64::MAX));
    }

    fn revocation_load_failed(&self) {
        self.revocation_load_failures.inc();
    }
}
