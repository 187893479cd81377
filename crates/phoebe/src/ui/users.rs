//! The organization's users: list, create (the way to invite someone), disable, enable and
//! reset passwords. Owners only; the same operations are `phoebe user ...` on the server.

use askama::Template;
use axum::response::{IntoResponse, Redirect, Response};

use super::session::{CheckedForm, Form, Viewer};
use super::{blocking, form_status, page_with_status, Shared, UiError};
use crate::domain::{Role, User};
use crate::ops::OpsError;

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    viewer: Viewer,
    users: Vec<(User, Role)>,
    error: Option<String>,
    notice: Option<String>,
}

async fn render(
    state: Shared,
    viewer: Viewer,
    error: Option<String>,
    notice: Option<String>,
) -> Result<Response, UiError> {
    // `ops` refuses whoever may not manage users, with a message that says who may.
    let users = blocking(viewer.ops(&state.0), move |ops| Ok(ops.users_with_roles()?)).await?;
    page_with_status(
        form_status(&error),
        &UsersPage {
            viewer,
            users,
            error,
            notice,
        },
    )
}

pub async fn list(state: Shared, viewer: Viewer) -> Result<Response, UiError> {
    render(state, viewer, None, None).await
}

/// `POST /users/`: `action` = `create` (`login`, `password`, `role`), `disable`, `enable` or
/// `reset` (`login`, and `password` for reset).
pub async fn change(
    state: Shared,
    CheckedForm { viewer, form }: CheckedForm,
) -> Result<Response, UiError> {
    let field = |name: &str| form.get(name).unwrap_or("").to_string();
    let (action, login, password, role) = (
        field("action"),
        field("login").trim().to_string(),
        field("password"),
        field("role"),
    );
    let me = viewer.user.clone();
    let outcome = blocking(viewer.ops(&state.0), move |ops| {
        let done = match action.as_str() {
            "create" => Role::parse(&role)
                .map_err(OpsError::Invalid)
                .and_then(|role| ops.create_user(None, &login, &password, role))
                .map(|_| {
                    format!(
                    "Created {login}. Give them the password; they can change it under their name."
                )
                }),
            "disable" if login == me.login => Err(OpsError::Invalid(
                "you cannot disable yourself; ask another owner".into(),
            )),
            "disable" => ops.set_user_active(&login, false).map(|_| {
                format!("Disabled {login}: their sessions and API tokens stopped working.")
            }),
            "enable" => ops
                .set_user_active(&login, true)
                .map(|_| format!("Enabled {login}.")),
            "reset" => ops
                .reset_password(&login, &password)
                .map(|_| format!("Set a new password for {login}; their sessions ended.")),
            other => Err(OpsError::Invalid(format!("unknown action {other:?}"))),
        };
        match done {
            Ok(notice) => Ok(Ok(notice)),
            Err(OpsError::Invalid(m)) => Ok(Err(m)),
            Err(OpsError::Conflict(what)) => Ok(Err(format!("{what} already exists"))),
            Err(e) => Err(e.into()),
        }
    })
    .await?;
    match outcome {
        // Only the one who was reset or disabled loses their session; an owner resetting
        // their own password is sent to log in again.
        Ok(_)
            if field_is(&form, "login", &viewer.user.login)
                && form.get("action") == Some("reset") =>
        {
            Ok(Redirect::to("/login").into_response())
        }
        Ok(notice) => render(state, viewer, None, Some(notice)).await,
        Err(error) => render(state, viewer, Some(error), None).await,
    }
}

fn field_is(form: &Form, name: &str, value: &str) -> bool {
    form.get(name).map(str::trim) == Some(value)
}
