//! The `tollgate` command line: arguments, then one function per subcommand.

mod args;
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
    let generated = match tollgate::keygen::generate(args.alg, &args.out, args.kid.as_deref()) {
        Ok(generated) => generated,
        Err(e) => return fail(e),
    };
    for file in &generated.files {
        let mode = if file.private { ", mode 0600" } else { "" };
        println!("wrote {} ({}{mode})", file.path.display(), file.description);
    }
    println!(
        "\nadd to the config (use your own issuer value; [tokens] issuer picks the signer):\n\n{}",
        generated.config_snippet
    );
    ExitCode::SUCCESS
}

fn health(args: &HealthArgs) -> ExitCode {
    let runtime = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    match runtime.block_on(tollgate_server::admin::probe(&args.url)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(reason) => fail(format!("{}: {reason}", args.url)),
    }
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
