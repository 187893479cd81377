//! Stack frames: what each frame adds to a grouping key (module or file name, function, context
//! line; never line or column numbers), which frames are in-app after the built-in rules, and
//! which frame is the "crash frame" that titles and culprits name.
//!
//! Follows Sentry's `frame:v1` strategy and the relevant part of its built-in stack-trace rules
//! (`newstyle@2023-01-11`); per-project rules are not supported yet.

use std::sync::LazyLock;

use phoebe_protocol::event::Frame;
use regex::Regex;

use crate::{Component, Variant};

/// Relay keeps the last 250 frames; enforce it here too so a hand-built event can't make
/// grouping quadratic.
const MAX_FRAMES: usize = 250;

/// Context lines longer than this are usually minified code, which changes with every build.
const MAX_CONTEXT_LINE_CHARS: usize = 120;

/// Function names this short, in a stack where every frame comes from a URL without a context
/// line, are taken for minifier output (esbuild and terser mangle to 1-3 characters).
const MAX_MINIFIED_FUNCTION_CHARS: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    JavaScript,
    Native,
    Other,
}

pub(crate) fn family(platform: &str) -> Family {
    match platform {
        "javascript" | "node" => Family::JavaScript,
        "native" | "c" | "cpp" | "objc" | "cocoa" | "swift" => Family::Native,
        _ => Family::Other,
    }
}

fn frame_platform<'a>(frame: &'a Frame, event_platform: &'a str) -> &'a str {
    nonempty(&frame.platform).unwrap_or(event_platform)
}

pub(crate) fn nonempty(s: &Option<String>) -> Option<&str> {
    s.as_deref().filter(|s| !s.is_empty())
}

/// Where the file came from: `abs_path`, else `filename` (browser SDKs send only `filename`,
/// and Relay moves it to `abs_path`).
fn effective_abs_path(frame: &Frame) -> Option<&str> {
    nonempty(&frame.abs_path).or_else(|| nonempty(&frame.filename))
}

fn effective_filename(frame: &Frame) -> Option<&str> {
    nonempty(&frame.filename).or_else(|| nonempty(&frame.abs_path))
}

/// The file name as titles and culprits show it: a URL is reduced to its path, because the
/// host and port say where the bundle was served from, not where the code is.
pub(crate) fn display_filename(frame: &Frame) -> Option<String> {
    let name = effective_filename(frame)?;
    if has_url_origin(Some(name)) {
        if let Some((_, rest)) = name.split_once("://") {
            let path = rest.find('/').map_or("", |i| &rest[i..]);
            let path = path.split(['?', '#']).next().unwrap_or("");
            if !path.is_empty() && path != "/" {
                return Some(path.to_string());
            }
        }
    }
    Some(name.to_string())
}

/// Files served from a URL: their names carry build hashes and hosts. `file:` is not counted,
/// as in Sentry's JavaScript grouping.
fn has_url_origin(path: Option<&str>) -> bool {
    path.is_some_and(|p| {
        ["http:", "https:", "applewebdata:", "blob:"]
            .iter()
            .any(|scheme| p.starts_with(scheme))
    })
}

fn basename(path: &str) -> &str {
    path.rsplit(['/', '\\']).next().unwrap_or(path)
}

// ---------------------------------------------------------------------------------------------
// Built-in stack-trace rules

/// What the built-in rules decided for one frame.
#[derive(Debug, Clone, Copy)]
struct RuleOutcome {
    in_app: bool,
    grouped: bool,
    /// The rule that changed the frame, for the hint.
    reason: Option<&'static str>,
}

const RUST_STD: &str = "Rust standard library";
const PANIC_MACHINERY: &str = "panic and error-reporting machinery";
const CRASH_REPORTER: &str = "crash reporter";
const SYSTEM_LIBRARY: &str = "system library";
const VENDORED: &str = "node_modules";
const C_RUNTIME: &str = "C runtime start-up";

/// Functions that start error reporting: they and everything they call are not the bug
/// (`^-group -group ^-app -app` in Sentry's rules).
const BORDER_FUNCTIONS: &[&str] = &[
    "std::panicking::begin_panic",
    "core::panicking::begin_panic",
    "failure::backtrace::Backtrace::new",
    "error_chain::make_backtrace",
    "_CxxThrowException",
    "__cxa_throw",
    "__assert_rtn",
    "_NSRaiseError",
];

/// Panic formatting: it and everything it calls are not in-app, but still grouped
/// (`^-app -app`).
const PANIC_FMT_FUNCTIONS: &[&str] = &["std::panicking::panic_fmt", "core::panicking::panic_fmt"];

