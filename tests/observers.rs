//! One outcome feeds every observer, once the request is answered; deciding records nothing.
//! A request explained by the console's form runs the gateway's own decision and leaves no
//! audit event, no authentication count and no service-token use behind; the same request sent
//! for real leaves each of them once. A revoked service token is audited with its holder.

mod support;

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use support::*;

const ISS: &str = "tollgate";

fn config(upstream: &str, state: &std::path::Path) -> String {
    format!(
        r#"
[state]
path = "{state}/revocations.json"

[admin]
console = true

[[issuers]]
issuer = "{ISS}"
algorithms = ["HS256"]
secret = "{SECRET}"

[tokens]
services = ["billing", "orders"]

[[routes]]
name = "internal"
prefix = "/internal"
upstream = "{upstream}"
policy = "service"
services = ["billing"]
"#,
        state = state.display()
    )
}

fn token(service: &str, jti: &str) -> String {
    let mut claims = service_claims(ISS, service);
    claims["jti"] = jti.into();
    hs256(&claims)
}

/// The audit events logged so far, by the client's request id.
fn audit_events(gw: &GatewayProcess, client_request_id: &str) -> Vec<serde_json::Value> {
    gw.logs()
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|e| e["target"] == "audit" && e["client_request_id"] == client_request_id)
        .collect()
}

async fn explain(gw: &GatewayProcess, token: &str, request_id: &str) -> serde_json::Value {
    let form = serde_json::json!({
        "method": "GET",
        "target": "/internal/x",
        "token": token,
        "headers": format!("X-Request-Id: {request_id}"),
    });
    let request = http::Request::post(format!("http://{}/console/api/explain", gw.admin))
        .header("x-tollgate-console", "1")
        .body(Full::new(Bytes::from(form.to_string())))
        .unwrap();
    let reply = send(request).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()
}

async fn scrape(gw: &GatewayProcess) -> String {
    get(&format!("http://{}/metrics", gw.admin), &[])
        .await
        .text()
}

#[tokio::test]
async fn explaining_records_nothing_and_serving_records_once() {
    let upstream = MockUpstream::echo().await;
    let state = tempfile::tempdir().unwrap();
    let gw = GatewayProcess::spawn(&config(&upstream.url(), state.path()), &[]);
    let orders = token("orders", "orders-1");
    let forbidden = r#"tollgate_auth_decisions_total{route="internal",result="forbidden",token_type="service"}"#;
    let orders_forbidden =
        r#"tollgate_service_requests_total{service="orders",result="forbidden"}"#;

    let explained = explain(&gw, &orders, "explained-1").await;
    assert!(
        explained.to_string().contains("service not allowed"),
        "{explained}"
    );
    explain(&gw, "", "explained-2").await;
    // Give a stray event time to reach the log before looking for it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let metrics = scrape(&gw).await;
    assert_eq!(scrape_value(&metrics, forbidden), None, "{metrics}");
    assert_eq!(
        scrape_value(&metrics, orders_forbidden),
        Some(0.0),
        "{metrics}"
    );
    for id in ["explained-1", "explained-2"] {
        assert!(audit_events(&gw, id).is_empty(), "explain audited {id}");
    }
    assert_eq!(upstream.hits(), 0);

    let served = get(
        &gw.url("/internal/x"),
        &[
            ("authorization", &format!("Bearer {orders}")),
            ("x-request-id", "served-1"),
        ],
    )
    .await;
    assert_eq!(served.status, 403);
    let events = within(async {
        loop {
            let events = audit_events(&gw, "served-1");
            if !events.is_empty() {
                return events;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["decision"], "deny");
    assert_eq!(events[0]["service"], "orders");
    let metrics = scrape(&gw).await;
    assert_eq!(scrape_value(&metrics, forbidden), Some(1.0), "{metrics}");
    assert_eq!(
        scrape_value(&metrics, orders_forbidden),
        Some(1.0),
        "{metrics}"
    );
    assert_eq!(upstream.hits(), 0);
}

#[tokio::test]
async fn a_revoked_service_token_is_counted_and_audited_with_its_holder() {
    let upstream = MockUpstream::echo().await;
    let state = tempfile::tempdir().unwrap();
    let path = state.path().join("tollgate.toml");
    std::fs::write(
        &path,
        with_test_server(&config(&upstream.url(), state.path())),
    )
    .unwrap();
    let gw = GatewayProcess::spawn_with_path(&path, &[]);
    let billing = token("billing", "billing-revoked");
    let bearer = format!("Bearer {billing}");
    assert_eq!(
        get(&gw.url("/internal/x"), &[("authorization", &bearer)])
            .await
            .status,
        200
    );
    let revoke = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["token", "revoke", "billing-revoked", "--config"])
        .arg(&path)
        .env_remove("TOLLGATE_CONFIG")
        .output()
        .unwrap();
    assert!(revoke.status.success(), "{revoke:?}");
    within(async {
        loop {
            let status = get(
                &gw.url("/internal/x"),
                &[("authorization", &bearer), ("x-request-id", "revoked-1")],
            )
            .await
            .status;
            if status == 401 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    // Requests sent while the list was being picked up were allowed (and audited as such).
    let denied = within(async {
        loop {
            let events = audit_events(&gw, "revoked-1");
            if let Some(denied) = events.into_iter().find(|e| e["decision"] == "deny") {
                return denied;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert_eq!(denied["reason"], "token revoked");
    assert_eq!(denied["service"], "billing");
    let metrics = scrape(&gw).await;
    assert!(
        scrape_value(
            &metrics,
            r#"tollgate_service_requests_total{service="billing",result="revoked"}"#
        )
        .is_some_and(|n| n >= 1.0),
        "{metrics}"
    );
    // Not a token type: the refusal is an unauthenticated one, as for any invalid token.
    assert!(
        scrape_value(
            &metrics,
            r#"tollgate_auth_decisions_total{route="internal",result="invalid",token_type="none"}"#
        )
        .is_some_and(|n| n >= 1.0),
        "{metrics}"
    );
    assert!(upstream.hits() >= 1);
}
