//! Storage: one interface ([`Store`]) for everything Phoebe keeps, so ingest, digest, the API and
//! the CLI never see SQL. The SQLite implementation lives in [`sqlite`]; a PostgreSQL one will
//! sit beside it behind the same trait.
//!
//! Architecture invariant: only this module contains SQL.

pub mod sqlite;
mod types;

pub use types::*;

use thiserror::Error;

/// What can go wrong in storage.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The thing asked for does not exist.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A unique name is taken.
    #[error("{0} already exists")]
    Conflict(String),
    /// The request makes no sense (e.g. an empty slug).
    #[error("{0}")]
    Invalid(String),
    /// The database failed.
    #[error("database error: {0}")]
    Database(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Database(e.to_string())
    }
}

/// Result of a store operation.
pub type StoreResult<T> = Result<T, StoreError>;

/// Everything Phoebe keeps. Methods block: call them from a blocking thread
/// (`tokio::task::spawn_blocking`), never directly on the async runtime.
pub trait Store: Send + Sync + 'static {
    // --- digest ---
    /// The highest inbox id already digested (the exactly-once watermark).
    fn digest_watermark(&self) -> StoreResult<i64>;
    /// The newest zstd dictionary for event payloads, if one was trained.
    fn latest_zstd_dict(&self) -> StoreResult<Option<(u32, Vec<u8>)>>;
    /// Writes one digested batch in one transaction, moving the watermark with it.
    fn apply_digest_batch(&self, batch: &DigestBatch) -> StoreResult<BatchOutcome>;

    // --- organizations, projects, keys ---
    /// Creates an organization.
    fn create_org(&self, slug: &str, name: &str) -> StoreResult<Org>;
    /// All organizations.
    fn orgs(&self) -> StoreResult<Vec<Org>>;
    /// Creates a project with one active DSN key.
    fn create_project(
        &self,
        org_id: i64,
        slug: &str,
        name: &str,
        platform: Option<&str>,
    ) -> StoreResult<(Project, ProjectKey)>;
    /// Projects, in creation order.
    fn projects(&self) -> StoreResult<Vec<Project>>;
    /// One project by organization slug and project slug (or numeric id).
    fn project_by_slug(&self, org_slug: &str, project: &str) -> StoreResult<Project>;
    /// One project by id.
    fn project(&self, id: i64) -> StoreResult<Project>;
    /// The DSN keys of a project.
    /// Renames a project (its display name; the slug stays).
    fn rename_project(&self, id: i64, name: &str) -> StoreResult<Project>;
    /// Deletes a project and everything it holds.
    fn delete_project(&self, id: i64) -> StoreResult<()>;
    /// Unresolved issues per project: (project id, count).
    fn unresolved_counts(&self) -> StoreResult<Vec<(i64, i64)>>;
    fn project_keys(&self, project_id: i64) -> StoreResult<Vec<ProjectKey>>;
    /// Every key, for the ingest key cache.
    fn all_keys(&self) -> StoreResult<Vec<ProjectKey>>;
    /// One key by its public part.
    fn key_by_public(&self, public_key: &str) -> StoreResult<Option<ProjectKey>>;
    /// Adds a DSN key to a project.
    fn create_key(&self, project_id: i64, label: &str) -> StoreResult<ProjectKey>;
    /// Enables or disables a key; disabled keys are refused with 403.
    fn set_key_active(&self, public_key: &str, active: bool) -> StoreResult<ProjectKey>;

    // --- quotas, retention settings and usage ---
    /// Sets a project's rate-limit overrides.
    fn set_project_limits(&self, project_id: i64, limits: RateLimit) -> StoreResult<()>;
    /// Sets a project's retention overrides.
    fn set_project_retention(&self, project_id: i64, r: RetentionOverride) -> StoreResult<()>;
    /// Sets a DSN key's rate-limit overrides.
    fn set_key_limits(&self, public_key: &str, limits: RateLimit) -> StoreResult<()>;
    /// Adds the door's hourly counts (project, hour start ms, counts) and records which projects
    /// spike protection throttles now (every other project is marked calm).
    fn record_door_usage(
        &self,
        rows: &[(i64, i64, UsageCounts)],
        spikes: &[(i64, SpikeState)],
    ) -> StoreResult<()>;
    /// A project's hourly usage since `since_ms`, oldest first.
    fn usage(&self, project_id: i64, since_ms: i64) -> StoreResult<Vec<(i64, UsageCounts)>>;
    /// Events accepted per project since `since_ms`.
    fn accepted_since(&self, since_ms: i64) -> StoreResult<Vec<(i64, u64)>>;
    /// What a project's SDKs reported dropping since `since_ms`, newest day first.
    fn client_discards(&self, project_id: i64, since_ms: i64) -> StoreResult<Vec<ClientDiscard>>;

    /// One small eviction step under `policy` (see [`Eviction::more`]).
    fn evict_step(&self, policy: &RetentionPolicy, now_ms: i64) -> StoreResult<Eviction>;
    /// Hands some free pages back to the file system; returns how many (0 when none are left).
    fn vacuum_step(&self) -> StoreResult<u64>;
    /// Bytes the database uses, and bytes free inside its file.
    fn space(&self) -> StoreResult<(u64, u64)>;

    // --- settings the server records for the CLI ---
    /// A recorded value (e.g. the URL the server last listened on).
    fn meta(&self, key: &str) -> StoreResult<Option<String>>;
    /// Records a value.
    fn set_meta(&self, key: &str, value: &str) -> StoreResult<()>;

    // --- users and tokens ---
    /// Creates a user with an already hashed password and makes them a member of `org_id`.
    fn create_user(
        &self,
        org_id: i64,
        login: &str,
        password_hash: &str,
        role: &str,
    ) -> StoreResult<User>;
    /// Every user's role: (user id, role).
    fn roles(&self) -> StoreResult<Vec<(i64, String)>>;
    /// One user by login.
    fn user_by_login(&self, login: &str) -> StoreResult<User>;
    /// Every user, in creation order.
    fn users(&self) -> StoreResult<Vec<User>>;
    /// Enables or disables a user (disabled users' tokens stop working).
    fn set_user_active(&self, login: &str, active: bool) -> StoreResult<User>;
    /// Replaces a user's password hash.
    fn set_password_hash(&self, login: &str, hash: &str) -> StoreResult<User>;
    /// Stores a new API token (by its hash) for a user.
    fn create_token(&self, user_id: i64, token_hash: &str, label: &str) -> StoreResult<()>;
    /// The user a token belongs to, if the token is valid.
    fn user_by_token(&self, token_hash: &str) -> StoreResult<Option<User>>;
    /// Records a dashboard session (by the hash of its secret) until `expires_ms`.
    fn create_session(
        &self,
        id_hash: &str,
        user_id: i64,
        csrf: &str,
        expires_ms: i64,
    ) -> StoreResult<()>;
    /// The live session with this hash, if its user is still active.
    fn session(&self, id_hash: &str) -> StoreResult<Option<Session>>;
    /// Ends one session.
    fn delete_session(&self, id_hash: &str) -> StoreResult<()>;
    /// Ends every session of a user, except the one hashed `keep`.
    fn delete_sessions_of(&self, user_id: i64, keep: Option<&str>) -> StoreResult<()>;

    // --- issues and events ---
    /// A page of issues matching a query.
    fn issues(&self, query: &IssueQuery) -> StoreResult<Vec<Issue>>;
    /// One issue.
    fn issue(&self, id: i64) -> StoreResult<Issue>;
    /// Hourly event counts of issues since `since_ms` (issue id, hour start in ms, count).
    fn issue_hourly(&self, issue_ids: &[i64], since_ms: i64) -> StoreResult<Vec<(i64, i64, i64)>>;
    /// Tag value counts of an issue, most frequent first, at most `per_key` values per key.
    fn issue_tags(&self, issue_id: i64, per_key: usize) -> StoreResult<Vec<TagCount>>;
    /// The grouping explanation recorded for a fingerprint hash.
    fn grouping(&self, project_id: i64, hash: &str) -> StoreResult<Option<String>>;
    /// Changes an issue's status.
    /// Applies a person's change to an issue and records it in the activity log.
    fn triage(&self, id: i64, user_id: Option<i64>, change: &Triage) -> StoreResult<Issue>;
    /// An issue's activity, newest first.
    fn activity(&self, issue_id: i64) -> StoreResult<Vec<Activity>>;
    /// Deletes issues with their events; returns how many existed.
    fn delete_issues(&self, ids: &[i64]) -> StoreResult<u64>;
    /// Merges issues of one project into `target`.
    fn merge_issues(
        &self,
        target: i64,
        sources: &[i64],
        user_id: Option<i64>,
    ) -> StoreResult<Issue>;
    /// Events of an issue, newest first, from a cursor position (timestamp ms, row id).
    fn issue_events(
        &self,
        issue_id: i64,
        cursor: Option<KeysetCursor>,
        limit: i64,
    ) -> StoreResult<Vec<StoredEvent>>;
    /// The newest (or oldest) stored event of an issue.
    fn issue_event_edge(&self, issue_id: i64, newest: bool) -> StoreResult<Option<StoredEvent>>;
    /// One event by its id within a project.
    fn event(&self, project_id: i64, event_id: uuid::Uuid) -> StoreResult<Option<StoredEvent>>;
    /// Database size in bytes, for the benchmark and `/metrics`.
    fn size_bytes(&self) -> StoreResult<u64>;
    /// Cheap liveness check of the database.
    fn ping(&self) -> StoreResult<()>;
    /// Hands cached database pages back (called once digest has been idle a while), so a
    /// server between bursts does not keep a burst's memory. Best effort: a connection in use
    /// keeps its cache.
    fn release_memory(&self) -> StoreResult<()>;
}
