//! The rules that turn a digested batch into issue changes. Given the batch and what the
//! storage layer read about the issues it touches ([`Known`]), [`plan`] decides everything:
//! which events are duplicates, which start a new issue, each event's pin under the per-issue
//! bounds, counter deltas, distinct users, first and last release, regressions and the end of
//! ignores, evictions, usage, and the [`DomainEvent`]s alerts consume. A backend only persists
//! the [`Plan`], in one transaction with the batch's acknowledgement.
//!
//! Pure: no I/O, `now_ms` is an argument. Counters are written as deltas (`+= n`, `min`,
//! `max`), but the decisions — duplicates, new issues, new users, pins, evictions, re-opens,
//! milestones — rest on the state read in the batch's transaction: a backend must plan and
//! write a batch without another batch changing that state in between (SQLite: one writer and
//! an IMMEDIATE transaction; several nodes: locks on what was read).

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use uuid::Uuid;

use super::{DigestBatch, DigestedEvent, IssueId, IssueStatus, ProjectId, UsageCounts};

const HOUR_MS: i64 = 3_600_000;
const MINUTE_MS: i64 = 60_000;

/// Ordinary events one batch evicts from one issue at most, so a lowered bound drains over
/// several batches instead of one huge delete holding the writer.
pub const MAX_EVICT_PER_ISSUE: i64 = 1_000;

/// An issue's event count crossing one of these is a [`IssueEvent::PassedCount`]: powers of ten
/// from 10, so a busy issue announces itself a handful of times, not once per event.
fn passed_milestones(before: i64, after: i64) -> impl Iterator<Item = i64> {
    std::iter::successors(Some(10i64), |m| m.checked_mul(10))
        .skip_while(move |m| *m <= before)
        .take_while(move |m| *m <= after)
}

/// What decides how new events change an existing issue, read in the batch's transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueState {
    /// The issue.
    pub id: IssueId,
    /// Triage state.
    pub status: IssueStatus,
    /// Events counted so far (numbers this batch's events for the bounds).
    pub times_seen: i64,
    /// Ordinary (unpinned) events stored.
    pub unpinned_stored: i64,
    /// An ignore ends at an event at or after this time.
    pub ignore_until_ms: Option<i64>,
    /// An ignore ends when the count reaches this.
    pub ignore_until_count: Option<i64>,
    /// Resolved in the next release: events of this release keep it resolved.
    pub resolved_in_release: Option<String>,
}

/// What the storage layer read for a batch before the rules run. Keys borrow from the batch.
#[derive(Debug, Default)]
pub struct Known<'a> {
    /// Issues by project and fingerprint hash (a merged issue is found under each of its hashes).
    pub issues: HashMap<(ProjectId, &'a str), IssueState>,
    /// Event ids of the batch already stored in their project (redeliveries).
    pub stored: HashSet<(ProjectId, Uuid)>,
    /// Users already counted among an issue's distinct users.
    pub users: HashSet<(IssueId, &'a str)>,
    /// Projects the batch names that were deleted since its events arrived.
    pub gone: HashSet<ProjectId>,
}

/// An issue the plan touches: one that exists, or the n-th of [`Plan::new_issues`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IssueRef {
    /// An existing issue.
    Known(IssueId),
    /// A new issue, by its index in [`Plan::new_issues`]; the backend assigns its id.
    New(usize),
}

/// A new issue, created from the first event of its fingerprint in the batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewIssue {
    /// Index in `batch.events` of the event that opens it (title, culprit, hash, grouping).
    pub event: usize,
}

/// One event row to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventRow {
    /// Index in `batch.events`.
    pub event: usize,
    /// The issue it belongs to.
    pub issue: IssueRef,
    /// Why it is kept (see [`super::pin`]).
    pub pin: i64,
}

