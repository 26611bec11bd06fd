//! Inbound authentication over real sockets: token kinds × policies, every algorithm, every
//! way a token can be wrong, identity header spoofing, JWKS rotation and outage, the audit log.

mod support;

use std::time::Duration;

use jsonwebtoken::Algorithm::{self, *};
use serde_json::json;
use support::recording::RecordingUpstream;
use support::*;

const ISS: &str = "https://issuer.test";

fn issuer_block() -> String {
    format!(
        r#"
[[issuers]]
issuer = "{ISS}"
algorithms = ["HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"]
secret = "{SECRET}"
leeway = "0s"
from_cookie = "session"
from_query = "access_token"
public_keys = [
  {{ kid = "rsa", pem_file = "{rsa}" }},
  {{ kid = "ec256", pem_file = "{ec256}" }},
  {{ kid = "ec384", pem_file = "{ec384}" }},
  {{ kid = "ed", pem_file = "{ed}" }},
]

[[issuers]]
issuer = "https://aud.test"
algorithms = ["HS256"]
secret = "{SECRET}"
audiences = ["orders-api"]

[identity]
claim_headers = {{ "org.id" = "x-org-id", "groups" = "x-user-groups" }}
"#,
        rsa = key_path("rsa.pub.pem"),
        ec256 = key_path("ec256.pub.pem"),
        ec384 = key_path("ec384.pub.pem"),
        ed = key_path("ed25519.pub.pem"),
    )
}

fn routes(upstream: &str) -> String {
    format!(
        r#"
[[routes]]
prefix = "/public"
upstream = "{upstream}"
policy = "public"

[[routes]]
prefix = "/any"
upstream = "{upstream}"
policy = "authenticated"

[[routes]]
prefix = "/users"
upstream = "{upstream}"
policy = "access"

[[routes]]
prefix = "/internal"
upstream = "{upstream}"
policy = "service"

[[routes]]
prefix = "/billing"
upstream = "{upstream}"
policy = "service"
services = ["billing"]

[[routes]]
prefix = "/admin"
upstream = "{upstream}"
policy = "authenticated"
roles = ["admin"]

[[routes]]
prefix = "/passthrough"
upstream = "{upstream}"
policy = "authenticated"
forward_authorization = true

[[routes]]
prefix = "/cors"
upstream = "{upstream}"
policy = "authenticated"
allow_cors_preflight = true
"#
    )
}

async fn gateway(upstream: &str) -> TestGateway {
    spawn_gateway(&format!("{}{}", issuer_block(), routes(upstream))).await
}

