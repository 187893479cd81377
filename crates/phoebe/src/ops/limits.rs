//! Rate limits, retention settings and usage of projects and keys: what the configuration says,
//! what a project or key overrides, and what happened to its events.

use crate::config::{Config, QuotaConfig, RetentionConfig};
use crate::domain::*;

use super::{Ops, OpsError, OpsResult, Permission};

/// The configured defaults that overrides fall back to.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// `[quotas]`.
    pub quotas: QuotaConfig,
    /// `[retention]`.
    pub retention: RetentionConfig,
}

impl Policy {
    /// The defaults the configuration sets.
    pub fn of(config: &Config) -> Policy {
        Policy {
            quotas: config.quotas.clone(),
            retention: config.retention.clone(),
        }
    }
}

/// One setting: the project's (or key's) own value, if any, and the one in force (0 = none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Setting {
    /// The override; `None` follows the configuration.
    pub own: Option<u64>,
    /// What applies.
    pub effective: u64,
}

impl Setting {
    fn new(own: Option<u64>, default: u64) -> Setting {
        Setting {
            own,
            effective: own.unwrap_or(default),
        }
    }
}

/// A project's limits as people see them.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectLimits {
    /// The project.
    pub project: Project,
    /// Events per minute.
    pub events_per_minute: Setting,
    /// Events per hour.
    pub events_per_hour: Setting,
    /// Days stored events are kept.
    pub max_age_days: Setting,
    /// Stored events kept.
    pub max_stored_events: Setting,
    /// Whether spike protection is on for this server.
    pub spike_protection: bool,
}

/// A DSN key's limits.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyLimits {
    /// The key.
    pub key: ProjectKey,
    /// Events per minute.
    pub events_per_minute: Setting,
    /// Events per hour.
    pub events_per_hour: Setting,
}

/// A change to one setting: leave it, follow the configuration again, or set it (0 = none).
pub type Change = Option<Option<u64>>;

/// Changes to a project's limits.
#[derive(Debug, Clone, Copy, Default)]
pub struct LimitChanges {
    /// Events per minute.
    pub events_per_minute: Change,
    /// Events per hour.
    pub events_per_hour: Change,
    /// Days stored events are kept.
    pub max_age_days: Change,
    /// Stored events kept.
    pub max_stored_events: Change,
}

/// What happened to a project's events over a period.
#[derive(Debug, Clone, PartialEq)]
pub struct UsageReport {
    /// The project.
    pub project: Project,
    /// Hourly rows (hour start ms), oldest first.
    pub hours: Vec<(i64, UsageCounts)>,
    /// Their sum.
    pub totals: UsageCounts,
    /// What the SDKs reported dropping, newest day first.
    pub discards: Vec<ClientDiscard>,
}

/// Largest count setting accepted (far beyond any real need, well inside SQLite's integers).
const MAX_COUNT: u64 = 1 << 40;
/// Largest age setting accepted: a hundred years.
const MAX_DAYS: u64 = 36_500;

fn check_range(what: &str, change: Change, max: u64) -> OpsResult<()> {
    match change {
        Some(Some(n)) if n > max => Err(OpsError::Invalid(format!(
            "{what} {n} is too large (at most {max}; 0 means no limit)"
        ))),
        _ => Ok(()),
    }
}

fn apply(change: Change, current: Option<u64>) -> Option<u64> {
    match change {
        None => current,
        Some(v) => v,
    }
}

/// The public part of a key given as itself or as a whole DSN. Text of another form names no
/// key of ours: not found, as for a well-formed key that does not exist.
pub fn public_key_of(key_or_dsn: &str) -> OpsResult<PublicKey> {
    let key = key_or_dsn
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split('@').next())
        .map(|k| k.split(':').next().unwrap_or(k))
        .unwrap_or(key_or_dsn);
    PublicKey::parse(key).map_err(|_| OpsError::NotFound("key"))
}

impl Ops {
    /// These operations with the configured defaults for limits and retention.
    pub fn with_policy(mut self, policy: Policy) -> Ops {
        self.policy = std::sync::Arc::new(policy);
        self
    }

    fn project_limits_of(&self, project: Project) -> ProjectLimits {
        let (q, r) = (&self.policy.quotas, &self.policy.retention);
        ProjectLimits {
            events_per_minute: Setting::new(project.limits.per_minute, q.project_events_per_minute),
            events_per_hour: Setting::new(project.limits.per_hour, q.project_events_per_hour),
            max_age_days: Setting::new(project.retention.max_age_days, r.max_age_days),
            max_stored_events: Setting::new(
                project.retention.max_stored_events,
                r.max_events_per_project,
            ),
            spike_protection: q.spike_protection,
            project,
        }
    }

