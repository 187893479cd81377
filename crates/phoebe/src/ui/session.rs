//! Logging in and out, the session cookie, CSRF checks and the throttling of failed logins.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use askama::Template;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::{blocking, page, page_with_status, Shared, UiError, UiState};
use crate::domain::User;
use crate::ops::session::SESSION_TTL_MS;
use crate::ops::{Caller, Ops, OpsError, Permission};

const COOKIE: &str = "phoebe_session";

/// The logged-in user of a request, with the session's CSRF token.
pub struct Viewer {
    /// Who.
    pub user: User,
    /// The token forms must carry.
    pub csrf: String,
    /// The cookie's secret (to end this session, or keep it when the password changes).
    secret: String,
    /// Whom the session's requests act for.
    caller: Caller,
}

impl Viewer {
    /// The operations, acting for this viewer.
    pub fn ops(&self, state: &UiState) -> Ops {
        state.ops.acting_as(self.caller.clone())
    }

    /// Whether the viewer manages users (the menu shows Users only to them).
    pub fn manages_users(&self) -> bool {
        self.caller.may(Permission::ManageUsers)
    }
}

fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

impl FromRequestParts<Arc<UiState>> for Viewer {
    type Rejection = UiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<UiState>,
    ) -> Result<Self, Self::Rejection> {
        let back_to = parts
            .uri
            .path_and_query()
            .map_or("/issues/".to_string(), |p| p.to_string());
        let Some(secret) = cookie_value(&parts.headers, COOKIE).map(str::to_string) else {
            return Err(UiError::Login(back_to));
        };
        let lookup = secret.clone();
        let session = blocking(state.ops.clone(), move |ops| Ok(ops.session(&lookup)?)).await?;
        match session {
            Some((s, caller)) => Ok(Viewer {
                user: s.user,
                csrf: s.csrf,
                secret,
                caller,
            }),
            None => Err(UiError::Login(back_to)),
        }
    }
}

/// A submitted `application/x-www-form-urlencoded` body as its pairs, in order (repeated
/// fields such as the selected issues' `id` stay repeated).
pub struct Form(pub Vec<(String, String)>);

impl Form {
    /// The first value of a field.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a field.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Forms are small; anything bigger is not one of ours.
const MAX_FORM_BYTES: usize = 64 * 1024;

impl Form {
    async fn read(body: axum::body::Body) -> Result<Form, UiError> {
        let body = axum::body::to_bytes(body, MAX_FORM_BYTES)
            .await
            .map_err(|_| UiError::Ops(OpsError::Invalid("the form is too large".into())))?;
        Ok(Form(form_urlencoded::parse(&body).into_owned().collect()))
    }
}

impl<S: Send + Sync> FromRequest<S> for Form {
    type Rejection = UiError;

    async fn from_request(req: Request, _: &S) -> Result<Self, Self::Rejection> {
        Form::read(req.into_body()).await
    }
}

/// A state-changing form from a signed-in user that passed [`check_form`]: a handler taking
/// it cannot forget the CSRF and origin checks.
pub struct CheckedForm {
    /// Who sent it.
    pub viewer: Viewer,
    /// Its fields.
    pub form: Form,
}

impl FromRequest<Arc<UiState>> for CheckedForm {
    type Rejection = UiError;

