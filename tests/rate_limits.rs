//! Rate limits and quotas over real sockets: the burst and the refusal a client sees (429,
//! `Retry-After`, the `RateLimit` headers), what the upstream never receives, keys a hostile
//! client cannot rotate, several limits on one route, overrides, and a fleet of three gateways
//! sharing one limit through a real redis-server, then losing it.

mod support;

use std::time::Duration;

use support::recording::RecordingUpstream;
use support::redis::Redis;
use support::*;

const ISSUER: &str = r#"
[[issuers]]
issuer = "tollgate"
algorithms = ["HS256"]
secret = "test-secret-that-is-long-enough-for-hs256!"
"#;

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

async fn scrape(gw: &TestGateway) -> String {
    get(&format!("http://{}/metrics", gw.admin.unwrap()), &[])
        .await
        .text()
}

#[tokio::test]
async fn a_service_gets_its_burst_then_429_with_the_headers_and_nothing_reaches_the_upstream() {
    let upstream = RecordingUpstream::start().await;
    let gw = spawn_gateway(&format!(
        r#"{ISSUER}
[[routes]]
prefix = "/api"
upstream = "{}"
policy = "service"
rate_limit = {{ rate = "6/m", burst = 3, by = "service", headers = true, overrides = {{ orders = "1/m" }} }}
"#,
        upstream.url()
    ))
    .await;
    let billing = hs256(&service_claims("tollgate", "billing"));
    let orders = hs256(&service_claims("tollgate", "orders"));
    for left in [2, 1, 0] {
        let reply = get(&gw.url("/api/x"), &[("authorization", &bearer(&billing))]).await;
        assert_eq!(reply.status, 200);
        assert_eq!(
            reply.headers["ratelimit-policy"], "\"service:6/m\";q=6;w=60",
            "allowed answers carry the policy when the limit asks"
        );
        let state = reply.headers["ratelimit"].to_str().unwrap().to_owned();
        assert!(
            state.starts_with(&format!("\"service:6/m\";r={left};t=")),
            "{state}"
        );
    }
    let refused = get(&gw.url("/api/x"), &[("authorization", &bearer(&billing))]).await;
    assert_eq!(refused.status, 429);
    let body = refused.json();
    assert_eq!(body["error"], "rate_limited", "{body}");
    assert!(
        body["reason"]
            .as_str()
            .unwrap()
            .starts_with("limit service:6/m"),
        "{body}"
    );
    assert!(body["request_id"].is_string());
    // 6/m is one request every 10 s; the burst is spent, so the next one is ~10 s away.
    let retry: u64 = refused.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((9..=10).contains(&retry), "retry-after {retry}");
    assert!(
        refused.headers["ratelimit"]
            .to_str()
            .unwrap()
            .contains(";r=0;"),
        "{:?}",
        refused.headers
    );
    assert_eq!(
        upstream.requests(),
        3,
        "the refused request was not forwarded"
    );

    // Another service has its own allowance, at its override's rate (burst 1).
    let orders_status = |_| async {
        get(&gw.url("/api/x"), &[("authorization", &bearer(&orders))])
            .await
            .status
    };
    assert_eq!(orders_status(()).await, 200);
    assert_eq!(orders_status(()).await, 429);

    let metrics = scrape(&gw).await;
    assert_eq!(
        scrape_value(
            &metrics,
            r#"tollgate_rate_limited_total{route="/api",limit="service:6/m",by="service"}"#
        ),
        Some(2.0),
        "{metrics}"
    );
}

