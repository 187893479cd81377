//! Writing a digested batch: issue upserts, events, hourly counts, tag counts and releases in
//! one transaction with the new inbox watermark, so a batch is applied exactly once even when a
//! crash makes digest read it again. Counters are `+= n` upserts, aggregated per batch first:
//! a batch of 500 events of 20 issues costs 20 issue updates, not 500.

// foldhash: the batch's counter maps were a tenth of the store thread's time with std's SipHash.
use foldhash::{HashMap, HashMapExt};

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

use crate::store::*;

const WATERMARK_KEY: &str = "digest_watermark";

const TAG_UPSERT_HEAD: &str =
    "INSERT INTO issue_tags (issue_id, key, value, count, first_seen_ms, last_seen_ms) VALUES";
const TAG_UPSERT_TAIL: &str = "ON CONFLICT (issue_id, key, value) DO UPDATE SET
    count = count + excluded.count,
    first_seen_ms = min(first_seen_ms, excluded.first_seen_ms),
    last_seen_ms = max(last_seen_ms, excluded.last_seen_ms)";
/// Rows per multi-row tag upsert (6 parameters each).
const TAG_CHUNK: usize = 64;

/// `INSERT ... VALUES (?, ...), ... ON CONFLICT ...` for `n` tag rows.
fn multi_row_tag_upsert(n: usize) -> String {
    let rows = vec!["(?, ?, ?, ?, ?, ?)"; n].join(", ");
    format!("{TAG_UPSERT_HEAD} {rows} {TAG_UPSERT_TAIL}")
}
const HOUR_MS: i64 = 3_600_000;

/// Ordinary events one batch evicts from one issue at most.
const MAX_EVICT_PER_ISSUE: i64 = 1_000;

/// What decides whether new events re-open an issue.
struct TriageState {
    status: String,
    times_seen: i64,
    ignore_until_ms: Option<i64>,
    ignore_until_count: Option<i64>,
    resolved_in_release: Option<String>,
}

impl TriageState {
    /// `Some("regression")` when the batch's events re-open a resolved issue, `Some("unignored")`
    /// when they end an ignore, `None` when the status stays.
    fn reopened_by(&self, d: &IssueDelta, now_ms: i64) -> Option<&'static str> {
        match self.status.as_str() {
            // Resolved "in the next release": only an event of another release is a regression.
            "resolved" => match (&self.resolved_in_release, d.last_release) {
                (None, _) => Some("regression"),
                (Some(fixed_after), Some(seen)) if fixed_after.as_str() != seen => {
                    Some("regression")
                }
                _ => None,
            },
            "ignored" => {
                // By the clock, not the events' own timestamps, which may be old or skewed.
                let time_up = self.ignore_until_ms.is_some_and(|t| now_ms >= t);
                let count_up = self
                    .ignore_until_count
                    .is_some_and(|n| self.times_seen + d.seen.count >= n);
                (time_up || count_up).then_some("unignored")
            }
            _ => None,
        }
    }
}

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

/// What one batch adds to one counter row.
struct Delta {
    count: i64,
    first_ms: i64,
    last_ms: i64,
}

impl Delta {
    fn new(ts: i64) -> Delta {
        Delta {
            count: 0,
            first_ms: ts,
            last_ms: ts,
        }
    }

    fn add(&mut self, ts: i64) {
        self.count += 1;
        self.first_ms = self.first_ms.min(ts);
        self.last_ms = self.last_ms.max(ts);
    }
}

/// What one batch adds to one issue.
struct IssueDelta<'a> {
    seen: Delta,
    /// Ordinary (unpinned) events stored.
    unpinned: i64,
    /// Level and release of the newest event in the batch.
    last_level: &'a str,
    last_release: Option<&'a str>,
    /// Release of the oldest event in the batch that has one.
    first_release: Option<(i64, &'a str)>,
}

