//! The values that cross the storage interface: what digest writes and what the read side gets.

use uuid::Uuid;

/// An organization.
#[derive(Debug, Clone, PartialEq)]
pub struct Org {
    /// Database id.
    pub id: i64,
    /// URL name.
    pub slug: String,
    /// Display name.
    pub name: String,
    /// Creation time, ms since the epoch.
    pub created_ms: i64,
}

/// A project: where one application's events go.
#[derive(Debug, Clone, PartialEq)]
pub struct Project {
    /// Numeric id; also the id in DSNs.
    pub id: i64,
    /// Owning organization.
    pub org_id: i64,
    /// Owning organization's slug.
    pub org_slug: String,
    /// URL name, unique within the organization.
    pub slug: String,
    /// Display name.
    pub name: String,
    /// Platform hint (`python`, `javascript`, ...).
    pub platform: Option<String>,
    /// Creation time, ms.
    pub created_ms: i64,
    /// Rate-limit overrides for the whole project.
    pub limits: RateLimit,
    /// Retention overrides.
    pub retention: RetentionOverride,
    /// Stored event rows (not events seen: retention removes rows, never counts).
    pub stored_events: i64,
    /// Set while spike protection throttles the project.
    pub spike: Option<SpikeState>,
}

/// Events per minute and per hour. `None` follows the `[quotas]` default, `Some(0)` is unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RateLimit {
    /// Events per clock minute.
    pub per_minute: Option<u64>,
    /// Events per clock hour.
    pub per_hour: Option<u64>,
}

/// Per-project retention settings. `None` follows `[retention]`, `Some(0)` is unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetentionOverride {
    /// Stored events older than this many days are evicted.
    pub max_age_days: Option<u64>,
    /// At most this many stored events; the oldest go first.
    pub max_stored_events: Option<u64>,
}

/// Spike protection throttling a project.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpikeState {
    /// When throttling started, ms.
    pub since_ms: i64,
    /// Events per minute it lets through meanwhile.
    pub limit_per_minute: u64,
}

/// What happened to a project's events in one hour. Door counts (accepted, refused) come from
/// ingest, `stored` from digest, `evicted` from retention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UsageCounts {
    /// Events accepted at the door.
    pub accepted: u64,
    /// Refused by a per-minute rate limit.
    pub rate_limited: u64,
    /// Refused by a per-hour quota.
    pub over_quota: u64,
    /// Refused by spike protection.
    pub spike_protected: u64,
    /// Event rows written.
    pub stored: u64,
    /// Event rows removed by the per-issue bound or retention.
    pub evicted: u64,
}

impl UsageCounts {
    /// Adds another row into this one.
    pub fn add(&mut self, o: &UsageCounts) {
        self.accepted += o.accepted;
        self.rate_limited += o.rate_limited;
        self.over_quota += o.over_quota;
        self.spike_protected += o.spike_protected;
        self.stored += o.stored;
        self.evicted += o.evicted;
    }
}

/// Events an SDK reported dropping before sending (a client report), summed per day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientDiscard {
    /// Project.
    pub project_id: i64,
    /// Start of the UTC day, ms.
    pub day_ms: i64,
    /// The SDK's reason (`ratelimit_backoff`, `sample_rate`, ...).
    pub reason: String,
    /// Data category (`error`, `transaction`, ...).
    pub category: String,
    /// How many.
    pub quantity: u64,
}

/// A DSN key of a project.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectKey {
    /// Database id.
    pub id: i64,
    /// The project it sends to.
    pub project_id: i64,
    /// 32 lowercase hex characters.
    pub public_key: String,
    /// Human label.
    pub label: String,
    /// Disabled keys are refused with 403.
    pub is_active: bool,
    /// Creation time, ms.
    pub created_ms: i64,
    /// Rate-limit overrides for this key.
    pub limits: RateLimit,
}

/// A person who can log in or hold API tokens.
#[derive(Debug, Clone, PartialEq)]
pub struct User {
    /// Database id.
    pub id: i64,
    /// Login name.
    pub login: String,
    /// argon2 PHC string.
    pub password_hash: String,
    /// Disabled users cannot log in and their tokens stop working.
    pub is_active: bool,
}

