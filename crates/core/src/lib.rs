//! tollgate's decision core, without sockets: for a request and the peer it came from, decide
//! host, path, route, caller and policy, then build the one upstream request (rewrite rules,
//! upgrades, identity assertion, vendor credential). Nothing is recorded while deciding: what
//! the observers need is in the [`Trace`].
#![forbid(unsafe_code)]

mod build;
pub mod credentials;
pub mod decide;
pub mod error;
pub mod limits;
pub mod response;
pub mod rewrite;
pub mod routing;
pub mod trace;
mod upstream;

pub use decide::{Attached, Core, CoreEvents, Decision};
pub use error::GatewayError;
pub use tollgate_http::{forwarded, host, upgrade};
pub use trace::{AuthOutcome, LimitNote, Step, Steps, Trace};
