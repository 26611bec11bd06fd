//! OpenTelemetry traces, witnessed by an OTLP/HTTP receiver that decodes every export with the
//! official `opentelemetry-proto` package (`tests/otel/receiver.py`), and by an upstream that
//! records the raw bytes it received.

mod support;

use std::sync::{Arc, Mutex};

use serde_json::Value;
use support::recording::{RecordingUpstream, head_of};
use support::*;

const ISS: &str = "https://auth.example.com";

/// The receiver, its spans as they arrive, stopped when dropped.
struct Receiver {
    server: python::Server,
    spans: Arc<Mutex<Vec<Value>>>,
}

impl Receiver {
    fn start() -> Self {
        let (server, lines) = python::Server::start("tests/otel/receiver.py", &[]);
        let spans = Arc::new(Mutex::new(Vec::new()));
        let sink = spans.clone();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                sink.lock()
                    .unwrap()
                    .push(serde_json::from_str(&line).unwrap());
            }
        });
        Self { server, spans }
    }

    /// The spans received, once there are at least `n`; panics after [`TIMEOUT`].
    async fn wait(&self, n: usize) -> Vec<Value> {
        within(async {
            loop {
                let spans = self.spans.lock().unwrap().clone();
                if spans.len() >= n {
                    return spans;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        })
        .await
    }
}

fn span<'a>(spans: &'a [Value], trace_id: &str, kind: &str) -> &'a Value {
    spans
        .iter()
        .find(|s| s["trace_id"] == trace_id && s["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} span in trace {trace_id}: {spans:#?}"))
}

