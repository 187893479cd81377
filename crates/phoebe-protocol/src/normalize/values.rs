//! The list interfaces: `exception`, `threads` and `breadcrumbs` in their canonical
//! `{"values": [...]}` form, and the stack traces inside them (plus the deprecated top-level
//! `stacktrace`). Exceptions get their type/value repaired; frames get lenient line numbers.

use serde_json::Value;

use super::lenient::{preview, to_text, to_u64};
use super::trim::truncate_chars;
use super::{NormalizeLimits, Object, Problems};

/// Canonicalizes the list interfaces and everything inside them.
pub(super) fn normalize_interfaces(
    map: &mut Object,
    limits: &NormalizeLimits,
    problems: &mut Problems,
) {
    if let Some(exceptions) = canonical_values(map, "exception", problems) {
        let mut i = 0;
        exceptions.retain_mut(|exc| {
            let keep = exc
                .as_object_mut()
                .is_some_and(|exc| normalize_exception(exc, i, limits, problems));
            i += 1;
            keep
        });
        if exceptions.is_empty() {
            map.remove("exception");
        }
    }
    if let Some(threads) = canonical_values(map, "threads", problems) {
        for (i, thread) in threads.iter_mut().enumerate() {
            if let Value::Object(thread) = thread {
                normalize_stacktrace_at(
                    thread,
                    "stacktrace",
                    &|| format!("threads.values.{i}"),
                    limits,
                    problems,
                );
                for flag in ["crashed", "current", "main"] {
                    remove_unless(thread, flag, Value::is_boolean);
                }
            }
        }
    }
    if let Some(crumbs) = canonical_values(map, "breadcrumbs", problems) {
        if crumbs.len() > limits.max_breadcrumbs {
            let n_dropped = crumbs.len() - limits.max_breadcrumbs;
            crumbs.drain(..n_dropped);
            problems.push(
                "breadcrumbs.values",
                "trimmed",
                format!(
                    "kept the last {} breadcrumbs, dropped {n_dropped}",
                    limits.max_breadcrumbs
                ),
            );
        }
    }
    normalize_stacktrace_at(map, "stacktrace", &String::new, limits, problems);
    move_top_level_stacktrace(map);
}

/// Brings `map[key]` into the form `{"values": [objects...], other keys}`: accepts a bare array,
/// a wrapper object, a single item object, and treats `null`, `{}` and empty lists as absent
/// (Relay's `Values<T>`). Non-object items are dropped. Returns the list when one is left.
fn canonical_values<'m>(
    map: &'m mut Object,
    key: &str,
    problems: &mut Problems,
) -> Option<&'m mut Vec<Value>> {
    let raw = map.remove(key)?;
    let (mut wrapper, items) = match raw {
        Value::Null => return None,
        Value::Array(items) => (Object::new(), items),
        Value::Object(mut obj) => match obj.remove("values") {
            Some(Value::Array(items)) => (obj, items),
            Some(Value::Null) => (obj, Vec::new()),
            Some(item @ Value::Object(_)) => (obj, vec![item]),
            Some(other) => {
                problems.push(
                    format!("{key}.values"),
                    "invalid_data",
                    format!("{} is not a list", preview(&other)),
                );
                return None;
            }
            None if obj.is_empty() => return None,
            None => (Object::new(), vec![Value::Object(obj)]),
        },
        other => {
            problems.push(
                key,
                "invalid_data",
                format!("{} is not a list or object", preview(&other)),
            );
            return None;
        }
    };
    let mut kept = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        match item {
            Value::Object(_) => kept.push(item),
            Value::Null => {}
            other => problems.push(
                format!("{key}.values.{i}"),
                "invalid_data",
                format!("{} is not an object", preview(&other)),
            ),
        }
    }
    if kept.is_empty() {
        return None;
    }
    wrapper.insert("values".to_owned(), Value::Array(kept));
    map.insert(key.to_owned(), Value::Object(wrapper));
    match map.get_mut(key).and_then(|w| w.get_mut("values")) {
        Some(Value::Array(items)) => Some(items),
        _ => None,
    }
}

