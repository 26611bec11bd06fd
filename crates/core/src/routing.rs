//! The route table: which route a normalised path and host select.
//!
//! The path is normalised once, before routing; that one string is what routes match, what
//! policies judge and what is forwarded, so what was authorized is exactly what the upstream
//! receives.

use std::borrow::Cow;
use std::sync::Arc;

use tollgate_config::Route;
pub use tollgate_http::path::{PathError, normalize_path};

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
    use std::time::Duration;
    use tollgate_config::Upstream;

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
            upstream_protocol: tollgate_config::UpstreamProtocol::Auto,
            upgrades: Vec::new(),
            allow_token_cookie: false,
            policy: tollgate_auth::policy::RoutePolicy::public(),
            upstream_auth: None,
            sends_identity: true,
            sends_forwarded: true,
            identity_assertion: false,
            forward_client_cert: false,
            rate_limits: Vec::new(),
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
