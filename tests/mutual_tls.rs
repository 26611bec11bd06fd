//! Mutual TLS inbound: client certificates verified against the configured CA, SPIFFE IDs and
//! DNS names mapped to services, and how a route combines them with tokens. Real handshakes
//! (rustls and curl); what the upstream received is the witness.

mod support;

use std::path::{Path, PathBuf};

use support::recording::RecordingUpstream;
use support::tls::TestCerts;
use support::*;

const ORDERS: &str = "spiffe://cluster.local/ns/orders/sa/orders";

fn config(upstream: &str, certs: &TestCerts, client_auth: &str) -> String {
    format!(
        r#"
[server]
listen = ["127.0.0.1:0"]
admin_listen = "127.0.0.1:0"

[server.tls]
listen = ["127.0.0.1:0"]
certificates = [{{ cert_file = "{}", key_file = "{}" }}]
client_auth = "{client_auth}"
client_ca_file = "{}"

[server.tls.client_services]
orders = ["{ORDERS}"]
billing = ["dns:billing.internal"]

[[issuers]]
issuer = "tollgate"
algorithms = ["HS256"]
secret = "{SECRET}"

[[routes]]
prefix = "/cert"
upstream = "{upstream}"
policy = "service"
services = ["orders"]
authenticate_with = "certificate"

[[routes]]
prefix = "/xfcc"
upstream = "{upstream}"
policy = "service"
services = ["orders"]
authenticate_with = "certificate"
forward_client_cert = true

[[routes]]
prefix = "/either"
upstream = "{upstream}"
policy = "service"
authenticate_with = "token_or_certificate"

[[routes]]
prefix = "/both"
upstream = "{upstream}"
policy = "service"
authenticate_with = "token_and_certificate"

[[routes]]
prefix = "/token"
upstream = "{upstream}"
policy = "service"
"#,
        certs.cert_file.display(),
        certs.key_file.display(),
        certs.ca_file.display(),
    )
}

/// A TLS client trusting the test CA, presenting `identity` (certificate and key) if given.
struct Client {
    ca: PathBuf,
    identity: Option<(PathBuf, PathBuf)>,
}

impl Client {
    fn new(ca: &Path, identity: Option<&(PathBuf, PathBuf)>) -> Self {
        Self {
            ca: ca.to_owned(),
            identity: identity.cloned(),
        }
    }

