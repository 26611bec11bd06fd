//! The command line: `tollgate check` on good and bad configs.

use std::process::{Command, Output};

fn tollgate(args: &[&str], dir: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(args)
        .current_dir(dir)
        .env_remove("TOLLGATE_CONFIG")
        .output()
        .expect("binary runs")
}

fn check(config: &str) -> (bool, String, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.toml"), config).unwrap();
    let out = tollgate(&["check", "--config", "bad.toml"], dir.path());
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn check_accepts_the_default_config_and_prints_routes() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = tollgate(&["check"], root);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("config/tollgate.toml: ok"), "{stdout}");
    assert!(stdout.contains("/echo"), "{stdout}");
}

#[test]
fn check_names_file_key_and_reason() {
    let cases = [
        (
            "[[routes]]\nprefix = \"/a\"\nupstream = \"echo\"\npolicy = \"public\"\n[[routes]]\nprefix = \"/b\"\nupstream = \"echo\"\npolicy = \"public\"\n[[routes]]\nprefix = \"/c\"\nupstream = \"htp:/x\"\npolicy = \"public\"\n",
            "bad.toml: routes[2].upstream: invalid URL \"htp:/x\"",
        ),
        (
            "[server]\nlisten = [\"nonsense\"]\n",
            "bad.toml: server.listen[0]: invalid socket address",
        ),
        (
            "[limits]\nmax_body_byte = 1\n",
            "unknown field `max_body_byte`",
        ),
        (
            "[[routes]]\nprefix = \"/a\"\nupstream = \"${TOLLGATE_TEST_UNSET_VAR}\"\npolicy = \"public\"\n",
            "bad.toml: routes[0].upstream: environment variable TOLLGATE_TEST_UNSET_VAR is not set",
        ),
        (
            "[[routes]]\nprefix = \"a\"\nupstream = \"echo\"\npolicy = \"public\"\n",
            "bad.toml: routes[0].prefix: must start with '/'",
        ),
        ("[server\n", "bad.toml: invalid TOML"),
        (
            "[limits]\nidle_timeout = \"soon\"\n",
            "bad.toml: limits.idle_timeout: invalid duration \"soon\"",
        ),
    ];
    for (config, want) in cases {
        let (ok, _, stderr) = check(config);
        assert!(!ok, "accepted: {config}");
        assert!(stderr.contains(want), "want {want:?} in {stderr:?}");
    }
}

#[test]
fn check_on_missing_file_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = tollgate(&["check", "--config", "nope.toml"], dir.path());
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope.toml: cannot read"));
}

#[test]
fn dotenv_file_supplies_variables() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".env"),
        "TOLLGATE_TEST_DOTENV_UPSTREAM=http://127.0.0.1:9\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("c.toml"),
        "[[routes]]\nprefix = \"/a\"\nupstream = \"${TOLLGATE_TEST_DOTENV_UPSTREAM}\"\npolicy = \"public\"\n",
    )
    .unwrap();
    let out = tollgate(&["check", "--config", "c.toml"], dir.path());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("http://127.0.0.1:9"), "{stdout}");
}

#[test]
fn the_development_secret_is_refused_off_loopback_by_check_and_serve() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for command in ["check", "serve"] {
        // Port 0: should `serve` wrongly start, it binds nothing fixed and is killed below.
        let mut child = Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .arg(command)
            .current_dir(root)
            .env_remove("TOLLGATE_CONFIG")
            .env_remove("TOLLGATE_JWT_SECRET")
            .env("TOLLGATE_LISTEN", "0.0.0.0:0")
            .env("TOLLGATE_ADMIN_LISTEN", "127.0.0.1:0")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("binary runs");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while child.try_wait().unwrap().is_none() {
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                panic!("{command} started with the development secret on 0.0.0.0");
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{command} accepted it: {stderr}");
        assert!(
            stderr.contains("issuers[0].secret") && stderr.contains("TOLLGATE_JWT_SECRET"),
            "{command}: {stderr}"
        );
    }
}

#[test]
fn check_shows_each_routes_policy_and_warns_about_the_development_secret() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    // Unset, and set but empty (`${TOLLGATE_JWT_SECRET:-...}` falls back on both).
    for secret in [None, Some("")] {
        let mut command = Command::new(env!("CARGO_BIN_EXE_tollgate"));
        command
            .arg("check")
            .current_dir(root)
            .env_remove("TOLLGATE_CONFIG")
            .env_remove("TOLLGATE_JWT_SECRET");
        if let Some(value) = secret {
            command.env("TOLLGATE_JWT_SECRET", value);
        }
        let out = command.output().unwrap();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(out.status.success(), "{stdout}{stderr}");
        assert!(
            stderr.contains("warning: issuers[0] (tollgate) uses the built-in development secret"),
            "{secret:?}: {stderr}"
        );
        let internal = stdout
            .lines()
            .find(|l| l.starts_with("internal "))
            .unwrap_or_else(|| panic!("{stdout}"));
        assert!(internal.contains(" service "), "{internal}");
        assert!(
            stdout.lines().nth(1).unwrap().contains("policy"),
            "{stdout}"
        );
    }
    let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .arg("check")
        .current_dir(root)
        .env_remove("TOLLGATE_CONFIG")
        .env(
            "TOLLGATE_JWT_SECRET",
            "a-real-secret-of-at-least-thirty-two-bytes",
        )
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(!String::from_utf8_lossy(&out.stderr).contains("development secret"));
}

