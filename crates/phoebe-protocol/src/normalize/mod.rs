//! Normalization: one event payload (bytes or a parsed value) in, the canonical payload plus its
//! typed [`Event`] view and a list of [`Problem`]s out. Pure: no I/O, no clock (the receive time
//! is in [`NormalizeContext`]), no panics; only non-JSON or non-object input is an error.
//!
//! The payload is parsed once into a `serde_json::Value` and mutated in place, submodule by
//! submodule (each owns one concern, listed in pipeline order); the typed view is extracted from
//! the finished payload in a second pass ([`extract`]). Relay's `relay-event-normalization` is the
//! reference for the rules; `shared/protocol.md` §6 lists them.

pub(crate) mod extract;
mod fields;
mod interfaces;
mod lenient;
mod message;
mod tags;
mod time;
mod trim;
mod user_agent;
mod values;

#[cfg(test)]
mod corpus_tests;
#[cfg(test)]
pub(crate) mod test_util;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::event::Event;

/// How much of an event normalization keeps. The defaults follow Relay's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormalizeLimits {
    /// Longest string kept anywhere in the payload, in characters (Relay's per-value databag
    /// limit); longer ones are cut and end in `...`.
    pub max_string_chars: usize,
    /// Longest message (`logentry.message`/`formatted`, exception value), in characters.
    pub max_message_chars: usize,
    /// Deepest nesting kept inside free-form data (`extra`, `contexts`, `request.data`, frame
    /// `vars`, breadcrumb `data`, `user.data`); deeper containers become a marker string.
    pub max_databag_depth: usize,
    /// Breadcrumbs kept (the most recent ones); SDKs cap at 100 by default too.
    pub max_breadcrumbs: usize,
    /// Frames kept per stack trace (the innermost ones), as Relay's `enforce_frame_hard_limit`.
    pub max_frames: usize,
}

impl Default for NormalizeLimits {
    fn default() -> Self {
        NormalizeLimits {
            max_string_chars: 16 * 1024,
            max_message_chars: 8192,
            max_databag_depth: 7,
            max_breadcrumbs: 100,
            max_frames: 250,
        }
    }
}

/// What normalization needs to know beyond the payload: the receive time and request facts.
#[derive(Debug, Clone, PartialEq)]
pub struct NormalizeContext {
    /// When Phoebe received the event (injected: this crate reads no clock).
    pub received: DateTime<Utc>,
    /// The envelope's `sent_at` header; a difference of 55 minutes or more to `received` is
    /// treated as client clock drift and every timestamp in the event is shifted by it.
    pub sent_at: Option<DateTime<Utc>>,
    /// The envelope's `event_id` header, which wins over the payload's.
    pub header_event_id: Option<Uuid>,
    /// The client address, substituted for `{{auto}}` in `user.ip_address` and
    /// `request.env.REMOTE_ADDR` (removed when `None`).
    pub client_ip: Option<String>,
    /// Size limits.
    pub limits: NormalizeLimits,
}

impl NormalizeContext {
    /// A context with only the receive time set and default limits.
    pub fn new(received: DateTime<Utc>) -> Self {
        NormalizeContext {
            received,
            sent_at: None,
            header_event_id: None,
            client_ip: None,
            limits: NormalizeLimits::default(),
        }
    }
}

/// Something normalization fixed, dropped or trimmed; Relay records these as the event's
/// `errors` and `_meta`.
///
/// Kinds: `invalid_event_id`, `invalid_timestamp`, `future_timestamp`, `past_timestamp`,
/// `clock_drift`, `invalid_level`, `invalid_attribute`, `invalid_data`, `invalid_exception`,
/// `invalid_tag_key`, `invalid_tag_value`, `trimmed`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where in the payload, dotted (`timestamp`, `tags.3`, `exception.values.0.value`).
    pub path: String,
    /// What happened (see the list above).
    pub kind: &'static str,
    /// A human-readable explanation.
    pub detail: String,
}

/// Why a payload could not be normalized at all.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum EventError {
    /// The bytes are not JSON (even after rewriting `NaN`/`Infinity`).
    #[error("invalid JSON data: {0}")]
    Json(String),
    /// The JSON is valid but not an object.
    #[error("event payload is not a JSON object")]
    NotAnObject,
}

