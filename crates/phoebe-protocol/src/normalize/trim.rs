//! Trimming: NUL characters out of every string and key, strings cut to the configured length,
//! and free-form data ("databags") cut to the configured depth. It knows where databags live but
//! not what any field means.

use serde_json::Value;

use super::{NormalizeLimits, Object, Problems};

/// What a container nested too deep is replaced with, so the reader sees that something was cut.
pub(super) const DEPTH_MARKER: &str = "[trimmed: depth]";

/// Hard nesting cap for the whole payload. `serde_json` already refuses input nested deeper than
/// 128 levels; this bounds our own recursion for values built in memory.
const MAX_WALK_DEPTH: usize = 128;

/// A payload path, built on the stack while walking and rendered only when a problem is found.
#[derive(Debug, Clone, Copy)]
pub(super) enum Seg<'a> {
    /// The event object itself.
    Root,
    /// An object member.
    Key(&'a str, &'a Seg<'a>),
    /// An array element.
    Index(usize, &'a Seg<'a>),
}

impl Seg<'_> {
    /// The dotted path (`exception.values.0.value`).
    pub(super) fn render(&self) -> String {
        let mut parts = Vec::new();
        let mut seg = self;
        loop {
            match seg {
                Seg::Root => break,
                Seg::Key(key, parent) => {
                    parts.push((*key).to_owned());
                    seg = parent;
                }
                Seg::Index(i, parent) => {
                    parts.push(i.to_string());
                    seg = parent;
                }
            }
        }
        parts.reverse();
        parts.join(".")
    }
}

/// Which repairs [`clean_strings`] may have to make. A value parsed from JSON text can rule
/// most of them out from the text alone, and then the walk over the whole payload (about a tenth
/// of normalization on a typical event) is skipped.
#[derive(Debug, Clone, Copy)]
pub(super) struct CleanNeeds {
    /// A string or key may contain NUL.
    nul: bool,
    /// A string may be longer than the limit.
    long: bool,
    /// A container may be nested deeper than [`MAX_WALK_DEPTH`].
    deep: bool,
}

impl CleanNeeds {
    /// Anything goes: a value built in memory.
    pub(super) const ALL: CleanNeeds = CleanNeeds {
        nul: true,
        long: true,
        deep: true,
    };

    /// What a value parsed by serde_json from `json` may need:
    /// - JSON can spell NUL only as the escape `\u0000` (a raw NUL byte in a string is a syntax
    ///   error), so without that text there is none;
    /// - a string's UTF-8 is never longer than its JSON literal, so a body no longer than the
    ///   limit (in bytes) has no string over it (in characters);
    /// - serde_json refuses nesting deeper than 127 levels, well inside [`MAX_WALK_DEPTH`]
    ///   (`serde_json_refuses_what_the_depth_cap_would_cut` checks it).
    pub(super) fn of_json(json: &[u8], limits: &NormalizeLimits) -> CleanNeeds {
        CleanNeeds {
            nul: memchr::memmem::find(json, br"\u0000").is_some(),
            long: json.len() > limits.max_string_chars,
            deep: false,
        }
    }
}

/// Removes NUL characters from every string and key (PostgreSQL text cannot hold them, and
/// GlitchTip strips them for the same reason), cuts strings longer than
/// `limits.max_string_chars`, and replaces anything nested deeper than [`MAX_WALK_DEPTH`].
/// `needs` says which of these can be skipped.
pub(super) fn clean_strings(
    map: &mut Object,
    limits: &NormalizeLimits,
    needs: CleanNeeds,
    problems: &mut Problems,
) {
    if !(needs.nul || needs.long || needs.deep) {
        return;
    }
    let walk = Walk {
        max_chars: limits.max_string_chars,
        nul: needs.nul,
    };
    clean_object(map, &Seg::Root, 0, walk, problems);
}

/// The fixed parameters of one [`clean_strings`] walk.
#[derive(Clone, Copy)]
struct Walk {
    max_chars: usize,
    /// Whether to look for NUL at all.
    nul: bool,
}

fn clean_object(map: &mut Object, at: &Seg<'_>, depth: usize, walk: Walk, problems: &mut Problems) {
    if walk.nul && map.keys().any(|k| k.contains('\0')) {
        let old = std::mem::take(map);
        for (mut key, value) in old {
            key.retain(|c| c != '\0');
            // Two keys that differ only by NUL collapse; the first one (in map order) wins.
            map.entry(key).or_insert(value);
        }
    }
    for (key, value) in map.iter_mut() {
        clean_value(value, &Seg::Key(key, at), depth + 1, walk, problems);
    }
}

