//! Top-level scalar attributes: legacy interface aliases, `event_id`, `type`, `level`,
//! `platform`, the release/environment family of strings, and `fingerprint`.

use serde_json::Value;
use uuid::Uuid;

use super::lenient::{preview, scalar_to_string, Spelling};
use super::trim::truncate_chars;
use super::{Object, Problems};
use crate::event::{EventKind, Level};

/// Interface names of the pre-2018 protocol (raven clients, `/store/`), newest name second.
const LEGACY_ALIASES: &[(&str, &str)] = &[
    ("sentry.interfaces.Exception", "exception"),
    ("sentry.interfaces.Stacktrace", "stacktrace"),
    ("sentry.interfaces.Threads", "threads"),
    ("sentry.interfaces.Message", "logentry"),
    ("sentry.interfaces.Breadcrumbs", "breadcrumbs"),
    ("sentry.interfaces.User", "user"),
    ("sentry.interfaces.Http", "request"),
    ("sentry.interfaces.Contexts", "contexts"),
    ("sentry.interfaces.Template", "template"),
    ("sentry.interfaces.DebugMeta", "debug_meta"),
    ("sentry.interfaces.Csp", "csp"),
    ("sentry.interfaces.Hpkp", "hpkp"),
    ("sentry.interfaces.ExpectCT", "expectct"),
    ("sentry.interfaces.ExpectStaple", "expectstaple"),
];

/// Moves legacy interface keys to their modern names; the modern key wins when both are sent.
pub(super) fn apply_legacy_aliases(map: &mut Object) {
    if !map.keys().any(|k| k.starts_with("sentry.interfaces.")) {
        return;
    }
    for (alias, key) in LEGACY_ALIASES {
        if let Some(value) = map.remove(*alias) {
            if map.get(*key).is_none_or(Value::is_null) {
                map.insert((*key).to_owned(), value);
            }
        }
    }
}

/// The envelope header's id, else the payload's (32 hex or dashed, any case), else a new v4.
/// Written back as 32 lowercase hex.
pub(super) fn normalize_event_id(
    map: &mut Object,
    header: Option<Uuid>,
    problems: &mut Problems,
) -> Uuid {
    let id = match header {
        Some(id) => id,
        None => match map.get("event_id") {
            None | Some(Value::Null) => Uuid::new_v4(),
            Some(value) => match value.as_str().and_then(parse_uuid) {
                Some(id) => id,
                None => {
                    problems.push(
                        "event_id",
                        "invalid_event_id",
                        format!("{} is not a UUID; generated one", preview(value)),
                    );
                    Uuid::new_v4()
                }
            },
        },
    };
    map.insert(
        "event_id".to_owned(),
        Value::String(id.simple().to_string()),
    );
    id
}

fn parse_uuid(s: &str) -> Option<Uuid> {
    let s = s.trim();
    // `Uuid::try_parse` also takes braced and URN forms, which no SDK sends.
    matches!(s.len(), 32 | 36)
        .then(|| Uuid::try_parse(s).ok())
        .flatten()
}

/// `csp`, `transaction` and `feedback` come from `type`; otherwise an event with an exception
/// (after invalid ones were dropped) is an error, anything else `default`.
pub(super) fn infer_kind(map: &Object) -> EventKind {
    match map.get("type").and_then(Value::as_str) {
        Some("csp") => EventKind::Csp,
        Some("transaction") => EventKind::Transaction,
        Some("feedback") => EventKind::Feedback,
        _ if map.contains_key("exception") => EventKind::Error,
        _ => EventKind::Default,
    }
}

/// Parses `level` (names, aliases, Python logging numbers); missing means `error` (`info` for
/// transactions), invalid means `error` and a problem. Written back as the wire name.
pub(super) fn normalize_level(map: &mut Object, kind: EventKind, problems: &mut Problems) -> Level {
    let default = if kind == EventKind::Transaction {
        Level::Info
    } else {
        Level::Error
    };
    let level = match map.get("level") {
        None | Some(Value::Null) => default,
        Some(value) => parse_level(value).unwrap_or_else(|| {
            problems.push(
                "level",
                "invalid_level",
                format!("{} is not a level; using error", preview(value)),
            );
            Level::Error
        }),
    };
    map.insert("level".to_owned(), Value::String(level.as_str().to_owned()));
    level
}