fn apply_rules(frames: &[Frame], event_platform: &str) -> Vec<RuleOutcome> {
    let mut out: Vec<RuleOutcome> = frames
        .iter()
        .map(|f| RuleOutcome {
            in_app: f.in_app == Some(true),
            grouped: true,
            reason: None,
        })
        .collect();
    let not_app = |o: &mut RuleOutcome, reason| {
        if o.in_app || o.reason.is_none() {
            o.reason = Some(reason);
        }
        o.in_app = false;
    };
    for (i, frame) in frames.iter().enumerate() {
        match family(frame_platform(frame, event_platform)) {
            Family::Native => {
                let func = nonempty(&frame.function)
                    .or_else(|| nonempty(&frame.raw_function))
                    .unwrap_or("");
                let package = nonempty(&frame.package).unwrap_or("");
                let path = nonempty(&frame.abs_path).unwrap_or("");
                // sentry-rust marks trait shims compiled from the standard library in-app; their
                // source path (`/rustc/<commit>/library/...`) gives them away.
                if ["std::", "core::", "alloc::", "__rust_"]
                    .iter()
                    .any(|p| func.starts_with(p))
                    || func == "rust_begin_unwind"
                    || path.starts_with("/rustc/")
                {
                    not_app(&mut out[i], RUST_STD);
                }
                if func == "_start" || func.starts_with("__libc_start_") {
                    not_app(&mut out[i], C_RUNTIME);
                }
                if package.starts_with("/lib/")
                    || package.starts_with("/usr/lib/")
                    || package.starts_with("linux-gate.so")
                    || path.starts_with("/usr/local/lib/")
                    || path.starts_with("/usr/local/Cellar/")
                {
                    not_app(&mut out[i], SYSTEM_LIBRARY);
                }
                let crash_reporter = func.starts_with("google_breakpad::")
                    || ["kscm_", "sentrycrashcm_", "kscrash_"]
                        .iter()
                        .any(|p| func.starts_with(p))
                    || func.contains("sentrycrash_");
                if crash_reporter {
                    not_app(&mut out[i], CRASH_REPORTER);
                    out[i].grouped = false;
                }
                let border = BORDER_FUNCTIONS.contains(&func);
                if border || PANIC_FMT_FUNCTIONS.contains(&func) {
                    for o in &mut out[i..] {
                        not_app(o, PANIC_MACHINERY);
                        if border {
                            o.grouped = false;
                        }
                    }
                }
            }
            Family::JavaScript => {
                // Vendored code is not the application's, whatever the SDK said (source maps can
                // resolve a bundle frame to a node_modules path).
                if effective_abs_path(frame).is_some_and(|p| p.contains("/node_modules/")) {
                    not_app(&mut out[i], VENDORED);
                }
            }
            Family::Other => {}
        }
    }
    out
}

/// Whether each frame is in-app after the built-in rules.
pub(crate) fn effective_in_app(frames: &[Frame], event_platform: &str) -> Vec<bool> {
    apply_rules(frames, event_platform)
        .iter()
        .map(|o| o.in_app)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Function names

static RUBY_ERB_SUFFIX: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"__\d{4,}_\d{4,}$").expect("constant regex"));
static JAVA_REFLECT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(sun\.reflect\.Generated(?:Serialization)?ConstructorAccessor)\d+")
        .expect("constant regex")
});
static JAVA_CGLIB: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(\$\$[\w_]+?CGLIB\$\$)[a-fA-F0-9]+(_[0-9]+)?").expect("constant regex")
});
static JAVA_ASSIST: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(\$\$_javassist)(?:_seam)?(?:_[0-9]+)?").expect("constant regex")
});
static CLOJURE_FN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(\$fn__)\d+").expect("constant regex"));
static CPP_LAMBDA: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\blambda_[a-f0-9]{32}\b|\blambda_\d+\b|\{lambda\(.*?\)#\d+\}|\$_\d+\b")
        .expect("constant regex")
});
static RUST_HASH: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"::h[a-z0-9]{16}$").expect("constant regex"));
static WINDECL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^@?(.*?)@[0-9]+$").expect("constant regex"));

/// Replaces each outermost `open..close` group with what `replace` returns for its content and
/// its byte offset; unbalanced input is handled without panicking.
fn replace_enclosed(
    s: &str,
    open: char,
    close: char,
    replace: &dyn Fn(&str, usize) -> String,
) -> String {
    if !s.contains(open) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut depth = 0usize;
    let mut group_start = 0;
    for (i, c) in s.char_indices() {
        if c == open {
            if depth == 0 {
                group_start = i;
            }
            depth += 1;
        } else if c == close && depth > 0 {
            depth -= 1;
            if depth == 0 {
                out.push_str(&replace(&s[group_start + open.len_utf8()..i], group_start));
            }
        } else if depth == 0 {
            out.push(c);
        }
    }
    out
}

