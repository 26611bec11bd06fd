//! Service token tooling through the real binary: `token issue` for every algorithm and
//! format, `issue-access`, `verify` and its reasons, `keys generate`, and the admin JWKS.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};
use support::*;

const ISS: &str = "https://tollgate.test";

/// What a run of the binary printed.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn ok(&self) -> &str {
        assert_eq!(
            self.code,
            Some(0),
            "stdout: {}\nstderr: {}",
            self.stdout,
            self.stderr
        );
        &self.stdout
    }
}

/// Runs `tollgate args...` in `dir`, feeding `stdin`.
fn tollgate(dir: &Path, args: &[&str], stdin: Option<&str>) -> Run {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(args)
        .current_dir(dir)
        .env_remove("TOLLGATE_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary runs");
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    let out = child.wait_with_output().unwrap();
    Run {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A temp dir holding `tollgate.toml` with `toml` in it.
fn config_dir(toml: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tollgate.toml"), toml).unwrap();
    dir
}

/// `tollgate <args> --config tollgate.toml` in `dir`.
fn run(dir: &Path, args: &[&str], stdin: Option<&str>) -> Run {
    let mut all = args.to_vec();
    all.extend(["--config", "tollgate.toml"]);
    tollgate(dir, &all, stdin)
}

/// An issuer that signs with `alg`: the shared secret for HS*, else the fixture key `file`.
fn signing_issuer(alg: &str, file: &str) -> String {
    if alg.starts_with("HS") {
        format!(
            "[[issuers]]\nissuer = \"{ISS}\"\nalgorithms = [\"{alg}\"]\nsecret = \"{SECRET}\"\nleeway = \"0s\"\n"
        )
    } else {
        format!(
            "[[issuers]]\nissuer = \"{ISS}\"\nalgorithms = [\"{alg}\"]\nleeway = \"0s\"\nsigning_key = {{ private_key_file = \"{}\", algorithm = \"{alg}\", kid = \"{alg}-1\" }}\n",
            key_path(file)
        )
    }
}

fn decode_part(token: &str, index: usize) -> Value {
    let part = token.split('.').nth(index).expect("token part");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

/// Verifies `token` outside tollgate, with plain jsonwebtoken.
fn decode_with(token: &str, key: &DecodingKey, alg: Algorithm) -> Value {
    let mut validation = Validation::new(alg);
    validation.set_issuer(&[ISS]);
    jsonwebtoken::decode::<Value>(token, key, &validation)
        .unwrap_or_else(|e| panic!("{alg:?}: {e}"))
        .claims
}

fn public_key(alg: Algorithm, file: &str) -> DecodingKey {
    let pem = || std::fs::read(key_path(&file.replace(".key", ".pub.pem"))).unwrap();
    match alg {
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
            DecodingKey::from_secret(SECRET.as_bytes())
        }
        Algorithm::ES256 | Algorithm::ES384 => DecodingKey::from_ec_pem(&pem()).unwrap(),
        Algorithm::EdDSA => DecodingKey::from_ed_pem(&pem()).unwrap(),
        _ => DecodingKey::from_rsa_pem(&pem()).unwrap(),
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn issue_then_verify_round_trips_for_every_algorithm() {
    let cases = [
        ("HS256", ""),
        ("HS384", ""),
        ("HS512", ""),
        ("RS256", "rsa.key"),
        ("PS256", "rsa.key"),
        ("ES256", "ec256.key"),
        ("ES384", "ec384.key"),
        ("EdDSA", "ed25519.key"),
    ];
    for (alg, file) in cases {
        let dir = config_dir(&signing_issuer(alg, file));
        let issued = run(
            dir.path(),
            &["token", "issue", "orders", "--ttl", "2h", "--role", "ops"],
            None,
        );
        let token = issued.ok().trim().to_owned();
        assert_eq!(token.lines().count(), 1, "{alg}: {token}");

        let header = decode_part(&token, 0);
        assert_eq!(header["alg"], alg);
        let want_kid = if alg.starts_with("HS") {
            Value::Null
        } else {
            json!(format!("{alg}-1"))
        };
        assert_eq!(header.get("kid").cloned().unwrap_or(Value::Null), want_kid);

        let algorithm: Algorithm = alg.parse().unwrap();
        let claims = decode_with(&token, &public_key(algorithm, file), algorithm);
        let now = now();
        assert_eq!(claims["sub"], "orders");
        assert_eq!(claims["user_id"], "orders");
        assert_eq!(claims["service"], "orders");
        assert_eq!(claims["type"], "service");
        assert_eq!(claims["is_service"], true);
        assert_eq!(claims["role"], "ops");
        assert_eq!(claims["email"], "orders@internal.service");
        assert_eq!(claims["iss"], ISS);
        let (iat, exp) = (
            claims["iat"].as_u64().unwrap(),
            claims["exp"].as_u64().unwrap(),
        );
        assert!(iat <= now && now - iat < 60, "{alg}: iat {iat}");
        assert_eq!(exp - iat, 7_200, "{alg}");
        assert!(uuid::Uuid::parse_str(claims["jti"].as_str().unwrap()).is_ok());
        assert_eq!(claims.as_object().unwrap().len(), 11, "{alg}: {claims}");

        let verified = run(dir.path(), &["token", "verify", &token], None);
        let stdout = verified.ok();
        assert!(
            stdout.contains("valid, service token for orders, expires in 2 hours"),
            "{alg}: {stdout}"
        );
        assert!(stdout.contains("\"is_service\": true"), "{alg}: {stdout}");
        assert!(
            stdout.contains(&format!("\"alg\": \"{alg}\"")),
            "{alg}: {stdout}"
        );
    }
}

#[test]
fn default_service_token_is_an_admin_for_365_days() {
    let dir = config_dir(&signing_issuer("ES256", "ec256.key"));
    let token = run(dir.path(), &["token", "issue", "orders"], None)
        .ok()
        .trim()
        .to_owned();
    let claims = decode_part(&token, 1);
    assert_eq!(claims["role"], "admin");
    let lifetime = claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap();
    assert_eq!(lifetime, 365 * 86_400);
    let verified = run(
        dir.path(),
        &["token", "verify", "-"],
        Some(&format!("{token}\n")),
    );
    assert!(
        verified
            .ok()
            .contains("valid, service token for orders, expires in 365 days"),
        "{}",
        verified.stdout
    );
}

#[test]
fn access_token_round_trips_with_its_optional_claims() {
    let dir = config_dir(&signing_issuer("HS256", ""));
    let issued = run(
        dir.path(),
        &[
            "token",
            "issue-access",
            "--user-id",
            "42",
            "--email",
            "ada@example.com",
            "--role",
            "editor",
            "--tenant-id",
            "t-9",
            "--ttl",
            "30m",
        ],
        None,
    );
    let token = issued.ok().trim().to_owned();
    let claims = decode_part(&token, 1);
    assert_eq!(claims["type"], "access");
    assert_eq!(claims["sub"], "42");
    assert_eq!(claims["user_id"], "42");
    assert_eq!(claims["email"], "ada@example.com");
    assert_eq!(claims["role"], "editor");
    assert_eq!(claims["tenant_id"], "t-9");
    assert_eq!(claims["iss"], ISS);
    assert!(claims.get("is_service").is_none() && claims.get("service").is_none());
    assert!(claims["jti"].is_string());
    let lifetime = claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap();
    assert_eq!(lifetime, 30 * 60);

    let minimal = run(
        dir.path(),
        &["token", "issue-access", "--user-id", "7"],
        None,
    );
    let minimal = decode_part(minimal.ok().trim(), 1);
    assert_eq!(minimal.as_object().unwrap().len(), 7, "{minimal}");
    let lifetime = minimal["exp"].as_u64().unwrap() - minimal["iat"].as_u64().unwrap();
    assert_eq!(lifetime, 15 * 60);

    let verified = run(dir.path(), &["token", "verify", &token], None);
    assert!(
        verified
            .ok()
            .contains("valid, access token for user 42, expires in 30 minutes"),
        "{}",
        verified.stdout
    );
}

fn registry_config() -> String {
    format!(
        "{}\n[tokens]\nissuer = \"{ISS}\"\nservices = [\"orders\", \"billing-api\"]\n",
        signing_issuer("EdDSA", "ed25519.key")
    )
}

fn assert_verifies(dir: &Path, token: &str, service: &str) {
    let verified = run(dir, &["token", "verify", "-"], Some(token));
    let want = format!("valid, service token for {service},");
    assert!(verified.ok().contains(&want), "{}", verified.stdout);
    assert_eq!(decode_part(token, 1)["service"], service);
}

#[test]
fn all_issues_one_token_per_registered_service_in_every_format() {
    let dir = config_dir(&registry_config());
    let dir = dir.path();

    let text = run(dir, &["token", "issue", "--all"], None);
    let lines: Vec<&str> = text.ok().lines().collect();
    assert_eq!(lines.len(), 2);
    assert_verifies(dir, lines[0], "orders");
    assert_verifies(dir, lines[1], "billing-api");

    let json = run(dir, &["token", "issue", "--all", "--format", "json"], None);
    let objects: Vec<Value> = json
        .ok()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(objects.len(), 2);
    for (object, service) in objects.iter().zip(["orders", "billing-api"]) {
        let mut keys: Vec<_> = object.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(keys, ["expires_at", "issuer", "service", "token"]);
        assert_eq!(object["service"], service);
        assert_eq!(object["issuer"], ISS);
        let token = object["token"].as_str().unwrap();
        assert_verifies(dir, token, service);
        let expires = humantime::parse_rfc3339(object["expires_at"].as_str().unwrap()).unwrap();
        let exp = decode_part(token, 1)["exp"].as_u64().unwrap();
        assert_eq!(
            expires
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs(),
            exp
        );
    }

    let env = run(dir, &["token", "issue", "--all", "--format", "env"], None);
    let vars: Vec<(&str, &str)> = env
        .ok()
        .lines()
        .map(|l| l.split_once('=').unwrap())
        .collect();
    assert_eq!(vars[0].0, "SERVICE_TOKEN_ORDERS");
    assert_eq!(vars[1].0, "SERVICE_TOKEN_BILLING_API");
    assert_verifies(dir, vars[1].1, "billing-api");

    let named = run(
        dir,
        &[
            "token", "issue", "orders", "--format", "env", "--ttl", "30s",
        ],
        None,
    );
    assert!(named.ok().starts_with("SERVICE_TOKEN_ORDERS=ey"));
}

#[test]
fn k8s_secret_format_is_a_ready_manifest() {
    let dir = config_dir(&registry_config());
    let dir = dir.path();
    let parse = |run: Run| -> serde_yaml_ng::Value {
        serde_yaml_ng::from_str(run.ok()).unwrap_or_else(|e| panic!("{e}: {}", run.stdout))
    };

    let manifest = parse(run(
        dir,
        &["token", "issue", "--all", "--format", "k8s-secret"],
        None,
    ));
    assert_eq!(manifest["apiVersion"].as_str(), Some("v1"));
    assert_eq!(manifest["kind"].as_str(), Some("Secret"));
    assert_eq!(
        manifest["metadata"]["name"].as_str(),
        Some("tollgate-service-tokens")
    );
    assert_eq!(manifest["metadata"]["namespace"].as_str(), Some("default"));
    let data = manifest["stringData"].as_mapping().unwrap();
    let keys: Vec<&str> = data.keys().map(|k| k.as_str().unwrap()).collect();
    assert_eq!(keys, ["SERVICE_TOKEN_ORDERS", "SERVICE_TOKEN_BILLING_API"]);
    assert_verifies(
        dir,
        manifest["stringData"]["SERVICE_TOKEN_ORDERS"]
            .as_str()
            .unwrap(),
        "orders",
    );
    assert_verifies(
        dir,
        manifest["stringData"]["SERVICE_TOKEN_BILLING_API"]
            .as_str()
            .unwrap(),
        "billing-api",
    );

    let custom = parse(run(
        dir,
        &[
            "token",
            "issue",
            "payments",
            "--format",
            "k8s-secret",
            "--secret-name",
            "svc-tokens",
            "--namespace",
            "prod",
        ],
        None,
    ));
    assert_eq!(custom["metadata"]["name"].as_str(), Some("svc-tokens"));
    assert_eq!(custom["metadata"]["namespace"].as_str(), Some("prod"));
    assert!(custom["stringData"]["SERVICE_TOKEN_PAYMENTS"].is_string());

    let bad = run(
        dir,
        &[
            "token",
            "issue",
            "orders",
            "--format",
            "k8s-secret",
            "--namespace",
            "Prod",
        ],
        None,
    );
    assert_eq!(bad.code, Some(1));
    assert!(
        bad.stderr.contains("invalid --namespace \"Prod\""),
        "{}",
        bad.stderr
    );
}

#[test]
fn issue_refuses_what_it_cannot_sign_or_name() {
    let registry_less = config_dir(&signing_issuer("HS256", ""));
    let all = run(registry_less.path(), &["token", "issue", "--all"], None);
    assert_eq!(all.code, Some(1));
    assert!(all.stderr.contains("[tokens] services"), "{}", all.stderr);

    let clash = run(
        registry_less.path(),
        &["token", "issue", "a-b", "a_b"],
        None,
    );
    assert_eq!(clash.code, Some(1));
    assert!(
        clash.stderr.contains("both map to SERVICE_TOKEN_A_B"),
        "{}",
        clash.stderr
    );

    let bad_name = run(registry_less.path(), &["token", "issue", "a b"], None);
    assert!(
        bad_name.stderr.contains("invalid service name"),
        "{}",
        bad_name.stderr
    );

    let bad_ttl = run(
        registry_less.path(),
        &["token", "issue", "orders", "--ttl", "soon"],
        None,
    );
    assert_eq!(bad_ttl.code, Some(2));
    assert!(bad_ttl.stderr.contains("--ttl"), "{}", bad_ttl.stderr);

    let no_issuer = config_dir("[log]\nlevel = \"info\"\n");
    let none = run(no_issuer.path(), &["token", "issue", "orders"], None);
    assert_eq!(none.code, Some(1));
    assert!(
        none.stderr.contains("no issuer can sign"),
        "{}",
        none.stderr
    );

    let verify_only = config_dir(&format!(
        "[[issuers]]\nissuer = \"{ISS}\"\nalgorithms = [\"ES256\"]\npublic_keys = [{{ pem_file = \"{}\" }}]\n\n[tokens]\nissuer = \"{ISS}\"\n",
        key_path("ec256.pub.pem")
    ));
    let keyless = run(verify_only.path(), &["token", "issue", "orders"], None);
    assert_eq!(keyless.code, Some(1));
    assert!(
        keyless.stderr.contains("has no secret or signing_key"),
        "{}",
        keyless.stderr
    );

    let missing_key = config_dir(&format!(
        "[[issuers]]\nissuer = \"{ISS}\"\nalgorithms = [\"ES256\"]\nsigning_key = {{ private_key_file = \"/nonexistent/signing.key\", algorithm = \"ES256\" }}\n"
    ));
    let missing = run(missing_key.path(), &["token", "issue", "orders"], None);
    assert_eq!(missing.code, Some(2));
    assert!(
        missing.stderr.contains("/nonexistent/signing.key"),
        "{}",
        missing.stderr
    );
}

/// A verifying config: an HMAC issuer (signing) and an RSA one, no leeway.
fn verify_config() -> String {
    format!(
        "{}\n[[issuers]]\nissuer = \"https://rsa.test\"\nalgorithms = [\"RS256\"]\nleeway = \"0s\"\nsigning_key = {{ private_key_file = \"{}\", algorithm = \"RS256\", kid = \"rsa-1\" }}\n\n[tokens]\nissuer = \"{ISS}\"\n",
        signing_issuer("HS256", ""),
        key_path("rsa.key")
    )
}

#[test]
fn verify_rejects_invalid_tokens_with_the_precise_reason() {
    let dir = config_dir(&verify_config());
    let dir = dir.path();
    let good = run(dir, &["token", "issue", "orders"], None)
        .ok()
        .trim()
        .to_owned();

    let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
    let mut claims = decode_part(&good, 1);
    claims["role"] = json!("superuser");
    parts[1] = URL_SAFE_NO_PAD.encode(claims.to_string());
    let tampered = parts.join(".");

    let mut expired = service_claims(ISS, "orders");
    expired["exp"] = json!(now() - 180);
    let mut other_issuer = service_claims("https://elsewhere.test", "orders");
    other_issuer["exp"] = json!(now() + 600);
    let rsa_claims = service_claims("https://rsa.test", "orders");

    let cases = [
        (tampered, "invalid: signature invalid"),
        (
            hs256(&expired),
            "invalid: token expired (expired 3 minutes ago)",
        ),
        (
            hs256(&other_issuer),
            "invalid: issuer not accepted (iss \"https://elsewhere.test\")",
        ),
        (
            mint(&rsa_claims, Algorithm::RS256, "rsa2.key", Some("rsa-1")),
            "invalid: signature invalid",
        ),
        (
            mint(&rsa_claims, Algorithm::RS256, "rsa2.key", Some("rotated")),
            "invalid: unknown key id (kid \"rotated\")",
        ),
        ("not-a-jwt".to_owned(), "invalid: malformed token"),
    ];
    // The controls: the issued token and one minted with the shared secret are valid.
    run(dir, &["token", "verify", &good], None).ok();
    let minted = hs256(&service_claims(ISS, "orders"));
    run(dir, &["token", "verify", &minted], None).ok();
    for (token, want) in cases {
        for stdin in [false, true] {
            let out = if stdin {
                run(dir, &["token", "verify", "-"], Some(&token))
            } else {
                run(dir, &["token", "verify", &token], None)
            };
            assert_eq!(out.code, Some(1), "{want}: {}", out.stdout);
            let last = out.stderr.lines().last().unwrap_or_default();
            assert_eq!(last, want, "stderr: {}", out.stderr);
        }
    }

    let wrong_secret = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(Algorithm::HS256),
        &service_claims(ISS, "orders"),
        &jsonwebtoken::EncodingKey::from_secret(b"another-secret-that-is-long-enough-too!"),
    )
    .unwrap();
    let out = run(dir, &["token", "verify", &wrong_secret], None);
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr.contains("invalid: signature invalid"),
        "{}",
        out.stderr
    );
}

/// A gateway config: one issuer signing with a key, service and authenticated echo routes.
fn gateway_config() -> String {
    format!(
        r#"{}
[[routes]]
name = "internal"
prefix = "/internal"
upstream = "echo"
policy = "service"

[[routes]]
name = "any"
prefix = "/any"
upstream = "echo"
policy = "authenticated"
"#,
        signing_issuer("ES256", "ec256.key")
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn issued_service_token_passes_a_service_route_and_access_token_does_not() {
    let toml = gateway_config();
    let gateway = spawn_gateway(&toml).await;
    let dir = config_dir(&toml);
    let service = run(dir.path(), &["token", "issue", "orders"], None)
        .ok()
        .trim()
        .to_owned();
    let access = run(
        dir.path(),
        &["token", "issue-access", "--user-id", "42"],
        None,
    )
    .ok()
    .trim()
    .to_owned();
    let bearer = |t: &str| format!("Bearer {t}");

    let reply = get(
        &gateway.url("/internal/x"),
        &[("authorization", &bearer(&service))],
    )
    .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let headers = echoed_headers(&reply);
    assert_eq!(headers["x-service-name"], ["orders"]);
    assert_eq!(headers["x-user-type"], ["service"]);
    assert_eq!(headers["x-user-role"], ["admin"]);

    let reply = get(
        &gateway.url("/internal/x"),
        &[("authorization", &bearer(&access))],
    )
    .await;
    assert_eq!(reply.status, 403, "{:?}", reply.body);

    let reply = get(&gateway.url("/any"), &[("authorization", &bearer(&access))]).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(echoed_headers(&reply)["x-user-id"], ["42"]);
    gateway.stop().await;
}

/// The `[[issuers]]` snippet `keys generate` printed.
fn snippet(stdout: &str) -> &str {
    &stdout[stdout.find("\n[[issuers]]").expect("config snippet") + 1..]
}

#[test]
fn generated_keys_load_in_a_config_and_sign_verifiable_tokens() {
    let cases = [
        ("HS256", vec!["hs256.secret"], None),
        (
            "RS256",
            vec!["rs256.key", "rs256.pub.pem", "jwks.json"],
            Some(Algorithm::RS256),
        ),
        (
            "ES256",
            vec!["es256.key", "es256.pub.pem", "jwks.json"],
            Some(Algorithm::ES256),
        ),
        (
            "EdDSA",
            vec!["ed25519.key", "ed25519.pub.pem", "jwks.json"],
            Some(Algorithm::EdDSA),
        ),
    ];
    for (alg, files, asymmetric) in cases {
        let work = tempfile::tempdir().unwrap();
        let out = work.path().join("keys");
        let mut args = vec!["keys", "generate", "--alg", alg, "--out", "keys"];
        if asymmetric.is_some() {
            args.extend(["--kid", "gen-1"]);
        }
        let generated = tollgate(work.path(), &args, None);
        let stdout = generated.ok().to_owned();
        assert_eq!(mode(&out), 0o700, "{alg}");
        let paths: Vec<PathBuf> = files.iter().map(|f| out.join(f)).collect();
        for path in &paths {
            assert!(
                stdout.contains(&path.display().to_string()),
                "{alg}: {stdout}"
            );
        }
        assert_eq!(mode(&paths[0]), 0o600, "{alg}: private file mode");
        let private = std::fs::read_to_string(&paths[0]).unwrap();
        assert_eq!(private.lines().count(), private.trim().lines().count());
        let secret_line = private
            .lines()
            .find(|l| !l.starts_with("-----"))
            .unwrap()
            .to_owned();
        assert!(
            !stdout.contains(&secret_line) && !generated.stderr.contains(&secret_line),
            "{alg}: private material printed"
        );

        let config = format!("{}\n[tokens]\nissuer = \"tollgate\"\n", snippet(&stdout));
        std::fs::write(work.path().join("tollgate.toml"), &config).unwrap();
        run(work.path(), &["check"], None).ok();
        let token = run(work.path(), &["token", "issue", "orders"], None)
            .ok()
            .trim()
            .to_owned();
        let verified = run(work.path(), &["token", "verify", &token], None);
        assert!(verified.ok().contains("valid, service token for orders"));

        match asymmetric {
            None => {
                assert_eq!(private.len(), 64, "48 bytes, base64url");
                assert!(config.contains("secret_file"));
            }
            Some(algorithm) => {
                assert_eq!(decode_part(&token, 0)["kid"], "gen-1");
                let pem = std::fs::read(&paths[1]).unwrap();
                let public = match algorithm {
                    Algorithm::RS256 => DecodingKey::from_rsa_pem(&pem),
                    Algorithm::ES256 => DecodingKey::from_ec_pem(&pem),
                    _ => DecodingKey::from_ed_pem(&pem),
                }
                .unwrap();
                let mut validation = Validation::new(algorithm);
                validation.set_issuer(&["tollgate"]);
                jsonwebtoken::decode::<Value>(&token, &public, &validation).unwrap();
                let jwks: JwkSet =
                    serde_json::from_slice(&std::fs::read(&paths[2]).unwrap()).unwrap();
                let jwk = jwks.find("gen-1").expect("kid in jwks.json");
                let key = DecodingKey::from_jwk(jwk).unwrap();
                jsonwebtoken::decode::<Value>(&token, &key, &validation).unwrap();
            }
        }

        let again = tollgate(work.path(), &args, None);
        assert_eq!(again.code, Some(1), "{alg}: overwrote a key");
        assert!(again.stderr.contains("already exists"), "{}", again.stderr);
        assert_eq!(std::fs::read_to_string(&paths[0]).unwrap(), private);
    }
}

/// Without `--kid` a key pair still gets one (its RFC 7638 thumbprint), in its JWKS and in the
/// config, so a verifier that picks keys by `kid` (PyJWT's `PyJWKSet`) finds it; `--for
/// assertion` prints an `[assertion]` section, not an `[[issuers]]` entry, and refuses HS256.
#[test]
fn generated_keys_always_have_a_kid_and_can_be_for_the_assertion() {
    let work = tempfile::tempdir().unwrap();
    let args = [
        "keys",
        "generate",
        "--alg",
        "EdDSA",
        "--out",
        "keys",
        "--for",
        "assertion",
    ];
    let stdout = tollgate(work.path(), &args, None).ok().to_owned();
    assert!(!stdout.contains("[[issuers]]"), "{stdout}");
    let section = &stdout[stdout.find("[assertion]").expect("an [assertion] section")..];
    let parsed: toml::Table = section.parse().unwrap();
    let kid = parsed["assertion"]["kid"]
        .as_str()
        .expect("a kid")
        .to_owned();
    let jwks: JwkSet =
        serde_json::from_slice(&std::fs::read(work.path().join("keys/jwks.json")).unwrap())
            .unwrap();
    let jwk = jwks.find(&kid).expect("the same kid in jwks.json");
    assert_eq!(
        jwk.thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256)
            .unwrap(),
        kid,
        "the thumbprint"
    );
    // The section as printed signs assertions for a route.
    let config = format!(
        "{section}\n{}\n[[routes]]\nprefix = \"/\"\nupstream = \"http://127.0.0.1:9\"\nidentity_assertion = true\n",
        signing_issuer("HS256", "")
    );
    std::fs::write(work.path().join("tollgate.toml"), config).unwrap();
    run(work.path(), &["check"], None).ok();

    let secret = [
        "keys",
        "generate",
        "--alg",
        "HS256",
        "--out",
        "hs",
        "--for",
        "assertion",
    ];
    let refused = tollgate(work.path(), &secret, None);
    assert_eq!(refused.code, Some(1));
    assert!(
        refused.stderr.contains("needs a private key"),
        "{}",
        refused.stderr
    );
    assert!(!work.path().join("hs").exists(), "nothing written");
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_publishes_the_signing_keys_public_jwks_only() {
    let toml = format!(
        "{}\n[[issuers]]\nissuer = \"https://hmac.test\"\nalgorithms = [\"HS256\"]\nsecret = \"{SECRET}\"\n",
        signing_issuer("ES256", "ec256.key")
    );
    let gateway = spawn_gateway(&toml).await;
    let admin = gateway.admin.expect("admin listener");
    let reply = get(&format!("http://{admin}/.well-known/jwks.json"), &[]).await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.headers["content-type"], "application/jwk-set+json");
    let body = String::from_utf8(reply.body.to_vec()).unwrap();
    assert!(!body.contains(SECRET) && !body.contains("\"d\""), "{body}");
    let jwks: JwkSet = serde_json::from_str(&body).unwrap();
    assert_eq!(jwks.keys.len(), 1, "{body}");
    let jwk = jwks.find("ES256-1").expect("signing key's kid");

    let dir = config_dir(&toml);
    let token = run(dir.path(), &["token", "issue", "orders"], None)
        .ok()
        .trim()
        .to_owned();
    let claims = decode_with(
        &token,
        &DecodingKey::from_jwk(jwk).unwrap(),
        Algorithm::ES256,
    );
    assert_eq!(claims["service"], "orders");
    gateway.stop().await;

    let hmac_only = spawn_gateway(&signing_issuer("HS256", "")).await;
    let admin = hmac_only.admin.expect("admin listener");
    let reply = get(&format!("http://{admin}/.well-known/jwks.json"), &[]).await;
    assert_eq!(reply.status, 404);
    hmac_only.stop().await;
}
