//! Tidy: reads the workspace's Rust source as text and fails, listing `path:line`, when an
//! architecture invariant of ARCHITECTURE.md is broken (rust-analyzer's `xtask/src/tidy.rs`).
//! Std only. Each rule carries its reason and each exception says why it exists.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::path::Path;
use std::sync::OnceLock;

// ---------------------------------------------------------------------------------------------
// The rules: one `#[test]` each, named like the rule.

const DOC_LINE: &str = "every_file_opens_with_a_doc_line";
const SQL: &str = "sql_only_in_storage_backends";
const BACKEND: &str = "only_the_storage_layer_names_a_backend";
const FACES: &str = "faces_reach_storage_only_through_ops";
const HALVES: &str = "ingest_and_digest_meet_only_at_the_inbox";
const PURE: &str = "pure_code_does_no_io";
const DOMAIN: &str = "the_domain_imports_nothing_of_storage";
const CLI_CALLER: &str = "only_the_command_line_acts_as_the_command_line";
const ARCHITECTURE_MD: &str = "architecture_md_names_every_module";

// Scopes are paths relative to the workspace root; `*` stands for one path segment, and a scope
// covers itself, everything under it and, for a module, its `x.rs` file (see `in_scope`).

/// The files that must open with a `//!` line.
const DOCUMENTED: &[&str] = &[
    "crates/*/src",
    "crates/*/tests",
    "crates/*/examples",
    "crates/*/benches",
    "crates/*/build.rs",
    "fuzz/fuzz_targets",
];
const STORAGE_BACKENDS: &[&str] = &[
    "crates/phoebe/src/store/sqlite",
    "crates/phoebe/src/store/postgres",
];
const THE_STORAGE_LAYER: &[&str] = &["crates/phoebe/src/store"];
const THE_FACES: &[&str] = &[
    "crates/phoebe/src/api",
    "crates/phoebe/src/ui",
    "crates/phoebe/src/cli",
];
const PURE_CODE: &[&str] = &[
    "crates/phoebe-protocol/src",
    "crates/phoebe-grouping/src",
    "crates/phoebe/src/domain",
];
const THE_DOMAIN: &[&str] = &["crates/phoebe/src/domain"];

/// Words some files must not contain outside comments (string literals count as code).
struct Ban {
    rule: &'static str,
    /// The files the ban covers.
    scope: &'static [&'static str],
    /// The files inside `scope` where the words belong.
    home: &'static [&'static str],
    /// What `mentions` looks for: `a::b` is a path (it also matches `use a::{x, b}`), `a::` a
    /// path that starts at `a` (not `x::a::`), anything else a whole word. Paths that start at
    /// `super::` or `self::` are read as the `crate::` paths they stand for (see
    /// `resolve_relative_paths`), so `crate::store` also finds `super::store` in `api/mod.rs`.
    words: &'static [&'static str],
    /// Whether code under `#[cfg(test)]` is exempt (see `without_test_code`).
    tests_exempt: bool,
    why: &'static str,
}

const BANS: &[Ban] = &[
    Ban {
        rule: SQL,
        scope: &["*"],
        home: STORAGE_BACKENDS,
        words: &["rusqlite", "tokio_postgres", "postgres::", "sqlx"],
        tests_exempt: false,
        why: "only `store::sqlite` and `store::postgres` talk to a database, so a backend is \
              added or changed in one place: move this behind the `Store` trait",
    },
    Ban {
        rule: BACKEND,
        scope: &["crates/phoebe/src"],
        home: THE_STORAGE_LAYER,
        words: &[
            "sqlite::",
            "SqliteStore",
            "store::sqlite",
            "postgres::",
            "PostgresStore",
        ],
        tests_exempt: false,
        why: "code outside `store` depends on the `Store` trait, never on a backend, so \
              PostgreSQL can sit beside SQLite: take a `dyn Store` (or go through `ops`)",
    },
    Ban {
        rule: FACES,
        scope: THE_FACES,
        home: &[],
        words: &["crate::store"],
        tests_exempt: false,
        why: "`api`, `ui` and `cli` are the faces of `ops`, the API Boundary: call `crate::ops` \
              and take shared types from `crate::domain`",
    },
    Ban {
        rule: HALVES,
        scope: &["crates/phoebe/src/ingest"],
        home: &[],
        words: &["crate::digest"],
        tests_exempt: false,
        why: HALVES_WHY,
    },
    Ban {
        rule: HALVES,
        scope: &["crates/phoebe/src/digest"],
        home: &[],
        words: &["crate::ingest"],
        tests_exempt: false,
        why: HALVES_WHY,
    },
    Ban {
        rule: PURE,
        scope: PURE_CODE,
        home: &[],
        words: &[
            "std::fs",
            "std::net",
            "std::process",
            "std::thread",
            "std::env",
            "tokio",
            "reqwest",
            "rusqlite",
            "Utc::now",
            "Local::now",
            "SystemTime::now",
            "Instant::now",
            "File::open",
            "println!",
            "eprintln!",
            "print!",
            "eprint!",
            "dbg!",
            "io::stdout",
            "io::stderr",
            "io::stdin",
        ],
        tests_exempt: true,
        why: "pure code takes values and returns values: no files, network, processes, threads, \
              environment, clock or printing (randomness, such as a new event id, is allowed; \
              the clock is not); take `now` or the data as an argument and leave the I/O to the \
              `phoebe` shell",
    },
    Ban {
        rule: DOMAIN,
        scope: THE_DOMAIN,
        home: &[],
        words: &["rusqlite"],
        tests_exempt: false,
        why: "the domain is the vocabulary every layer shares, so it depends on none of them: \
              use only `crate::domain`, `super::`, std and the pure crates",
    },
    Ban {
        rule: CLI_CALLER,
        scope: &["*"],
        home: &["crates/phoebe/src/cli", "crates/phoebe/src/ops"],
        words: &["Caller::Cli"],
        tests_exempt: false,
        why: "`Caller::Cli` may do everything, so a server-side face that built one would bypass \
              every permission check: authenticate the person and act for their `Caller`",
    },
];

const HALVES_WHY: &str = "ingest and digest meet only at the durable inbox, so either half can \
                          stop, crash or lag alone: hand data over through `crate::inbox` and \
                          share types through `crate::domain`";

/// SQL statement shapes looked for, case-sensitively, in string literals: words separated by
/// whitespace, `_` standing for any one run of non-space characters and `...` for anything.
const SQL_SHAPES: &[&str] = &[
    "SELECT ... FROM",
    "INSERT INTO",
    "INSERT OR _ INTO",
    "REPLACE INTO",
    "UPDATE _ SET",
    "DELETE FROM",
    "CREATE TABLE",
    "CREATE INDEX",
    "CREATE UNIQUE INDEX",
    "CREATE TRIGGER",
    "DROP TABLE",
    "DROP INDEX",
    "ALTER TABLE",
    "PRAGMA _",
];

const DOC_LINE_WHY: &str = "every file opens with a `//!` line stating its one job and what it \
                            must not do (style.md §10): add one above everything else";
