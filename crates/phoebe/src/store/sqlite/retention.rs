//! Retention: evicting stored events by age, by the per-project cap and by the disk budget, in
//! small transactions so digest's writes interleave, then handing freed pages back to the file
//! system (incremental vacuum). Issues, their counts and their hourly and tag counters are never
//! touched: only event rows (and kept items) go.

use std::collections::HashMap;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::store::*;

/// Days the notification history and domain events are kept, whatever events' maximum age.
const HISTORY_DAYS: i64 = 90;

const DAY_MS: i64 = 86_400_000;
const HOUR_MS: i64 = 3_600_000;

/// Freed pages returned to the file system per step (4 KiB pages: 8 MiB).
const VACUUM_PAGES: i64 = 2048;

/// What one step removed per project and issue, to keep the counters exact.
#[derive(Default)]
struct Removed {
    per_project: HashMap<ProjectId, i64>,
    unpinned_per_issue: HashMap<IssueId, i64>,
}

impl Removed {
    fn total(&self) -> u64 {
        self.per_project.values().sum::<i64>() as u64
    }
}

/// Deletes the events `select` names (it must return event ids), up to the step's batch.
fn delete_events(
    c: &Connection,
    select: &str,
    args: impl rusqlite::Params,
    removed: &mut Removed,
) -> StoreResult<u64> {
    let sql =
        format!("DELETE FROM events WHERE id IN ({select}) RETURNING project_id, issue_id, pinned");
    let mut st = c.prepare_cached(&sql)?;
    let mut rows = st.query(args)?;
    let mut n = 0;
    while let Some(r) = rows.next()? {
        let (project_id, issue_id, pinned): (ProjectId, IssueId, i64) =
            (r.get(0)?, r.get(1)?, r.get(2)?);
        *removed.per_project.entry(project_id).or_default() += 1;
        if pinned == pin::NONE {
            *removed.unpinned_per_issue.entry(issue_id).or_default() += 1;
        }
        n += 1;
    }
    Ok(n)
}

fn database_bytes(c: &Connection) -> StoreResult<(u64, u64)> {
    let page_size: i64 = c.pragma_query_value(None, "page_size", |r| r.get(0))?;
    let pages: i64 = c.pragma_query_value(None, "page_count", |r| r.get(0))?;
    let free: i64 = c.pragma_query_value(None, "freelist_count", |r| r.get(0))?;
    Ok((
        ((pages - free) * page_size) as u64,
        (free * page_size) as u64,
    ))
}