/// Parses and normalizes one event item or store body. Fails only when it is not JSON or not an
/// object; everything else is repaired and reported as a [`Problem`].
pub fn normalize_event(
    raw: &[u8],
    ctx: &NormalizeContext,
) -> Result<(Event, Vec<Problem>), EventError> {
    let limits = &ctx.limits;
    let (value, clean) = match parse_json(raw) {
        Ok(value) => (value, trim::CleanNeeds::of_json(raw, limits)),
        // Only bodies that fail to parse pay for the NaN scan; raven-python and sentry-python
        // 0.x are the senders of NaN/Infinity.
        Err(err) => match crate::json::sanitize_non_finite(raw) {
            // Report the original error: its position points into what the client sent.
            std::borrow::Cow::Owned(fixed) => {
                let value = parse_json(&fixed).map_err(|_| EventError::Json(err.to_string()))?;
                (value, trim::CleanNeeds::of_json(&fixed, limits))
            }
            std::borrow::Cow::Borrowed(_) => return Err(EventError::Json(err.to_string())),
        },
    };
    normalize_parsed(value, ctx, clean)
}

/// Parses a JSON body. From bytes, serde_json checks UTF-8 string by string; checking the whole
/// body at once and parsing the `&str` without those checks costs 18% fewer instructions in
/// `normalize_event` on the bench event. Bodies that are not UTF-8 take the byte path, so their
/// errors stay exactly as they were.
fn parse_json(raw: &[u8]) -> serde_json::Result<Value> {
    match std::str::from_utf8(raw) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(raw),
    }
}

/// Same as [`normalize_event`], from an already parsed value (CSP reports turned into events,
/// tests).
pub fn normalize_value(
    value: Value,
    ctx: &NormalizeContext,
) -> Result<(Event, Vec<Problem>), EventError> {
    normalize_parsed(value, ctx, trim::CleanNeeds::ALL)
}

/// [`normalize_value`], told by the parser which string repairs the value may need.
fn normalize_parsed(
    value: Value,
    ctx: &NormalizeContext,
    clean: trim::CleanNeeds,
) -> Result<(Event, Vec<Problem>), EventError> {
    let Value::Object(mut map) = value else {
        return Err(EventError::NotAnObject);
    };
    let limits = &ctx.limits;
    let mut problems = Problems::default();

    // First, so every later step sees NUL-free, bounded strings.
    trim::clean_strings(&mut map, limits, clean, &mut problems);
    fields::apply_legacy_aliases(&mut map);
    let event_id = fields::normalize_event_id(&mut map, ctx.header_event_id, &mut problems);
    values::normalize_interfaces(&mut map, limits, &mut problems);
    let timestamp = time::normalize_timestamps(&mut map, ctx, &mut problems);
    let kind = fields::infer_kind(&map);
    let level = fields::normalize_level(&mut map, kind, &mut problems);
    let platform = fields::normalize_platform(&mut map);
    let client_tags = tags::normalize_tags(&mut map, &mut problems);
    fields::normalize_attributes(&mut map, &mut problems);
    message::normalize_logentry(
        &mut map,
        message::spelling_for(&platform),
        limits,
        &mut problems,
    );
    fields::normalize_fingerprint(&mut map, &mut problems);
    interfaces::normalize_user(&mut map, ctx.client_ip.as_deref(), &mut problems);
    interfaces::normalize_request(&mut map, ctx.client_ip.as_deref(), &mut problems);
    interfaces::normalize_contexts(&mut map, &mut problems);
    user_agent::backfill_contexts(&mut map);
    trim::trim_databags(&mut map, limits, &mut problems);

    map.insert("type".to_owned(), Value::String(kind.as_str().to_owned()));
    let event = extract::extract(
        map,
        extract::Known {
            event_id,
            timestamp,
            received: ctx.received,
            kind,
            level,
            platform,
            client_tags,
        },
    );
    Ok((event, problems.0))
}

/// The problems found so far; paths are built only when something is wrong.
#[derive(Debug, Default)]
struct Problems(Vec<Problem>);

impl Problems {
    fn push(&mut self, path: impl Into<String>, kind: &'static str, detail: impl Into<String>) {
        self.0.push(Problem {
            path: path.into(),
            kind,
            detail: detail.into(),
        });
    }
}

/// Shorthand for the payload's object type.
type Object = Map<String, Value>;

#[cfg(test)]
mod tests {
    use super::test_util::{arb_event, arb_json, at, RECEIVED};
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn ctx() -> NormalizeContext {
        NormalizeContext::new(at(RECEIVED))
    }

