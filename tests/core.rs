//! The decision core in-process, without a socket: each case gives a client request and checks
//! the refusal, or the decision and the exact upstream request the transports will send.

mod support;

use bytes::Bytes;
use http::{Method, Request, StatusCode, Version};
use http_body_util::Full;
use tollgate::core::forwarded::ClientIp;
use tollgate::core::{Core, Decision, Trace};
use tollgate::{Config, Env, GatewayError};

use support::{SECRET, access_claims, hs256, service_claims};

const ISS: &str = "tollgate";

fn core() -> Core {
    let toml = format!(
        r#"
[server]
trusted_proxies = ["10.0.0.0/8"]

[[issuers]]
issuer = "{ISS}"
algorithms = ["HS256"]
secret = "{SECRET}"
from_query = "access_token"
from_cookie = "session"

[[routes]]
name = "admin"
prefix = "/"
host = "Admin.Example.com."
upstream = "http://127.0.0.1:9/base"
policy = "service"

[[routes]]
name = "cors"
prefix = "/cors"
upstream = "http://127.0.0.1:9"
policy = "service"
allow_cors_preflight = true

[[routes]]
name = "quiet"
prefix = "/quiet"
upstream = "http://127.0.0.1:9"
policy = "public"
upgrades = []

[[routes]]
name = "public"
prefix = "/"
upstream = "http://127.0.0.1:9"
policy = "public"
preserve_host = true
"#
    );
    let config = Config::from_toml(&toml, "core.toml", &Env::from_map::<_, String, String>([]))
        .expect("valid config");
    Core::new(&config, std::sync::Arc::new(()), None)
}

fn request(
    method: Method,
    target: &str,
    headers: &[(&str, &str)],
    body: &'static str,
) -> Request<Full<Bytes>> {
    let mut builder = Request::builder().method(method).uri(target);
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    builder
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .unwrap()
}

async fn decide(
    core: &Core,
    request: Request<Full<Bytes>>,
    peer: &str,
) -> (
    Result<(Decision, Request<Full<Bytes>>), GatewayError>,
    Trace,
) {
    let mut trace = Trace::default();
    let peer = ClientIp::new(peer.parse().unwrap());
    let result = core.decide(request, &peer, &mut trace).await;
    (result, trace)
}

fn status(result: &Result<(Decision, Request<Full<Bytes>>), GatewayError>) -> StatusCode {
    match result {
        Ok(_) => StatusCode::OK,
        Err(e) => e.status_and_message().0,
    }
}

#[tokio::test]
async fn the_built_request_carries_no_caller_credential() {
    let core = core();
    let token = hs256(&service_claims(ISS, "orders"));
    let target = format!("/priv/x?a=1&access_token={token}&b=2");
    let cookie = format!("theme=dark; session={token}");
    let (result, _) = decide(
        &core,
        request(
            Method::GET,
            &target,
            &[("host", "admin.example.com"), ("cookie", &cookie)],
            "",
        ),
        "192.0.2.1",
    )
    .await;
    let (decision, upstream) = result.expect("a service token on the admin route");
    assert_eq!(&*decision.route.name, "admin");
    assert_eq!(
        upstream.uri().to_string(),
        "http://127.0.0.1:9/base/priv/x?a=1&b=2"
    );
    assert_eq!(upstream.headers()["cookie"], "theme=dark");
    assert_eq!(upstream.headers()["host"], "127.0.0.1:9");
    assert_eq!(upstream.headers()["x-service-name"], "orders");
    assert_eq!(upstream.version(), Version::HTTP_11);
    let all = format!("{:?} {:?}", upstream.uri(), upstream.headers());
    assert!(!all.contains(&token), "token forwarded: {all}");
}

