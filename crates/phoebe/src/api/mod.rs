//! The REST API under `/api/0/`, shaped like Sentry's Web API where they overlap so existing
//! tools (sentry-cli, scripts) work. Bearer tokens (`phoebe token create`); cursor pagination
//! with `Link` headers. Every handler is a thin translation to an [`crate::ops`] call.

mod alerts;
mod artifacts;
mod error;
pub mod json;
mod limits;
mod releases;

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{FromRequestParts, Path, Query, RawQuery, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

pub use error::ApiError;
pub use limits::{limits_json, usage_json};

use crate::domain::{Issue, IssueId, IssueStatus, Project, ProjectId};
use crate::ops::{self, IssueListRequest, Ops};

/// What API handlers share.
pub struct ApiState {
    /// The operations.
    pub ops: Ops,
}

type Shared = State<Arc<ApiState>>;

/// Runs a blocking operation off the async workers.
async fn blocking<T: Send + 'static>(
    ops: Ops,
    f: impl FnOnce(&Ops) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(move || f(&ops))
        .await
        .map_err(|e| ApiError::Unexpected(e.to_string()))?
}

/// `Path`, with a malformed segment answered as a JSON 404 like every other API error.
pub struct P<T>(pub T);

impl<T, S> FromRequestParts<S> for P<T>
where
    T: serde::de::DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        // `/issues/abc/` names no issue: a 404, as for an id that does not exist.
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(v)| P(v))
            .map_err(|_| ApiError::Ops(ops::OpsError::NotFound("resource")))
    }
}

/// `Query`, with bad parameters answered as a JSON 400.
pub struct Q<T>(pub T);

impl<T, S> FromRequestParts<S> for Q<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| Q(v))
            .map_err(|e| {
                ApiError::Ops(ops::OpsError::Invalid(format!(
                    "bad query parameters: {}",
                    e.body_text()
                )))
            })
    }
}

/// `Json`, with a bad body answered as a JSON 400.
pub struct J<T>(pub T);

impl<T, S> axum::extract::FromRequest<S> for J<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        Json::<T>::from_request(req, state)
            .await
            .map(|Json(v)| J(v))
            .map_err(|e| {
                ApiError::Ops(ops::OpsError::Invalid(format!(
                    "bad JSON body: {}",
                    e.body_text()
                )))
            })
    }
}

/// The operations, acting for the caller a request's bearer token stands for: a handler cannot
/// reach an operation without one.
pub struct Authed(pub Ops);

impl FromRequestParts<Arc<ApiState>> for Authed {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<ApiState>,
    ) -> Result<Self, Self::Rejection> {
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let Some(token) = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
        else {
            return Err(ApiError::Unauthorized(
                "authentication required: send `Authorization: Bearer <token>` (create one with `phoebe token create`)".into(),
            ));
        };
        let token = token.trim().to_string();
        let caller = blocking(state.ops.clone(), move |ops| {
            Ok(ops.authenticate_token(&token)?)
        })
        .await?;
        caller
            .map(|c| Authed(state.ops.acting_as(c)))
            .ok_or_else(|| ApiError::Unauthorized("invalid or revoked token".into()))
    }
}

