//! Usage bookkeeping: hourly per-project counts of what happened to events (accepted, refused,
//! stored, evicted) and the daily sums of what SDKs reported dropping.

use rusqlite::{params, Connection};

use crate::store::*;

const UPSERT_USAGE: &str = "INSERT INTO usage_hourly
    (project_id, hour_ms, accepted, rate_limited, over_quota, spike_protected, stored, evicted)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
    ON CONFLICT (project_id, hour_ms) DO UPDATE SET
        accepted = accepted + excluded.accepted,
        rate_limited = rate_limited + excluded.rate_limited,
        over_quota = over_quota + excluded.over_quota,
        spike_protected = spike_protected + excluded.spike_protected,
        stored = stored + excluded.stored,
        evicted = evicted + excluded.evicted";

/// Adds counts to hourly rows inside the caller's transaction.
pub fn add(c: &Connection, rows: &[(ProjectId, i64, UsageCounts)]) -> StoreResult<()> {
    let mut st = c.prepare_cached(UPSERT_USAGE)?;
    for (project_id, hour_ms, u) in rows {
        st.execute(params![
            project_id,
            hour_ms,
            u.accepted,
            u.rate_limited,
            u.over_quota,
            u.spike_protected,
            u.stored,
            u.evicted
        ])?;
    }
    Ok(())
}

/// Hourly rows of a project since `since_ms`, oldest first.
pub fn hourly(
    c: &Connection,
    project_id: ProjectId,
    since_ms: i64,
) -> StoreResult<Vec<(i64, UsageCounts)>> {
    let mut st = c.prepare_cached(
        "SELECT hour_ms, accepted, rate_limited, over_quota, spike_protected, stored, evicted
         FROM usage_hourly WHERE project_id = ?1 AND hour_ms >= ?2 ORDER BY hour_ms",
    )?;
    let rows = st.query_map(params![project_id, since_ms], |r| {
        Ok((
            r.get(0)?,
            UsageCounts {
                accepted: r.get(1)?,
                rate_limited: r.get(2)?,
                over_quota: r.get(3)?,
                spike_protected: r.get(4)?,
                stored: r.get(5)?,
                evicted: r.get(6)?,
            },
        ))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Events accepted per project since `since_ms` (spike protection's starting baseline).
pub fn accepted_since(c: &Connection, since_ms: i64) -> StoreResult<Vec<(ProjectId, u64)>> {
    let mut st = c.prepare_cached(
        "SELECT project_id, sum(accepted) FROM usage_hourly WHERE hour_ms >= ?1 GROUP BY project_id",
    )?;
    let rows = st.query_map([since_ms], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Adds client-report sums inside the caller's transaction.
pub fn add_discards(c: &Connection, rows: &[ClientDiscard]) -> StoreResult<()> {
    let mut st = c.prepare_cached(
        "INSERT INTO client_discards (project_id, day_ms, reason, category, quantity)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (project_id, day_ms, reason, category) DO UPDATE SET
            quantity = min(quantity + excluded.quantity, 1 << 53)",
    )?;
    for d in rows {
        st.execute(params![
            d.project_id,
            d.day_ms,
            d.reason,
            d.category,
            d.quantity
        ])?;
    }
    Ok(())
}

/// A project's client-report sums since `since_ms`, newest day first.
pub fn discards(
    c: &Connection,
    project_id: ProjectId,
    since_ms: i64,
) -> StoreResult<Vec<ClientDiscard>> {
    let mut st = c.prepare_cached(
        "SELECT project_id, day_ms, reason, category, quantity FROM client_discards
         WHERE project_id = ?1 AND day_ms >= ?2 ORDER BY day_ms DESC, quantity DESC",
    )?;
    let rows = st.query_map(params![project_id, since_ms], |r| {
        Ok(ClientDiscard {
            project_id: r.get(0)?,
            day_ms: r.get(1)?,
            reason: r.get(2)?,
            category: r.get(3)?,
            quantity: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
