//! Issues and what people do to them: status, triage changes, the activity log, stored events,
//! tag counts, and the query that lists issues.

use super::ids::{IssueId, ProjectId, UserId};
use uuid::Uuid;

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
    pub id: IssueId,
    /// Project.
    pub project_id: ProjectId,
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
    Assign(Option<UserId>),
    /// A note for the team.
    Comment(String),
}

/// What an activity entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActivityKind {
    /// Someone resolved the issue.
    Resolved,
    /// Someone marked it unresolved again.
    Unresolved,
    /// Someone ignored it.
    Ignored,
    /// Someone assigned it.
    Assigned,
    /// Someone took the assignee away.
    Unassigned,
    /// A comment.
    Comment,
    /// Other issues were merged into it.
    Merged,
    /// A resolved issue received a new event (Phoebe did it).
    Regression,
    /// An ignored issue's condition ran out (Phoebe did it).
    Unignored,
}

impl ActivityKind {
    /// Every kind, for parsers and tests.
    pub const ALL: [ActivityKind; 9] = [
        ActivityKind::Resolved,
        ActivityKind::Unresolved,
        ActivityKind::Ignored,
        ActivityKind::Assigned,
        ActivityKind::Unassigned,
        ActivityKind::Comment,
        ActivityKind::Merged,
        ActivityKind::Regression,
        ActivityKind::Unignored,
    ];

    /// Wire and database name (Sentry's activity `type` where one exists).
    pub fn as_str(self) -> &'static str {
        match self {
            ActivityKind::Resolved => "resolved",
            ActivityKind::Unresolved => "unresolved",
            ActivityKind::Ignored => "ignored",
            ActivityKind::Assigned => "assigned",
            ActivityKind::Unassigned => "unassigned",
            ActivityKind::Comment => "comment",
            ActivityKind::Merged => "merged",
            ActivityKind::Regression => "regression",
            ActivityKind::Unignored => "unignored",
        }
    }

    /// Parses a database name.
    pub fn parse(s: &str) -> Option<ActivityKind> {
        ActivityKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl std::fmt::Display for ActivityKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of an issue's activity log.
#[derive(Debug, Clone, PartialEq)]
pub struct Activity {
    /// Database id.
    pub id: i64,
    /// The issue.
    pub issue_id: IssueId,
    /// Who did it (`None`: Phoebe itself, e.g. a regression).
    pub user: Option<String>,
    /// What happened.
    pub kind: ActivityKind,
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
    pub project_id: ProjectId,
    /// Issue it was grouped into.
    pub issue_id: IssueId,
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
    pub project_ids: Vec<ProjectId>,
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

#[cfg(test)]
impl Issue {
    /// An unresolved issue with every field empty or zero, for tests to fill in.
    pub fn for_test() -> Issue {
        Issue {
            id: IssueId(1),
            project_id: ProjectId(1),
            short_id: 1,
            title: String::new(),
            culprit: String::new(),
            kind: "error".into(),
            metadata: "{}".into(),
            level: "error".into(),
            status: IssueStatus::Unresolved,
            is_regression: false,
            first_seen_ms: 0,
            last_seen_ms: 0,
            times_seen: 0,
            user_count: 0,
            first_release: None,
            last_release: None,
            platform: "python".into(),
            logger: None,
            assignee: None,
            ignore_until_ms: None,
            ignore_until_count: None,
            resolved_in_release: None,
            num_comments: 0,
        }
    }
}
