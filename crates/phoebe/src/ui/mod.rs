//! The web dashboard: HTML rendered on the server from askama templates compiled into the
//! binary, plus one small stylesheet and one small script (also embedded; no CDN, installs may
//! have no internet). Like the API and the CLI, every handler is a thin translation to an
//! [`crate::ops`] call.
//!
//! Architecture invariant: `ui` calls `ops`, never `store`; every state-changing request is a
//! POST that carries the session's CSRF token (`session::CheckedForm`, the extractor every
//! form handler takes).

mod alerts;
mod assets;
mod event_view;
mod format;
mod issue;
mod issues;
mod live;
mod projects;
mod releases;
mod session;
mod triage;
mod users;

use std::sync::Arc;

use askama::Template;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::ops::{Ops, OpsError};

pub use session::LoginThrottle;

/// What dashboard handlers share.
pub struct UiState {
    /// The operations.
    pub ops: Ops,
    /// Failed-login counters.
    pub throttle: LoginThrottle,
    /// Mark cookies `Secure` (the public URL is https).
    pub secure_cookies: bool,
    /// `scheme://host[:port]` of the public URL: forms posted from there are ours even when a
    /// reverse proxy rewrote `Host`.
    pub public_origin: String,
    /// Digest's counters, which the live-updates stream watches.
    pub metrics: Arc<crate::telemetry::Metrics>,
    /// Turns true when the server starts shutting down: live streams end.
    pub stopping: tokio::sync::watch::Receiver<bool>,
}

impl UiState {
    /// Dashboard state over `ops`; cookies are `Secure` when the public URL is https.
    pub fn new(
        ops: Ops,
        metrics: Arc<crate::telemetry::Metrics>,
        stopping: tokio::sync::watch::Receiver<bool>,
    ) -> UiState {
        let secure_cookies = ops.public_url().starts_with("https://");
        UiState {
            public_origin: origin_of(ops.public_url()),
            ops,
            throttle: LoginThrottle::default(),
            secure_cookies,
            metrics,
            stopping,
        }
    }
}

type Shared = axum::extract::State<Arc<UiState>>;

/// `https://errors.example.com/phoebe` → `https://errors.example.com`, as browsers send `Origin`.
fn origin_of(url: &str) -> String {
    let path_at = url
        .find("://")
        .and_then(|i| url[i + 3..].find('/').map(|j| i + 3 + j))
        .unwrap_or(url.len());
    url[..path_at].to_string()
}

/// The dashboard's routes.
pub fn router(state: Arc<UiState>) -> Router {
    Router::new()
        .route("/", get(|| async { Redirect::to("/issues/") }))
        .route("/login", get(session::login_page).post(session::log_in))
        .route("/logout", post(session::log_out))
        .route(
            "/account",
            get(session::account_page).post(session::change_account),
        )
        .route("/issues/", get(issues::list))
        .route("/issues", get(|| async { Redirect::permanent("/issues/") }))
        .route("/issues/bulk", post(triage::bulk))
        .route("/issues/{id}/", get(issue::detail))
        .route("/issues/{id}/events/", get(issue::events))
        .route("/issues/{id}/triage", post(triage::issue))
        .route("/issues/{id}/events/{event_id}/json", get(issue::raw_json))
        .route("/projects/", get(projects::list).post(projects::create))
        .route(
            "/projects",
            get(|| async { Redirect::permanent("/projects/") }),
        )
        .route(
            "/projects/{slug}/",
            get(projects::settings).post(projects::change),
        )
        .route(
            "/projects/{slug}/alerts/",
            get(alerts::show).post(alerts::change),
        )
        .route("/projects/{slug}/alerts", get(alerts::to_page))
        .route("/projects/{slug}/releases/", get(releases::list))
        .route("/projects/{slug}/releases", get(releases::to_list))
        .route(
            "/projects/{slug}/releases/{version}/",
            get(releases::detail),
        )
        .route(
            "/projects/{slug}/releases/{version}",
            get(releases::to_detail),
        )
        .route("/users/", get(users::list).post(users::change))
        .route("/live", get(live::stream))
        .route("/static/{file}", get(assets::serve))
        .with_state(state)
}

