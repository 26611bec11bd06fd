//! Attacks, the way real attackers send them: every case has its expected status, and the
//! upstream receives nothing it should not.

mod support;

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm::*;
use serde_json::json;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const ISS: &str = "https://issuer.test";

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Signs `header.claims` with HMAC-SHA256 under `key`, whatever the header says.
fn hmac_token(header: &serde_json::Value, claims: &serde_json::Value, key: &[u8]) -> String {
    use hmac::Mac;
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    mac.update(input.as_bytes());
    format!("{input}.{}", b64(&mac.finalize().into_bytes()))
}

/// A gateway with an RS/ES-only issuer, an HMAC issuer, a protected route, a public catch-all
/// and a counting upstream behind both.
async fn gateway() -> (TestGateway, MockUpstream) {
    let up = MockUpstream::echo().await;
    let config = format!(
        r#"
[limits]
header_read_timeout = "1s"

[[issuers]]
issuer = "{ISS}"
algorithms = ["RS256", "ES256"]
# Not the [tokens] signing issuer (that is hmac-issuer), yet it mints service tokens.
service_tokens = true
public_keys = [
  {{ kid = "rsa", pem_file = "{rsa}" }},
  {{ kid = "ec", pem_file = "{ec}" }},
]

[[issuers]]
issuer = "hmac-issuer"
algorithms = ["HS256"]
secret = "{SECRET}"

[[issuers]]
issuer = "other-issuer"
algorithms = ["HS256"]
secret = "a-completely-different-secret-of-32-bytes"

[[routes]]
prefix = "/internal"
upstream = "{up}"
policy = "service"

[[routes]]
prefix = "/"
upstream = "{up}"
policy = "public"
"#,
        rsa = key_path("rsa.pub.pem"),
        ec = key_path("ec256.pub.pem"),
        up = up.url(),
    );
    (spawn_gateway(&config).await, up)
}

async fn status_with(gw: &TestGateway, path: &str, token: &str) -> u16 {
    let auth = format!("Bearer {token}");
    get(&gw.url(path), &[("authorization", auth.as_str())])
        .await
        .status
        .as_u16()
}

