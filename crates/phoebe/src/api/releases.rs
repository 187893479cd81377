//! `/api/0/organizations/{org}/releases/` (and a project's view of them) and their deploys, as
//! sentry-cli's `releases` and `deploys` commands call them.

use axum::extract::{Path, Query};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::Value;

use super::json as shapes;
use super::{blocking, ApiError, Authed, J, P};
use crate::domain::{NewDeploy, Release, ReleaseChange, ReleaseStatus};
use crate::ops::{Ops, OpsError};

/// Releases a list answers at most.
const LIST_LIMIT: usize = 1000;

fn invalid(msg: String) -> ApiError {
    ApiError::Ops(OpsError::Invalid(msg))
}

/// An ISO 8601 time as ms; the error names the field.
fn parse_time(field: &str, value: Option<&str>) -> Result<Option<i64>, ApiError> {
    value
        .map(|v| {
            chrono::DateTime::parse_from_rfc3339(v)
                .map(|t| t.timestamp_millis())
                .map_err(|_| {
                    invalid(format!(
                        "{field} must be an ISO 8601 time, e.g. 2026-12-03T10:00:00Z"
                    ))
                })
        })
        .transpose()
}

/// Project names as sentry-cli sends them: numbers for numeric ids, else slugs.
fn project_names(projects: &[Value]) -> Vec<String> {
    projects
        .iter()
        .map(|p| match p {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect()
}

/// A release with its projects, as JSON.
fn answer(ops: &Ops, release: &Release) -> Result<Value, ApiError> {
    let projects: Vec<_> = ops.projects()?.into_iter().map(|(p, _)| p).collect();
    Ok(shapes::release(release, &projects))
}

/// `POST .../releases/` and `PUT .../releases/{version}/` bodies.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct ReleaseBody {
    version: Option<String>,
    #[serde(default)]
    projects: Vec<Value>,
    url: Option<String>,
    date_started: Option<String>,
    date_released: Option<String>,
    status: Option<String>,
}

impl ReleaseBody {
    fn change(&self) -> Result<ReleaseChange, ApiError> {
        Ok(ReleaseChange {
            projects: Vec::new(),
            url: self.url.clone().filter(|u| !u.is_empty()),
            released_ms: parse_time("dateReleased", self.date_released.as_deref())?,
            started_ms: parse_time("dateStarted", self.date_started.as_deref())?,
            status: self
                .status
                .as_deref()
                .map(ReleaseStatus::parse)
                .transpose()
                .map_err(invalid)?,
        })
    }
}

/// `?project=` (id or slug) and `?status=archived` on release lists.
#[derive(Deserialize, Default)]
pub struct ListQuery {
    project: Option<String>,
    status: Option<String>,
}

/// `GET /organizations/{org}/releases/`
pub async fn list(
    Authed(ops): Authed,
    P(org): P<String>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    listing(ops, org, q.project, q.status).await
}

/// `GET /projects/{org}/{project}/releases/`
pub async fn project_list(
    Authed(ops): Authed,
    Path((org, project)): Path<(String, String)>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    listing(ops, org, Some(project), q.status).await
}

async fn listing(
    ops: Ops,
    org: String,
    project: Option<String>,
    status: Option<String>,
) -> Result<Json<Value>, ApiError> {
    let archived = status.as_deref() == Some("archived");
    let list = blocking(ops, move |ops| {
        let releases = ops.releases(&org, project.as_deref(), archived, LIST_LIMIT)?;
        releases
            .iter()
            .map(|r| answer(ops, r))
            .collect::<Result<Vec<_>, _>>()
    })
    .await?;
    Ok(Json(Value::Array(list)))
}

/// `POST /organizations/{org}/releases/`: 201 when created, 208 when it already existed (both
/// apply the body).
pub async fn create(
    Authed(ops): Authed,
    P(org): P<String>,
    J(body): J<ReleaseBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let version = body
        .version
        .clone()
        .ok_or_else(|| invalid("a release needs a version".into()))?;
    let change = body.change()?;
    let projects = project_names(&body.projects);
    let (release, created) = blocking(ops, move |ops| {
        let (release, created) = ops.create_release(&org, &version, &projects, change)?;
        Ok((answer(ops, &release)?, created))
    })
    .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::ALREADY_REPORTED
    };
    Ok((status, Json(release)))
}

/// `GET /organizations/{org}/releases/{version}/` and the project's view of it.
pub async fn get(
    Authed(ops): Authed,
    Path((org, version)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let release = blocking(ops, move |ops| {
        let r = ops.release(&org, &version)?;
        answer(ops, &r)
    })
    .await?;
    Ok(Json(release))
}

/// `GET /projects/{org}/{project}/releases/{version}/`
pub async fn project_get(
    Authed(ops): Authed,
    Path((org, project, version)): Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    let release = blocking(ops, move |ops| {
        let p = ops.project(&org, &project)?;
        let r = ops.release(&org, &version)?;
        if !r.projects.contains(&p.id) {
            return Err(ApiError::Ops(OpsError::NotFound("release")));
        }
        answer(ops, &r)
    })
    .await?;
    Ok(Json(release))
}

/// `PUT /organizations/{org}/releases/{version}/`: finalize (`dateReleased`), link, projects,
/// archive or restore (`status`).
pub async fn update(
    Authed(ops): Authed,
    Path((org, version)): Path<(String, String)>,
    J(body): J<ReleaseBody>,
) -> Result<Json<Value>, ApiError> {
    let change = body.change()?;
    let projects = project_names(&body.projects);
    let release = blocking(ops, move |ops| {
        let r = ops.update_release(&org, &version, &projects, change)?;
        answer(ops, &r)
    })
    .await?;
    Ok(Json(release))
}

/// `DELETE /organizations/{org}/releases/{version}/`
pub async fn delete(
    Authed(ops): Authed,
    Path((org, version)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    blocking(ops, move |ops| Ok(ops.delete_release(&org, &version)?)).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST .../releases/{version}/deploys/` body.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeployBody {
    environment: Option<String>,
    name: Option<String>,
    url: Option<String>,
    date_started: Option<String>,
    date_finished: Option<String>,
}

/// `GET .../releases/{version}/deploys/`
pub async fn list_deploys(
    Authed(ops): Authed,
    Path((org, version)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let deploys = blocking(ops, move |ops| Ok(ops.deploys(&org, &version)?)).await?;
    Ok(Json(deploys.iter().map(shapes::deploy).collect()))
}

/// `POST .../releases/{version}/deploys/`
pub async fn create_deploy(
    Authed(ops): Authed,
    Path((org, version)): Path<(String, String)>,
    J(body): J<DeployBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let deploy = NewDeploy {
        environment: body.environment.unwrap_or_default(),
        name: body.name.filter(|n| !n.is_empty()),
        url: body.url.filter(|u| !u.is_empty()),
        started_ms: parse_time("dateStarted", body.date_started.as_deref())?,
        finished_ms: parse_time("dateFinished", body.date_finished.as_deref())?,
    };
    let created = blocking(ops, move |ops| {
        Ok(ops.create_deploy(&org, &version, deploy)?)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(shapes::deploy(&created))))
}