#[tokio::test]
async fn host_spellings_reach_the_host_route_or_are_refused() {
    let core = core();
    // Each spelling a backend reads as admin.example.com must be judged by the admin route
    // (no token: 401), never fall through to the public one.
    for host in [
        "admin.example.com",
        "ADMIN.example.com",
        "admin.example.com.",
        "admin.example.com:80",
        "admin.example.com.:080",
    ] {
        let (result, trace) = decide(
            &core,
            request(Method::GET, "/x", &[("host", host)], ""),
            "192.0.2.1",
        )
        .await;
        assert_eq!(status(&result), StatusCode::UNAUTHORIZED, "{host}");
        assert_eq!(
            trace.route.map(|r| r.name.to_string()).as_deref(),
            Some("admin"),
            "{host}"
        );
    }
    for host in [
        "admin.example.com:80:80",
        "x@admin.example.com",
        "admin.example.com..",
        "admin.example.com:x",
    ] {
        let (result, _) = decide(
            &core,
            request(Method::GET, "/x", &[("host", host)], ""),
            "192.0.2.1",
        )
        .await;
        assert_eq!(status(&result), StatusCode::BAD_REQUEST, "{host}");
    }
    let (result, _) = decide(
        &core,
        request(
            Method::GET,
            "/x",
            &[("host", "a.example"), ("host", "admin.example.com")],
            "",
        ),
        "192.0.2.1",
    )
    .await;
    assert_eq!(status(&result), StatusCode::BAD_REQUEST, "two Host lines");
    let (result, _) = decide(&core, request(Method::GET, "/x", &[], ""), "192.0.2.1").await;
    assert_eq!(
        status(&result),
        StatusCode::BAD_REQUEST,
        "HTTP/1.1 without Host"
    );
    // HTTP/2 `:authority` goes through the same function.
    let mut h2 = request(Method::GET, "http://admin.example.com./x", &[], "");
    *h2.version_mut() = Version::HTTP_2;
    let (result, trace) = decide(&core, h2, "192.0.2.1").await;
    assert_eq!(status(&result), StatusCode::UNAUTHORIZED);
    assert_eq!(
        trace.route.map(|r| r.name.to_string()).as_deref(),
        Some("admin")
    );
    // The public route forwards the canonical host, and names it in X-Forwarded-Host.
    let (result, _) = decide(
        &core,
        request(Method::GET, "/x", &[("host", "WWW.Example.org.:80")], ""),
        "192.0.2.1",
    )
    .await;
    let (_, upstream) = result.unwrap();
    assert_eq!(upstream.headers()["host"], "www.example.org");
    assert_eq!(upstream.headers()["x-forwarded-host"], "www.example.org");
}

#[tokio::test]
async fn upgrades_follow_the_allow_list_and_h2c_never_passes() {
    let core = core();
    let h2c = [
        ("host", "www.example.org"),
        ("connection", "Upgrade, HTTP2-Settings"),
        ("upgrade", "h2c"),
        ("http2-settings", "AAMAAABkAARAAAAAAAIAAAAA"),
    ];
    let (result, _) = decide(&core, request(Method::GET, "/x", &h2c, ""), "192.0.2.1").await;
    let (decision, upstream) = result.unwrap();
    assert!(decision.upgrade.is_none());
    for gone in ["upgrade", "connection", "http2-settings"] {
        assert!(!upstream.headers().contains_key(gone), "{gone}");
    }
    let ws = [
        ("host", "www.example.org"),
        ("connection", "Upgrade"),
        ("upgrade", "websocket"),
    ];
    let (result, _) = decide(&core, request(Method::GET, "/x", &ws, ""), "192.0.2.1").await;
    let (decision, upstream) = result.unwrap();
    assert_eq!(decision.upgrade.unwrap(), "websocket");
    assert_eq!(upstream.headers()["upgrade"], "websocket");
    assert_eq!(upstream.headers()["connection"], "upgrade");
    let (result, _) = decide(
        &core,
        request(Method::GET, "/quiet/x", &ws, ""),
        "192.0.2.1",
    )
    .await;
    let (decision, upstream) = result.unwrap();
    assert!(decision.upgrade.is_none(), "upgrades = [] allows none");
    assert!(!upstream.headers().contains_key("upgrade"));
}

