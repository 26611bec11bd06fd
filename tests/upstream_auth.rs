//! Upstream credentials over real sockets: a fake vendor auth API that counts logins, and a
//! vendor upstream that checks the bearer token it receives.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::StatusCode;
use support::*;

/// A vendor API that accepts any token the auth server issued, except those in `revoked`.
struct Vendor {
    upstream: MockUpstream,
    revoked: Arc<Mutex<Vec<String>>>,
    /// (time, Authorization) of each request.
    seen: Arc<Mutex<Vec<(Instant, String)>>>,
}

impl Vendor {
    async fn start() -> Self {
        let revoked = Arc::new(Mutex::new(Vec::<String>::new()));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (r, s) = (revoked.clone(), seen.clone());
        let upstream = MockUpstream::start(move |req| {
            let auth = req
                .headers
                .get("authorization")
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default();
            s.lock().unwrap().push((Instant::now(), auth.clone()));
            let ok = auth.starts_with("Bearer ") && !r.lock().unwrap().contains(&auth);
            async move {
                if ok {
                    json_response(StatusCode::OK, &serde_json::json!({"vendor": "ok"}))
                } else {
                    json_response(
                        StatusCode::UNAUTHORIZED,
                        &serde_json::json!({"vendor": "denied"}),
                    )
                }
            }
        })
        .await;
        Self {
            upstream,
            revoked,
            seen,
        }
    }

    fn authorizations(&self) -> Vec<String> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .map(|(_, a)| a.clone())
            .collect()
    }
}

/// A login provider and a public vendor route; `provider_extra` lines override the defaults.
fn config(auth: &AuthServer, vendor: &Vendor, provider_extra: &str) -> String {
    let defaults = [
        ("max_retries", "2"),
        ("timeout", "\"2s\""),
        ("failure_cooldown", "\"30s\""),
    ];
    let mut settings: Vec<String> = defaults
        .iter()
        .filter(|(key, _)| !provider_extra.contains(&format!("{key} =")))
        .map(|(key, value)| format!("{key} = {value}"))
        .collect();
    settings.push(provider_extra.to_owned());
    let provider_extra = settings.join("\n");
    format!(
        r#"
[[providers]]
name = "vendor"
kind = "login"
auth_url = "{}"
email = "svc@example.com"
password = "hunter2-vendor-password"
{provider_extra}

[[routes]]
prefix = "/vendor"
upstream = "{}"
strip_prefix = true
policy = "public"
upstream_auth = "vendor"
"#,
        auth.url(),
        vendor.upstream.url()
    )
}

#[tokio::test]
async fn every_response_shape_and_fallback_field() {
    for field in ["accessToken", "access_token", "token", "authToken"] {
        let auth = AuthServer::start(AuthReply::Field(field)).await;
        let vendor = Vendor::start().await;
        let gw = spawn_gateway(&config(&auth, &vendor, "")).await;
        let reply = get(&gw.url("/vendor/items"), &[]).await;
        assert_eq!(reply.status, StatusCode::OK, "{field}");
        assert_eq!(vendor.authorizations(), ["Bearer tok-1"], "{field}");
        assert_eq!(vendor.upstream.last().uri, "/items");
        let login = auth.upstream.last();
        assert_eq!(login.method, "POST");
        assert_eq!(login.headers["content-type"], "application/json");
    }
    let failures = [
        (
            AuthReply::BodyStatus(400),
            "auth API answered statusCode 400 in its body",
        ),
        (
            AuthReply::NoToken,
            "auth API response has no token (looked for accessToken, access_token, token, authToken)",
        ),
        (
            AuthReply::Status(500),
            "auth API answered status 500 Internal Server Error",
        ),
        (AuthReply::Garbage, "auth API answered an invalid body"),
    ];
    for (reply_kind, reason) in failures {
        let auth = AuthServer::start(reply_kind.clone()).await;
        let vendor = Vendor::start().await;
        let gw = spawn_gateway(&config(&auth, &vendor, "max_retries = 0")).await;
        let reply = get(&gw.url("/vendor/items"), &[]).await;
        assert_eq!(
            reply.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{reply_kind:?}"
        );
        let body = reply.json();
        assert_eq!(body["error"], "upstream credentials unavailable");
        assert!(
            body["reason"].as_str().unwrap().starts_with(reason),
            "{reply_kind:?}: {body}"
        );
        assert!(body["request_id"].is_string());
        assert_eq!(
            vendor.upstream.hits(),
            0,
            "the vendor was called without a token"
        );
    }
}

