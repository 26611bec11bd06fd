//! The admin listener: health, readiness, metrics, the JWKS document, and the console.

pub mod console;
pub mod endpoints;

pub use endpoints::{AdminState, probe};
