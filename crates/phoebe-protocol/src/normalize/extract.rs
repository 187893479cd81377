//! The typed view: reads the finished canonical payload into [`Event`]. Changes nothing in the
//! payload; every repair happened before, so this only copies out what is there.

use chrono::{DateTime, Utc};
use serde_json::Value;
use uuid::Uuid;

use super::tags::{append_derived, Derived};
use super::Object;
use crate::event::{
    CspReport, Event, EventKind, Exception, Frame, Level, LogEntry, Mechanism, Sdk, Stacktrace,
    User,
};

/// What earlier steps already computed.
pub(super) struct Known {
    pub(super) event_id: Uuid,
    pub(super) timestamp: DateTime<Utc>,
    pub(super) received: DateTime<Utc>,
    pub(super) kind: EventKind,
    pub(super) level: Level,
    pub(super) platform: String,
    pub(super) client_tags: Vec<(String, String)>,
}

/// The typed exceptions and, without one, the thread stack of a normalized payload.
pub(crate) fn stacks(map: &Object) -> (Vec<Exception>, Option<Stacktrace>) {
    let threads = values(map, "threads");
    let exceptions: Vec<Exception> = values(map, "exception")
        .iter()
        .map(|exc| exception(exc, threads))
        .collect();
    let thread_stacktrace = if exceptions.is_empty() {
        thread_for(threads, None).or_else(|| stacktrace(map.get("stacktrace")))
    } else {
        None
    };
    (exceptions, thread_stacktrace)
}

pub(super) fn extract(map: Object, known: Known) -> Event {
    let (exceptions, thread_stacktrace) = stacks(&map);
    let user = map.get("user").and_then(Value::as_object).and_then(user);
    let request_url = map
        .get("request")
        .and_then(|r| r.get("url"))
        .and_then(string);
    let mut tags = known.client_tags;
    append_derived(
        &mut tags,
        &Derived {
            level: known.level,
            environment: str_at(&map, "environment"),
            release: str_at(&map, "release"),
            dist: str_at(&map, "dist"),
            server_name: str_at(&map, "server_name"),
            transaction: str_at(&map, "transaction"),
            logger: str_at(&map, "logger"),
            url: request_url.as_deref(),
            contexts: map.get("contexts").and_then(Value::as_object),
            user: user.as_ref(),
            main_exception: exceptions.last(),
        },
    );

    Event {
        event_id: known.event_id,
        timestamp: known.timestamp,
        received: known.received,
        kind: known.kind,
        level: known.level,
        platform: known.platform,
        logger: owned(&map, "logger"),
        release: owned(&map, "release"),
        dist: owned(&map, "dist"),
        environment: owned(&map, "environment"),
        server_name: owned(&map, "server_name"),
        transaction: owned(&map, "transaction"),
        message: map.get("logentry").map(|entry| LogEntry {
            message: entry.get("message").and_then(string),
            formatted: entry.get("formatted").and_then(string),
        }),
        exceptions,
        thread_stacktrace,
        fingerprint: map
            .get("fingerprint")
            .and_then(Value::as_array)
            .map(|parts| parts.iter().filter_map(string).collect()),
        tags,
        user,
        request_url,
        sdk: map.get("sdk").and_then(|sdk| {
            Some(Sdk {
                name: sdk.get("name").and_then(string)?,
                version: sdk.get("version").and_then(string),
            })
        }),
        csp: (known.kind == EventKind::Csp).then(|| csp(map.get("csp"))),
        payload: Value::Object(map),
    }
}

/// The items of a canonical `{"values": [...]}` interface.
fn values<'m>(map: &'m Object, key: &str) -> &'m [Value] {
    map.get(key)
        .and_then(|w| w.get("values"))
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn string(value: &Value) -> Option<String> {
    value.as_str().map(str::to_owned)
}

fn str_at<'m>(map: &'m Object, key: &str) -> Option<&'m str> {
    map.get(key).and_then(Value::as_str)
}

fn owned(map: &Object, key: &str) -> Option<String> {
    str_at(map, key).map(str::to_owned)
}

