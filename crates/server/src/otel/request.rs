//! One request's spans: the server span, from arrival to the response head, and the client
//! span of its upstream exchange, whose id the upstream receives as its parent in
//! `traceparent`. Attributes follow the OpenTelemetry HTTP conventions; the caller appears by
//! issuer, type and service name, never by token.

use http::HeaderMap;
use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry::trace::{Span as _, SpanKind, Status, TraceContextExt, Tracer as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_http::{HeaderExtractor, HeaderInjector};
use tollgate_auth::Refusal;
use tollgate_core::Step;

use super::Tracing;
use crate::observe::Outcome;

/// A request's server span, and the trace id the access log and refusal bodies name.
#[derive(Debug)]
pub struct RequestSpan {
    cx: Context,
    trace_id: String,
}

/// The upstream exchange's span, ended when the response head (or the failure) arrives.
#[derive(Debug)]
pub struct UpstreamSpan {
    cx: Context,
}

impl Tracing {
    /// Starts the server span of a request with `headers`, continuing the client's trace when
    /// its `traceparent` is well formed, else starting one.
    pub fn start(&self, headers: &HeaderMap) -> RequestSpan {
        let parent = self.propagator.extract(&HeaderExtractor(headers));
        let span = self
            .tracer
            .span_builder("request")
            .with_kind(SpanKind::Server)
            .start_with_context(&self.tracer, &parent);
        let trace_id = span.span_context().trace_id().to_string();
        RequestSpan {
            cx: parent.with_span(span),
            trace_id,
        }
    }

    /// Starts the upstream exchange's span under `request` and writes its context into the
    /// upstream request's `headers` (`traceparent`, `tracestate`), replacing the client's.
    pub fn upstream(
        &self,
        request: &RequestSpan,
        method: &http::Method,
        headers: &mut HeaderMap,
    ) -> UpstreamSpan {
        let span = self
            .tracer
            .span_builder(method_name(method))
            .with_kind(SpanKind::Client)
            .start_with_context(&self.tracer, &request.cx);
        let cx = request.cx.with_span(span);
        self.propagator
            .inject_context(&cx, &mut HeaderInjector(headers));
        // The propagator writes `tracestate` even when the trace has none: a client's stale
        // one is replaced, and an empty one is not sent.
        if headers.get(&TRACESTATE).is_some_and(|v| v.is_empty()) {
            headers.remove(&TRACESTATE);
        }
        UpstreamSpan { cx }
    }
}

impl Tracing {
    /// A span under `parent` for a step that already ran.
    fn step(&self, parent: &Context, name: &'static str, step: Step) {
        let mut span = self
            .tracer
            .span_builder(name)
            .with_kind(SpanKind::Internal)
            .with_start_time(step.started)
            .start_with_context(&self.tracer, parent);
        span.end_with_timestamp(step.started + step.took);
    }
}

impl RequestSpan {
    /// The trace id, 32 hex digits.
    pub fn trace_id(&self) -> &str {
        &self.trace_id
    }

    /// The trace id when this request's spans are recorded and exported.
    pub fn sampled_trace_id(&self) -> Option<&str> {
        self.cx
            .span()
            .span_context()
            .is_sampled()
            .then_some(self.trace_id.as_str())
    }

    /// Ends the server span with what the request came to, after the spans of the slow steps
    /// the core noted (a token checked now, a vendor credential waited for).
    pub fn finish(&self, tracing: &Tracing, outcome: &Outcome<'_>) {
        let span = self.cx.span();
        if !span.is_recording() {
            return;
        }
        let trace = outcome.trace;
        if let Some(steps) = &trace.steps {
            if let Some(step) = steps.verification {
                tracing.step(&self.cx, "verify token", step);
            }
            if let Some(step) = steps.credential {
                tracing.step(&self.cx, "vendor credential", step);
            }
        }
        let route = trace.route.as_ref().map(|r| r.name.clone());
        span.update_name(match &route {
            Some(route) => format!("{} {route}", outcome.method),
            None => method_name(outcome.method),
        });
        let mut attributes = vec![
            KeyValue::new("http.request.method", method_name(outcome.method)),
            KeyValue::new("http.response.status_code", i64::from(outcome.status)),
            KeyValue::new("tollgate.request_id", header_text(&trace.request_id)),
            KeyValue::new("tollgate.decision", decision(outcome)),
        ];
        if let Some(route) = route {
            attributes.push(KeyValue::new("http.route", route.to_string()));
        }
        if let Some(path) = &trace.path {
            attributes.push(KeyValue::new("url.path", path.clone()));
        }
        if let Some(client) = &trace.client {
            attributes.push(KeyValue::new("client.address", header_text(client)));
        }
        if let Some(caller) = trace.auth.as_ref().and_then(|a| a.caller.as_deref()) {
            attributes.push(KeyValue::new(
                "tollgate.caller.issuer",
                caller.issuer.clone(),
            ));
            attributes.push(KeyValue::new("tollgate.caller.type", caller.kind.as_str()));
            if let Some(service) = &caller.service {
                attributes.push(KeyValue::new("tollgate.caller.service", service.clone()));
            }
        }
        if trace.grpc {
            attributes.push(KeyValue::new("rpc.system", "grpc"));
        }
        span.set_attributes(attributes);
        if outcome.status >= 500 {
            let message = outcome.error.map_or("", |e| e.status_and_message().1);
            span.set_status(Status::error(message));
        }
        span.end();
    }
}

impl UpstreamSpan {
    /// Ends the span: the upstream answered `status`, or failed (`None`, with the error).
    pub fn finish(self, status: Option<u16>, error: Option<&tollgate_core::GatewayError>) {
        let span = self.cx.span();
        if !span.is_recording() {
            return;
        }
        if let Some(status) = status {
            span.set_attribute(KeyValue::new(
                "http.response.status_code",
                i64::from(status),
            ));
        }
        if let Some(error) = error {
            let kind = error.upstream_kind().unwrap_or("error");
            span.set_attribute(KeyValue::new("error.type", kind));
            span.set_status(Status::error(error.status_and_message().1));
        }
        span.end();
    }
}

/// What the gateway decided: `allowed`, the refusal's kind, or `error`.
fn decision(outcome: &Outcome<'_>) -> &'static str {
    match outcome.trace.auth.as_ref().and_then(|a| a.refusal.as_ref()) {
        Some(Refusal::Unauthenticated(e)) => e.kind(),
        Some(Refusal::Forbidden(_) | Refusal::InsufficientScope(_)) => "forbidden",
        Some(Refusal::MethodNotAllowed(_)) => "method_not_allowed",
        None if outcome.error.is_some() => "error",
        None => "allowed",
    }
}

/// The method, as a span name and attribute: the conventions' `_OTHER` for extension methods
/// would hide the method the gateway routed by, which is a valid token, so it is kept.
fn method_name(method: &http::Method) -> String {
    method.as_str().to_owned()
}

static TRACESTATE: http::header::HeaderName = http::header::HeaderName::from_static("tracestate");

fn header_text(value: &http::HeaderValue) -> String {
    String::from_utf8_lossy(value.as_bytes()).into_owned()
}
