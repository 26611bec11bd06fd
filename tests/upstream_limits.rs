//! Upstream protection: a stalled upstream costs a bounded number of sockets, the overflow is
//! refused at once with 503, and other routes keep answering, in a gateway process whose
//! open-file limit is low enough that unbounded upstream sockets would exhaust it.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::{TcpListener, TcpStream};

use support::recording::RecordingUpstream;
use support::*;

/// Accepts connections and never answers; counts and keeps them.
async fn stalled_upstream() -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            held.push(socket);
        }
    });
    (addr, accepted)
}

/// `n` concurrent GETs of `path` on one HTTP/2 connection; their statuses and bodies.
async fn h2_burst(addr: std::net::SocketAddr, path: &str, n: usize) -> Vec<(u16, String, bool)> {
    let stream = within(TcpStream::connect(addr)).await.unwrap();
    let (sender, conn) = within(hyper::client::conn::http2::handshake(
        TokioExecutor::new(),
        TokioIo::new(stream),
    ))
    .await
    .unwrap();
    tokio::spawn(conn);
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let mut sender = sender.clone();
            let uri = format!("http://{addr}{path}/{i}");
            tokio::spawn(async move {
                let request = http::Request::get(uri).body(Empty::<Bytes>::new()).unwrap();
                let response = sender.send_request(request).await.unwrap();
                let retry_after = response.headers().contains_key("retry-after");
                let status = response.status().as_u16();
                let body = response.into_body().collect().await.unwrap().to_bytes();
                (
                    status,
                    String::from_utf8_lossy(&body).into_owned(),
                    retry_after,
                )
            })
        })
        .collect();
    let mut results = Vec::with_capacity(n);
    for task in tasks {
        results.push(within(task).await.unwrap());
    }
    results
}

#[tokio::test]
async fn a_stalled_upstream_costs_bounded_sockets_and_other_routes_keep_answering() {
    let (stalled, accepted) = stalled_upstream().await;
    let fast = RecordingUpstream::start().await;
    let gw = GatewayProcess::spawn_with_nofile(
        &format!(
            "[limits]\nupstream_max_connections = 64\nmax_concurrent_streams = 256\n\n\
             [[routes]]\nprefix = \"/stall\"\nupstream = \"http://{stalled}\"\npolicy = \"public\"\ntimeout = \"4s\"\n\n\
             [[routes]]\nprefix = \"/fast\"\nupstream = \"{}\"\npolicy = \"public\"\n",
            fast.url()
        ),
        &[],
        // Well above the gateway's own needs, well below the 512 sockets the burst would take.
        256,
    );
    let (a, b) = tokio::join!(h2_burst(gw.addr, "/stall", 256), async {
        // While both bursts are stalled, another route answers.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let reply = get(&gw.url("/fast/x"), &[]).await;
        assert_eq!(reply.status, 200, "{}", reply.text());
        h2_burst(gw.addr, "/stall", 256).await
    });
    let results: Vec<_> = a.into_iter().chain(b).collect();
    let overloaded: Vec<_> = results.iter().filter(|(s, _, _)| *s == 503).collect();
    let timed_out = results.iter().filter(|(s, _, _)| *s == 504).count();
    assert!(
        accepted.load(Ordering::SeqCst) <= 64,
        "{} upstream sockets",
        accepted.load(Ordering::SeqCst)
    );
    assert_eq!(overloaded.len() + timed_out, 512, "every request answered");
    assert!(overloaded.len() >= 512 - 64, "{} refused", overloaded.len());
    for (_, body, retry_after) in &overloaded {
        assert!(body.contains("\"error\":\"upstream_overloaded\""), "{body}");
        assert!(*retry_after, "503 without Retry-After");
    }
    // The stalled requests have timed out and freed their slots: the route answers again.
    assert_eq!(get(&gw.url("/fast/y"), &[]).await.status, 200);
    let logs = gw.logs().join("\n");
    assert!(!logs.contains("Too many open files"), "{logs}");
}

#[tokio::test]
async fn a_route_can_cap_its_own_requests_in_flight() {
    let (stalled, _) = stalled_upstream().await;
    let gw = spawn_gateway(&format!(
        "[[routes]]\nprefix = \"/stall\"\nupstream = \"http://{stalled}\"\npolicy = \"public\"\ntimeout = \"2s\"\nmax_requests = 3\n"
    ))
    .await;
    let results = h2_burst(gw.addr, "/stall", 10).await;
    let statuses: Vec<u16> = results.iter().map(|(s, _, _)| *s).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 504).count(),
        3,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 503).count(),
        7,
        "{statuses:?}"
    );
    assert!(
        results
            .iter()
            .any(|(_, b, _)| b.contains("route requests in flight at the limit of 3"))
    );
}
