//! The one authentication decision, shared by the gateway's core and the embeddable
//! [`AuthLayer`](crate::layer::AuthLayer): the credentials a policy takes (tokens, the
//! connection's client certificate, or both) are verified, then the policy judges the caller.

use std::sync::Arc;

use http::request::Parts;

use super::certificate::ClientCertificate;
use super::policy::{Credentials, Forbidden, RoutePolicy};
use super::refusal::Refusal;
use super::verify::Rejected;
use super::{AuthError, Verifier, extract};
use tollgate_http::identity::Identity;

/// What was decided about a request's credentials.
#[derive(Debug)]
pub struct Verdict {
    /// Allowed, or the refusal to answer with.
    pub decision: Result<(), Refusal>,
    /// The verified caller (also on a refusal by policy and for a revoked token, for metrics
    /// and audit); `None` when nothing was verified, or on a public route for a token it does
    /// not trust.
    pub caller: Option<Arc<Identity>>,
    /// A token was checked now rather than found in the verified-token cache (for traces).
    pub checked: bool,
}

/// Verifies the caller of a request with `parts` and applies `policy`.
pub async fn judge(verifier: &Verifier, policy: &RoutePolicy, parts: &Parts) -> Verdict {
    judge_as(verifier, policy, parts, &parts.method).await
}

/// Like [`judge`], judging the route's `methods` rule on `method` (a forward-auth
/// subrequest's original method) instead of the request's own.
pub async fn judge_as(
    verifier: &Verifier,
    policy: &RoutePolicy,
    parts: &Parts,
    method: &http::Method,
) -> Verdict {
    if !policy.allows_method(method) {
        let allowed: Vec<&str> = policy.methods.iter().map(|m| m.as_str()).collect();
        return Verdict {
            decision: Err(Refusal::MethodNotAllowed(allowed.join(", ").into())),
            caller: None,
            checked: false,
        };
    }
    let mut checked = false;
    let verified = verify_credentials(verifier, parts, policy.credentials, &mut checked).await;
    let (decision, caller) = match verified {
        Ok(identity) => authorize(policy, identity),
        Err(Unverified::Mismatch(identity)) => (
            Err(Refusal::Forbidden(Forbidden::CertificateMismatch)),
            Some(identity),
        ),
        Err(Unverified::Refused(_) | Unverified::Revoked(_)) if !policy.requires_token() => {
            (Ok(()), None)
        }
        Err(Unverified::Refused(e)) => (Err(Refusal::Unauthenticated(e)), None),
        Err(Unverified::Revoked(identity)) => (
            Err(Refusal::Unauthenticated(AuthError::Revoked)),
            Some(identity),
        ),
    };
    Verdict {
        decision,
        caller,
        checked,
    }
}

/// Why no identity came out of the credentials.
enum Unverified {
    /// Missing or invalid credentials.
    Refused(AuthError),
    /// A valid token on the revocation list.
    Revoked(Arc<Identity>),
    /// A valid token whose service is not the client certificate's.
    Mismatch(Arc<Identity>),
}

/// The caller's identity from the credentials the policy takes: its token(s), its
/// connection's client certificate, or both.
async fn verify_credentials(
    verifier: &Verifier,
    parts: &Parts,
    credentials: Credentials,
    checked: &mut bool,
) -> Result<Arc<Identity>, Unverified> {
    let certificate = || match parts.extensions.get::<Arc<ClientCertificate>>() {
        None => Err(Unverified::Refused(AuthError::CertificateRequired)),
        Some(certificate) => certificate
            .identity
            .clone()
            .ok_or(Unverified::Refused(AuthError::CertificateNotRegistered)),
    };
    let tokens = extract::extract(&parts.headers, parts.uri.query(), verifier.sources());
    let presented = !matches!(&tokens, Ok(t) if t.is_empty());
    let token = async {
        match tokens {
            Err(_) => Err(Unverified::Refused(AuthError::MalformedHeader)),
            Ok(tokens) if tokens.is_empty() => Err(Unverified::Refused(AuthError::Missing)),
            Ok(tokens) => verifier
                .verify_all(&tokens, checked)
                .await
                .map_err(|rejected| match rejected {
                    Rejected::Invalid(e) => Unverified::Refused(e),
                    Rejected::Revoked(identity) => Unverified::Revoked(identity),
                }),
        }
    };
    match credentials {
        Credentials::Token => token.await,
        Credentials::Certificate => certificate(),
        Credentials::TokenOrCertificate if presented => token.await,
        Credentials::TokenOrCertificate => certificate(),
        Credentials::TokenAndCertificate => {
            let identity = token.await?;
            let by_certificate = certificate()?;
            if identity.service.is_some() && identity.service == by_certificate.service {
                Ok(identity)
            } else {
                Err(Unverified::Mismatch(identity))
            }
        }
    }
}

/// The decision about a verified caller: the policy's rules on protected routes; on public
/// routes, a token of an issuer the route does not trust (like a bad one) only means no
/// identity headers.
fn authorize(
    policy: &RoutePolicy,
    identity: Arc<Identity>,
) -> (Result<(), Refusal>, Option<Arc<Identity>>) {
    if !policy.requires_token() {
        return match policy.accepts_issuer(&identity) {
            true => (Ok(()), Some(identity)),
            false => (Ok(()), None),
        };
    }
    match policy.authorize(&identity) {
        Ok(()) => (Ok(()), Some(identity)),
        Err(Forbidden::InsufficientScope) => (
            Err(Refusal::InsufficientScope(policy.scope_challenge.clone())),
            Some(identity),
        ),
        Err(forbidden) => (Err(Refusal::Forbidden(forbidden)), Some(identity)),
    }
}
