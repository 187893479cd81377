//! The message: `logentry` and the legacy top-level `message` (string or object) merged into one
//! `logentry` object, and formatted server-side from `message` + `params` when the SDK did not.
//! Formatting is best effort: on any mismatch the raw template is kept.

use serde_json::Value;

use super::lenient::{scalar_to_string, to_text, Spelling};
use super::trim::truncate_chars;
use super::{NormalizeLimits, Object, Problems};

/// Python SDKs format `%s` of `True`/`None` the Python way; everyone else the JSON way.
pub(super) fn spelling_for(platform: &str) -> Spelling {
    if platform == "python" {
        Spelling::Python
    } else {
        Spelling::Json
    }
}

/// Merges `message` into `logentry` and leaves `logentry` as `{message?, formatted, params?}`
/// (other keys kept), or removes both when there is no text.
pub(super) fn normalize_logentry(
    map: &mut Object,
    spelling: Spelling,
    limits: &NormalizeLimits,
    problems: &mut Problems,
) {
    let legacy = map.remove("message");
    let mut entry = map.remove("logentry").and_then(coerce_entry);
    match (legacy, &mut entry) {
        (None, _) => {}
        (Some(legacy), None) => entry = coerce_entry(legacy),
        (Some(Value::String(s)), Some(entry)) => {
            // Sentry's legacy rule: with both, the string is the formatted text, unless it
            // merely repeats the template (raven sends the template in both places).
            let repeats_template = entry.get("message").and_then(Value::as_str) == Some(s.as_str());
            let has_formatted = entry
                .get("formatted")
                .and_then(Value::as_str)
                .is_some_and(|f| !f.is_empty());
            if !s.is_empty() && !repeats_template && !has_formatted {
                entry.insert("formatted".to_owned(), Value::String(s));
            }
        }
        // An object under both names: the modern one wins.
        (Some(_), Some(_)) => {}
    }
    let Some(mut entry) = entry else { return };

    let mut template = entry.remove("message").and_then(non_empty_text);
    let mut formatted = entry.remove("formatted").and_then(non_empty_text);
    let params = entry.remove("params").filter(|p| match p {
        Value::Array(items) => !items.is_empty(),
        Value::Object(named) => !named.is_empty(),
        _ => false,
    });
    if formatted.is_none() {
        if let (Some(template), Some(params)) = (&template, &params) {
            // Room for the longest message in 4-byte characters; the cut below does the rest.
            let budget = limits.max_message_chars.saturating_mul(4);
            formatted = format_message(template, params, spelling, budget);
        }
    }
    // As Relay: the text always ends up in `formatted`; `message` stays only as a distinct
    // template.
    if formatted.is_none() || formatted == template {
        formatted = template.take();
    }
    let Some(mut formatted) = formatted else {
        return;
    };

    let max = limits.max_message_chars;
    if truncate_chars(&mut formatted, max) {
        problems.push(
            "logentry.formatted",
            "trimmed",
            format!("longer than {max} characters"),
        );
    }
    entry.insert("formatted".to_owned(), Value::String(formatted));
    if let Some(mut template) = template {
        if truncate_chars(&mut template, max) {
            problems.push(
                "logentry.message",
                "trimmed",
                format!("longer than {max} characters"),
            );
        }
        entry.insert("message".to_owned(), Value::String(template));
    }
    if let Some(params) = params {
        entry.insert("params".to_owned(), params);
    }
    map.insert("logentry".to_owned(), Value::Object(entry));
}

/// A logentry from any value: objects as they are, anything else but `null`/`false` becomes the
/// formatted text (Relay's `LogEntry::from_value`).
fn coerce_entry(value: Value) -> Option<Object> {
    match value {
        Value::Object(obj) => Some(obj),
        Value::Null | Value::Bool(false) => None,
        other => {
            let mut obj = Object::new();
            obj.insert("formatted".to_owned(), Value::String(to_text(&other)));
            Some(obj)
        }
    }
}

fn non_empty_text(value: Value) -> Option<String> {
    let text = match value {
        Value::Null => return None,
        Value::String(s) => s,
        other => to_text(&other),
    };
    (!text.trim().is_empty()).then_some(text)
}