    /// GET `path` with `headers`; (status, body), or the connection's error.
    async fn get(
        &self,
        addr: std::net::SocketAddr,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<(u16, String), String> {
        let identity = self
            .identity
            .as_ref()
            .map(|(c, k)| (c.as_path(), k.as_path()));
        support::tls::tls_get(addr, &self.ca, identity, path, headers).await
    }
}

fn bearer(service: &str) -> String {
    format!("Bearer {}", hs256(&service_claims("tollgate", service)))
}

fn reason(body: &str) -> String {
    serde_json::from_str::<serde_json::Value>(body).map_or_else(
        |_| body.to_owned(),
        |v| v["reason"].as_str().unwrap_or_default().to_owned(),
    )
}

#[tokio::test]
async fn a_service_authenticates_with_its_certificate_and_routes_choose_how() {
    let certs = TestCerts::generate();
    let orders = certs.issue("orders", &["orders.internal"], Some(ORDERS), None);
    let billing = certs.issue("billing", &["billing.internal"], None, None);
    let stranger = certs.issue(
        "stranger",
        &["x.internal"],
        Some("spiffe://cluster.local/ns/x/sa/x"),
        None,
    );
    // An X.509-SVID has exactly one URI SAN: two SPIFFE IDs (one of them registered) name
    // nobody.
    let twin = certs.issue(
        "twin",
        &["orders.internal"],
        Some(&format!("{ORDERS} spiffe://cluster.local/ns/x/sa/x")),
        None,
    );
    let upstream = RecordingUpstream::start().await;
    let gw = spawn_gateway(&config(&upstream.url(), &certs, "request")).await;
    let tls = gw.running.as_ref().unwrap().tls_addrs[0];
    let as_twin = Client::new(&certs.ca_file, Some(&twin));
    let (as_orders, as_billing, as_stranger, anonymous) = (
        Client::new(&certs.ca_file, Some(&orders)),
        Client::new(&certs.ca_file, Some(&billing)),
        Client::new(&certs.ca_file, Some(&stranger)),
        Client::new(&certs.ca_file, None),
    );
    let (orders_token, billing_token) = (bearer("orders"), bearer("billing"));
    // A client's own identity, and its claim to a certificate in the header families TLS
    // proxies set (the upstream would believe those as the verified certificate).
    let spoof = [
        ("x-service-name", "billing"),
        ("x-user-type", "service"),
        ("x-user-id", "spiffe://cluster.local/ns/billing/sa/billing"),
        ("x-ssl-client-verify", "SUCCESS-billing"),
        ("X-SSL-Client-S-DN", "CN=billing"),
        ("ssl_client_cert", "billing"),
        ("x-client-cert", "billing"),
        (
            "x-spiffe-id",
            "spiffe://cluster.local/ns/billing/sa/billing",
        ),
        (
            "x-forwarded-client-cert",
            "URI=spiffe://cluster.local/ns/billing/sa/billing",
        ),
        ("x-arr-clientcert", "billing"),
        ("client-cert", ":billing:"),
    ];

    // Certificate only: the SPIFFE ID is the identity the upstream receives; a client's own
    // identity headers are gone.
    let (status, body) = as_orders.get(tls, "/cert/x", &spoof).await.unwrap();
    assert_eq!(status, 200, "{body}");
    let raw = upstream.raw().to_ascii_lowercase();
    for header in [
        "x-service-name: orders\r\n",
        "x-user-type: service\r\n",
        &format!("x-user-id: {ORDERS}\r\n"),
        "x-user-issuer: client-certificate\r\n",
        "x-forwarded-proto: https\r\n",
    ] {
        assert!(raw.contains(header), "{header}: {raw}");
    }
    assert!(!raw.contains("billing"), "{raw}");
    assert!(
        !raw.contains("x-forwarded-client-cert"),
        "sent on a route that did not ask: {raw}"
    );

    // A route that asks for the certificate's details gets them from tollgate, not the client.
    let (status, body) = as_orders.get(tls, "/xfcc/x", &spoof).await.unwrap();
    assert_eq!(status, 200, "{body}");
    let raw = upstream.raw();
    let lower = raw.to_ascii_lowercase();
    let xfcc: Vec<&str> = lower
        .lines()
        .filter_map(|l| l.strip_prefix("x-forwarded-client-cert: "))
        .collect();
    let [details] = xfcc.as_slice() else {
        panic!("exactly one x-forwarded-client-cert: {raw}");
    };
    let hash = details
        .strip_prefix("hash=")
        .unwrap()
        .split(';')
        .next()
        .unwrap();
    let der = {
        use rustls::pki_types::pem::PemObject;
        rustls::pki_types::CertificateDer::from_pem_file(&orders.0).unwrap()
    };
    let expected: String = {
        use sha2::Digest;
        sha2::Sha256::digest(der.as_ref())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    };
    assert_eq!(
        hash, expected,
        "the hash is of the certificate presented: {details}"
    );
    assert!(
        details.ends_with(&format!(";uri={ORDERS};dns=orders.internal")),
        "{details}"
    );
    assert!(!lower.contains("billing"), "{raw}");

    for (client, path, headers, want, why) in [
        (
            &as_billing,
            "/cert/x",
            vec![],
            (403, "service not allowed"),
            "dns:billing.internal is billing, not in services",
        ),
        (
            &as_stranger,
            "/cert/x",
            vec![],
            (401, "client certificate not registered for a service"),
            "valid but unmapped",
        ),
        (
            &as_twin,
            "/cert/x",
            vec![],
            (401, "client certificate not registered for a service"),
            "two SPIFFE IDs, and its DNS name is not used instead",
        ),
        (
            &anonymous,
            "/cert/x",
            vec![],
            (401, "client certificate required"),
            "no certificate",
        ),
        (
            &anonymous,
            "/cert/x",
            vec![("authorization", orders_token.as_str())],
            (401, "client certificate required"),
            "a token does not replace it",
        ),
        (
            &anonymous,
            "/either/x",
            vec![("authorization", orders_token.as_str())],
            (200, ""),
            "either: the token",
        ),
        (
            &as_billing,
            "/either/x",
            vec![],
            (200, ""),
            "either: the certificate",
        ),
        (
            &as_orders,
            "/either/x",
            vec![("authorization", "Bearer not.a.token")],
            (401, "malformed token"),
            "a token presented is judged, not skipped",
        ),
        (
            &as_orders,
            "/both/x",
            vec![("authorization", orders_token.as_str())],
            (200, ""),
            "both, one service",
        ),
        (
            &as_orders,
            "/both/x",
            vec![("authorization", billing_token.as_str())],
            (403, "token and client certificate name different services"),
            "both, two services",
        ),
        (
            &as_orders,
            "/both/x",
            vec![],
            (401, "token missing"),
            "both: the token is missing",
        ),
        (
            &anonymous,
            "/both/x",
            vec![("authorization", orders_token.as_str())],
            (401, "client certificate required"),
            "both: the certificate is missing",
        ),
        (
            &as_orders,
            "/token/x",
            vec![],
            (401, "token missing"),
            "token routes ignore certificates",
        ),
    ] {
        let (status, body) = client.get(tls, path, &headers).await.unwrap();
        assert_eq!(status, want.0, "{why}: {body}");
        if !want.1.is_empty() {
            assert_eq!(reason(&body), want.1, "{why}");
        }
    }

    // A certificate from a CA the gateway does not trust ends the handshake.
    let foreign = TestCerts::generate();
    let foreign_identity = foreign.issue("orders", &["orders.internal"], Some(ORDERS), None);
    let refused = Client::new(&certs.ca_file, Some(&foreign_identity))
        .get(tls, "/either/x", &[])
        .await;
    assert!(refused.is_err(), "{refused:?}");

    // A plain listener never has a certificate, whatever the headers say.
    let (status, body) = {
        let reply = get(&gw.url("/cert/x"), &spoof).await;
        (reply.status.as_u16(), reply.text())
    };
    assert_eq!(
        (status, reason(&body).as_str()),
        (401, "client certificate required")
    );
}

// Multi-threaded: curl runs as a blocking child process while the gateway serves in-process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_client_auth_required_a_client_without_a_certificate_cannot_connect() {
    let certs = TestCerts::generate();
    let (cert, key) = certs.issue("orders", &["orders.internal"], Some(ORDERS), None);
    let upstream = RecordingUpstream::start().await;
    let gw = spawn_gateway(&config(&upstream.url(), &certs, "require")).await;
    let tls = gw.running.as_ref().unwrap().tls_addrs[0];
    let url = format!("https://localhost:{}/cert/x", tls.port());
    let resolve = format!("localhost:{}:127.0.0.1", tls.port());
    let curl = |extra: &[&str]| {
        let out = std::process::Command::new("curl")
            .args([
                "-sS",
                "--max-time",
                "10",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
            ])
            .args([
                "--cacert",
                certs.ca_file.to_str().unwrap(),
                "--resolve",
                &resolve,
            ])
            .args(extra)
            .arg(&url)
            .output()
            .unwrap();
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, err) = curl(&[
        "--cert",
        cert.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ]);
    assert_eq!(code, "200", "{err}");
    let (code, err) = curl(&[]);
    assert_eq!(code, "000", "no certificate, no connection: {err}");
    assert!(
        Client::new(&certs.ca_file, None)
            .get(tls, "/either/x", &[("authorization", &bearer("orders"))])
            .await
            .is_err()
    );
    let metrics = get(&format!("http://{}/metrics", gw.admin.unwrap()), &[])
        .await
        .text();
    assert!(
        scrape_value(
            &metrics,
            "tollgate_connections_closed_total{reason=\"tls_handshake\"}"
        )
        .is_some_and(|n| n >= 1.0),
        "{metrics}"
    );
}