/// A live dashboard session.
#[derive(Debug, Clone)]
pub struct Session {
    /// Whose it is.
    pub user: User,
    /// The token every form of this session must carry.
    pub csrf: String,
}

/// Triage state of an issue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssueStatus {
    /// Needs attention.
    Unresolved,
    /// Fixed; a new event re-opens it as a regression.
    Resolved,
    /// Muted.
    Ignored,
}

impl IssueStatus {
    /// Wire and database name.
    pub fn as_str(self) -> &'static str {
        match self {
            IssueStatus::Unresolved => "unresolved",
            IssueStatus::Resolved => "resolved",
            IssueStatus::Ignored => "ignored",
        }
    }

    /// Parses a wire name (`muted` is Sentry's old word for ignored).
    pub fn parse(s: &str) -> Option<IssueStatus> {
        match s {
            "unresolved" => Some(IssueStatus::Unresolved),
            "resolved" => Some(IssueStatus::Resolved),
            "ignored" | "muted" => Some(IssueStatus::Ignored),
            _ => None,
        }
    }
}

/// An issue: all events with one fingerprint, with its read-model counters.
#[derive(Debug, Clone, PartialEq)]
pub struct Issue {
    /// Database id.
    pub id: i64,
    /// Project.
    pub project_id: i64,
    /// Per-project sequence number, shown as `PROJECT-1A`.
    pub short_id: i64,
    /// `Type: value` or the message.
    pub title: String,
    /// Where it happened.
    pub culprit: String,
    /// `error`, `default` or `csp`.
    pub kind: String,
    /// JSON object: `type`, `value`, `filename`, `function` or `title`.
    pub metadata: String,
    /// Level of the latest event.
    pub level: String,
    /// Triage state.
    pub status: IssueStatus,
    /// True when a resolved issue received a new event.
    pub is_regression: bool,
    /// First event time, ms.
    pub first_seen_ms: i64,
    /// Latest event time, ms.
    pub last_seen_ms: i64,
    /// Every event counted, stored or not.
    pub times_seen: i64,
    /// Distinct users.
    pub user_count: i64,
    /// Release of the first event.
    pub first_release: Option<String>,
    /// Release of the latest event.
    pub last_release: Option<String>,
    /// Platform of the first event.
    pub platform: String,
    /// Logger of the first event.
    pub logger: Option<String>,
    /// Login of the user who owns it.
    pub assignee: Option<String>,
    /// An ignored issue re-opens when an event arrives at or after this time, ms.
    pub ignore_until_ms: Option<i64>,
    /// An ignored issue re-opens when its event count reaches this.
    pub ignore_until_count: Option<i64>,
    /// Resolved "in the next release": events of this release do not re-open it.
    pub resolved_in_release: Option<String>,
    /// Comments in its activity log.
    pub num_comments: i64,
}

/// A change to an issue that a person makes; each is recorded in the issue's activity.
#[derive(Debug, Clone, PartialEq)]
pub enum Triage {
    /// Fixed. With `in_release`, events of that (current) release keep it resolved and only a
    /// later release re-opens it.
    Resolve {
        /// The release the fix is not in yet.
        in_release: Option<String>,
    },
    /// Back to needing attention.
    Unresolve,
    /// Muted, forever or until a time or an event count (whichever comes first).
    Ignore {
        /// Re-open on an event at or after this time, ms.
        until_ms: Option<i64>,
        /// Re-open when the event count reaches this.
        until_count: Option<i64>,
    },
    /// Owned by a user (by id), or nobody.
    Assign(Option<i64>),
    /// A note for the team.
    Comment(String),
}

/// One entry of an issue's activity log.
#[derive(Debug, Clone, PartialEq)]
pub struct Activity {
    /// Database id.
    pub id: i64,
    /// The issue.
    pub issue_id: i64,
    /// Who did it (`None`: Phoebe itself, e.g. a regression).
    pub user: Option<String>,
    /// `resolved`, `unresolved`, `ignored`, `assigned`, `unassigned`, `comment`, `merged`,
    /// `regression`, `unignored`.
    pub kind: String,
    /// Details (comment text, ignore conditions, release, merged issues) as JSON.
    pub data: serde_json::Value,
    /// When, ms.
    pub created_ms: i64,
}

