//! The config file as written: a serde mirror of `tollgate.toml`, before validation.
//!
//! Every struct denies unknown fields so that a typo never silently turns a check off.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// A secret as written in the config file: reads as a string, never shown by `Debug`.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct SecretText(pub String);

impl std::fmt::Debug for SecretText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

impl std::ops::Deref for SecretText {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

/// A duration written as a humantime string: `"250ms"`, `"30s"`, `"15m"`, `"12h"`, `"365d"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse_duration(&text)
            .map(HumanDuration)
            .map_err(|e| serde::de::Error::custom(format!("invalid duration {text:?}: {e}")))
    }
}

/// The longest duration accepted anywhere: far beyond any sensible setting, and far enough
/// below the clocks' limits that adding it to "now" can never overflow (and panic).
pub const MAX_DURATION: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Parses a humantime duration (`30s`, `15m`, `365d`), at most [`MAX_DURATION`].
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text).map_err(|e| e.to_string())?;
    if duration > MAX_DURATION {
        return Err("longer than 100 years".to_owned());
    }
    Ok(duration)
}

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Listeners and shutdown.
    #[serde(default)]
    pub server: RawServer,
    /// Connection and request limits.
    #[serde(default)]
    pub limits: RawLimits,
    /// Logging.
    #[serde(default)]
    pub log: RawLog,
    /// Token issuers the gateway accepts.
    #[serde(default)]
    pub issuers: Vec<RawIssuer>,
    /// Identity header settings.
    #[serde(default)]
    pub identity: RawIdentity,
    /// Upstream credential providers, referenced by routes' `upstream_auth`.
    #[serde(default)]
    pub providers: Vec<RawProvider>,
    /// Service token tooling (`tollgate token issue`).
    #[serde(default)]
    pub tokens: RawTokens,
    /// Routes, matched by host and longest path prefix.
    #[serde(default)]
    pub routes: Vec<RawRoute>,
    /// Where shared state (the revocation list) lives.
    #[serde(default)]
    pub state: RawState,
    /// The key that signs the identity assertion of `identity_assertion` routes. Default: none.
    pub assertion: Option<RawAssertion>,
    /// The admin console.
    #[serde(default)]
    pub admin: RawAdmin,
}

/// `[admin]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    /// Serve the read-only console at `/console` on the admin listener. Default false.
    #[serde(default)]
    pub console: bool,
    /// The admin credential: the console asks for it (HTTP Basic, any user name) when set;
    /// required when the console is on and `admin_listen` is not loopback. Usually
    /// `"${TOLLGATE_ADMIN_TOKEN}"`, at least 16 characters. Default: none.
    pub token: Option<SecretText>,
    /// How many recent refusals the console shows. Default 100 (at most 10000).
    #[serde(default = "default_recent_refusals")]
    pub recent_refusals: usize,
    /// Host names (port optional) the console answers besides the admin listener's own
    /// address and `localhost`, e.g. `["admin.internal"]`: any other `Host` or `Origin` is
    /// refused, so a web page cannot reach the console through DNS rebinding. Default: none.
    #[serde(default)]
    pub hosts: Vec<String>,
}

impl Default for RawAdmin {
    fn default() -> Self {
        Self {
            console: false,
            token: None,
            recent_refusals: default_recent_refusals(),
            hosts: Vec::new(),
        }
    }
}

fn default_recent_refusals() -> usize {
    100
}

/// `[assertion]`: the signed, request-bound identity assertion sent to upstreams.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAssertion {
    /// PKCS#8 PEM private key (`tollgate keys generate` writes one).
    pub key_file: String,
    /// `EdDSA` (Ed25519, the cheapest to sign), `ES256` or `RS256`; must match the key.
    pub algorithm: String,
    /// The `kid` header, as published in the admin JWKS. Default `"tollgate-assertion"`.
    pub kid: Option<String>,
    /// The `iss` claim. Default `"tollgate"`.
    pub issuer: Option<String>,
    /// Lifetime of one assertion, more than 0 and at most 5m. Default `"60s"`.
    pub ttl: Option<HumanDuration>,
}

