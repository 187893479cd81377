//! Alerts in SQLite: channels, rules (their channel ids as a JSON array), the outbox, and the
//! cursor over domain events in `meta`.

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::domain::alerts::*;
use crate::domain::rules::IssueEvent;
use crate::store::*;

const CURSOR_KEY: &str = "alerts_cursor";

fn channel_row(r: &Row) -> rusqlite::Result<Channel> {
    let kind: String = r.get(2)?;
    Ok(Channel {
        id: ChannelId(r.get(0)?),
        project_id: r.get(1)?,
        kind: ChannelKind::parse(&kind).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, e.into())
        })?,
        name: r.get(3)?,
        target: r.get(4)?,
        secret: r.get(5)?,
        created_ms: r.get(6)?,
    })
}

const CHANNEL_COLUMNS: &str = "id, project_id, kind, name, target, secret, created_ms";

pub fn create_channel(
    c: &Connection,
    project_id: ProjectId,
    kind: ChannelKind,
    name: &str,
    target: &str,
    secret: Option<&str>,
) -> StoreResult<Channel> {
    super::admin::project(c, project_id)?;
    c.execute(
        "INSERT INTO alert_channels (project_id, kind, name, target, secret, created_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            project_id,
            kind.as_str(),
            name,
            target,
            secret,
            super::now_ms()
        ],
    )?;
    channel(c, ChannelId(c.last_insert_rowid()))
}

pub fn channels(c: &Connection, project_id: Option<ProjectId>) -> StoreResult<Vec<Channel>> {
    let mut st = c.prepare_cached(&format!(
        "SELECT {CHANNEL_COLUMNS} FROM alert_channels WHERE ?1 IS NULL OR project_id = ?1 ORDER BY id"
    ))?;
    let rows = st.query_map([project_id], channel_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn channel(c: &Connection, id: ChannelId) -> StoreResult<Channel> {
    c.query_row(
        &format!("SELECT {CHANNEL_COLUMNS} FROM alert_channels WHERE id = ?1"),
        [id.0],
        channel_row,
    )
    .optional()?
    .ok_or(StoreError::NotFound("channel"))
}

/// Removes a channel and takes it out of every rule; its pending notifications are dropped.
pub fn delete_channel(c: &mut Connection, id: ChannelId) -> StoreResult<()> {
    let tx = c.transaction()?;
    channel(&tx, id)?;
    tx.execute("DELETE FROM alert_channels WHERE id = ?1", [id.0])?;
    tx.execute(
        "DELETE FROM alert_outbox WHERE channel_id = ?1 AND state = 'pending'",
        [id.0],
    )?;
    for rule in rules(&tx, None)? {
        if rule.channels.contains(&id) {
            let rest: Vec<i64> = rule
                .channels
                .iter()
                .filter(|c| **c != id)
                .map(|c| c.0)
                .collect();
            tx.execute(
                "UPDATE alert_rules SET channels = ?2 WHERE id = ?1",
                params![rule.id.0, serde_json::to_string(&rest).unwrap_or_default()],
            )?;
        }
    }
    tx.commit()?;
    Ok(())
}

const RULE_COLUMNS: &str =
    "id, project_id, trigger, channels, cooldown_ms, created_ms, threshold, window_minutes, filters";

fn rule_row(r: &Row) -> rusqlite::Result<Rule> {
    let trigger: String = r.get(2)?;
    let channels: String = r.get(3)?;
    let filters: String = r.get(8)?;
    Ok(Rule {
        id: RuleId(r.get(0)?),
        project_id: r.get(1)?,
        trigger: Trigger::from_parts(&trigger, r.get(6)?, r.get(7)?).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, e.into())
        })?,
        filters: serde_json::from_str(&filters)
            .map(|v| Filters::from_json(&v))
            .unwrap_or_default(),
        channels: serde_json::from_str::<Vec<i64>>(&channels)
            .unwrap_or_default()
            .into_iter()
            .map(ChannelId)
            .collect(),
        cooldown_ms: r.get(4)?,
        created_ms: r.get(5)?,
    })
}

pub fn create_rule(c: &Connection, project_id: ProjectId, spec: &RuleSpec) -> StoreResult<Rule> {
    super::admin::project(c, project_id)?;
    for id in &spec.channels {
        if channel(c, *id)?.project_id != project_id {
            return Err(StoreError::Invalid(format!(
                "channel {id} belongs to another project; a rule notifies its own project's channels"
            )));
        }
    }
    let ids: Vec<i64> = spec.channels.iter().map(|c| c.0).collect();
    let (threshold, window) = spec.trigger.threshold().unzip();
    c.execute(
        "INSERT INTO alert_rules (project_id, trigger, channels, cooldown_ms, created_ms,
            threshold, window_minutes, filters) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            project_id,
            spec.trigger.as_str(),
            serde_json::to_string(&ids).unwrap_or_default(),
            spec.cooldown_ms,
            super::now_ms(),
            threshold,
            window,
            spec.filters.to_json().to_string(),
        ],
    )?;
    let id = c.last_insert_rowid();
    Ok(c.query_row(
        &format!("SELECT {RULE_COLUMNS} FROM alert_rules WHERE id = ?1"),
        [id],
        rule_row,
    )?)
}

