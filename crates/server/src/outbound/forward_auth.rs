//! The forward-auth answer: on a `forward-auth` route the caller is another proxy asking
//! whether to let a request through (nginx `auth_request`, Traefik `ForwardAuth`, Envoy
//! `ext_authz` over HTTP). A refusal has already been answered by the core (401, 403 or 405,
//! with its challenge); reaching here means allowed: `200`, no body, and the identity headers
//! the proxy copies onto the request it forwards.

use http::header::{CACHE_CONTROL, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode};
use tollgate_http::identity::is_identity_header;
use tollgate_http::request_id::X_REQUEST_ID;

use super::body::{ResponseBody, full};

/// `200` with the identity headers of the built request (and its request id): exactly the
/// headers an upstream of a proxying route would have received from tollgate.
pub fn allow<B>(built: &Request<B>, claim_headers: &[HeaderName]) -> Response<ResponseBody> {
    let mut response = Response::new(full(Vec::new()));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    for (name, value) in built.headers() {
        if is_identity_header(name.as_str(), claim_headers) || *name == X_REQUEST_ID {
            headers.append(name.clone(), value.clone());
        }
    }
    // The answer is about one request and one credential: no cache may reuse it.
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
