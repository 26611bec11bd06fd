//! `tollgate serve`: run the gateway until a shutdown signal, reloading its config file when it
//! changes.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use tollgate::tokens::{self, AccessSubject, Signer};
use tollgate::{Config, Env};
use tollgate_server::reload::{ConfigWatcher, POLL_INTERVAL, reload_from_file};
use tracing::{error, info};

use super::args::{ConfigArg, DEFAULT_CONFIG, ServeArgs};
use super::{fail, load, runtime};

pub fn serve(args: &ServeArgs, env: &Env) -> ExitCode {
    let (config, file) = match serve_config(args, env) {
        Ok(chosen) => chosen,
        Err(code) => return code,
    };
    // Dropped last (after the runtime): every task's lines are written before the process ends.
    let _log = tollgate::telemetry::init(&config.log);
    let runtime = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let upstream = args.upstream.clone();
    runtime.block_on(async move {
        // Installed before the listeners open: a signal never finds its default action.
        let signals = match Signals::install() {
            Ok(signals) => signals,
            Err(e) => return fail(format!("cannot install signal handlers: {e}")),
        };
        let hint = Hint::of(&config, file.as_ref().map(|(path, _)| path.as_path()));
        let running = match tollgate::start(config).await {
            Ok(running) => running,
            Err(e) => {
                error!(error = %e, "cannot start");
                return ExitCode::FAILURE;
            }
        };
        hint.print(&running, upstream.as_deref());
        serve_until_shutdown(&running, signals, file).await;
        info!("shutdown signal received");
        running.shutdown();
        running.wait().await;
        ExitCode::SUCCESS
    })
}

/// The config to serve: a file (watched and reloaded) or `--upstream`'s one-route config, never
/// both; with the file, its path and the watcher that notices changes.
fn serve_config(args: &ServeArgs, env: &Env) -> Result<(Config, Option<WatchedFile>), ExitCode> {
    match (&args.upstream, &args.config) {
        (Some(_), Some(path)) => {
            // A config error like any other: exit 2.
            eprintln!(
                "error: --upstream builds its own one-route config, and a config file was also \
                 given ({}, from --config or TOLLGATE_CONFIG): use one or the other (to front \
                 an upstream with your file's settings, add a [[routes]] entry to it)",
                path.display()
            );
            Err(ExitCode::from(2))
        }
        (Some(upstream), None) => {
            let text =
                tollgate::config::local::upstream_config(upstream, &args.prefix, &args.policy);
            match Config::from_toml(&text, "--upstream", env) {
                Ok(config) => Ok((config, None)),
                Err(e) => {
                    eprintln!("error: {e}");
                    Err(ExitCode::from(2))
                }
            }
        }
        (None, path) => {
            let file = super::config_file(&ConfigArg {
                config: path.clone(),
            })?;
            // Baseline taken before the config is read, so a change made while starting is
            // not missed (at worst the same config is applied twice).
            let watcher = ConfigWatcher::new(&file, POLL_INTERVAL);
            let arg = ConfigArg {
                config: Some(file.clone()),
            };
            load(&arg, env).map(|config| (config, Some((file, watcher))))
        }
    }
}

/// A config file and the watcher that notices when it changes.
type WatchedFile = (PathBuf, ConfigWatcher);

/// What to tell a developer at startup: how to get a token for this gateway.
struct Hint {
    /// `--config PATH` when the config is not the default one.
    config_flag: String,
    /// A token minted for `serve --upstream` (development only: printed to stdout, never
    /// to the log), and the route's policy.
    local: Option<(Option<String>, String)>,
}

impl Hint {
    fn of(config: &Config, file: Option<&std::path::Path>) -> Self {
        let config_flag = match file {
            Some(path) if path != std::path::Path::new(DEFAULT_CONFIG) => {
                format!(" --config {}", path.display())
            }
            _ => String::new(),
        };
        let local = file.is_none().then(|| {
            let route = &config.routes[0];
            let policy = route.policy.policy.as_str().to_owned();
            let token = Signer::from_config(config).ok().and_then(|signer| {
                let now = tokens::now();
                match route.policy.policy {
                    tollgate::auth::policy::Policy::Public => None,
                    tollgate::auth::policy::Policy::Service => tokens::issue_service_tokens(
                        &signer,
                        &["local-dev".to_owned()],
                        tokens::DEFAULT_SERVICE_ROLE,
                        Duration::from_secs(24 * 3600),
                        now,
                    )
                    .ok()
                    .and_then(|mut issued| issued.pop())
                    .map(|t| t.token),
                    _ => tokens::issue_access_token(
                        &signer,
                        &AccessSubject {
                            user_id: "developer".to_owned(),
                            email: Some("developer@localhost".to_owned()),
                            role: None,
                            tenant_id: None,
                        },
                        Duration::from_secs(3600),
                        now,
                    )
                    .ok()
                    .map(|t| t.token),
                }
            });
            (token, policy)
        });
        Self { config_flag, local }
    }

    fn print(&self, running: &tollgate::RunningGateway, upstream: Option<&str>) {
        let Some(addr) = running.data_addrs.first() else {
            return;
        };
        match (&self.local, upstream) {
            (Some((token, policy)), Some(upstream)) => {
                println!("tollgate: fronting {upstream} on http://{addr}/ (policy: {policy})");
                match token {
                    Some(token) => println!(
                        "try it (token valid for {}):\n  curl -H \"Authorization: Bearer {token}\" http://{addr}/",
                        if policy == "service" {
                            "24h, service local-dev"
                        } else {
                            "1h, user developer"
                        }
                    ),
                    None => println!("try it:\n  curl http://{addr}/"),
                }
            }
            _ => info!(
                "get a development token: tollgate token issue-access --user-id alice{0}   (service: tollgate token issue my-service{0})",
                self.config_flag
            ),
        }
    }
}

/// SIGTERM, SIGINT and SIGHUP, listened to from startup on.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }
}

/// Serves until SIGTERM or SIGINT; reloads the config file, if there is one, on SIGHUP and
/// when it changes.
async fn serve_until_shutdown(
    running: &tollgate::RunningGateway,
    mut signals: Signals,
    mut file: Option<(PathBuf, ConfigWatcher)>,
) {
    loop {
        let changed = async {
            match &mut file {
                Some((_, watcher)) => watcher.changed().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = signals.term.recv() => return,
            _ = signals.int.recv() => return,
            _ = signals.hup.recv() => match &mut file {
                Some((path, watcher)) => {
                    watcher.mark_current();
                    reload_from_file(running, path, "SIGHUP");
                }
                None => info!("SIGHUP ignored: --upstream has no config file to reload"),
            },
            _ = changed => {
                if let Some((path, _)) = &file {
                    reload_from_file(running, path, "file changed");
                }
            }
        }
    }
}
