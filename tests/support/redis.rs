//! A real redis-server on a free 127.0.0.1 port, for the fleet tests; skips with a printed
//! reason when it is not installed (unless `TOLLGATE_REQUIRE_REDIS=1`, set by `.ci/run`).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const REDIS: &str = "redis-server";

/// A running redis-server; killed when dropped.
pub struct Redis {
    child: Option<Child>,
    pub addr: SocketAddr,
    /// Where it also serves TLS, when started with [`Redis::start_tls`].
    pub tls_addr: Option<SocketAddr>,
    extra: Vec<String>,
    dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Redis {
    /// Starts one, or `None` after saying why (redis-server not installed).
    pub fn start() -> Option<Self> {
        Self::start_with(None)
    }

    /// Starts one that also serves TLS (its own, OpenSSL-based) with `certs`' leaf.
    pub fn start_tls(certs: &super::tls::TestCerts) -> Option<Self> {
        Self::start_with(Some(certs))
    }

    fn start_with(certs: Option<&super::tls::TestCerts>) -> Option<Self> {
        let installed = Command::new(REDIS)
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !installed {
            assert!(
                std::env::var("TOLLGATE_REQUIRE_REDIS").as_deref() != Ok("1"),
                "TOLLGATE_REQUIRE_REDIS=1 but {REDIS} is not installed (apt-get install redis-server)"
            );
            eprintln!(
                "skipping: {REDIS} is not installed (apt-get install redis-server); set TOLLGATE_REQUIRE_REDIS=1 to fail instead"
            );
            return None;
        }
        let tls_addr = certs.map(|_| SocketAddr::from(([127, 0, 0, 1], free_port())));
        let extra = match (certs, tls_addr) {
            (Some(certs), Some(tls)) => vec![
                "--tls-port".to_owned(),
                tls.port().to_string(),
                "--tls-cert-file".to_owned(),
                certs.cert_file.display().to_string(),
                "--tls-key-file".to_owned(),
                certs.key_file.display().to_string(),
                "--tls-ca-cert-file".to_owned(),
                certs.ca_file.display().to_string(),
                "--tls-auth-clients".to_owned(),
                "no".to_owned(),
            ],
            _ => Vec::new(),
        };
        let mut redis = Self {
            child: None,
            addr: SocketAddr::from(([127, 0, 0, 1], free_port())),
            tls_addr,
            extra,
            dir: tempfile::tempdir().unwrap(),
        };
        redis.spawn();
        Some(redis)
    }

    fn spawn(&mut self) {
        let child = Command::new(REDIS)
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &self.addr.port().to_string(),
            ])
            .args([
                "--save",
                "",
                "--appendonly",
                "no",
                "--dbfilename",
                "dump.rdb",
            ])
            .arg("--dir")
            .arg(self.dir.path())
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.command("PING") != "+PONG" {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `rediss://127.0.0.1:tls-port/0`
    pub fn tls_url(&self) -> String {
        format!(
            "rediss://{}/0",
            self.tls_addr.expect("started with start_tls")
        )
    }

    /// `redis://127.0.0.1:port/0`
    pub fn url(&self) -> String {
        format!("redis://{}/0", self.addr)
    }

    /// Sends one inline command; returns the first reply line ("" when unreachable).
    pub fn command(&self, command: &str) -> String {
        self.reply(command)
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned()
    }

    /// The value of a bulk-string reply (`GET key`), `None` for a nil one.
    pub fn bulk(&self, command: &str) -> Option<String> {
        let reply = self.reply(command);
        let (head, rest) = reply.split_once("\r\n")?;
        head.starts_with('$')
            .then(|| head[1..].parse::<usize>().ok())
            .flatten()
            .map(|len| rest[..len.min(rest.len())].to_owned())
    }

    fn reply(&self, command: &str) -> String {
        let Ok(mut stream) = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1)) else {
            return String::new();
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        if stream
            .write_all(format!("{command}\r\n").as_bytes())
            .is_err()
        {
            return String::new();
        }
        let mut buf = [0u8; 8192];
        let n = stream.read(&mut buf).unwrap_or(0);
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }

    /// Saves its data and stops (an outage that loses nothing).
    pub fn stop(&mut self) {
        let _ = self.command("SHUTDOWN SAVE");
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
    }

    /// Starts again on the same port with the saved data.
    pub fn restart(&mut self) {
        self.spawn();
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