#[tokio::test]
async fn anonymous_callers_are_keyed_by_address_and_a_forged_forwarded_for_changes_nothing() {
    let upstream = RecordingUpstream::start().await;
    let gw = spawn_gateway(&format!(
        r#"{ISSUER}
[[routes]]
prefix = "/public"
upstream = "{}"
policy = "public"
rate_limit = {{ rate = "2/h" }}
"#,
        upstream.url()
    ))
    .await;
    let mut statuses = Vec::new();
    for i in 0..5 {
        // A hostile client rotates the addresses it claims: the gateway's peer is not a trusted
        // proxy, so every request is the same caller.
        let forged = format!("203.0.113.{i}");
        let reply = get(
            &gw.url("/public/x"),
            &[("x-forwarded-for", &forged), ("x-real-ip", &forged)],
        )
        .await;
        statuses.push(reply.status.as_u16());
    }
    assert_eq!(statuses, [200, 200, 429, 429, 429]);
    assert_eq!(upstream.requests(), 2);
    // A valid token is another caller: its identity, not the address.
    let user = hs256(&access_claims("tollgate", "alice"));
    let reply = get(&gw.url("/public/x"), &[("authorization", &bearer(&user))]).await;
    assert_eq!(reply.status, 200);
    assert!(
        reply.headers.get("ratelimit").is_none(),
        "headers only when the limit asks or refuses"
    );
}

#[tokio::test]
async fn every_limit_of_a_route_applies_and_the_refusal_names_the_one_spent() {
    let upstream = RecordingUpstream::start().await;
    let gw = spawn_gateway(&format!(
        r#"{ISSUER}
[[routes]]
prefix = "/vendor"
upstream = "{}"
policy = "service"
rate_limits = [
  {{ rate = "100/s", by = "service" }},
  {{ rate = "4/d", by = "service", name = "daily" }},
]
"#,
        upstream.url()
    ))
    .await;
    let billing = hs256(&service_claims("tollgate", "billing"));
    for _ in 0..4 {
        let reply = get(
            &gw.url("/vendor/x"),
            &[("authorization", &bearer(&billing))],
        )
        .await;
        assert_eq!(reply.status, 200);
    }
    let refused = get(
        &gw.url("/vendor/x"),
        &[("authorization", &bearer(&billing))],
    )
    .await;
    assert_eq!(refused.status, 429);
    assert!(
        refused.json()["reason"]
            .as_str()
            .unwrap()
            .starts_with("limit daily"),
        "{}",
        refused.text()
    );
    // No limit asks for headers on every answer: the 429 names the limit that refused.
    assert_eq!(refused.headers["ratelimit-policy"], "\"daily\";q=4;w=86400");
    let retry: u64 = refused.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry > 21_000 && retry <= 21_600, "a quarter day: {retry}");
}

#[tokio::test]
async fn a_grpc_caller_over_its_limit_gets_resource_exhausted() {
    let gw = spawn_gateway(&format!(
        "{ISSUER}\n{}",
        public_route(
            "/",
            "echo",
            "rate_limit = { rate = \"1/h\", by = \"route\" }"
        )
    ))
    .await;
    let h2 = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    let call = || {
        let request = http::Request::post(gw.url("/pkg.Service/Method"))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap();
        send_with(&h2, request)
    };
    let _ = call().await;
    let refused = call().await;
    assert_eq!(refused.status, 200, "trailers-only");
    assert_eq!(refused.headers["grpc-status"], "8");
    assert!(refused.headers.contains_key("retry-after"));
}

#[tokio::test]
async fn check_names_the_key_of_a_bad_limit() {
    for (limit, key, words) in [
        (
            r#"rate_limit = { rate = "100" }"#,
            "routes[0].rate_limit.rate",
            "not a rate",
        ),
        (
            r#"rate_limits = [{ rate = "1/s" }, { rate = "5/w" }]"#,
            "routes[0].rate_limits[1].rate",
            "not a unit",
        ),
        (
            r#"rate_limit = { rate = "1/s", burst = 0 }"#,
            "routes[0].rate_limit.burst",
            "from 1",
        ),
        (
            r#"rate_limit = { rate = "1/s", by = "user" }"#,
            "routes[0]",
            "unknown variant",
        ),
        (
            r#"rate_limit = { rate = "1/s", overrides = { billing = "x" } }"#,
            "routes[0].rate_limit.overrides.billing",
            "not a rate",
        ),
        (
            r#"rate_limits = [{ rate = "1/s" }, { rate = "1/s" }]"#,
            "routes[0].rate_limits[1].name",
            "second limit",
        ),
    ] {
        let toml = with_test_server(&format!("{ISSUER}\n{}", public_route("/", "echo", limit)));
        let error = tollgate::Config::from_toml(
            &toml,
            "t.toml",
            &tollgate::Env::from_map::<_, String, String>([]),
        )
        .expect_err(limit)
        .to_string();
        assert!(
            error.contains(key) && error.contains(words),
            "{limit}: {error}"
        );
    }
}

