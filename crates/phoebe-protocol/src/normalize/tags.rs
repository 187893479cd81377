//! Tags: the client's tags (dict or list of pairs) validated into the canonical `[[k, v], ...]`
//! payload form, and the derived tags the UI filters on, appended in the typed view.

use std::collections::HashSet;

use serde_json::Value;

use super::lenient::{preview, scalar_to_string, Spelling};
use super::trim::truncate_chars;
use super::{Object, Problems};
use crate::event::{Exception, Level, User};

const MAX_KEY_CHARS: usize = 200;
const MAX_VALUE_CHARS: usize = 200;

/// Tags Relay removes from client input because the server derives them.
const SERVER_TAGS: &[&str] = &["release", "dist", "user", "filename", "function"];

/// Validates the client's tags, writes them back as `[[k, v], ...]` (removed when none are
/// left), moves an `environment` tag into the `environment` field when that is missing, and
/// returns the kept pairs.
pub(super) fn normalize_tags(map: &mut Object, problems: &mut Problems) -> Vec<(String, String)> {
    let Some(raw) = map.remove("tags") else {
        return Vec::new();
    };
    let entries: Vec<Result<(Value, Value), Value>> = match raw {
        Value::Object(dict) => dict
            .into_iter()
            .map(|(k, v)| Ok((Value::String(k), v)))
            .collect(),
        Value::Array(items) => items.into_iter().map(into_pair).collect(),
        Value::Null => Vec::new(),
        other => {
            problems.push(
                "tags",
                "invalid_data",
                format!("{} is not an object or a list of pairs", preview(&other)),
            );
            Vec::new()
        }
    };

    let mut pairs = Vec::with_capacity(entries.len());
    let mut seen = HashSet::with_capacity(entries.len());
    let mut environment = None;
    for (i, entry) in entries.into_iter().enumerate() {
        let path = || format!("tags.{i}");
        let (key, value) = match entry {
            Ok(pair) => pair,
            Err(other) => {
                problems.push(
                    path(),
                    "invalid_data",
                    format!("{} is not a [key, value] pair; dropped", preview(&other)),
                );
                continue;
            }
        };
        let Some(key) = tag_key(&key) else {
            problems.push(
                path(),
                "invalid_tag_key",
                format!("{} is not a valid tag key; dropped", preview(&key)),
            );
            continue;
        };
        if value.is_null() {
            continue;
        }
        let Some(value) = tag_value(&value, || {
            problems.push(
                path(),
                "trimmed",
                format!("value longer than {MAX_VALUE_CHARS} characters"),
            )
        }) else {
            problems.push(
                path(),
                "invalid_tag_value",
                format!("{} is not a valid tag value; dropped", preview(&value)),
            );
            continue;
        };
        if key == "environment" {
            environment.get_or_insert(value);
            continue;
        }
        if SERVER_TAGS.contains(&key.as_str()) || !seen.insert(key.clone()) {
            continue;
        }
        pairs.push((key, value));
    }

    if let Some(env) = environment {
        if map.get("environment").is_none_or(Value::is_null) {
            map.insert("environment".to_owned(), Value::String(env));
        }
    }
    if !pairs.is_empty() {
        let canonical = pairs
            .iter()
            .map(|(k, v)| Value::Array(vec![Value::String(k.clone()), Value::String(v.clone())]))
            .collect();
        map.insert("tags".to_owned(), Value::Array(canonical));
    }
    pairs
}

/// A list entry: `[k, v]`, or `{"key": k, "value": v}` as Sentry's own API writes tags.
fn into_pair(item: Value) -> Result<(Value, Value), Value> {
    match item {
        Value::Array(pair) if pair.len() == 2 => {
            let mut pair = pair.into_iter();
            let key = pair.next().unwrap_or(Value::Null);
            let value = pair.next().unwrap_or(Value::Null);
            Ok((key, value))
        }
        Value::Object(mut obj) if obj.contains_key("key") => {
            let key = obj.remove("key").unwrap_or(Value::Null);
            Ok((key, obj.remove("value").unwrap_or(Value::Null)))
        }
        other => Err(other),
    }
}

/// Relay's tag key rules: trimmed, spaces to `-`, at most 200 of `a-zA-Z0-9_.:-`.
fn tag_key(key: &Value) -> Option<String> {
    let key = scalar_to_string(key, Spelling::Python).filter(|_| !key.is_null())?;
    let key = key.trim().replace(' ', "-");
    let valid = !key.is_empty()
        && key.len() <= MAX_KEY_CHARS
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'));
    valid.then_some(key)
}

/// Tag values: scalars stringified (`True`/`False`), trimmed, non-empty, no newline, cut to 200
/// characters (calling `on_trim`).
fn tag_value(value: &Value, on_trim: impl FnOnce()) -> Option<String> {
    let mut value = scalar_to_string(value, Spelling::Python)?;
    let trimmed = value.trim();
    if trimmed.len() != value.len() {
        value = trimmed.to_owned();
    }
    if value.is_empty() || value.contains('\n') {
        return None;
    }
    if truncate_chars(&mut value, MAX_VALUE_CHARS) {
        on_trim();
    }
    Some(value)
}

