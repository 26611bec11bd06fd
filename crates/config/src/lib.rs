//! Configuration: the file's serde mirror ([`raw`]), env interpolation ([`env`](mod@env)) and the
//! validated, typed [`Config`] the rest of the gateway sees ([`validate`]): plain data, key
//! material and route policies, with no sockets, tasks or stores.
#![forbid(unsafe_code)]

mod assertion;
pub mod claims;
pub mod env;
mod error;
mod issuers;
pub mod keygen;
pub mod keys;
mod listeners;
pub mod local;
mod outbound;
pub mod policy;
mod providers;
pub mod raw;
mod roots;
mod routes;
pub mod signer;
mod state;
pub mod tls;
mod validate;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderName;
use http::uri::{Authority, Scheme};

use crate::policy::RoutePolicy;
use tollgate_http::forwarded::TrustedProxies;

pub use env::Env;
pub(crate) use error::invalid;
pub use error::{ConfigError, Invalid};
pub use issuers::introspection::IntrospectionConfig;
pub use issuers::{
    DEVELOPMENT_SECRET, IssuerConfig, JwksConfig, MIN_SECRET_BYTES, Secret, SigningKeyConfig,
    TokenTypes,
};
pub use outbound::{RawUpstreamTls, UpstreamTls};
pub use providers::{DEFAULT_TOKEN_FIELDS, Grant, ProviderConfig};
pub use roots::TrustRoots;
pub use validate::validate;

/// Most refusals the console keeps (`[admin] recent_refusals`).
pub const MAX_RECENT_REFUSALS: usize = 10_000;

/// Whether a URL's text carries userinfo (`user:password@host`). Checked on the text, before
/// any other message could quote the URL: a password there would be printed by `check`, in the
/// route table and in warnings, and tollgate would never use it.
pub(crate) fn has_userinfo(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    authority.contains('@')
}

/// The error for a URL with userinfo; never quotes the URL.
pub(crate) const USERINFO_REFUSED: &str = "credentials in the URL (user:password@) are refused: they would be printed and never used; \
     use the provider's password/password_file or a secret file";

/// A hash of everything a section was built from (resolved secrets and key files included), to
/// tell on reload whether its caches may be kept. `Debug` hides it.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct Fingerprint(u64);

impl Fingerprint {
    /// Hashes the given parts.
    pub fn of(parts: &[&[u8]]) -> Self {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        for part in parts {
            part.hash(&mut hasher);
        }
        Self(hasher.finish())
    }
}

impl std::fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Fingerprint")
    }
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Data listeners.
    pub listen: Vec<SocketAddr>,
    /// Admin listener, if enabled.
    pub admin_listen: Option<SocketAddr>,
    /// TLS listeners and their certificates.
    pub tls: Option<tls::TlsConfig>,
    /// Admin listener limits.
    pub admin_limits: AdminLimits,
    /// Grace period for requests in flight at shutdown.
    pub drain_timeout: Duration,
    /// Peers whose proxy headers are believed.
    pub trusted_proxies: TrustedProxies,
    /// Connection and request limits.
    pub limits: Limits,
    /// Logging.
    pub log: LogConfig,
    /// Accepted token issuers.
    pub issuers: Vec<IssuerConfig>,
    /// Identity header settings.
    pub identity: IdentityConfig,
    /// Upstream credential providers.
    pub providers: Vec<ProviderConfig>,
    /// Service token tooling.
    pub tokens: TokensConfig,
    /// Routes, in file order.
    pub routes: Vec<Arc<Route>>,
    /// Where the revocation list and the token usage log live.
    pub state: StateConfig,
    /// How often the token usage log is written to the state store.
    pub usage_flush_interval: Duration,
    /// The admin console.
    pub console: ConsoleConfig,
    /// The key that signs identity assertions (`[assertion]`), loaded.
    pub assertion: Option<Arc<crate::signer::AssertionSigner>>,
}