/// Splits on spaces outside any bracket pair.
fn split_func_tokens(s: &str) -> Vec<&str> {
    let mut tokens = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '<' | '(' | '[' | '{' => depth += 1,
            '>' | ')' | ']' | '}' => depth = depth.saturating_sub(1),
            ' ' if depth == 0 => {
                tokens.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    tokens.push(&s[start..]);
    tokens
}

/// The bare name of a native (C, C++, Rust, Swift) function: no return type, arguments or
/// template arguments, no Rust hash suffix, so that one function has one name whatever the
/// compiler or symbolicator printed (Sentry's `trim_native_function_name`).
pub(crate) fn trim_native_function(function: &str) -> String {
    let original = function;
    let mut f = function.trim().to_string();
    if f.starts_with('[') || f.starts_with("+[") || f.starts_with("-[") {
        return f;
    }
    // C++ trailers: `const` and reference qualifiers.
    loop {
        let trimmed = f.trim_end();
        let next = if let Some(rest) = trimmed.strip_suffix('&') {
            rest
        } else if let Some(rest) = trimmed
            .strip_suffix("const")
            .filter(|rest| !rest.ends_with(|c: char| c.is_alphanumeric() || c == '_'))
        {
            rest
        } else {
            break;
        };
        f = next.trim_end().to_string();
    }
    // Operators confuse bracket balancing: park them behind characters nobody uses.
    f = f
        .replace("operator<<", "operator\u{27e8}\u{27e8}")
        .replace("operator<", "operator\u{27e8}")
        .replace("operator()", "operator\u{25ef}")
        .replace("operator->", "operator\u{27ff}")
        .replace(" -> ", " \u{27ff} ")
        .replace(
            "`anonymous namespace'",
            "\u{3014}anonymousnamespace\u{3015}",
        );
    f = CPP_LAMBDA.replace_all(&f, "lambda").into_owned();
    f = replace_enclosed(&f, '(', ')', &|inner, _| {
        let inner = inner.trim();
        if inner == "anonymous namespace" || inner == "operator" {
            format!("({inner})")
        } else {
            String::new()
        }
    });
    fn generics(inner: &str, start: usize) -> String {
        // Rust's `<Type as Trait>::method` starts with `<`; keep that one.
        if start == 0 {
            format!("<{}>", replace_enclosed(inner, '<', '>', &generics))
        } else {
            "<T>".to_string()
        }
    }
    f = replace_enclosed(&f, '<', '>', &generics);
    let mut tokens: Vec<String> = split_func_tokens(&f)
        .into_iter()
        .map(str::to_string)
        .collect();
    if tokens.len() > 1 && tokens.last().is_some_and(|t| t == "<T>") {
        tokens.pop();
        if let Some(last) = tokens.last_mut() {
            last.push_str(" <T>");
        }
    }
    let token = match tokens.iter().position(|t| t == "\u{27ff}") {
        Some(i) if i > 0 => tokens.get(i - 1),
        _ => tokens.last(),
    };
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return original.to_string();
    };
    let f = token
        .replace('\u{27e8}', "<")
        .replace('\u{25ef}', "()")
        .replace('\u{27ff}', "->")
        .replace(
            "\u{3014}anonymousnamespace\u{3015}",
            "`anonymous namespace'",
        );
    let f = RUST_HASH.replace(&f, "");
    WINDECL.replace(&f, "$1").into_owned()
}

/// The function name as titles show it: trimmed for native platforms unless the SDK also sent
/// the raw name (then `function` is already the clean one).
pub(crate) fn display_function(frame: &Frame, event_platform: &str) -> Option<String> {
    let func = nonempty(&frame.function)?;
    if nonempty(&frame.raw_function).is_none()
        && family(frame_platform(frame, event_platform)) == Family::Native
    {
        return Some(trim_native_function(func));
    }
    Some(func.to_string())
}

fn function_component(frame: &Frame, platform: &str) -> Option<Component> {
    let func = nonempty(&frame.function).or_else(|| nonempty(&frame.raw_function))?;
    let fam = family(platform);
    let mut value = func.to_string();
    let mut hint = None;
    if fam == Family::Native && nonempty(&frame.raw_function).is_none() {
        let trimmed = trim_native_function(func);
        if trimmed != value {
            value = trimmed;
            hint = Some("arguments and template parameters removed");
        }
    }
    let mut contributes = true;
    match (platform, fam) {
        ("ruby", _) => {
            if value.starts_with("block ") {
                value = "block".to_string();
                hint = Some("ruby block");
            } else {
                let cleaned = RUBY_ERB_SUFFIX.replace(&value, "").into_owned();
                if cleaned != value {
                    value = cleaned;
                    hint = Some("generated template suffix removed");
                }
            }
        }
        ("php", _) => {
            if value.starts_with("[Anonymous") || value.starts_with("class@anonymous\0") {
                contributes = false;
                hint = Some("anonymous function");
            }
            if value.starts_with("class@anonymous") {
                let method = value.rsplit("::").next().unwrap_or("").to_string();
                if method != value {
                    value = method;
                    hint = Some("anonymous class method");
                }
            }
        }
        ("java", _) if value.starts_with("lambda$") => {
            contributes = false;
            hint = Some("generated lambda name");
        }
        (_, Family::Native) if value == "<redacted>" || value == "<unknown>" => {
            contributes = false;
            hint = Some("unknown function");
        }
        (_, Family::JavaScript) => {
            // `Object.foo` / `Foo.foo` -> `foo`: browsers disagree on the receiver's name.
            let short = value.rsplit('.').next().unwrap_or("").to_string();
            if short != value {
                value = short;
                hint = Some("receiver removed");
            }
            let raw = nonempty(&frame.raw_function).unwrap_or(func);
            let raw = raw.rsplit('.').next().unwrap_or("");
            if raw.is_empty() || value.is_empty() {
                contributes = false;
                hint = None;
            } else if [
                "?",
                "<anonymous function>",
                "<anonymous>",
                "Anonymous function",
            ]
            .contains(&raw)
                || raw.ends_with("/<")
            {
                contributes = false;
                hint = Some("anonymous function");
            }
        }
        _ => {}
    }
    let mut c = Component::leaf("function", vec![value]);
    c.contributes = contributes;
    c.hint = hint.map(str::to_string);
    Some(c)
}

