//! Writing a digested batch: issue upserts, events, hourly counts, tag counts and releases in
//! one transaction with the new inbox watermark, so a batch is applied exactly once even when a
//! crash makes digest read it again. Counters are `+= n` upserts, aggregated per batch first.

use std::collections::HashMap;

use rusqlite::{params, Connection, OptionalExtension};

use crate::store::*;

const WATERMARK_KEY: &str = "digest_watermark";
const HOUR_MS: i64 = 3_600_000;

pub fn watermark(c: &Connection) -> StoreResult<i64> {
    let v: Option<String> = c
        .query_row(
            "SELECT value FROM meta WHERE key = ?1",
            [WATERMARK_KEY],
            |r| r.get(0),
        )
        .optional()?;
    Ok(v.and_then(|v| v.parse().ok()).unwrap_or(0))
}

#[derive(Default)]
struct TagDelta {
    count: i64,
    first_ms: i64,
    last_ms: i64,
}

pub fn apply(c: &mut Connection, batch: &DigestBatch) -> StoreResult<BatchOutcome> {
    let tx = c.transaction()?;
    let mut outcome = BatchOutcome::default();
    let mut hourly: HashMap<(i64, i64), i64> = HashMap::new();
    let mut tags: HashMap<(i64, &str, &str), TagDelta> = HashMap::new();
    let mut issue_by_hash: HashMap<(i64, &str), i64> = HashMap::new();
    {
        let mut exists =
            tx.prepare_cached("SELECT 1 FROM events WHERE project_id = ?1 AND event_id = ?2")?;
        let mut find_hash = tx.prepare_cached(
            "SELECT issue_id FROM issue_hashes WHERE project_id = ?1 AND hash = ?2",
        )?;
        let mut next_short = tx.prepare_cached(
            "UPDATE projects SET next_short_id = next_short_id + 1 WHERE id = ?1 RETURNING next_short_id - 1",
        )?;
        let mut insert_issue = tx.prepare_cached(
            "INSERT INTO issues (project_id, short_id, title, culprit, kind, metadata, level, first_seen_ms,
                last_seen_ms, times_seen, first_release, last_release, platform, logger)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, 1, ?9, ?9, ?10, ?11)",
        )?;
        let mut insert_hash = tx.prepare_cached(
            "INSERT INTO issue_hashes (project_id, hash, issue_id, algorithm, grouping) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        let mut update_issue = tx.prepare_cached(
            "UPDATE issues SET
                times_seen = times_seen + 1,
                first_seen_ms = min(first_seen_ms, ?2),
                level = CASE WHEN ?2 >= last_seen_ms THEN ?3 ELSE level END,
                last_release = CASE WHEN ?2 >= last_seen_ms AND ?4 IS NOT NULL THEN ?4 ELSE last_release END,
                first_release = coalesce(first_release, ?4),
                last_seen_ms = max(last_seen_ms, ?2),
                is_regression = CASE WHEN status = 'resolved' THEN 1 ELSE is_regression END,
                status = CASE WHEN status = 'resolved' THEN 'unresolved' ELSE status END
             WHERE id = ?1",
        )?;
        let mut status_of = tx.prepare_cached("SELECT status FROM issues WHERE id = ?1")?;
        let mut insert_event = tx.prepare_cached(
            "INSERT INTO events (project_id, event_id, issue_id, timestamp_ms, received_ms, grouping_hash,
                grouping_variant, payload) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?;
        let mut upsert_release = tx.prepare_cached(
            "INSERT INTO releases (project_id, version, first_seen_ms, last_seen_ms) VALUES (?1, ?2, ?3, ?3)
             ON CONFLICT (project_id, version) DO UPDATE SET
                first_seen_ms = min(first_seen_ms, excluded.first_seen_ms),
                last_seen_ms = max(last_seen_ms, excluded.last_seen_ms)",
        )?;
        let mut count_new_in_release = tx.prepare_cached(
            "UPDATE releases SET new_issues = new_issues + 1 WHERE project_id = ?1 AND version = ?2",
        )?;

        for ev in &batch.events {
            let event_id = ev.event_id.as_bytes().as_slice();
            if exists.exists(params![ev.project_id, event_id])? {
                outcome.duplicates += 1;
                continue;
            }
            if let Some(release) = &ev.release {
                upsert_release.execute(params![ev.project_id, release, ev.timestamp_ms])?;
            }
            let known = match issue_by_hash.get(&(ev.project_id, ev.hash.as_str())) {
                Some(id) => Some(*id),
                None => find_hash
                    .query_row(params![ev.project_id, ev.hash], |r| r.get::<_, i64>(0))
                    .optional()?,
            };
            let issue_id = match known {
                Some(issue_id) => {
                    let was: String = status_of.query_row([issue_id], |r| r.get(0))?;
                    update_issue.execute(params![
                        issue_id,
                        ev.timestamp_ms,
                        ev.level,
                        ev.release
                    ])?;
                    if was == "resolved" {
                        outcome.regressions.push(issue_id);
                    }
                    issue_id
                }
                None => {
                    let short_id: i64 = next_short
                        .query_row([ev.project_id], |r| r.get(0))
                        .optional()?
                        .ok_or(StoreError::NotFound("project"))?;
                    insert_issue.execute(params![
                        ev.project_id,
                        short_id,
                        ev.title,
                        ev.culprit,
                        ev.kind,
                        ev.metadata,
                        ev.level,
                        ev.timestamp_ms,
                        ev.release,
                        ev.platform,
                        ev.logger,
                    ])?;
                    let issue_id = tx.last_insert_rowid();
                    insert_hash.execute(params![
                        ev.project_id,
                        ev.hash,
                        issue_id,
                        phoebe_grouping::ALGORITHM,
                        ev.grouping
                    ])?;
                    if let Some(release) = &ev.release {
                        count_new_in_release.execute(params![ev.project_id, release])?;
                    }
                    outcome.new_issues.push(issue_id);
                    issue_id
                }
            };
            issue_by_hash.insert((ev.project_id, ev.hash.as_str()), issue_id);
            insert_event.execute(params![
                ev.project_id,
                event_id,
                issue_id,
                ev.timestamp_ms,
                ev.received_ms,
                ev.hash,
                ev.variant,
                ev.payload_zstd,
            ])?;
            outcome.stored += 1;
            *hourly
                .entry((issue_id, ev.timestamp_ms.div_euclid(HOUR_MS) * HOUR_MS))
                .or_default() += 1;
            for (key, value) in &ev.tags {
                let d = tags
                    .entry((issue_id, key.as_str(), value.as_str()))
                    .or_insert(TagDelta {
                        count: 0,
                        first_ms: ev.timestamp_ms,
                        last_ms: ev.timestamp_ms,
                    });
                d.count += 1;
                d.first_ms = d.first_ms.min(ev.timestamp_ms);
                d.last_ms = d.last_ms.max(ev.timestamp_ms);
            }
        }

        let mut upsert_hourly = tx.prepare_cached(
            "INSERT INTO issue_hourly (issue_id, hour_ms, count) VALUES (?1, ?2, ?3)
             ON CONFLICT (issue_id, hour_ms) DO UPDATE SET count = count + excluded.count",
        )?;
        for ((issue_id, hour), n) in &hourly {
            upsert_hourly.execute(params![issue_id, hour, n])?;
        }
        let mut upsert_tag = tx.prepare_cached(
            "INSERT INTO issue_tags (issue_id, key, value, count, first_seen_ms, last_seen_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (issue_id, key, value) DO UPDATE SET
                count = count + excluded.count,
                first_seen_ms = min(first_seen_ms, excluded.first_seen_ms),
                last_seen_ms = max(last_seen_ms, excluded.last_seen_ms)
             RETURNING count",
        )?;
        let mut add_user =
            tx.prepare_cached("UPDATE issues SET user_count = user_count + 1 WHERE id = ?1")?;
        for ((issue_id, key, value), d) in &tags {
            let total: i64 = upsert_tag.query_row(
                params![issue_id, key, value, d.count, d.first_ms, d.last_ms],
                |r| r.get(0),
            )?;
            // A row whose total equals this batch's delta was just created: a user not seen before.
            if *key == "user" && total == d.count {
                add_user.execute([issue_id])?;
            }
        }
        let mut insert_kept = tx.prepare_cached(
            "INSERT INTO kept_items (project_id, event_id, item_type, filename, received_ms, payload)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        for k in &batch.kept {
            insert_kept.execute(params![
                k.project_id,
                k.event_id.map(|u| u.as_bytes().to_vec()),
                k.item_type,
                k.filename,
                k.received_ms,
                k.payload
            ])?;
        }
    }
    tx.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![WATERMARK_KEY, batch.last_inbox_id.to_string()],
    )?;
    tx.commit()?;
    Ok(outcome)
}
