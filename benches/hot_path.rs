//! Micro-benchmarks of the per-request work: token verification (HS256, RS256, ES256; cold,
//! i.e. a full signature check, and cached), the core's whole decision with the upstream
//! request it builds (with and without an identity assertion), signing one identity assertion,
//! and the metrics a request records.
//!
//! `cargo bench --bench hot_path`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use http::header::{HeaderMap, HeaderValue};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use tollgate::auth::Verifier;
use tollgate::{Config, Env};

const SECRET: &str = "bench-secret-0123456789-0123456789-0123456789";

fn key(file: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/keys/{file}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn verifier(cache: usize) -> Verifier {
    let toml = format!(
        r#"
[[issuers]]
issuer = "bench"
algorithms = ["HS256", "RS256", "ES256"]
secret = "{SECRET}"
public_keys = [
  {{ kid = "rsa", pem_file = "{dir}/rsa.pub.pem" }},
  {{ kid = "ec", pem_file = "{dir}/ec256.pub.pem" }},
]
[identity]
token_cache_size = {cache}
"#,
        dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/keys")
    );
    let config =
        Config::from_toml(&toml, "bench.toml", &Env::from_map::<_, String, String>([])).unwrap();
    Verifier::new(&config.issuers, &config.identity, std::sync::Arc::new(()))
}

fn token(alg: Algorithm) -> String {
    let now = jsonwebtoken::get_current_timestamp();
    let claims = serde_json::json!({
        "iss": "bench", "sub": "orders", "user_id": "orders", "service": "orders",
        "type": "service", "is_service": true, "role": "admin",
        "email": "orders@internal.service", "iat": now, "exp": now + 3600,
    });
    let (kid, key) = match alg {
        Algorithm::HS256 => (None, EncodingKey::from_secret(SECRET.as_bytes())),
        Algorithm::RS256 => (
            Some("rsa"),
            EncodingKey::from_rsa_pem(&key("rsa.key")).unwrap(),
        ),
        _ => (
            Some("ec"),
            EncodingKey::from_ec_pem(&key("ec256.key")).unwrap(),
        ),
    };
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

fn verification(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let cold = verifier(0);
    let cached = verifier(1000);
    for alg in [Algorithm::HS256, Algorithm::RS256, Algorithm::ES256] {
        let token = token(alg);
        runtime.block_on(cached.verify(&token)).unwrap();
        c.bench_function(&format!("verify {alg:?} cold"), |b| {
            b.iter(|| runtime.block_on(cold.verify(black_box(&token))).unwrap())
        });
        c.bench_function(&format!("verify {alg:?} cached"), |b| {
            b.iter(|| runtime.block_on(cached.verify(black_box(&token))).unwrap())
        });
    }
}

/// The whole decision for one request, in-process: canonical host, path, route, cached HS256
/// verification, policy, and the upstream request built by the rewrite rules.
fn decide(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let ed25519 = format!(
        "{}/tests/fixtures/keys/ed25519.key",
        env!("CARGO_MANIFEST_DIR")
    );
    let toml = format!(
        r#"
[[issuers]]
issuer = "bench"
algorithms = ["HS256"]
secret = "{SECRET}"
[[routes]]
prefix = "/internal"
upstream = "http://127.0.0.1:9"
policy = "service"
[[routes]]
prefix = "/signed"
upstream = "http://127.0.0.1:9"
policy = "service"
identity_assertion = true
[assertion]
key_file = "{ed25519}"
algorithm = "EdDSA"
"#
    );
    let config =
        Config::from_toml(&toml, "bench.toml", &Env::from_map::<_, String, String>([])).unwrap();
    let core = tollgate::core::Core::new(&config, std::sync::Arc::new(()), None);
    let bearer = format!("Bearer {}", token(Algorithm::HS256));
    let mut template = HeaderMap::new();
    for (name, value) in [
        ("host", "api.example.com:8080"),
        ("user-agent", "curl/8"),
        ("accept", "*/*"),
        ("x-user-id", "spoofed"),
        ("x_user_role", "admin"),
        ("connection", "keep-alive"),
        ("x-request-id", "abc"),
    ] {
        template.insert(
            http::HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    template.insert("authorization", HeaderValue::from_str(&bearer).unwrap());
    let peer = tollgate::core::forwarded::ClientIp::new([127, 0, 0, 1].into());
    for (name, uri) in [
        (
            "core decide: HS256 cached, service route, upstream request built",
            "/internal/orders?page=2",
        ),
        (
            "core decide: HS256 cached, service route, identity assertion (EdDSA) signed",
            "/signed/orders?page=2",
        ),
    ] {
        c.bench_function(name, |b| {
            b.iter(|| {
                let mut request = http::Request::new(http_body_util::Empty::<bytes::Bytes>::new());
                *request.uri_mut() = http::Uri::from_static(uri);
                *request.headers_mut() = template.clone();
                let mut trace = tollgate::core::Trace::default();
                let decided = runtime.block_on(core.decide(request, &peer, &mut trace));
                black_box(decided.unwrap())
            })
        });
    }
}

/// One identity assertion: claims serialised from borrowed data and one signature, per
/// algorithm; and, for comparison, `jsonwebtoken::encode` of the same claims with the same key
/// (which parses the PKCS#8 key and re-derives the public key on every call).
fn assertion(c: &mut Criterion) {
    use std::time::{Duration, SystemTime};
    use tollgate::assertion::{AssertionSigner, Bound};
    use tollgate::identity::{Identity, TokenKind};
    let identity = Identity {
        kind: TokenKind::Access,
        issuer: "tollgate".into(),
        subject: "alice".into(),
        role: Some("user".into()),
        service: None,
        expires_at: 0,
        token_id: None,
        issued_at: None,
        headers: Vec::new(),
        grants: Default::default(),
    };
    let bound = Bound {
        rid: "6f0c3b2e-8a51-4a6e-9d0e-2b7f4c1a9e33",
        method: "GET",
        path: "/v1/orders/42",
        host: Some("orders.default.svc.cluster.local:8080"),
        tenant: Some("t-1"),
    };
    for (file, alg) in [
        ("ed25519.key", Algorithm::EdDSA),
        ("ec256.key", Algorithm::ES256),
        ("rsa.key", Algorithm::RS256),
    ] {
        let signer = AssertionSigner::load(
            &key(file),
            file,
            alg,
            "k".into(),
            "tollgate".into(),
            Duration::from_secs(60),
        )
        .unwrap();
        c.bench_function(&format!("assertion signed {alg:?}"), |b| {
            b.iter(|| {
                let claims = signer.claims(Some(&identity), bound, SystemTime::now());
                black_box(signer.sign(&claims).unwrap())
            })
        });
    }
    let signer = AssertionSigner::load(
        &key("ed25519.key"),
        "ed25519.key",
        Algorithm::EdDSA,
        "k".into(),
        "tollgate".into(),
        Duration::from_secs(60),
    )
    .unwrap();
    let encoding = EncodingKey::from_ed_pem(&key("ed25519.key")).unwrap();
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some("k".into());
    header.typ = Some("tollgate-assertion+jwt".into());
    c.bench_function(
        "assertion via jsonwebtoken::encode EdDSA (comparison)",
        |b| {
            b.iter(|| {
                let claims = signer.claims(Some(&identity), bound, SystemTime::now());
                black_box(jsonwebtoken::encode(&header, &claims, &encoding).unwrap())
            })
        },
    );
}

fn metrics(c: &mut Criterion) {
    use tollgate::metrics::{AuthLabels, Metrics};
    let metrics = Metrics::new();
    let route: std::sync::Arc<str> = std::sync::Arc::from("svc");
    let handles = metrics.route_handles(&route);
    c.bench_function("metrics recorded per request", |b| {
        b.iter(|| {
            metrics.in_flight.inc();
            metrics
                .auth_decisions
                .get_or_create(&AuthLabels {
                    route: route.clone(),
                    result: "allowed",
                    token_type: "service",
                })
                .inc();
            metrics.record_request(
                &route,
                Some(&handles),
                &http::Method::GET,
                200,
                std::time::Duration::from_micros(900),
                None,
            );
            handles.upstream.observe(black_box(0.0008));
            metrics.in_flight.dec();
        })
    });
}

criterion_group!(benches, verification, decide, assertion, metrics);
criterion_main!(benches);
