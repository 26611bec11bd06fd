//! The signed, request-bound identity assertion (`x-tollgate-assertion`), verified the way an
//! upstream would: with the public key from the admin JWKS, by jsonwebtoken and by PyJWT
//! (`tests/assertion_verify.py`, the README's Python example), against the raw bytes a
//! [`RecordingUpstream`] received.

mod support;

use std::time::Duration;

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use support::recording::{RecordingUpstream, head_of};
use support::{
    SECRET, TestGateway, access_claims, get, hs256, key_path, python, service_claims,
    spawn_gateway, within,
};
use tollgate::keygen::{KeyAlgorithm, KeyUse, generate};

/// The README's Rust example: the claims of a genuine assertion for the request this service
/// received, or why not.
fn verify_assertion(
    token: &str,
    jwks: &JwkSet,
    method: &str,
    path: &str,
    host: &str,
) -> Result<serde_json::Value, String> {
    let header = decode_header(token).map_err(|e| e.to_string())?;
    if header.typ.as_deref() != Some("tollgate-assertion+jwt") {
        return Err("not a tollgate assertion".into());
    }
    let jwk = header.kid.as_deref().and_then(|kid| jwks.find(kid));
    let key = DecodingKey::from_jwk(jwk.ok_or("unknown kid")?).map_err(|e| e.to_string())?;
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_issuer(&["tollgate"]);
    validation.set_required_spec_claims(&["exp", "iss"]);
    validation.leeway = 5;
    let claims = decode::<serde_json::Value>(token, &key, &validation)
        .map_err(|e| e.to_string())?
        .claims;
    // Bound to one request: the same assertion replayed to another method, path or host fails.
    let bound = (
        claims["htm"].as_str(),
        claims["htu"].as_str(),
        claims["host"].as_str(),
    );
    if bound != (Some(method), Some(path), Some(host)) {
        return Err("assertion is for another request".into());
    }
    Ok(claims)
}

/// The assertion key and another Ed25519 key (a forger's), generated for this test.
struct Keys {
    _dir: tempfile::TempDir,
    key: String,
    forger: String,
}

fn keys() -> Keys {
    let dir = tempfile::tempdir().unwrap();
    let mut paths = ["a", "b"].map(|sub| {
        let out = dir.path().join(sub);
        let generated = generate(KeyAlgorithm::EdDsa, &out, None, KeyUse::Assertion).unwrap();
        generated.files[0].path.to_str().unwrap().to_owned()
    });
    Keys {
        _dir: dir,
        key: std::mem::take(&mut paths[0]),
        forger: std::mem::take(&mut paths[1]),
    }
}

/// Three routes on `upstream`: `/api` (authenticated, rewritten to `/v1`) and `/pub` (public)
/// send the assertion; `/plain` does not.
fn config(upstream: &str, key: &str, ttl: &str) -> String {
    format!(
        r#"[[issuers]]
issuer = "tollgate"
algorithms = ["HS256"]
secret = "{SECRET}"

[assertion]
key_file = "{key}"
algorithm = "EdDSA"
kid = "assert-1"
ttl = "{ttl}"

[[routes]]
prefix = "/api"
upstream = "{upstream}"
rewrite = "/v1"
identity_assertion = true

[[routes]]
prefix = "/pub"
upstream = "{upstream}"
policy = "public"
identity_assertion = true

[[routes]]
prefix = "/plain"
upstream = "{upstream}"
policy = "public"
"#
    )
}

/// A request head as the upstream received it.
struct Seen {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
}

impl Seen {
    /// The `n`-th request head in the upstream's raw bytes.
    fn nth(upstream: &RecordingUpstream, n: usize) -> Self {
        let head = head_of(&upstream.raw(), n);
        let mut lines = head.split("\r\n");
        let mut request_line = lines.next().unwrap().split(' ');
        let method = request_line.next().unwrap().to_owned();
        let target = request_line.next().unwrap();
        let path = target.split('?').next().unwrap().to_owned();
        let headers = lines
            .map(|l| {
                let (name, value) = l.split_once(':').unwrap();
                (name.to_owned(), value.trim().to_owned())
            })
            .collect();
        Seen {
            method,
            path,
            headers,
        }
    }

