//! What the vendor credential caches report while they log in and refresh, for an observer
//! above them (the gateway's metrics registry).

use std::time::{Duration, SystemTime};

/// Receives the credential caches' events; every method does nothing unless implemented.
pub trait CredentialEvents: Send + Sync {
    /// A login for `provider` starts, for `reason` (`initial`, `refresh`, `expired`, ...).
    fn login_started(&self, _provider: &str, _reason: &'static str) {}
    /// One login attempt for `provider` ended after `duration`.
    fn login_finished(&self, _provider: &str, _ok: bool, _duration: Duration) {}
    /// A vendor refused a fresh token again within `relogin_interval`: no new login.
    fn login_suppressed(&self, _provider: &str) {}
    /// `provider`'s token in use now expires at `expires_at`.
    fn token_obtained(&self, _provider: &str, _expires_at: SystemTime) {}
}

/// No observer.
impl CredentialEvents for () {}
