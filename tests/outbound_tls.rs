//! The gateway's own outbound connections (JWKS fetches, vendor logins): plain HTTP only to
//! loopback unless the config says otherwise, and a private CA trusted through `ca_file`,
//! proven against real TLS servers whose certificates a test CA signed.

mod support;

use jsonwebtoken::Algorithm::RS256;
use support::recording::RecordingUpstream;
use support::tls::TlsFront;
use support::*;

const ISS: &str = "https://idp.internal";

fn jwks_config(url: &str, extra: &str) -> String {
    format!(
        r#"
[[issuers]]
issuer = "{ISS}"
algorithms = ["RS256"]
jwks_url = "{url}"
jwks_timeout = "2s"
{extra}
[[routes]]
prefix = "/"
upstream = "echo"
"#
    )
}

#[tokio::test]
async fn a_jwks_behind_a_private_ca_is_trusted_only_through_jwks_ca_file() {
    let jwks = JwksServer::start(Some(&[("k1", "rsa.key", RS256)])).await;
    let front = TlsFront::start(jwks.addr).await;
    let token = mint(&service_claims(ISS, "orders"), RS256, "rsa.key", Some("k1"));

    // Public roots only: the handshake fails, no key is ever loaded, the token is refused.
    let untrusting = spawn_gateway(&jwks_config(&front.url("/jwks.json"), "")).await;
    assert_eq!(bearer_status(&untrusting, "/x", &token).await, 401);
    let metrics = get(
        &format!("http://{}/metrics", untrusting.admin.unwrap()),
        &[],
    )
    .await
    .text();
    let failures = format!("tollgate_jwks_fetches_total{{name=\"{ISS}\",result=\"failure\"}}");
    assert!(
        scrape_value(&metrics, &failures).unwrap_or(0.0) >= 1.0,
        "{metrics}"
    );
    assert_eq!(
        jwks.fetches(),
        0,
        "no request crossed an unverified handshake"
    );

    let trusting = spawn_gateway(&jwks_config(
        &front.url("/jwks.json"),
        &format!("jwks_ca_file = {:?}", front.ca_file),
    ))
    .await;
    until_bearer_status(&trusting, "/x", &token, 200).await;
    assert!(jwks.fetches() >= 1);
}

#[tokio::test]
async fn a_vendor_auth_api_behind_a_private_ca_is_trusted_only_through_ca_file() {
    let auth = AuthServer::start(AuthReply::Field("accessToken")).await;
    let front = TlsFront::start(auth.upstream.addr).await;
    let vendor = RecordingUpstream::start().await;
    let config = |extra: &str| {
        format!(
            r#"
[[providers]]
name = "vendor"
kind = "login"
auth_url = "{}"
email = "svc@example.com"
password = "hunter2-vendor-password"
max_retries = 0
timeout = "2s"
{extra}
[[routes]]
prefix = "/vendor"
upstream = "{}"
policy = "public"
upstream_auth = "vendor"
"#,
            front.url("/auth/login"),
            vendor.url()
        )
    };
    let untrusting = spawn_gateway(&config("")).await;
    let reply = get(&untrusting.url("/vendor/items"), &[]).await;
    assert_eq!(reply.status, 503, "{}", reply.text());
    assert_eq!(
        auth.logins(),
        0,
        "the password never crossed an unverified handshake"
    );
    assert_eq!(vendor.requests(), 0);

    let trusting = spawn_gateway(&config(&format!("ca_file = {:?}", front.ca_file))).await;
    let reply = get(&trusting.url("/vendor/items"), &[]).await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(auth.logins(), 1);
    assert!(
        vendor.raw().contains("authorization: Bearer tok-1\r\n"),
        "{}",
        vendor.raw()
    );
}

fn load(toml: &str) -> Result<tollgate::Config, String> {
    let env = tollgate::Env::from_map::<_, String, String>([]);
    tollgate::Config::from_toml(toml, "t.toml", &env).map_err(|e| e.to_string())
}

#[test]
fn plain_http_off_loopback_needs_allow_insecure_http() {
    let provider = |url_key: &str, url: &str, extra: &str| {
        let kind = if url_key == "auth_url" {
            "kind = \"login\"\nemail = \"a@b.c\"\npassword = \"pw-pw-pw\""
        } else {
            "kind = \"client_credentials\"\nclient_id = \"id\"\nclient_secret = \"s\""
        };
        format!("[[providers]]\nname = \"v\"\n{kind}\n{url_key} = \"{url}\"\n{extra}\n")
    };
    let cases = [
        (
            jwks_config("http://idp.example.com/jwks.json", ""),
            Some("issuers[0].jwks_url"),
        ),
        (
            jwks_config("http://10.1.2.3/jwks.json", "allow_insecure_http = true"),
            None,
        ),
        (jwks_config("http://127.0.0.1:9/jwks.json", ""), None),
        (jwks_config("https://idp.example.com/jwks.json", ""), None),
        (
            provider("auth_url", "http://vendor.example.com/login", ""),
            Some("providers[0].auth_url"),
        ),
        (
            provider("token_url", "http://vendor.example.com/token", ""),
            Some("providers[0].token_url"),
        ),
        (
            provider(
                "token_url",
                "http://vendor.example.com/token",
                "allow_insecure_http = true",
            ),
            None,
        ),
        (
            provider("auth_url", "http://localhost:8080/login", ""),
            None,
        ),
        (
            provider(
                "auth_url",
                "https://vendor.example.com/login",
                "ca_file = \"/nope.pem\"",
            ),
            Some("providers[0].ca_file"),
        ),
        (
            jwks_config("https://idp.example.com/j", "jwks_ca_file = \"/nope.pem\""),
            Some("issuers[0].jwks_ca_file"),
        ),
    ];
    for (toml, refused_at) in cases {
        match (load(&toml), refused_at) {
            (Ok(_), None) => {}
            (Err(e), Some(key)) => {
                assert!(e.starts_with(&format!("t.toml: {key}: ")), "{e}");
                if key.ends_with("url") {
                    assert!(e.contains("allow_insecure_http = true"), "{e}");
                }
            }
            (other, _) => panic!("{toml}\n→ {:?}", other.map(|_| ())),
        }
    }
}
