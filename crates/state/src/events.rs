//! What the state stores report while they work in the background, for an observer (the
//! gateway's metrics registry) that lives above them: the stores never depend on it.

/// Receives the state stores' events; every method does nothing unless implemented.
pub trait StateEvents: Send + Sync {
    /// The store answered (`true`) or failed to (`false`) when last asked.
    fn store_reachable(&self, _up: bool) {}
    /// A revocation list was read; `in_force` entries are enforced from now on, `unreadable`
    /// stored entries were skipped.
    fn revocations_loaded(&self, _in_force: usize, _unreadable: usize) {}
    /// A revocation list could not be read; the previous one stays in force.
    fn revocation_load_failed(&self) {}
    /// The fleet's rate limits were kept in Redis (`true`) or, Redis failing, by each replica
    /// on its own share (`false`).
    fn rate_limits_shared(&self, _up: bool) {}
}

/// No observer.
impl StateEvents for () {}
