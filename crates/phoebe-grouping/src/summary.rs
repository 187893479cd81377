//! Issue titles and culprits as the issue list shows them, computed the way Sentry's
//! `eventtypes` and `culprit.py` do so that users see familiar names.

use phoebe_protocol::event::{Event, EventKind, Frame};
use serde::Serialize;

use crate::exceptions;
use crate::frames::{self, display_filename, display_function, nonempty};
use crate::parameterize::split_lines;

/// Titles show at most this many characters of the first line.
const MAX_TITLE_CHARS: usize = 100;
/// Sentry's `MAX_CULPRIT_LENGTH`.
const MAX_CULPRIT_CHARS: usize = 200;

/// What the issue list shows for an event.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IssueSummary {
    /// `Type: first line of value`, the message's first line, or `<unlabeled event>`.
    pub title: String,
    /// Where it happened: the transaction, else the crash frame, else the request URL; `""` if
    /// none of these is known.
    pub culprit: String,
    /// The exception type (`None` for messages and synthetic exceptions).
    pub ty: Option<String>,
    /// The exception value, or the message.
    pub value: Option<String>,
    /// The crash frame's file.
    pub filename: Option<String>,
    /// The crash frame's function.
    pub function: Option<String>,
}

fn truncate_chars(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// The first non-empty line, trimmed, at most 100 characters.
fn first_line(s: &str) -> String {
    let line = split_lines(s)
        .into_iter()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    truncate_chars(line, MAX_TITLE_CHARS)
}

/// The message as people read it: formatted, else the template.
fn message_text(event: &Event) -> Option<&str> {
    let m = event.message.as_ref()?;
    [&m.formatted, &m.message]
        .into_iter()
        .filter_map(nonempty)
        .find(|s| !s.trim().is_empty())
}

/// Sentry's `get_frame_culprit`: `module in function`, `function(module)` for JavaScript, the
/// bare function for native code.
fn frame_culprit(frame: &Frame, event_platform: &str) -> String {
    let platform = nonempty(&frame.platform).unwrap_or(event_platform);
    let function = nonempty(&frame.function).unwrap_or("?");
    if matches!(platform, "objc" | "cocoa" | "native") {
        return function.to_string();
    }
    let location = nonempty(&frame.module)
        .map(str::to_string)
        .or_else(|| display_filename(frame));
    let Some(location) = location else {
        return String::new();
    };
    if matches!(platform, "javascript" | "node") {
        return format!("{function}({location})");
    }
    format!(
        "{} in {function}",
        truncate_middle(&location, MAX_CULPRIT_CHARS)
    )
}

fn truncate_middle(s: &str, max: usize) -> String {
    let n = s.chars().count();
    if n <= max {
        return s.to_string();
    }
    let head: String = s.chars().take(max / 2).collect();
    let tail: String = s.chars().skip(n - (max - max / 2 - 1)).collect();
    format!("{head}…{tail}")
}

/// Sentry's `get_stacktrace_culprit`: the last in-app frame with a culprit, else the last frame.
fn stack_culprit(frames: &[Frame], event_platform: &str) -> Option<String> {
    let in_app = frames::effective_in_app(frames, event_platform);
    let mut fallback = None;
    for (frame, app) in frames.iter().zip(in_app).rev() {
        if frames::is_low_quality_js(frame, event_platform) {
            continue;
        }
        if app {
            let c = frame_culprit(frame, event_platform);
            if !c.is_empty() {
                return Some(c);
            }
        } else if fallback.is_none() {
            fallback = Some(frame_culprit(frame, event_platform));
        }
    }
    fallback.filter(|c| !c.is_empty())
}

fn culprit(event: &Event) -> String {
    if let Some(tx) = nonempty(&event.transaction) {
        return truncate_chars(tx, MAX_CULPRIT_CHARS);
    }
    let stacks = event
        .exceptions
        .iter()
        .rev()
        .filter_map(|e| e.stacktrace.as_ref())
        .chain(event.thread_stacktrace.as_ref())
        .filter(|st| !st.frames.is_empty());
    for st in stacks {
        if let Some(c) = stack_culprit(&st.frames, &event.platform) {
            return truncate_chars(&c, MAX_CULPRIT_CHARS);
        }
    }
    nonempty(&event.request_url)
        .map(|u| truncate_chars(u, MAX_CULPRIT_CHARS))
        .unwrap_or_default()
}

/// Title and culprit as the issue list shows them: `Type: first line of value` (at most 100
/// characters), the first line of a message, the crash frame's function for a synthetic
/// exception that has no message, `<unlabeled event>` when there is nothing. The culprit is the
/// transaction, else the crash frame (`module in function`, `function(module)` for JavaScript,
/// the bare function for native code), else the request URL.
pub fn summarize(event: &Event) -> IssueSummary {
    let culprit = culprit(event);
    if let Some(csp) = &event.csp {
        return IssueSummary {
            title: truncate_chars(
                &format!("Blocked '{}' from '{}'", csp.directive, csp.blocked_uri),
                MAX_TITLE_CHARS,
            ),
            culprit,
            ty: None,
            value: None,
            filename: None,
            function: None,
        };
    }
    let message = message_text(event);
    if let Some(main) = exceptions::main_index(event) {
        let exc = &event.exceptions[main];
        let frames = exc
            .stacktrace
            .as_ref()
            .map(|st| st.frames.as_slice())
            .unwrap_or_default();
        let crash = frames::crash_frame(frames, &event.platform, true);
        let function = crash.and_then(|f| display_function(f, &event.platform));
        let filename = crash.and_then(display_filename);
        let synthetic = exc.mechanism.as_ref().is_some_and(|m| m.synthetic);
        let (title, ty, value) = if synthetic {
            // A made-up type says nothing: captureMessage's synthetic exception is titled by its
            // message, a native signal by the function it hit.
            let title = match message {
                Some(m) => first_line(m),
                None => function.clone().unwrap_or_else(|| "<unknown>".to_string()),
            };
            let value = message.or(nonempty(&exc.value)).map(str::to_string);
            (title, None, value)
        } else {
            let ty = nonempty(&exc.ty).unwrap_or("Error").to_string();
            let value = nonempty(&exc.value).map(str::to_string);
            let title = match value.as_deref().map(first_line).filter(|l| !l.is_empty()) {
                Some(line) => format!("{ty}: {line}"),
                None => ty.clone(),
            };
            (title, Some(ty), value)
        };
        return IssueSummary {
            title,
            culprit,
            ty,
            value,
            filename,
            function,
        };
    }
    let crash = event
        .thread_stacktrace
        .as_ref()
        .and_then(|st| frames::crash_frame(&st.frames, &event.platform, true));
    let title = match message {
        Some(m) => first_line(m),
        None if event.kind == EventKind::Transaction => nonempty(&event.transaction)
            .map(|t| truncate_chars(t, MAX_TITLE_CHARS))
            .unwrap_or_else(|| "<unlabeled event>".to_string()),
        None => "<unlabeled event>".to_string(),
    };
    IssueSummary {
        title,
        culprit,
        ty: None,
        value: message.map(str::to_string),
        filename: crash.and_then(display_filename),
        function: crash.and_then(|f| display_function(f, &event.platform)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::*;

    fn check(event: &Event, title: &str, culprit: &str) -> IssueSummary {
        let s = summarize(event);
        assert_eq!((s.title.as_str(), s.culprit.as_str()), (title, culprit));
        s
    }

    #[test]
    fn exception_title_and_python_culprit() {
        let e = py_error(
            "ZeroDivisionError",
            "float division by zero\nmore detail",
            vec![
                py_frame("__main__", "main", true),
                py_frame("__main__", "_ratio", true),
            ],
        );
        let s = check(
            &e,
            "ZeroDivisionError: float division by zero",
            "__main__ in _ratio",
        );
        assert_eq!(s.ty.as_deref(), Some("ZeroDivisionError"));
        assert_eq!(
            s.value.as_deref(),
            Some("float division by zero\nmore detail")
        );
        assert_eq!(s.function.as_deref(), Some("_ratio"));
    }

    #[test]
    fn long_values_are_cut_at_100_characters() {
        let e = py_error("E", &"x".repeat(150), vec![]);
        let s = summarize(&e);
        assert_eq!(s.title, format!("E: {}…", "x".repeat(100)));
        assert_eq!(s.culprit, "");
    }

    #[test]
    fn missing_type_or_value() {
        check(&py_error("KeyError", "", vec![]), "KeyError", "");
        let mut e = py_error("X", "boom", vec![]);
        e.exceptions[0].ty = None;
        check(&e, "Error: boom", "");
    }

    #[test]
    fn transaction_wins_the_culprit() {
        let mut e = py_error("E", "v", vec![py_frame("app", "f", true)]);
        e.transaction = Some("/orders/{id}".into());
        e.request_url = Some("http://x.test/orders/1".into());
        check(&e, "E: v", "/orders/{id}");
    }

    #[test]
    fn request_url_is_the_last_resort() {
        let mut e = py_error("E", "v", vec![]);
        e.request_url = Some("http://x.test/orders/1".into());
        check(&e, "E: v", "http://x.test/orders/1");
    }

    #[test]
    fn javascript_culprit_is_function_of_module_or_path() {
        let mut e = event("javascript");
        e.exceptions = vec![exception(
            "TypeError",
            "x is undefined",
            vec![js_frame(
                "http://127.0.0.1:4000/static/app.min.js",
                "t.onload",
            )],
        )];
        let s = check(
            &e,
            "TypeError: x is undefined",
            "t.onload(/static/app.min.js)",
        );
        assert_eq!(s.filename.as_deref(), Some("/static/app.min.js"));
        let mut n = event("node");
        n.exceptions = vec![exception(
            "Error",
            "e",
            vec![node_frame("gen_node", "Object.fn", None, true)],
        )];
        check(&n, "Error: e", "Object.fn(gen_node)");
        // V8 built-ins are not where the bug is.
        let mut builtin = js_frame("<anonymous>", "JSON.parse");
        builtin.in_app = Some(true);
        e.exceptions[0]
            .stacktrace
            .as_mut()
            .unwrap()
            .frames
            .push(builtin);
        check(
            &e,
            "TypeError: x is undefined",
            "t.onload(/static/app.min.js)",
        );
    }

    #[test]
    fn native_culprit_is_the_bare_function() {
        let mut e = event("native");
        e.exceptions = vec![exception(
            "panic",
            "configuration value must be present",
            vec![
                native_frame("rustgen::main", true),
                native_frame("core::option::expect_failed", false),
            ],
        )];
        let s = check(
            &e,
            "panic: configuration value must be present",
            "rustgen::main",
        );
        assert_eq!(s.function.as_deref(), Some("rustgen::main"));
    }

    #[test]
    fn culprit_falls_back_to_the_last_frame_when_nothing_is_in_app() {
        let e = py_error(
            "E",
            "v",
            vec![
                py_frame("lib.a", "outer", false),
                py_frame("lib.b", "inner", false),
            ],
        );
        check(&e, "E: v", "lib.b in inner");
    }

    #[test]
    fn synthetic_capture_message_is_titled_by_its_message() {
        let mut e = event("node");
        e.message = Some(log_entry(
            Some("user %s exported %s rows"),
            Some("user u-99 exported 1200 rows"),
        ));
        e.exceptions = vec![synthetic_exception(
            "user u-99 exported 1200 rows",
            vec![node_frame("gen_node", "Object.fn", None, true)],
        )];
        let s = check(&e, "user u-99 exported 1200 rows", "Object.fn(gen_node)");
        assert_eq!(s.ty, None);
        assert_eq!(s.value.as_deref(), Some("user u-99 exported 1200 rows"));
    }

    #[test]
    fn synthetic_without_message_is_titled_by_the_crash_function() {
        let mut e = event("native");
        let mut exc = synthetic_exception("Segfault", vec![native_frame("void crash(int)", true)]);
        exc.ty = Some("SIGSEGV".into());
        e.exceptions = vec![exc];
        let s = check(&e, "crash", "void crash(int)");
        assert_eq!(s.function.as_deref(), Some("crash"));
        let mut bare = event("native");
        bare.exceptions = vec![synthetic_exception("Segfault", vec![])];
        check(&bare, "<unknown>", "");
    }

    #[test]
    fn message_events_use_the_first_formatted_line() {
        let e = with_message(
            event("python"),
            Some("charge failed for %s"),
            Some("\ncharge failed for cus_1\ntrace"),
        );
        let s = check(&e, "charge failed for cus_1", "");
        assert_eq!(s.value.as_deref(), Some("\ncharge failed for cus_1\ntrace"));
        let t = with_message(event("python"), Some("template only %s"), None);
        check(&t, "template only %s", "");
    }

    #[test]
    fn nothing_is_an_unlabeled_event() {
        let s = check(&event("python"), "<unlabeled event>", "");
        assert_eq!(
            (s.ty, s.value, s.filename, s.function),
            (None, None, None, None)
        );
    }

    #[test]
    fn csp_title() {
        let mut e = event("javascript");
        e.csp = Some(csp("script-src", "https://evil.test/x.js"));
        e.request_url = Some("https://shop.test/cart".into());
        check(
            &e,
            "Blocked 'script-src' from 'https://evil.test/x.js'",
            "https://shop.test/cart",
        );
    }

    #[test]
    fn thread_stack_culprit_for_messages() {
        let mut e = with_message(event("python"), None, Some("slow query"));
        e.thread_stacktrace = Some(stack(vec![py_frame("app.db", "query", true)]));
        let s = check(&e, "slow query", "app.db in query");
        assert_eq!(s.function.as_deref(), Some("query"));
    }
}
