//! Connecting to an upstream has its own deadline, apart from the response timeout: an
//! upstream whose listen backlog is full (it accepts nothing more) gets a `502` after the
//! connect timeout, not a `504` after the 30 s response timeout; an idempotent request tries
//! the connect once more (the upstream sees one more connection attempt), another does not.
//! A new connection whose bodiless idempotent request the upstream's kernel never
//! acknowledges (a SYN cookie's connection dropped from a full accept queue) is aborted at the
//! connect timeout and the request sent once more; a request with a body is never repeated.

mod support;

use std::time::{Duration, Instant};

use support::*;

/// A listener with a backlog of 1 that never accepts, its queue already full: further connects
/// wait for a SYN-ACK that never comes.
async fn full_backlog() -> (tokio::net::TcpListener, Vec<tokio::net::TcpStream>) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(1).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut held = Vec::new();
    // Fill the accept queue (backlog + 1 on Linux), then one more that hangs in SYN-SENT.
    for _ in 0..3 {
        if let Ok(Ok(stream)) = tokio::time::timeout(
            Duration::from_millis(300),
            tokio::net::TcpStream::connect(addr),
        )
        .await
        {
            held.push(stream);
        }
    }
    (listener, held)
}

#[tokio::test]
async fn a_stalled_connect_ends_at_the_connect_timeout_not_the_response_timeout() {
    let (listener, _held) = full_backlog().await;
    let upstream = format!("http://{}", listener.local_addr().unwrap());
    let gw = spawn_gateway(&format!(
        "[limits]\nupstream_timeout = \"30s\"\nupstream_connect_timeout = \"1s\"\n{}",
        public_route("/", &upstream, "")
    ))
    .await;
    let started = Instant::now();
    let reply = get(&gw.url("/x"), &[]).await;
    let waited = started.elapsed();
    assert_eq!(reply.status, 502, "{}", reply.text());
    assert_eq!(reply.json()["error"], "upstream unavailable");
    // Two attempts of 300 ms for a GET: well under the 30 s response timeout.
    assert!(
        waited >= Duration::from_millis(550),
        "one attempt only? {waited:?}"
    );
    assert!(waited < Duration::from_secs(10), "{waited:?}");

    // A POST is not repeated: one attempt.
    let started = Instant::now();
    let request = http::Request::post(gw.url("/x"))
        .body(http_body_util::Full::new(bytes::Bytes::from_static(b"{}")))
        .unwrap();
    let reply = send(request).await;
    assert_eq!(reply.status, 502);
    let waited = started.elapsed();
    assert!(waited >= Duration::from_secs(1), "{waited:?}");
    assert!(waited < Duration::from_secs(2), "repeated: {waited:?}");
}

/// An upstream that leaves its first `stalled` connections unread, with a receive window too
/// small for the request head, so the gateway's request stays unacknowledged as when a SYN
/// cookie's connection is dropped from a full accept queue; later connections are answered
/// `200` after `delay`. Returns the address and the number of connections accepted.
async fn unread_first(
    stalled: usize,
    delay: Duration,
) -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    // Inherited by accepted connections: the smallest window Linux allows (about 2 KB).
    socket.set_recv_buffer_size(1).unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(16).unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = std::sync::Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((mut stream, _)) = listener.accept().await {
            if count.fetch_add(1, Ordering::SeqCst) < stalled {
                held.push(stream);
                continue;
            }
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                tokio::time::sleep(delay).await;
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                    .await;
            });
        }
    });
    (addr, accepted)
}

/// A request head larger than the stalled upstream's receive window.
fn padded(method: http::Method, url: &str) -> http::Request<http_body_util::Full<bytes::Bytes>> {
    http::Request::builder()
        .method(method)
        .uri(url)
        .header("x-pad", "p".repeat(12 * 1024))
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap()
}

fn connect_config(upstream: std::net::SocketAddr, response_timeout: &str) -> String {
    format!(
        "[limits]\nupstream_timeout = \"{response_timeout}\"\nupstream_connect_timeout = \"1s\"\n{}",
        public_route("/", &format!("http://{upstream}"), "")
    )
}

#[tokio::test]
async fn a_request_the_upstream_never_takes_goes_again_on_a_new_connection() {
    use std::sync::atomic::Ordering;
    let (upstream, accepted) = unread_first(1, Duration::ZERO).await;
    let gw = spawn_gateway(&connect_config(upstream, "30s")).await;
    let started = Instant::now();
    let reply = send(padded(http::Method::GET, &gw.url("/x"))).await;
    let waited = started.elapsed();
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.text(), "ok");
    assert_eq!(accepted.load(Ordering::SeqCst), 2, "sent once more");
    // Aborted at the 1 s connect timeout, not left to the 30 s response timeout.
    assert!(waited < Duration::from_secs(10), "{waited:?}");
}

#[tokio::test]
async fn a_request_never_taken_twice_is_a_502_after_two_connect_timeouts() {
    use std::sync::atomic::Ordering;
    let (upstream, accepted) = unread_first(usize::MAX, Duration::ZERO).await;
    let gw = spawn_gateway(&connect_config(upstream, "30s")).await;
    let started = Instant::now();
    let reply = send(padded(http::Method::GET, &gw.url("/x"))).await;
    let waited = started.elapsed();
    assert_eq!(reply.status, 502, "{}", reply.text());
    assert_eq!(reply.json()["error"], "upstream unavailable");
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
    assert!(waited < Duration::from_secs(10), "{waited:?}");
}

#[tokio::test]
async fn a_request_with_a_body_is_not_sent_twice() {
    use std::sync::atomic::Ordering;
    let (upstream, accepted) = unread_first(1, Duration::ZERO).await;
    let gw = spawn_gateway(&connect_config(upstream, "3s")).await;
    let mut request = padded(http::Method::PUT, &gw.url("/x"));
    *request.body_mut() = http_body_util::Full::new(bytes::Bytes::from_static(b"{}"));
    let reply = send(request).await;
    // Idempotent, but its body was streamed: left to the response timeout, never repeated.
    assert_eq!(reply.status, 504, "{}", reply.text());
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_upstream_that_took_the_request_may_answer_after_the_connect_timeout() {
    let (upstream, accepted) = unread_first(0, Duration::from_millis(2500)).await;
    let gw = spawn_gateway(&connect_config(upstream, "30s")).await;
    let reply = send(padded(http::Method::GET, &gw.url("/x"))).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
}
