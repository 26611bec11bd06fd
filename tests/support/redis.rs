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
    dir: tempfile::TempDir,
}

impl Redis {
    /// Starts one, or `None` after saying why (redis-server not installed).
    pub fn start() -> Option<Self> {
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
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut redis = Self {
            child: None,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
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

    /// `redis://127.0.0.1:port/0`
    pub fn url(&self) -> String {
        format!("redis://{}/0", self.addr)
    }

    /// Sends one inline command; returns the first reply line ("" when unreachable).
    pub fn command(&self, command: &str) -> String {
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
        let mut buf = [0u8; 512];
        let n = stream.read(&mut buf).unwrap_or(0);
        String::from_utf8_lossy(&buf[..n])
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned()
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