fn module_component(frame: &Frame, platform: &str) -> Option<Component> {
    let module = nonempty(&frame.module)?;
    let mut c = Component::leaf("module", vec![module.to_string()]);
    if family(platform) == Family::JavaScript
        && module.contains('/')
        && effective_abs_path(frame).is_some_and(|p| p.ends_with(module))
    {
        c.exclude("module is the file path");
    } else if platform == "java" {
        if module.contains("$$Lambda$") {
            c.exclude("generated lambda class");
        }
        let cleaned = if module.starts_with("sun.reflect.GeneratedMethodAccessor") {
            "sun.reflect.GeneratedMethodAccessor".to_string()
        } else if module.starts_with("jdk.internal.reflect.GeneratedMethodAccessor") {
            "jdk.internal.reflect.GeneratedMethodAccessor".to_string()
        } else {
            let m = JAVA_REFLECT.replace_all(module, "${1}<auto>");
            let m = JAVA_CGLIB.replace_all(&m, "${1}<auto>");
            let m = JAVA_ASSIST.replace_all(&m, "${1}<auto>");
            CLOJURE_FN.replace_all(&m, "${1}<auto>").into_owned()
        };
        if cleaned != module {
            c.values = vec![cleaned];
            if c.contributes {
                c.hint = Some("generated-code marker removed".to_string());
            }
        }
    }
    Some(c)
}

fn filename_component(frame: &Frame, platform: &str) -> Option<Component> {
    let name = effective_filename(frame)?;
    let base = basename(name).to_lowercase();
    let mut c = Component::leaf("filename", vec![base.clone()]);
    if has_url_origin(effective_abs_path(frame)) {
        c.exclude("URL file names are ignored");
    } else if base == "<anonymous>" {
        c.exclude("anonymous file name");
    } else if base == "[native code]" {
        c.exclude("native code has no file");
    } else if platform == "java" {
        let cleaned = JAVA_ASSIST.replace_all(&base, "${1}<auto>").into_owned();
        if cleaned != base {
            c.values = vec![cleaned];
            c.hint = Some("generated-code marker removed".to_string());
        }
    }
    Some(c)
}

/// Whether the platform's SDKs send trustworthy source lines.
fn uses_context_line(platform: &str) -> bool {
    matches!(platform, "javascript" | "node" | "python" | "php" | "ruby")
}

fn context_line_component(frame: &Frame, platform: &str) -> Option<Component> {
    let raw = frame.context_line.as_deref()?;
    let collapsed = raw.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.is_empty() {
        return None;
    }
    let mut c = Component::leaf("context_line", vec![collapsed]);
    if raw.chars().count() > MAX_CONTEXT_LINE_CHARS {
        c.exclude("context line longer than 120 characters");
    } else if family(platform) == Family::JavaScript
        && nonempty(&frame.function).is_none()
        && has_url_origin(effective_abs_path(frame))
    {
        c.exclude("anonymous code from a URL");
    }
    Some(c)
}

fn package_component(frame: &Frame) -> Option<Component> {
    let package = nonempty(&frame.package)?;
    let base = basename(package);
    (!base.is_empty()).then(|| Component::leaf("package", vec![base.to_string()]))
}

/// Sentry's recursion test: the same call site again (line numbers compared, not hashed).
fn is_recursion(frame: &Frame, prev: Option<&Frame>) -> bool {
    prev.is_some_and(|p| {
        p.abs_path == frame.abs_path
            && p.package == frame.package
            && p.module == frame.module
            && p.filename == frame.filename
            && p.function == frame.function
            && p.lineno == frame.lineno
            && p.colno == frame.colno
    })
}

/// JavaScript frames that say nothing about the application: `eval`, built-ins (`[native code]`,
/// V8's `<anonymous>` for `Array.map` and friends). They differ between browsers.
pub(crate) fn is_low_quality_js(frame: &Frame, event_platform: &str) -> bool {
    if family(frame_platform(frame, event_platform)) != Family::JavaScript {
        return false;
    }
    let func = nonempty(&frame.raw_function)
        .or_else(|| nonempty(&frame.function))
        .map(|f| f.rsplit('.').next().unwrap_or(""));
    let junk_path = effective_abs_path(frame)
        .is_some_and(|p| ["[native code]", "native code", "eval code", "<anonymous>"].contains(&p));
    func == Some("eval") || junk_path
}

