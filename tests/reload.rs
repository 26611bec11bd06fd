//! Live reload: SIGHUP, file changes (including a Kubernetes-style symlink swap), rejected
//! configs, requests in flight, and caches that survive.

mod support;

use std::time::Duration;

use http::StatusCode;
use support::*;

fn routes(paths: &[&str]) -> String {
    paths
        .iter()
        .map(|p| {
            format!("[[routes]]\nprefix = \"{p}\"\nupstream = \"echo\"\npolicy = \"public\"\n")
        })
        .collect()
}

async fn eventually_status(url: &str, want: u16) {
    within(async {
        loop {
            if get(url, &[]).await.status.as_u16() == want {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
}

fn config_path(gw: &GatewayProcess) -> std::path::PathBuf {
    gw.config_path.clone()
}

#[tokio::test]
async fn sighup_and_file_changes_reload_routes() {
    let gw = GatewayProcess::spawn(&routes(&["/a"]), &[]);
    assert_eq!(get(&gw.url("/b/x"), &[]).await.status, 404);
    let path = config_path(&gw);
    let server = std::fs::read_to_string(&path).unwrap();
    let server = &server[..server.find("[[routes]]").unwrap()];

    // Written, then signalled: SIGHUP (or the poll, whichever is first) applies it.
    std::fs::write(&path, format!("{server}{}", routes(&["/a", "/b"]))).unwrap();
    gw.signal("HUP");
    eventually_status(&gw.url("/b/x"), 200).await;

    // Changed without a signal: the watcher notices.
    std::fs::write(&path, format!("{server}{}", routes(&["/c"]))).unwrap();
    eventually_status(&gw.url("/c/x"), 200).await;
    assert_eq!(get(&gw.url("/a/x"), &[]).await.status, 404);

    // An invalid config is rejected and the current one keeps serving.
    std::fs::write(
        &path,
        format!("{server}[[routes]]\nprefix = \"/d\"\nupstream = \"htp:/x\"\n"),
    )
    .unwrap();
    gw.signal("HUP");
    within(async {
        while !gw
            .logs()
            .iter()
            .any(|l| l.contains("config reload rejected"))
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert_eq!(get(&gw.url("/c/x"), &[]).await.status, 200);
    assert_eq!(get(&gw.url("/d/x"), &[]).await.status, 404);
    let rejected = gw
        .logs()
        .into_iter()
        .find(|l| l.contains("config reload rejected"))
        .unwrap();
    assert!(
        rejected.contains("routes[0].upstream: invalid URL"),
        "{rejected}"
    );
}

#[tokio::test]
async fn a_sighup_right_after_an_edit_reloads_once() {
    let gw = GatewayProcess::spawn(&routes(&["/a"]), &[]);
    let path = config_path(&gw);
    let server = std::fs::read_to_string(&path).unwrap();
    let server = &server[..server.find("[[routes]]").unwrap()];
    let reloads = || {
        gw.logs()
            .iter()
            .filter(|l| l.contains("reloading config"))
            .count()
    };

    // The watcher polls once a second; the signal arrives before it looks.
    std::fs::write(&path, format!("{server}{}", routes(&["/a", "/b"]))).unwrap();
    gw.signal("HUP");
    eventually_status(&gw.url("/b/x"), 200).await;
    // Two more polls: the watcher must take the signalled content as already applied.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let lines: Vec<String> = gw
        .logs()
        .into_iter()
        .filter(|l| l.contains("reloading config"))
        .collect();
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(lines[0].contains("SIGHUP"), "{lines:#?}");

    // A later edit without a signal is still noticed, once.
    std::fs::write(&path, format!("{server}{}", routes(&["/c"]))).unwrap();
    eventually_status(&gw.url("/c/x"), 200).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(reloads(), 2);
}

#[tokio::test]
async fn kubernetes_configmap_symlink_swap_is_picked_up() {
    // Kubernetes mounts tollgate.toml -> ..data/tollgate.toml, ..data -> ..<timestamp>/ and
    // updates by pointing ..data at a new directory.
    let dir = tempfile::tempdir().unwrap();
    let server = "[server]\nlisten = [\"127.0.0.1:0\"]\nadmin_listen = \"127.0.0.1:0\"\ndrain_timeout = \"5s\"\n";
    let v1 = dir.path().join("..2024_01");
    std::fs::create_dir(&v1).unwrap();
    std::fs::write(
        v1.join("tollgate.toml"),
        format!("{server}{}", routes(&["/v1"])),
    )
    .unwrap();
    std::os::unix::fs::symlink("..2024_01", dir.path().join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/tollgate.toml", dir.path().join("tollgate.toml")).unwrap();
    let gw = GatewayProcess::spawn_with_path(&dir.path().join("tollgate.toml"), &[]);
    assert_eq!(get(&gw.url("/v1/x"), &[]).await.status, 200);

    let v2 = dir.path().join("..2024_02");
    std::fs::create_dir(&v2).unwrap();
    std::fs::write(
        v2.join("tollgate.toml"),
        format!("{server}{}", routes(&["/v2"])),
    )
    .unwrap();
    std::os::unix::fs::symlink("..2024_02", dir.path().join("..data_tmp")).unwrap();
    std::fs::rename(dir.path().join("..data_tmp"), dir.path().join("..data")).unwrap();
    std::fs::remove_dir_all(&v1).unwrap();
    eventually_status(&gw.url("/v2/x"), 200).await;
    assert_eq!(get(&gw.url("/v1/x"), &[]).await.status, 404);
}

#[tokio::test]
async fn requests_in_flight_finish_under_their_config_and_caches_survive() {
    let slow_old = MockUpstream::start(|_| async {
        tokio::time::sleep(Duration::from_millis(800)).await;
        json_response(StatusCode::OK, &serde_json::json!({"config": "old"}))
    })
    .await;
    let new = MockUpstream::start(|_| async {
        json_response(StatusCode::OK, &serde_json::json!({"config": "new"}))
    })
    .await;
    let auth = AuthServer::start(AuthReply::Field("accessToken")).await;
    let jwks = JwksServer::start(Some(&[("k1", "rsa.key", jsonwebtoken::Algorithm::RS256)])).await;
    let config = |upstream: &str, extra_route: &str| {
        with_test_server(&format!(
            r#"
[[issuers]]
issuer = "https://idp.test"
algorithms = ["RS256"]
jwks_url = "{jwks}"
jwks_refresh = "1h"

[[providers]]
name = "vendor"
kind = "login"
auth_url = "{auth}"
email = "r@example.com"
password = "reload-pw"

[[routes]]
prefix = "/work"
upstream = "{upstream}"
policy = "public"

[[routes]]
prefix = "/vendor"
upstream = "{vendor}"
policy = "public"
upstream_auth = "vendor"

[[routes]]
prefix = "/secure"
upstream = "echo"
policy = "service"
{extra_route}
"#,
            jwks = jwks.url(),
            auth = auth.url(),
            vendor = new.url(),
        ))
    };
    let env = tollgate::Env::from_map::<_, String, String>([]);
    let first = tollgate::Config::from_toml(&config(&slow_old.url(), ""), "t.toml", &env).unwrap();
    let running = tollgate::start(first).await.unwrap();
    let url = |p: &str| format!("http://{}{p}", running.data_addrs[0]);
    let token = mint(
        &service_claims("https://idp.test", "orders"),
        jsonwebtoken::Algorithm::RS256,
        "rsa.key",
        Some("k1"),
    );
    let auth_header = format!("Bearer {token}");
    assert_eq!(get(&url("/vendor/x"), &[]).await.status, 200);
    within(async {
        while get(&url("/secure/x"), &[("authorization", &auth_header)])
            .await
            .status
            != StatusCode::OK
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let (logins, fetches) = (auth.logins(), jwks.fetches());

    let in_flight = tokio::spawn({
        let u = url("/work/slow");
        async move { get(&u, &[]).await }
    });
    within(async {
        while slow_old.hits() == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    let second = tollgate::Config::from_toml(
        &config(
            &new.url(),
            "[[routes]]\nprefix = \"/added\"\nupstream = \"echo\"\npolicy = \"public\"\n",
        ),
        "t.toml",
        &env,
    )
    .unwrap();
    running.reload(second);
    assert_eq!(
        get(&url("/added/x"), &[]).await.status,
        200,
        "new routes at once"
    );
    assert_eq!(get(&url("/work/x"), &[]).await.json()["config"], "new");
    let old = within(in_flight).await.unwrap();
    assert_eq!(
        old.json()["config"],
        "old",
        "the request in flight finished under its config"
    );

    // Unchanged issuer and provider: their caches survived.
    assert_eq!(get(&url("/vendor/y"), &[]).await.status, 200);
    assert_eq!(
        get(&url("/secure/y"), &[("authorization", &auth_header)])
            .await
            .status,
        200
    );
    assert_eq!(
        auth.logins(),
        logins,
        "no new vendor login after the reload"
    );
    assert_eq!(jwks.fetches(), fetches, "no JWKS refetch after the reload");
    running.shutdown();
}

#[tokio::test]
async fn a_reload_during_a_key_fetch_loses_neither_the_fetch_nor_the_key() {
    use jsonwebtoken::Algorithm::RS256;
    use std::sync::{Arc, Mutex};
    // A JWKS server that takes 600 ms to answer: a refetch is in flight when the reload lands.
    let document = Arc::new(Mutex::new(JwksServer::document(&[(
        "k1", "rsa.key", RS256,
    )])));
    let served = document.clone();
    let jwks = MockUpstream::start(move |_| {
        let current = served.lock().unwrap().clone();
        async move {
            tokio::time::sleep(Duration::from_millis(600)).await;
            json_response(StatusCode::OK, &current)
        }
    })
    .await;
    let config = |extra: &str| {
        with_test_server(&format!(
            "[[issuers]]\nissuer = \"idp\"\nalgorithms = [\"RS256\", \"ES256\"]\njwks_url = \"{}/jwks.json\"\n\
             jwks_min_refresh_interval = \"1s\"\njwks_timeout = \"5s\"\n\
             [[routes]]\nprefix = \"/\"\nupstream = \"echo\"\n{extra}",
            jwks.url()
        ))
    };
    let env = tollgate::Env::from_map(std::iter::empty::<(String, String)>());
    let gw = spawn_gateway(&config("")).await;
    let claims = service_claims("idp", "orders");
    let old = mint(&claims, RS256, "rsa.key", Some("k1"));
    until_bearer_status(&gw, "/", &old, 200).await;
    // Past the least interval between fetches: the new kid's fetch is not rate-limited.
    tokio::time::sleep(Duration::from_millis(1100)).await;

    // The key set rotates; a token with the new kid starts a refetch, and the config is
    // reloaded (issuer unchanged) while that fetch is in flight.
    *document.lock().unwrap() =
        JwksServer::document(&[("k2", "ec256.key", jsonwebtoken::Algorithm::ES256)]);
    let new = mint(
        &claims,
        jsonwebtoken::Algorithm::ES256,
        "ec256.key",
        Some("k2"),
    );
    let gw_url = gw.url("/");
    let in_flight = tokio::spawn({
        let token = new.clone();
        async move { bearer_status_and_reason(&gw_url, &token).await }
    });
    tokio::time::sleep(Duration::from_millis(150)).await;
    let reloaded = tollgate::Config::from_toml(
        &config("[[routes]]\nprefix = \"/added\"\nupstream = \"echo\"\npolicy = \"public\"\n"),
        "t.toml",
        &env,
    )
    .unwrap();
    gw.running.as_ref().unwrap().reload(reloaded);
    assert_eq!(within(in_flight).await.unwrap(), (200, String::new()));
    assert_eq!(
        bearer_status(&gw, "/", &new).await,
        200,
        "the next request after the reload"
    );
}
