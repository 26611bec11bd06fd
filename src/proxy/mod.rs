//! Forwarding requests upstream: header hygiene, connection pools.

pub mod forward;
pub mod headers;
pub mod limit;
pub mod pool;
