//! Timestamps: parsing both wire forms (RFC 3339 with or without offset, unix seconds as number
//! or string), clock-drift correction from the envelope's `sent_at`, and the future/past bounds.

use chrono::{DateTime, NaiveDateTime, SecondsFormat, TimeDelta, Utc};
use serde_json::Value;

use super::lenient::preview;
use super::{NormalizeContext, Object, Problems};

/// Relay's `MINIMUM_CLOCK_DRIFT`: smaller differences are network latency, not a wrong clock.
const MIN_CLOCK_DRIFT: TimeDelta = TimeDelta::minutes(55);
/// How far in the future an event may claim to be (Relay's `max_secs_in_future`).
const MAX_FUTURE: TimeDelta = TimeDelta::seconds(60);
/// How old an event may claim to be (Relay's `max_secs_in_past`, the retention horizon).
const MAX_PAST: TimeDelta = TimeDelta::days(30);

/// Parses a wire timestamp: RFC 3339 (`Z`, `+00:00`, `+0000` or no offset meaning UTC,
/// fractional seconds optional, `T` or space between date and time) or seconds since the epoch
/// as an integer, float or numeric string.
pub(crate) fn parse_timestamp(value: &Value) -> Option<DateTime<Utc>> {
    match value {
        Value::Number(n) => match n.as_i64() {
            Some(secs) => DateTime::from_timestamp(secs, 0),
            None => from_unix_float(n.as_f64()?),
        },
        Value::String(s) => parse_timestamp_str(s.trim()),
        _ => None,
    }
}

fn parse_timestamp_str(s: &str) -> Option<DateTime<Utc>> {
    if s.starts_with(|c: char| c.is_ascii_digit() || c == '-') && !s.contains([':', 'T', 't']) {
        return from_unix_float(s.parse().ok()?);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.to_utc());
    }
    const WITH_OFFSET: [&str; 2] = ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%z"];
    const WITHOUT_OFFSET: [&str; 2] = ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"];
    WITH_OFFSET
        .iter()
        .find_map(|f| DateTime::parse_from_str(s, f).ok().map(|t| t.to_utc()))
        .or_else(|| {
            WITHOUT_OFFSET.iter().find_map(|f| {
                NaiveDateTime::parse_from_str(s, f)
                    .ok()
                    .map(|t| t.and_utc())
            })
        })
}

fn from_unix_float(f: f64) -> Option<DateTime<Utc>> {
    // Beyond ±1e11 s (year ~5000) chrono may overflow; no real event is there.
    if !f.is_finite() || f.abs() > 1e11 {
        return None;
    }
    // Around 2026 an f64 resolves about 0.24 µs, so anything past microseconds is float noise
    // (`1795380609.362` would otherwise print as `.361999989`).
    let micros = (f * 1e6).round() as i64;
    DateTime::from_timestamp_micros(micros)
}