#[tokio::test]
async fn forged_tokens_are_refused_and_reach_nothing() {
    let (gw, up) = gateway().await;
    let claims = service_claims(ISS, "orders");
    let payload = b64(claims.to_string().as_bytes());
    let rsa_public_pem = std::fs::read(key_path("rsa.pub.pem")).unwrap();
    let ec_public_pem = std::fs::read(key_path("ec256.pub.pem")).unwrap();
    let mut cases: Vec<(String, String)> = Vec::new();
    for alg in ["none", "None", "NONE", "nOnE"] {
        let header = b64(json!({"alg": alg, "typ": "JWT"}).to_string().as_bytes());
        cases.push((
            format!("alg {alg}, empty signature"),
            format!("{header}.{payload}."),
        ));
        cases.push((
            format!("alg {alg}, junk signature"),
            format!("{header}.{payload}.AAAA"),
        ));
    }
    // Key confusion: the public key used as an HMAC secret.
    cases.push((
        "HS256 with the RSA public key as secret".into(),
        hmac_token(
            &json!({"alg": "HS256", "kid": "rsa"}),
            &claims,
            &rsa_public_pem,
        ),
    ));
    cases.push((
        "HS256 with the EC public key as secret".into(),
        hmac_token(
            &json!({"alg": "HS256", "kid": "ec"}),
            &claims,
            &ec_public_pem,
        ),
    ));
    // Swaps within a family: PS256 and ES384 are not on the issuer's list.
    cases.push((
        "RS256 key, PS256 header".into(),
        mint(&claims, PS256, "rsa.key", Some("rsa")),
    ));
    cases.push((
        "ES384 instead of ES256".into(),
        mint(&claims, ES384, "ec384.key", Some("ec")),
    ));
    // ECDSA r = s = 0 ("psychic signature", CVE-2022-21449).
    let es_header = b64(json!({"alg": "ES256", "kid": "ec"}).to_string().as_bytes());
    cases.push((
        "ECDSA r=s=0".into(),
        format!("{es_header}.{payload}.{}", b64(&[0u8; 64])),
    ));
    // Truncated and emptied signatures of a genuine token.
    let genuine = mint(&claims, RS256, "rsa.key", Some("rsa"));
    cases.push((
        "truncated signature".into(),
        genuine[..genuine.len() - 10].to_owned(),
    ));
    cases.push((
        "empty signature".into(),
        genuine[..=genuine.rfind('.').unwrap()].to_owned(),
    ));
    cases.push(("whitespace inside".into(), genuine.replacen('.', ". ", 1)));
    // Keys the token brings itself are never used.
    let attacker = mint(&claims, RS256, "rsa2.key", None);
    let attacker_jwk =
        jsonwebtoken::jwk::Jwk::from_encoding_key(&encoding_key(RS256, "rsa2.key"), RS256).unwrap();
    let attacker_header = json!({"alg": "RS256", "jwk": attacker_jwk});
    let (_, rest) = attacker.split_once('.').unwrap();
    cases.push((
        "embedded jwk".into(),
        format!("{}.{rest}", b64(attacker_header.to_string().as_bytes())),
    ));
    // kid games.
    cases.push((
        "kid path traversal".into(),
        mint(&claims, RS256, "rsa2.key", Some("../../../../etc/passwd")),
    ));
    cases.push((
        "huge kid".into(),
        mint(&claims, RS256, "rsa2.key", Some(&"k".repeat(8_000))),
    ));
    cases.push((
        "binary kid".into(),
        mint(&claims, RS256, "rsa2.key", Some("\u{0}\u{1}\u{ff}")),
    ));
    // One issuer's token signed with another issuer's key.
    let mut other = service_claims("hmac-issuer", "orders");
    cases.push((
        "iss of one issuer, key of another".into(),
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(HS256),
            &other,
            &jsonwebtoken::EncodingKey::from_secret(b"a-completely-different-secret-of-32-bytes"),
        )
        .unwrap(),
    ));
    // Time claims of every wrong shape.
    for exp in [
        json!("9999999999"),
        json!(-1),
        json!(1e300),
        json!(null),
        json!([1]),
        json!(now() as f64 - 100.5),
    ] {
        other["exp"] = exp.clone();
        cases.push((format!("exp {exp}"), hs256(&other)));
    }
    other["exp"] = json!(now() + 600);
    other["nbf"] = json!("0");
    cases.push(("nbf as string".into(), hs256(&other)));
    for (name, token) in &cases {
        let status = status_with(&gw, "/internal/x", token).await;
        assert_eq!(status, 401, "{name}");
    }
    assert_eq!(up.hits(), 0, "a forged token reached the upstream");

    // The genuine token, for contrast, passes.
    assert_eq!(status_with(&gw, "/internal/x", &genuine).await, 200);
}

