//! Where a route forwards to and what it sends there: the upstream, its TLS, the rewritten
//! path, upgrades, the vendor credential and the identity assertion.

use std::sync::Arc;

use http::Uri;
use http::uri::{Authority, Scheme};

use super::{RawRoute, Route, clean_prefix};
use crate::UpstreamTls;
use crate::error::{ConfigError, invalid};
use crate::providers::ProviderConfig;
use tollgate_http::upgrade::{DEFAULT_UPGRADES, FORBIDDEN};

/// Where a route forwards to.
#[derive(Debug, Clone)]
pub enum Upstream {
    /// The built-in echo responder.
    Echo,
    /// No upstream: tollgate answers another proxy's auth subrequest (nginx `auth_request`,
    /// Traefik `ForwardAuth`, Envoy `ext_authz`): `200` with the identity headers, or the
    /// refusal.
    ForwardAuth,
    /// An HTTP(S) server.
    Http {
        /// `http` or `https`.
        scheme: Scheme,
        /// Host and port.
        authority: Authority,
        /// Path prepended to the forwarded path, without a trailing slash.
        base_path: String,
        /// The `Host` the upstream sees unless the client's is preserved: the host, and the
        /// port when not the scheme's default. Built once here rather than per request.
        host: http::HeaderValue,
    },
}

/// How a plain-HTTP upstream is spoken to (`upstream_protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UpstreamProtocol {
    /// HTTP/1.1, and HTTP/2 with prior knowledge for gRPC calls, which need it.
    #[default]
    Auto,
    /// HTTP/2 with prior knowledge for every request but upgrades (which HTTP/2 cannot carry).
    H2c,
}

/// Refuses `upstream_protocol = "h2c"` where there is no plain-HTTP upstream to speak it to.
pub(super) fn check_upstream_protocol(
    route: &RawRoute,
    upstream: &Upstream,
    key: &str,
    file: &str,
) -> Result<(), ConfigError> {
    let plain = matches!(upstream, Upstream::Http { scheme, .. } if *scheme == Scheme::HTTP);
    if route.upstream_protocol == UpstreamProtocol::H2c && !plain {
        return Err(invalid(
            file,
            &format!("{key}.upstream_protocol"),
            "\"h2c\" applies to an http:// upstream (an https:// one negotiates HTTP/2 by ALPN)",
        ));
    }
    Ok(())
}

impl std::fmt::Display for Upstream {
    /// `echo (built-in)` or the URL, for the route table and `tollgate explain`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Upstream::Echo => f.write_str("echo (built-in)"),
            Upstream::ForwardAuth => f.write_str("forward-auth (answers the auth question)"),
            Upstream::Http {
                scheme,
                authority,
                base_path,
                ..
            } => write!(f, "{scheme}://{authority}{base_path}"),
        }
    }
}

/// Resolves `upstream_auth` to its provider, refusing what would leak the vendor token or
/// forward the caller's.
pub(super) fn attach_upstream_auth(
    route: &mut Route,
    raw_route: &RawRoute,
    providers: &[ProviderConfig],
    key: &str,
    file: &str,
) -> Result<(), ConfigError> {
    let Some(name) = &raw_route.upstream_auth else {
        return refuse_vendor_only_settings(raw_route, key, file);
    };
    let index = providers
        .iter()
        .position(|p| &p.name == name)
        .ok_or_else(|| {
            invalid(
                file,
                &format!("{key}.upstream_auth"),
                format!("no [[providers]] entry named {name:?}"),
            )
        })?;
    if route.policy.forward_authorization {
        return Err(invalid(
            file,
            &format!("{key}.forward_authorization"),
            "a route with upstream_auth never forwards the caller's Authorization",
        ));
    }
    if matches!(route.upstream, Upstream::Echo | Upstream::ForwardAuth) {
        // The echo answer shows the built upstream request to the caller; a forward-auth
        // route has no upstream to send a vendor token to.
        return Err(invalid(
            file,
            &format!("{key}.upstream_auth"),
            "needs an upstream URL (echo would show the vendor token to the caller)",
        ));
    }
    route.upstream_auth = Some(index);
    // A vendor is a third party: internal identity and addresses only on request.
    route.sends_identity = raw_route.send_identity;
    route.sends_forwarded = raw_route.send_forwarded;
    Ok(())
}

/// Refuses `send_identity` and `send_forwarded` on a route without `upstream_auth`, where they
/// would do nothing: such a route always sends both.
fn refuse_vendor_only_settings(
    raw_route: &RawRoute,
    key: &str,
    file: &str,
) -> Result<(), ConfigError> {
    for (set, name) in [
        (raw_route.send_identity, "send_identity"),
        (raw_route.send_forwarded, "send_forwarded"),
    ] {
        if set {
            return Err(invalid(
                file,
                &format!("{key}.{name}"),
                "only has an effect on an upstream_auth route (other routes always send it)",
            ));
        }
    }
    Ok(())
}

