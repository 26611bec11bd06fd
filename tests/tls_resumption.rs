//! TLS session resumption on the listener: a returning client skips the certificate and the
//! signature with a stateless ticket (OpenSSL, through Python's `ssl`, offering one ticket on
//! several connections, as wrk and many clients do); where client certificates are asked for,
//! every connection makes a full handshake unless the config opts in, and a resumed session
//! keeps its certificate identity. The recording upstream is the witness of what got through.

mod support;

use std::path::Path;

use support::recording::RecordingUpstream;
use support::tls::{TestCerts, client_config, connect_with, get_on};
use support::*;

const ORDERS: &str = "spiffe://cluster.local/ns/orders/sa/orders";

/// A TLS listener with `tls_extra` in `[server.tls]`, a public route `/` and, when client
/// certificates are asked for, a certificate route `/cert` for the service `orders`.
fn config(upstream: &str, certs: &TestCerts, tls_extra: &str) -> String {
    let cert_route = if tls_extra.contains("client_auth") {
        format!(
            "[[routes]]\nprefix = \"/cert\"\nupstream = \"{upstream}\"\npolicy = \"service\"\nservices = [\"orders\"]\nauthenticate_with = \"certificate\""
        )
    } else {
        String::new()
    };
    format!(
        r#"
[server]
listen = ["127.0.0.1:0"]
admin_listen = "127.0.0.1:0"

[server.tls]
listen = ["127.0.0.1:0"]
certificates = [{{ cert_file = "{}", key_file = "{}" }}]
{tls_extra}

[[issuers]]
issuer = "tollgate"
algorithms = ["HS256"]
secret = "{SECRET}"

{cert_route}

[[routes]]
prefix = "/"
upstream = "{upstream}"
policy = "public"
"#,
        certs.cert_file.display(),
        certs.key_file.display(),
    )
}

fn client_certificates(certs: &TestCerts, session_tickets: &str) -> String {
    format!(
        "client_auth = \"require\"\nclient_ca_file = \"{}\"\n{session_tickets}\n\n[server.tls.client_services]\norders = [\"{ORDERS}\"]",
        certs.ca_file.display()
    )
}

/// `tollgate_tls_handshakes_total{kind}` from the admin listener.
async fn handshakes(gw: &TestGateway, kind: &str) -> f64 {
    let reply = get(&format!("http://{}/metrics", gw.admin.unwrap()), &[]).await;
    scrape_value(
        &reply.text(),
        &format!("tollgate_tls_handshakes_total{{kind=\"{kind}\"}}"),
    )
    .unwrap_or_else(|| panic!("handshakes of kind {kind} exported"))
}

/// Python's `ssl` (OpenSSL): one full handshake, then `again` connections that all offer the
/// session (the one ticket) the first one received. Prints, per connection, whether it was
/// resumed and the status line it got.
const OPENSSL_CLIENT: &str = r#"
import socket, ssl, sys
port, ca, again = sys.stdin.read().split("\n")[:3]
port, again = int(port), int(again)
context = ssl.create_default_context(cafile=ca)
def get(session):
    with socket.create_connection(("127.0.0.1", port)) as raw:
        with context.wrap_socket(raw, server_hostname="localhost", session=session) as tls:
            tls.sendall(b"GET /x HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
            answer = b""
            while chunk := tls.recv(65536):
                answer += chunk
            print(tls.session_reused, answer.split(b"\r\n")[0].decode())
            return tls.session
first = get(None)
for _ in range(again):
    get(first)
"#;

fn openssl_client(port: u16, ca: &Path, again: usize) -> Vec<String> {
    let input = format!("{port}\n{}\n{again}\n", ca.display());
    support::python::run(OPENSSL_CLIENT, input.as_bytes())
        .lines()
        .map(str::to_owned)
        .collect()
}

// Multi-threaded: the Python client blocks while the gateway serves in-process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_openssl_client_resumes_every_connection_from_one_ticket() {
    let upstream = RecordingUpstream::start().await;
    let certs = TestCerts::generate();
    let gw = spawn_gateway(&config(&upstream.url(), &certs, "")).await;
    let tls = gw.running.as_ref().unwrap().tls_addrs[0];
    let ca = certs.ca_file.clone();
    let lines = tokio::task::spawn_blocking(move || openssl_client(tls.port(), &ca, 3))
        .await
        .unwrap();
    // rustls' default (a cache of single-use tickets) resumed the second connection and
    // made full handshakes for the third and fourth.
    assert_eq!(
        lines,
        [
            "False HTTP/1.1 200 OK",
            "True HTTP/1.1 200 OK",
            "True HTTP/1.1 200 OK",
            "True HTTP/1.1 200 OK"
        ]
    );
    upstream.wait_requests(4).await;
    assert_eq!(
        upstream
            .raw()
            .matches("x-forwarded-proto: https\r\n")
            .count(),
        4,
        "{}",
        upstream.raw()
    );
    assert_eq!(handshakes(&gw, "full").await, 1.0);
    assert_eq!(handshakes(&gw, "resumed").await, 3.0);
}

