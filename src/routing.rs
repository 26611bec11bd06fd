//! Path normalisation and the route table.
//!
//! The path is normalised once, before routing; that one string is what routes match, what
//! policies judge and what is forwarded, so what was authorized is exactly what the upstream
//! receives.

use std::borrow::Cow;
use std::sync::Arc;

use crate::config::Route;

/// Why a request path was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// Not an absolute path (`*`, empty, or relative).
    #[error("path must start with '/'")]
    NotAbsolute,
    /// `%2F` or `%5C`: an encoded separator would be read differently by different servers.
    #[error("encoded '/' or '\\' in path")]
    EncodedSeparator,
    /// A raw backslash, which some backends treat as a separator.
    #[error("backslash in path")]
    Backslash,
    /// `%00` or a raw control character.
    #[error("NUL or control character in path")]
    ControlCharacter,
    /// `%` not followed by two hex digits.
    #[error("malformed percent-encoding in path")]
    BadPercentEncoding,
    /// `..` past the root.
    #[error("path climbs above the root")]
    AboveRoot,
    /// A `;` parameter: servlet containers and others strip `;...` from segments, so
    /// `/internal;x/y` would reach them as `/internal/y` while matching no `/internal` route.
    #[error("path parameters (';') are not allowed")]
    PathParameter,
}

/// Normalises a request path (RFC 3986 §6.2.2): decodes percent-encoded unreserved characters,
/// upper-cases the remaining escapes, merges repeated slashes and resolves dot segments (§5.2.4).
pub fn normalize_path(path: &str) -> Result<Cow<'_, str>, PathError> {
    if !path.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    let bytes = path.as_bytes();
    if bytes.iter().any(|&b| b < 0x20 || b == 0x7f) {
        return Err(PathError::ControlCharacter);
    }
    if bytes.contains(&b'\\') {
        return Err(PathError::Backslash);
    }
    if bytes.contains(&b';') {
        return Err(PathError::PathParameter);
    }
    let needs_work = bytes.contains(&b'%') || path.contains("//") || path.contains("/.");
    if !needs_work {
        return Ok(Cow::Borrowed(path));
    }
    let decoded = decode_unreserved(bytes)?;
    Ok(Cow::Owned(remove_dot_segments(&decoded)?))
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn decode_unreserved(bytes: &[u8]) -> Result<String, PathError> {
    let mut out = String::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b != b'%' {
            out.push(b as char);
            i += 1;
            continue;
        }
        let (Some(hi), Some(lo)) = (
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) else {
            return Err(PathError::BadPercentEncoding);
        };
        let value = hi << 4 | lo;
        match value {
            b'/' | b'\\' => return Err(PathError::EncodedSeparator),
            0..0x20 | 0x7f => return Err(PathError::ControlCharacter),
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(value as char)
            }
            _ => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                out.push('%');
                out.push(HEX[(value >> 4) as usize] as char);
                out.push(HEX[(value & 0xf) as usize] as char);
            }
        }
        i += 3;
    }
    Ok(out)
}