/// Checks that an `identity_assertion` route has a key to sign with and an upstream that
/// receives the identity without showing it to the caller.
pub(super) fn check_identity_assertion(
    route: &Route,
    has_assertion: bool,
    key: &str,
    file: &str,
) -> Result<(), ConfigError> {
    if !route.identity_assertion {
        return Ok(());
    }
    let refusal = if !has_assertion {
        Some("needs an [assertion] section (the key that signs the assertion)")
    } else if matches!(route.upstream, Upstream::Echo) {
        Some("the echo upstream would show the assertion to the caller")
    } else if matches!(route.upstream, Upstream::ForwardAuth) {
        Some("a forward-auth route answers the auth question; it sends no request to sign")
    } else if !route.sends_identity {
        Some("an upstream_auth route sends the caller's identity only with send_identity = true")
    } else {
        None
    };
    match refusal {
        Some(reason) => Err(invalid(file, &format!("{key}.identity_assertion"), reason)),
        None => Ok(()),
    }
}

/// Checks and loads `upstream_tls` (CA bundle, client certificate, server name).
pub(super) fn parse_upstream_tls(
    route: &RawRoute,
    key: &str,
    file: &str,
) -> Result<Option<Arc<UpstreamTls>>, ConfigError> {
    let Some(raw_tls) = &route.upstream_tls else {
        return Ok(None);
    };
    // `parse_upstream` has refused every URL that does not parse; for `echo`, parsed or not,
    // `load` finds no https:// scheme and says so.
    let uri: Uri = route.upstream.parse().unwrap_or_default();
    let tls = UpstreamTls::load(raw_tls, &uri)
        .map_err(|(suffix, e)| invalid(file, &format!("{key}.upstream_tls{suffix}"), e))?;
    Ok(Some(Arc::new(tls)))
}

/// What replaces the prefix: `rewrite` (a clean prefix) or nothing (`strip_prefix`), not both.
pub(super) fn parse_rewrite(
    route: &RawRoute,
    key: &str,
    file: &str,
) -> Result<Option<String>, ConfigError> {
    match (&route.rewrite, route.strip_prefix) {
        (Some(_), true) => Err(invalid(
            file,
            &format!("{key}.rewrite"),
            "use either strip_prefix or rewrite, not both",
        )),
        (Some(r), false) => {
            Ok(Some(clean_prefix(r).map_err(|e| {
                invalid(file, &format!("{key}.rewrite"), e)
            })?))
        }
        (None, true) => Ok(Some(String::new())),
        (None, false) => Ok(None),
    }
}

/// A route's upgrade allow-list: protocol names (RFC 9110 §16.7 tokens), never `h2c`.
pub(super) fn parse_upgrades(
    route: &RawRoute,
    key: &str,
    file: &str,
) -> Result<Vec<String>, ConfigError> {
    let Some(list) = &route.upgrades else {
        return Ok(DEFAULT_UPGRADES.iter().map(|p| (*p).to_owned()).collect());
    };
    list.iter()
        .enumerate()
        .map(|(i, protocol)| {
            let key = format!("{key}.upgrades[{i}]");
            let name = protocol.trim().to_ascii_lowercase();
            if FORBIDDEN.contains(&name.as_str()) {
                return Err(invalid(
                    file,
                    &key,
                    "h2c is never forwarded: an h2c tunnel would reach every path of the upstream",
                ));
            }
            let token = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
            if !token {
                return Err(invalid(
                    file,
                    &key,
                    format!("{protocol:?} is not a protocol name"),
                ));
            }
            Ok(name)
        })
        .collect()
}

/// `echo`, or an `http(s)://host[:port][/base]` URL without credentials or query.
pub(super) fn parse_upstream(url: &str) -> Result<Upstream, String> {
    if url == "echo" {
        return Ok(Upstream::Echo);
    }
    if url == "forward-auth" {
        return Ok(Upstream::ForwardAuth);
    }
    if crate::has_userinfo(url) {
        return Err(crate::USERINFO_REFUSED.to_owned());
    }
    let uri: Uri = url
        .parse()
        .map_err(|e| format!("invalid URL {url:?}: {e}"))?;
    let scheme = uri
        .scheme()
        .filter(|s| s.as_str() == "http" || s.as_str() == "https")
        .ok_or_else(|| {
            format!("invalid URL {url:?}: scheme must be http or https (or use \"echo\" or \"forward-auth\")")
        })?
        .clone();
    let authority = uri
        .authority()
        .ok_or_else(|| format!("invalid URL {url:?}: no host"))?
        .clone();
    if uri.query().is_some() {
        return Err(format!(
            "invalid URL {url:?}: a query string is not allowed"
        ));
    }
    let default_port = if scheme == http::uri::Scheme::HTTPS {
        443
    } else {
        80
    };
    let host = match authority.port_u16() {
        Some(port) if port != default_port => format!("{}:{port}", authority.host()),
        _ => authority.host().to_owned(),
    };
    let host = http::HeaderValue::from_str(&host)
        .map_err(|e| format!("invalid URL {url:?}: host: {e}"))?;
    Ok(Upstream::Http {
        scheme,
        authority,
        base_path: uri.path().trim_end_matches('/').to_owned(),
        host,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_host_header_omits_only_the_default_port() {
        for (url, host) in [
            ("http://api.internal", "api.internal"),
            ("http://api.internal:80/x", "api.internal"),
            ("http://127.0.0.1:8080", "127.0.0.1:8080"),
            ("https://vendor.example:443", "vendor.example"),
            ("https://vendor.example:80", "vendor.example:80"),
            ("https://[::1]:8443/base", "[::1]:8443"),
        ] {
            let Ok(Upstream::Http { host: got, .. }) = parse_upstream(url) else {
                panic!("{url} parses");
            };
            assert_eq!(got, host, "{url}");
        }
    }
}
