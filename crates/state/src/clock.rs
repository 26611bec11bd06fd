//! The one wall clock of the state stores, the CLI and the console: whole seconds since the Unix
//! epoch, the unit of JWT `exp`/`iat` and of every stored time.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch (0 if the system clock is before it).
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
