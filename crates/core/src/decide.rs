//! The socket-free core: decide about a request and build the one upstream request.
//!
//! ```text
//! request id → URI length → canonical host → normalised path → route → declared body size
//!   → authenticate → authorize → upgrade allow-list → upstream target
//!   → upstream head (rewrite rules, in order) → identity assertion → vendor credential
//! ```
//!
//! [`Core::decide`] takes the client's request (any body type, so it is tested in-process)
//! and returns a refusal or a [`Decision`] plus the fully built upstream request: target URI,
//! final headers, `Host`. The gateway's transports send that value and never look at the
//! client's request again: what the policy judged is exactly what is forwarded.

use std::sync::Arc;
use std::time::Duration;

use http::header::{AUTHORIZATION, CONTENT_LENGTH};
use http::request::Parts;
use http::{HeaderValue, Request, Uri};

use crate::credentials::events::CredentialEvents;
use crate::credentials::{ProviderState, Providers, TokenCache};
use crate::error::GatewayError;
use crate::limits;
use crate::rewrite;
use crate::routing::RouteTable;
use crate::trace::{AuthOutcome, Step, Trace};
use crate::upstream::{transport, upstream_request, upstream_target};
use tollgate_auth::decide::{self, Verdict};
use tollgate_auth::policy::Forbidden;
use tollgate_auth::{Refusal, Verifier};
use tollgate_config::signer::{AssertionSigner, Bound, X_TOLLGATE_ASSERTION};
use tollgate_config::{Route, Upstream};
use tollgate_http::forwarded::{self, ClientIp, TrustedProxies};
use tollgate_http::grpc;
use tollgate_http::host::{self, CanonicalHost};
use tollgate_http::identity::Identity;
use tollgate_http::path::normalize_path;
use tollgate_http::request_id;
use tollgate_http::upgrade;
use tollgate_state::ratelimit::RateLimiter;

/// Every background event the core's parts report: the verifier's and revocation list's
/// ([`AuthEvents`](tollgate_auth::AuthEvents)) and the vendor credential caches'.
pub trait CoreEvents: tollgate_auth::AuthEvents + CredentialEvents {}

impl<T: tollgate_auth::AuthEvents + CredentialEvents> CoreEvents for T {}

/// The decision-making half of the gateway, shared by every request under one config.
#[derive(Debug)]
pub struct Core {
    pub(crate) routes: RouteTable,
    pub(crate) max_uri_bytes: usize,
    pub(crate) trusted_proxies: TrustedProxies,
    pub(crate) verifier: Verifier,
    pub(crate) providers: Providers,
    pub(crate) assertion: Option<Arc<AssertionSigner>>,
    /// Every route's rate limits (kept across reloads that keep the store).
    pub(crate) limiter: Arc<RateLimiter>,
    /// Each route's limits' places in the limiter, by route index, hashed once.
    pub(crate) limit_places: Vec<Box<[u64]>>,
    /// Note the slow steps' times in the [`Trace`] (traces are on).
    pub(crate) timing: bool,
}

/// What was decided about a request, for the transports and the observers.
#[derive(Debug)]
pub struct Decision {
    /// The matched route.
    pub route: Arc<Route>,
    /// The verified caller; `None` on public routes without a valid token and on exempt
    /// preflights.
    pub identity: Option<Arc<Identity>>,
    /// The `Upgrade` value forwarded (allowed protocols only), if the client asked for one the
    /// route allows. The transport pairs it with the client's socket hand-off.
    pub upgrade: Option<HeaderValue>,
    /// The vendor credential attached to the upstream request, if the route has one.
    pub credential: Option<Attached>,
    /// How long the upstream has to answer: the route's timeout, or a gRPC call's shorter
    /// `grpc-timeout`.
    pub timeout: Duration,
    /// Send over HTTP/2 with prior knowledge (a gRPC call, or an `h2c` route) when the
    /// upstream is plain HTTP; an https upstream negotiates by ALPN either way.
    pub http2: bool,
}

/// The vendor bearer token attached upstream, kept to replace it after a vendor `401`.
#[derive(Debug)]
pub struct Attached {
    /// The provider's cache.
    pub cache: Arc<TokenCache>,
    /// The `Authorization` value sent.
    pub bearer: HeaderValue,
}

impl Core {
    /// Decides about `request` from `peer`: a refusal, or the decision and the upstream
    /// request to send (its body is the client's, untouched). `trace` is filled in on the way.
    pub async fn decide<B: http_body::Body>(
        &self,
        request: Request<B>,
        peer: &ClientIp,
        trace: &mut Trace,
    ) -> Result<(Decision, Request<B>), GatewayError> {
        self.decide_with(request, peer, trace, true).await
    }

    /// Like [`Core::decide`] without contacting anything: a vendor route's credential is not
    /// fetched, so its `Authorization` is absent (for `tollgate explain`).
    pub async fn decide_offline<B: http_body::Body>(
        &self,
        request: Request<B>,
        peer: &ClientIp,
        trace: &mut Trace,
    ) -> Result<(Decision, Request<B>), GatewayError> {
        self.decide_with(request, peer, trace, false).await
    }

