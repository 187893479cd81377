//! Digest: the pipeline from the inbox to stored issues. One thread claims a batch of inbox
//! entries and turns them into a [`crate::domain::DigestBatch`] ([`process`]); another writes
//! it in one store transaction together with the entries' acknowledgement, and only then lets
//! the inbox forget them. A crash anywhere in between leaves the entries unacknowledged (they
//! are claimed again after a restart) or acknowledged (they never are): see
//! [`crate::store::InboxStore`].

pub mod process;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::domain::DigestBatch;
use crate::inbox::Inbox;
use crate::store::DigestWriter;
use crate::telemetry::Metrics;

pub use process::{FrameMapper, ProcessOptions};

/// Called after a batch that recorded domain events commits, so whoever reads them (alerts)
/// can start at once instead of at its next poll.
pub type OnDomainEvents = Arc<dyn Fn() + Send + Sync>;

/// A running digest thread.
pub struct Digester {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    inbox: Arc<Inbox>,
}

impl Digester {
    /// Starts digesting in a thread of its own.
    pub fn start(
        store: Arc<dyn DigestWriter>,
        inbox: Arc<Inbox>,
        metrics: Arc<Metrics>,
        batch_size: usize,
        options: ProcessOptions,
        on_domain_events: OnDomainEvents,
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
                    on_domain_events,
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
    store: Arc<dyn DigestWriter>,
    inbox: Arc<Inbox>,
    metrics: Arc<Metrics>,
    batch_size: usize,
    options: ProcessOptions,
    stop: Arc<AtomicBool>,
    on_domain_events: OnDomainEvents,
) {
    let dictionary = match store.latest_zstd_dict() {
        Ok(d) => d.map(|(_, dict)| dict),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the zstd dictionary; a new one will be trained");
            None
        }
    };
    let mut processor = match process::Processor::new(options, dictionary) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %e, "cannot start digest; accepted events wait in the inbox");
            return;
        }
    };
    // The store writes one batch while the next is being built: a commit's fsync no longer idles the CPU.
    let (to_writer, from_processor) = std::sync::mpsc::sync_channel::<DigestBatch>(1);
    let writer = {
        let (store, inbox, metrics, stop) =
            (store.clone(), inbox.clone(), metrics.clone(), stop.clone());
        std::thread::Builder::new()
            .name("digest-store".into())
            .spawn(move || {
                write_batches(
                    store,
                    inbox,
                    metrics,
                    from_processor,
                    stop,
                    on_domain_events,
                )
            })
    };
    let writer = match writer {
        Ok(w) => w,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the digest writer thread");
            return;
        }
    };
    // Entries claimed but left out of a batch that stopped early at its byte bound; they go
    // first into the next one (the inbox hands each entry out once).
    let mut carry: Vec<crate::domain::Claimed> = Vec::new();
    let mut seen = 0u64;
    let mut idle_since: Option<std::time::Instant> = None;
    let mut released = true;
    while !stop.load(Ordering::SeqCst) {
        let mut claimed = match carry.is_empty() {
            false => std::mem::take(&mut carry),
            true => match inbox.claim(batch_size) {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(error = %e, "reading the inbox failed; retrying in 1 s");
                    std::thread::sleep(Duration::from_secs(1));
                    continue;
                }
            },
        };
        if claimed.is_empty() {
            if let Err(e) = inbox.shrink_if_drained() {
                tracing::warn!(error = %e, "could not return the inbox's free space to the disk");
            }
            let idle = *idle_since.get_or_insert_with(std::time::Instant::now);
            if !released && idle.elapsed() >= RELEASE_MEMORY_AFTER_IDLE {
                release_memory(&*store, &inbox);
                released = true;
            }
            inbox.wait(&mut seen, Duration::from_millis(500));
            continue;
        }
        (idle_since, released) = (None, false);
        let started = std::time::Instant::now();
        let (batch, stats) = processor.build_batch(&claimed);
        metrics
            .digest_process_micros
            .add(started.elapsed().as_micros() as u64);
        metrics.digest_events_failed.add(stats.failed);
        metrics.items_dropped.add(stats.dropped);
        carry = claimed.split_off(batch.inbox_ids.len());
        if to_writer.send(batch).is_err() {
            break;
        }
    }
    drop(to_writer);
    let _ = writer.join();
}

/// How long digest waits without work before handing a burst's memory back: long enough that
/// traffic with shorter gaps never pays for refilling caches, short enough that a quiet server
/// is small soon. A trickle with longer gaps pays a few milliseconds per release.
const RELEASE_MEMORY_AFTER_IDLE: Duration = Duration::from_secs(10);

/// Empties the database page caches and returns freed heap to the OS.
fn release_memory(store: &dyn DigestWriter, inbox: &Inbox) {
    let resident_mb =
        || crate::memory::status_kib(None, "VmRSS").map_or(-1.0, |kb| kb as f64 / 1024.0);
    let before = resident_mb();
    if let Err(e) = store.release_memory() {
        tracing::warn!(error = %e, "could not empty the store's page cache");
    }
    if let Err(e) = inbox.release_memory() {
        tracing::warn!(error = %e, "could not empty the inbox's page cache");
    }
    crate::memory::return_freed_memory();
    let after = resident_mb();
    // Worth an operator's attention only after a burst; a trickle of events would repeat it.
    if before - after >= 16.0 {
        tracing::info!(
            before_mb = before,
            after_mb = after,
            "digest is idle: handed cached memory back"
        );
    } else {
        tracing::debug!(
            before_mb = before,
            after_mb = after,
            "digest is idle: handed cached memory back"
        );
    }
}

/// Applies batches in order; a failed batch is retried until it lands, so nothing is skipped.
fn write_batches(
    store: Arc<dyn DigestWriter>,
    inbox: Arc<Inbox>,
    metrics: Arc<Metrics>,
    batches: std::sync::mpsc::Receiver<DigestBatch>,
    stop: Arc<AtomicBool>,
    on_domain_events: OnDomainEvents,
) {
    for batch in batches {
        loop {
            let started = std::time::Instant::now();
            match store.apply_digest_batch(&batch) {
                Ok(outcome) => {
                    metrics
                        .digest_store_micros
                        .add(started.elapsed().as_micros() as u64);
                    metrics.digest_events_stored.add(outcome.stored as u64);
                    if outcome.domain_events > 0 {
                        on_domain_events();
                    }
                    metrics
                        .digest_events_duplicate
                        .add(outcome.duplicates as u64);
                    if outcome.orphans > 0 {
                        tracing::warn!(
                            events = outcome.orphans,
                            "dropped events of a deleted project (they arrived before it was deleted)"
                        );
                    }
                    metrics
                        .digest_issues_created
                        .add(outcome.new_issues.len() as u64);
                    let forgotten = batch.inbox_ids.last().map(|id| inbox.forget_through(*id));
                    if let Some(Err(e)) = forgotten {
                        tracing::warn!(error = %e, "could not trim the inbox; it will be trimmed on restart");
                    }
                    break;
                }
                Err(e) => {
                    let advice = crate::telemetry::storage_advice(&e.to_string());
                    tracing::error!(error = %e, events = batch.events.len(), "writing a digest batch failed; retrying in 1 s{advice}");
                    if stop.load(Ordering::SeqCst) {
                        // Not applied: the entries are still in the inbox and are digested after a restart.
                        return;
                    }
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
        }
    }
}
