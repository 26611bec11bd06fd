//! The auth core as a tower Layer: every token kind under every policy in-process
//! (`ServiceExt::oneshot`, no socket), spoofed identity headers, JWKS rotation, the refresher's
//! end with the last clone, refusals identical to the gateway binary's, and the axum example
//! served on a real socket answering as its documentation says.
#![cfg(feature = "layer")]

mod support;

#[allow(dead_code)]
#[path = "../crates/auth/examples/axum_service.rs"]
mod example;

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use jsonwebtoken::Algorithm::RS256;
use support::*;
use tollgate::auth::layer::{AuthLayer, Policy};
use tollgate::identity::Identity;
use tower::{Layer, ServiceExt};

const ISSUERS: &str = r#"
[[issuers]]
issuer = "tollgate"
algorithms = ["HS256"]
secret = "test-secret-that-is-long-enough-for-hs256!"
"#;

/// What the wrapped service saw: its headers and the typed identity.
type Seen = Arc<Mutex<Option<(http::HeaderMap, Option<Identity>, String)>>>;

/// Sends one request through `layer` around a service that records what it received.
async fn through(
    layer: &AuthLayer,
    request: Request<Full<Bytes>>,
) -> (StatusCode, http::HeaderMap, serde_json::Value, Seen) {
    let seen: Seen = Arc::new(Mutex::new(None));
    let record = seen.clone();
    let inner = tower::service_fn(move |request: Request<Full<Bytes>>| {
        let record = record.clone();
        async move {
            *record.lock().unwrap() = Some((
                request.headers().clone(),
                request.extensions().get::<Identity>().cloned(),
                request.uri().to_string(),
            ));
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"{}"))))
        }
    });
    let response = layer.layer(inner).oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    (parts.status, parts.headers, json, seen)
}

