//! Where digest's CPU goes, phase by phase, on the benchmark's event: `cargo run --release
//! --example profile_digest [N] [ZSTD_LEVEL]`. Single-threaded and free of I/O, so the numbers are stable.

use std::time::{Duration, Instant};

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(5000);
    let bodies = phoebe::bench::sample_bodies(n, 200);
    let mut t = [Duration::ZERO; 7];
    let names = [
        "gunzip",
        "envelope split",
        "normalize",
        "group",
        "summarize",
        "serialize payload",
        "zstd",
    ];
    let received = chrono::Utc::now();
    // As the server does: a dictionary trained on the first 1,000 normalized payloads.
    let level: i32 = std::env::args()
        .nth(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(3);
    let samples: Vec<Vec<u8>> = bodies
        .iter()
        .take(1000)
        .map(|body| {
            let raw =
                phoebe::codec::decode(phoebe::codec::Encoding::Gzip, body, 100 << 20).unwrap();
            let env = phoebe_protocol::envelope::Envelope::parse(&raw).unwrap();
            let ctx = phoebe_protocol::normalize::NormalizeContext::new(received);
            let payload = &raw[env.items[0].payload.clone()];
            let (event, _) = phoebe_protocol::normalize::normalize_event(payload, &ctx).unwrap();
            serde_json::to_vec(&event.payload).unwrap()
        })
        .collect();
    let dict = zstd::dict::from_samples(&samples, 64 * 1024).unwrap();
    let mut compressor = zstd::bulk::Compressor::with_dictionary(level, &dict).unwrap();
    let mut stored = 0usize;
    for body in &bodies {
        let s = Instant::now();
        let raw = phoebe::codec::decode(phoebe::codec::Encoding::Gzip, body, 100 << 20).unwrap();
        t[0] += s.elapsed();
        let s = Instant::now();
        let env = phoebe_protocol::envelope::Envelope::parse(&raw).unwrap();
        let payload = &raw[env.items[0].payload.clone()];
        t[1] += s.elapsed();
        let s = Instant::now();
        let (event, _) = phoebe_protocol::normalize::normalize_event(
            payload,
            &phoebe_protocol::normalize::NormalizeContext::new(received),
        )
        .unwrap();
        t[2] += s.elapsed();
        let s = Instant::now();
        let g = phoebe_grouping::group(&event);
        t[3] += s.elapsed();
        let s = Instant::now();
        let summary = phoebe_grouping::summarize(&event);
        t[4] += s.elapsed();
        let s = Instant::now();
        let json = serde_json::to_vec(&event.payload).unwrap();
        t[5] += s.elapsed();
        let s = Instant::now();
        let z = compressor.compress(&json).unwrap();
        t[6] += s.elapsed();
        stored += z.len();
        std::hint::black_box((g, summary));
    }
    let total: Duration = t.iter().sum();
    for (name, d) in names.iter().zip(t) {
        println!(
            "{name:<18} {:>7.1} µs/event",
            d.as_secs_f64() * 1e6 / n as f64
        );
    }
    println!(
        "{:<18} {:>7.1} µs/event; zstd output {} B/event",
        "total",
        total.as_secs_f64() * 1e6 / n as f64,
        stored / n
    );
}
