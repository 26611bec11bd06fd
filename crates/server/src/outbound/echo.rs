//! The built-in `echo` upstream: answers with JSON describing the request it received.

use std::collections::BTreeMap;

use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Request, Response};
use serde::Serialize;

use super::body::{ResponseBody, full};

#[derive(Serialize)]
struct Echo<'a> {
    method: &'a str,
    path: &'a str,
    query: Option<&'a str>,
    headers: BTreeMap<&'a str, Vec<String>>,
}

/// The echo answer for the built upstream request: what any other upstream would receive.
pub fn respond<B>(request: &Request<B>) -> Response<ResponseBody> {
    let (method, headers) = (request.method(), request.headers());
    let (path, query) = (request.uri().path(), request.uri().query());
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
    let mut body = serde_json::to_vec_pretty(&echo).unwrap_or_default();
    // A trailing newline, so a terminal prompt (or the next command's output) starts on its
    // own line after `curl`.
    body.push(b'\n');
    let mut response = Response::new(full(body));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
