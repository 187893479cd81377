//! Persisting a digested batch: read what the rules need ([`rules::Known`]), let
//! [`rules::plan`] decide, then write the plan — issues, events, hourly and tag counts,
//! releases, usage, activity, domain events — in one transaction with the new inbox watermark,
//! so a batch is applied exactly once even when a crash makes digest read it again. Counters are
//! `+= n` upserts aggregated per batch: a batch of 500 events of 20 issues costs 20 issue
//! updates, not 500. Nothing here decides anything about issues.

use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};

use crate::domain::alerts::Facts;
use crate::domain::rules::{self, IssueRef, IssueState, Known, Plan, Reopen};
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

pub fn apply(c: &mut Connection, batch: &DigestBatch) -> StoreResult<BatchOutcome> {
    // IMMEDIATE takes the write lock up front: a CLI write between our first read and first
    // write would otherwise fail the whole batch with SQLITE_BUSY_SNAPSHOT, and the rules must
    // decide on the state the batch then changes.
    let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
    // A commit that reported failure may still have been written: a retried batch whose entries
    // are already acknowledged changes nothing (kept items and client reports included).
    if batch
        .inbox_ids
        .last()
        .is_some_and(|last| *last <= watermark(&tx).unwrap_or(0))
    {
        return Ok(BatchOutcome {
            duplicates: batch.events.len(),
            ..BatchOutcome::default()
        });
    }
    let now = super::now_ms();
    let known = read_known(&tx, batch)?;
    let plan = rules::plan(batch, &known, now);
    let outcome = write_plan(&tx, batch, &plan, now)?;
    // Entries are claimed in id order by one digester, so the last id acknowledges them all.
    if let Some(last) = batch.inbox_ids.last() {
        tx.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![WATERMARK_KEY, last.to_string()],
        )?;
    }
    tx.commit()?;
    Ok(outcome)
}

/// Reads the state of every issue the batch's fingerprints name, which of its event ids are
/// already stored, and which of its users those issues have already counted.
fn read_known<'a>(tx: &Transaction, batch: &'a DigestBatch) -> StoreResult<Known<'a>> {
    let mut known = Known::default();
    let mut find_hash = tx.prepare_cached(
        "SELECT i.id, i.status, i.times_seen, i.unpinned_stored, i.ignore_until_ms,
            i.ignore_until_count, i.resolved_in_release
         FROM issue_hashes h JOIN issues i ON i.id = h.issue_id
         WHERE h.project_id = ?1 AND h.hash = ?2",
    )?;
    let mut is_stored = tx.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM events WHERE project_id = ?1 AND event_id = ?2)",
    )?;
    let mut has_user = tx.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM issue_tags WHERE issue_id = ?1 AND key = 'user' AND value = ?2)",
    )?;
    let mut project_exists =
        tx.prepare_cached("SELECT EXISTS (SELECT 1 FROM projects WHERE id = ?1)")?;
    let mut checked = foldhash::HashSet::default();
    for ev in &batch.events {
        if checked.insert(ev.project_id) {
            let exists: bool = project_exists.query_row([ev.project_id], |r| r.get(0))?;
            if !exists {
                known.gone.insert(ev.project_id);
            }
        }
    }
    let mut missing = foldhash::HashSet::default();
    for ev in &batch.events {
        if known.gone.contains(&ev.project_id) {
            continue;
        }
        let key = (ev.project_id, ev.hash.as_str());
        if !known.issues.contains_key(&key) && !missing.contains(&key) {
            let state = find_hash
                .query_row(params![ev.project_id, ev.hash], |r| {
                    let status: String = r.get(1)?;
                    Ok(IssueState {
                        id: r.get(0)?,
                        // Leniently, as the read side does: one odd row must not stall digest.
                        status: IssueStatus::parse(&status).unwrap_or(IssueStatus::Unresolved),
                        times_seen: r.get(2)?,
                        unpinned_stored: r.get(3)?,
                        ignore_until_ms: r.get(4)?,
                        ignore_until_count: r.get(5)?,
                        resolved_in_release: r.get(6)?,
                    })
                })
                .optional()?;
            match state {
                Some(s) => {
                    known.issues.insert(key, s);
                }
                None => {
                    missing.insert(key);
                }
            }
        }
        let stored: bool = is_stored.query_row(
            params![ev.project_id, ev.event_id.as_bytes().as_slice()],
            |r| r.get(0),
        )?;
        if stored {
            known.stored.insert((ev.project_id, ev.event_id));
        }
        let Some(issue) = known.issues.get(&key).map(|s| s.id) else {
            continue;
        };
        for (k, user) in &ev.tags {
            if k == "user" && !known.users.contains(&(issue, user.as_str())) {
                let seen: bool = has_user.query_row(params![issue, user], |r| r.get(0))?;
                if seen {
                    known.users.insert((issue, user.as_str()));
                }
            }
        }
    }
    Ok(known)
}