/// Three gateways sharing `redis`: one limit of `200/m` by service, `batch` requests reserved
/// per Redis call.
async fn fleet(upstream: &RecordingUpstream, redis: &Redis, batch: u32) -> Vec<TestGateway> {
    let config = format!(
        r#"{ISSUER}
[state]
backend = "redis"
url = "{}"
key_prefix = "rl-test:"
replicas = 3
rate_limit_batch = {batch}

[[routes]]
prefix = "/api"
upstream = "{}"
policy = "service"
rate_limit = {{ rate = "200/m", by = "service" }}
"#,
        redis.url(),
        upstream.url()
    );
    let mut replicas = Vec::new();
    for _ in 0..3 {
        replicas.push(spawn_gateway(&config).await);
    }
    replicas
}

/// Sends `n` requests spread over the replicas, 24 at a time; the statuses seen.
async fn load(replicas: &[TestGateway], token: &str, n: usize) -> Vec<u16> {
    let urls: Vec<String> = replicas.iter().map(|r| r.url("/api/x")).collect();
    let auth = bearer(token);
    let mut tasks = tokio::task::JoinSet::new();
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for _ in 0..24 {
        let (urls, auth, next) = (urls.clone(), auth.clone(), next.clone());
        tasks.spawn(async move {
            let client = client();
            let mut seen = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    return seen;
                }
                let request = http::Request::get(&urls[i % urls.len()])
                    .header("authorization", &auth)
                    .body(http_body_util::Full::new(bytes::Bytes::new()))
                    .unwrap();
                seen.push(send_with(&client, request).await.status.as_u16());
            }
        });
    }
    let mut statuses = Vec::new();
    while let Some(seen) = tasks.join_next().await {
        statuses.extend(seen.unwrap());
    }
    statuses
}

