//! Message parameterization: replaces the parts of a message that vary between occurrences of
//! the same problem (ids, addresses, times, numbers) with `<placeholders>`.
//!
//! The classes and their order follow Sentry's `normalize_message_for_grouping` (the list Bugsink
//! vendors). The `regex` crate has no look-behind, so each class is its own regex and the scan
//! below picks, at the leftmost position, the first class that matches there: the same answer a
//! single leftmost-first alternation gives, plus room for the `=` look-behind and the IPv6 guard.

use std::sync::LazyLock;

use regex::{Regex, RegexSet, SetMatches};

/// A placeholder class: its name (`<name>` replaces a match) and what a match must satisfy
/// beyond the regex.
struct Class {
    name: &'static str,
    /// Alternatives; at one position the longest match wins, so that `2001:db8::1` is one
    /// address rather than `2001:db8::` followed by a number (Sentry's alternation order).
    alternatives: Vec<Regex>,
    guard: Guard,
    /// Where this class's alternatives start in [`ANY`].
    first_in_set: usize,
}

#[derive(Clone, Copy, PartialEq)]
enum Guard {
    None,
    /// Only the value half of `key=value` (Sentry uses a `(?<==)` look-behind).
    AfterEquals,
    /// IPv6 forms must stand alone, so `std::vec` or `Bad::x` are not addresses.
    StandaloneIpv6,
}

const MONTHS: &str = "Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec";
const WEEKDAYS: &str = "Sun|Mon|Tue|Wed|Thu|Fri|Sat";
const ZONE: &str = "UT|GMT|[ECMP][SD]T|[A-IK-Z]";
const TLDS: &str = "com|net|org|jp|de|uk|fr|br|it|ru|es|me|gov|pl|ca|au|cn|co|in|nl|edu|info|eu|ch|id|at|kr|cz|mx|be|tv|se|tr|tw|al|ua|ir|vn|cl|sk|ly|cc|to|no|fi|us|pt|dk|ar|hu|tk|gr|il|news|ro|my|biz|ie|za|nz|sg|ee|th|io|xyz|pe|bg|hk|rs|lt|link|ph|club|si|site|mobi|by|cat|wiki|la|ga|xxx|cf|hr|ng|jobs|online|kz|ug|gq|ae|is|lv|pro|fm|tips|ms|sa|app";

fn ipv4() -> String {
    let octet = r"(?:25[0-5]|(?:2[0-4]|1?[0-9])?[0-9])";
    format!(r"(?:{octet}\.){{3}}{octet}")
}

fn ip_alternatives() -> Vec<String> {
    let h = "[0-9a-fA-F]{1,4}";
    let v4 = ipv4();
    let v6 = [
        format!(r"\b(?:{h}:){{7}}{h}"),
        format!(r"\b(?:{h}:){{1,7}}:"),
        format!(r"\b(?:{h}:){{1,6}}:{h}"),
        format!(r"\b(?:{h}:){{1,5}}(?::{h}){{1,2}}"),
        format!(r"\b(?:{h}:){{1,4}}(?::{h}){{1,3}}"),
        format!(r"\b(?:{h}:){{1,3}}(?::{h}){{1,4}}"),
        format!(r"\b(?:{h}:){{1,2}}(?::{h}){{1,5}}"),
        format!(r"\b{h}:(?::{h}){{1,6}}"),
        format!(r":(?:(?::{h}){{1,7}}|:)"),
        r"\bfe80:(?::[0-9a-fA-F]{0,4}){0,4}%[0-9a-zA-Z]+".to_string(),
        format!(r"::(?:ffff(?::0{{1,4}})?:)?{v4}"),
        format!(r"\b(?:{h}:){{1,4}}:{v4}\b"),
    ]
    .to_vec();
    let mut all = v6;
    all.push(format!(r"\b{v4}\b"));
    all
}

