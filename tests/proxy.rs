//! The proxy over real sockets: routing, rewriting, header hygiene, errors, protocols.

mod support;

use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn longest_prefix_wins_and_prefixes_are_segment_aware() {
    let up = MockUpstream::echo().await;
    let config = [
        public_route("/", &up.url(), "name = \"root\""),
        public_route("/api", &format!("{}/svc", up.url()), "name = \"api\""),
        public_route("/api/v2", &up.url(), "name = \"v2\"\nstrip_prefix = true"),
        public_route("/old", &up.url(), "rewrite = \"/new\""),
        public_route(
            "/hosted",
            &format!("{}/h", up.url()),
            "host = \"api.example.com\"",
        ),
    ]
    .concat();
    let gw = spawn_gateway(&config).await;
    let path_seen = |reply: &Reply| reply.json()["path"].as_str().unwrap().to_owned();

    let cases = [
        ("/api/users?x=1", "/svc/api/users?x=1"),
        ("/api", "/svc/api"),
        ("/apix", "/apix"),
        ("/api/v2/items", "/items"),
        ("/api/v2", "/"),
        ("/api/v20", "/svc/api/v20"),
        ("/old/a/b", "/new/a/b"),
        ("/api//users/./x/../y", "/svc/api/users/y"),
        ("/api/%75sers", "/svc/api/users"),
    ];
    for (path, want) in cases {
        let reply = get(&gw.url(path), &[]).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
        assert_eq!(path_seen(&reply), want, "{path}");
    }
    let reply = get(&gw.url("/hosted/x"), &[("host", "API.example.com:8080")]).await;
    assert_eq!(path_seen(&reply), "/h/hosted/x");
    let reply = get(&gw.url("/hosted/x"), &[("host", "other.example.com")]).await;
    assert_eq!(
        path_seen(&reply),
        "/hosted/x",
        "falls back to the root route"
    );
}

#[tokio::test]
async fn unknown_route_is_404_json_with_request_id() {
    let gw = spawn_gateway(&public_route("/only", "echo", "")).await;
    let reply = get(&gw.url("/other"), &[]).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    let body = reply.json();
    assert_eq!(body["error"], "no route");
    assert_eq!(
        body["request_id"],
        reply.headers["x-request-id"].to_str().unwrap()
    );
    assert_eq!(reply.headers["content-type"], "application/json");
}

#[tokio::test]
async fn dangerous_paths_are_400_and_never_forwarded() {
    let up = MockUpstream::echo().await;
    let gw = spawn_gateway(&public_route("/", &up.url(), "")).await;
    for path in [
        "/a%2fb",
        "/a%5cb",
        "/a%00b",
        "/..",
        "/a/../../etc/passwd",
        "/%2e%2e/x",
        "/a%zz",
    ] {
        let reply = get(&gw.url(path), &[]).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(reply.json()["error"], "invalid path", "{path}");
    }
    assert_eq!(up.hits(), 0);
}

