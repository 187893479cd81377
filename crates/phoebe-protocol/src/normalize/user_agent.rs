//! `contexts.browser` and `contexts.os` backfilled from the `User-Agent` request header when the
//! SDK sent none (protocol.md §6.4 rule 7), so browser events get their `browser`/`os` tags.
//!
//! The parser is a handful of substring checks in a fixed order, not uap-core's regex list: it
//! knows the browsers and systems people actually report errors from, and answers `None` for
//! the rest (bots, `curl`, HTTP libraries), which then get no context at all.

use serde_json::{Map, Value};

use super::Object;

/// Adds `contexts.browser` / `contexts.os` parsed from the `User-Agent` header, each only when
/// the event has none. Runs after `request` and `contexts` are canonical, before the typed view
/// (and so the derived tags) is extracted.
pub(super) fn backfill_contexts(map: &mut Object) {
    let contexts = map.get("contexts").and_then(Value::as_object);
    let need_browser = contexts.is_none_or(|c| !c.contains_key("browser"));
    let need_os = contexts.is_none_or(|c| !c.contains_key("os"));
    if !need_browser && !need_os {
        return;
    }
    let Some(ua) = user_agent_header(map) else {
        return;
    };
    let (browser, os) = parse_user_agent(ua);
    let browser = browser.filter(|_| need_browser);
    let os = os.filter(|_| need_os);
    if browser.is_none() && os.is_none() {
        return;
    }
    let contexts = match map
        .entry("contexts")
        .or_insert_with(|| Value::Object(Map::new()))
    {
        Value::Object(contexts) => contexts,
        // `normalize_contexts` left an object or nothing.
        _ => return,
    };
    for (key, parsed) in [("browser", browser), ("os", os)] {
        if let Some((name, version)) = parsed {
            contexts.insert(key.to_owned(), context(key, name, version));
        }
    }
}

/// The first `User-Agent` value in the canonical `request.headers` pairs, any name case.
fn user_agent_header(map: &Object) -> Option<&str> {
    let headers = map.get("request")?.get("headers")?.as_array()?;
    headers.iter().find_map(|pair| {
        let name = pair.get(0)?.as_str()?;
        if name.eq_ignore_ascii_case("user-agent") {
            pair.get(1)?.as_str()
        } else {
            None
        }
    })
}

/// `{"type": key, "name": name, "version": version}`, without `version` when it is empty.
fn context(key: &str, name: String, version: String) -> Value {
    let mut obj = Map::new();
    obj.insert("type".to_owned(), Value::String(key.to_owned()));
    obj.insert("name".to_owned(), Value::String(name));
    if !version.is_empty() {
        obj.insert("version".to_owned(), Value::String(version));
    }
    Value::Object(obj)
}

/// A browser's or operating system's `(name, version)`.
pub type NameVersion = (String, String);

/// Parses a `User-Agent` into `(browser, os)`, each `(name, version)`. Browser versions are kept
/// as the UA spells them (`120.0.6099.109`) and a browser without one is not recognised; an OS
/// version is `""` when the UA does not say (`Linux`). Crawlers and non-browser clients give
/// `(None, None)`.
pub fn parse_user_agent(ua: &str) -> (Option<NameVersion>, Option<NameVersion>) {
    if is_bot(ua) {
        return (None, None);
    }
    (parse_browser(ua), parse_os(ua))
}

/// Crawlers and link previewers, which often embed a real browser's UA.
fn is_bot(ua: &str) -> bool {
    ["bot/", "bot;", "bot)", "spider", "crawl", "slurp"]
        .iter()
        .any(|needle| contains_ignore_case(ua, needle))
}

/// Browsers whose UA names one token `Name/version`, most specific first: Edge, Opera and
/// Samsung Internet also send `Chrome/`, and `HeadlessChrome/` contains `Chrome/`.
const BROWSER_TOKENS: &[(&str, &str)] = &[
    ("Edg/", "Edge"),
    ("EdgA/", "Edge"),
    ("EdgiOS/", "Edge"),
    ("Edge/", "Edge"),
    ("OPR/", "Opera"),
    ("OPiOS/", "Opera"),
    ("SamsungBrowser/", "Samsung Internet"),
    ("HeadlessChrome/", "HeadlessChrome"),
    ("CriOS/", "Chrome"),
    ("FxiOS/", "Firefox"),
    ("Chromium/", "Chromium"),
    ("Chrome/", "Chrome"),
    ("Firefox/", "Firefox"),
];

fn parse_browser(ua: &str) -> Option<NameVersion> {
    for (token, name) in BROWSER_TOKENS {
        if let Some(version) = version_after(ua, token) {
            return Some(((*name).to_owned(), version.to_owned()));
        }
    }
    if ua.contains("Trident/") {
        // IE 11: `Trident/7.0; rv:11.0) like Gecko`.
        if let Some(version) = version_after(ua, "rv:") {
            return Some(("IE".to_owned(), version.to_owned()));
        }
    }
    if let Some(version) = version_after(ua, "MSIE ") {
        return Some(("IE".to_owned(), version.to_owned()));
    }
    if ua.contains("Safari/") {
        if let Some(version) = version_after(ua, "Version/") {
            return Some(("Safari".to_owned(), version.to_owned()));
        }
    }
    None
}

