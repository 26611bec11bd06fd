//! The deployment files cannot drift from the code: manifests, Dockerfile and the config they
//! carry are parsed and checked against what tollgate actually does.

mod support;

use std::path::Path;

use serde_yaml_ng::Value;
use tollgate::{Config, Env};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn manifest(name: &str) -> Value {
    let text = std::fs::read_to_string(root().join("config/kubernetes").join(name)).unwrap();
    serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The config the ConfigMap carries, validated like tollgate would at startup.
fn configmap_config() -> Config {
    let configmap = manifest("configmap.yaml");
    let toml = configmap["data"]["tollgate.toml"]
        .as_str()
        .expect("tollgate.toml in the ConfigMap");
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().to_str().unwrap();
    std::fs::write(
        dir.path().join("jwt-secret"),
        "0123456789abcdef0123456789abcdef-test",
    )
    .unwrap();
    std::fs::write(dir.path().join("api-auth-password"), "pw").unwrap();
    let toml = toml.replace("/var/run/secrets/tollgate", secrets);
    let env = Env::from_map([
        ("API_AUTH_URL", "https://auth.vendor.example/login"),
        ("API_AUTH_EMAIL", "svc@example.com"),
        ("VENDOR_API_URL", "https://api.vendor.example"),
    ]);
    Config::from_toml(&toml, "configmap.yaml", &env).expect("the ConfigMap's config is valid")
}

fn container(deployment: &Value) -> &Value {
    &deployment["spec"]["template"]["spec"]["containers"][0]
}

fn port_number(container: &Value, name: &str) -> u64 {
    container["ports"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .and_then(|p| p["containerPort"].as_u64())
        .unwrap_or_else(|| panic!("port {name}"))
}

#[test]
fn every_manifest_parses_and_kustomize_lists_them() {
    let kustomization = manifest("kustomization.yaml");
    let listed: Vec<&str> = kustomization["resources"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    for entry in std::fs::read_dir(root().join("config/kubernetes")).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let doc = manifest(&name);
        if name == "kustomization.yaml" {
            continue;
        }
        assert!(
            doc["apiVersion"].is_string() && doc["kind"].is_string(),
            "{name}"
        );
        if name != "secret.example.yaml" {
            assert!(
                listed.contains(&name.as_str()),
                "{name} not in kustomization.yaml"
            );
        }
    }
}

#[test]
fn probes_ports_and_grace_period_match_the_config() {
    let config = configmap_config();
    let deployment = manifest("deployment.yaml");
    let container = container(&deployment);
    let admin = port_number(container, "admin");
    let http = port_number(container, "http");
    assert_eq!(config.admin_listen.unwrap().port() as u64, admin);
    assert_eq!(config.listen[0].port() as u64, http);
    assert!(
        config.listen[0].ip().is_unspecified(),
        "pods must listen on all interfaces"
    );
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(container["livenessProbe"]["httpGet"]["port"], "admin");
    assert_eq!(container["readinessProbe"]["httpGet"]["port"], "admin");

    let grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        .as_u64()
        .unwrap();
    let pre_stop = container["lifecycle"]["preStop"]["sleep"]["seconds"]
        .as_u64()
        .unwrap();
    assert!(
        pre_stop > 0,
        "endpoints need time to be removed before the drain"
    );
    assert!(
        grace > pre_stop + config.drain_timeout.as_secs(),
        "grace {grace}s must exceed preStop {pre_stop}s + drain {}s",
        config.drain_timeout.as_secs()
    );
    assert!(deployment["spec"]["replicas"].as_u64().unwrap() >= 2);
    let args: Vec<&str> = container["args"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(args[0], "serve");
    let mount = container["volumeMounts"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "config")
        .unwrap();
    assert_eq!(
        args[2],
        format!("{}/tollgate.toml", mount["mountPath"].as_str().unwrap())
    );
}

#[test]
fn pods_run_locked_down() {
    let deployment = manifest("deployment.yaml");
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_ne!(pod["securityContext"]["runAsUser"].as_u64(), Some(0));
    let security = &container(&deployment)["securityContext"];
    assert_eq!(security["readOnlyRootFilesystem"], true);
    assert_eq!(security["allowPrivilegeEscalation"], false);
    assert_eq!(security["capabilities"]["drop"][0], "ALL");
    let resources = &container(&deployment)["resources"];
    for key in ["requests", "limits"] {
        assert!(
            resources[key]["cpu"].is_string() && resources[key]["memory"].is_string(),
            "{key}"
        );
    }
}

#[test]
fn service_pdb_hpa_and_ingress_point_at_the_deployment() {
    let deployment = manifest("deployment.yaml");
    let name = deployment["metadata"]["name"].as_str().unwrap();
    let labels = &deployment["spec"]["template"]["metadata"]["labels"];
    let service = manifest("service.yaml");
    assert_eq!(&service["spec"]["selector"], labels);
    let ports: Vec<&str> = service["spec"]["ports"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|p| p["targetPort"].as_str().unwrap())
        .collect();
    for port in &ports {
        port_number(container(&deployment), port);
    }
    let pdb = manifest("pdb.yaml");
    assert_eq!(&pdb["spec"]["selector"]["matchLabels"], labels);
    let hpa = manifest("hpa.yaml");
    assert_eq!(hpa["spec"]["scaleTargetRef"]["name"], name);
    assert!(hpa["spec"]["minReplicas"].as_u64().unwrap() >= 2);
    let ingress = manifest("ingress.yaml");
    let backend = &ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"];
    assert_eq!(backend["name"], service["metadata"]["name"]);
    assert!(ports.contains(&backend["port"]["name"].as_str().unwrap()));
    // Every secret the deployment reads exists in the example Secret.
    let example = manifest("secret.example.yaml");
    assert_eq!(example["metadata"]["name"], "tollgate-secrets");
    let text = std::fs::read_to_string(root().join("config/kubernetes/deployment.yaml")).unwrap();
    for key in [
        "API_AUTH_URL",
        "API_AUTH_EMAIL",
        "VENDOR_API_URL",
        "TOLLGATE_JWT_SECRET",
        "API_AUTH_PASSWORD",
    ] {
        assert!(text.contains(key), "{key} not wired in deployment.yaml");
        assert!(
            example["stringData"][key].is_string(),
            "{key} missing from secret.example.yaml"
        );
    }
}

#[test]
fn dockerfile_builds_locked_and_runs_unprivileged() {
    let dockerfile = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    // The dist profile: fat LTO, the build the benchmark measures.
    assert!(dockerfile.contains("cargo build --profile dist --locked"));
    assert!(dockerfile.contains("COPY --from=build /src/target/dist/tollgate"));
    assert!(
        dockerfile.contains("COPY Cargo.toml Cargo.lock"),
        "dependency layer cached apart"
    );
    // Numeric, so Kubernetes' runAsNonRoot can verify it (hadolint DL3066). That the image
    // builds is proven by replaying it: `.ci/dockerfile-replay`, run by `.ci/run`.
    assert!(dockerfile.contains("USER 65532:65532"));
    assert!(dockerfile.contains("EXPOSE 8080 9901"));
    assert!(dockerfile.contains(r#"CMD ["/usr/local/bin/tollgate", "health"]"#));
    assert!(dockerfile.contains(r#"ENTRYPOINT ["/usr/local/bin/tollgate"]"#));
    let ignore = std::fs::read_to_string(root().join(".dockerignore")).unwrap();
    for entry in ["target/", ".env", ".git/"] {
        assert!(
            ignore.lines().any(|l| l == entry),
            "{entry} not in .dockerignore"
        );
    }
    // The image's default config with the image's environment listens on all interfaces, and
    // so refuses the public development secret: the image needs a real one.
    let image_env = [
        ("TOLLGATE_LISTEN", "0.0.0.0:8080"),
        ("TOLLGATE_ADMIN_LISTEN", "0.0.0.0:9901"),
    ];
    let err = Config::load(
        &root().join("config/tollgate.toml"),
        &Env::from_map(image_env),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("issuers[0].secret") && err.contains("TOLLGATE_JWT_SECRET"),
        "{err}"
    );
    let mut with_secret = image_env.to_vec();
    with_secret.push((
        "TOLLGATE_JWT_SECRET",
        "a-real-secret-of-at-least-thirty-two-bytes",
    ));
    let config = Config::load(
        &root().join("config/tollgate.toml"),
        &Env::from_map(with_secret),
    )
    .unwrap();
    assert_eq!(config.listen[0].to_string(), "0.0.0.0:8080");
    assert_eq!(config.admin_listen.unwrap().to_string(), "0.0.0.0:9901");
}

#[test]
fn health_subcommand_probes_the_admin_listener() {
    let down = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["health", "--url", "http://127.0.0.1:9/healthz"])
        .output()
        .unwrap();
    assert!(!down.status.success());
    assert!(String::from_utf8_lossy(&down.stderr).contains("unreachable"));

    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (addr, _guard) = runtime.block_on(async {
        let mut config = Config::from_toml(
            "[server]\nlisten = [\"127.0.0.1:0\"]\nadmin_listen = \"127.0.0.1:0\"\n",
            "t.toml",
            &Env::from_map::<_, String, String>([]),
        )
        .unwrap();
        config.routes.clear();
        let running = tollgate::start(config).await.unwrap();
        (running.admin_addr.unwrap(), running)
    });
    // Run in a directory without a config file, so nothing is found by default.
    let dir = tempfile::tempdir().unwrap();
    let health = |args: &[&str], env: &[(&str, &str)]| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"));
        command
            .arg("health")
            .args(args)
            .current_dir(dir.path())
            .env_remove("TOLLGATE_CONFIG")
            .env_remove("TOLLGATE_ADMIN_LISTEN");
        for (k, v) in env {
            command.env(k, v);
        }
        let out = command.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.code(), stderr)
    };
    let (url, base, bare) = (
        format!("http://{addr}/healthz"),
        format!("http://{addr}"),
        addr.to_string(),
    );
    for args in [["--url", &url], ["--url", &base], ["--url", &bare]] {
        assert_eq!(health(&args, &[]), (Some(0), String::new()), "{args:?}");
    }
    let listen = [("TOLLGATE_ADMIN_LISTEN", bare.as_str())];
    assert_eq!(
        health(&[], &listen),
        (Some(0), String::new()),
        "the variable"
    );
    let (code, stderr) = health(&[], &[]);
    assert_eq!(code, Some(1), "127.0.0.1:9901 by default: {stderr}");
    assert!(stderr.contains("http://127.0.0.1:9901/healthz"), "{stderr}");
    // From a config: only server.admin_listen is read and interpolated, so a secret the probe
    // never has (the vendor password) is not needed; 0.0.0.0 is probed on loopback.
    let config = dir.path().join("probe.toml");
    let everywhere = format!("0.0.0.0:{}", addr.port());
    std::fs::write(
        &config,
        "[server]\nadmin_listen = \"${ADMIN:-127.0.0.1:9}\"\n\
         [[providers]]\nname = \"v\"\nkind = \"login\"\nauth_url = \"https://v.example/login\"\n\
         email = \"a@b.c\"\npassword = \"${VENDOR_PASSWORD}\"\n",
    )
    .unwrap();
    let path = config.to_str().unwrap();
    let admin = [("ADMIN", everywhere.as_str())];
    assert_eq!(
        health(&["--config", path], &admin),
        (Some(0), String::new())
    );
    let (code, stderr) = health(&["--config", path], &[]);
    assert_eq!(code, Some(1), "the config's default, port 9: {stderr}");
    assert!(stderr.contains("127.0.0.1:9/healthz"), "{stderr}");
    std::fs::write(&config, "[server]\nadmin_listen = \"\"\n").unwrap();
    let (code, stderr) = health(&["--config", path], &[]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("turns the admin listener off"), "{stderr}");
}

/// `text` with the commented lines that start with one of `blocks` (after indentation and
/// `# `) and their commented continuation lines (deeper `#   `) uncommented.
fn uncomment(text: &str, blocks: &[&str]) -> String {
    let mut out = String::new();
    let mut inside: Option<usize> = None;
    for line in text.lines() {
        let indent = line.len() - line.trim_start().len();
        let rest = line.trim_start();
        let starts = rest
            .strip_prefix("# ")
            .is_some_and(|r| blocks.iter().any(|b| r.starts_with(b)));
        let continues = inside.is_some_and(|i| i == indent && rest.starts_with("#   "));
        if starts || continues {
            inside = Some(indent);
            out.push_str(&line[..indent]);
            out.push_str(&rest[2..]);
        } else {
            inside = None;
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

#[test]
fn the_commented_tls_mount_uncommented_serves_the_secret_cert_manager_writes() {
    let deployment = uncomment(
        &std::fs::read_to_string(root().join("config/kubernetes/deployment.yaml")).unwrap(),
        &["- name: https", "- name: tls"],
    );
    let deployment: Value = serde_yaml_ng::from_str(&deployment).unwrap();
    let pod = &deployment["spec"]["template"]["spec"];
    let mount = pod["containers"][0]["volumeMounts"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "tls")
        .expect("the tls mount");
    assert_eq!(mount["mountPath"], "/etc/tollgate-tls");
    assert!(
        mount.get("subPath").is_none(),
        "a subPath mount is never renewed"
    );
    let volume = pod["volumes"]
        .as_sequence()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "tls")
        .expect("the tls volume");
    assert_eq!(volume["secret"]["secretName"], "tollgate-tls");
    assert_eq!(port_number(container(&deployment), "https"), 8443);

    // The ConfigMap's commented [server.tls], uncommented, loads with the files a
    // kubernetes.io/tls Secret holds at that mount.
    let configmap = manifest("configmap.yaml");
    let toml = uncomment(
        configmap["data"]["tollgate.toml"].as_str().unwrap(),
        &[
            "[server.tls]",
            "listen = [\"0.0.0.0:8443\"]",
            "certificates = ",
        ],
    );
    assert!(toml.contains("\n[server.tls]\n"), "{toml}");
    let certs = support::tls::TestCerts::generate();
    let mount = tempfile::tempdir().unwrap();
    std::fs::copy(&certs.cert_file, mount.path().join("tls.crt")).unwrap();
    std::fs::copy(&certs.key_file, mount.path().join("tls.key")).unwrap();
    let secrets = tempfile::tempdir().unwrap();
    std::fs::write(
        secrets.path().join("jwt-secret"),
        "0123456789abcdef0123456789abcdef-test",
    )
    .unwrap();
    std::fs::write(secrets.path().join("api-auth-password"), "pw").unwrap();
    let toml = toml
        .replace("/etc/tollgate-tls", mount.path().to_str().unwrap())
        .replace(
            "/var/run/secrets/tollgate",
            secrets.path().to_str().unwrap(),
        );
    let env = Env::from_map([
        ("API_AUTH_URL", "https://auth.vendor.example/login"),
        ("API_AUTH_EMAIL", "svc@example.com"),
        ("VENDOR_API_URL", "https://api.vendor.example"),
    ]);
    let config = Config::from_toml(&toml, "configmap.yaml", &env).expect("valid with TLS");
    let tls = config.tls.expect("a TLS listener");
    assert_eq!(tls.listen, vec!["0.0.0.0:8443".parse().unwrap()]);
}
