//! Signing-key rotation without a flag day, run as the README's runbook says: a new key is
//! published first, signs from its `active_from` on, old tokens keep verifying, and a retired
//! key (removed from the config, picked up by a live reload) is refused.

mod support;

use std::process::Command;
use std::time::{Duration, SystemTime};

use support::*;

fn tollgate(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(args)
        .env_remove("TOLLGATE_CONFIG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token)
        .unwrap()
        .kid
        .unwrap_or_default()
}

fn in_seconds(secs: u64) -> String {
    humantime::format_rfc3339_seconds(SystemTime::now() + Duration::from_secs(secs)).to_string()
}

async fn status(gw: &GatewayProcess, token: &str) -> (u16, String) {
    bearer_status_and_reason(&gw.url("/internal/x"), token).await
}

/// Rewrites the config file and waits until the gateway gives `token` the status `want`.
async fn reload_until(gw: &GatewayProcess, toml: &str, token: &str, want: u16) {
    std::fs::write(&gw.config_path, with_test_server_at(gw, toml)).unwrap();
    within(async {
        while status(gw, token).await.0 != want {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
}

/// The config text with the `[server]` section the process was started with.
fn with_test_server_at(gw: &GatewayProcess, toml: &str) -> String {
    let current = std::fs::read_to_string(&gw.config_path).unwrap();
    let server = current.split("\n\n").next().unwrap();
    format!("{server}\n\n{toml}")
}

const ROUTE: &str = "[tokens]\nissuer = \"tollgate\"\n\n[[routes]]\nprefix = \"/internal\"\nupstream = \"echo\"\npolicy = \"service\"\n";

#[tokio::test]
async fn a_new_signing_key_is_published_first_signs_later_and_the_retired_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let keys = |kid: &str| {
        let out = dir.path().join(kid);
        tollgate(&[
            "keys",
            "generate",
            "--alg",
            "ES256",
            "--out",
            out.to_str().unwrap(),
            "--kid",
            kid,
        ]);
        out.join("es256.key").display().to_string()
    };
    let (old_key, new_key) = (keys("2025-01"), keys("2026-01"));
    let issuer = |signing_keys: &str| {
        format!(
            "[[issuers]]\nissuer = \"tollgate\"\nalgorithms = [\"ES256\"]\nsigning_keys = [\n{signing_keys}]\n\n{ROUTE}"
        )
    };
    let old_entry = format!(
        "  {{ kid = \"2025-01\", private_key_file = \"{old_key}\", algorithm = \"ES256\" }},\n"
    );
    let new_entry = format!(
        "  {{ kid = \"2026-01\", private_key_file = \"{new_key}\", algorithm = \"ES256\", active_from = \"{}\" }},\n",
        in_seconds(2)
    );
    let both = issuer(&format!("{old_entry}{new_entry}"));
    let gw = GatewayProcess::spawn(&both, &[]);
    let config = gw.config_path.to_str().unwrap().to_owned();

    // Step 1: the new key is published (and accepted) before it signs anything.
    let jwks = get(&format!("http://{}/.well-known/jwks.json", gw.admin), &[])
        .await
        .json();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids, ["2025-01", "2026-01"]);
    let old_token = tollgate(&["token", "issue", "orders", "--config", &config])
        .trim()
        .to_owned();
    assert_eq!(
        kid_of(&old_token),
        "2025-01",
        "the old key signs until active_from"
    );
    assert_eq!(status(&gw, &old_token).await.0, 200);

    // Step 2: from active_from on, the new key signs; tokens of both keys verify.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let new_token = tollgate(&["token", "issue", "orders", "--config", &config])
        .trim()
        .to_owned();
    assert_eq!(kid_of(&new_token), "2026-01");
    assert_eq!(status(&gw, &new_token).await.0, 200);
    assert_eq!(
        status(&gw, &old_token).await.0,
        200,
        "old tokens keep working"
    );

    // Step 3: once no old token is needed, the old key is removed: refused at once.
    reload_until(&gw, &issuer(&new_entry), &old_token, 401).await;
    assert_eq!(
        status(&gw, &old_token).await,
        (401, "unknown key id".to_owned())
    );
    assert_eq!(status(&gw, &new_token).await.0, 200);
}

#[tokio::test]
async fn hmac_secrets_rotate_by_kid_too() {
    let (old_secret, new_secret) = (
        "old-secret-that-is-long-enough-for-hs256-!",
        "new-secret-that-is-long-enough-for-hs256-!",
    );
    let issuer = |secrets: &str| {
        format!(
            "[[issuers]]\nissuer = \"tollgate\"\nalgorithms = [\"HS256\"]\nsecrets = [\n{secrets}]\n\n{ROUTE}"
        )
    };
    let old_entry = format!("  {{ kid = \"hs-1\", secret = \"{old_secret}\" }},\n");
    let new_entry = format!(
        "  {{ kid = \"hs-2\", secret = \"{new_secret}\", active_from = \"{}\" }},\n",
        in_seconds(0)
    );
    let gw = GatewayProcess::spawn(&issuer(&format!("{old_entry}{new_entry}")), &[]);
    let config = gw.config_path.to_str().unwrap().to_owned();
    let new_token = tollgate(&["token", "issue", "orders", "--config", &config])
        .trim()
        .to_owned();
    assert_eq!(
        kid_of(&new_token),
        "hs-2",
        "the secret whose active_from passed last signs"
    );
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some("hs-1".into());
    let old_token = jsonwebtoken::encode(
        &header,
        &service_claims("tollgate", "orders"),
        &jsonwebtoken::EncodingKey::from_secret(old_secret.as_bytes()),
    )
    .unwrap();
    assert_eq!(status(&gw, &old_token).await.0, 200);
    assert_eq!(status(&gw, &new_token).await.0, 200);
    reload_until(&gw, &issuer(&new_entry), &old_token, 401).await;
    assert_eq!(status(&gw, &new_token).await.0, 200);
}