/// Repairs one exception; returns `false` when it has neither type nor value and must go.
fn normalize_exception(
    exc: &mut Object,
    i: usize,
    limits: &NormalizeLimits,
    problems: &mut Problems,
) -> bool {
    let path = || format!("exception.values.{i}");
    let mut ty = exc
        .remove("type")
        .and_then(|v| non_empty(to_text_opt(&v).map(|s| s.trim().to_owned())));
    let mut value = exc.remove("value").and_then(|v| non_empty(to_text_opt(&v)));
    if ty.is_none() {
        if let Some((split_ty, rest)) = value.as_deref().and_then(split_type_value) {
            let rest = non_empty(Some(rest.to_owned()));
            ty = Some(split_ty.to_owned());
            value = rest;
        }
    }
    if ty.is_none() && value.is_none() {
        problems.push(
            path(),
            "invalid_exception",
            "exception has neither type nor value; dropped",
        );
        return false;
    }
    if let Some(mut ty) = ty {
        if truncate_chars(&mut ty, 256) {
            problems.push(
                format!("{}.type", path()),
                "trimmed",
                "longer than 256 characters",
            );
        }
        exc.insert("type".to_owned(), Value::String(ty));
    }
    if let Some(mut value) = value {
        if truncate_chars(&mut value, limits.max_message_chars) {
            problems.push(
                format!("{}.value", path()),
                "trimmed",
                format!("longer than {} characters", limits.max_message_chars),
            );
        }
        exc.insert("value".to_owned(), Value::String(value));
    }
    remove_unless(exc, "module", Value::is_string);
    normalize_mechanism(exc, &path, problems);
    normalize_stacktrace_at(exc, "stacktrace", &path, limits, problems);
    normalize_stacktrace_at(exc, "raw_stacktrace", &path, limits, problems);
    true
}

/// Strings as they are, other non-null values as JSON text (`"value": 42` happens).
fn to_text_opt(value: &Value) -> Option<String> {
    (!value.is_null()).then(|| to_text(value))
}

fn non_empty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.trim().is_empty())
}

/// Splits `"ValueError: bad thing"` into type and value, as Relay does for exceptions sent
/// without a type. The colon must be followed by whitespace or the end, so URLs
/// (`"http://..."`) stay whole.
fn split_type_value(value: &str) -> Option<(&str, &str)> {
    let (ty, rest) = value.split_once(':')?;
    let is_word = !ty.is_empty() && ty.chars().all(|c| c.is_alphanumeric() || c == '_');
    (is_word && (rest.is_empty() || rest.starts_with(char::is_whitespace)))
        .then(|| (ty, rest.trim()))
}

fn normalize_mechanism(exc: &mut Object, path: &dyn Fn() -> String, problems: &mut Problems) {
    let Some(value) = exc.get_mut("mechanism") else {
        return;
    };
    let Value::Object(mechanism) = value else {
        if !value.is_null() {
            problems.push(
                format!("{}.mechanism", path()),
                "invalid_data",
                format!("{} is not an object", preview(value)),
            );
        }
        exc.remove("mechanism");
        return;
    };
    if mechanism
        .get("type")
        .and_then(Value::as_str)
        .is_none_or(|t| t.trim().is_empty())
    {
        // Relay requires a type; `generic` is what SDKs use when they have nothing better.
        mechanism.insert("type".to_owned(), Value::String("generic".to_owned()));
    }
    for flag in ["handled", "synthetic", "is_exception_group"] {
        remove_unless(mechanism, flag, Value::is_boolean);
    }
    for id in ["exception_id", "parent_id"] {
        if let Some(v) = mechanism.get_mut(id) {
            match to_u64(v) {
                Some(n) => *v = Value::from(n),
                None => {
                    mechanism.remove(id);
                }
            }
        }
    }
}

