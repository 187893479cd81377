//! The durable inbox between ingest and digest, over a backend's [`InboxStore`].
//!
//! Ingest calls [`InboxWriter::append`]; one writer thread group-commits whatever arrived while
//! the previous commit was running and only then answers each waiter, so a `200` always means
//! the body is committed. Digest claims entries ([`Inbox::claim`]), writes their results with
//! their ids in one store transaction (the acknowledgement, see [`InboxStore`]), and then lets
//! the inbox forget them ([`Inbox::forget_through`]). Decoded bodies ride from ingest to digest
//! in memory (bounded), so the usual path decompresses once; after a restart digest decodes
//! from the stored bytes.
//!
//! Architecture invariant: nothing here parses event JSON or names a storage backend.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use bytes::Bytes;
use thiserror::Error;
use tokio::sync::{mpsc, oneshot};

pub use crate::domain::{Claimed, Entry, EntryKind};
use crate::store::InboxStore;

/// Body bytes digest claims in one batch (see [`Inbox::claim`]).
pub const MAX_CLAIM_BYTES: usize = 32 << 20;

/// Memory for decoded bodies waiting for digest; past it, digest decodes from the stored bytes.
pub const MAX_DECODED_BYTES: usize = 32 << 20;

/// Decoded bodies by inbox id, bounded in total size.
#[derive(Default)]
struct DecodedCache {
    bodies: foldhash::HashMap<i64, Bytes>,
    bytes: usize,
}

/// Why an append failed.
#[derive(Debug, Error)]
pub enum InboxError {
    /// The backlog is at its bound: the client should retry later.
    #[error("the inbox holds {0} undigested envelopes, its limit; retry later")]
    Full(i64),
    /// The writer thread is gone (shutdown).
    #[error("the inbox is shutting down")]
    Closed,
    /// The disk write failed.
    #[error("writing the inbox failed: {0}")]
    Io(String),
}

struct Append {
    entry: Entry,
    done: oneshot::Sender<Result<i64, InboxError>>,
}

/// Signals digest that new entries were committed.
#[derive(Default)]
struct Bell {
    rung: Mutex<u64>,
    cond: Condvar,
}

/// The inbox: a writer handle for ingest plus the read side for digest.
pub struct Inbox {
    store: Arc<dyn InboxStore>,
    /// A claim whose stored bodies could not be read: it is retried before claiming more, since
    /// the store hands each entry out once.
    unread: Mutex<Vec<Claimed>>,
    decoded: Arc<Mutex<DecodedCache>>,
    bell: Arc<Bell>,
    pending: Arc<AtomicI64>,
    writer: InboxWriter,
}

/// Cheap, cloneable handle ingest appends through.
#[derive(Clone)]
pub struct InboxWriter {
    tx: mpsc::Sender<Append>,
    pending: Arc<AtomicI64>,
    max_backlog: i64,
}

impl Inbox {
    /// Starts the group-commit writer thread over `store`; at most `max_batch` entries per
    /// commit, and appends are refused past `max_backlog` undigested entries.
    pub fn start(
        store: Arc<dyn InboxStore>,
        max_batch: usize,
        max_backlog: u64,
    ) -> anyhow::Result<Inbox> {
        let pending = Arc::new(AtomicI64::new(store.count()?));
        let bell = Arc::new(Bell::default());
        // A few batches' worth of waiting requests; beyond that, senders wait (back-pressure).
        let (tx, rx) = mpsc::channel(max_batch * 4);
        let decoded = Arc::new(Mutex::new(DecodedCache::default()));
        let shared = Shared {
            store: store.clone(),
            bell: bell.clone(),
            pending: pending.clone(),
            decoded: decoded.clone(),
        };
        std::thread::Builder::new()
            .name("inbox-writer".into())
            .spawn(move || write_loop(rx, max_batch, shared))?;
        let writer = InboxWriter {
            tx,
            pending: pending.clone(),
            max_backlog: max_backlog as i64,
        };
        Ok(Inbox {
            store,
            unread: Mutex::new(Vec::new()),
            decoded,
            bell,
            pending,
            writer,
        })
    }

    /// The handle ingest uses.
    pub fn writer(&self) -> InboxWriter {
        self.writer.clone()
    }

    /// Entries committed but not yet digested.
    pub fn pending(&self) -> i64 {
        self.pending.load(Ordering::Relaxed)
    }