/// The state store (`[state]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateConfig {
    /// The embedded store: one JSON file.
    File {
        /// Its path.
        path: std::path::PathBuf,
    },
    /// Redis, shared by every replica of a fleet.
    Redis {
        /// `redis://host:port/db` or `rediss://` (no credentials: those are in `password`).
        url: String,
        /// `AUTH` password.
        password: Option<Secret>,
        /// For `rediss://`: the PEM roots to trust instead of the system's.
        ca_pem: Option<String>,
        /// Key the shared vendor token is encrypted with (AES-256-GCM, 32 bytes).
        encryption_key: Option<Secret>,
        /// Prefix of every key.
        key_prefix: String,
        /// Where the last list read is copied (none: no copy).
        copy: Option<std::path::PathBuf>,
        /// Refuse service tokens while no list was ever read.
        fail_closed: bool,
    },
}

impl StateConfig {
    /// Where the list lives, for messages: the file's path or the Redis URL.
    pub fn describe(&self) -> String {
        match self {
            StateConfig::File { path } => path.display().to_string(),
            StateConfig::Redis {
                url, key_prefix, ..
            } => format!("{url} ({key_prefix}*)"),
        }
    }
}

/// The admin console (`[admin]`).
#[derive(Debug, Clone, Default)]
pub struct ConsoleConfig {
    /// Whether `/console` is served.
    pub enabled: bool,
    /// The admin credential, when one is required.
    pub token: Option<Secret>,
    /// How many recent refusals are kept (0 while the console is off).
    pub recent_refusals: usize,
    /// Host names the console answers besides its listener's address and `localhost`
    /// (lowercase, without port).
    pub hosts: Vec<String>,
}

/// Limits of the admin listener: tight, since it serves only probes and scrapes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminLimits {
    /// Most admin connections at once.
    pub max_connections: usize,
    /// Longest life of one admin connection.
    pub connection_timeout: Duration,
}

/// Service token tooling settings.
#[derive(Debug, Clone, Default)]
pub struct TokensConfig {
    /// Index into [`Config::issuers`] of the signing issuer, if any issuer can sign.
    pub signing_issuer: Option<usize>,
    /// Services `token issue --all` mints tokens for.
    pub services: Vec<String>,
}

/// Identity header settings.
#[derive(Debug, Clone)]
pub struct IdentityConfig {
    /// Extra claims to forward: claim path segments and the header to put them in.
    pub claim_headers: Vec<(Vec<String>, HeaderName)>,
    /// Verified-token cache capacity (0: no cache).
    pub token_cache_size: usize,
    /// The claims routes' `claims` rules name (as written, and as path segments).
    pub rule_claims: Vec<(String, Vec<String>)>,
}

/// Connection and request limits.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request head in bytes.
    pub max_header_bytes: usize,
    /// Most request headers.
    pub max_headers: usize,
    /// Longest request target.
    pub max_uri_bytes: usize,
    /// Deadline for a whole request head.
    pub header_read_timeout: Duration,
    /// Longest silence in the middle of a client's request body.
    pub body_read_timeout: Duration,
    /// How long an HTTP/2 connection may go without a stream (also its ping interval).
    pub idle_timeout: Duration,
    /// Connections older than this are drained.
    pub max_connection_age: Duration,
    /// Most concurrent streams per HTTP/2 connection.
    pub max_concurrent_streams: u32,
    /// Most connections from one client address (trusted proxies exempt).
    pub max_connections_per_ip: usize,
    /// Most concurrent client connections.
    pub max_connections: usize,
    /// Most requests in flight per upstream.
    pub upstream_max_requests: usize,
    /// Most connections per plain-HTTP upstream.
    pub upstream_max_connections: usize,
    /// Longest wait for a TCP connection to a plain-HTTP upstream.
    pub upstream_connect_timeout: Duration,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Logging settings.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// Output format.
    pub format: LogFormat,
    /// `RUST_LOG`-style filter.
    pub level: String,
}

