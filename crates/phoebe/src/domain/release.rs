//! Releases and deploys. A release is a version string within an organization: SDK events
//! name it (and so create it in their project), and `sentry-cli` or the API create, finalize,
//! archive and delete it and record its deploys to environments.

use super::ids::{DeployId, OrgId, ProjectId};

/// Longest version string, as Sentry allows.
pub const MAX_VERSION_LEN: usize = 200;

/// Checks a version string the way Sentry does: not empty, at most 200 characters, no
/// newline, tab or slash, and not `.`, `..` or `latest`.
pub fn check_version(version: &str) -> Result<(), String> {
    if version.trim().is_empty() {
        return Err("a release needs a version".into());
    }
    if version.chars().count() > MAX_VERSION_LEN {
        return Err(format!(
            "a version has at most {MAX_VERSION_LEN} characters"
        ));
    }
    if version.contains(['\n', '\r', '\t', '/', '\\']) {
        return Err(format!(
            "{version:?} is not a valid version: no slashes, tabs or line breaks"
        ));
    }
    if matches!(version, "." | ".." | "latest") {
        return Err(format!("{version:?} is reserved; choose another version"));
    }
    Ok(())
}

/// Whether a release is listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReleaseStatus {
    /// Listed.
    #[default]
    Open,
    /// Hidden from lists; events still count.
    Archived,
}

impl ReleaseStatus {
    /// Name in the database and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            ReleaseStatus::Open => "open",
            ReleaseStatus::Archived => "archived",
        }
    }

    /// Parses a name; the error lists the statuses there are.
    pub fn parse(s: &str) -> Result<ReleaseStatus, String> {
        match s {
            "open" => Ok(ReleaseStatus::Open),
            "archived" => Ok(ReleaseStatus::Archived),
            other => Err(format!(
                "unknown release status {other:?}: use open or archived"
            )),
        }
    }
}

/// A deploy of a release to an environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deploy {
    /// Id.
    pub id: DeployId,
    /// The release deployed.
    pub version: String,
    /// Where to: `production`, `staging` ...
    pub environment: String,
    /// A name for it, if given.
    pub name: Option<String>,
    /// A link to it (a CI run), if given.
    pub url: Option<String>,
    /// When it started, ms.
    pub started_ms: Option<i64>,
    /// When it finished, ms.
    pub finished_ms: i64,
}

/// What a new deploy says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewDeploy {
    /// Where to (required).
    pub environment: String,
    /// A name.
    pub name: Option<String>,
    /// A link.
    pub url: Option<String>,
    /// When it started, ms.
    pub started_ms: Option<i64>,
    /// When it finished, ms (default: now).
    pub finished_ms: Option<i64>,
}

/// A release of an organization, with what its projects' events say about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// Organization.
    pub org_id: OrgId,
    /// Version string.
    pub version: String,
    /// Projects it belongs to: named when it was created, or whose events carry it.
    pub projects: Vec<ProjectId>,
    /// Created (by the API, or by its first event), ms.
    pub created_ms: i64,
    /// Released ("finalized"), ms.
    pub released_ms: Option<i64>,
    /// When work on it started, ms.
    pub started_ms: Option<i64>,
    /// A link to it.
    pub url: Option<String>,
    /// Listed or archived.
    pub status: ReleaseStatus,
    /// Its first and last event, ms.
    pub first_event_ms: Option<i64>,
    /// Its last event, ms.
    pub last_event_ms: Option<i64>,
    /// Issues it introduced.
    pub new_issues: i64,
    /// Events of it.
    pub events: i64,
    /// Deploys recorded.
    pub deploy_count: i64,
    /// The newest deploy.
    pub last_deploy: Option<Deploy>,
}

/// A change to a release (what is `None` stays as it is).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReleaseChange {
    /// Projects to add it to.
    pub projects: Vec<ProjectId>,
    /// A link.
    pub url: Option<String>,
    /// Released ("finalized") at, ms.
    pub released_ms: Option<i64>,
    /// Work started at, ms.
    pub started_ms: Option<i64>,
    /// Archive or restore.
    pub status: Option<ReleaseStatus>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_checked_as_sentry_does() {
        for ok in ["1.0.0", "web@2.3.1+build.7", "abc123def"] {
            assert_eq!(check_version(ok), Ok(()));
        }
        for bad in ["", "  ", "a/b", "a\nb", ".", "..", "latest"] {
            assert!(check_version(bad).is_err(), "{bad:?}");
        }
        assert!(check_version(&"x".repeat(201)).is_err());
        for s in [ReleaseStatus::Open, ReleaseStatus::Archived] {
            assert_eq!(ReleaseStatus::parse(s.as_str()), Ok(s));
        }
    }
}