fn frame_component(frame: &Frame, prev: Option<&Frame>, event_platform: &str) -> Component {
    let platform = frame_platform(frame, event_platform);
    let fam = family(platform);
    let module = module_component(frame, platform);
    let mut file = filename_component(frame, platform);
    let function = function_component(frame, platform);
    let contributes = |c: &Option<Component>| c.as_ref().is_some_and(|c| c.contributes);
    if contributes(&module) && contributes(&file) {
        if let Some(f) = file.as_mut() {
            f.exclude("module takes precedence");
        }
    }
    if fam == Family::Native && contributes(&function) && contributes(&file) {
        if let Some(f) = file.as_mut() {
            // A native function name is already namespaced; the file adds only build noise.
            f.exclude("native file names are ignored when the function is known");
        }
    }
    let context = if uses_context_line(platform) {
        context_line_component(frame, platform)
    } else {
        None
    };
    let mut children: Vec<Component> = [module, file, function, context]
        .into_iter()
        .flatten()
        .collect();
    if fam == Family::Native && !children.iter().any(|c| c.contributes) {
        // Unsymbolicated native frames still know their binary.
        if let Some(p) = package_component(frame) {
            children.push(p.with_hint("function name unknown: the binary is used"));
        }
    }
    let mut c = Component::node("frame", children);
    if is_low_quality_js(frame, event_platform) {
        c.exclude("eval, native-code or anonymous frame");
    }
    if is_recursion(frame, prev) {
        c.exclude("recursion");
    }
    c
}

/// One frame of a stack, evaluated for grouping.
#[derive(Debug, Clone)]
pub(crate) struct FrameEval {
    /// The frame's component as the system variant sees it (all frames may contribute).
    pub component: Component,
    /// In-app after the built-in rules.
    pub in_app: bool,
    /// Why the built-in rules changed the frame, if they did.
    reason: Option<&'static str>,
}

/// Whether every frame that still contributes looks like minified code served without a source
/// map: a URL file, no usable context line, and a mangled (very short) function name or none.
fn looks_minified(frames: &[Frame], components: &[Component], event_platform: &str) -> bool {
    let mut any = false;
    for (frame, c) in frames.iter().zip(components) {
        if !c.contributes {
            continue;
        }
        any = true;
        let platform = frame_platform(frame, event_platform);
        if family(platform) != Family::JavaScript || !has_url_origin(effective_abs_path(frame)) {
            return false;
        }
        let mangled = c.children.iter().filter(|ch| ch.contributes).all(|ch| {
            ch.kind == "function"
                && ch
                    .values
                    .iter()
                    .all(|v| v.chars().count() <= MAX_MINIFIED_FUNCTION_CHARS)
        });
        if !mangled {
            return false;
        }
    }
    any
}

/// Evaluates a stack (oldest call first) for grouping.
pub(crate) fn evaluate(frames: &[Frame], event_platform: &str) -> Vec<FrameEval> {
    let frames = &frames[frames.len().saturating_sub(MAX_FRAMES)..];
    let rules = apply_rules(frames, event_platform);
    let mut components: Vec<Component> = frames
        .iter()
        .enumerate()
        .map(|(i, f)| frame_component(f, i.checked_sub(1).map(|p| &frames[p]), event_platform))
        .collect();
    for (c, rule) in components.iter_mut().zip(&rules) {
        if !rule.grouped {
            c.exclude(&format!(
                "ignored by a built-in rule: {}",
                rule.reason.unwrap_or(PANIC_MACHINERY)
            ));
        }
    }
    if let [only] = frames {
        // A lone anonymous frame from a URL says nothing about where the error is.
        if family(frame_platform(only, event_platform)) == Family::JavaScript
            && nonempty(&only.function).is_none()
            && has_url_origin(effective_abs_path(only))
        {
            components[0].exclude("single anonymous frame from a URL");
        }
    }
    if looks_minified(frames, &components, event_platform) {
        // Mangled names change with every build; the exception's type and message are steadier.
        for c in components.iter_mut().filter(|c| c.contributes) {
            c.exclude("minified function name without a source map");
        }
    }
    components
        .into_iter()
        .zip(rules)
        .map(|(component, rule)| FrameEval {
            component,
            in_app: rule.in_app,
            reason: rule.reason,
        })
        .collect()
}

/// Whether an in-app frame contributes, so that the app variant applies.
pub(crate) fn has_app_frames(evals: &[FrameEval]) -> bool {
    evals.iter().any(|e| e.in_app && e.component.contributes)
}

/// The `stacktrace` component: in the app variant, frames that are not in-app don't count.
pub(crate) fn stack_component(evals: &[FrameEval], app: bool) -> Component {
    stack_of(evals.iter().cloned(), app)
}

/// [`stack_component`] for a stack that is not needed afterwards: its frame components are moved.
pub(crate) fn into_stack_component(evals: Vec<FrameEval>, app: bool) -> Component {
    stack_of(evals.into_iter(), app)
}