/// The API router: every route under `/api/0/`, with and without the trailing slash.
pub fn router(state: Arc<ApiState>) -> Router {
    let routes: [(&str, axum::routing::MethodRouter<Arc<ApiState>>); 34] = [
        ("/", get(index)),
        ("/organizations/", get(list_orgs)),
        ("/organizations/{org}/", get(get_org)),
        ("/organizations/{org}/projects/", get(org_projects)),
        ("/organizations/{org}/issues/", get(org_issues)),
        (
            "/organizations/{org}/chunk-upload/",
            artifacts::chunk_upload(),
        ),
        (
            "/organizations/{org}/artifactbundle/assemble/",
            artifacts::assemble_route(),
        ),
        (
            "/organizations/{org}/releases/",
            get(releases::list).post(releases::create),
        ),
        (
            "/organizations/{org}/releases/{version}/",
            get(releases::get)
                .put(releases::update)
                .delete(releases::delete),
        ),
        (
            "/organizations/{org}/releases/{version}/deploys/",
            get(releases::list_deploys).post(releases::create_deploy),
        ),
        ("/projects/", get(list_projects)),
        ("/projects/{org}/{project}/events/", get(project_events)),
        (
            "/projects/{org}/{project}/releases/",
            get(releases::project_list),
        ),
        (
            "/projects/{org}/{project}/releases/{version}/",
            get(releases::project_get),
        ),
        ("/projects/{org}/{project}/", get(get_project)),
        ("/projects/{org}/{project}/keys/", get(project_keys)),
        (
            "/projects/{org}/{project}/keys/{key}/",
            get(limits::get_key).put(limits::put_key),
        ),
        (
            "/projects/{org}/{project}/limits/",
            get(limits::get_limits).put(limits::put_limits),
        ),
        ("/projects/{org}/{project}/usage/", get(limits::get_usage)),
        (
            "/projects/{org}/{project}/rules/",
            get(alerts::list_rules).post(alerts::add_rule),
        ),
        (
            "/projects/{org}/{project}/rules/{id}/",
            axum::routing::delete(alerts::remove_rule),
        ),
        (
            "/projects/{org}/{project}/alert-channels/",
            get(alerts::list_channels).post(alerts::add_channel),
        ),
        (
            "/projects/{org}/{project}/alert-channels/{id}/",
            axum::routing::delete(alerts::remove_channel),
        ),
        (
            "/projects/{org}/{project}/alert-channels/{id}/test/",
            axum::routing::post(alerts::test_channel),
        ),
        (
            "/projects/{org}/{project}/alerts/",
            get(alerts::project_history),
        ),
        (
            "/projects/{org}/{project}/issues/",
            get(project_issues)
                .put(bulk_update_issues)
                .delete(bulk_delete_issues),
        ),
        (
            "/projects/{org}/{project}/events/{event_id}/",
            get(project_event),
        ),
        (
            "/issues/{id}/",
            get(get_issue).put(update_issue).delete(delete_issue),
        ),
        ("/issues/{id}/activities/", get(issue_activities)),
        ("/issues/{id}/comments/", axum::routing::post(add_comment)),
        ("/issues/{id}/events/", get(issue_events)),
        ("/issues/{id}/events/{which}/", get(issue_event_edge)),
        ("/issues/{id}/tags/", get(issue_tags)),
        ("/issues/{id}/alerts/", get(alerts::issue_history)),
    ];
    let mut router = Router::new();
    for (path, route) in routes {
        // Sentry's paths end in '/', but many scripts drop it: serve both.
        let full = format!("/api/0{path}");
        router = router.route(full.trim_end_matches('/'), route.clone());
        router = router.route(&full, route);
    }
    router.with_state(state)
}

/// `GET /api/0/`: who the token is (sentry-cli's `info`); a token that is given but unknown is
/// a 401, as in Sentry, so `sentry-cli info` says the token is wrong.
async fn index(State(state): Shared, headers: HeaderMap) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string());
    let Some(token) = token else {
        return Json(json!({ "version": "0", "auth": null, "user": null })).into_response();
    };
    let caller = blocking(state.ops.clone(), move |ops| {
        Ok(ops.authenticate_token(&token)?)
    })
    .await;
    match caller {
        Ok(Some(c)) => match c.user() {
            Some(u) => Json(json!({
                "version": "0",
                "user": {"id": u.id.to_string(), "username": u.login, "email": u.email.as_deref().unwrap_or(&u.login)},
                "auth": {"scopes": ["org:read", "project:read", "project:write", "project:releases", "event:read", "event:write"]},
            }))
            .into_response(),
            None => Json(json!({ "version": "0", "auth": null, "user": null })).into_response(),
        },
        Ok(None) => ApiError::Unauthorized(
            "invalid token: create one with `phoebe token create`".into(),
        )
        .into_response(),
        Err(e) => e.into_response(),
    }
}

async fn list_orgs(Authed(ops): Authed) -> Result<Json<Value>, ApiError> {
    let orgs = blocking(ops, |ops| Ok(ops.orgs()?)).await?;
    Ok(Json(Value::Array(orgs.iter().map(json::org).collect())))
}