const MODULE_WHY: &str = "ARCHITECTURE.md's code map gives each module of `crates/phoebe` its \
                          one job and what it must not do: add a ``- `name` — `` line for it \
                          (style.md §2)";
const FILE_PATH_WHY: &str = "ARCHITECTURE.md names files that exist: fix the path, or the text, \
                             in the commit that moves the file";
/// Backticked text in ARCHITECTURE.md starting with one of these is a path to check.
const REPOSITORY_FOLDERS: &[&str] = &["crates/", "scripts/", "fuzz/", "docs/"];

/// Files a rule leaves alone, each with its reason; a path is a file or a folder, like a scope.
/// `exceptions_name_existing_paths` fails when one goes stale, and
/// `test_only_exceptions_are_declared_cfg_test` checks the reason of every `PURE` one.
struct Exception {
    rule: &'static str,
    path: &'static str,
    why: &'static str,
}

const EXCEPTIONS: &[Exception] = &[
    Exception {
        rule: SQL,
        path: "crates/phoebe-grouping/src/parameterize.rs",
        why: "its tests parameterize a database error message that quotes a query: data, not SQL",
    },
    Exception {
        rule: SQL,
        path: "crates/phoebe/tests/tidy.rs",
        why: "this file: its tables and self-tests quote the patterns it looks for",
    },
    Exception {
        rule: CLI_CALLER,
        path: "crates/phoebe/tests/tidy.rs",
        why: "this file: its tables and self-tests quote the words they look for",
    },
    Exception {
        rule: PURE,
        path: "crates/phoebe-protocol/src/normalize/corpus_tests.rs",
        why: "test-only (`#[cfg(test)] mod corpus_tests;`): reads the SDK corpus from disk",
    },
    Exception {
        rule: PURE,
        path: "crates/phoebe-protocol/src/normalize/test_util.rs",
        why: "test-only (`#[cfg(test)] pub(crate) mod test_util;`): helpers for the tests",
    },
    Exception {
        rule: PURE,
        path: "crates/phoebe-grouping/src/testkit.rs",
        why: "test-only (`#[cfg(test)] mod testkit;`): event builders for the tests",
    },
];

// ---------------------------------------------------------------------------------------------
// The checkers: pure functions from a file (path relative to the root, text) to violations.

/// One broken rule at one line.
#[derive(Debug)]
struct Violation {
    path: String,
    line: usize,
    rule: &'static str,
    /// What was found there.
    found: String,
    why: &'static str,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Violation {
            path,
            line,
            rule,
            found,
            why,
        } = self;
        write!(f, "{path}:{line}: {rule} — {found}: {why}")
    }
}

type Checker = fn(&str, &str) -> Vec<Violation>;

fn check_doc_line(path: &str, text: &str) -> Vec<Violation> {
    if !in_any(path, DOCUMENTED) || is_excepted(DOC_LINE, path) {
        return Vec::new();
    }
    let first = text
        .lines()
        .enumerate()
        .find(|(_, line)| !line.trim().is_empty());
    let found = match first {
        Some((_, line)) if is_doc_line(line) => return Vec::new(),
        Some((i, line)) => (i + 1, format!("opens with `{}`", line.trim())),
        None => (1, "the file is empty".to_string()),
    };
    report(path, DOC_LINE, DOC_LINE_WHY, vec![found])
}

/// A `//!` line with something to say (a bare `//!` states no job).
fn is_doc_line(line: &str) -> bool {
    line.trim_start()
        .strip_prefix("//!")
        .is_some_and(|doc| !doc.trim().is_empty())
}

fn check_sql(path: &str, text: &str) -> Vec<Violation> {
    let ban = ban(SQL);
    if !ban.covers(path) {
        return Vec::new();
    }
    let lexed = lex(text);
    let mut found = ban.findings(path, &lexed);
    for literal in &lexed.strings {
        if let Some((at, shape)) = find_sql(&literal.text) {
            let line = literal.line + literal.text[..at].matches('\n').count();
            found.push((line, format!("SQL `{shape}`")));
        }
    }
    report(path, SQL, ban.why, found)
}

fn check_backend_names(path: &str, text: &str) -> Vec<Violation> {
    check_bans(BACKEND, path, text)
}

fn check_faces(path: &str, text: &str) -> Vec<Violation> {
    check_bans(FACES, path, text)
}

fn check_halves(path: &str, text: &str) -> Vec<Violation> {
    check_bans(HALVES, path, text)
}

fn check_purity(path: &str, text: &str) -> Vec<Violation> {
    check_bans(PURE, path, text)
}

fn check_cli_caller(path: &str, text: &str) -> Vec<Violation> {
    check_bans(CLI_CALLER, path, text)
}

/// The `DOMAIN` ban plus: every `crate::` path starts with `crate::domain`.
fn check_domain(path: &str, text: &str) -> Vec<Violation> {
    let ban = ban(DOMAIN);
    if !ban.covers(path) {
        return Vec::new();
    }
    let lexed = lex(text);
    let mut found = ban.findings(path, &lexed);
    let code = resolve_relative_paths(path, &lexed.code, &lexed.skeleton);
    for (at, module) in path_segments(&code, "crate") {
        if module != "domain" {
            found.push((line_at(&code, at), format!("`crate::{module}`")));
        }
    }
    report(path, DOMAIN, ban.why, found)
}

/// Every module `lib_rs` declares has a code-map line in `architecture_md` (one that opens with
/// ``- `module` ``; a mention elsewhere is not its entry), and every repository path
/// that `architecture_md` backticks passes `exists`.
fn check_architecture_md(
    lib_rs: &str,
    architecture_md: &str,
    exists: &dyn Fn(&str) -> bool,
) -> Vec<Violation> {
    let mut violations = Vec::new();
    for (i, line) in lex(lib_rs).code.lines().enumerate() {
        let Some(module) = declared_module(line) else {
            continue;
        };
        let entry = format!("- `{module}`");
        let listed = architecture_md
            .lines()
            .any(|line| line.trim_start().starts_with(&entry));
        if !listed {
            let found = format!("module `{module}` has no code-map line in ARCHITECTURE.md");
            violations.extend(report(
                "crates/phoebe/src/lib.rs",
                ARCHITECTURE_MD,
                MODULE_WHY,
                vec![(i + 1, found)],
            ));
        }
    }
    let mut in_code_block = false;
    for (i, line) in architecture_md.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            in_code_block = !in_code_block;
            continue;
        }
        if in_code_block {
            continue;
        }
        for span in line.split('`').skip(1).step_by(2) {
            if REPOSITORY_FOLDERS
                .iter()
                .any(|folder| span.starts_with(folder))
                && !exists(span)
            {
                let found = format!("`{span}` does not exist");
                violations.extend(report(
                    "ARCHITECTURE.md",
                    ARCHITECTURE_MD,
                    FILE_PATH_WHY,
                    vec![(i + 1, found)],
                ));
            }
        }
    }
    violations
}