/// Normalizes `obj[key]` as a stack trace, removing it when it is not one or has no frames.
fn normalize_stacktrace_at(
    obj: &mut Object,
    key: &str,
    path: &dyn Fn() -> String,
    limits: &NormalizeLimits,
    problems: &mut Problems,
) {
    let Some(st) = obj.get_mut(key) else { return };
    let st_path = || {
        let parent = path();
        if parent.is_empty() {
            key.to_owned()
        } else {
            format!("{parent}.{key}")
        }
    };
    let keep = match st {
        Value::Object(st) => normalize_stacktrace(st, &st_path, limits, problems),
        Value::Null => false,
        other => {
            problems.push(
                st_path(),
                "invalid_data",
                format!("{} is not a stack trace", preview(other)),
            );
            false
        }
    };
    if !keep {
        obj.remove(key);
    }
}

/// Keeps object frames, the innermost `max_frames` of them, with lenient line numbers. Returns
/// `false` when no frame is left.
fn normalize_stacktrace(
    st: &mut Object,
    path: &dyn Fn() -> String,
    limits: &NormalizeLimits,
    problems: &mut Problems,
) -> bool {
    let Some(Value::Array(frames)) = st.get_mut("frames") else {
        return false;
    };
    frames.retain(Value::is_object);
    if frames.len() > limits.max_frames {
        // The innermost frames (last) say where it crashed; the outermost are framework entry.
        let n_dropped = frames.len() - limits.max_frames;
        frames.drain(..n_dropped);
        problems.push(
            format!("{}.frames", path()),
            "trimmed",
            format!(
                "kept the last {} frames, dropped {n_dropped}",
                limits.max_frames
            ),
        );
    }
    for (j, frame) in frames.iter_mut().enumerate() {
        let Value::Object(frame) = frame else {
            continue;
        };
        for key in ["lineno", "colno"] {
            let Some(v) = frame.get_mut(key) else {
                continue;
            };
            if v.is_u64() {
                continue;
            }
            match to_u64(v) {
                Some(n) => *v = Value::from(n),
                None => {
                    if !v.is_null() {
                        problems.push(
                            format!("{}.frames.{j}.{key}", path()),
                            "invalid_data",
                            format!("{} is not a line number", preview(v)),
                        );
                    }
                    frame.remove(key);
                }
            }
        }
        remove_unless(frame, "in_app", Value::is_boolean);
    }
    !frames.is_empty()
}

/// The deprecated top-level `stacktrace` belongs to the exception when there is exactly one and
/// it has none (Sentry's legacy normalization).
fn move_top_level_stacktrace(map: &mut Object) {
    if !map.contains_key("stacktrace") {
        return;
    }
    let exceptions = map
        .get("exception")
        .and_then(|e| e.get("values"))
        .and_then(Value::as_array);
    if !matches!(exceptions.map(Vec::as_slice), Some([Value::Object(exc)]) if !exc.contains_key("stacktrace"))
    {
        return;
    }
    let Some(st) = map.remove("stacktrace") else {
        return;
    };
    if let Some(Value::Object(exc)) = map
        .get_mut("exception")
        .and_then(|e| e.get_mut("values"))
        .and_then(|v| v.get_mut(0))
    {
        exc.insert("stacktrace".to_owned(), st);
    }
}