fn date_pattern() -> String {
    let full_weekdays = "Sunday|Monday|Tuesday|Wednesday|Thursday|Friday|Saturday";
    [
        // RFC 822 / 1123 / 1123Z
        format!(
            r"(?:{WEEKDAYS}),\s\d{{1,2}}\s(?:{MONTHS})\s\d{{2,4}}\s\d{{1,2}}:\d{{1,2}}(?::\d{{1,2}})?\s(?:[-+]\d{{2}}[0-5]\d|{ZONE})"
        ),
        // "Mon Jan 02, 1999", "Jan 02, 1999"
        format!(r"(?:(?:{WEEKDAYS})\s)?(?:{MONTHS})\s[0-3]\d,\s\d{{2,4}}"),
        // RFC 850
        format!(
            r"(?:{full_weekdays}),\s\d{{2}}-(?:{MONTHS})-\d{{2}}\s\d{{2}}:\d{{2}}:\d{{2}}\s(?:{ZONE})"
        ),
        // RFC 3339 (nano)
        r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z?(?:[+-]?\d{2}:\d{2})?".to_string(),
        // "2024-01-31 12:00:00.123"
        r"\d{4}-?[01]\d-?[0-3]\d\s[0-2]\d:[0-5]\d:[0-5]\d(?:\.\d+)?".to_string(),
        // kitchen time
        r"\d{1,2}:\d{2}(?::\d{2})?(?: [aApP][Mm])?".to_string(),
        // date
        r"\d{4}-[01]\d-[0-3]\d".to_string(),
        // time
        r"[0-2]\d:[0-5]\d:[0-5]\d".to_string(),
        // ctime: "Mon Jan  2 15:04:05 2006"
        format!(
            r"\b(?:(?:{WEEKDAYS})\s+)?(?:{MONTHS})\s+\d{{1,2}}\s+\d{{2}}:\d{{2}}:\d{{2}}\s+\d{{4}}"
        ),
        // "02 Jan 2006 15:04 -0700"
        format!(
            r"\b(?:(?:{WEEKDAYS}),\s+)?(?:0[1-9]|[1-2]?\d|3[01])\s+(?:{MONTHS})\s+(?:19\d{{2}}|[2-9]\d{{3}})\s+(?:2[0-3]|[0-1]\d):[0-5]\d(?::(?:60|[0-5]\d))?\s+(?:[-+]\d{{2}}[0-5]\d|{ZONE})"
        ),
        // Python reprs
        r"datetime\.datetime\(.*?\)".to_string(),
    ]
    .join("|")
}

