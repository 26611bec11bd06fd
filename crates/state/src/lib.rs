//! tollgate's shared state: the revocation list, the service-token usage log and the vendor
//! token a fleet shares, kept in the embedded file store or in Redis (feature `redis`), and the
//! one clock and one background refresher they all use.
#![forbid(unsafe_code)]

pub mod clock;
pub mod events;
pub mod ratelimit;
pub mod refresher;
pub mod revocation;
pub mod usage;
#[cfg(feature = "redis")]
pub mod vendor_token;
