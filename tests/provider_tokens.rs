//! Access tokens in the shapes identity providers mint (Keycloak, Entra ID, Auth0, Okta), signed
//! RS256 and served from a JWKS: no tollgate `type` claim, roles at their real paths, scopes in
//! `scope` or `scp`, client-credentials tokens. And the route rules on them: `scopes`,
//! `roles` from `roles_claim`, `methods`, `claims`. What the upstream receives is read from a
//! recording upstream.

mod support;

use jsonwebtoken::Algorithm::RS256;
use serde_json::json;
use support::*;

const KEYCLOAK: &str = "https://sso.example.test/realms/acme";

/// A gateway trusting one JWKS issuer (`issuer_extra` adds keys to it) in front of a
/// recording upstream with `routes`; the issuer's tokens are signed with `rsa.key`, kid `k1`.
async fn gateway(issuer_extra: &str, routes: &str) -> (TestGateway, MockUpstream, JwksServer) {
    let jwks = JwksServer::start(Some(&[("k1", "rsa.key", RS256)])).await;
    let upstream = MockUpstream::echo().await;
    let routes = routes.replace("UPSTREAM", &upstream.url());
    let config = format!(
        "[[issuers]]\nissuer = \"{KEYCLOAK}\"\nalgorithms = [\"RS256\"]\njwks_url = \"{}\"\n{issuer_extra}\n{routes}",
        jwks.url()
    );
    let gw = spawn_gateway(&config).await;
    (gw, upstream, jwks)
}

fn sign(claims: &serde_json::Value) -> String {
    mint(claims, RS256, "rsa.key", Some("k1"))
}

/// A Keycloak user access token: roles under `realm_access` and `resource_access`, scopes
/// space-separated, no `type`.
fn keycloak_user() -> serde_json::Value {
    json!({
        "iss": KEYCLOAK, "sub": "6f1c2a8e-user", "aud": "account", "typ": "Bearer",
        "azp": "web-app", "exp": now() + 300, "iat": now(), "jti": "kc-1",
        "scope": "openid profile orders:read", "email": "ada@example.com",
        "email_verified": true, "preferred_username": "ada", "tenant": "acme",
        "realm_access": { "roles": ["offline_access", "orders-admin"] },
        "resource_access": { "web-app": { "roles": ["viewer"] } },
        "groups": ["/staff", "/ops"],
    })
}

/// A Keycloak service-account (client-credentials) token.
fn keycloak_service_account() -> serde_json::Value {
    json!({
        "iss": KEYCLOAK, "sub": "0b7e-service-account-user", "azp": "billing",
        "client_id": "billing", "preferred_username": "service-account-billing",
        "exp": now() + 300, "iat": now(), "scope": "orders:read",
        "realm_access": { "roles": ["default-roles-acme"] },
    })
}

/// Polls until the key set has been fetched and `token` gets `want` on `path`.
async fn settle(gw: &TestGateway, path: &str, token: &str, want: u16) {
    until_bearer_status(gw, path, token, want).await;
}

