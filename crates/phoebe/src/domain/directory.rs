//! Who and what Phoebe serves: organizations, projects, their DSN keys and limits, users with
//! their roles, and dashboard sessions.

use super::ids::{OrgId, ProjectId, PublicKey, UserId};

/// An organization.
#[derive(Debug, Clone, PartialEq)]
pub struct Org {
    /// Database id.
    pub id: OrgId,
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
    pub id: ProjectId,
    /// Owning organization.
    pub org_id: OrgId,
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

/// A DSN key of a project.
#[derive(Debug, Clone, PartialEq)]
pub struct ProjectKey {
    /// Database id.
    pub id: i64,
    /// The project it sends to.
    pub project_id: ProjectId,
    /// 32 lowercase hex characters.
    pub public_key: PublicKey,
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
    pub id: UserId,
    /// Login name.
    pub login: String,
    /// argon2 PHC string.
    pub password_hash: String,
    /// Disabled users cannot log in and their tokens stop working.
    pub is_active: bool,
    /// Where their email goes (alerts to a project's members).
    pub email: Option<String>,
}

/// What a member of an organization may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Manages users, and everything a member does.
    Owner,
    /// Reads and triages issues, manages projects and keys.
    Member,
}

impl Role {
    /// Database and command-line name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Member => "member",
        }
    }

    /// Parses a name; the error says which names exist.
    pub fn parse(s: &str) -> Result<Role, String> {
        match s {
            "owner" => Ok(Role::Owner),
            "member" => Ok(Role::Member),
            _ => Err(format!(
                "unknown role {s:?}: use owner (manages users) or member"
            )),
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A live dashboard session.
#[derive(Debug, Clone)]
pub struct Session {
    /// Whose it is.
    pub user: User,
    /// The token every form of this session must carry.
    pub csrf: String,
}
