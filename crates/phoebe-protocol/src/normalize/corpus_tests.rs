//! Golden tests from the real SDK corpus (`shared/corpus/`): every captured event normalizes,
//! and a few say exactly what they become. A new capture is a new test case.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use serde_json::{json, Value};

use super::test_util::kinds;
use super::time::parse_timestamp;
use super::{normalize_event, NormalizeContext, Problem};
use crate::event::{Event, EventKind, Level, LogEntry};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/corpus");

/// One event from the corpus: `client/capture` name, envelope header (`null` for `/store/`)
/// and payload bytes.
struct Capture {
    name: String,
    header: Value,
    payload: Vec<u8>,
}

/// Every event item and store body in the corpus, or `None` (skip) when the corpus is absent
/// outside CI.
fn captures() -> Option<Vec<Capture>> {
    let root = Path::new(CORPUS);
    if !root.is_dir() {
        assert!(
            std::env::var_os("CI").is_none(),
            "corpus missing at {CORPUS}"
        );
        eprintln!("skipping corpus tests: {CORPUS} not found");
        return None;
    }
    let mut captures = Vec::new();
    let mut clients: Vec<_> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    clients.sort();
    for client in clients.iter().filter(|c| !c.ends_with("generators")) {
        let mut sidecars: Vec<_> = std::fs::read_dir(client)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        sidecars.sort();
        for sidecar in sidecars {
            let meta: Value = serde_json::from_slice(&std::fs::read(&sidecar).unwrap()).unwrap();
            let summary = &meta["summary"];
            let kind = summary["kind"].as_str().unwrap_or_default();
            if kind != "envelope" && kind != "store" {
                continue;
            }
            let name = format!(
                "{}/{}",
                client.file_name().unwrap().to_string_lossy(),
                sidecar.file_stem().unwrap().to_string_lossy()
            );
            let body = decode(
                std::fs::read(sidecar.with_extension("req")).unwrap(),
                summary["content_encoding"].as_str(),
                &name,
            );
            if kind == "store" {
                captures.push(Capture {
                    name,
                    header: Value::Null,
                    payload: body,
                });
                continue;
            }
            let (header, items) = split_envelope(&body);
            for (item_header, payload) in items {
                if item_header["type"] == "event" {
                    captures.push(Capture {
                        name: name.clone(),
                        header: header.clone(),
                        payload: payload.to_vec(),
                    });
                }
            }
        }
    }
    Some(captures)
}

fn decode(body: Vec<u8>, encoding: Option<&str>, name: &str) -> Vec<u8> {
    let mut out = Vec::new();
    match encoding.unwrap_or("none") {
        "gzip" | "x-gzip" => flate2::read::GzDecoder::new(&body[..])
            .read_to_end(&mut out)
            .map(drop),
        // raven labels zlib as deflate; raw deflate is the other reading (protocol.md §3.5).
        "deflate" => flate2::read::ZlibDecoder::new(&body[..])
            .read_to_end(&mut out)
            .map(drop)
            .or_else(|_| {
                flate2::read::DeflateDecoder::new(&body[..])
                    .read_to_end(&mut out)
                    .map(drop)
            }),
        "br" => brotli::Decompressor::new(&body[..], 4096)
            .read_to_end(&mut out)
            .map(drop),
        _ => return body,
    }
    .unwrap_or_else(|e| panic!("{name}: decoding failed: {e}"));
    out
}

/// A test-only envelope splitter: header line, then items whose payload is `length` bytes
/// (Python, Rust, sentry-cli) or runs to the next newline (JS).
fn split_envelope(body: &[u8]) -> (Value, Vec<(Value, &[u8])>) {
    let (header, mut rest) = split_line(body);
    let header = serde_json::from_slice(header).unwrap();
    let mut items = Vec::new();
    while !rest.is_empty() {
        let (item_header, after) = split_line(rest);
        if item_header.iter().all(u8::is_ascii_whitespace) {
            rest = after;
            continue;
        }
        let item_header: Value = serde_json::from_slice(item_header).unwrap();
        let (payload, after) = match item_header["length"].as_u64() {
            Some(n) => {
                let (payload, after) = after.split_at(n as usize);
                (payload, after.strip_prefix(b"\n").unwrap_or(after))
            }
            None => split_line(after),
        };
        items.push((item_header, payload));
        rest = after;
    }
    (header, items)
}

fn split_line(bytes: &[u8]) -> (&[u8], &[u8]) {
    match bytes.iter().position(|&b| b == b'\n') {
        Some(i) => (&bytes[..i], &bytes[i + 1..]),
        None => (bytes, &[]),
    }
}

