//! Logs and metrics. Logs go through `tracing`, filtered by `PHOEBE_LOG` (text, or JSON with
//! `PHOEBE_LOG_FORMAT=json`). Metrics are plain atomic counters rendered for Prometheus at
//! `/metrics`; each has one doc line, and that line is its HELP text.

use std::sync::atomic::{AtomicU64, Ordering};

/// A monotonically increasing count.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    /// Adds one.
    pub fn inc(&self) {
        self.add(1);
    }

    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// The current value.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Every metric Phoebe exports.
#[derive(Debug, Default)]
pub struct Metrics {
    /// SDK requests accepted (answered 200).
    pub ingest_accepted: Counter,
    /// SDK requests refused with a 4xx or 5xx.
    pub ingest_rejected: Counter,
    /// Envelope items counted and dropped at the door (transactions, spans, profiles ...).
    pub items_dropped: Counter,
    /// Events digested and stored.
    pub digest_events_stored: Counter,
    /// Events that could not be digested (unreadable payloads), logged and skipped.
    pub digest_events_failed: Counter,
    /// Events skipped as duplicates of an already stored event id.
    pub digest_events_duplicate: Counter,
    /// Issues created.
    pub digest_issues_created: Counter,
    /// Microseconds digest spent decoding, normalizing, grouping and compressing.
    pub digest_process_micros: Counter,
    /// Microseconds digest spent writing batches to the store.
    pub digest_store_micros: Counter,
}

impl Metrics {
    /// Prometheus text exposition, with the gauges passed in.
    pub fn render(&self, inbox_pending: i64, store_bytes: u64) -> String {
        let counters: [(&str, &str, &Counter); 9] = [
            (
                "phoebe_ingest_accepted_total",
                "SDK requests accepted.",
                &self.ingest_accepted,
            ),
            (
                "phoebe_ingest_rejected_total",
                "SDK requests refused with a 4xx or 5xx.",
                &self.ingest_rejected,
            ),
            (
                "phoebe_ingest_items_dropped_total",
                "Envelope items counted and dropped at the door.",
                &self.items_dropped,
            ),
            (
                "phoebe_digest_events_stored_total",
                "Events digested and stored.",
                &self.digest_events_stored,
            ),
            (
                "phoebe_digest_events_failed_total",
                "Events that could not be digested.",
                &self.digest_events_failed,
            ),
            (
                "phoebe_digest_events_duplicate_total",
                "Events skipped as duplicate ids.",
                &self.digest_events_duplicate,
            ),
            (
                "phoebe_digest_issues_created_total",
                "Issues created.",
                &self.digest_issues_created,
            ),
            (
                "phoebe_digest_process_micros_total",
                "Microseconds spent decoding, normalizing, grouping and compressing.",
                &self.digest_process_micros,
            ),
            (
                "phoebe_digest_store_micros_total",
                "Microseconds spent writing digest batches to the store.",
                &self.digest_store_micros,
            ),
        ];
        let mut out = String::new();
        for (name, help, c) in counters {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}\n",
                c.get()
            ));
        }
        out.push_str(&format!(
            "# HELP phoebe_inbox_pending_envelopes Envelopes accepted but not yet digested.\n# TYPE phoebe_inbox_pending_envelopes gauge\nphoebe_inbox_pending_envelopes {inbox_pending}\n"
        ));
        out.push_str(&format!(
            "# HELP phoebe_store_size_bytes Size of the main database files.\n# TYPE phoebe_store_size_bytes gauge\nphoebe_store_size_bytes {store_bytes}\n"
        ));
        out
    }
}

/// Starts logging to stderr. `PHOEBE_LOG` takes `tracing` filter syntax (default `info`).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PHOEBE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = if std::env::var("PHOEBE_LOG_FORMAT").is_ok_and(|v| v == "json") {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    let _ = result;
}

/// What to do about a storage error, for log lines and 503 details: a full disk gets advice,
/// anything else nothing extra.
pub fn storage_advice(error: &str) -> &'static str {
    if error.contains("disk is full") || error.contains("No space left") {
        " (the disk holding the data folder is full: free some space or lower [retention] \
         max_disk_mb; Phoebe resumes by itself and keeps everything it acknowledged)"
    } else {
        ""
    }
}