async fn get_org(Authed(ops): Authed, P(org): P<String>) -> Result<Json<Value>, ApiError> {
    let orgs = blocking(ops, |ops| Ok(ops.orgs()?)).await?;
    let o = orgs
        .iter()
        .find(|o| o.slug == org)
        .ok_or(ApiError::Ops(ops::OpsError::NotFound("organization")))?;
    Ok(Json(json::org(o)))
}

async fn org_projects(Authed(ops): Authed, P(org): P<String>) -> Result<Json<Value>, ApiError> {
    let wanted = org.clone();
    let projects = blocking(ops, move |ops| {
        if !ops.orgs()?.iter().any(|o| o.slug == wanted) {
            return Err(ApiError::Ops(ops::OpsError::NotFound("organization")));
        }
        Ok(ops.projects()?)
    })
    .await?;
    let list: Vec<Value> = projects
        .iter()
        .filter(|(p, _)| p.org_slug == org)
        .map(|(p, _)| json::project(p))
        .collect();
    Ok(Json(Value::Array(list)))
}

async fn list_projects(Authed(ops): Authed) -> Result<Json<Value>, ApiError> {
    let projects = blocking(ops, |ops| Ok(ops.projects()?)).await?;
    Ok(Json(Value::Array(
        projects.iter().map(|(p, _)| json::project(p)).collect(),
    )))
}