/// Writes what the rules decided; returns what changed.
fn write_plan(
    tx: &Transaction,
    batch: &DigestBatch,
    plan: &Plan,
    now: i64,
) -> StoreResult<BatchOutcome> {
    let mut outcome = BatchOutcome {
        duplicates: plan.duplicates,
        orphans: plan.orphans,
        ..BatchOutcome::default()
    };
    if let Some((dict_id, dict)) = &batch.new_dict {
        tx.execute(
            "INSERT INTO zstd_dicts (dict_id, created_ms, dict) VALUES (?1, ?2, ?3) ON CONFLICT (dict_id) DO NOTHING",
            params![dict_id, now, dict],
        )?;
    }
    let new_ids = create_issues(tx, batch, plan)?;
    outcome.new_issues.clone_from(&new_ids);
    let id_of = |r: IssueRef| match r {
        IssueRef::Known(id) => id,
        IssueRef::New(n) => new_ids[n],
    };

    let mut stored_per_project: foldhash::HashMap<ProjectId, i64> = Default::default();
    let mut insert_event = tx.prepare_cached(
        "INSERT INTO events (project_id, event_id, issue_id, timestamp_ms, received_ms, grouping_hash,
            grouping_variant, payload, pinned) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (project_id, event_id) DO NOTHING",
    )?;
    for row in &plan.events {
        let ev = &batch.events[row.event];
        let inserted = insert_event.execute(params![
            ev.project_id,
            ev.event_id.as_bytes().as_slice(),
            id_of(row.issue),
            ev.timestamp_ms,
            ev.received_ms,
            ev.hash,
            ev.variant,
            ev.payload_zstd,
            row.pin,
        ])?;
        // The plan was made in this transaction, so it cannot be stale; if it ever is, every
        // count would be off: refuse the batch rather than write wrong numbers.
        if inserted == 0 {
            return Err(StoreError::Database(format!(
                "event {} was stored by someone else while its batch was planned",
                ev.event_id.simple()
            )));
        }
        *stored_per_project.entry(ev.project_id).or_default() += 1;
    }
    outcome.stored = plan.events.len();

    let mut usage = plan.usage.clone();
    let now_hour = now.div_euclid(HOUR_MS) * HOUR_MS;
    update_issues(tx, plan, &id_of, &mut outcome, |project_id, evicted| {
        *stored_per_project.entry(project_id).or_default() -= evicted;
        usage.push((
            project_id,
            now_hour,
            UsageCounts {
                evicted: evicted as u64,
                ..UsageCounts::default()
            },
        ));
    })?;
    let mut add_stored =
        tx.prepare_cached("UPDATE projects SET stored_events = stored_events + ?2 WHERE id = ?1")?;
    for (project_id, n) in &stored_per_project {
        add_stored.execute(params![project_id, n])?;
    }
    super::usage::add(tx, &usage)?;
    super::usage::add_discards(tx, &batch.discards)?;

    let mut upsert_release = tx.prepare_cached(
        "INSERT INTO releases (project_id, version, first_seen_ms, last_seen_ms, new_issues, events)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (project_id, version) DO UPDATE SET
            first_seen_ms = min(first_seen_ms, excluded.first_seen_ms),
            last_seen_ms = max(last_seen_ms, excluded.last_seen_ms),
            new_issues = new_issues + excluded.new_issues,
            events = events + excluded.events",
    )?;
    for r in &plan.releases {
        upsert_release.execute(params![
            r.project_id,
            r.version,
            r.seen.first_ms,
            r.seen.last_ms,
            r.new_issues,
            r.seen.count
        ])?;
    }
    let mut upsert_hourly = tx.prepare_cached(
        "INSERT INTO issue_hourly (issue_id, hour_ms, count) VALUES (?1, ?2, ?3)
         ON CONFLICT (issue_id, hour_ms) DO UPDATE SET count = count + excluded.count",
    )?;
    for (issue, hour, n) in &plan.hourly {
        upsert_hourly.execute(params![id_of(*issue), hour, n])?;
    }
    let mut upsert_minutely = tx.prepare_cached(
        "INSERT INTO issue_minutes (minute_ms, issue_id, count) VALUES (?1, ?2, ?3)
         ON CONFLICT (minute_ms, issue_id) DO UPDATE SET count = count + excluded.count",
    )?;
    for (issue, minute, n) in &plan.minutely {
        upsert_minutely.execute(params![minute, id_of(*issue), n])?;
    }
    upsert_tags(tx, plan, &id_of)?;
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
    let mut insert_domain_event = tx.prepare_cached(
        "INSERT INTO domain_events (project_id, issue_id, kind, data, facts, created_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for e in &plan.domain_events {
        let ev = &batch.events[e.event];
        let facts = Facts {
            level: ev.level.to_string(),
            tags: ev.tags.clone(),
        };
        insert_domain_event.execute(params![
            e.project_id,
            id_of(e.issue),
            e.what.kind(),
            e.what.data().to_string(),
            facts.to_json().to_string(),
            now
        ])?;
    }
    outcome.domain_events = plan.domain_events.len();
    Ok(outcome)
}

