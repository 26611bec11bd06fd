//! The `tollgate` command line: arguments, then one function per subcommand.

mod args;
mod find;
mod serve;
mod token;

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use tollgate::{Config, Env};

use args::{
    Cli, Command, ConfigArg, ExplainArgs, GenerateArgs, HealthArgs, KeysCommand, ServeArgs,
    TokenCommand,
};

/// Runs the command line's subcommand.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let env = Env::from_process();
    match cli.command {
        Some(Command::Check(arg)) => check(&arg, &env),
        Some(Command::Explain(args)) => explain(&args, &env),
        Some(Command::Serve(args)) => serve::serve(&args, &env),
        Some(Command::Token(TokenCommand::Issue(args))) => token::issue(&args, &env),
        Some(Command::Token(TokenCommand::IssueAccess(args))) => token::issue_access(&args, &env),
        Some(Command::Token(TokenCommand::Verify(args))) => token::verify(&args, &env),
        Some(Command::Token(TokenCommand::Revoke(args))) => token::revoke(&args, &env),
        Some(Command::Token(TokenCommand::Revoked(arg))) => token::revoked(&arg, &env),
        Some(Command::Token(TokenCommand::Usage(args))) => token::usage(&args, &env),
        Some(Command::Keys(KeysCommand::Generate(args))) => generate(&args),
        Some(Command::Health(args)) => health(&args),
        Some(Command::Init(args)) => find::init(args.path.as_deref()),
        None => serve::serve(
            &ServeArgs {
                config: std::env::var_os("TOLLGATE_CONFIG").map(PathBuf::from),
                prefix: "/".to_owned(),
                policy: "authenticated".to_owned(),
                ..ServeArgs::default()
            },
            &env,
        ),
    }
}

fn load(arg: &ConfigArg, env: &Env) -> Result<Config, ExitCode> {
    let path = config_file(arg)?;
    Config::load(&path, env).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    })
}

/// The sections the token commands read: they run offline, so the listeners, routes,
/// providers, console and traces (and the variables those name) are not theirs to need.
const OFFLINE_SECTIONS: &[&str] = &["issuers", "identity", "tokens", "state", "log"];

/// Loads only [`OFFLINE_SECTIONS`] of the config `arg` names; exit 2 on error.
fn load_offline(arg: &ConfigArg, env: &Env) -> Result<Config, ExitCode> {
    let path = config_file(arg)?;
    Config::load_sections(&path, env, OFFLINE_SECTIONS).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    })
}

/// The config file `arg` names or the search finds; exit 2 (naming every place looked) when
/// there is none.
fn config_file(arg: &ConfigArg) -> Result<PathBuf, ExitCode> {
    find::config_path(arg.config.as_deref()).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    })
}

fn check(arg: &ConfigArg, env: &Env) -> ExitCode {
    let config = match load(arg, env) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let path = config_file(arg).unwrap_or_default();
    println!("{}: ok", path.display());
    for (i, issuer) in config.issuers.iter().enumerate() {
        if issuer.uses_development_secret() {
            eprintln!(
                "warning: issuers[{i}] ({}) uses the built-in development secret, which is public: \
                 anyone can sign tokens it accepts. Fine on a laptop; set TOLLGATE_JWT_SECRET (32+ \
                 bytes, e.g. from `tollgate keys generate --alg HS256 --out DIR`) anywhere else",
                issuer.name
            );
        }
    }
    println!("{}", tollgate_server::start::describe_routes(&config));
    ExitCode::SUCCESS
}

/// Prints the error and returns exit code 1.
fn fail(error: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {error}");
    ExitCode::FAILURE
}