/// `[state]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawState {
    /// `"file"` (the embedded store, one JSON file on this machine) or `"redis"` (shared by a
    /// fleet). Default `"file"`.
    #[serde(default = "default_state_backend")]
    pub backend: String,
    /// file: the file's path. Default `"tollgate-state/revocations.json"` (relative to the
    /// working directory).
    #[serde(default = "default_state_path")]
    pub path: String,
    /// redis: `redis://host:port/db`, usually `"${REDIS_URL}"`.
    pub url: Option<String>,
    /// redis: the password (`AUTH`), usually `"${REDIS_PASSWORD}"`. Default: none.
    pub password: Option<SecretText>,
    /// redis: PEM bundle of the CA that signed a `rediss://` server's certificate (instead of
    /// the system roots). Default: the system roots.
    pub ca_file: Option<String>,
    /// redis: allow plain `redis://` to a host that is not loopback (the password, the
    /// revocation list and the shared vendor token cross the network in clear). Default false.
    #[serde(default)]
    pub allow_plaintext: bool,
    /// redis: 32 bytes, base64, usually `"${TOLLGATE_STATE_KEY}"`: the shared vendor token is
    /// stored encrypted with it (AES-256-GCM). Default: stored as is.
    pub encryption_key: Option<SecretText>,
    /// redis: a file holding the encryption key (base64), e.g. a mounted Secret.
    pub encryption_key_file: Option<String>,
    /// redis: where this replica keeps a copy of the last revocation list it read, and starts
    /// from when Redis is unreachable at start-up. Default
    /// `"tollgate-state/revocations-copy-<hash of url and key_prefix>.json"`; `""` keeps none.
    pub copy_path: Option<String>,
    /// redis: refuse service tokens while no revocation list was ever read (neither from Redis
    /// nor from the copy), instead of accepting them unchecked. Default false.
    #[serde(default)]
    pub fail_closed: bool,
    /// redis: prefix of every key tollgate uses. Default `"tollgate:"`.
    #[serde(default = "default_key_prefix")]
    pub key_prefix: String,
    /// How often a gateway writes which service tokens it saw (`tollgate token usage`), and
    /// once more when it stops. Default `"10s"`.
    #[serde(default = "default_usage_flush_interval")]
    pub usage_flush_interval: HumanDuration,
}

impl Default for RawState {
    fn default() -> Self {
        Self {
            backend: default_state_backend(),
            path: default_state_path(),
            url: None,
            password: None,
            ca_file: None,
            allow_plaintext: false,
            encryption_key: None,
            encryption_key_file: None,
            key_prefix: default_key_prefix(),
            copy_path: None,
            fail_closed: false,
            usage_flush_interval: default_usage_flush_interval(),
        }
    }
}

fn default_usage_flush_interval() -> HumanDuration {
    HumanDuration(Duration::from_secs(10))
}

fn default_key_prefix() -> String {
    "tollgate:".to_owned()
}

fn default_state_backend() -> String {
    "file".to_owned()
}

fn default_state_path() -> String {
    "tollgate-state/revocations.json".to_owned()
}

