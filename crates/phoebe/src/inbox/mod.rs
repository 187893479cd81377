//! The durable inbox between ingest and digest: a SQLite file of its own (`inbox.sqlite`), so
//! ingest commits never wait behind a digest transaction.
//!
//! Ingest calls [`InboxWriter::append`]; one writer thread group-commits whatever arrived while the
//! previous commit was running and only then answers each waiter, so a `200` always means the body
//! is on disk. Digest reads entries in id order ([`Inbox::claim`]), and deletes them
//! ([`Inbox::delete_through`]) only after the store committed them with its watermark.
//!
//! Architecture invariant: nothing here parses event JSON.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crate::domain::ProjectId;
use bytes::Bytes;
use rusqlite::{params, Connection};
use thiserror::Error;
use tokio::sync::{mpsc, oneshot};

/// What kind of request an entry came from; decides how digest reads the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// An envelope (`/envelope/`, or `/store/` with the envelope content type).
    Envelope = 0,
    /// One legacy JSON event (`/store/`).
    StoreEvent = 1,
    /// A browser security report (`/security/`).
    SecurityReport = 2,
}

impl EntryKind {
    fn from_i64(v: i64) -> EntryKind {
        match v {
            1 => EntryKind::StoreEvent,
            2 => EntryKind::SecurityReport,
            _ => EntryKind::Envelope,
        }
    }
}

/// One accepted request body, as received (still compressed if the client compressed it).
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The project it was sent to.
    pub project_id: ProjectId,
    /// Receive time, ms since the epoch.
    pub received_ms: i64,
    /// How to read the body.
    pub kind: EntryKind,
    /// The client's address (resolves `{{auto}}` IPs).
    pub client_ip: Option<String>,
    /// `Content-Encoding` of `body` (already validated by ingest), `None` for identity.
    pub encoding: Option<String>,
    /// Extra request facts digest needs (e.g. the security endpoint's release/environment query).
    pub meta: Option<String>,
    /// The body bytes. Left empty by [`Inbox::claim`] when `decoded` is set.
    pub body: Bytes,
    /// The body already decoded by ingest, if it has it. Never written to disk: it is handed to
    /// digest in memory (bounded by [`MAX_DECODED_BYTES`]) so the common path decodes once.
    pub decoded: Option<Bytes>,
}

/// Body bytes digest claims in one batch (see [`Inbox::claim`]).
pub const MAX_CLAIM_BYTES: usize = 32 << 20;

/// Memory for decoded bodies waiting for digest; past it, digest decodes from disk.
pub const MAX_DECODED_BYTES: usize = 32 << 20;

/// Decoded bodies by inbox id, bounded in total size.
#[derive(Default)]
struct DecodedCache {
    bodies: foldhash::HashMap<i64, Bytes>,
    bytes: usize,
}

/// An entry read back for digest, with its position.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// Monotonic inbox id (never reused).
    pub id: i64,
    /// The entry (with `decoded` set when ingest handed the decoded body over in memory).
    pub entry: Entry,
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
    reader: Mutex<Connection>,
    decoded: Arc<Mutex<DecodedCache>>,
    bell: Arc<Bell>,
    pending: Arc<AtomicI64>,
    writer: InboxWriter,
    /// The `-wal` file, truncated once a drained burst left it large.
    wal_path: PathBuf,
}

/// Cheap, cloneable handle ingest appends through.
#[derive(Clone)]
pub struct InboxWriter {
    tx: mpsc::Sender<Append>,
    pending: Arc<AtomicI64>,
    max_backlog: i64,
}

/// Free pages a drained inbox keeps for the next burst (16 MiB of 4 KiB pages).
const KEEP_FREE_PAGES: i64 = 4096;

fn open_conn(path: &Path, synchronous: &str) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    crate::store::sqlite::use_incremental_vacuum(&conn)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // A burst grows the WAL; without a limit the file keeps that size after checkpoints.
    conn.pragma_update(None, "journal_size_limit", 16 << 20)?;
    conn.pragma_update(None, "synchronous", synchronous)?;
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS inbox (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            project_id INTEGER NOT NULL,
            received_ms INTEGER NOT NULL,
            kind INTEGER NOT NULL,
            client_ip TEXT,
            encoding TEXT,
            meta TEXT,
            body BLOB NOT NULL
        );",
    )?;
    Ok(conn)
}

