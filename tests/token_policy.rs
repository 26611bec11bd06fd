//! Token lifetime and issuer policy, and identity values that cannot be read two ways: over
//! real sockets, with an upstream that records the raw bytes it received as the witness.

mod support;

use support::recording::RecordingUpstream;
use support::*;

const ISS: &str = "tollgate";
const PARTNER: &str = "partner";
const PARTNER_SECRET: &str = "partner-secret-that-is-long-enough-for-hs256";

async fn gateway(up: &RecordingUpstream, issuer_extra: &str) -> TestGateway {
    gateway_with(up, issuer_extra, "").await
}

async fn gateway_with(
    up: &RecordingUpstream,
    issuer_extra: &str,
    partner_extra: &str,
) -> TestGateway {
    spawn_gateway(&format!(
        r#"
[[issuers]]
issuer = "{ISS}"
algorithms = ["HS256"]
secret = "{SECRET}"
from_cookie = "session"
{issuer_extra}

[[issuers]]
issuer = "{PARTNER}"
algorithms = ["HS256"]
secret = "{PARTNER_SECRET}"
{partner_extra}

[identity]
claim_headers = {{ groups = "x-groups" }}

[[routes]]
prefix = "/any"
upstream = "{0}"

[[routes]]
prefix = "/pinned"
upstream = "{0}"
policy = "service"
issuers = ["{ISS}"]

[[routes]]
prefix = "/public-pinned"
upstream = "{0}"
policy = "public"
issuers = ["{ISS}"]
"#,
        up.url()
    ))
    .await
}

fn partner_token(claims: &serde_json::Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        claims,
        &jsonwebtoken::EncodingKey::from_secret(PARTNER_SECRET.as_bytes()),
    )
    .unwrap()
}

async fn status_and_reason(gw: &TestGateway, path: &str, token: &str) -> (u16, String) {
    bearer_status_and_reason(&gw.url(path), token).await
}

#[tokio::test]
async fn lifetimes_beyond_the_issuers_maximum_are_refused() {
    let up = RecordingUpstream::describing().await;
    let gw = gateway(&up, "").await;
    let now = now();
    let too_long = "token lifetime exceeds the issuer's maximum";
    let mut cases: Vec<(serde_json::Value, u16, &str)> = Vec::new();
    let mut access = access_claims(ISS, "alice");
    access["exp"] = (now + 2 * 86_400).into();
    cases.push((access, 401, too_long));
    let mut century = service_claims(ISS, "orders");
    century["exp"] = (now + 100 * 365 * 86_400).into();
    cases.push((century, 401, too_long));
    let mut no_iat = service_claims(ISS, "orders");
    no_iat.as_object_mut().unwrap().remove("iat");
    no_iat["exp"] = (now + 500 * 86_400).into();
    cases.push((no_iat, 401, too_long));
    let mut future = service_claims(ISS, "orders");
    future["iat"] = (now + 10 * 365 * 86_400).into();
    cases.push((future, 401, "token issued in the future"));
    let mut skewed = service_claims(ISS, "orders");
    skewed["iat"] = (now + 10).into();
    cases.push((skewed, 200, "within the 30 s leeway"));
    // What `tollgate token issue` mints by default stays valid.
    let mut year = service_claims(ISS, "orders");
    year["exp"] = (now + 365 * 86_400).into();
    cases.push((year, 200, "a 365-day service token"));
    let mut day = access_claims(ISS, "alice");
    day["exp"] = (now + 86_400).into();
    cases.push((day, 200, "a 24-hour access token"));
    for (claims, want, why) in cases {
        let (status, reason) = status_and_reason(&gw, "/any/x", &hs256(&claims)).await;
        assert_eq!(status, want, "{why}: {reason}");
        if want == 401 {
            assert_eq!(reason, why);
        }
    }
    assert_eq!(
        up.requests(),
        3,
        "only the accepted tokens reached the upstream"
    );

    // max_lifetime is the issuer's to set.
    let gw = gateway(&up, "max_lifetime = { access = \"1h\" }").await;
    let mut two_hours = access_claims(ISS, "alice");
    two_hours["exp"] = (now + 7200).into();
    assert_eq!(
        status_and_reason(&gw, "/any/x", &hs256(&two_hours)).await,
        (401, too_long.to_owned())
    );
}

#[tokio::test]
async fn a_route_pinned_to_an_issuer_refuses_another_issuers_valid_token() {
    let up = RecordingUpstream::describing().await;
    let gw = gateway_with(&up, "", "service_tokens = true").await;
    let ours = hs256(&service_claims(ISS, "orders"));
    let theirs = partner_token(&service_claims(PARTNER, "orders"));
    assert_eq!(status_and_reason(&gw, "/any/x", &theirs).await.0, 200);
    assert_eq!(status_and_reason(&gw, "/pinned/x", &ours).await.0, 200);
    assert_eq!(
        status_and_reason(&gw, "/pinned/x", &theirs).await,
        (403, "issuer not allowed on this route".to_owned())
    );
    // A public pinned route serves the other issuer's caller, without an identity.
    let reply = get(
        &gw.url("/public-pinned/x"),
        &[("authorization", &format!("Bearer {theirs}"))],
    )
    .await;
    assert_eq!(reply.status, 200);
    let seen = reply.json();
    assert!(seen["headers"].get("x-service-name").is_none(), "{seen}");
    assert!(seen["headers"].get("x-user-id").is_none(), "{seen}");
}