fn get_with(path: &str, headers: &[(&str, &str)]) -> Request<Full<Bytes>> {
    let mut request = Request::get(path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.body(Full::new(Bytes::new())).unwrap()
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[tokio::test]
async fn every_token_kind_under_every_policy() {
    let auth = AuthLayer::from_toml(ISSUERS).unwrap();
    let user = hs256(&access_claims("tollgate", "u1"));
    let mut admin_claims = access_claims("tollgate", "u2");
    admin_claims["role"] = "admin".into();
    let admin = hs256(&admin_claims);
    let billing = hs256(&service_claims("tollgate", "billing"));
    let orders = hs256(&service_claims("tollgate", "orders"));
    let mut expired_claims = access_claims("tollgate", "u1");
    expired_claims["exp"] = (now() - 3600).into();
    let expired = hs256(&expired_claims);
    let policies = [
        ("public", Policy::public()),
        ("authenticated", Policy::authenticated()),
        ("access", Policy::access()),
        ("service billing", Policy::service(["billing"])),
        ("access admin", Policy::access().roles(["admin"])),
    ];
    let tokens = [
        ("none", None),
        ("user", Some(user.as_str())),
        ("admin", Some(admin.as_str())),
        ("billing", Some(billing.as_str())),
        ("orders", Some(orders.as_str())),
        ("expired", Some(expired.as_str())),
        ("garbage", Some("not.a.token")),
    ];
    // Status and reason for each (policy, token); "" = allowed, the reason otherwise.
    let expected = [
        ["", "", "", "", "", "", ""],
        [
            "token missing",
            "",
            "",
            "",
            "",
            "token expired",
            "malformed token",
        ],
        [
            "token missing",
            "",
            "",
            "user access token required",
            "user access token required",
            "token expired",
            "malformed token",
        ],
        [
            "token missing",
            "service token required",
            "service token required",
            "",
            "service not allowed",
            "token expired",
            "malformed token",
        ],
        [
            "token missing",
            "role not allowed",
            "",
            "user access token required",
            "user access token required",
            "token expired",
            "malformed token",
        ],
    ];
    for ((name, policy), row) in policies.into_iter().zip(expected) {
        let layer = auth.with(policy);
        for ((token_name, token), want) in tokens.iter().zip(row) {
            let header = token.map(bearer);
            let headers: Vec<(&str, &str)> = header
                .as_deref()
                .map(|h| vec![("authorization", h)])
                .unwrap_or_default();
            let (status, response_headers, json, seen) =
                through(&layer, get_with("/x", &headers)).await;
            let case = format!("{name} × {token_name}");
            if want.is_empty() {
                assert_eq!(status, 200, "{case}: {json}");
                let (headers, identity, _) = seen.lock().unwrap().clone().unwrap();
                assert!(
                    headers.get("authorization").is_none(),
                    "{case}: credentials removed"
                );
                let valid = matches!(*token_name, "user" | "admin" | "billing" | "orders");
                assert_eq!(identity.is_some(), valid, "{case}");
                assert_eq!(headers.contains_key("x-user-id"), valid, "{case}");
            } else {
                let status_wanted = if want.contains("required") || want.contains("allowed") {
                    403
                } else {
                    401
                };
                assert_eq!(status, status_wanted, "{case}: {json}");
                assert_eq!(json["reason"], want, "{case}");
                assert!(response_headers.contains_key("www-authenticate"), "{case}");
                assert!(
                    seen.lock().unwrap().is_none(),
                    "{case}: the service was not called"
                );
            }
        }
    }
}

#[tokio::test]
async fn spoofed_identity_headers_never_reach_the_service_and_tokens_leave_the_query() {
    let auth = AuthLayer::from_toml(&format!("{ISSUERS}from_query = \"access_token\"\n")).unwrap();
    let spoof = [
        ("x-user-id", "admin"),
        ("X_User_Type", "service"),
        ("x-service-name", "billing"),
        ("x-tenant-id", "t-other"),
    ];
    // Public route, no token: every spoofed header is gone and nothing replaces them.
    let (status, _, _, seen) = through(&auth.with(Policy::public()), get_with("/x", &spoof)).await;
    assert_eq!(status, 200);
    let (headers, identity, _) = seen.lock().unwrap().clone().unwrap();
    assert!(identity.is_none());
    for (name, _) in spoof {
        assert!(
            !headers.contains_key(name.to_ascii_lowercase().replace('_', "-").as_str()),
            "{name}"
        );
    }
    assert!(!headers.contains_key("x_user_type"));
    // With a token in the query: the verified identity replaces them and the token is gone.
    let token = hs256(&access_claims("tollgate", "u1"));
    let (status, _, _, seen) = through(
        &auth.with(Policy::access()),
        get_with(&format!("/x?a=1&access_token={token}&b=2"), &spoof),
    )
    .await;
    assert_eq!(status, 200);
    let (headers, identity, uri) = seen.lock().unwrap().clone().unwrap();
    assert_eq!(headers["x-user-id"], "u1");
    assert_eq!(headers["x-user-type"], "access");
    assert_eq!(headers["x-tenant-id"], "t-1");
    assert!(!headers.contains_key("x-service-name"));
    assert_eq!(identity.unwrap().subject, "u1");
    assert_eq!(uri, "/x?a=1&b=2");
}

#[tokio::test]
async fn jwks_rotation_is_followed_and_the_refresher_ends_with_the_last_clone() {
    let jwks = JwksServer::start(Some(&[("a", "rsa.key", RS256)])).await;
    let auth = AuthLayer::from_toml(&format!(
        "[[issuers]]\nissuer = \"idp\"\nalgorithms = [\"RS256\"]\njwks_url = \"{}\"\njwks_refresh = \"1s\"\n",
        jwks.url()
    ))
    .unwrap();
    let layer = auth.with(Policy::access());
    let token =
        |kid: &str, file: &str| bearer(&mint(&access_claims("idp", "u1"), RS256, file, Some(kid)));
    let status = |layer: AuthLayer, header: String| async move {
        through(&layer, get_with("/x", &[("authorization", &header)]))
            .await
            .0
    };
    within(async {
        while status(layer.clone(), token("a", "rsa.key")).await != 200 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    // The identity provider rotates to key b: its first token makes the layer refetch.
    jwks.set(Some(&[("b", "rsa2.key", RS256)]));
    assert_eq!(status(layer.clone(), token("b", "rsa2.key")).await, 200);
    assert_eq!(
        status(layer.clone(), token("a", "rsa.key")).await,
        401,
        "a is retired"
    );

    // Every clone dropped: no more fetches, although the refresh interval is 1 s.
    drop((auth, layer));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after_drop = jwks.fetches();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(jwks.fetches(), after_drop, "the refresher stopped");
}

#[tokio::test]
async fn refusals_are_the_gateway_binary_refusals() {
    let mut expired_claims = access_claims("tollgate", "u1");
    expired_claims["exp"] = (now() - 3600).into();
    let gateway = GatewayProcess::spawn(
        &format!(
            "{ISSUERS}\n[[routes]]\nprefix = \"/\"\nupstream = \"echo\"\npolicy = \"service\"\nservices = [\"billing\"]\n"
        ),
        &[],
    );
    let layer = AuthLayer::from_toml(ISSUERS)
        .unwrap()
        .with(Policy::service(["billing"]));
    for authorization in [
        None,
        Some("Basic dXNlcjpwYXNz".to_owned()),
        Some(bearer("not.a.token")),
        Some(bearer(&hs256(&expired_claims))),
        Some(bearer(&hs256(&access_claims("tollgate", "u1")))),
        Some(bearer(&hs256(&service_claims("tollgate", "orders")))),
        Some(bearer(&hs256(&service_claims("other-issuer", "billing")))),
    ] {
        let headers: Vec<(&str, &str)> = authorization
            .as_deref()
            .map(|a| vec![("authorization", a)])
            .unwrap_or_default();
        let from_gateway = get(&gateway.url("/x"), &headers).await;
        let (status, response_headers, mut json, _) =
            through(&layer, get_with("/x", &headers)).await;
        let mut expected = from_gateway.json();
        // Request ids are per request; everything else must be the same bytes.
        for body in [&mut expected, &mut json] {
            body.as_object_mut().unwrap().remove("request_id");
        }
        let case = authorization.as_deref().unwrap_or("no credentials");
        assert_eq!(status, from_gateway.status, "{case}");
        assert_eq!(json, expected, "{case}");
        for header in ["www-authenticate", "content-type"] {
            assert_eq!(
                response_headers.get(header),
                from_gateway.headers.get(header),
                "{case}: {header}"
            );
        }
    }
}

#[tokio::test]
async fn the_axum_example_answers_as_documented() {
    // The tokens come from the example's own commands, run as written (the built binary for
    // `./target/release/tollgate`, from the repository, on the default config); no command may
    // build something on the side or overwrite a shell variable such as $USER.
    let root = env!("CARGO_MANIFEST_DIR");
    let source =
        std::fs::read_to_string(format!("{root}/crates/auth/examples/axum_service.rs")).unwrap();
    let mut tokens = std::collections::HashMap::new();
    for line in source.lines().filter_map(|l| l.strip_prefix("//! ")) {
        assert!(
            !line.contains("cargo run -q"),
            "a silent debug build: {line}"
        );
        let Some((name, command)) = line.split_once("=$(./target/release/tollgate ") else {
            continue;
        };
        assert!(
            !["USER", "HOME", "PATH"].contains(&name),
            "overwrites ${name}"
        );
        let args: Vec<&str> = command.trim_end_matches(')').split_whitespace().collect();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .args(&args)
            .current_dir(root)
            .env_remove("TOLLGATE_CONFIG")
            .env_remove("TOLLGATE_JWT_SECRET")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{line}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
        tokens.insert(name.to_owned(), token);
    }
    let user = bearer(&tokens["USER_TOKEN"]);
    let billing = bearer(&tokens["BILLING_TOKEN"]);

    // The example reads TOLLGATE_JWT_SECRET, which the tests leave unset: the development secret.
    let auth = AuthLayer::from_toml(example::CONFIG).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, example::app(&auth)).await });
    let url = |path: &str| format!("http://{addr}{path}");
    for (path, authorization, status, body) in [
        ("/health", None, 200, "ok"),
        ("/me", Some(user.as_str()), 200, "hello u1 (admin)"),
        (
            "/me",
            Some(billing.as_str()),
            403,
            "user access token required",
        ),
        (
            "/internal/invoices",
            Some(billing.as_str()),
            200,
            "invoices for billing",
        ),
        ("/internal/invoices", None, 401, "token missing"),
    ] {
        let headers: Vec<(&str, &str)> = authorization
            .map(|a| vec![("authorization", a)])
            .unwrap_or_default();
        let reply = get(&url(path), &headers).await;
        assert_eq!(reply.status, status, "{path}: {}", reply.text());
        let text = reply.text();
        let shown = if status == 200 {
            text
        } else {
            reply.json()["reason"].as_str().unwrap().to_owned()
        };
        assert_eq!(shown, body, "{path}");
    }
}

#[test]
fn the_readme_shows_the_example_as_it_is() {
    let root = env!("CARGO_MANIFEST_DIR");
    let readme = std::fs::read_to_string(format!("{root}/docs/src/embedding.md")).unwrap();
    let example =
        std::fs::read_to_string(format!("{root}/crates/auth/examples/axum_service.rs")).unwrap();
    assert!(
        readme.contains(&format!("```rust\n{example}```")),
        "README's \"Embedding tollgate in a Rust service\" block differs from crates/auth/examples/axum_service.rs"
    );
}

/// Counts the layer's verdicts, as an embedding service's metrics would.
#[derive(Default)]
struct Verdicts {
    allowed: std::sync::atomic::AtomicUsize,
    refused: Mutex<Vec<String>>,
    services: Mutex<Vec<String>>,
}

impl tollgate_state::events::StateEvents for Verdicts {}

impl tollgate_auth::AuthEvents for Verdicts {
    fn request_judged(
        &self,
        _policy: &Policy,
        caller: Option<&Identity>,
        refusal: Option<&tollgate_auth::Refusal>,
    ) {
        match refusal {
            None => {
                self.allowed
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            Some(refusal) => self.refused.lock().unwrap().push(refusal.to_string()),
        }
        if let Some(service) = caller.and_then(|c| c.service.clone()) {
            self.services.lock().unwrap().push(service);
        }
    }

    fn service_token_verified(&self, service: &str, _expires_at: u64) {
        self.services
            .lock()
            .unwrap()
            .push(format!("new token of {service}"));
    }
}

#[tokio::test]
async fn an_observer_hears_every_verdict_of_the_layer() {
    let config = tollgate::Config::from_toml(
        ISSUERS,
        "layer.toml",
        &tollgate::Env::from_map::<_, String, String>([]),
    )
    .unwrap();
    let verdicts = Arc::new(Verdicts::default());
    let auth = AuthLayer::from_config_observed(&config, verdicts.clone())
        .with(Policy::service(["billing"]));
    let billing = hs256(&service_claims("tollgate", "billing"));
    let orders = hs256(&service_claims("tollgate", "orders"));
    for _ in 0..2 {
        let (status, ..) = through(
            &auth,
            get_with("/x", &[("authorization", &bearer(&billing))]),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
    }
    let (status, ..) = through(
        &auth,
        get_with("/x", &[("authorization", &bearer(&orders))]),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, ..) = through(&auth, get_with("/x", &[])).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    assert_eq!(
        verdicts.allowed.load(std::sync::atomic::Ordering::Relaxed),
        2
    );
    assert_eq!(
        *verdicts.refused.lock().unwrap(),
        [
            "forbidden: service not allowed",
            "unauthenticated: token missing"
        ]
    );
    // Each token is reported new once (then it is cached); each judged caller is named.
    assert_eq!(
        *verdicts.services.lock().unwrap(),
        [
            "new token of billing",
            "billing",
            "billing",
            "new token of orders",
            "orders"
        ]
    );
}
