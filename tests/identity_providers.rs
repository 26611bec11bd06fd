//! The book's Identity providers chapter: every TOML configuration in it passes
//! `tollgate check` as pasted, and `tollgate explain` names the rule that refuses a request.

mod support;

use std::process::{Command, Output};

fn tollgate(args: &[&str], dir: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(args)
        .current_dir(dir)
        .env_remove("TOLLGATE_CONFIG")
        .output()
        .expect("binary runs")
}

#[test]
fn every_provider_configuration_in_the_book_passes_check() {
    let blocks = support::book_configs_pass_check("identity-providers.md");
    assert!(blocks >= 6, "found {blocks} toml blocks");
}

#[test]
fn explain_names_the_rule_that_refuses_and_the_rules_that_passed() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "explain-test-secret-that-is-long-enough";
    std::fs::write(
        dir.path().join("c.toml"),
        format!(
            r#"
[[issuers]]
issuer = "https://idp.example"
algorithms = ["HS256"]
secret = "{secret}"
token_types = "standard"
[[routes]]
prefix = "/orders"
upstream = "echo"
methods = ["GET"]
scopes = ["orders:read", "orders:write"]
claims = {{ tenant = "acme" }}
"#
        ),
    )
    .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let token = |scope: &str| {
        let claims = serde_json::json!({
            "iss": "https://idp.example", "sub": "ada", "tenant": "acme",
            "scope": scope, "exp": now + 300, "iat": now,
        });
        jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    };
    let explain = |token: &str, method: &str| {
        let out = tollgate(
            &[
                "explain", "--config", "c.toml", "--format", "json", method, "/orders", "--token",
                token,
            ],
            dir.path(),
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)))
    };
    let step = |explained: &serde_json::Value, name: &str| {
        explained["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["step"] == name)
            .map(|s| s["result"].as_str().unwrap().to_owned())
    };
    let refused = explain(&token("orders:read"), "GET");
    assert_eq!(refused["verdict"], "refused", "{refused}");
    assert_eq!(
        step(&refused, "scopes").as_deref(),
        Some("failed"),
        "{refused}"
    );
    assert_eq!(refused["refusal"]["status"], 403);

    let allowed = explain(&token("orders:read orders:write"), "GET");
    assert_eq!(allowed["verdict"], "allowed", "{allowed}");
    for rule in ["methods", "scopes", "claims"] {
        assert_eq!(
            step(&allowed, rule).as_deref(),
            Some("ok"),
            "{rule}: {allowed}"
        );
    }
    let wrong_method = explain(&token("orders:read orders:write"), "DELETE");
    assert_eq!(
        step(&wrong_method, "methods").as_deref(),
        Some("failed"),
        "{wrong_method}"
    );
    assert_eq!(wrong_method["refusal"]["status"], 405);
}