/// The `traceparent` an upstream request head carried.
fn traceparent(head: &str) -> String {
    head.lines()
        .find_map(|l| l.strip_prefix("traceparent: "))
        .unwrap_or_else(|| panic!("no traceparent in {head}"))
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn spans_continue_the_clients_trace_reach_the_collector_and_name_no_secret() {
    if !python::has_module("opentelemetry.proto", "opentelemetry-proto")
        || !python::has_module("prometheus_client", "prometheus_client")
    {
        return;
    }
    let receiver = Receiver::start();
    let upstream = RecordingUpstream::start().await;
    // A slow vendor login, so the first vendor request waits for it.
    let vendor = AuthServer::start(AuthReply::Field("accessToken")).await;
    vendor.set_delay(std::time::Duration::from_millis(300));
    // sample_ratio = 0: only traces the client sampled are recorded.
    let gw = spawn_gateway(&format!(
        r#"
[telemetry]
otlp_endpoint = "http://127.0.0.1:{port}"
sample_ratio = 0.0
service_name = "gateway-under-test"
resource = {{ "deployment.environment" = "test" }}

[[issuers]]
issuer = "{ISS}"
algorithms = ["HS256"]
secret = "{SECRET}"
service_tokens = true

[[providers]]
name = "vendor"
kind = "login"
auth_url = "{vendor}"
email = "svc@example.com"
password = "hunter2-vendor-password"

[[routes]]
name = "orders"
prefix = "/orders"
upstream = "{upstream}"
policy = "service"

[[routes]]
name = "vendor"
prefix = "/vendor"
upstream = "{upstream}"
policy = "service"
upstream_auth = "vendor"
"#,
        port = receiver.server.port,
        upstream = upstream.url(),
        vendor = vendor.url(),
    ))
    .await;
    let service = hs256(&service_claims(ISS, "billing"));
    let user = hs256(&access_claims(ISS, "alice"));
    let sampled = |trace: &str| format!("00-{trace}-00f067aa0ba902b7-01");
    let allowed = "4bf92f3577b34da6a3ce929d0e0e4736";
    let refused = "0af7651916cd43dd8448eb211c80319c";
    let repeated = "11111111111111111111111111111111";
    let vendored = "22222222222222222222222222222222";

    let bearer = |t: &str| format!("Bearer {t}");
    let reply = get(
        &gw.url("/orders/42?secret=x"),
        &[
            ("authorization", &bearer(&service)),
            ("traceparent", &sampled(allowed)),
            ("tracestate", "vendor=opaque"),
        ],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let reply = get(
        &gw.url("/orders/42"),
        &[
            ("authorization", &bearer(&user)),
            ("traceparent", &sampled(refused)),
        ],
    )
    .await;
    assert_eq!(reply.status, 403);
    assert_eq!(
        reply.json()["trace_id"],
        refused,
        "the refusal names its trace"
    );
    // Not sampled by the client, and the ratio is 0: a trace id is still given and passed on,
    // flagged unsampled, and nothing is recorded.
    let reply = get(
        &gw.url("/orders/7"),
        &[("authorization", &bearer(&service))],
    )
    .await;
    assert_eq!(reply.status, 200);

    let raw = upstream.raw();
    let first = traceparent(&head_of(&raw, 0));
    assert!(
        first.starts_with(&format!("00-{allowed}-")) && first.ends_with("-01"),
        "{first}"
    );
    assert!(
        !head_of(&raw, 0).contains("00f067aa0ba902b7"),
        "the parent is the gateway's span"
    );
    assert!(
        head_of(&raw, 0)
            .lines()
            .any(|l| l == "tracestate: vendor=opaque"),
        "{raw}"
    );
    let unsampled = traceparent(&head_of(&raw, 1));
    assert!(
        unsampled.ends_with("-00") && !unsampled.contains(allowed),
        "{unsampled}"
    );
    assert!(
        !head_of(&raw, 1).contains("tracestate"),
        "none to send: {raw}"
    );

    // The same token again is found in the cache: no verification span. A vendor route's
    // first request waits for the slow login.
    for (path, trace) in [("/orders/8", repeated), ("/vendor/1", vendored)] {
        let (token, parent) = (bearer(&service), sampled(trace));
        let headers = [("authorization", token.as_str()), ("traceparent", &parent)];
        let reply = get(&gw.url(path), &headers).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.text());
    }

    // Exemplars: OpenMetrics names sampled traces on the latency buckets, as read by the
    // Prometheus client library's own OpenMetrics parser; the classic format has none.
    let metrics = |accept: &'static str| {
        let url = format!("http://{}/metrics", gw.admin.unwrap());
        async move { get(&url, &[("accept", accept)]).await.text() }
    };
    let openmetrics = metrics("application/openmetrics-text; version=1.0.0").await;
    let exemplars = python::run(
        "import sys\n\
         from prometheus_client.openmetrics.parser import text_string_to_metric_families\n\
         for f in text_string_to_metric_families(sys.stdin.read()):\n\
         \x20   for s in f.samples:\n\
         \x20       if s.exemplar: print(s.name, s.exemplar.labels['trace_id'])\n",
        openmetrics.as_bytes(),
    );
    let unsampled_id = unsampled.split('-').nth(1).unwrap();
    assert!(
        exemplars
            .lines()
            .all(|l| l.starts_with("tollgate_request_duration_seconds_bucket ")),
        "{exemplars}"
    );
    assert!(
        [allowed, refused, repeated, vendored]
            .iter()
            .any(|t| exemplars.contains(t)),
        "{exemplars}"
    );
    assert!(
        !exemplars.contains(unsampled_id),
        "an unsampled trace leads nowhere"
    );
    assert!(
        !metrics("text/plain").await.contains(" # {"),
        "no exemplar in text 0.0.4"
    );

    gw.stop().await; // flushes the exporter
    let spans = receiver.wait(10).await;
    // allowed: server, client, verify; refused: server, verify; repeated: server, client;
    // vendored: server, client, vendor credential; unsampled: none.
    assert_eq!(spans.len(), 10, "{spans:#?}");
    let names = |trace: &str| {
        let mut names: Vec<String> = spans
            .iter()
            .filter(|s| s["trace_id"] == trace)
            .map(|s| s["name"].as_str().unwrap().to_owned())
            .collect();
        names.sort();
        names
    };
    assert_eq!(names(allowed), ["GET", "GET orders", "verify token"]);
    assert_eq!(names(refused), ["GET orders", "verify token"]);
    assert_eq!(names(repeated), ["GET", "GET orders"], "a cache hit");
    assert_eq!(names(vendored), ["GET", "GET vendor", "vendor credential"]);
    let named = |trace: &str, name: &str| {
        let found = spans
            .iter()
            .find(|s| s["trace_id"] == trace && s["name"] == name);
        found.unwrap().clone()
    };
    let waited = named(vendored, "vendor credential");
    assert_eq!(
        waited["parent_span_id"],
        named(vendored, "GET vendor")["span_id"]
    );
    let waited_ms = waited["duration_ns"].as_u64().unwrap() / 1_000_000;
    assert!(
        (200..5_000).contains(&waited_ms),
        "the login takes 300 ms: {waited_ms}"
    );
    let verified = named(allowed, "verify token");
    assert_eq!(verified["kind"], "INTERNAL");
    assert_eq!(
        verified["parent_span_id"],
        named(allowed, "GET orders")["span_id"]
    );

    let server = span(&spans, allowed, "SERVER");
    assert_eq!(
        server["parent_span_id"], "00f067aa0ba902b7",
        "continues the client's"
    );
    assert_eq!(server["name"], "GET orders");
    let a = &server["attributes"];
    assert_eq!(a["http.route"], "orders");
    assert_eq!(a["url.path"], "/orders/42", "the path, never the query");
    assert_eq!(a["http.response.status_code"], 200);
    assert_eq!(a["tollgate.decision"], "allowed");
    assert_eq!(a["tollgate.caller.service"], "billing");
    assert_eq!(a["tollgate.caller.issuer"], ISS);
    assert_eq!(server["resource"]["service.name"], "gateway-under-test");
    assert_eq!(server["resource"]["deployment.environment"], "test");

    let client = span(&spans, allowed, "CLIENT");
    assert_eq!(client["parent_span_id"], server["span_id"]);
    assert_eq!(client["attributes"]["http.response.status_code"], 200);
    let sent_parent = first.split('-').nth(2).unwrap();
    assert_eq!(
        client["span_id"], sent_parent,
        "the upstream's parent is the client span"
    );

    let denied = span(&spans, refused, "SERVER");
    assert_eq!(denied["attributes"]["tollgate.decision"], "forbidden");
    assert_eq!(denied["attributes"]["http.response.status_code"], 403);

    let everything = serde_json::to_string(&spans).unwrap();
    for secret in [
        service.as_str(),
        user.as_str(),
        SECRET,
        "secret=x",
        "hunter2-vendor-password",
    ] {
        assert!(!everything.contains(secret), "a span carries {secret:?}");
    }
}