    async fn decide_with<B: http_body::Body>(
        &self,
        request: Request<B>,
        peer: &ClientIp,
        trace: &mut Trace,
        attach_credential: bool,
    ) -> Result<(Decision, Request<B>), GatewayError> {
        let (mut parts, body) = request.into_parts();
        let (trusted_peer, client) = self.identify_client(&parts, peer, trace);
        let (host, route) = self.route(&parts, trace)?;
        let exempt_preflight =
            route
                .policy
                .is_exempt_preflight(&parts.method, &parts.headers, body.is_end_stream());
        let identity = if exempt_preflight {
            None
        } else {
            let admit = (trusted_peer, &client, attach_credential);
            self.admit(&parts, &route, admit, trace).await?
        };
        let upgrade = upgrade::allowed(parts.version, &parts.headers, &route.upgrades);
        let (grpc_timeout, http2) = transport(trace.grpc, &route, &parts.headers, &upgrade);
        let path = trace.path.as_deref().unwrap_or("/");
        let target = upstream_target(&route, path, &parts.uri, self.verifier.sources())?;
        rewrite::upstream_headers(
            &mut parts.headers,
            rewrite::Inputs {
                route: &route,
                peer,
                trusted_peer,
                client,
                host: host.as_ref(),
                request_id: &trace.request_id,
                identity: identity.as_deref(),
                sources: self.verifier.sources(),
                claim_headers: self.verifier.claim_header_names(),
                exempt_preflight,
                upgrade: upgrade.clone(),
                http2,
                grpc_timeout,
                certificate: parts
                    .extensions
                    .get::<Arc<tollgate_auth::certificate::ClientCertificate>>()
                    .map(Arc::as_ref),
            },
        );
        self.assert_identity(&route, identity.as_deref(), trace, &target, &mut parts)?;
        let credential = self
            .attach_credential(&route, &mut parts.headers, trace, attach_credential)
            .await?;
        let decision = Decision {
            timeout: grpc_timeout.unwrap_or(route.timeout),
            route,
            identity,
            upgrade,
            credential,
            http2,
        };
        Ok((decision, upstream_request(parts, body, target)))
    }

    /// The request id (the client's own kept apart unless the peer is trusted), the client
    /// address, and whether the client makes a gRPC call (so that even a refusal of its first
    /// step is answered in gRPC's terms), into `trace`; whether the peer is a trusted proxy,
    /// and the address.
    fn identify_client(
        &self,
        parts: &Parts,
        peer: &ClientIp,
        trace: &mut Trace,
    ) -> (bool, HeaderValue) {
        let headers = &parts.headers;
        trace.grpc = grpc::is_call(parts.version, headers);
        let trusted_peer = self.trusted_proxies.contains(peer.ip());
        let (request_id, client_request_id) = request_id::choose(headers, trusted_peer);
        trace.request_id = request_id;
        trace.client_request_id = client_request_id;
        let client = forwarded::client_address(headers, peer, trusted_peer, &self.trusted_proxies);
        trace.client = Some(client.clone());
        (trusted_peer, client)
    }

    /// Adds the signed identity assertion on routes that send one, bound to the request as
    /// built (its final headers and target path).
    fn assert_identity(
        &self,
        route: &Route,
        identity: Option<&Identity>,
        trace: &Trace,
        target: &Uri,
        parts: &mut Parts,
    ) -> Result<(), GatewayError> {
        if route.identity_assertion
            && let Some(signer) = &self.assertion
        {
            let assertion = assertion_for(
                signer,
                identity,
                trace,
                &parts.method,
                target,
                &parts.headers,
            )?;
            parts
                .headers
                .insert(X_TOLLGATE_ASSERTION.clone(), assertion);
        }
        Ok(())
    }

    /// The request head's checks, in order: target length, canonical host, normalised path,
    /// route, declared body size. Keeps the path and route in `trace`.
    fn route(
        &self,
        parts: &Parts,
        trace: &mut Trace,
    ) -> Result<(Option<CanonicalHost>, Arc<Route>), GatewayError> {
        let target_len = parts.uri.path_and_query().map_or(0, |pq| pq.as_str().len());
        if target_len > self.max_uri_bytes {
            return Err(GatewayError::UriTooLong(self.max_uri_bytes));
        }
        let host = host::request_host(parts.version, &parts.uri, &parts.headers)?;
        let path: &str = trace
            .path
            .insert(normalize_path(parts.uri.path())?.into_owned());
        let route = self
            .routes
            .find(host.as_ref().map(CanonicalHost::name), path)
            .ok_or(GatewayError::NoRoute)?
            .clone();
        trace.route = Some(route.clone());
        check_declared_length(parts, route.max_body_bytes)?;
        Ok((host, route))
    }