    async fn from_request(req: Request, state: &Arc<UiState>) -> Result<Self, Self::Rejection> {
        let (mut parts, body) = req.into_parts();
        let viewer = Viewer::from_request_parts(&mut parts, state).await?;
        let form = Form::read(body).await?;
        check_form(state, &viewer, &form, &parts.headers)?;
        Ok(CheckedForm { viewer, form })
    }
}

/// Whether a browser says this request came from another site: `Sec-Fetch-Site`, or an `Origin`
/// that is neither the `Host` asked for nor the configured public URL (a reverse proxy may
/// rewrite `Host`).
fn from_another_site(state: &UiState, headers: &HeaderMap) -> bool {
    let header = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let cross_site =
        header("sec-fetch-site").is_some_and(|site| site != "same-origin" && site != "none");
    let foreign_origin = header(header::ORIGIN.as_str()).is_some_and(|origin| {
        let host = origin.split_once("://").map(|(_, h)| h);
        host != header(header::HOST.as_str()) && origin != state.public_origin
    });
    cross_site || foreign_origin
}

/// Rejects a state-changing request that does not carry this session's CSRF token, or that a
/// browser says came from another site.
fn check_form(
    state: &UiState,
    viewer: &Viewer,
    form: &Form,
    headers: &HeaderMap,
) -> Result<(), UiError> {
    let token_ok = form
        .get("csrf")
        .is_some_and(|t| constant_time_eq(t.as_bytes(), viewer.csrf.as_bytes()));
    if from_another_site(state, headers) || !token_ok {
        return Err(UiError::Forbidden(
            "This form is out of date or came from another site. Reload the page and try again.",
        ));
    }
    Ok(())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Failed logins per (client address, login) and per client address, in fixed windows. In
/// memory: a restart forgets them, which costs an attacker a restart per few guesses.
#[derive(Default)]
pub struct LoginThrottle {
    failures: Mutex<HashMap<(IpAddr, String), (u32, Instant)>>,
}

const THROTTLE_WINDOW: Duration = Duration::from_secs(15 * 60);
/// Wrong passwords for one login from one address before it must wait.
const MAX_FAILURES_PER_LOGIN: u32 = 5;
/// Wrong passwords from one address, any login, before it must wait.
const MAX_FAILURES_PER_ADDRESS: u32 = 30;
/// Entries kept before old ones are swept.
const MAX_ENTRIES: usize = 10_000;

impl LoginThrottle {
    /// How long this client must wait before trying this login again, if it must.
    fn wait(&self, ip: IpAddr, login: &str) -> Option<Duration> {
        let map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let blocked = |key: &(IpAddr, String), max: u32| {
            map.get(key).and_then(|(n, since)| {
                let left = THROTTLE_WINDOW.checked_sub(now.duration_since(*since))?;
                (*n >= max).then_some(left)
            })
        };
        blocked(&(ip, login.to_lowercase()), MAX_FAILURES_PER_LOGIN)
            .or_else(|| blocked(&(ip, String::new()), MAX_FAILURES_PER_ADDRESS))
    }

    fn failed(&self, ip: IpAddr, login: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if map.len() >= MAX_ENTRIES {
            map.retain(|_, (_, since)| now.duration_since(*since) < THROTTLE_WINDOW);
        }
        for key in [(ip, login.to_lowercase()), (ip, String::new())] {
            let entry = map.entry(key).or_insert((0, now));
            if now.duration_since(entry.1) >= THROTTLE_WINDOW {
                *entry = (0, now);
            }
            entry.0 += 1;
        }
    }

    fn succeeded(&self, ip: IpAddr, login: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&(ip, login.to_lowercase()));
    }
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    next: String,
    login: String,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

/// Only a path on this server: never an open redirect to another site.
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.into(),
        _ => "/issues/".into(),
    }
}

pub async fn login_page(Query(q): Query<NextQuery>) -> Result<Response, UiError> {
    page(&LoginPage {
        next: safe_next(q.next.as_deref()),
        login: String::new(),
        error: None,
    })
}

fn session_cookie(state: &UiState, value: &str, max_age_secs: i64) -> HeaderValue {
    let secure = if state.secure_cookies { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{secure}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static(""))
}

