//! A real nginx as a parser-differential witness: it reports what it *believes* it received
//! (Host, method, URI, forwarding and identity headers), so a test can compare the gateway's
//! reading of a hostile request with a widely deployed backend's.
//!
//! Two virtual servers share one port: `admin.example.com` and a default server. Both answer
//! every request `200` with a JSON body of nginx's variables, and log the same fields, JSON
//! escaped, one object per line, to `access.log` (the body is not escaped, so a value holding a
//! quote breaks it; use [`Nginx::log_lines`] then). Headers are reported leniently, as a backend
//! with `ignore_invalid_headers off; underscores_in_headers on;` sees them.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const NGINX: &str = "/usr/sbin/nginx";

/// The fields nginx reports, as `"name":"$variable"` pairs (without braces).
const FIELDS: &str = r#""client_verify":"$ssl_client_verify","client_s_dn":"$ssl_client_s_dn","host":"$host","http_host":"$http_host","method":"$request_method","uri":"$uri","args":"$args","request_uri":"$request_uri","content_length":"$content_length","xff":"$http_x_forwarded_for","x_real_ip":"$http_x_real_ip","forwarded":"$http_forwarded","x_original_url":"$http_x_original_url","x_user_id":"$http_x_user_id","x_service_name":"$http_x_service_name","authorization":"$http_authorization","upgrade":"$http_upgrade","cookie":"$http_cookie","x_http_method_override":"$http_x_http_method_override""#;

/// A running nginx, killed on drop.
pub struct Nginx {
    pub addr: SocketAddr,
    child: Child,
    dir: tempfile::TempDir,
}

impl Nginx {
    /// Starts nginx on a free port of 127.0.0.1 and waits until it accepts connections.
    /// Without nginx installed: `None` after saying why, or a panic if `TOLLGATE_REQUIRE_NGINX=1`.
    pub fn start() -> Option<Nginx> {
        Self::start_serving("", "")
    }

    /// Like [`Nginx::start`], listening with `listen` parameters (e.g. `" ssl"`) and the extra
    /// `directives` in both servers (e.g. certificates, `ssl_verify_client on`).
    pub fn start_serving(listen: &str, directives: &str) -> Option<Nginx> {
        Self::start_config(listen, directives, None)
    }

    /// Starts nginx with `servers` (one or more `server { ... }` blocks, `PORT` standing for the
    /// chosen port, `DIR` for its directory) instead of the two reporting servers.
    pub fn start_with_servers(servers: &str) -> Option<Nginx> {
        Self::start_config("", "", Some(servers))
    }

    fn start_config(listen: &str, directives: &str, servers: Option<&str>) -> Option<Nginx> {
        if !Path::new(NGINX).exists() {
            assert!(
                std::env::var("TOLLGATE_REQUIRE_NGINX").as_deref() != Ok("1"),
                "TOLLGATE_REQUIRE_NGINX=1 but {NGINX} does not exist (apt-get install nginx)"
            );
            eprintln!(
                "skipping: nginx is not installed (apt-get install nginx); set TOLLGATE_REQUIRE_NGINX=1 to fail instead"
            );
            return None;
        }
        // The port is free when chosen but may be taken before nginx binds it: retry then.
        for _ in 0..5 {
            if let Some(nginx) = Self::try_start(listen, directives, servers) {
                return Some(nginx);
            }
        }
        panic!("nginx could not bind a free port in 5 attempts");
    }

