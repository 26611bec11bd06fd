//! What a decision reports to the observers, filled in as the core gets to it: the request
//! ids, the client, the route, what authentication found, and the slow steps' times for traces.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use http::HeaderValue;
use tollgate_auth::Refusal;
use tollgate_config::KeyBy;
use tollgate_config::Route;
use tollgate_http::identity::Identity;
use tollgate_state::ratelimit::Keeper;

/// What authentication found: the caller (also when refused by policy or revoked) and the
/// refusal, if any. For the observers; the decision itself is in the `Result`.
#[derive(Debug, Clone)]
pub struct AuthOutcome {
    /// The verified caller, if any.
    pub caller: Option<Arc<Identity>>,
    /// Why the request was refused, if it was.
    pub refusal: Option<Refusal>,
}

/// What the observers (metrics, audit, usage, access log) report, filled in as the core gets
/// to it (also for refusals). The core only writes it: nothing is recorded while deciding.
#[derive(Debug)]
pub struct Trace {
    /// The request id the gateway uses.
    pub request_id: HeaderValue,
    /// A well-formed id an untrusted client sent, kept apart so it cannot pose as ours.
    pub client_request_id: Option<HeaderValue>,
    /// The client's address.
    pub client: Option<HeaderValue>,
    /// The normalised path: never the query, which may carry credentials.
    pub path: Option<String>,
    /// The matched route.
    pub route: Option<Arc<Route>>,
    /// What authentication found; `None` when the request did not get that far (or was an
    /// exempt preflight).
    pub auth: Option<AuthOutcome>,
    /// The request is a gRPC call, so a refusal is answered the gRPC way.
    pub grpc: bool,
    /// The slow steps, noted when traces are on (boxed: every request's future holds a
    /// `Trace`, and hyper moves that future once per request).
    pub steps: Option<Box<Steps>>,
    /// What the route's rate limits said, when it has any (boxed, like `steps`).
    pub limits: Option<Box<LimitNote>>,
}

/// What the route's limits said, for the answer's headers and the observers.
#[derive(Debug, Clone)]
pub struct LimitNote {
    /// `RateLimit-Policy` and `RateLimit`, when the answer carries them.
    pub headers: Option<(HeaderValue, HeaderValue)>,
    /// The limit that refused, if one did.
    pub refused_by: Option<(Arc<str>, KeyBy)>,
    /// Where the limits were kept (`Fallback` if any was: Redis was down).
    pub keeper: Keeper,
    /// Each limit checked offline: its name, rate and key class (for `explain`).
    pub checked: Vec<(Arc<str>, String, &'static str)>,
}

/// The slow steps of a decision, for the request's trace.
#[derive(Debug, Default)]
pub struct Steps {
    /// A token checked now, not found in the verified-token cache.
    pub verification: Option<Step>,
    /// The wait for a vendor credential that was not cached.
    pub credential: Option<Step>,
}

impl Trace {
    pub(crate) fn steps(&mut self) -> &mut Steps {
        self.steps.get_or_insert_with(Box::default)
    }
}

impl Default for Trace {
    fn default() -> Self {
        Self {
            request_id: HeaderValue::from_static("-"),
            client_request_id: None,
            client: None,
            path: None,
            route: None,
            auth: None,
            grpc: false,
            steps: None,
            limits: None,
        }
    }
}

/// When one slow step of a decision ran and how long it took, for the request's trace.
#[derive(Debug, Clone, Copy)]
pub struct Step {
    /// When it started.
    pub started: SystemTime,
    /// How long it took.
    pub took: Duration,
}

impl Step {
    /// The wall time, for the span, and the monotonic clock, for its length.
    pub(crate) fn start() -> (SystemTime, Instant) {
        (SystemTime::now(), Instant::now())
    }

    pub(crate) fn end((started, clock): (SystemTime, Instant)) -> Self {
        Self {
            started,
            took: clock.elapsed(),
        }
    }
}