fn parse_level(value: &Value) -> Option<Level> {
    let number = match value {
        Value::String(s) => {
            return Level::parse(s).or_else(|| s.trim().parse::<f64>().ok().and_then(python_level))
        }
        Value::Number(n) => n.as_f64()?,
        _ => return None,
    };
    python_level(number)
}

/// Python's `logging` levels, which raven-python sends as numbers (`"level": 40`).
fn python_level(number: f64) -> Option<Level> {
    if number.fract() != 0.0 {
        return None;
    }
    Some(match number as i64 {
        10 => Level::Debug,
        20 => Level::Info,
        30 => Level::Warning,
        40 => Level::Error,
        50 => Level::Fatal,
        _ => return None,
    })
}

/// `platform` as sent (trimmed), `other` when missing, empty or not a string.
pub(super) fn normalize_platform(map: &mut Object) -> String {
    let platform = match map.get("platform").and_then(Value::as_str).map(str::trim) {
        Some(p) if !p.is_empty() && p.len() <= 64 => p.to_owned(),
        _ => "other".to_owned(),
    };
    map.insert("platform".to_owned(), Value::String(platform.clone()));
    platform
}

/// What to do with a value over the length limit.
#[derive(Clone, Copy)]
enum TooLong {
    /// Identities (release, environment, dist): a cut one would name something else.
    Drop,
    /// Free text: cut it.
    Cut,
}

struct Attribute {
    key: &'static str,
    max_chars: usize,
    too_long: TooLong,
    /// Characters that make the value invalid.
    valid: fn(&str) -> bool,
}

/// Limits from protocol.md §6.1 (Relay's schema and Sentry's release/environment validators).
const ATTRIBUTES: &[Attribute] = &[
    Attribute {
        key: "release",
        max_chars: 200,
        too_long: TooLong::Drop,
        valid: valid_release,
    },
    Attribute {
        key: "dist",
        max_chars: 64,
        too_long: TooLong::Drop,
        valid: valid_dist,
    },
    Attribute {
        key: "environment",
        max_chars: 64,
        too_long: TooLong::Drop,
        valid: valid_environment,
    },
    Attribute {
        key: "server_name",
        max_chars: 256,
        too_long: TooLong::Cut,
        valid: any_text,
    },
    Attribute {
        key: "logger",
        max_chars: 64,
        too_long: TooLong::Cut,
        valid: no_newline,
    },
    Attribute {
        key: "transaction",
        max_chars: 200,
        too_long: TooLong::Cut,
        valid: any_text,
    },
];

fn valid_release(s: &str) -> bool {
    // Sentry's release parser and its URLs reject these.
    !matches!(s, "." | "..") && !s.contains(['/', '\\', '\n', '\r', '\t', '\x0c'])
}

