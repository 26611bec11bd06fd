//! Live reload: the config file is re-read on SIGHUP and whenever its content changes.
//!
//! The file is polled rather than watched with inotify: Kubernetes updates a mounted ConfigMap
//! by swapping a `..data` symlink, which inotify on the file itself misses, while re-reading the
//! path (following links) sees the new content whatever way it was replaced.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tracing::{error, info};

use crate::start::RunningGateway;
use tollgate_config::{Config, Env};

/// How often the config file is checked for changes.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Detects changes of a config file's content.
#[derive(Debug)]
pub struct ConfigWatcher {
    path: PathBuf,
    last: Option<Vec<u8>>,
    interval: Duration,
}

impl ConfigWatcher {
    /// Watches `path`, taking its current content as the baseline.
    pub fn new(path: &Path, interval: Duration) -> Self {
        Self {
            path: path.to_owned(),
            last: std::fs::read(path).ok(),
            interval,
        }
    }

    /// Resolves when the content differs from the last one seen (a missing file is no change:
    /// a swap in progress is not a new config).
    pub async fn changed(&mut self) {
        loop {
            tokio::time::sleep(self.interval).await;
            if let Ok(content) = std::fs::read(&self.path)
                && self.last.as_ref() != Some(&content)
            {
                self.last = Some(content);
                return;
            }
        }
    }

    /// Takes the file's current content as seen, so that a reload made for another reason
    /// (SIGHUP right after an edit) is not followed by a second one for the same content.
    pub fn mark_current(&mut self) {
        self.last = std::fs::read(&self.path).ok();
    }
}

/// Loads and validates the file, then applies it; a config that fails validation is rejected
/// with a logged error and the current one keeps serving. Returns whether it was applied.
pub fn reload_from_file(running: &RunningGateway, path: &Path, trigger: &str) -> bool {
    let env = Env::from_process();
    match Config::load(path, &env) {
        Ok(config) => {
            info!(trigger, "reloading config");
            running.reload(config);
            true
        }
        Err(e) => {
            error!(trigger, error = %e, "config reload rejected; the current config keeps serving");
            false
        }
    }
}
