//! What an upstream's response may carry back to the client.
//!
//! The identity namespaces (`x-user-*`, `x-service-*`, `x-tenant-*`, `x-tollgate-*` and configured claim
//! headers) are the gateway's, in both directions: an upstream's copy is removed, so no client,
//! and no proxy in front that trusts them, reads identity the gateway did not vouch for. A
//! `Set-Cookie` for a token cookie is removed unless the route allows it (a login service):
//! otherwise any upstream could plant a session for the gateway to verify on the next request.

use http::HeaderMap;
use http::header::{HeaderName, SET_COOKIE};

use tollgate_auth::extract::TokenSources;
use tollgate_http::identity;

/// Removes identity headers and, unless `allow_token_cookie`, token cookies being set.
pub fn filter(
    headers: &mut HeaderMap,
    claim_headers: &[HeaderName],
    sources: &TokenSources,
    allow_token_cookie: bool,
) {
    identity::strip(headers, claim_headers);
    if allow_token_cookie || sources.cookies.is_empty() || !headers.contains_key(SET_COOKIE) {
        return;
    }
    let sets_token = |value: &http::HeaderValue| {
        let text = String::from_utf8_lossy(value.as_bytes());
        let name = text.split(['=', ';']).next().unwrap_or_default().trim();
        sources.cookies.iter().any(|c| c == name)
    };
    let kept: Vec<_> = headers
        .get_all(SET_COOKIE)
        .iter()
        .filter(|v| !sets_token(v))
        .cloned()
        .collect();
    headers.remove(SET_COOKIE);
    for value in kept {
        headers.append(SET_COOKIE, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn identity_and_token_cookies_do_not_come_back() {
        let sources = TokenSources {
            cookies: vec!["session".into()],
            queries: Vec::new(),
        };
        let response = || {
            let mut h = HeaderMap::new();
            for (k, v) in [
                ("x-user-id", "admin"),
                ("x_service_name", "billing"),
                ("set-cookie", "session=planted; Path=/; HttpOnly"),
                ("set-cookie", " session =planted"),
                ("set-cookie", "theme=dark"),
                ("content-type", "text/plain"),
            ] {
                h.append(HeaderName::from_static(k), HeaderValue::from_static(v));
            }
            h
        };
        let mut h = response();
        filter(&mut h, &[], &sources, false);
        assert_eq!(
            h.get_all(SET_COOKIE).iter().collect::<Vec<_>>(),
            ["theme=dark"]
        );
        assert!(!h.contains_key("x-user-id") && !h.contains_key("x_service_name"));
        let mut h = response();
        filter(&mut h, &[], &sources, true);
        assert_eq!(
            h.get_all(SET_COOKIE).iter().count(),
            3,
            "allowed on login routes"
        );
        assert!(!h.contains_key("x-user-id"), "identity is never allowed");
    }
}
