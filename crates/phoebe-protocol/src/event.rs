//! The typed view of a normalized event: the fields that digest, grouping and the read models
//! rely on. The full normalized JSON (unknown keys kept) travels beside it in [`Event::payload`]
//! and is what gets stored; everything here is derived from it by [`crate::normalize`].

use chrono::{DateTime, Utc};
use uuid::Uuid;

/// A normalized event: the canonical JSON payload plus a typed view of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The normalized payload (a JSON object): canonical shapes (`exception`, `threads` and
    /// `breadcrumbs` as `{"values": [...]}`, `tags` as `[[k, v], ...]`, `logentry` as an object,
    /// `timestamp`/`received` as RFC 3339 strings), unknown keys kept, long strings and deep
    /// values trimmed, NUL characters removed. This is what Phoebe stores and serves.
    pub payload: serde_json::Value,
    /// The event id (the envelope header wins over the payload's; generated when missing).
    pub event_id: Uuid,
    /// When the event happened, after clock-drift correction and bounds checks.
    pub timestamp: DateTime<Utc>,
    /// When Phoebe received it.
    pub received: DateTime<Utc>,
    /// What kind of event this is.
    pub kind: EventKind,
    /// Severity; `error` when missing or invalid.
    pub level: Level,
    /// `python`, `javascript`, `node`, `native`, ... (`other` when missing).
    pub platform: String,
    /// The logger name, if any.
    pub logger: Option<String>,
    /// Release (trimmed, non-empty).
    pub release: Option<String>,
    /// Distribution within the release.
    pub dist: Option<String>,
    /// Environment (trimmed, non-empty; taken from an `environment` tag when the field is absent).
    pub environment: Option<String>,
    /// The reporting host.
    pub server_name: Option<String>,
    /// The transaction (route, task name...) the event happened in.
    pub transaction: Option<String>,
    /// The message, from `logentry` or the legacy `message` (string or object).
    pub message: Option<LogEntry>,
    /// Exceptions, oldest (root cause) first, the one actually raised last. Exceptions without a
    /// stack trace have borrowed the stack of their thread when the event had one.
    pub exceptions: Vec<Exception>,
    /// With no exception: the stack of the crashed thread, else of the current thread, else of
    /// the only thread.
    pub thread_stacktrace: Option<Stacktrace>,
    /// The SDK's fingerprint, coerced to strings (numbers and booleans stringified, others dropped).
    pub fingerprint: Option<Vec<String>>,
    /// Tags in order, keys unique (first wins): the client's own tags, then the derived ones
    /// (`level`, `environment`, `release`, `dist`, `server_name`, `transaction`, `logger`, `url`,
    /// `browser`, `browser.name`, `os`, `os.name`, `runtime`, `runtime.name`, `device`, `user`,
    /// `handled`, `mechanism`) where the event has them.
    pub tags: Vec<(String, String)>,
    /// The user, if the event names one.
    pub user: Option<User>,
    /// `request.url`, if any.
    pub request_url: Option<String>,
    /// The SDK that sent the event.
    pub sdk: Option<Sdk>,
    /// For `csp` events: the violated directive and the blocked URI.
    pub csp: Option<CspReport>,
}

impl Event {
    /// Reads the typed exceptions and thread stack again from the payload, after something
    /// rewrote its frames (source maps): grouping and summaries read the typed view.
    pub fn refresh_stacks(&mut self) {
        if let Some(map) = self.payload.as_object() {
            let (exceptions, thread_stacktrace) = crate::normalize::extract::stacks(map);
            self.exceptions = exceptions;
            self.thread_stacktrace = thread_stacktrace;
        }
    }
}

/// What kind of event this is (Sentry's `type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// Has an exception.
    Error,
    /// A message or anything else.
    Default,
    /// A browser security (CSP) report.
    Csp,
    /// A performance transaction (accepted, not grouped).
    Transaction,
    /// User feedback.
    Feedback,
}

impl EventKind {
    /// The wire name (`error`, `default`, `csp`, `transaction`, `feedback`).
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Error => "error",
            EventKind::Default => "default",
            EventKind::Csp => "csp",
            EventKind::Transaction => "transaction",
            EventKind::Feedback => "feedback",
        }
    }
}

/// Severity, ordered from least to most severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// `debug` (also Python's 10).
    Debug,
    /// `info` (also `log`, Python's 20).
    Info,
    /// `warning` (also `warn`, Python's 30).
    Warning,
    /// `error` (also Python's 40); the default.
    Error,
    /// `fatal` (also `critical`, Python's 50).
    Fatal,
}

