//! Test builders: small `Event` values made by hand, so grouping tests don't depend on the
//! normalizer.

use chrono::DateTime;
use phoebe_protocol::event::{
    CspReport, Event, EventKind, Exception, Frame, Level, LogEntry, Mechanism, Stacktrace,
};
use uuid::Uuid;

/// An event with nothing in it but the platform.
pub(crate) fn event(platform: &str) -> Event {
    Event {
        payload: serde_json::json!({}),
        event_id: Uuid::nil(),
        timestamp: DateTime::UNIX_EPOCH,
        received: DateTime::UNIX_EPOCH,
        kind: EventKind::Default,
        level: Level::Error,
        platform: platform.to_string(),
        logger: None,
        release: None,
        dist: None,
        environment: None,
        server_name: None,
        transaction: None,
        message: None,
        exceptions: Vec::new(),
        thread_stacktrace: None,
        fingerprint: None,
        tags: Vec::new(),
        user: None,
        request_url: None,
        sdk: None,
        csp: None,
    }
}

pub(crate) fn log_entry(template: Option<&str>, formatted: Option<&str>) -> LogEntry {
    LogEntry {
        message: template.map(str::to_string),
        formatted: formatted.map(str::to_string),
    }
}

pub(crate) fn with_message(mut e: Event, template: Option<&str>, formatted: Option<&str>) -> Event {
    e.message = Some(log_entry(template, formatted));
    e
}

pub(crate) fn csp(directive: &str, blocked_uri: &str) -> CspReport {
    CspReport {
        directive: directive.to_string(),
        blocked_uri: blocked_uri.to_string(),
    }
}

pub(crate) fn stack(frames: Vec<Frame>) -> Stacktrace {
    Stacktrace { frames }
}

pub(crate) fn mechanism(ty: &str, handled: Option<bool>) -> Mechanism {
    Mechanism {
        ty: ty.to_string(),
        handled,
        ..Mechanism::default()
    }
}

pub(crate) fn exception(ty: &str, value: &str, frames: Vec<Frame>) -> Exception {
    Exception {
        ty: Some(ty.to_string()),
        value: Some(value.to_string()),
        mechanism: Some(mechanism("generic", Some(true))),
        stacktrace: (!frames.is_empty()).then(|| stack(frames)),
        ..Exception::default()
    }
}

/// What @sentry/node and @sentry/browser send for captureMessage with a stack: no type, the
/// message as value, `mechanism.synthetic`.
pub(crate) fn synthetic_exception(value: &str, frames: Vec<Frame>) -> Exception {
    Exception {
        ty: None,
        value: Some(value.to_string()),
        mechanism: Some(Mechanism {
            synthetic: true,
            ..mechanism("generic", Some(true))
        }),
        stacktrace: (!frames.is_empty()).then(|| stack(frames)),
        ..Exception::default()
    }
}

/// A Python error event with one exception.
pub(crate) fn py_error(ty: &str, value: &str, frames: Vec<Frame>) -> Event {
    let mut e = event("python");
    e.kind = EventKind::Error;
    e.exceptions = vec![exception(ty, value, frames)];
    e
}

pub(crate) fn frames_mut(e: &mut Exception) -> &mut Vec<Frame> {
    &mut e.stacktrace.get_or_insert_with(Stacktrace::default).frames
}

pub(crate) fn py_frame(module: &str, function: &str, in_app: bool) -> Frame {
    Frame {
        module: Some(module.to_string()),
        function: Some(function.to_string()),
        in_app: Some(in_app),
        ..Frame::default()
    }
}

pub(crate) fn native_frame(function: &str, in_app: bool) -> Frame {
    Frame {
        function: Some(function.to_string()),
        in_app: Some(in_app),
        ..Frame::default()
    }
}

/// A browser frame as the JavaScript SDK sends it: the URL in `filename`, no `abs_path`.
pub(crate) fn js_frame(url: &str, function: &str) -> Frame {
    Frame {
        filename: Some(url.to_string()),
        function: Some(function.to_string()),
        in_app: Some(true),
        ..Frame::default()
    }
}

pub(crate) fn node_frame(
    module: &str,
    function: &str,
    context: Option<&str>,
    in_app: bool,
) -> Frame {
    Frame {
        filename: Some(format!("/srv/app/{module}.js")),
        module: Some(module.to_string()),
        function: Some(function.to_string()),
        context_line: context.map(str::to_string),
        in_app: Some(in_app),
        ..Frame::default()
    }
}
