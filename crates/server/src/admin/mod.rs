//! The admin listener: health, readiness, metrics, the JWKS document, and the console.

pub mod admin;
pub mod console;
