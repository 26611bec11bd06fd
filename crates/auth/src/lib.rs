//! tollgate's auth core, the part an axum or hyper service embeds: where tokens come from,
//! JWKS, verification against the configured issuers (and the revocation list), the route
//! policy's verdict, the identity headers, the refusal table, and the tower layer (feature
//! `layer`). No metrics registry, CLI, X.509 parser or log subscriber: observers implement
//! [`AuthEvents`].
#![forbid(unsafe_code)]

pub mod certificate;
mod claims;
pub mod decide;
pub mod discovery;
pub mod events;
pub mod extract;
pub mod introspection;
pub mod jwks;
#[cfg(feature = "layer")]
pub mod layer;
pub mod refusal;
pub mod verify;

pub use events::AuthEvents;
pub use refusal::Refusal;
pub use tollgate_config::{keys, policy};
pub use tollgate_http::identity::{self, Identity};
pub use verify::{AuthError, Rejected, Verifier};
