//! Configuration: the file's serde mirror ([`raw`]), env interpolation ([`env`](mod@env)) and the
//! validated, typed [`Config`] the rest of the gateway sees ([`validate`]): plain data, key
//! material and route policies, with no sockets, tasks or stores.
//!
//! Each section of the file has one module holding its raw form (as written), its validated
//! form and the conversion between them; [`raw`] gathers the raw forms into the whole file.
#![forbid(unsafe_code)]

mod admin;
mod assertion;
pub mod claims;
pub mod env;
mod error;
mod identity;
mod issuers;
pub mod keygen;
pub mod keys;
mod limits;
mod listeners;
pub mod local;
mod log;
mod outbound;
pub mod policy;
mod providers;
pub mod raw;
mod roots;
mod routes;
pub mod signer;
mod state;
mod telemetry;
pub mod tls;
mod tokens;
mod validate;
mod values;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tollgate_http::forwarded::TrustedProxies;

pub use admin::{ConsoleConfig, MAX_RECENT_REFUSALS};
pub use env::Env;
pub(crate) use error::invalid;
pub use error::{ConfigError, Invalid};
pub use identity::IdentityConfig;
pub use issuers::introspection::IntrospectionConfig;
pub use issuers::{
    DEVELOPMENT_SECRET, IssuerConfig, JwksConfig, MIN_SECRET_BYTES, SigningKeyConfig, TokenTypes,
};
pub use limits::Limits;
pub use listeners::{AdminLimits, admin_address};
pub use log::{LogConfig, LogFormat};
pub use outbound::{RawUpstreamTls, UpstreamTls};
pub use providers::{DEFAULT_TOKEN_FIELDS, Grant, ProviderConfig};
pub use roots::TrustRoots;
pub use routes::{KeyBy, Rate, RateLimit, Route, Upstream, UpstreamProtocol};
pub use state::StateConfig;
pub use telemetry::TelemetryConfig;
pub use tokens::TokensConfig;
pub use validate::validate;
pub use values::Secret;

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
    /// OpenTelemetry traces (`[telemetry]`); `None`: off.
    pub telemetry: Option<TelemetryConfig>,
}

impl Config {
    /// Reads, interpolates and validates the config file at `path`.
    pub fn load(path: &Path, env: &Env) -> Result<Self, ConfigError> {
        let (text, file) = read(path)?;
        Self::from_toml(&text, &file, env)
    }

    /// Reads the config at `path` keeping only the top-level `sections`: for commands that run
    /// offline (issuing or revoking tokens), which need neither listeners nor routes,
    /// providers or the console, nor the variables those name (a vendor password, the
    /// console's token). What is kept is interpolated and validated as usual.
    pub fn load_sections(path: &Path, env: &Env, sections: &[&str]) -> Result<Self, ConfigError> {
        let (text, file) = read(path)?;
        let mut table = error::parse_table(&text, &file)?;
        table.retain(|key, _| sections.contains(&key));
        validate(validate::raw_from_table(table, &file, env)?, &file, env)
    }

    /// Interpolates and validates config text; `file` names it in errors.
    pub fn from_toml(text: &str, file: &str, env: &Env) -> Result<Self, ConfigError> {
        let raw = validate::parse_raw(text, file, env)?;
        validate(raw, file, env)
    }
}

/// The text of the config file at `path`, and its name for errors.
fn read(path: &Path) -> Result<(String, String), ConfigError> {
    let file = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => Ok((text, file)),
        Err(source) => Err(ConfigError::Read { file, source }),
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
