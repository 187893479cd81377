//! Accounting: what happened to a project's events each hour, what SDKs reported dropping, and
//! the retention rules with what one eviction step removed.

use super::ids::ProjectId;

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
    pub project_id: ProjectId,
    /// Start of the UTC day, ms.
    pub day_ms: i64,
    /// The SDK's reason (`ratelimit_backoff`, `sample_rate`, ...).
    pub reason: String,
    /// Data category (`error`, `transaction`, ...).
    pub category: String,
    /// How many.
    pub quantity: u64,
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
    /// Domain events older than the default maximum age (or 90 days) removed.
    pub domain_events: u64,
    /// Sent or given-up notifications older than 90 days removed.
    pub alert_history: u64,
    /// Upload chunks never assembled into a bundle (removed after a day), and source-map
    /// bundles no project uses any more.
    pub upload_chunks: u64,
    /// The step was full: call again.
    pub more: bool,
}