#[tokio::test]
async fn echo_upstream_describes_the_forwarded_request() {
    let gw = spawn_gateway(&public_route("/echo", "echo", "strip_prefix = true")).await;
    let reply = get(
        &gw.url("/echo/hi?a=1&b=2"),
        &[("x-custom", "one"), ("X-Custom", "two")],
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    let body = reply.json();
    assert_eq!(body["method"], "GET");
    assert_eq!(body["path"], "/hi");
    assert_eq!(body["query"], "a=1&b=2");
    assert_eq!(
        body["headers"]["x-custom"],
        serde_json::json!(["one", "two"])
    );
}

#[tokio::test]
async fn hop_by_hop_headers_are_removed_both_ways() {
    let up = MockUpstream::start(|_| async {
        http::Response::builder()
            .header("connection", "x-upstream-hop")
            .header("x-upstream-hop", "secret")
            .header("keep-alive", "timeout=5")
            .header("x-kept", "yes")
            .body(Full::new(Bytes::from_static(b"ok")))
            .unwrap()
    })
    .await;
    let gw = spawn_gateway(&public_route("/", &up.url(), "")).await;
    let reply = get(
        &gw.url("/x"),
        &[
            ("connection", "keep-alive, x-drop-me"),
            ("x-drop-me", "1"),
            ("keep-alive", "timeout=100"),
            ("te", "trailers"),
            ("proxy-authorization", "Basic Zm9vOmJhcg=="),
            ("proxy-connection", "keep-alive"),
            ("x-keep-me", "1"),
        ],
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    let seen = up.last().headers;
    for name in [
        "x-drop-me",
        "keep-alive",
        "te",
        "proxy-authorization",
        "proxy-connection",
    ] {
        assert!(!seen.contains_key(name), "{name} reached the upstream");
    }
    assert_eq!(seen["x-keep-me"], "1");
    assert!(!reply.headers.contains_key("x-upstream-hop"));
    assert!(!reply.headers.contains_key("keep-alive"));
    assert_eq!(reply.headers["x-kept"], "yes");
}

#[tokio::test]
async fn forwarded_headers_and_request_id() {
    let up = MockUpstream::echo().await;
    let gw = spawn_gateway(&public_route("/", &up.url(), "")).await;

    let reply = get(
        &gw.url("/x"),
        &[
            ("x-forwarded-for", "203.0.113.9"),
            ("x-forwarded-proto", "https"),
            ("host", "public.example.com"),
        ],
    )
    .await;
    let seen = up.last().headers;
    // 127.0.0.1 is no trusted proxy here: its claims are dropped, not appended to.
    assert_eq!(seen["x-forwarded-for"], "127.0.0.1");
    assert_eq!(seen["x-real-ip"], "127.0.0.1");
    assert_eq!(seen["x-forwarded-proto"], "http");
    assert_eq!(seen["x-forwarded-host"], "public.example.com");
    assert_eq!(
        seen["host"],
        up.addr.to_string(),
        "Host is the upstream's by default"
    );
    let generated = reply.headers["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(generated.len(), 36);
    assert_eq!(seen["x-request-id"], generated.as_str());

    // An untrusted client's id is not adopted: it could pose as another request's.
    let reply = get(&gw.url("/x"), &[("x-request-id", "trace-abc-1")]).await;
    let ours = reply.headers["x-request-id"].to_str().unwrap();
    assert_ne!(ours, "trace-abc-1");
    assert_eq!(up.last().headers["x-request-id"], ours);
}

#[tokio::test]
async fn preserve_host_forwards_the_clients_host() {
    let up = MockUpstream::echo().await;
    let gw = spawn_gateway(&public_route("/", &up.url(), "preserve_host = true")).await;
    get(&gw.url("/x"), &[("host", "public.example.com")]).await;
    assert_eq!(up.last().headers["host"], "public.example.com");
}

#[tokio::test]
async fn declared_body_over_limit_is_413_and_not_forwarded() {
    let up = MockUpstream::echo().await;
    let gw = spawn_gateway(&public_route("/", &up.url(), "max_body_bytes = 1024")).await;
    let request = Request::post(gw.url("/upload"))
        .body(Full::new(Bytes::from(vec![b'x'; 4096])))
        .unwrap();
    let reply = send(request).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(reply.json()["error"], "request body too large");
    assert_eq!(up.hits(), 0);

    let request = Request::post(gw.url("/upload"))
        .body(Full::new(Bytes::from(vec![b'x'; 1000])))
        .unwrap();
    let reply = send(request).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["body_len"], 1000);
}

#[tokio::test]
async fn streamed_body_over_limit_is_413() {
    let up = MockUpstream::echo().await;
    let gw = spawn_gateway(&public_route("/", &up.url(), "max_body_bytes = 1024")).await;
    let mut stream = within(TcpStream::connect(gw.addr)).await.unwrap();
    let mut request =
        b"POST /x HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
            .to_vec();
    for _ in 0..8 {
        request.extend_from_slice(b"200\r\n");
        request.extend_from_slice(&[b'y'; 0x200]);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    within(stream.write_all(&request)).await.unwrap();
    let mut response = Vec::new();
    within(stream.read_to_end(&mut response)).await.unwrap();
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(text.contains("request body too large"), "{text}");
}

#[tokio::test]
async fn refused_upstream_is_502_json() {
    let port = closed_port().await;
    let gw = spawn_gateway(&public_route("/", &format!("http://{port}"), "")).await;
    let reply = get(&gw.url("/x"), &[]).await;
    assert_eq!(reply.status, StatusCode::BAD_GATEWAY);
    assert_eq!(reply.json()["error"], "upstream unavailable");
    assert!(reply.json()["request_id"].is_string());
}

#[tokio::test]
async fn slow_upstream_is_504_json() {
    let up = MockUpstream::start(|_| async {
        tokio::time::sleep(Duration::from_secs(5)).await;
        json_response(StatusCode::OK, &serde_json::json!({}))
    })
    .await;
    let gw = spawn_gateway(&public_route("/", &up.url(), "timeout = \"200ms\"")).await;
    let reply = get(&gw.url("/slow"), &[]).await;
    assert_eq!(reply.status, StatusCode::GATEWAY_TIMEOUT);
    assert_eq!(reply.json()["error"], "upstream timed out");
}

#[tokio::test]
async fn http2_prior_knowledge_clients_are_served() {
    let up = MockUpstream::echo().await;
    let gw = spawn_gateway(&public_route("/", &up.url(), "")).await;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<Full<Bytes>>();
    let request = Request::post(gw.url("/h2?q=1"))
        .body(Full::new(Bytes::from_static(b"hello")))
        .unwrap();
    let reply = send_with(&client, request).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["path"], "/h2?q=1");
    assert_eq!(reply.json()["body_len"], 5);
    let seen = up.last();
    assert_eq!(
        seen.version,
        http::Version::HTTP_11,
        "upstream spoken to in HTTP/1.1"
    );
    assert_eq!(seen.headers["x-forwarded-host"], gw.addr.to_string());
}

#[tokio::test]
async fn websocket_upgrade_is_tunnelled() {
    // A raw upstream: answers the upgrade with 101, then echoes bytes.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            socket.read_exact(&mut byte).await.unwrap();
            head.push(byte[0]);
        }
        let head = String::from_utf8(head).unwrap().to_ascii_lowercase();
        assert!(head.contains("upgrade: websocket"), "{head}");
        assert!(head.contains("connection: upgrade"), "{head}");
        socket
            .write_all(b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 64];
        loop {
            let n = socket.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            socket.write_all(&buf[..n]).await.unwrap();
        }
    });
    let gw = spawn_gateway(&public_route("/ws", &format!("http://{upstream}"), "")).await;
    let mut client = within(TcpStream::connect(gw.addr)).await.unwrap();
    within(client.write_all(
        b"GET /ws/chat HTTP/1.1\r\nhost: a\r\nconnection: Upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    ))
    .await
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        within(client.read_exact(&mut byte)).await.unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    within(client.write_all(b"ping through the tunnel"))
        .await
        .unwrap();
    let mut echoed = [0u8; 23];
    within(client.read_exact(&mut echoed)).await.unwrap();
    assert_eq!(&echoed, b"ping through the tunnel");
}

#[tokio::test]
async fn upgrade_refused_by_upstream_is_not_tunnelled() {
    let up = MockUpstream::echo().await;
    let gw = spawn_gateway(&public_route("/", &up.url(), "")).await;
    let reply = get(
        &gw.url("/ws"),
        &[("connection", "upgrade"), ("upgrade", "websocket")],
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(!reply.headers.contains_key("upgrade"));
    assert_eq!(up.last().headers["upgrade"], "websocket");
}

#[tokio::test]
async fn trickled_headers_are_cut_off() {
    let gw = spawn_gateway(&format!(
        "[limits]\nheader_read_timeout = \"300ms\"\n{}",
        public_route("/", "echo", "")
    ))
    .await;
    let mut stream = within(TcpStream::connect(gw.addr)).await.unwrap();
    within(stream.write_all(b"GET / HTTP/1.1\r\nhost: a\r\n"))
        .await
        .unwrap();
    // Never finish the head: the gateway must close the connection on its own, well before
    // the 10 s default would (so this fails if the configured limit were ignored).
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut rest)).await;
    assert!(read.is_ok(), "connection still open after 5 s");
    let text = String::from_utf8_lossy(&rest);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "{text}"
    );
}