#[tokio::test]
async fn three_replicas_share_one_limit_in_redis_and_fall_back_to_their_share_without_it() {
    let Some(mut redis) = Redis::start() else {
        return;
    };
    let upstream = RecordingUpstream::start().await;
    let replicas = fleet(&upstream, &redis, 1).await;
    let billing = hs256(&service_claims("tollgate", "billing"));

    // 600 requests at once over three replicas: the fleet admits the one burst of 200 (plus
    // what 200/m refills while the load runs), not 200 per replica.
    let started = std::time::Instant::now();
    let statuses = load(&replicas, &billing, 600).await;
    let refill = (started.elapsed().as_secs_f64() * 200.0 / 60.0).ceil() as usize;
    let allowed = statuses.iter().filter(|s| **s == 200).count();
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 429),
        "{statuses:?}"
    );
    assert!(
        (200..=210 + refill).contains(&allowed),
        "allowed {allowed} of 600 (refill {refill})"
    );
    assert_eq!(upstream.requests(), allowed);
    // One script call per admitted request; a refused caller is refused locally until the
    // retry time Redis gave (nothing frees a cell earlier), so most refusals ask nothing.
    let calls = script_calls(&redis);
    eprintln!("one call per request: {allowed} of 600 admitted, {calls} script calls");
    assert!(
        calls >= allowed as u64 && calls < 600,
        "{calls} script calls"
    );
    let ready = get(
        &format!("http://{}/readyz", replicas[0].admin.unwrap()),
        &[],
    )
    .await;
    assert_eq!(ready.json()["rate_limits"]["kept_in"], "redis");

    // Redis goes away in the middle of a load: no caller sees an error.
    let ledger = hs256(&service_claims("tollgate", "ledger"));
    let (statuses, ()) = tokio::join!(load(&replicas, &ledger, 3000), async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        redis.stop();
    });
    assert_eq!(statuses.len(), 3000);
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 429),
        "no error while Redis goes down: {statuses:?}"
    );

    // Without Redis each replica keeps its third of the limit, for a fresh key.
    let orders = hs256(&service_claims("tollgate", "orders"));
    let statuses = load(&replicas, &orders, 300).await;
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 429),
        "no error while Redis is down: {statuses:?}"
    );
    let allowed = statuses.iter().filter(|s| **s == 200).count();
    // Three shares of 66 (200 / 3, burst too), plus what refills while the requests run.
    assert!(
        (190..=230).contains(&allowed),
        "allowed {allowed} of 300 on local shares"
    );
    for replica in &replicas {
        let ready = get(&format!("http://{}/readyz", replica.admin.unwrap()), &[]).await;
        assert_eq!(ready.status, 200, "still ready: {}", ready.text());
        assert_eq!(
            ready.json()["rate_limits"]["kept_in"],
            "local share (redis unreachable)"
        );
        let metrics = scrape(replica).await;
        assert_eq!(
            scrape_value(&metrics, "tollgate_rate_limits_shared_up"),
            Some(0.0)
        );
        assert!(
            scrape_value(
                &metrics,
                r#"tollgate_rate_limit_fallbacks_total{route="/api"}"#
            )
            .unwrap()
                > 0.0,
            "{metrics}"
        );
    }

    // Back: after the retry pause the fleet shares again.
    redis.restart();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    within(async {
        loop {
            let _ = load(&replicas, &orders, 3).await;
            let metrics = scrape(&replicas[0]).await;
            if scrape_value(&metrics, "tollgate_rate_limits_shared_up") == Some(1.0) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
}

#[test]
fn explain_names_the_limits_that_would_apply_and_charges_none() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tollgate.toml");
    std::fs::write(
        &path,
        with_test_server(&format!(
            r#"{ISSUER}
[[routes]]
prefix = "/vendor"
upstream = "echo"
policy = "service"
rate_limits = [
  {{ rate = "1/s", by = "service", overrides = {{ billing = {{ rate = "50/s", burst = 5 }} }} }},
  {{ rate = "1/d", by = "tenant", name = "daily" }},
]
"#
        )),
    )
    .unwrap();
    let billing = hs256(&service_claims("tollgate", "billing"));
    // Twice: explaining charges nothing, so a 1/d quota still lets the second one through.
    for _ in 0..2 {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .args(["explain", "--format", "json", "--config"])
            .arg(&path)
            .args(["GET", "/vendor/x", "-H"])
            .arg(format!("Authorization: Bearer {billing}"))
            .env_remove("TOLLGATE_CONFIG")
            .output()
            .unwrap();
        let json: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
        assert_eq!(json["verdict"], "allowed", "{json}");
        let steps: Vec<String> = json["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| format!("{}: {}", s["step"], s["detail"]).replace('"', ""))
            .collect();
        assert!(
            steps.contains(
                &"rate limit service:1/s: 50/s burst 5 per service; over it, 429 rate_limited"
                    .to_owned()
            ),
            "{steps:#?}"
        );
        // No tenant in a service token: keyed by the service instead.
        assert!(
            steps.contains(
                &"rate limit daily: 1/d per service; over it, 429 rate_limited".to_owned()
            ),
            "{steps:#?}"
        );
    }
}

#[tokio::test]
async fn a_daily_quota_on_a_vendor_route_spends_no_vendor_call_or_login_once_used_up() {
    let vendor = RecordingUpstream::start().await;
    let auth = AuthServer::start(AuthReply::Field("accessToken")).await;
    let gw = spawn_gateway(&format!(
        r#"{ISSUER}
[[providers]]
name = "vendor"
kind = "login"
auth_url = "{}"
email = "svc@example.com"
password = "vendor-password"

[[routes]]
prefix = "/vendor"
upstream = "{}"
policy = "service"
upstream_auth = "vendor"
rate_limit = {{ rate = "2/d", by = "service", name = "vendor-budget" }}
"#,
        auth.url(),
        vendor.url()
    ))
    .await;
    let billing = hs256(&service_claims("tollgate", "billing"));
    let statuses: Vec<u16> = {
        let mut s = Vec::new();
        for _ in 0..4 {
            let reply = get(
                &gw.url("/vendor/x"),
                &[("authorization", &bearer(&billing))],
            )
            .await;
            s.push(reply.status.as_u16());
        }
        s
    };
    assert_eq!(statuses, [200, 200, 429, 429]);
    assert_eq!(vendor.requests(), 2, "the vendor API saw only the budget");
    assert_eq!(
        auth.logins(),
        1,
        "the login at start, and none for a refused request"
    );
    let raw = vendor.raw();
    assert!(raw.contains("authorization: Bearer "), "{raw}");
}

#[tokio::test]
async fn a_reload_keeps_what_callers_have_spent() {
    let routes = |extra: &str| {
        format!(
            "{ISSUER}\n{}{extra}",
            public_route("/api", "echo", "rate_limit = { rate = \"2/h\" }")
        )
    };
    let gw = GatewayProcess::spawn(&routes(""), &[]);
    let url = gw.url("/api/x");
    let statuses = |n| {
        let url = url.clone();
        async move {
            let mut s = Vec::new();
            for _ in 0..n {
                s.push(get(&url, &[]).await.status.as_u16());
            }
            s
        }
    };
    assert_eq!(statuses(3).await, [200, 200, 429]);
    // Another route appears; the spent allowance does not come back with the new config.
    let text = std::fs::read_to_string(&gw.config_path).unwrap();
    std::fs::write(
        &gw.config_path,
        format!("{text}\n{}", public_route("/new", "echo", "")),
    )
    .unwrap();
    gw.signal("HUP");
    within(async {
        while get(&gw.url("/new/x"), &[]).await.status != 200 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert_eq!(statuses(1).await, [429]);
}

/// Script calls Redis has answered (EVALSHA, and EVAL for the first).
fn script_calls(redis: &Redis) -> u64 {
    let stats = redis.bulk("INFO commandstats").unwrap_or_default();
    stats
        .lines()
        .filter(|l| l.starts_with("cmdstat_evalsha:") || l.starts_with("cmdstat_eval:"))
        .filter_map(|l| {
            l.split("calls=")
                .nth(1)?
                .split(',')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

#[tokio::test]
async fn reserving_batches_takes_redis_off_most_requests_and_never_admits_more() {
    let Some(redis) = Redis::start() else {
        return;
    };
    let upstream = RecordingUpstream::start().await;
    // A batch of 10 (under the cap of 200 / (2 × 3) = 33).
    let replicas = fleet(&upstream, &redis, 10).await;
    let billing = hs256(&service_claims("tollgate", "billing"));
    let started = std::time::Instant::now();
    let statuses = load(&replicas, &billing, 600).await;
    let refill = (started.elapsed().as_secs_f64() * 200.0 / 60.0).ceil() as usize;
    let allowed = statuses.iter().filter(|s| **s == 200).count();
    assert!(statuses.iter().all(|s| *s == 200 || *s == 429));
    // Never more than the limit; at most a batch per replica left unspent in its lease.
    assert!(
        (200 - 3 * 10..=200 + refill).contains(&allowed),
        "allowed {allowed} of 600 (refill {refill})"
    );
    assert_eq!(upstream.requests(), allowed);
    // Admitted requests came from leases, about one script call per batch; a refused caller is
    // refused locally until the retry time Redis gave.
    let calls = script_calls(&redis);
    eprintln!("batches of 10: {allowed} of 600 admitted, {calls} script calls");
    assert!(
        calls > 0 && calls <= 150,
        "{calls} script calls for 600 requests"
    );
}