impl Inbox {
    /// Opens the inbox, drops entries the store has already digested (`watermark`), and starts
    /// the writer thread. `synchronous` is SQLite's `full` or `normal`.
    pub fn open(
        path: &Path,
        watermark: i64,
        synchronous: &str,
        max_batch: usize,
        max_backlog: u64,
    ) -> anyhow::Result<Inbox> {
        let writer_conn = open_conn(path, synchronous)?;
        // Ids must stay above the store's watermark even if the inbox file was replaced, or new
        // entries would look digested already.
        writer_conn.execute(
            "INSERT INTO sqlite_sequence (name, seq) SELECT 'inbox', 0
             WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'inbox')",
            [],
        )?;
        writer_conn.execute(
            "UPDATE sqlite_sequence SET seq = max(seq, ?1) WHERE name = 'inbox'",
            [watermark],
        )?;
        writer_conn.execute("DELETE FROM inbox WHERE id <= ?1", [watermark])?;
        let pending: i64 = writer_conn.query_row("SELECT count(*) FROM inbox", [], |r| r.get(0))?;
        let pending = Arc::new(AtomicI64::new(pending));
        let bell = Arc::new(Bell::default());
        // A few batches' worth of waiting requests; beyond that, senders wait (back-pressure).
        let (tx, rx) = mpsc::channel(max_batch * 4);
        let decoded = Arc::new(Mutex::new(DecodedCache::default()));
        let shared = Shared {
            bell: bell.clone(),
            pending: pending.clone(),
            decoded: decoded.clone(),
        };
        std::thread::Builder::new()
            .name("inbox-writer".into())
            .spawn(move || write_loop(writer_conn, rx, max_batch, shared))?;
        let reader = open_conn(path, synchronous)?;
        let writer = InboxWriter {
            tx,
            pending: pending.clone(),
            max_backlog: max_backlog as i64,
        };
        let mut wal_path = path.as_os_str().to_owned();
        wal_path.push("-wal");
        Ok(Inbox {
            reader: Mutex::new(reader),
            decoded,
            bell,
            pending,
            writer,
            wal_path: wal_path.into(),
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

    /// Up to `limit` entries after `after_id`, oldest first, stopping once their bodies pass
    /// [`MAX_CLAIM_BYTES`] (but always at least one), so a batch of huge envelopes stays bounded.
    pub fn claim(&self, after_id: i64, limit: usize) -> anyhow::Result<Vec<Claimed>> {
        let conn = self.reader.lock().unwrap_or_else(|p| p.into_inner());
        // Bodies are read only for entries whose decoded copy is not in memory: the usual path
        // never needs the stored bytes, and copying them out was a measurable part of digest.
        let mut st = conn.prepare_cached(
            "SELECT id, project_id, received_ms, kind, client_ip, encoding, meta, length(body)
             FROM inbox WHERE id > ?1 ORDER BY id LIMIT ?2",
        )?;
        let rows = st.query_map(params![after_id, limit as i64], |r| {
            let claimed = Claimed {
                id: r.get(0)?,
                entry: Entry {
                    project_id: r.get(1)?,
                    received_ms: r.get(2)?,
                    kind: EntryKind::from_i64(r.get(3)?),
                    client_ip: r.get(4)?,
                    encoding: r.get(5)?,
                    meta: r.get(6)?,
                    body: Bytes::new(),
                    decoded: None,
                },
            };
            Ok((claimed, r.get::<_, i64>(7)? as usize))
        })?;
        let mut claimed: Vec<Claimed> = Vec::new();
        let mut bytes = 0usize;
        for row in rows {
            let (row, len) = row?;
            bytes += len;
            claimed.push(row);
            if bytes > MAX_CLAIM_BYTES {
                break;
            }
        }
        let mut missing = Vec::new();
        {
            let mut cache = self.decoded.lock().unwrap_or_else(|p| p.into_inner());
            for c in &mut claimed {
                match cache.bodies.remove(&c.id) {
                    Some(body) => {
                        cache.bytes -= body.len();
                        c.entry.decoded = Some(body);
                    }
                    None => missing.push(c),
                }
            }
        }
        let mut body_of = conn.prepare_cached("SELECT body FROM inbox WHERE id = ?1")?;
        for c in missing {
            let body: Vec<u8> = body_of.query_row([c.id], |r| r.get(0))?;
            c.entry.body = Bytes::from(body);
        }
        Ok(claimed)
    }

    /// Forgets entries up to and including `id`: the store has them.
    pub fn delete_through(&self, id: i64) -> anyhow::Result<()> {
        let conn = self.reader.lock().unwrap_or_else(|p| p.into_inner());
        let n = conn.execute("DELETE FROM inbox WHERE id <= ?1", [id])?;
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
        drop(conn);
        self.shrink_if_drained()
    }

    /// When nothing waits, hands some of the space a past backlog took back to the file system:
    /// a bounded step (64 MiB), so an append never waits long behind it. Digest calls this while
    /// idle, so a large file shrinks within seconds of the backlog draining.
    pub fn shrink_if_drained(&self) -> anyhow::Result<()> {
        if self.pending() != 0 {
            return Ok(());
        }
        let conn = self.reader.lock().unwrap_or_else(|p| p.into_inner());
        let free: i64 = conn.pragma_query_value(None, "freelist_count", |r| r.get(0))?;
        if free > KEEP_FREE_PAGES {
            crate::store::sqlite::incremental_vacuum(&conn, 16_384)?;
        }
        let wal = std::fs::metadata(&self.wal_path).map_or(0, |m| m.len());
        if wal > KEEP_FREE_PAGES as u64 * 4096 {
            // The WAL only shrinks when truncated outright; idle, this waits for nobody long.
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        }
        Ok(())
    }

    /// Empties the read side's page cache (see [`crate::store::Store::release_memory`]).
    pub fn release_memory(&self) -> anyhow::Result<()> {
        let conn = self.reader.lock().unwrap_or_else(|p| p.into_inner());
        Ok(crate::store::sqlite::shrink_memory(&conn)?)
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
    /// Appends one entry and returns its id once it is committed to disk.
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
    bell: Arc<Bell>,
    pending: Arc<AtomicI64>,
    decoded: Arc<Mutex<DecodedCache>>,
}

fn write_loop(
    mut conn: Connection,
    mut rx: mpsc::Receiver<Append>,
    max_batch: usize,
    shared: Shared,
) {
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
        let result = commit(&mut conn, &batch);
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

fn commit(conn: &mut Connection, batch: &[Append]) -> rusqlite::Result<Vec<i64>> {
    let tx = conn.transaction()?;
    let mut ids = Vec::with_capacity(batch.len());
    {
        let mut st = tx.prepare_cached(
            "INSERT INTO inbox (project_id, received_ms, kind, client_ip, encoding, meta, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        for a in batch {
            let e = &a.entry;
            st.execute(params![
                e.project_id,
                e.received_ms,
                e.kind as i64,
                e.client_ip,
                e.encoding,
                e.meta,
                e.body.as_ref()
            ])?;
            ids.push(tx.last_insert_rowid());
        }
    }
    tx.commit()?;
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: u8) -> Entry {
        Entry {
            project_id: ProjectId(1),
            received_ms: 1000 + n as i64,
            kind: EntryKind::Envelope,
            client_ip: Some("127.0.0.1".into()),
            encoding: None,
            meta: None,
            body: Bytes::from(vec![n; 10]),
            decoded: None,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn appended_entries_are_claimed_in_order_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("inbox.sqlite");
        let mut ids = Vec::new();
        {
            let inbox = Inbox::open(&path, 0, "full", 16, 100).unwrap();
            let w = inbox.writer();
            let handles: Vec<_> = (0..20u8)
                .map(|n| {
                    let w = w.clone();
                    tokio::spawn(async move { w.append(entry(n)).await.unwrap() })
                })
                .collect();
            for h in handles {
                ids.push(h.await.unwrap());
            }
            assert_eq!(inbox.pending(), 20);
        }
        ids.sort();
        let watermark = ids[4];
        let inbox = Inbox::open(&path, watermark, "full", 16, 100).unwrap();
        let claimed = inbox.claim(watermark, 100).unwrap();
        assert_eq!(claimed.len(), 15);
        assert_eq!(inbox.pending(), 15);
        assert!(claimed.windows(2).all(|w| w[0].id < w[1].id));
        inbox.delete_through(claimed[9].id).unwrap();
        assert_eq!(inbox.pending(), 5);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_drained_inbox_gives_a_large_backlog_back_to_the_disk() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("inbox.sqlite");
        let inbox = Inbox::open(&path, 0, "normal", 16, 1_000).unwrap();
        let w = inbox.writer();
        let mut last = 0;
        for n in 0..64u8 {
            let mut e = entry(n);
            e.body = Bytes::from(vec![n; 512 * 1024]);
            last = w.append(e).await.unwrap();
        }
        let size = || std::fs::metadata(&path).unwrap().len();
        // The WAL holds the recent writes; a checkpoint moves them into the file.
        let checkpoint = || {
            let c = Connection::open(&path).unwrap();
            c.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)").unwrap();
        };
        checkpoint();
        let full = size();
        assert!(full > 30 << 20, "{full}");
        inbox.delete_through(last).unwrap();
        let wal = || std::fs::metadata(dir.path().join("inbox.sqlite-wal")).map_or(0, |m| m.len());
        // No explicit checkpoint: the drained inbox truncates its own WAL.
        assert!(
            size() + wal() < 8 << 20,
            "{} + {} bytes left of {full}",
            size(),
            wal()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn full_backlog_refuses_appends() {
        let dir = tempfile::tempdir().unwrap();
        let inbox = Inbox::open(&dir.path().join("inbox.sqlite"), 0, "normal", 16, 2).unwrap();
        let w = inbox.writer();
        w.append(entry(1)).await.unwrap();
        w.append(entry(2)).await.unwrap();
        assert!(matches!(w.append(entry(3)).await, Err(InboxError::Full(2))));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ids_stay_above_the_watermark_after_the_inbox_is_emptied() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("inbox.sqlite");
        let inbox = Inbox::open(&path, 41, "full", 16, 100).unwrap();
        let id = inbox.writer().append(entry(1)).await.unwrap();
        assert!(id > 41, "{id}");
    }
}