#[tokio::test]
async fn a_standard_access_token_is_a_user_and_its_roles_come_from_the_configured_path() {
    let routes = r#"
[[routes]]
prefix = "/orders"
upstream = "UPSTREAM"
roles = ["orders-admin"]
"#;
    let (gw, upstream, _jwks) = gateway("roles_claim = \"realm_access.roles\"", routes).await;
    let token = sign(&keycloak_user());
    settle(&gw, "/orders", &token, 200).await;
    let seen = upstream.last();
    let header = |name: &str| {
        seen.headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    assert_eq!(header("x-user-id").as_deref(), Some("6f1c2a8e-user"));
    assert_eq!(header("x-user-type").as_deref(), Some("access"));
    assert_eq!(header("x-user-email").as_deref(), Some("ada@example.com"));
    assert_eq!(
        header("x-user-role").as_deref(),
        Some("offline_access,orders-admin")
    );
    assert_eq!(header("x-service-name"), None);

    // Without the role at that path: 403, and the upstream sees nothing more.
    let mut claims = keycloak_user();
    claims["realm_access"]["roles"] = json!(["offline_access"]);
    let hits = upstream.hits();
    let (status, reason) = bearer_status_and_reason(&gw.url("/orders"), &sign(&claims)).await;
    assert_eq!((status, reason.as_str()), (403, "role not allowed"));
    assert_eq!(upstream.hits(), hits);
}

#[tokio::test]
async fn a_client_role_path_with_a_quoted_segment_and_a_namespaced_claim() {
    let routes = r#"
[[routes]]
prefix = "/"
upstream = "UPSTREAM"
roles = ["viewer"]
"#;
    let (gw, _up, _jwks) =
        gateway("roles_claim = 'resource_access.\"web-app\".roles'", routes).await;
    settle(&gw, "/", &sign(&keycloak_user()), 200).await;

    // Auth0: roles in a namespaced claim whose name holds dots.
    let routes = r#"
[[routes]]
prefix = "/"
upstream = "UPSTREAM"
roles = ["editor"]
"#;
    let (gw, _up, _jwks) = gateway("roles_claim = '\"https://example.com/roles\"'", routes).await;
    let mut claims = keycloak_user();
    claims["https://example.com/roles"] = json!(["editor"]);
    settle(&gw, "/", &sign(&claims), 200).await;
    claims["https://example.com/roles"] = json!("reader");
    let (status, _) = bearer_status_and_reason(&gw.url("/"), &sign(&claims)).await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn scopes_are_all_required_and_a_refusal_names_them_in_the_challenge() {
    let routes = r#"
[[routes]]
prefix = "/read"
upstream = "UPSTREAM"
scopes = ["orders:read"]
[[routes]]
prefix = "/write"
upstream = "UPSTREAM"
scopes = ["orders:read", "orders:write"]
"#;
    let (gw, upstream, _jwks) = gateway("", routes).await;
    let token = sign(&keycloak_user());
    settle(&gw, "/read", &token, 200).await;
    let hits = upstream.hits();
    let reply = get(
        &gw.url("/write"),
        &[("authorization", &format!("Bearer {token}"))],
    )
    .await;
    assert_eq!(reply.status, 403);
    assert_eq!(reply.json()["reason"], "insufficient scope");
    let challenge = reply.headers["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains(r#"error="insufficient_scope""#),
        "{challenge}"
    );
    assert!(
        challenge.contains(r#"scope="orders:read orders:write""#),
        "{challenge}"
    );
    assert_eq!(
        upstream.hits(),
        hits,
        "a refused request reached the upstream"
    );

    // Entra ID puts delegated scopes in `scp` (space-separated string); an array works too.
    for scp in [
        json!("orders:read orders:write"),
        json!(["orders:write", "orders:read"]),
    ] {
        let mut claims = keycloak_user();
        claims.as_object_mut().unwrap().remove("scope");
        claims["scp"] = scp;
        assert_eq!(bearer_status(&gw, "/write", &sign(&claims)).await, 200);
    }
    // A scope that only starts like the required one is not it.
    let mut claims = keycloak_user();
    claims["scope"] = json!("orders:reader orders:write");
    assert_eq!(bearer_status(&gw, "/write", &sign(&claims)).await, 403);
    // A scope claim of the wrong type invalidates the token.
    claims["scope"] = json!(42);
    assert_eq!(bearer_status(&gw, "/read", &sign(&claims)).await, 401);
}

#[tokio::test]
async fn methods_and_claims_rules() {
    let routes = r#"
[[routes]]
prefix = "/reports"
upstream = "UPSTREAM"
methods = ["GET", "HEAD"]
claims = { tenant = "acme", email_verified = true, groups = "/ops" }
"#;
    let (gw, upstream, _jwks) = gateway("", routes).await;
    let token = sign(&keycloak_user());
    settle(&gw, "/reports", &token, 200).await;

    // 405 with Allow, before any token is looked at.
    let hits = upstream.hits();
    let request = http::Request::post(gw.url("/reports"))
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let reply = send(request).await;
    assert_eq!(reply.status, 405);
    assert_eq!(reply.headers["allow"], "GET, HEAD");

    for (claim, value) in [
        ("tenant", json!("other")),
        ("tenant", json!(["other", "acme-2"])),
        ("email_verified", json!("true")),
        ("email_verified", json!(false)),
        ("groups", json!(["/staff"])),
        ("groups", json!("/ops/sub")),
    ] {
        let mut claims = keycloak_user();
        claims[claim] = value.clone();
        let (status, reason) = bearer_status_and_reason(&gw.url("/reports"), &sign(&claims)).await;
        assert_eq!(
            (status, reason.as_str()),
            (403, "claim not allowed"),
            "{claim}={value}"
        );
    }
    let mut claims = keycloak_user();
    claims.as_object_mut().unwrap().remove("tenant");
    assert_eq!(bearer_status(&gw, "/reports", &sign(&claims)).await, 403);
    assert_eq!(upstream.hits(), hits);
}

#[tokio::test]
async fn client_credentials_tokens_are_services_only_from_an_issuer_that_may_vouch() {
    let routes = r#"
[[routes]]
prefix = "/internal"
upstream = "UPSTREAM"
policy = "service"
services = ["billing"]
"#;
    // The only issuer may vouch for services by default.
    let (gw, upstream, _jwks) = gateway("", routes).await;
    let token = sign(&keycloak_service_account());
    settle(&gw, "/internal", &token, 200).await;
    let seen = upstream.last();
    assert_eq!(seen.headers["x-service-name"], "billing");
    assert_eq!(seen.headers["x-user-type"], "service");
    // A user token on the service-only route.
    let user = sign(&keycloak_user());
    assert_eq!(bearer_status(&gw, "/internal", &user).await, 403);

    // Each provider's mark of a client-credentials token.
    let shapes = [
        // Auth0: gty, sub "<client>@clients".
        json!({"sub": "billing@clients", "azp": "billing", "gty": "client-credentials"}),
        // Okta: cid, sub = client id.
        json!({"sub": "billing", "cid": "billing"}),
        // Entra ID app-only token with the idtyp optional claim.
        json!({"sub": "a1b2-oid", "oid": "a1b2-oid", "azp": "billing", "idtyp": "app",
               "roles": ["Orders.Read"]}),
        // oidc-provider: client_id = sub.
        json!({"sub": "billing", "client_id": "billing"}),
    ];
    for mut shape in shapes {
        shape["iss"] = json!(KEYCLOAK);
        shape["exp"] = json!(now() + 300);
        shape["iat"] = json!(now());
        assert_eq!(
            bearer_status(&gw, "/internal", &sign(&shape)).await,
            200,
            "{shape}"
        );
    }
    // A user token of a client (azp) with an end user is not a service.
    assert_eq!(bearer_status(&gw, "/internal", &user).await, 403);

    // From an issuer that may not vouch for services, the same token is a caller with no
    // service name: refused on the service route.
    let (gw, _up, _jwks) = gateway("service_tokens = false", routes).await;
    settle(&gw, "/internal", &token, 403).await;
}

#[tokio::test]
async fn tollgate_shaped_tokens_keep_every_refusal_on_a_standard_issuer() {
    let routes = "[[routes]]\nprefix = \"/\"\nupstream = \"UPSTREAM\"\n";
    let (gw, _up, _jwks) = gateway("service_tokens = false", routes).await;
    settle(&gw, "/", &sign(&keycloak_user()), 200).await;
    let cases = [
        (
            json!({"type": "service", "is_service": true, "service": "orders"}),
            "issuer may not issue service tokens",
        ),
        (json!({"type": "refresh"}), "token type not accepted"),
        (
            json!({"type": "access", "is_service": true}),
            "token type not accepted",
        ),
        (json!({"is_service": true}), "token type not accepted"),
    ];
    for (extra, want) in cases {
        let mut claims = keycloak_user();
        for (k, v) in extra.as_object().unwrap() {
            claims[k] = v.clone();
        }
        let (status, reason) = bearer_status_and_reason(&gw.url("/"), &sign(&claims)).await;
        assert_eq!((status, reason.as_str()), (401, want), "{extra}");
    }
    // And an issuer that keeps tollgate's convention still requires `type`.
    let (gw, _up, _jwks) = gateway("token_types = \"tollgate\"", routes).await;
    let mut access = keycloak_user();
    access["type"] = json!("access");
    settle(&gw, "/", &sign(&access), 200).await;
    let (status, reason) = bearer_status_and_reason(&gw.url("/"), &sign(&keycloak_user())).await;
    assert_eq!((status, reason.as_str()), (401, "token type not accepted"));
}