/// A count with the first and last time it moved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    /// How many.
    pub count: i64,
    /// Earliest event time, ms.
    pub first_ms: i64,
    /// Latest event time, ms.
    pub last_ms: i64,
}

impl Seen {
    fn new(ts: i64) -> Seen {
        Seen {
            count: 0,
            first_ms: ts,
            last_ms: ts,
        }
    }

    fn add(&mut self, ts: i64) {
        self.count += 1;
        self.first_ms = self.first_ms.min(ts);
        self.last_ms = self.last_ms.max(ts);
    }
}

/// Why the batch re-opens an issue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reopen {
    /// A resolved issue received an event (outside the release it was resolved in).
    Regression,
    /// An ignored issue's time or count ran out.
    Unignored,
}

/// What the batch changes on one issue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueDelta<'a> {
    /// Which issue.
    pub issue: IssueRef,
    /// Its project.
    pub project_id: ProjectId,
    /// Events added, and their time span (`times_seen += count`, `first_seen` min, `last_seen` max).
    pub seen: Seen,
    /// Level of the batch's newest event: the issue's level if that event is its newest.
    pub last_level: &'a str,
    /// Release of the batch's newest event with one: the issue's last release under the same condition.
    pub last_release: Option<&'a str>,
    /// Release of the batch's oldest event with one, and that event's time: the issue's first
    /// release if it has none.
    pub first_release: Option<(i64, &'a str)>,
    /// Distinct users not counted before.
    pub new_users: i64,
    /// Ordinary events added.
    pub unpinned: i64,
    /// Set when the batch re-opens the issue (status back to unresolved, conditions cleared).
    pub reopen: Option<Reopen>,
    /// The oldest ordinary events to delete, over the issue's `latest` bound.
    pub evict: i64,
    /// Index in `batch.events` of the batch's newest event of the issue.
    pub newest_event: usize,
}

/// One counter row's delta: tag value counts of an issue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TagDelta<'a> {
    /// Which issue.
    pub issue: IssueRef,
    /// Tag key.
    pub key: &'a str,
    /// Tag value.
    pub value: &'a str,
    /// Events with it.
    pub seen: Seen,
}

/// A release's delta.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReleaseDelta<'a> {
    /// Project.
    pub project_id: ProjectId,
    /// Version string.
    pub version: &'a str,
    /// Events of it.
    pub seen: Seen,
    /// Issues it introduced.
    pub new_issues: i64,
}

/// Something that happened to an issue that people may want to be told about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IssueEvent {
    /// The first event of a new fingerprint.
    Created,
    /// A resolved issue received an event; the release of the newest one, if any.
    Regressed {
        /// Release of the event that brought it back.
        release: Option<String>,
    },
    /// An ignored issue's condition ran out.
    Unignored,
    /// The issue's event count passed this milestone (10, 100, 1000 ...).
    PassedCount(i64),
    /// Someone resolved the issue (recorded by triage, not by a batch).
    Resolved,
    /// A frequency rule saw this many events of the issue within `minutes` (alerts only:
    /// counted by the alert thread, never recorded by a batch).
    Frequent {
        /// Events in the window.
        events: i64,
        /// The window.
        minutes: i64,
    },
    /// A users rule saw this many distinct users meet the issue within `minutes` (alerts only).
    ManyUsers {
        /// Distinct users in the window.
        users: i64,
        /// The window.
        minutes: i64,
    },
}

