//! RFC 7662 introspection against a recording endpoint: answers are reused within the cache
//! period and never past `exp`, concurrent uses of a new token ask once, and a failing
//! endpoint opens the breaker (fast 503s, no more questions) until its cooldown ends.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use http::StatusCode;
use support::*;

/// An introspection endpoint: answers `status` with `active` tokens expiring at `exp` (0: no
/// `exp`), after `delay`; counts the questions and checks tollgate's client credentials.
struct Endpoint {
    upstream: MockUpstream,
    status: Arc<AtomicUsize>,
    exp: Arc<AtomicU64>,
}

impl Endpoint {
    async fn start(delay: Duration) -> Self {
        let status = Arc::new(AtomicUsize::new(200));
        let exp = Arc::new(AtomicU64::new(now() + 3600));
        let (s, e) = (status.clone(), exp.clone());
        let upstream = MockUpstream::start(move |r| {
            let status = StatusCode::from_u16(s.load(Ordering::SeqCst) as u16).unwrap();
            let exp = e.load(Ordering::SeqCst);
            async move {
                // "gateway:gateway-secret", form-encoded then base64 (RFC 6749 §2.3.1).
                let basic = r
                    .headers
                    .get("authorization")
                    .map(|v| v.to_str().unwrap().to_owned());
                assert_eq!(
                    basic.as_deref(),
                    Some("Basic Z2F0ZXdheTpnYXRld2F5LXNlY3JldA==")
                );
                tokio::time::sleep(delay).await;
                let mut body = serde_json::json!({
                    "active": true, "sub": "ada", "scope": "orders:read", "iss": "idp",
                });
                if exp > 0 {
                    body["exp"] = exp.into();
                }
                json_response(status, &body)
            }
        })
        .await;
        Self {
            upstream,
            status,
            exp,
        }
    }
}

async fn gateway(endpoint: &Endpoint, cache: &str) -> TestGateway {
    spawn_gateway(&format!(
        r#"
[[issuers]]
issuer = "idp"
introspection_url = "{}/introspect"
introspection_client_id = "gateway"
introspection_client_secret = "gateway-secret"
introspection_cache = "{cache}"
[[routes]]
prefix = "/"
upstream = "echo"
scopes = ["orders:read"]
"#,
        endpoint.upstream.url()
    ))
    .await
}

#[tokio::test]
async fn concurrent_uses_of_a_new_token_ask_once_and_the_answer_is_reused() {
    let endpoint = Endpoint::start(Duration::from_millis(200)).await;
    let gw = gateway(&endpoint, "60s").await;
    let statuses =
        futures_util::future::join_all((0..20).map(|_| bearer_status(&gw, "/", "opaque-token-1")))
            .await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert_eq!(endpoint.upstream.hits(), 1, "single flight");
    assert_eq!(bearer_status(&gw, "/", "opaque-token-1").await, 200);
    assert_eq!(endpoint.upstream.hits(), 1, "reused from the cache");
    assert_eq!(bearer_status(&gw, "/", "opaque-token-2").await, 200);
    assert_eq!(endpoint.upstream.hits(), 2, "another token is asked about");
}

#[tokio::test]
async fn an_answer_is_not_reused_past_the_cache_period_or_the_tokens_exp() {
    let endpoint = Endpoint::start(Duration::ZERO).await;
    let gw = gateway(&endpoint, "1s").await;
    assert_eq!(bearer_status(&gw, "/", "short").await, 200);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(bearer_status(&gw, "/", "short").await, 200);
    assert_eq!(
        endpoint.upstream.hits(),
        2,
        "asked again after the cache period"
    );

    // exp one second away caps the reuse below a long cache period.
    let gw = gateway(&endpoint, "1h").await;
    endpoint.exp.store(now() + 1, Ordering::SeqCst);
    let before = endpoint.upstream.hits();
    assert_eq!(bearer_status(&gw, "/", "expiring").await, 200);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    // The endpoint still says active, with an exp now past: refused, and asked again.
    assert_eq!(bearer_status(&gw, "/", "expiring").await, 401);
    assert_eq!(endpoint.upstream.hits(), before + 2);
}

#[tokio::test]
async fn a_failing_endpoint_opens_the_breaker() {
    let endpoint = Endpoint::start(Duration::ZERO).await;
    endpoint.status.store(500, Ordering::SeqCst);
    let gw = gateway(&endpoint, "60s").await;
    for i in 0..5 {
        let reply = get(&gw.url("/"), &[("authorization", &format!("Bearer t{i}"))]).await;
        assert_eq!(reply.status, 503, "{}", reply.text());
        assert_eq!(reply.json()["reason"], "token introspection unavailable");
    }
    assert_eq!(endpoint.upstream.hits(), 5);
    // Open: refused at once, the endpoint is not asked.
    for i in 0..20 {
        assert_eq!(bearer_status(&gw, "/", &format!("u{i}")).await, 503);
    }
    assert_eq!(endpoint.upstream.hits(), 5, "the open breaker still asked");
}