/// What the derived tags are computed from.
pub(super) struct Derived<'a> {
    pub(super) level: Level,
    pub(super) environment: Option<&'a str>,
    pub(super) release: Option<&'a str>,
    pub(super) dist: Option<&'a str>,
    pub(super) server_name: Option<&'a str>,
    pub(super) transaction: Option<&'a str>,
    pub(super) logger: Option<&'a str>,
    pub(super) url: Option<&'a str>,
    pub(super) contexts: Option<&'a Object>,
    pub(super) user: Option<&'a User>,
    pub(super) main_exception: Option<&'a Exception>,
}

/// Appends the derived tags (protocol.md §6.4 rule 8) to the client's, skipping keys the client
/// already set.
pub(super) fn append_derived(tags: &mut Vec<(String, String)>, derived: &Derived<'_>) {
    let mut add = |key: &str, value: Option<String>| {
        let Some(value) = value.and_then(clean_derived) else {
            return;
        };
        if !tags.iter().any(|(k, _)| k == key) {
            tags.push((key.to_owned(), value));
        }
    };
    add("level", Some(derived.level.as_str().to_owned()));
    add("environment", derived.environment.map(String::from));
    add("release", derived.release.map(String::from));
    add("dist", derived.dist.map(String::from));
    add("server_name", derived.server_name.map(String::from));
    add("transaction", derived.transaction.map(String::from));
    add("logger", derived.logger.map(String::from));
    add("url", derived.url.map(String::from));
    for name in ["browser", "os", "runtime"] {
        let context = derived.contexts.and_then(|c| c.get(name));
        let ctx_name = context
            .and_then(|c| c.get("name"))
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|n| !n.is_empty());
        let version = context
            .and_then(|c| c.get("version"))
            .and_then(|v| scalar_to_string(v, Spelling::Json).filter(|_| !v.is_null()));
        let full =
            ctx_name.map(
                |n| match version.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
                    Some(v) => format!("{n} {v}"),
                    None => n.to_owned(),
                },
            );
        add(name, full);
        add(&format!("{name}.name"), ctx_name.map(String::from));
    }
    let device = derived.contexts.and_then(|c| c.get("device"));
    let model = ["model", "family"].iter().find_map(|k| {
        device
            .and_then(|d| d.get(*k))
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
    });
    add("device", model.map(String::from));
    add("user", derived.user.and_then(User::tag_value));
    let mechanism = derived.main_exception.and_then(|e| e.mechanism.as_ref());
    add(
        "handled",
        mechanism
            .and_then(|m| m.handled)
            .map(|h| if h { "yes" } else { "no" }.to_owned()),
    );
    add("mechanism", mechanism.map(|m| m.ty.clone()));
}

/// Derived values obey the value rules too, but are repaired rather than dropped: node sends
/// `os.version` as `"12.11\n"`.
fn clean_derived(value: String) -> Option<String> {
    let mut value = if value.contains(['\n', '\r']) {
        value.replace(['\n', '\r'], " ")
    } else {
        value
    };
    let trimmed = value.trim();
    if trimmed.len() != value.len() {
        value = trimmed.to_owned();
    }
    truncate_chars(&mut value, MAX_VALUE_CHARS);
    (!value.is_empty()).then_some(value)
}

#[cfg(test)]
mod tests {
    use crate::normalize::test_util::{kinds, normalize};
    use serde_json::{json, Value};

