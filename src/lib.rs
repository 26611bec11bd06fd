//! tollgate: an authenticating reverse-proxy gateway.
//!
//! [`server::start`] binds the listeners for a validated [`Config`] and serves the request
//! pipeline in [`gateway`]; tests and the binary both go through it.
#![forbid(unsafe_code)]

pub mod tokens;

pub use tollgate_auth as auth;
pub use tollgate_config as config;
pub use tollgate_config::{keygen, signer as assertion};
pub use tollgate_core as core;
pub use tollgate_core::credentials as upstream_auth;
pub use tollgate_core::{error, routing};
pub use tollgate_http::{identity, request_id};
pub use tollgate_state::{revocation, usage};

pub use config::{Config, ConfigError, Env};
pub use error::GatewayError;
pub use tollgate_server::{RunningGateway, StartError, start};
pub use tollgate_server::{explain, gateway, metrics, telemetry};
