//! The admin console in a real browser: headless Chromium driven by Selenium against a running
//! gateway with traffic, every panel populated, the explain form answered, no secret in the
//! page or its API answers; and the console's gates (off by default, the admin credential, the
//! explain form's CSRF header) over real HTTP.

mod support;

use std::process::Command;

use jsonwebtoken::Algorithm::RS256;
use support::recording::RecordingUpstream;
use support::*;

const ADMIN_TOKEN: &str = "console-admin-token-0123456789";
const VENDOR_PASSWORD: &str = "vendor-password-never-shown";

fn config(upstream: &str, jwks: &JwksServer, auth: &AuthServer, state: &std::path::Path) -> String {
    format!(
        r#"
[admin]
console = true
token = "{ADMIN_TOKEN}"

[[issuers]]
name = "internal"
issuer = "tollgate"
algorithms = ["HS256"]
secret = "{SECRET}"

[[issuers]]
name = "idp"
issuer = "idp"
algorithms = ["RS256"]
jwks_url = "{}"

[tokens]
issuer = "tollgate"
services = ["billing", "orders", "ledger"]

[state]
path = "{}"
usage_flush_interval = "200ms"

[[providers]]
name = "vendor"
kind = "login"
auth_url = "{}"
email = "svc@example.com"
password = "{VENDOR_PASSWORD}"

[[routes]]
prefix = "/internal"
upstream = "{upstream}"
policy = "service"
services = ["billing"]

[[routes]]
name = "quarterly-finance-reports"
prefix = "/reports/quarterly/finance"
host = "reports.internal.example.com"
upstream = "{upstream}/api/v2/reports-service/quarterly/finance"
policy = "service"
services = ["billing", "orders", "ledger"]

[[routes]]
prefix = "/limited"
upstream = "echo"
policy = "public"
rate_limit = {{ rate = "1/h", by = "client_ip" }}

[[routes]]
prefix = "/vendor"
upstream = "{upstream}"
policy = "public"
upstream_auth = "vendor"
"#,
        jwks.url(),
        state.join("revocations.json").display(),
        auth.url(),
    )
}

/// Chromium, chromedriver and Selenium, or why not (a panic when `TOLLGATE_REQUIRE_BROWSER=1`).
fn browser_available() -> bool {
    let missing: Vec<&str> = [
        ("/usr/bin/chromium", "chromium"),
        ("/usr/bin/chromedriver", "chromium-driver"),
    ]
    .into_iter()
    .filter(|(path, _)| !std::path::Path::new(path).exists())
    .map(|(_, package)| package)
    .collect();
    if !missing.is_empty() {
        assert!(
            std::env::var("TOLLGATE_REQUIRE_BROWSER").as_deref() != Ok("1"),
            "TOLLGATE_REQUIRE_BROWSER=1 but {missing:?} is not installed (apt-get install chromium chromium-driver)"
        );
        eprintln!(
            "skipping: {missing:?} not installed (apt-get install chromium chromium-driver); set TOLLGATE_REQUIRE_BROWSER=1 to fail instead"
        );
        return false;
    }
    support::python::has_module("selenium", "selenium")
}