    /// Normalizes `{"tags": input}` plus `extra` fields; compares the payload's canonical tags,
    /// the typed tags and the problems.
    fn check(input: Value, expected_payload: Value, expected_problems: &[(&str, &str)]) {
        let (event, problems) = normalize(json!({"tags": input}));
        assert_eq!(
            event.payload.get("tags").cloned().unwrap_or(Value::Null),
            expected_payload,
            "{input}"
        );
        let client: Vec<(String, String)> = event
            .tags
            .iter()
            .filter(|(k, _)| k != "level")
            .cloned()
            .collect();
        let expected_client: Vec<(String, String)> = expected_payload
            .as_array()
            .map(|pairs| {
                pairs
                    .iter()
                    .map(|p| {
                        (
                            p[0].as_str().unwrap().to_owned(),
                            p[1].as_str().unwrap().to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        assert_eq!(client, expected_client, "{input}");
        assert_eq!(kinds(&problems), expected_problems, "{input}");
    }

    #[test]
    fn dict_and_pair_forms_become_pairs() {
        check(
            json!({"b": "2", "a": "1"}),
            json!([["a", "1"], ["b", "2"]]),
            &[],
        );
        check(
            json!([["b", "2"], ["a", "1"]]),
            json!([["b", "2"], ["a", "1"]]),
            &[],
        );
        check(
            json!([{"key": "k", "value": "v"}]),
            json!([["k", "v"]]),
            &[],
        );
        check(json!({}), Value::Null, &[]);
        check(json!(null), Value::Null, &[]);
        check(json!("a:b"), Value::Null, &[("tags", "invalid_data")]);
        check(
            json!([["only-key"], "x", ["k", "v"]]),
            json!([["k", "v"]]),
            &[("tags.0", "invalid_data"), ("tags.1", "invalid_data")],
        );
    }

    #[test]
    fn values_are_stringified_python_style() {
        check(
            json!([
                ["bool", true],
                ["no", false],
                ["int", 3],
                ["float", 1.5],
                ["null", null],
                ["list", [1]]
            ]),
            json!([
                ["bool", "True"],
                ["no", "False"],
                ["int", "3"],
                ["float", "1.5"]
            ]),
            &[("tags.5", "invalid_tag_value")],
        );
        check(
            json!([[1, "one"], [true, "t"]]),
            json!([["1", "one"], ["True", "t"]]),
            &[],
        );
    }

    #[test]
    fn keys_are_cleaned_and_bad_ones_dropped() {
        check(json!({" my key ": "v"}), json!([["my-key", "v"]]), &[]);
        check(
            json!({"ok.key:part_1-x": "v"}),
            json!([["ok.key:part_1-x", "v"]]),
            &[],
        );
        check(
            json!({"bad/key": "v", "ünï": "v", "": "v"}),
            Value::Null,
            &[
                ("tags.0", "invalid_tag_key"),
                ("tags.1", "invalid_tag_key"),
                ("tags.2", "invalid_tag_key"),
            ],
        );
        check(
            json!({"k".repeat(201): "v"}),
            Value::Null,
            &[("tags.0", "invalid_tag_key")],
        );
        check(
            json!({"k".repeat(200): "v"}),
            json!([["k".repeat(200), "v"]]),
            &[],
        );
    }

    #[test]
    fn values_are_trimmed_bounded_and_single_line() {
        check(json!({"a": "  v  "}), json!([["a", "v"]]), &[]);
        check(
            json!({"a": "two\nlines", "b": "  "}),
            Value::Null,
            &[
                ("tags.0", "invalid_tag_value"),
                ("tags.1", "invalid_tag_value"),
            ],
        );
        check(
            json!({"a": "v".repeat(201)}),
            json!([["a", format!("{}...", "v".repeat(197))]]),
            &[("tags.0", "trimmed")],
        );
    }

    #[test]
    fn duplicates_and_server_tags_are_removed() {
        check(
            json!([["k", "first"], ["k", "second"], [" k ", "third"]]),
            json!([["k", "first"]]),
            &[],
        );
        check(
            json!({"release": "1", "dist": "2", "user": "u", "filename": "f", "function": "g", "keep": "y"}),
            json!([["keep", "y"]]),
            &[],
        );
    }

    #[test]
    fn environment_tag_becomes_the_environment() {
        let (event, _) = normalize(json!({"tags": {"environment": "staging", "a": "b"}}));
        assert_eq!(event.environment.as_deref(), Some("staging"));
        assert_eq!(event.payload["environment"], "staging");
        assert_eq!(event.payload["tags"], json!([["a", "b"]]));
        let (event, _) =
            normalize(json!({"environment": "prod", "tags": {"environment": "staging"}}));
        assert_eq!(event.environment.as_deref(), Some("prod"));
    }

    #[test]
    fn derived_tags_follow_client_tags() {
        let (event, _) = normalize(json!({
            "level": "warning",
            "tags": {"level": "custom", "zone": "eu"},
            "environment": "prod", "release": "app@1", "dist": "7", "server_name": "web-1",
            "transaction": "/checkout", "logger": "app.payments",
            "request": {"url": "https://shop.example/checkout?step=2"},
            "contexts": {
                "browser": {"name": "Chrome", "version": "120.0"},
                "os": {"name": "Debian", "version": "12.11\n"},
                "runtime": {"name": "CPython"},
                "device": {"family": "Pixel", "model": "Pixel 8"},
            },
            "user": {"email": "ada@example.invalid"},
            "exception": [{"type": "Cause"}, {"type": "E", "mechanism": {"type": "onerror", "handled": false}}],
        }));
        let tags: Vec<(&str, &str)> = event
            .tags
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            tags,
            [
                ("level", "custom"),
                ("zone", "eu"),
                ("environment", "prod"),
                ("release", "app@1"),
                ("dist", "7"),
                ("server_name", "web-1"),
                ("transaction", "/checkout"),
                ("logger", "app.payments"),
                ("url", "https://shop.example/checkout?step=2"),
                ("browser", "Chrome 120.0"),
                ("browser.name", "Chrome"),
                ("os", "Debian 12.11"),
                ("os.name", "Debian"),
                ("runtime", "CPython"),
                ("runtime.name", "CPython"),
                ("device", "Pixel 8"),
                ("user", "email:ada@example.invalid"),
                ("handled", "no"),
                ("mechanism", "onerror"),
            ]
        );
    }

    #[test]
    fn minimal_event_has_only_the_level_tag() {
        let (event, problems) = normalize(json!({}));
        assert_eq!(event.tags, [("level".to_owned(), "error".to_owned())]);
        assert!(problems.is_empty());
    }
}