#[tokio::test]
async fn token_carried_key_urls_are_never_fetched() {
    let (gw, up) = gateway().await;
    let trap = MockUpstream::echo().await;
    let claims = service_claims(ISS, "orders");
    let jku = format!("{}/jwks.json", trap.url());
    for field in ["jku", "x5u"] {
        // Signed by an attacker key, pointing at the attacker's key set.
        let header = jsonwebtoken::Header {
            kid: Some("attacker".into()),
            jku: (field == "jku").then(|| jku.clone()),
            x5u: (field == "x5u").then(|| jku.clone()),
            ..jsonwebtoken::Header::new(RS256)
        };
        let token =
            jsonwebtoken::encode(&header, &claims, &encoding_key(RS256, "rsa2.key")).unwrap();
        assert_eq!(
            status_with(&gw, "/internal/x", &token).await,
            401,
            "{field}"
        );
        // Signed by the real key, the header URL is simply ignored.
        let header = jsonwebtoken::Header {
            kid: Some("rsa".into()),
            jku: (field == "jku").then(|| jku.clone()),
            x5u: (field == "x5u").then(|| jku.clone()),
            ..jsonwebtoken::Header::new(RS256)
        };
        let token =
            jsonwebtoken::encode(&header, &claims, &encoding_key(RS256, "rsa.key")).unwrap();
        assert_eq!(
            status_with(&gw, "/internal/x", &token).await,
            200,
            "{field}"
        );
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(trap.hits(), 0, "the gateway fetched a URL named by a token");
    assert_eq!(up.hits(), 2);
}

#[tokio::test]
async fn protected_prefixes_cannot_be_reached_by_another_spelling() {
    let (gw, up) = gateway().await;
    let cases = [
        ("//internal/x", 401),
        ("/public/../internal/x", 401),
        ("/./internal/x", 401),
        ("/%2e/internal/x", 401),
        ("/%2E%2E/internal/x", 400),
        ("/public/%2e%2e/internal/x", 401),
        ("/internal%2fx", 400),
        ("/%2finternal/x", 400),
        ("/internal;jsessionid=1/x", 400),
        ("/INTERNAL/x", 401),
        ("/Internal/x", 401),
        ("/internal%00/x", 400),
        ("/%69nternal/x", 401),
        ("/internal\\x", 400),
    ];
    for (path, want) in cases {
        // Raw socket: clients would normalise some of these themselves.
        let reply = raw_request(
            &gw,
            &format!("GET {path} HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n"),
        )
        .await;
        let status: u16 = reply[9..12].parse().unwrap_or(0);
        assert!(
            status == want || (want == 400 && status == 400),
            "{path}: got {status}, want {want}\n{reply}"
        );
    }
    // Absolute-form targets are routed by their path, never by a header.
    let reply = raw_request(
        &gw,
        "GET http://a/internal/x HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert!(reply.starts_with("HTTP/1.1 401"), "{reply}");
    // A fragment is not part of the path.
    let reply = raw_request(
        &gw,
        "GET /public#/../internal/x HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert!(
        reply.starts_with("HTTP/1.1 400") || reply.starts_with("HTTP/1.1 200"),
        "{reply}"
    );
    for seen in up.received() {
        assert!(
            !seen.uri.to_ascii_lowercase().contains("internal"),
            "{} reached the upstream",
            seen.uri
        );
    }
}

#[tokio::test]
async fn client_routing_headers_do_not_influence_routing_or_policy() {
    let (gw, up) = gateway().await;
    let headers = [
        ("x-original-url", "/internal/x"),
        ("x-rewrite-url", "/internal/x"),
        ("x-forwarded-prefix", "/internal"),
        ("x-forwarded-host", "internal.example"),
        ("x-forwarded-proto", "https"),
        ("x-http-method-override", "DELETE"),
    ];
    let reply = get(&gw.url("/public/page"), &headers).await;
    assert_eq!(reply.status, 200);
    let seen = up.last();
    assert_eq!(seen.uri, "/public/page");
    assert_eq!(seen.method, "GET");
    assert_eq!(
        seen.headers["x-forwarded-proto"], "http",
        "the client's value is replaced"
    );
    assert_ne!(seen.headers["x-forwarded-host"], "internal.example");

    // Connection naming forwarding or identity headers cannot strip what the gateway sets.
    let token = mint(
        &service_claims(ISS, "orders"),
        RS256,
        "rsa.key",
        Some("rsa"),
    );
    let auth = format!("Bearer {token}");
    let reply = get(
        &gw.url("/internal/x"),
        &[
            ("authorization", &auth),
            (
                "connection",
                "x-forwarded-for, x-user-id, x-service-name, x-request-id",
            ),
        ],
    )
    .await;
    assert_eq!(reply.status, 200);
    let seen = up.last();
    assert_eq!(seen.headers["x-service-name"], "orders");
    assert_eq!(seen.headers["x-forwarded-for"], "127.0.0.1");
    assert!(seen.headers.contains_key("x-request-id"));
}

async fn raw_request(gw: &TestGateway, request: &str) -> String {
    let mut stream = within(TcpStream::connect(gw.addr)).await.unwrap();
    within(stream.write_all(request.as_bytes())).await.unwrap();
    let mut response = Vec::new();
    let _ = within(stream.read_to_end(&mut response)).await;
    String::from_utf8_lossy(&response).into_owned()
}

#[tokio::test]
async fn request_framing_attacks_are_refused() {
    let (gw, up) = gateway().await;
    // CL with TE: framed by the chunked encoding alone (empty here), the length ignored, the
    // connection closed after the answer (RFC 9112 §6.3); upstream gets a re-framed request.
    let reply = raw_request(&gw, "POST /public HTTP/1.1\r\nhost: a\r\ncontent-length: 4\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\nGET /internal/smuggled HTTP/1.1\r\nhost: a\r\n\r\n").await;
    assert!(
        reply.starts_with("HTTP/1.1 200") || reply.starts_with("HTTP/1.1 400"),
        "{reply}"
    );
    assert_eq!(
        reply.matches("HTTP/1.1 ").count(),
        1,
        "the trailing request was not served: {reply}"
    );
    let cases = [
        (
            "two different CL",
            "POST /public HTTP/1.1\r\nhost: a\r\ncontent-length: 4\r\ncontent-length: 5\r\nconnection: close\r\n\r\nabcde",
        ),
        (
            "malformed CL",
            "POST /public HTTP/1.1\r\nhost: a\r\ncontent-length: 4x\r\nconnection: close\r\n\r\nabcd",
        ),
        (
            "odd TE",
            "POST /public HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked, identity\r\nconnection: close\r\n\r\n0\r\n\r\n",
        ),
        (
            "TE not chunked",
            "POST /public HTTP/1.1\r\nhost: a\r\ntransfer-encoding: gzip\r\nconnection: close\r\n\r\nxxxx",
        ),
        (
            "bad chunk size",
            "POST /public HTTP/1.1\r\nhost: a\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
        ),
        (
            "space before colon",
            "GET /public HTTP/1.1\r\nhost : a\r\nconnection: close\r\n\r\n",
        ),
        (
            "obs-fold",
            "GET /public HTTP/1.1\r\nhost: a\r\nx-a: b\r\n c\r\nconnection: close\r\n\r\n",
        ),
    ];
    for (name, request) in cases {
        let reply = raw_request(&gw, request).await;
        let ok = reply.starts_with("HTTP/1.1 400")
            || reply.starts_with("HTTP/1.1 501")
            || reply.is_empty()
            || reply.starts_with("HTTP/1.1 502");
        assert!(ok, "{name}: {reply}");
    }
    // Nothing smuggled reached the upstream with a body or as a second request.
    assert!(
        up.received().iter().all(|r| r.body_len == 0),
        "{:?}",
        up.received()
    );

    // An unauthorized POST's body is never read as a next request.
    let smuggled = "GET /internal/smuggled HTTP/1.1\r\nhost: a\r\n\r\n";
    let request = format!(
        "POST /internal/x HTTP/1.1\r\nhost: a\r\ncontent-length: {}\r\n\r\n{smuggled}",
        smuggled.len()
    );
    let reply = raw_request(&gw, &request).await;
    assert!(reply.starts_with("HTTP/1.1 401"), "{reply}");
    assert_eq!(
        reply.matches("HTTP/1.1 ").count(),
        1,
        "a second response: {reply}"
    );
    assert!(up.received().iter().all(|r| !r.uri.contains("smuggled")));
}

#[tokio::test]
async fn resource_limits_answer_431_414_413() {
    let up = MockUpstream::echo().await;
    let gw = spawn_gateway(&format!(
        "[limits]\nmax_headers = 50\n[[routes]]\nprefix = \"/\"\nupstream = \"{}\"\npolicy = \"public\"\nmax_body_bytes = 100\n",
        up.url()
    ))
    .await;
    let many: String = (0..80).map(|i| format!("x-h{i}: v\r\n")).collect();
    let reply = raw_request(
        &gw,
        &format!("GET / HTTP/1.1\r\nhost: a\r\n{many}connection: close\r\n\r\n"),
    )
    .await;
    assert!(reply.starts_with("HTTP/1.1 431"), "{reply}");
    let long = "a".repeat(9000);
    let reply = raw_request(
        &gw,
        &format!("GET /{long} HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n"),
    )
    .await;
    assert!(reply.starts_with("HTTP/1.1 414"), "{reply}");
    let reply = raw_request(
        &gw,
        &format!(
            "GET /{} HTTP/1.1\r\nhost: a\r\nconnection: close\r\n\r\n",
            "a".repeat(40_000)
        ),
    )
    .await;
    assert!(
        reply.starts_with("HTTP/1.1 431") || reply.starts_with("HTTP/1.1 414"),
        "{reply}"
    );
    let reply = raw_request(
        &gw,
        "POST / HTTP/1.1\r\nhost: a\r\ncontent-length: 101\r\nconnection: close\r\n\r\n",
    )
    .await;
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
    assert_eq!(up.hits(), 0);
}

#[tokio::test]
async fn connection_flood_keeps_serving_probes() {
    let gw = GatewayProcess::spawn(
        "[[routes]]\nprefix = \"/\"\nupstream = \"echo\"\npolicy = \"public\"\n",
        &[],
    );
    let before = gw.proc_status_kib("VmRSS");
    // The flood comes from another loopback address (all of 127/8 is local): past
    // `max_connections_per_ip` its connections are closed on accept, the probe's are not.
    let mut idle = Vec::new();
    for _ in 0..1000 {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        idle.push(within(socket.connect(gw.addr)).await.unwrap());
    }
    // Half of them send a partial head and stall.
    for s in idle.iter_mut().step_by(2) {
        // A connection already closed for the address limit may refuse the write.
        let _ = within(s.write_all(b"GET / HTTP/1.1\r\nhost: a\r\n")).await;
    }
    let probe = get(&gw.url("/probe"), &[]).await;
    assert_eq!(probe.status, 200);
    let after = gw.proc_status_kib("VmRSS");
    eprintln!("RSS {before} KiB idle, {after} KiB with 1000 flood connections");
    assert!(
        after < before + 64 * 1024,
        "RSS grew from {before} to {after} KiB"
    );
}

#[tokio::test]
async fn http2_rapid_reset_and_oversized_headers_leave_the_gateway_serving() {
    let up = MockUpstream::start(|_| async {
        tokio::time::sleep(Duration::from_millis(200)).await;
        json_response(http::StatusCode::OK, &json!({}))
    })
    .await;
    let gw = spawn_gateway(&public_route("/", &up.url(), "")).await;
    let h2 = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    // Rapid reset: open streams and cancel them at once, 2000 times on one connection.
    for i in 0..2000 {
        let request = http::Request::get(gw.url(&format!("/r/{i}")))
            .body(http_body_util::Full::default())
            .unwrap();
        let pending = h2.request(request);
        drop(tokio::time::timeout(Duration::from_micros(50), pending).await);
    }
    // Oversized header list over HTTP/2.
    let request = http::Request::get(gw.url("/big"))
        .header("x-big", "v".repeat(64 * 1024))
        .body(http_body_util::Full::default())
        .unwrap();
    let big = tokio::time::timeout(Duration::from_secs(5), h2.request(request))
        .await
        .expect("answered or reset");
    if let Ok(response) = big {
        assert_eq!(
            response.status(),
            http::StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
        );
    }
    // A fresh client still gets served.
    let probe = get(&gw.url("/probe"), &[]).await;
    assert_eq!(probe.status, 200);
    assert!(up.received().iter().all(|r| r.uri != "/big"));
}

/// One HTTP/2 frame: 24-bit length, type, flags, stream id, payload.
fn h2_frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut frame = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    frame.extend_from_slice(&stream.to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

#[tokio::test]
async fn http2_continuation_flood_is_cut_off() {
    let gw = GatewayProcess::spawn(
        "[[routes]]\nprefix = \"/\"\nupstream = \"echo\"\npolicy = \"public\"\n",
        &[],
    );
    let before = gw.proc_status_kib("VmRSS");
    let mut stream = within(TcpStream::connect(gw.addr)).await.unwrap();
    let mut out = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    out.extend(h2_frame(0x4, 0, 0, &[])); // SETTINGS
    // HEADERS without END_HEADERS: :method GET, :scheme http, :path /
    out.extend(h2_frame(0x1, 0x1, 1, &[0x82, 0x86, 0x84]));
    within(stream.write_all(&out)).await.unwrap();
    // Then CONTINUATION frames that never end the header block: literal headers x: y.
    let block: Vec<u8> = std::iter::repeat_n([0x00u8, 0x01, b'x', 0x01, b'y'], 3000)
        .flatten()
        .collect();
    let frame = h2_frame(0x9, 0, 1, &block);
    let mut sent = 0usize;
    for _ in 0..2000 {
        if stream.write_all(&frame).await.is_err() {
            break; // the gateway closed the connection: that is the point
        }
        sent += 1;
    }
    // Whatever was accepted, the connection ends (GOAWAY and close) instead of buffering.
    let mut buf = vec![0u8; 64 * 1024];
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return true,
                Ok(_) => continue,
            }
        }
    })
    .await
    .unwrap_or(false);
    assert!(
        ended,
        "connection still open after {sent} CONTINUATION frames"
    );
    let after = gw.proc_status_kib("VmRSS");
    assert!(
        after < before + 32 * 1024,
        "RSS grew from {before} to {after} KiB"
    );
    assert_eq!(get(&gw.url("/probe"), &[]).await.status, 200);
}
