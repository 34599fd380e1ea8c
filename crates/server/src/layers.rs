//! The layers every request passes, applied once around every surface (token service, control
//! plane, directory, agents' API, Key Vault, console):
//!
//! - request ids: one id per request, minted here and nowhere else; it is the `x-ms-request-id`
//!   header, the id in a 500 body, and the correlation id of the activity log unless the
//!   client sent `x-ms-client-request-id` (echoed as `x-ms-correlation-request-id`, as ARM
//!   does). Handlers read them with [`RequestIds::current`].
//! - a tracing span per request carrying the request id, method and path;
//! - panic catching: a panicking handler answers a generic 500 with the request id;
//! - the request body limit.

use std::time::Instant;

use axum::extract::{DefaultBodyLimit, Request};
use axum::http::HeaderValue;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tower_http::catch_panic::CatchPanicLayer;
use tracing::Instrument as _;

use crate::error::ApiError;

/// The ids of the request being handled.
#[derive(Clone, Debug)]
pub struct RequestIds {
    /// Minted for this request: `x-ms-request-id`.
    pub request_id: String,
    /// The client's `x-ms-client-request-id` (when it is a short token), else the request id:
    /// `x-ms-correlation-request-id` and the activity log's correlation id.
    pub correlation_id: String,
}

tokio::task_local! {
    static CURRENT: RequestIds;
}

impl RequestIds {
    /// The ids of the request this task is handling; fresh ones outside a request (start-up,
    /// background jobs, tests of a handler alone).
    pub fn current() -> RequestIds {
        CURRENT.try_with(Clone::clone).unwrap_or_else(|_| {
            let id = uuid::Uuid::new_v4().to_string();
            RequestIds { request_id: id.clone(), correlation_id: id }
        })
    }
}

/// Client-sent correlation ids are echoed only when they are short tokens.
const CLIENT_REQUEST_ID_CHARS_MAX: usize = 64;

/// Wraps `app` in the layers every surface shares, outermost last.
pub fn apply(app: axum::Router) -> axum::Router {
    app.layer(DefaultBodyLimit::max(domain::limits::REQUEST_BODY_BYTES_MAX))
        .layer(CatchPanicLayer::custom(|_panic: Box<dyn std::any::Any + Send>| {
            ApiError::internal("a request handler panicked").into_response()
        }))
        .layer(middleware::from_fn(request_ids))
}

async fn request_ids(request: Request, next: Next) -> Response {
    let request_id = uuid::Uuid::new_v4().to_string();
    let correlation_id = request
        .headers()
        .get("x-ms-client-request-id")
        .and_then(|value| value.to_str().ok())
        .filter(|value| {
            !value.is_empty()
                && value.len() <= CLIENT_REQUEST_ID_CHARS_MAX
                && value.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        })
        .map(str::to_owned)
        .unwrap_or_else(|| request_id.clone());
    let ids = RequestIds { request_id: request_id.clone(), correlation_id: correlation_id.clone() };
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %request.method(),
        path = %request.uri().path(),
    );
    let started = Instant::now();
    let mut response = CURRENT.scope(ids, next.run(request)).instrument(span.clone()).await;
    span.in_scope(|| {
        tracing::debug!(
            status = response.status().as_u16(),
            millis = started.elapsed().as_millis() as u64,
            "answered"
        );
    });
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        headers.insert("x-ms-request-id", value);
    }
    if let Ok(value) = HeaderValue::from_str(&correlation_id) {
        headers.insert("x-ms-correlation-request-id", value);
    }
    response
}