/// Normalizes every captured event the way ingest will: header event id and `sent_at`, receive
/// time one second after sending.
fn normalize_corpus() -> Option<BTreeMap<String, (Event, Vec<Problem>)>> {
    let mut results = BTreeMap::new();
    for capture in captures()? {
        let sent_at = capture.header.get("sent_at").and_then(parse_timestamp);
        let sent = sent_at.unwrap_or_else(|| {
            let payload: Value = serde_json::from_slice(&capture.payload).unwrap();
            parse_timestamp(&payload["timestamp"]).expect("store bodies carry a timestamp")
        });
        let mut ctx = NormalizeContext::new(sent + chrono::TimeDelta::seconds(1));
        ctx.sent_at = sent_at;
        ctx.header_event_id = capture
            .header
            .get("event_id")
            .and_then(Value::as_str)
            .map(|id| id.parse().unwrap());
        ctx.client_ip = Some("192.0.2.1".to_owned());
        let result = normalize_event(&capture.payload, &ctx)
            .unwrap_or_else(|e| panic!("{}: {e}", capture.name));
        assert!(
            results.insert(capture.name.clone(), result).is_none(),
            "{}: one event per capture",
            capture.name
        );
    }
    Some(results)
}

#[test]
fn every_corpus_event_normalizes_without_problems() {
    let Some(results) = normalize_corpus() else {
        return;
    };
    assert_eq!(
        results.len(),
        35,
        "events in the corpus: {:?}",
        results.keys().collect::<Vec<_>>()
    );
    for (name, (event, problems)) in &results {
        assert_eq!(
            kinds(problems),
            [] as [(&str, &str); 0],
            "{name}: {problems:#?}"
        );
        // Normalizing the normalized payload changes nothing: the canonical form is a fixpoint.
        let mut ctx = NormalizeContext::new(event.received);
        ctx.header_event_id = Some(event.event_id);
        let (again, problems) = super::normalize_value(event.payload.clone(), &ctx).unwrap();
        assert_eq!(again.payload, event.payload, "{name}");
        assert!(problems.is_empty(), "{name}: {problems:#?}");
    }
}

fn corpus_event(name: &str) -> Option<Event> {
    let mut results = normalize_corpus()?;
    Some(
        results
            .remove(name)
            .unwrap_or_else(|| panic!("{name} not in corpus"))
            .0,
    )
}