/// Inserts the plan's new issues with their fingerprints; returns their ids in plan order.
fn create_issues(tx: &Transaction, batch: &DigestBatch, plan: &Plan) -> StoreResult<Vec<IssueId>> {
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
    let mut ids = Vec::with_capacity(plan.new_issues.len());
    for new in &plan.new_issues {
        let ev = &batch.events[new.event];
        // Digest explains a fingerprint once per batch, on its first event, which may have been
        // a duplicate that opened nothing.
        let grouping = ev.grouping.as_deref().or_else(|| {
            batch
                .events
                .iter()
                .filter(|e| e.project_id == ev.project_id && e.hash == ev.hash)
                .find_map(|e| e.grouping.as_deref())
        });
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
        let issue_id = IssueId(tx.last_insert_rowid());
        insert_hash.execute(params![
            ev.project_id,
            ev.hash,
            issue_id,
            phoebe_grouping::ALGORITHM,
            grouping.unwrap_or("{}")
        ])?;
        ids.push(issue_id);
    }
    Ok(ids)
}

/// Adds each issue's delta, re-opens what the rules re-open (with its activity entry), and
/// deletes the oldest ordinary events the rules evict; `evicted(project, n)` hears of each.
fn update_issues(
    tx: &Transaction,
    plan: &Plan,
    id_of: &impl Fn(IssueRef) -> IssueId,
    outcome: &mut BatchOutcome,
    mut evicted: impl FnMut(ProjectId, i64),
) -> StoreResult<()> {
    let mut update_issue = tx.prepare_cached(
        "UPDATE issues SET
            times_seen = times_seen + ?2,
            first_seen_ms = min(first_seen_ms, ?3),
            level = CASE WHEN ?4 >= last_seen_ms THEN ?5 ELSE level END,
            last_release = CASE WHEN ?4 >= last_seen_ms AND ?6 IS NOT NULL THEN ?6 ELSE last_release END,
            first_release = coalesce(first_release, ?7),
            last_seen_ms = max(last_seen_ms, ?4),
            is_regression = CASE WHEN ?9 THEN 1 ELSE is_regression END,
            status = CASE WHEN ?10 THEN 'unresolved' ELSE status END,
            ignore_until_ms = CASE WHEN ?10 THEN NULL ELSE ignore_until_ms END,
            ignore_until_count = CASE WHEN ?10 THEN NULL ELSE ignore_until_count END,
            resolved_in_release = CASE WHEN ?10 THEN NULL ELSE resolved_in_release END,
            unpinned_stored = unpinned_stored + ?8,
            user_count = user_count + ?11
         WHERE id = ?1",
    )?;
    // The issue's oldest ordinary events beyond its `latest` bound.
    let mut evict_oldest = tx.prepare_cached(
        "DELETE FROM events WHERE id IN
            (SELECT id FROM events WHERE issue_id = ?1 AND pinned = 0 ORDER BY id LIMIT ?2)",
    )?;
    let mut sub_unpinned = tx
        .prepare_cached("UPDATE issues SET unpinned_stored = unpinned_stored - ?2 WHERE id = ?1")?;
    for d in &plan.issues {
        let issue_id = id_of(d.issue);
        if let Some(reopen) = d.reopen {
            let kind = match reopen {
                Reopen::Regression => {
                    outcome.regressions.push(issue_id);
                    ActivityKind::Regression
                }
                Reopen::Unignored => ActivityKind::Unignored,
            };
            let data = serde_json::json!({ "release": d.last_release });
            super::triage::record(tx, issue_id, None, kind, &data)?;
        }
        update_issue.execute(params![
            issue_id,
            d.seen.count,
            d.seen.first_ms,
            d.seen.last_ms,
            d.last_level,
            d.last_release,
            d.first_release.map(|(_, r)| r),
            d.unpinned,
            d.reopen == Some(Reopen::Regression),
            d.reopen.is_some(),
            d.new_users,
        ])?;
        if d.evict > 0 {
            let n = evict_oldest.execute(params![issue_id, d.evict])? as i64;
            sub_unpinned.execute(params![issue_id, n])?;
            evicted(d.project_id, n);
        }
    }
    Ok(())
}

