//! Faults: upstreams that reset, stall or answer garbage; slow or broken JWKS and vendor auth
//! APIs; SIGTERM with many slow requests in flight.

mod support;

use std::time::Duration;

use http::StatusCode;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A raw TCP upstream that answers every connection with `behaviour`.
async fn raw_upstream(behaviour: &'static str) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                match behaviour {
                    "garbage" => {
                        let _ = socket.write_all(b"this is not http\r\n\r\n").await;
                    }
                    "reset-mid-response" => {
                        let _ = socket
                            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\npartial")
                            .await;
                    }
                    "close-before-response" => {}
                    _ => unreachable!(),
                }
                drop(socket);
            });
        }
    });
    addr
}

fn route_to(addr: impl std::fmt::Display) -> String {
    format!(
        "[[routes]]\nprefix = \"/\"\nupstream = \"http://{addr}\"\npolicy = \"public\"\ntimeout = \"2s\"\n"
    )
}

#[tokio::test]
async fn broken_upstreams_give_502_json() {
    for behaviour in ["garbage", "close-before-response"] {
        let gw = spawn_gateway(&route_to(raw_upstream(behaviour).await)).await;
        let reply = get(&gw.url("/x"), &[]).await;
        assert_eq!(reply.status, StatusCode::BAD_GATEWAY, "{behaviour}");
        assert_eq!(reply.json()["error"], "upstream failed", "{behaviour}");
    }
    // A reset after the head was sent cannot become a 502: the client sees a broken body.
    let gw = spawn_gateway(&route_to(raw_upstream("reset-mid-response").await)).await;
    let client = client();
    let response = within(client.get(gw.url("/x").parse().unwrap()))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = within(http_body_util::BodyExt::collect(response.into_body())).await;
    assert!(body.is_err(), "a truncated body must not look complete");
}

#[tokio::test]
async fn non_idempotent_requests_are_sent_once() {
    let up = MockUpstream::start(|_| async {
        tokio::time::sleep(Duration::from_secs(5)).await;
        json_response(StatusCode::OK, &serde_json::json!({}))
    })
    .await;
    let gw = spawn_gateway(&public_route("/", &up.url(), "timeout = \"1s\"")).await;
    let request = http::Request::post(gw.url("/pay"))
        .body(http_body_util::Full::new(bytes::Bytes::from_static(
            b"{\"amount\":1}",
        )))
        .unwrap();
    assert_eq!(send(request).await.status, StatusCode::GATEWAY_TIMEOUT);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(up.hits(), 1, "a timed-out POST was retried");
}

#[tokio::test]
async fn slow_request_bodies_are_bounded_by_the_route_timeout() {
    let up = MockUpstream::echo().await;
    let gw = spawn_gateway(&public_route("/", &up.url(), "timeout = \"500ms\"")).await;
    let mut stream = within(tokio::net::TcpStream::connect(gw.addr))
        .await
        .unwrap();
    within(stream.write_all(b"POST /slow HTTP/1.1\r\nhost: a\r\ncontent-length: 1000\r\n\r\nabc"))
        .await
        .unwrap();
    // Never send the rest: the gateway answers 504 and frees the upstream connection.
    let mut response = vec![0u8; 1024];
    let n = within(stream.read(&mut response)).await.unwrap();
    let text = String::from_utf8_lossy(&response[..n]);
    assert!(text.starts_with("HTTP/1.1 504"), "{text}");
}

