//! Digest: the pipeline from the inbox to stored issues. One thread claims a batch of inbox
//! entries, turns them into a [`crate::store::DigestBatch`] ([`process`]), writes it in one store
//! transaction together with the new watermark, and only then deletes the entries from the inbox.
//! A crash anywhere in between replays the batch, and the watermark makes the replay a no-op.

pub mod process;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::inbox::Inbox;
use crate::store::Store;
use crate::telemetry::Metrics;

pub use process::ProcessOptions;

/// A running digest thread.
pub struct Digester {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    inbox: Arc<Inbox>,
}

impl Digester {
    /// Starts digesting in a thread of its own.
    pub fn start(
        store: Arc<dyn Store>,
        inbox: Arc<Inbox>,
        metrics: Arc<Metrics>,
        batch_size: usize,
        options: ProcessOptions,
    ) -> anyhow::Result<Digester> {
        let stop = Arc::new(AtomicBool::new(false));
        let thread_stop = stop.clone();
        let thread_inbox = inbox.clone();
        let thread = std::thread::Builder::new()
            .name("digest".into())
            .spawn(move || {
                run(
                    store,
                    thread_inbox,
                    metrics,
                    batch_size,
                    options,
                    thread_stop,
                )
            })?;
        Ok(Digester {
            stop,
            thread: Some(thread),
            inbox,
        })
    }

    /// Finishes the batch in hand and stops; the rest of the backlog waits in the inbox.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.inbox.ring();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn run(
    store: Arc<dyn Store>,
    inbox: Arc<Inbox>,
    metrics: Arc<Metrics>,
    batch_size: usize,
    options: ProcessOptions,
    stop: Arc<AtomicBool>,
) {
    let mut watermark = loop {
        match store.digest_watermark() {
            Ok(w) => break w,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the digest watermark; retrying in 1 s");
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    };
    let mut seen = 0u64;
    while !stop.load(Ordering::SeqCst) {
        let claimed = match inbox.claim(watermark, batch_size) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "reading the inbox failed; retrying in 1 s");
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
        };
        if claimed.is_empty() {
            inbox.wait(&mut seen, Duration::from_millis(500));
            continue;
        }
        let (batch, stats) = process::build_batch(&claimed, &options);
        metrics.digest_events_failed.add(stats.failed);
        metrics.items_dropped.add(stats.dropped);
        match store.apply_digest_batch(&batch) {
            Ok(outcome) => {
                watermark = batch.last_inbox_id;
                metrics.digest_events_stored.add(outcome.stored as u64);
                metrics
                    .digest_events_duplicate
                    .add(outcome.duplicates as u64);
                metrics
                    .digest_issues_created
                    .add(outcome.new_issues.len() as u64);
                if let Err(e) = inbox.delete_through(watermark) {
                    tracing::warn!(error = %e, "could not trim the inbox; it will be trimmed on restart");
                }
            }
            Err(e) => {
                tracing::error!(error = %e, entries = claimed.len(), "writing a digest batch failed; retrying in 1 s");
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    }
}
