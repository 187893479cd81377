//! Turns a stored (normalized) event's JSON into what the issue page shows: exceptions with
//! their frames and source context, breadcrumbs, the request, the user, contexts, extra data.
//!
//! Normalization made the main shapes canonical (`{values: [...]}`, tags as pairs), but the
//! interfaces it passes through (request headers, contexts, frame variables) keep whatever shape
//! the SDK sent, so everything here reads leniently and shows what it cannot interpret as JSON.

use serde_json::{Map, Value};

use super::format;

/// Everything the page shows of one event.
#[derive(Debug, Default)]
pub struct EventView {
    /// Exceptions, the one raised last first ("most recent first", as Python prints the cause
    /// last and Sentry shows it first).
    pub exceptions: Vec<ExceptionView>,
    /// A thread's stack, when the event has no exception (e.g. `attach_stacktrace`).
    pub thread_frames: Vec<FrameView>,
    /// The formatted message, if any.
    pub message: Option<String>,
    /// Breadcrumbs, oldest first.
    pub breadcrumbs: Vec<CrumbView>,
    /// The HTTP request, if any.
    pub request: Option<RequestView>,
    /// The user's fields.
    pub user: Vec<(String, String)>,
    /// Each context (os, runtime, browser, device, trace, ...) with its fields.
    pub contexts: Vec<(String, Vec<(String, String)>)>,
    /// The event's own tags.
    pub tags: Vec<(String, String)>,
    /// Extra data, values as JSON.
    pub extra: Vec<(String, String)>,
    /// `sentry.python 2.75.0`.
    pub sdk: Option<String>,
    /// Whether any frame anywhere is in-app (else all frames are shown by default).
    pub has_in_app: bool,
}

/// One exception of a chain.
#[derive(Debug, Default)]
pub struct ExceptionView {
    pub ty: String,
    pub value: String,
    /// `generic (unhandled)`.
    pub mechanism: Option<String>,
    /// Frames, most recent call first.
    pub frames: Vec<FrameView>,
}

/// One stack frame.
#[derive(Debug, Default)]
pub struct FrameView {
    /// File or module.
    pub location: String,
    pub function: Option<String>,
    /// `:12:5`.
    pub line: String,
    pub in_app: bool,
    /// Source lines around the failing one: (line number, text, is the failing line).
    pub context: Vec<(u64, String, bool)>,
    /// Local variables, values as JSON.
    pub vars: Vec<(String, String)>,
    /// Where a source map took the frame from: the minified file, line and column.
    pub minified: Option<String>,
    /// Why no source map applied to it.
    pub unmapped: Option<String>,
}

/// One breadcrumb.
#[derive(Debug, Default)]
pub struct CrumbView {
    pub time: String,
    pub category: String,
    pub level: String,
    pub message: String,
    /// Its data as JSON, if any.
    pub data: Option<String>,
}

/// The HTTP request of an event.
#[derive(Debug, Default)]
pub struct RequestView {
    pub method: String,
    pub url: String,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub cookies: Vec<(String, String)>,
    pub body: Option<String>,
    pub env: Vec<(String, String)>,
}

/// A scalar as text; anything else as compact JSON.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "null".into(),
        other => other.to_string(),
    }
}

fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// Key/value pairs from an object, a list of `[key, value]` pairs or a `k=v&k2=v2` string.
fn pairs(v: Option<&Value>) -> Vec<(String, String)> {
    match v {
        Some(Value::Object(m)) => m.iter().map(|(k, v)| (k.clone(), text(v))).collect(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|p| match p.as_array().map(Vec::as_slice) {
                Some([k, v]) => Some((text(k), text(v))),
                _ => None,
            })
            .collect(),
        Some(Value::String(s)) => form_urlencoded::parse(s.trim_start_matches('?').as_bytes())
            .into_owned()
            .collect(),
        _ => Vec::new(),
    }
}

