//! The binary as operators run it: graceful drain on SIGTERM, bounded memory while streaming.

mod support;

use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use support::*;

#[tokio::test]
async fn sigterm_drains_requests_in_flight_then_exits_zero() {
    let up = MockUpstream::start(|_| async {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        json_response(StatusCode::OK, &serde_json::json!({"slow": true}))
    })
    .await;
    let mut gw = GatewayProcess::spawn(
        &format!(
            "[server]\nlisten = [\"127.0.0.1:0\"]\nadmin_listen = \"127.0.0.1:0\"\ndrain_timeout = \"10s\"\n[[routes]]\nprefix = \"/\"\nupstream = \"{}\"\npolicy = \"public\"\n",
            up.url()
        ),
        &[],
    );
    let ready = get(&format!("http://{}/readyz", gw.admin), &[]).await;
    assert_eq!(ready.status, StatusCode::OK);

    let in_flight = tokio::spawn(get_owned(gw.url("/slow")));
    within(async {
        while up.hits() == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    gw.signal("TERM");

    // Readiness flips at once, while the slow request is still running.
    within(async {
        loop {
            let ready = get(&format!("http://{}/readyz", gw.admin), &[]).await;
            if ready.status == StatusCode::SERVICE_UNAVAILABLE {
                assert_eq!(ready.json()["status"], "draining");
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(!in_flight.is_finished(), "the request was cut short");
    // The listener no longer accepts new connections.
    within(async {
        while tokio::net::TcpStream::connect(gw.addr).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;

    let reply = within(in_flight).await.unwrap();
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["slow"], true);
    let status = gw.wait_exit();
    assert!(status.success(), "exit status {status:?}");
    assert_eq!(up.hits(), 1, "no request duplicated");
}

async fn get_owned(url: String) -> Reply {
    get(&url, &[]).await
}

/// Streams `TOLLGATE_TEST_UPLOAD_MIB` (default 1024) MiB through the gateway binary and checks
/// its peak RSS stays under 64 MiB.
#[tokio::test]
async fn large_upload_streams_with_bounded_memory() {
    let mib: u64 = std::env::var("TOLLGATE_TEST_UPLOAD_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1024);
    let total = mib * 1024 * 1024;
    let up = MockUpstream::echo().await;
    let gw = GatewayProcess::spawn(
        &format!(
            "[[routes]]\nprefix = \"/\"\nupstream = \"{}\"\npolicy = \"public\"\nmax_body_bytes = {}\ntimeout = \"600s\"\n",
            up.url(),
            total * 2
        ),
        &[],
    );
    const CHUNK: usize = 256 * 1024;
    let chunk = Bytes::from(vec![0x5a; CHUNK]);
    let frames =
        (0..total / CHUNK as u64).map(move |_| Ok::<_, std::io::Error>(Frame::data(chunk.clone())));
    let body = StreamBody::new(futures_util::stream::iter(frames));
    let request = Request::post(gw.url("/upload"))
        .header("content-length", total.to_string())
        .body(body)
        .unwrap();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http();
    let response = tokio::time::timeout(Duration::from_secs(600), async {
        let response = client.request(request).await.expect("upload sent");
        let status = response.status();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        (status, body)
    })
    .await
    .expect("upload finished");
    assert_eq!(response.0, StatusCode::OK);
    let echoed: serde_json::Value = serde_json::from_slice(&response.1).unwrap();
    assert_eq!(echoed["body_len"].as_u64(), Some(total));
    let peak_kib = gw.proc_status_kib("VmHWM");
    eprintln!("streamed {mib} MiB; gateway peak RSS {peak_kib} KiB");
    assert!(peak_kib < 64 * 1024, "peak RSS {peak_kib} KiB");
}
