//! Property tests (proptest) over the parsers an attacker controls: path canonicalisation,
//! token pre-parsing, identity-header sanitising and config parsing. `cargo test` runs a
//! bounded number of cases; `bench/fuzz.sh` runs many more.

use http::header::{HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;
use tollgate::identity::{is_identity_header, strip};
use tollgate::routing::normalize_path;

fn cases() -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(512),
        ..ProptestConfig::default()
    }
}

/// Paths built from the pieces that make normalisation interesting.
fn hostile_path() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("/".to_owned()),
        Just("//".to_owned()),
        Just(".".to_owned()),
        Just("..".to_owned()),
        Just("%2e".to_owned()),
        Just("%2E%2e".to_owned()),
        Just("%2f".to_owned()),
        Just("%5c".to_owned()),
        Just("%00".to_owned()),
        Just("%".to_owned()),
        Just("%4".to_owned()),
        Just(";".to_owned()),
        Just("\\".to_owned()),
        Just("%41".to_owned()),
        Just("%c3%a9".to_owned()),
        "[a-zA-Z0-9_~-]{1,4}",
    ];
    prop::collection::vec(piece, 0..12).prop_map(|pieces| format!("/{}", pieces.concat()))
}

proptest! {
    #![proptest_config(cases())]

    #[test]
    fn normalised_paths_are_canonical(path in hostile_path()) {
        if let Ok(normal) = normalize_path(&path) {
            prop_assert!(normal.starts_with('/'));
            prop_assert!(!normal.contains("//"), "{normal}");
            for segment in normal.split('/') {
                prop_assert!(segment != "." && segment != "..", "{normal}");
            }
            prop_assert!(!normal.contains(';') && !normal.contains('\\'));
            let lower = normal.to_ascii_lowercase();
            prop_assert!(!lower.contains("%2e") && !lower.contains("%2f") && !lower.contains("%00"), "{normal}");
            // Idempotent: what was judged is what is forwarded, and stays so.
            let again = normalize_path(&normal).unwrap().into_owned();
            prop_assert_eq!(again.as_str(), normal.as_ref());
        }
    }

    #[test]
    fn arbitrary_paths_never_panic(path in ".{0,64}") {
        let _ = normalize_path(&path);
    }

    #[test]
    fn identity_headers_never_survive_sanitising(
        names in prop::collection::vec("(x|X)[-_](user|USER|User|service|Service|tenant|TENANT)[-_][a-zA-Z_-]{0,8}", 1..8),
        others in prop::collection::vec("[a-w][a-z-]{0,8}", 0..4),
    ) {
        let mut headers = HeaderMap::new();
        for name in names.iter().chain(&others) {
            headers.append(HeaderName::from_bytes(name.as_bytes()).unwrap(), HeaderValue::from_static("v"));
        }
        strip(&mut headers, &[]);
        for name in headers.keys() {
            let folded = name.as_str().replace('_', "-");
            prop_assert!(!is_identity_header(name.as_str(), &[]));
            prop_assert!(!folded.starts_with("x-user-") && !folded.starts_with("x-service-") && !folded.starts_with("x-tenant-"));
        }
        for other in &others {
            prop_assert!(headers.contains_key(other.as_str()), "{other} was removed");
        }
    }

    #[test]
    fn config_parsing_never_panics(text in "(\\[\\[routes\\]\\]\n|\\[server\\]\n|prefix = \"[/a-z.%;]{0,6}\"\n|upstream = \"[a-z:/.0-9${}]{0,12}\"\n|policy = \"[a-z]{0,8}\"\n|listen = \\[\"[0-9.:]{0,12}\"\\]\n|[a-z_]{1,8} = [0-9]{1,3}\n){0,8}") {
        let _ = tollgate::Config::from_toml(&text, "fuzz.toml", &tollgate::Env::from_map::<_, String, String>([]));
    }
}

#[test]
fn token_pre_parsing_never_panics_and_refuses_junk() {
    let config = tollgate::Config::from_toml(
        "[[issuers]]\nissuer = \"t\"\nalgorithms = [\"HS256\", \"RS256\"]\nsecret = \"fuzz-secret-that-is-long-enough-for-hs256\"\n",
        "t.toml",
        &tollgate::Env::from_map::<_, String, String>([]),
    )
    .unwrap();
    let verifier =
        tollgate::auth::Verifier::new(&config.issuers, &config.identity, Default::default());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let b64 = |s: &str| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
    };
    let part = prop_oneof![
        "[A-Za-z0-9_-]{0,40}",
        Just(b64(r#"{"alg":"HS256"}"#)),
        Just(b64(r#"{"alg":"none"}"#)),
        Just(b64(r#"{"alg":"RS256","kid":"../x"}"#)),
        Just(b64(r#"{"iss":"t","exp":1e400}"#)),
        Just(b64(r#"{"iss":"t","exp":"soon","type":"access"}"#)),
        Just(b64(r#"{"iss":["t"],"sub":{}}"#)),
        Just(b64("not json")),
        ".{0,12}",
    ];
    let token = prop::collection::vec(part, 0..6).prop_map(|parts| parts.join("."));
    let mut runner = proptest::test_runner::TestRunner::new(cases());
    runner
        .run(&token, |token| {
            let result = runtime.block_on(verifier.verify(&token));
            prop_assert!(result.is_err(), "accepted {token}");
            Ok(())
        })
        .unwrap();
}
