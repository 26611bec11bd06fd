//! Connection lifetime: idle HTTP/2 connections give their slot back, old connections are
//! drained without losing a request, and one client address cannot take every slot.

mod support;

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use support::recording::RecordingUpstream;
use support::*;

type H2Sender = hyper::client::conn::http2::SendRequest<Empty<Bytes>>;

/// An HTTP/2 connection to `gw`, its driver running; `done` resolves when it closes.
async fn h2(gw: &TestGateway) -> (H2Sender, tokio::task::JoinHandle<()>) {
    let stream = within(TcpStream::connect(gw.addr)).await.unwrap();
    let (sender, conn) = within(hyper::client::conn::http2::handshake(
        TokioExecutor::new(),
        TokioIo::new(stream),
    ))
    .await
    .unwrap();
    let done = tokio::spawn(async move {
        let _ = conn.await;
    });
    (sender, done)
}

async fn h2_get(sender: &mut H2Sender, gw: &TestGateway, path: &str) -> u16 {
    let request = http::Request::get(gw.url(path))
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = within(sender.send_request(request)).await.unwrap();
    let status = response.status().as_u16();
    within(response.into_body().collect()).await.unwrap();
    status
}

async fn closed(gw: &TestGateway, reason: &str) -> f64 {
    let metrics = get(&format!("http://{}/metrics", gw.admin.unwrap()), &[]).await;
    scrape_value(
        &metrics.text(),
        &format!("tollgate_connections_closed_total{{reason=\"{reason}\"}}"),
    )
    .unwrap_or(0.0)
}

#[tokio::test]
async fn idle_http2_connections_give_their_slot_back() {
    let up = RecordingUpstream::start().await;
    let gw = spawn_gateway(&format!(
        "[limits]\nmax_connections = 5\nidle_timeout = \"1s\"\n\n{}",
        public_route("/", &up.url(), "")
    ))
    .await;
    // Five clients take every slot, make one request each, then only keep the connection
    // (hyper's client answers the gateway's PINGs).
    let mut idle = Vec::new();
    for _ in 0..5 {
        let (mut sender, done) = h2(&gw).await;
        assert_eq!(h2_get(&mut sender, &gw, "/x").await, 200);
        idle.push((sender, done));
    }
    // A sixth client is served once the idle ones are sent away (GOAWAY, then close).
    let reply = get(&gw.url("/sixth"), &[]).await;
    assert_eq!(reply.status, 200);
    for (_, done) in idle {
        within(done).await.unwrap();
    }
    assert_eq!(closed(&gw, "idle").await, 5.0);
}

#[tokio::test]
async fn an_old_connection_is_drained_without_losing_its_request() {
    let slow = MockUpstream::start(|r| async move {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        json_response(http::StatusCode::OK, &serde_json::json!({"path": r.uri}))
    })
    .await;
    let gw = spawn_gateway(&format!(
        "[limits]\nmax_connection_age = \"1s\"\n\n{}",
        public_route("/", &slow.url(), "")
    ))
    .await;
    // HTTP/1.1: the request in flight at the age limit is answered, with `Connection: close`,
    // and the connection then closes.
    let mut stream = within(TcpStream::connect(gw.addr)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    within(stream.write_all(b"GET /h1 HTTP/1.1\r\nHost: gw\r\n\r\n"))
        .await
        .unwrap();
    let mut reply = Vec::new();
    within(stream.read_to_end(&mut reply)).await.unwrap();
    let reply = String::from_utf8_lossy(&reply);
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.contains("connection: close"), "{reply}");
    assert!(reply.contains("/h1"), "{reply}");

    // HTTP/2: GOAWAY at the age limit, the stream in flight completes, then the close.
    let (mut sender, done) = h2(&gw).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(h2_get(&mut sender, &gw, "/h2").await, 200);
    within(done).await.unwrap();
    assert_eq!(closed(&gw, "max_age").await, 2.0);
}

#[tokio::test]
async fn one_address_cannot_take_every_connection_slot() {
    let up = RecordingUpstream::start().await;
    let gw = spawn_gateway(&format!(
        "[limits]\nmax_connections_per_ip = 3\n\n{}",
        public_route("/", &up.url(), "")
    ))
    .await;
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut stream = within(TcpStream::connect(gw.addr)).await.unwrap();
        within(stream.write_all(b"GET /held HTTP/1.1\r\nHost: gw\r\n\r\n"))
            .await
            .unwrap();
        let mut buf = [0u8; 512];
        let n = within(stream.read(&mut buf)).await.unwrap();
        assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
        held.push(stream);
    }
    // The fourth from the same address is closed at once, unanswered.
    let mut fourth = within(TcpStream::connect(gw.addr)).await.unwrap();
    let _ = fourth
        .write_all(b"GET /fourth HTTP/1.1\r\nHost: gw\r\n\r\n")
        .await;
    let mut buf = Vec::new();
    let _ = within(fourth.read_to_end(&mut buf)).await;
    assert!(buf.is_empty(), "{}", String::from_utf8_lossy(&buf));
    assert_eq!(closed(&gw, "client_ip_limit").await, 1.0);
    // A slot given back is a slot for the next connection.
    drop(held.pop());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(get(&gw.url("/after"), &[]).await.status, 200);
}

#[tokio::test]
async fn a_stream_the_client_reset_does_not_keep_an_http2_connection_alive() {
    let up = RecordingUpstream::start().await;
    let gw = spawn_gateway(&format!(
        "[limits]\nidle_timeout = \"1s\"\n\n{}",
        public_route("/", &up.url(), "")
    ))
    .await;
    let stream = within(TcpStream::connect(gw.addr)).await.unwrap();
    let (mut sender, conn) = within(hyper::client::conn::http2::handshake::<
        _,
        _,
        http_body_util::StreamBody<
            futures_util::stream::Pending<Result<hyper::body::Frame<Bytes>, std::io::Error>>,
        >,
    >(TokioExecutor::new(), TokioIo::new(stream)))
    .await
    .unwrap();
    let done = tokio::spawn(async move {
        let _ = conn.await;
    });
    // A POST whose body never ends, abandoned by the client: hyper resets the stream.
    let request = http::Request::post(gw.url("/upload"))
        .body(http_body_util::StreamBody::new(
            futures_util::stream::pending(),
        ))
        .unwrap();
    // A clone keeps the client's side open: only the gateway may end this connection.
    let _open = sender.clone();
    let abandoned = tokio::spawn(async move { sender.send_request(request).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    abandoned.abort();
    // With nothing open, the connection is idle like any other and is sent away.
    within(done).await.unwrap();
    assert_eq!(closed(&gw, "idle").await, 1.0);
}