impl IssueEvent {
    /// The name stored with the event.
    pub fn kind(&self) -> &'static str {
        match self {
            IssueEvent::Created => "issue.created",
            IssueEvent::Regressed { .. } => "issue.regressed",
            IssueEvent::Unignored => "issue.unignored",
            IssueEvent::PassedCount(_) => "issue.passed_count",
            IssueEvent::Resolved => "issue.resolved",
            IssueEvent::Frequent { .. } => "issue.frequent",
            IssueEvent::ManyUsers { .. } => "issue.many_users",
        }
    }

    /// The details stored beside the name.
    pub fn data(&self) -> serde_json::Value {
        match self {
            IssueEvent::Regressed { release } => serde_json::json!({ "release": release }),
            IssueEvent::PassedCount(n) => serde_json::json!({ "count": n }),
            IssueEvent::Frequent { events, minutes } => {
                serde_json::json!({ "count": events, "minutes": minutes })
            }
            IssueEvent::ManyUsers { users, minutes } => {
                serde_json::json!({ "count": users, "minutes": minutes })
            }
            IssueEvent::Created | IssueEvent::Unignored | IssueEvent::Resolved => {
                serde_json::json!({})
            }
        }
    }

    /// Reads a stored name and its details back; `None` for a name this version does not know.
    pub fn parse(kind: &str, data: &serde_json::Value) -> Option<IssueEvent> {
        Some(match kind {
            "issue.created" => IssueEvent::Created,
            "issue.regressed" => IssueEvent::Regressed {
                release: data["release"].as_str().map(str::to_string),
            },
            "issue.unignored" => IssueEvent::Unignored,
            "issue.resolved" => IssueEvent::Resolved,
            "issue.passed_count" => IssueEvent::PassedCount(data["count"].as_i64()?),
            "issue.frequent" => IssueEvent::Frequent {
                events: data["count"].as_i64()?,
                minutes: data["minutes"].as_i64()?,
            },
            "issue.many_users" => IssueEvent::ManyUsers {
                users: data["count"].as_i64()?,
                minutes: data["minutes"].as_i64()?,
            },
            _ => return None,
        })
    }
}

/// A domain event as stored, in the order batches recorded them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedEvent {
    /// Position in the log; later events have larger ids.
    pub id: i64,
    /// Project of the issue.
    pub project_id: ProjectId,
    /// The issue.
    pub issue_id: IssueId,
    /// What happened.
    pub what: IssueEvent,
    /// The level and tags of the event that caused it, for rule filters.
    pub facts: super::alerts::Facts,
    /// When the batch was written, ms.
    pub created_ms: i64,
}

/// A domain event: recorded in the same transaction as the batch that caused it, so it is
/// neither lost by a crash nor recorded twice by a replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainEvent {
    /// Project of the issue.
    pub project_id: ProjectId,
    /// The issue.
    pub issue: IssueRef,
    /// What happened.
    pub what: IssueEvent,
    /// Index in `batch.events` of the event that caused it (the newest of its issue in the
    /// batch, for all but [`IssueEvent::Created`]): its facts are recorded for rule filters.
    pub event: usize,
}

/// Everything a batch changes; the backend writes it and nothing else.
#[derive(Debug, Default)]
pub struct Plan<'a> {
    /// Issues to create, in the order their first events arrived.
    pub new_issues: Vec<NewIssue>,
    /// Event rows to write (duplicates are not here).
    pub events: Vec<EventRow>,
    /// Per-issue changes, in the order the batch first touched each issue.
    pub issues: Vec<IssueDelta<'a>>,
    /// Hourly counts: (issue, hour start ms, events).
    pub hourly: Vec<(IssueRef, i64, i64)>,
    /// Counts per minute of receipt, for frequency alerts: (issue, minute start ms, events).
    pub minutely: Vec<(IssueRef, i64, i64)>,
    /// Tag value counts (`user` included).
    pub tags: Vec<TagDelta<'a>>,
    /// Releases seen.
    pub releases: Vec<ReleaseDelta<'a>>,
    /// Stored counts per project and hour of receipt (evictions are added as the backend makes them).
    pub usage: Vec<(ProjectId, i64, UsageCounts)>,
    /// Events already stored (a redelivered batch).
    pub duplicates: usize,
    /// Events of deleted projects, dropped: nothing is left to file them under.
    pub orphans: usize,
    /// What alerts will hear about.
    pub domain_events: Vec<DomainEvent>,
}

