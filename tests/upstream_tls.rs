//! TLS to upstreams with their own settings: a private CA, a client certificate for mutual
//! TLS and the name the upstream's certificate holds, proven against a real nginx that
//! requires a client certificate and reports what it verified.

mod support;

use support::nginx::Nginx;
use support::tls::TestCerts;
use support::*;

fn route(prefix: &str, upstream: &str, tls: &str) -> String {
    format!(
        "[[routes]]\nprefix = \"{prefix}\"\nupstream = \"{upstream}\"\npolicy = \"public\"\nstrip_prefix = true\nupstream_tls = {{ {tls} }}\n"
    )
}

#[tokio::test]
async fn the_gateway_presents_its_certificate_to_an_upstream_that_requires_one() {
    let certs = TestCerts::generate();
    let (server_cert, server_key) = certs.issue("orders", &["orders.internal"], None, None);
    let (client_cert, client_key) = certs.issue(
        "gateway",
        &["gateway.internal"],
        Some("spiffe://cluster.local/ns/edge/sa/tollgate"),
        None,
    );
    let Some(nginx) = Nginx::start_serving(
        " ssl",
        &format!(
            "ssl_certificate {}; ssl_certificate_key {}; ssl_client_certificate {}; ssl_verify_client on;",
            server_cert.display(),
            server_key.display(),
            certs.ca_file.display()
        ),
    ) else {
        return;
    };
    let upstream = format!("https://{}", nginx.addr);
    let (ca, cert, key) = (
        certs.ca_file.display(),
        client_cert.display(),
        client_key.display(),
    );
    let toml = [
        route(
            "/mtls",
            &upstream,
            &format!("ca_file = \"{ca}\", cert_file = \"{cert}\", key_file = \"{key}\", server_name = \"orders.internal\""),
        ),
        route(
            "/no-cert",
            &upstream,
            &format!("ca_file = \"{ca}\", server_name = \"orders.internal\""),
        ),
        route(
            "/wrong-name",
            &upstream,
            &format!("ca_file = \"{ca}\", cert_file = \"{cert}\", key_file = \"{key}\""),
        ),
        route(
            "/public-roots",
            &upstream,
            &format!("cert_file = \"{cert}\", key_file = \"{key}\", server_name = \"orders.internal\""),
        ),
        route(
            "/skip-verify",
            &upstream,
            &format!("cert_file = \"{cert}\", key_file = \"{key}\", insecure_skip_verify = true"),
        ),
    ]
    .concat();
    let gw = spawn_gateway(&toml).await;

    let reply = get(&gw.url("/mtls/x"), &[]).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let believed = reply.json();
    assert_eq!(believed["client_verify"], "SUCCESS", "{believed}");
    assert_eq!(believed["client_s_dn"], "CN=gateway.internal", "{believed}");
    assert_eq!(believed["uri"], "/x");

    let reply = get(&gw.url("/no-cert/x"), &[]).await;
    assert_eq!(
        reply.status, 400,
        "nginx refuses a client without a certificate"
    );
    assert!(
        reply
            .text()
            .contains("No required SSL certificate was sent"),
        "{}",
        reply.text()
    );
    for refused in ["/wrong-name/x", "/public-roots/x"] {
        let reply = get(&gw.url(refused), &[]).await;
        assert_eq!(reply.status, 502, "{refused}: {}", reply.text());
    }
    let reply = get(&gw.url("/skip-verify/x"), &[]).await;
    assert_eq!(
        reply.status,
        200,
        "loopback may skip verification: {}",
        reply.text()
    );
    assert_eq!(reply.json()["client_verify"], "SUCCESS");
}

#[test]
fn upstream_tls_settings_are_checked_at_load() {
    let certs = TestCerts::generate();
    let load = |upstream: &str, tls: &str| {
        tollgate::Config::from_toml(
            &route("/a", upstream, tls),
            "t.toml",
            &tollgate::Env::from_map([("A", "B")]),
        )
        .map(|_| ())
        .map_err(|e| e.to_string())
    };
    let cert = certs.cert_file.display().to_string();
    for (upstream, tls, error) in [
        (
            "https://orders.internal",
            "insecure_skip_verify = true",
            "t.toml: routes[0].upstream_tls.insecure_skip_verify: refused for orders.internal",
        ),
        (
            "http://127.0.0.1:9",
            "server_name = \"x\"",
            "t.toml: routes[0].upstream_tls: applies to https:// upstreams only",
        ),
        (
            "https://orders.internal",
            &format!("cert_file = \"{cert}\""),
            "t.toml: routes[0].upstream_tls.key_file: cert_file needs its key_file",
        ),
        (
            "https://orders.internal",
            "ca_file = \"/nonexistent/ca.pem\"",
            "t.toml: routes[0].upstream_tls.ca_file: cannot read \"/nonexistent/ca.pem\"",
        ),
    ] {
        let got = load(upstream, tls).unwrap_err();
        assert!(got.contains(error), "{tls}: {got}");
    }
    assert_eq!(
        load(
            "https://orders.internal",
            &format!(
                "ca_file = \"{}\", server_name = \"orders.internal\"",
                certs.ca_file.display()
            )
        ),
        Ok(())
    );
}
