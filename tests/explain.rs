//! `tollgate explain` against the gateway itself: for every refusal reason the gateway can
//! give at decision time, the same request is sent to a running gateway and explained, and
//! both must name the same status and reason; for an allowed request, what explain says it
//! would send must be, header for header, what a recording upstream received.

mod support;

use std::process::Command;

use support::recording::RecordingUpstream;
use support::tls::TestCerts;
use support::*;

fn config(upstream: &str, state: &std::path::Path, certs: &TestCerts) -> String {
    format!(
        r#"
[server]
listen = ["127.0.0.1:0"]
admin_listen = "127.0.0.1:0"
trusted_proxies = ["127.0.0.1"]

[server.tls]
listen = ["127.0.0.1:0"]
certificates = [{{ cert_file = "{}", key_file = "{}" }}]
client_auth = "request"
client_ca_file = "{}"

[server.tls.client_services]
orders = ["spiffe://cluster.local/ns/orders/sa/orders"]

[limits]
max_uri_bytes = 200
# Room for a token over the verifier's 16 KiB limit inside one header.
max_header_bytes = 65536

[[issuers]]
name = "internal"
issuer = "tollgate"
algorithms = ["HS256"]
secret = "{SECRET}"
max_lifetime = {{ access = "1h" }}

[[issuers]]
name = "partner"
issuer = "partner"
algorithms = ["HS256"]
secret = "partner-secret-that-is-long-enough-for-hs256"
audiences = ["tollgate"]
service_tokens = false

[[issuers]]
name = "rotating"
issuer = "rotating"
algorithms = ["HS256"]
secrets = [{{ kid = "k1", secret = "rotating-secret-that-is-long-enough-for-hs256" }}]

[state]
path = "{}"

[[routes]]
prefix = "/internal"
upstream = "{upstream}"
policy = "service"
services = ["billing"]
issuers = ["internal"]

[[routes]]
prefix = "/me"
upstream = "{upstream}"
policy = "access"
roles = ["admin"]

[[routes]]
prefix = "/staff"
upstream = "{upstream}"
policy = "access"
issuers = ["internal"]

[[routes]]
prefix = "/upload"
upstream = "{upstream}"
policy = "public"
max_body_bytes = 10

[[routes]]
prefix = "/cert"
upstream = "{upstream}"
policy = "service"
authenticate_with = "certificate"

[[routes]]
prefix = "/both"
upstream = "{upstream}"
policy = "service"
authenticate_with = "token_and_certificate"

[[routes]]
prefix = "/public"
upstream = "{upstream}"
policy = "public"
"#,
        certs.cert_file.display(),
        certs.key_file.display(),
        certs.ca_file.display(),
        state.join("revocations.json").display()
    )
}

/// `tollgate explain --format json` with the gateway's config: (exit code, JSON).
fn explain(
    gw: &GatewayProcess,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
) -> (i32, serde_json::Value) {
    explain_with(gw, method, target, headers, None)
}

/// Like [`explain`], presenting the client certificate in `cert` (PEM).
fn explain_with(
    gw: &GatewayProcess,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    cert: Option<&std::path::Path>,
) -> (i32, serde_json::Value) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tollgate"));
    command
        .args(["explain", "--format", "json", "--config"])
        .arg(&gw.config_path)
        .args([method, target])
        .env_remove("TOLLGATE_CONFIG");
    if let Some(cert) = cert {
        command.arg("--client-cert").arg(cert);
    }
    for (name, value) in headers {
        command.args(["-H", &format!("{name}: {value}")]);
    }
    let out = command.output().unwrap();
    let json = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap(), json)
}

fn hs(claims: serde_json::Value, header: serde_json::Value) -> String {
    use base64::Engine;
    use hmac::Mac;
    let b64 = |v: &serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
    };
    let input = format!("{}.{}", b64(&header), b64(&claims));
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(input.as_bytes());
    let signature =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{input}.{signature}")
}