/// Formats `template` with `params`: printf style (`%s`, `%d`, `%5.2f`, `%(name)s`, `%%`) when
/// it has such placeholders, else brace style (`{}`, `{0}`, `{name}`, as Java, .NET and Python's
/// `str.format` loggers send). `None` when nothing was substituted or a placeholder has no
/// matching parameter of a fitting type (GlitchTip keeps the raw template then too). Stops
/// early once the output reaches `budget` bytes.
pub(super) fn format_message(
    template: &str,
    params: &Value,
    spelling: Spelling,
    budget: usize,
) -> Option<String> {
    match format_printf(template, params, spelling, budget) {
        Substituted::Done(text) => Some(text),
        Substituted::Mismatch => None,
        Substituted::NoPlaceholders => match format_braces(template, params, spelling, budget) {
            Substituted::Done(text) => Some(text),
            Substituted::Mismatch | Substituted::NoPlaceholders => None,
        },
    }
}

enum Substituted {
    Done(String),
    Mismatch,
    NoPlaceholders,
}

/// Guards against `%999999999d`: no real log message pads further.
const MAX_WIDTH: usize = 1024;

fn format_printf(template: &str, params: &Value, spelling: Spelling, budget: usize) -> Substituted {
    let bytes = template.as_bytes();
    let mut out = String::with_capacity(template.len() + 32);
    let mut n_placeholders = 0;
    let mut next_positional = 0;
    let mut copied = 0;
    let mut i = 0;
    while let Some(offset) = template[i..].find('%') {
        let start = i + offset;
        out.push_str(&template[copied..start]);
        let mut j = start + 1;
        if bytes.get(j) == Some(&b'%') {
            out.push('%');
            n_placeholders += 1;
            i = j + 1;
            copied = i;
            continue;
        }
        let mut name = None;
        if bytes.get(j) == Some(&b'(') {
            let Some(close) = template[j..].find(')') else {
                return Substituted::Mismatch;
            };
            name = Some(&template[j + 1..j + close]);
            j += close + 1;
        }
        let mut spec = Spec::default();
        while let Some(&b) = bytes.get(j) {
            match b {
                b'-' => spec.left_align = true,
                b'0' => spec.zero_pad = true,
                b' ' | b'+' | b'#' => {}
                _ => break,
            }
            j += 1;
        }
        let (width, after) = digits(bytes, j);
        spec.width = width.unwrap_or(0);
        j = after;
        if bytes.get(j) == Some(&b'.') {
            let (precision, after) = digits(bytes, j + 1);
            spec.precision = Some(precision.unwrap_or(0));
            j = after;
        }
        if matches!(bytes.get(j), Some(b'h' | b'l' | b'L')) {
            j += 1;
        }
        let Some(&conversion) = bytes.get(j) else {
            return Substituted::Mismatch;
        };
        if !b"diouxXeEfFgGcrsa".contains(&conversion)
            || spec.width > MAX_WIDTH
            || spec.precision.is_some_and(|p| p > MAX_WIDTH)
        {
            return Substituted::Mismatch;
        }
        let param = match name {
            Some(name) => params.as_object().and_then(|named| named.get(name)),
            None => {
                next_positional += 1;
                params
                    .as_array()
                    .and_then(|items| items.get(next_positional - 1))
            }
        };
        let Some(rendered) = param.and_then(|p| render(p, conversion, spec.precision, spelling))
        else {
            return Substituted::Mismatch;
        };
        pad_into(&mut out, &rendered, &spec, conversion);
        n_placeholders += 1;
        i = j + 1;
        copied = i;
        if out.len() >= budget {
            return Substituted::Done(out);
        }
    }
    if n_placeholders == 0 {
        return Substituted::NoPlaceholders;
    }
    out.push_str(&template[copied..]);
    Substituted::Done(out)
}

#[derive(Default)]
struct Spec {
    left_align: bool,
    zero_pad: bool,
    width: usize,
    precision: Option<usize>,
}

/// Parses a run of ASCII digits at `start`; returns the number (if any) and the index after it.
fn digits(bytes: &[u8], start: usize) -> (Option<usize>, usize) {
    let mut end = start;
    let mut n: usize = 0;
    while let Some(&b) = bytes.get(end).filter(|b| b.is_ascii_digit()) {
        n = n.saturating_mul(10).saturating_add(usize::from(b - b'0'));
        end += 1;
    }
    ((end > start).then_some(n), end)
}

