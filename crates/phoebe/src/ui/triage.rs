//! Triage from the dashboard: the forms of the issue page and the list's bulk bar, and the
//! wording of the activity log.

use axum::extract::Path;
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::Value;

use super::format;
use super::session::{safe_next, CheckedForm, Form};
use super::{blocking, Shared, UiError};
use crate::domain::{Activity, ActivityKind, IssueId, IssueStatus};
use crate::ops::triage::IssueChange;
use crate::ops::OpsError;

/// What a triage form asks for.
enum Action {
    Change(IssueChange),
    Delete,
    Merge,
}

fn invalid(msg: impl Into<String>) -> UiError {
    UiError::Ops(OpsError::Invalid(msg.into()))
}

/// Reads `action` (`resolve`, `resolve-next`, `unresolve`, `ignore`, `ignore-minutes-N`,
/// `ignore-count-N`, `assign` with `assignee`, `comment` with `text`, `delete`, `merge`).
fn action_of(form: &Form) -> Result<Action, UiError> {
    let action = form.get("action").unwrap_or("");
    let status = |s: IssueStatus| IssueChange {
        status: Some(s),
        ..Default::default()
    };
    let number = |s: &str| {
        s.parse::<i64>()
            .map_err(|_| invalid(format!("{s:?} is not a number")))
    };
    Ok(Action::Change(match action {
        "resolve" => status(IssueStatus::Resolved),
        "resolve-next" => IssueChange {
            in_next_release: true,
            ..status(IssueStatus::Resolved)
        },
        "unresolve" => status(IssueStatus::Unresolved),
        "ignore" => status(IssueStatus::Ignored),
        "assign" => IssueChange {
            assign: Some(
                form.get("assignee")
                    .filter(|a| !a.is_empty())
                    .map(str::to_string),
            ),
            ..Default::default()
        },
        "comment" => IssueChange {
            comment: Some(form.get("text").unwrap_or("").to_string()),
            ..Default::default()
        },
        "delete" => return Ok(Action::Delete),
        "merge" => return Ok(Action::Merge),
        other => {
            if let Some(m) = other.strip_prefix("ignore-minutes-") {
                IssueChange {
                    ignore_minutes: Some(number(m)?),
                    ..status(IssueStatus::Ignored)
                }
            } else if let Some(n) = other.strip_prefix("ignore-count-") {
                IssueChange {
                    ignore_count: Some(number(n)?),
                    ..status(IssueStatus::Ignored)
                }
            } else {
                return Err(invalid(format!("unknown action {other:?}")));
            }
        }
    }))
}

/// `POST /issues/{id}/triage`: one change to one issue, then back to it (or, after a delete,
/// to the list).
pub async fn issue(
    state: Shared,
    Path(id): Path<IssueId>,
    CheckedForm { viewer, form }: CheckedForm,
) -> Result<Response, UiError> {
    let action = action_of(&form)?;
    let to = blocking(viewer.ops(&state.0), move |ops| match action {
        Action::Change(change) => {
            ops.change_issue(id, &change)?;
            Ok(format!("/issues/{id}/"))
        }
        Action::Delete => {
            ops.issue(id)?;
            ops.delete_issues(&[id])?;
            Ok("/issues/".to_string())
        }
        Action::Merge => Err(invalid(
            "merge issues from the list: select them, then Merge",
        )),
    })
    .await?;
    Ok(Redirect::to(&to).into_response())
}

/// `POST /issues/bulk`: one change to every selected issue, then back to the list.
pub async fn bulk(
    state: Shared,
    CheckedForm { viewer, form }: CheckedForm,
) -> Result<Response, UiError> {
    let action = action_of(&form)?;
    let ids: Vec<IssueId> = form.all("id").filter_map(|v| v.parse().ok()).collect();
    if ids.is_empty() {
        return Err(invalid("select at least one issue first"));
    }
    let back = safe_next(form.get("back"));
    let to = blocking(viewer.ops(&state.0), move |ops| match action {
        Action::Change(change) => {
            for id in &ids {
                ops.change_issue(*id, &change)?;
            }
            Ok(back)
        }
        Action::Delete => {
            ops.delete_issues(&ids)?;
            Ok(back)
        }
        Action::Merge => Ok(format!("/issues/{}/", ops.merge_issues(&ids)?.id)),
    })
    .await?;
    Ok(Redirect::to(&to).into_response())
}

/// One line of the activity log as the issue page shows it.
pub struct ActivityLine {
    pub who: String,
    pub what: String,
    pub when: String,
    pub when_exact: String,
    pub comment: Option<String>,
}

fn text_at<'a>(data: &'a Value, key: &str) -> Option<&'a str> {
    data.get(key).and_then(Value::as_str)
}

/// Says what an activity entry did, in words.
pub fn describe(a: &Activity, now_ms: i64) -> ActivityLine {
    let d = &a.data;
    let what = match a.kind {
        ActivityKind::Resolved => match text_at(d, "currentRelease") {
            Some(r) => format!("resolved it in the next release (events of {r} keep it resolved)"),
            None => "resolved it".into(),
        },
        ActivityKind::Unresolved => "marked it unresolved".into(),
        ActivityKind::Ignored => {
            let mut s = "ignored it".to_string();
            if let Some(ms) = d.get("untilMs").and_then(Value::as_i64) {
                s += &format!(" until {}", format::exact(ms));
            }
            if let Some(n) = d.get("untilCount").and_then(Value::as_i64) {
                s += &format!(" until it reaches {n} events");
            }
            s
        }
        ActivityKind::Assigned => {
            format!("assigned it to {}", text_at(d, "assignee").unwrap_or("?"))
        }
        ActivityKind::Unassigned => "unassigned it".into(),
        ActivityKind::Comment => "commented".into(),
        ActivityKind::Merged => {
            let titles: Vec<String> = d
                .get("issues")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|i| text_at(i, "title").map(str::to_string))
                .collect();
            format!("merged {} into this issue", titles.join("; "))
        }
        ActivityKind::Regression => match text_at(d, "release") {
            Some(r) => format!("re-opened it: a new event in {r} (regression)"),
            None => "re-opened it: a new event (regression)".into(),
        },
        ActivityKind::Unignored => "re-opened it: the ignore condition was met".into(),
    };
    ActivityLine {
        who: a.user.clone().unwrap_or_else(|| "Phoebe".into()),
        what,
        when: format::ago(a.created_ms, now_ms),
        when_exact: format::exact(a.created_ms),
        comment: (a.kind == ActivityKind::Comment)
            .then(|| text_at(d, "text").unwrap_or("").to_string()),
    }
}