    /// Up to `limit` entries not claimed before, oldest first, stopping once their bodies pass
    /// [`MAX_CLAIM_BYTES`] (but always at least one), so a batch of huge envelopes stays
    /// bounded. Each carries its decoded body from memory, or else its stored body.
    pub fn claim(&self, limit: usize) -> anyhow::Result<Vec<Claimed>> {
        let mut unread = self.unread.lock().unwrap_or_else(|p| p.into_inner());
        let mut claimed = match unread.is_empty() {
            true => self.store.claim(limit, MAX_CLAIM_BYTES)?,
            false => std::mem::take(&mut *unread),
        };
        if let Err(e) = self.read_bodies(&mut claimed) {
            *unread = claimed;
            return Err(e);
        }
        Ok(claimed)
    }

    /// Gives each claimed entry its decoded body from memory, or else its stored body.
    fn read_bodies(&self, claimed: &mut [Claimed]) -> anyhow::Result<()> {
        let mut missing = Vec::new();
        {
            let mut cache = self.decoded.lock().unwrap_or_else(|p| p.into_inner());
            for c in claimed.iter_mut() {
                match cache.bodies.remove(&c.id) {
                    Some(body) => {
                        cache.bytes -= body.len();
                        c.entry.decoded = Some(body);
                    }
                    None => missing.push(c),
                }
            }
        }
        for c in missing {
            if c.entry.body.is_empty() {
                c.entry.body = self.store.body(c.id)?;
            }
        }
        Ok(())
    }

    /// Forgets entries up to and including `id`: the store has their results.
    pub fn forget_through(&self, id: i64) -> anyhow::Result<()> {
        let n = self.store.forget_through(id)?;
        // A body claimed between the commit and its cache insert would otherwise stay forever.
        let mut cache = self.decoded.lock().unwrap_or_else(|p| p.into_inner());
        if !cache.bodies.is_empty() {
            let mut freed = 0;
            cache.bodies.retain(|k, v| {
                let keep = *k > id;
                if !keep {
                    freed += v.len();
                }
                keep
            });
            cache.bytes -= freed;
        }
        drop(cache);
        self.pending.fetch_sub(n as i64, Ordering::Relaxed);
        self.shrink_if_drained()
    }

    /// When nothing waits, hands some of the space a past backlog took back. Digest calls this
    /// while idle, so a large inbox shrinks within seconds of the backlog draining.
    pub fn shrink_if_drained(&self) -> anyhow::Result<()> {
        if self.pending() != 0 {
            return Ok(());
        }
        Ok(self.store.shrink()?)
    }

    /// Empties the read side's page cache.
    pub fn release_memory(&self) -> anyhow::Result<()> {
        Ok(self.store.release_memory()?)
    }

    /// Waits until something new is committed or `timeout` passes.
    pub fn wait(&self, seen: &mut u64, timeout: Duration) {
        let guard = self.bell.rung.lock().unwrap_or_else(|p| p.into_inner());
        let (guard, _) = self
            .bell
            .cond
            .wait_timeout_while(guard, timeout, |rung| *rung == *seen)
            .unwrap_or_else(|p| p.into_inner());
        *seen = *guard;
    }

    /// Wakes a digest waiting in [`Inbox::wait`] (used at shutdown).
    pub fn ring(&self) {
        ring(&self.bell);
    }
}

fn ring(bell: &Bell) {
    let mut rung = bell.rung.lock().unwrap_or_else(|p| p.into_inner());
    *rung += 1;
    bell.cond.notify_all();
}

impl InboxWriter {
    /// Appends one entry and returns its id once it is committed.
    pub async fn append(&self, entry: Entry) -> Result<i64, InboxError> {
        let pending = self.pending.load(Ordering::Relaxed);
        if pending >= self.max_backlog {
            return Err(InboxError::Full(pending));
        }
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Append { entry, done })
            .await
            .map_err(|_| InboxError::Closed)?;
        wait.await.map_err(|_| InboxError::Closed)?
    }
}

/// What the writer thread shares with the read side.
struct Shared {
    store: Arc<dyn InboxStore>,
    bell: Arc<Bell>,
    pending: Arc<AtomicI64>,
    decoded: Arc<Mutex<DecodedCache>>,
}

