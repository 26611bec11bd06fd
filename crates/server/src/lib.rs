//! tollgate's server: the transports around the socket-free core and the observers after it.
//!
//! ```text
//! listen (accept) → conn (socket, bodies) → gateway: core decide → outbound (forward)
//!                                                  → observe (metrics, audit, usage, log)
//! ```
//!
//! [`start`] binds the listeners for a validated config and serves until stopped; the admin
//! listener serves health, metrics, the JWKS document and the console.
#![forbid(unsafe_code)]

pub mod admin;
pub mod conn;
pub mod explain;
pub mod gateway;
pub mod listen;
pub mod metrics;
pub mod observe;
pub mod otel;
pub mod outbound;
pub mod reload;
pub mod start;
pub mod table;
pub mod telemetry;

pub use start::{RunningGateway, StartError, start};