fn explain(args: &ExplainArgs, env: &Env) -> ExitCode {
    let config = match load(&args.config, env) {
        Ok(config) => config,
        Err(code) => return code,
    };
    let mut headers = args.headers.clone();
    match args.token.as_deref() {
        Some("-") => {
            let mut token = String::new();
            if let Err(e) = std::io::stdin().read_to_string(&mut token) {
                return fail(format!("cannot read the token from stdin: {e}"));
            }
            headers.push(format!("Authorization: Bearer {}", token.trim()));
        }
        Some(token) => headers.push(format!("Authorization: Bearer {}", token.trim())),
        None => {}
    }
    let runtime = match runtime() {
        Ok(runtime) => runtime,
        Err(code) => return code,
    };
    let explained = runtime.block_on(tollgate::explain::explain(
        &config,
        &args.method,
        &args.target,
        &headers,
        args.peer,
        args.client_cert.as_deref(),
    ));
    let explanation = match explained {
        Ok(explanation) => explanation,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    if args.format == "json" {
        println!(
            "{}",
            serde_json::to_string_pretty(&explanation).unwrap_or_default()
        );
    } else {
        print!("{}", tollgate::explain::render_text(&explanation));
    }
    if explanation.allowed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn generate(args: &GenerateArgs) -> ExitCode {
    let kid = args.kid.as_deref();
    let generated = match tollgate::keygen::generate(args.alg, &args.out, kid, args.key_use) {
        Ok(generated) => generated,
        Err(e) => return fail(e),
    };
    for file in &generated.files {
        let mode = if file.private { ", mode 0600" } else { "" };
        println!("wrote {} ({}{mode})", file.path.display(), file.description);
    }
    let how = match args.key_use {
        tollgate::keygen::KeyUse::Issuer => {
            "use your own issuer value; [tokens] issuer picks the signer"
        }
        tollgate::keygen::KeyUse::Assertion => {
            "upstreams verify the assertion with jwks.json, also served at the admin listener's /.well-known/jwks.json"
        }
    };
    println!(
        "\nadd to the config ({how}):\n\n{}",
        generated.config_snippet
    );
    ExitCode::SUCCESS
}

fn health(args: &HealthArgs) -> ExitCode {
    let url = match health_url(args) {
        Ok(url) => url,
        Err(reason) => {
            eprintln!("error: {reason}");
            return ExitCode::from(2);
        }
    };
    let runtime = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    match runtime.block_on(tollgate_server::admin::probe(&url)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(reason) => fail(format!("{url}: {reason}")),
    }
}

/// The health URL: `--url` (a bare `host:port` or a URL without a path gets `/healthz`), else
/// the admin address of `--config` (or the default config file, when there is one), else
/// `$TOLLGATE_ADMIN_LISTEN`, else 127.0.0.1:9901. An unspecified address (`0.0.0.0`, `::`) is
/// probed on loopback.
fn health_url(args: &HealthArgs) -> Result<String, String> {
    if let Some(url) = &args.url {
        let url = match url.contains("://") {
            true => url.clone(),
            false => format!("http://{url}"),
        };
        let has_path = url
            .split_once("://")
            .is_some_and(|(_, rest)| rest.find('/').is_some_and(|i| rest.len() > i + 1));
        return Ok(match has_path {
            true => url,
            false => format!("{}/healthz", url.trim_end_matches('/')),
        });
    }
    let found = find::config_path(args.config.as_deref()).ok();
    let file = found.as_deref();
    let address = match file {
        Some(file) => {
            let text = std::fs::read_to_string(file)
                .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
            let shown = file.display().to_string();
            tollgate::config::admin_address(&text, &shown, &tollgate::Env::from_process())
                .map_err(|e| e.to_string())?
                .ok_or(format!(
                    "{shown} turns the admin listener off (server.admin_listen = \"\")"
                ))?
        }
        None => std::env::var("TOLLGATE_ADMIN_LISTEN")
            .unwrap_or_else(|_| "127.0.0.1:9901".to_owned())
            .parse()
            .map_err(|e| format!("TOLLGATE_ADMIN_LISTEN: {e}"))?,
    };
    Ok(format!("http://{}/healthz", loopback_for(address)))
}

/// `address`, with an unspecified IP (listen on every interface) replaced by loopback.
fn loopback_for(address: std::net::SocketAddr) -> std::net::SocketAddr {
    let ip = match address.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => std::net::Ipv4Addr::LOCALHOST.into(),
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => std::net::Ipv6Addr::LOCALHOST.into(),
        ip => ip,
    };
    std::net::SocketAddr::new(ip, address.port())
}

/// The async runtime: one worker per CPU this process may run on. With a single CPU (a pod
/// limited to one core, a pinned process) a current-thread runtime does the same work without
/// the cross-thread wake-ups of the work-stealing scheduler.
fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut builder = if cpus == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    builder
        .enable_all()
        .build()
        .map_err(|e| fail(format!("cannot start the runtime: {e}")))
}
