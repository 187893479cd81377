//! Grouping: a normalized event in, its fingerprint hash, the tree explaining it ("why grouped")
//! and the issue title out. Pure: no I/O, no clock, no panics on input.
//!
//! The algorithm is `phoebe-1` (protocol notes §7.4): a fingerprint from the event when it has
//! one, else the exception chain (types, in-app frames, never line numbers), else a thread stack,
//! else the parameterized message, else a per-platform fallback. Every grouping records the
//! algorithm name so that a later `phoebe-2` can run beside it during a transition window.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod exceptions;
mod fingerprint;
mod frames;
mod parameterize;
mod summary;
#[cfg(test)]
mod testkit;

use phoebe_protocol::event::Event;
use serde::Serialize;
use sha2::{Digest, Sha256};

pub use parameterize::parameterize;
pub use summary::{summarize, IssueSummary};

/// The name of this grouping algorithm; stored beside every hash it produces.
pub const ALGORITHM: &str = "phoebe-1";

/// The fingerprint of an event and the component tree that explains it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Grouping {
    /// Always [`ALGORITHM`].
    pub algorithm: &'static str,
    /// 32 lowercase hex digits: the first 16 bytes of
    /// `sha256("phoebe-1\0" + key values joined with "\x1f")`.
    pub hash: String,
    /// Which strategy produced the key.
    pub variant: Variant,
    /// The explanation tree; the key is the values of the contributing leaves, in tree order.
    pub components: Vec<Component>,
}

impl Grouping {
    /// The values that were hashed, in order: a human-readable form of the key.
    pub fn key(&self) -> Vec<String> {
        key_values(&self.components)
    }
}

/// The strategy that produced a grouping key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Variant {
    /// A fingerprint (from the SDK) without `{{ default }}`: stack and message are ignored.
    Custom,
    /// A fingerprint with `{{ default }}`: the default key spliced in at that position.
    Hybrid,
    /// Exception or thread stack, in-app frames only.
    App,
    /// Exception or thread stack, all frames: no frame was in-app.
    System,
    /// The parameterized log message.
    Message,
    /// A browser security-policy report.
    Csp,
    /// Nothing contributed: one issue per platform.
    Fallback,
}

impl Variant {
    /// The wire name (`custom`, `hybrid`, `app`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Variant::Custom => "custom",
            Variant::Hybrid => "hybrid",
            Variant::App => "app",
            Variant::System => "system",
            Variant::Message => "message",
            Variant::Csp => "csp",
            Variant::Fallback => "fallback",
        }
    }
}

/// One node of the explanation tree.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Component {
    /// `fingerprint`, `exception`, `type`, `value`, `stacktrace`, `frame`, `module`, `filename`,
    /// `function`, `context_line`, `package`, `thread`, `message`, `csp`, `fallback`.
    pub kind: String,
    /// The values this node adds to the key (containers have none).
    pub values: Vec<String>,
    /// Whether this node (and so its subtree) is part of the key.
    pub contributes: bool,
    /// Why it does not contribute, or what was done to its values.
    pub hint: Option<String>,
    /// Sub-components, in key order.
    pub children: Vec<Component>,
}

impl Component {
    /// A contributing leaf.
    pub(crate) fn leaf(kind: &str, values: Vec<String>) -> Component {
        Component {
            kind: kind.to_string(),
            values,
            contributes: true,
            hint: None,
            children: Vec::new(),
        }
    }

    /// A container that contributes when any of its children does.
    pub(crate) fn node(kind: &str, children: Vec<Component>) -> Component {
        Component {
            kind: kind.to_string(),
            values: Vec::new(),
            contributes: children.iter().any(|c| c.contributes),
            hint: None,
            children,
        }
    }

    pub(crate) fn with_hint(mut self, hint: &str) -> Component {
        self.hint = Some(hint.to_string());
        self
    }

    /// Marks the node as not contributing, keeping an earlier reason if there is one.
    pub(crate) fn exclude(&mut self, hint: &str) {
        if self.contributes || self.hint.is_none() {
            self.hint = Some(hint.to_string());
        }
        self.contributes = false;
    }

