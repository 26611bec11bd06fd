//! Smoke tests of the test witnesses themselves: a real nginx reports what it believed, and the
//! recording upstream keeps raw bytes.

mod support;

use support::nginx::Nginx;
use support::recording::{RecordingUpstream, head_of};
use support::within;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Writes `request` on a new connection to `addr` and reads until EOF or 5 s.
async fn exchange(addr: std::net::SocketAddr, request: &[u8]) -> String {
    let mut stream = within(TcpStream::connect(addr)).await.unwrap();
    within(stream.write_all(request)).await.unwrap();
    let mut reply = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        stream.read_to_end(&mut reply),
    )
    .await;
    String::from_utf8_lossy(&reply).into_owned()
}

#[tokio::test]
async fn nginx_normalises_host_case_and_trailing_dot() {
    let Some(nginx) = Nginx::start() else { return };
    let reply = nginx
        .raw(b"GET / HTTP/1.1\r\nHost: ADMIN.example.com.\r\nConnection: close\r\n\r\n")
        .await;
    let believed = Nginx::believed(&reply).unwrap_or_else(|| panic!("no JSON in {reply:?}"));
    assert_eq!(believed["server"], "admin", "{reply}");
    assert_eq!(believed["host"], "admin.example.com", "{reply}");
    assert_eq!(believed["http_host"], "ADMIN.example.com.", "{reply}");

    let reply = nginx
        .raw(b"GET /x?y=1 HTTP/1.1\r\nHost: other.example\r\nConnection: close\r\n\r\n")
        .await;
    let believed = Nginx::believed(&reply).unwrap_or_else(|| panic!("no JSON in {reply:?}"));
    assert_eq!(believed["server"], "default", "{reply}");
    assert_eq!(believed["request_uri"], "/x?y=1", "{reply}");

    let log = nginx.log_lines();
    assert_eq!(log.len(), 2, "{log:?}");
    assert_eq!(log[0]["server"], "admin");
    assert_eq!(log[1]["server"], "default");
    assert_eq!(log[1]["status"], "200");
}

#[tokio::test]
async fn recording_upstream_keeps_raw_bytes() {
    let up = RecordingUpstream::start().await;
    let reply = exchange(
        up.addr,
        b"GET /a?b=1 HTTP/1.1\r\nHost: x\r\nX-Test: 1\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply}");
    assert!(reply.ends_with("\r\n\r\nok"), "{reply}");
    up.wait_requests(1).await;
    let raw = up.raw();
    assert!(raw.contains("GET /a?b=1 HTTP/1.1"), "{raw}");
    assert!(raw.contains("X-Test: 1"), "{raw}");
    assert_eq!(up.request_lines(), ["GET /a?b=1 HTTP/1.1"]);
    assert!(head_of(&raw, 0).ends_with("X-Test: 1\r\nConnection: close"));
    assert_eq!(up.connections().len(), 1);
}

#[tokio::test]
async fn recording_upstream_records_an_upgraded_tunnel_once() {
    let up = RecordingUpstream::accepting_upgrades().await;
    let mut stream = within(TcpStream::connect(up.addr)).await.unwrap();
    let head = b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n";
    within(stream.write_all(head)).await.unwrap();
    let mut buf = vec![0u8; 1024];
    let n = within(stream.read(&mut buf)).await.unwrap();
    let answer = String::from_utf8_lossy(&buf[..n]).to_lowercase();
    assert!(answer.starts_with("http/1.1 101"), "{answer}");
    assert!(answer.contains("upgrade: websocket"), "{answer}");
    within(stream.write_all(b"tunnel-bytes")).await.unwrap();
    let mut echo = [0u8; 12];
    within(stream.read_exact(&mut echo)).await.unwrap();
    assert_eq!(&echo, b"tunnel-bytes");
    assert_eq!(up.raw().matches("tunnel-bytes").count(), 1, "{}", up.raw());
}

#[tokio::test]
async fn unsolicited_101_answers_a_plain_get() {
    let up = RecordingUpstream::unsolicited_101().await;
    let reply = exchange(up.addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let lower = reply.to_lowercase();
    assert!(
        lower.starts_with("http/1.1 101 switching protocols\r\n"),
        "{reply}"
    );
    assert!(lower.contains("upgrade: h2c"), "{reply}");
    assert_eq!(up.requests(), 1);
}
