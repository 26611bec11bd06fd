//! The `tollgate` command: CLI dispatch only.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tollgate::{Config, Env};
use tracing::{error, info};

/// An authenticating reverse-proxy gateway.
#[derive(Parser)]
#[command(name = "tollgate", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway (the default).
    Serve(ConfigArg),
    /// Load and validate the config, print the route table.
    Check(ConfigArg),
}

#[derive(clap::Args, Default)]
struct ConfigArg {
    /// Path to the config file.
    #[arg(
        long,
        short,
        default_value = "config/tollgate.toml",
        env = "TOLLGATE_CONFIG"
    )]
    config: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let env = Env::from_process();
    match cli.command {
        Some(Command::Check(arg)) => check(&arg, &env),
        Some(Command::Serve(arg)) => serve(&arg, &env),
        None => serve(
            &ConfigArg {
                config: std::env::var_os("TOLLGATE_CONFIG")
                    .map_or_else(|| PathBuf::from("config/tollgate.toml"), PathBuf::from),
            },
            &env,
        ),
    }
}

fn load(arg: &ConfigArg, env: &Env) -> Result<Config, ExitCode> {
    Config::load(&arg.config, env).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    })
}

fn check(arg: &ConfigArg, env: &Env) -> ExitCode {
    let config = match load(arg, env) {
        Ok(config) => config,
        Err(code) => return code,
    };
    println!("{}: ok", arg.config.display());
    println!("{}", tollgate::server::describe_routes(&config));
    ExitCode::SUCCESS
}

fn serve(arg: &ConfigArg, env: &Env) -> ExitCode {
    let config = match load(arg, env) {
        Ok(config) => config,
        Err(code) => return code,
    };
    tollgate::telemetry::init(&config.log);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let running = match tollgate::start(config).await {
            Ok(running) => running,
            Err(e) => {
                error!(error = %e, "cannot start");
                return ExitCode::FAILURE;
            }
        };
        shutdown_signal().await;
        info!("shutdown signal received");
        running.shutdown();
        running.wait().await;
        ExitCode::SUCCESS
    })
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        error!("cannot install signal handlers; waiting for ctrl-c");
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {},
        _ = int.recv() => {},
    }
}