    /// Every value of `name` (any case), in order.
    fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The one value of `name`; panics if there is not exactly one.
    fn one(&self, name: &str) -> &str {
        match self.all(name)[..] {
            [value] => value,
            ref other => panic!("{name}: {other:?} in {:?}", self.headers),
        }
    }

    /// Verifies this request's assertion as the upstream that received it would.
    fn verify(&self, jwks: &JwkSet) -> Result<serde_json::Value, String> {
        verify_assertion(
            self.one("x-tollgate-assertion"),
            jwks,
            &self.method,
            &self.path,
            self.one("host"),
        )
    }
}

async fn jwks_document(gw: &TestGateway) -> serde_json::Value {
    let reply = get(
        &format!("http://{}/.well-known/jwks.json", gw.admin.unwrap()),
        &[],
    )
    .await;
    assert_eq!(reply.status, 200);
    reply.json()
}

async fn jwks(gw: &TestGateway) -> JwkSet {
    serde_json::from_value(jwks_document(gw).await).unwrap()
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// `token` with its payload replaced by `edit(claims)`, the signature kept.
fn tampered(token: &str, edit: impl FnOnce(&mut serde_json::Value)) -> String {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    edit(&mut claims);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{}.{payload}.{}", parts[0], parts[2])
}

/// `token`'s header and claims signed again with another Ed25519 key, under the same `kid`.
fn forged(token: &str, forger_key: &str) -> String {
    use base64::Engine;
    let header = decode_header(token).unwrap();
    let payload = token.split('.').nth(1).unwrap();
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    let key = jsonwebtoken::EncodingKey::from_ed_pem(&std::fs::read(forger_key).unwrap()).unwrap();
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

#[tokio::test]
async fn rust_verifier_accepts_the_assertion_and_its_claims_are_what_the_upstream_received() {
    let keys = keys();
    let upstream = RecordingUpstream::start().await;
    let gw = spawn_gateway(&config(&upstream.url(), &keys.key, "60s")).await;
    let jwks_doc = jwks_document(&gw).await;
    let published = jwks_doc["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == "assert-1")
        .unwrap_or_else(|| panic!("assertion key not published: {jwks_doc}"));
    assert_eq!(published["alg"], "EdDSA");
    assert_eq!(published["use"], "sig");
    assert_eq!(published["crv"], "Ed25519");
    assert!(published.get("d").is_none(), "private part published");
    let jwks = jwks(&gw).await;

    let alice = hs256(&access_claims("tollgate", "alice"));
    let reply = get(
        &gw.url("/api/orders/42?page=2"),
        &[("authorization", &bearer(&alice))],
    )
    .await;
    assert_eq!(reply.status, 200);
    let orders = hs256(&service_claims("tollgate", "orders"));
    get(&gw.url("/api/x"), &[("authorization", &bearer(&orders))]).await;
    get(&gw.url("/pub/open"), &[]).await;
    upstream.wait_requests(3).await;

    let seen = Seen::nth(&upstream, 0);
    assert_eq!(seen.path, "/v1/orders/42", "rewritten, without the query");
    let token = seen.one("x-tollgate-assertion");
    let header = decode_header(token).unwrap();
    assert_eq!(header.alg, Algorithm::EdDSA);
    assert_eq!(header.kid.as_deref(), Some("assert-1"));
    assert_eq!(header.typ.as_deref(), Some("tollgate-assertion+jwt"));
    let claims = seen.verify(&jwks).unwrap();
    assert_eq!(claims["iss"], "tollgate");
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        60
    );
    assert!(claims["iat"].as_u64().unwrap().abs_diff(support::now()) <= 5);
    for (claim, header) in [
        ("sub", "x-user-id"),
        ("rid", "x-request-id"),
        ("host", "host"),
        ("user_type", "x-user-type"),
        ("user_issuer", "x-user-issuer"),
        ("role", "x-user-role"),
        ("tenant", "x-tenant-id"),
    ] {
        assert_eq!(claims[claim], seen.one(header), "{claim} vs {header}");
    }
    assert_eq!(claims["htm"], "GET");
    assert_eq!(claims["htu"], "/v1/orders/42");
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["tenant"], "t-1");
    assert_eq!(
        claims["rid"],
        reply.headers["x-request-id"].to_str().unwrap()
    );
    assert!(claims.get("svc").is_none(), "{claims}");

    let service = Seen::nth(&upstream, 1).verify(&jwks).unwrap();
    assert_eq!(service["user_type"], "service");
    assert_eq!(service["svc"], "orders");
    assert_eq!(service["sub"], "orders");

    let anonymous = Seen::nth(&upstream, 2);
    assert!(anonymous.all("x-user-id").is_empty());
    let anonymous = anonymous.verify(&jwks).unwrap();
    assert_eq!(anonymous["user_type"], "anonymous");
    for absent in ["sub", "user_issuer", "svc", "role", "tenant"] {
        assert!(anonymous.get(absent).is_none(), "{absent}: {anonymous}");
    }
    gw.stop().await;
}

#[tokio::test]
async fn rust_verifier_refuses_replay_to_another_request_and_forgeries() {
    let keys = keys();
    let upstream = RecordingUpstream::start().await;
    let gw = spawn_gateway(&config(&upstream.url(), &keys.key, "60s")).await;
    let jwks = jwks(&gw).await;
    let alice = hs256(&access_claims("tollgate", "alice"));
    get(
        &gw.url("/api/orders/42"),
        &[("authorization", &bearer(&alice))],
    )
    .await;
    upstream.wait_requests(1).await;
    let seen = Seen::nth(&upstream, 0);
    let token = seen.one("x-tollgate-assertion");
    let host = seen.one("host");
    assert!(verify_assertion(token, &jwks, "GET", "/v1/orders/42", host).is_ok());

    for (method, path, host) in [
        ("DELETE", "/v1/orders/42", host),
        ("GET", "/v1/orders/43", host),
        ("GET", "/v1/orders", host),
        ("GET", "/v1/orders/42", "admin.internal:8080"),
    ] {
        let err = verify_assertion(token, &jwks, method, path, host).unwrap_err();
        assert_eq!(
            err, "assertion is for another request",
            "{method} {path} {host}"
        );
    }
    let forged = forged(token, &keys.forger);
    let err = verify_assertion(&forged, &jwks, "GET", "/v1/orders/42", host).unwrap_err();
    assert!(err.contains("InvalidSignature"), "{err}");
    let mallory = tampered(token, |c| c["sub"] = "mallory".into());
    let err = verify_assertion(&mallory, &jwks, "GET", "/v1/orders/42", host).unwrap_err();
    assert!(err.contains("InvalidSignature"), "{err}");
    // A token of the gateway's issuer is not an assertion, whatever it carries.
    assert_eq!(
        verify_assertion(&alice, &jwks, "GET", "/v1/orders/42", host).unwrap_err(),
        "not a tollgate assertion"
    );
    gw.stop().await;
}

/// What `tests/assertion_verify.py` says about each case: `accepted` or `refused: ...`.
fn python_verdicts(
    jwks: &serde_json::Value,
    cases: &[(&str, &str, &str, &str, &str)],
) -> serde_json::Value {
    let cases: Vec<_> = cases
        .iter()
        .map(|(name, token, method, path, host)| {
            serde_json::json!({"name": name, "token": token, "method": method, "path": path, "host": host})
        })
        .collect();
    let input = serde_json::json!({"jwks": jwks, "cases": cases});
    let out = python::run(
        include_str!("assertion_verify.py"),
        input.to_string().as_bytes(),
    );
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

#[tokio::test]
async fn pyjwt_accepts_a_genuine_assertion_and_refuses_replay_and_forgeries() {
    if !python::has_module("jwt", "pyjwt[crypto]") {
        return;
    }
    let keys = keys();
    let upstream = RecordingUpstream::start().await;
    let gw = spawn_gateway(&config(&upstream.url(), &keys.key, "60s")).await;
    let jwks = jwks_document(&gw).await;
    let orders = hs256(&service_claims("tollgate", "orders"));
    let reply = support::send(
        http::Request::post(gw.url("/api/orders"))
            .header("authorization", bearer(&orders))
            .body(http_body_util::Full::new(bytes::Bytes::from_static(b"{}")))
            .unwrap(),
    )
    .await;
    assert_eq!(reply.status, 200);
    upstream.wait_requests(1).await;
    let seen = Seen::nth(&upstream, 0);
    let token = seen.one("x-tollgate-assertion");
    let host = seen.one("host");
    let forged = forged(token, &keys.forger);
    let tampered = tampered(token, |c| c["svc"] = "billing".into());
    let verdicts = python_verdicts(
        &jwks,
        &[
            ("genuine", token, "POST", "/v1/orders", host),
            ("other method", token, "GET", "/v1/orders", host),
            ("other path", token, "POST", "/v1/refunds", host),
            ("other host", token, "POST", "/v1/orders", "billing:80"),
            ("forged", &forged, "POST", "/v1/orders", host),
            ("tampered", &tampered, "POST", "/v1/orders", host),
            ("an access token", &orders, "POST", "/v1/orders", host),
        ],
    );
    assert_eq!(verdicts["genuine"], "accepted", "{verdicts}");
    for replay in ["other method", "other path", "other host"] {
        assert_eq!(
            verdicts[replay], "refused: InvalidTokenError: assertion is for another request",
            "{verdicts}"
        );
    }
    for forgery in ["forged", "tampered"] {
        assert_eq!(
            verdicts[forgery], "refused: InvalidSignatureError: Signature verification failed",
            "{verdicts}"
        );
    }
    assert_eq!(
        verdicts["an access token"],
        "refused: InvalidTokenError: not a tollgate assertion"
    );
    gw.stop().await;
}

#[tokio::test]
async fn stale_assertions_are_refused_by_both_verifiers() {
    let keys = keys();
    let upstream = RecordingUpstream::start().await;
    let gw = spawn_gateway(&config(&upstream.url(), &keys.key, "1s")).await;
    let jwks_doc = jwks_document(&gw).await;
    let jwks = jwks(&gw).await;
    get(&gw.url("/pub/x"), &[]).await;
    upstream.wait_requests(1).await;
    let seen = Seen::nth(&upstream, 0);
    let (token, host) = (seen.one("x-tollgate-assertion"), seen.one("host"));
    let claims = seen.verify(&jwks).unwrap();
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        1
    );
    let pyjwt = python::has_module("jwt", "pyjwt[crypto]");
    let case = [("stale", token, "GET", "/pub/x", host)];
    if pyjwt {
        assert_eq!(python_verdicts(&jwks_doc, &case)["stale"], "accepted");
    }
    // Past exp and past both verifiers' 5 s leeway.
    let wait = claims["exp"].as_u64().unwrap() + 5 + 1 - support::now();
    tokio::time::sleep(Duration::from_millis(wait * 1000 + 200)).await;
    let err = seen.verify(&jwks).unwrap_err();
    assert!(err.contains("ExpiredSignature"), "{err}");
    if pyjwt {
        assert_eq!(
            python_verdicts(&jwks_doc, &case)["stale"],
            "refused: ExpiredSignatureError: Signature has expired"
        );
    }
    gw.stop().await;
}

/// Sends raw bytes to the gateway and reads until it closes.
async fn raw(gw: &TestGateway, request: String) -> String {
    let mut stream = within(TcpStream::connect(gw.addr)).await.unwrap();
    within(stream.write_all(request.as_bytes())).await.unwrap();
    let mut response = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(3), stream.read_to_end(&mut response)).await;
    String::from_utf8_lossy(&response).into_owned()
}