pub fn rules(c: &Connection, project_id: Option<ProjectId>) -> StoreResult<Vec<Rule>> {
    let mut st = c.prepare_cached(&format!(
        "SELECT {RULE_COLUMNS} FROM alert_rules WHERE ?1 IS NULL OR project_id = ?1 ORDER BY id"
    ))?;
    let rows = st.query_map([project_id], rule_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Issues of a project with at least `threshold` events received since `since_ms`.
pub fn frequent_issues(
    c: &Connection,
    project_id: ProjectId,
    since_ms: i64,
    threshold: i64,
) -> StoreResult<Vec<(IssueId, i64)>> {
    counts_over(
        c,
        "SELECT m.issue_id, sum(m.count) AS n FROM issue_minutes m
         JOIN issues i ON i.id = m.issue_id
         WHERE m.minute_ms >= ?2 AND i.project_id = ?1
         GROUP BY m.issue_id HAVING n >= ?3 ORDER BY n DESC",
        (project_id, since_ms, threshold),
    )
}

/// Issues of a project that at least `threshold` distinct users met since `since_ms` (by the
/// time of each user's latest event).
pub fn widely_seen_issues(
    c: &Connection,
    project_id: ProjectId,
    since_ms: i64,
    threshold: i64,
) -> StoreResult<Vec<(IssueId, i64)>> {
    counts_over(
        c,
        "SELECT t.issue_id, count(*) AS n FROM issues i
         JOIN issue_tags t ON t.issue_id = i.id AND t.key = 'user'
         WHERE i.project_id = ?1 AND i.last_seen_ms >= ?2 AND t.last_seen_ms >= ?2
         GROUP BY t.issue_id HAVING n >= ?3 ORDER BY n DESC",
        (project_id, since_ms, threshold),
    )
}

/// Runs a query for (issue, count) rows with (project, since, threshold) as its parameters.
fn counts_over(
    c: &Connection,
    sql: &str,
    args: (ProjectId, i64, i64),
) -> StoreResult<Vec<(IssueId, i64)>> {
    let mut st = c.prepare_cached(sql)?;
    let rows = st.query_map(params![args.0, args.1, args.2], |r| {
        Ok((r.get(0)?, r.get(1)?))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn delete_rule(c: &Connection, id: RuleId) -> StoreResult<()> {
    match c.execute("DELETE FROM alert_rules WHERE id = ?1", [id.0])? {
        0 => Err(StoreError::NotFound("rule")),
        _ => Ok(()),
    }
}

pub fn cursor(c: &Connection) -> StoreResult<i64> {
    let v: Option<String> = c
        .query_row("SELECT value FROM meta WHERE key = ?1", [CURSOR_KEY], |r| {
            r.get(0)
        })
        .optional()?;
    Ok(v.and_then(|v| v.parse().ok()).unwrap_or(0))
}

pub fn last_fired(c: &Connection, rule: RuleId, issue: IssueId) -> StoreResult<Option<i64>> {
    Ok(c.prepare_cached(
        "SELECT max(created_ms) FROM alert_outbox WHERE rule_id = ?1 AND issue_id = ?2",
    )?
    .query_row(params![rule.0, issue], |r| r.get(0))?)
}

pub fn enqueue(
    c: &mut Connection,
    cursor: i64,
    alerts: &[NewAlert],
    now_ms: i64,
) -> StoreResult<()> {
    let tx = c.transaction()?;
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO alert_outbox (rule_id, channel_id, project_id, issue_id, event_id, kind,
                data, next_attempt_ms, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8)",
        )?;
        for a in alerts {
            insert.execute(params![
                a.rule_id.0,
                a.channel_id.0,
                a.project_id,
                a.issue_id,
                a.event_id,
                a.what.kind(),
                a.what.data().to_string(),
                now_ms
            ])?;
        }
    }
    tx.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![CURSOR_KEY, cursor.to_string()],
    )?;
    tx.commit()?;
    Ok(())
}

const ALERT_COLUMNS: &str = "id, rule_id, channel_id, project_id, issue_id, event_id, kind, data,
    state, attempts, next_attempt_ms, last_error, created_ms, sent_ms";

fn alert_row(r: &Row) -> rusqlite::Result<Alert> {
    let bad = |i: usize, what: String| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, what.into())
    };
    let kind: String = r.get(6)?;
    let data: String = r.get(7)?;
    let data = serde_json::from_str(&data).unwrap_or(serde_json::Value::Null);
    let state: String = r.get(8)?;
    Ok(Alert {
        id: AlertId(r.get(0)?),
        alert: NewAlert {
            rule_id: RuleId(r.get(1)?),
            channel_id: ChannelId(r.get(2)?),
            project_id: r.get(3)?,
            issue_id: r.get(4)?,
            event_id: r.get(5)?,
            what: IssueEvent::parse(&kind, &data)
                .ok_or_else(|| bad(6, format!("unknown event {kind:?}")))?,
        },
        state: AlertState::parse(&state)
            .ok_or_else(|| bad(8, format!("unknown state {state:?}")))?,
        attempts: r.get(9)?,
        next_attempt_ms: r.get(10)?,
        last_error: r.get(11)?,
        created_ms: r.get(12)?,
        sent_ms: r.get(13)?,
    })
}