#[tokio::test]
async fn identity_values_that_read_two_ways_are_refused() {
    let up = RecordingUpstream::describing().await;
    let gw = gateway(&up, "").await;
    let invalid = |claim: &str| format!("invalid claim {claim}");
    let mut padded = service_claims(ISS, "billing ");
    padded["sub"] = "billing".into();
    padded["user_id"] = "billing".into();
    let mut role = service_claims(ISS, "orders");
    role["role"] = " admin".into();
    let mut joined = access_claims(ISS, "alice");
    joined["groups"] = serde_json::json!(["staff,admins"]);
    let mut spaced = access_claims(ISS, "alice");
    spaced["groups"] = serde_json::json!(["staff", " admins"]);
    // Beyond 2^64 a JSON integer is read as a float: two users would share one x-user-id.
    let mut huge = access_claims(ISS, "alice");
    huge["user_id"] = serde_json::json!(18_446_744_073_709_551_616.0_f64);
    let mut fraction = access_claims(ISS, "alice");
    fraction["user_id"] = serde_json::json!(7.5);
    for (claims, reason) in [
        (huge, invalid("user_id")),
        (fraction, invalid("user_id")),
        (padded, invalid("service")),
        (role, invalid("role")),
        (joined, invalid("groups")),
        (spaced, invalid("groups")),
    ] {
        assert_eq!(
            status_and_reason(&gw, "/any/x", &hs256(&claims)).await,
            (401, reason)
        );
    }
    assert_eq!(up.requests(), 0);
    let mut list = access_claims(ISS, "alice");
    list["groups"] = serde_json::json!(["staff", "admins"]);
    let reply = get(
        &gw.url("/any/x"),
        &[("authorization", &format!("Bearer {}", hs256(&list)))],
    )
    .await;
    assert_eq!(reply.json()["headers"]["x-groups"][0], "staff,admins");
}

#[tokio::test]
async fn every_spelling_of_the_token_cookie_is_verified_and_removed() {
    let up = RecordingUpstream::describing().await;
    let gw = gateway(&up, "").await;
    let forged = "eyJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJ0b2xsZ2F0ZSJ9.Zm9yZ2Vk";
    for spelling in [
        format!("session ={forged}"),
        format!("session= {forged}"),
        format!("theme=dark; session\t={forged}"),
    ] {
        let reply = get(&gw.url("/any/x"), &[("cookie", &spelling)]).await;
        assert_eq!(reply.status, 401, "{spelling:?}: {}", reply.text());
        // On a public route the forged cookie is not believed, and not forwarded either.
        let reply = get(&gw.url("/public-pinned/x"), &[("cookie", &spelling)]).await;
        assert_eq!(reply.status, 200);
    }
    assert!(!up.raw().contains(forged), "{}", up.raw());
    assert!(up.raw().contains("cookie: theme=dark\r\n"), "{}", up.raw());
}

#[tokio::test]
async fn the_issuer_is_part_of_the_identity_and_only_trusted_issuers_vouch_for_services() {
    let up = RecordingUpstream::start().await;
    let gw = gateway(&up, "").await;
    let ours = hs256(&access_claims(ISS, "alice"));
    let theirs = partner_token(&access_claims(PARTNER, "alice"));
    for token in [&ours, &theirs] {
        // The client claims to come from the other issuer; the upstream must not see it.
        let reply = get(
            &gw.url("/any/x"),
            &[
                ("authorization", &format!("Bearer {token}")),
                ("x-user-issuer", "spoofed"),
                ("X_User_Issuer", "spoofed"),
            ],
        )
        .await;
        assert_eq!(reply.status, 200, "{}", reply.text());
    }
    let raw = up.raw();
    let heads: Vec<&str> = raw.split("GET /any/x").skip(1).collect();
    assert_eq!(heads.len(), 2, "{raw}");
    for (head, issuer) in heads.iter().zip([ISS, PARTNER]) {
        let lower = head.to_ascii_lowercase();
        assert!(lower.contains("x-user-id: alice\r\n"), "{head}");
        assert_eq!(
            lower.matches("x-user-issuer").count(),
            1,
            "exactly one issuer header: {head}"
        );
        assert!(
            lower.contains(&format!("x-user-issuer: {issuer}\r\n")),
            "{head}"
        );
        assert!(!lower.contains("spoofed"), "{head}");
    }

    // A second issuer (a user IdP) cannot vouch for `orders` unless the config says so.
    let forged_service = partner_token(&service_claims(PARTNER, "orders"));
    assert_eq!(
        status_and_reason(&gw, "/any/x", &forged_service).await,
        (401, "issuer may not issue service tokens".to_owned())
    );
    assert_eq!(
        status_and_reason(&gw, "/any/x", &hs256(&service_claims(ISS, "orders")))
            .await
            .0,
        200,
        "the [tokens] signing issuer mints service tokens"
    );
    let trusted = gateway_with(&up, "service_tokens = false", "service_tokens = true").await;
    assert_eq!(
        status_and_reason(&trusted, "/any/x", &forged_service)
            .await
            .0,
        200
    );
    assert_eq!(
        status_and_reason(&trusted, "/any/x", &hs256(&service_claims(ISS, "orders"))).await,
        (401, "issuer may not issue service tokens".to_owned())
    );
}
