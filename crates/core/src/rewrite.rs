//! The upstream request's head, built once by rules that run in a fixed order.
//!
//! Every transport (echo, the HTTP/1 pool, the TLS client, the upgrade tunnel) sends exactly
//! what these rules leave, so the order is the contract:
//!
//! 1. hop-by-hop headers and those the client listed in `Connection` go first, so
//!    `Connection: x-user-id` cannot remove what a later rule injects;
//! 2. proxy headers the peer may not set;
//! 3. identity headers in the gateway's namespaces;
//! 4. the caller's credentials (header, cookies, query), unless the route forwards them;
//! 5. method overrides on an unauthenticated CORS preflight;
//! 6. the request id; 7. the verified identity; 8. `X-Forwarded-*` and `X-Real-IP`;
//! 9. `Host`; 10. the allowed upgrade.
//!
//! On a third-party (vendor) route, rules 7 and 8 apply only when the route opts in
//! (`send_identity`, `send_forwarded`); without rule 8 every proxy header is removed.
//!
//! The core then adds the identity assertion (`x-tollgate-assertion`) on routes that send
//! one, signed over what these rules produced (request id, `Host`, `x-tenant-id`), and the
//! vendor credential, when a route has one, last.

use std::borrow::Cow;
use std::time::Duration;

use http::HeaderMap;
use http::header::{HOST, HeaderName, HeaderValue, TE};
use http::uri::Scheme;

use tollgate_auth::extract::{self, TokenSources};
use tollgate_config::{Route, Upstream};
use tollgate_http::forwarded::{self, ClientIp};
use tollgate_http::grpc;
use tollgate_http::hop::remove_hop_by_hop;
use tollgate_http::host::CanonicalHost;
use tollgate_http::identity::{self, Identity};
use tollgate_http::request_id::X_REQUEST_ID;

/// Headers that make a framework treat a request as another method (Rails, Laravel, Express
/// `method-override`, ASP.NET): an `OPTIONS` preflight let through without a token must not
/// become a `DELETE` behind the gateway.
const METHOD_OVERRIDES: [HeaderName; 3] = [
    HeaderName::from_static("x-http-method-override"),
    HeaderName::from_static("x-http-method"),
    HeaderName::from_static("x-method-override"),
];

/// What the rules need beyond the headers themselves.
pub struct Inputs<'a> {
    /// The matched route.
    pub route: &'a Route,
    /// The peer on the other end of the connection.
    pub peer: &'a ClientIp,
    /// Whether the peer is a trusted proxy.
    pub trusted_peer: bool,
    /// The client's address (the peer, or read from a trusted proxy's `X-Forwarded-For`).
    pub client: HeaderValue,
    /// The canonical host of the request.
    pub host: Option<&'a CanonicalHost>,
    /// The request id.
    pub request_id: &'a HeaderValue,
    /// The verified caller.
    pub identity: Option<&'a Identity>,
    /// Where tokens may be carried.
    pub sources: &'a TokenSources,
    /// Configured claim headers, stripped like the reserved namespaces.
    pub claim_headers: &'a [HeaderName],
    /// The request is an unauthenticated CORS preflight.
    pub exempt_preflight: bool,
    /// The upgrade protocols to forward.
    pub upgrade: Option<HeaderValue>,
    /// The request goes over HTTP/2 with prior knowledge, where the authority travels in
    /// `:authority` alone.
    pub http2: bool,
    /// A gRPC call's deadline, to send on as its `grpc-timeout`.
    pub grpc_timeout: Option<Duration>,
    /// The client certificate the TLS handshake verified, if any.
    pub certificate: Option<&'a tollgate_auth::certificate::ClientCertificate>,
}

/// `x-forwarded-client-cert`, which only tollgate sets (a client's is stripped as an identity
/// header).
static X_FORWARDED_CLIENT_CERT: HeaderName = HeaderName::from_static("x-forwarded-client-cert");

