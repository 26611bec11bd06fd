//! The command line: every subcommand and its arguments (clap derive).

use std::path::PathBuf;
use std::time::Duration;

use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Parser, Subcommand};
use tollgate::keygen::{KeyAlgorithm, KeyUse};
use tollgate::tokens::{self, OutputFormat};

use super::token::parse_ttl;

/// The default config file.
pub const DEFAULT_CONFIG: &str = "config/tollgate.toml";

/// An authenticating reverse-proxy gateway.
#[derive(Parser)]
#[command(name = "tollgate", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the gateway (the default).
    Serve(ServeArgs),
    /// Load and validate the config, print the route table.
    Check(ConfigArg),
    /// Issue and verify tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Generate signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Exit 0 when the admin health endpoint answers 200 (for container health checks).
    Health(HealthArgs),
    /// Write a starter config with a newly generated signing secret.
    Init(InitArgs),
    /// Explain, step by step, why a request would be allowed or refused and what would be sent
    /// upstream, without sending anything (exit 0 allowed, 1 refused, 2 config error).
    Explain(ExplainArgs),
}

#[derive(clap::Args)]
#[command(
    override_usage = "tollgate explain [--config F] METHOD TARGET [-H 'Name: value']... [--token TOKEN | --token -] [--client-cert PEM] [--peer IP] [--format text|json]"
)]
pub struct ExplainArgs {
    /// The method, e.g. GET.
    pub method: String,
    /// The request target, e.g. /internal/orders?x=1.
    pub target: String,
    /// A request header, `Name: value` (repeatable), e.g. -H 'Host: api.example.com'.
    #[arg(short = 'H', long = "header", value_name = "HEADER")]
    pub headers: Vec<String>,
    /// A bearer token to send as `Authorization: Bearer …`; `-` reads it from stdin.
    #[arg(long)]
    pub token: Option<String>,
    /// The client's address (trusted proxies are judged by it).
    #[arg(long, default_value = "127.0.0.1")]
    pub peer: std::net::IpAddr,
    /// A client certificate (PEM), as if the TLS handshake had verified it (mutual TLS).
    #[arg(long, value_name = "PEM")]
    pub client_cert: Option<PathBuf>,
    /// Output: text, or JSON for scripts.
    #[arg(long, default_value = "text", value_parser = PossibleValuesParser::new(["text", "json"]))]
    pub format: String,
    #[command(flatten)]
    pub config: ConfigArg,
}

/// Where `serve` gets its config: a file, or `--upstream` for a one-route local proxy.
#[derive(clap::Args, Default)]
pub struct ServeArgs {
    /// Path to the config file [default: the first of ./config/tollgate.toml,
    /// /etc/tollgate/tollgate.toml, ~/.config/tollgate/tollgate.toml that exists].
    #[arg(long, short, env = "TOLLGATE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Front this URL without a config file: one route on the defaults (development secret
    /// unless TOLLGATE_JWT_SECRET is set, loopback listeners); prints a ready-to-paste token.
    #[arg(long, value_name = "URL")]
    pub upstream: Option<String>,
    /// With --upstream: the route's prefix.
    #[arg(long, default_value = "/", requires = "upstream")]
    pub prefix: String,
    /// With --upstream: who may use the route.
    #[arg(long, default_value = "authenticated", requires = "upstream",
          value_parser = PossibleValuesParser::new(tollgate::config::local::POLICIES))]
    pub policy: String,
}

#[derive(clap::Args)]
pub struct HealthArgs {
    /// The admin listener to probe: a URL (`/healthz` when it has no path) or `host:port`.
    /// Default: the config's `server.admin_listen`, else $TOLLGATE_ADMIN_LISTEN, else
    /// 127.0.0.1:9901.
    #[arg(long)]
    pub url: Option<String>,
    /// The config whose admin address is probed (only `server.admin_listen` is read)
    /// [default: config/tollgate.toml when it exists].
    #[arg(long, short, env = "TOLLGATE_CONFIG")]
    pub config: Option<PathBuf>,
}

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Issue long-lived service tokens signed with the config's signing key.
    Issue(IssueArgs),
    /// Issue a short-lived user access token.
    IssueAccess(IssueAccessArgs),
    /// Verify a token as the gateway would and explain the verdict (exit 1 when invalid).
    Verify(VerifyArgs),
    /// Revoke a token (by jti or the token itself), or every token of a service issued until
    /// now; gateways reading the same state store refuse it within a second.
    Revoke(RevokeArgs),
    /// List the revocations in force.
    Revoked(ConfigArg),
    /// Which service tokens are in use: per service, tokens seen, last seen, expiring within
    /// 30 days, revoked (from the state store the gateways write to).
    Usage(UsageArgs),
}