/// `[[issuers]]`: who may sign tokens, and with which keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIssuer {
    /// Name for logs and metrics. Default: the `issuer` value.
    pub name: Option<String>,
    /// The `iss` claim tokens of this issuer carry. Required.
    pub issuer: String,
    /// Accepted `aud` values; when set, tokens must carry one of them. Default: none checked.
    #[serde(default)]
    pub audiences: Vec<String>,
    /// Allowed algorithms, e.g. `["HS256"]` or `["RS256", "ES256"]`. Required, except with
    /// `discovery`, where the default is every asymmetric algorithm (narrowed at run time to
    /// those the provider's document lists).
    #[serde(default)]
    pub algorithms: Vec<String>,
    /// Fetch `{issuer}/.well-known/openid-configuration` (OIDC discovery) for the key set's
    /// URL and the algorithms, and refresh it like the key set. Default false.
    #[serde(default)]
    pub discovery: bool,
    /// The discovery document's URL when it is not under the issuer. Implies `discovery`.
    pub discovery_url: Option<String>,
    /// How a token's type is known: `"tollgate"` (its `type` claim, `access` or `service`,
    /// with `is_service` agreeing: tollgate's own tokens) or `"standard"` (OAuth/OIDC access
    /// tokens: no `type` needed; a client-credentials token is a service when the issuer may
    /// vouch for services). Default: `"standard"` with `jwks_url`, `discovery` or
    /// `introspection_url`, else
    /// `"tollgate"`.
    pub token_types: Option<String>,
    /// Dotted path of the claim holding the caller's roles (an array or a string), e.g.
    /// `"realm_access.roles"`, `"roles"`, `"https://example.com/roles"` (quote a key that has
    /// dots: `'"https://example.com/roles"'`). Default: the `role` claim only.
    pub roles_claim: Option<String>,
    /// RFC 7662 introspection endpoint for opaque (non-JWT) tokens. Default: none (an opaque
    /// token is refused as malformed).
    pub introspection_url: Option<String>,
    /// tollgate's client id at the introspection endpoint (HTTP Basic).
    pub introspection_client_id: Option<String>,
    /// Its client secret, usually `"${SOME_VAR}"`.
    pub introspection_client_secret: Option<SecretText>,
    /// A file holding the client secret.
    pub introspection_client_secret_file: Option<String>,
    /// Longest time an introspection answer is reused, never beyond the token's `exp`.
    /// Default `"60s"`, at most `"1h"`.
    pub introspection_cache: Option<HumanDuration>,
    /// Clock skew allowed on `exp` and `nbf`. Default `"30s"`.
    pub leeway: Option<HumanDuration>,
    /// HMAC secret (at least 32 bytes), usually `"${SOME_VAR}"`.
    pub secret: Option<SecretText>,
    /// File holding the HMAC secret (trailing newline ignored).
    pub secret_file: Option<String>,
    /// PEM public keys (RSA, EC or Ed25519).
    #[serde(default)]
    pub public_keys: Vec<RawPublicKey>,
    /// JWKS document URL, fetched at startup and refreshed.
    pub jwks_url: Option<String>,
    /// PEM bundle of the certificate authorities the JWKS server's certificate is checked
    /// against, instead of the public web roots (a private CA). Default: public roots.
    pub jwks_ca_file: Option<String>,
    /// Accept a plain `http://` `jwks_url` to a host that is not loopback. Default false.
    #[serde(default)]
    pub allow_insecure_http: bool,
    /// JWKS refresh period. Default `"5m"`.
    pub jwks_refresh: Option<HumanDuration>,
    /// JWKS fetch timeout. Default `"5s"`.
    pub jwks_timeout: Option<HumanDuration>,
    /// Least time between two fetches triggered by unknown key ids. Default `"10s"`.
    pub jwks_min_refresh_interval: Option<HumanDuration>,
    /// Also take tokens from this cookie. Default: no.
    pub from_cookie: Option<String>,
    /// Also take tokens from this query parameter. Default: no.
    pub from_query: Option<String>,
    /// Private key used by `tollgate token issue`; its public half is also accepted.
    pub signing_key: Option<RawSigningKey>,
    /// Several private keys, for rotation: each is published and accepted; the one with the
    /// latest `active_from` already reached signs. Default: none.
    #[serde(default)]
    pub signing_keys: Vec<RawSigningKey>,
    /// Several HMAC secrets with key ids, for rotation: each is accepted (by `kid`); the one
    /// with the latest `active_from` already reached signs. Default: none.
    #[serde(default)]
    pub secrets: Vec<RawSecret>,
    /// Longest token lifetime accepted, per token type: `exp - iat`, or `exp - now` for a
    /// token without `iat`. Default `{ access = "24h", service = "400d" }`.
    #[serde(default)]
    pub max_lifetime: RawMaxLifetime,
    /// Whether tokens of this issuer may carry a service identity (`type = "service"`).
    /// Default: true for the `[tokens]` signing issuer and for a config's only issuer, false
    /// for every other issuer (a user IdP must not be able to vouch for `orders`).
    pub service_tokens: Option<bool>,
}

