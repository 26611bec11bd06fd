//! Idle HTTP/1 keep-alive connections are parked (their buffers freed) and wake up intact:
//! keep-alive preserved, a request that was half sent survives, a body the gateway refused is
//! never read as a request, upgrades still tunnel, a drain closes parked sockets at once, and
//! TLS connections park and wake the same way (their session intact, close_notify honoured).
//! Plain connections park in the gateway's lot, without a task each: hundreds wake at once,
//! the age limit closes them there, and one its client closed gives its slot back.

mod support;

use std::time::{Duration, Instant};

use support::tls::TestCerts;
use support::*;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longer than the gateway takes to park an idle connection (1 to 2 s), with a margin for a
/// loaded machine.
const IDLE: Duration = Duration::from_millis(3000);

async fn parked(gw: &TestGateway) -> f64 {
    let reply = get(&format!("http://{}/metrics", gw.admin.unwrap()), &[]).await;
    scrape_value(&reply.text(), "tollgate_connections_parked").expect("parked gauge exported")
}

/// Waits (up to a few seconds past the park delay) until one connection is parked.
async fn wait_until_parked(gw: &TestGateway) {
    wait_parked(gw, 1.0).await;
}

/// Waits (up to a few seconds past the park delay) until `n` connections are parked.
async fn wait_parked(gw: &TestGateway, n: f64) {
    let deadline = tokio::time::Instant::now() + IDLE * 2;
    while parked(gw).await != n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} connections parked, not {n}",
            parked(gw).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Reads one response with a `content-length` body.
async fn read_response<S: AsyncRead + Unpin>(stream: &mut S) -> String {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            if buf.len() >= end + 4 + length {
                assert_eq!(
                    buf.len(),
                    end + 4 + length,
                    "no extra bytes after a response"
                );
                return String::from_utf8(buf).unwrap();
            }
        }
        let n = within(stream.read(&mut chunk)).await.unwrap();
        assert!(
            n > 0,
            "connection closed mid-response: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Writes `bytes` (the rest of a request) on `stream` and reads the response.
async fn send_on<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S, bytes: &[u8]) -> String {
    within(stream.write_all(bytes)).await.unwrap();
    read_response(stream).await
}