/// A refusal case: its name, the target, the headers sent and what the answer must name.
type Case = (
    &'static str,
    String,
    Vec<(&'static str, String)>,
    &'static str,
);

#[tokio::test]
async fn explain_names_every_refusal_the_gateway_gives_and_agrees_with_it() {
    let upstream = RecordingUpstream::start().await;
    let (state, certs) = (tempfile::tempdir().unwrap(), TestCerts::generate());
    let gw = GatewayProcess::spawn(&config(&upstream.url(), state.path(), &certs), &[]);
    let billing = || service_claims("tollgate", "billing");
    let with = |mut claims: serde_json::Value, key: &str, value: serde_json::Value| {
        claims[key] = value;
        claims
    };
    let without = |mut claims: serde_json::Value, key: &str| {
        claims.as_object_mut().unwrap().remove(key);
        claims
    };
    let revoked = hs256(&with(billing(), "jti", "revoked-one".into()));
    let revoking = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["token", "revoke", "revoked-one", "--config"])
        .arg(&gw.config_path)
        .env_remove("TOLLGATE_CONFIG")
        .output()
        .unwrap();
    assert!(revoking.status.success(), "{revoking:?}");
    // The gateway picks the revocation up within its poll interval.
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    let partner = |claims: serde_json::Value| {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(
                b"partner-secret-that-is-long-enough-for-hs256",
            ),
        )
        .unwrap()
    };
    let bearer = |token: String| format!("Bearer {token}");
    let long_path = format!("/internal/{}", "a".repeat(300));
    let cases: Vec<Case> = vec![
        ("no route", "/nowhere".into(), vec![], "no route"),
        (
            "bad path",
            "/internal/%2e%2e/%2e%2e/etc".into(),
            vec![],
            "invalid path",
        ),
        (
            "bad host",
            "/internal/x".into(),
            vec![("Host", "exa mple.com".into())],
            "invalid host",
        ),
        (
            "target too long",
            long_path,
            vec![],
            "request target too long",
        ),
        (
            "body too large",
            "/upload".into(),
            vec![("Content-Length", "12".into())],
            "limit is 10 bytes",
        ),
        ("no token", "/internal/x".into(), vec![], "token missing"),
        (
            "empty bearer",
            "/internal/x".into(),
            vec![("Authorization", "Bearer".into())],
            "malformed authorization header",
        ),
        (
            "malformed",
            "/internal/x".into(),
            vec![("Authorization", "Bearer not.a.token".into())],
            "malformed token",
        ),
        (
            "too large",
            "/internal/x".into(),
            vec![(
                "Authorization",
                bearer(format!("{}.{}.{}", "a".repeat(9000), "b".repeat(9000), "c")),
            )],
            "token too large",
        ),
        (
            "issuer",
            "/internal/x".into(),
            vec![(
                "Authorization",
                bearer(hs256(&with(billing(), "iss", "stranger".into()))),
            )],
            "issuer not accepted",
        ),
        (
            "algorithm",
            "/internal/x".into(),
            vec![(
                "Authorization",
                bearer(hs(billing(), serde_json::json!({"alg": "HS512"}))),
            )],
            "algorithm not allowed",
        ),
        (
            "crit",
            "/internal/x".into(),
            vec![(
                "Authorization",
                bearer(hs(
                    billing(),
                    serde_json::json!({"alg": "HS256", "crit": ["b64"]}),
                )),
            )],
            "unsupported critical header",
        ),
        (
            "typ",
            "/internal/x".into(),
            vec![(
                "Authorization",
                bearer(hs(
                    billing(),
                    serde_json::json!({"alg": "HS256", "typ": "dpop+jwt"}),
                )),
            )],
            "unsupported token typ",
        ),
        (
            "unknown kid",
            "/internal/x".into(),
            vec![(
                "Authorization",
                bearer(hs(
                    with(billing(), "iss", "rotating".into()),
                    serde_json::json!({"alg": "HS256", "kid": "k0"}),
                )),
            )],
            "unknown key id",
        ),
        (
            "signature",
            "/internal/x".into(),
            vec![("Authorization", bearer(format!("{}x", hs256(&billing()))))],
            "signature invalid",
        ),
        (
            "expired",
            "/internal/x".into(),
            vec![(
                "Authorization",
                bearer(hs256(&with(billing(), "exp", (now() - 3600).into()))),
            )],
            "token expired",
        ),
        (
            "not yet valid",
            "/internal/x".into(),
            vec![(
                "Authorization",
                bearer(hs256(&with(billing(), "nbf", (now() + 3600).into()))),
            )],
            "token not yet valid",
        ),
        (
            "audience",
            "/me".into(),
            vec![(
                "Authorization",
                bearer(partner(with(
                    access_claims("partner", "p1"),
                    "aud",
                    "elsewhere".into(),
                ))),
            )],
            "audience not accepted",
        ),
        (
            "token type",
            "/internal/x".into(),
            vec![(
                "Authorization",
                bearer(hs256(&with(billing(), "type", "refresh".into()))),
            )],
            "token type not accepted",
        ),
        (
            "service issuer",
            "/internal/x".into(),
            vec![(
                "Authorization",
                bearer(partner(with(
                    with(billing(), "iss", "partner".into()),
                    "aud",
                    "tollgate".into(),
                ))),
            )],
            "issuer may not issue service tokens",
        ),
        (
            "missing claim",
            "/internal/x".into(),
            vec![(
                "Authorization",
                bearer(hs256(&without(without(billing(), "sub"), "user_id"))),
            )],
            "missing claim sub",
        ),
        (
            "invalid claim",
            "/internal/x".into(),
            vec![(
                "Authorization",
                bearer(hs256(&with(billing(), "role", serde_json::json!({"a": 1})))),
            )],
            "invalid claim role",
        ),
        (
            "issued in the future",
            "/internal/x".into(),
            vec![(
                "Authorization",
                bearer(hs256(&with(billing(), "iat", (now() + 3600).into()))),
            )],
            "token issued in the future",
        ),
        (
            "lifetime",
            "/me".into(),
            vec![(
                "Authorization",
                bearer(hs256(&with(
                    access_claims("tollgate", "u1"),
                    "exp",
                    (now() + 7200).into(),
                ))),
            )],
            "token lifetime exceeds the issuer's maximum",
        ),
        (
            "revoked",
            "/internal/x".into(),
            vec![("Authorization", bearer(revoked.clone()))],
            "token revoked",
        ),
        (
            "certificate",
            "/cert/x".into(),
            vec![("Authorization", bearer(hs256(&billing())))],
            "client certificate required",
        ),
        (
            "service token required",
            "/internal/x".into(),
            vec![(
                "Authorization",
                bearer(hs256(&access_claims("tollgate", "u1"))),
            )],
            "service token required",
        ),
        (
            "access token required",
            "/me".into(),
            vec![("Authorization", bearer(hs256(&billing())))],
            "user access token required",
        ),
        (
            "service not allowed",
            "/internal/x".into(),
            vec![(
                "Authorization",
                bearer(hs256(&service_claims("tollgate", "orders"))),
            )],
            "service not allowed",
        ),
        (
            "role not allowed",
            "/me".into(),
            vec![(
                "Authorization",
                bearer(hs256(&access_claims("tollgate", "u1"))),
            )],
            "role not allowed",
        ),
        (
            "issuer not allowed",
            "/staff/x".into(),
            vec![(
                "Authorization",
                bearer(partner(with(
                    access_claims("partner", "p1"),
                    "aud",
                    "tollgate".into(),
                ))),
            )],
            "issuer not allowed on this route",
        ),
    ];
    for (name, target, headers, reason) in cases {
        let pairs: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let method = if name == "body too large" {
            "POST"
        } else {
            "GET"
        };
        let (code, json) = explain(&gw, method, &target, &pairs);
        let reply = if method == "POST" {
            let request = http::Request::post(gw.url(&target))
                .body(http_body_util::Full::new(bytes::Bytes::from_static(
                    b"0123456789AB",
                )))
                .unwrap();
            send(request).await
        } else {
            get(&gw.url(&target), &pairs).await
        };
        let gateway = reply.json();
        assert_eq!(code, 1, "{name}: {json}");
        assert_eq!(json["verdict"], "refused", "{name}");
        assert_eq!(
            json["refusal"]["status"],
            reply.status.as_u16(),
            "{name}: {json} vs {gateway}"
        );
        assert_eq!(json["refusal"]["error"], gateway["error"], "{name}");
        assert_eq!(json["refusal"]["reason"], gateway["reason"], "{name}");
        let said = format!(
            "{} {}",
            gateway["error"].as_str().unwrap_or_default(),
            gateway["reason"].as_str().unwrap_or_default()
        );
        assert!(said.contains(reason), "{name}: the gateway said {gateway}");
        let failed: Vec<&serde_json::Value> = json["steps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["result"] == "failed")
            .collect();
        assert_eq!(failed.len(), 1, "{name}: exactly one step fails: {json}");
        assert!(
            failed[0]["detail"].as_str().unwrap().contains(reason),
            "{name}: the failing step names it: {}",
            failed[0]
        );
        // Nothing secret in what explain prints.
        for (_, value) in &headers {
            if let Some(token) = value.strip_prefix("Bearer ").filter(|t| t.len() > 20) {
                assert!(!json.to_string().contains(token), "{name}: token printed");
            }
        }
    }
    // The client-certificate refusals, over a real mutual-TLS connection and with
    // `explain --client-cert`.
    let stranger = certs.issue(
        "stranger",
        &["x.internal"],
        Some("spiffe://cluster.local/ns/x/sa/x"),
        None,
    );
    let orders = certs.issue(
        "orders",
        &["orders.internal"],
        Some("spiffe://cluster.local/ns/orders/sa/orders"),
        None,
    );
    let billing_token = format!("Bearer {}", hs256(&billing()));
    for (name, target, cert, reason) in [
        (
            "certificate not registered",
            "/cert/x",
            &stranger,
            "client certificate not registered for a service",
        ),
        (
            "token and certificate differ",
            "/both/x",
            &orders,
            "token and client certificate name different services",
        ),
    ] {
        let headers = [("authorization", billing_token.as_str())];
        let (code, json) = explain_with(&gw, "GET", target, &headers, Some(&cert.0));
        let (status, body) = support::tls::tls_get(
            gw.tls.unwrap(),
            &certs.ca_file,
            Some((&cert.0, &cert.1)),
            target,
            &headers,
        )
        .await
        .unwrap();
        let gateway: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(code, 1, "{name}: {json}");
        assert_eq!(
            json["refusal"]["status"], status,
            "{name}: {json} vs {gateway}"
        );
        assert_eq!(json["refusal"]["reason"], gateway["reason"], "{name}");
        assert_eq!(gateway["reason"], reason, "{name}");
    }
    assert_eq!(
        upstream.requests(),
        0,
        "no refused request reached the upstream"
    );
}

