//! `tollgate serve --upstream URL`: a local proxy without a config file, run as a user would,
//! its printed token pasted into a request, and what the app behind it received recorded.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use support::recording::RecordingUpstream;
use support::*;

/// The running process; killed when dropped.
struct Local {
    child: Child,
    url: String,
    token: Option<String>,
    printed: Vec<String>,
}

impl Drop for Local {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `tollgate serve --upstream ...` on ephemeral ports and reads what it prints.
fn serve(args: &[&str]) -> Local {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .arg("serve")
        .args(args)
        .env("TOLLGATE_LISTEN", "127.0.0.1:0")
        .env("TOLLGATE_ADMIN_LISTEN", "127.0.0.1:0")
        .env_remove("TOLLGATE_CONFIG")
        .env_remove("TOLLGATE_JWT_SECRET")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = Vec::new();
    let (mut url, mut token) = (None, None);
    while let Some(Ok(line)) = lines.next() {
        printed.push(line.clone());
        if let Some(rest) = line.trim().strip_prefix("curl ") {
            url = rest.split_whitespace().last().map(str::to_owned);
            token = rest
                .split("Bearer ")
                .nth(1)
                .map(|t| t.split('"').next().unwrap().to_owned());
            break;
        }
    }
    Local {
        child,
        url: url.unwrap_or_else(|| panic!("no curl line in {printed:?}")),
        token,
        printed,
    }
}

#[tokio::test]
async fn the_printed_token_works_as_pasted_and_the_app_gets_the_identity() {
    let app = RecordingUpstream::start().await;
    let local = serve(&["--upstream", &app.url(), "--policy", "service"]);
    assert!(
        local.printed[0].starts_with(&format!(
            "tollgate: fronting {} on http://127.0.0.1:",
            app.url()
        )),
        "{:?}",
        local.printed
    );
    let token = local.token.clone().expect("a token for a service route");
    let reply = get(
        &format!("{}hello", local.url),
        &[("authorization", &format!("Bearer {token}"))],
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let raw = app.raw();
    assert!(raw.starts_with("GET /hello HTTP/1.1\r\n"), "{raw}");
    assert!(raw.contains("x-service-name: local-dev\r\n"), "{raw}");
    assert!(raw.contains("x-user-type: service\r\n"), "{raw}");
    assert!(
        !raw.contains(&token),
        "the caller's token is not forwarded: {raw}"
    );
    // Without the token: refused by the gateway, never seen by the app.
    assert_eq!(get(&format!("{}hello", local.url), &[]).await.status, 401);
    assert_eq!(app.requests(), 1);
}

#[tokio::test]
async fn each_policy_prints_what_its_route_needs() {
    let app = RecordingUpstream::start().await;
    let public = serve(&[
        "--upstream",
        &app.url(),
        "--policy",
        "public",
        "--prefix",
        "/app",
    ]);
    assert!(public.token.is_none(), "{:?}", public.printed);
    assert!(public.url.ends_with("/"), "{}", public.url);
    assert_eq!(get(&format!("{}app/x", public.url), &[]).await.status, 200);
    drop(public);
    // The default policy is `authenticated`: a user access token is printed.
    let user = serve(&["--upstream", &app.url()]);
    let token = user.token.clone().unwrap();
    let reply = get(&user.url, &[("authorization", &format!("Bearer {token}"))]).await;
    assert_eq!(reply.status, 200);
    assert!(
        app.raw().contains("x-user-id: developer\r\n"),
        "{}",
        app.raw()
    );
}

#[test]
fn upstream_and_a_config_file_are_not_combined() {
    for (args, env) in [
        (
            vec![
                "--upstream",
                "http://127.0.0.1:9",
                "--config",
                "config/tollgate.toml",
            ],
            None,
        ),
        (
            vec!["--upstream", "http://127.0.0.1:9"],
            Some("config/tollgate.toml"),
        ),
    ] {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tollgate"));
        command
            .arg("serve")
            .args(&args)
            .env_remove("TOLLGATE_CONFIG");
        if let Some(path) = env {
            command.env("TOLLGATE_CONFIG", path);
        }
        let out = command.output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(2),
            "a config error, like others: {args:?}"
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("--upstream builds its own one-route config")
                && err.contains("use one or the other"),
            "{err}"
        );
    }
    // --prefix and --policy mean nothing without --upstream.
    let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["serve", "--policy", "service"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}
