//! One authority per hop: in front of a real nginx speaking HTTP/2 over TLS, tollgate sends
//! the host once (`:authority` on HTTP/2, `Host` on HTTP/1.1), so nginx never sees two that
//! could disagree (RFC 9113 §8.3.1; nginx answers such a request 400), with and without
//! `preserve_host`; and the identity assertion signs the host the upstream uses.

mod support;

use support::nginx::Nginx;
use support::tls::TestCerts;
use support::*;

/// nginx on TLS with HTTP/2, answering with what it took the host and protocol to be.
fn nginx(certs: &TestCerts) -> Option<(Nginx, String)> {
    let (cert, key) = certs.issue("upstream", &["localhost"], None, None);
    let nginx = Nginx::start_with_servers(&format!(
        r#"    server {{
        listen 127.0.0.1:PORT ssl http2;
        ssl_certificate {};
        ssl_certificate_key {};
        access_log off;
        location / {{
            return 200 '{{"host":"$host","http_host":"$http_host","protocol":"$server_protocol"}}';
        }}
    }}
"#,
        cert.display(),
        key.display()
    ))?;
    let url = format!("https://localhost:{}", nginx.addr.port());
    Some((nginx, url))
}

async fn through(preserve_host: bool) -> Option<Reply> {
    let certs = TestCerts::generate();
    let (_nginx, url) = nginx(&certs)?;
    let gw = spawn_gateway(&public_route(
        "/",
        &url,
        &format!(
            "preserve_host = {preserve_host}\nupstream_tls = {{ ca_file = \"{}\" }}",
            certs.ca_file.display()
        ),
    ))
    .await;
    Some(get(&gw.url("/x"), &[("host", "public.example.com")]).await)
}

#[tokio::test]
async fn an_http2_upstream_gets_one_authority_without_preserve_host() {
    let Some(reply) = through(false).await else {
        return;
    };
    assert_eq!(reply.status, 200, "{}", reply.text());
    let seen = reply.json();
    assert_eq!(seen["protocol"], "HTTP/2.0", "{seen}");
    assert_eq!(seen["host"], "localhost", "{seen}");
}

#[tokio::test]
async fn an_http2_capable_upstream_gets_the_clients_host_once_with_preserve_host() {
    let Some(reply) = through(true).await else {
        return;
    };
    assert_eq!(reply.status, 200, "{}", reply.text());
    let seen = reply.json();
    assert_eq!(seen["host"], "public.example.com", "{seen}");
    assert_eq!(seen["http_host"], "public.example.com", "{seen}");
}
