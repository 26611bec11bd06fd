//! A revocation list as one read of a store found it: the entries it could read, the ones it
//! could not (skipped one by one, never failing the whole list), and the store's version.

use super::Revocation;

/// One read of a store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    /// The readable entries (expired ones included; the reader filters).
    pub revocations: Vec<Revocation>,
    /// Entries that were skipped because they could not be read.
    pub unreadable: Vec<Unreadable>,
    /// The store's version of the list (Redis), when it keeps one.
    pub version: Option<i64>,
}

/// A stored entry that is not a revocation: a hand edit, another version's format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    /// Where it is stored (the Redis hash field).
    pub field: String,
    /// Why it could not be read.
    pub reason: String,
}

impl Listing {
    /// A list with nothing skipped and no version.
    pub fn of(revocations: Vec<Revocation>) -> Self {
        Self {
            revocations,
            ..Self::default()
        }
    }

    /// Reads each `(field, JSON)` pair, keeping every entry that names exactly one target and
    /// naming the others.
    pub fn parse(fields: Vec<(String, String)>) -> Self {
        let mut listing = Self {
            revocations: Vec::with_capacity(fields.len()),
            ..Self::default()
        };
        for (field, value) in fields {
            match serde_json::from_str::<Revocation>(&value) {
                Ok(entry) if entry.names_one_target() => listing.revocations.push(entry),
                Ok(_) => listing.unreadable.push(Unreadable {
                    field,
                    reason: "names neither or both of jti and service".to_owned(),
                }),
                Err(e) => listing.unreadable.push(Unreadable {
                    field,
                    reason: e.to_string(),
                }),
            }
        }
        listing
    }

    /// The fields of the unreadable entries, for a log line.
    pub fn unreadable_fields(&self) -> Vec<&str> {
        self.unreadable.iter().map(|u| u.field.as_str()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_entry_is_named_and_the_others_are_kept() {
        let good = r#"{"jti":"a","revoked_at":1,"expires_at":2}"#;
        let listing = Listing::parse(vec![
            ("jti:a".into(), good.into()),
            ("bogus".into(), "not-json".into()),
            ("empty".into(), "{}".into()),
            (
                "both".into(),
                r#"{"jti":"b","service":"s","revoked_at":1,"expires_at":2}"#.into(),
            ),
        ]);
        assert_eq!(listing.revocations.len(), 1);
        assert_eq!(listing.revocations[0].jti.as_deref(), Some("a"));
        assert_eq!(listing.unreadable_fields(), ["bogus", "empty", "both"]);
        assert!(listing.unreadable[2].reason.contains("neither or both"));
    }
}
