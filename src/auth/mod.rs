//! Inbound authentication: token extraction, verification keys, JWKS, verification and route
//! policies.

pub mod certificate;
pub mod decide;
pub mod extract;
pub mod jwks;
#[cfg(feature = "layer")]
pub mod layer;
pub mod verify;

pub use tollgate_config::{keys, policy};
pub use verify::{AuthError, Verifier};
