//! The HTTP rules every layer of tollgate agrees on: pure functions over `http` types, with no
//! configuration, I/O or state, so the config loader, the auth core, the decision core and the
//! transports all judge a request the same way.
#![forbid(unsafe_code)]

pub mod forwarded;
pub mod hop;
pub mod host;
pub mod identity;
pub mod path;
pub mod request_id;
pub mod upgrade;

/// A boxed error, as bodies and clients produce them.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
