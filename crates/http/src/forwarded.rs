//! Proxy headers: which client-sent ones survive, who the client is, and the `X-Forwarded-*`
//! set the upstream receives.
//!
//! Frameworks route, authorise and build URLs from proxy headers: Symfony and IIS rewrite the
//! path from `X-Original-URL`, Spring and ASP.NET take the scheme, host, port and prefix from
//! `X-Forwarded-*` and `Forwarded`, and rate limiters key on `X-Real-IP`. From a client that is
//! not a configured trusted proxy they are removed, like nginx's `real_ip` and Envoy's
//! `xff_num_trusted_hops` ignore them; from a trusted proxy `X-Forwarded-For` is appended to
//! and the client address is read from it.

use std::net::IpAddr;

use http::HeaderMap;
use http::header::{FORWARDED, HeaderName, HeaderValue};
use ipnet::IpNet;

/// `X-Forwarded-For`: the chain of client addresses.
pub static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
/// `X-Forwarded-Proto`: the scheme the client used.
pub static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
/// `X-Forwarded-Host`: the host the client asked for.
pub static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
/// `X-Real-IP`: the client's address, as tollgate determined it.
pub static X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

/// Headers no peer may set: tollgate sets the host and address headers itself, URL overrides
/// would undo path policy, and the other client-address headers are read by common frameworks
/// and CDNs' customers (tollgate's own answer is `X-Real-IP` and `X-Forwarded-For`). Matched
/// in one `match`: this runs for every header of every request.
fn never_from_clients(name: &str) -> bool {
    matches!(
        name,
        "forwarded"
            | "x-original-url"
            | "x-rewrite-url"
            | "x-original-uri"
            | "x-original-host"
            | "x-host"
            | "x-http-host-override"
            | "x-forwarded-host"
            | "x-forwarded-server"
            | "x-real-ip"
            | "x-original-forwarded-for"
            | "x-client-ip"
            | "true-client-ip"
            | "x-cluster-client-ip"
            | "cf-connecting-ip"
            | "fastly-client-ip"
    )
}