#[derive(clap::Args)]
pub struct UsageArgs {
    /// Output: a table, or JSON (one object per service, times in seconds since the epoch).
    #[arg(long, default_value = "table", value_parser = PossibleValuesParser::new(["table", "json"]))]
    pub format: String,
    #[command(flatten)]
    pub config: ConfigArg,
}

#[derive(clap::Args)]
#[command(
    override_usage = "tollgate token revoke <JTI | TOKEN | -> [--reason TEXT] [OPTIONS]\n       tollgate token revoke --service NAME [--reason TEXT] [OPTIONS]"
)]
pub struct RevokeArgs {
    /// The token's jti, the token itself, or `-` to read the token from stdin.
    #[arg(required_unless_present = "service", conflicts_with = "service")]
    pub target: Option<String>,
    /// Revoke every token of this service issued until now (tokens issued later pass: this is
    /// how a service's token is rotated).
    #[arg(long)]
    pub service: Option<String>,
    /// Why, for whoever reads `tollgate token revoked`.
    #[arg(long)]
    pub reason: Option<String>,
    #[command(flatten)]
    pub config: ConfigArg,
}

#[derive(clap::Args)]
#[command(
    override_usage = "tollgate token issue <SERVICE>... [OPTIONS]\n       tollgate token issue --all [OPTIONS]"
)]
pub struct IssueArgs {
    /// Service names (or --all: one token per service of the config's [tokens] services).
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    pub services: Vec<String>,
    /// One token per service listed in the config's `[tokens] services`.
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub config: ConfigArg,
    /// Lifetime: `30s`, `15m`, `12h`, `365d`.
    #[arg(long, default_value = "365d", value_parser = parse_ttl)]
    pub ttl: Duration,
    /// The `role` claim.
    #[arg(long, default_value = tokens::DEFAULT_SERVICE_ROLE)]
    pub role: String,
    /// Output: tokens only, JSON lines, env lines, or a Kubernetes Secret manifest.
    #[arg(
        long,
        default_value = "text",
        value_parser = PossibleValuesParser::new(["text", "json", "env", "k8s-secret"])
            .try_map(|s| s.parse::<OutputFormat>())
    )]
    pub format: OutputFormat,
    /// `metadata.name` of the Secret (`--format k8s-secret`).
    #[arg(long, default_value = "tollgate-service-tokens")]
    pub secret_name: String,
    /// `metadata.namespace` of the Secret (`--format k8s-secret`).
    #[arg(long, default_value = "default")]
    pub namespace: String,
}

#[derive(clap::Args)]
pub struct IssueAccessArgs {
    /// `sub` and `user_id`.
    #[arg(long)]
    pub user_id: String,
    /// The `email` claim.
    #[arg(long)]
    pub email: Option<String>,
    /// The `role` claim.
    #[arg(long)]
    pub role: Option<String>,
    /// The `tenant_id` claim.
    #[arg(long)]
    pub tenant_id: Option<String>,
    /// Lifetime: `30s`, `15m`, `12h`.
    #[arg(long, default_value = "15m", value_parser = parse_ttl)]
    pub ttl: Duration,
    #[command(flatten)]
    pub config: ConfigArg,
}

#[derive(clap::Args)]
pub struct VerifyArgs {
    /// The token, or `-` to read it from stdin.
    pub token: String,
    #[command(flatten)]
    pub config: ConfigArg,
}

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Generate a signing key (or HMAC secret) and print the config that uses it.
    Generate(GenerateArgs),
}

#[derive(clap::Args)]
pub struct GenerateArgs {
    /// Algorithm of the new key.
    #[arg(
        long,
        value_parser = PossibleValuesParser::new(["HS256", "RS256", "ES256", "EdDSA"])
            .try_map(|s| s.parse::<KeyAlgorithm>())
    )]
    pub alg: KeyAlgorithm,
    /// Directory to write into (created if missing); existing files are never overwritten.
    #[arg(long)]
    pub out: PathBuf,
    /// Key id written in token headers and the JWKS [default: the key's RFC 7638 thumbprint].
    #[arg(long)]
    pub kid: Option<String>,
    /// What the key signs: tokens (`issuer`, printed as an `[[issuers]]` entry) or the
    /// identity assertion (`assertion`, printed as an `[assertion]` section).
    #[arg(long = "for", default_value = "issuer", value_name = "USE",
          value_parser = PossibleValuesParser::new(["issuer", "assertion"]).try_map(|s| s.parse::<KeyUse>()))]
    pub key_use: KeyUse,
}

#[derive(clap::Args, Default)]
pub struct ConfigArg {
    /// Path to the config file [default: the first of ./config/tollgate.toml,
    /// /etc/tollgate/tollgate.toml, ~/.config/tollgate/tollgate.toml that exists].
    #[arg(long, short, env = "TOLLGATE_CONFIG")]
    pub config: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct InitArgs {
    /// Where to write the starter config [default: config/tollgate.toml].
    pub path: Option<PathBuf>,
}