    /// Attaches the route's vendor bearer token, if it has a provider, unless the decision is
    /// made offline (`online` false: `explain`, which contacts nothing).
    async fn attach_credential(
        &self,
        route: &Route,
        headers: &mut http::HeaderMap,
        trace: &mut Trace,
        online: bool,
    ) -> Result<Option<Attached>, GatewayError> {
        let Some(cache) = route.upstream_auth.and_then(|i| self.providers.get(i)) else {
            return Ok(None);
        };
        if !online {
            return Ok(None);
        }
        let waits = self.timing && !matches!(cache.state(), ProviderState::Valid(_));
        let noted = waits.then(Step::start);
        // Boxed: the token cache's future is large, and inline it would grow every request's
        // future, vendor route or not.
        let bearer = Box::pin(cache.bearer(cache.wait_within(route.timeout))).await;
        if let Some(noted) = noted {
            trace.steps().credential = Some(Step::end(noted));
        }
        let bearer = bearer.map_err(GatewayError::CredentialsUnavailable)?;
        headers.insert(AUTHORIZATION, bearer.clone());
        Ok(Some(Attached {
            cache: cache.clone(),
            bearer,
        }))
    }

    /// Verifies the caller, applies the route's policy, then charges its rate limits (only
    /// looks at them when not `online`). `None` when a public route goes on without an
    /// identity. A preflight exempt from the policy does not come here: no limit charges it.
    async fn admit(
        &self,
        parts: &Parts,
        route: &Route,
        (trusted_peer, client, online): (bool, &HeaderValue, bool),
        trace: &mut Trace,
    ) -> Result<Option<Arc<Identity>>, GatewayError> {
        let identity = self.authenticate(parts, route, trusted_peer, trace).await?;
        let places = self
            .limit_places
            .get(route.index)
            .map_or(&[][..], |p| &p[..]);
        let limiter = (&*self.limiter, places);
        limits::apply(limiter, route, identity.as_deref(), client, trace, online).await?;
        Ok(identity)
    }

    /// Verifies the caller and applies the route's policy; `None` when a public route goes
    /// on without an identity. What was found is kept in `trace` for the observers.
    async fn authenticate(
        &self,
        parts: &Parts,
        route: &Route,
        trusted_peer: bool,
        trace: &mut Trace,
    ) -> Result<Option<Arc<Identity>>, GatewayError> {
        // A forward-auth subrequest is judged for the request it asks about: its method comes
        // from the proxy's headers, believed from a trusted proxy only.
        let original = match route.upstream {
            Upstream::ForwardAuth if trusted_peer => forwarded::original_method(&parts.headers),
            _ => None,
        };
        let method = original.as_ref().unwrap_or(&parts.method);
        let noted = self.timing.then(Step::start);
        let Verdict {
            mut decision,
            caller,
            checked,
        } = decide::judge_as(&self.verifier, &route.policy, parts, method).await;
        if let Some(noted) = noted.filter(|_| checked) {
            trace.steps().verification = Some(Step::end(noted));
        }
        if matches!(route.upstream, Upstream::ForwardAuth)
            && let Err(Refusal::MethodNotAllowed(_)) = decision
        {
            decision = Err(Refusal::Forbidden(Forbidden::MethodNotAllowed));
        }
        trace.auth = Some(AuthOutcome {
            caller: caller.clone(),
            refusal: decision.as_ref().err().cloned(),
        });
        decision.map(|()| caller).map_err(GatewayError::from)
    }
}

/// The identity assertion for the request as built: signed over the request id, method, path
/// and `Host` being sent, and the identity headers injected (`x-tenant-id` as sent).
fn assertion_for(
    signer: &AssertionSigner,
    identity: Option<&Identity>,
    trace: &Trace,
    method: &http::Method,
    target: &Uri,
    headers: &http::HeaderMap,
) -> Result<HeaderValue, GatewayError> {
    let text = |name: &http::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    let bound = Bound {
        rid: trace.request_id.to_str().unwrap_or_default(),
        method: method.as_str(),
        path: target.path(),
        // The host the upstream uses: `Host` when tollgate sends one, else the target's
        // authority, which an https upstream gets in `:authority` (or a `Host` made from it).
        host: text(&http::header::HOST).or_else(|| target.authority().map(|a| a.as_str())),
        tenant: identity.and(text(&tollgate_http::identity::X_TENANT_ID)),
    };
    let claims = signer.claims(identity, bound, std::time::SystemTime::now());
    signer.sign(&claims).map_err(|e| {
        tracing::error!(error = %e, "identity assertion not signed");
        GatewayError::Internal("identity assertion could not be signed")
    })
}

#[inline]
/// Refuses a declared body over the limit before anything is sent upstream.
fn check_declared_length(parts: &Parts, limit: u64) -> Result<(), GatewayError> {
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(length) if length > limit => Err(GatewayError::BodyTooLarge { limit }),
        _ => Ok(()),
    }
}