#[tokio::test]
async fn jwks_slow_or_garbage_keeps_cached_keys_and_recovers() {
    let jwks = JwksServer::start(Some(&[("k1", "rsa.key", jsonwebtoken::Algorithm::RS256)])).await;
    let gw = spawn_gateway(&format!(
        "[[issuers]]\nissuer = \"https://idp.test\"\nalgorithms = [\"RS256\"]\njwks_url = \"{}\"\njwks_min_refresh_interval = \"0s\"\njwks_timeout = \"300ms\"\n[[routes]]\nprefix = \"/\"\nupstream = \"echo\"\n",
        jwks.url()
    ))
    .await;
    let claims = service_claims("https://idp.test", "orders");
    let k1 = format!(
        "Bearer {}",
        mint(
            &claims,
            jsonwebtoken::Algorithm::RS256,
            "rsa.key",
            Some("k1")
        )
    );
    within(async {
        while get(&gw.url("/x"), &[("authorization", &k1)]).await.status != StatusCode::OK {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    // The endpoint now answers 500: an unknown kid is refused, the cached k1 keeps working.
    jwks.set(None);
    let k9 = format!(
        "Bearer {}",
        mint(
            &claims,
            jsonwebtoken::Algorithm::RS256,
            "rsa2.key",
            Some("k9")
        )
    );
    assert_eq!(
        get(&gw.url("/x"), &[("authorization", &k9)]).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        get(&gw.url("/x"), &[("authorization", &k1)]).await.status,
        StatusCode::OK
    );
    // Recovered with a key set that also holds k9: picked up on the next unknown kid.
    jwks.set(Some(&[
        ("k1", "rsa.key", jsonwebtoken::Algorithm::RS256),
        ("k9", "rsa2.key", jsonwebtoken::Algorithm::RS256),
    ]));
    assert_eq!(
        get(&gw.url("/x"), &[("authorization", &k9)]).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn vendor_auth_slow_or_huge_gives_fast_bounded_503s() {
    // Slow: each attempt times out; retries are bounded.
    let auth = AuthServer::start(AuthReply::Field("accessToken")).await;
    auth.set_delay(Duration::from_secs(5));
    let vendor = MockUpstream::echo().await;
    let config = |auth: &str| {
        format!(
            "[[providers]]\nname = \"v\"\nkind = \"login\"\nauth_url = \"{auth}\"\nemail = \"e@x\"\npassword = \"p\"\ntimeout = \"200ms\"\nmax_retries = 1\nfailure_cooldown = \"30s\"\n[[routes]]\nprefix = \"/\"\nupstream = \"{}\"\npolicy = \"public\"\nupstream_auth = \"v\"\n",
            vendor.url()
        )
    };
    let gw = spawn_gateway(&config(&auth.url())).await;
    let reply = get(&gw.url("/x"), &[]).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(reply.json()["reason"], "auth API timed out after 200ms");
    assert_eq!(auth.logins(), 2);
    assert_eq!(
        get(&gw.url("/x"), &[]).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(auth.logins(), 2, "the cooldown spares the auth API");

    // Huge: a body over the limit is refused, not buffered.
    let huge = MockUpstream::start(|_| async {
        let filler = "x".repeat(2 * 1024 * 1024);
        json_response(
            StatusCode::OK,
            &serde_json::json!({"accessToken": "t", "filler": filler}),
        )
    })
    .await;
    let gw = spawn_gateway(&config(&format!("{}/login", huge.url()))).await;
    let reply = get(&gw.url("/x"), &[]).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        reply.json()["reason"]
            .as_str()
            .unwrap()
            .starts_with("auth API answered an invalid body")
    );
    assert_eq!(vendor.hits(), 0);
}

#[tokio::test]
async fn sigterm_with_fifty_slow_requests_completes_every_one_once() {
    let up = MockUpstream::start(|_| async {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        json_response(StatusCode::OK, &serde_json::json!({"done": true}))
    })
    .await;
    let mut gw = GatewayProcess::spawn(
        &format!(
            "[server]\nlisten = [\"127.0.0.1:0\"]\nadmin_listen = \"127.0.0.1:0\"\ndrain_timeout = \"20s\"\n[[routes]]\nprefix = \"/\"\nupstream = \"{}\"\npolicy = \"public\"\n",
            up.url()
        ),
        &[],
    );
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let url = gw.url(&format!("/r/{i}"));
            tokio::spawn(async move {
                let request = if i % 2 == 0 {
                    http::Request::post(url).body(http_body_util::Full::new(bytes::Bytes::from(
                        vec![b'p'; 2048],
                    )))
                } else {
                    http::Request::get(url).body(http_body_util::Full::new(bytes::Bytes::new()))
                };
                send(request.unwrap()).await.status
            })
        })
        .collect();
    within(async {
        while up.hits() < 50 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    gw.signal("TERM");
    let readyz = format!("http://{}/readyz", gw.admin);
    within(async {
        while get(&readyz, &[]).await.status != StatusCode::SERVICE_UNAVAILABLE {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert!(
        tasks.iter().all(|t| !t.is_finished()),
        "readiness flips before the requests complete"
    );
    for task in tasks {
        assert_eq!(within(task).await.unwrap(), StatusCode::OK);
    }
    assert!(gw.wait_exit().success());
    let received = up.received();
    assert_eq!(received.len(), 50, "every request exactly once");
    let mut paths: Vec<_> = received.iter().map(|r| r.uri.clone()).collect();
    paths.sort();
    paths.dedup();
    assert_eq!(paths.len(), 50, "a request was duplicated");
    assert!(
        received
            .iter()
            .filter(|r| r.method == "POST")
            .all(|r| r.body_len == 2048)
    );
}

#[tokio::test]
async fn slow_readers_are_backpressured_not_buffered() {
    const BODY: usize = 64 * 1024 * 1024;
    let up = MockUpstream::start(|_| async {
        http::Response::new(http_body_util::Full::new(bytes::Bytes::from(vec![
            b'z';
            BODY
        ])))
    })
    .await;
    let gw = GatewayProcess::spawn(&public_route("/", &up.url(), ""), &[]);
    let before = gw.proc_status_kib("VmRSS");
    let mut stream = within(tokio::net::TcpStream::connect(gw.addr))
        .await
        .unwrap();
    within(stream.write_all(b"GET /big HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n"))
        .await
        .unwrap();
    // Read nothing for a while: the gateway must not pull the whole body into memory.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let stalled = gw.proc_status_kib("VmRSS");
    // Half the body: buffering it would cost 64 MiB; allocator arenas of the other tests'
    // load once pushed an honest run past a 16 MiB bound.
    assert!(
        stalled < before + 32 * 1024,
        "RSS {before} -> {stalled} KiB while the client stalled"
    );
    // Then read it all: nothing was lost.
    let mut total = 0usize;
    let mut buf = vec![0u8; 256 * 1024];
    within(async {
        loop {
            let n = stream.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            total += n;
        }
    })
    .await;
    assert!(total > BODY, "read {total} bytes");
}
