//! The way out: the pooled HTTP/1 connections and the TLS client to upstreams, in-flight
//! limits, the exchange with its upgrade tunnel, and the vendor route's replay-on-401.

pub mod body;
pub mod echo;
pub mod forward;
pub mod forwarder;
pub mod limit;
pub mod pool;
pub mod vendor;
