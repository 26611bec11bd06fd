//! tollgate: an authenticating reverse-proxy gateway.
//!
//! [`server::start`] binds the listeners for a validated [`Config`] and serves the request
//! pipeline in [`gateway`]; tests and the binary both go through it.
#![forbid(unsafe_code)]

pub mod audit;
pub mod body;
pub mod client_certificate;
pub mod echo;
pub mod explain;
pub mod gateway;
pub mod metrics;
pub mod observe;
pub mod proxy;
pub mod refusals;
pub mod server;
pub mod telemetry;
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
pub use server::{RunningGateway, StartError, start};