fn check_bans(rule: &str, path: &str, text: &str) -> Vec<Violation> {
    let mut lexed = None;
    let mut violations = Vec::new();
    for ban in BANS
        .iter()
        .filter(|ban| ban.rule == rule && ban.covers(path))
    {
        let lexed = lexed.get_or_insert_with(|| lex(text));
        violations.extend(report(path, ban.rule, ban.why, ban.findings(path, lexed)));
    }
    violations
}

fn ban(rule: &str) -> &'static Ban {
    BANS.iter()
        .find(|ban| ban.rule == rule)
        .expect("every rule with a checker has a ban")
}

impl Ban {
    fn covers(&self, path: &str) -> bool {
        in_any(path, self.scope) && !in_any(path, self.home) && !is_excepted(self.rule, path)
    }

    /// `(line, what)` for each banned word in the code of the file at `path`.
    fn findings(&self, path: &str, lexed: &Lexed) -> Vec<(usize, String)> {
        let (code, skeleton) = if self.tests_exempt {
            without_test_code(&lexed.code, &lexed.skeleton)
        } else {
            (lexed.code.clone(), lexed.skeleton.clone())
        };
        let code = resolve_relative_paths(path, &code, &skeleton);
        let mut found = Vec::new();
        for word in self.words {
            for at in mentions(&code, word) {
                found.push((line_at(&code, at), format!("`{word}`")));
            }
        }
        found
    }
}

/// One violation per line, listing everything found on it.
fn report(
    path: &str,
    rule: &'static str,
    why: &'static str,
    mut found: Vec<(usize, String)>,
) -> Vec<Violation> {
    found.sort();
    found.dedup();
    let mut by_line: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for (line, what) in found {
        by_line.entry(line).or_default().push(what);
    }
    by_line
        .into_iter()
        .map(|(line, what)| Violation {
            path: path.to_string(),
            line,
            rule,
            found: what.join(", "),
            why,
        })
        .collect()
}

fn is_excepted(rule: &str, path: &str) -> bool {
    EXCEPTIONS
        .iter()
        .any(|exception| exception.rule == rule && in_scope(path, exception.path))
}

fn in_any(path: &str, scopes: &[&str]) -> bool {
    scopes.iter().any(|scope| in_scope(path, scope))
}

/// Whether `scope` covers `path`: its segments match the first ones of `path` (`*` matches any
/// one), or its last segment `x` is the module file `x.rs` that `path` ends in.
fn in_scope(path: &str, scope: &str) -> bool {
    let path: Vec<&str> = path.split('/').collect();
    let scope: Vec<&str> = scope.split('/').collect();
    let Some((last, parents)) = scope.split_last() else {
        return false;
    };
    let fits = |segment: &str, wanted: &str| wanted == "*" || segment == wanted;
    if path.len() < scope.len() || !parents.iter().zip(&path).all(|(s, p)| fits(p, s)) {
        return false;
    }
    let segment = path[parents.len()];
    fits(segment, last)
        || (path.len() == scope.len()
            && segment
                .strip_suffix(".rs")
                .is_some_and(|module| fits(module, last)))
}

// ---------------------------------------------------------------------------------------------
// Reading Rust as text.

/// A Rust file as the rules see it.
struct Lexed {
    /// The text without comments; each comment's newlines are kept, so line numbers stay right.
    code: String,
    /// `code` with string and char literals blanked, byte for byte (newlines kept), so braces
    /// and words inside them are not read as code; offsets into one are offsets into the other.
    skeleton: String,
    /// The string literals, in order.
    strings: Vec<StringLiteral>,
}

struct StringLiteral {
    /// The line of the opening quote.
    line: usize,
    /// The text between the quotes, escapes as written.
    text: String,
}

/// Drops `//` and (nested) `/* */` comments, doc comments included, and collects the string
/// literals: `"…"` with `\` escapes, raw `r#"…"#` and their `b`/`c` forms. Char literals such as
/// `'"'` are stepped over so they open no string.
fn lex(src: &str) -> Lexed {
    let chars: Vec<char> = src.chars().collect();
    let char_at = |i: usize| chars.get(i).copied();
    let mut lexed = Lexed {
        code: String::with_capacity(src.len()),
        skeleton: String::with_capacity(src.len()),
        strings: Vec::new(),
    };
    let mut line = 1;
    let mut i = 0;
    while let Some(c) = char_at(i) {
        let next = char_at(i + 1);
        if c == '/' && next == Some('/') {
            while char_at(i).is_some_and(|c| c != '\n') {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while let Some(c) = char_at(i) {
                match (c, char_at(i + 1)) {
                    ('/', Some('*')) => (depth, i) = (depth + 1, i + 2),
                    ('*', Some('/')) => (depth, i) = (depth - 1, i + 2),
                    _ => {
                        if c == '\n' {
                            lexed.code.push('\n');
                            lexed.skeleton.push('\n');
                            line += 1;
                        }
                        i += 1;
                    }
                }
                if depth == 0 {
                    break;
                }
            }
        } else if let Some((opening, raw_hashes)) = string_opening(&chars, i) {
            let start = i + opening;
            let mut j = start;
            while let Some(c) = char_at(j) {
                match (c, raw_hashes) {
                    ('\\', None) => j += 2,
                    ('"', None) => break,
                    ('"', Some(n)) if (1..=n).all(|k| char_at(j + k) == Some('#')) => break,
                    _ => j += 1,
                }
            }
            let end = j.min(chars.len());
            let after = (end + 1 + raw_hashes.unwrap_or(0)).min(chars.len());
            let text: String = chars[start..end].iter().collect();
            lexed.strings.push(StringLiteral { line, text });
            line += chars[i..after].iter().filter(|&&c| c == '\n').count();
            lexed.code.extend(&chars[i..after]);
            push_blanked(&mut lexed.skeleton, &chars[i..after]);
            i = after;
        } else if c == '\'' {
            let after = match (next, char_at(i + 2)) {
                (Some('\\'), _) => (i + 3..chars.len())
                    .find(|&j| chars[j] == '\'')
                    .map_or(chars.len(), |j| j + 1),
                (Some(_), Some('\'')) => i + 3,
                _ => i + 1, // a lifetime or a label
            };
            lexed.code.extend(&chars[i..after]);
            push_blanked(&mut lexed.skeleton, &chars[i..after]);
            i = after;
        } else {
            if c == '\n' {
                line += 1;
            }
            lexed.code.push(c);
            lexed.skeleton.push(c);
            i += 1;
        }
    }
    lexed
}

/// Pushes `chars` as spaces, as many bytes as they take, keeping newlines.
fn push_blanked(out: &mut String, chars: &[char]) {
    for &c in chars {
        match c {
            '\n' => out.push('\n'),
            c => out.extend(std::iter::repeat_n(' ', c.len_utf8())),
        }
    }
}

/// If a string literal opens at `i`: the length of its opening and, when raw, its `#` count.
fn string_opening(chars: &[char], i: usize) -> Option<(usize, Option<usize>)> {
    match chars[i] {
        '"' => Some((1, None)),
        'r' => {
            let starts_word = |j: usize| j == 0 || !is_ident_char(chars[j - 1]);
            let prefixed = i > 0 && matches!(chars[i - 1], 'b' | 'c') && starts_word(i - 1);
            let hashes = chars[i + 1..].iter().take_while(|&&c| c == '#').count();
            let quote = chars.get(i + 1 + hashes) == Some(&'"');
            ((starts_word(i) || prefixed) && quote).then_some((hashes + 2, Some(hashes)))
        }
        _ => None,
    }
}

/// `code` and its `skeleton` with every `#[cfg(test)]` item blanked, from the attribute to the
/// item's end (see `item_end`): `mod helpers;`, `mod tests { … }`, a `fn helper() { … }` in
/// the middle of a file. The code after such an item is still checked.
fn without_test_code(code: &str, skeleton: &str) -> (String, String) {
    let tests: Vec<(usize, usize)> = skeleton
        .match_indices("#[cfg(test)]")
        .map(|(at, attribute)| (at, item_end(skeleton, at + attribute.len())))
        .collect();
    (blank(code, &tests), blank(skeleton, &tests))
}

/// Where the item that starts at `from` in `skeleton` ends: after its `;` or the `}` that
/// closes its body (`use a::{b};` ends at the `;`), or where its enclosing block closes.
fn item_end(skeleton: &str, from: usize) -> usize {
    let mut depth = 0;
    for (i, c) in skeleton[from..].char_indices() {
        let at = from + i;
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' if depth == 0 => return at,
            '}' if depth == 1 && !skeleton[at + 1..].trim_start().starts_with(';') => {
                return at + 1
            }
            ')' | ']' | '}' => depth -= 1,
            ';' if depth == 0 => return at + 1,
            _ => {}
        }
    }
    skeleton.len()
}

