//! The `x-request-id` that ties a request's logs, upstream call and response together.

use http::HeaderMap;
use http::header::{HeaderName, HeaderValue};

/// `x-request-id`
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest client-supplied id kept; longer ones are replaced.
const MAX_LEN: usize = 128;

/// The request's id, and the client's own id when it is not used.
///
/// A trusted proxy's well-formed id is kept, so one id follows the request from the edge. Any
/// other client gets a fresh id: a client choosing its id could make its requests' logs and
/// audit records pass for another request's. Its own well-formed id is returned apart, for the
/// access log and audit trail to record as `client_request_id`.
pub fn choose(headers: &HeaderMap, trusted_peer: bool) -> (HeaderValue, Option<HeaderValue>) {
    let mut sent = headers.get_all(&X_REQUEST_ID).iter();
    let client = match (sent.next(), sent.next()) {
        (Some(id), None) if is_acceptable(id.as_bytes()) => Some(id.clone()),
        _ => None,
    };
    match client {
        Some(id) if trusted_peer => (id, None),
        client => (generate(), client),
    }
}

fn is_acceptable(id: &[u8]) -> bool {
    !id.is_empty()
        && id.len() <= MAX_LEN
        && id
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

fn generate() -> HeaderValue {
    let mut buf = [0u8; uuid::fmt::Hyphenated::LENGTH];
    let text = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buf);
    // A hyphenated UUID is always a valid header value.
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trusted_proxies_keep_their_id_and_clients_get_ours() {
        let mut h = HeaderMap::new();
        h.insert(X_REQUEST_ID.clone(), HeaderValue::from_static("abc-123"));
        assert_eq!(
            choose(&h, true),
            (HeaderValue::from_static("abc-123"), None)
        );
        let (id, client) = choose(&h, false);
        assert_eq!(id.len(), 36);
        assert_eq!(client.unwrap(), "abc-123");

        h.insert(
            X_REQUEST_ID.clone(),
            HeaderValue::from_static("bad id<script>"),
        );
        let (id, client) = choose(&h, true);
        assert_eq!((id.len(), client), (36, None));

        h.insert(X_REQUEST_ID.clone(), HeaderValue::from_static("a"));
        h.append(X_REQUEST_ID.clone(), HeaderValue::from_static("b"));
        assert_eq!(choose(&h, true).0.len(), 36, "two ids: neither is believed");
        assert_ne!(
            choose(&HeaderMap::new(), false).0,
            choose(&HeaderMap::new(), false).0
        );
    }
}
