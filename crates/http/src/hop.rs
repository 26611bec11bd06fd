//! Hop-by-hop header removal (RFC 9110 §7.6.1), for requests and responses alike.

use http::HeaderMap;
use http::header::{
    CONNECTION, HeaderName, HeaderValue, PROXY_AUTHENTICATE, PROXY_AUTHORIZATION, TE, TRAILER,
    TRANSFER_ENCODING, UPGRADE,
};

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

/// Where `name` is in [`HOP_BY_HOP`]: one `match`, which compiles to a length switch and at
/// most one comparison, instead of nine (this runs for every header, twice per request).
fn hop_by_hop_index(name: &HeaderName) -> Option<usize> {
    match name.as_str() {
        "connection" => Some(0),
        "keep-alive" => Some(1),
        "proxy-connection" => Some(2),
        "proxy-authenticate" => Some(3),
        "proxy-authorization" => Some(4),
        "te" => Some(5),
        "trailer" => Some(6),
        "transfer-encoding" => Some(7),
        "upgrade" => Some(8),
        _ => None,
    }
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
}
