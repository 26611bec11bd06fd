//! Request integrity over real sockets: what a hostile client sends, and the raw bytes the
//! upstream received. Each test is one finding of the "request integrity" review; the witness
//! is [`RecordingUpstream`], never the built-in echo.

mod support;

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use support::recording::{RecordingUpstream, head_of};
use support::{
    AuthReply, AuthServer, SECRET, TestGateway, hs256, scrape_value, service_claims, spawn_gateway,
    within,
};

const ISS: &str = "tollgate";

fn issuer() -> String {
    format!(
        "[[issuers]]\nissuer = \"{ISS}\"\nalgorithms = [\"HS256\"]\nsecret = \"{SECRET}\"\nfrom_query = \"access_token\"\n\n"
    )
}

/// Sends raw bytes, returns everything the gateway answered until it closed (or 3 s passed).
async fn raw(gw: &TestGateway, request: &[u8]) -> String {
    let mut stream = within(TcpStream::connect(gw.addr)).await.unwrap();
    within(stream.write_all(request)).await.unwrap();
    let mut response = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(3), stream.read_to_end(&mut response)).await;
    String::from_utf8_lossy(&response).into_owned()
}

fn status_of(reply: &str) -> u16 {
    reply
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {reply:?}"))
}

#[tokio::test]
async fn query_tokens_never_reach_an_upstream_or_a_vendor() {
    let up = RecordingUpstream::start().await;
    let vendor = RecordingUpstream::start().await;
    let auth = AuthServer::start(AuthReply::Field("accessToken")).await;
    let gw = spawn_gateway(&format!(
        "{}[[providers]]\nname = \"vendor\"\nkind = \"login\"\nauth_url = \"{}\"\nemail = \"a@b.c\"\npassword = \"vendor-password\"\n\n\
         [[routes]]\nprefix = \"/priv\"\nupstream = \"{}\"\npolicy = \"service\"\n\n\
         [[routes]]\nprefix = \"/vendor\"\nupstream = \"{}\"\npolicy = \"service\"\nupstream_auth = \"vendor\"\n",
        issuer(),
        auth.url(),
        up.url(),
        vendor.url()
    ))
    .await;
    let token = hs256(&service_claims(ISS, "orders"));
    for (path, upstream) in [("/priv/x", &up), ("/vendor/y", &vendor)] {
        let request = format!(
            "GET {path}?a=1&access_token={token}&access%5Ftoken={token} HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n"
        );
        let reply = raw(&gw, request.as_bytes()).await;
        assert_eq!(status_of(&reply), 200, "{reply}");
        upstream.wait_requests(1).await;
        let received = upstream.raw();
        assert!(
            received.starts_with(&format!("GET {path}?a=1 HTTP/1.1\r\n")),
            "{received}"
        );
        assert!(
            !received.contains(&token),
            "caller token reached {path}: {received}"
        );
    }
    assert!(
        vendor.raw().contains("authorization: Bearer tok-1"),
        "{}",
        vendor.raw()
    );
}

