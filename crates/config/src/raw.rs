//! The config file as written: a serde mirror of `tollgate.toml`, before validation.
//!
//! Every struct denies unknown fields so that a typo never silently turns a check off. Each
//! section's raw form lives with its validation; this module gathers them into the whole file
//! and re-exports them under `raw::`.

use serde::Deserialize;

pub use crate::admin::RawAdmin;
pub use crate::assertion::RawAssertion;
pub use crate::identity::RawIdentity;
pub use crate::issuers::{RawIssuer, RawMaxLifetime, RawPublicKey, RawSecret, RawSigningKey};
pub use crate::limits::RawLimits;
pub use crate::listeners::RawServer;
pub use crate::log::RawLog;
pub use crate::providers::{RawProvider, RawProviderKind};
pub use crate::routes::{RawPolicy, RawRoute};
pub use crate::state::RawState;
pub use crate::telemetry::RawTelemetry;
pub use crate::tokens::RawTokens;
pub use crate::values::{HumanDuration, MAX_DURATION, SecretText, parse_duration};

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Listeners and shutdown.
    #[serde(default)]
    pub server: RawServer,
    /// Connection and request limits.
    #[serde(default)]
    pub limits: RawLimits,
    /// Logging.
    #[serde(default)]
    pub log: RawLog,
    /// Token issuers the gateway accepts.
    #[serde(default)]
    pub issuers: Vec<RawIssuer>,
    /// Identity header settings.
    #[serde(default)]
    pub identity: RawIdentity,
    /// Upstream credential providers, referenced by routes' `upstream_auth`.
    #[serde(default)]
    pub providers: Vec<RawProvider>,
    /// Service token tooling (`tollgate token issue`).
    #[serde(default)]
    pub tokens: RawTokens,
    /// Routes, matched by host and longest path prefix.
    #[serde(default)]
    pub routes: Vec<RawRoute>,
    /// Where shared state (the revocation list) lives.
    #[serde(default)]
    pub state: RawState,
    /// The key that signs the identity assertion of `identity_assertion` routes. Default: none.
    pub assertion: Option<RawAssertion>,
    /// The admin console.
    #[serde(default)]
    pub admin: RawAdmin,
    /// OpenTelemetry traces. Default: off.
    #[serde(default)]
    pub telemetry: RawTelemetry,
}
