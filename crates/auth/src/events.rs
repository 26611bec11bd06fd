//! What the verifier learns in the background or once per token, for an observer above it (the
//! gateway's metrics registry, or whatever an embedding service passes in). Per-request results
//! are not events: they are returned in the [`Verdict`](crate::decide::Verdict) and observed
//! by the caller once the request is answered.

use tollgate_config::policy::RoutePolicy;
use tollgate_http::identity::Identity;
use tollgate_state::events::StateEvents;

use crate::refusal::Refusal;

/// Receives the verifier's events (and, as a [`StateEvents`], its revocation list's); every
/// method does nothing unless implemented.
pub trait AuthEvents: StateEvents {
    /// A JWKS fetch for `issuer` succeeded or failed.
    fn jwks_fetched(&self, _issuer: &str, _ok: bool) {}
    /// A key of `issuer`'s JWKS was refused for `reason` (a fixed label).
    fn jwks_key_refused(&self, _issuer: &str, _reason: &'static str) {}
    /// A service token of `service` expiring at `expires_at` (seconds) was verified for the
    /// first time (later uses hit the verified-token cache and report nothing).
    fn service_token_verified(&self, _service: &str, _expires_at: u64) {}
    /// The tower layer judged a request under `policy` (the gateway observes its own
    /// requests from their outcome instead).
    fn request_judged(
        &self,
        _policy: &RoutePolicy,
        _caller: Option<&Identity>,
        _refusal: Option<&Refusal>,
    ) {
    }
}

/// No observer.
impl AuthEvents for () {}