#[tokio::test]
async fn only_real_preflights_skip_authentication() {
    let core = core();
    let preflight = [
        ("host", "www.example.org"),
        ("origin", "https://app.example"),
        ("access-control-request-method", "PUT"),
        ("x-http-method-override", "DELETE"),
    ];
    let (result, _) = decide(
        &core,
        request(Method::OPTIONS, "/cors/x", &preflight, ""),
        "192.0.2.1",
    )
    .await;
    let (decision, upstream) = result.expect("a real preflight is exempt");
    assert!(decision.identity.is_none());
    assert!(!upstream.headers().contains_key("x-http-method-override"));
    let (result, _) = decide(
        &core,
        request(
            Method::OPTIONS,
            "/cors/x",
            &preflight,
            r#"{"delete":"everything"}"#,
        ),
        "192.0.2.1",
    )
    .await;
    assert_eq!(
        status(&result),
        StatusCode::UNAUTHORIZED,
        "a preflight has no body"
    );
}

#[tokio::test]
async fn proxy_headers_are_believed_from_trusted_proxies_only() {
    let core = core();
    let hostile = [
        ("host", "www.example.org"),
        ("forwarded", "for=10.0.0.1;host=admin.example.com"),
        ("x-real-ip", "10.0.0.1"),
        ("x-forwarded-for", "198.51.100.1"),
        ("x-forwarded-prefix", "/internal"),
        ("x-forwarded-port", "443"),
        ("x-original-url", "/internal/admin"),
        ("x-rewrite-url", "/internal/admin"),
        ("x-request-id", "chosen-by-client"),
    ];
    let (result, trace) =
        decide(&core, request(Method::GET, "/x", &hostile, ""), "192.0.2.1").await;
    let (_, upstream) = result.unwrap();
    let h = upstream.headers();
    for gone in [
        "forwarded",
        "x-forwarded-prefix",
        "x-forwarded-port",
        "x-original-url",
        "x-rewrite-url",
    ] {
        assert!(!h.contains_key(gone), "{gone}");
    }
    assert_eq!(h["x-forwarded-for"], "192.0.2.1");
    assert_eq!(h["x-real-ip"], "192.0.2.1");
    assert_ne!(h["x-request-id"], "chosen-by-client");
    assert_eq!(trace.client_request_id.unwrap(), "chosen-by-client");

    let (result, trace) = decide(&core, request(Method::GET, "/x", &hostile, ""), "10.1.1.1").await;
    let (_, upstream) = result.unwrap();
    let h = upstream.headers();
    assert_eq!(h["x-forwarded-for"], "198.51.100.1, 10.1.1.1");
    assert_eq!(h["x-real-ip"], "198.51.100.1");
    assert_eq!(h["x-forwarded-prefix"], "/internal");
    assert_eq!(h["x-request-id"], "chosen-by-client");
    assert!(trace.client_request_id.is_none());
    for gone in ["forwarded", "x-original-url", "x-rewrite-url"] {
        assert!(
            !h.contains_key(gone),
            "{gone} is removed even from a trusted proxy"
        );
    }
}

#[tokio::test]
async fn user_tokens_are_refused_on_service_routes_before_anything_is_built() {
    let core = core();
    let user = hs256(&access_claims(ISS, "alice"));
    let (result, trace) = decide(
        &core,
        request(
            Method::GET,
            "/x",
            &[
                ("host", "admin.example.com"),
                ("authorization", &format!("Bearer {user}")),
            ],
            "",
        ),
        "192.0.2.1",
    )
    .await;
    assert_eq!(status(&result), StatusCode::FORBIDDEN);
    assert_eq!(trace.path.as_deref(), Some("/x"));
}