#[tokio::test]
async fn the_console_shows_every_panel_in_chromium_and_no_secret() {
    if !browser_available() {
        return;
    }
    let upstream = RecordingUpstream::start().await;
    let jwks = JwksServer::start(Some(&[("k1", "rsa.key", RS256)])).await;
    let auth = AuthServer::start(AuthReply::Field("accessToken")).await;
    let state = tempfile::tempdir().unwrap();
    let gw = GatewayProcess::spawn(&config(&upstream.url(), &jwks, &auth, state.path()), &[]);
    let billing = hs256(&service_claims("tollgate", "billing"));
    let mut orders_claims = service_claims("tollgate", "orders");
    orders_claims["jti"] = "orders-1".into();
    let orders = hs256(&orders_claims);
    // Traffic: allowed, refused by policy, refused for no token, a vendor route.
    let traffic = |n: usize| {
        let url = gw.url("/internal/x");
        let vendor = gw.url("/vendor/x");
        let nowhere = gw.url("/nowhere");
        let limited = gw.url("/limited/x");
        let (billing, orders) = (billing.clone(), orders.clone());
        async move {
            for _ in 0..n {
                assert_eq!(
                    get(&url, &[("authorization", &format!("Bearer {billing}"))])
                        .await
                        .status,
                    200
                );
                assert_eq!(
                    get(&url, &[("authorization", &format!("Bearer {orders}"))])
                        .await
                        .status,
                    403
                );
                assert_eq!(get(&url, &[]).await.status, 401);
                assert_eq!(get(&vendor, &[]).await.status, 200);
                assert_eq!(get(&nowhere, &[]).await.status, 404);
                let _ = get(&limited, &[]).await;
            }
        }
    };
    traffic(5).await;
    // Keep traffic flowing while the browser samples the rate, however long Chromium takes to
    // start on a loaded machine: a fixed number of requests could end before the first sample.
    let background = tokio::spawn(traffic(usize::MAX));

    let screenshots = std::env::var("TOLLGATE_SCREENSHOTS").ok();
    let input = serde_json::json!({
        "url": format!("http://{}", gw.admin),
        "token": ADMIN_TOKEN,
        "explain_token": orders,
        "secrets": [billing, orders, ADMIN_TOKEN, VENDOR_PASSWORD, "tok-1", SECRET],
        "screenshots": screenshots,
    });
    let script = std::fs::read_to_string(format!(
        "{}/tests/console_browser.py",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let output = tokio::task::spawn_blocking(move || {
        support::python::run(&script, input.to_string().as_bytes())
    })
    .await
    .unwrap();
    background.abort();
    let report: serde_json::Value = serde_json::from_str(output.trim()).unwrap();
    assert_eq!(
        report["verdict"], "refused: 403 forbidden (service not allowed)",
        "{report}"
    );
    let tokens = report["tokens"].to_string();
    assert!(
        tokens.contains("ledger") && tokens.contains("never"),
        "{tokens}"
    );
    let header = report["traffic_header"].to_string();
    assert!(
        header.contains("allowed since start") && header.contains("refused since start"),
        "{header}"
    );
    let steps = report["explain_steps"].to_string();
    assert!(steps.contains("service not allowed"), "{steps}");
    assert_eq!(
        report["checked_for_secrets"].as_array().unwrap().len(),
        5,
        "{report}"
    );
}

#[tokio::test]
async fn the_console_is_off_by_default_and_gated_when_on() {
    let upstream = RecordingUpstream::start().await;
    let off = GatewayProcess::spawn(&public_route("/", &upstream.url(), ""), &[]);
    let reply = get(&format!("http://{}/console", off.admin), &[]).await;
    assert_eq!(reply.status, 404, "off unless [admin] console = true");

    let jwks = JwksServer::start(Some(&[("k1", "rsa.key", RS256)])).await;
    let auth = AuthServer::start(AuthReply::Field("accessToken")).await;
    let state = tempfile::tempdir().unwrap();
    let on = GatewayProcess::spawn(&config(&upstream.url(), &jwks, &auth, state.path()), &[]);
    let url = |path: &str| format!("http://{}{path}", on.admin);
    use base64::Engine;
    let basic = |secret: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("admin:{secret}"))
        )
    };
    let reply = get(&url("/console/api/overview"), &[]).await;
    assert_eq!(reply.status, 401);
    assert!(
        reply.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic ")
    );
    let wrong = get(
        &url("/console/api/overview"),
        &[("authorization", &basic("console-admin-token-012345678X"))],
    )
    .await;
    assert_eq!(wrong.status, 401);
    let page = get(&url("/console"), &[("authorization", &basic(ADMIN_TOKEN))]).await;
    assert_eq!(page.status, 200);
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(page.headers["cache-control"], "no-store");
    // The explain form's POST needs the console's own header: a cross-site form cannot send it.
    let request = http::Request::post(url("/console/api/explain"))
        .header("authorization", basic(ADMIN_TOKEN))
        .body(http_body_util::Full::new(bytes::Bytes::from_static(
            b"{\"target\":\"/\"}",
        )))
        .unwrap();
    assert_eq!(send(request).await.status, 403);

    // A console on a non-loopback admin address without a credential is refused at load.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.toml");
    std::fs::write(
        &path,
        "[server]\nadmin_listen = \"0.0.0.0:9901\"\n[admin]\nconsole = true\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["check", "--config"])
        .arg(&path)
        .env_remove("TOLLGATE_CONFIG")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(
            "admin.token: required when the console is on and server.admin_listen is not loopback"
        ),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