/// The peers whose proxy headers are believed (`[server] trusted_proxies`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// The given networks.
    pub fn new(networks: Vec<IpNet>) -> Self {
        Self(networks)
    }

    /// Whether `ip` is in one of the networks.
    pub fn contains(&self, ip: IpAddr) -> bool {
        // An IPv4 peer on a dual-stack socket arrives as `::ffff:a.b.c.d`.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// Whether no proxy is trusted (the default).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A connected peer's address, formatted once per connection, not once per request.
#[derive(Debug, Clone)]
pub struct ClientIp {
    ip: IpAddr,
    text: HeaderValue,
    /// Whether the client connected over TLS (`X-Forwarded-Proto: https`).
    tls: bool,
}

impl ClientIp {
    /// The address of a connected peer.
    pub fn new(ip: IpAddr) -> Self {
        // An IP address in text form is always a valid header value.
        let text = HeaderValue::from_str(&ip.to_string())
            .unwrap_or_else(|_| HeaderValue::from_static("unknown"));
        Self {
            ip,
            text,
            tls: false,
        }
    }

    /// The same peer, connected over TLS.
    pub fn over_tls(self) -> Self {
        Self { tls: true, ..self }
    }

    /// The address.
    pub fn ip(&self) -> IpAddr {
        self.ip
    }

    /// The address as header text.
    pub fn header(&self) -> &HeaderValue {
        &self.text
    }
}

/// The method of the request a forward-auth subrequest asks about: `X-Original-Method`
/// (nginx `auth_request`, by convention) or `X-Forwarded-Method` (Traefik `ForwardAuth`).
/// The caller believes it only from a trusted proxy. Two different values, or one that is no
/// upper-case method, give a method no route allows, so a `methods` rule refuses it rather than
/// judging the subrequest's own `GET`.
pub fn original_method(headers: &HeaderMap) -> Option<http::Method> {
    let mut found: Option<&HeaderValue> = None;
    let mut conflicting = false;
    for name in ["x-original-method", "x-forwarded-method"] {
        for value in headers.get_all(name) {
            conflicting |= found.is_some_and(|f| f != value);
            found = Some(value);
        }
    }
    let value = found?;
    let valid = !conflicting
        && !value.is_empty()
        && value.as_bytes().iter().all(|b| b.is_ascii_uppercase());
    let method = if valid {
        value.as_bytes()
    } else {
        &b"UNRECOGNISED-ORIGINAL-METHOD"[..]
    };
    http::Method::from_bytes(method).ok()
}

/// Removes the proxy headers a peer may not set: all of them from an untrusted peer; from a
/// trusted proxy those tollgate sets itself or that override the URL.
pub fn remove_client_proxy_headers(headers: &mut HeaderMap, trusted_peer: bool) {
    // One pass of byte comparisons; a hashed removal only for names actually present.
    let mut found: Vec<HeaderName> = Vec::new();
    for name in headers.keys() {
        let n = name.as_str();
        let remove = never_from_clients(n) || (!trusted_peer && n.starts_with("x-forwarded-"));
        if remove {
            found.push(name.clone());
        }
    }
    for name in found {
        headers.remove(name);
    }
}

/// The client's address: the peer, or with a trusted peer the first address in
/// `X-Forwarded-For`, read from the right, that is not itself a trusted proxy (nginx
/// `real_ip_recursive`). A value that is not an address ends the walk at the last one trusted.
/// `trusted_peer` is `trusted.contains(peer)`, which the caller has already decided.
pub fn client_address(
    headers: &HeaderMap,
    peer: &ClientIp,
    trusted_peer: bool,
    trusted: &TrustedProxies,
) -> HeaderValue {
    if !trusted_peer {
        return peer.text.clone();
    }
    let mut client = peer.text.clone();
    let chain: Vec<&str> = headers
        .get_all(&X_FORWARDED_FOR)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    for hop in chain.iter().rev() {
        let Ok(ip) = hop.parse::<IpAddr>() else { break };
        client = HeaderValue::from_str(hop).unwrap_or(client);
        if !trusted.contains(ip) {
            break;
        }
    }
    client
}

/// Sets the forwarding headers: the peer appended to `X-Forwarded-For`, `X-Real-IP`,
/// `X-Forwarded-Proto` (a trusted proxy's value is kept) and the canonical `X-Forwarded-Host`.
pub fn set_forwarded(
    headers: &mut HeaderMap,
    peer: &ClientIp,
    trusted_peer: bool,
    client: HeaderValue,
    host: Option<&HeaderValue>,
) {
    let xff = {
        let mut prior = headers.get_all(&X_FORWARDED_FOR).iter().peekable();
        if prior.peek().is_none() {
            Some(peer.text.clone())
        } else {
            let mut chain = Vec::new();
            for value in prior {
                chain.extend_from_slice(value.as_bytes());
                chain.extend_from_slice(b", ");
            }
            chain.extend_from_slice(peer.text.as_bytes());
            HeaderValue::from_bytes(&chain).ok()
        }
    };
    if let Some(xff) = xff {
        headers.insert(X_FORWARDED_FOR.clone(), xff);
    }
    headers.insert(X_REAL_IP.clone(), client);
    // An untrusted peer's value was removed already: no lookup needed.
    if !trusted_peer || !headers.contains_key(&X_FORWARDED_PROTO) {
        let proto = if peer.tls { "https" } else { "http" };
        headers.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static(proto));
    }
    match host {
        Some(host) => headers.insert(X_FORWARDED_HOST.clone(), host.clone()),
        None => headers.remove(&X_FORWARDED_HOST),
    };
    debug_assert!(!headers.contains_key(FORWARDED));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    const HOSTILE: [(&str, &str); 12] = [
        (
            "forwarded",
            "for=10.0.0.1;host=admin.example.com;proto=https",
        ),
        ("x-real-ip", "10.0.0.1"),
        ("x-forwarded-for", "10.0.0.1"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "admin.example.com"),
        ("x-forwarded-prefix", "/internal"),
        ("x-forwarded-port", "443"),
        ("x-original-url", "/internal/admin"),
        ("x-rewrite-url", "/internal/admin"),
        ("true-client-ip", "10.0.0.1"),
        ("x-client-ip", "10.0.0.1"),
        ("accept", "*/*"),
    ];

    #[test]
    fn untrusted_peers_lose_every_proxy_header() {
        let mut h = map(&HOSTILE);
        remove_client_proxy_headers(&mut h, false);
        assert_eq!(h.keys().map(|k| k.as_str()).collect::<Vec<_>>(), ["accept"]);
    }

    #[test]
    fn trusted_proxies_keep_the_forwarded_chain_but_not_overrides() {
        let mut h = map(&HOSTILE);
        remove_client_proxy_headers(&mut h, true);
        let mut kept: Vec<_> = h.keys().map(|k| k.as_str()).collect();
        kept.sort_unstable();
        assert_eq!(
            kept,
            [
                "accept",
                "x-forwarded-for",
                "x-forwarded-port",
                "x-forwarded-prefix",
                "x-forwarded-proto"
            ]
        );
    }

    #[test]
    fn client_address_walks_trusted_hops_from_the_right() {
        let trusted = TrustedProxies::new(vec![
            "10.0.0.0/8".parse().unwrap(),
            "127.0.0.1/32".parse().unwrap(),
        ]);
        let proxy = ClientIp::new("127.0.0.1".parse().unwrap());
        let h = map(&[("x-forwarded-for", "198.51.100.7, 203.0.113.9, 10.1.2.3")]);
        assert_eq!(client_address(&h, &proxy, true, &trusted), "203.0.113.9");
        let h = map(&[("x-forwarded-for", "garbage, 10.1.2.3")]);
        assert_eq!(client_address(&h, &proxy, true, &trusted), "10.1.2.3");
        assert_eq!(
            client_address(&HeaderMap::new(), &proxy, true, &trusted),
            "127.0.0.1"
        );
        // An untrusted peer's claim is never read.
        let outsider = ClientIp::new("192.0.2.1".parse().unwrap());
        let h = map(&[("x-forwarded-for", "203.0.113.9")]);
        let outsider_trusted = trusted.contains(outsider.ip());
        assert_eq!(
            client_address(&h, &outsider, outsider_trusted, &trusted),
            "192.0.2.1"
        );
        let mapped = "::ffff:10.9.9.9".parse().unwrap();
        assert!(trusted.contains(mapped));
    }

    #[test]
    fn forwarded_headers_append_and_set() {
        let mut h = map(&[
            ("x-forwarded-for", "10.0.0.1"),
            ("x-forwarded-for", "10.0.0.2"),
            ("x-forwarded-proto", "https"),
        ]);
        let peer = ClientIp::new("127.0.0.1".parse().unwrap());
        let host = HeaderValue::from_static("example.com");
        set_forwarded(
            &mut h,
            &peer,
            true,
            HeaderValue::from_static("10.0.0.1"),
            Some(&host),
        );
        assert_eq!(h["x-forwarded-for"], "10.0.0.1, 10.0.0.2, 127.0.0.1");
        assert_eq!(h["x-forwarded-proto"], "https");
        assert_eq!(h["x-forwarded-host"], "example.com");
        assert_eq!(h["x-real-ip"], "10.0.0.1");
        let mut h = HeaderMap::new();
        set_forwarded(&mut h, &peer, false, peer.header().clone(), None);
        assert_eq!(h["x-forwarded-proto"], "http");
        assert!(!h.contains_key("x-forwarded-host"));
    }
}
