//! What the inbox holds: accepted request bodies as received, and the claim digest reads back.

use bytes::Bytes;

use super::ids::ProjectId;

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
    /// The number a backend stores.
    pub fn code(self) -> i64 {
        self as i64
    }

    /// Reads a stored number back; an unknown one is read as an envelope, the lenient choice.
    pub fn from_code(v: i64) -> EntryKind {
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
    /// The body bytes. Left empty by a claim when `decoded` is set.
    pub body: Bytes,
    /// The body already decoded by ingest, if it has it. Never written to disk: it is handed to
    /// digest in memory so the common path decodes once.
    pub decoded: Option<Bytes>,
}

/// An entry read back for digest, with its position.
#[derive(Debug, Clone)]
pub struct Claimed {
    /// Inbox id: positive, increasing in commit order, never reused.
    pub id: i64,
    /// The entry (with `decoded` set when ingest handed the decoded body over in memory).
    pub entry: Entry,
    /// Size of the stored body in bytes (the body itself may not have been read yet).
    pub body_len: usize,
}