pub fn due(c: &Connection, now_ms: i64, limit: i64) -> StoreResult<Vec<Alert>> {
    let mut st = c.prepare_cached(&format!(
        "SELECT {ALERT_COLUMNS} FROM alert_outbox
         WHERE state = 'pending' AND next_attempt_ms <= ?1 ORDER BY next_attempt_ms, id LIMIT ?2"
    ))?;
    let rows = st.query_map(params![now_ms, limit], alert_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn record_attempt(
    c: &Connection,
    id: AlertId,
    outcome: Result<(), &str>,
    next_attempt_ms: Option<i64>,
    now_ms: i64,
) -> StoreResult<()> {
    let n = match (outcome, next_attempt_ms) {
        (Ok(()), _) => c.execute(
            "UPDATE alert_outbox SET state = 'sent', attempts = attempts + 1, sent_ms = ?2,
                last_error = NULL WHERE id = ?1",
            params![id.0, now_ms],
        )?,
        (Err(e), Some(next)) => c.execute(
            "UPDATE alert_outbox SET attempts = attempts + 1, last_error = ?2, next_attempt_ms = ?3
             WHERE id = ?1",
            params![id.0, e, next],
        )?,
        (Err(e), None) => c.execute(
            "UPDATE alert_outbox SET state = 'failed', attempts = attempts + 1, last_error = ?2
             WHERE id = ?1",
            params![id.0, e],
        )?,
    };
    match n {
        0 => Err(StoreError::NotFound("alert")),
        _ => Ok(()),
    }
}

pub fn history(
    c: &Connection,
    project_id: Option<ProjectId>,
    issue_id: Option<IssueId>,
    limit: i64,
) -> StoreResult<Vec<Alert>> {
    let mut st = c.prepare_cached(&format!(
        "SELECT {ALERT_COLUMNS} FROM alert_outbox
         WHERE (?1 IS NULL OR project_id = ?1) AND (?2 IS NULL OR issue_id = ?2)
         ORDER BY id DESC LIMIT ?3"
    ))?;
    let rows = st.query_map(params![project_id, issue_id, limit], alert_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn set_summary(
    c: &Connection,
    user_id: UserId,
    project_id: ProjectId,
    period: Option<SummaryPeriod>,
    now_ms: i64,
) -> StoreResult<()> {
    super::admin::project(c, project_id)?;
    match period {
        Some(p) => c.execute(
            "INSERT INTO alert_summaries (user_id, project_id, period, last_sent_ms)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (user_id, project_id) DO UPDATE SET period = excluded.period,
                last_sent_ms = excluded.last_sent_ms",
            params![user_id, project_id, p.as_str(), now_ms],
        )?,
        None => c.execute(
            "DELETE FROM alert_summaries WHERE user_id = ?1 AND project_id = ?2",
            params![user_id, project_id],
        )?,
    };
    Ok(())
}

pub fn summaries(c: &Connection, user_id: Option<UserId>) -> StoreResult<Vec<Summary>> {
    let mut st = c.prepare_cached(
        "SELECT user_id, project_id, period, last_sent_ms FROM alert_summaries
         WHERE ?1 IS NULL OR user_id = ?1 ORDER BY user_id, project_id",
    )?;
    let rows = st.query_map([user_id], |r| {
        let period: String = r.get(2)?;
        Ok(Summary {
            user_id: r.get(0)?,
            project_id: r.get(1)?,
            period: SummaryPeriod::parse(&period).map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(2, rusqlite::types::Type::Text, e.into())
            })?,
            last_sent_ms: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn summary_sent(
    c: &Connection,
    user_id: UserId,
    project_id: ProjectId,
    until_ms: i64,
) -> StoreResult<()> {
    c.execute(
        "UPDATE alert_summaries SET last_sent_ms = max(last_sent_ms, ?3)
         WHERE user_id = ?1 AND project_id = ?2",
        params![user_id, project_id, until_ms],
    )?;
    Ok(())
}