#[tokio::test]
async fn what_explain_would_send_is_what_the_upstream_receives() {
    let upstream = RecordingUpstream::start().await;
    let (state, certs) = (tempfile::tempdir().unwrap(), TestCerts::generate());
    let gw = GatewayProcess::spawn(&config(&upstream.url(), state.path(), &certs), &[]);
    let token = hs256(&service_claims("tollgate", "billing"));
    let headers = [
        ("Host", "api.example.com"),
        ("x-request-id", "explain-0001"),
        ("X-User-Id", "admin"),
        ("x_service_name", "orders"),
        ("Accept", "application/json"),
        ("Cookie", "theme=dark"),
        ("X-Forwarded-For", "203.0.113.7"),
        ("Connection", "keep-alive, x-drop-me"),
        ("x-drop-me", "1"),
    ];
    let mut with_token: Vec<(&str, &str)> = headers.to_vec();
    let authorization = format!("Bearer {token}");
    with_token.push(("Authorization", &authorization));
    let (code, json) = explain(&gw, "GET", "/internal/invoices?year=2026", &with_token);
    assert_eq!(code, 0, "{json}");
    let reply = get(&gw.url("/internal/invoices?year=2026"), &with_token).await;
    assert_eq!(reply.status, 200, "{}", reply.text());

    let raw = upstream.raw();
    let head = raw.split("\r\n\r\n").next().unwrap();
    let mut lines = head.lines();
    let request_line = lines.next().unwrap();
    let received: Vec<(String, String)> = lines
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap();
            (n.trim().to_ascii_lowercase(), v.trim().to_owned())
        })
        .collect();
    let would: Vec<(String, String)> = json["would_send"]["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["name"].as_str().unwrap().to_owned(),
                h["value"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let masked = |name: &str| matches!(name, "cookie" | "authorization" | "x-tollgate-assertion");
    let names = |list: &[(String, String)]| {
        let mut names: Vec<String> = list.iter().map(|(n, _)| n.clone()).collect();
        names.sort();
        names
    };
    assert_eq!(
        names(&would),
        names(&received),
        "the same headers, no more, no fewer"
    );
    for (name, value) in &received {
        if !masked(name) {
            assert!(
                would.contains(&(name.clone(), value.clone())),
                "{name}: {value} received, explain said {would:?}"
            );
        }
    }
    assert!(
        json["would_send"]["request_line"]
            .as_str()
            .unwrap()
            .ends_with("/internal/invoices?year=2026"),
        "{json}"
    );
    assert!(
        request_line.starts_with("GET /internal/invoices?year=2026 "),
        "{request_line}"
    );
    let removed = json["would_send"]["removed"].to_string();
    for gone in ["authorization", "x-drop-me", "x_service_name"] {
        assert!(removed.contains(gone), "{gone} removed: {removed}");
    }
    assert!(
        !json.to_string().contains(&token),
        "the token is never printed"
    );

    // Text output: a person reads the same verdict.
    let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["explain", "--config"])
        .arg(&gw.config_path)
        .args(["GET", "/internal/x", "--token", "-"])
        .env_remove("TOLLGATE_CONFIG")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(token.as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("allowed; would send:"), "{text}");
    assert!(text.contains("x-service-name: billing"), "{text}");
    let broken = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["explain", "--config", "/nonexistent.toml", "GET", "/"])
        .env_remove("TOLLGATE_CONFIG")
        .output()
        .unwrap();
    assert_eq!(broken.status.code(), Some(2), "a config error exits 2");
}

