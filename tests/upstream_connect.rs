//! Connecting to an upstream has its own deadline, apart from the response timeout: an
//! upstream whose listen backlog is full (it accepts nothing more) gets a `502` after the
//! connect timeout, not a `504` after the 30 s response timeout; an idempotent request tries
//! the connect once more (the upstream sees one more connection attempt), another does not.

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
