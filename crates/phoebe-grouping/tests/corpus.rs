//! Golden tests over the real SDK corpus: every captured event goes through envelope parsing,
//! normalization, grouping and summarizing, and the result is compared with
//! `tests/golden/<client>__<capture>.json`. `PHOEBE_BLESS=1` rewrites the goldens instead.
//!
//! The corpus lives in the shared folder beside the repository; without it the tests skip,
//! unless `CI` is set.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use phoebe_grouping::{group, summarize, Component, Grouping, IssueSummary, Variant};
use phoebe_protocol::envelope::{Envelope, ItemType};
use phoebe_protocol::event::Event;
use phoebe_protocol::normalize::{normalize_event, NormalizeContext};
use serde_json::{json, Value};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/corpus");
const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden");

/// One captured event: `<client>__<capture>` (plus `-N` for a second event in one request).
struct Captured {
    name: String,
    event: Event,
}

fn corpus_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(CORPUS);
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "corpus missing at {CORPUS}: CI needs shared/ beside the repository"
    );
    eprintln!("skipping: no corpus at {CORPUS}");
    None
}

fn decompress(body: Vec<u8>, encoding: &str, path: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    let result = match encoding {
        "" | "none" | "identity" => return body,
        "gzip" => flate2::read::GzDecoder::new(&body[..]).read_to_end(&mut out),
        // raven-python sends zlib-wrapped deflate; raw deflate is the other reading of the name.
        "deflate" => flate2::read::ZlibDecoder::new(&body[..])
            .read_to_end(&mut out)
            .or_else(|_| {
                out.clear();
                flate2::read::DeflateDecoder::new(&body[..]).read_to_end(&mut out)
            }),
        "br" => brotli::Decompressor::new(&body[..], 4096).read_to_end(&mut out),
        other => panic!("{}: unknown content encoding {other}", path.display()),
    };
    result.unwrap_or_else(|e| panic!("{}: {encoding} body: {e}", path.display()));
    out
}

fn received() -> DateTime<Utc> {
    DateTime::from_timestamp(1_767_225_600, 0).expect("valid constant time")
}

fn normalize(raw: &[u8], name: &str) -> Event {
    let (event, _problems) = normalize_event(raw, &NormalizeContext::new(received()))
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    event
}

/// Every event in the corpus, in file order; `None` when the corpus is absent.
fn corpus_events() -> Option<Vec<Captured>> {
    let dir = corpus_dir()?;
    let mut sidecars: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("corpus dir readable")
        .flatten()
        .filter(|e| e.path().is_dir())
        .flat_map(|client| std::fs::read_dir(client.path()).expect("client dir readable"))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .filter(|p| p.with_extension("req").is_file())
        .collect();
    sidecars.sort();
    let mut out = Vec::new();
    for sidecar in sidecars {
        let meta: Value = serde_json::from_slice(&std::fs::read(&sidecar).expect("sidecar"))
            .unwrap_or_else(|e| panic!("{}: {e}", sidecar.display()));
        let summary = &meta["summary"];
        let kind = summary["kind"].as_str().unwrap_or("");
        if kind != "envelope" && kind != "store" {
            continue;
        }
        let client = sidecar
            .parent()
            .and_then(Path::file_name)
            .and_then(|n| n.to_str())
            .unwrap_or("");
        let capture = sidecar.file_stem().and_then(|n| n.to_str()).unwrap_or("");
        let name = format!("{client}__{capture}");
        let body = std::fs::read(sidecar.with_extension("req")).expect("request body");
        let encoding = summary["content_encoding"].as_str().unwrap_or("none");
        let body = decompress(body, encoding, &sidecar);
        if kind == "store" {
            // The legacy /store/ endpoint takes the event itself as the body.
            out.push(Captured {
                event: normalize(&body, &name),
                name,
            });
            continue;
        }
        let envelope = Envelope::parse(&body).unwrap_or_else(|e| panic!("{name}: {e}"));
        let events = envelope.items.iter().filter(|i| i.ty == ItemType::Event);
        for (n, item) in events.enumerate() {
            let name = if n == 0 {
                name.clone()
            } else {
                format!("{name}-{n}")
            };
            out.push(Captured {
                event: normalize(&body[item.payload.clone()], &name),
                name,
            });
        }
    }
    Some(out)
}

/// The explanation tree, one line per component: `+` contributes, `-` does not.
fn compact(components: &[Component]) -> Vec<String> {
    fn walk(c: &Component, depth: usize, out: &mut Vec<String>) {
        let mut line = format!(
            "{}{} {}",
            "  ".repeat(depth),
            if c.contributes { '+' } else { '-' },
            c.kind
        );
        for v in &c.values {
            line.push(' ');
            line.push_str(&Value::String(v.clone()).to_string());
        }
        if let Some(hint) = &c.hint {
            line.push_str(&format!("  ({hint})"));
        }
        out.push(line);
        for child in &c.children {
            walk(child, depth + 1, out);
        }
    }
    let mut out = Vec::new();
    for c in components {
        walk(c, 0, &mut out);
    }
    out
}

fn golden(event: &Event, grouping: &Grouping, summary: &IssueSummary) -> Value {
    json!({
        "title": summary.title,
        "culprit": summary.culprit,
        "variant": grouping.variant,
        "hash": grouping.hash,
        "key": grouping.key(),
        "components": compact(&grouping.components),
        "tags": event.tags.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
    })
}