/// `max_lifetime` of an issuer.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMaxLifetime {
    /// User access tokens. Default `"24h"`.
    pub access: Option<HumanDuration>,
    /// Service tokens. Default `"400d"` (room for the 365-day tokens `token issue` mints).
    pub service: Option<HumanDuration>,
}

/// A PEM public key of an issuer.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPublicKey {
    /// Key id matched against the token's `kid`. Default: matches tokens without a `kid`.
    pub kid: Option<String>,
    /// The PEM text.
    pub pem: Option<String>,
    /// A file holding the PEM text.
    pub pem_file: Option<String>,
}

/// The private key `tollgate token issue` signs with.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSigningKey {
    /// PKCS#8 PEM private key file (RSA, EC P-256/P-384 or Ed25519).
    pub private_key_file: String,
    /// Algorithm: RS256/384/512, PS256/384/512, ES256/384 or EdDSA.
    pub algorithm: String,
    /// Key id written in the token header.
    pub kid: Option<String>,
    /// When it starts signing (RFC 3339, e.g. `"2026-01-15T00:00:00Z"`); until then it is only
    /// published and accepted. Default: at once.
    pub active_from: Option<String>,
}

/// One of an issuer's HMAC secrets (`secrets = [...]`), for rotating them.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSecret {
    /// Key id written in the token header and matched against it. Required.
    pub kid: String,
    /// The secret (at least 32 bytes), usually `"${SOME_VAR}"`.
    pub secret: Option<SecretText>,
    /// File holding the secret (trailing newline ignored).
    pub secret_file: Option<String>,
    /// When it starts signing (RFC 3339); until then it is only accepted. Default: at once.
    pub active_from: Option<String>,
}

/// `[[providers]]`: how to obtain a vendor's bearer token.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProvider {
    /// Name routes refer to with `upstream_auth`. Required.
    pub name: String,
    /// `login` (JSON email/password login) or `client_credentials` (OAuth 2.0, RFC 6749 §4.4).
    pub kind: RawProviderKind,
    /// login: the auth API URL. Default: `$API_AUTH_URL`.
    pub auth_url: Option<String>,
    /// login: the account email. Default: `$API_AUTH_EMAIL`.
    pub email: Option<String>,
    /// login: the password. Default: `$API_AUTH_PASSWORD` (or `password_file`).
    pub password: Option<SecretText>,
    /// login: file holding the password (trailing newline ignored).
    pub password_file: Option<String>,
    /// login: JSON field name for the email. Default `"email"`.
    pub email_field: Option<String>,
    /// login: JSON field name for the password. Default `"password"`.
    pub password_field: Option<String>,
    /// login: dot path of the token in the response. Default: the first of `accessToken`,
    /// `access_token`, `token`, `authToken`.
    pub token_path: Option<String>,
    /// client_credentials: the token endpoint.
    pub token_url: Option<String>,
    /// client_credentials: the client id.
    pub client_id: Option<String>,
    /// client_credentials: the client secret (or `client_secret_file`).
    pub client_secret: Option<SecretText>,
    /// client_credentials: file holding the client secret.
    pub client_secret_file: Option<String>,
    /// client_credentials: `"basic"` (HTTP Basic, default) or `"body"` (form fields).
    pub client_auth: Option<String>,
    /// client_credentials: requested scope.
    pub scope: Option<String>,
    /// client_credentials: requested audience.
    pub audience: Option<String>,
    /// Per-attempt timeout. Default: `$API_EXECUTOR_TIMEOUT` seconds, else `"30s"`.
    pub timeout: Option<HumanDuration>,
    /// Retries after a failed attempt. Default: `$API_EXECUTOR_MAX_RETRIES`, else 3.
    pub max_retries: Option<u32>,
    /// Token lifetime when neither its `exp` nor `expires_in` says. Default `"1h"`.
    pub ttl: Option<HumanDuration>,
    /// Refresh when less than this remains. Default `"5m"`.
    pub refresh_before: Option<HumanDuration>,
    /// After all retries fail, answer 503 at once for this long. Default `"5s"`.
    pub failure_cooldown: Option<HumanDuration>,
    /// Readiness waits for this provider's first token. Default false.
    #[serde(default)]
    pub required: bool,
    /// Request bodies up to this size are kept so a request can be replayed after a vendor
    /// `401`. Default 65536.
    pub replay_body_bytes: Option<u64>,
    /// After a vendor `401`, at most one new login per this interval; within it the vendor's
    /// `401` is returned to the caller (or the request retried with a token a login already
    /// obtained). Default `"10s"`.
    pub relogin_interval: Option<HumanDuration>,
    /// Longest a request waits for a token (also capped by its route's `timeout`); past it
    /// the request gets 503 at once while the login goes on. Default: the route's timeout.
    pub acquire_timeout: Option<HumanDuration>,
    /// PEM bundle of the certificate authorities the auth API's certificate is checked
    /// against, instead of the public web roots (a private CA). Default: public roots.
    pub ca_file: Option<String>,
    /// Accept a plain `http://` auth URL to a host that is not loopback (the password or
    /// client secret then crosses the network readable). Default false.
    #[serde(default)]
    pub allow_insecure_http: bool,
}

