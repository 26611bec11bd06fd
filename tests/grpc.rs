//! gRPC through tollgate, witnessed by grpcio (PyPI) on both ends: `tests/grpc/server.py` is
//! the upstream and reports the metadata and deadline it received; `tests/grpc/client.py`
//! makes the calls and reports what the client library saw (codes, messages, streams).
//!
//! Covered: unary, server-streaming and bidirectional calls over HTTP/2 with prior knowledge
//! (h2c) to the upstream; a 10 MB message each way; identity as metadata, a forged identity
//! header and the caller's token kept from the upstream; refusals read as gRPC codes with their
//! reasons; the client's deadline sent on and the route's timeout enforcing a shorter one; an
//! upstream's own status arriving in the trailers; the health service routed public; the h2c
//! and TLS (ALPN h2) listeners. And `upstream_protocol = "h2c"` for a route that is not gRPC,
//! witnessed by nginx.

mod support;

use serde_json::Value;
use support::tls::TestCerts;
use support::*;

const ISS: &str = "https://auth.example.com";

/// The grpcio server, stopped when dropped.
struct GrpcServer(python::Server);

impl GrpcServer {
    /// Serves h2c, or TLS with `certs`' leaf.
    fn start(certs: Option<&TestCerts>) -> Self {
        let tls = certs.map(|c| [c.cert_file.as_path(), c.key_file.as_path()]);
        let (server, _) =
            python::Server::start("tests/grpc/server.py", tls.as_ref().map_or(&[], |t| t));
        Self(server)
    }

    fn url(&self, scheme: &str) -> String {
        format!("{scheme}://localhost:{}", self.0.port)
    }
}

/// grpcio and its health service, or a printed reason to skip.
fn grpcio() -> bool {
    python::has_module("grpc", "grpcio")
        && python::has_module("grpc_health.v1", "grpcio-health-checking")
}

/// The routes to `upstream` (with `upstream_extra` on each), and to `down`.
fn config(upstream: &str, upstream_extra: &str, tls: Option<&TestCerts>, down: &str) -> String {
    let tls = tls.map_or_else(String::new, |certs| {
        format!(
            "[server.tls]\nlisten = [\"127.0.0.1:0\"]\ncertificates = [{{ cert_file = \"{}\", key_file = \"{}\" }}]\n",
            certs.cert_file.display(),
            certs.key_file.display()
        )
    });
    format!(
        r#"
[server]
listen = ["127.0.0.1:0"]
admin_listen = "127.0.0.1:0"
drain_timeout = "5s"
{tls}
[[issuers]]
issuer = "{ISS}"
algorithms = ["HS256"]
secret = "{SECRET}"
service_tokens = true

[[routes]]
name = "health"
prefix = "/grpc.health.v1.Health"
upstream = "{upstream}"
{upstream_extra}
policy = "public"

[[routes]]
name = "slow"
prefix = "/demo.Echo/Slow"
upstream = "{upstream}"
{upstream_extra}
policy = "service"
timeout = "1s"

[[routes]]
name = "echo"
prefix = "/demo.Echo"
upstream = "{upstream}"
{upstream_extra}
policy = "service"
max_body_bytes = 33554432

[[routes]]
name = "down"
prefix = "/down.Service"
upstream = "{down}"
policy = "public"
"#
    )
}

/// Runs the client's `calls` against `target`; returns its report, one entry per call.
fn calls(target: &str, ca: Option<&TestCerts>, calls: &[&str]) -> Value {
    let service = hs256(&service_claims(ISS, "billing"));
    let user = hs256(&access_claims(ISS, "alice"));
    let ca = ca.map_or("-".to_owned(), |c| c.ca_file.display().to_string());
    let out = python::script("tests/grpc/client.py")
        .args([target, &ca, &service, &user])
        .args(calls)
        .output()
        .expect("python starts");
    assert!(
        out.status.success(),
        "client failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the client prints JSON")
}

/// The metadata the upstream saw, as name → values.
fn metadata(seen: &Value) -> std::collections::HashMap<String, Vec<String>> {
    let mut map = std::collections::HashMap::<String, Vec<String>>::new();
    for pair in seen["metadata"].as_array().unwrap() {
        map.entry(pair[0].as_str().unwrap().to_owned())
            .or_default()
            .push(pair[1].as_str().unwrap().to_owned());
    }
    map
}

