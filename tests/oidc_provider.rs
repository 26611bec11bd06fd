//! A certified OpenID provider as the witness: `oidc-provider` from npm (tests/oidc/), started
//! on 127.0.0.1, minting client-credentials JWT access tokens. tollgate is configured with the
//! issuer URL and `discovery = true` only: it must find the key set from the provider's
//! discovery document, accept the provider's standard tokens (no tollgate `type` claim) as the
//! client's service identity, and enforce scopes and the audience.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use support::*;

const CLIENT: &str = "orders-service";
const CLIENT_SECRET: &str = "orders-secret-that-is-long-enough-0123456789";
const RESOURCE: &str = "https://api.example.test";

/// The provider process, killed on drop.
struct Provider {
    child: Child,
    issuer: String,
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `tests/oidc/provider.mjs`. Without Node or the installed package: `None` after saying
/// why, or a panic with `TOLLGATE_REQUIRE_OIDC=1` (as `.ci/run` sets after `npm ci`).
fn provider() -> Option<Provider> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oidc");
    let installed = dir.join("node_modules/oidc-provider").exists();
    let node = Command::new("node").arg("--version").output().is_ok();
    if !installed || !node {
        let why = "the OpenID provider is not installed (cd tests/oidc && npm ci; needs Node)";
        assert!(
            std::env::var("TOLLGATE_REQUIRE_OIDC").as_deref() != Ok("1"),
            "TOLLGATE_REQUIRE_OIDC=1 but {why}"
        );
        eprintln!("skipping: {why}; set TOLLGATE_REQUIRE_OIDC=1 to fail instead");
        return None;
    }
    let mut child = Command::new("node")
        .arg(dir.join("provider.mjs"))
        .arg("0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("node starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let issuer = line
        .trim()
        .strip_prefix("READY ")
        .unwrap_or_else(|| panic!("provider did not start: {line:?}"))
        .to_owned();
    Some(Provider { child, issuer })
}

/// The provider's answer to a client-credentials request with `form` (HTTP Basic client
/// authentication): its access token.
async fn client_credentials(provider: &Provider, form: String) -> String {
    use base64::Engine;
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT}:{CLIENT_SECRET}"));
    let request = http::Request::post(format!("{}/token", provider.issuer))
        .header("authorization", format!("Basic {basic}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(http_body_util::Full::new(bytes::Bytes::from(form)))
        .unwrap();
    let reply = send(request).await;
    assert_eq!(reply.status, 200, "token endpoint: {}", reply.text());
    reply.json()["access_token"].as_str().unwrap().to_owned()
}

/// A JWT access token for the resource, with `scope`.
async fn token(provider: &Provider, scope: &str) -> String {
    let form = format!("grant_type=client_credentials&resource={RESOURCE}&scope={scope}");
    client_credentials(provider, form).await
}

#[tokio::test]
async fn tokens_of_a_discovered_provider_are_verified_and_judged() {
    let Some(provider) = provider() else {
        return;
    };
    let upstream = MockUpstream::echo().await;
    let config = format!(
        r#"
[[issuers]]
name = "oidc"
issuer = "{issuer}"
discovery = true
audiences = ["{RESOURCE}"]
[[routes]]
prefix = "/orders"
upstream = "{up}"
policy = "service"
services = ["{CLIENT}"]
scopes = ["orders:read"]
[[routes]]
prefix = "/admin"
upstream = "{up}"
scopes = ["orders:write"]
"#,
        issuer = provider.issuer,
        up = upstream.url()
    );
    let gw = spawn_gateway(&config).await;
    let read = token(&provider, "orders:read").await;
    until_bearer_status(&gw, "/orders", &read, 200).await;
    let seen = upstream.last();
    assert_eq!(seen.headers["x-service-name"], CLIENT);
    assert_eq!(seen.headers["x-user-type"], "service");
    assert_eq!(seen.headers["x-user-issuer"], "oidc");
    assert!(seen.headers.get("authorization").is_none());

    // The same token lacks orders:write: 403 naming the scope, nothing forwarded.
    let hits = upstream.hits();
    let reply = get(
        &gw.url("/admin"),
        &[("authorization", &format!("Bearer {read}"))],
    )
    .await;
    assert_eq!(reply.status, 403);
    let challenge = reply.headers["www-authenticate"].to_str().unwrap();
    assert!(challenge.contains(r#"scope="orders:write""#), "{challenge}");
    assert_eq!(upstream.hits(), hits);
    let both = token(&provider, "orders:read%20orders:write").await;
    assert_eq!(bearer_status(&gw, "/admin", &both).await, 200);

    // A token with its signature altered, and one for another audience, are refused.
    let mut forged = read.clone();
    forged.pop();
    forged.push(if read.ends_with('A') { 'B' } else { 'A' });
    assert_eq!(bearer_status(&gw, "/orders", &forged).await, 401);
}

#[tokio::test]
async fn a_discovery_document_for_another_issuer_is_refused() {
    let Some(provider) = provider() else {
        return;
    };
    // "mixup" expects an issuer the document does not name (one trailing slash more): the
    // mix-up defence refuses the document, so its keys are never taken. "good" is the control.
    let config = format!(
        "[[issuers]]\nname = \"mixup\"\nissuer = \"{iss}/\"\n\
         discovery_url = \"{iss}/.well-known/openid-configuration\"\nservice_tokens = false\n\
         [[issuers]]\nname = \"good\"\nissuer = \"{iss}\"\ndiscovery = true\n\
         [[routes]]\nprefix = \"/\"\nupstream = \"echo\"\n",
        iss = provider.issuer
    );
    let gw = spawn_gateway(&config).await;
    let admin = gw.admin.expect("admin listener");
    let series = |name: &str, result: &str| {
        format!("tollgate_jwks_fetches_total{{name=\"{name}\",result=\"{result}\"}}")
    };
    within(async {
        loop {
            let metrics = get(&format!("http://{admin}/metrics"), &[]).await.text();
            let seen = |n, r| scrape_value(&metrics, &series(n, r)).unwrap_or(0.0) >= 1.0;
            if seen("mixup", "failure") && seen("good", "success") {
                assert!(!seen("mixup", "success"), "{metrics}");
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    })
    .await;
}

/// An opaque client-credentials token (no `resource`), as the provider mints it.
async fn opaque_token(provider: &Provider) -> String {
    let form = "grant_type=client_credentials&scope=orders:read".to_owned();
    let token = client_credentials(provider, form).await;
    assert_eq!(
        token.matches('.').count(),
        0,
        "expected an opaque token: {token}"
    );
    token
}

#[tokio::test]
async fn opaque_tokens_are_introspected_and_become_the_same_identity() {
    let Some(provider) = provider() else {
        return;
    };
    let upstream = MockUpstream::echo().await;
    let config = format!(
        r#"
[[issuers]]
name = "oidc"
issuer = "{issuer}"
discovery = true
introspection_url = "{issuer}/token/introspection"
introspection_client_id = "{CLIENT}"
introspection_client_secret = "{CLIENT_SECRET}"
[[routes]]
prefix = "/orders"
upstream = "{up}"
policy = "service"
scopes = ["orders:read"]
[[routes]]
prefix = "/admin"
upstream = "{up}"
scopes = ["orders:write"]
"#,
        issuer = provider.issuer,
        up = upstream.url()
    );
    let gw = spawn_gateway(&config).await;
    let opaque = opaque_token(&provider).await;
    assert_eq!(bearer_status(&gw, "/orders", &opaque).await, 200);
    let seen = upstream.last();
    assert_eq!(seen.headers["x-service-name"], CLIENT);
    assert_eq!(seen.headers["x-user-type"], "service");
    assert_eq!(seen.headers["x-user-issuer"], "oidc");
    let (status, reason) = bearer_status_and_reason(&gw.url("/admin"), &opaque).await;
    assert_eq!((status, reason.as_str()), (403, "insufficient scope"));
    // A token the provider never issued is inactive.
    let unknown = "x".repeat(43);
    let (status, reason) = bearer_status_and_reason(&gw.url("/orders"), &unknown).await;
    assert_eq!((status, reason.as_str()), (401, "token not active"));
}