impl Level {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warning => "warning",
            Level::Error => "error",
            Level::Fatal => "fatal",
        }
    }

    /// Parses a wire name or alias (case-insensitive); `None` for anything else.
    pub fn parse(s: &str) -> Option<Level> {
        match s.trim().to_ascii_lowercase().as_str() {
            "debug" => Some(Level::Debug),
            "info" | "log" => Some(Level::Info),
            "warning" | "warn" => Some(Level::Warning),
            "error" => Some(Level::Error),
            "fatal" | "critical" => Some(Level::Fatal),
            _ => None,
        }
    }
}

/// A log message: the template and the formatted text.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LogEntry {
    /// The template (`"user %s failed"`), preferred for grouping.
    pub message: Option<String>,
    /// The formatted message (`"user 42 failed"`), preferred for display.
    pub formatted: Option<String>,
}

/// One exception of a chain.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Exception {
    /// The exception type (`ValueError`); split out of `value` when the SDK left it empty and
    /// the value looks like `Type: rest`.
    pub ty: Option<String>,
    /// The exception message.
    pub value: Option<String>,
    /// The module the type lives in.
    pub module: Option<String>,
    /// How it was caught.
    pub mechanism: Option<Mechanism>,
    /// Its stack trace, oldest call first, crashing frame last.
    pub stacktrace: Option<Stacktrace>,
}

/// How an exception was captured.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Mechanism {
    /// `generic`, `excepthook`, `onerror`, `chained`, ...
    pub ty: String,
    /// `Some(false)` for an unhandled error (a crash).
    pub handled: Option<bool>,
    /// The type and value were made up by the SDK: don't group or title by them.
    pub synthetic: bool,
    /// Exception-group tree: this exception's id.
    pub exception_id: Option<u64>,
    /// Exception-group tree: the parent's id.
    pub parent_id: Option<u64>,
    /// This exception is a group (Python `ExceptionGroup`, JS `AggregateError`).
    pub is_exception_group: bool,
}

/// A stack trace, oldest call first.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Stacktrace {
    /// At most the last 250 frames.
    pub frames: Vec<Frame>,
}

/// One stack frame.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Frame {
    /// File name as the SDK reports it (may be relative).
    pub filename: Option<String>,
    /// Absolute path or URL of the file.
    pub abs_path: Option<String>,
    /// Module (Python, Java, ...).
    pub module: Option<String>,
    /// Package or binary image (native).
    pub package: Option<String>,
    /// Function name.
    pub function: Option<String>,
    /// The unmangled or original function name, if the SDK sent one.
    pub raw_function: Option<String>,
    /// The source line that was executing.
    pub context_line: Option<String>,
    /// 1-based line number.
    pub lineno: Option<u64>,
    /// 1-based column number.
    pub colno: Option<u64>,
    /// Whether the frame belongs to the application (`None`: the SDK did not say).
    pub in_app: Option<bool>,
    /// The frame's platform when it differs from the event's.
    pub platform: Option<String>,
}

/// The user an event was reported for.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct User {
    /// Application user id.
    pub id: Option<String>,
    /// Email address.
    pub email: Option<String>,
    /// User name.
    pub username: Option<String>,
    /// IP address (`{{auto}}` already resolved to the client address).
    pub ip_address: Option<String>,
}

impl User {
    /// The stable identity used to count distinct users and for the `user` tag:
    /// `id:..`, else `email:..`, else `username:..`, else `ip:..`.
    pub fn tag_value(&self) -> Option<String> {
        if let Some(v) = &self.id {
            return Some(format!("id:{v}"));
        }
        if let Some(v) = &self.email {
            return Some(format!("email:{v}"));
        }
        if let Some(v) = &self.username {
            return Some(format!("username:{v}"));
        }
        self.ip_address.as_ref().map(|v| format!("ip:{v}"))
    }
}

/// The SDK identity.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Sdk {
    /// `sentry.python`, `sentry.javascript.node`, ...
    pub name: String,
    /// Its version.
    pub version: Option<String>,
}

/// The grouping-relevant part of a browser security report.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CspReport {
    /// `effective-directive`, else the first token of `violated-directive`.
    pub directive: String,
    /// The blocked URI (or its host).
    pub blocked_uri: String,
}