/// Applies the rules, in order, to the client's headers.
pub fn upstream_headers(headers: &mut HeaderMap, inputs: Inputs<'_>) {
    remove_hop_by_hop(headers);
    forwarded::remove_client_proxy_headers(headers, inputs.trusted_peer);
    identity::strip(headers, inputs.claim_headers);
    if !inputs.route.policy.forward_authorization {
        remove_credentials(headers, inputs.sources);
    }
    if inputs.exempt_preflight {
        remove_method_overrides(headers);
    }
    headers.insert(X_REQUEST_ID.clone(), inputs.request_id.clone());
    if let Some(identity) = inputs.identity
        && inputs.route.sends_identity
    {
        identity::inject(headers, identity);
    }
    if inputs.route.forward_client_cert
        && inputs.route.sends_identity
        && let Some(details) = inputs.certificate.and_then(|c| c.forwarded_client_cert())
    {
        headers.insert(X_FORWARDED_CLIENT_CERT.clone(), details);
    }
    let host = inputs.host.map(CanonicalHost::header);
    if inputs.route.sends_forwarded {
        forwarded::set_forwarded(
            headers,
            inputs.peer,
            inputs.trusted_peer,
            inputs.client,
            host,
        );
    } else {
        // Not even a trusted proxy's chain: the route's upstream is a third party.
        forwarded::remove_client_proxy_headers(headers, false);
    }
    set_host(headers, inputs.route, host, inputs.http2);
    if let Some(protocols) = inputs.upgrade {
        tollgate_http::upgrade::set(headers, protocols);
    }
    if let Some(timeout) = inputs.grpc_timeout {
        // gRPC servers refuse a call without `TE: trailers` (which hop-by-hop removal takes
        // out: on HTTP/2 it is the one value allowed), and the upstream learns the deadline
        // the gateway holds it to.
        headers.insert(TE, HeaderValue::from_static("trailers"));
        headers.insert(grpc::GRPC_TIMEOUT.clone(), grpc::timeout_value(timeout));
    }
}

/// The query sent upstream: without token parameters unless the route forwards credentials.
pub fn upstream_query<'a>(
    query: Option<&'a str>,
    route: &Route,
    sources: &TokenSources,
) -> Option<Cow<'a, str>> {
    let query = query?;
    if route.policy.forward_authorization {
        return Some(Cow::Borrowed(query));
    }
    extract::query_without_tokens(query, sources)
}

pub use tollgate_auth::extract::remove_credentials;

fn remove_method_overrides(headers: &mut HeaderMap) {
    for name in &METHOD_OVERRIDES {
        headers.remove(name);
    }
}