/// Tag counts go in multi-row statements: per-statement overhead was a good part of the store
/// thread's time with ~12 tags per event. Chunk sizes are powers of two so a handful of
/// prepared statements covers every batch.
fn upsert_tags(
    tx: &Transaction,
    plan: &Plan,
    id_of: &impl Fn(IssueRef) -> IssueId,
) -> StoreResult<()> {
    let mut rest = plan.tags.as_slice();
    let mut values: Vec<rusqlite::types::Value> = Vec::with_capacity(TAG_CHUNK * 6);
    while !rest.is_empty() {
        let n = TAG_CHUNK.min(rest.len()).next_power_of_two().min(TAG_CHUNK);
        let n = if n > rest.len() { n / 2 } else { n };
        let (chunk, tail) = rest.split_at(n);
        let mut st = tx.prepare_cached(&multi_row_tag_upsert(n))?;
        values.clear();
        for t in chunk {
            values.extend([
                rusqlite::types::Value::Integer(id_of(t.issue).0),
                rusqlite::types::Value::Text(t.key.to_string()),
                rusqlite::types::Value::Text(t.value.to_string()),
                rusqlite::types::Value::Integer(t.seen.count),
                rusqlite::types::Value::Integer(t.seen.first_ms),
                rusqlite::types::Value::Integer(t.seen.last_ms),
            ]);
        }
        st.execute(rusqlite::params_from_iter(values.drain(..)))?;
        rest = tail;
    }
    Ok(())
}

/// Domain events after `after_id`, oldest first.
pub fn domain_events(c: &Connection, after_id: i64, limit: i64) -> StoreResult<Vec<RecordedEvent>> {
    let mut st = c.prepare_cached(
        "SELECT id, project_id, issue_id, kind, data, facts, created_ms FROM domain_events
         WHERE id > ?1 ORDER BY id LIMIT ?2",
    )?;
    let rows = st.query_map(params![after_id, limit], |r| {
        let kind: String = r.get(3)?;
        let data: String = r.get(4)?;
        let data = serde_json::from_str(&data).unwrap_or(serde_json::Value::Null);
        let what = rules::IssueEvent::parse(&kind, &data).ok_or_else(|| {
            rusqlite::Error::FromSqlConversionFailure(
                3,
                rusqlite::types::Type::Text,
                format!("unknown domain event {kind:?}").into(),
            )
        })?;
        Ok(RecordedEvent {
            id: r.get(0)?,
            project_id: r.get(1)?,
            issue_id: r.get(2)?,
            what,
            facts: serde_json::from_str(&r.get::<_, String>(5)?)
                .map(|v| Facts::from_json(&v))
                .unwrap_or_default(),
            created_ms: r.get(6)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
