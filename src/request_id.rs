//! The `x-request-id` that ties a request's logs, upstream call and response together.

use http::HeaderMap;
use http::header::{HeaderName, HeaderValue};

/// `x-request-id`
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest client-supplied id kept; longer ones are replaced.
const MAX_LEN: usize = 128;

/// Keeps a well-formed client `x-request-id`, else sets a fresh UUID; returns the id.
pub fn ensure(headers: &mut HeaderMap) -> HeaderValue {
    if let Some(id) = headers.get(&X_REQUEST_ID)
        && is_acceptable(id.as_bytes())
        && headers.get_all(&X_REQUEST_ID).iter().count() == 1
    {
        return id.clone();
    }
    let id = generate();
    headers.insert(X_REQUEST_ID.clone(), id.clone());
    id
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
    fn keeps_good_ids_and_replaces_bad_ones() {
        let mut h = HeaderMap::new();
        h.insert(X_REQUEST_ID.clone(), HeaderValue::from_static("abc-123"));
        assert_eq!(ensure(&mut h), "abc-123");

        let mut h = HeaderMap::new();
        h.insert(
            X_REQUEST_ID.clone(),
            HeaderValue::from_static("bad id<script>"),
        );
        let id = ensure(&mut h);
        assert_eq!(id.len(), 36);
        assert_eq!(h[&X_REQUEST_ID], id);

        let mut h = HeaderMap::new();
        let id = ensure(&mut h);
        assert_eq!(h[&X_REQUEST_ID], id);
    }
}