    #[test]
    fn only_non_json_and_non_objects_are_errors() {
        let check = |raw: &str, expected: EventError| {
            assert_eq!(
                normalize_event(raw.as_bytes(), &ctx()).unwrap_err(),
                expected,
                "{raw}"
            );
        };
        check("[1, 2]", EventError::NotAnObject);
        check("\"event\"", EventError::NotAnObject);
        check("null", EventError::NotAnObject);
        check(
            "{\"a\":",
            EventError::Json("EOF while parsing a value at line 1 column 5".into()),
        );
        check(
            "",
            EventError::Json("EOF while parsing a value at line 1 column 0".into()),
        );
        check(
            "{\"a\": NaN, \"b\": nan}",
            EventError::Json("expected value at line 1 column 7".into()),
        );
    }

    #[test]
    fn python_nan_and_infinity_become_null() {
        let raw = br#"{"extra": {"ratio": NaN, "max": Infinity, "min": -Infinity, "text": "NaN"}}"#;
        let (event, problems) = normalize_event(raw, &ctx()).unwrap();
        assert_eq!(
            event.payload["extra"],
            json!({"ratio": null, "max": null, "min": null, "text": "NaN"})
        );
        assert!(problems.is_empty());
    }

    #[test]
    fn a_complete_event_normalizes_to_its_canonical_form() {
        let raw = json!({
            "event_id": "9EC79C33-EC99-42AB-8353-589FCB2E04DC",
            "timestamp": 1795381190,
            "level": 40,
            "message": "boom",
            "sentry.interfaces.Exception": {"type": "", "value": "KeyError: 'x'"},
            "tags": {"a": true},
            "unknown": {"kept": [1, 2]},
        });
        let (event, problems) = normalize_value(raw, &ctx()).unwrap();
        assert_eq!(
            event.payload,
            json!({
                "event_id": "9ec79c33ec9942ab8353589fcb2e04dc",
                "timestamp": "2026-11-22T20:59:50Z",
                "received": RECEIVED,
                "type": "error",
                "level": "error",
                "platform": "other",
                "logentry": {"formatted": "boom"},
                "exception": {"values": [{"type": "KeyError", "value": "'x'"}]},
                "tags": [["a", "True"]],
                "unknown": {"kept": [1, 2]},
            })
        );
        assert!(problems.is_empty());
        assert_eq!(
            event.tags,
            [
                ("a".to_owned(), "True".to_owned()),
                ("level".to_owned(), "error".to_owned())
            ]
        );
    }

    #[test]
    fn parsed_bodies_get_the_same_string_repairs_as_values() {
        let mut small = ctx();
        small.limits.max_string_chars = 8;
        small.header_event_id = Some(Uuid::from_u128(7));
        for raw in [
            r#"{"extra": {"a\u0000b": "x\u0000y", "long": "0123456789abc"}}"#,
            r#"{"extra": {"short": "0123"}, "tags": {"k": "v"}}"#,
            r#"{"extra": {"escaped": "\\u0000 is not NUL"}}"#,
            r#"{"extra": {"ratio": NaN, "s": "\u0000"}}"#,
        ] {
            let value = serde_json::from_str(&raw.replace("NaN", "null")).unwrap();
            assert_eq!(
                normalize_event(raw.as_bytes(), &small),
                normalize_value(value, &small),
                "{raw}"
            );
        }
    }

    #[test]
    fn serde_json_refuses_what_the_depth_cap_would_cut() {
        // `trim::CleanNeeds::of_json` relies on this: parsed input never reaches the cap.
        let nested = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(serde_json::from_str::<Value>(&nested(127)).is_ok());
        assert!(serde_json::from_str::<Value>(&nested(128)).is_err());
        assert!(serde_json::from_slice::<Value>(nested(128).as_bytes()).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn normalize_event_equals_normalize_value_of_the_parse(
            value in arb_event(),
            max_string_chars in 0usize..48,
        ) {
            let mut ctx = ctx();
            ctx.limits.max_string_chars = max_string_chars;
            ctx.header_event_id = Some(Uuid::from_u128(7));
            let raw = serde_json::to_vec(&value).unwrap();
            // Compared with the value parsed back, since floats do not always round-trip.
            let parsed = serde_json::from_slice(&raw).unwrap();
            prop_assert_eq!(normalize_event(&raw, &ctx), normalize_value(parsed, &ctx));
        }

        #[test]
        fn normalize_value_never_panics(value in arb_json()) {
            let _ = normalize_value(value, &ctx());
        }

        #[test]
        fn event_shaped_input_normalizes_to_a_fixpoint(value in arb_event()) {
            let (event, _) = normalize_value(value, &ctx()).unwrap();
            prop_assert!(event.payload.is_object());
            let mut again_ctx = ctx();
            again_ctx.header_event_id = Some(event.event_id);
            let (again, _) = normalize_value(event.payload.clone(), &again_ctx).unwrap();
            prop_assert_eq!(again.payload, event.payload);
        }
    }
}
