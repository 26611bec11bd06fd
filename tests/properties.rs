//! Property tests (proptest) over the parsers an attacker controls: path canonicalisation,
//! token pre-parsing, identity-header sanitising, config parsing, the vendor auth API's
//! response parser and the mapping from verified claims to identity headers. `cargo test` runs
//! a bounded number of cases and the regression corpus in `tests/fuzz_corpus/`;
//! `bench/fuzz.sh` runs many more cases.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::{Map, Value, json};
use tollgate::config::{DEFAULT_TOKEN_FIELDS, Grant, ProviderConfig, Secret};
use tollgate::identity::{Identity, is_identity_header, strip};
use tollgate::routing::normalize_path;
use tollgate::upstream_auth::provider::parse_response;

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

    #[test]
    fn provider_response_parser_never_panics(
        (config, body) in provider_case(),
        now in any_now(),
    ) {
        let result = parse_response(&body, &config, now);
        let says_failed = body.get("statusCode").and_then(Value::as_i64).is_some_and(|c| c >= 400);
        prop_assert!(!(says_failed && result.is_ok()), "a body with statusCode >= 400 gave a token");
        if let Ok(fetched) = result {
            check_fetched(&fetched, now).map_err(TestCaseError::fail)?;
        }
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
        tollgate::auth::Verifier::new(&config.issuers, &config.identity, std::sync::Arc::new(()));
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

// ---- Vendor auth API responses: `parse_response` returns a token or an error, never panics.

/// Number literals at and past the edges of `u64`, `i64`, `f64` and `SystemTime`, written as a
/// vendor might send them (`18446744073709551616` is 2^64 as an integer literal).
const EDGE_NUMBERS: [&str; 18] = [
    "0",
    "-1",
    "1000",
    "4102444800",
    "4102444800.5",
    "0.5",
    "-0.0",
    "5e-324",
    "1e19",
    "1e300",
    "-1e300",
    "1.7976931348623157e308",
    "9007199254740993",
    "9223372036854775807",
    "-9223372036854775808",
    "18446744073709551615",
    "18446744073709551616",
    "340282366920938463463374607431768211456",
];

/// A JSON value parsed from its literal text, as a response body would carry it.
fn literal(text: &str) -> Value {
    serde_json::from_str(text).expect("a JSON literal")
}

fn json_key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "accessToken",
            "access_token",
            "token",
            "authToken",
            "data",
            "jwt",
            "exp",
            "expires_in",
            "expiresIn",
            "statusCode",
        ])
        .prop_map(str::to_owned),
        "[a-zA-Z_]{0,6}",
    ]
}

/// Any JSON value: nested arrays and objects of any scalars, edge numbers included.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("not finite", |f| {
            serde_json::Number::from_f64(f).map(Value::Number)
        }),
        prop::sample::select(&EDGE_NUMBERS[..]).prop_map(literal),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((json_key(), inner), 0..4)
                .prop_map(|entries| Value::Object(entries.into_iter().collect())),
        ]
    })
}

