//! Micro-benchmarks of the per-request work: token verification (HS256, RS256, ES256; cold,
//! i.e. a full signature check, and cached), the core's whole decision with the upstream
//! request it builds, and the metrics a request records.
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
    Verifier::new(&config.issuers, &config.identity, Default::default())
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
"#
    );
    let config =
        Config::from_toml(&toml, "bench.toml", &Env::from_map::<_, String, String>([])).unwrap();
    let core = tollgate::core::Core::new(&config, Default::default(), None);
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
    c.bench_function(
        "core decide: HS256 cached, service route, upstream request built",
        |b| {
            b.iter(|| {
                let mut request = http::Request::new(http_body_util::Empty::<bytes::Bytes>::new());
                *request.uri_mut() = http::Uri::from_static("/internal/orders?page=2");
                *request.headers_mut() = template.clone();
                let mut trace = tollgate::core::Trace::default();
                let decided = runtime.block_on(core.decide(request, &peer, &mut trace));
                black_box(decided.unwrap())
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
            );
            handles.upstream.observe(black_box(0.0008));
            metrics.in_flight.dec();
        })
    });
}

criterion_group!(benches, verification, decide, metrics);
criterion_main!(benches);