fn exception(exc: &Value, threads: &[Value]) -> Exception {
    let stacktrace =
        stacktrace(exc.get("stacktrace")).or_else(|| thread_for(threads, exc.get("thread_id")));
    Exception {
        ty: exc.get("type").and_then(string),
        value: exc.get("value").and_then(string),
        module: exc.get("module").and_then(string),
        mechanism: exc
            .get("mechanism")
            .and_then(Value::as_object)
            .map(|m| Mechanism {
                ty: m
                    .get("type")
                    .and_then(string)
                    .unwrap_or_else(|| "generic".to_owned()),
                handled: m.get("handled").and_then(Value::as_bool),
                synthetic: m.get("synthetic").and_then(Value::as_bool).unwrap_or(false),
                exception_id: m.get("exception_id").and_then(Value::as_u64),
                parent_id: m.get("parent_id").and_then(Value::as_u64),
                is_exception_group: m
                    .get("is_exception_group")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
            }),
        stacktrace,
    }
}

/// The stack of the thread an exception (or, with `thread_id` `None`, the event) belongs to:
/// the thread with that id, else the crashed one, else the current one, else the only one.
/// GlitchTip's `hydrate_stacktrace` does the same for SDKs (Java, native) that put the stack on
/// the thread instead of the exception.
fn thread_for(threads: &[Value], thread_id: Option<&Value>) -> Option<Stacktrace> {
    let with_stack = || threads.iter().filter(|t| t.get("stacktrace").is_some());
    let flagged =
        |flag: &str| with_stack().find(|t| t.get(flag).and_then(Value::as_bool) == Some(true));
    let by_id = thread_id
        .and_then(|id| with_stack().find(|t| t.get("id").is_some_and(|tid| same_id(tid, id))));
    let only = (threads.len() == 1).then(|| with_stack().next()).flatten();
    let thread = by_id
        .or_else(|| flagged("crashed"))
        .or_else(|| flagged("current"))
        .or(only)?;
    stacktrace(thread.get("stacktrace"))
}

/// Thread ids come as numbers or strings, not always the same way in one event.
fn same_id(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(a), Value::String(b)) => a == b,
        (Value::Number(a), Value::Number(b)) => a == b,
        (Value::String(s), Value::Number(n)) | (Value::Number(n), Value::String(s)) => {
            s.trim() == n.to_string()
        }
        _ => false,
    }
}

fn stacktrace(value: Option<&Value>) -> Option<Stacktrace> {
    let frames = value?.get("frames")?.as_array()?;
    Some(Stacktrace {
        frames: frames.iter().map(frame).collect(),
    })
}

fn frame(f: &Value) -> Frame {
    let mut frame = Frame::default();
    let Value::Object(fields) = f else {
        return frame;
    };
    // One pass over the frame's keys rather than a map lookup per field: frames are most of the
    // objects of an event, and each lookup costs a few string comparisons.
    for (key, value) in fields {
        match key.as_str() {
            "filename" => frame.filename = string(value),
            "abs_path" => frame.abs_path = string(value),
            "module" => frame.module = string(value),
            "package" => frame.package = string(value),
            "function" => frame.function = string(value),
            "raw_function" => frame.raw_function = string(value),
            "context_line" => frame.context_line = string(value),
            "lineno" => frame.lineno = value.as_u64(),
            "colno" => frame.colno = value.as_u64(),
            "in_app" => frame.in_app = value.as_bool(),
            "platform" => frame.platform = string(value),
            _ => {}
        }
    }
    frame
}

fn user(u: &Object) -> Option<User> {
    let s = |key: &str| u.get(key).and_then(string).filter(|v| !v.is_empty());
    let user = User {
        id: s("id"),
        email: s("email"),
        username: s("username"),
        ip_address: s("ip_address"),
    };
    (user != User::default()).then_some(user)
}