/// `header.payload.sig` whose payload's `exp` is an edge number, a string, a duplicate key, or
/// whose payload is not JSON or not base64url at all.
fn jwt_like() -> impl Strategy<Value = String> {
    let exp = prop_oneof![
        prop::sample::select(&EDGE_NUMBERS[..]).prop_map(str::to_owned),
        prop::sample::select(vec![
            r#""4102444800""#,
            "null",
            "true",
            "[]",
            "{}",
            "NaN",
            "1e400"
        ])
        .prop_map(str::to_owned),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| format!("{f:?}")),
    ]
    .boxed();
    let payload = prop_oneof![
        3 => exp.clone().prop_map(|e| format!(r#"{{"exp":{e}}}"#)),
        1 => exp.prop_map(|e| format!(r#"{{"exp":4102444800,"exp":{e}}}"#)),
        1 => prop::sample::select(vec!["{}", "[]", "null", "not json", r#"{"exp":"#])
            .prop_map(str::to_owned),
        1 => ".{0,8}",
    ];
    (
        prop::sample::select(vec!["e30", "", "eyJhbGciOiJIUzI1NiJ9", "%%"]),
        payload,
        any::<bool>(),
        prop::sample::select(vec!["sig", "", "s.g", "s\ng"]),
    )
        .prop_map(|(header, payload, padded, sig)| {
            let mut payload = URL_SAFE_NO_PAD.encode(payload);
            if padded {
                payload.push_str("==");
            }
            format!("{header}.{payload}.{sig}")
        })
}

/// Tokens a broken or hostile auth API might send: JWT-looking ones, opaque ones, and ones
/// with control characters, padding or non-ASCII that can never be a header value.
fn hostile_token() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => jwt_like(),
        3 => "[A-Za-z0-9._~+/=-]{0,24}",
        1 => ".{0,16}",
        1 => prop::sample::select(vec![
            "",
            " ",
            "a\r\nx-evil: 1",
            "a\nb",
            "a\0b",
            "\t",
            " lead",
            "trail ",
            "t\u{f6}ken",
            "a\u{7f}b",
        ])
        .prop_map(str::to_owned),
    ]
}

/// `expires_in` values: any integer, edge numbers, strings, and anything else.
fn lifetime_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        prop::sample::select(&EDGE_NUMBERS[..]).prop_map(literal),
        prop::sample::select(vec!["3600", "-60", "60.5", ""])
            .prop_map(|s| Value::String(s.to_owned())),
        any_json(),
    ]
}

/// `statusCode` values: the boundaries around 400, any integer, floats and strings.
fn status_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        prop::sample::select(vec![
            200i64,
            201,
            399,
            400,
            401,
            500,
            599,
            0,
            -1,
            i64::MIN,
            i64::MAX
        ])
        .prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        prop::sample::select(&EDGE_NUMBERS[..]).prop_map(literal),
        prop::sample::select(vec!["500", "OK", "500.0"]).prop_map(|s| Value::String(s.to_owned())),
        any_json(),
    ]
}

/// Where providers look for a token, and a field none reads.
fn token_key() -> impl Strategy<Value = String> + Clone {
    prop::sample::select(vec![
        "accessToken",
        "access_token",
        "token",
        "authToken",
        "jwt",
    ])
    .prop_map(str::to_owned)
}

/// A response body: mostly an object of token, `data`, `expires_in`, `statusCode` and other
/// fields with hostile values; sometimes any JSON at all.
fn provider_body() -> impl Strategy<Value = Value> {
    let entry = prop_oneof![
        2 => (token_key(), hostile_token().prop_map(Value::String)),
        1 => (token_key(), any_json()),
        1 => (Just("data".to_owned()), hostile_token().prop_map(|t| json!({ "token": t }))),
        1 => (Just("data".to_owned()), any_json()),
        3 => (
            prop::sample::select(vec!["expires_in", "expiresIn"]).prop_map(str::to_owned),
            lifetime_value(),
        ),
        2 => (Just("statusCode".to_owned()), status_value()),
        1 => (json_key(), any_json()),
    ];
    prop_oneof![
        6 => prop::collection::vec(entry, 0..5)
            .prop_map(|entries| Value::Object(entries.into_iter().collect())),
        1 => any_json(),
    ]
}

fn login(token_paths: Vec<String>) -> Grant {
    Grant::Login {
        url: "http://127.0.0.1:9/login".parse().unwrap(),
        email: "a@b.c".into(),
        password: Secret::new(b"pw".to_vec()),
        fields: ("email".into(), "password".into()),
        token_paths,
    }
}

/// A provider with this grant and fallback `ttl`, its other settings as the config file gives
/// them.
fn provider(grant: Grant, ttl: Duration) -> ProviderConfig {
    let config = tollgate::Config::from_toml(
        "[[providers]]\nname = \"vendor\"\nkind = \"login\"\nauth_url = \"http://127.0.0.1:9/login\"\n\
         email = \"a@b.c\"\npassword = \"pw\"\nmax_retries = 0\n",
        "provider.toml",
        &tollgate::Env::from_map::<_, String, String>([]),
    )
    .unwrap();
    ProviderConfig {
        grant,
        ttl,
        ..config.providers[0].clone()
    }
}

