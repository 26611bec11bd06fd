//! The HTTP rules every layer of tollgate agrees on: pure functions over `http` types, with no
//! configuration, I/O or state, so the config loader, the auth core, the decision core and the
//! transports all judge a request the same way.
#![forbid(unsafe_code)]

pub mod forwarded;
pub mod grpc;
pub mod hop;
pub mod host;
pub mod identity;
pub mod path;
pub mod request_id;
pub mod upgrade;

/// A boxed error, as bodies and clients produce them.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A boxed future, returned by the public async functions that other crates await on cold
/// paths (start-up, control-plane fetches, the state store, the CLI). An awaited future's state
/// machine is compiled in the crate that polls it, so an `async fn` awaited from four crates is
/// compiled four times, with everything it awaits; boxed, it is compiled once, in its own
/// crate. Measured: about 1 MB of the binary was such copies of the HTTP, TLS and Redis code.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;