/// One eviction step: at most `policy.batch` events, in one transaction.
pub fn step(c: &mut Connection, policy: &RetentionPolicy, now_ms: i64) -> StoreResult<Eviction> {
    let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut removed = Removed::default();
    let mut out = Eviction::default();
    let mut budget = policy.batch as i64;
    let projects: Vec<(ProjectId, Option<u64>, Option<u64>, i64)> = {
        let mut st = tx.prepare_cached(
            "SELECT id, max_age_days, max_stored_events, stored_events FROM projects ORDER BY id",
        )?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
        rows.collect::<Result<_, _>>()?
    };
    let oldest_of = "SELECT id FROM events WHERE project_id = ?1 ORDER BY id LIMIT ?2";
    for (project_id, max_age, max_events, stored) in projects {
        if budget <= 0 {
            break;
        }
        let max_age = max_age.unwrap_or(policy.max_age_days);
        if max_age > 0 {
            let cutoff = now_ms.saturating_sub((max_age as i64).saturating_mul(DAY_MS));
            // Rows are inserted in arrival order, so the oldest ids are the oldest receipts:
            // looking at the first row avoids scanning a project that has nothing to expire.
            let oldest: Option<i64> = tx
                .query_row(
                    "SELECT received_ms FROM events WHERE project_id = ?1 ORDER BY id LIMIT 1",
                    [project_id],
                    |r| r.get(0),
                )
                .optional()?;
            if oldest.is_some_and(|t| t < cutoff) {
                let n = delete_events(
                    &tx,
                    "SELECT id FROM events WHERE project_id = ?1 AND received_ms < ?3 AND id IN
                        (SELECT id FROM events WHERE project_id = ?1 ORDER BY id LIMIT ?2)",
                    params![project_id, budget, cutoff],
                    &mut removed,
                )?;
                out.by_age += n;
                budget -= n as i64;
            }
        }
        let max_events = max_events.unwrap_or(policy.max_events_per_project) as i64;
        let stored = stored - removed.per_project.get(&project_id).copied().unwrap_or(0);
        if max_events > 0 && stored > max_events && budget > 0 {
            let n = delete_events(
                &tx,
                oldest_of,
                params![project_id, (stored - max_events).min(budget)],
                &mut removed,
            )?;
            out.by_count += n;
            budget -= n as i64;
        }
    }
    if policy.max_disk_bytes > 0 && budget > 0 {
        let (used, _) = database_bytes(&tx)?;
        if used > policy.max_disk_bytes {
            let n = delete_events(
                &tx,
                "SELECT id FROM events ORDER BY id LIMIT ?1",
                params![budget],
                &mut removed,
            )?;
            out.by_disk += n;
            budget -= n as i64;
            if n == 0 {
                // Nothing but kept items left to give: the oldest go.
                out.kept += tx.execute(
                    "DELETE FROM kept_items WHERE id IN (SELECT id FROM kept_items ORDER BY id LIMIT ?1)",
                    [budget],
                )? as u64;
            }
        }
    }
    if policy.max_age_days > 0 {
        let cutoff = now_ms.saturating_sub((policy.max_age_days as i64).saturating_mul(DAY_MS));
        let oldest: Option<i64> = tx
            .query_row(
                "SELECT received_ms FROM kept_items ORDER BY id LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()?;
        if oldest.is_some_and(|t| t < cutoff) {
            out.kept += tx.execute(
                "DELETE FROM kept_items WHERE received_ms < ?1 AND id IN
                    (SELECT id FROM kept_items ORDER BY id LIMIT ?2)",
                params![cutoff, policy.batch],
            )? as u64;
        }
        // Domain events are read within seconds of being recorded; old ones only take space.
        out.domain_events += tx.execute(
            "DELETE FROM domain_events WHERE created_ms < ?1 AND id IN
                (SELECT id FROM domain_events ORDER BY id LIMIT ?2)",
            params![cutoff, policy.batch],
        )? as u64;
    }
    // Whatever the events' age limit: history that only grows is bounded too. Domain events and
    // the notifications sent (or given up) keep 90 days; chunks that never became a bundle
    // (an upload cut short) a day.
    let history_cutoff = now_ms - HISTORY_DAYS * DAY_MS;
    out.domain_events += tx.execute(
        "DELETE FROM domain_events WHERE id IN
            (SELECT id FROM domain_events WHERE created_ms < ?1 ORDER BY id LIMIT ?2)",
        params![history_cutoff, policy.batch],
    )? as u64;
    out.alert_history += tx.execute(
        "DELETE FROM alert_outbox WHERE id IN
            (SELECT id FROM alert_outbox WHERE state != 'pending' AND created_ms < ?1
             ORDER BY id LIMIT ?2)",
        params![history_cutoff, policy.batch],
    )? as u64;
    // Source maps no project uses any more (their projects were deleted).
    let orphans: Vec<i64> = tx
        .prepare_cached(
            "SELECT id FROM artifact_bundles b WHERE NOT EXISTS
                (SELECT 1 FROM artifact_bundle_projects p WHERE p.bundle_id = b.id) LIMIT ?1",
        )?
        .query_map([policy.batch], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for id in &orphans {
        tx.execute("DELETE FROM artifact_files WHERE bundle_id = ?1", [id])?;
        tx.execute("DELETE FROM artifact_bundles WHERE id = ?1", [id])?;
    }
    out.upload_chunks += orphans.len() as u64;
    out.upload_chunks += tx.execute(
        "DELETE FROM upload_chunks WHERE (org_id, checksum) IN
            (SELECT org_id, checksum FROM upload_chunks WHERE created_ms < ?1 LIMIT ?2)",
        params![now_ms - DAY_MS, policy.batch],
    )? as u64;
    // Per-minute counts only serve frequency rules, whose window is at most a day.
    tx.execute(
        "DELETE FROM issue_minutes WHERE (minute_ms, issue_id) IN
            (SELECT minute_ms, issue_id FROM issue_minutes WHERE minute_ms < ?1 LIMIT ?2)",
        params![
            now_ms - (crate::domain::alerts::MAX_WINDOW_MINUTES + 1) * 60_000,
            policy.batch
        ],
    )?;
    {
        let mut project = tx.prepare_cached(
            "UPDATE projects SET stored_events = stored_events - ?2 WHERE id = ?1",
        )?;
        for (id, n) in &removed.per_project {
            project.execute(params![id, n])?;
        }
        let mut issue = tx.prepare_cached(
            "UPDATE issues SET unpinned_stored = max(0, unpinned_stored - ?2) WHERE id = ?1",
        )?;
        for (id, n) in &removed.unpinned_per_issue {
            issue.execute(params![id, n])?;
        }
        let hour = now_ms.div_euclid(HOUR_MS) * HOUR_MS;
        let usage: Vec<(ProjectId, i64, UsageCounts)> = removed
            .per_project
            .iter()
            .map(|(p, n)| {
                (
                    *p,
                    hour,
                    UsageCounts {
                        evicted: *n as u64,
                        ..UsageCounts::default()
                    },
                )
            })
            .collect();
        super::usage::add(&tx, &usage)?;
    }
    tx.commit()?;
    out.more =
        removed.total() + out.kept + out.domain_events + out.alert_history + out.upload_chunks
            >= policy.batch;
    Ok(out)
}

/// Returns up to [`VACUUM_PAGES`] free pages to the file system; the number returned.
pub fn vacuum_step(c: &Connection) -> StoreResult<u64> {
    let free: i64 = c.pragma_query_value(None, "freelist_count", |r| r.get(0))?;
    if free == 0 {
        return Ok(0);
    }
    super::incremental_vacuum(c, VACUUM_PAGES)?;
    let left: i64 = c.pragma_query_value(None, "freelist_count", |r| r.get(0))?;
    // Without incremental auto-vacuum nothing moves; report 0 so callers do not spin.
    Ok(free.saturating_sub(left) as u64)
}

/// Used and free bytes of the database file.
pub fn bytes(c: &Connection) -> StoreResult<(u64, u64)> {
    database_bytes(c)
}