fn clean_value(value: &mut Value, at: &Seg<'_>, depth: usize, walk: Walk, problems: &mut Problems) {
    if depth >= MAX_WALK_DEPTH && (value.is_array() || value.is_object()) {
        *value = Value::String(DEPTH_MARKER.to_owned());
        problems.push(
            at.render(),
            "trimmed",
            format!("nested deeper than {MAX_WALK_DEPTH} levels"),
        );
        return;
    }
    match value {
        Value::String(s) => {
            if walk.nul && s.contains('\0') {
                s.retain(|c| c != '\0');
            }
            if truncate_chars(s, walk.max_chars) {
                problems.push(
                    at.render(),
                    "trimmed",
                    format!("string longer than {} characters", walk.max_chars),
                );
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                clean_value(item, &Seg::Index(i, at), depth + 1, walk, problems);
            }
        }
        Value::Object(map) => clean_object(map, at, depth, walk, problems),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// Cuts `s` to at most `max` characters, the last three of them `...` (as Relay does), at a
/// character boundary. Returns whether it cut.
pub(super) fn truncate_chars(s: &mut String, max: usize) -> bool {
    // Byte length bounds the character count, so short strings skip the scan.
    if s.len() <= max || s.char_indices().nth(max).is_none() {
        return false;
    }
    const ELLIPSIS: &str = "...";
    let (keep, ellipsis) = if max >= ELLIPSIS.len() {
        (max - ELLIPSIS.len(), ELLIPSIS)
    } else {
        (max, "")
    };
    let cut = s.char_indices().nth(keep).map_or(s.len(), |(i, _)| i);
    s.truncate(cut);
    s.push_str(ellipsis);
    true
}

/// Applies the depth limit to every databag: `extra`, `contexts`, `user`, `request.data`,
/// `request.env`, frame `vars`, mechanism `data`/`meta` and breadcrumb `data`.
pub(super) fn trim_databags(map: &mut Object, limits: &NormalizeLimits, problems: &mut Problems) {
    let max = limits.max_databag_depth;
    let root = Seg::Root;
    for key in ["extra", "contexts", "user"] {
        if let Some(bag) = map.get_mut(key) {
            trim_depth(bag, &Seg::Key(key, &root), 0, max, problems);
        }
    }
    if let Some(Value::Object(request)) = map.get_mut("request") {
        let at = Seg::Key("request", &root);
        for key in ["data", "env"] {
            if let Some(bag) = request.get_mut(key) {
                trim_depth(bag, &Seg::Key(key, &at), 0, max, problems);
            }
        }
    }
    if let Some(st) = map.get_mut("stacktrace") {
        trim_frame_vars(st, &Seg::Key("stacktrace", &root), max, problems);
    }
    for key in ["exception", "threads"] {
        let at = Seg::Key(key, &root);
        for_each_value(map, key, |i, item| {
            let at = Seg::Index(i, &Seg::Key("values", &at));
            for st_key in ["stacktrace", "raw_stacktrace"] {
                if let Some(st) = item.get_mut(st_key) {
                    trim_frame_vars(st, &Seg::Key(st_key, &at), max, problems);
                }
            }
            if let Some(Value::Object(mechanism)) = item.get_mut("mechanism") {
                let at = Seg::Key("mechanism", &at);
                for bag_key in ["data", "meta"] {
                    if let Some(bag) = mechanism.get_mut(bag_key) {
                        trim_depth(bag, &Seg::Key(bag_key, &at), 0, max, problems);
                    }
                }
            }
        });
    }
    let at = Seg::Key("breadcrumbs", &root);
    for_each_value(map, "breadcrumbs", |i, crumb| {
        if let Some(bag) = crumb.get_mut("data") {
            trim_depth(
                bag,
                &Seg::Key("data", &Seg::Index(i, &Seg::Key("values", &at))),
                0,
                max,
                problems,
            );
        }
    });
}

/// Calls `f` on every object in `map[key].values` (the canonical form `values` produced).
fn for_each_value(map: &mut Object, key: &str, mut f: impl FnMut(usize, &mut Object)) {
    let Some(Value::Object(wrapper)) = map.get_mut(key) else {
        return;
    };
    let Some(Value::Array(items)) = wrapper.get_mut("values") else {
        return;
    };
    for (i, item) in items.iter_mut().enumerate() {
        if let Value::Object(obj) = item {
            f(i, obj);
        }
    }
}

fn trim_frame_vars(stacktrace: &mut Value, at: &Seg<'_>, max: usize, problems: &mut Problems) {
    let Some(Value::Array(frames)) = stacktrace.get_mut("frames") else {
        return;
    };
    let at = Seg::Key("frames", at);
    for (i, frame) in frames.iter_mut().enumerate() {
        if let Some(vars) = frame.get_mut("vars") {
            trim_depth(
                vars,
                &Seg::Key("vars", &Seg::Index(i, &at)),
                0,
                max,
                problems,
            );
        }
    }
}

/// Replaces containers at `depth >= max` (the bag itself is depth 0) with [`DEPTH_MARKER`].
fn trim_depth(value: &mut Value, at: &Seg<'_>, depth: usize, max: usize, problems: &mut Problems) {
    if !(value.is_array() || value.is_object()) {
        return;
    }
    if depth >= max {
        *value = Value::String(DEPTH_MARKER.to_owned());
        problems.push(
            at.render(),
            "trimmed",
            format!("nested deeper than {max} levels"),
        );
        return;
    }
    match value {
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                trim_depth(item, &Seg::Index(i, at), depth + 1, max, problems);
            }
        }
        Value::Object(map) => {
            for (key, item) in map.iter_mut() {
                trim_depth(item, &Seg::Key(key, at), depth + 1, max, problems);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize::test_util::{kinds, normalize};
    use serde_json::json;

    /// Normalizes `input` and compares `payload[key]` and the problem list (path, kind).
    fn check(input: Value, key: &str, expected: Value, expected_problems: &[(&str, &str)]) {
        let (event, problems) = normalize(input);
        assert_eq!(event.payload[key], expected);
        let got: Vec<(&str, &str)> = problems.iter().map(|p| (p.path.as_str(), p.kind)).collect();
        assert_eq!(got, expected_problems);
    }

    #[test]
    fn nul_characters_are_removed_from_strings_and_keys() {
        check(
            json!({"extra": {"a\u{0}b": "x\u{0}y", "list": ["\u{0}"]}}),
            "extra",
            json!({"ab": "xy", "list": [""]}),
            &[],
        );
        let (event, _) =
            normalize(json!({"release": "1.0\u{0}", "exception": [{"type": "E\u{0}rr"}]}));
        assert_eq!(event.release.as_deref(), Some("1.0"));
        assert_eq!(event.exceptions[0].ty.as_deref(), Some("Err"));
    }

    #[test]
    fn long_strings_are_cut_with_an_ellipsis() {
        let long = "é".repeat(20_000);
        let (event, problems) = normalize(json!({"extra": {"blob": long}}));
        let blob = event.payload["extra"]["blob"].as_str().unwrap();
        assert_eq!(blob.chars().count(), 16 * 1024);
        assert!(blob.ends_with("é..."));
        assert_eq!(kinds(&problems), [("extra.blob", "trimmed")]);
    }

    #[test]
    fn truncate_chars_counts_characters_not_bytes() {
        let check = |input: &str, max: usize, expected: &str, cut: bool| {
            let mut s = input.to_owned();
            assert_eq!(truncate_chars(&mut s, max), cut, "{input}");
            assert_eq!(s, expected);
        };
        check("hello", 5, "hello", false);
        check("hello!", 5, "he...", true);
        check("ééé", 3, "ééé", false);
        check("éééé", 3, "...", true);
        check("abcd", 2, "ab", true);
        check("", 0, "", false);
    }

    #[test]
    fn databags_are_cut_at_depth_seven() {
        check(
            json!({"extra": {"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": 1}}, "ok": 1}}}}}}}),
            "extra",
            json!({"a": {"b": {"c": {"d": {"e": {"f": {"g": DEPTH_MARKER}, "ok": 1}}}}}}),
            &[("extra.a.b.c.d.e.f.g", "trimmed")],
        );
    }

    #[test]
    fn frame_vars_and_breadcrumb_data_are_databags() {
        let deep = json!({"1": {"2": {"3": {"4": {"5": {"6": {"7": {}}}}}}}});
        let (event, problems) = normalize(json!({
            "exception": [{"type": "E", "stacktrace": {"frames": [{"function": "f", "vars": {"v": deep}}]}}],
            "breadcrumbs": [{"message": "m", "data": {"d": deep}}],
        }));
        assert_eq!(
            event.payload["exception"]["values"][0]["stacktrace"]["frames"][0]["vars"]["v"]["1"]
                ["2"]["3"]["4"]["5"]["6"],
            DEPTH_MARKER
        );
        assert_eq!(
            event.payload["breadcrumbs"]["values"][0]["data"]["d"]["1"]["2"]["3"]["4"]["5"]["6"],
            DEPTH_MARKER
        );
        assert_eq!(
            kinds(&problems),
            [
                (
                    "exception.values.0.stacktrace.frames.0.vars.v.1.2.3.4.5.6",
                    "trimmed"
                ),
                ("breadcrumbs.values.0.data.d.1.2.3.4.5.6", "trimmed"),
            ]
        );
    }

    #[test]
    fn absurdly_deep_values_are_cut_anywhere() {
        let mut deep = json!(1);
        for _ in 0..200 {
            deep = json!([deep]);
        }
        let (event, problems) = normalize(json!({"anything": deep}));
        let mut v = &event.payload["anything"];
        let mut levels = 0;
        while let Value::Array(items) = v {
            v = &items[0];
            levels += 1;
        }
        assert_eq!(levels, MAX_WALK_DEPTH - 1);
        assert_eq!(v, DEPTH_MARKER);
        assert_eq!(problems.len(), 1);
    }
}