#[test]
fn corpus_goldens() {
    let Some(events) = corpus_events() else {
        return;
    };
    assert!(events.len() >= 30, "only {} corpus events", events.len());
    let bless = std::env::var("PHOEBE_BLESS").is_ok_and(|v| v == "1");
    let dir = PathBuf::from(GOLDEN);
    if bless {
        std::fs::create_dir_all(&dir).expect("golden dir");
    }
    let mut mismatches = Vec::new();
    let mut expected_files = std::collections::BTreeSet::new();
    for captured in &events {
        let actual = golden(
            &captured.event,
            &group(&captured.event),
            &summarize(&captured.event),
        );
        let file = dir.join(format!("{}.json", captured.name));
        expected_files.insert(file.clone());
        let pretty = serde_json::to_string_pretty(&actual).expect("serializable") + "\n";
        if bless {
            std::fs::write(&file, pretty).expect("golden writable");
            continue;
        }
        match std::fs::read_to_string(&file) {
            Ok(stored) if stored == pretty => {}
            Ok(stored) => mismatches.push(format!(
                "{}:\n--- stored\n{stored}\n+++ actual\n{pretty}",
                captured.name
            )),
            Err(_) => mismatches.push(format!("{}: no golden file", captured.name)),
        }
    }
    let stale: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    for path in stale {
        if !expected_files.contains(&path) {
            mismatches.push(format!("{}: golden without a capture", path.display()));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} golden mismatch(es); rerun with PHOEBE_BLESS=1 after checking:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

/// Grouping and title decisions per scenario, stated directly so that a bad re-bless can't
/// hide them.
#[test]
fn corpus_scenario_decisions() {
    let Some(events) = corpus_events() else {
        return;
    };
    let results: BTreeMap<&str, (Grouping, IssueSummary)> = events
        .iter()
        .map(|c| (c.name.as_str(), (group(&c.event), summarize(&c.event))))
        .collect();
    let get = |name: &str| {
        results
            .get(name)
            .unwrap_or_else(|| panic!("{name} missing from the corpus"))
    };
    let hash = |name: &str| get(name).0.hash.clone();
    let variant = |name: &str| get(name).0.variant;
    let title = |name: &str| get(name).1.title.clone();
    let culprit = |name: &str| get(name).1.culprit.clone();

    // Every hash is well-formed and nothing fell back to "<empty>".
    for (name, (g, _)) in &results {
        assert_eq!(g.hash.len(), 32, "{name}");
        assert_ne!(g.variant, Variant::Fallback, "{name}");
    }

    // Python logging: an error log line, logger.exception, capture_message: three issues.
    let logging = [
        "python__003-logging-message--event",
        "python__004-logging-message--event",
        "python__005-logging-message--event",
    ];
    assert_eq!(variant(logging[0]), Variant::Message);
    assert_eq!(variant(logging[1]), Variant::App);
    assert_eq!(variant(logging[2]), Variant::Message);
    assert_ne!(hash(logging[0]), hash(logging[1]));
    assert_ne!(hash(logging[1]), hash(logging[2]));
    assert_ne!(hash(logging[0]), hash(logging[2]));
    assert_eq!(
        title(logging[0]),
        "charge failed for customer cus_123: card_declined"
    );
    assert_eq!(title(logging[1]), "KeyError: 'missing'");
    assert_eq!(title(logging[2]), "disk usage above 90%");

    // "noisy message 0" and "noisy message 2": one issue.
    assert_eq!(
        hash("python__012-client-report-dropped--event"),
        hash("python__013-client-report-dropped--event")
    );

    // Two captureMessage calls from different lines: two issues, titled by their messages,
    // not by a made-up exception type.
    let node_a = "node__006-capture-message--event";
    let node_b = "node__007-capture-message--event";
    assert_ne!(hash(node_a), hash(node_b));
    assert_eq!(title(node_a), "cache miss ratio above 40%");
    assert_eq!(title(node_b), "user u-99 exported 1200 rows");
    assert_eq!(get(node_a).1.ty, None);
    assert_eq!(
        title("browser__008-capture-message--event"),
        "checkout button rendered without price"
    );
    for name in [node_a, node_b, "browser__008-capture-message--event"] {
        let key = get(name).0.key();
        assert!(!key.iter().any(|v| v == "Error"), "{name}: {key:?}");
    }

    // SDK fingerprints with {{ default }} salt the default grouping.
    assert_eq!(
        variant("node__004-capture-exception-cause--event"),
        Variant::Hybrid
    );
    assert_eq!(
        variant("python__006-scope-context-fingerprint"),
        Variant::Hybrid
    );
    assert_eq!(
        get("python__006-scope-context-fingerprint").0.key()[0],
        "payment-gateway"
    );

    // The linked-error chain titles by the error actually thrown.
    assert_eq!(
        title("node__004-capture-exception-cause--event"),
        "PaymentError: could not charge card"
    );

    // Transactions name the culprit; the crash frame otherwise.
    assert_eq!(
        culprit("node__016-express-request-error--event"),
        "POST /api/orders/:id"
    );
    assert_eq!(culprit("python__018-flask-request-error--event"), "pay");
    assert_eq!(
        culprit("python__001-unhandled-exception"),
        "__main__ in <listcomp>"
    );
    assert_eq!(culprit("rust__002-panic"), "rustgen::main");

    // Old SDKs mark nothing in-app: all frames count.
    assert_eq!(
        variant("python-legacy__001-raven-store-exception"),
        Variant::System
    );

    // Same error type and message text from two call sites stays two issues.
    assert_ne!(
        hash("python__007-transaction-spans--event"),
        hash("python__016-compression-gzip-explicit")
    );
}