#[tokio::test]
async fn client_sent_assertions_never_reach_the_upstream() {
    let keys = keys();
    let upstream = RecordingUpstream::start().await;
    let gw = spawn_gateway(&config(&upstream.url(), &keys.key, "60s")).await;
    let jwks = jwks(&gw).await;
    let alice = hs256(&access_claims("tollgate", "alice"));
    for (n, (path, auth)) in [
        ("/api/a", format!("Authorization: Bearer {alice}\r\n")),
        ("/pub/b", String::new()),
        ("/plain/c", String::new()),
        ("/plain/d", format!("Authorization: Bearer {alice}\r\n")),
    ]
    .into_iter()
    .enumerate()
    {
        let reply = raw(
            &gw,
            format!(
                "GET {path} HTTP/1.1\r\nHost: gw.example\r\n{auth}\
                 X-Tollgate-Assertion: forged-1\r\nX_Tollgate_Assertion: forged-2\r\n\
                 x-tollgate-assertion: forged-3\r\nx_TOLLGATE_assertion: forged-4\r\n\
                 Connection: close\r\n\r\n"
            ),
        )
        .await;
        assert!(reply.starts_with("HTTP/1.1 200"), "{path}: {reply}");
        upstream.wait_requests(n + 1).await;
    }
    let raw_bytes = upstream.raw();
    assert!(!raw_bytes.contains("forged-"), "{raw_bytes}");
    assert!(!raw_bytes.to_ascii_lowercase().contains("x_tollgate"));
    for n in 0..2 {
        let seen = Seen::nth(&upstream, n);
        assert!(seen.verify(&jwks).is_ok(), "{}", seen.path);
    }
    for n in 2..4 {
        let head = head_of(&raw_bytes, n).to_ascii_lowercase();
        assert!(!head.contains("x-tollgate-assertion"), "{head}");
    }
    gw.stop().await;
}