#[test]
fn a_certificate_route_needs_client_certificates_and_a_service_policy() {
    let certs = TestCerts::generate();
    let load = |text: &str| {
        tollgate::Config::from_toml(
            text,
            "t.toml",
            &tollgate::config::env::Env::from_map([("A", "B")]),
        )
        .map(|_| ())
        .map_err(|e| e.to_string())
    };
    let base = config("echo", &certs, "request");
    assert_eq!(load(&base), Ok(()));
    let no_client_auth = base
        .replace("client_auth = \"request\"", "client_auth = \"none\"")
        .replace(&format!("client_ca_file = \"{}\"", certs.ca_file.display()), "")
        .replace("[server.tls.client_services]\norders = [\"spiffe://cluster.local/ns/orders/sa/orders\"]\nbilling = [\"dns:billing.internal\"]", "");
    assert!(
        load(&no_client_auth).unwrap_err().contains(
            "t.toml: routes[0].authenticate_with: needs [server.tls] client_auth = \"request\" or \"require\""
        ),
        "{no_client_auth}"
    );
    let access = base.replacen(
        "policy = \"service\"\nservices = [\"orders\"]",
        "policy = \"access\"",
        1,
    );
    assert!(
        load(&access)
            .unwrap_err()
            .contains("routes[0].authenticate_with: client certificates identify services")
    );
    let bad_id = base.replace("dns:billing.internal", "billing.internal");
    assert!(
        load(&bad_id).unwrap_err().contains(
            "server.tls.client_services.billing: \"billing.internal\" is neither spiffe://<trust domain>/<path> nor dns:<name>"
        )
    );
}
