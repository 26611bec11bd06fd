//! A fleet sharing its state through a real redis-server: three gateway processes, the CLI
//! run as an operator would, and a Redis outage in the middle.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use support::recording::RecordingUpstream;
use support::redis::Redis;
use support::tls::TestCerts;
use support::*;

fn config(upstream: &str, redis: &Redis) -> String {
    format!(
        r#"
[[issuers]]
issuer = "tollgate"
algorithms = ["HS256"]
secret = "{SECRET}"

[tokens]
services = ["orders", "billing"]

[state]
backend = "redis"
url = "{}"
key_prefix = "fleet-test:"
usage_flush_interval = "200ms"

[[routes]]
prefix = "/internal"
upstream = "{upstream}"
policy = "service"
"#,
        redis.url()
    )
}

/// The `[state] encryption_key` of the sealed-token test, as its environment passes it.
const STATE_KEY: (&str, &str) = ("STATE_KEY", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=");

fn cli(replica: &GatewayProcess, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(args)
        .env(STATE_KEY.0, STATE_KEY.1)
        .arg("--config")
        .arg(&replica.config_path)
        .env_remove("TOLLGATE_CONFIG")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

async fn status(replica: &GatewayProcess, token: &str) -> u16 {
    get(
        &replica.url("/internal/x"),
        &[("authorization", &format!("Bearer {token}"))],
    )
    .await
    .status
    .as_u16()
}

/// How long until every replica refuses `token`.
async fn all_refuse(replicas: &[GatewayProcess], token: &str, since: Instant) -> Duration {
    within(async {
        for replica in replicas {
            while status(replica, token).await != 401 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        since.elapsed()
    })
    .await
}

async fn metric(replica: &GatewayProcess, series: &str) -> Option<f64> {
    let text = get(&format!("http://{}/metrics", replica.admin), &[])
        .await
        .text();
    scrape_value(&text, series)
}

#[tokio::test]
async fn three_replicas_share_revocations_and_ride_out_a_redis_outage() {
    let Some(mut redis) = Redis::start() else {
        return;
    };
    let upstream = RecordingUpstream::start().await;
    let toml = config(&upstream.url(), &redis);
    let replicas: Vec<GatewayProcess> = (0..3).map(|_| GatewayProcess::spawn(&toml, &[])).collect();
    let issue = |service: &str| {
        let (ok, out) = cli(&replicas[0], &["token", "issue", service]);
        assert!(ok, "{out}");
        out.trim().to_owned()
    };
    let leaked = issue("orders");
    let healthy = issue("billing");
    for replica in &replicas {
        assert_eq!(status(replica, &leaked).await, 200);
    }
    // Each replica saw a different billing token; the usage log in Redis has all of them.
    let billing: Vec<String> = replicas.iter().map(|_| issue("billing")).collect();
    for (replica, token) in replicas.iter().zip(&billing) {
        assert_eq!(status(replica, token).await, 200);
    }
    within(async {
        loop {
            let (ok, out) = cli(&replicas[0], &["token", "usage", "--format", "json"]);
            assert!(ok, "{out}");
            let row = out
                .lines()
                .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
                .find(|row| row["service"] == "billing")
                .unwrap();
            if row["tokens_in_use"] == 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    assert!(
        redis.command("HLEN fleet-test:usage").ends_with('4'),
        "one entry per jti: 3 billing tokens and the orders one"
    );

    let started = Instant::now();
    let (ok, out) = cli(
        &replicas[1],
        &["token", "revoke", &leaked, "--reason", "leaked"],
    );
    assert!(ok, "{out}");
    let took = all_refuse(&replicas, &leaked, started).await;
    eprintln!("revocation reached 3 replicas in {took:?}");
    assert!(took < Duration::from_secs(2), "{took:?}");
    assert!(
        redis
            .command("EXISTS fleet-test:revocations")
            .ends_with('1')
    );

    // Redis goes away: every replica keeps refusing what it knew and keeps serving the rest.
    redis.stop();
    within(async {
        for replica in &replicas {
            while metric(replica, "tollgate_state_store_up").await != Some(0.0) {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    })
    .await;
    for replica in &replicas {
        assert_eq!(status(replica, &leaked).await, 401);
        assert_eq!(status(replica, &healthy).await, 200);
        let ready = get(&format!("http://{}/readyz", replica.admin), &[]).await;
        assert_eq!(ready.status, 200, "still ready: {}", ready.text());
        assert_eq!(
            ready.json()["state_store"]["reachable"],
            false,
            "{}",
            ready.text()
        );
    }
    let (ok, out) = cli(&replicas[0], &["token", "revoke", &healthy]);
    assert!(
        !ok && out.contains("unavailable"),
        "the operator is told: {out}"
    );

    // Redis returns: the replicas reconnect by themselves and converge on new revocations.
    redis.restart();
    within(async {
        for replica in &replicas {
            while metric(replica, "tollgate_state_store_up").await != Some(1.0) {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    })
    .await;
    let started = Instant::now();
    let (ok, out) = cli(&replicas[2], &["token", "revoke", "--service", "billing"]);
    assert!(ok, "{out}");
    all_refuse(&replicas, &healthy, started).await;
    for replica in &replicas {
        assert_eq!(
            status(replica, &leaked).await,
            401,
            "the first revocation survived"
        );
    }
    let (ok, list) = cli(&replicas[0], &["token", "revoked"]);
    assert!(
        ok && list.contains("service billing") && list.contains("leaked"),
        "{list}"
    );
}

#[tokio::test]
async fn a_replica_started_while_redis_is_down_is_not_ready_until_it_has_read_the_list() {
    let Some(mut redis) = Redis::start() else {
        return;
    };
    let upstream = RecordingUpstream::start().await;
    let toml = config(&upstream.url(), &redis);
    let first = GatewayProcess::spawn(&toml, &[]);
    let (ok, leaked) = cli(&first, &["token", "issue", "orders"]);
    assert!(ok, "{leaked}");
    assert!(cli(&first, &["token", "revoke", leaked.trim()]).0);
    redis.stop();
    let late = GatewayProcess::spawn(&toml, &[]);
    let ready = get(&format!("http://{}/readyz", late.admin), &[]).await;
    assert_eq!(ready.status, 503, "{}", ready.text());
    assert_eq!(ready.json()["status"], "waiting for the revocation list");
    assert_eq!(ready.json()["state_store"]["revocations_loaded"], false);
    redis.restart();
    within(async {
        while get(&format!("http://{}/readyz", late.admin), &[])
            .await
            .status
            != 200
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert_eq!(status(&late, leaked.trim()).await, 401);
}

fn vendor_config(redis: &Redis, auth: &[&AuthServer], vendor: &RecordingUpstream) -> String {
    let mut toml = format!(
        "[state]\nbackend = \"redis\"\nurl = \"{}\"\nkey_prefix = \"fleet-vendor:\"\n",
        redis.url()
    );
    for (i, auth) in auth.iter().enumerate() {
        toml.push_str(&format!(
            r#"
[[providers]]
name = "vendor{i}"
kind = "login"
auth_url = "{}"
email = "svc@example.com"
password = "hunter2-vendor-password"
timeout = "3s"
max_retries = 0
failure_cooldown = "1s"

[[routes]]
prefix = "/vendor{i}"
upstream = "{}"
policy = "public"
upstream_auth = "vendor{i}"
"#,
            auth.url(),
            vendor.url()
        ));
    }
    toml
}

#[tokio::test]
async fn a_fleet_logs_in_to_the_vendor_once_and_survives_the_death_of_the_replica_logging_in() {
    let Some(redis) = Redis::start() else {
        return;
    };
    let (dying, cold) = (
        AuthServer::start(AuthReply::Field("accessToken")).await,
        AuthServer::start(AuthReply::Field("accessToken")).await,
    );
    let vendor = RecordingUpstream::start().await;
    let toml = vendor_config(&redis, &[&dying, &cold], &vendor);
    let mut replicas: Vec<GatewayProcess> =
        (0..3).map(|_| GatewayProcess::spawn(&toml, &[])).collect();

    // 3 replicas × 100 concurrent cold requests: one login for the whole fleet.
    cold.set_delay(Duration::from_millis(300));
    let requests: Vec<_> = replicas
        .iter()
        .flat_map(|replica| (0..100).map(move |i| replica.url(&format!("/vendor1/{i}"))))
        .map(|url| tokio::spawn(async move { get(&url, &[]).await.status }))
        .collect();
    for request in requests {
        assert_eq!(within(request).await.unwrap(), 200);
    }
    assert_eq!(cold.logins(), 1, "one login for 300 requests on 3 replicas");
    assert_eq!(vendor.requests(), 300);

    // The replica holding the login lock dies mid-login: the others get a token after its
    // lease (3 s timeout × 1 attempt + 2 s margin), not never.
    dying.set_delay(Duration::from_secs(2));
    let first = replicas[0].url("/vendor0/x");
    // This request dies with its replica: its error is the point, not a test failure.
    let orphaned = tokio::spawn(async move {
        let request = http::Request::get(first).body(Default::default()).unwrap();
        let _ = client().request(request).await;
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        dying.logins(),
        1,
        "replica 0 holds the lock and is logging in"
    );
    replicas[0].child.kill().unwrap();
    let _ = orphaned.await;
    dying.set_delay(Duration::ZERO);
    let started = Instant::now();
    let replica = &replicas[1];
    let reply = get(&replica.url("/vendor0/x"), &[]).await;
    let waited = started.elapsed();
    assert_eq!(reply.status, 200, "{}", reply.text());
    eprintln!("a replica got a token {waited:?} after the lock holder died");
    assert!(waited < Duration::from_secs(6), "{waited:?}");
    assert_eq!(dying.logins(), 2, "the orphaned login and one more");
    let reply = get(&replicas[2].url("/vendor0/y"), &[]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        dying.logins(),
        2,
        "replica 2 took the token replica 1 stored"
    );
}

#[tokio::test]
async fn a_vendor_401_makes_the_fleet_log_in_once_not_once_per_replica() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let Some(redis) = Redis::start() else {
        return;
    };
    let auth = AuthServer::start(AuthReply::Field("accessToken")).await;
    // Once told to, the vendor refuses the first token (as if revoked on its side).
    let refusing = Arc::new(AtomicBool::new(false));
    let flag = refusing.clone();
    let vendor = MockUpstream::start(move |request| {
        let refused =
            flag.load(Ordering::SeqCst) && request.headers["authorization"] == "Bearer tok-1";
        async move {
            let status = if refused {
                http::StatusCode::UNAUTHORIZED
            } else {
                http::StatusCode::OK
            };
            json_response(status, &serde_json::json!({}))
        }
    })
    .await;
    let recording = RecordingUpstream::start().await;
    let toml = vendor_config(&redis, &[&auth], &recording).replace(&recording.url(), &vendor.url());
    let replicas: Vec<GatewayProcess> = (0..3).map(|_| GatewayProcess::spawn(&toml, &[])).collect();
    for replica in &replicas {
        assert_eq!(get(&replica.url("/vendor0/x"), &[]).await.status, 200);
    }
    assert_eq!(auth.logins(), 1, "every replica holds the fleet's tok-1");
    refusing.store(true, Ordering::SeqCst);
    // Each replica is refused with tok-1 once; the first to ask replaces it for everyone.
    for replica in &replicas {
        let reply = get(&replica.url("/vendor0/y"), &[]).await;
        assert_eq!(
            reply.status,
            200,
            "replayed with the fleet's new token: {}",
            reply.text()
        );
    }
    assert_eq!(
        auth.logins(),
        2,
        "one re-login for the whole fleet, not one per replica"
    );
}

#[tokio::test]
async fn over_rediss_a_fleet_shares_revocations_and_a_sealed_vendor_token() {
    let certs = TestCerts::generate();
    let Some(redis) = Redis::start_tls(&certs) else {
        return;
    };
    let auth = AuthServer::start(AuthReply::Field("accessToken")).await;
    let vendor = RecordingUpstream::start().await;
    let toml = format!(
        r#"
[[issuers]]
issuer = "tollgate"
algorithms = ["HS256"]
secret = "{SECRET}"

[state]
backend = "redis"
url = "{}"
ca_file = "{}"
encryption_key = "${{STATE_KEY}}"
key_prefix = "sealed:"

[[providers]]
name = "vendor"
kind = "login"
auth_url = "{}"
email = "svc@example.com"
password = "hunter2-vendor-password"

[[routes]]
prefix = "/vendor"
upstream = "{}"
policy = "public"
upstream_auth = "vendor"

[[routes]]
prefix = "/internal"
upstream = "{}"
policy = "service"
"#,
        redis.tls_url(),
        certs.ca_file.display(),
        auth.url(),
        vendor.url(),
        vendor.url(),
    );
    let replicas: Vec<GatewayProcess> = (0..2)
        .map(|_| GatewayProcess::spawn(&toml, &[STATE_KEY]))
        .collect();
    for replica in &replicas {
        let reply = get(&replica.url("/vendor/x"), &[]).await;
        assert_eq!(reply.status, 200, "{}", reply.text());
    }
    assert_eq!(
        auth.logins(),
        1,
        "the second replica opened the first one's token"
    );
    let raw = vendor.raw();
    let token = raw
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("authorization: bearer "))
        .map(|l| l["authorization: bearer ".len()..].trim().to_owned())
        .unwrap();
    // What Redis holds is sealed: neither the token nor any part of it is readable there.
    assert_eq!(redis.command("EXISTS sealed:vendor:vendor:token"), ":0");
    let stored = redis.bulk("GET sealed:vendor:vendor:token.sealed").unwrap();
    assert!(!stored.contains(&token) && !token.is_empty(), "{stored}");
    assert!(
        stored.split_once(' ').is_some_and(|(exp, sealed)| {
            exp.parse::<u64>().is_ok_and(|e| e > now()) && sealed.len() > 40
        }),
        "<exp> <sealed>: {stored}"
    );

    // Revocations travel over the same TLS connection.
    let (ok, out) = cli(&replicas[0], &["token", "issue", "orders"]);
    assert!(ok, "{out}");
    let leaked = out.trim().to_owned();
    assert_eq!(status(&replicas[1], &leaked).await, 200);
    let started = Instant::now();
    let (ok, out) = cli(&replicas[0], &["token", "revoke", &leaked]);
    assert!(ok, "{out}");
    all_refuse(&replicas, &leaked, started).await;
}

#[tokio::test]
async fn one_unreadable_revocation_entry_does_not_stop_the_fleet_revoking() {
    let Some(redis) = Redis::start() else {
        return;
    };
    let upstream = RecordingUpstream::start().await;
    let replica = GatewayProcess::spawn(&config(&upstream.url(), &redis), &[]);
    // A hand edit, or another version's format, and an entry naming nothing.
    assert_eq!(
        redis.command("HSET fleet-test:revocations bogus not-json"),
        ":1"
    );
    assert_eq!(redis.command("HSET fleet-test:revocations empty {}"), ":1");
    let (ok, token) = cli(&replica, &["token", "issue", "orders"]);
    assert!(ok, "{token}");
    let (ok, out) = cli(&replica, &["token", "revoke", token.trim()]);
    assert!(ok, "revoke failed on an unreadable entry: {out}");
    assert!(
        out.contains("; 1 revocation(s)"),
        "only the readable entry is counted: {out}"
    );
    let (ok, listed) = cli(&replica, &["token", "revoked"]);
    assert!(ok, "{listed}");
    // The heading, the one readable revocation, the two unreadable entries named, a warning.
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 5, "{listed}");
    assert!(lines[1].starts_with("jti "), "{listed}");
    assert!(
        lines.iter().any(|l| l.starts_with("unreadable bogus"))
            && lines
                .iter()
                .any(|l| l.starts_with("unreadable empty") && l.contains("revoked_at")),
        "{listed}"
    );
    assert!(
        listed.contains("2 stored revocation entries are unreadable"),
        "{listed}"
    );
    within(async {
        while status(&replica, token.trim()).await != 401 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    // The replica counts what it skipped, and still enforces the rest.
    assert_eq!(
        metric(&replica, "tollgate_revocation_entries_unreadable").await,
        Some(2.0)
    );
    assert_eq!(
        metric(&replica, "tollgate_revocations_in_force").await,
        Some(1.0)
    );
    let other = cli(&replica, &["token", "issue", "billing"]).1;
    assert_eq!(status(&replica, other.trim()).await, 200);
}

#[tokio::test]
async fn a_replica_started_while_redis_is_down_enforces_its_copy_of_the_last_list() {
    let Some(mut redis) = Redis::start() else {
        return;
    };
    let upstream = RecordingUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("copy.json");
    let toml = config(&upstream.url(), &redis).replace(
        "usage_flush_interval",
        &format!("copy_path = \"{}\"\nusage_flush_interval", copy.display()),
    );
    let first = GatewayProcess::spawn(&toml, &[]);
    let (ok, revoked) = cli(&first, &["token", "issue", "orders"]);
    assert!(ok, "{revoked}");
    let valid = cli(&first, &["token", "issue", "billing"]).1;
    assert!(cli(&first, &["token", "revoke", revoked.trim()]).0);
    all_refuse(std::slice::from_ref(&first), revoked.trim(), Instant::now()).await;
    let jti = {
        use base64::Engine;
        let payload = revoked.trim().split('.').nth(1).unwrap();
        let claims: serde_json::Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .unwrap(),
        )
        .unwrap();
        claims["jti"].as_str().unwrap().to_owned()
    };
    let kept = std::fs::read_to_string(&copy).expect("the replica keeps a copy");
    assert!(kept.contains(&jti), "{kept}");
    // With the version it was read at, the one Redis holds.
    let version = redis.bulk("GET fleet-test:revocations:version").unwrap();
    let kept: serde_json::Value = serde_json::from_str(&kept).unwrap();
    assert_eq!(kept["version"].to_string(), version, "{kept}");

    redis.stop();
    let late = GatewayProcess::spawn(&toml, &[]);
    // Not ready (the live list is unread), but not open either: the copy is enforced.
    let ready = get(&format!("http://{}/readyz", late.admin), &[]).await;
    assert_eq!(ready.status, 503);
    assert_eq!(status(&late, revoked.trim()).await, 401);
    assert_eq!(status(&late, valid.trim()).await, 200);
}

#[tokio::test]
async fn fail_closed_refuses_service_tokens_until_a_list_was_read() {
    let Some(mut redis) = Redis::start() else {
        return;
    };
    let upstream = RecordingUpstream::start().await;
    let toml = config(&upstream.url(), &redis).replace(
        "usage_flush_interval",
        "copy_path = \"\"\nfail_closed = true\nusage_flush_interval",
    );
    let first = GatewayProcess::spawn(&toml, &[]);
    let token = cli(&first, &["token", "issue", "orders"]).1;
    within(async {
        while status(&first, token.trim()).await != 200 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    redis.stop();
    let late = GatewayProcess::spawn(&toml, &[]);
    assert_eq!(
        status(&late, token.trim()).await,
        401,
        "no list read, no copy: closed"
    );
    redis.restart();
    within(async {
        while status(&late, token.trim()).await != 200 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
}
