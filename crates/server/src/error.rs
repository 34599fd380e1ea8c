//! The one error type at the HTTP boundary. Each protocol area renders its own wire shape
//! (ARM, OAuth, Key Vault), all from `api-types`; internal failures become a generic 500 with a
//! request id, and the details go only to the log.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// The `Retry-After` of every 503 the server answers while its database cannot be reached.
pub const RETRY_AFTER_SECS: &str = "5";

/// An error answered to a caller.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Extra response headers, such as a `WWW-Authenticate` challenge.
    pub headers: Vec<(axum::http::HeaderName, String)>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), headers: Vec::new() }
    }

    pub fn with_header(mut self, name: axum::http::HeaderName, value: String) -> Self {
        self.headers.push((name, value));
        self
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "NotFound", message)
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// An internal failure: logged in full, answered without detail but the request's id (the
    /// one in `x-ms-request-id`), so a report can be matched with the log.
    pub fn internal(error: impl std::fmt::Display) -> Self {
        let request_id = crate::layers::RequestIds::current().request_id;
        tracing::error!(%request_id, %error, "internal error");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerError",
            format!("an internal error occurred; request id {request_id}"),
        )
    }
}

impl From<store::Error> for ApiError {
    fn from(error: store::Error) -> Self {
        match error {
            store::Error::Conflict(message) => {
                ApiError::new(StatusCode::CONFLICT, "Conflict", message)
            }
            store::Error::Unavailable(_) => {
                tracing::warn!(%error, "database unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "ServiceUnavailable",
                    "The service is temporarily unavailable. Retry the request.",
                )
                .with_header(axum::http::header::RETRY_AFTER, RETRY_AFTER_SECS.to_owned())
            }
            other => ApiError::internal(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = api_types::arm::ErrorResponse::new(self.code, self.message);
        let mut response = (self.status, Json(body)).into_response();
        for (name, value) in self.headers {
            if let Ok(value) = axum::http::HeaderValue::from_str(&value) {
                response.headers_mut().insert(name, value);
            }
        }
        response
    }
}