fn pad_into(out: &mut String, rendered: &str, spec: &Spec, conversion: u8) {
    let len = rendered.chars().count();
    let fill = spec.width.saturating_sub(len);
    if fill == 0 {
        out.push_str(rendered);
    } else if spec.left_align {
        out.push_str(rendered);
        out.extend(std::iter::repeat_n(' ', fill));
    } else if spec.zero_pad && conversion != b's' && conversion != b'r' && conversion != b'c' {
        let (sign, digits) = match rendered.strip_prefix('-') {
            Some(rest) => ("-", rest),
            None => ("", rendered),
        };
        out.push_str(sign);
        out.extend(std::iter::repeat_n('0', fill));
        out.push_str(digits);
    } else {
        out.extend(std::iter::repeat_n(' ', fill));
        out.push_str(rendered);
    }
}

/// One parameter as `conversion` prints it, or `None` when the types don't fit (a `%d` meeting
/// `"abc"`). Numeric strings count as numbers: raven sends every parameter as its `repr`.
fn render(
    param: &Value,
    conversion: u8,
    precision: Option<usize>,
    spelling: Spelling,
) -> Option<String> {
    match conversion {
        b's' | b'r' | b'a' => {
            let mut text = scalar_to_string(param, spelling).unwrap_or_else(|| param.to_string());
            if let Some(p) = precision {
                if let Some((cut, _)) = text.char_indices().nth(p) {
                    text.truncate(cut);
                }
            }
            Some(text)
        }
        b'd' | b'i' | b'u' => integer(param).map(|n| n.to_string()),
        b'x' => integer(param).map(|n| signed_radix(n, |u| format!("{u:x}"))),
        b'X' => integer(param).map(|n| signed_radix(n, |u| format!("{u:X}"))),
        b'o' => integer(param).map(|n| signed_radix(n, |u| format!("{u:o}"))),
        b'f' | b'F' => float(param).map(|f| format!("{f:.*}", precision.unwrap_or(6))),
        b'e' | b'E' => float(param).map(|f| {
            let text = python_exponent(&format!("{f:.*e}", precision.unwrap_or(6)));
            if conversion == b'E' {
                text.to_uppercase()
            } else {
                text
            }
        }),
        b'g' | b'G' => float(param).map(|f| {
            if f.fract() == 0.0 && f.abs() < 1e16 {
                format!("{}", f as i64)
            } else {
                f.to_string()
            }
        }),
        b'c' => match param {
            Value::String(s) if s.chars().count() == 1 => Some(s.clone()),
            _ => integer(param)
                .and_then(|n| u32::try_from(n).ok())
                .and_then(char::from_u32)
                .map(String::from),
        },
        _ => None,
    }
}

fn integer(param: &Value) -> Option<i128> {
    match param {
        Value::Number(n) => n
            .as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
            .or_else(|| n.as_f64().and_then(float_to_int)),
        Value::String(s) => {
            let s = s.trim();
            s.parse::<i128>()
                .ok()
                .or_else(|| s.parse::<f64>().ok().and_then(float_to_int))
        }
        Value::Bool(b) => Some(i128::from(*b)),
        _ => None,
    }
}

fn float_to_int(f: f64) -> Option<i128> {
    (f.is_finite() && f.abs() < 1e30).then_some(f.trunc() as i128)
}

fn float(param: &Value) -> Option<f64> {
    let f = match param {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        Value::Bool(b) => f64::from(u8::from(*b)),
        _ => return None,
    };
    // `{:.6}` of 1e300 prints 300 digits; that is still bounded, but no log wants it.
    (f.is_finite() && f.abs() < 1e30).then_some(f)
}

fn signed_radix(n: i128, fmt: impl Fn(u128) -> String) -> String {
    if n < 0 {
        format!("-{}", fmt(n.unsigned_abs()))
    } else {
        fmt(n.unsigned_abs())
    }
}

