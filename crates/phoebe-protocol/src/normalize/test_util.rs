//! Test helpers shared by the normalization tests: a fixed context, shortcuts, and proptest
//! strategies for arbitrary and event-shaped JSON.

use chrono::{DateTime, Utc};
use proptest::prelude::*;
use serde_json::Value;

use super::{normalize_value, NormalizeContext, Problem};
use crate::event::Event;

/// The receive time every test uses.
pub(crate) const RECEIVED: &str = "2026-11-22T21:00:00Z";

pub(crate) fn at(rfc3339: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(rfc3339)
        .expect("test timestamp")
        .to_utc()
}

/// Normalizes with the default test context.
pub(crate) fn normalize(input: Value) -> (Event, Vec<Problem>) {
    normalize_with(input, |_| {})
}

/// Normalizes with the test context as changed by `adjust`.
pub(crate) fn normalize_with(
    input: Value,
    adjust: impl FnOnce(&mut NormalizeContext),
) -> (Event, Vec<Problem>) {
    let mut ctx = NormalizeContext::new(at(RECEIVED));
    adjust(&mut ctx);
    normalize_value(input, &ctx).expect("an object normalizes")
}

/// `(path, kind)` of each problem, for exact comparisons without the prose.
pub(crate) fn kinds(problems: &[Problem]) -> Vec<(&str, &str)> {
    problems.iter().map(|p| (p.path.as_str(), p.kind)).collect()
}

/// Any JSON value, nested a few levels, with strings that exercise the lenient paths.
pub(crate) fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
        ".{0,12}".prop_map(Value::String),
        prop::sample::select(TRICKY_STRINGS).prop_map(|s| Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(arb_key(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// An object whose keys are mostly ones normalization looks at.
pub(crate) fn arb_event() -> impl Strategy<Value = Value> {
    prop::collection::btree_map(arb_key(), arb_json(), 0..14)
        .prop_map(|m| Value::Object(m.into_iter().collect()))
}

fn arb_key() -> impl Strategy<Value = String> {
    prop_oneof![3 => prop::sample::select(KNOWN_KEYS).prop_map(str::to_owned), 1 => ".{0,6}"]
}

const TRICKY_STRINGS: &[&str] = &[
    "",
    " ",
    "NaN",
    "Infinity",
    "{{auto}}",
    "%s %d {} {0} %(x)s %%",
    "%",
    "{",
    "}",
    "Error: boom",
    "x:",
    "2011-05-02T17:41:36",
    "1304358096.5",
    "-1",
    "40",
    "warning",
    "\u{0}",
    "a\u{0}b",
    "é",
    "\n",
    "True",
    "1e400",
    "csp",
    "transaction",
    "feedback",
];

const KNOWN_KEYS: &[&str] = &[
    "event_id",
    "timestamp",
    "start_timestamp",
    "level",
    "platform",
    "type",
    "message",
    "logentry",
    "formatted",
    "params",
    "exception",
    "values",
    "value",
    "module",
    "stacktrace",
    "raw_stacktrace",
    "frames",
    "lineno",
    "colno",
    "in_app",
    "vars",
    "function",
    "threads",
    "id",
    "thread_id",
    "crashed",
    "current",
    "breadcrumbs",
    "data",
    "tags",
    "key",
    "user",
    "ip_address",
    "username",
    "email",
    "request",
    "url",
    "headers",
    "cookies",
    "query_string",
    "env",
    "REMOTE_ADDR",
    "method",
    "contexts",
    "browser",
    "os",
    "runtime",
    "device",
    "model",
    "family",
    "name",
    "version",
    "fingerprint",
    "release",
    "dist",
    "environment",
    "server_name",
    "logger",
    "transaction",
    "mechanism",
    "handled",
    "synthetic",
    "exception_id",
    "parent_id",
    "csp",
    "effective_directive",
    "blocked_uri",
    "sdk",
    "extra",
    "spans",
    "sentry.interfaces.Exception",
    "sentry.interfaces.Message",
    "sentry.interfaces.User",
    "\u{0}",
];
