//! Forward-auth: tollgate answers another proxy's auth subrequest. The witness is a real nginx
//! with `auth_request` in front of a recording upstream: a request tollgate refuses never
//! reaches the upstream; an allowed one arrives with the identity headers nginx copied from
//! tollgate's answer, and a client's forged identity headers do not.

mod support;

use support::nginx::Nginx;
use support::*;

/// tollgate with a forward-auth route `/_auth` for services, one for GET-only reads, and nginx
/// trusted as a proxy.
async fn tollgate() -> TestGateway {
    let config = format!(
        r#"
[server]
listen = ["127.0.0.1:0"]
admin_listen = "127.0.0.1:0"
trusted_proxies = ["127.0.0.1/32"]
[[issuers]]
issuer = "internal"
algorithms = ["HS256"]
secret = "{SECRET}"
[[routes]]
prefix = "/_auth/orders"
upstream = "forward-auth"
policy = "service"
services = ["billing"]
[[routes]]
prefix = "/_auth/reports"
upstream = "forward-auth"
methods = ["GET"]
"#
    );
    spawn_gateway(&config).await
}

/// nginx on its own port: `/api/` asks tollgate at `/_auth/orders`, `/reports/` at
/// `/_auth/reports`; both copy the identity headers from the answer onto the proxied request
/// (after removing the client's own copies).
fn nginx(tollgate: &TestGateway, upstream: &MockUpstream) -> Option<Nginx> {
    let location = |path: &str, auth: &str| {
        format!(
            r#"
        location {path} {{
            auth_request {auth};
            auth_request_set $tg_user $upstream_http_x_user_id;
            auth_request_set $tg_type $upstream_http_x_user_type;
            auth_request_set $tg_service $upstream_http_x_service_name;
            proxy_set_header X-User-Id $tg_user;
            proxy_set_header X-User-Type $tg_type;
            proxy_set_header X-Service-Name $tg_service;
            proxy_set_header Authorization "";
            proxy_pass {upstream};
        }}
        location = {auth} {{
            internal;
            proxy_pass http://{gateway}{auth};
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-URI $request_uri;
            proxy_set_header X-Original-Method $request_method;
        }}"#,
            upstream = upstream.url(),
            gateway = tollgate.addr,
        )
    };
    Nginx::start_with_servers(&format!(
        "    server {{\n        listen 127.0.0.1:PORT;\n        access_log off;{}{}\n    }}\n",
        location("/api/", "/_auth/orders"),
        location("/reports/", "/_auth/reports"),
    ))
}

async fn through(nginx: &Nginx, method: &str, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut builder = http::Request::builder()
        .method(method)
        .uri(format!("{}{path}", nginx.url()));
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    send(
        builder
            .body(http_body_util::Full::new(bytes::Bytes::new()))
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn nginx_auth_request_lets_through_only_what_tollgate_allows() {
    let gateway = tollgate().await;
    let upstream = MockUpstream::echo().await;
    let Some(nginx) = nginx(&gateway, &upstream) else {
        return;
    };
    let billing = hs256(&service_claims("internal", "billing"));
    let orders = hs256(&service_claims("internal", "orders"));
    let user = hs256(&access_claims("internal", "ada"));
    let bearer = |t: &str| format!("Bearer {t}");

    // Refused: no token, a bad one, a user token, another service. None reaches the upstream.
    for (token, want) in [
        (None, 401),
        (Some("not-a-jwt".to_owned()), 401),
        (Some(user.clone()), 403),
        (Some(orders.clone()), 403),
    ] {
        let auth = token.as_deref().map(bearer);
        let headers: Vec<(&str, &str)> = auth
            .as_deref()
            .map(|a| vec![("authorization", a), ("x-user-id", "forged")])
            .unwrap_or_default();
        let reply = through(&nginx, "POST", "/api/charge", &headers).await;
        assert_eq!(reply.status, want, "{token:?}: {}", reply.text());
    }
    assert_eq!(upstream.hits(), 0, "a refused request reached the upstream");

    // Allowed: the upstream gets tollgate's identity, not the client's forged header.
    let reply = through(
        &nginx,
        "POST",
        "/api/charge",
        &[
            ("authorization", &bearer(&billing)),
            ("x-user-id", "forged"),
        ],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let seen = upstream.last();
    assert_eq!(seen.uri, "/api/charge");
    assert_eq!(seen.headers["x-service-name"], "billing");
    assert_eq!(seen.headers["x-user-type"], "service");
    assert_eq!(seen.headers["x-user-id"], "billing");
    assert!(seen.headers.get("authorization").is_none());
    assert_eq!(upstream.hits(), 1);
}

#[tokio::test]
async fn the_original_method_from_the_proxy_is_what_the_methods_rule_judges() {
    let gateway = tollgate().await;
    let upstream = MockUpstream::echo().await;
    let Some(nginx) = nginx(&gateway, &upstream) else {
        return;
    };
    let user = format!("Bearer {}", hs256(&access_claims("internal", "ada")));
    // nginx's subrequest is a GET; the client's DELETE is what tollgate must judge.
    let reply = through(&nginx, "DELETE", "/reports/1", &[("authorization", &user)]).await;
    // 403, not 405: nginx passes only 401 and 403 on (anything else becomes a 500).
    assert_eq!(reply.status, 403);
    assert_eq!(upstream.hits(), 0);
    let reply = through(&nginx, "GET", "/reports/1", &[("authorization", &user)]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(upstream.last().headers["x-user-id"], "ada");
}

#[tokio::test]
async fn a_direct_answer_carries_the_identity_and_the_original_method_only_from_a_trusted_proxy() {
    // Without trusted_proxies, a client cannot pick the method the rule judges.
    let config = format!(
        "[[issuers]]\nissuer = \"internal\"\nalgorithms = [\"HS256\"]\nsecret = \"{SECRET}\"\n\
         [[routes]]\nprefix = \"/_auth\"\nupstream = \"forward-auth\"\nmethods = [\"GET\"]\n"
    );
    let gw = spawn_gateway(&config).await;
    let token = format!("Bearer {}", hs256(&access_claims("internal", "ada")));
    let reply = get(
        &gw.url("/_auth"),
        &[("authorization", &token), ("x-original-method", "DELETE")],
    )
    .await;
    assert_eq!(
        reply.status, 200,
        "an untrusted peer's X-Original-Method was believed"
    );
    assert_eq!(reply.headers["x-user-id"], "ada");
    assert_eq!(reply.headers["x-user-type"], "access");
    assert_eq!(reply.headers["cache-control"], "no-store");
    assert!(reply.headers.contains_key("x-request-id"));
    assert!(reply.body.is_empty());
    // A refusal is the usual JSON answer with its challenge.
    let reply = get(&gw.url("/_auth"), &[]).await;
    assert_eq!(reply.status, 401);
    assert!(reply.headers.contains_key("www-authenticate"));
    assert_eq!(reply.json()["error"], "unauthorized");
}