pub fn apply(c: &mut Connection, batch: &DigestBatch) -> StoreResult<BatchOutcome> {
    // IMMEDIATE takes the write lock up front: a CLI write between our first read and first
    // write would otherwise fail the whole batch with SQLITE_BUSY_SNAPSHOT.
    let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut outcome = BatchOutcome::default();
    let mut issues: HashMap<i64, IssueDelta> = HashMap::new();
    let mut issue_order: Vec<i64> = Vec::new();
    let mut hourly: HashMap<(i64, i64), i64> = HashMap::new();
    let mut tags: HashMap<(i64, &str, &str), Delta> = HashMap::new();
    let mut releases: HashMap<(i64, &str), Delta> = HashMap::new();
    let mut new_in_release: HashMap<(i64, &str), i64> = HashMap::new();
    let mut issue_by_hash: HashMap<(i64, &str), i64> = HashMap::new();
    // Events an issue had before each one of this batch, to number them for the event bounds.
    let mut seen_before: HashMap<i64, u64> = HashMap::new();
    let mut usage: HashMap<(i64, i64), UsageCounts> = HashMap::new();
    let mut stored_per_project: HashMap<i64, i64> = HashMap::new();
    let now_hour = super::now_ms().div_euclid(HOUR_MS) * HOUR_MS;
    if let Some((dict_id, dict)) = &batch.new_dict {
        tx.execute(
            "INSERT INTO zstd_dicts (dict_id, created_ms, dict) VALUES (?1, ?2, ?3) ON CONFLICT (dict_id) DO NOTHING",
            params![dict_id, super::now_ms(), dict],
        )?;
    }
    {
        let mut find_hash = tx.prepare_cached(
            "SELECT h.issue_id, i.times_seen FROM issue_hashes h JOIN issues i ON i.id = h.issue_id
             WHERE h.project_id = ?1 AND h.hash = ?2",
        )?;
        let mut next_short = tx.prepare_cached(
            "UPDATE projects SET next_short_id = next_short_id + 1 WHERE id = ?1 RETURNING next_short_id - 1",
        )?;
        let mut insert_issue = tx.prepare_cached(
            "INSERT INTO issues (project_id, short_id, title, culprit, kind, metadata, level, first_seen_ms,
                last_seen_ms, times_seen, first_release, last_release, platform, logger)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, 0, ?9, ?9, ?10, ?11)",
        )?;
        let mut insert_hash = tx.prepare_cached(
            "INSERT INTO issue_hashes (project_id, hash, issue_id, algorithm, grouping) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        let mut insert_event = tx.prepare_cached(
            "INSERT INTO events (project_id, event_id, issue_id, timestamp_ms, received_ms, grouping_hash,
                grouping_variant, payload, pinned) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT (project_id, event_id) DO NOTHING",
        )?;

        for ev in &batch.events {
            let ts = ev.timestamp_ms;
            let known = match issue_by_hash.get(&(ev.project_id, ev.hash.as_str())) {
                Some(id) => Some(*id),
                None => match find_hash
                    .query_row(params![ev.project_id, ev.hash], |r| {
                        Ok((r.get::<_, i64>(0)?, r.get::<_, u64>(1)?))
                    })
                    .optional()?
                {
                    Some((id, seen)) => {
                        seen_before.entry(id).or_insert(seen);
                        Some(id)
                    }
                    None => None,
                },
            };
            let issue_id = match known {
                Some(id) => id,
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
                        ts,
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
                        ev.grouping.as_deref().unwrap_or("{}")
                    ])?;
                    if let Some(release) = &ev.release {
                        *new_in_release
                            .entry((ev.project_id, release.as_str()))
                            .or_default() += 1;
                    }
                    outcome.new_issues.push(issue_id);
                    issue_id
                }
            };
            issue_by_hash.insert((ev.project_id, ev.hash.as_str()), issue_id);
            let seen = seen_before.entry(issue_id).or_insert(0);
            let pinned = batch.bounds.pin(*seen + 1);
            // A redelivered event (same id) is stored and counted once.
            let inserted = insert_event.execute(params![
                ev.project_id,
                ev.event_id.as_bytes().as_slice(),
                issue_id,
                ts,
                ev.received_ms,
                ev.hash,
                ev.variant,
                ev.payload_zstd,
                pinned,
            ])?;
            if inserted == 0 {
                outcome.duplicates += 1;
                continue;
            }
            *seen += 1;
            outcome.stored += 1;
            usage
                .entry((ev.project_id, ev.received_ms.div_euclid(HOUR_MS) * HOUR_MS))
                .or_default()
                .stored += 1;
            *stored_per_project.entry(ev.project_id).or_default() += 1;
            let d = issues.entry(issue_id).or_insert_with(|| {
                issue_order.push(issue_id);
                IssueDelta {
                    seen: Delta::new(ts),
                    unpinned: 0,
                    last_level: ev.level,
                    last_release: None,
                    first_release: None,
                }
            });
            if ts >= d.seen.last_ms {
                d.last_level = ev.level;
                d.last_release = ev.release.as_deref().or(d.last_release);
            }
            if let Some(r) = ev.release.as_deref() {
                if d.first_release.is_none_or(|(t, _)| ts < t) {
                    d.first_release = Some((ts, r));
                }
                releases
                    .entry((ev.project_id, r))
                    .or_insert_with(|| Delta::new(ts))
                    .add(ts);
            }
            d.seen.add(ts);
            if pinned == pin::NONE {
                d.unpinned += 1;
            }
            *hourly
                .entry((issue_id, ts.div_euclid(HOUR_MS) * HOUR_MS))
                .or_default() += 1;
            for (key, value) in &ev.tags {
                tags.entry((issue_id, key.as_str(), value.as_str()))
                    .or_insert_with(|| Delta::new(ts))
                    .add(ts);
            }
        }

        let mut status_of = tx.prepare_cached(
            "SELECT status, times_seen, ignore_until_ms, ignore_until_count, resolved_in_release
             FROM issues WHERE id = ?1",
        )?;
        let mut update_issue = tx.prepare_cached(
            "UPDATE issues SET
                times_seen = times_seen + ?2,
                first_seen_ms = min(first_seen_ms, ?3),
                level = CASE WHEN ?4 >= last_seen_ms THEN ?5 ELSE level END,
                last_release = CASE WHEN ?4 >= last_seen_ms AND ?6 IS NOT NULL THEN ?6 ELSE last_release END,
                first_release = coalesce(first_release, ?7),
                last_seen_ms = max(last_seen_ms, ?4),
                is_regression = CASE WHEN ?9 AND status = 'resolved' THEN 1 ELSE is_regression END,
                status = CASE WHEN ?9 THEN 'unresolved' ELSE status END,
                ignore_until_ms = CASE WHEN ?9 THEN NULL ELSE ignore_until_ms END,
                ignore_until_count = CASE WHEN ?9 THEN NULL ELSE ignore_until_count END,
                resolved_in_release = CASE WHEN ?9 THEN NULL ELSE resolved_in_release END,
                unpinned_stored = unpinned_stored + ?8
             WHERE id = ?1 RETURNING unpinned_stored, project_id",
        )?;
        // The issue's oldest ordinary events beyond its `latest` bound.
        let mut evict_oldest = tx.prepare_cached(
            "DELETE FROM events WHERE id IN
                (SELECT id FROM events WHERE issue_id = ?1 AND pinned = 0 ORDER BY id LIMIT ?2)",
        )?;
        let mut set_unpinned = tx.prepare_cached(
            "UPDATE issues SET unpinned_stored = unpinned_stored - ?2 WHERE id = ?1",
        )?;
        for issue_id in &issue_order {
            let d = &issues[issue_id];
            let was: TriageState = status_of.query_row([issue_id], |r| {
                Ok(TriageState {
                    status: r.get(0)?,
                    times_seen: r.get(1)?,
                    ignore_until_ms: r.get(2)?,
                    ignore_until_count: r.get(3)?,
                    resolved_in_release: r.get(4)?,
                })
            })?;
            let reopen = was.reopened_by(d, super::now_ms());
            if let Some(kind) = reopen {
                if kind == "regression" {
                    outcome.regressions.push(*issue_id);
                }
                let data = serde_json::json!({ "release": d.last_release });
                super::triage::record(&tx, *issue_id, None, kind, &data)?;
            }
            let (unpinned, project_id): (i64, i64) = update_issue.query_row(
                params![
                    issue_id,
                    d.seen.count,
                    d.seen.first_ms,
                    d.seen.last_ms,
                    d.last_level,
                    d.last_release,
                    d.first_release.map(|(_, r)| r),
                    d.unpinned,
                    reopen.is_some(),
                ],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            let latest = batch.bounds.latest as i64;
            if latest > 0 && unpinned > latest {
                // Capped, so a lowered bound drains over several batches instead of one huge
                // delete holding the writer.
                let excess = (unpinned - latest).min(MAX_EVICT_PER_ISSUE);
                let evicted = evict_oldest.execute(params![issue_id, excess])? as i64;
                set_unpinned.execute(params![issue_id, evicted])?;
                usage.entry((project_id, now_hour)).or_default().evicted += evicted as u64;
                *stored_per_project.entry(project_id).or_default() -= evicted;
            }
        }
        let mut add_stored = tx.prepare_cached(
            "UPDATE projects SET stored_events = stored_events + ?2 WHERE id = ?1",
        )?;
        for (project_id, n) in &stored_per_project {
            add_stored.execute(params![project_id, n])?;
        }
        let rows: Vec<(i64, i64, UsageCounts)> =
            usage.into_iter().map(|((p, h), u)| (p, h, u)).collect();
        super::usage::add(&tx, &rows)?;
        super::usage::add_discards(&tx, &batch.discards)?;

        let mut upsert_release = tx.prepare_cached(
            "INSERT INTO releases (project_id, version, first_seen_ms, last_seen_ms, new_issues) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (project_id, version) DO UPDATE SET
                first_seen_ms = min(first_seen_ms, excluded.first_seen_ms),
                last_seen_ms = max(last_seen_ms, excluded.last_seen_ms),
                new_issues = new_issues + excluded.new_issues",
        )?;
        for ((project_id, version), d) in &releases {
            let new = new_in_release
                .get(&(*project_id, *version))
                .copied()
                .unwrap_or(0);
            upsert_release.execute(params![project_id, version, d.first_ms, d.last_ms, new])?;
        }
        let mut upsert_hourly = tx.prepare_cached(
            "INSERT INTO issue_hourly (issue_id, hour_ms, count) VALUES (?1, ?2, ?3)
             ON CONFLICT (issue_id, hour_ms) DO UPDATE SET count = count + excluded.count",
        )?;
        for ((issue_id, hour), n) in &hourly {
            upsert_hourly.execute(params![issue_id, hour, n])?;
        }
        let mut upsert_user = tx.prepare_cached(&format!(
            "{TAG_UPSERT_HEAD} (?1, ?2, ?3, ?4, ?5, ?6) {TAG_UPSERT_TAIL} RETURNING count"
        ))?;
        let mut add_user =
            tx.prepare_cached("UPDATE issues SET user_count = user_count + 1 WHERE id = ?1")?;
        let mut other_tags: Vec<(&(i64, &str, &str), &Delta)> = Vec::with_capacity(tags.len());
        for (row, d) in &tags {
            if row.1 != "user" {
                other_tags.push((row, d));
                continue;
            }
            let total: i64 = upsert_user.query_row(
                params![row.0, row.1, row.2, d.count, d.first_ms, d.last_ms],
                |r| r.get(0),
            )?;
            // A row whose total equals this batch's delta was just created: a user not seen before.
            if total == d.count {
                add_user.execute([row.0])?;
            }
        }
        // Other tag counts go in multi-row statements: per-statement overhead was a good part of
        // the store thread's time with ~12 tags per event. Chunk sizes are powers of two so a
        // handful of prepared statements covers every batch.
        let mut rest = other_tags.as_slice();
        while !rest.is_empty() {
            let n = TAG_CHUNK.min(rest.len()).next_power_of_two().min(TAG_CHUNK);
            let n = if n > rest.len() { n / 2 } else { n };
            let (chunk, tail) = rest.split_at(n);
            let mut st = tx.prepare_cached(&multi_row_tag_upsert(n))?;
            let mut values: Vec<rusqlite::types::Value> = Vec::with_capacity(n * 6);
            for ((issue_id, key, value), d) in chunk {
                values.extend([
                    rusqlite::types::Value::Integer(*issue_id),
                    rusqlite::types::Value::Text(key.to_string()),
                    rusqlite::types::Value::Text(value.to_string()),
                    rusqlite::types::Value::Integer(d.count),
                    rusqlite::types::Value::Integer(d.first_ms),
                    rusqlite::types::Value::Integer(d.last_ms),
                ]);
            }
            st.execute(rusqlite::params_from_iter(values))?;
            rest = tail;
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
