//! `phoebe bench`: a load generator that sends realistic gzip'd envelopes (real SDK shapes, many
//! distinct issues) to a running server and reports accepted and end-to-end (digested) events/s,
//! request latency, the server's CPU time per event, its peak memory and stored bytes per event.
//!
//! Bodies are built before the clock starts, and the client is a plain blocking HTTP/1.1 pool,
//! so the generator costs little of the CPU it shares with the server.

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Value};

use crate::memory::status_kib;

/// Options of `phoebe bench`.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// DSN of the project to load.
    #[arg(long)]
    pub dsn: String,
    /// Events to send.
    #[arg(long, default_value_t = 20_000)]
    pub events: usize,
    /// Concurrent connections.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Distinct issues the events spread over.
    #[arg(long, default_value_t = 200)]
    pub issues: usize,
    /// Target rate in events/s (default: as fast as the server answers).
    #[arg(long)]
    pub rate: Option<f64>,
    /// PID of the server, to read its CPU time and memory from /proc.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// A gzip'd envelope (e.g. from shared/corpus/python) whose event is the template; default: a
    /// built-in event shaped like sentry-python's Flask error (about 7 KB of JSON).
    #[arg(long)]
    pub template: Option<PathBuf>,
    /// Seconds to wait for digest to catch up.
    #[arg(long, default_value_t = 600)]
    pub digest_timeout: u64,
}

/// The built-in event, shaped like sentry-python's Flask error: 5 frames with locals and source
/// context, breadcrumbs, request, contexts and 40 modules. `examples/profile_grouping` in
/// phoebe-grouping times the same file.
const BENCH_EVENT: &str = include_str!("bench_event.json");

fn builtin_template() -> Value {
    serde_json::from_str(BENCH_EVENT).unwrap_or_else(|_| json!({}))
}

fn load_template(path: &PathBuf) -> anyhow::Result<Value> {
    let raw = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let body = crate::codec::decode(crate::codec::Encoding::Gzip, &raw, 100 << 20).unwrap_or(raw);
    let envelope = phoebe_protocol::envelope::Envelope::parse(&body)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let item = envelope
        .items
        .iter()
        .find(|i| i.ty == phoebe_protocol::envelope::ItemType::Event)
        .context("the template envelope has no event item")?;
    Ok(serde_json::from_slice(&body[item.payload.clone()])?)
}

/// Builds the gzip'd envelope bodies, each a distinct event of one of `issues` issues.
fn build_bodies(template: &Value, n: usize, issues: usize) -> Vec<Vec<u8>> {
    let now = chrono::Utc::now();
    (0..n)
        .map(|i| {
            let mut ev = template.clone();
            let id = uuid::Uuid::new_v4().simple().to_string();
            let k = i % issues.max(1);
            ev["event_id"] = json!(id);
            ev["timestamp"] = json!(now.timestamp_millis() as f64 / 1000.0);
            if let Some(exc) = ev.pointer_mut("/exception/values/0") {
                exc["type"] = json!(format!("BenchError{k}"));
                exc["value"] = json!(format!("amount {} exceeds limit for order {}", i % 1000, i));
            }
            if let Some(frames) = ev
                .pointer_mut("/exception/values/0/stacktrace/frames")
                .and_then(Value::as_array_mut)
            {
                if let Some(last) = frames.last_mut() {
                    last["function"] = json!(format!("charge_{}", k % 17));
                }
            }
            ev["user"]["id"] = json!(format!("u-{}", i % 500));
            let payload = serde_json::to_vec(&ev).unwrap_or_default();
            let body = phoebe_protocol::envelope::Envelope::serialize(
                &json!({"event_id": id, "sent_at": now.to_rfc3339()}),
                &[(
                    json!({"type": "event", "content_type": "application/json"}),
                    payload.as_slice(),
                )],
            );
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
            let _ = gz.write_all(&body);
            gz.finish().unwrap_or_default()
        })
        .collect()
}

/// The benchmark's gzip'd envelopes from the built-in template (also used by the digest profile example).
pub fn sample_bodies(n: usize, issues: usize) -> Vec<Vec<u8>> {
    build_bodies(&builtin_template(), n, issues)
}