#[test]
fn the_books_tracing_configuration_passes_check() {
    assert!(book_configs_pass_check("tracing.md") >= 1);
}

/// The real binary: the access line names the trace, and SIGTERM exports the last spans.
#[tokio::test(flavor = "multi_thread")]
async fn the_access_line_names_the_trace_and_sigterm_exports_the_last_spans() {
    if !python::has_module("opentelemetry.proto", "opentelemetry-proto") {
        return;
    }
    let receiver = Receiver::start();
    let config = format!(
        "[telemetry]\notlp_endpoint = \"http://127.0.0.1:{}\"\n\n{}",
        receiver.server.port,
        public_route("/echo", "echo", "name = \"echo\"")
    );
    let mut gw = GatewayProcess::spawn(&config, &[]);
    let trace = "5ea5ea5ea5ea5ea5ea5ea5ea5ea5ea5e";
    let parent = format!("00-{trace}-00f067aa0ba902b7-01");
    let reply = get(&gw.url("/echo/1"), &[("traceparent", &parent)]).await;
    assert_eq!(reply.status, 200);
    gw.signal("TERM");
    assert!(gw.wait_exit().success());
    let spans = receiver.wait(1).await;
    assert_eq!(span(&spans, trace, "SERVER")["name"], "GET echo");
    let access: Vec<serde_json::Value> = gw
        .logs()
        .iter()
        .filter(|l| l.contains(r#""target":"access""#))
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(access.len(), 1, "{access:?}");
    assert_eq!(access[0]["trace_id"], trace, "{}", access[0]);
}
