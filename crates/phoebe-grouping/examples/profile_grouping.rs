//! Where digest's pure CPU goes on the benchmark's event: `cargo run --release -p
//! phoebe-grouping --example profile_grouping [N]` prints µs/event for serde_json alone,
//! `normalize_event`, `group` and `summarize`. Single-threaded and free of I/O, so the numbers
//! are stable.
//!
//! The events are those of `phoebe bench` (`crates/phoebe/src/bench_event.json`, varied the
//! way `build_bodies` in `crates/phoebe/src/bench.rs` varies it) plus, when the shared corpus is present,
//! the sentry-python Flask capture the template was modelled on.
//!
//! `--dump` instead prints every result (payload, typed event, problems, grouping, summary) for
//! the bench events and the whole corpus, for comparing two builds byte for byte.

use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use phoebe_protocol::envelope::{Envelope, ItemType};
use phoebe_protocol::normalize::{normalize_event, NormalizeContext};
use serde_json::{json, Value};

const CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/corpus");
const FLASK_CAPTURE: &str = "python/018-flask-request-error--event.req";

/// The bench's built-in event, the very file `phoebe bench` sends.
fn builtin_template() -> Value {
    serde_json::from_str(include_str!("../../phoebe/src/bench_event.json"))
        .expect("bench_event.json is JSON")
}

/// The i-th bench payload: the template varied as `build_bodies` in bench.rs varies it.
fn bench_payload(template: &Value, i: usize, issues: usize) -> Vec<u8> {
    let mut ev = template.clone();
    let k = i % issues;
    ev["event_id"] = json!(format!("{:032x}", i + 1));
    ev["timestamp"] = json!(1_767_225_500.25 + i as f64 / 1000.0);
    if let Some(exc) = ev.pointer_mut("/exception/values/0") {
        exc["type"] = json!(format!("BenchError{k}"));
        exc["value"] = json!(format!("amount {} exceeds limit for order {}", i % 1000, i));
    }
    if let Some(last) = ev
        .pointer_mut("/exception/values/0/stacktrace/frames")
        .and_then(Value::as_array_mut)
        .and_then(|frames| frames.last_mut())
    {
        last["function"] = json!(format!("charge_{}", k % 17));
    }
    ev["user"]["id"] = json!(format!("u-{}", i % 500));
    serde_json::to_vec(&ev).expect("a Value serializes")
}

fn gunzip(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match flate2::read::GzDecoder::new(body).read_to_end(&mut out) {
        Ok(_) => out,
        Err(_) => body.to_vec(),
    }
}

/// The event items of an envelope body (or the body itself when it is not an envelope).
fn event_payloads(body: &[u8]) -> Vec<Vec<u8>> {
    match Envelope::parse(body) {
        Ok(env) => env
            .items
            .iter()
            .filter(|i| i.ty == ItemType::Event)
            .map(|i| body[i.payload.clone()].to_vec())
            .collect(),
        Err(_) => vec![body.to_vec()],
    }
}

fn received() -> DateTime<Utc> {
    DateTime::from_timestamp(1_767_225_600, 0).expect("valid constant time")
}

fn context() -> NormalizeContext {
    let mut ctx = NormalizeContext::new(received());
    // Missing ids would be random; a fixed one keeps dumps comparable.
    ctx.header_event_id = Some(uuid::Uuid::from_u128(0x5eed));
    ctx
}

/// Every `.req` body in the corpus, by name.
fn corpus_bodies() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let Ok(clients) = std::fs::read_dir(CORPUS) else {
        return out;
    };
    let mut files: Vec<_> = clients
        .flatten()
        .filter(|c| c.path().is_dir())
        .flat_map(|c| std::fs::read_dir(c.path()).into_iter().flatten().flatten())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "req"))
        .collect();
    files.sort();
    for path in files {
        if let Ok(raw) = std::fs::read(&path) {
            out.push((path.display().to_string(), raw));
        }
    }
    out
}