#[test]
fn token_issue_without_services_points_at_all() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = tollgate(&["token", "issue"], root);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--all"), "{stderr}");
}

/// Runs the binary in `dir` with `HOME` (and no XDG_CONFIG_HOME, no TOLLGATE_CONFIG) set, as
/// an installed binary runs outside the checkout.
fn installed(args: &[&str], dir: &std::path::Path, home: &std::path::Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(args)
        .current_dir(dir)
        .env_remove("TOLLGATE_CONFIG")
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("TOLLGATE_JWT_SECRET")
        .env("HOME", home)
        .output()
        .expect("binary runs")
}

/// Without a config named, the documented places are looked at in order; when none exists,
/// each is named. `tollgate init` writes a starter config there that works at once.
#[test]
fn the_config_is_found_in_the_documented_places_and_init_writes_a_working_one() {
    use std::os::unix::fs::PermissionsExt;
    let work = tempfile::tempdir().unwrap();
    let (dir, home) = (work.path().join("anywhere"), work.path().join("home"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::create_dir_all(&home).unwrap();
    let user_config = home.join(".config/tollgate/tollgate.toml");

    let none = installed(&["check"], &dir, &home);
    assert_eq!(none.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&none.stderr);
    for place in [
        "config/tollgate.toml",
        "/etc/tollgate/tollgate.toml",
        &user_config.display().to_string(),
    ] {
        assert!(stderr.contains(place), "{place} not named: {stderr}");
    }
    assert!(stderr.contains("tollgate init"), "{stderr}");

    // The user's config dir is found from anywhere.
    let target = user_config.to_str().unwrap();
    let init = installed(&["init", target], &dir, &home);
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let mode = std::fs::metadata(&user_config)
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "it holds a secret");
    let written = std::fs::read_to_string(&user_config).unwrap();
    assert!(!written.contains("development-secret"), "{written}");
    let check = installed(&["check"], &dir, &home);
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let stdout = String::from_utf8_lossy(&check.stdout);
    assert!(stdout.starts_with(&format!("{target}: ok")), "{stdout}");
    // A token issued with it verifies with it: the generated secret signs.
    let issued = installed(&["token", "issue", "my-service"], &dir, &home);
    let token = String::from_utf8_lossy(&issued.stdout).trim().to_owned();
    assert!(
        issued.status.success(),
        "{}",
        String::from_utf8_lossy(&issued.stderr)
    );
    let verified = installed(&["token", "verify", &token], &dir, &home);
    assert!(
        String::from_utf8_lossy(&verified.stdout).contains("valid, service token for my-service"),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );

    // ./config/tollgate.toml comes first; init never overwrites.
    assert!(installed(&["init"], &dir, &home).status.success());
    let local = installed(&["check"], &dir, &home);
    assert!(String::from_utf8_lossy(&local.stdout).starts_with("config/tollgate.toml: ok"));
    let again = installed(&["init"], &dir, &home);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("never overwrites"));
}

/// The token commands run offline: they read the issuers, identity, tokens, state and log
/// sections only, so the variables of the console, the providers or the routes (a vendor
/// password, the console token) need not be set. `check` still needs them all.
#[test]
fn token_commands_need_only_the_variables_of_the_sections_they_read() {
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        r#"[server]
listen = ["127.0.0.1:0"]
admin_listen = "127.0.0.1:0"

[admin]
console = true
token = "${{TOLLGATE_ADMIN_TOKEN}}"

[state]
path = "{state}"

[[issuers]]
issuer = "tollgate"
algorithms = ["HS256"]
secret = "${{SIGNING_SECRET}}"

[[providers]]
name = "vendor"
kind = "login"
auth_url = "${{API_AUTH_URL}}"
email = "${{API_AUTH_EMAIL}}"
password = "${{API_AUTH_PASSWORD}}"

[[routes]]
prefix = "/vendor"
upstream = "${{VENDOR_API_URL}}"
policy = "service"
upstream_auth = "vendor"
"#,
        state = dir.path().join("revocations.json").display()
    );
    std::fs::write(dir.path().join("t.toml"), config).unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .args(args)
            .args(["--config", "t.toml"])
            .current_dir(dir.path())
            .env_remove("TOLLGATE_CONFIG")
            .env(
                "SIGNING_SECRET",
                "a-secret-of-more-than-thirty-two-bytes-for-hs256",
            )
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        (
            out.status.code(),
            stdout,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, token, stderr) = run(&["token", "issue", "billing"]);
    assert_eq!(code, Some(0), "{stderr}");
    let (code, verdict, stderr) = run(&["token", "verify", &token]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        verdict.contains("valid, service token for billing"),
        "{verdict}"
    );
    let (code, _, stderr) = run(&["token", "issue-access", "--user-id", "alice"]);
    assert_eq!(code, Some(0), "{stderr}");
    let (code, _, stderr) = run(&["token", "revoke", &token]);
    assert_eq!(code, Some(0), "{stderr}");
    let (code, listed, stderr) = run(&["token", "revoked"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(
        listed.lines().filter(|l| l.starts_with("jti ")).count(),
        1,
        "{listed}"
    );
    let (code, _, stderr) = run(&["token", "usage"]);
    assert_eq!(code, Some(0), "{stderr}");
    let (code, _, stderr) = run(&["check"]);
    assert_eq!(code, Some(2), "check reads everything");
    assert!(
        stderr.contains("TOLLGATE_ADMIN_TOKEN") || stderr.contains("API_AUTH"),
        "{stderr}"
    );
}