/// The credential grant a provider uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RawProviderKind {
    /// `POST {"email", "password"}` → `{"accessToken": ...}`.
    Login,
    /// OAuth 2.0 client credentials.
    ClientCredentials,
}

/// `[tokens]`: what `tollgate token issue` signs with and for whom.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTokens {
    /// The `issuer` value of the `[[issuers]]` entry that signs. Default: the first issuer
    /// with a `secret`, `secret_file` or `signing_key`.
    pub issuer: Option<String>,
    /// The service registry: `token issue --all` mints one token for each. Default: none.
    #[serde(default)]
    pub services: Vec<String>,
}

/// `[identity]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawIdentity {
    /// Extra claims to forward: claim path (dots for nesting) to header name. Arrays are
    /// joined with commas. Default: none.
    #[serde(default)]
    pub claim_headers: std::collections::BTreeMap<String, String>,
    /// Largest verified-token cache, in tokens. Default 10000; 0 disables it.
    #[serde(default = "default_token_cache_size")]
    pub token_cache_size: usize,
}

fn default_token_cache_size() -> usize {
    10_000
}

// Written out: a derived Default would give a cache size of 0 when `[identity]` is absent.
impl Default for RawIdentity {
    fn default() -> Self {
        Self {
            claim_headers: Default::default(),
            token_cache_size: default_token_cache_size(),
        }
    }
}

/// `[server]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    /// Data listeners. Default `["127.0.0.1:8080"]`.
    #[serde(default = "default_listen")]
    pub listen: Vec<String>,
    /// Admin listener (health, readiness). Default `"127.0.0.1:9901"`; `""` disables it.
    #[serde(default = "default_admin_listen")]
    pub admin_listen: String,
    /// How long requests in flight may run after SIGTERM. Default `"30s"`.
    #[serde(default = "default_drain_timeout")]
    pub drain_timeout: HumanDuration,
    /// Peers (CIDR networks or addresses) whose `X-Forwarded-*` and `x-request-id` headers are
    /// believed. Default: none; every client's proxy headers are removed.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
    /// Most admin connections open at once; further ones wait in the accept queue. Default 64.
    #[serde(default = "default_admin_max_connections")]
    pub admin_max_connections: usize,
    /// An admin connection is closed this long after it was accepted, whatever it is doing
    /// (probes and scrapes take milliseconds). Default `"30s"`.
    #[serde(default = "default_admin_connection_timeout")]
    pub admin_connection_timeout: HumanDuration,
    /// TLS listeners and their certificates. Default: none.
    #[serde(default)]
    pub tls: super::tls::RawTls,
}