/// Messages built from pieces that touch every parameterization class and its edges, from a
/// fixed-seed generator.
fn sample_messages() -> Vec<String> {
    const PIECES: &[&str] = &[
        "user",
        " ",
        " ",
        "42",
        "-17",
        "0.75",
        "-1.5",
        "90%",
        "ann.lee+tag@example.co.uk",
        "@",
        "https://api.example.com/v1?id=3",
        "ws://127.0.0.1:9000/s",
        "db.internal.example.com",
        "CACHE.EXAMPLE.IO",
        "10.0.0.12",
        ":5432",
        "2001:db8::8a2e:370:7334",
        "::1",
        "fe80::1%eth0",
        "std::vector",
        "Bad::x",
        "1b4e28ba-2fa1-11d2-883f-0016d3cca427",
        "da39a3ee5e6b4b0d3255bfef95601890afd80709",
        "d41d8cd98f00b204e9800998ecf8427e",
        "2024-01-31T12:00:00Z",
        "2024-01-31 12:00:00.5",
        "9:30 PM",
        "23:59:59",
        "Mon, 02 Jan 2006 15:04:05 MST",
        "Monday, 02-Jan-06 15:04:05 MST",
        "Mon Jan  2 15:04:05 2006",
        "Jan 02, 2006",
        "datetime.datetime(2024, 1, 31)",
        "250ms",
        "300s",
        "1.5s",
        "0x7ffee4c3a9b0",
        "key=",
        "'abc'",
        "\"x y\"",
        "=true",
        "False",
        "id=",
        "é",
        "ünï",
        "\n",
        "\r\n",
        "_",
        "-",
        ".",
        ":",
        "=",
        "'",
        "cus_123",
        "u-99",
        "ab",
        "ff",
        "0",
        "1",
        "a1b2",
        "\u{2028}",
        "(",
        ")",
        "NaN",
    ];
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..20_000)
        .map(|_| {
            let n = 1 + (next() % 8) as usize;
            (0..n)
                .map(|_| PIECES[(next() % PIECES.len() as u64) as usize])
                .collect()
        })
        .collect()
}

fn dump(template: &Value) {
    for m in sample_messages() {
        println!("{m:?} -> {:?}", phoebe_grouping::parameterize(&m));
    }
    let ctx = context();
    let mut inputs: Vec<(String, Vec<u8>)> = (0..50)
        .map(|i| (format!("bench {i}"), bench_payload(template, i, 7)))
        .collect();
    for (name, raw) in corpus_bodies() {
        // Bodies are gzip, deflate, brotli or plain; brotli ones are skipped here.
        let body = gunzip(&raw);
        let body = {
            let mut out = Vec::new();
            if flate2::read::ZlibDecoder::new(&body[..])
                .read_to_end(&mut out)
                .is_ok()
            {
                out
            } else {
                body
            }
        };
        for (j, payload) in event_payloads(&body).into_iter().enumerate() {
            inputs.push((format!("{name} #{j}"), payload));
        }
    }
    for (name, payload) in inputs {
        println!("=== {name}");
        match normalize_event(&payload, &ctx) {
            Ok((event, problems)) => {
                println!(
                    "{}",
                    serde_json::to_string(&event.payload).unwrap_or_default()
                );
                println!("{event:?}");
                println!("{problems:?}");
                let g = phoebe_grouping::group(&event);
                println!("{g:?}");
                println!("{:?}", phoebe_grouping::summarize(&event));
            }
            Err(e) => println!("error: {e}"),
        }
    }
}

