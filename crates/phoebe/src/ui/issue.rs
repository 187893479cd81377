//! One issue: its counts, one of its events in full, its tags, why its events were grouped
//! together, the alerts it caused, and the triage buttons; plus the list of its events and raw
//! JSON downloads.

use askama::Template;
use axum::extract::{Path, Query};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;

use super::alerts::{alert_rows, AlertRow};
use super::event_view::{self, EventView};
use super::format;
use super::releases::release_path;
use super::session::Viewer;
use super::triage::{describe, ActivityLine};
use super::{blocking, html_headers, page, Shared, UiError};
use crate::api::json::short_id;
use crate::domain::{Issue, IssueId, StoredEvent, TagCount};
use crate::ops::OpsError;

/// One tag key of an issue with its most common values.
pub struct TagGroup {
    pub key: String,
    pub total: i64,
    /// (value, count, percent of the key's events).
    pub values: Vec<(String, i64, u32)>,
}

/// One line of the "why grouped" tree.
pub struct GroupingLine {
    pub depth: usize,
    pub kind: String,
    pub values: String,
    pub contributes: bool,
    pub hint: String,
}

/// The event shown and its place among the issue's events.
pub struct Shown {
    pub event: StoredEvent,
    pub view: EventView,
    pub time: String,
    pub time_exact: String,
    pub older: Option<String>,
    pub newer: Option<String>,
    pub release: String,
    pub environment: String,
}

#[derive(Template)]
#[template(path = "issue.html")]
struct IssuePage {
    viewer: Viewer,
    issue: Issue,
    project: String,
    short_id: String,
    first_seen: String,
    last_seen: String,
    first_seen_exact: String,
    last_seen_exact: String,
    /// Hourly events over the last day.
    spark: String,
    /// Daily events over the last 30 days.
    spark_month: String,
    shown: Option<Shown>,
    tags: Vec<TagGroup>,
    grouping_variant: String,
    grouping: Vec<GroupingLine>,
    activity: Vec<ActivityLine>,
    /// Logins of the active users, for the assignee menu.
    users: Vec<String>,
    /// "until 2026-11-27 10:00:00 UTC or 100 events", when ignored with conditions.
    ignore_until: String,
    /// The notifications this issue caused, newest first.
    alerts: Vec<AlertRow>,
}

/// Notifications the issue page lists.
const ISSUE_ALERTS: i64 = 20;

impl IssuePage {
    fn status(&self) -> &'static str {
        self.issue.status.as_str()
    }

    fn is_assignee(&self, login: &str) -> bool {
        self.issue.assignee.as_deref() == Some(login)
    }

    /// The page of one of the issue's project's releases.
    fn release_href(&self, version: &str) -> String {
        release_path(&self.project, version)
    }
}

#[derive(Deserialize)]
pub struct DetailQuery {
    event: Option<String>,
}

fn tag_groups(tags: Vec<TagCount>) -> Vec<TagGroup> {
    let mut groups: Vec<TagGroup> = Vec::new();
    for t in tags {
        let pct = if t.key_total > 0 {
            ((t.count * 100 + t.key_total / 2) / t.key_total) as u32
        } else {
            0
        };
        match groups.last_mut() {
            Some(g) if g.key == t.key => g.values.push((t.value, t.count, pct)),
            _ => groups.push(TagGroup {
                key: t.key,
                total: t.key_total,
                values: vec![(t.value, t.count, pct)],
            }),
        }
    }
    groups
}

