//! JSON leniency that `serde_json` lacks: rewriting the non-finite number tokens old Python
//! clients emit. Byte in, byte out; it parses nothing and never allocates when there is nothing
//! to rewrite.

use std::borrow::Cow;

/// Rewrites the non-standard JSON tokens `NaN`, `Infinity` and `-Infinity` (outside strings) to
/// `null` so `serde_json` can parse what raven-python and old sentry-python send to `/store/`
/// (Python's `json.dumps` writes them for `float('nan')` locals). Returns `Cow::Borrowed` when
/// nothing changed, which is the common case and costs one scan.
pub fn sanitize_non_finite(input: &[u8]) -> Cow<'_, [u8]> {
    // Every token we rewrite contains an `N` or an `I`; most bodies have neither outside strings,
    // but many have one inside, so this only skips the state machine for the easy cases.
    if !input.iter().any(|&b| b == b'N' || b == b'I') {
        return Cow::Borrowed(input);
    }
    let mut out: Option<Vec<u8>> = None;
    let mut copied = 0;
    let mut i = 0;
    while i < input.len() {
        let b = input[i];
        let token_len = match b {
            b'"' => {
                i = skip_string(input, i + 1);
                continue;
            }
            b'N' if input[i..].starts_with(b"NaN") => 3,
            b'I' if input[i..].starts_with(b"Infinity") => 8,
            b'-' if input[i + 1..].starts_with(b"Infinity") => 9,
            _ => {
                i += 1;
                continue;
            }
        };
        let buf = out.get_or_insert_with(|| Vec::with_capacity(input.len()));
        buf.extend_from_slice(&input[copied..i]);
        buf.extend_from_slice(b"null");
        i += token_len;
        copied = i;
    }
    match out {
        Some(mut buf) => {
            buf.extend_from_slice(&input[copied..]);
            Cow::Owned(buf)
        }
        None => Cow::Borrowed(input),
    }
}

/// Returns the index just past the string that starts at `start` (after its opening quote), or
/// the input length when the string never closes.
fn skip_string(input: &[u8], start: usize) -> usize {
    let mut i = start;
    while i < input.len() {
        match input[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    input.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn check(input: &str, expected: &str) {
        let out = sanitize_non_finite(input.as_bytes());
        assert_eq!(std::str::from_utf8(&out).unwrap(), expected);
        assert_eq!(
            matches!(out, Cow::Borrowed(_)),
            input == expected,
            "borrowed iff unchanged"
        );
    }

    #[test]
    fn rewrites_non_finite_tokens_outside_strings() {
        check(r#"{"a": NaN}"#, r#"{"a": null}"#);
        check(r#"[Infinity,-Infinity, NaN]"#, r#"[null,null, null]"#);
        check(r#"{"v":{"x":-Infinity}}"#, r#"{"v":{"x":null}}"#);
    }

    #[test]
    fn leaves_strings_and_valid_json_alone() {
        check(
            r#"{"NaN": "Infinity", "b": "-Infinity NaN"}"#,
            r#"{"NaN": "Infinity", "b": "-Infinity NaN"}"#,
        );
        check(
            r#"{"a": "quote \" NaN", "b": NaN}"#,
            r#"{"a": "quote \" NaN", "b": null}"#,
        );
        check(
            r#"{"a": "back\\", "b": Infinity}"#,
            r#"{"a": "back\\", "b": null}"#,
        );
        check(r#"{"a": 1.5e3, "b": -2}"#, r#"{"a": 1.5e3, "b": -2}"#);
        check("", "");
    }

    #[test]
    fn unterminated_input_does_not_panic() {
        check(r#"{"a": "NaN"#, r#"{"a": "NaN"#);
        check(r#"{"a": "\"#, r#"{"a": "\"#);
        check("-", "-");
        check("Na", "Na");
    }

    #[test]
    fn sanitized_python_output_parses() {
        let raw = br#"{"extra": {"ratio": NaN, "max": Infinity, "min": -Infinity}}"#;
        let fixed = sanitize_non_finite(raw);
        let v: serde_json::Value = serde_json::from_slice(&fixed).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"extra": {"ratio": null, "max": null, "min": null}})
        );
    }

    proptest! {
        #[test]
        fn valid_json_is_borrowed_unchanged(v in crate::normalize::test_util::arb_json()) {
            let bytes = serde_json::to_vec(&v).unwrap();
            let out = sanitize_non_finite(&bytes);
            prop_assert!(matches!(out, Cow::Borrowed(_)));
            prop_assert_eq!(&*out, &bytes[..]);
        }
    }
}