fn default_admin_max_connections() -> usize {
    64
}
fn default_admin_connection_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(30))
}

impl Default for RawServer {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            admin_listen: default_admin_listen(),
            drain_timeout: default_drain_timeout(),
            trusted_proxies: Vec::new(),
            admin_max_connections: default_admin_max_connections(),
            admin_connection_timeout: default_admin_connection_timeout(),
            tls: super::tls::RawTls::default(),
        }
    }
}

fn default_listen() -> Vec<String> {
    vec!["127.0.0.1:8080".to_owned()]
}
fn default_admin_listen() -> String {
    "127.0.0.1:9901".to_owned()
}
fn default_drain_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(30))
}

/// `[limits]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    /// Largest request head (request line plus headers) in bytes. Default 16384, minimum 8192.
    #[serde(default = "default_max_header_bytes")]
    pub max_header_bytes: usize,
    /// Most request headers. Default 100.
    #[serde(default = "default_max_headers")]
    pub max_headers: usize,
    /// Longest request target (path and query) in bytes; longer ones get 414. Default 8192.
    #[serde(default = "default_max_uri_bytes")]
    pub max_uri_bytes: usize,
    /// A client must send its whole request head within this time. Default `"10s"`.
    #[serde(default = "default_header_read_timeout")]
    pub header_read_timeout: HumanDuration,
    /// A client that sends nothing for this long in the middle of its request body gets 408
    /// and its buffer is freed. Default `"15s"`.
    #[serde(default = "default_body_read_timeout")]
    pub body_read_timeout: HumanDuration,
    /// An HTTP/2 connection with no stream opened or open for this long gets GOAWAY and is
    /// closed (checked every second); also the HTTP/2 ping interval. (HTTP/1 idle connections close after `header_read_timeout`.) Default
    /// `"60s"`.
    #[serde(default = "default_idle_timeout")]
    pub idle_timeout: HumanDuration,
    /// Any connection older than this is drained (checked every second): GOAWAY (HTTP/2) or
    /// `Connection: close` on its response in flight (HTTP/1); requests in flight finish.
    /// Default `"1h"`.
    #[serde(default = "default_max_connection_age")]
    pub max_connection_age: HumanDuration,
    /// Most streams at once on one HTTP/2 connection. Default 100.
    #[serde(default = "default_max_concurrent_streams")]
    pub max_concurrent_streams: u32,
    /// Most client connections open at once; further clients wait in the accept queue.
    /// Default 10000.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Most connections open at once from one client address; more are closed on accept.
    /// Peers in `server.trusted_proxies` are exempt. Default 256.
    #[serde(default = "default_max_connections_per_ip")]
    pub max_connections_per_ip: usize,
    /// Default largest request body in bytes for routes that set none. Default 10 MiB.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: u64,
    /// Default time to wait for an upstream's response head. Default `"30s"`.
    #[serde(default = "default_upstream_timeout")]
    pub upstream_timeout: HumanDuration,
    /// Time to wait for a TCP connection to a plain-HTTP upstream, apart from the response
    /// timeout; a refused or timed-out connect is tried once more for an idempotent request.
    /// Default `"3s"`.
    #[serde(default = "default_upstream_connect_timeout")]
    pub upstream_connect_timeout: HumanDuration,
    /// Most requests in flight to one upstream (host and port); more get 503 at once.
    /// Default 1024 (Envoy's circuit-breaker default).
    #[serde(default = "default_upstream_max")]
    pub upstream_max_requests: usize,
    /// Most connections open to one plain-HTTP upstream, idle ones included; a request that
    /// would need another gets 503 at once. Default 1024.
    #[serde(default = "default_upstream_max")]
    pub upstream_max_connections: usize,
}

