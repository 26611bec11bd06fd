//! The label sets of every series. Each is bounded: route names, methods from a fixed list,
//! status codes, issuer, provider and service names from the config or from verified tokens;
//! never raw paths, user ids or tokens.

use std::sync::Arc;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};

/// HTTP methods as a bounded label.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(clippy::upper_case_acronyms)]
pub enum MethodLabel {
    /// GET
    GET,
    /// HEAD
    HEAD,
    /// POST
    POST,
    /// PUT
    PUT,
    /// PATCH
    PATCH,
    /// DELETE
    DELETE,
    /// OPTIONS
    OPTIONS,
    /// Anything else.
    OTHER,
}

impl From<&http::Method> for MethodLabel {
    fn from(method: &http::Method) -> Self {
        match *method {
            http::Method::GET => Self::GET,
            http::Method::HEAD => Self::HEAD,
            http::Method::POST => Self::POST,
            http::Method::PUT => Self::PUT,
            http::Method::PATCH => Self::PATCH,
            http::Method::DELETE => Self::DELETE,
            http::Method::OPTIONS => Self::OPTIONS,
            _ => Self::OTHER,
        }
    }
}

/// `route`, `method`, `status`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// Route name (`-` when none matched).
    pub route: Arc<str>,
    /// Method.
    pub method: MethodLabel,
    /// Status code.
    pub status: u16,
}

/// The exemplar of a latency observation: the trace of a sampled request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TraceExemplar {
    /// The OpenTelemetry trace id, 32 hex digits.
    pub trace_id: String,
}

/// `route`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabel {
    /// Route name.
    pub route: Arc<str>,
}

/// `protocol`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProtocolLabel {
    /// `http1` or `http2`.
    pub protocol: &'static str,
}

/// `route`, `result`, `token_type`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AuthLabels {
    /// Route name.
    pub route: Arc<str>,
    /// `allowed`, `missing`, `invalid`, `expired` or `forbidden`.
    pub result: &'static str,
    /// `access`, `service` or `none`.
    pub token_type: &'static str,
}

/// A name (issuer, provider, service) and a result.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NameResult {
    /// The name.
    pub name: String,
    /// `success` or `failure`.
    pub result: &'static str,
}

/// `issuer`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct IssuerLabel {
    /// Issuer name.
    pub issuer: String,
}

/// `provider`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProviderLabel {
    /// Provider name.
    pub provider: String,
}

/// `reason`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// Why.
    pub reason: &'static str,
}

/// `kind`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    /// What kind.
    pub kind: &'static str,
}

/// `result`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    /// `success` or `failure`.
    pub result: &'static str,
}

/// `provider`, `reason`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProviderReason {
    /// Provider name.
    pub provider: String,
    /// `initial`, `refresh` or `rejected_by_upstream`.
    pub reason: &'static str,
}

/// `issuer`, `reason`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct IssuerReason {
    /// Issuer name.
    pub issuer: String,
    /// Why (see [`tollgate_auth::keys::KeyRefusal::reason`]).
    pub reason: &'static str,
}

/// `service`, `result`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ServiceResult {
    /// A service of the registry (`[tokens] services`), or `other` (shared: no allocation).
    pub service: Arc<str>,
    /// `allowed`, `forbidden` or `revoked`.
    pub result: &'static str,
}

/// `service`, from the registry.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ServiceSeen {
    /// A service of the registry, or `other`.
    pub service: Arc<str>,
}

/// `service`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ServiceLabel {
    /// Service name from a verified service token.
    pub service: String,
}

/// `route`, `kind`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpstreamErrorLabels {
    /// Route name.
    pub route: Arc<str>,
    /// `connect`, `timeout` or `reset`.
    pub kind: &'static str,
}

/// `route`, `limit`, `by`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RateLimitLabels {
    /// Route name.
    pub route: Arc<str>,
    /// The limit's name (from the config).
    pub limit: Arc<str>,
    /// What the limit keys callers by: `identity`, `service`, `tenant`, `client_ip`, `route`.
    pub by: &'static str,
}