fn assert_refused(report: &Value, call: &str, code: &str, details: &str) {
    let got = &report[call];
    assert_eq!(got["code"], code, "{call}: {got}");
    let text = got["details"].as_str().unwrap_or_default();
    assert!(text.contains(details), "{call}: {text:?} lacks {details:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn grpc_calls_over_h2c_carry_identity_streams_trailers_and_deadlines() {
    if !grpcio() {
        return;
    }
    let server = GrpcServer::start(None);
    let down = format!("http://{}", closed_port().await);
    let gw = spawn_gateway(&config(&server.url("http"), "", None, &down)).await;
    let target = gw.addr.to_string();
    let all = [
        "unary",
        "no_token",
        "bad_token",
        "user_token",
        "client_deadline",
        "route_deadline",
        "route_bound",
        "stream",
        "bidi",
        "big",
        "upstream_status",
        "health",
        "no_route",
        "upstream_down",
    ];
    let report = tokio::task::spawn_blocking(move || calls(&target, None, &all))
        .await
        .unwrap();

    let seen = &report["unary"]["ok"];
    let md = metadata(seen);
    assert_eq!(md["x-service-name"], ["billing"], "{seen}");
    assert_eq!(md["x-user-type"], ["service"], "{seen}");
    assert_eq!(
        md["x-user-id"],
        ["billing"],
        "the forged id is replaced: {seen}"
    );
    assert!(!md.contains_key("authorization"), "the token stays: {seen}");
    assert_eq!(seen["len"], 5);

    assert_refused(&report, "no_token", "UNAUTHENTICATED", "missing");
    assert_refused(&report, "bad_token", "UNAUTHENTICATED", "");
    assert_refused(&report, "user_token", "PERMISSION_DENIED", "service");
    assert_refused(&report, "no_route", "UNIMPLEMENTED", "no route");
    assert_refused(
        &report,
        "upstream_down",
        "UNAVAILABLE",
        "upstream unavailable",
    );
    assert_refused(
        &report,
        "upstream_status",
        "NOT_FOUND",
        "no such thing: widget",
    );

    // The client's deadline reaches the upstream (grpc-core rounds it up a little); the
    // route's 1 s bounds a 30 s one, on the way up and in the answer.
    let remaining = |call: &str| report[call]["ok"]["time_remaining"].as_f64().unwrap();
    assert!(
        (1.5..=2.6).contains(&remaining("client_deadline")),
        "{report}"
    );
    assert!((0.1..=1.0).contains(&remaining("route_bound")), "{report}");
    assert_refused(&report, "route_deadline", "DEADLINE_EXCEEDED", "timed out");
    let took = report["route_deadline"]["seconds"].as_f64().unwrap();
    assert!(
        took < 2.5,
        "answered at the route's 1 s, not the upstream's 3 s: {took}"
    );

    let stream = report["stream"]["ok"].as_array().unwrap();
    assert_eq!(stream.len(), 100, "{stream:?}");
    assert_eq!(stream[99], "message 99");
    let bidi = report["bidi"]["ok"].as_array().unwrap();
    assert_eq!(bidi.len(), 50);
    assert_eq!(bidi[49], "PING 49");
    let big = &report["big"]["ok"];
    assert_eq!(big["digest_matches"], true, "{big}");
    assert_eq!(big["received"], big["sent"], "{big}");
    assert_eq!(report["health"]["ok"], "SERVING", "public, no token");
    gw.stop().await;
}

/// TLS on both sides: ALPN picks HTTP/2 with the client and with the upstream.
#[tokio::test(flavor = "multi_thread")]
async fn grpc_calls_over_tls_negotiate_http2_on_both_sides() {
    if !grpcio() {
        return;
    }
    let certs = TestCerts::generate();
    let server = GrpcServer::start(Some(&certs));
    let down = format!("http://{}", closed_port().await);
    let upstream_tls = format!(
        "upstream_tls = {{ ca_file = \"{}\" }}",
        certs.ca_file.display()
    );
    let toml = config(&server.url("https"), &upstream_tls, Some(&certs), &down);
    let gw = spawn_gateway(&toml).await;
    let tls = gw.running.as_ref().unwrap().tls_addrs[0];
    let target = format!("localhost:{}", tls.port());
    let report = tokio::task::spawn_blocking(move || {
        calls(
            &target,
            Some(&certs),
            &[
                "unary",
                "no_token",
                "user_token",
                "bidi",
                "big",
                "upstream_status",
                "health",
            ],
        )
    })
    .await
    .unwrap();
    assert_eq!(
        metadata(&report["unary"]["ok"])["x-service-name"],
        ["billing"],
        "{report}"
    );
    assert_refused(&report, "no_token", "UNAUTHENTICATED", "missing");
    assert_refused(&report, "user_token", "PERMISSION_DENIED", "service");
    assert_eq!(report["bidi"]["ok"].as_array().unwrap().len(), 50);
    assert_eq!(report["big"]["ok"]["digest_matches"], true, "{report}");
    assert_refused(
        &report,
        "upstream_status",
        "NOT_FOUND",
        "no such thing: widget",
    );
    assert_eq!(report["health"]["ok"], "SERVING");
    gw.stop().await;
}

#[tokio::test]
async fn an_h2c_route_speaks_http2_with_prior_knowledge_to_a_plain_upstream() {
    // nginx listening `http2` without TLS accepts HTTP/2 with prior knowledge only.
    let Some(nginx) = support::nginx::Nginx::start_with_servers(
        r#"    server {
        listen 127.0.0.1:PORT http2;
        access_log off;
        location / {
            return 200 '{"protocol":"$server_protocol","host":"$host","uri":"$request_uri"}';
        }
    }
"#,
    ) else {
        return;
    };
    let upstream = format!("http://{}", nginx.addr);
    let gw = spawn_gateway(&public_route(
        "/h2",
        &upstream,
        "upstream_protocol = \"h2c\"",
    ))
    .await;
    let reply = get(&gw.url("/h2/x?q=1"), &[]).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let seen = reply.json();
    assert_eq!(seen["protocol"], "HTTP/2.0", "{seen}");
    assert_eq!(seen["uri"], "/h2/x?q=1", "{seen}");
    assert_eq!(seen["host"], "127.0.0.1", "{seen}");
    gw.stop().await;
}

#[test]
fn check_refuses_h2c_where_there_is_no_plain_http_upstream() {
    for upstream in ["https://api.example.com", "echo"] {
        let toml = with_test_server(&public_route("/", upstream, "upstream_protocol = \"h2c\""));
        let error = tollgate::Config::from_toml(
            &toml,
            "t.toml",
            &tollgate::Env::from_map(std::iter::empty::<(String, String)>()),
        )
        .expect_err(upstream)
        .to_string();
        assert!(
            error.contains("routes[0].upstream_protocol") && error.contains("http://"),
            "{error}"
        );
    }
}

#[test]
fn the_books_grpc_configuration_passes_check() {
    assert!(book_configs_pass_check("grpc.md") >= 1);
}
