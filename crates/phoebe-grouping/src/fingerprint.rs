//! Fingerprints sent by the SDK: variable resolution (`{{ transaction }}`, `{{ tags.x }}`, ...,
//! with Sentry's names and `<no-...>` placeholders) and how a fingerprint replaces (custom) or
//! salts (hybrid, with `{{ default }}`) the default grouping.

use std::sync::LazyLock;

use phoebe_protocol::event::{Event, Frame};
use regex::Regex;

use crate::frames::{self, nonempty};
use crate::{Component, Variant};

static VARIABLE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\{\{\s*(\S+?)\s*\}\}$").expect("constant regex"));

/// One entry of a resolved fingerprint.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Part {
    /// A constant, or a variable's value (with the variable as written).
    Value {
        value: String,
        variable: Option<String>,
    },
    /// `{{ default }}`: the default grouping goes here.
    Default,
}

/// The event's fingerprint with variables resolved; `None` when there is none or it only asks
/// for the default grouping.
pub(crate) fn resolve(event: &Event) -> Option<Vec<Part>> {
    let fingerprint = event.fingerprint.as_ref()?;
    let parts: Vec<Part> = fingerprint
        .iter()
        .map(|entry| match variable_name(entry) {
            Some("default") => Part::Default,
            Some(name) => Part::Value {
                value: resolve_variable(name, event),
                variable: Some(entry.clone()),
            },
            None => Part::Value {
                value: entry.clone(),
                variable: None,
            },
        })
        .collect();
    if parts.iter().all(|p| *p == Part::Default) {
        return None;
    }
    Some(parts)
}

fn variable_name(entry: &str) -> Option<&str> {
    VARIABLE
        .captures(entry)
        .and_then(|c| c.get(1))
        .map(|m| m.as_str())
}

/// The frame that stack variables refer to: the crash frame of the last exception, else of the
/// thread stack.
fn stack_frame(event: &Event) -> Option<&Frame> {
    let frames = event
        .exceptions
        .last()
        .and_then(|e| e.stacktrace.as_ref())
        .filter(|st| !st.frames.is_empty())
        .or(event.thread_stacktrace.as_ref())
        .map(|st| st.frames.as_slice())?;
    frames::crash_frame(frames, &event.platform, false)
}

fn resolve_variable(name: &str, event: &Event) -> String {
    let last = event.exceptions.last();
    let frame = || stack_frame(event);
    let or = |v: Option<&str>, placeholder: &str| v.unwrap_or(placeholder).to_string();
    match name {
        "transaction" => or(nonempty(&event.transaction), "<no-transaction>"),
        "message" => {
            let message = event
                .message
                .as_ref()
                .and_then(|m| nonempty(&m.formatted).or_else(|| nonempty(&m.message)));
            or(
                message.or_else(|| last.and_then(|e| nonempty(&e.value))),
                "<no-message>",
            )
        }
        "type" | "error.type" => or(last.and_then(|e| nonempty(&e.ty)), "<no-type>"),
        "value" | "error.value" => or(last.and_then(|e| nonempty(&e.value)), "<no-value>"),
        "function" | "stack.function" => {
            or(frame().and_then(|f| nonempty(&f.function)), "<no-function>")
        }
        "path" | "stack.abs_path" => or(
            frame().and_then(|f| nonempty(&f.abs_path).or_else(|| nonempty(&f.filename))),
            "<no-abs-path>",
        ),
        "stack.filename" => or(
            frame().and_then(|f| nonempty(&f.filename).or_else(|| nonempty(&f.abs_path))),
            "<no-filename>",
        ),
        "module" | "stack.module" => or(frame().and_then(|f| nonempty(&f.module)), "<no-module>"),
        "package" | "stack.package" => or(
            frame()
                .and_then(|f| nonempty(&f.package))
                .map(|p| p.rsplit(['/', '\\']).next().unwrap_or(p))
                .filter(|p| !p.is_empty()),
            "<no-package>",
        ),
        "level" => event.level.as_str().to_string(),
        "logger" => or(nonempty(&event.logger), "<no-logger>"),
        _ => match name.strip_prefix("tags.") {
            Some(tag) => event
                .tags
                .iter()
                .find(|(k, _)| k == tag)
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| format!("<no-value-for-tag-{tag}>")),
            None => format!("<unrecognized-variable-{name}>"),
        },
    }
}