/// Sends half a request head on an idle connection, waits long enough for the connection to
/// park around it, then sends the rest with `body`; the whole request must be answered.
async fn complete_half_sent_request<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    body: &[u8],
) {
    within(stream.write_all(b"POST /two HTTP/1.1\r\nhost: a\r\ncontent-le"))
        .await
        .unwrap();
    tokio::time::sleep(IDLE).await;
    let mut rest = format!("ngth: {}\r\n\r\n", body.len()).into_bytes();
    rest.extend_from_slice(body);
    let response = send_on(stream, &rest).await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains(r#""path":"/two""#), "{response}");
    let body_len = format!(r#""body_len":{}"#, body.len());
    assert!(response.contains(&body_len), "{response}");
}

/// A connection that has been through one request and is now idle.
async fn used_connection(gw: &TestGateway) -> TcpStream {
    let mut stream = within(TcpStream::connect(gw.addr)).await.unwrap();
    let first = send_on(&mut stream, b"GET /one HTTP/1.1\r\nhost: a\r\n\r\n").await;
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    stream
}

async fn echo_gateway() -> (MockUpstream, TestGateway) {
    let up = MockUpstream::echo().await;
    let gw = spawn_gateway(&public_route("/", &up.url(), "max_body_bytes = 1024")).await;
    (up, gw)
}

#[tokio::test]
async fn idle_connection_is_parked_and_keeps_serving() {
    let (up, gw) = echo_gateway().await;
    let mut stream = used_connection(&gw).await;
    assert_eq!(
        parked(&gw).await,
        0.0,
        "a connection just used is not parked"
    );

    wait_until_parked(&gw).await;

    // Same socket: keep-alive survived parking, and the body is carried both ways.
    let second = send_on(
        &mut stream,
        b"POST /two HTTP/1.1\r\nhost: a\r\ncontent-length: 5\r\n\r\nhello",
    )
    .await;
    assert!(second.starts_with("HTTP/1.1 200"), "{second}");
    assert!(second.contains(r#""path":"/two""#), "{second}");
    assert!(second.contains(r#""body_len":5"#), "{second}");
    assert!(
        !second.to_ascii_lowercase().contains("connection: close"),
        "{second}"
    );
    assert_eq!(parked(&gw).await, 0.0, "woken by its request");
    assert_eq!(up.hits(), 2);

    // Parked again after the second request, and woken again.
    wait_until_parked(&gw).await;
    let third = send_on(&mut stream, b"GET /three HTTP/1.1\r\nhost: a\r\n\r\n").await;
    assert!(third.contains(r#""path":"/three""#), "{third}");
    assert_eq!(up.hits(), 3);
}

#[tokio::test]
async fn request_half_sent_while_idle_is_completed_after_parking() {
    let (up, gw) = echo_gateway().await;
    let mut stream = used_connection(&gw).await;

    // Half a head: the connection parks around it and keeps the bytes.
    complete_half_sent_request(&mut stream, b"abc").await;
    assert_eq!(up.hits(), 2);
}

#[tokio::test]
async fn body_the_gateway_refused_is_never_read_as_a_request() {
    let (up, gw) = echo_gateway().await;
    let mut stream = used_connection(&gw).await;

    // Refused on its declared length, before a byte of the body is read. The body holds a
    // whole request; whatever the gateway does with the connection, it must not answer it.
    let smuggled = b"GET /smuggled HTTP/1.1\r\nhost: a\r\n\r\n";
    let mut head = b"POST /big HTTP/1.1\r\nhost: a\r\ncontent-length: 2000\r\n\r\n".to_vec();
    head.extend_from_slice(smuggled);
    within(stream.write_all(&head)).await.unwrap();
    tokio::time::sleep(IDLE).await;
    let _ = stream.write_all(smuggled).await;
    let _ = stream.write_all(&[b'x'; 1900]).await;

    let mut all = Vec::new();
    let _ = within(stream.read_to_end(&mut all)).await;
    let text = String::from_utf8_lossy(&all);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert_eq!(
        text.matches("HTTP/1.1 ").count(),
        1,
        "one response only: {text}"
    );
    assert_eq!(up.hits(), 1, "only the first request reached the upstream");
    assert!(up.received().iter().all(|r| r.uri != "/smuggled"));
}

#[tokio::test]
async fn clients_that_send_no_complete_head_are_closed_by_the_header_timeout() {
    let up = MockUpstream::echo().await;
    let gw = spawn_gateway(&format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\nadmin_listen = \"127.0.0.1:0\"\n\n[limits]\nheader_read_timeout = \"300ms\"\n\n{}",
        public_route("/", &up.url(), "")
    ))
    .await;
    // Nothing sent at all (no HTTP state is even built for it), and half a head after a
    // request: both end at the timeout.
    let mut silent = within(TcpStream::connect(gw.addr)).await.unwrap();
    let mut slow = within(TcpStream::connect(gw.addr)).await.unwrap();
    within(slow.write_all(b"GET /a HTTP/1.1\r\nhost: a\r\n\r\n"))
        .await
        .unwrap();
    read_response(&mut slow).await;
    within(slow.write_all(b"GET /b HTTP/1.1\r\nho"))
        .await
        .unwrap();
    let started = Instant::now();
    let mut rest = Vec::new();
    let _ = within(silent.read_to_end(&mut rest)).await;
    let _ = within(slow.read_to_end(&mut rest)).await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "closed after {:?}",
        started.elapsed()
    );
    assert_eq!(up.hits(), 1);
}

#[tokio::test]
async fn drain_closes_parked_connections_at_once() {
    let (_up, gw) = echo_gateway().await;
    let mut stream = used_connection(&gw).await;
    wait_until_parked(&gw).await;

    let started = Instant::now();
    gw.stop().await;
    let mut rest = Vec::new();
    let n = within(stream.read_to_end(&mut rest)).await.unwrap();
    assert_eq!(n, 0, "closed without a response");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "drain took {:?} with only a parked connection",
        started.elapsed()
    );
}

#[tokio::test]
async fn idle_tls_connection_is_parked_and_keeps_serving() {
    let up = MockUpstream::echo().await;
    let certs = TestCerts::generate();
    let gw = spawn_gateway(&format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\nadmin_listen = \"127.0.0.1:0\"\n\n\
         [server.tls]\nlisten = [\"127.0.0.1:0\"]\n\
         certificates = [{{ cert_file = \"{}\", key_file = \"{}\" }}]\n\n{}",
        certs.cert_file.display(),
        certs.key_file.display(),
        public_route("/", &up.url(), "max_body_bytes = 1024")
    ))
    .await;
    let addr = gw.running.as_ref().unwrap().tls_addrs[0];
    let mut tls = within(support::tls::tls_connect(addr, &certs.ca_file, None))
        .await
        .unwrap();
    let first = send_on(&mut tls, b"GET /one HTTP/1.1\r\nhost: a\r\n\r\n").await;
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    wait_until_parked(&gw).await;

    // Woken by the next request's first record; half a head, then the rest after the
    // connection has had time to park around it.
    complete_half_sent_request(&mut tls, b"hello").await;
    let woken = up.received().pop().unwrap();
    assert_eq!(
        woken.headers["x-forwarded-proto"], "https",
        "still the TLS connection"
    );

    // Parked again, then woken by a whole request.
    wait_until_parked(&gw).await;
    let third = send_on(&mut tls, b"GET /three HTTP/1.1\r\nhost: a\r\n\r\n").await;
    assert!(third.contains(r#""path":"/three""#), "{third}");
    assert_eq!(up.hits(), 3);

    // A close_notify while parked: the gateway closes its side instead of waiting.
    wait_until_parked(&gw).await;
    within(tls.shutdown()).await.unwrap();
    let mut rest = Vec::new();
    let _ = within(tls.read_to_end(&mut rest)).await;
    assert!(rest.is_empty(), "no response to a close: {rest:?}");
    let deadline = tokio::time::Instant::now() + IDLE;
    while parked(&gw).await != 0.0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "still parked after close_notify"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn hundreds_of_parked_connections_hold_no_task_and_all_wake_to_answers() {
    const CONNECTIONS: usize = 300;
    let (up, gw) = {
        let up = MockUpstream::echo().await;
        let toml = format!(
            "[limits]\nmax_connections_per_ip = 1000\n\n{}",
            public_route("/", &up.url(), "")
        );
        (up, spawn_gateway(&toml).await)
    };
    let tasks = || {
        tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks()
    };
    let before = tasks();
    let mut streams = Vec::new();
    for _ in 0..CONNECTIONS {
        streams.push(used_connection(&gw).await);
    }
    wait_parked(&gw, CONNECTIONS as f64).await;
    // Each connection had a task while it was served; parked, none has.
    let while_parked = tasks();
    assert!(
        while_parked < before + 10,
        "{while_parked} tasks alive with {CONNECTIONS} connections parked, {before} before"
    );

    // More readable at once than the lot reads in one batch: every one is answered.
    for stream in &mut streams {
        within(stream.write_all(b"GET /again HTTP/1.1\r\nhost: a\r\n\r\n"))
            .await
            .unwrap();
    }
    for stream in &mut streams {
        let response = read_response(stream).await;
        assert!(response.contains(r#""path":"/again""#), "{response}");
    }
    assert_eq!(up.hits(), 2 * CONNECTIONS);
}

#[tokio::test]
async fn a_parked_connection_is_closed_at_its_age_limit_and_counted() {
    let up = MockUpstream::echo().await;
    let gw = spawn_gateway(&format!(
        "[limits]\nmax_connection_age = \"3s\"\n\n{}",
        public_route("/", &up.url(), "")
    ))
    .await;
    let mut stream = used_connection(&gw).await;
    wait_until_parked(&gw).await;
    let mut rest = Vec::new();
    let n = within(stream.read_to_end(&mut rest)).await.unwrap();
    assert_eq!(n, 0, "closed without a response");
    assert_eq!(parked(&gw).await, 0.0);
    let metrics = get(&format!("http://{}/metrics", gw.admin.unwrap()), &[]).await;
    assert_eq!(
        scrape_value(
            &metrics.text(),
            "tollgate_connections_closed_total{reason=\"max_age\"}"
        ),
        Some(1.0)
    );
}

#[tokio::test]
async fn a_parked_connection_its_client_closed_gives_its_slot_back() {
    let up = MockUpstream::echo().await;
    let gw = spawn_gateway(&format!(
        "[limits]\nmax_connections = 2\n\n{}",
        public_route("/", &up.url(), "")
    ))
    .await;
    let (first, second) = (used_connection(&gw).await, used_connection(&gw).await);
    wait_parked(&gw, 2.0).await;
    drop((first, second));
    // Both slots come back: two new connections are served (a third would wait for one).
    let mut again = (used_connection(&gw).await, used_connection(&gw).await);
    let response = send_on(&mut again.0, b"GET /x HTTP/1.1\r\nhost: a\r\n\r\n").await;
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert_eq!(parked(&gw).await, 0.0);
    assert_eq!(up.hits(), 5);
}
