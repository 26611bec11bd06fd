//! The admin listener under the data listener's rules: a stalled request head is cut off at
//! `header_read_timeout`, an oversized one refused; and the console answers only requests that
//! name it by an address or a configured name (no DNS rebinding), credential or not.

mod support;

use std::time::{Duration, Instant};

use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CONFIG: &str = r#"
[limits]
header_read_timeout = "500ms"
max_header_bytes = 8192

[admin]
console = true
hosts = ["admin.internal"]
"#;

#[tokio::test]
async fn a_stalled_head_on_the_admin_port_is_cut_off_like_on_the_data_port() {
    let gw = spawn_gateway(&format!("{CONFIG}{}", public_route("/", "echo", ""))).await;
    let admin = gw.admin.expect("admin listener");
    let mut stream = tokio::net::TcpStream::connect(admin).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let mut buf = Vec::new();
    // The admin connection deadline is 30 s: closing within a few seconds is the head timeout.
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut buf)).await;
    assert!(
        read.is_ok(),
        "the admin port kept a stalled head open for 5 s"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    let answer = String::from_utf8_lossy(&buf);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );

    // A head over max_header_bytes is refused, not read on.
    let mut stream = tokio::net::TcpStream::connect(admin).await.unwrap();
    let big = format!(
        "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nx-big: {}\r\n\r\n",
        "a".repeat(20_000)
    );
    let _ = stream.write_all(big.as_bytes()).await;
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut buf)).await;
    let answer = String::from_utf8_lossy(&buf);
    assert!(!answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test]
async fn the_console_answers_only_its_own_names() {
    let gw = spawn_gateway(&format!("{CONFIG}{}", public_route("/", "echo", ""))).await;
    let admin = gw.admin.expect("admin listener");
    let url = format!("http://{admin}/console/api/overview");
    let port = admin.port();
    for (host, origin, want) in [
        (format!("127.0.0.1:{port}"), None, 200),
        (format!("localhost:{port}"), None, 200),
        ("admin.internal".to_owned(), None, 200),
        ("ADMIN.internal.:9901".to_owned(), None, 200),
        (
            format!("127.0.0.1:{port}"),
            Some(format!("http://127.0.0.1:{port}")),
            200,
        ),
        // A rebinding page sends its own name.
        (format!("attacker.example:{port}"), None, 403),
        ("localhost.attacker.example".to_owned(), None, 403),
        (
            format!("127.0.0.1:{port}"),
            Some("http://attacker.example".to_owned()),
            403,
        ),
        (format!("127.0.0.1:{port}"), Some("null".to_owned()), 403),
    ] {
        let mut headers = vec![("host", host.as_str())];
        if let Some(origin) = &origin {
            headers.push(("origin", origin.as_str()));
        }
        let reply = get(&url, &headers).await;
        assert_eq!(
            reply.status,
            want,
            "Host {host}, Origin {origin:?}: {}",
            reply.text()
        );
    }
    // The probes and metrics are not the console: any Host reaches them.
    let reply = get(
        &format!("http://{admin}/healthz"),
        &[("host", "anything.example")],
    )
    .await;
    assert_eq!(reply.status, 200);
}
