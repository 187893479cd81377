//! Triage: status changes with their conditions (resolve in the next release, ignore for a
//! while or until more events), assignment, comments, deletion and merging. Every change is
//! recorded in the issue's activity log with who made it.

use std::sync::atomic::Ordering;

use super::{Ops, OpsError, OpsResult, Permission};
use crate::domain::{Activity, Issue, IssueId, IssueStatus, Triage};

/// A change to an issue as people ask for it through the API, the CLI or the dashboard. Fields
/// left `None` are not changed; several may be given at once.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IssueChange {
    /// The new status (parsed at the edge: [`parse_status`]).
    pub status: Option<IssueStatus>,
    /// With `resolved`: keep it resolved for events of the issue's current release.
    pub in_next_release: bool,
    /// With `ignored`: re-open after this many minutes.
    pub ignore_minutes: Option<i64>,
    /// With `ignored`: re-open after this many more events.
    pub ignore_count: Option<i64>,
    /// `Some(Some(login))` assigns, `Some(None)` unassigns.
    pub assign: Option<Option<String>>,
    /// A comment to add.
    pub comment: Option<String>,
}

/// Reads a status as people and Sentry's clients write it (`muted` is Sentry's old word for
/// ignored); the error says which names exist.
pub fn parse_status(s: &str) -> OpsResult<IssueStatus> {
    IssueStatus::parse(s).ok_or_else(|| {
        OpsError::Invalid(format!(
            "unknown status {s:?}: use resolved, unresolved or ignored"
        ))
    })
}

/// Longest accepted comment, in characters.
const MAX_COMMENT: usize = 10_000;

impl IssueChange {
    /// The store changes this asks for, checked against the issue as it is.
    fn to_triage(&self, ops: &Ops, issue: &Issue) -> OpsResult<Vec<Triage>> {
        let mut out = Vec::new();
        let conditions = self.ignore_minutes.is_some() || self.ignore_count.is_some();
        if let Some(status) = self.status {
            if conditions && status != IssueStatus::Ignored {
                return Err(OpsError::Invalid(
                    "ignore conditions (minutes, count) go with status ignored".into(),
                ));
            }
            if self.in_next_release && status != IssueStatus::Resolved {
                return Err(OpsError::Invalid(
                    "inNextRelease goes with status resolved".into(),
                ));
            }
            out.push(match status {
                IssueStatus::Resolved if self.in_next_release => Triage::Resolve {
                    in_release: Some(issue.last_release.clone().ok_or_else(|| {
                        OpsError::Invalid(
                            "this issue's events name no release, so there is no next one: resolve it instead".into(),
                        )
                    })?),
                },
                IssueStatus::Resolved => Triage::Resolve { in_release: None },
                IssueStatus::Unresolved => Triage::Unresolve,
                IssueStatus::Ignored => {
                    let positive = |v: Option<i64>, what: &str| match v {
                        Some(n) if n <= 0 => Err(OpsError::Invalid(format!(
                            "{what} must be a positive number"
                        ))),
                        _ => Ok(v),
                    };
                    let minutes = positive(self.ignore_minutes, "ignore minutes")?;
                    let count = positive(self.ignore_count, "ignore count")?;
                    Triage::Ignore {
                        until_ms: minutes.map(|m| {
                            chrono::Utc::now().timestamp_millis() + m.saturating_mul(60_000)
                        }),
                        until_count: count.map(|n| issue.times_seen.saturating_add(n)),
                    }
                }
            });
        } else if conditions || self.in_next_release {
            return Err(OpsError::Invalid(
                "say the status the conditions go with (ignored or resolved)".into(),
            ));
        }
        if let Some(assignee) = &self.assign {
            out.push(Triage::Assign(match assignee {
                Some(login) => Some(
                    ops.store
                        .user_by_login(login)
                        .map_err(|_| OpsError::Invalid(format!("there is no user {login:?}")))?
                        .id,
                ),
                None => None,
            }));
        }
        if let Some(text) = &self.comment {
            let text = text.trim();
            if text.is_empty() || text.chars().count() > MAX_COMMENT {
                return Err(OpsError::Invalid(format!(
                    "a comment needs 1 to {MAX_COMMENT} characters"
                )));
            }
            out.push(Triage::Comment(text.to_string()));
        }
        Ok(out)
    }
}

impl Ops {
    /// How many issue changes this process has made so far (live updates watch it).
    pub fn issue_changes(&self) -> u64 {
        self.issue_changes.load(Ordering::Relaxed)
    }

    fn changed(&self) {
        self.issue_changes.fetch_add(1, Ordering::Relaxed);
    }

    /// Applies a change to an issue, recorded as the caller's; returns the issue as it now is.
    pub fn change_issue(&self, id: IssueId, change: &IssueChange) -> OpsResult<Issue> {
        self.allow(Permission::Triage)?;
        let mut issue = self.store.issue(id)?;
        for t in change.to_triage(self, &issue)? {
            issue = self
                .store
                .triage(id, self.caller.user().map(|u| u.id), &t)?;
        }
        self.changed();
        Ok(issue)
    }

    /// An issue's activity log, newest first.
    pub fn activity(&self, id: IssueId) -> OpsResult<Vec<Activity>> {
        self.allow(Permission::Read)?;
        self.store.issue(id)?;
        Ok(self.store.activity(id)?)
    }

    /// Deletes issues and their events. A later event with one of their fingerprints starts a
    /// new issue. Returns how many existed.
    pub fn delete_issues(&self, ids: &[IssueId]) -> OpsResult<u64> {
        self.allow(Permission::Triage)?;
        let deleted = self.store.delete_issues(ids)?;
        self.changed();
        Ok(deleted)
    }

    /// Merges issues of one project into the one with the most events (as Sentry does); later
    /// events of every merged fingerprint land there. Returns the merged issue.
    pub fn merge_issues(&self, ids: &[IssueId]) -> OpsResult<Issue> {
        self.allow(Permission::Triage)?;
        if ids.len() < 2 {
            return Err(OpsError::Invalid(
                "merging needs at least two issues".into(),
            ));
        }
        let issues = ids
            .iter()
            .map(|id| self.store.issue(*id))
            .collect::<Result<Vec<_>, _>>()?;
        let target = issues
            .iter()
            .max_by_key(|i| (i.times_seen, std::cmp::Reverse(i.id)))
            .map(|i| i.id)
            .unwrap_or(ids[0]);
        let merged = self
            .store
            .merge_issues(target, ids, self.caller.user().map(|u| u.id))?;
        self.changed();
        Ok(merged)
    }
}
