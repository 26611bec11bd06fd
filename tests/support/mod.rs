//! Test helpers: a gateway spawned from a config string, upstreams that report what they
//! received, and a client with timeouts on every network await.
#![allow(dead_code)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tollgate::{Config, Env, RunningGateway};

/// Every network await in a test is bounded by this.
pub const TIMEOUT: Duration = Duration::from_secs(20);

/// Awaits `fut` or panics after [`TIMEOUT`], so a bug fails the test instead of hanging CI.
pub async fn within<F: Future>(fut: F) -> F::Output {
    tokio::time::timeout(TIMEOUT, fut)
        .await
        .expect("timed out waiting")
}

/// A gateway running in this process.
pub struct TestGateway {
    pub running: Option<RunningGateway>,
    pub addr: SocketAddr,
    pub admin: Option<SocketAddr>,
}

impl TestGateway {
    /// `http://addr` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Begins the drain and waits for it.
    pub async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            running.shutdown();
            within(running.wait()).await;
        }
    }
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        if let Some(running) = &self.running {
            running.shutdown();
        }
    }
}

/// Starts a gateway from config text, listening on ephemeral ports; `vars` is its environment.
pub async fn spawn_gateway_with_env(toml: &str, vars: &[(&str, &str)]) -> TestGateway {
    let config = Config::from_toml(
        toml,
        "test.toml",
        &Env::from_map(vars.iter().map(|(k, v)| (k.to_string(), v.to_string()))),
    )
    .expect("test config is valid");
    let running = tollgate::start(config).await.expect("gateway starts");
    TestGateway {
        addr: running.data_addrs[0],
        admin: running.admin_addr,
        running: Some(running),
    }
}

/// Starts a gateway from config text; the `[server]` section may be omitted.
pub async fn spawn_gateway(toml: &str) -> TestGateway {
    spawn_gateway_with_env(&with_test_server(toml), &[]).await
}

/// A `[[routes]]` entry with `policy = "public"`; `extra` adds more keys.
pub fn public_route(prefix: &str, upstream: &str, extra: &str) -> String {
    format!(
        "[[routes]]\nprefix = \"{prefix}\"\nupstream = \"{upstream}\"\npolicy = \"public\"\n{extra}\n"
    )
}

/// Prepends a `[server]` section on ephemeral ports unless the text has one.
pub fn with_test_server(toml: &str) -> String {
    if toml.contains("[server]") {
        toml.to_owned()
    } else {
        format!(
            "[server]\nlisten = [\"127.0.0.1:0\"]\nadmin_listen = \"127.0.0.1:0\"\ndrain_timeout = \"5s\"\n\n{toml}"
        )
    }
}

/// What an upstream received.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub uri: String,
    pub version: http::Version,
    pub headers: HeaderMap,
    pub body_len: usize,
}

type Handler = Arc<
    dyn Fn(Received) -> Pin<Box<dyn Future<Output = Response<Full<Bytes>>> + Send>> + Send + Sync,
>;

/// An HTTP/1.1 upstream on 127.0.0.1 that records every request and answers with a handler.
#[derive(Clone)]
pub struct MockUpstream {
    pub addr: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    hits: Arc<AtomicUsize>,
    connections: Arc<AtomicUsize>,
}

impl MockUpstream {
    /// Answers `200` with `{"path": ..., "body_len": ...}`.
    pub async fn echo() -> Self {
        Self::start(|r| async move {
            let body = serde_json::json!({"path": r.uri, "body_len": r.body_len});
            json_response(StatusCode::OK, &body)
        })
        .await
    }