fn stack_of(evals: impl Iterator<Item = FrameEval>, app: bool) -> Component {
    let frames = evals
        .map(|e| {
            let mut c = e.component;
            if app && !e.in_app {
                match e.reason {
                    Some(reason) => c.exclude(&format!("not in-app ({reason})")),
                    None => c.exclude("not in-app"),
                }
            }
            c
        })
        .collect();
    Component::node("stacktrace", frames).with_hint("line and column numbers are ignored")
}

/// A stack on its own (a thread's): the app variant if an in-app frame contributes, else all
/// frames.
pub(crate) fn variant_stack(frames: &[Frame], event_platform: &str) -> (Variant, Component) {
    let evals = evaluate(frames, event_platform);
    let app = has_app_frames(&evals);
    let variant = if app { Variant::App } else { Variant::System };
    (variant, into_stack_component(evals, app))
}

/// The frame an error is attributed to: the last in-app frame, else the last frame. With
/// `named_only`, frames without a usable function name, and JavaScript built-ins, are skipped
/// (titles need a name that points at the application).
pub(crate) fn crash_frame<'a>(
    frames: &'a [Frame],
    event_platform: &str,
    named_only: bool,
) -> Option<&'a Frame> {
    let in_app = effective_in_app(frames, event_platform);
    let usable = |f: &Frame| {
        !named_only
            || (nonempty(&f.function).is_some_and(|n| n != "<redacted>" && n != "<unknown>")
                && !is_low_quality_js(f, event_platform))
    };
    let candidates = || frames.iter().zip(&in_app).rev().filter(|(f, _)| usable(f));
    candidates()
        .find(|(_, &app)| app)
        .or_else(|| candidates().next())
        .map(|(f, _)| f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key_values;
    use crate::testkit::*;

    /// The key of a stack on its own, and the variant it chose.
    fn check(frames: Vec<Frame>, platform: &str, variant: Variant, expected: &[&str]) {
        let (v, c) = variant_stack(&frames, platform);
        assert_eq!(key_values(std::slice::from_ref(&c)), expected, "{c:#?}");
        assert_eq!(v, variant);
    }

    #[test]
    fn python_frames_use_module_function_and_context() {
        let mut f = py_frame("app.billing", "charge", true);
        f.filename = Some("app/billing.py".into());
        f.context_line = Some("    total  =\tprice * qty".into());
        f.lineno = Some(12);
        check(
            vec![f],
            "python",
            Variant::App,
            &["app.billing", "charge", "total = price * qty"],
        );
    }

    #[test]
    fn filename_is_lowercased_basename_when_no_module() {
        let f = Frame {
            filename: Some("C:\\Src\\App\\Main.PY".into()),
            function: Some("run".into()),
            in_app: Some(true),
            ..Frame::default()
        };
        check(vec![f], "python", Variant::App, &["main.py", "run"]);
    }

    #[test]
    fn long_context_lines_are_ignored() {
        let mut f = py_frame("app", "f", true);
        f.context_line = Some("x".repeat(121));
        check(vec![f.clone()], "python", Variant::App, &["app", "f"]);
        f.context_line = Some("x".repeat(120));
        check(
            vec![f],
            "python",
            Variant::App,
            &["app", "f", &"x".repeat(120)],
        );
    }

    #[test]
    fn context_lines_only_for_trusted_platforms() {
        let mut f = py_frame("com.example.App", "run", true);
        f.context_line = Some("run();".into());
        check(vec![f], "java", Variant::App, &["com.example.App", "run"]);
    }

    #[test]
    fn recursion_repeats_do_not_count() {
        let mut f = py_frame("app", "walk", true);
        f.lineno = Some(3);
        let deep = vec![f.clone(), f.clone(), f.clone()];
        check(deep, "python", Variant::App, &["app", "walk"]);
        let mut g = f.clone();
        g.lineno = Some(4);
        check(
            vec![f, g],
            "python",
            Variant::App,
            &["app", "walk", "app", "walk"],
        );
    }

    #[test]
    fn no_in_app_frames_means_system_variant_over_all_frames() {
        let frames = vec![
            py_frame("runtime.proc", "main", false),
            Frame {
                module: Some("github.com/acme/svc".into()),
                function: Some("Handle".into()),
                ..Frame::default()
            },
        ];
        check(
            frames,
            "go",
            Variant::System,
            &["runtime.proc", "main", "github.com/acme/svc", "Handle"],
        );
    }

    #[test]
    fn js_url_filenames_and_receivers() {
        let frames = vec![
            js_frame(
                "https://cdn.example.com/static/main.8f3a2c.js",
                "Object.render",
            ),
            js_frame(
                "https://cdn.example.com/static/main.8f3a2c.js",
                "HTMLButton.onClick",
            ),
        ];
        check(frames, "javascript", Variant::App, &["render", "onClick"]);
        let (_, c) = variant_stack(
            &[js_frame(
                "https://cdn.example.com/static/main.8f3a2c.js",
                "Object.render",
            )],
            "javascript",
        );
        let file = &c.children[0].children[0];
        assert_eq!(file.kind, "filename");
        assert_eq!(file.values, ["main.8f3a2c.js"]);
        assert_eq!(file.hint.as_deref(), Some("URL file names are ignored"));
    }

    #[test]
    fn js_anonymous_eval_and_native_code_frames_are_dropped() {
        let mut native = js_frame("[native code]", "forEach");
        native.in_app = Some(true);
        let frames = vec![
            js_frame("https://x.test/app.js", "Object.?"),
            js_frame("https://x.test/app.js", "eval"),
            native,
            js_frame("https://x.test/app.js", "<anonymous>"),
            js_frame("https://x.test/app.js", "handleClick"),
        ];
        check(frames, "javascript", Variant::App, &["handleClick"]);
    }

    #[test]
    fn js_module_that_is_the_path_is_ignored() {
        let f = Frame {
            abs_path: Some("webpack:///./src/components/Cart.js".into()),
            filename: Some("./src/components/Cart.js".into()),
            module: Some("src/components/Cart.js".into()),
            function: Some("render".into()),
            in_app: Some(true),
            ..Frame::default()
        };
        check(vec![f], "javascript", Variant::App, &["cart.js", "render"]);
    }

    #[test]
    fn js_single_anonymous_url_frame_does_not_count() {
        let f = Frame {
            filename: Some("https://x.test/app.js".into()),
            context_line: Some("throw e".into()),
            in_app: Some(true),
            ..Frame::default()
        };
        check(vec![f], "javascript", Variant::System, &[]);
    }

    #[test]
    fn minified_js_without_source_maps_does_not_count() {
        let frames = vec![
            js_frame("http://127.0.0.1:3000/static/app.min.js", "n"),
            js_frame("http://127.0.0.1:3000/static/app.min.js", "?"),
            js_frame("http://127.0.0.1:3000/static/app.min.js", "t.Js"),
        ];
        check(frames, "javascript", Variant::System, &[]);
        // One real name is enough to keep the stack.
        let frames = vec![
            js_frame("http://127.0.0.1:3000/static/app.min.js", "n"),
            js_frame("http://127.0.0.1:3000/static/app.min.js", "checkout"),
        ];
        check(frames, "javascript", Variant::App, &["n", "checkout"]);
    }

    #[test]
    fn node_modules_are_not_in_app() {
        let mut lib = node_frame("express.lib:router", "handle", None, true);
        lib.filename = Some("/srv/app/node_modules/express/lib/router.js".into());
        let app = node_frame("server", "route", None, true);
        check(vec![lib, app], "node", Variant::App, &["server", "route"]);
    }

    #[test]
    fn java_generated_names_are_normalized() {
        let frames = vec![
            Frame {
                module: Some("sun.reflect.GeneratedMethodAccessor123".into()),
                function: Some("invoke".into()),
                ..Frame::default()
            },
            Frame {
                module: Some("com.example.Svc$$EnhancerByCGLIB$$1a2b3c".into()),
                function: Some("lambda$run$0".into()),
                ..Frame::default()
            },
            Frame {
                module: Some("com.example.Svc$$Lambda$42/0x1234".into()),
                function: Some("apply".into()),
                ..Frame::default()
            },
            Frame {
                module: Some("app.core$fn__4512".into()),
                function: Some("invoke".into()),
                ..Frame::default()
            },
        ];
        check(
            frames,
            "java",
            Variant::System,
            &[
                "sun.reflect.GeneratedMethodAccessor",
                "invoke",
                "com.example.Svc$$EnhancerByCGLIB$$<auto>",
                "apply",
                "app.core$fn__<auto>",
                "invoke",
            ],
        );
    }

    #[test]
    fn ruby_and_php_clean_ups() {
        let block = Frame {
            module: Some("app".into()),
            function: Some("block in process".into()),
            ..Frame::default()
        };
        let erb = Frame {
            module: Some("views".into()),
            function: Some("_app_views_show_html_erb__1234567_89012345".into()),
            ..Frame::default()
        };
        check(
            vec![block, erb],
            "ruby",
            Variant::System,
            &["app", "block", "views", "_app_views_show_html_erb"],
        );
        let anon = Frame {
            module: Some("app".into()),
            function: Some("[Anonymous function]".into()),
            ..Frame::default()
        };
        let class = Frame {
            function: Some("class@anonymous/in/app.php:3$0::handle".into()),
            filename: Some("app.php".into()),
            ..Frame::default()
        };
        check(
            vec![anon, class],
            "php",
            Variant::System,
            &["app", "app.php", "handle"],
        );
    }

    #[test]
    fn native_functions_are_trimmed_and_files_dropped() {
        let frames = vec![
            Frame {
                function: Some(
                    "std::panic::catch_unwind::<std::rt::lang_start_internal::{closure#0}, isize>"
                        .into(),
                ),
                filename: Some("panic.rs".into()),
                ..Frame::default()
            },
            Frame {
                function: Some("void Foo::bar(int, char const*) const".into()),
                ..Frame::default()
            },
            Frame {
                function: Some("<unknown>".into()),
                package: Some("/usr/lib/libfoo.so.1".into()),
                ..Frame::default()
            },
            Frame {
                function: Some("myapp::run::h0123456789abcdef".into()),
                ..Frame::default()
            },
        ];
        check(
            frames,
            "native",
            Variant::System,
            &[
                "std::panic::catch_unwind::<T>",
                "Foo::bar",
                "libfoo.so.1",
                "myapp::run",
            ],
        );
    }

    #[test]
    fn trim_native_function_cases() {
        let cases = [
            ("main", "main"),
            ("unsigned int foo(int)", "foo"),
            (
                "std::vector<int>::push_back(int const&)",
                "std::vector<T>::push_back",
            ),
            (
                "<alloc::boxed::Box<F> as core::ops::function::FnOnce<A>>::call_once",
                "<alloc::boxed::Box<T> as core::ops::function::FnOnce<T>>::call_once",
            ),
            ("Foo::operator<<(int)", "Foo::operator<<"),
            ("-[NSObject foo:bar:]", "-[NSObject foo:bar:]"),
            ("@objc Foo.bar() -> Swift.Int", "Foo.bar"),
            ("_ZN3foo3barE@12", "_ZN3foo3barE"),
            ("(", "("),
            ("", ""),
        ];
        for (input, expected) in cases {
            assert_eq!(trim_native_function(input), expected, "{input}");
        }
    }

    #[test]
    fn rust_panic_machinery_is_not_in_app() {
        // The shape sentry-rust 0.49 sends for Option::expect in main: the SDK's panic handler
        // frames are marked in-app.
        let frames = vec![
            native_frame("main", true),
            native_frame("std::rt::lang_start_internal", false),
            native_frame("rustgen::main", true),
            native_frame("core::option::expect_failed", false),
            native_frame("core::panicking::panic_fmt", false),
            native_frame("__rustc::rust_begin_unwind", true),
            native_frame("sentry_panic::panic_handler", true),
        ];
        check(
            frames.clone(),
            "native",
            Variant::App,
            &["main", "rustgen::main"],
        );
        let crash = crash_frame(&frames, "native", true).and_then(|f| f.function.clone());
        assert_eq!(crash.as_deref(), Some("rustgen::main"));
    }

    #[test]
    fn rust_std_shims_and_c_start_up_are_not_in_app() {
        let mut shim = native_frame(
            "<&dyn core::ops::function::Fn<()> as core::ops::function::FnOnce<()>>::call_once",
            true,
        );
        shim.abs_path = Some("/rustc/5980/library/core/src/ops/function.rs".into());
        let frames = vec![
            native_frame("_start", true),
            native_frame("__libc_start_main_impl", true),
            shim,
            native_frame("app::main", true),
        ];
        check(frames, "native", Variant::App, &["app::main"]);
    }

    #[test]
    fn begin_panic_cuts_the_stack_for_every_variant() {
        let frames = vec![
            native_frame("app::run", false),
            native_frame("std::panicking::begin_panic", false),
            native_frame("std::panicking::rust_panic_with_hook", false),
        ];
        check(frames, "native", Variant::System, &["app::run"]);
    }

    #[test]
    fn crash_frame_prefers_last_in_app_named_frame() {
        let frames = vec![
            py_frame("app", "outer", true),
            py_frame("app", "inner", true),
            py_frame("lib", "helper", false),
        ];
        assert_eq!(
            crash_frame(&frames, "python", true).and_then(|f| f.function.as_deref()),
            Some("inner")
        );
        let lib_only = vec![py_frame("lib", "a", false), py_frame("lib", "b", false)];
        assert_eq!(
            crash_frame(&lib_only, "python", true).and_then(|f| f.function.as_deref()),
            Some("b")
        );
        let mut builtin = js_frame("<anonymous>", "JSON.parse");
        builtin.in_app = Some(true);
        let js = vec![js_frame("https://x.test/app.js", "t.onload"), builtin];
        assert_eq!(
            crash_frame(&js, "javascript", true).and_then(|f| f.function.as_deref()),
            Some("t.onload")
        );
        let unnamed = vec![native_frame("f", false), native_frame("<unknown>", true)];
        assert_eq!(
            crash_frame(&unnamed, "native", true).and_then(|f| f.function.as_deref()),
            Some("f")
        );
        assert!(crash_frame(&[], "python", true).is_none());
    }

    #[test]
    fn display_filename_strips_url_origin() {
        let f = js_frame("http://127.0.0.1:36801/static/app.min.js?v=2", "f");
        assert_eq!(display_filename(&f).as_deref(), Some("/static/app.min.js"));
        let f = js_frame("https://example.com/", "f");
        assert_eq!(
            display_filename(&f).as_deref(),
            Some("https://example.com/")
        );
        let f = py_frame("m", "f", true);
        assert_eq!(display_filename(&f), None);
    }

    #[test]
    fn more_than_250_frames_keeps_the_last_ones() {
        let frames: Vec<Frame> = (0..300)
            .map(|i| py_frame(&format!("m{i}"), "f", true))
            .collect();
        let (_, c) = variant_stack(&frames, "python");
        assert_eq!(c.children.len(), 250);
        assert_eq!(c.children[0].children[0].values, ["m50"]);
    }
}