/// The canonical RFC 3339 form written back into payloads (`2026-11-22T20:49:22.840467Z`).
pub(crate) fn format_timestamp(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Resolves the event's timestamp (missing means `received`), corrects clock drift in every
/// timestamp of the event, applies the bounds, and writes `timestamp` and `received` back.
pub(super) fn normalize_timestamps(
    map: &mut Object,
    ctx: &NormalizeContext,
    problems: &mut Problems,
) -> DateTime<Utc> {
    let received = ctx.received;
    let mut timestamp = match map.get("timestamp") {
        None | Some(Value::Null) => None,
        Some(value) => {
            let parsed = parse_timestamp(value);
            if parsed.is_none() {
                problems.push(
                    "timestamp",
                    "invalid_timestamp",
                    format!(
                        "{} is not a timestamp; using the receive time",
                        preview(value)
                    ),
                );
            }
            parsed
        }
    };

    if let Some(drift) = ctx
        .sent_at
        .map(|sent_at| received - sent_at)
        .filter(|d| d.abs() >= MIN_CLOCK_DRIFT)
    {
        problems.push(
            "timestamp",
            "clock_drift",
            format!(
                "client clock off by {} s; timestamps shifted",
                drift.num_seconds()
            ),
        );
        timestamp = timestamp.and_then(|t| t.checked_add_signed(drift));
        shift_timestamps(map, drift);
    }

    let timestamp = match timestamp {
        Some(t) if t > received + MAX_FUTURE => {
            problems.push(
                "timestamp",
                "future_timestamp",
                format!(
                    "{} is in the future; using the receive time",
                    format_timestamp(t)
                ),
            );
            received
        }
        Some(t) if t < received - MAX_PAST => {
            problems.push(
                "timestamp",
                "past_timestamp",
                format!(
                    "{} is older than 30 days; using the receive time",
                    format_timestamp(t)
                ),
            );
            received
        }
        Some(t) => t,
        None => received,
    };
    map.insert(
        "timestamp".to_owned(),
        Value::String(format_timestamp(timestamp)),
    );
    map.insert(
        "received".to_owned(),
        Value::String(format_timestamp(received)),
    );
    timestamp
}

/// Shifts the other timestamps Relay's `ClockDriftProcessor` touches: `start_timestamp`,
/// breadcrumbs and spans. Unparseable ones are left as they are.
fn shift_timestamps(map: &mut Object, drift: TimeDelta) {
    if let Some(value) = map.get_mut("start_timestamp") {
        shift(value, drift);
    }
    if let Some(Value::Array(crumbs)) = map.get_mut("breadcrumbs").and_then(|b| b.get_mut("values"))
    {
        for crumb in crumbs {
            if let Some(value) = crumb.get_mut("timestamp") {
                shift(value, drift);
            }
        }
    }
    if let Some(Value::Array(spans)) = map.get_mut("spans") {
        for span in spans {
            for key in ["timestamp", "start_timestamp"] {
                if let Some(value) = span.get_mut(key) {
                    shift(value, drift);
                }
            }
        }
    }
}

fn shift(value: &mut Value, drift: TimeDelta) {
    if let Some(t) = parse_timestamp(value).and_then(|t| t.checked_add_signed(drift)) {
        *value = Value::String(format_timestamp(t));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::test_util::{at, kinds, normalize_with, RECEIVED};
    use serde_json::json;

    #[test]
    fn parses_every_wire_form() {
        let check = |input: Value, expected: Option<&str>| {
            assert_eq!(
                parse_timestamp(&input).map(format_timestamp).as_deref(),
                expected,
                "{input}"
            );
        };
        let t = Some("2011-05-02T17:41:36Z");
        check(json!("2011-05-02T17:41:36"), t);
        check(json!("2011-05-02T17:41:36Z"), t);
        check(json!("2011-05-02T17:41:36.000"), t);
        check(json!("2011-05-02T17:41:36+00:00"), t);
        check(json!("2011-05-02T19:41:36+02:00"), t);
        check(json!("2011-05-02T19:41:36+0200"), t);
        check(json!("2011-05-02 17:41:36"), t);
        check(json!(1304358096), t);
        check(json!(1304358096.0), t);
        check(json!("1304358096"), t);
        check(json!(" 1304358096.0 "), t);
        check(
            json!("2011-05-02T17:41:36.840467Z"),
            Some("2011-05-02T17:41:36.840467Z"),
        );
        check(json!(1304358096.5), Some("2011-05-02T17:41:36.500Z"));
        check(
            json!(1795380647.7791948),
            Some("2026-11-22T20:50:47.779195Z"),
        );
        check(json!(1795380609.362), Some("2026-11-22T20:50:09.362Z"));
        check(json!(-1.5), Some("1969-12-31T23:59:58.500Z"));
        check(json!("yesterday"), None);
        check(json!("2011-05-02"), None);
        check(json!(1e300), None);
        check(json!("NaN"), None);
        check(json!(true), None);
        check(json!({}), None);
    }

    /// Normalizes a payload with `timestamp` and the given `sent_at`; compares the result and
    /// problem kinds.
    fn check(
        timestamp: Value,
        sent_at: Option<&str>,
        expected: &str,
        expected_problems: &[(&str, &str)],
    ) {
        let (event, problems) = normalize_with(json!({"timestamp": timestamp}), |ctx| {
            ctx.sent_at = sent_at.map(at)
        });
        assert_eq!(format_timestamp(event.timestamp), expected, "{timestamp}");
        assert_eq!(event.payload["timestamp"], expected);
        assert_eq!(event.payload["received"], RECEIVED);
        assert_eq!(kinds(&problems), expected_problems, "{timestamp}");
    }

    #[test]
    fn missing_or_invalid_timestamp_is_the_receive_time() {
        check(Value::Null, None, RECEIVED, &[]);
        check(
            json!("soon"),
            None,
            RECEIVED,
            &[("timestamp", "invalid_timestamp")],
        );
    }

    #[test]
    fn bounds_allow_a_minute_ahead_and_thirty_days_back() {
        // RECEIVED is 2026-11-22T21:00:00Z.
        check(
            json!("2026-11-22T21:00:59Z"),
            None,
            "2026-11-22T21:00:59Z",
            &[],
        );
        check(
            json!("2026-11-22T21:01:01Z"),
            None,
            RECEIVED,
            &[("timestamp", "future_timestamp")],
        );
        check(
            json!("2026-10-23T21:00:01Z"),
            None,
            "2026-10-23T21:00:01Z",
            &[],
        );
        check(
            json!("2026-10-23T20:59:59Z"),
            None,
            RECEIVED,
            &[("timestamp", "past_timestamp")],
        );
    }

    #[test]
    fn clock_drift_of_55_minutes_or_more_is_corrected() {
        // The client's clock is two hours behind: it sent at 19:00 (its time) what the server
        // received at 21:00, for an event it dated 18:59:30.
        check(
            json!("2026-11-22T18:59:30Z"),
            Some("2026-11-22T19:00:00Z"),
            "2026-11-22T20:59:30Z",
            &[("timestamp", "clock_drift")],
        );
        // Ahead by a day: without correction this would be a future timestamp.
        check(
            json!("2026-11-23T20:59:00Z"),
            Some("2026-11-23T21:00:00Z"),
            "2026-11-22T20:59:00Z",
            &[("timestamp", "clock_drift")],
        );
        // 54 minutes is latency, not drift.
        check(
            json!("2026-11-22T20:05:00Z"),
            Some("2026-11-22T20:06:00Z"),
            "2026-11-22T20:05:00Z",
            &[],
        );
        // Drift but no timestamp: the receive time, which needs no correction.
        check(
            Value::Null,
            Some("2026-11-22T19:00:00Z"),
            RECEIVED,
            &[("timestamp", "clock_drift")],
        );
    }

    #[test]
    fn clock_drift_shifts_breadcrumbs_and_start_timestamp() {
        let (event, _) = normalize_with(
            json!({
                "timestamp": 1795374000.0,
                "start_timestamp": "2026-11-22T18:59:00Z",
                "breadcrumbs": [{"timestamp": 1795373940, "message": "a"}, {"timestamp": "bogus"}, {"message": "no time"}],
            }),
            |ctx| ctx.sent_at = Some(at("2026-11-22T19:00:00Z")),
        );
        assert_eq!(event.payload["timestamp"], "2026-11-22T21:00:00Z");
        assert_eq!(event.payload["start_timestamp"], "2026-11-22T20:59:00Z");
        assert_eq!(
            event.payload["breadcrumbs"]["values"],
            json!([{"timestamp": "2026-11-22T20:59:00Z", "message": "a"}, {"timestamp": "bogus"}, {"message": "no time"}])
        );
    }
}