pub async fn log_in(
    state: Shared,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    form: Form,
) -> Result<Response, UiError> {
    let state = state.0;
    // No session yet, so no CSRF token: a login posted from another site is refused by origin.
    if from_another_site(&state, &headers) {
        return Err(UiError::Forbidden(
            "This login form came from another site. Open Phoebe's own login page.",
        ));
    }
    let login = form.get("login").unwrap_or("").trim().to_string();
    let password = form.get("password").unwrap_or("").to_string();
    let next = safe_next(form.get("next"));
    let ip = addr.ip();
    let again = |status, error: String| {
        let form = LoginPage {
            next: next.clone(),
            login: login.clone(),
            error: Some(error),
        };
        page_with_status(status, &form)
    };
    if let Some(wait) = state.throttle.wait(ip, &login) {
        let minutes = wait.as_secs().div_ceil(60);
        tracing::warn!(%ip, login, "login throttled after repeated failures");
        return again(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "Too many failed attempts. Wait {minutes} minute(s), or ask an admin to run \
                 `phoebe user reset-password {login}`."
            ),
        );
    }
    let (l, p) = (login.clone(), password);
    match blocking(state.ops.clone(), move |ops| Ok(ops.log_in(&l, &p))).await? {
        Ok(session) => {
            state.throttle.succeeded(ip, &login);
            tracing::info!(login = session.user.login, "logged in to the dashboard");
            let cookie = session_cookie(&state, &session.secret, SESSION_TTL_MS / 1000);
            Ok(([(header::SET_COOKIE, cookie)], Redirect::to(&next)).into_response())
        }
        Err(OpsError::Invalid(msg)) => {
            state.throttle.failed(ip, &login);
            again(StatusCode::UNAUTHORIZED, format!("{}.", capitalize(&msg)))
        }
        Err(e) => Err(e.into()),
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

pub async fn log_out(
    state: Shared,
    CheckedForm { viewer, .. }: CheckedForm,
) -> Result<Response, UiError> {
    let secret = viewer.secret.clone();
    blocking(viewer.ops(&state.0), move |ops| Ok(ops.log_out(&secret)?)).await?;
    let cookie = session_cookie(&state.0, "", 0);
    Ok(([(header::SET_COOKIE, cookie)], Redirect::to("/login")).into_response())
}

#[derive(Template)]
#[template(path = "account.html")]
struct AccountPage {
    viewer: Viewer,
    error: Option<String>,
    notice: Option<&'static str>,
}

pub async fn account_page(viewer: Viewer) -> Result<Response, UiError> {
    page(&AccountPage {
        viewer,
        error: None,
        notice: None,
    })
}

/// `POST /account`: the email form (`action=email`) or the password form.
pub async fn change_account(state: Shared, checked: CheckedForm) -> Result<Response, UiError> {
    match checked.form.get("action") {
        Some("email") => change_email(state, checked).await,
        _ => change_password(state, checked).await,
    }
}

async fn change_email(
    state: Shared,
    CheckedForm { mut viewer, form }: CheckedForm,
) -> Result<Response, UiError> {
    let email = form.get("email").unwrap_or("").to_string();
    let login = viewer.user.login.clone();
    let outcome = blocking(viewer.ops(&state.0), move |ops| {
        Ok(ops.set_user_email(&login, Some(&email)))
    })
    .await?;
    let (error, notice) = match outcome {
        Ok(user) => {
            let notice = match user.email {
                Some(_) => "Email address saved: alerts to this project's members reach you there.",
                None => "Email address removed.",
            };
            viewer.user = user;
            (None, Some(notice))
        }
        Err(OpsError::Invalid(msg)) => (Some(format!("{}.", capitalize(&msg))), None),
        Err(e) => return Err(e.into()),
    };
    page(&AccountPage {
        viewer,
        error,
        notice,
    })
}

async fn change_password(
    state: Shared,
    CheckedForm { viewer, form }: CheckedForm,
) -> Result<Response, UiError> {
    let current = form.get("current").unwrap_or("").to_string();
    let new = form.get("new").unwrap_or("").to_string();
    if Some(new.as_str()) != form.get("confirm") {
        return page(&AccountPage {
            viewer,
            error: Some("The new passwords do not match.".into()),
            notice: None,
        });
    }
    let secret = viewer.secret.clone();
    let outcome = blocking(viewer.ops(&state.0), move |ops| {
        Ok(ops.change_password(&current, &new, &secret))
    })
    .await?;
    let (error, notice) = match outcome {
        Ok(()) => (
            None,
            Some("Password changed. Your other sessions were logged out."),
        ),
        Err(OpsError::Invalid(msg)) => (Some(format!("{}.", capitalize(&msg))), None),
        Err(e) => return Err(e.into()),
    };
    page(&AccountPage {
        viewer,
        error,
        notice,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_is_a_local_path_only() {
        assert_eq!(safe_next(Some("/issues/3/")), "/issues/3/");
        assert_eq!(safe_next(Some("//evil.example/")), "/issues/");
        assert_eq!(safe_next(Some("https://evil.example/")), "/issues/");
        assert_eq!(safe_next(Some("/\\evil.example")), "/issues/");
        assert_eq!(safe_next(None), "/issues/");
    }

    #[test]
    fn throttle_blocks_after_repeated_failures_for_that_login_only() {
        let t = LoginThrottle::default();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        for _ in 0..MAX_FAILURES_PER_LOGIN {
            assert!(t.wait(ip, "admin").is_none());
            t.failed(ip, "Admin");
        }
        assert!(t.wait(ip, "admin").is_some());
        assert!(t.wait(ip, "other").is_none());
        t.succeeded(ip, "admin");
        assert!(t.wait(ip, "admin").is_none());
    }

    #[test]
    fn cookies_are_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; phoebe_session=abc; b=2"),
        );
        assert_eq!(cookie_value(&h, COOKIE), Some("abc"));
        assert_eq!(cookie_value(&h, "c"), None);
    }
}
