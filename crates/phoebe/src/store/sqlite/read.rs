//! Queries behind the issue list, issue detail and event views.

use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row};

use crate::store::*;

const ISSUE_COLUMNS: &str = "i.id, i.project_id, i.short_id, i.title, i.culprit, i.kind, i.metadata, i.level, i.status,
    i.is_regression, i.first_seen_ms, i.last_seen_ms, i.times_seen, i.user_count, i.first_release, i.last_release,
    i.platform, i.logger, (SELECT login FROM users WHERE id = i.assignee_id), i.ignore_until_ms,
    i.ignore_until_count, i.resolved_in_release,
    (SELECT count(*) FROM activity a WHERE a.issue_id = i.id AND a.kind = 'comment')";

fn issue_row(r: &Row) -> rusqlite::Result<Issue> {
    let status: String = r.get(8)?;
    Ok(Issue {
        id: r.get(0)?,
        project_id: r.get(1)?,
        short_id: r.get(2)?,
        title: r.get(3)?,
        culprit: r.get(4)?,
        kind: r.get(5)?,
        metadata: r.get(6)?,
        level: r.get(7)?,
        status: IssueStatus::parse(&status).unwrap_or(IssueStatus::Unresolved),
        is_regression: r.get(9)?,
        first_seen_ms: r.get(10)?,
        last_seen_ms: r.get(11)?,
        times_seen: r.get(12)?,
        user_count: r.get(13)?,
        first_release: r.get(14)?,
        last_release: r.get(15)?,
        platform: r.get(16)?,
        logger: r.get(17)?,
        assignee: r.get(18)?,
        ignore_until_ms: r.get(19)?,
        ignore_until_count: r.get(20)?,
        resolved_in_release: r.get(21)?,
        num_comments: r.get(22)?,
    })
}

