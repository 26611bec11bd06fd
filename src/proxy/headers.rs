//! Header hygiene between client and upstream: hop-by-hop removal (RFC 9110 §7.6.1) and the
//! `X-Forwarded-*` family.

use std::net::IpAddr;

use http::HeaderMap;
use http::header::{
    CONNECTION, HeaderName, HeaderValue, PROXY_AUTHENTICATE, PROXY_AUTHORIZATION, TE, TRAILER,
    TRANSFER_ENCODING, UPGRADE,
};

/// `X-Forwarded-For`: the chain of client addresses.
pub static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
/// `X-Forwarded-Proto`: the scheme the client used.
pub static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
/// `X-Forwarded-Host`: the host the client asked for.
pub static X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// Removes every header named in `Connection`, then the hop-by-hop headers themselves
/// (RFC 9110 §7.6.1). Done before anything is injected, so `Connection: x-user-id` cannot
/// remove a header the gateway adds.
pub fn remove_hop_by_hop(headers: &mut HeaderMap) {
    // One pass of cheap name comparisons, then a hashed removal only of what is there: this
    // runs twice per request, and most messages carry one such header (`Connection`) or none.
    let mut present = 0u16;
    for name in headers.keys() {
        if let Some(i) = hop_by_hop_index(name) {
            present |= 1 << i;
        }
    }
    if present == 0 {
        return;
    }
    let names_only_itself = |v: &HeaderValue| {
        let v = v.as_bytes();
        v.eq_ignore_ascii_case(b"keep-alive") || v.eq_ignore_ascii_case(b"close")
    };
    if present & 1 != 0 && !headers.get_all(CONNECTION).iter().all(names_only_itself) {
        // Names listed in `Connection` other than those removed anyway (and `close`).
        let listed: Vec<HeaderName> = headers
            .get_all(CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|token| {
                !token.eq_ignore_ascii_case("close")
                    && !HOP_BY_HOP
                        .iter()
                        .any(|h| token.eq_ignore_ascii_case(h.as_str()))
            })
            .filter_map(|token| HeaderName::from_bytes(token.as_bytes()).ok())
            .collect();
        for name in listed {
            headers.remove(name);
        }
    }
    for (i, name) in HOP_BY_HOP.iter().enumerate() {
        if present & (1 << i) != 0 {
            headers.remove(name);
        }
    }
}

/// Where `name` is in [`HOP_BY_HOP`]: compared as text (lengths first), no hashing.
fn hop_by_hop_index(name: &HeaderName) -> Option<usize> {
    let name = name.as_str();
    HOP_BY_HOP.iter().position(|h| h.as_str() == name)
}

/// The headers that describe one connection, never forwarded (RFC 9110 §7.6.1); `Connection`
/// first.
static HOP_BY_HOP: [HeaderName; 9] = [
    CONNECTION,
    HeaderName::from_static("keep-alive"),
    // Not standard, but still sent by old clients and honoured by some servers.
    HeaderName::from_static("proxy-connection"),
    PROXY_AUTHENTICATE,
    PROXY_AUTHORIZATION,
    TE,
    TRAILER,
    TRANSFER_ENCODING,
    UPGRADE,
];

/// The protocol a client asks to switch to, when it sends both `Connection: upgrade` and
/// `Upgrade` (RFC 9110 §7.8).
pub fn requested_upgrade(headers: &HeaderMap) -> Option<HeaderValue> {
    let asks = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case("upgrade"));
    if asks {
        headers.get(UPGRADE).cloned()
    } else {
        None
    }
}

/// Restores the two headers an upgrade needs after hop-by-hop removal.
pub fn set_upgrade(headers: &mut HeaderMap, protocol: HeaderValue) {
    headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(UPGRADE, protocol);
}

