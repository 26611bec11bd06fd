//! The README's walkthrough, run as pasted (with the test's ports and binary path).

mod support;

use support::*;

#[test]
fn readme_walkthrough_works_when_pasted() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let start = readme
        .find("<!-- walkthrough -->")
        .expect("walkthrough marker");
    let end = readme
        .find("<!-- /walkthrough -->")
        .expect("walkthrough end marker");
    let block = &readme[start..end];
    let script = block
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a sh code block");
    assert!(script.contains("token issue my-service") && script.contains("localhost:8080"));

    let gw = GatewayProcess::spawn_with_path(
        &root.join("config/tollgate.toml"),
        &[
            ("TOLLGATE_LISTEN", "127.0.0.1:0"),
            ("TOLLGATE_ADMIN_LISTEN", "127.0.0.1:0"),
        ],
    );
    let script = script
        .replace("localhost:8080", &gw.addr.to_string())
        .replace("./target/release/tollgate", env!("CARGO_BIN_EXE_tollgate"));
    let out = std::process::Command::new("bash")
        .args(["-euo", "pipefail", "-c", &script])
        .current_dir(root)
        .env_remove("TOLLGATE_JWT_SECRET")
        .env_remove("TOLLGATE_CONFIG")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("\"path\": \"/internal/hello\""), "{stdout}");
    assert!(
        stdout.contains("\"x-service-name\": [\n    \"my-service\"")
            || stdout.contains("\"my-service\""),
        "{stdout}"
    );
    assert!(stdout.contains("\"x-user-type\""), "{stdout}");
    // Step 2's answer ends with a newline: step 3's output starts on its own line.
    assert!(stdout.contains("\n}\n"), "{stdout}");
    assert!(
        stdout.trim_end().ends_with("403"),
        "a user token is refused on /internal: {stdout}"
    );
    // The startup output sells it: listeners, routes, the token hint, the secret warning.
    let logs = gw.logs().join("\n");
    for wanted in [
        "listening",
        "/internal",
        "tollgate token issue-access",
        "DEVELOPMENT SECRET",
    ] {
        assert!(
            logs.contains(wanted),
            "{wanted} missing from startup output"
        );
    }
}

#[test]
fn reference_config_in_the_readme_passes_check_as_pasted() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("docs/src/configuration.md")).unwrap();
    let section = &readme[readme
        .find("# Configuration")
        .expect("Configuration section")..];
    let block = section
        .split("```toml\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a toml block");
    let env = tollgate::Env::from_map::<_, String, String>([]);
    let config = tollgate::Config::from_toml(block, "docs/src/configuration.md", &env)
        .unwrap_or_else(|e| panic!("the reference config as pasted: {e}"));
    assert!(config.routes.iter().any(|r| r.upstream_auth.is_some()));
}