fn load(text: &str) -> Result<tollgate::Config, String> {
    tollgate::Config::from_toml(
        text,
        "t.toml",
        &tollgate::Env::from_map::<_, String, String>([]),
    )
    .map_err(|e| e.to_string())
}

#[test]
fn config_errors_name_the_key_and_the_reason() {
    let ed25519 = key_path("ed25519.key");
    let ec256 = key_path("ec256.key");
    let route = |extra: &str| {
        format!(
            "[[routes]]\nprefix = \"/a\"\nupstream = \"http://127.0.0.1:9\"\npolicy = \"public\"\nidentity_assertion = true\n{extra}\n"
        )
    };
    let assertion = |key: &str, alg: &str, extra: &str| {
        format!("[assertion]\nkey_file = \"{key}\"\nalgorithm = \"{alg}\"\n{extra}\n")
    };
    let cases = [
        (
            route(""),
            "t.toml: routes[0].identity_assertion: needs an [assertion] section (the key that signs the assertion)".to_owned(),
        ),
        (
            assertion(&ec256, "EdDSA", ""),
            format!("t.toml: assertion.key_file: {ec256:?} holds a P-256 key, but algorithm = \"EdDSA\""),
        ),
        (
            assertion(&ed25519, "ES256", ""),
            format!("t.toml: assertion.key_file: {ed25519:?} holds an Ed25519 key, but algorithm = \"ES256\""),
        ),
        (
            assertion(&ed25519, "EdDSA", "ttl = \"0s\""),
            "t.toml: assertion.ttl: must be more than 0s".to_owned(),
        ),
        (
            assertion(&ed25519, "EdDSA", "ttl = \"301s\""),
            "t.toml: assertion.ttl: must be at most 5m (an assertion is for one request), got 5m 1s".to_owned(),
        ),
        (
            assertion(&ed25519, "EdDSA", "ttl = \"1h\""),
            "t.toml: assertion.ttl: must be at most 5m (an assertion is for one request), got 1h".to_owned(),
        ),
        (
            assertion(&ed25519, "HS256", ""),
            "t.toml: assertion.algorithm: expected \"EdDSA\" (recommended), \"ES256\" or \"RS256\", got \"HS256\": an assertion is verified with a public key, so that no upstream can mint one".to_owned(),
        ),
        (
            assertion("/nonexistent/assertion.key", "EdDSA", ""),
            "t.toml: assertion.key_file: cannot read \"/nonexistent/assertion.key\": No such file or directory (os error 2)".to_owned(),
        ),
        (
            assertion(&ed25519, "EdDSA", "") + &route("").replace("http://127.0.0.1:9", "echo"),
            "t.toml: routes[0].identity_assertion: the echo upstream would show the assertion to the caller".to_owned(),
        ),
        (
            assertion(&ed25519, "EdDSA", "")
                + "[[providers]]\nname = \"vendor\"\nkind = \"login\"\nauth_url = \"http://127.0.0.1:9/login\"\nemail = \"a@example.com\"\npassword = \"p\"\n"
                + &route("upstream_auth = \"vendor\""),
            "t.toml: routes[0].identity_assertion: an upstream_auth route sends the caller's identity only with send_identity = true".to_owned(),
        ),
        (
            assertion(&ed25519, "EdDSA", "")
                + "[identity]\nclaim_headers = { \"a\" = \"X_Tollgate_Assertion\" }\n",
            "t.toml: identity.claim_headers.a: \"X_Tollgate_Assertion\" cannot carry a claim".to_owned(),
        ),
    ];
    for (text, want) in cases {
        assert_eq!(load(&text).unwrap_err(), want, "{text}");
    }
    // The same section, valid: defaults apply.
    let config = load(&(assertion(&ed25519, "EdDSA", "") + &route(""))).unwrap();
    let signer = config.assertion.as_deref().unwrap();
    assert_eq!(
        (signer.kid(), signer.issuer(), signer.ttl_secs()),
        ("tollgate-assertion", "tollgate", 60)
    );
    assert!(config.routes[0].identity_assertion);
    assert!(!format!("{config:?}").contains("PRIVATE"));
}

