//! Client reports: what an SDK dropped before sending, and why (protocol notes §5.3).
//! Lenient like the rest of the crate: unknown fields are ignored, bad entries are skipped.

use serde::Deserialize;

/// One "the SDK dropped N items of a category for a reason" line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discard {
    /// `ratelimit_backoff`, `sample_rate`, `queue_overflow`, ...
    pub reason: String,
    /// `error`, `transaction`, `attachment`, ...
    pub category: String,
    /// How many.
    pub quantity: u64,
}

#[derive(Deserialize)]
struct Line {
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    category: Option<String>,
    #[serde(default)]
    quantity: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Report {
    #[serde(default)]
    discarded_events: Vec<Line>,
    // Relay-originated reports carry these too, each line with its own reason.
    #[serde(default)]
    rate_limited_events: Vec<Line>,
    #[serde(default)]
    filtered_events: Vec<Line>,
    #[serde(default)]
    filtered_sampling_events: Vec<Line>,
}

/// Largest quantity taken from one line: real reports count a few thousand at most, and a bigger
/// number must not overflow the sums.
const MAX_QUANTITY: u64 = u32::MAX as u64;

/// Longest reason or category kept; SDK vocabularies are short words.
const MAX_WORD: usize = 64;

/// The discards a client report lists. Lines without a category or a positive quantity are
/// skipped; a payload that is not a report at all is an error.
pub fn parse(payload: &[u8]) -> Result<Vec<Discard>, serde_json::Error> {
    let report: Report = serde_json::from_slice(payload)?;
    let lists = [
        (report.discarded_events, None),
        (report.rate_limited_events, Some("ratelimit")),
        (report.filtered_events, Some("filtered")),
        (report.filtered_sampling_events, Some("sample_rate")),
    ];
    let mut out = Vec::new();
    for (lines, default_reason) in lists {
        for line in lines {
            let quantity = match &line.quantity {
                Some(serde_json::Value::Number(n)) => n
                    .as_u64()
                    .or_else(|| n.as_f64().filter(|f| *f >= 1.0).map(|f| f as u64)),
                _ => None,
            };
            let (Some(category), Some(quantity)) = (line.category, quantity) else {
                continue;
            };
            let reason = line
                .reason
                .or(default_reason.map(str::to_string))
                .unwrap_or_else(|| "unknown".into());
            if quantity == 0 || category.is_empty() {
                continue;
            }
            let quantity = quantity.min(MAX_QUANTITY);
            out.push(Discard {
                reason: truncate(reason),
                category: truncate(category),
                quantity,
            });
        }
    }
    Ok(out)
}

fn truncate(mut s: String) -> String {
    if s.len() > MAX_WORD {
        let mut end = MAX_WORD;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn parse_never_panics_and_caps_quantities(
            bytes in proptest::collection::vec(any::<u8>(), 0..256),
            reason in ".{0,80}",
            quantity in any::<f64>(),
        ) {
            let _ = parse(&bytes);
            let json = serde_json::json!({"discarded_events": [
                {"reason": reason, "category": "error", "quantity": quantity}
            ]});
            if let Ok(discards) = parse(json.to_string().as_bytes()) {
                for d in discards {
                    prop_assert!(d.quantity > 0 && d.quantity <= MAX_QUANTITY);
                    prop_assert!(d.reason.len() <= MAX_WORD);
                }
            }
        }
    }

    #[test]
    fn reads_sdk_discards() {
        let d = parse(
            br#"{"timestamp": 1700000000, "discarded_events": [
            {"reason": "ratelimit_backoff", "category": "error", "quantity": 3},
            {"reason": "sample_rate", "category": "transaction", "quantity": 1.0}]}"#,
        )
        .unwrap();
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].reason, "ratelimit_backoff");
        assert_eq!(d[0].category, "error");
        assert_eq!(d[0].quantity, 3);
        assert_eq!(d[1].quantity, 1);
    }

    #[test]
    fn relay_lists_get_their_reason_and_bad_lines_are_skipped() {
        let d = parse(br#"{"rate_limited_events": [{"category": "error", "quantity": 2}],
            "discarded_events": [{"reason": "x", "quantity": 2}, {"reason": "y", "category": "error", "quantity": -1},
            {"reason": "z", "category": "error", "quantity": "7"}]}"#)
        .unwrap();
        assert_eq!(
            d,
            vec![Discard {
                reason: "ratelimit".into(),
                category: "error".into(),
                quantity: 2
            }]
        );
    }

    #[test]
    fn not_a_report_is_an_error() {
        assert!(parse(b"[1, 2]").is_err());
        assert!(parse(b"nope").is_err());
        let huge = parse(
            br#"{"discarded_events": [{"reason": "x", "category": "error", "quantity": 1e300}]}"#,
        );
        assert_eq!(huge.unwrap()[0].quantity, u32::MAX as u64);
        assert_eq!(parse(b"{}").unwrap(), vec![]);
    }
}