/// Decides what `batch` changes, given what the backend `known`s, at `now_ms` (the clock
/// decides when an ignore by time runs out: events' own timestamps may be old or skewed).
pub fn plan<'a>(batch: &'a DigestBatch, known: &Known<'a>, now_ms: i64) -> Plan<'a> {
    let mut plan = Plan::default();
    let mut issue_of_hash: HashMap<(ProjectId, &str), IssueRef> = HashMap::new();
    let mut delta_of: HashMap<IssueRef, usize> = HashMap::new();
    // Events an issue has counted so far, this batch's included: numbers events for the bounds.
    let mut counted: HashMap<IssueRef, i64> = HashMap::new();
    let mut this_batch: HashSet<(ProjectId, Uuid)> = HashSet::with_capacity(batch.events.len());
    let mut hourly: HashMap<(IssueRef, i64), i64> = HashMap::new();
    let mut minutely: HashMap<(IssueRef, i64), i64> = HashMap::new();
    let mut tags: HashMap<(IssueRef, &str, &str), Seen> = HashMap::new();
    let mut releases: HashMap<(ProjectId, &str), (Seen, i64)> = HashMap::new();
    let mut usage: HashMap<(ProjectId, i64), UsageCounts> = HashMap::new();
    let mut state_of: HashMap<IssueId, &IssueState> = HashMap::new();

    for (index, ev) in batch.events.iter().enumerate() {
        if known.gone.contains(&ev.project_id) {
            plan.orphans += 1;
            continue;
        }
        let id = (ev.project_id, ev.event_id);
        // A redelivered event (same id) is stored and counted once.
        if known.stored.contains(&id) || !this_batch.insert(id) {
            plan.duplicates += 1;
            continue;
        }
        let key = (ev.project_id, ev.hash.as_str());
        let issue = match issue_of_hash.get(&key) {
            Some(r) => *r,
            None => {
                let r = match known.issues.get(&key) {
                    Some(state) => {
                        counted
                            .entry(IssueRef::Known(state.id))
                            .or_insert(state.times_seen);
                        state_of.insert(state.id, state);
                        IssueRef::Known(state.id)
                    }
                    None => open_issue(&mut plan, &mut releases, index, ev),
                };
                issue_of_hash.insert(key, r);
                r
            }
        };
        let n = counted.entry(issue).or_insert(0);
        *n += 1;
        let pin = batch.bounds.pin(*n as u64);
        plan.events.push(EventRow {
            event: index,
            issue,
            pin,
        });
        count_event(&mut plan, &mut delta_of, issue, index, ev, pin);
        let ts = ev.timestamp_ms;
        usage
            .entry((ev.project_id, ev.received_ms.div_euclid(HOUR_MS) * HOUR_MS))
            .or_default()
            .stored += 1;
        *hourly
            .entry((issue, ts.div_euclid(HOUR_MS) * HOUR_MS))
            .or_default() += 1;
        *minutely
            .entry((issue, ev.received_ms.div_euclid(MINUTE_MS) * MINUTE_MS))
            .or_default() += 1;
        if let Some(r) = ev.release.as_deref() {
            releases
                .entry((ev.project_id, r))
                .or_insert_with(|| (Seen::new(ts), 0))
                .0
                .add(ts);
        }
        for (k, v) in &ev.tags {
            let seen = tags
                .entry((issue, k.as_str(), v.as_str()))
                .or_insert_with(|| Seen::new(ts));
            if seen.count == 0 && k == "user" && !is_known_user(known, issue, v) {
                plan.issues[delta_of[&issue]].new_users += 1;
            }
            seen.add(ts);
        }
    }

    for delta in &mut plan.issues {
        let state = match delta.issue {
            IssueRef::Known(id) => state_of.get(&id).copied(),
            IssueRef::New(_) => None,
        };
        decide(
            delta,
            state,
            batch.bounds.latest as i64,
            now_ms,
            &mut plan.domain_events,
        );
    }
    plan.hourly = hourly.into_iter().map(|((i, h), n)| (i, h, n)).collect();
    plan.minutely = minutely.into_iter().map(|((i, m), n)| (i, m, n)).collect();
    plan.tags = tags
        .into_iter()
        .map(|((issue, key, value), seen)| TagDelta {
            issue,
            key,
            value,
            seen,
        })
        .collect();
    plan.releases = releases
        .into_iter()
        .map(|((project_id, version), (seen, new_issues))| ReleaseDelta {
            project_id,
            version,
            seen,
            new_issues,
        })
        .collect();
    plan.usage = usage.into_iter().map(|((p, h), u)| (p, h, u)).collect();
    plan
}