#[test]
fn check_reports_a_bad_assertion_key_with_its_key_path() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.toml"),
        "[assertion]\nkey_file = \"missing.key\"\nalgorithm = \"EdDSA\"\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["check", "--config", "bad.toml"])
        .current_dir(dir.path())
        .env_remove("TOLLGATE_CONFIG")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("bad.toml: assertion.key_file: cannot read \"missing.key\""),
        "{stderr}"
    );
}

#[test]
fn the_readme_examples_are_the_code_these_tests_run() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("docs/src/authentication.md")).unwrap();
    let heading = "## Verifying tollgate's identity assertion in your service";
    let section = &readme[readme.find(heading).expect("the README section")..];
    let block = |lang: &str| {
        section
            .split(&format!("```{lang}\n"))
            .nth(1)
            .and_then(|b| b.split("```").next())
            .unwrap_or_else(|| panic!("a {lang} block"))
    };
    let python = block("python");
    assert!(
        include_str!("assertion_verify.py").contains(python),
        "the README's Python example differs from tests/assertion_verify.py:\n{python}"
    );
    let rust = block("rust");
    let function = &rust[rust.find("fn verify_assertion(").expect("the Rust helper")..];
    assert!(
        include_str!("identity_assertion.rs").contains(function),
        "the README's Rust example differs from verify_assertion in this file:\n{function}"
    );
}
