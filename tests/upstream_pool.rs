//! Keep-alive connections to plain-HTTP upstreams: reused, never shared by two exchanges at
//! once, never reused mid-body, replaced when the upstream closes them, kept across reloads.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use http_body_util::Full;
use hyper::Response;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[tokio::test]
async fn sequential_requests_share_one_upstream_connection() {
    let up = MockUpstream::echo().await;
    let gw = spawn_gateway(&public_route("/", &up.url(), "")).await;
    for i in 0..20 {
        let reply = get(&gw.url(&format!("/n/{i}")), &[]).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(
            reply.json()["path"],
            format!("/n/{i}"),
            "origin-form target"
        );
    }
    assert_eq!(up.hits(), 20);
    assert_eq!(up.connections(), 1, "one kept-alive upstream connection");
}

#[tokio::test]
async fn concurrent_requests_each_get_their_own_answer() {
    let up = MockUpstream::start(|r| async move {
        // Answers out of order, so a connection handed to two exchanges would mix them up.
        let n: u64 = r.uri.rsplit('/').next().unwrap().parse().unwrap();
        tokio::time::sleep(Duration::from_millis(20 - n % 20)).await;
        json_response(StatusCode::OK, &serde_json::json!({ "n": n }))
    })
    .await;
    let gw = Arc::new(spawn_gateway(&public_route("/", &up.url(), "")).await);
    let mut tasks = Vec::new();
    for n in 0..100u64 {
        let gw = gw.clone();
        tasks.push(tokio::spawn(async move {
            let reply = get(&gw.url(&format!("/n/{n}")), &[]).await;
            assert_eq!(reply.status, StatusCode::OK);
            assert_eq!(reply.json()["n"], n);
        }));
    }
    for task in tasks {
        within(task).await.unwrap();
    }
    assert_eq!(up.hits(), 100);
    assert!(up.connections() <= 100);
}

#[tokio::test]
async fn a_response_abandoned_mid_body_never_leaks_into_the_next_one() {
    let up = MockUpstream::start(|r| async move {
        if r.uri.ends_with("/big") {
            Response::new(Full::new(Bytes::from(vec![b'x'; 4 << 20])))
        } else {
            json_response(StatusCode::OK, &serde_json::json!({ "small": true }))
        }
    })
    .await;
    let gw = spawn_gateway(&public_route("/", &up.url(), "")).await;

    let mut reader = within(TcpStream::connect(gw.addr)).await.unwrap();
    within(reader.write_all(b"GET /big HTTP/1.1\r\nhost: a\r\n\r\n"))
        .await
        .unwrap();
    let mut some = vec![0u8; 16 * 1024];
    within(reader.read_exact(&mut some)).await.unwrap();
    drop(reader);
    tokio::time::sleep(Duration::from_millis(100)).await;

    for _ in 0..5 {
        let reply = get(&gw.url("/small"), &[]).await;
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.json(), serde_json::json!({ "small": true }));
    }
    assert!(
        up.connections() >= 2,
        "the abandoned connection was not reused"
    );
}

/// An upstream that answers one request per connection with keep-alive headers, then closes
/// the socket shortly after: the pool must notice and never send into a dead connection.
async fn closing_upstream() -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut head = Vec::new();
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                    .await;
                tokio::time::sleep(Duration::from_millis(20)).await;
            });
        }
    });
    (addr, accepted)
}

#[tokio::test]
async fn connections_the_upstream_closed_are_replaced_not_failed() {
    let (addr, accepted) = closing_upstream().await;
    let gw = spawn_gateway(&public_route("/", &format!("http://{addr}"), "")).await;
    for _ in 0..10 {
        let reply = get(&gw.url("/x"), &[]).await;
        assert_eq!(reply.status, StatusCode::OK, "{:?}", reply.body);
        assert_eq!(&reply.body[..], b"ok");
        tokio::time::sleep(Duration::from_millis(60)).await;
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 10);
}