async fn get_project(
    Authed(ops): Authed,
    Path((org, project)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let p = blocking(ops, move |ops| Ok(ops.project(&org, &project)?)).await?;
    Ok(Json(json::project(&p)))
}

async fn project_keys(
    Authed(ops): Authed,
    Path((org, project)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let keys = blocking(ops, move |ops| {
        let p = ops.project(&org, &project)?;
        Ok(ops
            .project_keys(&p)?
            .iter()
            .map(|k| json::key(k, &ops.dsn(k)))
            .collect::<Vec<_>>())
    })
    .await?;
    Ok(Json(Value::Array(keys)))
}

/// Query parameters of issue lists.
#[derive(serde::Deserialize, Default)]
struct IssueListParams {
    query: Option<String>,
    #[serde(rename = "statsPeriod")]
    stats_period: Option<String>,
    sort: Option<String>,
    cursor: Option<String>,
    limit: Option<i64>,
    per_page: Option<i64>,
    environment: Option<String>,
}

/// `Link` header with Sentry's previous/next cursors; each side is (cursor, has results).
/// A page of a list with its `Link` header.
fn paged(
    body: Value,
    uri: &Uri,
    public_url: &str,
    previous: Option<(String, bool)>,
    next: Option<(String, bool)>,
) -> Response {
    let mut response = Json(body).into_response();
    response
        .headers_mut()
        .insert(header::LINK, link_header(uri, public_url, previous, next));
    response
}

fn link_header(
    uri: &Uri,
    public_url: &str,
    previous: Option<(String, bool)>,
    next: Option<(String, bool)>,
) -> HeaderValue {
    let base = format!("{public_url}{}", uri.path());
    let other: Vec<String> = uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|kv| !kv.is_empty() && !kv.starts_with("cursor="))
        .map(str::to_string)
        .collect();
    // An empty page has no position to continue from; point both links back at its own cursor.
    let here = uri
        .query()
        .unwrap_or("")
        .split('&')
        .find_map(|kv| kv.strip_prefix("cursor="))
        .unwrap_or("0:0:0")
        .to_string();
    let link = |rel: &str, side: Option<(String, bool)>| {
        let (cursor, results) = side.unwrap_or((here.clone(), false));
        let mut q = other.clone();
        q.push(format!("cursor={cursor}"));
        format!(
            "<{base}?{}>; rel=\"{rel}\"; results=\"{results}\"; cursor=\"{cursor}\"",
            q.join("&")
        )
    };
    let value = format!("{}, {}", link("previous", previous), link("next", next));
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
}

async fn list_issues(
    ops: Ops,
    uri: Uri,
    org: Option<String>,
    project: Option<String>,
    params: IssueListParams,
) -> Result<Response, ApiError> {
    let period = params.stats_period.clone().unwrap_or_else(|| "24h".into());
    let mut query = params.query.clone();
    if let Some(env) = &params.environment {
        let q = query.get_or_insert_with(|| "is:unresolved".into());
        q.push_str(&format!(" environment:\"{env}\""));
    }
    let req = IssueListRequest {
        project,
        org,
        query,
        stats_period: params.stats_period.clone(),
        sort: params.sort.clone(),
        cursor: params.cursor.clone(),
        limit: params.limit.or(params.per_page),
    };
    let public_url = ops.public_url().to_string();
    let (page, body) = blocking(ops, move |ops| {
        let page = ops.list_issues(&req)?;
        let period_ms = ops::parse_period_ms(&period).unwrap_or(86_400_000);
        let bucket = if period_ms > 2 * 86_400_000 {
            86_400_000
        } else {
            3_600_000
        };
        let ids: Vec<IssueId> = page.issues.iter().map(|i| i.id).collect();
        let stats = ops.issue_stats(&ids, period_ms, bucket)?;
        let mut projects: HashMap<ProjectId, Project> = HashMap::new();
        let mut out = Vec::with_capacity(page.issues.len());
        for (issue, (_, series)) in page.issues.iter().zip(stats.iter()) {
            if let std::collections::hash_map::Entry::Vacant(slot) =
                projects.entry(issue.project_id)
            {
                slot.insert(ops.project_by_id(issue.project_id)?);
            }
            out.push(json::issue(
                issue,
                &projects[&issue.project_id],
                ops.public_url(),
                Some((&period, series)),
            ));
        }
        Ok((page, Value::Array(out)))
    })
    .await?;
    Ok(paged(body, &uri, &public_url, page.previous, page.next))
}

async fn project_issues(
    Authed(ops): Authed,
    uri: Uri,
    Path((org, project)): Path<(String, String)>,
    Q(params): Q<IssueListParams>,
) -> Result<Response, ApiError> {
    list_issues(ops, uri, Some(org), Some(project), params).await
}

async fn org_issues(
    Authed(ops): Authed,
    uri: Uri,
    P(org): P<String>,
    Q(params): Q<IssueListParams>,
) -> Result<Response, ApiError> {
    list_issues(ops, uri, Some(org), None, params).await
}

fn issue_with_project(ops: &Ops, issue: &Issue) -> Result<Value, ApiError> {
    let project = ops.project_by_id(issue.project_id)?;
    let stats = ops.issue_stats(&[issue.id], 86_400_000, 3_600_000)?;
    let series = stats.first().map(|(_, s)| s.as_slice()).unwrap_or(&[]);
    Ok(json::issue(
        issue,
        &project,
        ops.public_url(),
        Some(("24h", series)),
    ))
}

async fn get_issue(Authed(ops): Authed, P(id): P<IssueId>) -> Result<Json<Value>, ApiError> {
    let v = blocking(ops, move |ops| {
        let issue = ops.issue(id)?;
        issue_with_project(ops, &issue)
    })
    .await?;
    Ok(Json(v))
}

/// Body of an issue update, as Sentry's API takes it.
#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct IssueUpdate {
    status: Option<String>,
    #[serde(default)]
    status_details: StatusDetails,
    /// A login to assign, `null` or `""` to unassign; absent leaves it.
    #[serde(default, deserialize_with = "present")]
    assigned_to: Option<Option<String>>,
    /// `1` or `true` on the bulk endpoint: merge the named issues.
    #[serde(default)]
    merge: Option<Value>,
}

#[derive(serde::Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct StatusDetails {
    in_next_release: Option<bool>,
    /// Minutes.
    ignore_duration: Option<i64>,
    ignore_count: Option<i64>,
}

/// Tells a field sent as `null` (`Some(None)`) from one not sent (`None`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Ok(Some(
        <Option<String> as serde::Deserialize>::deserialize(d)?.filter(|s| !s.is_empty()),
    ))
}

