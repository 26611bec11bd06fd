//! What a configuration error says: the file, the key path and why.

/// A configuration error, with the file and the key path it concerns.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{file}: cannot read: {source}")]
    Read {
        /// The config file.
        file: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error("{file}: invalid TOML: {message}")]
    Syntax {
        /// The config file.
        file: String,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A value is missing, of the wrong type or out of range.
    #[error("{file}: {key}: {reason}")]
    Invalid {
        /// The config file.
        file: String,
        /// Where in the file, e.g. `routes[2].upstream`.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// The TOML table of config text `file`, or why it is not TOML (here for the same reason as
/// [`invalid`]: `listeners` reads one value of a file without importing `validate`).
pub(crate) fn parse_table(text: &str, file: &str) -> Result<toml::Table, ConfigError> {
    toml::from_str(text).map_err(|e| ConfigError::Syntax {
        file: file.to_owned(),
        message: e.to_string().trim().to_owned(),
    })
}

/// The [`ConfigError::Invalid`] for `key` in `file`. Here rather than in `validate` so that the
/// section modules `validate` calls can build it without importing `validate` back.
pub(crate) fn invalid(file: &str, key: &str, reason: impl std::fmt::Display) -> ConfigError {
    ConfigError::Invalid {
        file: file.to_owned(),
        key: key.to_owned(),
        reason: reason.to_string(),
    }
}

/// `value`, refused at `key` when zero (an interval of nothing would spin).
pub(crate) fn positive(
    file: &str,
    key: &str,
    value: std::time::Duration,
) -> Result<std::time::Duration, ConfigError> {
    if value.is_zero() {
        return Err(invalid(file, key, "must be more than 0s"));
    }
    Ok(value)
}

/// A refused value inside one section, before the section's place in the file is known: the
/// validators of `[[issuers]]`, `[[providers]]`, `[assertion]` and `[server.tls]` return it, and
/// their caller puts the key under the section's path and names the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// The key path: relative to the section the validator was given (`public_keys[0].pem_file`),
    /// or whole when the validator knows its section's place (`server.tls.listen`).
    pub key: String,
    /// What is wrong with it.
    pub reason: String,
}

impl Invalid {
    /// The error for `key`.
    pub fn new(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            reason: reason.into(),
        }
    }

    /// The same error, its key under `prefix` (`signing_keys[1]` and `kid` give
    /// `signing_keys[1].kid`).
    pub fn under(self, prefix: &str) -> Self {
        Self {
            key: format!("{prefix}.{}", self.key),
            reason: self.reason,
        }
    }

    /// The [`ConfigError`] it is in `file`.
    pub fn in_file(self, file: &str) -> ConfigError {
        ConfigError::Invalid {
            file: file.to_owned(),
            key: self.key,
            reason: self.reason,
        }
    }
}