/// `text` with the byte ranges `start..end` turned into spaces, newlines kept.
fn blank(text: &str, ranges: &[(usize, usize)]) -> String {
    let mut blanked: Vec<u8> = text.bytes().collect();
    for &(start, end) in ranges {
        for byte in &mut blanked[start..end] {
            if *byte != b'\n' {
                *byte = b' ';
            }
        }
    }
    String::from_utf8(blanked).expect("items start and end at ASCII characters")
}

/// The module a file under `crates/*/src` is, as segments: `api/mod.rs` is `api`, `api/json.rs`
/// is `api::json`, `lib.rs` and `main.rs` are the crate root (no segments). `None` elsewhere.
fn module_of(path: &str) -> Option<Vec<&str>> {
    let mut segments: Vec<&str> = path.strip_suffix(".rs")?.split('/').collect();
    if segments.len() < 4 || segments[0] != "crates" || segments[2] != "src" {
        return None;
    }
    segments.drain(..3);
    if segments == ["lib"] || segments == ["main"] || segments.last() == Some(&"mod") {
        segments.pop();
    }
    Some(segments)
}

/// `code` of the file at `path` with each path that starts at `self::` or `super::` (or
/// `super::super::` …) rewritten to the `crate::` path it stands for, inline `mod x { … }`
/// blocks included, so the bans see one spelling. `skeleton` is `code`'s (see `Lexed`).
/// Line numbers do not change; paths that climb above the crate root are left alone.
fn resolve_relative_paths(path: &str, code: &str, skeleton: &str) -> String {
    let Some(file_module) = module_of(path) else {
        return code.to_string();
    };
    let inline_modules = inline_modules(skeleton);
    let mut starts: Vec<usize> = ["self::", "super::"]
        .iter()
        .flat_map(|word| whole_words(skeleton, word))
        .filter(|&at| !skeleton[..at].ends_with("::"))
        .collect();
    starts.sort();
    let mut resolved = String::with_capacity(code.len());
    let mut copied = 0;
    for start in starts {
        let mut module = file_module.clone();
        module.extend(
            inline_modules
                .iter()
                .filter(|(_, body)| body.contains(&start))
                .map(|(name, _)| *name),
        );
        let mut end = start;
        loop {
            if skeleton[end..].starts_with("self::") {
                end += "self::".len();
            } else if skeleton[end..].starts_with("super::") && module.pop().is_some() {
                end += "super::".len();
            } else {
                break;
            }
        }
        if skeleton[end..].starts_with("super::") {
            continue; // above the crate root: not a path this file can name
        }
        resolved.push_str(&code[copied..start]);
        resolved.push_str("crate::");
        for segment in module {
            resolved.push_str(segment);
            resolved.push_str("::");
        }
        copied = end;
    }
    resolved.push_str(&code[copied..]);
    resolved
}

/// Each inline `mod name { … }` in `skeleton`: its name and the byte range of its body.
fn inline_modules(skeleton: &str) -> Vec<(&str, std::ops::Range<usize>)> {
    let mut modules = Vec::new();
    for at in whole_words(skeleton, "mod") {
        let rest = &skeleton[at + "mod".len()..];
        let name = ident_at(rest, rest.len() - rest.trim_start().len());
        let after_name = rest.trim_start()[name.len()..].trim_start();
        if is_ident(name) && after_name.starts_with('{') {
            let open = skeleton.len() - after_name.len();
            modules.push((name, open..item_end(skeleton, open)));
        }
    }
    modules
}

/// Byte offsets where `code` mentions `word` (see `Ban::words` for the three kinds of word).
fn mentions(code: &str, word: &str) -> Vec<usize> {
    match word.split_once("::") {
        Some((head, tail)) if is_ident(head) && is_ident(tail) => path_segments(code, head)
            .into_iter()
            .filter(|&(_, segment)| segment == tail)
            .map(|(at, _)| at)
            .collect(),
        Some((head, "")) if is_ident(head) => whole_words(code, word)
            .into_iter()
            .filter(|&at| !code[..at].ends_with("::"))
            .collect(),
        _ => whole_words(code, word),
    }
}

/// For each path `head::x` in `code`, `x` and its offset; `head::{x, y::z}` gives `x` and `y`.
fn path_segments<'a>(code: &'a str, head: &str) -> Vec<(usize, &'a str)> {
    let prefix = format!("{head}::");
    let mut segments = Vec::new();
    for at in whole_words(code, head) {
        let start = at + prefix.len();
        if !code[at..].starts_with(&prefix) {
            continue;
        }
        if !code[start..].starts_with('{') {
            segments.push((start, ident_at(code, start)));
            continue;
        }
        let mut depth = 0;
        let mut expect_item = false;
        for (i, c) in code[start..].char_indices() {
            match c {
                '{' => {
                    depth += 1;
                    expect_item = depth == 1;
                }
                '}' if depth == 1 => break,
                '}' => depth -= 1,
                ',' if depth == 1 => expect_item = true,
                c if c.is_whitespace() => {}
                _ if expect_item => {
                    segments.push((start + i, ident_at(code, start + i)));
                    expect_item = false;
                }
                _ => {}
            }
        }
    }
    segments
}

/// Offsets of `word` in `text` where it is not part of a longer identifier.
fn whole_words(text: &str, word: &str) -> Vec<usize> {
    let check_start = word.starts_with(is_ident_char);
    let check_end = word.ends_with(is_ident_char);
    text.match_indices(word)
        .map(|(at, _)| at)
        .filter(|&at| {
            (!check_start || !text[..at].ends_with(is_ident_char))
                && (!check_end || !text[at + word.len()..].starts_with(is_ident_char))
        })
        .collect()
}

