//! The way out: the pooled HTTP/1 connections and the TLS client to upstreams, in-flight
//! limits, the exchange with its upgrade tunnel, the vendor route's replay-on-401, and the
//! forward-auth answer that stands in for an upstream.

pub mod body;
pub mod echo;
pub mod forward;
pub mod forward_auth;
pub mod forwarder;
pub mod limit;
pub mod pool;
pub mod unacked;
pub mod vendor;