/// Login providers with the default token fields or a nested path, and a client-credentials
/// provider; the fallback `ttl` ranges from zero to `Duration::MAX`.
fn provider_config() -> impl Strategy<Value = ProviderConfig> {
    let default_fields = || DEFAULT_TOKEN_FIELDS.iter().map(|f| f.to_string()).collect();
    let grant = prop_oneof![
        3 => Just(login(default_fields())),
        1 => Just(login(vec!["data.token".into()])),
        1 => Just(login(vec!["data".into()])),
        1 => Just(Grant::ClientCredentials {
            url: "http://127.0.0.1:9/token".parse().unwrap(),
            client_id: "id".into(),
            client_secret: Secret::new(b"secret".to_vec()),
            basic_auth: true,
            scope: None,
            audience: None,
        }),
    ];
    let ttl = prop_oneof![
        4 => Just(Duration::from_secs(3600)),
        1 => Just(Duration::ZERO),
        1 => Just(Duration::MAX),
        1 => any::<u64>().prop_map(Duration::from_secs),
    ];
    (grant, ttl).prop_map(|(grant, ttl)| provider(grant, ttl))
}

/// A provider and a response body that, usually, has a hostile token where that provider
/// looks for one (the body's own fields may then replace it).
fn provider_case() -> impl Strategy<Value = (ProviderConfig, Value)> {
    let planted = prop::option::weighted(0.8, (any::<prop::sample::Index>(), hostile_token()));
    (provider_config(), planted, provider_body()).prop_map(|(config, planted, body)| {
        let (Some((index, token)), Value::Object(fields)) = (planted, &body) else {
            return (config, body);
        };
        let paths = match &config.grant {
            Grant::Login { token_paths, .. } => token_paths.clone(),
            Grant::ClientCredentials { .. } => vec!["access_token".to_owned()],
        };
        let mut planted = Value::String(token);
        for segment in index.get(&paths).rsplit('.') {
            planted = json!({ segment: planted });
        }
        let Value::Object(mut body) = planted else {
            unreachable!("a path has a segment")
        };
        body.extend(fields.clone());
        (config, Value::Object(body))
    })
}

/// The parse time: mostly the real clock, else the epoch, before it, or this platform's
/// `SystemTime` limits where it can hold them.
fn any_now() -> impl Strategy<Value = SystemTime> {
    let real = SystemTime::now();
    let mut edges = vec![UNIX_EPOCH, real + Duration::from_secs(100 * 365 * 86_400)];
    edges.extend(UNIX_EPOCH.checked_add(Duration::new(i64::MAX as u64, 999_999_999)));
    edges.extend(UNIX_EPOCH.checked_add(Duration::from_secs(i64::MAX as u64 - 1)));
    edges.extend(UNIX_EPOCH.checked_sub(Duration::from_secs(86_400)));
    edges.extend(UNIX_EPOCH.checked_sub(Duration::from_secs(i64::MAX as u64)));
    prop_oneof![
        4 => Just(real),
        2 => prop::sample::select(edges),
        1 => (0..=i64::MAX as u64).prop_filter_map("not a SystemTime here", |secs| {
            UNIX_EPOCH.checked_add(Duration::from_secs(secs))
        }),
    ]
}

/// What every accepted vendor token must satisfy.
fn check_fetched(
    fetched: &tollgate::upstream_auth::provider::Fetched,
    now: SystemTime,
) -> Result<(), String> {
    if fetched.expires_at <= now {
        return Err(format!(
            "accepted a token expiring at {:?}, not after now {now:?}",
            fetched.expires_at
        ));
    }
    if fetched.token.is_empty() {
        return Err("accepted an empty token".into());
    }
    if HeaderValue::from_str(&format!("Bearer {}", fetched.token)).is_err() {
        return Err(format!("accepted {:?}, not a header value", fetched.token));
    }
    Ok(())
}

// ---- Verified claims to identity: `Verifier::verify` returns an identity or an error, never
// panics, and what it forwards is always a clean header value.

/// The HS256 secret of the issuer `t` the claim tests sign with.
const CLAIMS_SECRET: &str = "fuzz-secret-that-is-long-enough-for-hs256";