impl IssueUpdate {
    /// The change asked for; a status Phoebe does not know is a 400 that names the known ones.
    fn change(&self) -> Result<ops::triage::IssueChange, ApiError> {
        let next_release = self.status.as_deref() == Some("resolvedInNextRelease");
        Ok(ops::triage::IssueChange {
            status: match (next_release, self.status.as_deref()) {
                (true, _) => Some(IssueStatus::Resolved),
                (false, Some(s)) => Some(ops::triage::parse_status(s)?),
                (false, None) => None,
            },
            in_next_release: next_release || self.status_details.in_next_release == Some(true),
            ignore_minutes: self.status_details.ignore_duration,
            ignore_count: self.status_details.ignore_count,
            assign: self.assigned_to.clone().map(|a| {
                // Sentry clients send "username" or "user:<id>"; Phoebe's ids are logins.
                a.map(|s| s.strip_prefix("user:").map_or(s.clone(), str::to_string))
            }),
            comment: None,
        })
    }

    fn wants_merge(&self) -> bool {
        matches!(&self.merge, Some(Value::Bool(true)))
            || self.merge.as_ref().and_then(Value::as_i64) == Some(1)
    }
}

async fn update_issue(
    Authed(ops): Authed,
    P(id): P<IssueId>,
    J(body): J<IssueUpdate>,
) -> Result<Json<Value>, ApiError> {
    let v = blocking(ops, move |ops| {
        let issue = ops.change_issue(id, &body.change()?)?;
        issue_with_project(ops, &issue)
    })
    .await?;
    Ok(Json(v))
}

async fn delete_issue(Authed(ops): Authed, P(id): P<IssueId>) -> Result<StatusCode, ApiError> {
    blocking(ops, move |ops| {
        ops.issue(id)?;
        Ok(ops.delete_issues(&[id])?)
    })
    .await?;
    Ok(StatusCode::ACCEPTED)
}

/// The `?id=1&id=2` issues of a bulk request, all of them in the project.
fn bulk_ids(
    ops: &Ops,
    org: &str,
    project: &str,
    query: Option<&str>,
) -> Result<Vec<IssueId>, ApiError> {
    let ids: Vec<IssueId> = query
        .unwrap_or_default()
        .split('&')
        .filter_map(|kv| kv.strip_prefix("id="))
        .filter_map(|v| v.parse().ok())
        .collect();
    if ids.is_empty() {
        return Err(ApiError::Ops(ops::OpsError::Invalid(
            "name the issues with ?id=<issue id>&id=...".into(),
        )));
    }
    let p = ops.project(org, project)?;
    for id in &ids {
        if ops.issue(*id)?.project_id != p.id {
            return Err(ApiError::Ops(ops::OpsError::NotFound("issue")));
        }
    }
    Ok(ids)
}

