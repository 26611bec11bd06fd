//! Dotted claim paths (`realm_access.roles`, `resource_access."my-app".roles`) and the claim
//! rules of a route, parsed once at load time.

/// Splits a dotted claim path; a segment in double quotes may hold dots (an Auth0 namespaced
/// claim such as `"https://example.com/roles"`).
pub fn claim_path(text: &str) -> Result<Vec<String>, String> {
    let mut segments = Vec::new();
    let mut rest = text;
    loop {
        let (segment, after) = match rest.strip_prefix('"') {
            Some(quoted) => {
                let end = quoted
                    .find('"')
                    .ok_or_else(|| format!("unclosed quote in claim path {text:?}"))?;
                (&quoted[..end], &quoted[end + 1..])
            }
            None => rest.split_at(rest.find('.').unwrap_or(rest.len())),
        };
        if segment.is_empty() {
            return Err(format!("claim path {text:?} has an empty segment"));
        }
        segments.push(segment.to_owned());
        match after.strip_prefix('.') {
            Some(next) => rest = next,
            None if after.is_empty() => return Ok(segments),
            None => return Err(format!("claim path {text:?}: expected '.' after a quote")),
        }
    }
}

/// A route's `claims` rule: the claim at `path` must equal `expected` (compact JSON), or be an
/// array that contains it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimRule {
    /// The path as written in the config (the key `Grants::claim` is looked up by).
    pub key: String,
    /// The path's segments.
    pub path: Vec<String>,
    /// The required value, as compact JSON.
    pub expected: String,
    /// The required value.
    pub value: serde_json::Value,
}

/// Parses one `claims` entry; only strings, integers and booleans may be required.
pub fn claim_rule(key: &str, value: &toml::Value) -> Result<ClaimRule, String> {
    let value = match value {
        toml::Value::String(s) => serde_json::Value::from(s.as_str()),
        toml::Value::Integer(i) => serde_json::Value::from(*i),
        toml::Value::Boolean(b) => serde_json::Value::from(*b),
        _ => return Err("a required claim value is a string, an integer or a boolean".into()),
    };
    Ok(ClaimRule {
        key: key.to_owned(),
        path: claim_path(key)?,
        expected: value.to_string(),
        value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_on_dots_outside_quotes() {
        assert_eq!(claim_path("role").unwrap(), ["role"]);
        assert_eq!(
            claim_path("realm_access.roles").unwrap(),
            ["realm_access", "roles"]
        );
        assert_eq!(
            claim_path(r#"resource_access."my.app".roles"#).unwrap(),
            ["resource_access", "my.app", "roles"]
        );
        assert_eq!(
            claim_path(r#""https://example.com/roles""#).unwrap(),
            ["https://example.com/roles"]
        );
        for bad in ["", "a..b", ".a", "a.", r#""open"#, r#""a"b"#, r#""""#] {
            assert!(claim_path(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn rules_hold_compact_json() {
        let rule = claim_rule("tenant", &toml::Value::String("acme".into())).unwrap();
        assert_eq!(rule.expected, r#""acme""#);
        let rule = claim_rule("email_verified", &toml::Value::Boolean(true)).unwrap();
        assert_eq!(rule.expected, "true");
        assert!(claim_rule("x", &toml::Value::Float(1.5)).is_err());
    }
}
