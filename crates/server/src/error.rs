//! The one error type at the HTTP boundary. Each protocol area renders its own wire shape
//! (ARM, OAuth, Key Vault), all from `api-types`; internal failures become a generic 500 with a
//! request id, and the details go only to the log.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// An error answered to a caller.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into() }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "NotFound", message)
    }

    #[allow(dead_code)] // The first users arrive with the token service.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// An internal failure: logged in full, answered without detail.
    pub fn internal(error: impl std::fmt::Display) -> Self {
        let request_id = uuid::Uuid::new_v4();
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
                tracing::error!(%error, "database unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "ServiceUnavailable",
                    "the database is unavailable",
                )
            }
            other => ApiError::internal(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = api_types::arm::ErrorResponse::new(self.code, self.message);
        (self.status, Json(body)).into_response()
    }
}
