//! `/api/0/projects/{org}/{project}/limits/`, `.../keys/{key}/` and `.../usage/`: rate limits,
//! retention and what happened to a project's events.

use axum::extract::Path;
use axum::Json;
use serde::{Deserialize, Deserializer};
use serde_json::{json, Value};

use super::json::{iso, key as key_json};
use super::{blocking, ApiError, Authed, J};
use crate::domain::UsageCounts;
use crate::ops::limits::{Change, KeyLimits, LimitChanges, ProjectLimits, Setting, UsageReport};
use crate::ops::{self, parse_period_ms};

/// Absent stays `None`; `null` becomes `Some(None)` (follow the configuration again).
fn change<'de, D: Deserializer<'de>>(d: D) -> Result<Change, D::Error> {
    Ok(Some(Option::<u64>::deserialize(d)?))
}

/// Body of `PUT .../limits/`: any subset; `null` follows the configuration, 0 means none.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LimitsUpdate {
    #[serde(default, deserialize_with = "change")]
    events_per_minute: Change,
    #[serde(default, deserialize_with = "change")]
    events_per_hour: Change,
    #[serde(default, deserialize_with = "change")]
    max_age_days: Change,
    #[serde(default, deserialize_with = "change")]
    max_stored_events: Change,
}

fn setting(s: Setting) -> Value {
    json!({ "value": s.own, "effective": s.effective })
}

/// A project's limits as JSON (also what `phoebe project limits --json` prints).
pub fn limits_json(l: &ProjectLimits) -> Value {
    let spike = l.project.spike;
    json!({
        "project": l.project.slug,
        "eventsPerMinute": setting(l.events_per_minute),
        "eventsPerHour": setting(l.events_per_hour),
        "maxAgeDays": setting(l.max_age_days),
        "maxStoredEvents": setting(l.max_stored_events),
        "storedEvents": l.project.stored_events,
        "spikeProtection": {
            "enabled": l.spike_protection,
            "active": spike.is_some(),
            "since": spike.map(|s| iso(s.since_ms)),
            "limitPerMinute": spike.map(|s| s.limit_per_minute),
        },
    })
}

/// `GET .../limits/`
pub async fn get_limits(
    Authed(ops): Authed,
    Path((org, project)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let l = blocking(ops, move |ops| {
        let p = ops.project(&org, &project)?;
        Ok(ops.project_limits(&p))
    })
    .await?;
    Ok(Json(limits_json(&l)))
}

/// `PUT .../limits/`
pub async fn put_limits(
    Authed(ops): Authed,
    Path((org, project)): Path<(String, String)>,
    J(body): J<LimitsUpdate>,
) -> Result<Json<Value>, ApiError> {
    let l = blocking(ops, move |ops| {
        let p = ops.project(&org, &project)?;
        let changes = LimitChanges {
            events_per_minute: body.events_per_minute,
            events_per_hour: body.events_per_hour,
            max_age_days: body.max_age_days,
            max_stored_events: body.max_stored_events,
        };
        Ok(ops.set_project_limits(&p, changes)?)
    })
    .await?;
    Ok(Json(limits_json(&l)))
}

/// Sentry's one-window key limit: `{"window": seconds, "count": n}`.
#[derive(Deserialize)]
struct SentryRateLimit {
    window: u64,
    count: u64,
}

/// Body of `PUT .../keys/{key}/`.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct KeyUpdate {
    is_active: Option<bool>,
    #[serde(default, deserialize_with = "change")]
    events_per_minute: Change,
    #[serde(default, deserialize_with = "change")]
    events_per_hour: Change,
    /// Sentry's shape; `null` clears both windows.
    #[serde(default, deserialize_with = "sentry_rate_limit")]
    rate_limit: Option<Option<SentryRateLimit>>,
}

fn sentry_rate_limit<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<SentryRateLimit>>, D::Error> {
    Ok(Some(Option::<SentryRateLimit>::deserialize(d)?))
}

fn key_limits_json(ops: &ops::Ops, k: &KeyLimits) -> Value {
    let mut v = key_json(&k.key, &ops.dsn(&k.key));
    let (m, h) = (k.events_per_minute, k.events_per_hour);
    v["rateLimit"] = match (m.own, h.own) {
        (Some(n), _) if n > 0 => json!({"window": 60, "count": n}),
        (_, Some(n)) if n > 0 => json!({"window": 3600, "count": n}),
        _ => Value::Null,
    };
    v["eventsPerMinute"] = setting(m);
    v["eventsPerHour"] = setting(h);
    v
}