#[tokio::test]
async fn configured_from_the_api_auth_environment_variables() {
    let auth = AuthServer::start(AuthReply::Field("accessToken")).await;
    let vendor = Vendor::start().await;
    let toml = format!(
        "[[providers]]\nname = \"vendor\"\nkind = \"login\"\n\n[[routes]]\nprefix = \"/vendor\"\nupstream = \"{}\"\npolicy = \"public\"\nupstream_auth = \"vendor\"\n",
        vendor.upstream.url()
    );
    let url = auth.url();
    let env = [
        ("API_AUTH_URL", url.as_str()),
        ("API_AUTH_EMAIL", "env@example.com"),
        ("API_AUTH_PASSWORD", "env-password"),
        ("API_EXECUTOR_TIMEOUT", "7"),
        ("API_EXECUTOR_MAX_RETRIES", "1"),
    ];
    let config = tollgate::Config::from_toml(
        &with_test_server(&toml),
        "t.toml",
        &tollgate::Env::from_map(env),
    )
    .unwrap();
    assert_eq!(config.providers[0].timeout, Duration::from_secs(7));
    assert_eq!(config.providers[0].max_retries, 1);
    let gw = spawn_gateway_with_env(&with_test_server(&toml), &env).await;
    assert_eq!(get(&gw.url("/vendor/x"), &[]).await.status, StatusCode::OK);
    // The login carried the credentials from the environment.
    assert_eq!(auth.logins(), 1);

    let missing = tollgate::Config::from_toml(
        &with_test_server(&toml),
        "t.toml",
        &tollgate::Env::from_map([("API_AUTH_URL", url.as_str()), ("API_AUTH_EMAIL", "e@x")]),
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        missing,
        "t.toml: providers[0].password: not set, and environment variable API_AUTH_PASSWORD is not set"
    );
}

#[tokio::test]
async fn login_body_uses_configured_field_names() {
    // An auth server that echoes the login body's keys back as the token, to check the body.
    let seen = Arc::new(Mutex::new(String::new()));
    let s = seen.clone();
    let auth = MockUpstream::start(move |r| {
        s.lock().unwrap().push_str(&format!("{}", r.body_len));
        async { json_response(StatusCode::OK, &serde_json::json!({"accessToken": "t"})) }
    })
    .await;
    let vendor = Vendor::start().await;
    let toml = format!(
        "[[providers]]\nname = \"vendor\"\nkind = \"login\"\nauth_url = \"{}/login\"\nemail = \"a@b.c\"\npassword = \"pw\"\nemail_field = \"username\"\npassword_field = \"pass\"\n[[routes]]\nprefix = \"/v\"\nupstream = \"{}\"\npolicy = \"public\"\nupstream_auth = \"vendor\"\n",
        auth.url(),
        vendor.upstream.url()
    );
    let gw = spawn_gateway(&toml).await;
    assert_eq!(get(&gw.url("/v/x"), &[]).await.status, StatusCode::OK);
    // {"username":"a@b.c","pass":"pw"} is 32 bytes; {"email":"a@b.c","password":"pw"} is 34.
    assert_eq!(*seen.lock().unwrap(), "32");
}