/// One connection: sends requests as long as there are some, keeping the connection alive.
/// Returns the latencies in microseconds, the number of requests that were not answered 200, and
/// how many of those were 429 (refused by a rate limit or spike protection).
async fn send_loop(
    authority: &str,
    requests: &[Vec<u8>],
    next: &AtomicUsize,
    start: Instant,
    rate: Option<f64>,
) -> anyhow::Result<(Vec<u64>, usize, usize)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(authority).await?;
    stream.set_nodelay(true)?;
    let mut latencies = Vec::new();
    let (mut failures, mut limited) = (0, 0);
    let mut buf = Vec::with_capacity(4096);
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        let Some(request) = requests.get(i) else {
            break;
        };
        if let Some(rate) = rate {
            tokio::time::sleep_until((start + Duration::from_secs_f64(i as f64 / rate)).into())
                .await;
        }
        let t = Instant::now();
        stream.write_all(request).await?;
        // Read the head, then as much body as Content-Length says.
        buf.clear();
        let head_end = loop {
            if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                anyhow::bail!("the server closed the connection");
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
        let status = head.split_whitespace().nth(1).unwrap_or("");
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while buf.len() < head_end + length {
            let mut chunk = [0u8; 4096];
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                anyhow::bail!("the server closed the connection mid-response");
            }
            buf.extend_from_slice(&chunk[..n]);
        }
        latencies.push(t.elapsed().as_micros() as u64);
        if status != "200" {
            failures += 1;
        }
        if status == "429" {
            limited += 1;
        }
    }
    Ok((latencies, failures, limited))
}

/// The server's counters, read from `/metrics`.
fn server_metric(agent: &ureq::Agent, base: &str, name: &str) -> anyhow::Result<f64> {
    let text = agent
        .get(&format!("{base}/metrics"))
        .call()?
        .into_string()?;
    text.lines()
        .find_map(|l| {
            l.strip_prefix(name)
                .and_then(|rest| rest.trim().parse::<f64>().ok())
        })
        .with_context(|| format!("{name} missing from {base}/metrics"))
}

/// CPU seconds (user + system) of a process, from /proc/<pid>/stat.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are the 14th and 15th overall.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    // USER_HZ is 100 on every Linux this runs on.
    Some((utime + stime) / 100.0)
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)] as f64 / 1000.0
}

