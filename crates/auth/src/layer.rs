//! tollgate's authentication inside a Rust service: a tower [`Layer`](tower_layer::Layer) for axum and hyper apps,
//! built from the same `[[issuers]]` and `[identity]` config the gateway reads.
//!
//! The wrapped service receives the request the way a gateway's upstream would: identity
//! headers a client sent are removed, the verified caller's are injected (`x-user-id`,
//! `x-user-type`, `x-service-name`, …), the caller's credentials are removed unless the policy
//! forwards them, and the typed [`Identity`] is a request extension (`axum::Extension<Identity>`
//! works). Refusals are the gateway's own `401`/`403` answers, byte for byte. There is no
//! second implementation: the decision is [`crate::decide::judge`], the header
//! rewrite is [`identity::strip`]/[`identity::inject`] and the refusal is
//! [`Refusal::into_response_with`], exactly what the gateway's core calls. An
//! [`AuthEvents`] observer passed to [`AuthLayer::from_config_observed`] sees the verifier's
//! events and every request's verdict.
//!
//! ```
//! use tollgate_auth::layer::{AuthLayer, Policy};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), tollgate_config::ConfigError> {
//! let auth = AuthLayer::from_toml(
//!     r#"
//!     [[issuers]]
//!     issuer = "tollgate"
//!     algorithms = ["HS256"]
//!     secret = "a-secret-of-at-least-32-bytes-for-hs256!"
//!     "#,
//! )?;
//! let billing_only = auth.with(Policy::service(["billing"]));
//! let admins = auth.with(Policy::access().roles(["admin"]));
//! # let _ = (billing_only, admins);
//! # Ok(())
//! # }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};

use super::Verifier;
use super::decide::{self, Verdict};
use super::events::AuthEvents;
use super::refusal::Refusal;
use tollgate_config::{Config, ConfigError, Env};
use tollgate_http::identity::{self, Identity};

/// A route policy for the layer: `Policy::service(["billing"])`,
/// `Policy::access().roles(["admin"])`, `Policy::authenticated()`, `Policy::public()`.
pub type Policy = super::policy::RoutePolicy;

/// Verifies callers and applies a policy before the wrapped service sees a request.
#[derive(Clone)]
pub struct AuthLayer {
    verifier: Arc<Verifier>,
    policy: Arc<Policy>,
    events: Arc<dyn AuthEvents>,
}

impl std::fmt::Debug for AuthLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthLayer")
            .field("verifier", &self.verifier)
            .field("policy", &self.policy)
            .finish()
    }
}

impl AuthLayer {
    /// Reads `[[issuers]]` and `[identity]` (and `[state]`, for revocations) from config text,
    /// `${VAR}` taken from the environment; the policy is `Policy::authenticated()` until
    /// [`AuthLayer::with`] sets another. Starts the JWKS refreshers, so call it inside a Tokio
    /// runtime; they stop when the last clone of the layer (and of its services) is dropped.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let config = Config::from_toml(text, "layer config", &Env::from_process())?;
        Ok(Self::from_config(&config))
    }

    /// Like [`AuthLayer::from_toml`], from a config file.
    pub fn from_file(path: &std::path::Path) -> Result<Self, ConfigError> {
        Ok(Self::from_config(&Config::load(
            path,
            &Env::from_process(),
        )?))
    }

    /// The layer for an already loaded config (its issuers, identity and state sections).
    pub fn from_config(config: &Config) -> Self {
        Self::from_config_observed(config, Arc::new(()))
    }

    /// Like [`AuthLayer::from_config`], reporting to `events`: the verifier's background
    /// events and, once per request, the verdict.
    pub fn from_config_observed(config: &Config, events: Arc<dyn AuthEvents>) -> Self {
        let verifier = Verifier::for_config(config, events.clone());
        verifier.start();
        Self {
            verifier: Arc::new(verifier),
            policy: Arc::new(Policy::authenticated()),
            events,
        }
    }

    /// The same issuers under another policy (the verifier, its caches and its JWKS
    /// refreshers are shared).
    pub fn with(&self, policy: Policy) -> Self {
        Self {
            verifier: self.verifier.clone(),
            policy: Arc::new(policy),
            events: self.events.clone(),
        }
    }

    /// Decides about a request's head without a service behind: on success the head is
    /// rewritten as the wrapped service would receive it and the caller returned; otherwise
    /// the refusal the layer answers with.
    ///
    /// ```
    /// use tollgate_auth::layer::{AuthLayer, Policy};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let auth = AuthLayer::from_toml(
    ///     "[[issuers]]\nissuer = \"t\"\nalgorithms = [\"HS256\"]\nsecret = \"a-secret-of-at-least-32-bytes-for-hs256!\"\n",
    /// )
    /// .unwrap()
    /// .with(Policy::service(["billing"]));
    /// let (mut parts, ()) = http::Request::get("/invoices")
    ///     .header("x-service-name", "billing") // spoofed: no token
    ///     .body(())
    ///     .unwrap()
    ///     .into_parts();
    /// let refusal = auth.authorize(&mut parts).await.unwrap_err();
    /// assert_eq!(refusal.to_string(), "unauthenticated: token missing");
    /// # }
    /// ```
    pub async fn authorize(
        &self,
        parts: &mut http::request::Parts,
    ) -> Result<Option<Arc<Identity>>, Refusal> {
        let Verdict {
            decision, caller, ..
        } = decide::judge(&self.verifier, &self.policy, parts).await;
        self.events
            .request_judged(&self.policy, caller.as_deref(), decision.as_ref().err());
        decision.map(|()| {
            rewrite(parts, &self.verifier, &self.policy, caller.as_deref());
            caller
        })
    }
}

