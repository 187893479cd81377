//! The web API status table: how an operation's failure reaches an HTTP client.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use thiserror::Error;

use crate::ops::OpsError;

/// Why an API request failed.
#[derive(Debug, Error)]
pub enum ApiError {
    /// No or bad bearer token.
    #[error("{0}")]
    Unauthorized(String),
    /// From the operation.
    #[error(transparent)]
    Ops(#[from] OpsError),
    /// A bug on our side.
    #[error("internal error: {0}")]
    Unexpected(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self {
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Ops(OpsError::NotFound(_)) => StatusCode::NOT_FOUND,
            ApiError::Ops(OpsError::Invalid(_)) => StatusCode::BAD_REQUEST,
            ApiError::Ops(OpsError::Conflict(_)) => StatusCode::CONFLICT,
            ApiError::Ops(OpsError::Forbidden(_)) => StatusCode::FORBIDDEN,
            ApiError::Ops(OpsError::Store(_)) | ApiError::Unexpected(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        let detail = self.to_string();
        if status.is_server_error() {
            tracing::error!(status = status.as_u16(), %detail, "api request failed");
        }
        (status, axum::Json(serde_json::json!({ "detail": detail }))).into_response()
    }
}
