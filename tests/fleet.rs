//! A fleet sharing its state through a real redis-server: three gateway processes, the CLI
//! run as an operator would, and a Redis outage in the middle.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use support::recording::RecordingUpstream;
use support::redis::Redis;
use support::*;

fn config(upstream: &str, redis: &Redis) -> String {
    format!(
        r#"
[[issuers]]
issuer = "tollgate"
algorithms = ["HS256"]
secret = "{SECRET}"

[state]
backend = "redis"
url = "{}"
key_prefix = "fleet-test:"

[[routes]]
prefix = "/internal"
upstream = "{upstream}"
policy = "service"
"#,
        redis.url()
    )
}

fn cli(replica: &GatewayProcess, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(args)
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