fn parse_os(ua: &str) -> Option<NameVersion> {
    let os = |name: &str, version: String| Some((name.to_owned(), version));
    if let Some(version) = version_after(ua, "Windows Phone ") {
        return os("Windows Phone", version.to_owned());
    }
    if let Some(nt) = version_after(ua, "Windows NT ") {
        let version = match nt {
            "10.0" => "10",
            "6.3" => "8.1",
            "6.2" => "8",
            "6.1" => "7",
            "6.0" => "Vista",
            "5.1" | "5.2" => "XP",
            _ => "",
        };
        return os("Windows", version.to_owned());
    }
    if let Some(rest) = after(ua, "CrOS ") {
        // `CrOS x86_64 14541.0.0`: the platform, then the version.
        let version = rest
            .split_once(' ')
            .map_or("", |(_, v)| leading_version(v, b'.'));
        return os("Chrome OS", version.to_owned());
    }
    // Before macOS: iOS UAs say `like Mac OS X`.
    if ["iPhone", "iPad", "iPod"].iter().any(|d| ua.contains(d)) {
        let version = after(ua, " OS ").map_or("", |v| leading_version(v, b'_'));
        return os("iOS", version.replace('_', "."));
    }
    // Before Linux: Android UAs say `Linux; Android 14`.
    if let Some(rest) = after(ua, "Android") {
        let version = rest
            .strip_prefix(' ')
            .map_or("", |v| leading_version(v, b'.'));
        return os("Android", version.to_owned());
    }
    if let Some(rest) = after(ua, "Mac OS X") {
        let version = rest
            .strip_prefix(' ')
            .map_or("", |v| leading_version(v, b'_'));
        return os("macOS", version.replace('_', "."));
    }
    if ua.contains("Linux") {
        return os("Linux", String::new());
    }
    None
}

/// What follows the first `token` in `ua`.
fn after<'a>(ua: &'a str, token: &str) -> Option<&'a str> {
    ua.find(token).map(|i| &ua[i + token.len()..])
}

/// The version right after `token` (digits and dots, starting with a digit), if any.
fn version_after<'a>(ua: &'a str, token: &str) -> Option<&'a str> {
    let version = leading_version(after(ua, token)?, b'.');
    (!version.is_empty()).then_some(version)
}

/// The longest prefix of digits and `sep`, starting with a digit and not ending in `sep`
/// (`17_2 like` gives `17_2`; `10.15; rv` gives `10.15`).
fn leading_version(text: &str, sep: u8) -> &str {
    let bytes = text.as_bytes();
    if !bytes.first().is_some_and(u8::is_ascii_digit) {
        return "";
    }
    let mut end = bytes
        .iter()
        .position(|&b| !(b.is_ascii_digit() || b == sep || b == b'.'))
        .unwrap_or(bytes.len());
    while end > 0 && !bytes[end - 1].is_ascii_digit() {
        end -= 1;
    }
    &text[..end]
}

/// ASCII case-insensitive substring search, without allocating.
fn contains_ignore_case(haystack: &str, needle: &str) -> bool {
    let needle = needle.as_bytes();
    haystack
        .as_bytes()
        .windows(needle.len())
        .any(|window| window.eq_ignore_ascii_case(needle))
}

#[cfg(test)]
mod tests {
    use super::parse_user_agent;
    use crate::normalize::test_util::normalize;
    use serde_json::json;

    type Parsed<'a> = (Option<(&'a str, &'a str)>, Option<(&'a str, &'a str)>);

    /// Parses `ua` and compares `(browser, os)` exactly.
    fn check(ua: &str, expected: Parsed<'_>) {
        let (browser, os) = parse_user_agent(ua);
        assert_eq!((as_refs(&browser), as_refs(&os)), expected, "{ua}");
    }

