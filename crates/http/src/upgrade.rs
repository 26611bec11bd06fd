//! Protocol upgrades as a per-route allow-list (RFC 9110 §7.8).
//!
//! A tunnel carries whatever the two ends say to each other, beyond any route or policy: an
//! `h2c` upgrade answered by an HTTP/2-capable backend becomes an HTTP/2 connection on which
//! the client reaches any path with any headers (h2c smuggling). So only the protocols a route
//! lists are forwarded, `h2c` never is (config validation refuses it), and a protocol the
//! client asked for that is not allowed is dropped from the request: a server may ignore
//! `Upgrade`, and clients that offer `h2c` (curl `--http2`) carry on over HTTP/1.1.

use http::header::{CONNECTION, HeaderValue, UPGRADE};
use http::{HeaderMap, Version};

/// The protocol every route allows unless it says otherwise.
pub const DEFAULT_UPGRADES: [&str; 1] = ["websocket"];

/// Never forwarded, whatever a route lists.
pub const FORBIDDEN: [&str; 1] = ["h2c"];

/// The protocols to forward: those the client offers (`Connection: upgrade` plus `Upgrade`,
/// HTTP/1.1 only) that the route allows, in the client's order. `None` when nothing is left.
pub fn allowed(version: Version, headers: &HeaderMap, allow: &[String]) -> Option<HeaderValue> {
    if version != Version::HTTP_11 || allow.is_empty() || !headers.contains_key(UPGRADE) {
        return None;
    }
    let asks = headers
        .get_all(CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|token| token.trim().eq_ignore_ascii_case("upgrade"));
    if !asks {
        return None;
    }
    let offered: Vec<&str> = headers
        .get_all(UPGRADE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|protocol| is_allowed(protocol, allow))
        .collect();
    if offered.is_empty() {
        return None;
    }
    HeaderValue::from_str(&offered.join(", ")).ok()
}

/// Whether `protocol` (`name` or `name/version`) is in `allow` and never forbidden.
fn is_allowed(protocol: &str, allow: &[String]) -> bool {
    let name = protocol.split('/').next().unwrap_or_default().trim();
    !name.is_empty()
        && !FORBIDDEN.iter().any(|f| name.eq_ignore_ascii_case(f))
        && allow.iter().any(|a| name.eq_ignore_ascii_case(a))
}

/// Whether a `101` answer switched to one of the protocols forwarded; anything else is never
/// tunnelled.
pub fn upstream_agreed(response: &HeaderMap, forwarded: &HeaderValue) -> bool {
    let Some(chosen) = response.get(UPGRADE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let chosen = chosen.split('/').next().unwrap_or_default().trim();
    forwarded
        .to_str()
        .unwrap_or_default()
        .split(',')
        .map(|p| p.split('/').next().unwrap_or_default().trim())
        .any(|p| !p.is_empty() && p.eq_ignore_ascii_case(chosen))
}

/// Restores the two headers an allowed upgrade needs after hop-by-hop removal.
pub fn set(headers: &mut HeaderMap, protocols: HeaderValue) {
    headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(UPGRADE, protocols);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(connection: &str, upgrade: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(CONNECTION, HeaderValue::from_str(connection).unwrap());
        h.insert(UPGRADE, HeaderValue::from_str(upgrade).unwrap());
        h
    }

    #[test]
    fn only_listed_protocols_are_forwarded() {
        let allow = vec!["websocket".to_owned()];
        let v11 = Version::HTTP_11;
        let got = |h: &HeaderMap, allow: &[String]| allowed(v11, h, allow);
        assert_eq!(
            got(&request("keep-alive, Upgrade", "WebSocket"), &allow).unwrap(),
            "WebSocket"
        );
        assert!(got(&request("Upgrade, HTTP2-Settings", "h2c"), &allow).is_none());
        assert_eq!(
            got(&request("upgrade", "h2c, websocket"), &allow).unwrap(),
            "websocket"
        );
        // h2c is refused even where a route lists it.
        let h2c = vec!["h2c".to_owned(), "websocket".to_owned()];
        assert!(got(&request("upgrade", "h2c"), &h2c).is_none());
        assert!(got(&request("upgrade", "websocket"), &[]).is_none());
        assert!(got(&request("keep-alive", "websocket"), &allow).is_none());
        assert!(allowed(Version::HTTP_10, &request("upgrade", "websocket"), &allow).is_none());
    }

    #[test]
    fn a_101_must_name_a_forwarded_protocol() {
        let forwarded = HeaderValue::from_static("websocket");
        let mut response = HeaderMap::new();
        assert!(!upstream_agreed(&response, &forwarded));
        response.insert(UPGRADE, HeaderValue::from_static("h2c"));
        assert!(!upstream_agreed(&response, &forwarded));
        response.insert(UPGRADE, HeaderValue::from_static("WebSocket"));
        assert!(upstream_agreed(&response, &forwarded));
    }
}