/// `%`, `_` and `\` are LIKE wildcards; a search for "100%" must match literally.
fn like_pattern(word: &str) -> String {
    let mut p = String::with_capacity(word.len() + 2);
    p.push('%');
    for ch in word.chars() {
        if matches!(ch, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(ch);
    }
    p.push('%');
    p
}

pub fn issues(c: &Connection, q: &IssueQuery) -> StoreResult<Vec<Issue>> {
    let mut sql = format!("SELECT {ISSUE_COLUMNS} FROM issues i WHERE 1 = 1");
    let mut args: Vec<Value> = Vec::new();
    if !q.project_ids.is_empty() {
        sql.push_str(" AND i.project_id IN (");
        for (n, id) in q.project_ids.iter().enumerate() {
            sql.push_str(if n == 0 { "?" } else { ", ?" });
            args.push(Value::Integer(id.0));
        }
        sql.push(')');
    }
    if let Some(status) = q.status {
        sql.push_str(" AND i.status = ?");
        args.push(Value::Text(status.as_str().into()));
    }
    if let Some(level) = &q.level {
        sql.push_str(" AND i.level = ?");
        args.push(Value::Text(level.clone()));
    }
    for (key, value) in &q.tags {
        sql.push_str(" AND EXISTS (SELECT 1 FROM issue_tags t WHERE t.issue_id = i.id AND t.key = ? AND t.value = ?)");
        args.push(Value::Text(key.clone()));
        args.push(Value::Text(value.clone()));
    }
    for word in &q.text {
        sql.push_str(" AND (i.title LIKE ? ESCAPE '\\' OR i.culprit LIKE ? ESCAPE '\\')");
        let p = like_pattern(word);
        args.push(Value::Text(p.clone()));
        args.push(Value::Text(p));
    }
    if let Some(since) = q.seen_since_ms {
        sql.push_str(" AND i.last_seen_ms >= ?");
        args.push(Value::Integer(since));
    }
    let column = match q.sort {
        IssueSort::LastSeen => "i.last_seen_ms",
        IssueSort::FirstSeen => "i.first_seen_ms",
        IssueSort::Events => "i.times_seen",
        IssueSort::Users => "i.user_count",
    };
    // Lists run newest/biggest first; a backwards page walks the other way and is reversed.
    let backwards = q.cursor.is_some_and(|c| c.backwards);
    if let Some(cursor) = q.cursor {
        let op = if cursor.backwards { ">" } else { "<" };
        sql.push_str(&format!(" AND ({column}, i.id) {op} (?, ?)"));
        args.push(Value::Integer(cursor.value));
        args.push(Value::Integer(cursor.id));
    }
    let dir = if backwards { "ASC" } else { "DESC" };
    sql.push_str(&format!(" ORDER BY {column} {dir}, i.id {dir} LIMIT ?"));
    args.push(Value::Integer(q.limit));
    let mut st = c.prepare_cached(&sql)?;
    let rows = st.query_map(params_from_iter(args), issue_row)?;
    let mut issues: Vec<Issue> = rows.collect::<Result<_, _>>()?;
    if backwards {
        issues.reverse();
    }
    Ok(issues)
}

pub fn issue(c: &Connection, id: IssueId) -> StoreResult<Issue> {
    let sql = format!("SELECT {ISSUE_COLUMNS} FROM issues i WHERE i.id = ?1");
    c.query_row(&sql, [id], issue_row)
        .optional()?
        .ok_or(StoreError::NotFound("issue"))
}

pub fn hourly(
    c: &Connection,
    issue_ids: &[IssueId],
    since_ms: i64,
) -> StoreResult<Vec<(IssueId, i64, i64)>> {
    let mut st = c.prepare_cached(
        "SELECT issue_id, hour_ms, count FROM issue_hourly WHERE issue_id = ?1 AND hour_ms >= ?2",
    )?;
    let mut out = Vec::new();
    for id in issue_ids {
        let rows = st.query_map(params![id, since_ms], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
        for row in rows {
            out.push(row?);
        }
    }
    Ok(out)
}

pub fn tags(c: &Connection, issue_id: IssueId, per_key: usize) -> StoreResult<Vec<TagCount>> {
    let mut st = c.prepare_cached(
        "SELECT key, value, count, first_seen_ms, last_seen_ms, total FROM (
            SELECT key, value, count, first_seen_ms, last_seen_ms,
                   row_number() OVER (PARTITION BY key ORDER BY count DESC, value) AS n,
                   sum(count) OVER (PARTITION BY key) AS total
            FROM issue_tags WHERE issue_id = ?1)
         WHERE n <= ?2 ORDER BY key, count DESC, value",
    )?;
    let rows = st.query_map(params![issue_id, per_key as i64], |r| {
        Ok(TagCount {
            key: r.get(0)?,
            value: r.get(1)?,
            count: r.get(2)?,
            first_seen_ms: r.get(3)?,
            last_seen_ms: r.get(4)?,
            key_total: r.get(5)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn grouping(c: &Connection, project_id: ProjectId, hash: &str) -> StoreResult<Option<String>> {
    Ok(c.query_row(
        "SELECT grouping FROM issue_hashes WHERE project_id = ?1 AND hash = ?2",
        params![project_id, hash],
        |r| r.get(0),
    )
    .optional()?)
}

const EVENT_COLUMNS: &str =
    "event_id, project_id, issue_id, timestamp_ms, received_ms, grouping_hash, grouping_variant, payload, id FROM events";

/// zstd dictionaries by id, loaded once per store (they never change).
#[derive(Default)]
pub struct Dictionaries(std::sync::Mutex<std::collections::HashMap<u32, std::sync::Arc<Vec<u8>>>>);

impl Dictionaries {
    fn get(&self, c: &Connection, id: u32) -> Option<std::sync::Arc<Vec<u8>>> {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(d) = map.get(&id) {
            return Some(d.clone());
        }
        let dict: Vec<u8> = c
            .query_row(
                "SELECT dict FROM zstd_dicts WHERE dict_id = ?1",
                [id],
                |r| r.get(0),
            )
            .ok()?;
        let dict = std::sync::Arc::new(dict);
        map.insert(id, dict.clone());
        Some(dict)
    }

    /// Decompresses a stored payload, with the dictionary its frame names (if any).
    fn decode(&self, c: &Connection, compressed: &[u8]) -> serde_json::Value {
        use std::io::Read;
        let raw = match zstd::zstd_safe::get_dict_id_from_frame(compressed) {
            None => zstd::decode_all(compressed).ok(),
            Some(id) => self.get(c, id.get()).and_then(|dict| {
                let mut out = Vec::new();
                zstd::stream::read::Decoder::with_dictionary(compressed, &dict)
                    .ok()?
                    .read_to_end(&mut out)
                    .ok()?;
                Some(out)
            }),
        };
        raw.and_then(|raw| serde_json::from_slice(&raw).ok())
            .unwrap_or(serde_json::Value::Null)
    }
}

/// An event row with its payload still compressed.
struct EventRow(StoredEvent, Vec<u8>);

fn event_row(r: &Row) -> rusqlite::Result<EventRow> {
    let id: Vec<u8> = r.get(0)?;
    let compressed: Vec<u8> = r.get(7)?;
    Ok(EventRow(
        StoredEvent {
            event_id: uuid::Uuid::from_slice(&id).unwrap_or_default(),
            project_id: r.get(1)?,
            issue_id: r.get(2)?,
            timestamp_ms: r.get(3)?,
            received_ms: r.get(4)?,
            grouping_hash: r.get(5)?,
            grouping_variant: r.get(6)?,
            payload: serde_json::Value::Null,
            stored_bytes: compressed.len() as i64,
            row_id: r.get(8)?,
        },
        compressed,
    ))
}

fn finish(c: &Connection, dicts: &Dictionaries, row: EventRow) -> StoredEvent {
    let EventRow(mut event, compressed) = row;
    event.payload = dicts.decode(c, &compressed);
    event
}

/// Which way a page of events goes from its cursor: whether backwards, the comparison that
/// continues from the cursor, and the order.
fn direction(cursor: Option<KeysetCursor>) -> (bool, &'static str, &'static str) {
    match cursor.is_some_and(|c| c.backwards) {
        true => (true, ">", "ASC"),
        false => (false, "<", "DESC"),
    }
}

pub fn issue_events(
    c: &Connection,
    dicts: &Dictionaries,
    issue_id: IssueId,
    cursor: Option<KeysetCursor>,
    limit: i64,
) -> StoreResult<Vec<StoredEvent>> {
    let (backwards, op, dir) = direction(cursor);
    let position = if cursor.is_some() {
        format!(" AND (timestamp_ms, id) {op} (?3, ?4)")
    } else {
        String::new()
    };
    let sql = format!(
        "SELECT {EVENT_COLUMNS} WHERE issue_id = ?1{position} ORDER BY timestamp_ms {dir}, id {dir} LIMIT ?2"
    );
    let mut st = c.prepare_cached(&sql)?;
    let rows: Vec<EventRow> = match cursor {
        Some(k) => st
            .query_map(params![issue_id, limit, k.value, k.id], event_row)?
            .collect::<Result<_, _>>()?,
        None => st
            .query_map(params![issue_id, limit], event_row)?
            .collect::<Result<_, _>>()?,
    };
    let mut events: Vec<StoredEvent> = rows.into_iter().map(|r| finish(c, dicts, r)).collect();
    if backwards {
        events.reverse();
    }
    Ok(events)
}

/// A project's events, the most recently stored first (by row id: the index the project's
/// events are kept in order by), from a cursor position (row id, row id).
pub fn project_events(
    c: &Connection,
    dicts: &Dictionaries,
    project_id: ProjectId,
    cursor: Option<KeysetCursor>,
    limit: i64,
) -> StoreResult<Vec<StoredEvent>> {
    let (backwards, op, dir) = direction(cursor);
    let sql = format!(
        "SELECT {EVENT_COLUMNS} WHERE project_id = ?1 AND id {op} ?3 ORDER BY id {dir} LIMIT ?2"
    );
    let start = cursor.map_or(i64::MAX, |k| k.id);
    let mut st = c.prepare_cached(&sql)?;
    let rows: Vec<EventRow> = st
        .query_map(params![project_id, limit, start], event_row)?
        .collect::<Result<_, _>>()?;
    let mut events: Vec<StoredEvent> = rows.into_iter().map(|r| finish(c, dicts, r)).collect();
    if backwards {
        events.reverse();
    }
    Ok(events)
}

pub fn issue_event_edge(
    c: &Connection,
    dicts: &Dictionaries,
    issue_id: IssueId,
    newest: bool,
) -> StoreResult<Option<StoredEvent>> {
    let order = if newest { "DESC" } else { "ASC" };
    let sql = format!("SELECT {EVENT_COLUMNS} WHERE issue_id = ?1 ORDER BY timestamp_ms {order}, id {order} LIMIT 1");
    Ok(c.query_row(&sql, [issue_id], event_row)
        .optional()?
        .map(|r| finish(c, dicts, r)))
}

pub fn event(
    c: &Connection,
    dicts: &Dictionaries,
    project_id: ProjectId,
    event_id: uuid::Uuid,
) -> StoreResult<Option<StoredEvent>> {
    let sql = format!("SELECT {EVENT_COLUMNS} WHERE project_id = ?1 AND event_id = ?2");
    Ok(c.query_row(
        &sql,
        params![project_id, event_id.as_bytes().as_slice()],
        event_row,
    )
    .optional()?
    .map(|r| finish(c, dicts, r)))
}