    fn as_refs(parsed: &Option<(String, String)>) -> Option<(&str, &str)> {
        parsed.as_ref().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    #[test]
    fn browsers_and_systems_are_recognised() {
        // The browser corpus (Playwright).
        check(
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/156.0.0.0 Safari/537.36",
            (Some(("HeadlessChrome", "156.0.0.0")), Some(("Linux", ""))),
        );
        check(
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.109 Safari/537.36",
            (Some(("Chrome", "120.0.6099.109")), Some(("Windows", "10"))),
        );
        check(
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
            (Some(("Chrome", "120.0.0.0")), Some(("macOS", "10.15.7"))),
        );
        check(
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91",
            (Some(("Edge", "120.0.2210.91")), Some(("Windows", "10"))),
        );
        check(
            "Mozilla/5.0 (Windows NT 6.3; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/109.0.0.0 Safari/537.36 OPR/95.0.0.0",
            (Some(("Opera", "95.0.0.0")), Some(("Windows", "8.1"))),
        );
        check(
            "Mozilla/5.0 (Windows NT 6.1; Win64; x64; rv:115.0) Gecko/20100101 Firefox/115.0",
            (Some(("Firefox", "115.0")), Some(("Windows", "7"))),
        );
        check(
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:121.0) Gecko/20100101 Firefox/121.0",
            (Some(("Firefox", "121.0")), Some(("macOS", "10.15"))),
        );
        check(
            "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:109.0) Gecko/20100101 Firefox/119.0",
            (Some(("Firefox", "119.0")), Some(("Linux", ""))),
        );
        check(
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2.1 Safari/605.1.15",
            (Some(("Safari", "17.2.1")), Some(("macOS", "10.15.7"))),
        );
        check(
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.2 Mobile/15E148 Safari/604.1",
            (Some(("Safari", "17.2")), Some(("iOS", "17.2"))),
        );
        check(
            "Mozilla/5.0 (iPad; CPU OS 16_6_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/120.0.6099.119 Mobile/15E148 Safari/604.1",
            (Some(("Chrome", "120.0.6099.119")), Some(("iOS", "16.6.1"))),
        );
        check(
            "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.144 Mobile Safari/537.36",
            (Some(("Chrome", "120.0.6099.144")), Some(("Android", "14"))),
        );
        check(
            "Mozilla/5.0 (Linux; Android 13; SAMSUNG SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36",
            (Some(("Samsung Internet", "23.0")), Some(("Android", "13"))),
        );
        check(
            "Mozilla/5.0 (Windows NT 6.1; WOW64; Trident/7.0; rv:11.0) like Gecko",
            (Some(("IE", "11.0")), Some(("Windows", "7"))),
        );
        check(
            "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
            (Some(("Chrome", "120.0.0.0")), Some(("Chrome OS", "14541.0.0"))),
        );
        check(
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Ubuntu Chromium/79.0.3945.79 Chrome/79.0.3945.79 Safari/537.36",
            (Some(("Chromium", "79.0.3945.79")), Some(("Linux", ""))),
        );
        // Android WebView-less Safari lookalike: `Chrome/` wins over `Version/`.
        check(
            "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/120.0.6099.43 Mobile Safari/537.36",
            (Some(("Chrome", "120.0.6099.43")), Some(("Android", "10"))),
        );
    }

    #[test]
    fn bots_and_libraries_are_not_browsers() {
        check("curl/8.4.0", (None, None));
        check("python-requests/2.31.0", (None, None));
        // The node corpus's express request.
        check("corpus-client/1.0", (None, None));
        check("", (None, None));
        check(
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            (None, None),
        );
        check(
            "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.6099.129 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            (None, None),
        );
        check(
            "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
            (None, None),
        );
        // Unknown versions and browsers without one.
        check(
            "Mozilla/5.0 (Windows NT 11.0) Chrome/ Safari/537.36",
            (None, Some(("Windows", ""))),
        );
    }

    const HEADLESS: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/156.0.0.0 Safari/537.36";

    fn tag<'e>(event: &'e crate::event::Event, key: &str) -> Option<&'e str> {
        event
            .tags
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn browser_events_get_browser_and_os_from_the_user_agent() {
        let (event, problems) = normalize(json!({
            "platform": "javascript",
            "request": {
                "url": "http://127.0.0.1:38437/checkout",
                "headers": {"user-agent": HEADLESS},
            },
            "contexts": {"trace": {"trace_id": "05e4046e751f4551a1f7e4e083e3f870"}},
        }));
        assert!(problems.is_empty());
        assert_eq!(
            event.payload["contexts"]["browser"],
            json!({"type": "browser", "name": "HeadlessChrome", "version": "156.0.0.0"})
        );
        assert_eq!(
            event.payload["contexts"]["os"],
            json!({"type": "os", "name": "Linux"})
        );
        assert_eq!(tag(&event, "browser"), Some("HeadlessChrome 156.0.0.0"));
        assert_eq!(tag(&event, "browser.name"), Some("HeadlessChrome"));
        assert_eq!(tag(&event, "os"), Some("Linux"));
        assert_eq!(tag(&event, "os.name"), Some("Linux"));
    }

    #[test]
    fn contexts_the_sdk_sent_are_kept() {
        let (event, _) = normalize(json!({
            "request": {"headers": [["User-Agent", HEADLESS]]},
            "contexts": {"browser": {"name": "Firefox", "version": "121.0"}},
        }));
        assert_eq!(
            event.payload["contexts"]["browser"],
            json!({"name": "Firefox", "version": "121.0"})
        );
        assert_eq!(tag(&event, "browser"), Some("Firefox 121.0"));
        // The missing one is still filled in.
        assert_eq!(tag(&event, "os.name"), Some("Linux"));

        let (event, _) = normalize(json!({"request": {"headers": [["User-Agent", "curl/8.4.0"]]}}));
        assert!(event.payload.get("contexts").is_none());
        assert_eq!(tag(&event, "browser"), None);
    }
}