/// Appends the client to `X-Forwarded-For` and sets `X-Forwarded-Proto` and `X-Forwarded-Host`.
pub fn set_forwarded(headers: &mut HeaderMap, client: &ClientIp, host: Option<&HeaderValue>) {
    let xff = {
        let mut prior = headers.get_all(&X_FORWARDED_FOR).iter().peekable();
        if prior.peek().is_none() {
            Some(client.0.clone())
        } else {
            let mut chain = Vec::new();
            for value in prior {
                chain.extend_from_slice(value.as_bytes());
                chain.extend_from_slice(b", ");
            }
            chain.extend_from_slice(client.0.as_bytes());
            HeaderValue::from_bytes(&chain).ok()
        }
    };
    if let Some(xff) = xff {
        headers.insert(X_FORWARDED_FOR.clone(), xff);
    }
    headers.insert(X_FORWARDED_PROTO.clone(), HeaderValue::from_static("http"));
    match host {
        Some(host) => headers.insert(X_FORWARDED_HOST.clone(), host.clone()),
        None => headers.remove(&X_FORWARDED_HOST),
    };
}

/// A client's address as `X-Forwarded-For` carries it: formatted once per connection, not
/// once per request.
#[derive(Debug, Clone)]
pub struct ClientIp(HeaderValue);

impl ClientIp {
    /// The address of a connected client.
    pub fn new(ip: IpAddr) -> Self {
        let text = ip.to_string();
        // An IP address in text form is always a valid header value.
        Self(HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static("unknown")))
    }
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

    #[test]
    fn removes_hop_by_hop_and_connection_listed() {
        let mut h = map(&[
            ("connection", "keep-alive, X-User-Id"),
            ("connection", "x-custom"),
            ("keep-alive", "timeout=5"),
            ("te", "trailers"),
            ("transfer-encoding", "chunked"),
            ("proxy-authorization", "Basic x"),
            ("upgrade", "websocket"),
            ("x-user-id", "spoof"),
            ("x-custom", "1"),
            ("accept", "*/*"),
        ]);
        remove_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1, "{h:?}");
        assert!(h.contains_key("accept"));
    }

    #[test]
    fn every_hop_by_hop_header_is_found_and_removed_alone() {
        for (i, name) in HOP_BY_HOP.iter().enumerate() {
            assert_eq!(hop_by_hop_index(name), Some(i), "{name}");
            let mut h = map(&[(name.as_str(), "x"), ("x-kept", "1")]);
            remove_hop_by_hop(&mut h);
            assert_eq!(h.len(), 1, "{name}: {h:?}");
        }
        assert_eq!(hop_by_hop_index(&HeaderName::from_static("x-te")), None);
        for value in ["keep-alive", "Keep-Alive", "close"] {
            let mut h = map(&[("connection", value), ("x-kept", "1")]);
            remove_hop_by_hop(&mut h);
            assert_eq!(h.len(), 1, "{value}: {h:?}");
        }
    }

    #[test]
    fn detects_upgrade_only_with_connection_token() {
        let h = map(&[
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "websocket"),
        ]);
        assert_eq!(requested_upgrade(&h).unwrap(), "websocket");
        assert!(requested_upgrade(&map(&[("upgrade", "websocket")])).is_none());
    }

    #[test]
    fn forwarded_headers_append_and_set() {
        let mut h = map(&[
            ("x-forwarded-for", "10.0.0.1"),
            ("x-forwarded-for", "10.0.0.2"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "spoofed"),
        ]);
        let host = HeaderValue::from_static("example.com");
        set_forwarded(
            &mut h,
            &ClientIp::new("127.0.0.1".parse().unwrap()),
            Some(&host),
        );
        assert_eq!(h["x-forwarded-for"], "10.0.0.1, 10.0.0.2, 127.0.0.1");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["x-forwarded-host"], "example.com");
        set_forwarded(&mut h, &ClientIp::new("::1".parse().unwrap()), None);
        assert!(!h.contains_key("x-forwarded-host"));
    }
}
