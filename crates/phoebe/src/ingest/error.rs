//! The ingest status table: every way an SDK request can fail, and the exact status, headers
//! and short JSON `detail` it gets. Status codes for ingest appear nowhere else.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use thiserror::Error;

use crate::quota::Limited;

/// Why an SDK request was not accepted.
#[derive(Debug, Error)]
pub enum IngestError {
    /// Malformed request: empty body, bad envelope, bad JSON, undecodable body, bad path.
    #[error("{0}")]
    BadRequest(String),
    /// No usable credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// Credentials are known but refused (disabled key, wrong project).
    #[error("{0}")]
    Forbidden(String),
    /// Over a size limit.
    #[error("{0}")]
    TooLarge(String),
    /// The security endpoint got something that is not a report.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Over a rate limit, quota or spike protection.
    #[error("{}", .0.detail())]
    RateLimited(Limited),
    /// The inbox is full or unavailable: try again later.
    #[error("{0}")]
    Overloaded(String),
    /// A bug or an I/O failure on our side.
    #[error("internal error: {0}")]
    Unexpected(String),
}

impl IngestError {
    fn status(&self) -> StatusCode {
        match self {
            IngestError::BadRequest(_) => StatusCode::BAD_REQUEST,
            IngestError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            IngestError::Forbidden(_) => StatusCode::FORBIDDEN,
            IngestError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            IngestError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            IngestError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            IngestError::Overloaded(_) => StatusCode::SERVICE_UNAVAILABLE,
            IngestError::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// Seconds an overloaded Phoebe asks clients to wait.
const OVERLOAD_RETRY_AFTER_SECS: &str = "10";

impl IntoResponse for IngestError {
    fn into_response(self) -> Response {
        let status = self.status();
        let detail = self.to_string();
        if status.is_server_error() {
            tracing::error!(status = status.as_u16(), %detail, "ingest failed");
        } else {
            tracing::debug!(status = status.as_u16(), %detail, "ingest refused");
        }
        let mut response =
            (status, axum::Json(serde_json::json!({ "detail": detail }))).into_response();
        let headers = response.headers_mut();
        if let Ok(v) = HeaderValue::from_str(
            &detail
                .chars()
                .filter(|c| c.is_ascii() && !c.is_ascii_control())
                .take(200)
                .collect::<String>(),
        ) {
            headers.insert("x-sentry-error", v);
        }
        if let IngestError::RateLimited(limited) = &self {
            add_rate_limit_headers(headers, limited);
            headers.insert(
                header::RETRY_AFTER,
                HeaderValue::from(limited.retry_after_secs()),
            );
        }
        if matches!(self, IngestError::Overloaded(_)) {
            headers.insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(OVERLOAD_RETRY_AFTER_SECS),
            );
        }
        response
    }
}

/// `X-Sentry-Rate-Limits` for active limits (on a 429, or on a 200 whose envelope held no
/// events, so SDKs stop sending events before they are refused).
pub fn add_rate_limit_headers(headers: &mut axum::http::HeaderMap, limited: &Limited) {
    if let Ok(v) = HeaderValue::from_str(&limited.header_value()) {
        headers.insert("x-sentry-rate-limits", v);
    }
}
