//! Exceptions: which exceptions of a chain count (the last 10; for exception groups, the
//! distinct leaf errors as Sentry's RFC 0079 rule picks them), what each contributes (type unless
//! synthetic, its stack, its parameterized value when the stack gives nothing), and which one
//! titles the issue.

use std::collections::{HashMap, HashSet};

use phoebe_protocol::event::{Event, Exception};

use crate::frames::{self, nonempty, FrameEval};
use crate::{key_values, parameterize, Component, Variant};

/// Long chains are mostly re-raises of the same failure; the newest ten say enough.
const MAX_EXCEPTIONS: usize = 10;

fn is_synthetic(e: &Exception) -> bool {
    e.mechanism.as_ref().is_some_and(|m| m.synthetic)
}

fn is_group(e: &Exception) -> bool {
    e.mechanism.as_ref().is_some_and(|m| m.is_exception_group)
}

/// One exception's component. `stack` is its `stacktrace` component, if it has frames.
fn exception_component(exc: &Exception, stack: Option<Component>) -> Component {
    let mut children = Vec::new();
    if let Some(ty) = nonempty(&exc.ty) {
        let mut c = Component::leaf("type", vec![ty.to_string()]);
        if is_synthetic(exc) {
            c.exclude("synthetic: the SDK made the type up");
        }
        children.push(c);
    }
    let mut stack_contributes = false;
    if let Some(stack) = stack {
        stack_contributes = stack.contributes;
        children.push(stack);
    }
    if let Some(value) = nonempty(&exc.value) {
        let normalized = parameterize(value);
        let changed = normalized != value;
        let mut c = Component::leaf("value", vec![normalized]);
        if stack_contributes {
            c.exclude("the stack trace takes precedence");
        } else if changed {
            c.hint = Some("parameterized".to_string());
        }
        children.push(c);
    }
    Component::node("exception", children)
}

/// What the exception-group rule and the cap decided.
struct Selection {
    /// Per exception: `None` if it counts, else why not.
    excluded: Vec<Option<&'static str>>,
    /// The exception that titles the issue.
    main: usize,
}

/// Sentry's rule for exception groups (`filter_exceptions_for_exception_groups`): descend from
/// the root through group nodes to the first non-group exceptions, sort them by type and drop
/// duplicates. One distinct error: it and its first-child path count (and it titles the issue);
/// several: one of each plus the root group. `None` when the event is not a well-formed tree.
///
/// `keys` gives every exception's system-variant key; it is called only for a well-formed tree,
/// because building the keys evaluates every stack and most events are not exception groups.
fn exception_group_rule(
    excs: &[Exception],
    keys: &dyn Fn() -> Vec<Vec<String>>,
) -> Option<(Vec<usize>, Option<usize>)> {
    if excs.len() <= 1 {
        return None;
    }
    let mut index_of: HashMap<u64, usize> = HashMap::new();
    for (i, e) in excs.iter().enumerate() {
        let id = e.mechanism.as_ref()?.exception_id?;
        if index_of.insert(id, i).is_some() {
            return None;
        }
    }
    let root = *index_of.get(&0)?;
    // Sentry builds the child lists walking the exceptions backwards; keep its order so that
    // "first child" means the same thing.
    let mut children: HashMap<u64, Vec<usize>> = HashMap::new();
    for i in (0..excs.len()).rev() {
        let m = excs[i].mechanism.as_ref()?;
        if let Some(parent) = m.parent_id {
            if Some(parent) == m.exception_id || !index_of.contains_key(&parent) {
                return None;
            }
            children.entry(parent).or_default().push(i);
        }
    }
    let id_of = |i: usize| excs[i].mechanism.as_ref().and_then(|m| m.exception_id);
    let kids = |i: usize| -> Vec<usize> {
        id_of(i)
            .and_then(|id| children.get(&id))
            .cloned()
            .unwrap_or_default()
    };

    fn top_level(
        i: usize,
        excs: &[Exception],
        kids: &dyn Fn(usize) -> Vec<usize>,
        seen: &mut HashSet<usize>,
        out: &mut Vec<usize>,
    ) {
        if !seen.insert(i) {
            return;
        }
        if is_group(&excs[i]) {
            for child in kids(i) {
                top_level(child, excs, kids, seen, out);
            }
        } else {
            out.push(i);
        }
    }
    let mut top = Vec::new();
    top_level(root, excs, &kids, &mut HashSet::new(), &mut top);
    if top.is_empty() {
        return None;
    }
    let type_name = |i: usize| excs[i].ty.clone().unwrap_or_else(|| "None".to_string());
    top.sort_by_key(|&i| std::cmp::Reverse(type_name(i)));
    let keys = keys();
    let mut distinct: Vec<usize> = Vec::new();
    for i in top {
        if distinct.last().is_none_or(|&last| keys[last] != keys[i]) {
            distinct.push(i);
        }
    }
    if let [only] = distinct[..] {
        let mut path = vec![only];
        let mut seen: HashSet<usize> = HashSet::from([only]);
        let mut current = only;
        while let Some(&first) = kids(current).first() {
            if !seen.insert(first) {
                break;
            }
            path.push(first);
            current = first;
        }
        return Some((path, Some(only)));
    }
    if !distinct.contains(&root) {
        distinct.push(root);
    }
    Some((distinct, None))
}