fn main() {
    let arg = std::env::args().nth(1);
    let template = builtin_template();
    if arg.as_deref() == Some("--dump") {
        dump(&template);
        return;
    }
    let ctx = context();
    if arg.as_deref() == Some("--phase") {
        // One phase alone on the bench events, for `perf stat -e instructions:u`, whose counts
        // do not depend on what else runs on the machine.
        let phase = std::env::args().nth(2).unwrap_or_default();
        let n: usize = std::env::args()
            .nth(3)
            .and_then(|a| a.parse().ok())
            .unwrap_or(5000);
        let payloads: Vec<Vec<u8>> = (0..n).map(|i| bench_payload(&template, i, 200)).collect();
        let events: Vec<_> = if phase == "normalize" || phase == "setup" {
            Vec::new()
        } else {
            payloads
                .iter()
                .map(|p| normalize_event(p, &ctx).expect("normalizes").0)
                .collect()
        };
        // Warm-up in every phase, so that one-time regex compilation cancels out.
        let (first, _) = normalize_event(&payloads[0], &ctx).expect("normalizes");
        std::hint::black_box((
            phoebe_grouping::group(&first),
            phoebe_grouping::summarize(&first),
        ));
        for _ in 0..3 {
            match phase.as_str() {
                "normalize" => payloads.iter().for_each(|p| {
                    std::hint::black_box(normalize_event(p, &ctx).expect("normalizes"));
                }),
                "group" => events.iter().for_each(|e| {
                    std::hint::black_box(phoebe_grouping::group(e));
                }),
                "summarize" => events.iter().for_each(|e| {
                    std::hint::black_box(phoebe_grouping::summarize(e));
                }),
                _ => {}
            }
        }
        return;
    }
    let n: usize = arg.and_then(|a| a.parse().ok()).unwrap_or(5000);

    let mut sets: Vec<(String, Vec<Vec<u8>>)> = vec![(
        "bench template".to_string(),
        (0..n).map(|i| bench_payload(&template, i, 200)).collect(),
    )];
    if let Ok(raw) = std::fs::read(Path::new(CORPUS).join(FLASK_CAPTURE)) {
        let payloads = event_payloads(&gunzip(&raw));
        if let Some(p) = payloads.first() {
            sets.push((FLASK_CAPTURE.to_string(), vec![p.clone(); n]));
        }
    }

    // `parameterize` alone, on messages like the bench's exception values.
    let messages = [
        "amount 250 exceeds limit for order 17",
        "division by zero",
        "'NoneType' object has no attribute 'total'",
        "connect to 10.0.0.12:5432 refused after 30s",
    ];
    for m in messages {
        // The first call compiles the regexes; that is start-up, not per-event cost.
        std::hint::black_box(phoebe_grouping::parameterize(m));
        let mut per = f64::INFINITY;
        for _ in 0..5 {
            let s = Instant::now();
            for _ in 0..n / 5 {
                std::hint::black_box(phoebe_grouping::parameterize(std::hint::black_box(m)));
            }
            per = per.min(s.elapsed().as_secs_f64() * 1e6 / (n / 5) as f64);
        }
        println!("parameterize {m:?}: {per:.2} µs");
    }

    for (name, payloads) in &sets {
        let bytes = payloads.iter().map(Vec::len).sum::<usize>() / payloads.len();
        println!("{name} ({bytes} B/event, N={})", payloads.len());
        // Warm-up: lazily compiled regexes and the allocator's first pages.
        for p in payloads.iter().take(10) {
            let (event, _) = normalize_event(p, &ctx).expect("bench payloads normalize");
            std::hint::black_box((
                phoebe_grouping::group(&event),
                phoebe_grouping::summarize(&event),
            ));
        }
        // The machine is shared: run in rounds and keep each phase's best round, which is the
        // one least disturbed by other processes.
        const ROUNDS: usize = 5;
        let chunk = payloads.len().div_ceil(ROUNDS);
        let mut best = [f64::INFINITY; 4];
        for round in payloads.chunks(chunk) {
            let mut t = [Duration::ZERO; 4];
            // serde_json alone: what normalize cannot go below without another parser.
            for p in round {
                let s = Instant::now();
                let v: Value = serde_json::from_slice(p).expect("bench payloads are JSON");
                drop(std::hint::black_box(v));
                t[0] += s.elapsed();
            }
            for p in round {
                let s = Instant::now();
                let (event, _) = normalize_event(p, &ctx).expect("bench payloads normalize");
                t[1] += s.elapsed();
                let s = Instant::now();
                let g = phoebe_grouping::group(&event);
                t[2] += s.elapsed();
                let s = Instant::now();
                let summary = phoebe_grouping::summarize(&event);
                t[3] += s.elapsed();
                std::hint::black_box((g, summary));
                // Dropping the event is part of normalize's cost in digest too; keep it out of
                // group/summarize.
                let s = Instant::now();
                drop(event);
                t[1] += s.elapsed();
            }
            for (b, d) in best.iter_mut().zip(t) {
                *b = b.min(d.as_secs_f64() * 1e6 / round.len() as f64);
            }
        }
        println!("  serde_json parse+drop {:>7.1} µs/event", best[0]);
        println!("  normalize (incl. drop) {:>6.1} µs/event", best[1]);
        println!("  group                 {:>7.1} µs/event", best[2]);
        println!("  summarize             {:>7.1} µs/event", best[3]);
    }
}