/// Removes `obj[key]` unless it passes `check` (a `null` or a string where a bool belongs).
fn remove_unless(obj: &mut Object, key: &str, check: fn(&Value) -> bool) {
    if obj.get(key).is_some_and(|v| !check(v)) {
        obj.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::test_util::{kinds, normalize};
    use serde_json::json;

    /// Normalizes `{key: input}` and compares the canonical `payload[key]` (null when removed).
    fn check(key: &str, input: Value, expected: Value) {
        let (event, _) = normalize(json!({key: input}));
        assert_eq!(
            event.payload.get(key).cloned().unwrap_or(Value::Null),
            expected,
            "{key}: {input}"
        );
    }

    #[test]
    fn values_wrappers_accept_every_lenient_shape() {
        for key in ["exception", "threads", "breadcrumbs"] {
            let item = json!({"type": "T", "value": "v"});
            let canonical = json!({"values": [item]});
            check(key, json!([item]), canonical.clone());
            check(key, canonical.clone(), canonical.clone());
            check(key, item.clone(), canonical.clone());
            check(key, json!({"values": item}), canonical.clone());
            check(
                key,
                json!({"values": [item], "extra_key": 1}),
                json!({"values": [item], "extra_key": 1}),
            );
            check(key, json!({}), Value::Null);
            check(key, json!(null), Value::Null);
            check(key, json!([]), Value::Null);
            check(key, json!({"values": null}), Value::Null);
            check(key, json!([null, 5, item]), canonical.clone());
            check(key, json!("nope"), Value::Null);
        }
    }

    /// Normalizes an `exception` list; compares `(type, value)` of what is left and the problems.
    fn check_exceptions(
        input: Value,
        expected: &[(Option<&str>, Option<&str>)],
        expected_problems: &[(&str, &str)],
    ) {
        let (event, problems) = normalize(json!({"exception": input}));
        let got: Vec<(Option<&str>, Option<&str>)> = event
            .exceptions
            .iter()
            .map(|e| (e.ty.as_deref(), e.value.as_deref()))
            .collect();
        assert_eq!(got, expected, "{input}");
        assert_eq!(kinds(&problems), expected_problems, "{input}");
    }

    #[test]
    fn exception_type_is_split_out_of_the_value() {
        check_exceptions(
            json!([{"value": "ValueError: bad input"}]),
            &[(Some("ValueError"), Some("bad input"))],
            &[],
        );
        check_exceptions(
            json!([{"type": "", "value": "KeyError:"}]),
            &[(Some("KeyError"), None)],
            &[],
        );
        check_exceptions(
            json!([{"value": "http://example.com failed"}]),
            &[(None, Some("http://example.com failed"))],
            &[],
        );
        check_exceptions(
            json!([{"value": "two words: no"}]),
            &[(None, Some("two words: no"))],
            &[],
        );
        check_exceptions(
            json!([{"type": "E", "value": "Other: kept"}]),
            &[(Some("E"), Some("Other: kept"))],
            &[],
        );
    }

    #[test]
    fn exception_values_are_stringified_and_empty_ones_dropped() {
        check_exceptions(
            json!([{"type": "E", "value": 42}]),
            &[(Some("E"), Some("42"))],
            &[],
        );
        check_exceptions(
            json!([{"type": "E", "value": {"a": 1}}]),
            &[(Some("E"), Some(r#"{"a":1}"#))],
            &[],
        );
        check_exceptions(json!([{"type": 7}]), &[(Some("7"), None)], &[]);
        check_exceptions(
            json!([{"type": "", "value": ""}, {"stacktrace": {"frames": [{}]}}, {"type": " E "}]),
            &[(Some("E"), None)],
            &[
                ("exception.values.0", "invalid_exception"),
                ("exception.values.1", "invalid_exception"),
            ],
        );
    }

    #[test]
    fn single_exception_takes_the_top_level_stacktrace() {
        let st = json!({"frames": [{"function": "main"}]});
        let (event, _) = normalize(json!({"exception": {"type": "E"}, "stacktrace": st}));
        assert_eq!(event.payload["exception"]["values"][0]["stacktrace"], st);
        assert!(event.payload.get("stacktrace").is_none());
        assert_eq!(
            event.exceptions[0].stacktrace.as_ref().unwrap().frames[0]
                .function
                .as_deref(),
            Some("main")
        );

        // Two exceptions: nobody knows whose it is, so it stays.
        let (event, _) =
            normalize(json!({"exception": [{"type": "A"}, {"type": "B"}], "stacktrace": st}));
        assert_eq!(event.payload["stacktrace"], st);
        // The exception has its own.
        let own = json!({"frames": [{"function": "own"}]});
        let (event, _) =
            normalize(json!({"exception": [{"type": "A", "stacktrace": own}], "stacktrace": st}));
        assert_eq!(event.payload["exception"]["values"][0]["stacktrace"], own);
        assert_eq!(event.payload["stacktrace"], st);
    }

    #[test]
    fn frames_get_lenient_line_numbers_and_a_hard_limit() {
        let (event, problems) = normalize(
            json!({"exception": [{"type": "E", "stacktrace": {"frames": [
                {"lineno": "12", "colno": 3.0},
                {"lineno": 7.9, "colno": "x", "in_app": "yes"},
                {"lineno": -1, "colno": null, "in_app": true},
                "not a frame",
            ]}}]}),
        );
        assert_eq!(
            event.payload["exception"]["values"][0]["stacktrace"]["frames"],
            json!([{"lineno": 12, "colno": 3}, {"lineno": 7}, {"in_app": true}])
        );
        assert_eq!(
            kinds(&problems),
            [
                (
                    "exception.values.0.stacktrace.frames.1.colno",
                    "invalid_data"
                ),
                (
                    "exception.values.0.stacktrace.frames.2.lineno",
                    "invalid_data"
                )
            ]
        );

        let frames: Vec<Value> = (0..300).map(|n| json!({"lineno": n})).collect();
        let (event, problems) =
            normalize(json!({"exception": [{"type": "E", "stacktrace": {"frames": frames}}]}));
        let kept = &event.exceptions[0].stacktrace.as_ref().unwrap().frames;
        assert_eq!(
            (kept.len(), kept[0].lineno, kept[249].lineno),
            (250, Some(50), Some(299))
        );
        assert_eq!(
            kinds(&problems),
            [("exception.values.0.stacktrace.frames", "trimmed")]
        );
    }

    #[test]
    fn stacktraces_without_frames_are_removed() {
        let (event, problems) = normalize(
            json!({"exception": [{"type": "E", "stacktrace": {"frames": []}, "raw_stacktrace": "x"}]}),
        );
        assert_eq!(
            event.payload["exception"]["values"][0],
            json!({"type": "E"})
        );
        assert_eq!(
            kinds(&problems),
            [("exception.values.0.raw_stacktrace", "invalid_data")]
        );
    }

    #[test]
    fn mechanism_is_repaired() {
        let (event, _) = normalize(
            json!({"exception": [{"type": "E", "mechanism": {"handled": "no", "synthetic": true, "exception_id": "3", "parent_id": -1}}]}),
        );
        assert_eq!(
            event.payload["exception"]["values"][0]["mechanism"],
            json!({"type": "generic", "synthetic": true, "exception_id": 3})
        );
        let (event, problems) =
            normalize(json!({"exception": [{"type": "E", "mechanism": "generic"}]}));
        assert!(event.exceptions[0].mechanism.is_none());
        assert_eq!(
            kinds(&problems),
            [("exception.values.0.mechanism", "invalid_data")]
        );
    }

    #[test]
    fn breadcrumbs_keep_the_last_hundred() {
        let crumbs: Vec<Value> = (0..120)
            .map(|n| json!({"message": n.to_string()}))
            .collect();
        let (event, problems) = normalize(json!({"breadcrumbs": crumbs}));
        let kept = event.payload["breadcrumbs"]["values"].as_array().unwrap();
        assert_eq!(
            (kept.len(), &kept[0]["message"], &kept[99]["message"]),
            (100, &json!("20"), &json!("119"))
        );
        assert_eq!(kinds(&problems), [("breadcrumbs.values", "trimmed")]);
    }
}