fn key_in_project(
    ops: &ops::Ops,
    org: &str,
    project: &str,
    key: &str,
) -> Result<KeyLimits, ApiError> {
    let p = ops.project(org, project)?;
    let k = ops.key_limits(key)?;
    if k.key.project_id != p.id {
        return Err(ops::OpsError::NotFound("key").into());
    }
    Ok(k)
}

/// `GET .../keys/{key}/`
pub async fn get_key(
    Authed(ops): Authed,
    Path((org, project, key)): Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    let v = blocking(ops, move |ops| {
        let k = key_in_project(ops, &org, &project, &key)?;
        Ok(key_limits_json(ops, &k))
    })
    .await?;
    Ok(Json(v))
}

/// `PUT .../keys/{key}/`: `isActive`, `eventsPerMinute`, `eventsPerHour`, or Sentry's `rateLimit`.
pub async fn put_key(
    Authed(ops): Authed,
    Path((org, project, key)): Path<(String, String, String)>,
    J(body): J<KeyUpdate>,
) -> Result<Json<Value>, ApiError> {
    let v = blocking(ops, move |ops| {
        let k = key_in_project(ops, &org, &project, &key)?;
        let (mut per_minute, mut per_hour) = (body.events_per_minute, body.events_per_hour);
        match body.rate_limit {
            None => {}
            Some(None) => (per_minute, per_hour) = (Some(None), Some(None)),
            Some(Some(SentryRateLimit { window: 60, count })) => per_minute = Some(Some(count)),
            Some(Some(SentryRateLimit {
                window: 3600,
                count,
            })) => per_hour = Some(Some(count)),
            Some(Some(_)) => {
                return Err(ops::OpsError::Invalid(
                    "rateLimit.window must be 60 or 3600 seconds".into(),
                )
                .into())
            }
        }
        if let Some(active) = body.is_active {
            ops.set_key_active(k.key.public_key.as_str(), active)?;
        }
        let k = ops.set_key_limits(k.key.public_key.as_str(), per_minute, per_hour)?;
        Ok(key_limits_json(ops, &k))
    })
    .await?;
    Ok(Json(v))
}

/// Query of `GET .../usage/`.
#[derive(Deserialize)]
pub struct UsageParams {
    #[serde(rename = "statsPeriod")]
    stats_period: Option<String>,
}

fn counts_json(u: &UsageCounts) -> Value {
    json!({
        "accepted": u.accepted, "rateLimited": u.rate_limited, "overQuota": u.over_quota,
        "spikeProtected": u.spike_protected, "stored": u.stored, "evicted": u.evicted,
    })
}

/// The usage report as JSON (also what `phoebe usage --json` prints).
pub fn usage_json(r: &UsageReport) -> Value {
    let dropped = r
        .discards
        .iter()
        .fold(0u64, |n, d| n.saturating_add(d.quantity));
    json!({
        "project": r.project.slug,
        "totals": counts_json(&r.totals),
        "hours": r.hours.iter().map(|(h, u)| {
            let mut v = counts_json(u);
            v["hour"] = json!(iso(*h));
            v
        }).collect::<Vec<_>>(),
        "clientDiscarded": dropped,
        "clientDiscards": r.discards.iter().map(|d| json!({
            "day": iso(d.day_ms), "reason": d.reason, "category": d.category, "quantity": d.quantity,
        })).collect::<Vec<_>>(),
    })
}

/// `GET .../usage/?statsPeriod=24h`
pub async fn get_usage(
    Authed(ops): Authed,
    Path((org, project)): Path<(String, String)>,
    super::Q(params): super::Q<UsageParams>,
) -> Result<Json<Value>, ApiError> {
    let period = params.stats_period.unwrap_or_else(|| "24h".into());
    let ms = parse_period_ms(&period).ok_or_else(|| {
        ops::OpsError::Invalid(format!(
            "statsPeriod {period:?} is not a period like 24h, 14d or 90d (at most 90 days)"
        ))
    })?;
    let r = blocking(ops, move |ops| {
        let p = ops.project(&org, &project)?;
        let since = chrono::Utc::now().timestamp_millis() - ms;
        Ok(ops.usage(&p, since.div_euclid(3_600_000) * 3_600_000)?)
    })
    .await?;
    Ok(Json(usage_json(&r)))
}