/// The first SQL statement in a string literal's text: its offset and its shape.
fn find_sql(text: &str) -> Option<(usize, &'static str)> {
    let text = blank_escapes(text);
    SQL_SHAPES
        .iter()
        .filter_map(|shape| {
            let words: Vec<&str> = shape.split(' ').collect();
            let (first, rest) = words.split_first()?;
            whole_words(&text, first)
                .into_iter()
                .find(|&at| sql_follows(&text[at + first.len()..], rest))
                .map(|at| (at, *shape))
        })
        .min()
}

/// Whether `text` goes on with `words`, each after whitespace (see `SQL_SHAPES`).
fn sql_follows(text: &str, words: &[&str]) -> bool {
    let Some((&word, rest)) = words.split_first() else {
        return true;
    };
    if word == "..." {
        let Some((&word, rest)) = rest.split_first() else {
            return true;
        };
        return whole_words(text, word).into_iter().any(|at| {
            text[..at].ends_with(char::is_whitespace) && sql_follows(&text[at + word.len()..], rest)
        });
    }
    let after = text.trim_start();
    if after.len() == text.len() {
        return false;
    }
    let len = if word == "_" {
        after.find(char::is_whitespace).unwrap_or(after.len())
    } else if after.starts_with(word) && !after[word.len()..].starts_with(is_ident_char) {
        word.len()
    } else {
        return false;
    };
    len > 0 && sql_follows(&after[len..], rest)
}

/// `\n`, `\r`, `\t` and line-continuation escapes as spaces (a newline stays a newline), so
/// offsets and line counts are unchanged.
fn blank_escapes(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n' | 'r' | 't') => out.push_str("  "),
            Some('\n') => out.push_str(" \n"),
            Some(escaped) => {
                out.push(c);
                out.push(escaped);
            }
            None => out.push(c),
        }
    }
    out
}

/// The module a line declares with `mod x;` (any visibility), if it does.
fn declared_module(line: &str) -> Option<&str> {
    let line = line.trim();
    let line = match line.strip_prefix("pub") {
        Some(rest) if rest.starts_with('(') => rest.split_once(')')?.1,
        Some(rest) => rest,
        None => line,
    };
    let name = line
        .trim_start()
        .strip_prefix("mod ")?
        .trim()
        .strip_suffix(';')?
        .trim();
    is_ident(name).then_some(name)
}

/// Whether `parent` declares `module` behind `#[cfg(test)]` (on the line before, or the same).
fn declares_test_only(parent: &str, module: &str) -> bool {
    let lines: Vec<&str> = parent
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect();
    lines.iter().enumerate().any(|(i, line)| {
        let same_line = line.strip_prefix("#[cfg(test)]");
        let declaration = same_line.unwrap_or(line);
        declared_module(declaration) == Some(module)
            && (same_line.is_some() || (i > 0 && lines[i - 1] == "#[cfg(test)]"))
    })
}

fn ident_at(code: &str, at: usize) -> &str {
    let rest = &code[at..];
    &rest[..rest.find(|c: char| !is_ident_char(c)).unwrap_or(rest.len())]
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn is_ident(s: &str) -> bool {
    !s.is_empty() && s.chars().all(is_ident_char)
}

fn line_at(text: &str, at: usize) -> usize {
    text[..at].matches('\n').count() + 1
}

// ---------------------------------------------------------------------------------------------
// The workspace.

/// Folders never read: build output, tools the tests install, and hidden folders (`.git`).
const SKIPPED_FOLDERS: &[&str] = &["target", "node_modules"];

struct SourceFile {
    /// Relative to the workspace root, `/`-separated.
    path: String,
    text: String,
}

fn workspace_root() -> &'static Path {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .ancestors()
        .nth(2)
        .expect("crates/phoebe sits two levels below the root")
}

/// Every `.rs` file of the workspace, read once, sorted by path.
fn source_files() -> &'static [SourceFile] {
    static FILES: OnceLock<Vec<SourceFile>> = OnceLock::new();
    FILES.get_or_init(|| {
        let mut files = Vec::new();
        collect_rust_files(workspace_root(), &mut files);
        files.sort_by(|a, b| a.path.cmp(&b.path));
        files
    })
}

fn collect_rust_files(dir: &Path, files: &mut Vec<SourceFile>) {
    let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
    for entry in entries {
        let entry = entry.unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let kind = entry
            .file_type()
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        if kind.is_dir() && !name.starts_with('.') && !SKIPPED_FOLDERS.contains(&name.as_str()) {
            collect_rust_files(&path, files);
        } else if kind.is_file() && path.extension().is_some_and(|ext| ext == "rs") {
            let text = fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
            let relative = path
                .strip_prefix(workspace_root())
                .expect("the walk stays in the root");
            let path = relative.to_string_lossy().replace('\\', "/");
            files.push(SourceFile { path, text });
        }
    }
}

