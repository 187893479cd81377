//! What people do to issues: status changes with their conditions, assignment, comments,
//! deletion and merging; each change is written to the activity log in the same transaction.

use crate::domain::rules::IssueEvent;
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use serde_json::{json, Value};

use super::{now_ms, read};
use crate::store::*;

/// Appends an activity entry (`user_id` `None` when Phoebe itself made the change).
pub fn record(
    c: &Connection,
    issue_id: IssueId,
    user_id: Option<UserId>,
    kind: ActivityKind,
    data: &Value,
) -> StoreResult<()> {
    c.prepare_cached(
        "INSERT INTO activity (issue_id, user_id, kind, data, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![issue_id, user_id, kind, data.to_string(), now_ms()])?;
    Ok(())
}

fn exists(c: &Connection, id: IssueId) -> StoreResult<()> {
    c.query_row("SELECT 1 FROM issues WHERE id = ?1", [id], |_| Ok(()))
        .optional()?
        .ok_or(StoreError::NotFound("issue"))
}

pub fn triage(
    c: &mut Connection,
    id: IssueId,
    user_id: Option<UserId>,
    change: &Triage,
) -> StoreResult<Issue> {
    let tx = c.transaction()?;
    exists(&tx, id)?;
    // Any status change clears the conditions of the previous one.
    const SET_STATUS: &str =
        "UPDATE issues SET status = ?2, is_regression = 0, ignore_until_ms = ?3,
        ignore_until_count = ?4, resolved_in_release = ?5 WHERE id = ?1";
    match change {
        Triage::Resolve { in_release } => {
            tx.execute(
                SET_STATUS,
                params![
                    id,
                    IssueStatus::Resolved,
                    None::<i64>,
                    None::<i64>,
                    in_release
                ],
            )?;
            let data = match in_release {
                Some(r) => json!({"inNextRelease": true, "currentRelease": r}),
                None => json!({}),
            };
            record(&tx, id, user_id, ActivityKind::Resolved, &data)?;
            // On-call incidents opened for the issue are closed from this.
            tx.execute(
                "INSERT INTO domain_events (project_id, issue_id, kind, data, created_ms)
                 SELECT project_id, id, ?2, '{}', ?3 FROM issues WHERE id = ?1",
                params![id, IssueEvent::Resolved.kind(), super::now_ms()],
            )?;
        }
        Triage::Unresolve => {
            tx.execute(
                SET_STATUS,
                params![
                    id,
                    IssueStatus::Unresolved,
                    None::<i64>,
                    None::<i64>,
                    None::<String>
                ],
            )?;
            record(&tx, id, user_id, ActivityKind::Unresolved, &json!({}))?;
        }
        Triage::Ignore {
            until_ms,
            until_count,
        } => {
            tx.execute(
                SET_STATUS,
                params![
                    id,
                    IssueStatus::Ignored,
                    until_ms,
                    until_count,
                    None::<String>
                ],
            )?;
            let mut data = json!({});
            if let Some(ms) = until_ms {
                data["untilMs"] = json!(ms);
            }
            if let Some(n) = until_count {
                data["untilCount"] = json!(n);
            }
            record(&tx, id, user_id, ActivityKind::Ignored, &data)?;
        }
        Triage::Assign(assignee) => {
            let login: Option<String> = match assignee {
                Some(uid) => Some(
                    tx.query_row("SELECT login FROM users WHERE id = ?1", [uid], |r| r.get(0))
                        .optional()?
                        .ok_or(StoreError::NotFound("user"))?,
                ),
                None => None,
            };
            tx.execute(
                "UPDATE issues SET assignee_id = ?2 WHERE id = ?1",
                params![id, assignee],
            )?;
            match login {
                Some(l) => record(
                    &tx,
                    id,
                    user_id,
                    ActivityKind::Assigned,
                    &json!({"assignee": l}),
                )?,
                None => record(&tx, id, user_id, ActivityKind::Unassigned, &json!({}))?,
            }
        }
        Triage::Comment(text) => record(
            &tx,
            id,
            user_id,
            ActivityKind::Comment,
            &json!({"text": text}),
        )?,
    }
    let issue = read::issue(&tx, id)?;
    tx.commit()?;
    Ok(issue)
}

pub fn activity(c: &Connection, issue_id: IssueId) -> StoreResult<Vec<Activity>> {
    let mut st = c.prepare_cached(
        "SELECT a.id, a.issue_id, u.login, a.kind, a.data, a.created_ms FROM activity a
         LEFT JOIN users u ON u.id = a.user_id WHERE a.issue_id = ?1 ORDER BY a.id DESC LIMIT 500",
    )?;
    let rows = st.query_map([issue_id], |r| {
        let data: String = r.get(4)?;
        Ok(Activity {
            id: r.get(0)?,
            issue_id: r.get(1)?,
            user: r.get(2)?,
            kind: r.get(3)?,
            data: serde_json::from_str(&data).unwrap_or(Value::Null),
            created_ms: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Removes an issue's rows other than the issue itself and its hashes.
fn delete_counters(tx: &Transaction, id: IssueId) -> StoreResult<()> {
    tx.execute("DELETE FROM issue_hourly WHERE issue_id = ?1", [id])?;
    tx.execute("DELETE FROM issue_minutes WHERE issue_id = ?1", [id])?;
    tx.execute("DELETE FROM issue_tags WHERE issue_id = ?1", [id])?;
    Ok(())
}

/// Deletes issues with their events, counters and activity. Their fingerprints are forgotten
/// too, so a later event with one of them starts a new issue. Returns how many were deleted.
pub fn delete_issues(c: &mut Connection, ids: &[IssueId]) -> StoreResult<u64> {
    let tx = c.transaction()?;
    let mut deleted = 0;
    for &id in ids {
        let Some(project_id) = tx
            .query_row("SELECT project_id FROM issues WHERE id = ?1", [id], |r| {
                r.get::<_, ProjectId>(0)
            })
            .optional()?
        else {
            continue;
        };
        let events = tx.execute("DELETE FROM events WHERE issue_id = ?1", [id])?;
        tx.execute(
            "UPDATE projects SET stored_events = max(0, stored_events - ?2) WHERE id = ?1",
            params![project_id, events as i64],
        )?;
        delete_counters(&tx, id)?;
        tx.execute("DELETE FROM issue_hashes WHERE issue_id = ?1", [id])?;
        tx.execute("DELETE FROM activity WHERE issue_id = ?1", [id])?;
        tx.execute("DELETE FROM issues WHERE id = ?1", [id])?;
        deleted += 1;
    }
    tx.commit()?;
    Ok(deleted)
}

/// Merges `sources` into `target`: their fingerprints, events, counters and activity move to
/// the target, so later events of any of them land there; the sources disappear.
pub fn merge_issues(
    c: &mut Connection,
    target: IssueId,
    sources: &[IssueId],
    user_id: Option<UserId>,
) -> StoreResult<Issue> {
    let tx = c.transaction()?;
    let into = read::issue(&tx, target)?;
    let mut merged = Vec::new();
    for &src in sources.iter().filter(|s| **s != target) {
        let from = read::issue(&tx, src)?;
        if from.project_id != into.project_id {
            return Err(StoreError::Invalid(format!(
                "issue {src} belongs to another project; only issues of one project can be merged"
            )));
        }
        for sql in [
            "UPDATE issue_hashes SET issue_id = ?1 WHERE issue_id = ?2",
            "UPDATE events SET issue_id = ?1 WHERE issue_id = ?2",
            "UPDATE activity SET issue_id = ?1 WHERE issue_id = ?2",
            "INSERT INTO issue_hourly (issue_id, hour_ms, count)
                SELECT ?1, hour_ms, count FROM issue_hourly WHERE issue_id = ?2
                ON CONFLICT (issue_id, hour_ms) DO UPDATE SET count = count + excluded.count",
            "INSERT INTO issue_minutes (minute_ms, issue_id, count)
                SELECT minute_ms, ?1, count FROM issue_minutes WHERE issue_id = ?2
                ON CONFLICT (minute_ms, issue_id) DO UPDATE SET count = count + excluded.count",
            "INSERT INTO issue_tags (issue_id, key, value, count, first_seen_ms, last_seen_ms)
                SELECT ?1, key, value, count, first_seen_ms, last_seen_ms FROM issue_tags WHERE issue_id = ?2
                ON CONFLICT (issue_id, key, value) DO UPDATE SET
                    count = count + excluded.count,
                    first_seen_ms = min(first_seen_ms, excluded.first_seen_ms),
                    last_seen_ms = max(last_seen_ms, excluded.last_seen_ms)",
            "UPDATE issues SET
                times_seen = issues.times_seen + s.times_seen,
                unpinned_stored = issues.unpinned_stored + s.unpinned_stored,
                first_seen_ms = min(issues.first_seen_ms, s.first_seen_ms),
                last_seen_ms = max(issues.last_seen_ms, s.last_seen_ms),
                first_release = CASE WHEN s.first_seen_ms < issues.first_seen_ms
                    THEN coalesce(s.first_release, issues.first_release) ELSE issues.first_release END,
                last_release = CASE WHEN s.last_seen_ms > issues.last_seen_ms
                    THEN coalesce(s.last_release, issues.last_release) ELSE issues.last_release END
             FROM (SELECT * FROM issues WHERE id = ?2) AS s WHERE issues.id = ?1",
        ] {
            tx.execute(sql, params![target, src])?;
        }
        delete_counters(&tx, src)?;
        tx.execute("DELETE FROM issues WHERE id = ?1", [src])?;
        merged.push(json!({"id": src.to_string(), "title": from.title}));
    }
    // Distinct users are the issue's `user` tag values, which the merge just combined.
    tx.execute(
        "UPDATE issues SET user_count =
            (SELECT count(*) FROM issue_tags WHERE issue_id = ?1 AND key = 'user') WHERE id = ?1",
        [target],
    )?;
    if !merged.is_empty() {
        record(
            &tx,
            target,
            user_id,
            ActivityKind::Merged,
            &json!({ "issues": merged }),
        )?;
    }
    let issue = read::issue(&tx, target)?;
    tx.commit()?;
    Ok(issue)
}
