//! The issue list: search, sort, pages and sparklines (its bulk bar posts to `triage::bulk`).

use std::collections::HashMap;

use askama::Template;
use axum::extract::Query;
use axum::response::Response;
use serde::Deserialize;

use super::format::{self, url_encode};
use super::session::Viewer;
use super::{blocking, page, Shared, UiError};
use crate::api::json::short_id;
use crate::domain::{Issue, IssueId, ProjectId};
use crate::ops::{IssueListRequest, OpsError};

/// The list's query string.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    project: Option<String>,
    query: Option<String>,
    sort: Option<String>,
    cursor: Option<String>,
}

/// One row of the list.
pub struct Row {
    pub issue: Issue,
    pub project: String,
    pub short_id: String,
    pub last_seen: String,
    pub first_seen: String,
    pub last_seen_exact: String,
    pub first_seen_exact: String,
    pub events: String,
    pub users: String,
    pub spark: String,
    pub is_new: bool,
}

#[derive(Template)]
#[template(path = "issues.html")]
struct IssuesPage {
    viewer: Viewer,
    projects: Vec<String>,
    project: String,
    query: String,
    sort: String,
    rows: Vec<Row>,
    next: Option<String>,
    previous: Option<String>,
    /// This page's own URL, for forms to come back to.
    here: String,
    error: Option<String>,
}

impl IssuesPage {
    /// The list's URL with these parameters (and no cursor unless given).
    fn link(&self, cursor: Option<&str>) -> String {
        list_url(&self.project, &self.query, &self.sort, cursor)
    }
}

fn list_url(project: &str, query: &str, sort: &str, cursor: Option<&str>) -> String {
    let mut parts = Vec::new();
    if !project.is_empty() {
        parts.push(format!("project={}", url_encode(project)));
    }
    parts.push(format!("query={}", url_encode(query)));
    if sort != "date" {
        parts.push(format!("sort={}", url_encode(sort)));
    }
    if let Some(c) = cursor {
        parts.push(format!("cursor={}", url_encode(c)));
    }
    format!("/issues/?{}", parts.join("&"))
}

const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;

pub async fn list(
    state: Shared,
    viewer: Viewer,
    Query(q): Query<ListQuery>,
) -> Result<Response, UiError> {
    let project = q.project.unwrap_or_default();
    let query = q.query.unwrap_or_else(|| "is:unresolved".into());
    let sort = q.sort.filter(|s| !s.is_empty()).unwrap_or("date".into());
    let req = IssueListRequest {
        project: (!project.is_empty()).then(|| project.clone()),
        query: Some(query.clone()),
        sort: Some(sort.clone()),
        cursor: q.cursor,
        limit: Some(25),
        ..Default::default()
    };
    let project_name = project.clone();
    let (projects, listed) = blocking(viewer.ops(&state.0), move |ops| {
        let projects: HashMap<ProjectId, String> = ops
            .projects()?
            .into_iter()
            .map(|(p, _)| (p.id, p.slug))
            .collect();
        let listed = match ops.list_issues(&req) {
            Ok(page) => {
                let ids: Vec<IssueId> = page.issues.iter().map(|i| i.id).collect();
                let stats = ops.issue_stats(&ids, DAY_MS, HOUR_MS)?;
                Ok((page, stats))
            }
            // A bad query is the user's to fix, on the same page.
            Err(OpsError::Invalid(msg)) => Err(msg),
            Err(OpsError::NotFound("project")) => Err(format!("no project {project_name:?}")),
            Err(e) => return Err(e.into()),
        };
        Ok((projects, listed))
    })
    .await?;
    let now = chrono::Utc::now().timestamp_millis();
    let (rows, next, previous, error) = match listed {
        Ok((issues, stats)) => {
            let stats: HashMap<IssueId, Vec<(i64, i64)>> = stats.into_iter().collect();
            let rows = issues
                .issues
                .into_iter()
                .map(|issue| {
                    let slug = projects.get(&issue.project_id).cloned().unwrap_or_default();
                    Row {
                        short_id: short_id(&slug, issue.short_id),
                        project: slug,
                        last_seen: format::ago(issue.last_seen_ms, now),
                        first_seen: format::ago(issue.first_seen_ms, now),
                        last_seen_exact: format::exact(issue.last_seen_ms),
                        first_seen_exact: format::exact(issue.first_seen_ms),
                        events: format::count(issue.times_seen),
                        users: format::count(issue.user_count),
                        spark: format::sparkline(
                            stats.get(&issue.id).map_or(&[][..], |s| s.as_slice()),
                            96,
                            24,
                        ),
                        is_new: now - issue.first_seen_ms < DAY_MS,
                        issue,
                    }
                })
                .collect();
            let link = |l: Option<(String, bool)>| l.filter(|(_, has)| *has).map(|(c, _)| c);
            (rows, link(issues.next), link(issues.previous), None)
        }
        Err(msg) => (Vec::new(), None, None, Some(msg)),
    };
    let mut projects: Vec<String> = projects.into_values().collect();
    projects.sort();
    let here = list_url(&project, &query, &sort, None);
    page(&IssuesPage {
        viewer,
        projects,
        project,
        query,
        sort,
        rows,
        next,
        previous,
        here,
        error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_urls_keep_the_search() {
        assert_eq!(
            list_url("web", "is:unresolved level:error", "freq", None),
            "/issues/?project=web&query=is%3Aunresolved+level%3Aerror&sort=freq"
        );
        assert_eq!(
            list_url("", "", "date", Some("1:2:0")),
            "/issues/?query=&cursor=1%3A2%3A0"
        );
    }
}