#[test]
fn python_unhandled_exception() {
    let Some(event) = corpus_event("python/001-unhandled-exception") else {
        return;
    };
    assert_eq!(
        (event.kind, event.level, event.platform.as_str()),
        (EventKind::Error, Level::Error, "python")
    );
    assert_eq!(
        event.event_id.simple().to_string(),
        "58a73214de0a4169bfd5e5d73f250d1a"
    );
    assert_eq!(event.exceptions.len(), 1);
    let exc = &event.exceptions[0];
    assert_eq!(
        (exc.ty.as_deref(), exc.value.as_deref()),
        (Some("ZeroDivisionError"), Some("float division by zero"))
    );
    let mechanism = exc.mechanism.as_ref().unwrap();
    assert_eq!(
        (
            mechanism.ty.as_str(),
            mechanism.handled,
            mechanism.synthetic
        ),
        ("excepthook", Some(false), false)
    );
    let frames = &exc.stacktrace.as_ref().unwrap().frames;
    let functions: Vec<_> = frames
        .iter()
        .map(|f| f.function.as_deref().unwrap_or_default())
        .collect();
    assert_eq!(
        functions,
        [
            "<module>",
            "main",
            "s_unhandled",
            "_report",
            "_compute_ratio",
            "<listcomp>"
        ]
    );
    let last = frames.last().unwrap();
    assert_eq!(
        (
            last.filename.as_deref(),
            last.module.as_deref(),
            last.lineno,
            last.in_app
        ),
        (
            Some("gen_python.py"),
            Some("__main__"),
            Some(63),
            Some(true)
        )
    );
    assert_eq!(
        (event.release.as_deref(), event.environment.as_deref()),
        (Some("corpus-python@1.4.2"), Some("staging"))
    );
    let tag = |key: &str| {
        event
            .tags
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(
        (tag("handled"), tag("mechanism"), tag("runtime")),
        (Some("no"), Some("excepthook"), Some("CPython 3.11.2"))
    );
    assert_eq!(event.payload["timestamp"], "2026-11-22T20:49:22.840467Z");
    assert_eq!(
        event.sdk.as_ref().map(|s| s.name.as_str()),
        Some("sentry.python.flask")
    );
}

#[test]
fn node_capture_message_has_a_synthetic_exception() {
    let Some(event) = corpus_event("node/006-capture-message--event") else {
        return;
    };
    assert_eq!(
        (event.kind, event.level),
        (EventKind::Error, Level::Warning)
    );
    assert_eq!(
        event.message,
        Some(LogEntry {
            message: None,
            formatted: Some("cache miss ratio above 40%".into())
        })
    );
    let exc = &event.exceptions[0];
    assert_eq!(
        (exc.ty.as_deref(), exc.value.as_deref()),
        (None, Some("cache miss ratio above 40%"))
    );
    assert!(exc.mechanism.as_ref().unwrap().synthetic);
    assert_eq!(exc.stacktrace.as_ref().unwrap().frames.len(), 8);

    let Some(event) = corpus_event("node/007-capture-message--event") else {
        return;
    };
    assert_eq!(
        event.message,
        Some(LogEntry {
            message: Some("user %s exported %s rows".into()),
            formatted: Some("user u-99 exported 1200 rows".into())
        })
    );
    assert_eq!(event.payload["timestamp"], "2026-11-22T20:50:09.362Z");
}

#[test]
fn raven_store_bodies() {
    let Some(event) = corpus_event("python-legacy/002-raven-store-message") else {
        return;
    };
    assert_eq!(
        (event.kind, event.level),
        (EventKind::Default, Level::Warning)
    );
    assert_eq!(
        event.message,
        Some(LogEntry {
            message: Some("quota for %s at %d%%".into()),
            formatted: Some("quota for 'tenant-9' at 93%".into())
        })
    );
    assert!(event.payload.get("sentry.interfaces.Message").is_none());

    let Some(event) = corpus_event("python-legacy/001-raven-store-exception") else {
        return;
    };
    assert_eq!((event.kind, event.level), (EventKind::Error, Level::Error));
    assert_eq!(event.payload["level"], "error");
    assert_eq!(
        event.message.and_then(|m| m.formatted).as_deref(),
        Some("ZeroDivisionError: division by zero")
    );
    assert_eq!(
        event.tags.first(),
        Some(&("client".to_owned(), "raven".to_owned()))
    );
    assert_eq!(event.payload["tags"], json!([["client", "raven"]]));
}

#[test]
fn sentry_cli_send_event() {
    let Some(event) = corpus_event("cli/001-send-event-hello") else {
        return;
    };
    assert_eq!(
        (event.kind, event.level, event.platform.as_str()),
        (EventKind::Default, Level::Error, "native")
    );
    assert_eq!(
        event.message,
        Some(LogEntry {
            message: None,
            formatted: Some("hello".into())
        })
    );
    let user = event.user.as_ref().unwrap();
    assert_eq!(
        (user.username.as_deref(), user.ip_address.as_deref()),
        (Some("root"), Some("192.0.2.1"))
    );
    assert!(event
        .tags
        .contains(&("user".to_owned(), "username:root".to_owned())));
    assert!(event
        .tags
        .contains(&("os".to_owned(), "Linux 6.18.44-fc-v769".to_owned())));
}

#[test]
fn rust_error_chain_without_stacks() {
    let Some(event) = corpus_event("rust/001-capture-error") else {
        return;
    };
    let types: Vec<_> = event.exceptions.iter().map(|e| e.ty.as_deref()).collect();
    assert_eq!(types, [Some("ParseIntError"), Some("ConfigError")]);
    assert!(event
        .exceptions
        .iter()
        .all(|e| e.stacktrace.is_none() && e.mechanism.is_none()));
    assert_eq!(
        event.tags.first(),
        Some(&("component".to_owned(), "config-loader".to_owned()))
    );
}

#[test]
fn browser_event_with_user_tags_and_request() {
    let Some(event) = corpus_event("browser/006-capture-breadcrumbs-user--event") else {
        return;
    };
    let tags: Vec<(&str, &str)> = event
        .tags
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        &tags[..2],
        [("ab.variant", "green-button"), ("level", "error")]
    );
    assert!(tags.contains(&("user", "id:web-user-5")));
    assert!(tags.contains(&("url", "http://127.0.0.1:38437/checkout?step=2")));
    // Backfilled from the User-Agent header (the SDK sends no browser/os context).
    assert!(tags.contains(&("browser", "HeadlessChrome 156.0.0.0")));
    assert!(tags.contains(&("os.name", "Linux")));
    assert_eq!(
        event.request_url.as_deref(),
        Some("http://127.0.0.1:38437/checkout?step=2")
    );
    assert!(event.payload["request"]["headers"][0][0] == "User-Agent");
}

#[test]
fn python_request_and_fingerprint() {
    let Some(event) = corpus_event("python/006-scope-context-fingerprint") else {
        return;
    };
    assert_eq!(
        event.fingerprint,
        Some(vec![
            "payment-gateway".to_owned(),
            "{{ default }}".to_owned()
        ])
    );
    assert_eq!(
        event.dist.as_deref(),
        Some(event.payload["dist"].as_str().unwrap())
    );
    assert_eq!(event.level, Level::Fatal);

    let Some(event) = corpus_event("python/018-flask-request-error--event") else {
        return;
    };
    assert_eq!(event.payload["request"]["method"], "POST");
    assert!(event.payload["request"]["headers"]
        .as_array()
        .unwrap()
        .iter()
        .all(|pair| pair.as_array().is_some_and(|p| p.len() == 2)));
    assert_eq!(
        event.request_url.as_deref(),
        Some("http://127.0.0.1:38773/orders/17/pay")
    );
}
