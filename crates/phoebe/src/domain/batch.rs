//! What digest hands the storage layer: one batch of digested events and kept items, the
//! per-issue event bounds, and what applying the batch changed.

use uuid::Uuid;

use super::ids::{IssueId, ProjectId};
use super::usage::ClientDiscard;

/// One digested event ready to be written.
#[derive(Debug, Clone)]
pub struct DigestedEvent {
    /// Project.
    pub project_id: ProjectId,
    /// Event id.
    pub event_id: Uuid,
    /// When it happened, ms.
    pub timestamp_ms: i64,
    /// When received, ms.
    pub received_ms: i64,
    /// `error`, `warning` ...
    pub level: &'static str,
    /// `error`, `default`, `csp`.
    pub kind: &'static str,
    /// Event platform.
    pub platform: String,
    /// Logger.
    pub logger: Option<String>,
    /// Release.
    pub release: Option<String>,
    /// Issue title.
    pub title: String,
    /// Issue culprit.
    pub culprit: String,
    /// Issue metadata JSON.
    pub metadata: String,
    /// Fingerprint hash.
    pub hash: String,
    /// Grouping variant name.
    pub variant: &'static str,
    /// Grouping explanation JSON (components), recorded once per hash; `None` when digest
    /// knows the store already has it.
    pub grouping: Option<String>,
    /// Tags to count (including `user`, `release`, `environment`, `level` ...).
    pub tags: Vec<(String, String)>,
    /// Distinct-user identity.
    pub user: Option<String>,
    /// zstd-compressed normalized payload.
    pub payload_zstd: Vec<u8>,
}

/// A non-event item kept for later features (attachments, feedback, sessions, client reports).
#[derive(Debug, Clone)]
pub struct KeptItem {
    /// Project.
    pub project_id: ProjectId,
    /// Envelope event id, if any.
    pub event_id: Option<Uuid>,
    /// Item type as sent.
    pub item_type: String,
    /// Attachment file name, if any.
    pub filename: Option<String>,
    /// When received, ms.
    pub received_ms: i64,
    /// Raw payload.
    pub payload: Vec<u8>,
}

/// How many events an issue keeps: its first ones, its latest ones and a thinning sample of the
/// rest. Counts stay exact whatever is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EventBounds {
    /// Events number 1..=first of an issue are kept.
    pub first: u64,
    /// Ordinary events beyond this many (newest kept) are evicted; 0 keeps them all.
    pub latest: u64,
    /// Sampled events per doubling of the issue's count (a power of two).
    pub samples_per_doubling: u64,
}

/// Why a stored event is kept, in `events.pinned`.
pub mod pin {
    /// An ordinary event: kept while it is among the issue's latest.
    pub const NONE: i64 = 0;
    /// One of the issue's first events.
    pub const FIRST: i64 = 1;
    /// A sample.
    pub const SAMPLE: i64 = 2;
}

impl EventBounds {
    /// The pin of an issue's event number `n` (1-based). Samples thin out as the count grows:
    /// `samples_per_doubling` of them between each power of two and the next.
    pub fn pin(&self, n: u64) -> i64 {
        if n <= self.first {
            return pin::FIRST;
        }
        let per_doubling = self.samples_per_doubling.max(1);
        let shift = (63 - n.leading_zeros()).saturating_sub(per_doubling.ilog2());
        if n.trailing_zeros() >= shift {
            pin::SAMPLE
        } else {
            pin::NONE
        }
    }
}

/// One digest transaction's worth of work.
#[derive(Debug, Clone, Default)]
pub struct DigestBatch {
    /// Events to group and store.
    pub events: Vec<DigestedEvent>,
    /// Other items to keep.
    pub kept: Vec<KeptItem>,
    /// Client-report lines to add up.
    pub discards: Vec<ClientDiscard>,
    /// How many events each issue keeps.
    pub bounds: EventBounds,
    /// The inbox entries this batch acknowledges, in claim order: a backend commits their
    /// acknowledgement in the batch's own transaction (SQLite records the last as its watermark),
    /// so the results of an entry are written exactly once.
    pub inbox_ids: Vec<i64>,
    /// A zstd dictionary the batch's payloads (and later ones) are compressed with, to be stored
    /// in the same transaction: (dictionary id, dictionary bytes).
    pub new_dict: Option<(u32, Vec<u8>)>,
}

/// What a digest batch changed, for logs and (later) alerts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BatchOutcome {
    /// Events written.
    pub stored: usize,
    /// Events skipped because their id was already stored (redelivery).
    pub duplicates: usize,
    /// Issues created.
    pub new_issues: Vec<IssueId>,
    /// Resolved issues that came back.
    pub regressions: Vec<IssueId>,
    /// Domain events recorded.
    pub domain_events: usize,
    /// Events dropped because their project was deleted.
    pub orphans: usize,
}

#[cfg(test)]
impl DigestedEvent {
    /// A test event of fingerprint `hash` (its title is `Err {hash}`), with a `user` tag and,
    /// when given, a release and its tag; no payload.
    pub fn for_test(
        project_id: ProjectId,
        hash: &str,
        ts: i64,
        user: &str,
        release: Option<&str>,
    ) -> DigestedEvent {
        let mut tags = vec![("user".to_string(), user.to_string())];
        tags.extend(release.map(|r| ("release".to_string(), r.to_string())));
        DigestedEvent {
            project_id,
            event_id: Uuid::new_v4(),
            timestamp_ms: ts,
            received_ms: ts,
            level: "error",
            kind: "error",
            platform: "python".into(),
            logger: None,
            release: release.map(str::to_string),
            title: format!("Err {hash}"),
            culprit: "app in f".into(),
            metadata: "{}".into(),
            hash: hash.into(),
            variant: "app",
            grouping: Some("{\"components\":[]}".into()),
            tags,
            user: Some(user.into()),
            payload_zstd: vec![],
        }
    }
}
