//! Third-party (vendor) routes: what a vendor receives, judged on the raw bytes it got, and
//! how long a request waits for the vendor token.

mod support;

use std::time::{Duration, Instant};

use support::recording::RecordingUpstream;
use support::*;

const ISS: &str = "tollgate";

fn vendor_config(auth: &AuthServer, vendor: &RecordingUpstream, extra_provider: &str) -> String {
    let mut routes = String::new();
    for (prefix, opt_in) in [
        ("/plain", ""),
        ("/with-identity", "send_identity = true"),
        ("/with-forwarded", "send_forwarded = true"),
    ] {
        routes.push_str(&format!(
            "[[routes]]\nprefix = \"{prefix}\"\nupstream = \"{}\"\npolicy = \"service\"\nupstream_auth = \"vendor\"\n{opt_in}\n\n",
            vendor.url()
        ));
    }
    format!(
        r#"
[server]
listen = ["127.0.0.1:0"]
admin_listen = "127.0.0.1:0"
trusted_proxies = ["127.0.0.1"]

[[issuers]]
issuer = "{ISS}"
algorithms = ["HS256"]
secret = "{SECRET}"

[identity]
claim_headers = {{ "tenant_id" = "x-org" }}

[[providers]]
name = "vendor"
kind = "login"
auth_url = "{}"
email = "svc@example.com"
password = "hunter2-vendor-password"
max_retries = 0
{extra_provider}

{routes}
"#,
        auth.url()
    )
}

#[tokio::test]
async fn a_vendor_receives_no_internal_identity_or_addresses_unless_the_route_opts_in() {
    let auth = AuthServer::start(AuthReply::Field("accessToken")).await;
    let vendor = RecordingUpstream::start().await;
    let gw = spawn_gateway(&vendor_config(&auth, &vendor, "")).await;
    let token = hs256(&service_claims(ISS, "orders"));
    let internal = [
        "x-user-",
        "x-service-",
        "x-tenant-",
        "x-org",
        "x-forwarded-",
        "forwarded:",
        "x-real-ip",
        "orders@internal.service",
        "10.1.2.3",
    ];
    for path in ["/plain/x", "/with-identity/x", "/with-forwarded/x"] {
        let reply = get(
            &gw.url(path),
            &[
                ("authorization", &format!("Bearer {token}")),
                // A trusted proxy's chain: believed, and still not a vendor's business.
                ("x-forwarded-for", "10.1.2.3"),
                ("x-forwarded-host", "internal.example"),
                ("forwarded", "for=10.1.2.3"),
                ("x-real-ip", "10.1.2.3"),
            ],
        )
        .await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.text());
    }
    let raw = vendor.raw();
    let heads: Vec<String> = raw
        .split("GET /")
        .skip(1)
        .map(|h| h.split("\r\n\r\n").next().unwrap().to_ascii_lowercase())
        .collect();
    assert_eq!(heads.len(), 3, "{raw}");
    let (plain, identity, forwarded) = (&heads[0], &heads[1], &heads[2]);
    for head in &heads {
        assert!(head.contains("\r\nauthorization: bearer tok-1"), "{head}");
        assert!(head.contains("\r\nx-request-id: "), "{head}");
        assert!(
            !head.contains(&token.to_ascii_lowercase()),
            "caller token leaked: {head}"
        );
    }
    for needle in internal {
        assert!(
            !plain.contains(needle),
            "default route sent {needle:?}:\n{plain}"
        );
    }
    // send_identity: the identity, and still no addresses.
    for needle in [
        "x-user-id: orders",
        "x-user-email: orders@internal.service",
        "x-service-name: orders",
        "x-user-issuer: tollgate",
    ] {
        assert!(identity.contains(needle), "{needle}:\n{identity}");
    }
    for needle in ["x-forwarded-", "forwarded:", "x-real-ip", "10.1.2.3"] {
        assert!(!identity.contains(needle), "{needle}:\n{identity}");
    }
    // send_forwarded: the addresses (the trusted chain plus the proxy), and no identity.
    assert!(
        forwarded.contains("x-forwarded-for: 10.1.2.3, 127.0.0.1"),
        "{forwarded}"
    );
    for needle in ["x-user-", "x-service-", "orders@internal.service"] {
        assert!(!forwarded.contains(needle), "{needle}:\n{forwarded}");
    }
}