    /// One attempt; `None` if the port was taken, a panic on any other failure.
    fn try_start(listen: &str, directives: &str, servers: Option<&str>) -> Option<Nginx> {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let d = dir.path().display();
        std::fs::write(
            dir.path().join("nginx.conf"),
            config(&d.to_string(), port, listen, directives, servers),
        )
        .unwrap();
        let out = |name: &str| Stdio::from(std::fs::File::create(dir.path().join(name)).unwrap());
        let child = Command::new(NGINX)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(dir.path().join("nginx.conf"))
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .stdin(Stdio::null())
            .stdout(out("stdout.log"))
            .stderr(out("stderr.log"))
            .spawn()
            .expect("nginx starts");
        // From here the child is killed on drop, even if we panic below.
        let mut nginx = Nginx { addr, child, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Some(nginx);
            }
            if let Some(status) = nginx.child.try_wait().unwrap() {
                let log = nginx.error_log();
                if log.contains("Address already in use") {
                    return None;
                }
                panic!("nginx exited ({status}) before listening on {addr}:\n{log}");
            }
            if Instant::now() > deadline {
                panic!(
                    "nginx did not listen on {addr} within 10 s:\n{}",
                    nginx.error_log()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `http://addr`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// nginx's `error.log` (level `info`: it names why a request was rejected) and stderr.
    pub fn error_log(&self) -> String {
        let read = |name| std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        format!("{}{}", read("error.log"), read("stderr.log"))
    }

    /// Every access log entry so far, one JSON object per request: the [`FIELDS`] plus
    /// `server` (`admin`/`default`), `status` and `request` (the request line).
    pub fn log_lines(&self) -> Vec<serde_json::Value> {
        let bytes = std::fs::read(self.dir.path().join("access.log")).unwrap_or_default();
        // escape=json passes bytes >= 0x80 through; lossy UTF-8 keeps each line valid JSON.
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("log line ({e}): {l}")))
            .collect()
    }

    /// Sends `request` as-is over a new connection, half-closes it, and returns everything
    /// nginx answered until it closed (or 5 s passed), as lossy UTF-8.
    pub async fn raw(&self, request: &[u8]) -> String {
        let limit = Duration::from_secs(5);
        let mut stream = tokio::time::timeout(limit, TcpStream::connect(self.addr))
            .await
            .expect("connect to nginx timed out")
            .expect("connect to nginx");
        tokio::time::timeout(limit, stream.write_all(request))
            .await
            .expect("write to nginx timed out")
            .expect("write to nginx");
        let _ = stream.shutdown().await;
        let mut reply = Vec::new();
        let deadline = tokio::time::Instant::now() + limit;
        let mut buf = [0u8; 8192];
        // A reset after nginx answered ends the reply like EOF does.
        while let Ok(Ok(n @ 1..)) = tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            reply.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&reply).into_owned()
    }

    /// The JSON body of the first response in a raw reply: what nginx believed. `None` for an
    /// nginx error page, or if a hostile value put a quote in the (unescaped) body.
    pub fn believed(reply: &str) -> Option<serde_json::Value> {
        let (_, body) = reply.split_once("\r\n\r\n")?;
        serde_json::Deserializer::from_str(body)
            .into_iter()
            .next()?
            .ok()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether this process runs as root (effective uid 0), from `/proc/self/status`.
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let uids = s.lines().find_map(|l| l.strip_prefix("Uid:"))?.to_owned();
            uids.split_whitespace().nth(1).map(|euid| euid == "0")
        })
        .unwrap_or(false)
}

/// The nginx configuration: everything under `dir`, both servers on `port`.
fn config(
    dir: &str,
    port: u16,
    listen_with: &str,
    directives: &str,
    servers: Option<&str>,
) -> String {
    let user = if is_root() { "user root;\n" } else { "" };
    let server = |name: &str, listen: &str, label: &str| {
        format!(
            r#"    server {{
        listen 127.0.0.1:{port}{listen}{listen_with};
        server_name {name};
        access_log {dir}/access.log believed;
        {directives}
        location / {{
            return 200 '{{"server":"{label}",{FIELDS}}}';
        }}
    }}
"#
        )
    };
    format!(
        r#"{user}daemon off;
master_process off;
worker_processes 1;
error_log {dir}/error.log info;
pid {dir}/nginx.pid;
events {{
    worker_connections 64;
}}
http {{
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    access_log off;
    default_type application/json;
    client_max_body_size 1m;
    ignore_invalid_headers off;
    underscores_in_headers on;
    map $server_name $believed_server {{
        admin.example.com admin;
        default default;
    }}
    log_format believed escape=json '{{"server":"$believed_server","status":"$status","request":"$request",{FIELDS}}}';
{}}}
"#,
        match servers {
            Some(custom) => custom
                .replace("PORT", &port.to_string())
                .replace("DIR", dir),
            None =>
                server("_", " default_server", "default")
                    + &server("admin.example.com", "", "admin"),
        }
    )
}