fn is_known_user(known: &Known, issue: IssueRef, user: &str) -> bool {
    match issue {
        IssueRef::Known(id) => known.users.contains(&(id, user)),
        IssueRef::New(_) => false,
    }
}

/// Starts a new issue with event `index`; it counts toward its release's new issues.
fn open_issue<'a>(
    plan: &mut Plan<'a>,
    releases: &mut HashMap<(ProjectId, &'a str), (Seen, i64)>,
    index: usize,
    ev: &'a DigestedEvent,
) -> IssueRef {
    let r = IssueRef::New(plan.new_issues.len());
    plan.new_issues.push(NewIssue { event: index });
    plan.domain_events.push(DomainEvent {
        project_id: ev.project_id,
        issue: r,
        what: IssueEvent::Created,
        event: index,
    });
    if let Some(release) = ev.release.as_deref() {
        releases
            .entry((ev.project_id, release))
            .or_insert_with(|| (Seen::new(ev.timestamp_ms), 0))
            .1 += 1;
    }
    r
}

/// Adds one stored event to its issue's delta.
fn count_event<'a>(
    plan: &mut Plan<'a>,
    delta_of: &mut HashMap<IssueRef, usize>,
    issue: IssueRef,
    index: usize,
    ev: &'a DigestedEvent,
    pin: i64,
) {
    let ts = ev.timestamp_ms;
    let at = *delta_of.entry(issue).or_insert_with(|| {
        plan.issues.push(IssueDelta {
            issue,
            project_id: ev.project_id,
            seen: Seen::new(ts),
            last_level: ev.level,
            last_release: None,
            first_release: None,
            new_users: 0,
            unpinned: 0,
            reopen: None,
            evict: 0,
            newest_event: index,
        });
        plan.issues.len() - 1
    });
    let d = &mut plan.issues[at];
    if ts >= d.seen.last_ms {
        d.newest_event = index;
        d.last_level = ev.level;
        d.last_release = ev.release.as_deref().or(d.last_release);
    }
    if let Some(r) = ev.release.as_deref() {
        // Ties keep the earlier event in batch order.
        if d.first_release.is_none_or(|(t, _)| ts < t) {
            d.first_release = Some((ts, r));
        }
    }
    d.seen.add(ts);
    if pin == super::pin::NONE {
        d.unpinned += 1;
    }
}

/// The decisions that depend on the issue's state: re-open, evictions, milestones.
fn decide(
    d: &mut IssueDelta,
    state: Option<&IssueState>,
    latest: i64,
    now_ms: i64,
    events: &mut Vec<DomainEvent>,
) {
    let (before, unpinned_before) = state.map_or((0, 0), |s| (s.times_seen, s.unpinned_stored));
    if let Some(s) = state {
        d.reopen = reopened_by(s, d, now_ms);
        match d.reopen {
            Some(Reopen::Regression) => events.push(DomainEvent {
                project_id: d.project_id,
                issue: d.issue,
                what: IssueEvent::Regressed {
                    release: d.last_release.map(str::to_string),
                },
                event: d.newest_event,
            }),
            Some(Reopen::Unignored) => events.push(DomainEvent {
                project_id: d.project_id,
                issue: d.issue,
                what: IssueEvent::Unignored,
                event: d.newest_event,
            }),
            None => {}
        }
    }
    for m in passed_milestones(before, before + d.seen.count) {
        events.push(DomainEvent {
            project_id: d.project_id,
            issue: d.issue,
            what: IssueEvent::PassedCount(m),
            event: d.newest_event,
        });
    }
    let unpinned = unpinned_before + d.unpinned;
    if latest > 0 && unpinned > latest {
        d.evict = (unpinned - latest).min(MAX_EVICT_PER_ISSUE);
    }
}