/// One validated route.
#[derive(Debug, Clone)]
pub struct Route {
    /// Position in the config file's route list.
    pub index: usize,
    /// Name for logs and metrics (shared, so metric labels cost no allocation).
    pub name: Arc<str>,
    /// Normalised prefix without a trailing slash (`""` for the root).
    pub prefix: String,
    /// Lowercase host without port, if the route is host-specific.
    pub host: Option<String>,
    /// Where requests go.
    pub upstream: Upstream,
    /// How to connect to an `https://` upstream when not with the defaults (public roots, no
    /// client certificate).
    pub upstream_tls: Option<Arc<UpstreamTls>>,
    /// What replaces the matched prefix when forwarding (`None`: the path is kept).
    pub rewrite: Option<String>,
    /// Deadline for the upstream's response head.
    pub timeout: Duration,
    /// Largest request body.
    pub max_body_bytes: u64,
    /// Most requests of this route in flight (`None`: the upstream's cap only).
    pub max_requests: Option<usize>,
    /// Forward the client's canonical host.
    pub preserve_host: bool,
    /// Protocols clients may upgrade to, lower case (never `h2c`).
    pub upgrades: Vec<String>,
    /// The upstream may set token cookies on the client.
    pub allow_token_cookie: bool,
    /// Who may use the route.
    pub policy: RoutePolicy,
    /// Index into [`Config::providers`] of the credential attached upstream, if any.
    pub upstream_auth: Option<usize>,
    /// Inject the caller's identity headers (off by default on third-party routes).
    pub sends_identity: bool,
    /// Set `X-Forwarded-*` and `X-Real-IP` (off by default on third-party routes).
    pub sends_forwarded: bool,
    /// Send the signed identity assertion (`x-tollgate-assertion`).
    pub identity_assertion: bool,
    /// Send `x-forwarded-client-cert` with the verified client certificate's details.
    pub forward_client_cert: bool,
}

/// Where a route forwards to.
#[derive(Debug, Clone)]
pub enum Upstream {
    /// The built-in echo responder.
    Echo,
    /// No upstream: tollgate answers another proxy's auth subrequest (nginx `auth_request`,
    /// Traefik `ForwardAuth`, Envoy `ext_authz`): `200` with the identity headers, or the
    /// refusal.
    ForwardAuth,
    /// An HTTP(S) server.
    Http {
        /// `http` or `https`.
        scheme: Scheme,
        /// Host and port.
        authority: Authority,
        /// Path prepended to the forwarded path, without a trailing slash.
        base_path: String,
        /// The `Host` the upstream sees unless the client's is preserved: the host, and the
        /// port when not the scheme's default. Built once here rather than per request.
        host: http::HeaderValue,
    },
}

impl std::fmt::Display for Upstream {
    /// `echo (built-in)` or the URL, for the route table and `tollgate explain`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Upstream::Echo => f.write_str("echo (built-in)"),
            Upstream::ForwardAuth => f.write_str("forward-auth (answers the auth question)"),
            Upstream::Http {
                scheme,
                authority,
                base_path,
                ..
            } => write!(f, "{scheme}://{authority}{base_path}"),
        }
    }
}

impl Config {
    /// Reads, interpolates and validates the config file at `path`.
    pub fn load(path: &Path, env: &Env) -> Result<Self, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: file.clone(),
            source,
        })?;
        Self::from_toml(&text, &file, env)
    }

    /// Interpolates and validates config text; `file` names it in errors.
    pub fn from_toml(text: &str, file: &str, env: &Env) -> Result<Self, ConfigError> {
        let raw = validate::parse_raw(text, file, env)?;
        validate(raw, file, env)
    }
}

/// Identity of a file's current version: device, inode (an atomic rename or a symlink swap
/// changes it), size and modification time; `None` when it cannot be read.
pub fn file_stamp(path: &std::path::Path) -> Option<(u64, u64, u64, i64, i64)> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    Some((
        meta.dev(),
        meta.ino(),
        meta.size(),
        meta.mtime(),
        meta.mtime_nsec(),
    ))
}