fn read(relative: &str) -> String {
    let path = workspace_root().join(relative);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn assert_no_violations(rule: &str, violations: &[Violation]) {
    let list: Vec<String> = violations.iter().map(Violation::to_string).collect();
    assert!(
        list.is_empty(),
        "{} violation(s) of {rule}:\n{}\n",
        list.len(),
        list.join("\n")
    );
}

fn assert_every_file_passes(rule: &str, checker: Checker) {
    let violations = source_files()
        .iter()
        .flat_map(|file| checker(&file.path, &file.text));
    assert_no_violations(rule, &violations.collect::<Vec<_>>());
}

#[test]
fn every_file_opens_with_a_doc_line() {
    assert_every_file_passes(DOC_LINE, check_doc_line);
}

#[test]
fn sql_only_in_storage_backends() {
    assert_every_file_passes(SQL, check_sql);
}

#[test]
fn only_the_storage_layer_names_a_backend() {
    assert_every_file_passes(BACKEND, check_backend_names);
}

#[test]
fn faces_reach_storage_only_through_ops() {
    assert_every_file_passes(FACES, check_faces);
}

#[test]
fn ingest_and_digest_meet_only_at_the_inbox() {
    assert_every_file_passes(HALVES, check_halves);
}

#[test]
fn pure_code_does_no_io() {
    assert_every_file_passes(PURE, check_purity);
}

#[test]
fn the_domain_imports_nothing_of_storage() {
    assert_every_file_passes(DOMAIN, check_domain);
}

#[test]
fn only_the_command_line_acts_as_the_command_line() {
    assert_every_file_passes(CLI_CALLER, check_cli_caller);
}

#[test]
fn architecture_md_names_every_module() {
    let exists = |path: &str| workspace_root().join(path).exists();
    let violations = check_architecture_md(
        &read("crates/phoebe/src/lib.rs"),
        &read("ARCHITECTURE.md"),
        &exists,
    );
    assert_no_violations(ARCHITECTURE_MD, &violations);
}

// ---------------------------------------------------------------------------------------------
// The tidy test's own checks: the walk sees the files, exceptions are real, and every rule can fail.

#[test]
fn the_walk_finds_the_workspace_files() {
    let paths: Vec<&str> = source_files()
        .iter()
        .map(|file| file.path.as_str())
        .collect();
    for expected in [
        "crates/phoebe/src/lib.rs",
        "crates/phoebe/tests/tidy.rs",
        "crates/phoebe-protocol/src/lib.rs",
        "crates/phoebe-grouping/src/lib.rs",
    ] {
        assert!(
            paths.contains(&expected),
            "the walk missed {expected}: {paths:?}"
        );
    }
    assert!(
        !paths.iter().any(|path| path.starts_with("target/")),
        "the walk read target/"
    );
}

#[test]
fn exceptions_name_existing_paths() {
    let stale: Vec<String> = EXCEPTIONS
        .iter()
        .filter(|exception| !workspace_root().join(exception.path).exists())
        .map(|exception| format!("{} ({}): {}", exception.path, exception.rule, exception.why))
        .collect();
    assert!(
        stale.is_empty(),
        "exceptions for paths that are gone; delete them:\n{}",
        stale.join("\n")
    );
}

#[test]
fn test_only_exceptions_are_declared_cfg_test() {
    for exception in EXCEPTIONS.iter().filter(|exception| exception.rule == PURE) {
        let file = Path::new(exception.path);
        let module = file
            .file_stem()
            .and_then(|stem| stem.to_str())
            .expect("a module file");
        let dir = file.parent().expect("a file in a folder");
        let parents = [
            dir.join("mod.rs"),
            dir.join("lib.rs"),
            dir.with_extension("rs"),
        ];
        let declared = parents.iter().any(|parent| {
            fs::read_to_string(workspace_root().join(parent))
                .is_ok_and(|text| declares_test_only(&text, module))
        });
        assert!(
            declared,
            "{} is exempt from {PURE} as test-only, but no parent module declares \
                           it behind `#[cfg(test)]`",
            exception.path
        );
    }
}

/// Runs `checker` on one file and compares each violation as `line: found`.
fn check(checker: Checker, path: &str, text: &str, expected: &[&str]) {
    let found: Vec<String> = checker(path, text)
        .iter()
        .map(|v| format!("{}: {}", v.line, v.found))
        .collect();
    assert_eq!(found, expected, "checking {path}");
}

#[test]
fn a_violation_says_where_what_and_why() {
    let violations = check_faces(
        "crates/phoebe/src/ui/mod.rs",
        "//! UI.\nuse crate::store::Issue;\n",
    );
    let rendered: Vec<String> = violations.iter().map(Violation::to_string).collect();
    assert_eq!(
        rendered,
        [format!(
        "crates/phoebe/src/ui/mod.rs:2: faces_reach_storage_only_through_ops — `crate::store`: {}",
        ban(FACES).why
    )]
    );
}

#[test]
fn lex_drops_comments_and_keeps_code_and_strings() {
    let src = r##"let a = "x // y"; // gone
/* gone /* nested */
still gone */ let b = r#"q "z" // kept"#;
/// gone
let c = '"'; let d = b'\''; fn f<'a>(s: &'a str) {}
let e = br"raw"; let f = "esc \" // kept";
"##;
    let lexed = lex(src);
    let expected = [
        r#"let a = "x // y"; "#,
        "",
        r##" let b = r#"q "z" // kept"#;"##,
        "",
        r#"let c = '"'; let d = b'\''; fn f<'a>(s: &'a str) {}"#,
        r#"let e = br"raw"; let f = "esc \" // kept";"#,
    ];
    assert_eq!(lexed.code.lines().collect::<Vec<_>>(), expected);
    let strings: Vec<(usize, &str)> = lexed
        .strings
        .iter()
        .map(|s| (s.line, s.text.as_str()))
        .collect();
    assert_eq!(
        strings,
        [
            (1, "x // y"),
            (3, r#"q "z" // kept"#),
            (6, "raw"),
            (6, r#"esc \" // kept"#)
        ]
    ); // The skeleton keeps offsets: `"{é"` is five bytes, so five spaces.
    assert_eq!(
        lex("let s = \"{é\"; // }\nlet c = '}';").skeleton,
        format!("let s = {}; \nlet c = {};", " ".repeat(5), " ".repeat(3))
    );
}

#[test]
fn scopes_cover_folders_and_module_files() {
    assert!(in_scope(
        "crates/phoebe/src/retention.rs",
        "crates/phoebe/src/retention"
    ));
    assert!(in_scope(
        "crates/phoebe/src/retention/evict.rs",
        "crates/phoebe/src/retention"
    ));
    assert!(!in_scope(
        "crates/phoebe/src/retentions.rs",
        "crates/phoebe/src/retention"
    ));
    assert!(!in_scope(
        "crates/phoebe/src/ui/retention.rs",
        "crates/phoebe/src/retention"
    ));
    assert!(in_scope(
        "crates/phoebe-grouping/src/lib.rs",
        "crates/*/src"
    ));
    assert!(!in_scope("crates/phoebe/srcs/lib.rs", "crates/*/src"));
    assert!(in_scope("fuzz/fuzz_targets/auth.rs", "*"));
}

#[test]
fn mentions_finds_paths_in_groups_and_whole_words_only() {
    let code = "use std::{io, fs::File};\nuse tokio_util::x;\nlet t = tokio::spawn;\n\
                eprintln!(); crate::store::sqlite::open(); sqlite::x();";
    assert_eq!(mentions(code, "std::fs").len(), 1);
    assert_eq!(mentions(code, "std::i").len(), 0);
    assert_eq!(mentions(code, "tokio"), [code.find("tokio::").unwrap()]);
    assert_eq!(mentions(code, "println!").len(), 0);
    assert_eq!(
        mentions(code, "sqlite::"),
        [code.rfind("sqlite::").unwrap()]
    );
    assert_eq!(mentions(code, "store::sqlite").len(), 1);
}

#[test]
fn doc_line_rule_can_fail() {
    let path = "crates/phoebe/src/api/mod.rs";
    check(
        check_doc_line,
        path,
        "\n\n#![deny(missing_docs)]\n//! Late.\n",
        &["3: opens with `#![deny(missing_docs)]`"],
    );
    check(
        check_doc_line,
        path,
        "/// An item doc, not a file doc.\nfn f() {}\n",
        &["1: opens with `/// An item doc, not a file doc.`"],
    );
    check(
        check_doc_line,
        "fuzz/fuzz_targets/auth.rs",
        " \n",
        &["1: the file is empty"],
    );
    check(
        check_doc_line,
        "crates/phoebe/build.rs",
        "fn main() {}\n",
        &["1: opens with `fn main() {}`"],
    );
    check(
        check_doc_line,
        path,
        "\n//! API: one job.\nuse std::fs;\n",
        &[],
    );
    check(check_doc_line, "scripts/helper.rs", "fn main() {}\n", &[]);
    check(
        check_doc_line,
        path,
        "//!\n//! API: one job.\n",
        &["1: opens with `//!`"],
    );
}

#[test]
fn sql_rule_can_fail() {
    let text = r##"//! Somewhere outside storage.
fn f(c: &rusqlite::Connection) {
    c.execute("INSERT INTO t (a) VALUES (1)", []);
    let q = "SELECT id,
             name FROM users";
    c.execute(r#"UPDATE "issues" SET n = n + 1"#, []);
    let p = format!("PRAGMA {name}"); let r = "SELECT a\nFROM b";
    let x: tokio_postgres::Client = crate::store::postgres::open();
    // SELECT x FROM y in a comment, and `rusqlite` too
    let prose = "select one from the list"; let e = "SELECT failed"; let s = "sqlx_like";
}
"##;
    let expected = [
        "2: `rusqlite`",
        "3: SQL `INSERT INTO`",
        "4: SQL `SELECT ... FROM`",
        "6: SQL `UPDATE _ SET`",
        "7: SQL `PRAGMA _`, SQL `SELECT ... FROM`",
        "8: `tokio_postgres`",
    ];
    check(check_sql, "crates/phoebe/src/ops/mod.rs", text, &expected);
    check(check_sql, "crates/phoebe/tests/other.rs", text, &expected);
    check(
        check_sql,
        "crates/phoebe/src/store/sqlite/read.rs",
        text,
        &[],
    );
    check(check_sql, "crates/phoebe/src/store/postgres.rs", text, &[]);
    check(check_sql, "crates/phoebe/src/inbox/mod.rs", text, &expected);
    check(
        check_sql,
        "crates/phoebe/tests/it/crash.rs",
        text,
        &expected,
    );
    check(
        check_sql,
        "crates/phoebe/src/ops/mod.rs",
        "use postgres::Client;\n",
        &["1: `postgres::`"],
    );
}

#[test]
fn backend_rule_can_fail() {
    let text = "//! Ingest.\nuse crate::store::sqlite::SqliteStore;\n\
                use crate::store::{sqlite, Store};\n// SqliteStore in a comment\n\
                fn f(s: &dyn Store) -> PostgresStore { postgres::x() }\n";
    let expected = [
        "2: `SqliteStore`, `store::sqlite`",
        "3: `store::sqlite`",
        "5: `PostgresStore`, `postgres::`",
    ];
    check(
        check_backend_names,
        "crates/phoebe/src/ingest/keys.rs",
        text,
        &expected,
    );
    check(
        check_backend_names,
        "crates/phoebe/src/retention.rs",
        text,
        &expected,
    );
    check(
        check_backend_names,
        "crates/phoebe/src/store/mod.rs",
        text,
        &[],
    );
    check(
        check_backend_names,
        "crates/phoebe/src/server.rs",
        text,
        &expected,
    );
    check(
        check_backend_names,
        "crates/phoebe/src/telemetry.rs",
        text,
        &expected,
    );
    check(
        check_backend_names,
        "crates/phoebe/src/alerts/webhook.rs",
        text,
        &expected,
    );
    check(
        check_backend_names,
        "crates/phoebe/src/store/sqlite/read.rs",
        text,
        &[],
    );
}

#[test]
fn faces_rule_can_fail() {
    let text = "use crate::store::Issue;\nuse crate::{ops::Ops, store::User};\nuse crate::{\n    \
                domain::Project,\n    store,\n};\nuse crate::domain::Issue; // not crate::store\n\
                use crate::ops::store_stats;\n";
    let expected = [
        "1: `crate::store`",
        "2: `crate::store`",
        "5: `crate::store`",
    ];
    check(
        check_faces,
        "crates/phoebe/src/api/json.rs",
        text,
        &expected,
    );
    check(check_faces, "crates/phoebe/src/cli/mod.rs", text, &expected);
    check(check_faces, "crates/phoebe/src/ops/mod.rs", text, &[]);

    let text = "use super::store::Issue;\nuse super::super::store;\nuse self::store::X;\n\
                use super::{ops::Ops, store::User};\n";
    check(
        check_faces,
        "crates/phoebe/src/api/mod.rs",
        text,
        &["1: `crate::store`", "4: `crate::store`"],
    );
    check(
        check_faces,
        "crates/phoebe/src/api/json.rs",
        text,
        &["2: `crate::store`"],
    );
    check(
        check_faces,
        "crates/phoebe/src/ui/issues/list.rs",
        "use super::super::super::store;\nuse super::super::store;\n",
        &["1: `crate::store`"],
    );
}

#[test]
fn halves_rule_can_fail() {
    let text =
        "use crate::digest::Digester;\nuse crate::ingest::IngestError;\nuse crate::inbox::Inbox;\n";
    check(
        check_halves,
        "crates/phoebe/src/ingest/mod.rs",
        text,
        &["1: `crate::digest`"],
    );
    check(
        check_halves,
        "crates/phoebe/src/digest/process.rs",
        text,
        &["2: `crate::ingest`"],
    );
    check(check_halves, "crates/phoebe/src/server.rs", text, &[]);
    let text = "use super::digest::Digester;\nuse super::inbox::Inbox;\n";
    check(
        check_halves,
        "crates/phoebe/src/ingest/mod.rs",
        text,
        &["1: `crate::digest`"],
    );
    check(check_halves, "crates/phoebe/src/ingest/keys.rs", text, &[]);
}

#[test]
fn purity_rule_can_fail() {
    let text = "//! Pure.\nuse std::{fs, io};\npub fn f() { let _ = std::time::Instant::now(); }\n\
                // println! in a comment\n#[cfg(test)]\nmod helpers;\npub fn g() { println!(\"x\") }\n\
                #[cfg(test)]\nmod tests {\n    use std::env;\n}\n";
    let expected = ["2: `std::fs`", "3: `Instant::now`", "7: `println!`"];
    check(
        check_purity,
        "crates/phoebe-protocol/src/dsn.rs",
        text,
        &expected,
    );
    check(
        check_purity,
        "crates/phoebe/src/domain/ids.rs",
        text,
        &expected,
    );
    check(
        check_purity,
        "crates/phoebe-grouping/src/testkit.rs",
        text,
        &[],
    );
    check(check_purity, "crates/phoebe/src/ingest/mod.rs", text, &[]);
    check(
        check_purity,
        "crates/phoebe-protocol/src/dsn.rs",
        "use std::io::Read;\n",
        &[],
    );
    let text = "fn f() { print!(\"a\"); eprint!(\"b\"); let x = dbg!(1); }\n\
                fn g() { std::io::stdout(); let id = Uuid::new_v4(); }\nfn h() { eprintln!(); }\n";
    check(
        check_purity,
        "crates/phoebe-protocol/src/normalize/fields.rs",
        text,
        &[
            "1: `dbg!`, `eprint!`, `print!`",
            "2: `io::stdout`",
            "3: `eprintln!`",
        ],
    );
}

#[test]
fn test_code_is_blanked_item_by_item() {
    let text = r#"//! Pure.
#[cfg(test)]
fn helper() -> &'static str {
    let _ = std::fs::read("}");
    "{"
}
pub fn f() { println!() }
#[cfg(test)] use std::{env, fs};
#[cfg(test)]
#[allow(dead_code)]
mod helpers;
pub fn g() { let _ = std::env::args(); }
#[cfg(test)]
mod tests {
    fn t() { std::thread::spawn(|| {}); }
}
pub fn h() { let _ = std::time::Instant::now(); }
"#;
    check(
        check_purity,
        "crates/phoebe-protocol/src/dsn.rs",
        text,
        &["7: `println!`", "12: `std::env`", "17: `Instant::now`"],
    );
    let lexed = lex("a;\n#[cfg(test)] fn f() {\n}\nb;\n");
    let (code, skeleton) = without_test_code(&lexed.code, &lexed.skeleton);
    let blanked = format!("a;\n{}\n \nb;\n", " ".repeat("#[cfg(test)] fn f() {".len()));
    assert_eq!((code.as_str(), skeleton.as_str()), (&*blanked, &*blanked));
}

#[test]
fn domain_rule_can_fail() {
    let text = "//! Domain.\nuse crate::store::StoreError;\nuse crate::domain::ids::ProjectId;\n\
                use super::Issue;\npub(crate) fn f(c: &rusqlite::Connection) {}\n\
                use crate::{domain::X, ops};\n";
    let expected = ["2: `crate::store`", "5: `rusqlite`", "6: `crate::ops`"];
    check(
        check_domain,
        "crates/phoebe/src/domain/issue.rs",
        text,
        &expected,
    );
    check(check_domain, "crates/phoebe/src/store/mod.rs", text, &[]);

    let text = "use super::super::store::X;\nuse super::ids::ProjectId;\n\
                pub fn f() { super::super::ops::g() }\n";
    check(
        check_domain,
        "crates/phoebe/src/domain/issue.rs",
        text,
        &["1: `crate::store`", "3: `crate::ops`"],
    );
    // In `domain/mod.rs`, `super::` is the crate root, except inside an inline module.
    let text = "use super::config;\nuse self::ids::X;\n#[cfg(test)]\nmod tests {\n    \
                use super::*;\n    use super::super::store;\n}\n";
    check(
        check_domain,
        "crates/phoebe/src/domain/mod.rs",
        text,
        &["1: `crate::config`", "6: `crate::store`"],
    );
}

#[test]
fn relative_paths_resolve_against_the_files_module() {
    let resolve = |path: &str, code: &str| {
        let lexed = lex(code);
        resolve_relative_paths(path, &lexed.code, &lexed.skeleton)
    };
    let code = "use super::super::store::X;\nuse self::a;\nuse super::{b, c};\n\
                let s = \"super::x\"; pub(super) fn f() {}\n";
    assert_eq!(
        resolve("crates/phoebe/src/api/json.rs", code),
        "use crate::store::X;\nuse crate::api::json::a;\nuse crate::api::{b, c};\n\
         let s = \"super::x\"; pub(super) fn f() {}\n"
    );
    assert_eq!(
        resolve("crates/phoebe/src/api/mod.rs", code),
        "use super::super::store::X;\nuse crate::api::a;\nuse crate::{b, c};\n\
         let s = \"super::x\"; pub(super) fn f() {}\n"
    );
    assert_eq!(
        resolve("crates/phoebe/src/lib.rs", "use self::a; use super::b;"),
        "use crate::a; use super::b;"
    );
    assert_eq!(
        resolve(
            "crates/phoebe/src/ops/mod.rs",
            "mod a {\n    mod b { use super::super::x; }\n    use super::y;\n}\nuse self::z;"
        ),
        "mod a {\n    mod b { use crate::ops::x; }\n    use crate::ops::y;\n}\nuse crate::ops::z;"
    );
    assert_eq!(
        resolve("crates/phoebe/tests/it/api.rs", "use super::x;"),
        "use super::x;"
    );
    assert_eq!(module_of("crates/phoebe/src/main.rs"), Some(vec![]));
    assert_eq!(
        module_of("crates/phoebe/src/store/sqlite/mod.rs"),
        Some(vec!["store", "sqlite"])
    );
    assert_eq!(
        module_of("crates/phoebe-protocol/src/normalize/fields.rs"),
        Some(vec!["normalize", "fields"])
    );
}

#[test]
fn cli_caller_rule_can_fail() {
    let text = "//! Face.\nuse crate::ops::Caller;\nlet ops = ops.acting_as(Caller::Cli { as_user: None });\n\
                use crate::ops::caller::Caller::{Cli, Member};\n// Caller::Cli in a comment\n\
                let c = Caller::Member { user, role };\n";
    let expected = ["3: `Caller::Cli`", "4: `Caller::Cli`"];
    check(
        check_cli_caller,
        "crates/phoebe/src/api/mod.rs",
        text,
        &expected,
    );
    check(
        check_cli_caller,
        "crates/phoebe/src/ui/session.rs",
        text,
        &expected,
    );
    check(
        check_cli_caller,
        "crates/phoebe/src/server.rs",
        text,
        &expected,
    );
    check(
        check_cli_caller,
        "crates/phoebe/tests/it/api.rs",
        text,
        &expected,
    );
    check(check_cli_caller, "crates/phoebe/src/cli/mod.rs", text, &[]);
    check(
        check_cli_caller,
        "crates/phoebe/src/cli/issues.rs",
        text,
        &[],
    );
    check(
        check_cli_caller,
        "crates/phoebe/src/ops/caller.rs",
        text,
        &[],
    );
}

#[test]
fn architecture_md_rule_can_fail() {
    let lib_rs = "//! Lib.\npub mod api;\nmod domain;\npub(crate) mod store;\n// mod old;\n\
                  #[cfg(test)]\nmod tests {}\n";
    let md = "- `api` and `store::sqlite`\n- `store` in `crates/phoebe/src/main.rs`\n\
              - see `crates/gone/` and `tests/golden/`\n```\n`crates/in/a/fence`\n```\n";
    let exists = |path: &str| path == "crates/phoebe/src/main.rs";
    let found: Vec<String> = check_architecture_md(lib_rs, md, &exists)
        .iter()
        .map(|v| format!("{}:{}: {}", v.path, v.line, v.found))
        .collect();
    assert_eq!(
        found,
        [
            "crates/phoebe/src/lib.rs:3: module `domain` has no code-map line in ARCHITECTURE.md",
            "ARCHITECTURE.md:3: `crates/gone/` does not exist",
        ]
    );
    let prose = format!("{md}\nThe `domain` is mentioned, not listed.\n");
    assert_eq!(check_architecture_md(lib_rs, &prose, &exists).len(), 2);
    let md = format!("{md}\n- `domain`: the shared vocabulary\n");
    let exists = |path: &str| path.starts_with("crates/");
    assert!(check_architecture_md(lib_rs, &md, &exists).is_empty());
}

#[test]
fn test_only_declarations_are_recognised() {
    let parent =
        "mod fields;\n#[cfg(test)]\nmod corpus_tests;\n#[cfg(test)]\npub(crate) mod test_util;\n";
    assert!(declares_test_only(parent, "corpus_tests"));
    assert!(declares_test_only(parent, "test_util"));
    assert!(!declares_test_only(parent, "fields"));
    assert!(declares_test_only("#[cfg(test)] mod testkit;\n", "testkit"));
}
