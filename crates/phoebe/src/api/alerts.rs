//! `/api/0/projects/{org}/{project}/rules/`, `.../alert-channels/` and `.../alerts/`, and
//! `/api/0/issues/{id}/alerts/`: a project's alert rules (at Sentry's path for issue alert
//! rules, with its `frequency` in minutes), channels with a test action, and what was sent.

use axum::extract::Path;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::Value;

use super::json as shapes;
use super::{blocking, ApiError, Authed, J, P};
use crate::domain::alerts::{ChannelId, ChannelKind, Filters, RuleId, RuleSpec, Trigger};
use crate::domain::{IssueId, Project};
use crate::ops::{Ops, OpsError};

type ProjectPath = Path<(String, String)>;

fn invalid(msg: String) -> ApiError {
    ApiError::Ops(OpsError::Invalid(msg))
}

/// The project of the path, as the ops calls name it.
fn project(ops: &Ops, org: &str, project: &str) -> Result<(Project, String), ApiError> {
    let p = ops.project(org, project)?;
    let id = p.id.to_string();
    Ok((p, id))
}

/// `GET .../alert-channels/`
pub async fn list_channels(
    Authed(ops): Authed,
    Path((org, slug)): ProjectPath,
) -> Result<Json<Value>, ApiError> {
    let channels = blocking(ops, move |ops| {
        let (_, id) = project(ops, &org, &slug)?;
        Ok(ops.channels(Some(&id))?)
    })
    .await?;
    Ok(Json(channels.iter().map(shapes::alert_channel).collect()))
}

/// A new channel.
#[derive(Deserialize)]
pub struct NewChannel {
    kind: String,
    target: String,
    name: Option<String>,
    secret: Option<String>,
}

/// `POST .../alert-channels/`
pub async fn add_channel(
    Authed(ops): Authed,
    Path((org, slug)): ProjectPath,
    J(body): J<NewChannel>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let kind = ChannelKind::parse(&body.kind).map_err(invalid)?;
    let channel = blocking(ops, move |ops| {
        let (_, id) = project(ops, &org, &slug)?;
        Ok(ops.add_channel(
            &id,
            kind,
            &body.target,
            body.name.as_deref(),
            body.secret.as_deref(),
        )?)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(shapes::alert_channel(&channel))))
}

/// The channel of the path, if it belongs to the path's project.
fn channel_of(ops: &Ops, org: &str, slug: &str, id: ChannelId) -> Result<(), ApiError> {
    let (_, project_id) = project(ops, org, slug)?;
    match ops.channels(Some(&project_id))?.iter().any(|c| c.id == id) {
        true => Ok(()),
        false => Err(ApiError::Ops(OpsError::NotFound("channel"))),
    }
}

/// `DELETE .../alert-channels/{id}/`
pub async fn remove_channel(
    Authed(ops): Authed,
    Path((org, slug, id)): Path<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    let id: ChannelId = id
        .parse()
        .map_err(|_| ApiError::Ops(OpsError::NotFound("channel")))?;
    blocking(ops, move |ops| {
        channel_of(ops, &org, &slug, id)?;
        Ok(ops.remove_channel(id)?)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST .../alert-channels/{id}/test/`: sends a test notification now; a failure is a 400 that
/// says what the receiver answered.
pub async fn test_channel(
    Authed(ops): Authed,
    Path((org, slug, id)): Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    let id: ChannelId = id
        .parse()
        .map_err(|_| ApiError::Ops(OpsError::NotFound("channel")))?;
    let channel = blocking(ops, move |ops| {
        channel_of(ops, &org, &slug, id)?;
        Ok(ops.test_channel(id)?)
    })
    .await?;
    Ok(Json(
        serde_json::json!({"sent": true, "channel": shapes::alert_channel(&channel)}),
    ))
}

/// `GET .../rules/`
pub async fn list_rules(
    Authed(ops): Authed,
    Path((org, slug)): ProjectPath,
) -> Result<Json<Value>, ApiError> {
    let rules = blocking(ops, move |ops| {
        let (_, id) = project(ops, &org, &slug)?;
        Ok(ops.rules(Some(&id))?)
    })
    .await?;
    Ok(Json(rules.iter().map(shapes::alert_rule).collect()))
}

/// A new rule: `trigger` (`new-issue`, `regression`, `unignored`, `frequency`, `users`), with
/// `threshold` and `windowMinutes` for the last two; channel ids; Sentry's `frequency`
/// (minutes a rule stays quiet per issue; default 0) and `environment`; and the filters
/// `release`, `level` (this or more severe) and `tags` (`{"key": "value"}`).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewRule {
    trigger: String,
    channels: Vec<String>,
    #[serde(default)]
    frequency: i64,
    threshold: Option<i64>,
    window_minutes: Option<i64>,
    environment: Option<String>,
    release: Option<String>,
    level: Option<String>,
    #[serde(default)]
    tags: std::collections::BTreeMap<String, String>,
}

/// `POST .../rules/`
pub async fn add_rule(
    Authed(ops): Authed,
    Path((org, slug)): ProjectPath,
    J(body): J<NewRule>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let trigger =
        Trigger::from_parts(&body.trigger, body.threshold, body.window_minutes).map_err(invalid)?;
    let channels = body
        .channels
        .iter()
        .map(|c| c.parse::<ChannelId>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(e.to_string()))?;
    let cooldown_ms = body
        .frequency
        .checked_mul(60_000)
        .ok_or_else(|| invalid("frequency is in minutes, at most 90 days".into()))?;
    let spec = RuleSpec {
        trigger,
        filters: Filters {
            environment: body.environment.filter(|e| !e.is_empty()),
            release: body.release.filter(|r| !r.is_empty()),
            min_level: body.level.filter(|l| !l.is_empty()),
            tags: body.tags.into_iter().collect(),
        },
        channels,
        cooldown_ms,
    };
    let rule = blocking(ops, move |ops| {
        let (_, id) = project(ops, &org, &slug)?;
        Ok(ops.add_rule(&id, spec)?)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(shapes::alert_rule(&rule))))
}

/// `DELETE .../rules/{id}/`
pub async fn remove_rule(
    Authed(ops): Authed,
    Path((org, slug, id)): Path<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    let id: RuleId = id
        .parse()
        .map_err(|_| ApiError::Ops(OpsError::NotFound("rule")))?;
    blocking(ops, move |ops| {
        let (_, project_id) = project(ops, &org, &slug)?;
        if !ops.rules(Some(&project_id))?.iter().any(|r| r.id == id) {
            return Err(ApiError::Ops(OpsError::NotFound("rule")));
        }
        Ok(ops.remove_rule(id)?)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET .../alerts/`: the project's notifications, newest first.
pub async fn project_history(
    Authed(ops): Authed,
    Path((org, slug)): ProjectPath,
) -> Result<Json<Value>, ApiError> {
    let alerts = blocking(ops, move |ops| {
        let (_, id) = project(ops, &org, &slug)?;
        Ok(ops.alert_history(Some(&id), None, 100)?)
    })
    .await?;
    Ok(Json(alerts.iter().map(shapes::alert).collect()))
}

/// `GET /api/0/issues/{id}/alerts/`: the notifications an issue caused.
pub async fn issue_history(
    Authed(ops): Authed,
    P(id): P<IssueId>,
) -> Result<Json<Value>, ApiError> {
    let alerts = blocking(ops, move |ops| {
        ops.issue(id)?;
        Ok(ops.alert_history(None, Some(id), 100)?)
    })
    .await?;
    Ok(Json(alerts.iter().map(shapes::alert).collect()))
}