/// A gateway whose routes all lead to an upstream that records the raw bytes it received and
/// answers with what it parsed from them: the witness for header hygiene (not the built-in
/// echo, which is handed the built request in-process).
async fn witnessed() -> (TestGateway, RecordingUpstream) {
    let up = RecordingUpstream::describing().await;
    (gateway(&up.url()).await, up)
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[tokio::test]
async fn each_token_kind_on_each_policy() {
    let (gw, _witness) = witnessed().await;
    let user = hs256(&access_claims(ISS, "alice"));
    let service = hs256(&service_claims(ISS, "orders"));
    // (path, token, expected status)
    let cases = [
        ("/public/x", None, 200),
        ("/public/x", Some(&user), 200),
        ("/public/x", Some(&service), 200),
        ("/any/x", None, 401),
        ("/any/x", Some(&user), 200),
        ("/any/x", Some(&service), 200),
        ("/users/x", None, 401),
        ("/users/x", Some(&user), 200),
        ("/users/x", Some(&service), 403),
        ("/internal/x", None, 401),
        ("/internal/x", Some(&user), 403),
        ("/internal/x", Some(&service), 200),
        ("/billing/x", Some(&service), 403),
        ("/admin/x", Some(&user), 403),
        ("/admin/x", Some(&service), 200),
    ];
    for (path, token, want) in cases {
        let auth = token.map(|t| bearer(t));
        let headers: Vec<(&str, &str)> =
            auth.iter().map(|a| ("authorization", a.as_str())).collect();
        let reply = get(&gw.url(path), &headers).await;
        assert_eq!(
            reply.status.as_u16(),
            want,
            "{path} with {}",
            if token.is_some() { "token" } else { "no token" }
        );
    }

    let reply = get(&gw.url("/any/x"), &[("authorization", &bearer(&user))]).await;
    let seen = echoed_headers(&reply);
    assert_eq!(seen["x-user-id"], ["alice"]);
    assert_eq!(seen["x-user-email"], ["alice@example.com"]);
    assert_eq!(seen["x-user-role"], ["user"]);
    assert_eq!(seen["x-user-type"], ["access"]);
    assert_eq!(seen["x-tenant-id"], ["t-1"]);
    assert!(!seen.contains_key("x-service-name"));
    assert!(
        !seen.contains_key("authorization"),
        "caller's token removed by default"
    );

    let reply = get(
        &gw.url("/internal/x"),
        &[("authorization", &bearer(&service))],
    )
    .await;
    let seen = echoed_headers(&reply);
    assert_eq!(seen["x-user-type"], ["service"]);
    assert_eq!(seen["x-service-name"], ["orders"]);
    assert_eq!(seen["x-user-id"], ["orders"]);
    assert_eq!(seen["x-user-email"], ["orders@internal.service"]);

    let reply = get(&gw.url("/public/x"), &[("authorization", &bearer(&user))]).await;
    assert_eq!(
        echoed_headers(&reply)["x-user-id"],
        ["alice"],
        "public routes still identify"
    );
}

#[tokio::test]
async fn refusals_reach_no_upstream_and_explain_themselves() {
    let up = MockUpstream::echo().await;
    let gw = gateway(&up.url()).await;

    let reply = get(&gw.url("/any/x"), &[]).await;
    assert_eq!(reply.status, 401);
    assert_eq!(
        reply.headers["www-authenticate"],
        r#"Bearer realm="tollgate""#
    );
    let body = reply.json();
    assert_eq!(body["error"], "unauthorized");
    assert_eq!(body["reason"], "token missing");
    assert_eq!(
        body["request_id"],
        reply.headers["x-request-id"].to_str().unwrap()
    );

    let mut expired = access_claims(ISS, "alice");
    expired["exp"] = json!(now() - 10);
    let reply = get(
        &gw.url("/any/x"),
        &[("authorization", &bearer(&hs256(&expired)))],
    )
    .await;
    assert_eq!(reply.status, 401);
    assert_eq!(
        reply.headers["www-authenticate"],
        r#"Bearer realm="tollgate", error="invalid_token", error_description="token expired""#
    );
    assert_eq!(reply.json()["reason"], "token expired");

    let user = hs256(&access_claims(ISS, "alice"));
    let reply = get(&gw.url("/internal/x"), &[("authorization", &bearer(&user))]).await;
    assert_eq!(reply.status, 403);
    assert_eq!(
        reply.headers["www-authenticate"],
        r#"Bearer realm="tollgate", error="insufficient_scope", error_description="service token required""#
    );
    let body = reply.json();
    assert_eq!(body["error"], "forbidden");
    assert_eq!(body["reason"], "service token required");
    assert!(
        !reply.body.windows(user.len()).any(|w| w == user.as_bytes()),
        "token echoed"
    );
    assert_eq!(up.hits(), 0, "the upstream received a refused request");
}

#[tokio::test]
async fn every_supported_algorithm_verifies() {
    let (gw, _witness) = witnessed().await;
    let cases: [(Algorithm, &str, Option<&str>); 10] = [
        (HS256, "", None),
        (HS384, "", None),
        (HS512, "", None),
        (RS256, "rsa.key", Some("rsa")),
        (RS384, "rsa.key", Some("rsa")),
        (RS512, "rsa.key", Some("rsa")),
        (PS256, "rsa.key", Some("rsa")),
        (ES256, "ec256.key", Some("ec256")),
        (ES384, "ec384.key", Some("ec384")),
        (EdDSA, "ed25519.key", Some("ed")),
    ];
    for (alg, key, kid) in cases {
        let token = mint(&service_claims(ISS, "orders"), alg, key, kid);
        let reply = get(
            &gw.url("/internal/x"),
            &[("authorization", &bearer(&token))],
        )
        .await;
        assert_eq!(reply.status, 200, "{alg:?}: {:?}", reply.body);
        assert_eq!(
            echoed_headers(&reply)["x-service-name"],
            ["orders"],
            "{alg:?}"
        );
        // Second use comes from the verified-token cache and must answer the same.
        let again = get(
            &gw.url("/internal/x"),
            &[("authorization", &bearer(&token))],
        )
        .await;
        assert_eq!(again.status, 200, "{alg:?} cached");
    }
}

async fn reason(gw: &TestGateway, token: &str) -> (u16, String) {
    let reply = get(&gw.url("/any/x"), &[("authorization", &bearer(token))]).await;
    let reason = reply.json()["reason"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    (reply.status.as_u16(), reason)
}

#[tokio::test]
async fn invalid_tokens_get_401_with_precise_reasons() {
    let up = MockUpstream::echo().await;
    let gw = gateway(&up.url()).await;
    let claims = access_claims(ISS, "alice");
    let with = |patch: serde_json::Value| {
        let mut c = claims.clone();
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        c
    };
    let b64 = |s: &str| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
    };
    let good = hs256(&claims);
    let (h, p, _) = {
        let mut it = good.split('.');
        (
            it.next().unwrap().to_owned(),
            it.next().unwrap().to_owned(),
            (),
        )
    };
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "expired",
            hs256(&with(json!({"exp": now() - 5}))),
            "token expired",
        ),
        (
            "not yet valid",
            hs256(&with(json!({"nbf": now() + 600}))),
            "token not yet valid",
        ),
        (
            "wrong issuer",
            hs256(&with(json!({"iss": "https://evil.test"}))),
            "issuer not accepted",
        ),
        (
            "no issuer",
            hs256(&with(json!({"iss": null}))),
            "issuer not accepted",
        ),
        (
            "no exp",
            hs256(&with(json!({"exp": null}))),
            "missing claim exp",
        ),
        (
            "string exp",
            hs256(&with(json!({"exp": (now() + 600).to_string()}))),
            "invalid claim exp",
        ),
        (
            "wrong audience",
            hs256(&with(
                json!({"iss": "https://aud.test", "aud": "other-api"}),
            )),
            "audience not accepted",
        ),
        (
            "missing audience",
            hs256(&with(json!({"iss": "https://aud.test"}))),
            "missing claim aud",
        ),
        (
            "wrong key",
            mint(&claims, RS256, "rsa2.key", Some("rsa")),
            "signature invalid",
        ),
        (
            "wrong secret",
            jsonwebtoken::encode(
                &jsonwebtoken::Header::new(HS256),
                &claims,
                &jsonwebtoken::EncodingKey::from_secret(b"another-secret-that-is-long-enough!!"),
            )
            .unwrap(),
            "signature invalid",
        ),
        (
            "unknown kid",
            mint(&claims, RS256, "rsa.key", Some("nope")),
            "unknown key id",
        ),
        (
            "alg mismatch",
            mint(&claims, ES256, "ec256.key", Some("rsa")),
            "unknown key id",
        ),
        (
            "alg none",
            format!("{}.{p}.", b64(r#"{"alg":"none","typ":"JWT"}"#)),
            "signature invalid",
        ),
        (
            "alg none sig",
            format!("{}.{p}.c2ln", b64(r#"{"alg":"none"}"#)),
            "algorithm not allowed",
        ),
        (
            "alg NoNe",
            format!("{}.{p}.c2ln", b64(r#"{"alg":"NoNe"}"#)),
            "algorithm not allowed",
        ),
        ("garbage", "not-a-token".to_owned(), "malformed token"),
        ("two parts", format!("{h}.{p}"), "malformed token"),
        ("jwe shaped", format!("{h}.{p}.a.b.c"), "malformed token"),
        ("padding", format!("{h}=.{p}.sig"), "malformed token"),
        (
            "bad json",
            format!("{}.{p}.sig", b64("{not json")),
            "malformed token",
        ),
        (
            "crit",
            mint_with_header(&claims, json!({"alg": "HS256", "crit": ["exp"], "exp": 1})),
            "unsupported critical header",
        ),
        (
            "typ",
            mint_with_header(&claims, json!({"alg": "HS256", "typ": "refresh+jwt"})),
            "unsupported token typ",
        ),
        (
            "refresh type",
            hs256(&with(json!({"type": "refresh"}))),
            "token type not accepted",
        ),
        (
            "no type",
            hs256(&with(json!({"type": null}))),
            "token type not accepted",
        ),
        (
            "access claiming service",
            hs256(&with(json!({"is_service": true}))),
            "token type not accepted",
        ),
        (
            "service without is_service",
            hs256(&{
                let mut c = service_claims(ISS, "orders");
                c.as_object_mut().unwrap().remove("is_service");
                c
            }),
            "token type not accepted",
        ),
        (
            "service without name",
            hs256(&{
                let mut c = service_claims(ISS, "orders");
                c["service"] = json!("");
                c
            }),
            "missing claim service",
        ),
        (
            "CRLF in claim",
            hs256(&with(json!({"email": "a@b.c\r\nx-user-role: admin"}))),
            "invalid claim email",
        ),
        (
            "NUL in claim",
            hs256(&with(json!({"role": "admin\u{0}"}))),
            "invalid claim role",
        ),
        (
            "non-ASCII in claim",
            hs256(&with(json!({"role": "ädmin"}))),
            "invalid claim role",
        ),
        (
            "object user_id",
            hs256(&with(json!({"user_id": {"a": 1}}))),
            "invalid claim user_id",
        ),
    ];
    for (name, token, want) in cases {
        let (status, got) = reason(&gw, &token).await;
        assert_eq!((status, got.as_str()), (401, want), "{name}");
    }
    assert_eq!(up.hits(), 0, "an invalid token reached the upstream");
}

/// Signs `claims` with HS256 under an arbitrary (attacker-chosen) header.
fn mint_with_header(claims: &serde_json::Value, header: serde_json::Value) -> String {
    use base64::Engine;
    use hmac::Mac;
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(input.as_bytes());
    format!("{input}.{}", b64(&mac.finalize().into_bytes()))
}

#[tokio::test]
async fn spoofed_identity_headers_never_reach_the_upstream() {
    let (gw, _witness) = witnessed().await;
    let spoofs = [
        ("x-user-id", "root"),
        ("X-User-Role", "admin"),
        ("x_user_id", "root"),
        ("X_USER_TYPE", "service"),
        ("x-service-name", "billing"),
        ("x_service_name", "billing"),
        ("x-tenant-id", "other"),
        ("x-user-anything", "1"),
        ("x-org-id", "evil"),
        ("x_org_id", "evil"),
        ("x-user-groups", "admins"),
        ("x-user-id", ""),
    ];
    // Public route, no token: every identity header is gone.
    let reply = get(&gw.url("/public/x"), &spoofs).await;
    let seen = echoed_headers(&reply);
    for name in seen.keys() {
        let folded = name.replace('_', "-");
        assert!(
            !folded.starts_with("x-user-")
                && !folded.starts_with("x-service-")
                && !folded.starts_with("x-tenant-")
                && folded != "x-org-id",
            "{name} reached the upstream"
        );
    }
    // Public route with an invalid token: same.
    let reply = get(
        &gw.url("/public/x"),
        &[
            spoofs.as_slice(),
            &[("authorization", "Bearer bad.token.here")],
        ]
        .concat(),
    )
    .await;
    assert!(
        !echoed_headers(&reply)
            .keys()
            .any(|k| k.replace('_', "-").starts_with("x-user-"))
    );

    // Protected route with a valid token: only the injected values, once each.
    let mut claims = access_claims(ISS, "alice");
    claims["org"] = json!({"id": "org-7"});
    claims["groups"] = json!(["eng", "ops"]);
    let token = hs256(&claims);
    let auth = bearer(&token);
    let reply = get(
        &gw.url("/any/x"),
        &[spoofs.as_slice(), &[("authorization", auth.as_str())]].concat(),
    )
    .await;
    assert_eq!(reply.status, 200);
    let seen = echoed_headers(&reply);
    assert_eq!(seen["x-user-id"], ["alice"]);
    assert_eq!(seen["x-user-role"], ["user"]);
    assert_eq!(seen["x-user-type"], ["access"]);
    assert_eq!(seen["x-tenant-id"], ["t-1"]);
    assert_eq!(seen["x-org-id"], ["org-7"]);
    assert_eq!(seen["x-user-groups"], ["eng,ops"]);
    for name in [
        "x_user_id",
        "x-service-name",
        "x_service_name",
        "x-user-anything",
        "x_org_id",
    ] {
        assert!(!seen.contains_key(name), "{name} reached the upstream");
    }

    // `Connection: x-user-id` cannot remove what the gateway injects.
    let reply = get(
        &gw.url("/any/x"),
        &[
            ("authorization", auth.as_str()),
            ("connection", "x-user-id, x-user-type"),
        ],
    )
    .await;
    assert_eq!(echoed_headers(&reply)["x-user-id"], ["alice"]);
}

#[tokio::test]
async fn tokens_from_cookie_and_query_and_multiple_credentials() {
    let (gw, _witness) = witnessed().await;
    let user = hs256(&access_claims(ISS, "alice"));
    let reply = get(
        &gw.url("/any/x"),
        &[("cookie", &format!("theme=dark; session={user}"))],
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(
        echoed_headers(&reply)["cookie"],
        ["theme=dark"],
        "token cookie removed"
    );

    let reply = get(&gw.url(&format!("/any/x?a=1&access_token={user}")), &[]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["query"], "a=1", "token parameter removed");

    // Two credentials: all must be valid.
    let two = [
        ("authorization", bearer(&user)),
        ("cookie", "session=bad.token.x".to_owned()),
    ];
    let headers: Vec<(&str, &str)> = two.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(get(&gw.url("/any/x"), &headers).await.status, 401);
    let auth = bearer(&user);
    let bad = "Bearer bad.token.x";
    let reply = get(
        &gw.url("/any/x"),
        &[("authorization", auth.as_str()), ("authorization", bad)],
    )
    .await;
    assert_eq!(reply.status, 401);

    // Scheme is case-insensitive; other schemes are not tokens.
    let lower = format!("bearer {user}");
    assert_eq!(
        get(&gw.url("/any/x"), &[("authorization", &lower)])
            .await
            .status,
        200
    );
    let reply = get(
        &gw.url("/any/x"),
        &[("authorization", "Basic dXNlcjpwYXNz")],
    )
    .await;
    assert_eq!(
        (reply.status.as_u16(), reply.json()["reason"].as_str()),
        (401, Some("token missing"))
    );
}

#[tokio::test]
async fn authorization_forwarding_and_cors_preflight_per_route() {
    let (gw, _witness) = witnessed().await;
    let auth = bearer(&hs256(&access_claims(ISS, "alice")));
    let reply = get(&gw.url("/passthrough/x"), &[("authorization", &auth)]).await;
    assert_eq!(echoed_headers(&reply)["authorization"], [auth.as_str()]);

    let preflight = [
        ("origin", "https://app.example"),
        ("access-control-request-method", "POST"),
    ];
    let request = |path: &str, headers: &[(&str, &str)]| {
        let mut b = http::Request::options(gw.url(path));
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap()
    };
    assert_eq!(send(request("/cors/x", &preflight)).await.status, 200);
    assert_eq!(
        send(request("/any/x", &preflight)).await.status,
        401,
        "not enabled on /any"
    );
    assert_eq!(
        send(request("/cors/x", &preflight[..1])).await.status,
        401,
        "not a preflight"
    );
}

#[tokio::test]
async fn policy_is_judged_on_the_normalised_path() {
    let up = MockUpstream::echo().await;
    let gw = gateway(&up.url()).await;
    for path in [
        "/public/../internal/x",
        "/public/%2e%2e/internal/x",
        "//internal/x",
        "/public/./../internal",
    ] {
        let reply = get(&gw.url(path), &[]).await;
        assert_eq!(reply.status, 401, "{path}");
    }
    assert_eq!(up.hits(), 0);
}

#[tokio::test]
async fn jwks_rotation_picks_up_new_keys_and_retires_old_ones() {
    let jwks = JwksServer::start(Some(&[("k1", "rsa.key", RS256)])).await;
    let config = format!(
        r#"
[[issuers]]
issuer = "{ISS}"
algorithms = ["RS256", "ES256"]
jwks_url = "{}"
jwks_min_refresh_interval = "0s"
[[routes]]
prefix = "/"
upstream = "echo"
"#,
        jwks.url()
    );
    let gw = spawn_gateway(&config).await;
    let claims = service_claims(ISS, "orders");
    let old = mint(&claims, RS256, "rsa.key", Some("k1"));
    within(async {
        loop {
            if reason(&gw, &old).await.0 == 200 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;

    // Rotate: k2 (EC) in, k1 out. A token with the new kid triggers a refresh.
    jwks.set(Some(&[("k2", "ec256.key", ES256)]));
    let new = mint(&claims, ES256, "ec256.key", Some("k2"));
    assert_eq!(reason(&gw, &new).await, (200, String::new()));
    // The retired key no longer verifies, even though its token was cached.
    assert_eq!(reason(&gw, &old).await, (401, "unknown key id".to_owned()));
}

#[tokio::test]
async fn jwks_down_at_startup_recovers_and_fetches_are_single_flight() {
    let jwks = JwksServer::start(None).await;
    let config = format!(
        r#"
[[issuers]]
issuer = "{ISS}"
algorithms = ["RS256"]
jwks_url = "{}"
jwks_min_refresh_interval = "0s"
jwks_timeout = "2s"
[[routes]]
prefix = "/"
upstream = "echo"
"#,
        jwks.url()
    );
    let gw = spawn_gateway(&config).await;
    let token = mint(&service_claims(ISS, "orders"), RS256, "rsa.key", Some("k1"));
    // The listener answers while the key set is unavailable.
    assert_eq!(
        reason(&gw, &token).await,
        (401, "unknown key id".to_owned())
    );

    jwks.set(Some(&[("k1", "rsa.key", RS256)]));
    let before = jwks.fetches();
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let url = gw.url("/x");
            let auth = bearer(&token);
            tokio::spawn(async move { get(&url, &[("authorization", &auth)]).await.status })
        })
        .collect();
    for task in tasks {
        assert_eq!(within(task).await.unwrap(), 200);
    }
    let during = jwks.fetches() - before;
    assert!(
        during <= 2,
        "{during} fetches for 50 concurrent unknown-kid requests"
    );
}

#[tokio::test]
async fn weak_hmac_secrets_are_refused_at_startup() {
    let config =
        "[[issuers]]\nissuer = \"x\"\nalgorithms = [\"HS256\"]\nsecret = \"short-secret\"\n";
    let err = tollgate::Config::from_toml(
        config,
        "t.toml",
        &tollgate::Env::from_map::<_, String, String>([]),
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        err,
        "t.toml: issuers[0].secret: HMAC secret is 12 bytes; at least 32 are required"
    );
}

#[tokio::test]
async fn audit_log_records_service_route_decisions_without_tokens() {
    let gw = GatewayProcess::spawn(&format!("{}{}", issuer_block(), routes("echo")), &[]);
    let service = hs256(&service_claims(ISS, "orders"));
    let user = hs256(&access_claims(ISS, "alice"));
    let ok = get(
        &gw.url("/internal/a"),
        &[
            ("authorization", &bearer(&service)),
            ("x-request-id", "audit-allow"),
        ],
    )
    .await;
    assert_eq!(ok.status, 200);
    let denied = get(
        &gw.url("/internal/b"),
        &[
            ("authorization", &bearer(&user)),
            ("x-request-id", "audit-deny"),
        ],
    )
    .await;
    assert_eq!(denied.status, 403);
    let missing = get(&gw.url("/any/c"), &[("x-request-id", "audit-missing")]).await;
    assert_eq!(missing.status, 401);
    let quiet = get(
        &gw.url("/any/d"),
        &[
            ("authorization", &bearer(&user)),
            ("x-request-id", "audit-quiet"),
        ],
    )
    .await;
    assert_eq!(quiet.status, 200);

    let events = within(async {
        loop {
            let events: Vec<serde_json::Value> = gw
                .logs()
                .iter()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .filter(|e| e["target"] == "audit")
                .collect();
            if events.len() >= 3 {
                return events;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    // The client's ids are recorded apart; the gateway's own id is what `request_id` holds.
    let by_id = |id: &str| {
        events
            .iter()
            .find(|e| e["client_request_id"] == id && e["request_id"] != id)
            .cloned()
    };
    let allow = by_id("audit-allow").expect("allow event");
    assert_eq!(allow["decision"], "allow");
    assert_eq!(allow["service"], "orders");
    assert_eq!(allow["route"], "/internal");
    assert_eq!(allow["method"], "GET");
    assert_eq!(allow["path"], "/internal/a");
    let deny = by_id("audit-deny").expect("deny event");
    assert_eq!(deny["decision"], "deny");
    assert_eq!(deny["reason"], "service token required");
    assert_eq!(deny["user_id"], "alice");
    let missing = by_id("audit-missing").expect("denied requests are audited on every route");
    assert_eq!(missing["reason"], "token missing");
    assert!(
        by_id("audit-quiet").is_none(),
        "allowed requests on user routes are not audited"
    );
    for line in gw.logs() {
        assert!(
            !line.contains(&service) && !line.contains(&user),
            "token in log: {line}"
        );
        assert!(!line.contains(SECRET), "secret in log: {line}");
    }
}

#[tokio::test]
async fn default_config_demonstrates_public_private_and_internal_routes() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/tollgate.toml");
    let mut config =
        tollgate::Config::load(&path, &tollgate::Env::from_map::<_, String, String>([])).unwrap();
    assert!(config.issuers[0].uses_development_secret());
    config.listen = vec!["127.0.0.1:0".parse().unwrap()];
    config.admin_listen = None;
    let running = tollgate::start(config).await.unwrap();
    let url = |path: &str| format!("http://{}{path}", running.data_addrs[0]);
    let sign = |claims: &serde_json::Value| {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(HS256),
            claims,
            &jsonwebtoken::EncodingKey::from_secret(
                tollgate::config::DEVELOPMENT_SECRET.as_bytes(),
            ),
        )
        .unwrap()
    };
    let service = bearer(&sign(&service_claims("tollgate", "orders")));
    let user = bearer(&sign(&access_claims("tollgate", "alice")));
    assert_eq!(get(&url("/echo/hi"), &[]).await.status, 200);
    assert_eq!(get(&url("/private/x"), &[]).await.status, 401);
    assert_eq!(
        get(&url("/private/x"), &[("authorization", &user)])
            .await
            .status,
        200
    );
    assert_eq!(
        get(&url("/internal/x"), &[("authorization", &user)])
            .await
            .status,
        403
    );
    let reply = get(&url("/internal/x"), &[("authorization", &service)]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(echoed_headers(&reply)["x-service-name"], ["orders"]);

    // TOLLGATE_JWT_SECRET replaces the development secret.
    let config = tollgate::Config::load(
        &path,
        &tollgate::Env::from_map([("TOLLGATE_JWT_SECRET", SECRET)]),
    )
    .unwrap();
    assert!(!config.issuers[0].uses_development_secret());
    running.shutdown();
}