/// The `Host` the upstream sees: the canonical client host when the route preserves it (or
/// for echo, which has no authority of its own), else the upstream's own.
fn set_host(
    headers: &mut HeaderMap,
    route: &Route,
    client_host: Option<&HeaderValue>,
    http2: bool,
) {
    match (&route.upstream, client_host) {
        // An https upstream may speak HTTP/2, where the authority travels in `:authority`
        // alone; the client adds `Host` from the same URI when the connection is HTTP/1.1.
        (Upstream::Http { scheme, .. }, _)
            if !route.preserve_host && (http2 || *scheme == Scheme::HTTPS) =>
        {
            headers.remove(HOST);
        }
        (Upstream::Http { host, .. }, _) if !route.preserve_host => {
            headers.insert(HOST, host.clone());
        }
        (_, Some(client_host)) => {
            headers.insert(HOST, client_host.clone());
        }
        (_, None) => {
            headers.remove(HOST);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;
    use tollgate_auth::policy::RoutePolicy;
    use tollgate_http::identity::TokenKind;

    fn route(upstream: Upstream, preserve_host: bool, forward_authorization: bool) -> Route {
        Route {
            upstream_tls: None,
            index: 0,
            name: Arc::from("r"),
            prefix: "/".into(),
            host: None,
            upstream,
            rewrite: None,
            timeout: Duration::from_secs(1),
            max_body_bytes: 0,
            max_requests: None,
            preserve_host,
            upstream_protocol: tollgate_config::UpstreamProtocol::Auto,
            upgrades: Vec::new(),
            allow_token_cookie: false,
            policy: RoutePolicy {
                allow_cors_preflight: true,
                forward_authorization,
                ..RoutePolicy::authenticated()
            },
            upstream_auth: None,
            sends_identity: true,
            sends_forwarded: true,
            identity_assertion: false,
            forward_client_cert: false,
            rate_limits: Vec::new(),
        }
    }

    fn http_upstream() -> Upstream {
        Upstream::Http {
            scheme: http::uri::Scheme::HTTP,
            authority: "backend:9000".parse().unwrap(),
            base_path: String::new(),
            host: HeaderValue::from_static("backend:9000"),
        }
    }

    fn sources() -> TokenSources {
        TokenSources {
            cookies: vec!["session".into()],
            queries: vec!["access_token".into()],
        }
    }

    fn hostile() -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("connection", "x-user-id, x-request-id, host"),
            ("x-user-id", "spoof"),
            ("x-forwarded-host", "admin.example.com"),
            ("x-original-url", "/internal"),
            ("authorization", "Bearer caller"),
            ("cookie", "session=caller; theme=dark"),
            ("x-http-method-override", "DELETE"),
            ("x-request-id", "forged"),
            ("host", "Public.example.com."),
            ("upgrade", "h2c"),
            ("accept", "*/*"),
        ] {
            h.append(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        h
    }

    fn identity() -> Identity {
        Identity {
            kind: TokenKind::Service,
            issuer: "t".into(),
            subject: "orders".into(),
            role: None,
            service: Some("orders".into()),
            expires_at: 0,
            token_id: None,
            issued_at: None,
            headers: vec![(
                identity::X_USER_ID.clone(),
                HeaderValue::from_static("orders"),
            )],
            grants: Default::default(),
        }
    }

    fn build(route: &Route, identity: Option<&Identity>, preflight: bool) -> HeaderMap {
        let mut headers = hostile();
        let peer = ClientIp::new("192.0.2.7".parse().unwrap());
        let host = tollgate_http::host::canonical("public.example.com", None).unwrap();
        let id = HeaderValue::from_static("rid-1");
        upstream_headers(
            &mut headers,
            Inputs {
                route,
                peer: &peer,
                trusted_peer: false,
                client: peer.header().clone(),
                host: Some(&host),
                request_id: &id,
                identity,
                sources: &sources(),
                claim_headers: &[],
                exempt_preflight: preflight,
                upgrade: None,
                http2: false,
                grpc_timeout: None,
                certificate: None,
            },
        );
        headers
    }

    #[test]
    fn injected_values_survive_hostile_connection_tokens() {
        let identity = identity();
        let h = build(
            &route(http_upstream(), false, false),
            Some(&identity),
            false,
        );
        assert_eq!(h["x-user-id"], "orders");
        assert_eq!(h["x-request-id"], "rid-1");
        assert_eq!(h["host"], "backend:9000");
        assert_eq!(h["x-forwarded-host"], "public.example.com");
        assert_eq!(h["x-forwarded-for"], "192.0.2.7");
        assert_eq!(h["x-real-ip"], "192.0.2.7");
        assert_eq!(h["cookie"], "theme=dark");
        assert_eq!(
            h["x-http-method-override"], "DELETE",
            "only preflights lose it"
        );
        for gone in ["authorization", "x-original-url", "upgrade", "connection"] {
            assert!(!h.contains_key(gone), "{gone}: {h:?}");
        }
    }

    #[test]
    fn preflights_lose_method_overrides_and_preserved_host_is_canonical() {
        let h = build(&route(http_upstream(), true, false), None, true);
        assert!(!h.contains_key("x-http-method-override"));
        assert!(!h.contains_key("x-user-id"));
        assert_eq!(h["host"], "public.example.com");
    }

    #[test]
    fn forwarded_credentials_stay_when_the_route_says_so() {
        let h = build(&route(Upstream::Echo, false, true), None, false);
        assert_eq!(h["authorization"], "Bearer caller");
        assert_eq!(h["host"], "public.example.com");
        let r = route(Upstream::Echo, false, false);
        assert_eq!(
            upstream_query(Some("a=1&access_token=x"), &r, &sources()).as_deref(),
            Some("a=1")
        );
        let r = route(Upstream::Echo, false, true);
        assert_eq!(
            upstream_query(Some("a=1&access_token=x"), &r, &sources()).as_deref(),
            Some("a=1&access_token=x")
        );
    }
}