/// Flattens the grouping explanation (`{variant, components: [{kind, values, contributes,
/// hint, children}]}`) into indented lines.
fn grouping_lines(explanation: Option<&Value>) -> Vec<GroupingLine> {
    fn walk(components: &[Value], depth: usize, out: &mut Vec<GroupingLine>) {
        for c in components {
            let values = c
                .get("values")
                .and_then(Value::as_array)
                .map(|v| {
                    v.iter()
                        .map(|x| format!("{:?}", x.as_str().unwrap_or("")))
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default();
            out.push(GroupingLine {
                depth,
                kind: c.get("kind").and_then(Value::as_str).unwrap_or("").into(),
                values,
                contributes: c
                    .get("contributes")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                hint: c.get("hint").and_then(Value::as_str).unwrap_or("").into(),
            });
            if let Some(children) = c.get("children").and_then(Value::as_array) {
                walk(children, depth + 1, out);
            }
        }
    }
    let mut out = Vec::new();
    if let Some(components) = explanation
        .and_then(|e| e.get("components"))
        .and_then(Value::as_array)
    {
        walk(components, 0, &mut out);
    }
    out
}

fn ignore_until(issue: &Issue) -> String {
    let time = issue.ignore_until_ms.map(format::exact);
    let count = issue.ignore_until_count.map(|n| format!("{n} events"));
    match (time, count) {
        (Some(t), Some(c)) => format!("until {t} or {c}"),
        (Some(x), None) | (None, Some(x)) => format!("until {x}"),
        (None, None) => String::new(),
    }
}

fn tag_of(e: &StoredEvent, key: &str) -> String {
    e.payload
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

pub async fn detail(
    state: Shared,
    viewer: Viewer,
    Path(id): Path<IssueId>,
    Query(q): Query<DetailQuery>,
) -> Result<Response, UiError> {
    let (issue, project, event, neighbours, tags, grouping, stats, activity, users, alerts) =
        blocking(viewer.ops(&state.0), move |ops| {
            let issue = ops.issue(id)?;
            let project = ops.project_by_id(issue.project_id)?;
            // Every event may have been evicted by retention: the page still shows the issue.
            let edge = |newest| match ops.issue_event_edge(id, newest) {
                Ok(e) => Ok(Some(e)),
                Err(OpsError::NotFound(_)) => Ok(None),
                Err(e) => Err(UiError::from(e)),
            };
            let event = match q.event.as_deref() {
                None | Some("latest") => edge(true)?,
                Some("oldest") => edge(false)?,
                Some(e) => Some(ops.issue_event(&issue, e)?),
            };
            let neighbours = match &event {
                Some(e) => ops.event_neighbours(e)?,
                None => (None, None),
            };
            let grouping = match &event {
                Some(e) => ops.grouping(e.project_id, &e.grouping_hash)?,
                None => None,
            };
            let tags = ops.issue_tags(id)?;
            const DAY_MS: i64 = 86_400_000;
            let stats = (
                ops.issue_stats(&[id], DAY_MS, 3_600_000)?,
                ops.issue_stats(&[id], 30 * DAY_MS, DAY_MS)?,
            );
            let activity = ops.activity(id)?;
            let users: Vec<String> = ops
                .users()?
                .into_iter()
                .filter(|u| u.is_active)
                .map(|u| u.login)
                .collect();
            let alerts = ops.alert_history(None, Some(id), ISSUE_ALERTS)?;
            // Channel names, for the alerts' rows; most issues caused none.
            let channels = if alerts.is_empty() {
                Vec::new()
            } else {
                ops.channels(Some(&project.id.to_string()))?
            };
            Ok((
                issue,
                project,
                event,
                neighbours,
                tags,
                grouping,
                stats,
                activity,
                users,
                (alerts, channels),
            ))
        })
        .await?;
    let now = chrono::Utc::now().timestamp_millis();
    let shown = event.map(|event| Shown {
        view: event_view::view(&event.payload),
        time: format::ago(event.timestamp_ms, now),
        time_exact: format::exact(event.timestamp_ms),
        older: neighbours.0.map(|u| u.simple().to_string()),
        newer: neighbours.1.map(|u| u.simple().to_string()),
        release: tag_of(&event, "release"),
        environment: tag_of(&event, "environment"),
        event,
    });
    let chart = |series: &[(IssueId, crate::ops::Series)]| {
        series
            .first()
            .map(|(_, s)| format::sparkline(s, 240, 40))
            .unwrap_or_default()
    };
    let (spark, spark_month) = (chart(&stats.0), chart(&stats.1));
    page(&IssuePage {
        viewer,
        short_id: short_id(&project.slug, issue.short_id),
        project: project.slug,
        first_seen: format::ago(issue.first_seen_ms, now),
        last_seen: format::ago(issue.last_seen_ms, now),
        first_seen_exact: format::exact(issue.first_seen_ms),
        last_seen_exact: format::exact(issue.last_seen_ms),
        spark,
        spark_month,
        grouping_variant: shown
            .as_ref()
            .map(|s| s.event.grouping_variant.clone())
            .unwrap_or_default(),
        shown,
        tags: tag_groups(tags),
        grouping: grouping_lines(grouping.as_ref()),
        activity: activity.iter().map(|a| describe(a, now)).collect(),
        users,
        ignore_until: ignore_until(&issue),
        alerts: alert_rows(&alerts.0, &alerts.1, now),
        issue,
    })
}

/// One row of an issue's event list.
pub struct EventRow {
    pub id: String,
    pub time: String,
    pub time_exact: String,
    pub release: String,
    pub environment: String,
    pub user: String,
    pub message: String,
}

#[derive(Template)]
#[template(path = "events.html")]
struct EventsPage {
    viewer: Viewer,
    issue: Issue,
    short_id: String,
    rows: Vec<EventRow>,
    next: Option<String>,
    previous: Option<String>,
}

#[derive(Deserialize)]
pub struct EventsQuery {
    cursor: Option<String>,
}

pub async fn events(
    state: Shared,
    viewer: Viewer,
    Path(id): Path<IssueId>,
    Query(q): Query<EventsQuery>,
) -> Result<Response, UiError> {
    let (issue, project, events) = blocking(viewer.ops(&state.0), move |ops| {
        let issue = ops.issue(id)?;
        let project = ops.project_by_id(issue.project_id)?;
        let events = ops.issue_events(id, q.cursor.as_deref(), 50)?;
        Ok((issue, project, events))
    })
    .await?;
    let now = chrono::Utc::now().timestamp_millis();
    let rows = events
        .events
        .iter()
        .map(|e| {
            let user = e.payload.get("user").map_or(String::new(), |u| {
                ["email", "username", "id", "ip_address"]
                    .iter()
                    .find_map(|k| u.get(*k).filter(|v| !v.is_null()))
                    .map(|v| v.as_str().map_or(v.to_string(), str::to_string))
                    .unwrap_or_default()
            });
            let view = event_view::view(&e.payload);
            let message = view
                .exceptions
                .first()
                .map(|x| format!("{}: {}", x.ty, x.value))
                .or(view.message)
                .unwrap_or_default();
            EventRow {
                id: e.event_id.simple().to_string(),
                time: format::ago(e.timestamp_ms, now),
                time_exact: format::exact(e.timestamp_ms),
                release: tag_of(e, "release"),
                environment: tag_of(e, "environment"),
                user,
                message,
            }
        })
        .collect();
    let link = |l: Option<(String, bool)>| l.filter(|(_, has)| *has).map(|(c, _)| c);
    page(&EventsPage {
        viewer,
        short_id: short_id(&project.slug, issue.short_id),
        issue,
        rows,
        next: link(events.next),
        previous: link(events.previous),
    })
}

pub async fn raw_json(
    state: Shared,
    viewer: Viewer,
    Path((id, event_id)): Path<(IssueId, String)>,
) -> Result<Response, UiError> {
    let event = blocking(viewer.ops(&state.0), move |ops| {
        let issue = ops.issue(id)?;
        Ok(ops.issue_event(&issue, &event_id)?)
    })
    .await?;
    let body = serde_json::to_vec_pretty(&event.payload)
        .map_err(|e| UiError::Unexpected(e.to_string()))?;
    let disposition = format!(
        "attachment; filename=\"event-{}.json\"",
        event.event_id.simple()
    );
    Ok((
        html_headers(),
        [
            (header::CONTENT_TYPE, "application/json".to_string()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        body,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tag_values_are_grouped_by_key_with_percentages() {
        let t = |key: &str, value: &str, count, key_total| TagCount {
            key: key.into(),
            value: value.into(),
            count,
            first_seen_ms: 0,
            last_seen_ms: 0,
            key_total,
        };
        let g = tag_groups(vec![
            t("browser", "Chrome", 3, 4),
            t("browser", "Firefox", 1, 4),
            t("os", "Linux", 4, 4),
        ]);
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].values[0], ("Chrome".to_string(), 3, 75));
        assert_eq!(g[1].values[0].2, 100);
    }

    #[test]
    fn the_grouping_tree_is_flattened_in_order() {
        let lines = grouping_lines(Some(&json!({"components": [
            {"kind": "exception", "values": [], "contributes": true, "children": [
                {"kind": "type", "values": ["ValueError"], "contributes": true, "children": []},
                {"kind": "value", "values": ["bad"], "contributes": false,
                 "hint": "the stack trace takes precedence", "children": []}]}]})));
        assert_eq!(lines.len(), 3);
        assert_eq!(
            (lines[1].depth, lines[1].values.as_str()),
            (1, "\"ValueError\"")
        );
        assert!(!lines[2].contributes);
    }
}