/// Browsers send `effective-directive`/`blocked-uri`; Relay's schema (and CSP events built from
/// it) uses underscores.
fn csp(report: Option<&Value>) -> CspReport {
    let field = |names: [&str; 2]| {
        names
            .iter()
            .find_map(|n| report.and_then(|r| r.get(*n)).and_then(Value::as_str))
            .map(str::trim)
    };
    let directive = field(["effective_directive", "effective-directive"])
        .filter(|d| !d.is_empty())
        .or_else(|| {
            field(["violated_directive", "violated-directive"])
                .and_then(|v| v.split_whitespace().next())
        })
        .unwrap_or_default();
    CspReport {
        directive: directive.to_owned(),
        blocked_uri: field(["blocked_uri", "blocked-uri"])
            .unwrap_or_default()
            .to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use crate::event::CspReport;
    use crate::normalize::test_util::normalize;
    use serde_json::{json, Value};

    /// Normalizes `input` and returns the functions of each exception's (possibly borrowed)
    /// stack and of `thread_stacktrace`.
    fn stacks(input: Value) -> (Vec<Vec<String>>, Option<Vec<String>>) {
        let (event, _) = normalize(input);
        let names = |st: &crate::event::Stacktrace| {
            st.frames
                .iter()
                .map(|f| f.function.clone().unwrap_or_default())
                .collect::<Vec<_>>()
        };
        (
            event
                .exceptions
                .iter()
                .map(|e| e.stacktrace.as_ref().map(names).unwrap_or_default())
                .collect(),
            event.thread_stacktrace.as_ref().map(names),
        )
    }

    fn thread(id: Value, flags: Value, function: &str) -> Value {
        let mut t = json!({"id": id, "stacktrace": {"frames": [{"function": function}]}});
        for (k, v) in flags.as_object().unwrap() {
            t[k] = v.clone();
        }
        t
    }

    #[test]
    fn exceptions_borrow_their_threads_stack() {
        let threads = json!([
            thread(json!(1), json!({"current": true}), "current"),
            thread(json!("2"), json!({}), "two"),
            thread(json!(3), json!({"crashed": true}), "crashed")
        ]);
        let check = |exception: Value, expected: &[&str]| {
            let (got, thread_stack) = stacks(json!({"exception": [exception], "threads": threads}));
            assert_eq!(got, [expected], "{exception}");
            assert_eq!(thread_stack, None);
        };
        check(json!({"type": "E", "thread_id": 2}), &["two"]);
        check(json!({"type": "E", "thread_id": "1"}), &["current"]);
        check(json!({"type": "E"}), &["crashed"]);
        check(json!({"type": "E", "thread_id": 99}), &["crashed"]);
        check(
            json!({"type": "E", "stacktrace": {"frames": [{"function": "own"}]}}),
            &["own"],
        );
        // The payload keeps the exception as sent.
        let (event, _) = crate::normalize::test_util::normalize(
            json!({"exception": [{"type": "E"}], "threads": threads}),
        );
        assert!(event.payload["exception"]["values"][0]
            .get("stacktrace")
            .is_none());
    }

    #[test]
    fn thread_stacktrace_is_set_only_without_exceptions() {
        let check = |input: Value, expected: Option<&[&str]>| {
            let (_, got) = stacks(input.clone());
            assert_eq!(
                got,
                expected.map(|e| e.iter().map(|s| s.to_string()).collect()),
                "{input}"
            );
        };
        check(
            json!({"threads": [thread(json!(1), json!({"current": true}), "cur"), thread(json!(2), json!({"crashed": true}), "crash")]}),
            Some(&["crash"]),
        );
        check(
            json!({"threads": [thread(json!(1), json!({}), "x"), thread(json!(2), json!({"current": true}), "cur")]}),
            Some(&["cur"]),
        );
        check(
            json!({"threads": [thread(json!(1), json!({}), "only")]}),
            Some(&["only"]),
        );
        check(
            json!({"threads": [thread(json!(1), json!({}), "a"), thread(json!(2), json!({}), "b")]}),
            None,
        );
        check(
            json!({"stacktrace": {"frames": [{"function": "top"}]}}),
            Some(&["top"]),
        );
        check(
            json!({"exception": [{"type": "E"}], "threads": [thread(json!(1), json!({}), "only")]}),
            None,
        );
    }

    #[test]
    fn csp_reports_name_their_directive() {
        let check = |csp: Value, expected: (&str, &str)| {
            let (event, _) = normalize(json!({"type": "csp", "csp": csp}));
            assert_eq!(
                event.csp,
                Some(CspReport {
                    directive: expected.0.into(),
                    blocked_uri: expected.1.into()
                })
            );
        };
        check(
            json!({"effective_directive": "script-src", "blocked_uri": "https://evil.example/x.js"}),
            ("script-src", "https://evil.example/x.js"),
        );
        check(
            json!({"violated-directive": "img-src 'self'", "blocked-uri": "data"}),
            ("img-src", "data"),
        );
        check(json!({}), ("", ""));
        let (event, _) = normalize(json!({"csp": {"effective_directive": "x"}}));
        assert_eq!(event.csp, None);
    }
}
