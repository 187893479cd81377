//! Rate limits at the door. In-memory counters per DSN key, project, organization and the whole
//! server, over fixed clock minutes and hours, plus spike protection per project. Ingest asks
//! [`Quotas::check`] before it reads a body and reports what it accepted or refused; the counts
//! become hourly usage rows that the server writes to the store every few seconds.
//!
//! Counters live in one process: with several nodes each enforces its own share.

mod spike;

use std::collections::HashMap;
use std::sync::Mutex;

use crate::config::QuotaConfig;
use crate::domain::{OrgId, ProjectId, RateLimit, SpikeState, UsageCounts};
use spike::Spike;

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 3_600_000;

/// Who is sending: the key, its project and organization, with their overrides.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Grant {
    /// DSN key row id.
    pub key_id: i64,
    /// Project.
    pub project_id: ProjectId,
    /// Organization.
    pub org_id: OrgId,
    /// The key's overrides.
    pub key_limits: RateLimit,
    /// The project's overrides.
    pub project_limits: RateLimit,
}

/// Which kind of limit refused a request; each has its own usage column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A per-minute limit.
    RateLimited,
    /// A per-hour quota.
    OverQuota,
    /// Spike protection.
    SpikeProtected,
}

/// One active limit, as SDKs are told about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActiveLimit {
    /// Seconds until the window ends.
    pub retry_after_secs: u64,
    /// `key`, `project` or `organization` (the global limit is reported as organization).
    pub scope: &'static str,
    /// A short reason code.
    pub reason: &'static str,
    /// Its kind.
    pub refusal: Refusal,
}

/// Every limit that refuses event-like items (errors, default and security events) right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limited {
    /// Active limits, longest first.
    pub limits: Vec<ActiveLimit>,
}

/// The data categories an event limit covers (protocol notes §5.1).
const EVENT_CATEGORIES: &str = "error;default;security";

impl Limited {
    /// `Retry-After`: the longest active limit.
    pub fn retry_after_secs(&self) -> u64 {
        self.limits.first().map_or(60, |l| l.retry_after_secs)
    }

    /// The kind that decides the usage column: the longest limit's.
    pub fn refusal(&self) -> Refusal {
        self.limits
            .first()
            .map_or(Refusal::RateLimited, |l| l.refusal)
    }

