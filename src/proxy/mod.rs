//! Forwarding requests upstream: header hygiene, connection pools.

pub mod forward;
pub use tollgate_http::hop as headers;
pub mod limit;
pub mod pool;
pub mod vendor;