    /// A project's limits.
    pub fn project_limits(&self, project: &Project) -> ProjectLimits {
        self.project_limits_of(project.clone())
    }

    /// Changes a project's limits; a running server applies rate limits within 5 seconds and
    /// retention at its next eviction pass.
    pub fn set_project_limits(
        &self,
        project: &Project,
        changes: LimitChanges,
    ) -> OpsResult<ProjectLimits> {
        self.allow(Permission::ManageProjects)?;
        check_range("events per minute", changes.events_per_minute, MAX_COUNT)?;
        check_range("events per hour", changes.events_per_hour, MAX_COUNT)?;
        check_range("max age in days", changes.max_age_days, MAX_DAYS)?;
        check_range("max stored events", changes.max_stored_events, MAX_COUNT)?;
        let limits = RateLimit {
            per_minute: apply(changes.events_per_minute, project.limits.per_minute),
            per_hour: apply(changes.events_per_hour, project.limits.per_hour),
        };
        let retention = RetentionOverride {
            max_age_days: apply(changes.max_age_days, project.retention.max_age_days),
            max_stored_events: apply(
                changes.max_stored_events,
                project.retention.max_stored_events,
            ),
        };
        if limits != project.limits {
            self.store.set_project_limits(project.id, limits)?;
        }
        if retention != project.retention {
            self.store.set_project_retention(project.id, retention)?;
        }
        Ok(self.project_limits_of(self.store.project(project.id)?))
    }

    fn key_limits_of(&self, key: ProjectKey) -> KeyLimits {
        let q = &self.policy.quotas;
        KeyLimits {
            events_per_minute: Setting::new(key.limits.per_minute, q.key_events_per_minute),
            events_per_hour: Setting::new(key.limits.per_hour, q.key_events_per_hour),
            key,
        }
    }

    /// A key's limits (by its public part or its whole DSN).
    pub fn key_limits(&self, key_or_dsn: &str) -> OpsResult<KeyLimits> {
        self.allow(Permission::Read)?;
        let key = self
            .store
            .key_by_public(&public_key_of(key_or_dsn)?)?
            .ok_or(OpsError::NotFound("key"))?;
        Ok(self.key_limits_of(key))
    }

    /// Changes a key's rate limits.
    pub fn set_key_limits(
        &self,
        key_or_dsn: &str,
        per_minute: Change,
        per_hour: Change,
    ) -> OpsResult<KeyLimits> {
        self.allow(Permission::ManageProjects)?;
        check_range("events per minute", per_minute, MAX_COUNT)?;
        check_range("events per hour", per_hour, MAX_COUNT)?;
        let current = self.key_limits(key_or_dsn)?.key;
        let limits = RateLimit {
            per_minute: apply(per_minute, current.limits.per_minute),
            per_hour: apply(per_hour, current.limits.per_hour),
        };
        self.store.set_key_limits(&current.public_key, limits)?;
        self.key_limits(current.public_key.as_str())
    }

    /// What happened to a project's events since `since_ms`.
    pub fn usage(&self, project: &Project, since_ms: i64) -> OpsResult<UsageReport> {
        self.allow(Permission::Read)?;
        let hours = self.store.usage(project.id, since_ms)?;
        let mut totals = UsageCounts::default();
        for (_, u) in &hours {
            totals.add(u);
        }
        let day_start = since_ms.div_euclid(86_400_000) * 86_400_000;
        let discards = self.store.client_discards(project.id, day_start)?;
        Ok(UsageReport {
            project: project.clone(),
            hours,
            totals,
            discards,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_key_from_dsn_or_key() {
        const K: &str = "0123456789abcdef0123456789abcdef";
        let key = |s: &str| public_key_of(s).map(|k| k.as_str().to_string()).ok();
        assert_eq!(key(K).as_deref(), Some(K));
        assert_eq!(
            key(&format!("http://{K}@127.0.0.1:8000/1")).as_deref(),
            Some(K)
        );
        assert_eq!(key(&format!("https://{K}:secret@h/1")).as_deref(), Some(K));
        assert!(matches!(
            public_key_of("abc"),
            Err(OpsError::NotFound("key"))
        ));
    }

    #[test]
    fn changes_keep_set_or_clear() {
        assert_eq!(apply(None, Some(3)), Some(3));
        assert_eq!(apply(Some(None), Some(3)), None);
        assert_eq!(apply(Some(Some(0)), None), Some(0));
    }
}