/// A stored event, payload decompressed.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    /// The SDK's event id.
    pub event_id: Uuid,
    /// Project.
    pub project_id: i64,
    /// Issue it was grouped into.
    pub issue_id: i64,
    /// When it happened, ms.
    pub timestamp_ms: i64,
    /// When Phoebe received it, ms.
    pub received_ms: i64,
    /// The fingerprint hash that grouped it.
    pub grouping_hash: String,
    /// Which grouping variant produced the hash.
    pub grouping_variant: String,
    /// The normalized event JSON.
    pub payload: serde_json::Value,
    /// Stored (compressed) size in bytes.
    pub stored_bytes: i64,
    /// Database row id (orders events with equal timestamps; used in cursors).
    pub row_id: i64,
}

/// How many events of an issue carried one tag value.
#[derive(Debug, Clone, PartialEq)]
pub struct TagCount {
    /// Tag key.
    pub key: String,
    /// Tag value.
    pub value: String,
    /// Events with this value.
    pub count: i64,
    /// First event with it, ms.
    pub first_seen_ms: i64,
    /// Latest event with it, ms.
    pub last_seen_ms: i64,
    /// Events with any value of this key (all values, not only the ones returned).
    pub key_total: i64,
}

/// Issue list order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IssueSort {
    /// Latest event first (Sentry `date`).
    #[default]
    LastSeen,
    /// Newest issue first (`new`).
    FirstSeen,
    /// Most events first (`freq`).
    Events,
    /// Most users first (`user`).
    Users,
}

/// A position in an issue or event list: the sort value and id of a row. Pages continue from it, so rows
/// that move while someone pages (a new event changes `last_seen`) are neither skipped twice nor
/// repeated the way offsets would.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeysetCursor {
    /// The sort column's value of the row.
    pub value: i64,
    /// The row's id (ties in the sort value are ordered by id).
    pub id: i64,
    /// Rows before the position (the previous page) instead of after it.
    pub backwards: bool,
}

impl IssueSort {
    /// The sort value of an issue, for cursors.
    pub fn value_of(self, i: &Issue) -> i64 {
        match self {
            IssueSort::LastSeen => i.last_seen_ms,
            IssueSort::FirstSeen => i.first_seen_ms,
            IssueSort::Events => i.times_seen,
            IssueSort::Users => i.user_count,
        }
    }
}

/// A filtered, sorted page of issues.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IssueQuery {
    /// Restrict to these projects (empty: all).
    pub project_ids: Vec<i64>,
    /// `is:` filter.
    pub status: Option<IssueStatus>,
    /// `level:` filter.
    pub level: Option<String>,
    /// `key:value` filters on tag counts (release, environment, browser, custom tags ...).
    pub tags: Vec<(String, String)>,
    /// Free-text words, matched against title and culprit.
    pub text: Vec<String>,
    /// Only issues seen since this time (ms).
    pub seen_since_ms: Option<i64>,
    /// Order.
    pub sort: IssueSort,
    /// Start after (or, `backwards`, before) this position in the sort order.
    pub cursor: Option<KeysetCursor>,
    /// Rows to return.
    pub limit: i64,
}

/// One digested event ready to be written.
#[derive(Debug, Clone)]
pub struct DigestedEvent {
    /// Project.
    pub project_id: i64,
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
    pub project_id: i64,
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
    /// The last inbox id this batch covers; becomes the new watermark.
    pub last_inbox_id: i64,
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
    pub new_issues: Vec<i64>,
    /// Resolved issues that came back.
    pub regressions: Vec<i64>,
}

/// The retention rules the background eviction applies (projects may override age and count).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetentionPolicy {
    /// Default maximum age of stored events, days; 0 keeps them forever.
    pub max_age_days: u64,
    /// Default maximum stored events per project; 0 is unlimited.
    pub max_events_per_project: u64,
    /// Evict oldest-first while the database uses more; 0 is no budget.
    pub max_disk_bytes: u64,
    /// Rows deleted per step.
    pub batch: u64,
}

/// What one eviction step removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Eviction {
    /// Events older than their project's maximum age.
    pub by_age: u64,
    /// Events over their project's cap.
    pub by_count: u64,
    /// Events removed to get under the disk budget.
    pub by_disk: u64,
    /// Kept items (attachments, sessions, feedback) removed.
    pub kept: u64,
    /// The step was full: call again.
    pub more: bool,
}