/// Whether the batch's events re-open an issue in `state`.
fn reopened_by(state: &IssueState, d: &IssueDelta, now_ms: i64) -> Option<Reopen> {
    match state.status {
        // Resolved "in the next release": only an event of another release is a regression.
        IssueStatus::Resolved => match (&state.resolved_in_release, d.last_release) {
            (None, _) => Some(Reopen::Regression),
            (Some(fixed_after), Some(seen)) if fixed_after.as_str() != seen => {
                Some(Reopen::Regression)
            }
            _ => None,
        },
        IssueStatus::Ignored => {
            let time_up = state.ignore_until_ms.is_some_and(|t| now_ms >= t);
            let count_up = state
                .ignore_until_count
                .is_some_and(|n| state.times_seen + d.seen.count >= n);
            (time_up || count_up).then_some(Reopen::Unignored)
        }
        IssueStatus::Unresolved => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{pin, EventBounds};

    const HOUR: i64 = 3_600_000;

    fn event(hash: &str, ts: i64, user: &str, release: Option<&str>) -> DigestedEvent {
        DigestedEvent::for_test(ProjectId(1), hash, ts, user, release)
    }

    fn batch(events: Vec<DigestedEvent>) -> DigestBatch {
        DigestBatch {
            events,
            ..DigestBatch::default()
        }
    }

    fn state(id: i64, status: IssueStatus, times_seen: i64) -> IssueState {
        IssueState {
            id: IssueId(id),
            status,
            times_seen,
            unpinned_stored: 0,
            ignore_until_ms: None,
            ignore_until_count: None,
            resolved_in_release: None,
        }
    }

    /// The plan's domain events as (issue, event) pairs.
    fn announced(p: &Plan) -> Vec<(IssueRef, IssueEvent)> {
        p.domain_events
            .iter()
            .map(|e| (e.issue, e.what.clone()))
            .collect()
    }

    #[test]
    fn new_fingerprints_open_issues_and_repeats_join_them() {
        let b = batch(vec![
            event("a", 10 * HOUR + 5, "u1", Some("1.0")),
            event("a", 10 * HOUR + 9, "u2", Some("1.1")),
            event("a", 11 * HOUR, "u1", Some("1.1")),
            event("b", 11 * HOUR, "u1", None),
        ]);
        let p = plan(&b, &Known::default(), 0);
        assert_eq!(
            p.new_issues,
            vec![NewIssue { event: 0 }, NewIssue { event: 3 }]
        );
        let a = &p.issues[0];
        assert_eq!(a.issue, IssueRef::New(0));
        assert_eq!(
            (a.seen.count, a.seen.first_ms, a.seen.last_ms, a.new_users),
            (3, 10 * HOUR + 5, 11 * HOUR, 2)
        );
        assert_eq!(
            (a.first_release, a.last_release),
            (Some((10 * HOUR + 5, "1.0")), Some("1.1"))
        );
        let mut hourly = p.hourly.clone();
        hourly.sort_by_key(|(i, h, _)| (matches!(i, IssueRef::New(1)), *h));
        assert_eq!(
            hourly,
            vec![
                (IssueRef::New(0), 10 * HOUR, 2),
                (IssueRef::New(0), 11 * HOUR, 1),
                (IssueRef::New(1), 11 * HOUR, 1)
            ]
        );
        assert_eq!(
            announced(&p),
            vec![
                (IssueRef::New(0), IssueEvent::Created),
                (IssueRef::New(1), IssueEvent::Created)
            ]
        );
        let release_1_0 = p.releases.iter().find(|r| r.version == "1.0").unwrap();
        assert_eq!((release_1_0.seen.count, release_1_0.new_issues), (1, 1));
    }

    #[test]
    fn stored_and_repeated_event_ids_are_duplicates_counted_once() {
        let first = event("a", 1, "u", None);
        let mut again = first.clone();
        again.timestamp_ms = 2;
        let stored = event("a", 3, "u", None);
        let b = batch(vec![first, again, stored.clone()]);
        let mut known = Known::default();
        known.stored.insert((stored.project_id, stored.event_id));
        let p = plan(&b, &known, 0);
        assert_eq!((p.events.len(), p.duplicates), (1, 2));
        assert_eq!(p.issues[0].seen.count, 1);
    }

    #[test]
    fn resolved_issues_regress_unless_the_event_is_of_the_release_they_wait_for() {
        let b = batch(vec![event("a", 5, "u", Some("1.0"))]);
        let check = |status: IssueStatus, in_release: Option<&str>| {
            let mut known = Known::default();
            let mut s = state(7, status, 3);
            s.resolved_in_release = in_release.map(str::to_string);
            known.issues.insert((ProjectId(1), "a"), s);
            let p = plan(&b, &known, 0);
            (p.issues[0].reopen, announced(&p))
        };
        let regressed = vec![(
            IssueRef::Known(IssueId(7)),
            IssueEvent::Regressed {
                release: Some("1.0".into()),
            },
        )];
        assert_eq!(
            check(IssueStatus::Resolved, None),
            (Some(Reopen::Regression), regressed.clone())
        );
        assert_eq!(
            check(IssueStatus::Resolved, Some("0.9")),
            (Some(Reopen::Regression), regressed)
        );
        assert_eq!(check(IssueStatus::Resolved, Some("1.0")), (None, vec![]));
        assert_eq!(check(IssueStatus::Unresolved, None), (None, vec![]));
    }

    #[test]
    fn ignores_end_by_the_clock_or_by_the_count() {
        let b = batch(vec![event("a", 5, "u", None), event("a", 6, "u", None)]);
        let check = |until_ms: Option<i64>, until_count: Option<i64>, now: i64| {
            let mut known = Known::default();
            let mut s = state(7, IssueStatus::Ignored, 10);
            (s.ignore_until_ms, s.ignore_until_count) = (until_ms, until_count);
            known.issues.insert((ProjectId(1), "a"), s);
            plan(&b, &known, now).issues[0].reopen
        };
        // The clock decides, not the events' own (old) timestamps.
        assert_eq!(check(Some(1_000), None, 999), None);
        assert_eq!(check(Some(1_000), None, 1_000), Some(Reopen::Unignored));
        assert_eq!(check(None, Some(13), 0), None);
        assert_eq!(check(None, Some(12), 0), Some(Reopen::Unignored));
        assert_eq!(check(None, None, i64::MAX), None, "ignored forever");
    }

    #[test]
    fn events_are_pinned_by_their_number_and_ordinary_ones_beyond_the_bound_evicted() {
        let bounds = EventBounds {
            first: 2,
            latest: 3,
            samples_per_doubling: 1,
        };
        let events = (0..6).map(|i| event("a", i, "u", None)).collect();
        let mut b = batch(events);
        b.bounds = bounds;
        let mut known = Known::default();
        let mut s = state(7, IssueStatus::Unresolved, 9);
        s.unpinned_stored = 3;
        known.issues.insert((ProjectId(1), "a"), s);
        let p = plan(&b, &known, 0);
        // Events 10..=15 of the issue: 16 would be the next sample, none of these is one.
        let pins: Vec<i64> = p.events.iter().map(|e| e.pin).collect();
        assert_eq!(pins, vec![pin::NONE; 6]);
        assert_eq!((p.issues[0].unpinned, p.issues[0].evict), (6, 6));
        // A new issue keeps its first events, then one sample per power of two (4); its three
        // ordinary ones are within the bound.
        let p = plan(&b, &Known::default(), 0);
        let pins: Vec<i64> = p.events.iter().map(|e| e.pin).collect();
        assert_eq!(
            pins,
            vec![
                pin::FIRST,
                pin::FIRST,
                pin::NONE,
                pin::SAMPLE,
                pin::NONE,
                pin::NONE
            ]
        );
        assert_eq!((p.issues[0].unpinned, p.issues[0].evict), (3, 0));
    }

    #[test]
    fn evictions_per_batch_are_capped() {
        let mut b = batch(vec![event("a", 1, "u", None)]);
        b.bounds.latest = 1;
        let mut known = Known::default();
        let mut s = state(7, IssueStatus::Unresolved, 5_000);
        s.unpinned_stored = 5_000;
        known.issues.insert((ProjectId(1), "a"), s);
        assert_eq!(plan(&b, &known, 0).issues[0].evict, MAX_EVICT_PER_ISSUE);
    }

    #[test]
    fn known_users_are_not_counted_again() {
        let b = batch(vec![
            event("a", 1, "old", None),
            event("a", 2, "new", None),
            event("a", 3, "new", None),
        ]);
        let mut known = Known::default();
        known
            .issues
            .insert((ProjectId(1), "a"), state(7, IssueStatus::Unresolved, 1));
        known.users.insert((IssueId(7), "old"));
        assert_eq!(plan(&b, &known, 0).issues[0].new_users, 1);
    }

    #[test]
    fn counts_passing_powers_of_ten_are_announced_once_each() {
        assert_eq!(passed_milestones(5, 150).collect::<Vec<_>>(), vec![10, 100]);
        assert_eq!(passed_milestones(10, 99).count(), 0);
        assert_eq!(passed_milestones(0, 9).count(), 0);
        assert_eq!(
            passed_milestones(i64::MAX - 1, i64::MAX).count(),
            0,
            "no overflow"
        );
        let events = (0..3).map(|i| event("a", i, "u", None)).collect();
        let mut known = Known::default();
        known
            .issues
            .insert((ProjectId(1), "a"), state(7, IssueStatus::Unresolved, 98));
        assert_eq!(
            announced(&plan(&batch(events), &known, 0)),
            vec![(IssueRef::Known(IssueId(7)), IssueEvent::PassedCount(100))]
        );
    }

    #[test]
    fn stored_issue_events_read_back_as_they_were_written() {
        for e in [
            IssueEvent::Created,
            IssueEvent::Regressed { release: None },
            IssueEvent::Regressed {
                release: Some("1.2".into()),
            },
            IssueEvent::Unignored,
            IssueEvent::PassedCount(1000),
        ] {
            assert_eq!(IssueEvent::parse(e.kind(), &e.data()), Some(e));
        }
        assert_eq!(
            IssueEvent::parse("issue.other", &serde_json::json!({})),
            None
        );
    }

    #[test]
    fn events_of_deleted_projects_are_dropped() {
        let mut e = event("a", 1_000, "u", None);
        e.project_id = ProjectId(9);
        let b = batch(vec![e, event("b", 1_000, "u", None)]);
        let mut known = Known::default();
        known.gone.insert(ProjectId(9));
        let p = plan(&b, &known, 0);
        assert_eq!(p.orphans, 1);
        assert_eq!(p.new_issues.len(), 1);
        assert_eq!(p.events.len(), 1);
        assert!(p
            .usage
            .iter()
            .all(|(project, _, _)| *project == ProjectId(1)));
    }
}
