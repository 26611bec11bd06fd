//! Key hygiene: keys too weak, meant for encryption, or on the wrong curve never verify a
//! token, whether they come from the config (refused at load, so `tollgate check` fails) or
//! from a JWKS (skipped with a warning and a metric, the good keys beside them kept).

mod support;

use std::process::Command;

use jsonwebtoken::Algorithm::{ES256, RS256};
use jsonwebtoken::EncodingKey;
use rsa::pkcs1::EncodeRsaPrivateKey;
use rsa::pkcs8::{EncodePublicKey, LineEnding};
use rsa::traits::PublicKeyParts;
use rsa::{BigUint, RsaPrivateKey, RsaPublicKey};
use support::*;

const ISS: &str = "https://idp.test";

/// A real RSA key pair of `bits` and public exponent `e`, generated now.
fn rsa_pair(bits: usize, e: u64) -> RsaPrivateKey {
    RsaPrivateKey::new_with_exp(&mut rand::rngs::OsRng, bits, &BigUint::from(e)).unwrap()
}

fn fixture_pair(file: &str) -> RsaPrivateKey {
    use rsa::pkcs8::DecodePrivateKey;
    RsaPrivateKey::from_pkcs8_pem(&std::fs::read_to_string(key_path(file)).unwrap()).unwrap()
}

fn rsa_token(key: &RsaPrivateKey, kid: &str) -> String {
    let pem = key.to_pkcs1_pem(LineEnding::LF).unwrap();
    let mut header = jsonwebtoken::Header::new(RS256);
    header.kid = Some(kid.to_owned());
    let encoding = EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap();
    jsonwebtoken::encode(&header, &service_claims(ISS, "orders"), &encoding).unwrap()
}

fn rsa_jwk(key: &RsaPublicKey, kid: &str, extra: serde_json::Value) -> serde_json::Value {
    use base64::Engine;
    let b64 = |b: Vec<u8>| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let mut jwk = serde_json::json!({
        "kty": "RSA", "kid": kid, "alg": "RS256",
        "n": b64(key.n().to_bytes_be()), "e": b64(key.e().to_bytes_be()),
    });
    jwk.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    jwk
}

#[tokio::test]
async fn jwks_keys_that_are_weak_or_not_for_signatures_are_skipped_and_counted() {
    let good = fixture_pair("rsa.key");
    let other = fixture_pair("rsa2.key");
    let weak = rsa_pair(1024, 3);
    let short = rsa_pair(1024, 65537);
    let ec = JwksServer::document(&[("curve", "ec256.key", ES256)])["keys"][0].clone();
    let mut ec_declared_384 = ec.clone();
    ec_declared_384["alg"] = "ES384".into();

    let jwks = JwksServer::start(None).await;
    jwks.set_document(serde_json::json!({ "keys": [
        rsa_jwk(&good.to_public_key(), "good", serde_json::json!({ "use": "sig" })),
        rsa_jwk(&other.to_public_key(), "enc", serde_json::json!({ "use": "enc" })),
        rsa_jwk(&other.to_public_key(), "ops", serde_json::json!({ "key_ops": ["encrypt"] })),
        rsa_jwk(&weak.to_public_key(), "weak-e3", serde_json::json!({})),
        rsa_jwk(&short.to_public_key(), "short", serde_json::json!({})),
        rsa_jwk(&other.to_public_key(), "e3", serde_json::json!({ "e": "Aw" })),
        ec_declared_384,
        { "kty": "oct", "kid": "secret", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA" },
    ]}));
    let gw = spawn_gateway(&format!(
        r#"
[[issuers]]
issuer = "{ISS}"
algorithms = ["RS256", "ES256", "ES384"]
jwks_url = "{}"
jwks_min_refresh_interval = "0s"
[[routes]]
prefix = "/"
upstream = "echo"
policy = "authenticated"
"#,
        jwks.url()
    ))
    .await;

    let good_token = rsa_token(&good, "good");
    until_bearer_status(&gw, "/x", &good_token, 200).await;
    for (kid, key) in [
        ("enc", &other),
        ("ops", &other),
        ("weak-e3", &weak),
        ("short", &short),
    ] {
        assert_eq!(
            bearer_status(&gw, "/x", &rsa_token(key, kid)).await,
            401,
            "kid {kid}"
        );
    }
    let ec_token = mint(
        &service_claims(ISS, "orders"),
        ES256,
        "ec256.key",
        Some("curve"),
    );
    assert_eq!(
        bearer_status(&gw, "/x", &ec_token).await,
        401,
        "P-256 key declared ES384"
    );
    // The good key still verifies after the refreshes those unknown kids caused.
    assert_eq!(bearer_status(&gw, "/x", &good_token).await, 200);

    let metrics = get(&format!("http://{}/metrics", gw.admin.unwrap()), &[])
        .await
        .text();
    for (reason, at_least) in [
        ("not_for_signatures", 1.0),
        ("no_verify_operation", 1.0),
        ("rsa_exponent", 1.0),
        ("weak_rsa", 1.0),
        ("curve_mismatch", 1.0),
        ("unsupported", 1.0),
    ] {
        let series =
            format!("tollgate_jwks_keys_refused_total{{issuer=\"{ISS}\",reason=\"{reason}\"}}");
        let value = scrape_value(&metrics, &series).unwrap_or(0.0);
        assert!(value >= at_least, "{series} = {value}\n{metrics}");
    }
}

fn check(config: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tollgate.toml");
    std::fs::write(&path, config).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

fn pem_issuer(pem: &str, algorithms: &str) -> String {
    format!(
        "[[issuers]]\nissuer = \"{ISS}\"\nalgorithms = {algorithms}\n[[issuers.public_keys]]\npem = \"\"\"\n{pem}\"\"\"\n"
    )
}

#[test]
fn check_refuses_configured_keys_that_are_weak_or_on_another_curve() {
    let tiny = rsa_pair(512, 65537).to_public_key();
    let (ok, text) = check(&pem_issuer(
        &tiny.to_public_key_pem(LineEnding::LF).unwrap(),
        "[\"RS256\"]",
    ));
    assert!(!ok, "{text}");
    assert!(
        text.contains("issuers[0].public_keys[0]") && text.contains("512 bits"),
        "{text}"
    );

    // A 2048-bit modulus with exponent 3: the size is fine, the exponent is not.
    let fixture = std::fs::read_to_string(key_path("rsa.pub.pem")).unwrap();
    let n = {
        use rsa::pkcs8::DecodePublicKey;
        RsaPublicKey::from_public_key_pem(&fixture)
            .unwrap()
            .n()
            .clone()
    };
    let e3 = RsaPublicKey::new(n, BigUint::from(3u8)).unwrap();
    let (ok, text) = check(&pem_issuer(
        &e3.to_public_key_pem(LineEnding::LF).unwrap(),
        "[\"RS256\"]",
    ));
    assert!(!ok && text.contains("exponent must be 65537"), "{text}");

    // A P-384 key on an issuer that allows only ES256 could never verify anything.
    let p384 = std::fs::read_to_string(key_path("ec384.pub.pem")).unwrap();
    let (ok, text) = check(&pem_issuer(&p384, "[\"ES256\"]"));
    assert!(!ok && text.contains("ES384"), "{text}");

    // The fixture keys pass, so the refusals above are about the keys, not the layout.
    let (ok, text) = check(&pem_issuer(&fixture, "[\"RS256\"]"));
    assert!(ok, "{text}");
}