    pub(crate) fn excluded(mut self, hint: &str) -> Component {
        self.exclude(hint);
        self
    }
}

/// The values of the contributing leaves, in tree order; a non-contributing node hides its
/// whole subtree.
fn key_values(components: &[Component]) -> Vec<String> {
    fn walk(c: &Component, out: &mut Vec<String>) {
        if !c.contributes {
            return;
        }
        out.extend(c.values.iter().cloned());
        for child in &c.children {
            walk(child, out);
        }
    }
    let mut out = Vec::new();
    for c in components {
        walk(c, &mut out);
    }
    out
}

/// Whether a contributing node of this kind exists under contributing ancestors.
fn has_contributing(components: &[Component], kind: &str) -> bool {
    components
        .iter()
        .filter(|c| c.contributes)
        .any(|c| c.kind == kind || has_contributing(&c.children, kind))
}

/// Hashes a key. The separators keep `["ab", "c"]` and `["a", "bc"]` apart, and the algorithm
/// prefix keeps a later algorithm's hashes from colliding with these.
fn hash_key(values: &[String]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(ALGORITHM.as_bytes());
    hasher.update([0u8]);
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            hasher.update([0x1fu8]);
        }
        hasher.update(v.as_bytes());
    }
    let digest = hasher.finalize();
    let mut hex = String::with_capacity(32);
    for b in &digest[..16] {
        hex.push(char::from_digit(u32::from(b >> 4), 16).unwrap_or('0'));
        hex.push(char::from_digit(u32::from(b & 0xf), 16).unwrap_or('0'));
    }
    hex
}

/// The fingerprint of an event and the tree explaining it ("why grouped").
pub fn group(event: &Event) -> Grouping {
    let (default_variant, default_components) = default_grouping(event);
    let (variant, components) = match fingerprint::resolve(event) {
        None => (default_variant, default_components),
        Some(fp) => fingerprint::apply(fp, default_components),
    };
    let hash = hash_key(&key_values(&components));
    Grouping {
        algorithm: ALGORITHM,
        hash,
        variant,
        components,
    }
}

/// Grouping without a fingerprint: CSP report, exceptions, thread stack, message, fallback.
fn default_grouping(event: &Event) -> (Variant, Vec<Component>) {
    if let Some(csp) = &event.csp {
        let values = vec![
            "csp".to_string(),
            csp.directive.clone(),
            blocked_host(&csp.blocked_uri),
        ];
        return (Variant::Csp, vec![Component::leaf("csp", values)]);
    }
    // Parameterizing is the costly part of a message, and most error events never use it.
    let message = || message_component(event);
    if !event.exceptions.is_empty() {
        let (variant, mut components) = exceptions::components(event);
        if components.iter().any(|c| c.contributes) {
            // A captureMessage with an attached stack arrives as a synthetic exception: the stack
            // only says where the logging call is, the message says what happened.
            let all_synthetic = event
                .exceptions
                .iter()
                .all(|e| e.mechanism.as_ref().is_some_and(|m| m.synthetic));
            if all_synthetic && !has_contributing(&components, "value") {
                if let Some(m) = message() {
                    components.push(m);
                }
            }
            return (variant, components);
        }
    }
    if let Some(stack) = &event.thread_stacktrace {
        let (variant, stack) = frames::variant_stack(&stack.frames, &event.platform);
        if stack.contributes {
            let mut children = vec![stack];
            // Python's logging integration attaches the current thread's stack to log messages
            // (attach_stacktrace): same reasoning as for synthetic exceptions above.
            if let Some(m) = message() {
                children.push(m);
            }
            let thread = Component::node("thread", children);
            return (variant, vec![thread]);
        }
    }
    if let Some(m) = message() {
        return (Variant::Message, vec![m]);
    }
    let fallback = Component::leaf(
        "fallback",
        vec!["<empty>".to_string(), event.platform.clone()],
    )
    .with_hint("nothing else to group by: one issue per platform");
    (Variant::Fallback, vec![fallback])
}

