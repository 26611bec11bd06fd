//! Revocation through the embedded state store: `tollgate token revoke` run as an operator
//! would, against a running gateway process that picks the change up by itself.

mod support;

use std::process::Command;
use std::time::{Duration, Instant};

use support::recording::RecordingUpstream;
use support::*;

struct Fleet {
    gw: GatewayProcess,
    _state: tempfile::TempDir,
}

fn config(upstream: &str, state: &std::path::Path) -> String {
    config_flushing(upstream, state, "200ms")
}

fn config_flushing(upstream: &str, state: &std::path::Path, usage_flush: &str) -> String {
    format!(
        r#"
[[issuers]]
issuer = "tollgate"
algorithms = ["HS256"]
secret = "{SECRET}"

[tokens]
services = ["orders", "billing", "ledger"]

[state]
path = "{}"
usage_flush_interval = "{usage_flush}"

[[routes]]
prefix = "/internal"
upstream = "{upstream}"
policy = "service"
"#,
        state.join("revocations.json").display()
    )
}

fn start(upstream: &RecordingUpstream) -> Fleet {
    let state = tempfile::tempdir().unwrap();
    let gw = GatewayProcess::spawn(&config(&upstream.url(), state.path()), &[]);
    Fleet { gw, _state: state }
}

/// Runs the CLI with the gateway's config; returns (success, stdout, stderr).
fn cli(fleet: &Fleet, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(args)
        .arg("--config")
        .arg(&fleet.gw.config_path)
        .env_remove("TOLLGATE_CONFIG")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn issue(fleet: &Fleet, service: &str) -> String {
    issue_for(fleet, service, "365d")
}

fn issue_for(fleet: &Fleet, service: &str, ttl: &str) -> String {
    let (ok, token, err) = cli(fleet, &["token", "issue", service, "--ttl", ttl]);
    assert!(ok, "{err}");
    token.trim().to_owned()
}

/// `tollgate token usage --format json`, by service.
fn usage(fleet: &Fleet) -> std::collections::HashMap<String, serde_json::Value> {
    let (ok, out, err) = cli(fleet, &["token", "usage", "--format", "json"]);
    assert!(ok, "{err}");
    out.lines()
        .map(|line| {
            let row: serde_json::Value = serde_json::from_str(line).unwrap();
            (row["service"].as_str().unwrap().to_owned(), row)
        })
        .collect()
}

async fn status_and_reason(fleet: &Fleet, token: &str) -> (u16, String) {
    bearer_status_and_reason(&fleet.gw.url("/internal/x"), token).await
}

/// How long until `token` is refused as revoked.
async fn refused_after(fleet: &Fleet, token: &str, since: Instant) -> Duration {
    within(async {
        loop {
            if status_and_reason(fleet, token).await == (401, "token revoked".to_owned()) {
                return since.elapsed();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
}

#[tokio::test]
async fn a_revoked_token_is_refused_within_two_seconds_and_others_pass() {
    let upstream = RecordingUpstream::start().await;
    let fleet = start(&upstream);
    let leaked = issue(&fleet, "orders");
    let other = issue(&fleet, "orders");
    assert_eq!(status_and_reason(&fleet, &leaked).await.0, 200);

    let started = Instant::now();
    let (ok, out, err) = cli(
        &fleet,
        &["token", "revoke", &leaked, "--reason", "pasted in a ticket"],
    );
    assert!(ok && out.starts_with("revoked jti "), "{out}{err}");
    let took = refused_after(&fleet, &leaked, started).await;
    eprintln!("revocation propagated in {took:?}");
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert_eq!(
        status_and_reason(&fleet, &other).await.0,
        200,
        "only that token"
    );

    // By jti, the way an audit log names a token.
    let mut claims = service_claims("tollgate", "billing");
    claims["jti"] = "jti-from-the-audit-log".into();
    let by_jti = hs256(&claims);
    assert_eq!(status_and_reason(&fleet, &by_jti).await.0, 200);
    let started = Instant::now();
    assert!(cli(&fleet, &["token", "revoke", "jti-from-the-audit-log"]).0);
    refused_after(&fleet, &by_jti, started).await;

    // The operator's view, and `token verify` agrees with the gateway.
    let (ok, list, _) = cli(&fleet, &["token", "revoked"]);
    assert!(ok);
    assert!(list.contains("jti jti-from-the-audit-log"), "{list}");
    assert!(list.contains("pasted in a ticket"), "{list}");
    assert!(
        !list.contains(&leaked),
        "tokens themselves are never stored: {list}"
    );
    let (valid, _, verdict) = cli(&fleet, &["token", "verify", &leaked]);
    assert!(!valid && verdict.contains("token revoked"), "{verdict}");
    let metrics = get(&format!("http://{}/metrics", fleet.gw.admin), &[])
        .await
        .text();
    assert_eq!(
        scrape_value(&metrics, "tollgate_revocations_in_force"),
        Some(2.0),
        "{metrics}"
    );
    // The attempts with revoked tokens are counted per service (the alert reads them).
    for service in ["orders", "billing"] {
        let revoked = scrape_value(
            &metrics,
            &format!("tollgate_service_requests_total{{service=\"{service}\",result=\"revoked\"}}"),
        );
        assert!(revoked.is_some_and(|n| n >= 1.0), "{metrics}");
    }
}

#[tokio::test]
async fn revoking_a_service_rotates_its_token_without_a_flag_day() {
    let upstream = RecordingUpstream::start().await;
    let fleet = start(&upstream);
    let old = issue(&fleet, "orders");
    let billing = issue(&fleet, "billing");
    let started = Instant::now();
    assert!(
        cli(
            &fleet,
            &[
                "token",
                "revoke",
                "--service",
                "orders",
                "--reason",
                "rotation"
            ]
        )
        .0
    );
    refused_after(&fleet, &old, started).await;
    assert_eq!(
        status_and_reason(&fleet, &billing).await.0,
        200,
        "other services unaffected"
    );
    // `iat` has one-second resolution: a token issued in a later second is the new one.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let new = issue(&fleet, "orders");
    assert_eq!(status_and_reason(&fleet, &new).await.0, 200);
    assert_eq!(status_and_reason(&fleet, &old).await.0, 401);
}

#[tokio::test]
async fn a_broken_list_keeps_the_previous_one_in_force() {
    let upstream = RecordingUpstream::start().await;
    let fleet = start(&upstream);
    let leaked = issue(&fleet, "orders");
    let started = Instant::now();
    assert!(cli(&fleet, &["token", "revoke", &leaked]).0);
    refused_after(&fleet, &leaked, started).await;
    let path = fleet._state.path().join("revocations.json");
    std::fs::write(&path, b"{ not json").unwrap();
    let url = format!("http://{}/metrics", fleet.gw.admin);
    within(async {
        loop {
            let metrics = get(&url, &[]).await.text();
            if scrape_value(&metrics, "tollgate_revocation_load_failures_total") == Some(1.0) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert_eq!(
        status_and_reason(&fleet, &leaked).await,
        (401, "token revoked".to_owned())
    );
    // A token without a jti cannot be revoked alone; the CLI says what to do instead.
    let mut claims = service_claims("tollgate", "orders");
    claims.as_object_mut().unwrap().remove("jti");
    let (ok, _, err) = cli(&fleet, &["token", "revoke", &hs256(&claims)]);
    assert!(!ok && err.contains("--service NAME"), "{err}");
}

#[tokio::test]
async fn token_usage_tells_which_service_tokens_are_still_presented() {
    let upstream = RecordingUpstream::start().await;
    let fleet = start(&upstream);
    let expiring = issue_for(&fleet, "orders", "10d");
    let leaked = issue(&fleet, "orders");
    let billing = issue(&fleet, "billing");
    let stranger = hs256(&service_claims("tollgate", "stranger-from-another-team"));
    for token in [&expiring, &leaked, &billing, &billing, &stranger] {
        assert_eq!(status_and_reason(&fleet, token).await.0, 200);
    }
    let started = Instant::now();
    assert!(cli(&fleet, &["token", "revoke", &leaked]).0);
    refused_after(&fleet, &leaked, started).await;

    let rows = within(async {
        loop {
            let rows = usage(&fleet);
            if rows["orders"]["tokens_in_use"] == 1
                && rows.contains_key("stranger-from-another-team")
            {
                return rows;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    let orders = &rows["orders"];
    assert_eq!(orders["revoked_tokens"], 1, "{orders}");
    assert_eq!(orders["expiring_soon"], 1, "the 10-day token: {orders}");
    assert!(
        orders["last_seen"].as_u64().unwrap() + 60 > now(),
        "{orders}"
    );
    assert_eq!(rows["billing"]["tokens_in_use"], 1, "one token, used twice");
    assert_eq!(rows["billing"]["expiring_soon"], 0);
    assert_eq!(rows["ledger"]["tokens_in_use"], 0, "registered, never seen");
    assert!(rows["ledger"]["last_seen"].is_null());
    assert_eq!(rows["stranger-from-another-team"]["registered"], false);
    assert_eq!(rows.len(), 4, "{rows:?}");

    let (ok, table, _) = cli(&fleet, &["token", "usage"]);
    assert!(ok);
    let ledger = table.lines().find(|l| l.starts_with("ledger ")).unwrap();
    assert!(ledger.contains("never"), "{table}");
    assert!(
        table.contains("stranger-from-another-team (unlisted)"),
        "{table}"
    );
    // Columns line up, counted in characters: "last seen" starts where its header does on
    // every row, whatever the width of the names before it.
    let header = table.lines().next().unwrap();
    let column = header[..header.find("last seen").unwrap()].chars().count();
    for line in table.lines().skip(1) {
        let cell: String = line.chars().skip(column).take(5).collect();
        assert!(
            cell == "never" || cell.starts_with("20"),
            "{cell:?} in {table}"
        );
        assert_eq!(line.chars().nth(column - 1), Some(' '), "{table}");
    }
    // The store keeps jtis and times, never a token.
    let stored =
        std::fs::read_to_string(fleet._state.path().join("revocations.usage.json")).unwrap();
    for token in [&expiring, &leaked, &billing, &stranger] {
        assert!(!stored.contains(token.as_str()) && !table.contains(token.as_str()));
        let signature = token.rsplit('.').next().unwrap();
        assert!(!stored.contains(signature));
    }
}

#[tokio::test]
async fn a_stopping_gateway_writes_the_usage_it_has_not_written_yet() {
    let upstream = RecordingUpstream::start().await;
    let state = tempfile::tempdir().unwrap();
    let mut fleet = Fleet {
        gw: GatewayProcess::spawn(&config_flushing(&upstream.url(), state.path(), "1h"), &[]),
        _state: state,
    };
    let token = issue(&fleet, "billing");
    assert_eq!(status_and_reason(&fleet, &token).await.0, 200);
    assert_eq!(
        usage(&fleet)["billing"]["tokens_in_use"],
        0,
        "not written yet"
    );
    fleet.gw.signal("TERM");
    assert!(fleet.gw.wait_exit().success());
    assert_eq!(usage(&fleet)["billing"]["tokens_in_use"], 1);
}
