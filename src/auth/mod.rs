//! Inbound authentication: token extraction, verification keys, JWKS, verification and route
//! policies.

pub mod certificate;
pub mod decide;
pub mod extract;
pub mod jwks;
pub mod keys;
#[cfg(feature = "layer")]
pub mod layer;
pub mod policy;
pub mod verify;

pub use verify::{AuthError, Verifier};