fn select(excs: &[Exception], keys: &dyn Fn() -> Vec<Vec<String>>) -> Selection {
    let n = excs.len();
    let mut excluded: Vec<Option<&'static str>> = vec![None; n];
    let mut main = n.saturating_sub(1);
    if let Some((chosen, group_main)) = exception_group_rule(excs, keys) {
        for (i, slot) in excluded.iter_mut().enumerate() {
            if !chosen.contains(&i) {
                *slot = Some(if is_group(&excs[i]) {
                    "exception group: its distinct errors count instead"
                } else {
                    "exception group: a duplicate or not on the first path"
                });
            }
        }
        if let Some(m) = group_main {
            main = m;
        }
    }
    let mut kept = 0;
    for slot in excluded.iter_mut().rev() {
        if slot.is_none() {
            kept += 1;
            if kept > MAX_EXCEPTIONS {
                *slot = Some("only the last 10 exceptions count");
            }
        }
    }
    Selection { excluded, main }
}

fn evaluate_all(event: &Event) -> Vec<Option<Vec<FrameEval>>> {
    event
        .exceptions
        .iter()
        .map(|e| {
            e.stacktrace
                .as_ref()
                .map(|st| frames::evaluate(&st.frames, &event.platform))
        })
        .collect()
}

fn system_keys(event: &Event, evals: &[Option<Vec<FrameEval>>]) -> Vec<Vec<String>> {
    event
        .exceptions
        .iter()
        .zip(evals)
        .map(|(e, ev)| {
            let stack = ev
                .as_deref()
                .filter(|ev| !ev.is_empty())
                .map(|ev| frames::stack_component(ev, false));
            key_values(&[exception_component(e, stack)])
        })
        .collect()
}

/// The exception components of an event (oldest first) and the variant: `App` when an in-app
/// frame of a counted exception contributes, else `System`.
pub(crate) fn components(event: &Event) -> (Variant, Vec<Component>) {
    let evals = evaluate_all(event);
    let selection = select(&event.exceptions, &|| system_keys(event, &evals));
    let app = evals
        .iter()
        .zip(&selection.excluded)
        .any(|(ev, ex)| ex.is_none() && ev.as_deref().is_some_and(frames::has_app_frames));
    let components = event
        .exceptions
        .iter()
        .zip(evals)
        .zip(&selection.excluded)
        .map(|((e, ev), ex)| {
            // Each stack is used once more: move its frame components instead of cloning them.
            let stack = ev
                .filter(|ev| !ev.is_empty())
                .map(|ev| frames::into_stack_component(ev, app));
            let c = exception_component(e, stack);
            match ex {
                Some(hint) => c.excluded(hint),
                None => c,
            }
        })
        .collect();
    (if app { Variant::App } else { Variant::System }, components)
}