fn remove_dot_segments(path: &str) -> Result<String, PathError> {
    let mut segments: Vec<&str> = Vec::new();
    let mut trailing_slash = false;
    for segment in path.split('/').skip(1) {
        trailing_slash = false;
        match segment {
            "" => trailing_slash = true,
            "." => trailing_slash = true,
            ".." => {
                segments.pop().ok_or(PathError::AboveRoot)?;
                trailing_slash = true;
            }
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(path.len());
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    if trailing_slash || segments.is_empty() {
        out.push('/');
    }
    Ok(out)
}

/// Routes ordered for matching: longest prefix first, host-specific before any-host.
#[derive(Debug, Clone)]
pub struct RouteTable {
    routes: Vec<Arc<Route>>,
}

impl RouteTable {
    /// Builds the table from validated routes.
    pub fn new(routes: &[Arc<Route>]) -> Self {
        let mut routes = routes.to_vec();
        routes.sort_by(|a, b| {
            b.prefix
                .len()
                .cmp(&a.prefix.len())
                .then(b.host.is_some().cmp(&a.host.is_some()))
        });
        Self { routes }
    }

    /// The route for a canonical host name (lower case, no port: see
    /// [`crate::core::host`]) and an already-normalised `path`.
    pub fn find(&self, host: Option<&str>, path: &str) -> Option<&Arc<Route>> {
        self.routes.iter().find(|route| {
            let host_ok = match (&route.host, host) {
                (None, _) => true,
                (Some(want), Some(got)) => want == got,
                (Some(_), None) => false,
            };
            host_ok && prefix_matches(&route.prefix, path)
        })
    }

    /// Why `route` does not take a request for `host` and `path` (`None`: it does).
    pub fn mismatch(route: &Route, host: Option<&str>, path: &str) -> Option<String> {
        match (&route.host, host) {
            (Some(want), Some(got)) if want != got => {
                return Some(format!("host {want} is not {got}"));
            }
            (Some(want), None) => return Some(format!("host {want}, and the request has none")),
            _ => {}
        }
        (!prefix_matches(&route.prefix, path)).then(|| {
            format!(
                "prefix {} does not match {path}",
                if route.prefix.is_empty() {
                    "/"
                } else {
                    &route.prefix
                }
            )
        })
    }

    /// The routes in matching order.
    pub fn routes(&self) -> &[Arc<Route>] {
        &self.routes
    }
}

/// Segment-aware prefix match: `/api` matches `/api` and `/api/x`, not `/apix`. ASCII case is
/// ignored, so `/API/x` is judged by the `/api` route's policy: an upstream that treats paths
/// case-insensitively must not be reachable around it.
fn prefix_matches(prefix: &str, path: &str) -> bool {
    let (path, prefix) = (path.as_bytes(), prefix.as_bytes());
    path.len() >= prefix.len()
        && path[..prefix.len()].eq_ignore_ascii_case(prefix)
        && (path.len() == prefix.len() || path[prefix.len()] == b'/')
}

/// The path to forward for `route`: the prefix rewritten if the route says so.
pub fn forward_path<'a>(route: &Route, path: &'a str) -> Cow<'a, str> {
    match &route.rewrite {
        None => Cow::Borrowed(path),
        Some(replacement) => {
            let rest = &path[route.prefix.len()..];
            let mut out = String::with_capacity(replacement.len() + rest.len() + 1);
            out.push_str(replacement);
            out.push_str(rest);
            if !out.starts_with('/') {
                out.insert(0, '/');
            }
            Cow::Owned(out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Upstream;
    use std::time::Duration;

    #[test]
    fn normalises() {
        let cases = [
            ("/a/b", "/a/b"),
            ("/", "/"),
            ("//a///b", "/a/b"),
            ("/a/./b/../c", "/a/c"),
            ("/a/b/..", "/a/"),
            ("/a/%62%2d", "/a/b-"),
            ("/a/%2e%2E/x", "/x"),
            ("/a/%7e%41", "/a/~A"),
            ("/a/%c3%a9", "/a/%C3%A9"),
            ("/a/", "/a/"),
            ("/.", "/"),
        ];
        for (input, want) in cases {
            assert_eq!(normalize_path(input).unwrap(), want, "{input}");
        }
        assert!(matches!(normalize_path("/a/b"), Ok(Cow::Borrowed(_))));
    }

    #[test]
    fn refuses_dangerous_paths() {
        let cases = [
            ("/a%2fb", PathError::EncodedSeparator),
            ("/a%5Cb", PathError::EncodedSeparator),
            ("/a\\b", PathError::Backslash),
            ("/a%00", PathError::ControlCharacter),
            ("/a%0d%0a", PathError::ControlCharacter),
            ("/a%zz", PathError::BadPercentEncoding),
            ("/a%4", PathError::BadPercentEncoding),
            ("/..", PathError::AboveRoot),
            ("/a/../../b", PathError::AboveRoot),
            ("/%2e%2e/x", PathError::AboveRoot),
            ("*", PathError::NotAbsolute),
            ("/internal;x/y", PathError::PathParameter),
            ("/a;", PathError::PathParameter),
        ];
        for (input, want) in cases {
            assert_eq!(normalize_path(input), Err(want), "{input}");
        }
    }

    fn route(prefix: &str, host: Option<&str>, name: &str) -> Arc<Route> {
        Arc::new(Route {
            index: 0,
            upstream_tls: None,
            name: name.into(),
            prefix: prefix.into(),
            host: host.map(Into::into),
            upstream: Upstream::Echo,
            rewrite: None,
            timeout: Duration::from_secs(1),
            max_body_bytes: 0,
            max_requests: None,
            preserve_host: false,
            upgrades: Vec::new(),
            allow_token_cookie: false,
            policy: crate::auth::policy::RoutePolicy {
                policy: crate::auth::policy::Policy::Public,
                services: Vec::new(),
                roles: Vec::new(),
                allow_cors_preflight: false,
                forward_authorization: false,
                issuers: Vec::new(),
                credentials: Default::default(),
            },
            upstream_auth: None,
            sends_identity: true,
            sends_forwarded: true,
            identity_assertion: false,
        })
    }

    #[test]
    fn longest_segment_prefix_wins() {
        let table = RouteTable::new(&[
            route("", None, "root"),
            route("/api", None, "api"),
            route("/api/v2", None, "v2"),
            route("/api", Some("example.com"), "api-host"),
        ]);
        let name = |host, path| table.find(host, path).map(|r| &*r.name);
        assert_eq!(name(None, "/api/v2/x"), Some("v2"));
        assert_eq!(name(None, "/api/v2"), Some("v2"));
        assert_eq!(name(None, "/api/v20"), Some("api"));
        assert_eq!(name(None, "/apix"), Some("root"));
        assert_eq!(
            name(None, "/API/V2/x"),
            Some("v2"),
            "case variants match their route"
        );
        assert_eq!(name(Some("example.com"), "/api/x"), Some("api-host"));
        assert_eq!(name(Some("other.com"), "/api"), Some("api"));
    }

    #[test]
    fn rewrites_prefix() {
        let mut r = (*route("/api", None, "api")).clone();
        r.rewrite = Some(String::new());
        assert_eq!(forward_path(&r, "/api/x"), "/x");
        assert_eq!(forward_path(&r, "/api"), "/");
        r.rewrite = Some("/v1".into());
        assert_eq!(forward_path(&r, "/api/x?"), "/v1/x?");
    }
}
