//! The built-in `echo` upstream: answers with JSON describing the request it received.

use std::collections::BTreeMap;

use http::header::{CONTENT_TYPE, HeaderValue};
use http::{HeaderMap, Method, Response};
use serde::Serialize;

use crate::body::{ResponseBody, full};

#[derive(Serialize)]
struct Echo<'a> {
    method: &'a str,
    path: &'a str,
    query: Option<&'a str>,
    headers: BTreeMap<&'a str, Vec<String>>,
}

/// The echo answer for a request as the upstream would receive it (after any rewrite).
pub fn respond(
    method: &Method,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Response<ResponseBody> {
    let mut map: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (name, value) in headers {
        map.entry(name.as_str())
            .or_default()
            .push(String::from_utf8_lossy(value.as_bytes()).into_owned());
    }
    let echo = Echo {
        method: method.as_str(),
        path,
        query,
        headers: map,
    };
    let body = serde_json::to_vec_pretty(&echo).unwrap_or_default();
    let mut response = Response::new(full(body));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
