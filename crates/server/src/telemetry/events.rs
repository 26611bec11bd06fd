//! The per-request lines: the access log (every request) and the audit trail (decisions on
//! service-only routes and every denial). Each is written by [`writer`](super::writer) when it
//! is installed, else logged as the tracing event it stands for (its `fallback`, which the tests
//! also use as the reference the hand-written line must equal byte for byte).

use super::line::{Line, Value};
use super::writer;

/// One request's access-log fields.
#[derive(Debug, Clone, Copy)]
pub struct AccessLine<'a> {
    /// The gateway's request id.
    pub request_id: &'a str,
    /// The client's address (the forwarded one when the peer is a trusted proxy).
    pub client: Option<&'a str>,
    /// The request id the client sent, kept apart from the gateway's own.
    pub client_request_id: Option<&'a str>,
    /// The request method.
    pub method: &'a str,
    /// The normalised path, or `-`.
    pub path: &'a str,
    /// The route's name, or `-`.
    pub route: &'a str,
    /// The status answered.
    pub status: u16,
    /// From the request's arrival to its response head.
    pub duration_us: u64,
    /// How long the upstream took, when it was asked.
    pub upstream_us: Option<u64>,
    /// The response body's size, when known.
    pub bytes_out: Option<u64>,
    /// The OpenTelemetry trace id, when traces are on.
    pub trace_id: Option<&'a str>,
}

impl AccessLine<'_> {
    /// Whether the `access` target is enabled at `INFO`.
    pub fn enabled() -> bool {
        tracing::enabled!(target: "access", tracing::Level::INFO)
    }

    /// Logs the line on the `access` target, if it is enabled at `INFO`.
    pub fn log(&self) {
        if !Self::enabled() {
            return;
        }
        let fields = self.fields();
        let line = Line {
            target: "access",
            fields: &fields,
        };
        writer::write(&line, || self.fallback());
    }

    /// The fields, in tracing's order.
    fn fields(&self) -> [(&'static str, Option<Value<'_>>); 11] {
        [
            ("request_id", Some(Value::Str(self.request_id))),
            ("client", self.client.map(Value::Display)),
            ("client_request_id", self.client_request_id.map(Value::Str)),
            ("method", Some(Value::Display(self.method))),
            ("path", Some(Value::Str(self.path))),
            ("route", Some(Value::Str(self.route))),
            ("status", Some(Value::Number(u64::from(self.status)))),
            ("duration_us", Some(Value::Number(self.duration_us))),
            ("upstream_us", self.upstream_us.map(Value::Number)),
            ("bytes_out", self.bytes_out.map(Value::Number)),
            ("trace_id", self.trace_id.map(Value::Str)),
        ]
    }

    /// The same line as a tracing event.
    pub(crate) fn fallback(&self) {
        tracing::info!(
            target: "access",
            request_id = self.request_id,
            client = self.client.map(tracing::field::display),
            client_request_id = self.client_request_id,
            method = tracing::field::display(self.method),
            path = self.path,
            route = self.route,
            status = self.status,
            duration_us = self.duration_us,
            upstream_us = self.upstream_us,
            bytes_out = self.bytes_out,
            trace_id = self.trace_id,
        );
    }
}

/// One audit event's fields. Never the token.
#[derive(Debug, Clone, Copy)]
pub struct AuditLine<'a> {
    /// The gateway's request id.
    pub request_id: &'a str,
    /// The id an untrusted client sent, recorded apart from ours.
    pub client_request_id: Option<&'a str>,
    /// The matched route's name.
    pub route: &'a str,
    /// The route's policy.
    pub policy: &'a str,
    /// The request method.
    pub method: &'a str,
    /// The normalised path.
    pub path: &'a str,
    /// `allow` or `deny`.
    pub decision: &'a str,
    /// Why it was denied (empty when allowed).
    pub reason: &'a str,
    /// The caller's service, for a service token.
    pub service: Option<&'a str>,
    /// The token's subject.
    pub user_id: Option<&'a str>,
    /// `access` or `service`.
    pub token_type: Option<&'a str>,
}

impl AuditLine<'_> {
    /// Whether the `audit` target is enabled at `INFO`.
    pub fn enabled() -> bool {
        tracing::enabled!(target: "audit", tracing::Level::INFO)
    }

    /// Logs the event on the `audit` target, if it is enabled at `INFO`.
    pub fn log(&self) {
        if !Self::enabled() {
            return;
        }
        let fields = self.fields();
        let line = Line {
            target: "audit",
            fields: &fields,
        };
        writer::write(&line, || self.fallback());
    }

    /// The fields, in tracing's order.
    fn fields(&self) -> [(&'static str, Option<Value<'_>>); 11] {
        [
            ("request_id", Some(Value::Str(self.request_id))),
            ("client_request_id", self.client_request_id.map(Value::Str)),
            ("route", Some(Value::Display(self.route))),
            ("policy", Some(Value::Str(self.policy))),
            ("method", Some(Value::Display(self.method))),
            ("path", Some(Value::Str(self.path))),
            ("decision", Some(Value::Str(self.decision))),
            ("reason", Some(Value::Str(self.reason))),
            ("service", self.service.map(Value::Str)),
            ("user_id", self.user_id.map(Value::Str)),
            ("token_type", self.token_type.map(Value::Str)),
        ]
    }

    /// The same event as a tracing event.
    pub(crate) fn fallback(&self) {
        tracing::info!(
            target: "audit",
            request_id = self.request_id,
            client_request_id = self.client_request_id,
            route = tracing::field::display(self.route),
            policy = self.policy,
            method = tracing::field::display(self.method),
            path = self.path,
            decision = self.decision,
            reason = self.reason,
            service = self.service,
            user_id = self.user_id,
            token_type = self.token_type,
        );
    }
}

#[cfg(test)]
mod tests;
