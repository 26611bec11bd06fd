//! Third-party checks written in Python (prometheus_client, PyJWT, ...): run a script with
//! the interpreter `.ci/run` prepared, or skip with a printed reason when a module is missing.

use std::io::Write;
use std::process::{Command, Stdio};

/// The interpreter: `TOLLGATE_PYTHON`, else `python3`.
fn python() -> String {
    std::env::var("TOLLGATE_PYTHON").unwrap_or_else(|_| "python3".to_owned())
}

/// Whether `module` can be imported. Without it: `false` after saying why, or a panic when
/// `TOLLGATE_REQUIRE_PYTHON=1` (set by `.ci/run`, which installs the modules).
pub fn has_module(module: &str, install: &str) -> bool {
    let ok = Command::new(python())
        .args(["-c", &format!("import {module}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var("TOLLGATE_REQUIRE_PYTHON").as_deref() != Ok("1"),
            "TOLLGATE_REQUIRE_PYTHON=1 but Python module {module} is missing (pip install {install})"
        );
        eprintln!(
            "skipping: Python module {module} is not installed (pip install {install}); set TOLLGATE_REQUIRE_PYTHON=1 to fail instead"
        );
    }
    ok
}

/// Runs `script` with `stdin` as its input; returns stdout, panicking with stderr on failure.
pub fn run(script: &str, stdin: &[u8]) -> String {
    let mut child = Command::new(python())
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python starts");
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "python failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A command that runs the script at `path` (relative to the repository) with the interpreter.
pub fn script(path: &str) -> Command {
    let mut command = Command::new(python());
    command.arg(format!("{}/{path}", env!("CARGO_MANIFEST_DIR")));
    command
}

/// A Python server started from a script that prints its port on its first line (and may go
/// on printing); killed when dropped. Its stdin stays open, for scripts that serve until it
/// closes.
pub struct Server {
    child: std::process::Child,
    /// The port it printed.
    pub port: u16,
}

impl Server {
    /// Starts `script` with `args`; returns the server and the rest of its output, line by line.
    pub fn start(
        script: &str,
        args: &[&std::path::Path],
    ) -> (
        Self,
        std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
    ) {
        use std::io::BufRead;
        let mut child = self::script(script)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python starts");
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().and_then(Result::ok).unwrap_or_default();
        let port = first
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{script} printed {first:?}, not its port"));
        (Self { child, port }, lines)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