fn write_loop(mut rx: mpsc::Receiver<Append>, max_batch: usize, shared: Shared) {
    let mut batch: Vec<Append> = Vec::with_capacity(max_batch);
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        // Whatever queued up during the previous commit rides along in this one: that is the group commit.
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(a) => batch.push(a),
                Err(_) => break,
            }
        }
        let entries: Vec<&Entry> = batch.iter().map(|a| &a.entry).collect();
        let result = shared.store.append(&entries);
        drop(entries);
        match result {
            Ok(ids) => {
                {
                    let mut cache = shared.decoded.lock().unwrap_or_else(|p| p.into_inner());
                    for (append, id) in batch.iter_mut().zip(&ids) {
                        if let Some(body) = append.entry.decoded.take() {
                            if cache.bytes + body.len() <= MAX_DECODED_BYTES {
                                cache.bytes += body.len();
                                cache.bodies.insert(*id, body);
                            }
                        }
                    }
                }
                shared
                    .pending
                    .fetch_add(ids.len() as i64, Ordering::Relaxed);
                for (append, id) in batch.drain(..).zip(ids) {
                    let _ = append.done.send(Ok(id));
                }
                ring(&shared.bell);
            }
            Err(e) => {
                let advice = crate::telemetry::storage_advice(&e.to_string());
                tracing::error!(error = %e, n = batch.len(), "inbox commit failed; the clients get 503 and will retry{advice}");
                let reason = match advice.is_empty() {
                    true => e.to_string(),
                    false => "the server's disk is full; retry later".into(),
                };
                for append in batch.drain(..) {
                    let _ = append.done.send(Err(InboxError::Io(reason.clone())));
                }
            }
        }
    }
    tracing::debug!("inbox writer stopped");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ProjectId;

    fn entry(n: u8) -> Entry {
        Entry {
            project_id: ProjectId(1),
            received_ms: 1000 + n as i64,
            kind: EntryKind::Envelope,
            client_ip: Some("127.0.0.1".into()),
            encoding: None,
            meta: None,
            body: Bytes::from(vec![n; 10]),
            decoded: Some(Bytes::from(vec![n; 20])),
        }
    }

    fn start(dir: &std::path::Path, watermark: i64, max_backlog: u64) -> Inbox {
        Inbox::start(
            crate::store::open_inbox_in(dir, watermark).unwrap(),
            16,
            max_backlog,
        )
        .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_appends_are_claimed_once_in_order_with_their_decoded_bodies() {
        let dir = tempfile::tempdir().unwrap();
        let inbox = start(dir.path(), 0, 100);
        let w = inbox.writer();
        let handles: Vec<_> = (0..20u8)
            .map(|n| {
                let w = w.clone();
                tokio::spawn(async move { w.append(entry(n)).await.unwrap() })
            })
            .collect();
        for h in handles {
            h.await.unwrap();
        }
        assert_eq!(inbox.pending(), 20);
        let claimed = inbox.claim(15).unwrap();
        assert_eq!(claimed.len(), 15);
        assert!(claimed.windows(2).all(|w| w[0].id < w[1].id));
        // Ingest's decoded copy comes from memory; the stored body is not read for it.
        let c = &claimed[0];
        assert_eq!(c.entry.decoded.as_ref().map(Bytes::len), Some(20));
        assert!(c.entry.body.is_empty());
        assert_eq!(c.body_len, 10);
        assert_eq!(inbox.claim(100).unwrap().len(), 5, "the rest, once");
        assert!(inbox.claim(100).unwrap().is_empty());
        inbox.forget_through(claimed[9].id).unwrap();
        assert_eq!(inbox.pending(), 10);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn after_a_restart_stored_bodies_are_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let id = start(dir.path(), 0, 100)
            .writer()
            .append(entry(7))
            .await
            .unwrap();
        let inbox = start(dir.path(), 0, 100);
        let claimed = inbox.claim(10).unwrap();
        assert_eq!(claimed.len(), 1);
        assert_eq!(claimed[0].id, id);
        assert_eq!(claimed[0].entry.decoded, None);
        assert_eq!(claimed[0].entry.body, Bytes::from(vec![7u8; 10]));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn full_backlog_refuses_appends() {
        let dir = tempfile::tempdir().unwrap();
        let inbox = start(dir.path(), 0, 2);
        let w = inbox.writer();
        w.append(entry(1)).await.unwrap();
        w.append(entry(2)).await.unwrap();
        assert!(matches!(w.append(entry(3)).await, Err(InboxError::Full(2))));
    }
}
