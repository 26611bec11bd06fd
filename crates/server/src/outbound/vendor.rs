//! The vendor route's exchange: the core attached the vendor's bearer token; on a vendor `401`
//! the token is rejected and the request replayed once with a fresh one.

use std::time::Duration;

use http::header::AUTHORIZATION;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Either, Full, Limited};

use super::forward::{self, Leg, Tunnel};
use crate::conn::body::ClientBody;
use crate::outbound::body::ResponseBody;
use tollgate_core::Attached;
use tollgate_core::GatewayError;
use tollgate_core::credentials::AfterRejection;

/// Forwards a request on a vendor route, whose vendor token the core already attached. On a
/// vendor `401`, if the request's body was small enough to keep, the token is rejected (see
/// [`TokenCache::reject`]) and the request replayed once with a new one; within
/// `relogin_interval` of the last such login the vendor's `401` is returned instead.
pub async fn forward_with_credential(
    leg: Leg<'_>,
    attached: &Attached,
    request: Request<ClientBody>,
    upgrade: Option<Tunnel>,
) -> Result<(Response<ResponseBody>, Duration), GatewayError> {
    let (parts, body) = request.into_parts();
    let keep = attached
        .cache
        .config()
        .replay_body_bytes
        .min(leg.body_limit);
    let declared = http_body::Body::size_hint(&body).exact();
    let replayable = upgrade.is_none() && declared.is_some_and(|n| n <= keep);
    if !replayable {
        let limit = usize::try_from(leg.body_limit).unwrap_or(usize::MAX);
        let request = Request::from_parts(parts, Either::Left(Limited::new(body, limit)));
        return forward::exchange(leg, request, upgrade).await;
    }
    // The body is held whole before anything is sent, so the route's timeout bounds reading it
    // too: a client trickling its declared bytes gets 408, not an indefinite hold on the buffer.
    let collect = Limited::new(body, usize::try_from(keep).unwrap_or(usize::MAX)).collect();
    let bytes = tokio::time::timeout(leg.timeout, collect)
        .await
        .map_err(|_| GatewayError::RequestBodyTimeout(leg.timeout))?
        .map_err(|e| forward::classify(e, leg.body_limit))?
        .to_bytes();
    let retry = Request::builder()
        .method(parts.method.clone())
        .uri(parts.uri.clone())
        .version(parts.version);
    let retry_headers = parts.headers.clone();
    let request = Request::from_parts(parts, Either::Right(Full::new(bytes.clone())));
    let first = forward::exchange(leg, request, None).await?;
    if first.0.status() != StatusCode::UNAUTHORIZED {
        return Ok(first);
    }
    if attached.cache.reject(&attached.bearer) == AfterRejection::GiveUp {
        return Ok(first);
    }
    let fresh = attached
        .cache
        .bearer(attached.cache.wait_within(leg.timeout))
        .await
        .map_err(GatewayError::CredentialsUnavailable)?;
    let mut request = retry
        .body(Either::Right(Full::new(bytes)))
        .map_err(|_| GatewayError::Internal("replayed request could not be rebuilt"))?;
    *request.headers_mut() = retry_headers;
    request.headers_mut().insert(AUTHORIZATION, fresh);
    tracing::info!(provider = %attached.cache.name(), "replaying request once with a fresh upstream token");
    forward::exchange(leg, request, None).await
}