    /// Answers with `handler` after the whole body was read.
    pub async fn start<F, Fut>(handler: F) -> Self
    where
        F: Fn(Received) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response<Full<Bytes>>> + Send + 'static,
    {
        let handler: Handler = Arc::new(move |r| Box::pin(handler(r)));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let hits = Arc::new(AtomicUsize::new(0));
        let connections = Arc::new(AtomicUsize::new(0));
        let (rec, h, accepted) = (received.clone(), hits.clone(), connections.clone());
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                accepted.fetch_add(1, Ordering::SeqCst);
                let (rec, h, handler) = (rec.clone(), h.clone(), handler.clone());
                let service = service_fn(move |request: Request<Incoming>| {
                    let (rec, h, handler) = (rec.clone(), h.clone(), handler.clone());
                    async move {
                        h.fetch_add(1, Ordering::SeqCst);
                        let (parts, mut body) = request.into_parts();
                        let mut body_len = 0;
                        while let Some(frame) = body.frame().await {
                            match frame {
                                Ok(frame) => {
                                    body_len += frame.data_ref().map_or(0, |d| d.len());
                                }
                                Err(_) => break,
                            }
                        }
                        let received = Received {
                            method: parts.method.to_string(),
                            uri: parts.uri.to_string(),
                            version: parts.version,
                            headers: parts.headers,
                            body_len,
                        };
                        rec.lock().unwrap().push(received.clone());
                        Ok::<_, Infallible>(handler(received).await)
                    }
                });
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            addr,
            received,
            hits,
            connections,
        }
    }

    /// TCP connections accepted.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// `http://addr`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests that reached the handler.
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// The requests fully received so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// The last request fully received.
    pub fn last(&self) -> Received {
        self.received()
            .last()
            .cloned()
            .expect("upstream received a request")
    }
}

/// A JSON response.
pub fn json_response(status: StatusCode, body: &serde_json::Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

/// A free port with nothing listening on it.
pub async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap()
}

/// A response read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.body))
    }
}