/// A verifier for the issuer `t`, with two configured claim headers (`org.id`, `groups`).
fn claims_verifier() -> tollgate::auth::Verifier {
    let config = tollgate::Config::from_toml(
        &format!(
            "[[issuers]]\nissuer = \"t\"\nalgorithms = [\"HS256\"]\nsecret = \"{CLAIMS_SECRET}\"\n\n\
             [identity.claim_headers]\n\"org.id\" = \"x-org-id\"\ngroups = \"x-groups\"\n"
        ),
        "claims.toml",
        &tollgate::Env::from_map::<_, String, String>([]),
    )
    .unwrap();
    tollgate::auth::Verifier::new(&config.issuers, &config.identity, std::sync::Arc::new(()))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A token for the raw claims text, signed for `t`: duplicate keys and number literals (2^64
/// written out) reach the verifier exactly as written.
fn sign_raw_claims(payload: &str) -> String {
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"JWT"}"#);
    let message = format!("{header}.{}", URL_SAFE_NO_PAD.encode(payload));
    let key = jsonwebtoken::EncodingKey::from_secret(CLAIMS_SECRET.as_bytes());
    let signature =
        jsonwebtoken::crypto::sign(message.as_bytes(), &key, jsonwebtoken::Algorithm::HS256)
            .unwrap();
    format!("{message}.{signature}")
}

/// Claim values as raw JSON text: edge numbers, strings with CR, LF, NUL or padding, huge
/// strings, booleans, null, and any nested value.
fn hostile_claim() -> BoxedStrategy<String> {
    prop_oneof![
        2 => any::<u64>().prop_map(|n| n.to_string()),
        1 => any::<i64>().prop_map(|n| n.to_string()),
        2 => prop::sample::select(&EDGE_NUMBERS[..]).prop_map(str::to_owned),
        2 => prop::sample::select(vec![
            "true",
            "false",
            "null",
            "{}",
            "[]",
            r#""""#,
            r#"" pad""#,
            r#""pad ""#,
            r#""a\r\nx-user-role: admin""#,
            r#""a\nb""#,
            r#""a\u0000b""#,
            r#""caf\u00e9""#,
            r#""\t""#,
            r#"["a","b"]"#,
            r#"["a,b"]"#,
            r#"[["a"]]"#,
            r#"[1,null]"#,
            r#"{"id":1}"#,
        ])
        .prop_map(str::to_owned),
        2 => "[ -~]{0,16}".prop_map(|s| Value::String(s).to_string()),
        1 => ".{0,12}".prop_map(|s| Value::String(s).to_string()),
        1 => prop::sample::select(vec![200usize, 200, 2_000, 5_000, 13_000])
            .prop_map(|n| format!("\"{}\"", "u".repeat(n))),
        1 => any_json().prop_map(|v| v.to_string()),
    ]
    .boxed()
}

/// A mostly sensible value, else a hostile one.
fn usually(sensible: &str) -> BoxedStrategy<String> {
    prop_oneof![3 => Just(sensible.to_owned()), 1 => hostile_claim()].boxed()
}

/// `exp`, `iat` or `nbf`: mostly `good`, else in the past, far ahead, or hostile.
fn claim_time(good: u64) -> BoxedStrategy<String> {
    prop_oneof![
        6 => Just(good.to_string()),
        1 => prop::sample::select(vec![good - 3600, good + 30, good + 86_400 * 500])
            .prop_map(|t| t.to_string()),
        2 => hostile_claim(),
    ]
    .boxed()
}

/// A claims object as `(key, raw JSON value)` entries: `iss`, `exp` and `iat` usually valid,
/// every identity claim (`type`, `is_service`, `service`, `user_id`, `sub`, `email`, `role`,
/// `tenant_id`, the claim headers' `org.id` and `groups`) often hostile, sometimes a key twice.
fn claims_entries(now: u64) -> impl Strategy<Value = Vec<(String, String)>> {
    let slot = |key: &'static str, present: f64, value: BoxedStrategy<String>| {
        prop::option::weighted(present, value).prop_map(move |v| v.map(|v| (key.to_owned(), v)))
    };
    let time = (
        slot(
            "iss",
            0.97,
            prop_oneof![19 => Just(r#""t""#.to_owned()), 1 => hostile_claim()].boxed(),
        ),
        slot("exp", 0.97, claim_time(now + 600)),
        slot("iat", 0.8, claim_time(now)),
        slot("nbf", 0.2, claim_time(now)),
    );
    let entry = |key: &'static str, value: &str| Some((key.to_owned(), value.to_owned()));
    let kind = prop_oneof![
        // An access token: is_service absent, false or null; a stray service claim is ignored.
        3 => (
            prop::sample::select(vec![None, Some("false"), Some("null")]),
            slot("service", 0.2, hostile_claim()),
        )
            .prop_map(move |(is_service, service)| {
                (
                    entry("type", r#""access""#),
                    is_service.and_then(|v| entry("is_service", v)),
                    service,
                )
            }),
        // A service token: is_service true and, usually, a service name.
        3 => slot("service", 0.95, usually(r#""billing""#)).prop_map(move |service| {
            (entry("type", r#""service""#), entry("is_service", "true"), service)
        }),
        // Anything: unknown or missing type, contradictions, is_service as a string.
        2 => (
            slot(
                "type",
                0.9,
                prop_oneof![
                    1 => Just(r#""access""#.to_owned()),
                    1 => Just(r#""service""#.to_owned()),
                    2 => hostile_claim(),
                ]
                .boxed(),
            ),
            slot(
                "is_service",
                0.7,
                prop_oneof![
                    1 => Just("true".to_owned()),
                    1 => Just("false".to_owned()),
                    1 => Just(r#""true""#.to_owned()),
                    2 => hostile_claim(),
                ]
                .boxed(),
            ),
            slot("service", 0.6, usually(r#""billing""#)),
        ),
    ];
    let user = (
        slot(
            "user_id",
            0.8,
            prop_oneof![
                2 => any::<u64>().prop_map(|n| n.to_string()),
                1 => any::<i64>().prop_map(|n| n.to_string()),
                3 => hostile_claim(),
            ]
            .boxed(),
        ),
        slot("sub", 0.8, usually(r#""u""#)),
        slot("email", 0.4, usually(r#""a@b.c""#)),
        slot("role", 0.4, usually(r#""admin""#)),
        slot("tenant_id", 0.4, usually("7")),
        slot(
            "org",
            0.3,
            hostile_claim()
                .prop_map(|id| format!(r#"{{"id":{id}}}"#))
                .boxed(),
        ),
        slot("groups", 0.3, usually(r#"["staff","admins"]"#)),
    );
    let again = prop::option::weighted(
        0.2,
        (
            prop::sample::select(vec!["user_id", "type", "is_service", "sub", "exp", "iss"])
                .prop_map(str::to_owned),
            hostile_claim(),
        ),
    );
    (time, kind, user, again).prop_map(|((a, b, c, d), (e, f, g), (h, i, j, k, l, m, n), again)| {
        [a, b, c, d, e, f, g, h, i, j, k, l, m, n]
            .into_iter()
            .flatten()
            .chain(again)
            .collect()
    })
}

/// What every accepted identity must satisfy: printable-ASCII, unpadded header values that
/// `HeaderValue` accepts, one `x-user-id` carrying `user_id` (else `sub`) exactly (an integer
/// as its decimal digits, never a float or exponent form), and `x-user-type` as claimed.
fn check_identity(identity: &Identity, claims: &Map<String, Value>) -> Result<(), String> {
    for (name, value) in &identity.headers {
        let bytes = value.as_bytes();
        if !bytes.iter().all(|b| (0x20..0x7f).contains(b)) {
            return Err(format!("{name}: {value:?} has CR, LF, NUL or non-ASCII"));
        }
        if HeaderValue::from_bytes(bytes).is_err() {
            return Err(format!("{name}: {value:?} is not a header value"));
        }
        let text = value.to_str().map_err(|e| format!("{name}: {e}"))?;
        if text.trim() != text {
            return Err(format!("{name}: {text:?} is padded"));
        }
    }
    let user_ids: Vec<&HeaderValue> = identity
        .headers
        .iter()
        .filter(|(name, _)| name == "x-user-id")
        .map(|(_, value)| value)
        .collect();
    let [user_id] = user_ids[..] else {
        return Err(format!("{} x-user-id headers", user_ids.len()));
    };
    let user_id = user_id.to_str().unwrap_or_default();
    if user_id != identity.subject {
        return Err(format!(
            "x-user-id {user_id:?} is not the subject {:?}",
            identity.subject
        ));
    }
    let claimed = match claims.get("user_id") {
        None | Some(Value::Null) => claims.get("sub"),
        Some(Value::String(s)) if s.is_empty() => claims.get("sub"),
        other => other,
    };
    match claimed {
        Some(Value::Number(n)) if n.is_f64() => {
            return Err(format!("a float user id {n} became x-user-id {user_id:?}"));
        }
        Some(Value::Number(n)) if n.to_string() != user_id => {
            return Err(format!("user id {n} became x-user-id {user_id:?}"));
        }
        Some(Value::String(s)) if s != user_id => {
            return Err(format!("user id {s:?} became x-user-id {user_id:?}"));
        }
        Some(Value::Number(_) | Value::String(_)) => {}
        other => return Err(format!("x-user-id {user_id:?} from a user id of {other:?}")),
    }
    let user_type = identity
        .headers
        .iter()
        .find(|(name, _)| name == "x-user-type")
        .map(|(_, value)| value.as_bytes());
    let claimed_type = claims
        .get("type")
        .and_then(Value::as_str)
        .map(str::as_bytes);
    if user_type.is_none() || user_type != claimed_type {
        return Err(format!(
            "x-user-type {user_type:?} for a type claim of {claimed_type:?}"
        ));
    }
    Ok(())
}

#[test]
fn claim_mapping_never_panics_and_forwards_only_clean_headers() {
    let verifier = claims_verifier();
    let runtime = runtime();
    let now = jsonwebtoken::get_current_timestamp();
    let accepted = std::cell::Cell::new(0u32);
    let mut runner = proptest::test_runner::TestRunner::new(cases());
    runner
        .run(&claims_entries(now), |entries| {
            let payload = format!(
                "{{{}}}",
                entries
                    .iter()
                    .map(|(key, value)| format!("\"{key}\":{value}"))
                    .collect::<Vec<_>>()
                    .join(",")
            );
            let token = sign_raw_claims(&payload);
            let Ok(identity) = runtime.block_on(verifier.verify(&token)) else {
                return Ok(());
            };
            accepted.set(accepted.get() + 1);
            let claims: Map<String, Value> = serde_json::from_str(&payload).map_err(|e| {
                TestCaseError::fail(format!("accepted invalid JSON {payload}: {e}"))
            })?;
            check_identity(&identity, &claims)
                .map_err(|e| TestCaseError::fail(format!("{e}\nclaims: {payload}")))?;
            // An integer user id is forwarded as the very digits the issuer wrote.
            if let Some(Value::Number(n)) = claims.get("user_id")
                && !n.is_f64()
            {
                let written = entries.iter().rev().find(|(key, _)| key == "user_id");
                let header = identity
                    .headers
                    .iter()
                    .find(|(name, _)| name == "x-user-id");
                prop_assert_eq!(
                    written.map(|(_, raw)| raw.as_bytes()),
                    header.map(|(_, value)| value.as_bytes()),
                    "claims: {}",
                    payload
                );
            }
            Ok(())
        })
        .unwrap();
    // The generator must keep reaching the mapping, not only the signature and time checks.
    if cases().cases >= 100 {
        assert!(accepted.get() > 0, "no generated claims were accepted");
    }
}

// ---- Regression corpus: every file in `tests/fuzz_corpus/<target>/` is a case `cargo test`
// runs. See `tests/fuzz_corpus/README.md` for the format.

/// A corpus case: its file name and contents, checked for shape.
struct Case {
    file: String,
    input: Value,
    ok: bool,
    error: Option<String>,
    headers: Map<String, Value>,
}

fn corpus(dir: &str) -> Vec<Case> {
    let mut cases = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{dir}: {e}")) {
        let path = entry.unwrap().path();
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            file.ends_with(".json"),
            "{dir}/{file}: every file in a corpus directory must be a .json case"
        );
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{file}: {e}"));
        let case: Map<String, Value> = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{file}: not a JSON object: {e}"));
        for key in case.keys() {
            assert!(
                ["input", "expect", "why", "error", "headers"].contains(&key.as_str()),
                "{file}: unknown key {key:?}"
            );
        }
        let ok = match case.get("expect").and_then(Value::as_str) {
            Some("ok") => true,
            Some("error") => false,
            other => panic!("{file}: expect must be \"ok\" or \"error\", not {other:?}"),
        };
        assert!(
            case.get("why")
                .and_then(Value::as_str)
                .is_some_and(|w| !w.is_empty()),
            "{file}: say why in \"why\""
        );
        let error = case.get("error").map(|e| {
            assert!(!ok, "{file}: \"error\" only with expect \"error\"");
            e.as_str()
                .unwrap_or_else(|| panic!("{file}: error must be a string"))
                .to_owned()
        });
        let headers = match case.get("headers") {
            None => Map::new(),
            Some(Value::Object(h)) if ok => h.clone(),
            Some(_) => panic!("{file}: \"headers\" must be an object, with expect \"ok\""),
        };
        let input = case
            .get("input")
            .cloned()
            .unwrap_or_else(|| panic!("{file}: no input"));
        cases.push(Case {
            file,
            input,
            ok,
            error,
            headers,
        });
    }
    assert!(!cases.is_empty(), "{dir} holds no cases");
    cases.sort_by(|a, b| a.file.cmp(&b.file));
    cases
}

/// Compares a case's outcome with what it expects; `None` when it holds.
fn mismatch<T>(case: &Case, result: &Result<T, String>) -> Option<String> {
    match (case.ok, result) {
        (true, Err(e)) => Some(format!("{}: expected ok, got error: {e}", case.file)),
        (false, Ok(_)) => Some(format!("{}: expected an error, got ok", case.file)),
        (false, Err(e)) => match &case.error {
            Some(want) if !e.contains(want.as_str()) => Some(format!(
                "{}: expected an error containing {want:?}, got: {e}",
                case.file
            )),
            _ => None,
        },
        (true, Ok(_)) => None,
    }
}

#[test]
fn provider_corpus_cases_hold() {
    let config = provider(
        login(DEFAULT_TOKEN_FIELDS.iter().map(|f| f.to_string()).collect()),
        Duration::from_secs(3600),
    );
    let mut failures = Vec::new();
    let cases = corpus(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fuzz_corpus/provider"
    ));
    for case in &cases {
        assert!(
            case.headers.is_empty(),
            "{}: provider cases have no headers",
            case.file
        );
        let now = SystemTime::now();
        let result = parse_response(&case.input, &config, now).map_err(|e| e.to_string());
        if let Ok(fetched) = &result
            && let Err(e) = check_fetched(fetched, now)
        {
            failures.push(format!("{}: {e}", case.file));
        }
        failures.extend(mismatch(case, &result));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn claims_corpus_cases_hold() {
    let verifier = claims_verifier();
    let runtime = runtime();
    let key = jsonwebtoken::EncodingKey::from_secret(CLAIMS_SECRET.as_bytes());
    let mut failures = Vec::new();
    let cases = corpus(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fuzz_corpus/claims"
    ));
    for case in &cases {
        let Value::Object(mut claims) = case.input.clone() else {
            panic!("{}: input must be a claims object", case.file);
        };
        let now = jsonwebtoken::get_current_timestamp();
        for (name, default) in [
            ("iss", json!("t")),
            ("exp", json!(now + 600)),
            ("iat", json!(now)),
        ] {
            claims.entry(name).or_insert(default);
        }
        let token = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
            &claims,
            &key,
        )
        .unwrap();
        let result = runtime
            .block_on(verifier.verify(&token))
            .map_err(|e| e.to_string());
        if let Ok(identity) = &result {
            if let Err(e) = check_identity(identity, &claims) {
                failures.push(format!("{}: {e}", case.file));
            }
            for (name, want) in &case.headers {
                let got = identity
                    .headers
                    .iter()
                    .find(|(n, _)| n == name.as_str())
                    .map(|(_, v)| v.to_str().unwrap_or_default());
                if got != want.as_str() {
                    failures.push(format!("{}: {name} is {got:?}, expected {want}", case.file));
                }
            }
        }
        failures.extend(mismatch(case, &result));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