/// Why a page could not be shown.
#[derive(Debug)]
pub enum UiError {
    /// Not logged in: go to the login page, then come back to this path.
    Login(String),
    /// The operation failed.
    Ops(OpsError),
    /// The form did not carry this session's CSRF token, or came from another site.
    Forbidden(&'static str),
    /// Something that should not happen.
    Unexpected(String),
}

impl From<OpsError> for UiError {
    fn from(e: OpsError) -> Self {
        UiError::Ops(e)
    }
}

impl From<askama::Error> for UiError {
    fn from(e: askama::Error) -> Self {
        UiError::Unexpected(format!("rendering a page: {e}"))
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: String,
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let (status, title, message) = match self {
            UiError::Login(next) => {
                let to = format!("/login?next={}", format::url_encode(&next));
                return Redirect::to(&to).into_response();
            }
            UiError::Ops(OpsError::NotFound(what)) => (
                StatusCode::NOT_FOUND,
                "Not found",
                format!("This {what} does not exist (it may have been deleted or merged)."),
            ),
            UiError::Ops(OpsError::Invalid(msg)) => (StatusCode::BAD_REQUEST, "Bad request", msg),
            UiError::Ops(OpsError::Forbidden(msg)) => (StatusCode::FORBIDDEN, "Forbidden", msg),
            UiError::Ops(OpsError::Conflict(what)) => (
                StatusCode::CONFLICT,
                "Conflict",
                format!("{what} already exists."),
            ),
            UiError::Ops(OpsError::Store(msg)) | UiError::Unexpected(msg) => {
                tracing::error!(error = %msg, "dashboard request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "The server could not show this page; its log says why.".to_string(),
                )
            }
            UiError::Forbidden(why) => (StatusCode::FORBIDDEN, "Forbidden", why.to_string()),
        };
        let body = ErrorPage {
            title,
            message: message.clone(),
        }
        .render()
        .unwrap_or(message);
        (status, html_headers(), Html(body)).into_response()
    }
}

/// Headers every dashboard page carries: no caching of private pages, no framing, no content
/// from elsewhere (the pages load only their own stylesheet and script).
fn html_headers() -> [(header::HeaderName, &'static str); 4] {
    [
        (header::CACHE_CONTROL, "no-store"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
             frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
    ]
}

/// Renders a template as a page.
fn page(t: &impl Template) -> Result<Response, UiError> {
    Ok((html_headers(), Html(t.render()?)).into_response())
}

/// Renders a template as a page with a status other than 200: a form shown again with its
/// error, a refused login.
fn page_with_status(status: StatusCode, t: &impl Template) -> Result<Response, UiError> {
    let mut r = page(t)?;
    *r.status_mut() = status;
    Ok(r)
}

/// 400 when a form comes back with an error, else 200.
fn form_status(error: &Option<String>) -> StatusCode {
    if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    }
}

/// Runs a blocking operation off the async workers.
async fn blocking<T: Send + 'static>(
    ops: Ops,
    f: impl FnOnce(&Ops) -> Result<T, UiError> + Send + 'static,
) -> Result<T, UiError> {
    tokio::task::spawn_blocking(move || f(&ops))
        .await
        .map_err(|e| UiError::Unexpected(e.to_string()))?
}

#[cfg(test)]
mod tests {
    #[test]
    fn origins_drop_the_path() {
        assert_eq!(
            super::origin_of("https://errors.example.com/phoebe"),
            "https://errors.example.com"
        );
        assert_eq!(
            super::origin_of("http://127.0.0.1:8000"),
            "http://127.0.0.1:8000"
        );
    }
}
