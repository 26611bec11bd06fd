//! Operating tollgate: Prometheus metrics after real traffic, readiness with providers, trace
//! headers, and the alert rules file.

mod support;

use std::time::Duration;

use http::StatusCode;
use serde_json::json;
use support::*;

const ISS: &str = "tollgate";

#[tokio::test]
async fn metrics_count_allowed_denied_expired_vendor_and_upstream_down() {
    let auth = AuthServer::start(AuthReply::Field("accessToken")).await;
    let vendor = MockUpstream::echo().await;
    let down = closed_port().await;
    let config = format!(
        r#"
[[issuers]]
issuer = "{ISS}"
algorithms = ["HS256"]
secret = "{SECRET}"

[[providers]]
name = "vendor"
kind = "login"
auth_url = "{auth}"
email = "m@example.com"
password = "metrics-password"

[[routes]]
name = "internal"
prefix = "/internal"
upstream = "echo"
policy = "service"

[[routes]]
name = "vendor"
prefix = "/vendor"
upstream = "{vendor}"
policy = "public"
upstream_auth = "vendor"

[[routes]]
name = "down"
prefix = "/down"
upstream = "http://{down}"
policy = "public"
"#,
        auth = auth.url(),
        vendor = vendor.url(),
    );
    let gw = spawn_gateway(&config).await;
    let service = format!("Bearer {}", hs256(&service_claims(ISS, "orders")));
    let user = format!("Bearer {}", hs256(&access_claims(ISS, "alice")));
    let mut expired_claims = service_claims(ISS, "orders");
    expired_claims["exp"] = json!(now() - 60);
    let expired = format!("Bearer {}", hs256(&expired_claims));

    for _ in 0..3 {
        assert_eq!(
            get(&gw.url("/internal/x"), &[("authorization", &service)])
                .await
                .status,
            200
        );
    }
    assert_eq!(
        get(&gw.url("/internal/x"), &[("authorization", &user)])
            .await
            .status,
        403
    );
    assert_eq!(
        get(&gw.url("/internal/x"), &[("authorization", &expired)])
            .await
            .status,
        401
    );
    assert_eq!(get(&gw.url("/internal/x"), &[]).await.status, 401);
    assert_eq!(get(&gw.url("/vendor/a"), &[]).await.status, 200);
    assert_eq!(get(&gw.url("/vendor/b"), &[]).await.status, 200);
    assert_eq!(get(&gw.url("/down/x"), &[]).await.status, 502);
    assert_eq!(get(&gw.url("/nowhere"), &[]).await.status, 404);

    // One client connection stays open across the scrape.
    let mut held = within(tokio::net::TcpStream::connect(gw.addr))
        .await
        .unwrap();
    {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        within(held.write_all(b"GET /nowhere HTTP/1.1\r\nhost: a\r\n\r\n"))
            .await
            .unwrap();
        let mut buf = [0u8; 1024];
        let n = within(held.read(&mut buf)).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 404"));
    }
    let reply = get(&format!("http://{}/metrics", gw.admin.unwrap()), &[]).await;
    assert_eq!(reply.status, 200);
    assert!(
        reply.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = String::from_utf8(reply.body.to_vec()).unwrap();
    let expect = [
        (
            r#"tollgate_requests_total{route="internal",method="GET",status="200"}"#,
            3.0,
        ),
        (
            r#"tollgate_requests_total{route="internal",method="GET",status="403"}"#,
            1.0,
        ),
        (
            r#"tollgate_requests_total{route="internal",method="GET",status="401"}"#,
            2.0,
        ),
        (
            r#"tollgate_requests_total{route="vendor",method="GET",status="200"}"#,
            2.0,
        ),
        (
            r#"tollgate_requests_total{route="down",method="GET",status="502"}"#,
            1.0,
        ),
        (
            r#"tollgate_requests_total{route="-",method="GET",status="404"}"#,
            2.0,
        ),
        (
            r#"tollgate_auth_decisions_total{route="internal",result="allowed",token_type="service"}"#,
            3.0,
        ),
        (
            r#"tollgate_auth_decisions_total{route="internal",result="forbidden",token_type="access"}"#,
            1.0,
        ),
        (
            r#"tollgate_auth_decisions_total{route="internal",result="expired",token_type="none"}"#,
            1.0,
        ),
        (
            r#"tollgate_auth_decisions_total{route="internal",result="missing",token_type="none"}"#,
            1.0,
        ),
        (
            r#"tollgate_upstream_logins_total{name="vendor",result="success"}"#,
            1.0,
        ),
        (
            r#"tollgate_upstream_errors_total{route="down",kind="connect"}"#,
            1.0,
        ),
        (
            r#"tollgate_request_duration_seconds_count{route="internal"}"#,
            6.0,
        ),
        (
            r#"tollgate_upstream_duration_seconds_count{route="vendor"}"#,
            2.0,
        ),
        (
            r#"tollgate_upstream_login_duration_seconds_count{provider="vendor"}"#,
            1.0,
        ),
        ("tollgate_requests_in_flight", 0.0),
        ("tollgate_log_lines_dropped_total", 0.0),
        (r#"tollgate_connections_open{protocol="http1"}"#, 1.0),
    ];
    for (series, value) in expect {
        assert_eq!(scrape_value(&text, series), Some(value), "{series}\n{text}");
    }
    let service_expiry = scrape_value(
        &text,
        r#"tollgate_service_token_expiry_timestamp_seconds{service="orders"}"#,
    )
    .expect("service token expiry series");
    assert!(
        (service_expiry - (now() + 3600) as f64).abs() < 5.0,
        "{service_expiry}"
    );
    let vendor_expiry = scrape_value(
        &text,
        r#"tollgate_upstream_token_expiry_timestamp_seconds{provider="vendor"}"#,
    )
    .expect("vendor token expiry series");
    assert!(
        (vendor_expiry - (now() + 3600) as f64).abs() < 5.0,
        "ttl fallback of 1h: {vendor_expiry}"
    );
    // Bounded labels: no raw paths, user ids or tokens.
    for leak in ["/internal/x", "alice", "nowhere", SECRET] {
        assert!(!text.contains(leak), "{leak} in metrics");
    }
}

#[tokio::test]
async fn jwks_fetch_metrics_and_key_age() {
    let jwks = JwksServer::start(Some(&[("k1", "rsa.key", jsonwebtoken::Algorithm::RS256)])).await;
    let gw = spawn_gateway(&format!(
        "[[issuers]]\nname = \"idp\"\nissuer = \"https://idp.test\"\nalgorithms = [\"RS256\"]\njwks_url = \"{}\"\n[[routes]]\nprefix = \"/\"\nupstream = \"echo\"\n",
        jwks.url()
    ))
    .await;
    let url = format!("http://{}/metrics", gw.admin.unwrap());
    let text = within(async {
        loop {
            let text = String::from_utf8(get(&url, &[]).await.body.to_vec()).unwrap();
            if scrape_value(
                &text,
                r#"tollgate_jwks_fetches_total{name="idp",result="success"}"#,
            ) == Some(1.0)
            {
                return text;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let age =
        scrape_value(&text, r#"tollgate_jwks_age_seconds{issuer="idp"}"#).expect("age series");
    assert!((0.0..60.0).contains(&age), "{age}");
}

#[tokio::test]
async fn readiness_waits_for_required_providers_and_reports_them() {
    let auth = AuthServer::start(AuthReply::Status(500)).await;
    let vendor = MockUpstream::echo().await;
    let gw = spawn_gateway(&format!(
        "[[providers]]\nname = \"vendor\"\nkind = \"login\"\nauth_url = \"{}\"\nemail = \"r@x\"\npassword = \"pw\"\nrequired = true\nmax_retries = 0\nfailure_cooldown = \"100ms\"\n[[routes]]\nprefix = \"/v\"\nupstream = \"{}\"\npolicy = \"public\"\nupstream_auth = \"vendor\"\n",
        auth.url(),
        vendor.url()
    ))
    .await;
    let readyz = format!("http://{}/readyz", gw.admin.unwrap());
    let not_ready = within(async {
        loop {
            let reply = get(&readyz, &[]).await;
            if reply.json()["providers"]["vendor"]["state"] == "failed" {
                return reply;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert_eq!(not_ready.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        not_ready.json()["status"],
        "waiting for upstream credentials"
    );
    assert_eq!(
        not_ready.json()["providers"]["vendor"]["error"],
        "auth API answered status 500 Internal Server Error"
    );

    auth.set(AuthReply::Field("accessToken"));
    within(async {
        while get(&gw.url("/v/x"), &[]).await.status != StatusCode::OK {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let ready = get(&readyz, &[]).await;
    assert_eq!(ready.status, StatusCode::OK);
    assert_eq!(ready.json()["providers"]["vendor"]["state"], "valid");
    assert!(
        ready.json()["providers"]["vendor"]["expires_in_secs"]
            .as_u64()
            .unwrap()
            > 3500
    );
}

#[tokio::test]
async fn trace_context_passes_through_untouched() {
    let up = MockUpstream::echo().await;
    let gw = spawn_gateway(&public_route("/", &up.url(), "")).await;
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    get(
        &gw.url("/x"),
        &[
            ("traceparent", traceparent),
            ("tracestate", "congo=t61rcWkgMzE"),
        ],
    )
    .await;
    let seen = up.last().headers;
    assert_eq!(seen["traceparent"], traceparent);
    assert_eq!(seen["tracestate"], "congo=t61rcWkgMzE");
    assert!(seen.contains_key("x-request-id"));
}

#[test]
fn alert_rules_are_valid_and_use_exported_metrics() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/config/prometheus/alerts.yml");
    let text = std::fs::read_to_string(path).unwrap();
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text).unwrap();
    let rules = doc["groups"][0]["rules"].as_sequence().expect("rules");
    let exported = [
        "tollgate_service_token_expiry_timestamp_seconds",
        "tollgate_upstream_logins_total",
        "tollgate_upstream_token_expiry_timestamp_seconds",
        "tollgate_jwks_age_seconds",
        "tollgate_requests_total",
        "tollgate_service_requests_total",
        "tollgate_service_last_seen_timestamp_seconds",
    ];
    let mut names = Vec::new();
    for rule in rules {
        let name = rule["alert"].as_str().expect("alert name");
        let expr = rule["expr"].as_str().expect("expr");
        assert!(rule["labels"]["severity"].is_string(), "{name}: severity");
        assert!(
            rule["annotations"]["summary"].is_string(),
            "{name}: summary"
        );
        assert!(rule["for"].is_string(), "{name}: for");
        assert!(exported.iter().any(|m| expr.contains(m)), "{name}: {expr}");
        names.push(name.to_owned());
    }
    for wanted in [
        "TollgateServiceTokenExpiringSoon",
        "TollgateUpstreamCredentialRefreshFailing",
        "TollgateJwksStale",
        "TollgateHigh5xxRatio",
        "TollgateRevokedServiceTokenUsed",
        "TollgateServiceTokenExpiringInUse",
        "TollgateServiceRefusalsRising",
    ] {
        assert!(names.iter().any(|n| n == wanted), "{wanted} missing");
    }
    let expiring = rules
        .iter()
        .find(|r| r["alert"] == "TollgateServiceTokenExpiringSoon")
        .unwrap();
    assert!(
        expiring["expr"]
            .as_str()
            .unwrap()
            .contains("30 * 24 * 3600")
    );
    // promtool, where installed, checks the PromQL too.
    if let Ok(out) = std::process::Command::new("promtool")
        .args(["check", "rules", path])
        .output()
    {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/config/grafana/tollgate-dashboard.json"
        ))
        .unwrap(),
    )
    .unwrap();
    assert!(dashboard["panels"].as_array().unwrap().len() >= 4);
}

/// The access log is written by a writer thread in batches: every request still gets exactly
/// one line, whole and parseable, with its fields, and a SIGTERM writes every pending line
/// before the process exits.
#[tokio::test]
async fn every_request_gets_one_whole_access_line_and_sigterm_loses_none() {
    let config = format!(
        r#"
[[issuers]]
issuer = "{ISS}"
algorithms = ["HS256"]
secret = "{SECRET}"

[[routes]]
name = "echo"
prefix = "/echo"
upstream = "echo"
policy = "public"

[[routes]]
name = "internal"
prefix = "/internal"
upstream = "echo"
policy = "service"
"#
    );
    let mut gw = GatewayProcess::spawn(&config, &[]);
    const N: usize = 600;
    let mut sent = std::collections::HashMap::new();
    for chunk in (0..N).collect::<Vec<_>>().chunks(50) {
        let requests = chunk.iter().map(|&i| {
            let (path, status) = match i % 3 {
                0 => (format!("/echo/{i}?q=1"), 200),
                1 => (format!("/internal/{i}"), 401),
                _ => (format!("/nowhere/{i}"), 404),
            };
            let url = gw.url(&path);
            async move {
                let id = format!("client-{i}");
                let reply = get(&url, &[("x-request-id", &id)]).await;
                assert_eq!(reply.status.as_u16(), status, "{path}");
                (id, (path, status))
            }
        });
        sent.extend(futures_util::future::join_all(requests).await);
    }
    gw.signal("TERM");
    assert!(gw.wait_exit().success());
    let lines = within(async {
        loop {
            let access: Vec<serde_json::Value> = gw
                .logs()
                .iter()
                .filter(|l| l.contains(r#""target":"access""#))
                .map(|l| serde_json::from_str(l).expect("an access line is whole JSON"))
                .collect();
            if access.len() >= N {
                return access;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert_eq!(lines.len(), N, "one line per request, no more");
    for line in &lines {
        let id = line["client_request_id"].as_str().unwrap();
        let (path, status) = sent.remove(id).expect("a line for a request that was sent");
        let (route, logged_path) = match status {
            200 => ("echo", path.split('?').next().unwrap().to_owned()),
            401 => ("internal", path.clone()),
            _ => ("-", path.clone()),
        };
        assert_eq!(line["path"], logged_path.as_str(), "{line}");
        assert_eq!(line["route"], route, "{line}");
        assert_eq!(line["status"], status, "{line}");
        assert_eq!(line["method"], "GET");
        assert_eq!(line["client"], "127.0.0.1");
        assert_eq!(line["level"], "INFO");
        assert!(line["duration_us"].is_u64(), "{line}");
        assert_ne!(line["request_id"], id, "the gateway's own id is apart");
        let stamp = line["timestamp"].as_str().unwrap();
        assert_eq!(stamp.len(), "2026-12-06T01:24:37.584905Z".len(), "{stamp}");
        assert!(humantime::parse_rfc3339(stamp).is_ok(), "{stamp}");
    }
    assert!(sent.is_empty(), "every request was logged");
}
