//! Opaque tokens, asked about at the issuer's RFC 7662 introspection endpoint. An answer is
//! reused for a bounded time and never beyond the token's `exp`; concurrent requests with the
//! same new token wait for one question (single flight); a failing endpoint opens a circuit
//! breaker, so an outage costs each request nothing but a fast refusal until the cooldown ends.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use http::{Request, StatusCode};
use http_body_util::Full;
use serde_json::{Map, Value};
use tracing::warn;

use crate::AuthError;
use tollgate_client::fetch::{FetchClient, fetch, fetch_client};
use tollgate_config::IntrospectionConfig;

/// Largest introspection answer read.
const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// Failures in a row that open the breaker.
const BREAKER_THRESHOLD: u32 = 5;
/// How long an open breaker refuses without asking.
const BREAKER_COOLDOWN: Duration = Duration::from_secs(10);
/// Answers kept at most (distinct active tokens).
const CACHE_ENTRIES: usize = 10_000;

/// An active token's claims (the introspection answer), and until when they may be reused.
#[derive(Clone)]
struct Answer {
    claims: std::sync::Arc<Map<String, Value>>,
    until: Instant,
}

/// One issuer's introspection endpoint.
pub struct Introspector {
    config: IntrospectionConfig,
    issuer: String,
    client: FetchClient,
    answers: quick_cache::sync::Cache<String, Answer>,
    breaker: Mutex<Breaker>,
}

#[derive(Default)]
struct Breaker {
    failures: u32,
    open_until: Option<Instant>,
}

impl std::fmt::Debug for Introspector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Introspector")
            .field("url", &self.config.url)
            .field("cached", &self.answers.len())
            .finish_non_exhaustive()
    }
}

impl Introspector {
    /// An introspector for `issuer` (its `iss`, which an answer naming one must match).
    pub fn new(issuer: &str, config: IntrospectionConfig) -> Self {
        Self {
            client: fetch_client(&config.roots),
            issuer: issuer.to_owned(),
            config,
            answers: quick_cache::sync::Cache::new(CACHE_ENTRIES),
            breaker: Mutex::new(Breaker::default()),
        }
    }

    /// The claims of an active `token`: reused while fresh, else asked once for all the
    /// callers that present it meanwhile (they wait for the one question).
    pub async fn claims(
        &self,
        token: &str,
        now: u64,
    ) -> Result<std::sync::Arc<Map<String, Value>>, AuthError> {
        loop {
            match self.answers.get_value_or_guard_async(token).await {
                Ok(answer) if answer.until > Instant::now() => return Ok(answer.claims),
                // Stale: forget it and ask again.
                Ok(_) => {
                    self.answers.remove(token);
                }
                Err(guard) => {
                    // On an error the guard is dropped and a waiting caller asks in turn.
                    let answer = self.ask(token, now).await?;
                    let claims = answer.claims.clone();
                    let _ = guard.insert(answer);
                    return Ok(claims);
                }
            }
        }
    }

    /// Asks the endpoint, through the breaker.
    async fn ask(&self, token: &str, now: u64) -> Result<Answer, AuthError> {
        if self.breaker_open() {
            return Err(AuthError::IntrospectionUnavailable);
        }
        let answer = self.request(token).await;
        let mut breaker = self.breaker.lock().unwrap_or_else(|e| e.into_inner());
        let Some(claims) = answer else {
            breaker.failures += 1;
            if breaker.failures >= BREAKER_THRESHOLD {
                breaker.open_until = Some(Instant::now() + BREAKER_COOLDOWN);
                warn!(issuer = %self.issuer, "introspection failing; refusing opaque tokens for {BREAKER_COOLDOWN:?}");
            }
            return Err(AuthError::IntrospectionUnavailable);
        };
        *breaker = Breaker::default();
        drop(breaker);
        self.judge(claims, now)
    }

    fn breaker_open(&self) -> bool {
        let mut breaker = self.breaker.lock().unwrap_or_else(|e| e.into_inner());
        match breaker.open_until {
            Some(until) if Instant::now() < until => true,
            Some(_) => {
                // Half-open: one more failure opens it again at once.
                breaker.open_until = None;
                breaker.failures = BREAKER_THRESHOLD - 1;
                false
            }
            None => false,
        }
    }

    /// One POST to the endpoint; `None` when it gave no usable answer (unreachable, an error
    /// status, not JSON), which counts against the breaker.
    async fn request(&self, token: &str) -> Option<Map<String, Value>> {
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("token", token)
            .append_pair("token_type_hint", "access_token")
            .finish();
        let basic = STANDARD.encode(format!(
            "{}:{}",
            form_encode(&self.config.client_id),
            form_encode(&String::from_utf8_lossy(self.config.client_secret.expose()))
        ));
        let request = Request::post(self.config.url.clone())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(ACCEPT, "application/json")
            .header(AUTHORIZATION, format!("Basic {basic}"))
            .body(Full::new(Bytes::from(form)))
            .ok()?;
        match fetch(&self.client, request, self.config.timeout, MAX_ANSWER_BYTES).await {
            Ok((head, body)) if head.status == StatusCode::OK => {
                serde_json::from_slice::<Map<String, Value>>(&body).ok()
            }
            Ok((head, _)) => {
                warn!(issuer = %self.issuer, status = %head.status, "introspection answered an error");
                None
            }
            Err(e) => {
                warn!(issuer = %self.issuer, error = %e, "introspection failed");
                None
            }
        }
    }

    /// An answer's verdict: `active` must be `true`, `iss` (if given) the issuer's, `exp` (if
    /// given) in the future; reused until the earlier of `exp` and the cache period.
    fn judge(&self, mut claims: Map<String, Value>, now: u64) -> Result<Answer, AuthError> {
        if claims.get("active") != Some(&Value::Bool(true)) {
            return Err(AuthError::Inactive);
        }
        match claims.get("iss") {
            None => {
                claims.insert("iss".into(), Value::String(self.issuer.clone()));
            }
            Some(Value::String(iss)) if *iss == self.issuer => {}
            Some(_) => return Err(AuthError::IssuerNotAccepted),
        }
        let exp = match claims.get("exp") {
            None => None,
            Some(value) => Some(
                value
                    .as_u64()
                    .ok_or(AuthError::InvalidClaim("exp".into()))?,
            ),
        };
        if exp.is_some_and(|exp| exp <= now) {
            return Err(AuthError::Expired);
        }
        let left = exp.map_or(self.config.cache, |exp| Duration::from_secs(exp - now));
        Ok(Answer {
            claims: std::sync::Arc::new(claims),
            until: Instant::now() + left.min(self.config.cache),
        })
    }
}

/// RFC 6749 §2.3.1: client credentials are form-encoded before Basic authentication.
fn form_encode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}