#[tokio::test]
async fn session_tickets_off_means_a_full_handshake_every_time() {
    let upstream = RecordingUpstream::start().await;
    let certs = TestCerts::generate();
    let gw = spawn_gateway(&config(&upstream.url(), &certs, "session_tickets = false")).await;
    let tls = gw.running.as_ref().unwrap().tls_addrs[0];
    let client = client_config(&certs.ca_file, None);
    for _ in 0..3 {
        let stream = connect_with(tls, client.clone()).await.unwrap();
        assert_eq!(
            stream.get_ref().1.handshake_kind(),
            Some(rustls::HandshakeKind::Full)
        );
        assert_eq!(get_on(stream, "/x", &[]).await.unwrap().0, 200);
    }
    assert_eq!(handshakes(&gw, "full").await, 3.0);
    assert_eq!(handshakes(&gw, "resumed").await, 0.0);
}

/// Three connections with one client configuration (which keeps its tickets) presenting the
/// `orders` certificate: each handshake's kind, and what `/cert` answered.
async fn three_certificate_connections(
    tls: std::net::SocketAddr,
    certs: &TestCerts,
) -> Vec<(Option<rustls::HandshakeKind>, u16)> {
    let identity = certs.issue("orders", &["orders.internal"], Some(ORDERS), None);
    let client = client_config(&certs.ca_file, Some((&identity.0, &identity.1)));
    let mut seen = Vec::new();
    for _ in 0..3 {
        let stream = connect_with(tls, client.clone()).await.unwrap();
        let kind = stream.get_ref().1.handshake_kind();
        seen.push((kind, get_on(stream, "/cert/x", &[]).await.unwrap().0));
    }
    seen
}

#[tokio::test]
async fn with_client_certificates_every_connection_shows_its_certificate_by_default() {
    let upstream = RecordingUpstream::start().await;
    let certs = TestCerts::generate();
    let toml = config(&upstream.url(), &certs, &client_certificates(&certs, ""));
    let gw = spawn_gateway(&toml).await;
    let tls = gw.running.as_ref().unwrap().tls_addrs[0];
    let full = Some(rustls::HandshakeKind::Full);
    assert_eq!(
        three_certificate_connections(tls, &certs).await,
        [(full, 200), (full, 200), (full, 200)]
    );
    assert_eq!(handshakes(&gw, "resumed").await, 0.0);
}

#[tokio::test]
async fn a_resumed_session_keeps_its_certificate_identity_when_tickets_are_on() {
    let upstream = RecordingUpstream::start().await;
    let certs = TestCerts::generate();
    let tls_extra = client_certificates(&certs, "session_tickets = true");
    let gw = spawn_gateway(&config(&upstream.url(), &certs, &tls_extra)).await;
    let tls = gw.running.as_ref().unwrap().tls_addrs[0];
    let (full, resumed) = (
        Some(rustls::HandshakeKind::Full),
        Some(rustls::HandshakeKind::Resumed),
    );
    assert_eq!(
        three_certificate_connections(tls, &certs).await,
        [(full, 200), (resumed, 200), (resumed, 200)]
    );
    // The resumed connections carry no certificate on the wire: the identity the upstream
    // receives comes from the session the ticket restored.
    upstream.wait_requests(3).await;
    let raw = upstream.raw();
    assert_eq!(
        raw.matches("x-service-name: orders\r\n").count(),
        3,
        "{raw}"
    );
    assert_eq!(
        raw.matches(&format!("x-user-id: {ORDERS}\r\n")).count(),
        3,
        "{raw}"
    );
}
