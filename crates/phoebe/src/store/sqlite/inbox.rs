//! The inbox in SQLite: `inbox.sqlite`, a file of its own beside the store, so ingest's group
//! commits never wait behind a digest transaction. One connection appends (the group-commit
//! thread calls [`InboxStore::append`]), another claims, reads bodies and forgets. Claims follow
//! a cursor that starts at the store's watermark: one digester per data folder reads entries in
//! id order, and the watermark it commits with each batch is the acknowledgement.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use rusqlite::{params, Connection};

use crate::domain::{Claimed, Entry, EntryKind};
use crate::store::{InboxStore, StoreResult};

/// Free pages a drained inbox keeps for the next burst (16 MiB of 4 KiB pages).
const KEEP_FREE_PAGES: i64 = 4096;

/// The SQLite inbox.
pub struct SqliteInbox {
    writer: Mutex<Connection>,
    reader: Mutex<Connection>,
    /// The last id handed to a claimer.
    claimed_through: AtomicI64,
    /// The `-wal` file, truncated once a drained burst left it large.
    wal_path: PathBuf,
}

fn open_conn(path: &Path, synchronous: &str) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(10))?;
    super::use_incremental_vacuum(&conn)?;
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

impl SqliteInbox {
    /// Opens the inbox at `path` and drops entries the store has acknowledged (`watermark`).
    /// `synchronous` is SQLite's `full` or `normal`.
    pub fn open(path: &Path, watermark: i64, synchronous: &str) -> StoreResult<SqliteInbox> {
        let writer = open_conn(path, synchronous)?;
        // Ids must stay above the store's watermark even if the inbox file was replaced, or new
        // entries would look acknowledged already.
        writer.execute(
            "INSERT INTO sqlite_sequence (name, seq) SELECT 'inbox', 0
             WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'inbox')",
            [],
        )?;
        writer.execute(
            "UPDATE sqlite_sequence SET seq = max(seq, ?1) WHERE name = 'inbox'",
            [watermark],
        )?;
        writer.execute("DELETE FROM inbox WHERE id <= ?1", [watermark])?;
        let reader = open_conn(path, synchronous)?;
        let mut wal_path = path.as_os_str().to_owned();
        wal_path.push("-wal");
        Ok(SqliteInbox {
            writer: Mutex::new(writer),
            reader: Mutex::new(reader),
            claimed_through: AtomicI64::new(watermark),
            wal_path: wal_path.into(),
        })
    }

    fn reader(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.reader.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl InboxStore for SqliteInbox {
    fn append(&self, entries: &[&Entry]) -> StoreResult<Vec<i64>> {
        let mut conn = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let tx = conn.transaction()?;
        let mut ids = Vec::with_capacity(entries.len());
        {
            let mut st = tx.prepare_cached(
                "INSERT INTO inbox (project_id, received_ms, kind, client_ip, encoding, meta, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for e in entries {
                st.execute(params![
                    e.project_id,
                    e.received_ms,
                    e.kind.code(),
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

    fn claim(&self, limit: usize, max_bytes: usize) -> StoreResult<Vec<Claimed>> {
        let conn = self.reader();
        let after = self.claimed_through.load(Ordering::SeqCst);
        // Bodies are read only when asked for: the usual path has the decoded copy in memory,
        // and copying the stored bytes out was a measurable part of digest.
        let mut st = conn.prepare_cached(
            "SELECT id, project_id, received_ms, kind, client_ip, encoding, meta, length(body)
             FROM inbox WHERE id > ?1 ORDER BY id LIMIT ?2",
        )?;
        let rows = st.query_map(params![after, limit as i64], |r| {
            Ok(Claimed {
                id: r.get(0)?,
                entry: Entry {
                    project_id: r.get(1)?,
                    received_ms: r.get(2)?,
                    kind: EntryKind::from_code(r.get(3)?),
                    client_ip: r.get(4)?,
                    encoding: r.get(5)?,
                    meta: r.get(6)?,
                    body: Bytes::new(),
                    decoded: None,
                },
                body_len: r.get::<_, i64>(7)? as usize,
            })
        })?;
        let mut claimed: Vec<Claimed> = Vec::new();
        let mut bytes = 0usize;
        for row in rows {
            let row = row?;
            bytes += row.body_len;
            claimed.push(row);
            if bytes > max_bytes {
                break;
            }
        }
        if let Some(last) = claimed.last() {
            self.claimed_through.store(last.id, Ordering::SeqCst);
        }
        Ok(claimed)
    }

    fn body(&self, id: i64) -> StoreResult<Bytes> {
        let conn = self.reader();
        let body: Vec<u8> = conn
            .prepare_cached("SELECT body FROM inbox WHERE id = ?1")?
            .query_row([id], |r| r.get(0))?;
        Ok(Bytes::from(body))
    }

    fn forget_through(&self, id: i64) -> StoreResult<u64> {
        Ok(self
            .reader()
            .execute("DELETE FROM inbox WHERE id <= ?1", [id])? as u64)
    }

    fn count(&self) -> StoreResult<i64> {
        Ok(self
            .reader()
            .query_row("SELECT count(*) FROM inbox", [], |r| r.get(0))?)
    }

    /// A bounded step (64 MiB), so an append never waits long behind it; then the WAL, which
    /// only shrinks when truncated outright.
    fn shrink(&self) -> StoreResult<()> {
        let conn = self.reader();
        let free: i64 = conn.pragma_query_value(None, "freelist_count", |r| r.get(0))?;
        if free > KEEP_FREE_PAGES {
            super::incremental_vacuum(&conn, 16_384)?;
        }
        let wal = std::fs::metadata(&self.wal_path).map_or(0, |m| m.len());
        if wal > KEEP_FREE_PAGES as u64 * 4096 {
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        }
        Ok(())
    }

    fn release_memory(&self) -> StoreResult<()> {
        super::shrink_memory(&self.reader())
    }
}