/// The parameterized message, preferring the template (`"user %s failed"`) over the formatted
/// text because the template does not vary with its parameters.
fn message_component(event: &Event) -> Option<Component> {
    let entry = event.message.as_ref()?;
    let raw = [&entry.message, &entry.formatted]
        .into_iter()
        .flatten()
        .find(|s| !s.trim().is_empty())?;
    let normalized = parameterize(raw);
    let changed = normalized != *raw;
    let component = Component::leaf("message", vec![normalized]);
    Some(if changed {
        component.with_hint("parameterized")
    } else {
        component
    })
}

/// The host of a blocked URI (`https://cdn.example.com:8443/x.js` -> `cdn.example.com`);
/// keywords such as `inline`, `eval` or `self` and scheme-only values (`data:`) stay as they are.
fn blocked_host(uri: &str) -> String {
    let uri = uri.trim();
    if let Some((_, rest)) = uri.split_once("://") {
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        let host_port = authority.rsplit('@').next().unwrap_or("");
        let host = if host_port.starts_with('[') {
            // IPv6 literal: keep the brackets, drop the port.
            host_port.split(']').next().map(|h| format!("{h}]"))
        } else {
            host_port.split(':').next().map(str::to_string)
        };
        return host.unwrap_or_default().to_ascii_lowercase();
    }
    uri.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::*;

    /// Groups `event` and checks the variant and the exact key.
    fn check(event: &Event, variant: Variant, values: &[&str]) -> Grouping {
        let g = group(event);
        assert_eq!(g.key(), values, "key of {:#?}", g.components);
        assert_eq!(g.variant, variant);
        assert_eq!(g.hash, hash_key(&g.key()));
        assert_eq!(g.hash.len(), 32);
        g
    }

    #[test]
    fn hash_is_sha256_prefix_with_separators() {
        // sha256("phoebe-1\0a\x1fb"), computed independently with Python's hashlib.
        assert_eq!(
            hash_key(&["a".to_string(), "b".to_string()]),
            "419c9c06a456f9260c506dd7b3e2926e"
        );
        assert_ne!(
            hash_key(&["ab".to_string(), "c".to_string()]),
            hash_key(&["a".to_string(), "bc".to_string()])
        );
    }

    #[test]
    fn empty_event_falls_back_to_platform() {
        let e = event("go");
        let g = check(&e, Variant::Fallback, &["<empty>", "go"]);
        assert_ne!(g.hash, group(&event("python")).hash);
    }

    #[test]
    fn message_event_is_parameterized() {
        let a = with_message(
            event("python"),
            Some("user 42 logged in from 10.0.0.1"),
            None,
        );
        let b = with_message(
            event("python"),
            Some("user 7 logged in from 192.168.1.20"),
            None,
        );
        let ga = check(&a, Variant::Message, &["user <int> logged in from <ip>"]);
        assert_eq!(ga.hash, group(&b).hash);
        assert_eq!(ga.components[0].hint.as_deref(), Some("parameterized"));
    }

    #[test]
    fn message_ids_emails_uuids_group_together() {
        let a = with_message(
            event("python"),
            None,
            Some("order 1234 for ann@example.com failed: 1b4e28ba-2fa1-11d2-883f-0016d3cca427"),
        );
        let b = with_message(
            event("python"),
            None,
            Some("order 99 for bob@test.org failed: 6fa459ea-ee8a-3ca4-894e-db77e160355e"),
        );
        check(
            &a,
            Variant::Message,
            &["order <int> for <email> failed: <uuid>"],
        );
        assert_eq!(group(&a).hash, group(&b).hash);
    }

    #[test]
    fn message_template_wins_over_formatted() {
        let a = with_message(
            event("python"),
            Some("charge failed for %s"),
            Some("charge failed for cus_1"),
        );
        check(&a, Variant::Message, &["charge failed for %s"]);
    }

    #[test]
    fn csp_groups_by_directive_and_host() {
        let mut a = event("javascript");
        a.csp = Some(csp("script-src", "https://evil.example.com:8443/x.js?v=1"));
        let mut b = event("javascript");
        b.csp = Some(csp("script-src", "https://evil.example.com/other.js"));
        check(&a, Variant::Csp, &["csp", "script-src", "evil.example.com"]);
        assert_eq!(group(&a).hash, group(&b).hash);
        let mut c = event("javascript");
        c.csp = Some(csp("script-src", "inline"));
        check(&c, Variant::Csp, &["csp", "script-src", "inline"]);
    }

    #[test]
    fn blocked_host_handles_odd_uris() {
        assert_eq!(blocked_host("data:"), "data:");
        assert_eq!(blocked_host("https://u:p@Host.COM/x"), "host.com");
        assert_eq!(blocked_host("http://[::1]:8080/x"), "[::1]");
        assert_eq!(blocked_host("https://"), "");
    }

    #[test]
    fn thread_stack_without_exception_groups_by_stack() {
        let mut e = event("python");
        e.thread_stacktrace = Some(stack(vec![
            py_frame("app.main", "run", true),
            py_frame("app.jobs", "work", true),
        ]));
        check(&e, Variant::App, &["app.main", "run", "app.jobs", "work"]);
    }

    #[test]
    fn thread_stack_of_a_log_message_adds_the_message() {
        let mut e = with_message(event("python"), Some("retrying %s"), Some("retrying x"));
        e.thread_stacktrace = Some(stack(vec![py_frame("app.jobs", "work", true)]));
        check(&e, Variant::App, &["app.jobs", "work", "retrying %s"]);
    }

    #[test]
    fn thread_stack_that_contributes_nothing_falls_through_to_message() {
        let mut e = with_message(event("native"), None, Some("boom"));
        e.thread_stacktrace = Some(stack(vec![native_frame("<unknown>", false)]));
        check(&e, Variant::Message, &["boom"]);
    }

    #[test]
    fn transaction_is_not_part_of_the_default_key() {
        let mut a = py_error("ValueError", "bad", vec![py_frame("app", "f", true)]);
        let mut b = a.clone();
        a.transaction = Some("/a".into());
        b.transaction = Some("/b".into());
        assert_eq!(group(&a).hash, group(&b).hash);
    }

    #[test]
    fn handled_or_not_is_not_part_of_the_key() {
        let a = py_error("ValueError", "bad", vec![py_frame("app", "f", true)]);
        let mut b = a.clone();
        b.exceptions[0].mechanism = Some(mechanism("excepthook", Some(false)));
        assert_eq!(group(&a).hash, group(&b).hash);
    }

    #[test]
    fn node_synthetic_capture_message_groups_by_stack_and_message() {
        // @sentry/node captureMessage with attachStacktrace: a typeless synthetic exception whose
        // value repeats the message.
        let mut e = event("node");
        e.message = Some(log_entry(None, Some("cache miss ratio above 40%")));
        e.exceptions = vec![synthetic_exception(
            "cache miss ratio above 40%",
            vec![
                node_frame("loader", "Module._compile", None, false),
                node_frame(
                    "gen_node",
                    "Object.fn",
                    Some("    Sentry.captureMessage('cache miss', { level: 'warning' });"),
                    true,
                ),
            ],
        )];
        let g = check(
            &e,
            Variant::App,
            &[
                "gen_node",
                "fn",
                "Sentry.captureMessage('cache miss', { level: 'warning' });",
                "cache miss ratio above <int>%",
            ],
        );
        assert!(g.key().iter().all(|v| v != "Error"));
        // Another message from the same call site is another issue.
        let mut other = e.clone();
        other.message = Some(log_entry(None, Some("queue depth above limit")));
        assert_ne!(group(&other).hash, g.hash);
    }

    #[test]
    fn synthetic_exception_without_frames_uses_its_value() {
        let mut e = event("javascript");
        e.message = Some(log_entry(None, Some("checkout rendered 3 times")));
        e.exceptions = vec![synthetic_exception("checkout rendered 3 times", vec![])];
        check(&e, Variant::System, &["checkout rendered <int> times"]);
    }
}