#[tokio::test]
async fn h2c_is_never_tunnelled_and_websocket_only_where_allowed() {
    let up = RecordingUpstream::accepting_upgrades().await;
    let gw = spawn_gateway(&format!(
        "[[routes]]\nprefix = \"/\"\nupstream = \"{0}\"\npolicy = \"public\"\n\n\
         [[routes]]\nprefix = \"/plain\"\nupstream = \"{0}\"\npolicy = \"public\"\nupgrades = []\n",
        up.url()
    ))
    .await;
    // The h2c smuggling opener: answered as plain HTTP/1.1, nothing of the upgrade forwarded.
    let reply = raw(
        &gw,
        b"GET / HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n",
    )
    .await;
    assert_eq!(status_of(&reply), 200, "{reply}");
    let head = head_of(&up.raw(), 0).to_ascii_lowercase();
    assert!(
        !head.contains("upgrade") && !head.contains("http2-settings"),
        "{head}"
    );

    // A websocket on a route with `upgrades = []` is a plain request upstream.
    let reply = raw(
        &gw,
        b"GET /plain/ws HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    )
    .await;
    assert_eq!(status_of(&reply), 200, "{reply}");
    let head = head_of(&up.raw(), 1).to_ascii_lowercase();
    assert!(!head.contains("upgrade"), "{head}");

    // Allowed: the tunnel carries bytes both ways.
    let mut stream = within(TcpStream::connect(gw.addr)).await.unwrap();
    within(stream.write_all(
        b"GET /ws HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    ))
    .await
    .unwrap();
    let mut buf = vec![0; 1024];
    let n = within(stream.read(&mut buf)).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 101"));
    within(stream.write_all(b"tunnelled-bytes")).await.unwrap();
    let mut echoed = [0; 15];
    within(stream.read_exact(&mut echoed)).await.unwrap();
    assert_eq!(&echoed, b"tunnelled-bytes");
}

#[tokio::test]
async fn an_unasked_101_is_a_502_and_no_tunnel() {
    let up = RecordingUpstream::unsolicited_101().await;
    let gw = spawn_gateway(&format!(
        "[[routes]]\nprefix = \"/\"\nupstream = \"{}\"\npolicy = \"public\"\n",
        up.url()
    ))
    .await;
    for request in [
        &b"GET / HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n",
    ] {
        let reply = raw(&gw, request).await;
        assert_eq!(status_of(&reply), 502, "{reply}");
        assert!(reply.contains("\"error\":\"upstream failed\""), "{reply}");
    }
}

fn host_routes(admin: &RecordingUpstream, public: &RecordingUpstream) -> String {
    format!(
        "{}[[routes]]\nprefix = \"/\"\nhost = \"admin.example.com\"\nupstream = \"{}\"\npolicy = \"service\"\n\n\
         [[routes]]\nprefix = \"/\"\nupstream = \"{}\"\npolicy = \"public\"\npreserve_host = true\n",
        issuer(),
        admin.url(),
        public.url()
    )
}

#[tokio::test]
async fn host_spellings_cannot_reach_the_any_host_route() {
    let (admin, public) = (
        RecordingUpstream::start().await,
        RecordingUpstream::start().await,
    );
    let gw = spawn_gateway(&host_routes(&admin, &public)).await;
    let cases: [(&str, u16); 8] = [
        ("Host: admin.example.com.\r\n", 401),
        ("Host: ADMIN.EXAMPLE.COM:80\r\n", 401),
        ("Host: admin.example.com:80:80\r\n", 400),
        ("Host: x@admin.example.com\r\n", 400),
        ("Host: admin.example.com..\r\n", 400),
        ("Host: public.example\r\nHost: admin.example.com\r\n", 400),
        ("", 400),
        ("Host: public.example\r\n", 200),
    ];
    for (host_lines, want) in cases {
        let request = format!("GET /x HTTP/1.1\r\n{host_lines}Connection: close\r\n\r\n");
        let reply = raw(&gw, request.as_bytes()).await;
        assert_eq!(status_of(&reply), want, "{host_lines:?}: {reply}");
        if want == 400 {
            assert!(reply.contains("\"error\":\"invalid host\""), "{reply}");
        }
    }
    // An absolute-form target names the host too, and must agree with Host.
    let reply = raw(
        &gw,
        b"GET http://admin.example.com./x HTTP/1.1\r\nHost: public.example\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status_of(&reply), 400, "{reply}");
    assert_eq!(admin.requests(), 0);
    assert_eq!(public.requests(), 1, "only the honest public request");
    assert!(head_of(&public.raw(), 0).contains("host: public.example\r\n"));
}

#[tokio::test]
async fn http2_authority_is_canonicalised_like_host() {
    let (admin, public) = (
        RecordingUpstream::start().await,
        RecordingUpstream::start().await,
    );
    let gw = spawn_gateway(&host_routes(&admin, &public)).await;
    for authority in ["admin.example.com.", "Admin.Example.Com"] {
        // hyper's client sends the URI's authority as `:authority`.
        let request = http::Request::get(format!("http://{authority}/x"))
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .unwrap();
        let stream = within(TcpStream::connect(gw.addr)).await.unwrap();
        let (mut sender, conn) = within(hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            hyper_util::rt::TokioIo::new(stream),
        ))
        .await
        .unwrap();
        tokio::spawn(conn);
        let response = within(sender.send_request(request)).await.unwrap();
        assert_eq!(response.status(), 401, "{authority}");
    }
    assert_eq!((admin.requests(), public.requests()), (0, 0));
}

#[tokio::test]
async fn a_preflight_exemption_forwards_only_real_preflights() {
    let up = RecordingUpstream::start().await;
    let gw = spawn_gateway(&format!(
        "{}[[routes]]\nprefix = \"/api\"\nupstream = \"{}\"\npolicy = \"service\"\nallow_cors_preflight = true\n",
        issuer(),
        up.url()
    ))
    .await;
    let body = r#"{"delete":"everything"}"#;
    let smuggled = format!(
        "OPTIONS /api/users/1 HTTP/1.1\r\nHost: gw\r\nOrigin: https://evil.example\r\nAccess-Control-Request-Method: DELETE\r\nX-HTTP-Method-Override: DELETE\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let reply = raw(&gw, smuggled.as_bytes()).await;
    assert_eq!(status_of(&reply), 401, "{reply}");
    assert_eq!(up.requests(), 0);

    let real = "OPTIONS /api/users/1 HTTP/1.1\r\nHost: gw\r\nOrigin: https://app.example\r\nAccess-Control-Request-Method: DELETE\r\nX-HTTP-Method-Override: DELETE\r\nConnection: close\r\n\r\n";
    let reply = raw(&gw, real.as_bytes()).await;
    assert_eq!(status_of(&reply), 200, "{reply}");
    let head = head_of(&up.raw(), 0).to_ascii_lowercase();
    assert!(head.starts_with("options /api/users/1 http/1.1"), "{head}");
    assert!(!head.contains("method-override"), "{head}");
}

const PROXY_HEADERS: &str = "Forwarded: for=10.0.0.1;host=admin.example.com;proto=https\r\nX-Real-IP: 10.0.0.1\r\nX-Forwarded-For: 198.51.100.1\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: admin.example.com\r\nX-Forwarded-Prefix: /internal\r\nX-Forwarded-Port: 443\r\nX-Original-URL: /internal/admin\r\nX-Rewrite-URL: /internal/admin\r\nTrue-Client-IP: 10.0.0.1\r\nX-Request-Id: chosen-by-client\r\n";

async fn forwarded_head(trusted: &str) -> String {
    let up = RecordingUpstream::start().await;
    let gw = spawn_gateway(&format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\nadmin_listen = \"\"\ntrusted_proxies = [{trusted}]\n\n\
         [[routes]]\nprefix = \"/\"\nupstream = \"{}\"\npolicy = \"public\"\n",
        up.url()
    ))
    .await;
    let request =
        format!("GET /x HTTP/1.1\r\nHost: gw.example\r\n{PROXY_HEADERS}Connection: close\r\n\r\n");
    let reply = raw(&gw, request.as_bytes()).await;
    assert_eq!(status_of(&reply), 200, "{reply}");
    // Every header line ends in CRLF, the last one included.
    format!("{}\r\n", head_of(&up.raw(), 0).to_ascii_lowercase())
}

#[tokio::test]
async fn client_proxy_headers_are_dropped_unless_the_peer_is_a_trusted_proxy() {
    let head = forwarded_head("").await;
    for gone in [
        "forwarded:",
        "x-forwarded-prefix",
        "x-forwarded-port",
        "x-original-url",
        "x-rewrite-url",
        "true-client-ip",
        "10.0.0.1",
        "198.51.100.1",
        "https",
        "admin.example.com",
        "chosen-by-client",
    ] {
        assert!(
            !head.contains(gone),
            "{gone} forwarded from an untrusted client:\n{head}"
        );
    }
    for kept in [
        "x-forwarded-for: 127.0.0.1\r\n",
        "x-real-ip: 127.0.0.1\r\n",
        "x-forwarded-proto: http\r\n",
        "x-forwarded-host: gw.example\r\n",
    ] {
        assert!(head.contains(kept), "{kept:?} missing:\n{head}");
    }

    let head = forwarded_head("\"127.0.0.0/8\"").await;
    for kept in [
        "x-forwarded-for: 198.51.100.1, 127.0.0.1\r\n",
        "x-real-ip: 198.51.100.1\r\n",
        "x-forwarded-proto: https\r\n",
        "x-forwarded-prefix: /internal\r\n",
        "x-request-id: chosen-by-client\r\n",
        "x-forwarded-host: gw.example\r\n",
    ] {
        assert!(head.contains(kept), "{kept:?} missing:\n{head}");
    }
    for gone in [
        "forwarded:",
        "x-original-url",
        "x-rewrite-url",
        "true-client-ip",
    ] {
        assert!(
            !head.contains(gone),
            "{gone} forwarded from a trusted proxy:\n{head}"
        );
    }
}

#[tokio::test]
async fn a_broken_client_body_is_a_client_error_not_an_upstream_failure() {
    let up = RecordingUpstream::start().await;
    let gw = spawn_gateway(&format!(
        "[[routes]]\nname = \"up\"\nprefix = \"/\"\nupstream = \"{}\"\npolicy = \"public\"\n",
        up.url()
    ))
    .await;
    // A valid first chunk, then a chunk size that is not hex.
    let reply = raw(
        &gw,
        b"POST /upload HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\nworld\r\n0\r\n\r\n",
    )
    .await;
    assert_eq!(status_of(&reply), 400, "{reply}");
    assert!(
        reply.contains("request body malformed or incomplete"),
        "{reply}"
    );
    // What reached the upstream is a chunked body without its last chunk: never a whole request.
    let received = up.raw();
    assert!(
        !received.contains("world") && !received.contains("0\r\n\r\n"),
        "{received}"
    );
    let metrics = support::get(&format!("http://{}/metrics", gw.admin.unwrap()), &[]).await;
    let text = metrics.text();
    assert_eq!(
        scrape_value(
            &text,
            "tollgate_upstream_errors_total{route=\"up\",kind=\"reset\"}"
        ),
        Some(0.0),
        "declared at zero, never counted: {text}"
    );
    assert!(text.contains("status=\"400\""), "{text}");
}

#[tokio::test]
async fn the_echo_walkthrough_shows_what_a_real_upstream_receives() {
    let real = RecordingUpstream::describing().await;
    let gw = spawn_gateway(&format!(
        "{}[[routes]]\nprefix = \"/echo\"\nupstream = \"echo\"\npolicy = \"public\"\nstrip_prefix = true\n\n\
         [[routes]]\nprefix = \"/real\"\nupstream = \"{}\"\npolicy = \"public\"\nstrip_prefix = true\n",
        issuer(),
        real.url()
    ))
    .await;
    let token = hs256(&service_claims(ISS, "orders"));
    let hostile = format!(
        "Host: gw.example\r\nAuthorization: Bearer {token}\r\nX-User-Id: spoof\r\nX_Service_Name: spoof\r\nConnection: x-custom\r\nX-Custom: hop\r\nX-Original-URL: /internal\r\nForwarded: for=10.0.0.1\r\nX-Forwarded-For: 10.0.0.1\r\nAccept: */*\r\nConnection: close\r\n\r\n"
    );
    let mut described = Vec::new();
    for prefix in ["/echo", "/real"] {
        let request = format!("GET {prefix}/x?a=1&access_token={token} HTTP/1.1\r\n{hostile}");
        let reply = raw(&gw, request.as_bytes()).await;
        assert_eq!(status_of(&reply), 200, "{reply}");
        let body = reply
            .split_once("\r\n\r\n")
            .map(|(_, b)| b)
            .unwrap_or_default();
        let mut json: serde_json::Value = serde_json::from_str(body).expect("JSON description");
        // Host and the request id differ by design (the upstream's authority; one id per request).
        let headers = json["headers"].as_object_mut().unwrap();
        headers.remove("host");
        headers.remove("x-request-id");
        described.push(json);
    }
    assert_eq!(
        described[0], described[1],
        "echo and a real upstream disagree"
    );
    assert_eq!(described[1]["path"], "/x");
    assert_eq!(described[1]["query"], "a=1");
    assert_eq!(described[1]["headers"]["x-service-name"][0], "orders");
    assert!(
        !described[1]["headers"]
            .as_object()
            .unwrap()
            .contains_key("x-custom")
    );
}

#[tokio::test]
async fn upstream_responses_cannot_carry_identity_or_plant_token_cookies() {
    let up = support::MockUpstream::start(|_| async {
        http::Response::builder()
            .header("x-user-id", "admin")
            .header("x-tenant-id", "other-tenant")
            .header("set-cookie", "session=planted.by.upstream; Path=/")
            .header("set-cookie", "theme=dark")
            .body(http_body_util::Full::new(bytes::Bytes::from_static(b"ok")))
            .unwrap()
    })
    .await;
    let issuer = format!(
        "[[issuers]]\nissuer = \"{ISS}\"\nalgorithms = [\"HS256\"]\nsecret = \"{SECRET}\"\nfrom_cookie = \"session\"\n\n"
    );
    let gw = spawn_gateway(&format!(
        "{issuer}[[routes]]\nprefix = \"/app\"\nupstream = \"{0}\"\npolicy = \"public\"\n\n\
         [[routes]]\nprefix = \"/login\"\nupstream = \"{0}\"\npolicy = \"public\"\nallow_token_cookie = true\n",
        up.url()
    ))
    .await;
    let reply = raw(
        &gw,
        b"GET /app/x HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status_of(&reply), 200, "{reply}");
    let lower = reply.to_ascii_lowercase();
    assert!(
        !lower.contains("x-user-id") && !lower.contains("x-tenant-id"),
        "{reply}"
    );
    assert!(!reply.contains("planted"), "{reply}");
    assert!(lower.contains("set-cookie: theme=dark"), "{reply}");
    // The login service's route may set the session cookie; identity still never passes.
    let reply = raw(
        &gw,
        b"GET /login HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(reply.contains("session=planted.by.upstream"), "{reply}");
    assert!(!reply.to_ascii_lowercase().contains("x-user-id"), "{reply}");
}
