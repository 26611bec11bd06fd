//! The last line of defence: a panic while handling one request is answered, not dropped.

use std::convert::Infallible;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::Poll;

use http::Response;
use tracing::error;

use crate::metrics::Metrics;
use crate::outbound::body::ResponseBody;
use tollgate_core::error::GatewayError;

/// Runs a request's handling; a panic inside it becomes a counted `500` JSON answer instead
/// of a connection closed without a word (and, on HTTP/2, instead of every stream beside it).
/// The future is polled where it is pinned: a request's future is several kilobytes, and
/// moving it into a wrapper cost ~10,000 instructions a request in copies.
pub async fn answer_panics<F>(
    mut handling: Pin<&mut F>,
    metrics: &Metrics,
) -> Response<ResponseBody>
where
    F: Future<Output = Result<Response<ResponseBody>, Infallible>>,
{
    // Unwind safety: the handling future is dropped right after the panic, and everything it
    // shares (metrics, caches, pools) is behind atomics or locks that never stay poisoned in
    // a way later requests depend on.
    let outcome = std::future::poll_fn(|cx| {
        match std::panic::catch_unwind(AssertUnwindSafe(|| handling.as_mut().poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(Ok(response))) => Poll::Ready(Some(response)),
            Ok(Poll::Ready(Err(never))) => match never {},
            Err(_) => Poll::Ready(None),
        }
    })
    .await;
    outcome.unwrap_or_else(|| {
        metrics.request_panics.inc();
        error!("request handling panicked; answered 500 (this is a bug: please report it)");
        crate::outbound::body::error_response(
            &GatewayError::Internal("request handling panicked"),
            "-",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn a_panic_is_answered_500_json_and_counted() {
        let metrics = Metrics::new();
        let panicking = async {
            let numbers: Vec<u64> = Vec::new();
            // Indexing past the end: the kind of bug the backstop exists for.
            #[allow(clippy::indexing_slicing)]
            let n = numbers[usize::from(numbers.is_empty())];
            Ok::<_, Infallible>(Response::new(crate::outbound::body::full(n.to_string())))
        };
        let response = answer_panics(std::pin::pin!(panicking), &metrics).await;
        assert_eq!(response.status(), 500);
        assert_eq!(response.headers()["content-type"], "application/json");
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["error"], "internal error");
        assert_eq!(metrics.request_panics.get(), 1);

        let fine = async { Ok::<_, Infallible>(Response::new(crate::outbound::body::full("ok"))) };
        assert_eq!(
            answer_panics(std::pin::pin!(fine), &metrics).await.status(),
            200
        );
        assert_eq!(metrics.request_panics.get(), 1);
    }
}
