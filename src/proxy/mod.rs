//! Forwarding requests upstream: header hygiene and the pooled client.

pub mod forward;
pub mod headers;
