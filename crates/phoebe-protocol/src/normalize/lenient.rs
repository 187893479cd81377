//! Lenient coercions of JSON scalars shared by the normalization steps: the few ways SDKs send a
//! string or a number as something else.

use serde_json::Value;

/// How booleans and null print when a non-string must become a string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Spelling {
    /// `True`, `False`, `None`: what Relay writes for tags and fingerprints, because the Python
    /// SDKs and Sentry's own Python code did `str(value)`.
    Python,
    /// `true`, `false`, `null`.
    Json,
}

/// A scalar as a string; `None` for arrays and objects.
pub(super) fn scalar_to_string(value: &Value, spelling: Spelling) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(match (spelling, b) {
            (Spelling::Python, true) => "True".to_owned(),
            (Spelling::Python, false) => "False".to_owned(),
            (Spelling::Json, b) => b.to_string(),
        }),
        Value::Null => Some(match spelling {
            Spelling::Python => "None".to_owned(),
            Spelling::Json => "null".to_owned(),
        }),
        Value::Array(_) | Value::Object(_) => None,
    }
}

/// Any value as display text: strings as they are, everything else as compact JSON.
pub(super) fn to_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A non-negative integer from a number, a float (truncated) or a numeric string; what SDKs put
/// in `lineno`, `colno` and exception-group ids.
pub(super) fn to_u64(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64().or_else(|| n.as_f64().and_then(float_to_u64)),
        Value::String(s) => {
            let s = s.trim();
            s.parse::<u64>()
                .ok()
                .or_else(|| s.parse::<f64>().ok().and_then(float_to_u64))
        }
        _ => None,
    }
}

fn float_to_u64(f: f64) -> Option<u64> {
    // 2^53: beyond it floats no longer hold every integer, so the value is nonsense anyway.
    (f.is_finite() && (0.0..9_007_199_254_740_992.0).contains(&f)).then_some(f.trunc() as u64)
}

/// A short rendering of a value for a problem's detail, so a 16 KiB string does not get copied
/// into every report.
pub(super) fn preview(value: &Value) -> String {
    const MAX: usize = 64;
    let mut text = value.to_string();
    if let Some((cut, _)) = text.char_indices().nth(MAX) {
        text.truncate(cut);
        text.push_str("...");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn to_u64_accepts_numbers_floats_and_numeric_strings() {
        let check = |v: Value, expected: Option<u64>| assert_eq!(to_u64(&v), expected, "{v}");
        check(json!(12), Some(12));
        check(json!(12.9), Some(12));
        check(json!("12"), Some(12));
        check(json!(" 7.0 "), Some(7));
        check(json!(-1), None);
        check(json!("-3"), None);
        check(json!("abc"), None);
        check(json!(1e300), None);
        check(json!(true), None);
    }

    #[test]
    fn scalars_print_python_or_json_style() {
        assert_eq!(
            scalar_to_string(&json!(true), Spelling::Python).as_deref(),
            Some("True")
        );
        assert_eq!(
            scalar_to_string(&json!(false), Spelling::Json).as_deref(),
            Some("false")
        );
        assert_eq!(
            scalar_to_string(&json!(null), Spelling::Python).as_deref(),
            Some("None")
        );
        assert_eq!(
            scalar_to_string(&json!(1.5), Spelling::Python).as_deref(),
            Some("1.5")
        );
        assert_eq!(scalar_to_string(&json!([1]), Spelling::Python), None);
        assert_eq!(to_text(&json!({"a": 1})), r#"{"a":1}"#);
    }

    #[test]
    fn preview_is_bounded() {
        let long = Value::String("x".repeat(1000));
        assert_eq!(preview(&long).chars().count(), 67);
        assert_eq!(preview(&json!(5)), "5");
    }
}