fn fingerprint_component(run: Vec<(String, Option<String>)>) -> Component {
    let variables: Vec<String> = run.iter().filter_map(|(_, v)| v.clone()).collect();
    let values = run.into_iter().map(|(value, _)| value).collect();
    let hint = if variables.is_empty() {
        "fingerprint from the event".to_string()
    } else {
        format!(
            "fingerprint from the event; resolved {}",
            variables.join(", ")
        )
    };
    Component::leaf("fingerprint", values).with_hint(&hint)
}

/// Combines a resolved fingerprint with the default grouping: hybrid when it contains
/// `{{ default }}` (the default components spliced in at each such place), else custom (the
/// default components kept for the explanation but not hashed).
pub(crate) fn apply(parts: Vec<Part>, default: Vec<Component>) -> (Variant, Vec<Component>) {
    let hybrid = parts.contains(&Part::Default);
    let mut components = Vec::new();
    let mut run = Vec::new();
    for part in parts {
        match part {
            Part::Value { value, variable } => run.push((value, variable)),
            Part::Default => {
                if !run.is_empty() {
                    components.push(fingerprint_component(std::mem::take(&mut run)));
                }
                components.extend(default.iter().cloned());
            }
        }
    }
    if !run.is_empty() {
        components.push(fingerprint_component(run));
    }
    if hybrid {
        return (Variant::Hybrid, components);
    }
    components.extend(
        default
            .into_iter()
            .map(|c| c.excluded("the fingerprint replaces the default grouping")),
    );
    (Variant::Custom, components)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::group;
    use crate::testkit::*;
    use phoebe_protocol::event::Level;

    fn check(event: &Event, variant: Variant, expected: &[&str]) -> String {
        let g = group(event);
        assert_eq!(g.key(), expected, "{:#?}", g.components);
        assert_eq!(g.variant, variant);
        g.hash
    }

    fn fp(mut e: Event, entries: &[&str]) -> Event {
        e.fingerprint = Some(entries.iter().map(|s| s.to_string()).collect());
        e
    }

    fn sample() -> Event {
        let mut e = py_error(
            "ValueError",
            "bad 1",
            vec![
                py_frame("app.a", "outer", true),
                py_frame("app.b", "inner", true),
            ],
        );
        e.exceptions[0].stacktrace.as_mut().unwrap().frames[1].abs_path =
            Some("/srv/app/b.py".into());
        e.transaction = Some("/checkout".into());
        e.logger = Some("app.payments".into());
        e.level = Level::Warning;
        e.tags = vec![
            ("tenant".into(), "acme".into()),
            ("tenant".into(), "other".into()),
        ];
        e.message = Some(log_entry(Some("charge %s"), Some("charge 7")));
        e
    }

    #[test]
    fn default_only_fingerprint_is_default_grouping() {
        let e = sample();
        let default = group(&e);
        for entries in [
            &["{{ default }}"][..],
            &["{{default}}"],
            &["{{  default  }}", "{{ default }}"],
        ] {
            let g = group(&fp(e.clone(), entries));
            assert_eq!(g.hash, default.hash);
            assert_eq!(g.variant, Variant::App);
        }
        assert_eq!(group(&fp(e.clone(), &[])).hash, default.hash);
    }

    #[test]
    fn custom_fingerprint_ignores_stack_and_message() {
        let a = fp(sample(), &["database-down"]);
        let mut b = fp(
            py_error("KeyError", "other", vec![py_frame("x", "y", true)]),
            &["database-down"],
        );
        b.platform = "node".into();
        let hash = check(&a, Variant::Custom, &["database-down"]);
        assert_eq!(hash, group(&b).hash);
        let g = group(&a);
        assert!(!g.components[1].contributes);
        assert_eq!(
            g.components[1].hint.as_deref(),
            Some("the fingerprint replaces the default grouping")
        );
    }

    #[test]
    fn hybrid_fingerprint_salts_the_default() {
        let e = sample();
        let plain = group(&e);
        let hash = check(
            &fp(e.clone(), &["payment", "{{ default }}"]),
            Variant::Hybrid,
            &["payment", "ValueError", "app.a", "outer", "app.b", "inner"],
        );
        assert_ne!(hash, plain.hash);
        check(
            &fp(e, &["a", "{{default}}", "b"]),
            Variant::Hybrid,
            &["a", "ValueError", "app.a", "outer", "app.b", "inner", "b"],
        );
    }

    #[test]
    fn variables_resolve_with_and_without_spaces() {
        let e = fp(
            sample(),
            &[
                "{{ transaction }}",
                "{{message}}",
                "{{ type }}",
                "{{error.type}}",
                "{{ value }}",
                "{{ error.value }}",
                "{{ function }}",
                "{{ stack.function }}",
                "{{ module }}",
                "{{ path }}",
                "{{ stack.filename }}",
                "{{ level }}",
                "{{ logger }}",
                "{{ tags.tenant }}",
                "{{tags.missing}}",
                "{{ bogus }}",
                "{{ package }}",
                "{ not a variable }",
            ],
        );
        check(
            &e,
            Variant::Custom,
            &[
                "/checkout",
                "charge 7",
                "ValueError",
                "ValueError",
                "bad 1",
                "bad 1",
                "inner",
                "inner",
                "app.b",
                "/srv/app/b.py",
                "/srv/app/b.py",
                "warning",
                "app.payments",
                "acme",
                "<no-value-for-tag-missing>",
                "<unrecognized-variable-bogus>",
                "<no-package>",
                "{ not a variable }",
            ],
        );
    }

    #[test]
    fn tag_variable_splits_issues_by_tag() {
        let mut a = fp(sample(), &["{{ tags.tenant }}", "{{ default }}"]);
        let mut b = a.clone();
        a.tags = vec![("tenant".into(), "acme".into())];
        b.tags = vec![("tenant".into(), "globex".into())];
        assert_ne!(group(&a).hash, group(&b).hash);
        let g = group(&a);
        assert_eq!(
            g.components[0].hint.as_deref(),
            Some("fingerprint from the event; resolved {{ tags.tenant }}")
        );
    }

    #[test]
    fn placeholders_when_the_event_lacks_the_data() {
        let e = fp(
            event("go"),
            &[
                "{{ transaction }}",
                "{{ message }}",
                "{{ type }}",
                "{{ value }}",
                "{{ function }}",
                "{{ path }}",
                "{{ stack.filename }}",
                "{{ module }}",
                "{{ logger }}",
            ],
        );
        check(
            &e,
            Variant::Custom,
            &[
                "<no-transaction>",
                "<no-message>",
                "<no-type>",
                "<no-value>",
                "<no-function>",
                "<no-abs-path>",
                "<no-filename>",
                "<no-module>",
                "<no-logger>",
            ],
        );
    }

    #[test]
    fn message_variable_falls_back_to_exception_value() {
        let e = fp(py_error("E", "it broke", vec![]), &["{{ message }}"]);
        check(&e, Variant::Custom, &["it broke"]);
    }

    #[test]
    fn package_variable_is_a_basename() {
        let mut f = native_frame("crash", true);
        f.package = Some("C:\\app\\bin\\engine.dll".into());
        let mut e = fp(event("native"), &["{{ package }}"]);
        e.exceptions = vec![exception("EXCEPTION_ACCESS_VIOLATION", "x", vec![f])];
        check(&e, Variant::Custom, &["engine.dll"]);
    }
}
