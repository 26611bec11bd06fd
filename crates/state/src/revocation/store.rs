//! The embedded state store: one JSON file, written whole by `tollgate token revoke` under an
//! exclusive lock and replaced by an atomic rename, so a gateway reading it never sees half a
//! list (the usage log uses the same file discipline, see [`rewrite`]). Chosen over an embedded database: no dependency, nothing to migrate, readable with
//! `cat`, and readers need no lock (redb and SQLite would tie the file to one writer process or
//! add a C library for what is a short list).

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::Revocation;
use super::listing::Listing;

/// Why the store could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file (or its lock or temporary file) could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The shared store did not answer.
    #[error("state store {store} unavailable: {reason}")]
    Unavailable {
        /// Which store (its URL, without credentials).
        store: String,
        /// Why.
        reason: String,
    },
    /// The file is not a revocation list.
    #[error("{path}: not a revocation list: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
}

#[derive(Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Document {
    /// In a replica's copy of a Redis list: the version it was read at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    version: Option<i64>,
    revocations: Vec<Revocation>,
}

/// The revocations in the file; a missing file is an empty list.
pub fn read(path: &Path) -> Result<Vec<Revocation>, StoreError> {
    read_copy(path).map(|listing| listing.revocations)
}

fn validate(path: &Path, document: &Document) -> Result<(), StoreError> {
    if document.revocations.iter().any(|r| !r.names_one_target()) {
        return Err(StoreError::Invalid {
            path: path.to_owned(),
            reason: "each revocation names exactly one of jti or service".to_owned(),
        });
    }
    Ok(())
}

/// Replaces the list in the file with `listing`'s readable entries and version (a replica's
/// copy of the shared list).
pub fn replace_copy(path: &Path, listing: &Listing) -> Result<(), StoreError> {
    rewrite(path, |document: &mut Document| {
        document.revocations = listing.revocations.clone();
        document.version = listing.version;
        Ok(())
    })
    .map(|_| ())
}

/// A replica's copy of the shared list, with the version it was read at.
pub fn read_copy(path: &Path) -> Result<Listing, StoreError> {
    let document: Document = read_json(path)?.unwrap_or_default();
    validate(path, &document)?;
    Ok(Listing {
        revocations: document.revocations,
        unreadable: Vec::new(),
        version: document.version,
    })
}

/// Adds `revocation` and drops those expired at `now`; returns the list written.
pub fn add(path: &Path, revocation: Revocation, now: u64) -> Result<Vec<Revocation>, StoreError> {
    let document = rewrite(path, |document: &mut Document| {
        validate(path, document)?;
        document
            .revocations
            .retain(|r| r.expires_at > now && *r != revocation);
        document.revocations.push(revocation);
        Ok(())
    })?;
    Ok(document.revocations)
}

/// Reads the JSON document at `path` (missing: the default), lets `change` modify it and
/// writes it back; returns what was written. Writers on one machine take turns under an
/// exclusive lock so none loses another's change; readers never see half a file, since the
/// new one replaces the old by an atomic rename.
pub fn rewrite<D>(
    path: &Path,
    change: impl FnOnce(&mut D) -> Result<(), StoreError>,
) -> Result<D, StoreError>
where
    D: Default + Serialize + for<'de> Deserialize<'de>,
{
    let io = |p: &Path| {
        let p = p.to_owned();
        move |source| StoreError::Io { path: p, source }
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
    }
    let lock_path = path.with_extension("lock");
    let lock = std::fs::File::create(&lock_path).map_err(io(&lock_path))?;
    lock.lock().map_err(io(&lock_path))?;
    let mut document: D = read_json(path)?.unwrap_or_default();
    change(&mut document)?;
    let text = serde_json::to_vec_pretty(&document).map_err(|e| StoreError::Invalid {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    let temporary = path.with_extension("tmp");
    let mut file = std::fs::File::create(&temporary).map_err(io(&temporary))?;
    file.write_all(&text)
        .and_then(|()| file.write_all(b"\n"))
        .and_then(|()| file.sync_all())
        .map_err(io(&temporary))?;
    std::fs::rename(&temporary, path).map_err(io(path))?;
    Ok(document)
}

/// The JSON document at `path`; `None` when there is no file.
pub fn read_json<D: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<D>, StoreError> {
    let text = match std::fs::read(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(StoreError::Io {
                path: path.to_owned(),
                source,
            });
        }
    };
    serde_json::from_slice(&text)
        .map(Some)
        .map_err(|e| StoreError::Invalid {
            path: path.to_owned(),
            reason: e.to_string(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn by_jti(jti: &str, until: u64) -> Revocation {
        Revocation {
            jti: Some(jti.into()),
            service: None,
            revoked_at: 1,
            expires_at: until,
            reason: Some("leaked".into()),
        }
    }

    #[test]
    fn adding_keeps_the_list_small_and_the_file_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/revocations.json");
        assert!(
            read(&path).unwrap().is_empty(),
            "a missing file is an empty list"
        );
        add(&path, by_jti("a", 100), 10).unwrap();
        add(&path, by_jti("b", 20), 10).unwrap();
        add(&path, by_jti("a", 100), 10).unwrap();
        assert_eq!(
            read(&path).unwrap().len(),
            2,
            "the same revocation is stored once"
        );
        // Later, "b" could not be valid any more: it is dropped at the next write.
        let written = add(&path, by_jti("c", 100), 50).unwrap();
        let jtis: Vec<_> = written.iter().filter_map(|r| r.jti.as_deref()).collect();
        assert_eq!(jtis, ["a", "c"]);
        std::fs::write(
            &path,
            b"{\"revocations\":[{\"revoked_at\":1,\"expires_at\":2}]}",
        )
        .unwrap();
        assert!(
            read(&path)
                .unwrap_err()
                .to_string()
                .contains("exactly one of jti or service")
        );
    }
}
