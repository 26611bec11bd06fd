//! Accepting and serving connections: the accept loop with its connection limits, one
//! connection's HTTP/1 or HTTP/2 service (and the parking of idle HTTP/1 connections, plain
//! ones in the lot), and the backstop that turns a panicking request into a 500.

pub mod backstop;
pub mod connection;
mod http1;
pub mod limits;
pub mod listener;
pub mod lot;