static CLASSES: LazyLock<Vec<Class>> = LazyLock::new(|| {
    let upper_tlds = TLDS.to_ascii_uppercase();
    let one = |pattern: String| vec![pattern];
    let table: Vec<(&'static str, Vec<String>, Guard)> =
        vec![
        (
            "email",
            one(r"[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~\-]+@[a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)*".to_string()),
            Guard::None,
        ),
        (
            "url",
            one(r"\b(?:wss?|https?|ftp)://[^\s/$.?#].[^\s]*".to_string()),
            Guard::None,
        ),
        (
            "hostname",
            one(format!(r"\b(?:[a-zA-Z0-9\-]{{1,63}}\.)+?(?:{upper_tlds}|{TLDS})\b")),
            Guard::None,
        ),
        ("ip", ip_alternatives(), Guard::StandaloneIpv6),
        (
            "uuid",
            one(
                r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"
                    .to_string(),
            ),
            Guard::None,
        ),
        ("sha1", one(r"\b[0-9a-fA-F]{40}\b".to_string()), Guard::None),
        ("md5", one(r"\b[0-9a-fA-F]{32}\b".to_string()), Guard::None),
        ("date", one(date_pattern()), Guard::None),
        // Sentry's own pattern (`\b(\d+ms) | (\d(\.\d+)?s)\b`) turns "300s" into "30<duration>";
        // this one takes the whole number.
        (
            "duration",
            one(r"\b\d+(?:\.\d+)?(?:ms|s)\b".to_string()),
            Guard::None,
        ),
        ("hex", one(r"\b0[xX][0-9a-fA-F]+\b".to_string()), Guard::None),
        ("float", one(r"-\d+\.\d+\b|\b\d+\.\d+\b".to_string()), Guard::None),
        ("int", one(r"-\d+\b|\b\d+\b".to_string()), Guard::None),
        (
            "quoted_str",
            one(r#"'[^']+'|"[^"]+""#.to_string()),
            Guard::AfterEquals,
        ),
        (
            "bool",
            one("True|true|False|false".to_string()),
            Guard::AfterEquals,
        ),
    ];
    let mut first_in_set = 0;
    table
        .into_iter()
        .map(|(name, patterns, guard)| {
            let class = Class {
                name,
                // The patterns are constants, all exercised by the tests below.
                alternatives: patterns
                    .iter()
                    .map(|p| Regex::new(p).expect("parameterization pattern compiles"))
                    .collect(),
                guard,
                first_in_set,
            };
            first_in_set += class.alternatives.len();
            class
        })
        .collect()
});

/// Every alternative of every class, in order, so that one pass over a message tells which of
/// them match anywhere in it. Only those are searched: a `find_at` match is also a match of the
/// whole text, so an alternative the set does not report has none at any offset. Most messages
/// contain two or three classes at most, and this saves searching for the other dozen.
static ANY: LazyLock<RegexSet> = LazyLock::new(|| {
    RegexSet::new(
        CLASSES
            .iter()
            .flat_map(|c| c.alternatives.iter().map(Regex::as_str)),
    )
    .expect("parameterization patterns compile")
});

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn guard_allows(guard: Guard, text: &str, start: usize, end: usize) -> bool {
    let before = text[..start].chars().next_back();
    match guard {
        Guard::None => true,
        Guard::AfterEquals => before == Some('='),
        Guard::StandaloneIpv6 => {
            if !text[start..end].contains(':') {
                return true;
            }
            let after = text[end..].chars().next();
            !before.is_some_and(is_word_char) && !after.is_some_and(is_word_char)
        }
    }
}

/// The next match of one class at or after `from` that passes its guard; `live` are the
/// alternatives (indexes into [`ANY`]) that match somewhere in `text`.
fn next_match(
    class: &Class,
    live: &SetMatches,
    text: &str,
    mut from: usize,
) -> Option<(usize, usize)> {
    let live = |i: usize| live.matched(class.first_in_set + i);
    if !(0..class.alternatives.len()).any(live) {
        return None;
    }
    while from <= text.len() {
        let found: Vec<(usize, usize)> = class
            .alternatives
            .iter()
            .enumerate()
            .filter(|&(i, _)| live(i))
            .filter_map(|(_, r)| r.find_at(text, from))
            .map(|m| (m.start(), m.end()))
            .collect();
        let start = found.iter().map(|&(s, _)| s).min()?;
        let mut here: Vec<usize> = found
            .iter()
            .filter(|&&(s, e)| s == start && e > s)
            .map(|&(_, e)| e)
            .collect();
        here.sort_unstable_by(|a, b| b.cmp(a));
        if let Some(end) = here
            .into_iter()
            .find(|&end| guard_allows(class.guard, text, start, end))
        {
            return Some((start, end));
        }
        // Rejected (or empty): look again one character further on.
        from = start + text[start..].chars().next().map_or(1, char::len_utf8);
    }
    None
}

/// Python's `str.splitlines` boundaries, so that "first line" means what it means in Sentry.
fn is_line_break(c: char) -> bool {
    matches!(
        c,
        '\n' | '\r'
            | '\u{b}'
            | '\u{c}'
            | '\u{1c}'
            | '\u{1d}'
            | '\u{1e}'
            | '\u{85}'
            | '\u{2028}'
            | '\u{2029}'
    )
}

/// The lines of `s` as Python's `splitlines` gives them (`\r\n` is one break).
pub(crate) fn split_lines(s: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut start = 0;
    let mut chars = s.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if is_line_break(c) {
            lines.push(&s[start..i]);
            let mut next = i + c.len_utf8();
            if c == '\r' {
                if let Some(&(j, '\n')) = chars.peek() {
                    chars.next();
                    next = j + 1;
                }
            }
            start = next;
        }
    }
    if start < s.len() {
        lines.push(&s[start..]);
    }
    lines
}

fn replace_classes(text: &str) -> String {
    let classes = &*CLASSES;
    let live = ANY.matches(text);
    let mut next: Vec<Option<(usize, usize)>> = classes
        .iter()
        .map(|c| next_match(c, &live, text, 0))
        .collect();
    let mut out = String::with_capacity(text.len());
    let mut pos = 0;
    loop {
        // The leftmost match wins; among matches at the same place, the earlier class.
        let best = next
            .iter()
            .enumerate()
            .filter_map(|(i, m)| m.map(|(s, e)| (s, i, e)))
            .min_by_key(|&(s, i, _)| (s, i));
        let Some((start, class, end)) = best else {
            break;
        };
        out.push_str(&text[pos..start]);
        out.push('<');
        out.push_str(classes[class].name);
        out.push('>');
        pos = end;
        for (i, m) in next.iter_mut().enumerate() {
            if m.is_some_and(|(s, _)| s < pos) {
                *m = next_match(&classes[i], &live, text, pos);
            }
        }
    }
    out.push_str(&text[pos..]);
    out
}

/// Replaces the variable parts of a message with placeholders so that occurrences of the same
/// problem share a key: keeps the first two non-empty lines (appending `...` when a line was
/// cut), then replaces, leftmost first, emails, URLs, host names, IPv4/IPv6 addresses, UUIDs,
/// SHA-1 and MD5 hex digests, dates and times, durations, hex numbers, floats, integers, and
/// quoted values and booleans after `=`, with `<email>`, `<url>`, `<hostname>`, `<ip>`, `<uuid>`,
/// `<sha1>`, `<md5>`, `<date>`, `<duration>`, `<hex>`, `<float>`, `<int>`, `<quoted_str>` and
/// `<bool>`.
pub fn parameterize(message: &str) -> String {
    let lines: Vec<&str> = split_lines(message)
        .into_iter()
        .filter(|l| !l.trim().is_empty())
        .collect();
    let mut trimmed = lines[..lines.len().min(2)].join("\n");
    // Sentry appends "..." whenever the text changed (even for a trailing newline or "\r\n");
    // only a cut line is worth saying.
    if lines.len() > 2 {
        trimmed.push_str("...");
    }
    replace_classes(&trimmed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: &str) {
        assert_eq!(parameterize(input), expected, "input: {input:?}");
    }

    #[test]
    fn table() {
        let cases: &[(&str, &str)] = &[
            ("", ""),
            ("nothing to replace", "nothing to replace"),
            ("user 42 failed", "user <int> failed"),
            ("balance -17 below zero", "balance <int> below zero"),
            (
                "ratio 0.75 too high, delta -1.5",
                "ratio <float> too high, delta <float>",
            ),
            ("disk usage above 90%", "disk usage above <int>%"),
            (
                "mail ann.lee+tag@example.co.uk bounced",
                "mail <email> bounced",
            ),
            (
                "GET https://api.example.com/v1/users?id=3 failed",
                "GET <url> failed",
            ),
            ("ws://127.0.0.1:9000/socket closed", "<url> closed"),
            (
                "could not resolve db.internal.example.com",
                "could not resolve <hostname>",
            ),
            (
                "could not resolve CACHE.EXAMPLE.IO",
                "could not resolve <hostname>",
            ),
            ("connect to 10.0.0.12 refused", "connect to <ip> refused"),
            (
                "connect to 10.0.0.12:5432 refused",
                "connect to <ip>:<int> refused",
            ),
            ("bind 2001:db8::8a2e:370:7334 failed", "bind <ip> failed"),
            ("listen on ::1 failed", "listen on <ip> failed"),
            ("peer fe80::1%eth0 gone", "peer <ip> gone"),
            ("no std::vector here", "no std::vector here"),
            ("call Bad::x failed", "call Bad::x failed"),
            (
                "job 1b4e28ba-2fa1-11d2-883f-0016d3cca427 lost",
                "job <uuid> lost",
            ),
            (
                "commit da39a3ee5e6b4b0d3255bfef95601890afd80709 missing",
                "commit <sha1> missing",
            ),
            (
                "blob d41d8cd98f00b204e9800998ecf8427e missing",
                "blob <md5> missing",
            ),
            ("at 2024-01-31T12:00:00Z", "at <date>"),
            ("at 2024-01-31T12:00:00.123+01:00 sharp", "at <date> sharp"),
            ("at 2024-01-31 12:00:00.5 sharp", "at <date> sharp"),
            ("on 2024-01-31", "on <date>"),
            ("at 9:30 PM", "at <date>"),
            ("at 23:59:59", "at <date>"),
            ("sent Mon, 02 Jan 2006 15:04:05 MST", "sent <date>"),
            ("sent Monday, 02-Jan-06 15:04:05 MST", "sent <date>"),
            ("sent Mon Jan  2 15:04:05 2006", "sent <date>"),
            ("sent Jan 02, 2006", "sent <date>"),
            ("at datetime.datetime(2024, 1, 31, 12, 0)!", "at <date>!"),
            ("took 250ms", "took <duration>"),
            (
                "job 'reindex' exceeded 300s",
                "job 'reindex' exceeded <duration>",
            ),
            ("waited 1.5s", "waited <duration>"),
            ("segfault at 0x7ffee4c3a9b0", "segfault at <hex>"),
            (
                "key='abc' other=\"x y\"",
                "key=<quoted_str> other=<quoted_str>",
            ),
            ("a 'quoted' word stays", "a 'quoted' word stays"),
            ("flag=true other=False", "flag=<bool> other=<bool>"),
            ("it is true", "it is true"),
            ("id=42", "id=<int>"),
            (
                "cus_123 stays, u-99 does not",
                "cus_123 stays, u<int> does not",
            ),
            ("line one\nline two\nline three", "line one\nline two..."),
            ("\n\nfirst\n\n  \nsecond 2\n", "first\nsecond <int>"),
            ("a\nb\n\nc 3\n", "a\nb..."),
            ("only line\n", "only line"),
            ("crlf one\r\ncrlf two", "crlf one\ncrlf two"),
            ("ünïcödé 12 wörds", "ünïcödé <int> wörds"),
            (
                "SELECT * FROM orders WHERE id=42 AND name='bob' AND paid=true",
                "SELECT * FROM orders WHERE id=<int> AND name=<quoted_str> AND paid=<bool>",
            ),
            // FIXME: with spaces around `=` a quoted SQL literal is kept (Sentry does the same).
            (
                "WHERE id = 42 AND name = 'bob'",
                "WHERE id = <int> AND name = 'bob'",
            ),
        ];
        for (input, expected) in cases {
            check(input, expected);
        }
    }

    #[test]
    fn split_lines_matches_python() {
        assert_eq!(split_lines("a\r\nb\rc\nd"), vec!["a", "b", "c", "d"]);
        assert_eq!(split_lines("a\n"), vec!["a"]);
        assert_eq!(split_lines("a\n\nb"), vec!["a", "", "b"]);
        assert_eq!(split_lines(""), Vec::<&str>::new());
        assert_eq!(split_lines("x\u{2028}y"), vec!["x", "y"]);
    }

    #[test]
    fn long_and_odd_input_does_not_panic() {
        let long = "x=1 ".repeat(5000);
        assert!(parameterize(&long).starts_with("x=<int> x=<int>"));
        assert_eq!(parameterize("=\"\"=''="), "=\"\"=''=");
        assert_eq!(parameterize("é=true"), "é=<bool>");
    }
}