/// The canonical `{values: [...]}` list of an interface (or a bare list, leniently).
fn values(v: Option<&Value>) -> &[Value] {
    match v {
        Some(Value::Object(m)) => m
            .get("values")
            .and_then(Value::as_array)
            .map_or(&[], Vec::as_slice),
        Some(Value::Array(a)) => a.as_slice(),
        _ => &[],
    }
}

fn frames(stacktrace: Option<&Value>) -> Vec<FrameView> {
    let Some(frames) = stacktrace
        .and_then(|s| s.get("frames"))
        .and_then(Value::as_array)
    else {
        return Vec::new();
    };
    frames.iter().rev().map(frame).collect()
}

fn frame(f: &Value) -> FrameView {
    let location = str_at(f, "filename")
        .or_else(|| str_at(f, "abs_path"))
        .or_else(|| str_at(f, "module"))
        .or_else(|| str_at(f, "package"))
        .unwrap_or("?")
        .to_string();
    let lineno = f.get("lineno").and_then(Value::as_u64);
    let line = match (lineno, f.get("colno").and_then(Value::as_u64)) {
        (Some(l), Some(c)) => format!(":{l}:{c}"),
        (Some(l), None) => format!(":{l}"),
        _ => String::new(),
    };
    let mut context = Vec::new();
    if let (Some(l), Some(current)) = (lineno, str_at(f, "context_line")) {
        let lines = |key: &str| -> Vec<String> {
            f.get(key)
                .and_then(Value::as_array)
                .map(|a| a.iter().map(text).collect())
                .unwrap_or_default()
        };
        let pre = lines("pre_context");
        let first = l.saturating_sub(pre.len() as u64);
        for (i, s) in pre.into_iter().enumerate() {
            context.push((first + i as u64, s, false));
        }
        context.push((l, current.to_string(), true));
        for (i, s) in lines("post_context").into_iter().enumerate() {
            context.push((l.saturating_add(1 + i as u64), s, false));
        }
    }
    FrameView {
        location,
        function: str_at(f, "function").map(str::to_string),
        line,
        in_app: f.get("in_app").and_then(Value::as_bool).unwrap_or(false),
        context,
        vars: match f.get("vars") {
            Some(Value::Object(m)) => m.iter().map(|(k, v)| (k.clone(), text(v))).collect(),
            _ => Vec::new(),
        },
        minified: f.pointer("/data/sourcemap").map(|raw| {
            format!(
                "{}:{}:{}",
                raw["abs_path"].as_str().unwrap_or("?"),
                raw["lineno"],
                raw["colno"]
            )
        }),
        unmapped: f
            .pointer("/data/sourcemap_error")
            .and_then(Value::as_str)
            .map(str::to_string),
    }
}

fn exception(e: &Value) -> ExceptionView {
    let mechanism = e.get("mechanism").map(|m| {
        let ty = str_at(m, "type").unwrap_or("generic");
        match m.get("handled").and_then(Value::as_bool) {
            Some(true) => format!("{ty} (handled)"),
            Some(false) => format!("{ty} (unhandled)"),
            None => ty.to_string(),
        }
    });
    ExceptionView {
        ty: str_at(e, "type").unwrap_or("Error").to_string(),
        value: e.get("value").map(text).unwrap_or_default(),
        mechanism,
        frames: frames(e.get("stacktrace")),
    }
}

/// Breadcrumb times come as RFC 3339 strings or as unix seconds.
fn crumb_time(v: Option<&Value>) -> String {
    let ms = match v {
        Some(Value::Number(n)) => n.as_f64().map(|s| (s * 1000.0) as i64),
        Some(Value::String(s)) => chrono::DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|t| t.timestamp_millis()),
        _ => None,
    };
    // `exact` is empty for times chrono cannot represent: show nothing rather than panic.
    ms.and_then(|ms| format::exact(ms).get(11..19).map(str::to_string))
        .unwrap_or_default()
}