impl Default for RawLimits {
    fn default() -> Self {
        Self {
            max_header_bytes: default_max_header_bytes(),
            max_headers: default_max_headers(),
            max_uri_bytes: default_max_uri_bytes(),
            header_read_timeout: default_header_read_timeout(),
            body_read_timeout: default_body_read_timeout(),
            idle_timeout: default_idle_timeout(),
            max_connection_age: default_max_connection_age(),
            max_concurrent_streams: default_max_concurrent_streams(),
            max_connections_per_ip: default_max_connections_per_ip(),
            max_connections: default_max_connections(),
            max_body_bytes: default_max_body_bytes(),
            upstream_timeout: default_upstream_timeout(),
            upstream_connect_timeout: default_upstream_connect_timeout(),
            upstream_max_requests: default_upstream_max(),
            upstream_max_connections: default_upstream_max(),
        }
    }
}

fn default_max_header_bytes() -> usize {
    16 * 1024
}
fn default_max_headers() -> usize {
    100
}
fn default_max_uri_bytes() -> usize {
    8192
}
fn default_header_read_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(10))
}
fn default_body_read_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(15))
}
fn default_idle_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(60))
}
fn default_max_connection_age() -> HumanDuration {
    HumanDuration(Duration::from_secs(3600))
}
fn default_max_concurrent_streams() -> u32 {
    100
}
fn default_max_connections_per_ip() -> usize {
    256
}
fn default_max_connections() -> usize {
    10_000
}
fn default_max_body_bytes() -> u64 {
    10 * 1024 * 1024
}
fn default_upstream_max() -> usize {
    1024
}
fn default_upstream_connect_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(3))
}
fn default_upstream_timeout() -> HumanDuration {
    HumanDuration(Duration::from_secs(30))
}

/// `[log]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLog {
    /// `"text"` (default) or `"json"`; the `TOLLGATE_LOG_FORMAT` variable overrides it.
    #[serde(default = "default_log_format")]
    pub format: String,
    /// A `RUST_LOG`-style filter. Default `"info"`; `RUST_LOG` overrides it.
    #[serde(default = "default_log_level")]
    pub level: String,
}

impl Default for RawLog {
    fn default() -> Self {
        Self {
            format: default_log_format(),
            level: default_log_level(),
        }
    }
}

fn default_log_format() -> String {
    "text".to_owned()
}
fn default_log_level() -> String {
    "info".to_owned()
}