#[tokio::test]
async fn two_hundred_concurrent_requests_cause_one_login() {
    let auth = AuthServer::start(AuthReply::Field("accessToken")).await;
    auth.set_delay(Duration::from_millis(300));
    let vendor = Vendor::start().await;
    let gw = spawn_gateway(&config(&auth, &vendor, "")).await;
    let client = client();
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let url = gw.url(&format!("/vendor/item/{i}"));
            let client = client.clone();
            tokio::spawn(async move {
                let request = http::Request::get(url)
                    .body(http_body_util::Full::new(bytes::Bytes::new()))
                    .unwrap();
                send_with(&client, request).await.status
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(within(task).await.unwrap(), StatusCode::OK);
    }
    assert_eq!(auth.logins(), 1);
    assert_eq!(vendor.upstream.hits(), 200);
}

#[tokio::test]
async fn near_expiry_tokens_are_refreshed_in_the_background_without_errors() {
    // Tokens live 4 s and are refreshed 2 s before expiry; the second login is slow.
    let auth = AuthServer::start(AuthReply::ShortLived(4)).await;
    let vendor = Vendor::start().await;
    let gw = spawn_gateway(&config(&auth, &vendor, "refresh_before = \"3s\"")).await;
    assert_eq!(
        get(&gw.url("/vendor/warm"), &[]).await.status,
        StatusCode::OK
    );
    auth.set_delay(Duration::from_millis(800));

    let deadline = Instant::now() + Duration::from_millis(3500);
    let mut statuses = Vec::new();
    while Instant::now() < deadline {
        statuses.push(get(&gw.url("/vendor/x"), &[]).await.status);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        statuses.iter().all(|s| *s == StatusCode::OK),
        "errors during the rollover"
    );
    assert!(auth.logins() >= 2, "no refresh happened");

    // Requests kept flowing while the slow refresh was in flight: none waited for it.
    let windows = auth.windows.lock().unwrap().clone();
    let (start, end) = windows[1];
    let seen = vendor.seen.lock().unwrap().clone();
    let during = seen.iter().filter(|(t, _)| *t > start && *t < end).count();
    assert!(
        during >= 3,
        "only {during} requests were served during the refresh"
    );
    let tokens: std::collections::HashSet<_> = vendor.authorizations().into_iter().collect();
    assert!(tokens.len() >= 2, "the new token was never used");
}

#[tokio::test]
async fn failing_auth_api_gives_503_with_bounded_retries() {
    let auth = AuthServer::start(AuthReply::Status(500)).await;
    let vendor = Vendor::start().await;
    let gw = spawn_gateway(&config(&auth, &vendor, "")).await;
    let reply = get(&gw.url("/vendor/x"), &[]).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(auth.logins(), 3, "one attempt and max_retries = 2 retries");
    // Within the cooldown, the dead auth API is not hammered: fast 503s, no new login.
    for _ in 0..20 {
        assert_eq!(
            get(&gw.url("/vendor/x"), &[]).await.status,
            StatusCode::SERVICE_UNAVAILABLE
        );
    }
    assert_eq!(auth.logins(), 3);
    assert_eq!(vendor.upstream.hits(), 0);
}

/// Refused credentials are refused again: repeating them only risks locking the vendor account.
/// What can pass on a retry (the vendor's 5xx, 429) is retried `max_retries` (2) times.
#[tokio::test]
async fn refused_credentials_are_not_retried_but_vendor_trouble_is() {
    let cases = [
        (AuthReply::Status(401), 1),
        (AuthReply::Status(403), 1),
        (AuthReply::BodyStatus(401), 1),
        (AuthReply::Status(429), 3),
        (AuthReply::Status(503), 3),
    ];
    for (reply, attempts) in cases {
        let shown = format!("{reply:?}");
        let auth = AuthServer::start(reply).await;
        let vendor = Vendor::start().await;
        let gw = spawn_gateway(&config(&auth, &vendor, "")).await;
        let reply = get(&gw.url("/vendor/x"), &[]).await;
        assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{shown}");
        assert_eq!(auth.logins(), attempts, "{shown}");
        gw.stop().await;
    }
}

#[tokio::test]
async fn auth_api_recovers_after_the_cooldown() {
    let auth = AuthServer::start(AuthReply::Status(503)).await;
    let vendor = Vendor::start().await;
    let gw = spawn_gateway(&config(
        &auth,
        &vendor,
        "failure_cooldown = \"300ms\"\nmax_retries = 0",
    ))
    .await;
    assert_eq!(
        get(&gw.url("/vendor/x"), &[]).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    auth.set(AuthReply::Field("accessToken"));
    within(async {
        while get(&gw.url("/vendor/x"), &[]).await.status != StatusCode::OK {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
}

#[tokio::test]
async fn vendor_401_leads_to_one_relogin_and_one_retry() {
    let auth = AuthServer::start(AuthReply::Field("accessToken")).await;
    let vendor = Vendor::start().await;
    // No relogin_interval: each 401 here may log in again (the interval has its own test).
    let gw = spawn_gateway(&config(&auth, &vendor, "relogin_interval = \"0s\"")).await;
    assert_eq!(get(&gw.url("/vendor/a"), &[]).await.status, StatusCode::OK);

    // The vendor revokes the cached token: the POST is replayed once with a new one.
    vendor.revoked.lock().unwrap().push("Bearer tok-1".into());
    let request = http::Request::post(gw.url("/vendor/b"))
        .body(http_body_util::Full::new(bytes::Bytes::from_static(
            b"{\"order\":1}",
        )))
        .unwrap();
    let reply = send(request).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(auth.logins(), 2);
    assert_eq!(
        vendor.authorizations(),
        ["Bearer tok-1", "Bearer tok-1", "Bearer tok-2"]
    );
    assert_eq!(
        vendor.upstream.last().body_len,
        11,
        "the replayed body is complete"
    );

    // A vendor that refuses every token: one retry, then its 401 goes back to the client.
    for n in 2..10 {
        vendor
            .revoked
            .lock()
            .unwrap()
            .push(format!("Bearer tok-{n}"));
    }
    let before = vendor.upstream.hits();
    let reply = get(&gw.url("/vendor/c"), &[]).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        vendor.upstream.hits() - before,
        2,
        "never more than one retry"
    );
}

#[tokio::test]
async fn vendor_401s_within_the_relogin_interval_cause_at_most_one_login() {
    let auth = AuthServer::start(AuthReply::Field("accessToken")).await;
    let vendor = Vendor::start().await;
    let gw = spawn_gateway(&config(&auth, &vendor, "")).await;
    assert_eq!(get(&gw.url("/vendor/a"), &[]).await.status, StatusCode::OK);
    assert_eq!(auth.logins(), 1);
    // The vendor refuses every token from now on (a locked account, a revoked client).
    for n in 1..50 {
        vendor
            .revoked
            .lock()
            .unwrap()
            .push(format!("Bearer tok-{n}"));
    }
    // 15 callers, some at once and some after: the vendor's 401 reaches each of them.
    let first: Vec<_> = (0..10)
        .map(|i| {
            let url = gw.url(&format!("/vendor/burst-{i}"));
            tokio::spawn(async move { get(&url, &[]).await.status })
        })
        .collect();
    for task in first {
        assert_eq!(within(task).await.unwrap(), StatusCode::UNAUTHORIZED);
    }
    for i in 0..5 {
        let reply = get(&gw.url(&format!("/vendor/later-{i}")), &[]).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        auth.logins(),
        2,
        "one initial login and at most one re-login"
    );
    let metrics = get(&format!("http://{}/metrics", gw.admin.unwrap()), &[])
        .await
        .text();
    let series = |name: &str| scrape_value(&metrics, name).unwrap_or(0.0);
    assert_eq!(
        series(
            "tollgate_upstream_login_reasons_total{provider=\"vendor\",reason=\"rejected_by_upstream\"}"
        ),
        1.0,
        "{metrics}"
    );
    assert_eq!(
        series("tollgate_upstream_login_reasons_total{provider=\"vendor\",reason=\"initial\"}"),
        1.0
    );
    assert!(
        // At least the five later callers, who carried the re-login's token.
        series("tollgate_upstream_logins_suppressed_total{provider=\"vendor\"}") >= 5.0,
        "{metrics}"
    );
}

#[tokio::test]
async fn vendor_lifetimes_that_are_no_time_are_failed_logins_not_panics() {
    for (reply, reason) in [
        (
            AuthReply::JwtPayload(r#"{"exp": 1e300}"#),
            "the token's exp is not a usable time",
        ),
        (
            AuthReply::With(r#""expires_in": 18446744073709551615"#),
            "expires_in is not a usable time",
        ),
        (
            AuthReply::JwtPayload(r#"{"exp": 1000}"#),
            "token already expired when received",
        ),
    ] {
        let auth = AuthServer::start(reply).await;
        let vendor = Vendor::start().await;
        let gw = spawn_gateway(&config(&auth, &vendor, "max_retries = 0")).await;
        // 20 at once: one login (single flight), its failure remembered for the cooldown.
        let tasks: Vec<_> = (0..20)
            .map(|i| {
                let url = gw.url(&format!("/vendor/{i}"));
                tokio::spawn(async move { get(&url, &[]).await })
            })
            .collect();
        for task in tasks {
            let reply = within(task).await.unwrap();
            assert_eq!(
                reply.status,
                StatusCode::SERVICE_UNAVAILABLE,
                "{}",
                reply.text()
            );
            assert!(
                reply.json()["reason"].as_str().unwrap().ends_with(reason),
                "{}",
                reply.text()
            );
        }
        assert_eq!(auth.logins(), 1, "{reason}");
        assert_eq!(vendor.upstream.hits(), 0);
    }
}

#[tokio::test]
async fn callers_authorization_never_reaches_the_vendor() {
    let auth = AuthServer::start(AuthReply::Field("accessToken")).await;
    let vendor = Vendor::start().await;
    let toml = format!(
        r#"
[[issuers]]
issuer = "tollgate"
algorithms = ["HS256"]
secret = "{SECRET}"
{}
"#,
        config(&auth, &vendor, "").replace("policy = \"public\"", "policy = \"service\"")
    );
    let gw = spawn_gateway(&toml).await;
    let internal = hs256(&service_claims("tollgate", "orders"));
    let reply = get(
        &gw.url("/vendor/x"),
        &[("authorization", &format!("Bearer {internal}"))],
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK);
    let seen = vendor.upstream.last().headers;
    assert_eq!(seen.get_all("authorization").iter().count(), 1);
    assert_eq!(seen["authorization"], "Bearer tok-1");
    // The vendor is a third party: no internal identity by default (tests/vendor_routes.rs).
    assert!(seen.get("x-service-name").is_none(), "{seen:?}");
    assert!(!format!("{seen:?}").contains(&internal));
    // Without a service token the vendor is never called.
    assert_eq!(
        get(&gw.url("/vendor/x"), &[]).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(vendor.upstream.hits(), 1);
}

#[tokio::test]
async fn no_secret_appears_in_any_log_line() {
    let auth = AuthServer::start(AuthReply::Field("accessToken")).await;
    let vendor = Vendor::start().await;
    let toml = format!(
        "[[providers]]\nname = \"vendor\"\nkind = \"login\"\nmax_retries = 0\nfailure_cooldown = \"0s\"\nrelogin_interval = \"0s\"\n\n[[routes]]\nprefix = \"/vendor\"\nupstream = \"{}\"\npolicy = \"public\"\nupstream_auth = \"vendor\"\n",
        vendor.upstream.url()
    );
    let url = auth.url();
    let gw = GatewayProcess::spawn(
        &toml,
        &[
            ("API_AUTH_URL", url.as_str()),
            ("API_AUTH_EMAIL", "logs@example.com"),
            ("API_AUTH_PASSWORD", "pw-that-must-not-leak"),
            ("RUST_LOG", "debug"),
        ],
    );
    assert_eq!(get(&gw.url("/vendor/x"), &[]).await.status, StatusCode::OK);
    vendor.revoked.lock().unwrap().push("Bearer tok-1".into());
    assert_eq!(get(&gw.url("/vendor/y"), &[]).await.status, StatusCode::OK);
    auth.set(AuthReply::Status(500));
    vendor.revoked.lock().unwrap().push("Bearer tok-2".into());
    assert_eq!(
        get(&gw.url("/vendor/z"), &[]).await.status,
        StatusCode::SERVICE_UNAVAILABLE
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let logs = gw.logs();
    assert!(
        logs.iter().any(|l| l.contains("fetched upstream token")),
        "lifecycle is logged"
    );
    assert!(
        logs.iter().any(|l| l.contains("auth API error")),
        "errors are logged"
    );
    for line in &logs {
        for secret in ["pw-that-must-not-leak", "tok-1", "tok-2", "tok-3"] {
            assert!(!line.contains(secret), "{secret} in log line: {line}");
        }
    }
}

#[tokio::test]
async fn the_vendor_example_config_works_from_environment_variables_alone() {
    let auth = AuthServer::start(AuthReply::Field("accessToken")).await;
    let vendor = Vendor::start().await;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/examples/vendor.toml");
    let (auth_url, vendor_url) = (auth.url(), vendor.upstream.url());
    let env = [
        ("VENDOR_API_URL", vendor_url.as_str()),
        ("API_AUTH_URL", auth_url.as_str()),
        ("API_AUTH_EMAIL", "svc@example.com"),
        ("API_AUTH_PASSWORD", "example-password"),
    ];
    let missing = tollgate::Config::load(&path, &tollgate::Env::from_map(env[..3].iter().copied()))
        .unwrap_err()
        .to_string();
    assert!(
        missing.ends_with(
            "providers[0].password: not set, and environment variable API_AUTH_PASSWORD is not set"
        ),
        "{missing}"
    );

    let mut config = tollgate::Config::load(&path, &tollgate::Env::from_map(env)).unwrap();
    // Beside the quick-start gateway (8080/9901) by default, and the container's listen
    // variables move it.
    assert_eq!(config.listen, vec!["127.0.0.1:8090".parse().unwrap()]);
    assert_eq!(config.admin_listen, Some("127.0.0.1:9902".parse().unwrap()));
    let mut container = env.to_vec();
    container.push(("TOLLGATE_LISTEN", "0.0.0.0:8080"));
    container.push((
        "TOLLGATE_JWT_SECRET",
        "a-real-secret-of-at-least-thirty-two-bytes",
    ));
    let moved = tollgate::Config::load(&path, &tollgate::Env::from_map(container)).unwrap();
    assert_eq!(moved.listen, vec!["0.0.0.0:8080".parse().unwrap()]);
    config.listen = vec!["127.0.0.1:0".parse().unwrap()];
    config.admin_listen = None;
    let running = tollgate::start(config).await.unwrap();
    let url = format!("http://{}/vendor/v1/items", running.data_addrs[0]);
    let token = mint(
        &service_claims("tollgate", "orders"),
        jsonwebtoken::Algorithm::HS256,
        "",
        None,
    );
    // The example's issuer uses the development secret when TOLLGATE_JWT_SECRET is unset.
    let dev_token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &service_claims("tollgate", "orders"),
        &jsonwebtoken::EncodingKey::from_secret(tollgate::config::DEVELOPMENT_SECRET.as_bytes()),
    )
    .unwrap();
    assert_eq!(
        get(&url, &[("authorization", &format!("Bearer {token}"))])
            .await
            .status,
        StatusCode::UNAUTHORIZED
    );
    let reply = get(&url, &[("authorization", &format!("Bearer {dev_token}"))]).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(vendor.upstream.last().uri, "/v1/items", "prefix stripped");
    assert_eq!(vendor.authorizations(), ["Bearer tok-1"]);
    let user = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &access_claims("tollgate", "alice"),
        &jsonwebtoken::EncodingKey::from_secret(tollgate::config::DEVELOPMENT_SECRET.as_bytes()),
    )
    .unwrap();
    assert_eq!(
        get(&url, &[("authorization", &format!("Bearer {user}"))])
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    running.shutdown();
}