fn crumb(c: &Value) -> CrumbView {
    let data = c
        .get("data")
        .filter(|d| d.as_object().is_some_and(|m| !m.is_empty()))
        .map(|d| serde_json::to_string_pretty(d).unwrap_or_default());
    CrumbView {
        time: crumb_time(c.get("timestamp")),
        category: str_at(c, "category")
            .or_else(|| str_at(c, "type"))
            .unwrap_or("default")
            .to_string(),
        level: str_at(c, "level").unwrap_or("info").to_string(),
        message: c.get("message").map(text).unwrap_or_default(),
        data,
    }
}

fn request(r: &Value) -> RequestView {
    let body = r.get("data").filter(|d| !d.is_null()).map(|d| match d {
        Value::String(s) => s.clone(),
        other => serde_json::to_string_pretty(other).unwrap_or_default(),
    });
    RequestView {
        method: str_at(r, "method").unwrap_or("").to_string(),
        url: str_at(r, "url").unwrap_or("").to_string(),
        query: pairs(r.get("query_string")),
        headers: pairs(r.get("headers")),
        cookies: match r.get("cookies") {
            Some(Value::String(s)) => s
                .split(';')
                .filter_map(|c| c.trim().split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            other => pairs(other),
        },
        body,
        env: pairs(r.get("env")),
    }
}

fn message(p: &Value) -> Option<String> {
    let logentry = p.get("logentry").or_else(|| p.get("message"));
    match logentry {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(m) => str_at(m, "formatted")
            .or_else(|| str_at(m, "message"))
            .map(str::to_string),
        None => None,
    }
}

fn object_fields(m: &Map<String, Value>) -> Vec<(String, String)> {
    m.iter()
        .filter(|(k, _)| k.as_str() != "type")
        .map(|(k, v)| (k.clone(), text(v)))
        .collect()
}

/// The view of a normalized event payload.
pub fn view(p: &Value) -> EventView {
    let mut exceptions: Vec<ExceptionView> =
        values(p.get("exception")).iter().map(exception).collect();
    exceptions.reverse();
    let thread_frames = values(p.get("threads"))
        .iter()
        .find_map(|t| t.get("stacktrace"))
        .map(|s| frames(Some(s)))
        .unwrap_or_default();
    let has_in_app = exceptions
        .iter()
        .flat_map(|e| &e.frames)
        .chain(&thread_frames)
        .any(|f| f.in_app);
    let contexts = match p.get("contexts") {
        Some(Value::Object(m)) => m
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), object_fields(v.as_object()?))))
            .filter(|(_, fields)| !fields.is_empty())
            .collect(),
        _ => Vec::new(),
    };
    let sdk = p.get("sdk").and_then(|s| {
        let name = str_at(s, "name")?;
        Some(match str_at(s, "version") {
            Some(v) => format!("{name} {v}"),
            None => name.to_string(),
        })
    });
    EventView {
        exceptions,
        thread_frames,
        message: message(p),
        breadcrumbs: values(p.get("breadcrumbs")).iter().map(crumb).collect(),
        request: p.get("request").filter(|r| r.is_object()).map(request),
        user: match p.get("user") {
            Some(Value::Object(m)) => m.iter().map(|(k, v)| (k.clone(), text(v))).collect(),
            _ => Vec::new(),
        },
        contexts,
        tags: pairs(p.get("tags")),
        extra: match p.get("extra") {
            Some(Value::Object(m)) => m
                .iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        serde_json::to_string_pretty(v).unwrap_or_default(),
                    )
                })
                .collect(),
            _ => Vec::new(),
        },
        sdk,
        has_in_app,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_chained_python_exception_reads_most_recent_first_with_context() {
        let v = view(&json!({
            "exception": {"values": [
                {"type": "KeyError", "value": "'sku'", "stacktrace": {"frames": [
                    {"filename": "shop.py", "function": "load", "lineno": 4, "in_app": true,
                     "context_line": "return items[sku]", "pre_context": ["def load(sku):"],
                     "post_context": [""], "vars": {"sku": "'x'"}}]}},
                {"type": "ValueError", "value": "bad sku", "mechanism": {"type": "generic", "handled": false},
                 "stacktrace": {"frames": [
                    {"module": "django.core", "function": "run", "in_app": false},
                    {"filename": "shop.py", "function": "checkout", "lineno": 9, "colno": 3, "in_app": true}]}}
            ]},
            "breadcrumbs": {"values": [{"timestamp": 1700000000.5, "category": "cart", "message": "added"}]},
            "tags": [["component", "checkout"]],
            "request": {"method": "POST", "url": "https://shop/x", "query_string": "a=1&b=2",
                        "headers": [["Accept", "*/*"]], "cookies": "s=1; t=2"},
            "contexts": {"os": {"type": "os", "name": "Linux"}},
            "sdk": {"name": "sentry.python", "version": "2.75.0"}
        }));
        assert_eq!(v.exceptions[0].ty, "ValueError");
        assert_eq!(
            v.exceptions[0].mechanism.as_deref(),
            Some("generic (unhandled)")
        );
        assert_eq!(
            v.exceptions[0].frames[0].function.as_deref(),
            Some("checkout")
        );
        assert_eq!(v.exceptions[0].frames[0].line, ":9:3");
        assert_eq!(v.exceptions[0].frames[1].location, "django.core");
        let f = &v.exceptions[1].frames[0];
        assert_eq!(
            f.context,
            vec![
                (3, "def load(sku):".to_string(), false),
                (4, "return items[sku]".to_string(), true),
                (5, String::new(), false)
            ]
        );
        assert_eq!(f.vars, vec![("sku".to_string(), "'x'".to_string())]);
        assert!(v.has_in_app);
        assert_eq!(v.breadcrumbs[0].time, "22:13:20");
        assert_eq!(v.tags, vec![("component".into(), "checkout".into())]);
        let r = v.request.unwrap();
        assert_eq!(r.query.len(), 2);
        assert_eq!(r.cookies[1], ("t".into(), "2".into()));
        assert_eq!(v.contexts[0].1, vec![("name".into(), "Linux".into())]);
        assert_eq!(v.sdk.as_deref(), Some("sentry.python 2.75.0"));
    }

    /// Any JSON, with the keys the view reads more often than others.
    fn arb_json() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        const KEYS: &[&str] = &[
            "exception",
            "values",
            "stacktrace",
            "frames",
            "pre_context",
            "post_context",
            "context_line",
            "lineno",
            "colno",
            "vars",
            "in_app",
            "breadcrumbs",
            "timestamp",
            "data",
            "request",
            "query_string",
            "headers",
            "cookies",
            "env",
            "contexts",
            "user",
            "extra",
            "sdk",
            "name",
            "version",
            "message",
            "logentry",
            "formatted",
            "threads",
            "mechanism",
            "handled",
            "type",
            "value",
            "filename",
            "function",
            "category",
            "level",
            "tags",
            "method",
            "url",
        ];
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
                .map(Value::Number)),
            ".{0,8}".prop_map(Value::String),
        ];
        let key =
            prop_oneof![3 => prop::sample::select(KEYS).prop_map(str::to_owned), 1 => ".{0,4}"];
        leaf.prop_recursive(6, 96, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::btree_map(key.clone(), inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]
        #[test]
        fn any_payload_is_viewed_without_panicking(v in arb_json()) {
            let _ = view(&v);
        }
    }

    #[test]
    fn breadcrumb_times_out_of_range_show_nothing() {
        let v =
            view(&json!({"breadcrumbs": {"values": [{"timestamp": 1e300}, {"timestamp": "x"}]}}));
        assert_eq!(v.breadcrumbs[0].time, "");
        assert_eq!(v.breadcrumbs[1].time, "");
    }

    #[test]
    fn odd_shapes_are_shown_not_dropped() {
        let v = view(&json!({"message": "plain", "extra": {"n": [1, 2]}, "user": {"id": 7}}));
        assert_eq!(v.message.as_deref(), Some("plain"));
        assert_eq!(v.user, vec![("id".into(), "7".into())]);
        assert!(v.extra[0].1.contains('1'));
        assert!(v.exceptions.is_empty() && v.breadcrumbs.is_empty() && v.request.is_none());
    }
}