/// Runs the benchmark and prints the report.
pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    let dsn: phoebe_protocol::dsn::Dsn = args
        .dsn
        .parse()
        .map_err(|e| anyhow::anyhow!("bad --dsn: {e}"))?;
    let url = dsn.envelope_url();
    let base = url.split("/api/").next().unwrap_or("").to_string();
    let template = match &args.template {
        Some(p) => load_template(p)?,
        None => builtin_template(),
    };
    eprintln!(
        "building {} envelopes over {} issues ...",
        args.events, args.issues
    );
    let bodies = Arc::new(build_bodies(&template, args.events, args.issues));
    let sent_bytes: usize = bodies.iter().map(Vec::len).sum();
    let agent = ureq::AgentBuilder::new()
        .max_idle_connections(args.concurrency * 2)
        .timeout(Duration::from_secs(30))
        .build();
    let digested_before = server_metric(&agent, &base, "phoebe_digest_events_stored_total")?;
    let size_before = server_metric(&agent, &base, "phoebe_store_size_bytes")?;
    let cpu_before = args.server_pid.and_then(cpu_seconds);
    let rss_idle = args.server_pid.and_then(|p| status_kib(Some(p), "VmRSS"));
    let auth = format!(
        "Sentry sentry_version=7, sentry_client=phoebe-bench/1, sentry_key={}",
        dsn.public_key
    );

    eprintln!(
        "sending with {} connections{} ...",
        args.concurrency,
        args.rate
            .map(|r| format!(" at {r} events/s"))
            .unwrap_or_default()
    );
    // Whole requests (head and body) are built before the clock starts; the sender only writes
    // bytes and reads the status line, so it takes little of the CPU it shares with the server.
    let authority = url
        .split("://")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap_or("")
        .to_string();
    let path = format!(
        "/{}",
        url.split("://")
            .nth(1)
            .and_then(|r| r.split_once('/'))
            .map(|(_, p)| p)
            .unwrap_or("")
    );
    let requests: Arc<Vec<Vec<u8>>> = Arc::new(
        bodies
            .iter()
            .map(|body| {
                let mut r = format!(
                    "POST {path} HTTP/1.1\r\nHost: {authority}\r\nX-Sentry-Auth: {auth}\r\n\
                     Content-Type: application/x-sentry-envelope\r\nContent-Encoding: gzip\r\n\
                     Content-Length: {}\r\n\r\n",
                    body.len()
                )
                .into_bytes();
                r.extend_from_slice(body);
                r
            })
            .collect(),
    );
    drop(bodies);
    let next = Arc::new(AtomicUsize::new(0));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let start = Instant::now();
    let (mut latencies, failures, limited) = runtime.block_on(async {
        let tasks: Vec<_> = (0..args.concurrency.max(1))
            .map(|_| {
                let (requests, next, authority, rate) =
                    (requests.clone(), next.clone(), authority.clone(), args.rate);
                tokio::spawn(
                    async move { send_loop(&authority, &requests, &next, start, rate).await },
                )
            })
            .collect();
        let mut latencies = Vec::with_capacity(args.events);
        let (mut failures, mut limited) = (0, 0);
        for t in tasks {
            let (l, f, r) = t.await??;
            latencies.extend(l);
            failures += f;
            limited += r;
        }
        anyhow::Ok((latencies, failures, limited))
    })?;
    if limited > 0 {
        eprintln!(
            "{limited} requests were refused with 429: start the server with \
             PHOEBE_QUOTAS__SPIKE_PROTECTION=false (and no [quotas] limits) to measure throughput"
        );
    }
    let accept_secs = start.elapsed().as_secs_f64();
    let accepted = args.events - failures;

    eprintln!("waiting for digest ...");
    let target = digested_before + accepted as f64;
    let deadline = Instant::now() + Duration::from_secs(args.digest_timeout);
    let digested = loop {
        let d = server_metric(&agent, &base, "phoebe_digest_events_stored_total")?;
        if d >= target || Instant::now() > deadline {
            break d - digested_before;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let e2e_secs = start.elapsed().as_secs_f64();
    let cpu_after = args.server_pid.and_then(cpu_seconds);
    let rss_peak = args.server_pid.and_then(|p| status_kib(Some(p), "VmHWM"));
    let size_after = server_metric(&agent, &base, "phoebe_store_size_bytes")?;
    latencies.sort_unstable();

    let mut report = format!(
        "events sent            {}\nrejected/failed        {failures}\nissues                 {}\nconnections            {}\n\
         body bytes (gzip) avg  {:.0}\naccepted events/s      {:.0}\nend-to-end events/s    {:.0}  ({} digested in {:.2} s)\n\
         latency p50 / p99 ms   {:.2} / {:.2}\n",
        args.events,
        args.issues,
        args.concurrency,
        sent_bytes as f64 / args.events.max(1) as f64,
        accepted as f64 / accept_secs,
        digested / e2e_secs,
        digested,
        e2e_secs,
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99),
    );
    if let (Some(a), Some(b)) = (cpu_before, cpu_after) {
        report.push_str(&format!(
            "server CPU s / per event  {:.2} s / {:.0} µs\n",
            b - a,
            (b - a) * 1e6 / digested.max(1.0)
        ));
    }
    if let Some(kib) = rss_idle {
        report.push_str(&format!(
            "server RSS before       {:.1} MB\n",
            kib as f64 / 1024.0
        ));
    }
    if let Some(kib) = rss_peak {
        report.push_str(&format!(
            "server RSS peak         {:.1} MB\n",
            kib as f64 / 1024.0
        ));
    }
    report.push_str(&format!(
        "stored bytes per event  {:.0}  (database growth incl. indexes and WAL)\n",
        (size_after - size_before) / digested.max(1.0)
    ));
    print!("{report}");
    if digested + 0.5 < accepted as f64 {
        bail!(
            "only {digested} of {accepted} accepted events were digested within {} s",
            args.digest_timeout
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_event_is_a_python_flask_error() {
        let ev = builtin_template();
        assert_eq!(ev["platform"], "python");
        assert_eq!(
            ev["exception"]["values"][0]["stacktrace"]["frames"]
                .as_array()
                .map(Vec::len),
            Some(5)
        );
        assert_eq!(ev["modules"].as_object().map(|m| m.len()), Some(40));
    }
}