/// Rust writes `1.5e3`; Python writes `1.5e+03`.
fn python_exponent(rust: &str) -> String {
    match rust.split_once('e') {
        Some((mantissa, exp)) => {
            let (sign, digits) = match exp.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', exp),
            };
            format!("{mantissa}e{sign}{digits:0>2}")
        }
        None => rust.to_owned(),
    }
}

fn format_braces(template: &str, params: &Value, spelling: Spelling, budget: usize) -> Substituted {
    let mut out = String::with_capacity(template.len() + 32);
    let mut n_placeholders = 0;
    let mut next_positional = 0;
    let mut rest = template;
    while let Some(pos) = rest.find(['{', '}']) {
        out.push_str(&rest[..pos]);
        let tail = &rest[pos..];
        if tail.starts_with("{{") || tail.starts_with("}}") {
            out.push_str(&tail[..1]);
            rest = &tail[2..];
            continue;
        }
        if let Some(after) = tail.strip_prefix('}') {
            out.push('}');
            rest = after;
            continue;
        }
        let Some(close) = tail.find('}') else {
            out.push_str(tail);
            rest = "";
            break;
        };
        let inner = &tail[1..close];
        // `{0:>5}`, `{name!r}`: the field name is what counts.
        let field = inner.split([':', '!']).next().unwrap_or("").trim();
        let param = if field.is_empty() {
            next_positional += 1;
            params
                .as_array()
                .and_then(|items| items.get(next_positional - 1))
        } else if let Ok(index) = field.parse::<usize>() {
            params.as_array().and_then(|items| items.get(index))
        } else {
            params.as_object().and_then(|named| named.get(field))
        };
        let Some(param) = param else {
            return Substituted::Mismatch;
        };
        out.push_str(&scalar_to_string(param, spelling).unwrap_or_else(|| param.to_string()));
        n_placeholders += 1;
        rest = &tail[close + 1..];
        if out.len() >= budget {
            return Substituted::Done(out);
        }
    }
    if n_placeholders == 0 {
        return Substituted::NoPlaceholders;
    }
    out.push_str(rest);
    Substituted::Done(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::LogEntry;
    use crate::normalize::test_util::{kinds, normalize};
    use serde_json::json;

    /// Normalizes `input` (top-level fields) and compares the typed message and the payload's
    /// `logentry`.
    fn check(input: Value, expected: Option<(Option<&str>, &str)>, expected_logentry: Value) {
        let (event, _) = normalize(input.clone());
        let expected = expected.map(|(message, formatted)| LogEntry {
            message: message.map(String::from),
            formatted: Some(formatted.to_owned()),
        });
        assert_eq!(event.message, expected, "{input}");
        assert_eq!(
            event
                .payload
                .get("logentry")
                .cloned()
                .unwrap_or(Value::Null),
            expected_logentry,
            "{input}"
        );
        assert!(event.payload.get("message").is_none());
    }

    #[test]
    fn message_string_or_object_becomes_a_logentry() {
        check(
            json!({"message": "hello"}),
            Some((None, "hello")),
            json!({"formatted": "hello"}),
        );
        check(
            json!({"message": {"message": "hello"}}),
            Some((None, "hello")),
            json!({"formatted": "hello"}),
        );
        check(
            json!({"logentry": "hello"}),
            Some((None, "hello")),
            json!({"formatted": "hello"}),
        );
        check(
            json!({"message": 42}),
            Some((None, "42")),
            json!({"formatted": "42"}),
        );
        check(json!({"message": false}), None, Value::Null);
        check(json!({"message": ""}), None, Value::Null);
        check(json!({"logentry": {}}), None, Value::Null);
        check(json!({"logentry": {"params": [1]}}), None, Value::Null);
        check(
            json!({"logentry": {"message": "m", "formatted": "m", "extra_key": true}}),
            Some((None, "m")),
            json!({"formatted": "m", "extra_key": true}),
        );
    }

    #[test]
    fn message_string_beside_a_logentry_is_the_formatted_text() {
        check(
            json!({"message": "user 42 failed", "logentry": {"message": "user %s failed"}}),
            Some((Some("user %s failed"), "user 42 failed")),
            json!({"message": "user %s failed", "formatted": "user 42 failed"}),
        );
        // raven-python: the template in both places, params only in the interface.
        check(
            json!({"message": "quota for %s at %d%%", "sentry.interfaces.Message": {"message": "quota for %s at %d%%", "params": ["'tenant-9'", "93"], "formatted": null}}),
            Some((Some("quota for %s at %d%%"), "quota for 'tenant-9' at 93%")),
            json!({"message": "quota for %s at %d%%", "formatted": "quota for 'tenant-9' at 93%", "params": ["'tenant-9'", "93"]}),
        );
        // A formatted text the SDK sent wins over the legacy string.
        check(
            json!({"message": "other", "logentry": {"message": "a %s", "formatted": "a b"}}),
            Some((Some("a %s"), "a b")),
            json!({"message": "a %s", "formatted": "a b"}),
        );
        check(
            json!({"message": {"formatted": "legacy"}, "logentry": {"formatted": "modern"}}),
            Some((None, "modern")),
            json!({"formatted": "modern"}),
        );
    }

    #[test]
    fn params_are_formatted_server_side() {
        let check_format = |template: &str, params: Value, expected: &str| {
            check(
                json!({"logentry": {"message": template, "params": params}}),
                Some((
                    if expected == template {
                        None
                    } else {
                        Some(template)
                    },
                    expected,
                )),
                if expected == template {
                    json!({"formatted": template, "params": params})
                } else {
                    json!({"message": template, "formatted": expected, "params": params})
                },
            );
        };
        check_format(
            "user %s exported %s rows",
            json!(["u-99", 1200]),
            "user u-99 exported 1200 rows",
        );
        check_format(
            "%d items at %.2f each, 100%%",
            json!(["3", 1.5]),
            "3 items at 1.50 each, 100%",
        );
        check_format(
            "%5d|%-4s|%05.1f|%x",
            json!([42, "ab", 4.25, 255]),
            "   42|ab  |004.2|ff",
        );
        check_format(
            "%(user)s did %(n)d things",
            json!({"user": "ada", "n": 2}),
            "ada did 2 things",
        );
        check_format("flag %s and %s", json!([true, null]), "flag true and null");
        check_format(
            "{} logged in from {}",
            json!(["ada", "10.0.0.1"]),
            "ada logged in from 10.0.0.1",
        );
        check_format("{1} before {0}", json!(["a", "b"]), "b before a");
        check_format(
            "{name} is {{literal}}",
            json!({"name": "x"}),
            "x is {literal}",
        );
        check_format("obj %s", json!([{"a": 1}]), r#"obj {"a":1}"#);
        check_format("%e", json!([1500]), "1.500000e+03");
        // Mismatches keep the raw template.
        check_format("count %d", json!(["many"]), "count %d");
        check_format("%s and %s", json!(["one"]), "%s and %s");
        check_format("%(missing)s", json!({"other": 1}), "%(missing)s");
        check_format("%s", json!({"named": 1}), "%s");
        check_format("{} {}", json!(["one"]), "{} {}");
        check_format("50%% done %q", json!([1]), "50%% done %q");
        check_format("no placeholders", json!([1]), "no placeholders");
        check_format("%999999999d", json!([1]), "%999999999d");
    }

    #[test]
    fn python_events_format_booleans_the_python_way() {
        let (event, _) = normalize(
            json!({"platform": "python", "logentry": {"message": "%s/%s", "params": [true, null]}}),
        );
        assert_eq!(
            event.message.unwrap().formatted.as_deref(),
            Some("True/None")
        );
    }

    #[test]
    fn long_messages_are_cut() {
        let (event, problems) =
            normalize(json!({"logentry": {"message": "%s", "params": ["x".repeat(10_000)]}}));
        let formatted = event.message.unwrap().formatted.unwrap();
        assert_eq!(formatted.chars().count(), 8192);
        assert_eq!(kinds(&problems), [("logentry.formatted", "trimmed")]);

        // Formatting a template with many large parameters stops at the budget.
        let (event, _) = normalize(
            json!({"logentry": {"message": "%(a)s".repeat(1000), "params": {"a": "y".repeat(16_000)}}}),
        );
        assert_eq!(
            event.message.unwrap().formatted.unwrap().chars().count(),
            8192
        );
    }
}