#[tokio::test]
async fn oversized_headers_are_431() {
    let gw = spawn_gateway(&public_route("/", "echo", "")).await;
    let big = "v".repeat(20_000);
    let reply = get(&gw.url("/x"), &[("x-big", &big)]).await;
    assert_eq!(reply.status, StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE);
}

#[tokio::test]
async fn client_disconnect_cancels_the_upstream_request() {
    let (dropped_tx, dropped_rx) = tokio::sync::oneshot::channel::<()>();
    let dropped_tx = std::sync::Arc::new(std::sync::Mutex::new(Some(dropped_tx)));
    struct SignalOnDrop(std::sync::Arc<std::sync::Mutex<Option<tokio::sync::oneshot::Sender<()>>>>);
    impl Drop for SignalOnDrop {
        fn drop(&mut self) {
            if let Some(tx) = self.0.lock().unwrap().take() {
                let _ = tx.send(());
            }
        }
    }
    let up = MockUpstream::start(move |_| {
        let guard = SignalOnDrop(dropped_tx.clone());
        async move {
            tokio::time::sleep(Duration::from_secs(30)).await;
            drop(guard);
            json_response(StatusCode::OK, &serde_json::json!({}))
        }
    })
    .await;
    let gw = spawn_gateway(&public_route("/", &up.url(), "")).await;
    let mut client = within(TcpStream::connect(gw.addr)).await.unwrap();
    within(client.write_all(b"GET /slow HTTP/1.1\r\nhost: a\r\n\r\n"))
        .await
        .unwrap();
    within(async {
        while up.hits() == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    drop(client);
    within(dropped_rx)
        .await
        .expect("upstream handler was cancelled");
}