/// `[[routes]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    /// Name used in logs and metrics; unique. Default: the prefix (after the host, on a
    /// host-specific route).
    pub name: Option<String>,
    /// Path prefix, segment-aware: `/api` matches `/api` and `/api/x`, not `/apix`.
    pub prefix: String,
    /// Only requests for this host (port ignored, any letter case). Default: any host.
    pub host: Option<String>,
    /// `http://` or `https://` URL (its path is prepended), or `echo` for the built-in echo.
    pub upstream: String,
    /// Remove the prefix before forwarding. Default false.
    #[serde(default)]
    pub strip_prefix: bool,
    /// Replace the prefix with this path before forwarding. Default: none.
    pub rewrite: Option<String>,
    /// Time to wait for the upstream's response head. Default: `limits.upstream_timeout`.
    pub timeout: Option<HumanDuration>,
    /// Largest request body in bytes. Default: `limits.max_body_bytes`.
    pub max_body_bytes: Option<u64>,
    /// Most requests of this route in flight at once, below the upstream's own cap; more get
    /// 503 at once. Default: only the upstream's `limits.upstream_max_requests`.
    pub max_requests: Option<usize>,
    /// Forward the client's `Host` (canonicalised) instead of the upstream's authority.
    /// Default false.
    #[serde(default)]
    pub preserve_host: bool,
    /// Protocols a client may upgrade to on this route (`Connection: upgrade`). Others are
    /// dropped from the request; `h2c` is refused. Default `["websocket"]`; `[]` for none.
    pub upgrades: Option<Vec<String>>,
    /// `public`, `authenticated` (default), `access` (user tokens only) or `service`
    /// (service tokens only).
    #[serde(default)]
    pub policy: RawPolicy,
    /// With `policy = "service"`: only these service names. Default: any service.
    #[serde(default)]
    pub services: Vec<String>,
    /// The caller's role must be one of these. Default: any role.
    #[serde(default)]
    pub roles: Vec<String>,
    /// The token must carry every one of these OAuth scopes (`scope` or `scp`); otherwise
    /// 403 with `error="insufficient_scope"`. Default: none.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Only these methods; others get 405 with `Allow`. Default: any method.
    #[serde(default)]
    pub methods: Vec<String>,
    /// Claims the token must carry with exactly these values, by dotted path, e.g.
    /// `{ tenant = "acme", email_verified = true }` (an array claim matches when it contains
    /// the value). Default: none.
    #[serde(default)]
    pub claims: std::collections::BTreeMap<String, toml::Value>,
    /// Let CORS preflight requests (`OPTIONS` with `Origin` and
    /// `Access-Control-Request-Method`, and no body) through without a token; method-override
    /// headers are removed from them. Default false.
    #[serde(default)]
    pub allow_cors_preflight: bool,
    /// Forward the caller's `Authorization` header. Default false (removed).
    #[serde(default)]
    pub forward_authorization: bool,
    /// Name of a `[[providers]]` entry whose bearer token replaces the caller's. Default: none.
    pub upstream_auth: Option<String>,
    /// Only tokens of these issuers (their `name`) are accepted here. Default: any issuer.
    #[serde(default)]
    pub issuers: Vec<String>,
    /// For an `https://` upstream: `{ ca_file, cert_file, key_file, server_name,
    /// insecure_skip_verify }` (a private CA, a client certificate for mutual TLS, the name its
    /// certificate holds). Default: the public roots, no client certificate.
    pub upstream_tls: Option<super::RawUpstreamTls>,
    /// `"token"` (default), `"certificate"` (a client certificate registered for a service
    /// in `[server.tls] client_services`), `"token_or_certificate"` (a token when the request
    /// has one, else the certificate) or `"token_and_certificate"` (both, of one service).
    pub authenticate_with: Option<String>,
    /// Let the upstream's `Set-Cookie` for a token cookie (an issuer's `from_cookie`) reach the
    /// client, e.g. on the login service's route. Default false (removed).
    #[serde(default)]
    pub allow_token_cookie: bool,
    /// On an `upstream_auth` (third-party) route: also send the caller's identity headers.
    /// Default false: a vendor gets no internal names, ids or e-mail addresses.
    #[serde(default)]
    pub send_identity: bool,
    /// On an `upstream_auth` (third-party) route: also send `X-Forwarded-*` and `X-Real-IP`.
    /// Default false: a vendor gets no internal addresses or host names.
    #[serde(default)]
    pub send_forwarded: bool,
    /// Send the verified client certificate's details in `x-forwarded-client-cert` (Envoy's
    /// format: `Hash=<sha256 of the DER>;URI=<SPIFFE ID>;DNS=<name>`). Only tollgate sets it: a
    /// client's copy is always removed. Default false.
    #[serde(default)]
    pub forward_client_cert: bool,
    /// Send `x-tollgate-assertion`, a signed, short-lived JWT bound to this request (method,
    /// path, host, request id) that carries the caller's identity. Needs `[assertion]`.
    /// Default false.
    #[serde(default)]
    pub identity_assertion: bool,
}

/// A route's access policy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RawPolicy {
    /// No token needed; a valid one still yields identity headers.
    Public,
    /// Any valid access or service token.
    #[default]
    Authenticated,
    /// User access tokens only.
    Access,
    /// Service tokens only.
    Service,
}
