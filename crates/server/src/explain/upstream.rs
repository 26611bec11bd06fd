//! The request that would go upstream, with every secret in it masked.

use http::{HeaderMap, Request};

use super::{SentHeader, WouldSend};

/// `eyJhbGci…(412 bytes)`: enough to recognise a token, never enough to use it.
pub(super) fn mask_token(token: &str) -> String {
    format!("{}…({} bytes)", &token[..token.len().min(8)], token.len())
}

/// Header values never printed as they are.
fn masked(name: &str, value: &str) -> String {
    match name {
        "authorization" | "proxy-authorization" => match value.split_once(' ') {
            Some((scheme, credential)) => format!("{scheme} {}", mask_token(credential)),
            None => "****".to_owned(),
        },
        "cookie" => value
            .split(';')
            .map(|pair| match pair.split_once('=') {
                Some((name, _)) => format!("{}=****", name.trim()),
                None => "****".to_owned(),
            })
            .collect::<Vec<_>>()
            .join("; "),
        "x-tollgate-assertion" => mask_token(value),
        _ => value.to_owned(),
    }
}

/// The upstream request's line and headers, each marked kept or set against the client's.
pub(super) fn would_send<B>(
    client: &HeaderMap,
    upstream: &Request<B>,
    note: Option<String>,
) -> WouldSend {
    let headers = upstream
        .headers()
        .iter()
        .map(|(name, value)| {
            let text = String::from_utf8_lossy(value.as_bytes());
            let kept = client.get_all(name).iter().any(|v| v == value);
            SentHeader {
                name: name.as_str().to_owned(),
                value: masked(name.as_str(), &text),
                origin: if kept { "kept" } else { "set" },
            }
        })
        .collect();
    let mut removed: Vec<String> = client
        .keys()
        .filter(|name| !upstream.headers().contains_key(*name))
        .map(|name| name.as_str().to_owned())
        .collect();
    removed.dedup();
    WouldSend {
        request_line: format!("{} {}", upstream.method(), upstream.uri()),
        headers,
        removed,
        note,
    }
}