#[tokio::test]
async fn a_slow_auth_api_costs_a_request_at_most_its_route_timeout() {
    let auth = AuthServer::start(AuthReply::Field("accessToken")).await;
    auth.set_delay(Duration::from_secs(5));
    let vendor = RecordingUpstream::start().await;
    let config = vendor_config(&auth, &vendor, "timeout = \"10s\"").replace(
        "policy = \"service\"\nupstream_auth",
        "policy = \"service\"\ntimeout = \"2s\"\nupstream_auth",
    );
    let gw = spawn_gateway(&config).await;
    let token = hs256(&service_claims(ISS, "orders"));
    let started = Instant::now();
    let reply = get(
        &gw.url("/plain/x"),
        &[("authorization", &format!("Bearer {token}"))],
    )
    .await;
    let waited = started.elapsed();
    assert_eq!(reply.status, 503, "{}", reply.text());
    assert!(
        reply.json()["reason"]
            .as_str()
            .unwrap()
            .contains("no token within 2s; the login continues in the background"),
        "{}",
        reply.text()
    );
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    // The login went on without the caller; once it lands, requests use its token.
    within(async {
        loop {
            let reply = get(
                &gw.url("/plain/x"),
                &[("authorization", &format!("Bearer {token}"))],
            )
            .await;
            if reply.status == 200 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    assert_eq!(auth.logins(), 1, "one login, not one per waiting request");
    assert_eq!(vendor.requests(), 1);
}

fn load(toml: &str, vars: &[(&str, &str)]) -> Result<tollgate::Config, String> {
    let env = tollgate::Env::from_map(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    tollgate::Config::from_toml(toml, "t.toml", &env).map_err(|e| e.to_string())
}

#[test]
fn retries_and_attempt_timeouts_have_upper_bounds() {
    let provider = |extra: &str| {
        format!(
            "[[providers]]\nname = \"v\"\nkind = \"login\"\nauth_url = \"http://127.0.0.1:9/login\"\nemail = \"a@b.c\"\npassword = \"pw\"\n{extra}\n"
        )
    };
    let err = load(&provider("max_retries = 1000000"), &[]).unwrap_err();
    assert!(
        err.starts_with("t.toml: providers[0].max_retries: at most 10 (got 1000000)"),
        "{err}"
    );
    let err = load(&provider(""), &[("API_EXECUTOR_MAX_RETRIES", "1000000")]).unwrap_err();
    assert!(
        err.contains("providers[0].max_retries: at most 10"),
        "{err}"
    );
    let err = load(&provider("timeout = \"1h\""), &[]).unwrap_err();
    assert!(
        err.contains("providers[0].timeout: must be between 1ms and 5m"),
        "{err}"
    );
    // The seed's bare seconds, fractions of them, and humantime all work from the environment.
    for (value, want) in [
        ("30", 30_000),
        ("2.5", 2_500),
        ("2s", 2_000),
        ("1m 30s", 90_000),
    ] {
        let config = load(&provider(""), &[("API_EXECUTOR_TIMEOUT", value)])
            .unwrap_or_else(|e| panic!("{value}: {e}"));
        assert_eq!(config.providers[0].timeout.as_millis(), want, "{value}");
    }
    let err = load(&provider(""), &[("API_EXECUTOR_TIMEOUT", "soon")]).unwrap_err();
    assert!(
        err.contains("API_EXECUTOR_TIMEOUT is not seconds or a duration"),
        "{err}"
    );
    let err = load(
        "[[routes]]\nprefix = \"/\"\nupstream = \"http://127.0.0.1:9\"\npolicy = \"public\"\nsend_identity = true\n",
        &[],
    )
    .unwrap_err();
    assert!(
        err.contains("routes[0].send_identity: only has an effect on an upstream_auth route"),
        "{err}"
    );
}

/// The Upstream credentials chapter's worked example, pasted: its `.env`, `check`, `serve`,
/// `token issue` and `curl` run as written against `config/examples/vendor.toml` (copied into
/// a scratch directory), with the vendor's two URLs pointed at local stand-ins. The `curl`
/// must name the port the example config listens on.
#[tokio::test(flavor = "multi_thread")]
async fn the_vendor_worked_example_works_when_pasted() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let chapter = std::fs::read_to_string(root.join("docs/src/upstream-credentials.md")).unwrap();
    let worked = &chapter[chapter.find("## Worked example").unwrap()..];
    let script = worked
        .split("```sh\n")
        .nth(1)
        .unwrap()
        .split("```")
        .next()
        .unwrap();
    let config = std::fs::read_to_string(root.join("config/examples/vendor.toml")).unwrap();
    let port = config
        .split("${TOLLGATE_LISTEN:-127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split('}').next())
        .expect("the example's default port");
    assert!(
        script.contains(&format!("localhost:{port}/vendor/")),
        "the curl must call the port vendor.toml listens on ({port}):\n{script}"
    );

    let auth = AuthServer::start(AuthReply::Field("accessToken")).await;
    let vendor = MockUpstream::echo().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("config/examples")).unwrap();
    std::fs::write(dir.path().join("config/examples/vendor.toml"), &config).unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_tollgate"), bin.join("tollgate")).unwrap();
    let listen = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let free = listen.local_addr().unwrap().port().to_string();
    drop(listen);
    let script = script
        .replace("https://api.vendor.example", &vendor.url())
        .replace("https://auth.vendor.example/api/login", &auth.url())
        .replace(&format!("localhost:{port}"), &format!("127.0.0.1:{free}"))
        // `serve` runs in the foreground when pasted; here it goes to the background until the
        // script ends, and the next line waits for its port.
        .replace(
            "tollgate serve --config config/examples/vendor.toml\n",
            "tollgate serve --config config/examples/vendor.toml 2>serve.log &\n\
             trap 'kill $!' EXIT\n\
             for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$TOLLGATE_LISTEN_PORT) 2>/dev/null && break; sleep 0.1; done\n",
        );
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = tokio::task::spawn_blocking({
        let dir = dir.path().to_owned();
        move || {
            std::process::Command::new("bash")
                .args(["-euo", "pipefail", "-c", &script])
                .current_dir(dir)
                .env("PATH", path)
                .env("TOLLGATE_LISTEN", format!("127.0.0.1:{free}"))
                .env("TOLLGATE_LISTEN_PORT", &free)
                .env("TOLLGATE_ADMIN_LISTEN", "127.0.0.1:0")
                .env_remove("TOLLGATE_CONFIG")
                .env_remove("TOLLGATE_JWT_SECRET")
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen = vendor.last();
    assert_eq!(seen.uri, "/v1/items", "{stdout}");
    assert_eq!(
        seen.headers["authorization"], "Bearer tok-1",
        "the vendor's token"
    );
}