#[tokio::test]
async fn explain_verifies_a_client_certificate_as_the_listener_does_and_builds_the_tls_request() {
    let upstream = RecordingUpstream::start().await;
    let (state, certs) = (tempfile::tempdir().unwrap(), TestCerts::generate());
    let gw = GatewayProcess::spawn(&config(&upstream.url(), state.path(), &certs), &[]);
    let orders = certs.issue(
        "orders",
        &["orders.internal"],
        Some("spiffe://cluster.local/ns/orders/sa/orders"),
        None,
    );
    // Same names, another CA: the listener refuses it at the handshake, so explain must not
    // call it allowed.
    let elsewhere = TestCerts::generate();
    let forged = elsewhere.issue(
        "orders",
        &["orders.internal"],
        Some("spiffe://cluster.local/ns/orders/sa/orders"),
        None,
    );
    let live = support::tls::tls_get(
        gw.tls.unwrap(),
        &certs.ca_file,
        Some((&forged.0, &forged.1)),
        "/cert/x",
        &[],
    )
    .await;
    assert!(live.is_err() || live.as_ref().unwrap().0 != 200, "{live:?}");
    let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["explain", "--format", "json", "--config"])
        .arg(&gw.config_path)
        .args(["GET", "/cert/x", "--client-cert"])
        .arg(&forged.0)
        .env_remove("TOLLGATE_CONFIG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(
        out.status.code(),
        Some(0),
        "explain allowed a certificate the handshake refuses"
    );
    assert!(stderr.contains("refuse it at the handshake"), "{stderr}");

    // The real certificate: allowed, and the request explain would send is the TLS one.
    let (code, json) = explain_with(&gw, "GET", "/cert/x", &[], Some(&orders.0));
    assert_eq!(code, 0, "{json}");
    let (status, _) = support::tls::tls_get(
        gw.tls.unwrap(),
        &certs.ca_file,
        Some((&orders.0, &orders.1)),
        "/cert/x",
        &[],
    )
    .await
    .unwrap();
    assert_eq!(status, 200);
    let would = json["would_send"]["headers"].as_array().unwrap();
    let proto = would
        .iter()
        .find(|h| h["name"] == "x-forwarded-proto")
        .map(|h| h["value"].as_str().unwrap().to_owned());
    let raw = upstream.raw().to_ascii_lowercase();
    assert!(raw.contains("x-forwarded-proto: https\r\n"), "{raw}");
    assert_eq!(proto.as_deref(), Some("https"), "{json}");
}