fn valid_dist(s: &str) -> bool {
    s.chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

fn valid_environment(s: &str) -> bool {
    !s.contains(['/', '\n', '\r', '\t', '\x0c'])
}

fn no_newline(s: &str) -> bool {
    !s.contains(['\n', '\r'])
}

fn any_text(_: &str) -> bool {
    true
}

/// `release`, `dist`, `environment`, `server_name`, `logger`, `transaction`: strings (numbers
/// stringified, e.g. `"release": 3`), trimmed, removed when empty or invalid.
pub(super) fn normalize_attributes(map: &mut Object, problems: &mut Problems) {
    for attr in ATTRIBUTES {
        let Some(value) = map.get_mut(attr.key) else {
            continue;
        };
        let text = match &mut *value {
            Value::String(s) => {
                let trimmed = s.trim();
                if trimmed.len() != s.len() {
                    *s = trimmed.to_owned();
                }
                Some(std::mem::take(s))
            }
            Value::Number(n) => Some(n.to_string()),
            Value::Null => None,
            other => {
                problems.push(
                    attr.key,
                    "invalid_attribute",
                    format!("{} is not a string", preview(other)),
                );
                None
            }
        };
        let kept = text.filter(|s| !s.is_empty()).and_then(|mut s| {
            if !(attr.valid)(&s) {
                problems.push(
                    attr.key,
                    "invalid_attribute",
                    format!(
                        "{} contains characters not allowed here",
                        preview(&Value::String(s))
                    ),
                );
                return None;
            }
            match attr.too_long {
                TooLong::Drop if s.chars().count() > attr.max_chars => {
                    problems.push(
                        attr.key,
                        "invalid_attribute",
                        format!("longer than {} characters", attr.max_chars),
                    );
                    None
                }
                TooLong::Cut if truncate_chars(&mut s, attr.max_chars) => {
                    problems.push(
                        attr.key,
                        "trimmed",
                        format!("longer than {} characters", attr.max_chars),
                    );
                    Some(s)
                }
                _ => Some(s),
            }
        });
        match kept {
            Some(s) => *value = Value::String(s),
            None => {
                map.remove(attr.key);
            }
        }
    }
}

/// `fingerprint`: strings kept, numbers and booleans stringified the way Relay does (floats
/// truncated, `True`/`False`), anything else dropped; removed when nothing is left.
pub(super) fn normalize_fingerprint(map: &mut Object, problems: &mut Problems) {
    let Some(value) = map.get_mut("fingerprint") else {
        return;
    };
    let Value::Array(items) = value else {
        if !value.is_null() {
            problems.push(
                "fingerprint",
                "invalid_data",
                format!("{} is not a list", preview(value)),
            );
        }
        map.remove("fingerprint");
        return;
    };
    let mut kept = Vec::with_capacity(items.len());
    for (i, item) in std::mem::take(items).into_iter().enumerate() {
        let part = match item {
            Value::String(_) => Ok(item),
            Value::Number(ref n) if n.is_f64() => n
                .as_f64()
                .filter(|f| f.abs() < 9_007_199_254_740_992.0)
                .map(|f| Value::String((f.trunc() as i64).to_string()))
                .ok_or(item),
            Value::Number(_) | Value::Bool(_) => scalar_to_string(&item, Spelling::Python)
                .map(Value::String)
                .ok_or(item),
            Value::Null | Value::Array(_) | Value::Object(_) => Err(item),
        };
        match part {
            Ok(part) => kept.push(part),
            Err(item) => problems.push(
                format!("fingerprint.{i}"),
                "invalid_data",
                format!("{} dropped", preview(&item)),
            ),
        }
    }
    if kept.is_empty() {
        map.remove("fingerprint");
    } else {
        *items = kept;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::test_util::{kinds, normalize, normalize_with};
    use serde_json::json;

    #[test]
    fn event_id_header_wins_and_is_written_as_simple_hex() {
        let check = |payload_id: Value,
                     header: Option<&str>,
                     expected: &str,
                     expected_problems: &[(&str, &str)]| {
            let (event, problems) = normalize_with(json!({"event_id": payload_id}), |ctx| {
                ctx.header_event_id = header.map(|h| Uuid::parse_str(h).unwrap());
            });
            assert_eq!(event.event_id.simple().to_string(), expected);
            assert_eq!(event.payload["event_id"], expected);
            assert_eq!(kinds(&problems), expected_problems);
        };
        let dashed = "9EC79C33-EC99-42AB-8353-589FCB2E04DC";
        let simple = "9ec79c33ec9942ab8353589fcb2e04dc";
        check(json!(dashed), None, simple, &[]);
        check(json!(simple.to_uppercase()), None, simple, &[]);
        check(
            json!(simple),
            Some("58a73214de0a4169bfd5e5d73f250d1a"),
            "58a73214de0a4169bfd5e5d73f250d1a",
            &[],
        );
        check(json!("garbage"), Some(simple), simple, &[]);
    }

    #[test]
    fn missing_or_invalid_event_id_is_generated() {
        let (event, problems) = normalize(json!({}));
        assert_eq!(event.event_id.get_version_num(), 4);
        assert!(problems.is_empty());
        let (event, problems) =
            normalize(json!({"event_id": "{9ec79c33-ec99-42ab-8353-589fcb2e04dc}"}));
        assert_eq!(event.event_id.get_version_num(), 4);
        assert_eq!(kinds(&problems), [("event_id", "invalid_event_id")]);
        let (_, problems) = normalize(json!({"event_id": 12}));
        assert_eq!(kinds(&problems), [("event_id", "invalid_event_id")]);
    }

    #[test]
    fn levels_accept_names_aliases_and_python_numbers() {
        let check = |input: Value, expected: Level, invalid: bool| {
            let (event, problems) = normalize(json!({"level": input}));
            assert_eq!(event.level, expected, "{input}");
            assert_eq!(event.payload["level"], expected.as_str());
            let expected_problems: &[(&str, &str)] = if invalid {
                &[("level", "invalid_level")]
            } else {
                &[]
            };
            assert_eq!(kinds(&problems), expected_problems, "{input}");
        };
        check(json!("debug"), Level::Debug, false);
        check(json!("INFO"), Level::Info, false);
        check(json!("log"), Level::Info, false);
        check(json!("warn"), Level::Warning, false);
        check(json!(" Warning "), Level::Warning, false);
        check(json!("critical"), Level::Fatal, false);
        check(json!("fatal"), Level::Fatal, false);
        check(json!(10), Level::Debug, false);
        check(json!(20), Level::Info, false);
        check(json!(30.0), Level::Warning, false);
        check(json!(40), Level::Error, false);
        check(json!("50"), Level::Fatal, false);
        check(json!(null), Level::Error, false);
        check(json!("verbose"), Level::Error, true);
        check(json!(25), Level::Error, true);
        check(json!(["error"]), Level::Error, true);
    }

    #[test]
    fn transactions_default_to_info() {
        let (event, _) = normalize(json!({"type": "transaction"}));
        assert_eq!(
            (event.kind, event.level),
            (EventKind::Transaction, Level::Info)
        );
    }

    #[test]
    fn kind_comes_from_type_or_exceptions() {
        let check = |input: Value, expected: EventKind| {
            let (event, _) = normalize(input.clone());
            assert_eq!(event.kind, expected, "{input}");
            assert_eq!(event.payload["type"], expected.as_str());
        };
        check(json!({}), EventKind::Default);
        check(json!({"type": "error"}), EventKind::Default);
        check(json!({"exception": [{"type": "E"}]}), EventKind::Error);
        check(
            json!({"type": "default", "exception": [{"type": "E"}]}),
            EventKind::Error,
        );
        check(
            json!({"exception": [{"module": "only"}]}),
            EventKind::Default,
        );
        check(json!({"type": "csp", "csp": {}}), EventKind::Csp);
        check(json!({"type": "feedback"}), EventKind::Feedback);
        check(json!({"type": "transaction"}), EventKind::Transaction);
    }

    #[test]
    fn platform_defaults_to_other() {
        let check = |input: Value, expected: &str| {
            let (event, _) = normalize(input.clone());
            assert_eq!(event.platform, expected, "{input}");
            assert_eq!(event.payload["platform"], expected);
        };
        check(json!({}), "other");
        check(json!({"platform": ""}), "other");
        check(json!({"platform": 3}), "other");
        check(json!({"platform": " python "}), "python");
    }

    #[test]
    fn attributes_are_trimmed_validated_and_bounded() {
        let check =
            |key: &str, input: Value, expected: Value, expected_problems: &[(&str, &str)]| {
                let (event, problems) = normalize(json!({key: input}));
                assert_eq!(
                    event.payload.get(key).cloned().unwrap_or(Value::Null),
                    expected,
                    "{key}"
                );
                assert_eq!(kinds(&problems), expected_problems, "{key}");
            };
        check("release", json!(" 1.0 "), json!("1.0"), &[]);
        check("release", json!(3), json!("3"), &[]);
        check("release", json!("   "), Value::Null, &[]);
        check(
            "release",
            json!("feature/x"),
            Value::Null,
            &[("release", "invalid_attribute")],
        );
        check(
            "release",
            json!(".."),
            Value::Null,
            &[("release", "invalid_attribute")],
        );
        check(
            "release",
            json!("r".repeat(201)),
            Value::Null,
            &[("release", "invalid_attribute")],
        );
        check(
            "release",
            json!(true),
            Value::Null,
            &[("release", "invalid_attribute")],
        );
        check("dist", json!("abc_1.2-x"), json!("abc_1.2-x"), &[]);
        check(
            "dist",
            json!("a b"),
            Value::Null,
            &[("dist", "invalid_attribute")],
        );
        check(
            "environment",
            json!(" production "),
            json!("production"),
            &[],
        );
        check(
            "environment",
            json!("e".repeat(65)),
            Value::Null,
            &[("environment", "invalid_attribute")],
        );
        check(
            "logger",
            json!("a\nb"),
            Value::Null,
            &[("logger", "invalid_attribute")],
        );
        check(
            "logger",
            json!("l".repeat(70)),
            json!(format!("{}...", "l".repeat(61))),
            &[("logger", "trimmed")],
        );
        check("server_name", json!("host-1"), json!("host-1"), &[]);
        check(
            "transaction",
            json!("/users/{id}"),
            json!("/users/{id}"),
            &[],
        );

        let (event, _) = normalize(
            json!({"release": "r@1", "dist": "7", "environment": "prod", "server_name": "h", "logger": "app", "transaction": "t"}),
        );
        assert_eq!(
            (
                event.release,
                event.dist,
                event.environment,
                event.server_name,
                event.logger,
                event.transaction
            ),
            (
                Some("r@1".into()),
                Some("7".into()),
                Some("prod".into()),
                Some("h".into()),
                Some("app".into()),
                Some("t".into())
            )
        );
    }

    #[test]
    fn fingerprint_coerces_scalars_and_drops_the_rest() {
        let check = |input: Value, expected: Option<Vec<&str>>, n_problems: usize| {
            let (event, problems) = normalize(json!({"fingerprint": input}));
            assert_eq!(
                event.fingerprint,
                expected.map(|v| v.into_iter().map(String::from).collect::<Vec<_>>()),
                "{input}"
            );
            assert_eq!(problems.len(), n_problems, "{input}");
        };
        check(
            json!(["{{ default }}", "a"]),
            Some(vec!["{{ default }}", "a"]),
            0,
        );
        check(
            json!([1, 3.5, true, false, -2]),
            Some(vec!["1", "3", "True", "False", "-2"]),
            0,
        );
        check(json!(["a", null, {"x": 1}, [1]]), Some(vec!["a"]), 3);
        check(json!([null]), None, 1);
        check(json!("not-a-list"), None, 1);
        check(json!(null), None, 0);
    }

    #[test]
    fn legacy_interface_names_are_moved() {
        let (event, _) = normalize(json!({
            "sentry.interfaces.Exception": {"values": [{"type": "E", "value": "v"}]},
            "sentry.interfaces.User": {"id": 1},
            "sentry.interfaces.Http": {"url": "http://x/"},
            "sentry.interfaces.Message": {"message": "m"},
        }));
        assert_eq!(event.exceptions[0].ty.as_deref(), Some("E"));
        assert_eq!(event.user.unwrap().id.as_deref(), Some("1"));
        assert_eq!(event.request_url.as_deref(), Some("http://x/"));
        assert_eq!(event.message.unwrap().formatted.as_deref(), Some("m"));
        assert!(event.payload.get("sentry.interfaces.User").is_none());

        let (event, _) =
            normalize(json!({"user": {"id": "new"}, "sentry.interfaces.User": {"id": "old"}}));
        assert_eq!(event.user.unwrap().id.as_deref(), Some("new"));
    }
}