/// The identity rules of the gateway's upstream head (rules 3, 4 and 7 of
/// `core::rewrite`), with the same functions, plus the typed identity as an extension.
fn rewrite(
    parts: &mut http::request::Parts,
    verifier: &Verifier,
    policy: &Policy,
    caller: Option<&Identity>,
) {
    identity::strip(&mut parts.headers, verifier.claim_header_names());
    if !policy.forward_authorization {
        crate::extract::remove_credentials(&mut parts.headers, verifier.sources());
        remove_query_tokens(&mut parts.uri, verifier);
    }
    if let Some(caller) = caller {
        identity::inject(&mut parts.headers, caller);
        parts.extensions.insert(caller.clone());
    }
}

/// Drops token parameters from the query, as the gateway's upstream target does.
fn remove_query_tokens(uri: &mut http::Uri, verifier: &Verifier) {
    let Some(query) = uri.query() else { return };
    let kept = super::extract::query_without_tokens(query, verifier.sources());
    if kept.as_deref() == Some(query) {
        return;
    }
    let path_and_query = match kept {
        Some(kept) => format!("{}?{kept}", uri.path()),
        None => uri.path().to_owned(),
    };
    let mut parts = uri.clone().into_parts();
    let Ok(path_and_query) = path_and_query.parse() else {
        return;
    };
    parts.path_and_query = Some(path_and_query);
    if let Ok(rebuilt) = http::Uri::from_parts(parts) {
        *uri = rebuilt;
    }
}

impl<S> tower_layer::Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            layer: self.clone(),
            inner,
        }
    }
}

/// The service [`AuthLayer`] wraps around another: any tower service of `http` requests
/// whose response body can be made from [`Bytes`] (axum's `Body`, `Full<Bytes>`, ...).
///
/// ```
/// use std::convert::Infallible;
/// use bytes::Bytes;
/// use http_body_util::Full;
/// use tollgate_auth::layer::{AuthLayer, Policy};
/// use tower::{Layer, ServiceExt};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let auth = AuthLayer::from_toml(
///     "[[issuers]]\nissuer = \"t\"\nalgorithms = [\"HS256\"]\nsecret = \"a-secret-of-at-least-32-bytes-for-hs256!\"\n",
/// )
/// .unwrap();
/// let service = auth.with(Policy::access()).layer(tower::service_fn(|_req: http::Request<Full<Bytes>>| async {
///     Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from_static(b"hello"))))
/// }));
/// let response = service.oneshot(http::Request::new(Full::new(Bytes::new()))).await.unwrap();
/// assert_eq!(response.status(), 401);
/// assert!(response.headers().contains_key("www-authenticate"));
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct AuthService<S> {
    layer: AuthLayer,
    inner: S,
}

impl<S, B, ResBody> tower_service::Service<Request<B>> for AuthService<S>
where
    S: tower_service::Service<Request<B>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    B: Send + 'static,
    ResBody: From<Bytes>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // The service that was polled ready serves this request; a fresh clone waits for the
        // next one (tower's usual hand-over).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let layer = self.layer.clone();
        Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            match layer.authorize(&mut parts).await {
                Ok(_) => inner.call(Request::from_parts(parts, body)).await,
                Err(refusal) => {
                    let request_id = tollgate_http::request_id::choose(&parts.headers, false).0;
                    Ok(refusal
                        .into_response_with(request_id.to_str().unwrap_or_default(), ResBody::from))
                }
            }
        })
    }
}