async fn bulk_update_issues(
    Authed(ops): Authed,
    Path((org, project)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    J(body): J<IssueUpdate>,
) -> Result<Response, ApiError> {
    let v = blocking(ops, move |ops| {
        let ids = bulk_ids(ops, &org, &project, query.as_deref())?;
        if body.wants_merge() {
            let merged = ops.merge_issues(&ids)?;
            let children: Vec<String> = ids
                .iter()
                .filter(|id| **id != merged.id)
                .map(IssueId::to_string)
                .collect();
            return Ok(json!({"merge": {"parent": merged.id.to_string(), "children": children}}));
        }
        let change = body.change()?;
        if change == ops::triage::IssueChange::default() {
            return Err(ApiError::Ops(ops::OpsError::Invalid(
                "send a status (resolved, unresolved, ignored), assignedTo or merge".into(),
            )));
        }
        for id in &ids {
            ops.change_issue(*id, &change)?;
        }
        let mut echo = json!({});
        if let Some(s) = &body.status {
            echo["status"] = json!(s);
        }
        if let Some(a) = &body.assigned_to {
            echo["assignedTo"] = json!(a);
        }
        Ok(echo)
    })
    .await?;
    Ok((StatusCode::OK, Json(v)).into_response())
}

async fn bulk_delete_issues(
    Authed(ops): Authed,
    Path((org, project)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Result<StatusCode, ApiError> {
    blocking(ops, move |ops| {
        let ids = bulk_ids(ops, &org, &project, query.as_deref())?;
        Ok(ops.delete_issues(&ids)?)
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn issue_activities(Authed(ops): Authed, P(id): P<IssueId>) -> Result<Json<Value>, ApiError> {
    let log = blocking(ops, move |ops| Ok(ops.activity(id)?)).await?;
    Ok(Json(Value::Array(log.iter().map(json::activity).collect())))
}

#[derive(serde::Deserialize)]
struct NewComment {
    text: String,
}

async fn add_comment(
    Authed(ops): Authed,
    P(id): P<IssueId>,
    J(body): J<NewComment>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let entry = blocking(ops, move |ops| {
        let change = ops::triage::IssueChange {
            comment: Some(body.text),
            ..Default::default()
        };
        ops.change_issue(id, &change)?;
        Ok(ops.activity(id)?.into_iter().next())
    })
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(entry.as_ref().map_or(Value::Null, json::activity)),
    ))
}

#[derive(serde::Deserialize, Default)]
struct PageParams {
    cursor: Option<String>,
    limit: Option<i64>,
    per_page: Option<i64>,
}

async fn issue_events(
    Authed(ops): Authed,
    uri: Uri,
    P(id): P<IssueId>,
    Q(p): Q<PageParams>,
) -> Result<Response, ApiError> {
    let limit = p.limit.or(p.per_page).unwrap_or(25).clamp(1, 100);
    let public_url = ops.public_url().to_string();
    let (body, previous, next) = blocking(ops, move |ops| {
        let page = ops.issue_events(id, p.cursor.as_deref(), limit)?;
        let issue = ops.issue(id)?;
        let body = Value::Array(
            page.events
                .iter()
                .map(|e| json::event(e, Some(&issue), None))
                .collect(),
        );
        Ok((body, page.previous, page.next))
    })
    .await?;
    Ok(paged(body, &uri, &public_url, previous, next))
}

/// `GET /projects/{org}/{project}/events/`: the project's events, newest first (sentry-cli's
/// `events list`).
async fn project_events(
    Authed(ops): Authed,
    uri: Uri,
    Path((org, project)): Path<(String, String)>,
    Q(p): Q<PageParams>,
) -> Result<Response, ApiError> {
    let limit = p.limit.or(p.per_page).unwrap_or(25).clamp(1, 100);
    let public_url = ops.public_url().to_string();
    let (body, previous, next) = blocking(ops, move |ops| {
        let page = ops.project_events(&org, &project, p.cursor.as_deref(), limit)?;
        // Titles and culprits are the issues'.
        let mut issues: HashMap<IssueId, Issue> = HashMap::new();
        for e in &page.events {
            if let std::collections::hash_map::Entry::Vacant(slot) = issues.entry(e.issue_id) {
                slot.insert(ops.issue(e.issue_id)?);
            }
        }
        let body = Value::Array(
            page.events
                .iter()
                .map(|e| json::event(e, issues.get(&e.issue_id), None))
                .collect(),
        );
        Ok((body, page.previous, page.next))
    })
    .await?;
    Ok(paged(body, &uri, &public_url, previous, next))
}

async fn issue_event_edge(
    Authed(ops): Authed,
    Path((id, which)): Path<(IssueId, String)>,
) -> Result<Json<Value>, ApiError> {
    let newest = match which.as_str() {
        "latest" => true,
        "oldest" => false,
        _ => return Err(ApiError::Ops(ops::OpsError::NotFound("endpoint"))),
    };
    let v = blocking(ops, move |ops| {
        let event = ops.issue_event_edge(id, newest)?;
        let issue = ops.issue(id)?;
        let grouping = ops.grouping(event.project_id, &event.grouping_hash)?;
        Ok(json::event(&event, Some(&issue), grouping))
    })
    .await?;
    Ok(Json(v))
}

async fn issue_tags(Authed(ops): Authed, P(id): P<IssueId>) -> Result<Json<Value>, ApiError> {
    let tags = blocking(ops, move |ops| Ok(ops.issue_tags(id)?)).await?;
    Ok(Json(json::tags(&tags)))
}

async fn project_event(
    Authed(ops): Authed,
    Path((org, project, event_id)): Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    let v = blocking(ops, move |ops| {
        let p = ops.project(&org, &project)?;
        let event = ops.event(p.id, &event_id)?;
        let issue = ops.issue(event.issue_id)?;
        let grouping = ops.grouping(event.project_id, &event.grouping_hash)?;
        Ok(json::event(&event, Some(&issue), grouping))
    })
    .await?;
    Ok(Json(v))
}