    /// `X-Sentry-Rate-Limits`: `retry_after:categories:scope:reason`, one per limit.
    pub fn header_value(&self) -> String {
        self.limits
            .iter()
            .map(|l| {
                format!(
                    "{}:{EVENT_CATEGORIES}:{}:{}",
                    l.retry_after_secs, l.scope, l.reason
                )
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// A short sentence for the `detail` of a 429.
    pub fn detail(&self) -> String {
        let Some(l) = self.limits.first() else {
            return "rate limited".into();
        };
        let what = match l.reason {
            "spike_protection" => "spike protection is throttling this project".to_string(),
            reason => format!("{} limit reached ({reason})", l.scope),
        };
        format!(
            "{what}; retry in {} s (see `phoebe usage`, or raise the limit with `phoebe project limits`)",
            l.retry_after_secs
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Scope {
    Key(i64),
    Project(ProjectId),
    Org(OrgId),
    Global,
}

/// The limits of one scope, as configured or overridden.
struct ScopeLimit {
    scope: Scope,
    per_minute: Option<u64>,
    per_hour: Option<u64>,
    /// The scope as `X-Sentry-Rate-Limits` names it.
    name: &'static str,
    reason: &'static str,
}

/// A fixed window's count: `index` is the window number since the epoch.
#[derive(Debug, Clone, Copy, Default)]
struct Window {
    index: i64,
    count: u64,
}

impl Window {
    fn count_at(&self, index: i64) -> u64 {
        if self.index == index {
            self.count
        } else {
            0
        }
    }

    /// Adds (or, for a release, removes) events in window `index`. A window older than the
    /// current one is never reopened, so a clock stepping back cannot reset a count.
    fn add(&mut self, index: i64, n: i64) {
        if index > self.index {
            *self = Window { index, count: 0 };
        }
        if index == self.index {
            self.count = self.count.saturating_add_signed(n);
        }
    }
}

#[derive(Debug, Default)]
struct Counter {
    minute: Window,
    hour: Window,
}

#[derive(Default)]
struct State {
    counters: HashMap<Scope, Counter>,
    spikes: HashMap<ProjectId, Spike>,
    /// Baselines from the store for projects not seen yet since start.
    seeds: HashMap<ProjectId, f64>,
    usage: HashMap<(ProjectId, i64), UsageCounts>,
}

/// The door's limits and counters.
pub struct Quotas {
    config: QuotaConfig,
    state: Mutex<State>,
}

/// A configured limit: 0 means none.
fn effective(over: Option<u64>, default: u64) -> Option<u64> {
    match over.unwrap_or(default) {
        0 => None,
        n => Some(n),
    }
}

fn secs_until(end_ms: i64, now_ms: i64) -> u64 {
    ((end_ms - now_ms).max(1) as u64).div_ceil(1000)
}

impl Quotas {
    /// Limits from `config`; `accepted_last_day` (project, events) seeds spike baselines.
    pub fn new(config: QuotaConfig, accepted_last_day: &[(ProjectId, u64)]) -> Quotas {
        let seeds = accepted_last_day
            .iter()
            .map(|(p, n)| (*p, *n as f64 / 1440.0))
            .collect();
        Quotas {
            config,
            state: Mutex::new(State {
                seeds,
                ..State::default()
            }),
        }
    }

    fn scopes(&self, g: &Grant) -> [ScopeLimit; 4] {
        let c = &self.config;
        let limit = |scope, per_minute, per_hour, name, reason| ScopeLimit {
            scope,
            per_minute,
            per_hour,
            name,
            reason,
        };
        [
            limit(
                Scope::Key(g.key_id),
                effective(g.key_limits.per_minute, c.key_events_per_minute),
                effective(g.key_limits.per_hour, c.key_events_per_hour),
                "key",
                "key_quota",
            ),
            limit(
                Scope::Project(g.project_id),
                effective(g.project_limits.per_minute, c.project_events_per_minute),
                effective(g.project_limits.per_hour, c.project_events_per_hour),
                "project",
                "project_quota",
            ),
            limit(
                Scope::Org(g.org_id),
                effective(None, c.org_events_per_minute),
                effective(None, c.org_events_per_hour),
                "organization",
                "org_quota",
            ),
            limit(
                Scope::Global,
                effective(None, c.global_events_per_minute),
                effective(None, c.global_events_per_hour),
                "organization",
                "global_quota",
            ),
        ]
    }

    /// The limits that refuse events for this sender now, if any (counts nothing).
    pub fn check(&self, g: &Grant, now_ms: i64) -> Option<Limited> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        self.active_limits(&mut state, g, now_ms)
    }

    /// Admits `events` from this sender if no limit refuses them, counting them as accepted;
    /// otherwise counts them as refused. Checking and counting under one lock keeps concurrent
    /// requests from all slipping under a limit at once.
    pub fn admit(&self, g: &Grant, events: u64, now_ms: i64) -> Result<(), Limited> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let hour_ms = now_ms.div_euclid(HOUR_MS) * HOUR_MS;
        if events > 0 {
            if let Some(limited) = self.active_limits(&mut state, g, now_ms) {
                count_refusal(&mut state, g.project_id, limited.refusal(), events, hour_ms);
                return Err(limited);
            }
        }
        self.add(&mut state, g, events as i64, now_ms);
        Ok(())
    }

    /// Takes back an admission whose events were not kept after all (the inbox refused them).
    pub fn release(&self, g: &Grant, events: u64, now_ms: i64) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        self.add(&mut state, g, -(events as i64), now_ms);
    }

    fn add(&self, state: &mut State, g: &Grant, events: i64, now_ms: i64) {
        let minute = now_ms.div_euclid(MINUTE_MS);
        let hour = now_ms.div_euclid(HOUR_MS);
        if events != 0 {
            for l in self.scopes(g) {
                let c = state.counters.entry(l.scope).or_default();
                c.minute.add(minute, events);
                c.hour.add(hour, events);
            }
            if self.config.spike_protection {
                spike_of(state, g.project_id, minute).add(events);
            }
        }
        let u = state
            .usage
            .entry((g.project_id, hour * HOUR_MS))
            .or_default();
        u.accepted = u.accepted.saturating_add_signed(events);
    }

    fn active_limits(&self, state: &mut State, g: &Grant, now_ms: i64) -> Option<Limited> {
        let minute = now_ms.div_euclid(MINUTE_MS);
        let hour = now_ms.div_euclid(HOUR_MS);
        let mut limits = Vec::new();
        for ScopeLimit {
            scope,
            per_minute,
            per_hour,
            name: scope_name,
            reason,
        } in self.scopes(g)
        {
            let Some(counter) = state.counters.get(&scope) else {
                continue;
            };
            if per_hour.is_some_and(|l| counter.hour.count_at(hour) >= l) {
                limits.push(ActiveLimit {
                    retry_after_secs: secs_until((hour + 1) * HOUR_MS, now_ms),
                    scope: scope_name,
                    reason,
                    refusal: Refusal::OverQuota,
                });
            }
            if per_minute.is_some_and(|l| counter.minute.count_at(minute) >= l) {
                limits.push(ActiveLimit {
                    retry_after_secs: secs_until((minute + 1) * MINUTE_MS, now_ms),
                    scope: scope_name,
                    reason,
                    refusal: Refusal::RateLimited,
                });
            }
        }
        if self.config.spike_protection {
            let spike = spike_of(state, g.project_id, minute);
            let allowance =
                spike.allowance(self.config.spike_factor, self.config.spike_floor_per_minute);
            if spike.exhausted(allowance, now_ms) {
                limits.push(ActiveLimit {
                    retry_after_secs: secs_until((minute + 1) * MINUTE_MS, now_ms),
                    scope: "project",
                    reason: "spike_protection",
                    refusal: Refusal::SpikeProtected,
                });
            }
        }
        if limits.is_empty() {
            return None;
        }
        limits.sort_by_key(|l| std::cmp::Reverse(l.retry_after_secs));
        Some(Limited { limits })
    }

    /// Counts `events` refused from a project.
    pub fn refuse(&self, project_id: ProjectId, refusal: Refusal, events: u64, now_ms: i64) {
        let hour_ms = now_ms.div_euclid(HOUR_MS) * HOUR_MS;
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        count_refusal(&mut state, project_id, refusal, events, hour_ms);
    }

    /// The usage counted since the last call: (project, hour start ms, counts).
    pub fn take_usage(&self) -> Vec<(ProjectId, i64, UsageCounts)> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state
            .usage
            .drain()
            .filter(|(_, u)| *u != UsageCounts::default())
            .map(|((p, h), u)| (p, h, u))
            .collect()
    }

    /// Puts back usage that could not be written, so it is written next time.
    pub fn restore_usage(&self, rows: Vec<(ProjectId, i64, UsageCounts)>) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        for (p, h, u) in rows {
            state.usage.entry((p, h)).or_default().add(&u);
        }
    }

    /// Projects spike protection throttles now.
    pub fn spikes(&self, now_ms: i64) -> Vec<(ProjectId, SpikeState)> {
        let minute = now_ms.div_euclid(MINUTE_MS);
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let (factor, floor) = (self.config.spike_factor, self.config.spike_floor_per_minute);
        let mut out: Vec<(ProjectId, SpikeState)> = state
            .spikes
            .iter_mut()
            .filter_map(|(p, s)| {
                s.roll(minute);
                s.since_ms().map(|since_ms| {
                    (
                        *p,
                        SpikeState {
                            since_ms,
                            limit_per_minute: s.allowance(factor, floor),
                        },
                    )
                })
            })
            .collect();
        out.sort_by_key(|(p, _)| *p);
        out
    }
}

fn count_refusal(
    state: &mut State,
    project_id: ProjectId,
    refusal: Refusal,
    events: u64,
    hour_ms: i64,
) {
    let u = state.usage.entry((project_id, hour_ms)).or_default();
    match refusal {
        Refusal::RateLimited => u.rate_limited += events,
        Refusal::OverQuota => u.over_quota += events,
        Refusal::SpikeProtected => u.spike_protected += events,
    }
}

fn spike_of(state: &mut State, project_id: ProjectId, minute: i64) -> &mut Spike {
    let seed = state.seeds.get(&project_id).copied().unwrap_or(0.0);
    let spike = state
        .spikes
        .entry(project_id)
        .or_insert_with(|| Spike::new(seed, minute));
    spike.roll(minute);
    spike
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant() -> Grant {
        Grant {
            key_id: 1,
            project_id: ProjectId(2),
            org_id: OrgId(3),
            key_limits: RateLimit::default(),
            project_limits: RateLimit::default(),
        }
    }

    fn config() -> QuotaConfig {
        QuotaConfig {
            spike_protection: false,
            ..QuotaConfig::default()
        }
    }

    /// 10 s into a minute, 20 min 10 s into an hour.
    const T: i64 = 1_700_000_400_000 + 10_000;

    #[test]
    fn unlimited_by_default() {
        let q = Quotas::new(config(), &[]);
        q.admit(&grant(), 1_000_000, T).unwrap();
        assert_eq!(q.check(&grant(), T), None);
    }

    #[test]
    fn key_minute_limit_refuses_until_the_minute_ends() {
        let q = Quotas::new(
            QuotaConfig {
                key_events_per_minute: 2,
                ..config()
            },
            &[],
        );
        q.admit(&grant(), 1, T).unwrap();
        assert_eq!(q.check(&grant(), T), None);
        q.admit(&grant(), 1, T).unwrap();
        let l = q.check(&grant(), T).expect("limited");
        assert_eq!(l.retry_after_secs(), 50);
        assert_eq!(l.header_value(), "50:error;default;security:key:key_quota");
        assert_eq!(l.refusal(), Refusal::RateLimited);
        assert_eq!(q.check(&grant(), T + 50_000), None, "a new minute");
    }

    #[test]
    fn overrides_beat_defaults_and_zero_is_unlimited() {
        let q = Quotas::new(
            QuotaConfig {
                project_events_per_minute: 1,
                ..config()
            },
            &[],
        );
        let mut g = grant();
        g.project_limits.per_minute = Some(0);
        q.admit(&g, 5, T).unwrap();
        assert_eq!(q.check(&g, T), None);
        g.project_limits.per_minute = Some(5);
        assert!(q.check(&g, T).is_some());
    }

    #[test]
    fn hour_quota_is_reported_with_the_longest_retry_first() {
        let q = Quotas::new(
            QuotaConfig {
                project_events_per_hour: 3,
                global_events_per_minute: 3,
                ..config()
            },
            &[],
        );
        q.admit(&grant(), 3, T).unwrap();
        let l = q.check(&grant(), T).unwrap();
        assert_eq!(l.retry_after_secs(), 2_390);
        assert_eq!(l.refusal(), Refusal::OverQuota);
        assert_eq!(
            l.header_value(),
            "2390:error;default;security:project:project_quota, 50:error;default;security:organization:global_quota"
        );
    }

    #[test]
    fn spike_protection_throttles_above_the_floor_and_reports_it() {
        let q = Quotas::new(
            QuotaConfig {
                spike_protection: true,
                spike_factor: 10,
                spike_floor_per_minute: 100,
                ..config()
            },
            &[(ProjectId(2), 1440)], // one event a minute over the last day
        );
        q.admit(&grant(), 99, T).unwrap();
        assert_eq!(q.check(&grant(), T), None);
        q.admit(&grant(), 1, T).unwrap();
        let l = q.check(&grant(), T).unwrap();
        assert_eq!(l.refusal(), Refusal::SpikeProtected);
        assert_eq!(q.spikes(T)[0].0, ProjectId(2));
        assert_eq!(q.spikes(T)[0].1.since_ms, T);
        assert_eq!(q.spikes(T + 60_000), vec![(ProjectId(2), q.spikes(T)[0].1)]);
        assert!(q.spikes(T + 120_000).is_empty(), "a calm minute ends it");
    }

    #[test]
    fn admission_is_atomic_and_can_be_taken_back() {
        let q = Quotas::new(
            QuotaConfig {
                key_events_per_minute: 2,
                ..config()
            },
            &[],
        );
        q.admit(&grant(), 2, T).unwrap();
        let refused = q.admit(&grant(), 1, T).unwrap_err();
        assert_eq!(refused.refusal(), Refusal::RateLimited);
        q.release(&grant(), 1, T);
        q.admit(&grant(), 1, T).unwrap();
        assert!(
            q.admit(&grant(), 0, T).is_ok(),
            "nothing to count is never refused"
        );
        let (_, _, u) = q.take_usage()[0];
        assert_eq!((u.accepted, u.rate_limited), (2, 1));
    }

    #[test]
    fn usage_adds_up_per_project_hour_and_kind() {
        let q = Quotas::new(config(), &[]);
        q.admit(&grant(), 3, T).unwrap();
        q.refuse(ProjectId(2), Refusal::RateLimited, 2, T);
        q.refuse(ProjectId(2), Refusal::SpikeProtected, 1, T);
        let rows = q.take_usage();
        assert_eq!(rows.len(), 1);
        let (p, h, u) = rows[0];
        assert_eq!((p, h), (ProjectId(2), T.div_euclid(HOUR_MS) * HOUR_MS));
        assert_eq!((u.accepted, u.rate_limited, u.spike_protected), (3, 2, 1));
        assert!(q.take_usage().is_empty());
        q.restore_usage(rows);
        assert_eq!(q.take_usage().len(), 1);
    }
}