/// The value of one series in a Prometheus text scrape.
pub fn scrape_value(metrics: &str, series: &str) -> Option<f64> {
    metrics
        .lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// An HTTP/1.1 client with a connection pool.
pub fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// Sends `request` and reads the whole response, within [`TIMEOUT`].
pub async fn send(request: Request<Full<Bytes>>) -> Reply {
    send_with(&client(), request).await
}

/// Like [`send`], with a given client.
pub async fn send_with(
    client: &Client<HttpConnector, Full<Bytes>>,
    request: Request<Full<Bytes>>,
) -> Reply {
    within(async {
        let response = client.request(request).await.expect("request sent");
        let (parts, body) = response.into_parts();
        let body = body.collect().await.expect("body read").to_bytes();
        Reply {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    })
    .await
}

/// `GET url` with extra headers.
pub async fn get(url: &str, headers: &[(&str, &str)]) -> Reply {
    let mut builder = Request::get(url);
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    send(builder.body(Full::new(Bytes::new())).unwrap()).await
}

/// The status of `GET path` with `Authorization: Bearer token`.
pub async fn bearer_status(gw: &TestGateway, path: &str, token: &str) -> u16 {
    get(
        &gw.url(path),
        &[("authorization", &format!("Bearer {token}"))],
    )
    .await
    .status
    .as_u16()
}

/// The status of `GET url` with `Authorization: Bearer token`, and the refusal's `reason`
/// (empty on success).
pub async fn bearer_status_and_reason(url: &str, token: &str) -> (u16, String) {
    let reply = get(url, &[("authorization", &format!("Bearer {token}"))]).await;
    let reason = if reply.status.is_success() {
        String::new()
    } else {
        reply.json()["reason"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    (reply.status.as_u16(), reason)
}

/// Polls [`bearer_status`] until it is `want` (a background fetch landing), within [`TIMEOUT`].
pub async fn until_bearer_status(gw: &TestGateway, path: &str, token: &str, want: u16) {
    within(async {
        while bearer_status(gw, path, token).await != want {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

/// Parses the echo upstream's JSON header map into name → values.
pub fn echoed_headers(reply: &Reply) -> HashMap<String, Vec<String>> {
    serde_json::from_value(reply.json()["headers"].clone()).expect("echo headers")
}

/// The `tollgate` binary running as a child process, with its stderr collected.
pub struct GatewayProcess {
    pub child: std::process::Child,
    pub config_path: std::path::PathBuf,
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    /// The first TLS listener, when the config has one (logged before the admin listener).
    pub tls: Option<SocketAddr>,
    pub logs: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl GatewayProcess {
    /// Writes `toml` (with a `[server]` section on ephemeral ports if it has none) to a temp
    /// file and runs `tollgate serve` on it with JSON logs; waits until it listens.
    pub fn spawn(toml: &str, env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tollgate.toml");
        std::fs::write(&path, with_test_server(toml)).unwrap();
        Self::spawn_in(dir, &path, env, None)
    }

    /// Runs `tollgate serve` on an existing config file.
    pub fn spawn_with_path(path: &std::path::Path, env: &[(&str, &str)]) -> Self {
        Self::spawn_in(tempfile::tempdir().unwrap(), path, env, None)
    }

    /// Like [`spawn`](Self::spawn), with the process's open-file limit (`RLIMIT_NOFILE`)
    /// lowered to `nofile`.
    pub fn spawn_with_nofile(toml: &str, env: &[(&str, &str)], nofile: u64) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tollgate.toml");
        std::fs::write(&path, with_test_server(toml)).unwrap();
        Self::spawn_in(dir, &path, env, Some(nofile))
    }

    fn spawn_in(
        dir: tempfile::TempDir,
        path: &std::path::Path,
        env: &[(&str, &str)],
        nofile: Option<u64>,
    ) -> Self {
        use std::io::BufRead;
        let mut command = match nofile {
            None => std::process::Command::new(env!("CARGO_BIN_EXE_tollgate")),
            Some(n) => {
                let mut sh = std::process::Command::new("sh");
                sh.arg("-c")
                    .arg(format!("ulimit -n {n} && exec \"$0\" \"$@\""))
                    .arg(env!("CARGO_BIN_EXE_tollgate"));
                sh
            }
        };
        command
            .args(["serve", "--config"])
            .arg(path)
            .current_dir(dir.path())
            .env("TOLLGATE_LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("tollgate binary starts");
        let stderr = child.stderr.take().unwrap();
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                let _ = tx.send(line.clone());
                sink.lock().unwrap().push(line);
            }
        });
        let (mut addr, mut admin, mut tls) = (None, None, None);
        let deadline = std::time::Instant::now() + TIMEOUT;
        while addr.is_none() || admin.is_none() {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = rx.recv_timeout(left).expect("gateway logged its listeners");
            let Ok(event) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            let bound = event["addr"].as_str().and_then(|a| a.parse().ok());
            match event["message"].as_str() {
                Some("listening") => addr = bound,
                Some("admin listening") => admin = bound,
                Some("tls listening") if tls.is_none() => tls = bound,
                _ => {}
            }
        }
        Self {
            child,
            config_path: path.to_owned(),
            addr: addr.unwrap(),
            admin: admin.unwrap(),
            tls,
            logs,
            _dir: dir,
        }
    }

    /// `http://addr` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Sends a signal (`TERM`, `INT`, `HUP`) to the process.
    pub fn signal(&self, name: &str) {
        let status = std::process::Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit, within [`TIMEOUT`].
    pub fn wait_exit(&mut self) -> std::process::ExitStatus {
        let deadline = std::time::Instant::now() + TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(std::time::Instant::now() < deadline, "gateway did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A field of `/proc/<pid>/status` in KiB (`VmRSS`, `VmHWM`).
    pub fn proc_status_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("{field} in /proc status"))
    }

    /// Every log line so far.
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }
}

impl Drop for GatewayProcess {
    // Every log line a test captured is checked: no token, secret or password may appear.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            return;
        }
        for line in self.logs() {
            if let Some(leak) = leaked_secret(&line) {
                panic!("{leak} in a log line: {line}");
            }
        }
    }
}

/// Secrets the suites use, and the shape of a JWT, that must never reach a log line.
pub fn leaked_secret(line: &str) -> Option<&'static str> {
    const SECRETS: [&str; 6] = [
        SECRET,
        "hunter2-vendor-password",
        "pw-that-must-not-leak",
        "example-password",
        "metrics-password",
        "reload-pw",
    ];
    if let Some(secret) = SECRETS.iter().find(|s| line.contains(**s)) {
        return Some(secret);
    }
    // A compact JWS: base64url JSON header ("eyJ") and payload, dot-separated.
    let looks_like_jwt = line.match_indices("eyJ").any(|(i, _)| {
        let rest = &line[i..];
        let token: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            .collect();
        token.matches('.').count() >= 2 && token.len() > 40
    });
    looks_like_jwt.then_some("a JWT")
}

/// Absolute path of a test key in `tests/fixtures/keys`.
pub fn key_path(name: &str) -> String {
    format!("{}/tests/fixtures/keys/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// A 32-byte-plus HMAC secret used across the auth tests.
pub const SECRET: &str = "test-secret-that-is-long-enough-for-hs256!";

/// Seconds since the epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Claims of a user access token of issuer `iss`, valid for an hour.
pub fn access_claims(iss: &str, user: &str) -> serde_json::Value {
    serde_json::json!({
        "iss": iss, "sub": user, "user_id": user, "email": format!("{user}@example.com"),
        "role": "user", "tenant_id": "t-1", "type": "access", "exp": now() + 3600, "iat": now(),
    })
}

/// Claims of a service token of issuer `iss`, as `tollgate token issue` mints them.
pub fn service_claims(iss: &str, service: &str) -> serde_json::Value {
    serde_json::json!({
        "iss": iss, "sub": service, "user_id": service, "service": service, "type": "service",
        "is_service": true, "role": "admin", "email": format!("{service}@internal.service"),
        "exp": now() + 3600, "iat": now(), "jti": "test",
    })
}

/// The encoding key for `alg`: the shared [`SECRET`] for HS*, else the named fixture file.
pub fn encoding_key(alg: jsonwebtoken::Algorithm, key_file: &str) -> jsonwebtoken::EncodingKey {
    use jsonwebtoken::{Algorithm::*, EncodingKey};
    match alg {
        HS256 | HS384 | HS512 => EncodingKey::from_secret(SECRET.as_bytes()),
        ES256 | ES384 => {
            EncodingKey::from_ec_pem(&std::fs::read(key_path(key_file)).unwrap()).unwrap()
        }
        EdDSA => EncodingKey::from_ed_pem(&std::fs::read(key_path(key_file)).unwrap()).unwrap(),
        _ => EncodingKey::from_rsa_pem(&std::fs::read(key_path(key_file)).unwrap()).unwrap(),
    }
}

/// Signs `claims` with `alg` and the named key file (ignored for HS*).
pub fn mint(
    claims: &serde_json::Value,
    alg: jsonwebtoken::Algorithm,
    key_file: &str,
    kid: Option<&str>,
) -> String {
    let mut header = jsonwebtoken::Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &encoding_key(alg, key_file)).unwrap()
}

/// An HS256 token signed with [`SECRET`].
pub fn hs256(claims: &serde_json::Value) -> String {
    mint(claims, jsonwebtoken::Algorithm::HS256, "", None)
}

/// A JWKS server on 127.0.0.1 whose key set can be replaced or made to fail.
#[derive(Clone)]
pub struct JwksServer {
    pub addr: SocketAddr,
    document: Arc<Mutex<Option<serde_json::Value>>>,
    fetches: Arc<AtomicUsize>,
}

impl JwksServer {
    /// Serves the public halves of `keys` (kid, private key file, alg); `None` answers 500.
    pub async fn start(keys: Option<&[(&str, &str, jsonwebtoken::Algorithm)]>) -> Self {
        let document = Arc::new(Mutex::new(keys.map(Self::document)));
        let fetches = Arc::new(AtomicUsize::new(0));
        let (doc, count) = (document.clone(), fetches.clone());
        let upstream = MockUpstream::start(move |_| {
            count.fetch_add(1, Ordering::SeqCst);
            let current = doc.lock().unwrap().clone();
            async move {
                match current {
                    Some(document) => json_response(StatusCode::OK, &document),
                    None => {
                        json_response(StatusCode::INTERNAL_SERVER_ERROR, &serde_json::json!({}))
                    }
                }
            }
        })
        .await;
        Self {
            addr: upstream.addr,
            document,
            fetches,
        }
    }

    /// Builds a JWKS document from private key fixtures.
    pub fn document(keys: &[(&str, &str, jsonwebtoken::Algorithm)]) -> serde_json::Value {
        let keys: Vec<serde_json::Value> = keys
            .iter()
            .map(|(kid, file, alg)| {
                let mut jwk =
                    jsonwebtoken::jwk::Jwk::from_encoding_key(&encoding_key(*alg, file), *alg)
                        .unwrap();
                jwk.common.key_id = Some(kid.to_string());
                serde_json::to_value(jwk).unwrap()
            })
            .collect();
        serde_json::json!({ "keys": keys })
    }

    /// Replaces the key set (`None`: answer 500 from now on).
    pub fn set(&self, keys: Option<&[(&str, &str, jsonwebtoken::Algorithm)]>) {
        *self.document.lock().unwrap() = keys.map(Self::document);
    }

    /// Serves `document` as it is, however malformed.
    pub fn set_document(&self, document: serde_json::Value) {
        *self.document.lock().unwrap() = Some(document);
    }

    /// `http://addr/jwks.json`
    pub fn url(&self) -> String {
        format!("http://{}/jwks.json", self.addr)
    }

    /// How many times the key set was fetched.
    pub fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

/// How the fake vendor auth API answers.
#[derive(Clone, Debug)]
pub enum AuthReply {
    /// `{"statusCode": 200, <field>: "tok-N"}`
    Field(&'static str),
    /// `{"statusCode": 200, "accessToken": <JWT whose exp is this many seconds away>}`
    ShortLived(u64),
    /// This HTTP status with an empty JSON body.
    Status(u16),
    /// `{"statusCode": <code>, "message": "bad credentials"}` with HTTP 200.
    BodyStatus(u16),
    /// `{"statusCode": 200}` without a token.
    NoToken,
    /// Not JSON.
    Garbage,
    /// `{"statusCode": 200, "accessToken": "tok-N"}` plus these fields (e.g. `expires_in`).
    With(&'static str),
    /// `{"statusCode": 200, "accessToken": <JWT whose payload is this JSON text>}`.
    JwtPayload(&'static str),
}

/// A fake vendor auth API on 127.0.0.1 that counts logins and can be told how to answer.
#[derive(Clone)]
pub struct AuthServer {
    pub upstream: MockUpstream,
    reply: Arc<Mutex<AuthReply>>,
    delay: Arc<Mutex<Duration>>,
    issued: Arc<AtomicUsize>,
    /// (start, end) of each login, for overlap checks.
    pub windows: Arc<Mutex<Vec<(std::time::Instant, std::time::Instant)>>>,
}

impl AuthServer {
    /// Starts answering with `reply`.
    pub async fn start(reply: AuthReply) -> Self {
        let reply = Arc::new(Mutex::new(reply));
        let delay = Arc::new(Mutex::new(Duration::ZERO));
        let issued = Arc::new(AtomicUsize::new(0));
        let windows = Arc::new(Mutex::new(Vec::new()));
        let (r, d, n, w) = (
            reply.clone(),
            delay.clone(),
            issued.clone(),
            windows.clone(),
        );
        let upstream = MockUpstream::start(move |_| {
            let (r, d, n, w) = (r.clone(), d.clone(), n.clone(), w.clone());
            async move {
                let started = std::time::Instant::now();
                let wait = *d.lock().unwrap();
                tokio::time::sleep(wait).await;
                let id = n.fetch_add(1, Ordering::SeqCst) + 1;
                let reply = r.lock().unwrap().clone();
                let response = match reply {
                    AuthReply::Field(field) => json_response(
                        StatusCode::OK,
                        &serde_json::json!({"statusCode": 200, field: format!("tok-{id}")}),
                    ),
                    AuthReply::ShortLived(secs) => {
                        let token = vendor_jwt(id, now() + secs);
                        json_response(
                            StatusCode::OK,
                            &serde_json::json!({"statusCode": 200, "accessToken": token}),
                        )
                    }
                    AuthReply::Status(code) => {
                        json_response(StatusCode::from_u16(code).unwrap(), &serde_json::json!({}))
                    }
                    AuthReply::BodyStatus(code) => json_response(
                        StatusCode::OK,
                        &serde_json::json!({"statusCode": code, "message": "bad credentials"}),
                    ),
                    AuthReply::NoToken => {
                        json_response(StatusCode::OK, &serde_json::json!({"statusCode": 200}))
                    }
                    AuthReply::Garbage => {
                        Response::new(Full::new(Bytes::from_static(b"<html>oops</html>")))
                    }
                    AuthReply::With(extra) => {
                        let token = format!("tok-{id}");
                        let body =
                            format!(r#"{{"statusCode": 200, "accessToken": "{token}", {extra}}}"#);
                        Response::builder()
                            .header("content-type", "application/json")
                            .body(Full::new(Bytes::from(body)))
                            .unwrap()
                    }
                    AuthReply::JwtPayload(payload) => {
                        use base64::Engine;
                        let payload =
                            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(payload);
                        let token = format!("e30.{payload}.c2ln");
                        json_response(
                            StatusCode::OK,
                            &serde_json::json!({"statusCode": 200, "accessToken": token}),
                        )
                    }
                };
                w.lock().unwrap().push((started, std::time::Instant::now()));
                response
            }
        })
        .await;
        Self {
            upstream,
            reply,
            delay,
            issued,
            windows,
        }
    }

    /// Changes how later logins are answered.
    pub fn set(&self, reply: AuthReply) {
        *self.reply.lock().unwrap() = reply;
    }

    /// Delays every later login by `delay`.
    pub fn set_delay(&self, delay: Duration) {
        *self.delay.lock().unwrap() = delay;
    }

    /// Login requests received.
    pub fn logins(&self) -> usize {
        self.upstream.hits()
    }

    /// `http://addr/auth/login`
    pub fn url(&self) -> String {
        format!("{}/auth/login", self.upstream.url())
    }
}

/// An unsigned-looking vendor JWT with the given `exp` (the gateway only decodes it).
pub fn vendor_jwt(id: usize, exp: u64) -> String {
    use base64::Engine;
    let b64 = |v: serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    format!(
        "{}.{}.c2ln",
        b64(serde_json::json!({"alg": "HS256", "typ": "JWT"})),
        b64(serde_json::json!({"sub": format!("vendor-{id}"), "exp": exp}))
    )
}
pub mod nginx;
pub mod python;
pub mod recording;
pub mod redis;
pub mod tls;

/// Whether curl is installed: `false` after saying why, or a panic when
/// `TOLLGATE_REQUIRE_CURL=1` (set by `.ci/run`, which installs it).
pub fn has_curl() -> bool {
    let ok = std::process::Command::new("curl")
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var("TOLLGATE_REQUIRE_CURL").as_deref() != Ok("1"),
            "TOLLGATE_REQUIRE_CURL=1 but curl is not installed (apt-get install curl)"
        );
        eprintln!(
            "skipping the curl checks: curl is not installed (apt-get install curl); set TOLLGATE_REQUIRE_CURL=1 to fail instead"
        );
    }
    ok
}

/// The fenced ```toml blocks of the book's `chapter` (in `docs/src/`), in order.
pub fn book_toml_blocks(chapter: &str) -> Vec<String> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docs/src")
        .join(chapter);
    let text = std::fs::read_to_string(&path).unwrap();
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```toml") => current = Some(String::new()),
            (Some(block), "```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

/// Runs `tollgate check` on every ```toml block of the book's `chapter`, as pasted; panics
/// naming the first one refused. Returns how many blocks there were.
pub fn book_configs_pass_check(chapter: &str) -> usize {
    let blocks = book_toml_blocks(chapter);
    let dir = tempfile::tempdir().unwrap();
    for block in &blocks {
        let path = dir.path().join("config.toml");
        std::fs::write(&path, block).unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .args(["check", "--config"])
            .arg(&path)
            .current_dir(dir.path())
            .env_remove("TOLLGATE_CONFIG")
            .output()
            .expect("binary runs");
        assert!(
            out.status.success(),
            "tollgate check refused this block of {chapter}:\n{block}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    blocks.len()
}
