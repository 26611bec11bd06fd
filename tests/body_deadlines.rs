//! Deadlines that cover the body, not only its first byte: a client that stops sending its
//! request body gets 408 and frees its buffer, on plain and vendor routes alike; an upstream
//! that stops sending its response body has the response ended and its connection closed.

mod support;

use std::time::{Duration, Instant};

use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Sends a POST head declaring 100 bytes and `sent` of them, then waits for the answer.
async fn stalled_post(addr: std::net::SocketAddr, path: &str, sent: &[u8]) -> (String, Duration) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: gw.test\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(sent).await.unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    // The gateway answers and closes: the rest of the declared body will never come.
    let _ = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut answer)).await;
    (
        String::from_utf8_lossy(&answer).into_owned(),
        started.elapsed(),
    )
}

/// A plain and a vendor route to one upstream, with `body_read_timeout = "1s"` and the routes'
/// `timeout`.
async fn gateway(route_timeout: &str) -> (TestGateway, MockUpstream, AuthServer) {
    let upstream = MockUpstream::echo().await;
    let auth = AuthServer::start(AuthReply::Field("accessToken")).await;
    let gw = spawn_gateway(&format!(
        r#"
[limits]
body_read_timeout = "1s"

[[providers]]
name = "vendor"
kind = "login"
auth_url = "{auth}"
email = "svc@example.com"
password = "hunter2-vendor-password"

[[routes]]
prefix = "/plain"
upstream = "{up}"
policy = "public"
timeout = "{route_timeout}"

[[routes]]
prefix = "/vendor"
upstream = "{up}"
policy = "public"
upstream_auth = "vendor"
timeout = "{route_timeout}"
"#,
        auth = auth.url(),
        up = upstream.url(),
    ))
    .await;
    (gw, upstream, auth)
}

fn status_of(answer: &str) -> &str {
    answer.split(' ').nth(1).unwrap_or_default()
}

#[tokio::test]
async fn a_client_that_stops_sending_its_body_gets_408_on_plain_and_vendor_routes() {
    let (gw, upstream, _auth) = gateway("10s").await;
    for path in ["/plain/x", "/vendor/x"] {
        let (answer, took) = stalled_post(gw.addr, path, b"{\"partial\":").await;
        assert_eq!(status_of(&answer), "408", "{path}: {answer}");
        assert!(
            answer.contains("\"error\":\"request body timed out\""),
            "{path}: {answer}"
        );
        // Well before the route's 10 s timeout: the body deadline, not the route's, fired.
        assert!(took < Duration::from_secs(6), "{path}: {took:?}");
    }
    // The vendor route buffers the body to replay it: nothing was sent before it was whole.
    assert!(
        upstream
            .received()
            .iter()
            .all(|r| !r.uri.starts_with("/vendor")),
        "a partial vendor body was forwarded"
    );
}

#[tokio::test]
async fn a_trickled_vendor_body_is_bounded_by_the_route_timeout() {
    let (gw, upstream, _auth) = gateway("2s").await;
    let mut stream = TcpStream::connect(gw.addr).await.unwrap();
    stream
        .write_all(b"POST /vendor/x HTTP/1.1\r\nhost: gw.test\r\ncontent-length: 100\r\n\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    // One byte every 300 ms never trips the 1 s idle deadline; the route's 2 s does.
    let mut answer = Vec::new();
    loop {
        let mut buf = [0u8; 1024];
        tokio::select! {
            read = stream.read(&mut buf) => match read {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            },
            _ = tokio::time::sleep(Duration::from_millis(300)) => {
                if stream.write_all(b"x").await.is_err() { break; }
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "never answered"
        );
        if answer.windows(4).any(|w| w == b"\r\n\r\n") && answer.ends_with(b"}") {
            break;
        }
    }
    let answer = String::from_utf8_lossy(&answer);
    assert_eq!(status_of(&answer), "408", "{answer}");
    assert!(answer.contains("no complete body within 2s"), "{answer}");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(6),
        "{took:?}"
    );
    assert_eq!(upstream.hits(), 0);
}

#[tokio::test]
async fn an_upstream_that_stops_sending_its_body_has_the_response_ended() {
    // An upstream that sends a head for 100 bytes, 10 of them, and then nothing.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = listener.local_addr().unwrap();
    let (closed_tx, closed_rx) = tokio::sync::oneshot::channel::<Duration>();
    tokio::spawn(async move {
        let (mut conn, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 4096];
        let _ = conn.read(&mut buf).await;
        conn.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n0123456789")
            .await
            .unwrap();
        let started = Instant::now();
        // The gateway must give up and close its side.
        let _ = tokio::time::timeout(Duration::from_secs(20), conn.read(&mut buf)).await;
        let _ = closed_tx.send(started.elapsed());
    });
    let gw = spawn_gateway(&format!(
        "[[routes]]\nprefix = \"/\"\nupstream = \"http://{upstream}\"\npolicy = \"public\"\ntimeout = \"1s\"\n"
    ))
    .await;
    let mut client = TcpStream::connect(gw.addr).await.unwrap();
    client
        .write_all(b"GET /slow HTTP/1.1\r\nhost: gw.test\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), client.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the client was held past the route's timeout");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer.ends_with("0123456789"),
        "truncated, not padded: {answer}"
    );
    let upstream_held = within(closed_rx).await.unwrap();
    assert!(upstream_held < Duration::from_secs(6), "{upstream_held:?}");
}