/// The index of the exception that titles the issue: the last one, or the single distinct
/// error of an exception group.
pub(crate) fn main_index(event: &Event) -> Option<usize> {
    if event.exceptions.is_empty() {
        return None;
    }
    // The stacks are evaluated only if the exception-group rule needs the keys.
    let keys = || system_keys(event, &evaluate_all(event));
    Some(select(&event.exceptions, &keys).main)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::*;
    use crate::{group, Grouping};

    fn check(event: &Event, variant: Variant, expected: &[&str]) -> Grouping {
        let g = group(event);
        assert_eq!(g.key(), expected, "{:#?}", g.components);
        assert_eq!(g.variant, variant);
        g
    }

    fn app_frames() -> Vec<phoebe_protocol::event::Frame> {
        vec![
            py_frame("app.main", "run", true),
            py_frame("app.db", "query", true),
        ]
    }

    #[test]
    fn same_error_from_other_line_numbers_is_one_issue() {
        let mut a = py_error("ValueError", "bad input", app_frames());
        let mut b = a.clone();
        for (i, f) in frames_mut(&mut a.exceptions[0]).iter_mut().enumerate() {
            f.lineno = Some(10 + i as u64);
            f.colno = Some(3);
        }
        for (i, f) in frames_mut(&mut b.exceptions[0]).iter_mut().enumerate() {
            f.lineno = Some(200 + i as u64);
        }
        let g = check(
            &a,
            Variant::App,
            &["ValueError", "app.main", "run", "app.db", "query"],
        );
        assert_eq!(g.hash, group(&b).hash);
    }

    #[test]
    fn different_exception_type_is_another_issue() {
        let a = py_error("ValueError", "bad input", app_frames());
        let b = py_error("KeyError", "bad input", app_frames());
        assert_ne!(group(&a).hash, group(&b).hash);
    }

    #[test]
    fn value_is_ignored_when_the_stack_contributes() {
        let a = py_error("ValueError", "bad input 1", app_frames());
        let b = py_error("ValueError", "something else entirely", app_frames());
        assert_eq!(group(&a).hash, group(&b).hash);
    }

    #[test]
    fn without_frames_the_parameterized_value_counts() {
        let a = py_error(
            "ConnectionError",
            "timeout after 30 attempts to 10.1.2.3",
            vec![],
        );
        let b = py_error(
            "ConnectionError",
            "timeout after 5 attempts to 10.9.9.9",
            vec![],
        );
        let g = check(
            &a,
            Variant::System,
            &["ConnectionError", "timeout after <int> attempts to <ip>"],
        );
        assert_eq!(g.hash, group(&b).hash);
    }

    #[test]
    fn python_site_packages_frames_do_not_count_when_app_frames_exist() {
        let mut lib = py_frame("flask.app", "dispatch_request", false);
        lib.abs_path = Some("/venv/lib/python3.11/site-packages/flask/app.py".into());
        let a = py_error(
            "PermissionError",
            "denied",
            vec![lib.clone(), py_frame("app.views", "pay", true)],
        );
        check(&a, Variant::App, &["PermissionError", "app.views", "pay"]);
        // A framework upgrade that changes its own frames changes nothing.
        let mut lib2 = lib.clone();
        lib2.function = Some("full_dispatch_request".into());
        let b = py_error(
            "PermissionError",
            "denied",
            vec![lib, lib2, py_frame("app.views", "pay", true)],
        );
        assert_eq!(group(&a).hash, group(&b).hash);
    }

    #[test]
    fn chained_exceptions_count_oldest_first() {
        let mut e = event("python");
        e.exceptions = vec![
            exception(
                "KeyError",
                "'timeout'",
                vec![py_frame("app.cfg", "load", true)],
            ),
            exception(
                "ValueError",
                "config broken",
                vec![py_frame("app.svc", "start", true)],
            ),
        ];
        let g = check(
            &e,
            Variant::App,
            &[
                "KeyError",
                "app.cfg",
                "load",
                "ValueError",
                "app.svc",
                "start",
            ],
        );
        // Same outer error, another cause: another issue.
        let mut other = e.clone();
        other.exceptions[0].ty = Some("FileNotFoundError".into());
        assert_ne!(group(&other).hash, g.hash);
    }

    #[test]
    fn chain_member_without_app_frames_contributes_type_and_value() {
        let mut e = event("python");
        e.exceptions = vec![
            exception(
                "OSError",
                "[Errno 2] No such file: '/x/7'",
                vec![py_frame("lib.io", "open", false)],
            ),
            exception(
                "RuntimeError",
                "boot failed",
                vec![py_frame("app", "boot", true)],
            ),
        ];
        check(
            &e,
            Variant::App,
            &[
                "OSError",
                "[Errno <int>] No such file: '/x/<int>'",
                "RuntimeError",
                "app",
                "boot",
            ],
        );
    }

    #[test]
    fn only_the_last_ten_exceptions_count() {
        let mut e = event("python");
        e.exceptions = (0..12)
            .map(|i| exception(&format!("E{i}"), "x", vec![]))
            .collect();
        let key = group(&e).key();
        assert_eq!(key.len(), 20);
        assert_eq!(key[0], "E2");
        assert_eq!(key[18], "E11");
    }

    #[test]
    fn synthetic_type_is_ignored_and_stack_counts() {
        let mut e = event("native");
        let mut exc = exception(
            "SIGSEGV",
            "Segfault",
            vec![native_frame("main", true), native_frame("crash_here", true)],
        );
        exc.mechanism = Some(phoebe_protocol::event::Mechanism {
            ty: "signalhandler".into(),
            synthetic: true,
            ..Default::default()
        });
        e.exceptions = vec![exc];
        let g = check(&e, Variant::App, &["main", "crash_here"]);
        let ty = &g.components[0].children[0];
        assert_eq!((ty.kind.as_str(), ty.contributes), ("type", false));
    }

    #[test]
    fn unsymbolicated_native_frames_group_by_binary() {
        // A minidump without debug files: no function names, only the binaries.
        let frames = ["C:\\Windows\\System32\\kernel32.dll", "C:\\Game\\game.exe"]
            .into_iter()
            .map(|package| phoebe_protocol::event::Frame {
                package: Some(package.into()),
                ..Default::default()
            })
            .collect();
        let mut e = event("native");
        e.exceptions = vec![exception("EXCEPTION_ACCESS_VIOLATION_READ", "0x0", frames)];
        check(
            &e,
            Variant::System,
            &[
                "EXCEPTION_ACCESS_VIOLATION_READ",
                "kernel32.dll",
                "game.exe",
            ],
        );
    }

    fn grouped(ty: &str, value: &str, id: u64, parent: Option<u64>, group: bool) -> Exception {
        let mut e = exception(
            ty,
            value,
            vec![py_frame("app", &format!("raise_{ty}"), true)],
        );
        e.mechanism = Some(phoebe_protocol::event::Mechanism {
            ty: "chained".into(),
            exception_id: Some(id),
            parent_id: parent,
            is_exception_group: group,
            ..Default::default()
        });
        e
    }

    #[test]
    fn exception_group_of_one_distinct_error_is_that_error() {
        // ExceptionGroup("many", [ValueError, ValueError]) from the same place: Python's SDK
        // lists children first and the group last.
        let mut e = event("python");
        e.exceptions = vec![
            grouped("ValueError", "bad 1", 2, Some(0), false),
            grouped("ValueError", "bad 2", 1, Some(0), false),
            grouped("ExceptionGroup", "many (2 sub-exceptions)", 0, None, true),
        ];
        let g = check(&e, Variant::App, &["ValueError", "app", "raise_ValueError"]);
        assert_eq!(main_index(&e), Some(1));
        assert_eq!(
            g.components[2].hint.as_deref(),
            Some("exception group: its distinct errors count instead")
        );
        assert_eq!(crate::summarize(&e).title, "ValueError: bad 2");
    }

    #[test]
    fn exception_group_of_distinct_errors_keeps_each_and_the_group() {
        let mut e = event("python");
        e.exceptions = vec![
            grouped("ValueError", "v", 3, Some(1), false),
            grouped("TypeError", "t", 2, Some(1), false),
            grouped("ExceptionGroup", "inner", 1, Some(0), true),
            grouped("KeyError", "k", 4, Some(0), false),
            grouped("ExceptionGroup", "outer", 0, None, true),
        ];
        check(
            &e,
            Variant::App,
            &[
                "ValueError",
                "app",
                "raise_ValueError",
                "TypeError",
                "app",
                "raise_TypeError",
                "KeyError",
                "app",
                "raise_KeyError",
                "ExceptionGroup",
                "app",
                "raise_ExceptionGroup",
            ],
        );
        assert_eq!(main_index(&e), Some(4));
    }

    #[test]
    fn linked_causes_with_ids_keep_the_whole_chain() {
        // @sentry/node linkedErrors: cause ids point at their parent, the raised error is id 0.
        let mut e = event("python");
        e.exceptions = vec![
            grouped("Error", "root", 2, Some(1), false),
            grouped("TypeError", "mid", 1, Some(0), false),
            grouped("PaymentError", "top", 0, None, false),
        ];
        let key = group(&e).key();
        assert_eq!(
            key.iter()
                .filter(|v| v.ends_with("Error") && !v.starts_with("raise_"))
                .count(),
            3
        );
        assert_eq!(main_index(&e), Some(2));
    }

    #[test]
    fn broken_exception_trees_use_the_list_unchanged() {
        let cases: Vec<Vec<Exception>> = vec![
            // duplicate ids
            vec![
                grouped("A", "a", 1, Some(0), false),
                grouped("B", "b", 1, None, true),
            ],
            // self-parenting
            vec![
                grouped("A", "a", 1, Some(1), false),
                grouped("B", "b", 0, None, true),
            ],
            // no root
            vec![
                grouped("A", "a", 2, Some(1), false),
                grouped("B", "b", 1, None, true),
            ],
            // everything is a group
            vec![
                grouped("A", "a", 1, Some(0), true),
                grouped("B", "b", 0, None, true),
            ],
            // a missing id
            vec![
                exception("A", "a", vec![]),
                grouped("B", "b", 0, None, true),
            ],
            // a parent that does not exist
            vec![
                grouped("A", "a", 1, Some(7), false),
                grouped("B", "b", 0, None, true),
            ],
        ];
        for excs in cases {
            let mut e = event("python");
            e.exceptions = excs;
            let g = group(&e);
            assert!(
                g.components.iter().all(|c| c.contributes),
                "{:#?}",
                g.components
            );
            assert_eq!(main_index(&e), Some(1));
        }
    }
}
