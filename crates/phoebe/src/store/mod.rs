//! Storage: small interfaces by client ([`DigestWriter`], [`Directory`], [`IssueStore`],
//! [`UsageStore`], [`Maintenance`]; [`Store`] is all of them) and [`open`], which picks the
//! backend at run time. Backends persist what the domain decides; they decide nothing.
//!
//! Architecture invariant: only the backend modules (`sqlite`, later `postgres`) contain SQL or
//! name a database crate, and nothing outside `store` names a backend.

#[cfg(test)]
mod conformance;
mod sqlite;

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;

use crate::config::Config;

use crate::domain::alerts::*;
use crate::domain::rules::RecordedEvent;
use crate::domain::*;

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

/// Result of a store operation.
pub type StoreResult<T> = Result<T, StoreError>;

/// Opens (creating and migrating) the database the configuration names; errors say what to check.
pub fn open(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    std::fs::create_dir_all(&config.data_dir).with_context(|| {
        format!(
            "creating the data folder {} (set --data-dir or PHOEBE_DATA_DIR to a writable folder)",
            config.data_dir.display()
        )
    })?;
    let path = config.database_path();
    let store = sqlite::SqliteStore::open(&path)
        .with_context(|| format!("opening the database {}", path.display()))?;
    Ok(Arc::new(store))
}

/// Opens the inbox the configuration names (SQLite keeps it in a file of its own, so ingest's
/// commits never wait behind a digest transaction). `watermark` is the store's
/// [`DigestWriter::digest_watermark`]: what it acknowledged is never claimed again.
pub fn open_inbox(config: &Config, watermark: i64) -> anyhow::Result<Arc<dyn InboxStore>> {
    let path = config.inbox_path();
    let inbox = sqlite::inbox::SqliteInbox::open(&path, watermark, &config.inbox.synchronous)
        .with_context(|| format!("opening the inbox {}", path.display()))?;
    Ok(Arc::new(inbox))
}

/// Opens the embedded inbox in `dir` with `synchronous = full`: for tests.
pub fn open_inbox_in(dir: &Path, watermark: i64) -> StoreResult<Arc<dyn InboxStore>> {
    Ok(Arc::new(sqlite::inbox::SqliteInbox::open(
        &dir.join(crate::config::INBOX_FILE),
        watermark,
        "full",
    )?))
}

/// Opens the embedded database in `dir` (which must exist): for tests and tools that have a
/// folder, not a configuration.
pub fn open_in(dir: &Path) -> StoreResult<Arc<dyn Store>> {
    Ok(Arc::new(sqlite::SqliteStore::open(
        &dir.join(crate::config::DATABASE_FILE),
    )?))
}

/// Everything Phoebe keeps, as one handle: the interfaces below, each for the clients that need
/// it. Methods block: call them from a blocking thread (`tokio::task::spawn_blocking`), never
/// directly on the async runtime.
pub trait Store:
    DigestWriter
    + Directory
    + IssueStore
    + UsageStore
    + Maintenance
    + AlertStore
    + ReleaseStore
    + ArtifactStore
{
}

impl<
        T: DigestWriter
            + Directory
            + IssueStore
            + UsageStore
            + Maintenance
            + AlertStore
            + ReleaseStore
            + ArtifactStore,
    > Store for T
{
}

/// Digest's side: the exactly-once watermark, the payload dictionary, writing a batch, and the
/// domain events batches recorded.
pub trait DigestWriter: Send + Sync + 'static {
    /// The highest inbox id already digested (the exactly-once watermark).
    fn digest_watermark(&self) -> StoreResult<i64>;
    /// The newest zstd dictionary for event payloads, if one was trained.
    fn latest_zstd_dict(&self) -> StoreResult<Option<(u32, Vec<u8>)>>;
    /// Writes one digested batch in one transaction, moving the watermark with it.
    fn apply_digest_batch(&self, batch: &DigestBatch) -> StoreResult<BatchOutcome>;
    /// Domain events recorded after `after_id`, oldest first, at most `limit`.
    fn domain_events(&self, after_id: i64, limit: i64) -> StoreResult<Vec<RecordedEvent>>;
    /// Hands cached database pages back (called once digest has been idle a while), so a
    /// server between bursts does not keep a burst's memory. Best effort: a connection in use
    /// keeps its cache.
    fn release_memory(&self) -> StoreResult<()>;
}

/// Who and what Phoebe serves: organizations, projects, DSN keys, users, roles, API tokens,
/// dashboard sessions, and a few recorded settings.
pub trait Directory: Send + Sync + 'static {
    /// Creates an organization.
    fn create_org(&self, slug: &str, name: &str) -> StoreResult<Org>;
    /// All organizations.
    fn orgs(&self) -> StoreResult<Vec<Org>>;
    /// Creates a project with one active DSN key.
    fn create_project(
        &self,
        org_id: OrgId,
        slug: &str,
        name: &str,
        platform: Option<&str>,
    ) -> StoreResult<(Project, ProjectKey)>;
    /// Projects, in creation order.
    fn projects(&self) -> StoreResult<Vec<Project>>;
    /// One project by organization slug and project slug (or numeric id).
    fn project_by_slug(&self, org_slug: &str, project: &str) -> StoreResult<Project>;
    /// One project by id.
    fn project(&self, id: ProjectId) -> StoreResult<Project>;
    /// Renames a project (its display name; the slug stays).
    fn rename_project(&self, id: ProjectId, name: &str) -> StoreResult<Project>;
    /// Deletes a project and everything it holds.
    fn delete_project(&self, id: ProjectId) -> StoreResult<()>;
    /// The DSN keys of a project.
    fn project_keys(&self, project_id: ProjectId) -> StoreResult<Vec<ProjectKey>>;
    /// Every key, for the ingest key cache.
    fn all_keys(&self) -> StoreResult<Vec<ProjectKey>>;
    /// One key by its public part.
    fn key_by_public(&self, public_key: &PublicKey) -> StoreResult<Option<ProjectKey>>;
    /// Adds a DSN key to a project.
    fn create_key(&self, project_id: ProjectId, label: &str) -> StoreResult<ProjectKey>;
    /// Enables or disables a key; disabled keys are refused with 403.
    fn set_key_active(&self, public_key: &PublicKey, active: bool) -> StoreResult<ProjectKey>;
    /// A recorded value (e.g. the URL the server last listened on).
    fn meta(&self, key: &str) -> StoreResult<Option<String>>;
    /// Records a value.
    fn set_meta(&self, key: &str, value: &str) -> StoreResult<()>;
    /// Creates a user with an already hashed password and makes them a member of `org_id`.
    fn create_user(
        &self,
        org_id: OrgId,
        login: &str,
        password_hash: &str,
        role: Role,
    ) -> StoreResult<User>;
    /// Every user's role: (user id, role).
    fn roles(&self) -> StoreResult<Vec<(UserId, Role)>>;
    /// One user by login.
    fn user_by_login(&self, login: &str) -> StoreResult<User>;
    /// Every user, in creation order.
    fn users(&self) -> StoreResult<Vec<User>>;
    /// Enables or disables a user (disabled users' tokens stop working).
    fn set_user_active(&self, login: &str, active: bool) -> StoreResult<User>;
    /// Replaces a user's password hash.
    fn set_password_hash(&self, login: &str, hash: &str) -> StoreResult<User>;
    /// Sets or clears a user's email address.
    fn set_user_email(&self, login: &str, email: Option<&str>) -> StoreResult<User>;
    /// The addresses of an organization's active members (their email, or a login that is one).
    fn member_emails(&self, org_id: OrgId) -> StoreResult<Vec<String>>;
    /// Stores a new API token (by its hash) for a user.
    fn create_token(&self, user_id: UserId, token_hash: &str, label: &str) -> StoreResult<()>;
    /// The user a token belongs to, if the token is valid.
    fn user_by_token(&self, token_hash: &str) -> StoreResult<Option<User>>;
    /// Records a dashboard session (by the hash of its secret) until `expires_ms`.
    fn create_session(
        &self,
        id_hash: &str,
        user_id: UserId,
        csrf: &str,
        expires_ms: i64,
    ) -> StoreResult<()>;
    /// The live session with this hash, if its user is still active.
    fn session(&self, id_hash: &str) -> StoreResult<Option<Session>>;
    /// Ends one session.
    fn delete_session(&self, id_hash: &str) -> StoreResult<()>;
    /// Ends every session of a user, except the one hashed `keep`.
    fn delete_sessions_of(&self, user_id: UserId, keep: Option<&str>) -> StoreResult<()>;
}

/// Issues and events: the read models people query, and the triage they apply.
pub trait IssueStore: Send + Sync + 'static {
    /// Unresolved issues per project: (project id, count).
    fn unresolved_counts(&self) -> StoreResult<Vec<(ProjectId, i64)>>;
    /// A page of issues matching a query.
    fn issues(&self, query: &IssueQuery) -> StoreResult<Vec<Issue>>;
    /// One issue.
    fn issue(&self, id: IssueId) -> StoreResult<Issue>;
    /// Hourly event counts of issues since `since_ms` (issue id, hour start in ms, count).
    fn issue_hourly(
        &self,
        issue_ids: &[IssueId],
        since_ms: i64,
    ) -> StoreResult<Vec<(IssueId, i64, i64)>>;
    /// Tag value counts of an issue, most frequent first, at most `per_key` values per key.
    fn issue_tags(&self, issue_id: IssueId, per_key: usize) -> StoreResult<Vec<TagCount>>;
    /// The grouping explanation recorded for a fingerprint hash.
    fn grouping(&self, project_id: ProjectId, hash: &str) -> StoreResult<Option<String>>;
    /// Changes an issue's status.
    /// Applies a person's change to an issue and records it in the activity log.
    fn triage(&self, id: IssueId, user_id: Option<UserId>, change: &Triage) -> StoreResult<Issue>;
    /// An issue's activity, newest first.
    fn activity(&self, issue_id: IssueId) -> StoreResult<Vec<Activity>>;
    /// Deletes issues with their events; returns how many existed.
    fn delete_issues(&self, ids: &[IssueId]) -> StoreResult<u64>;
    /// Merges issues of one project into `target`.
    fn merge_issues(
        &self,
        target: IssueId,
        sources: &[IssueId],
        user_id: Option<UserId>,
    ) -> StoreResult<Issue>;
    /// Events of an issue, newest first, from a cursor position (timestamp ms, row id).
    fn issue_events(
        &self,
        issue_id: IssueId,
        cursor: Option<KeysetCursor>,
        limit: i64,
    ) -> StoreResult<Vec<StoredEvent>>;
    /// A project's events, the most recently stored first, from a cursor position (row id,
    /// row id).
    fn project_events(
        &self,
        project_id: ProjectId,
        cursor: Option<KeysetCursor>,
        limit: i64,
    ) -> StoreResult<Vec<StoredEvent>>;
    /// The newest (or oldest) stored event of an issue.
    fn issue_event_edge(&self, issue_id: IssueId, newest: bool)
        -> StoreResult<Option<StoredEvent>>;
    /// One event by its id within a project.
    fn event(
        &self,
        project_id: ProjectId,
        event_id: uuid::Uuid,
    ) -> StoreResult<Option<StoredEvent>>;
}

/// Limits and accounting: rate-limit and retention overrides, hourly usage, client reports.
pub trait UsageStore: Send + Sync + 'static {
    /// Sets a project's rate-limit overrides.
    fn set_project_limits(&self, project_id: ProjectId, limits: RateLimit) -> StoreResult<()>;
    /// Sets a project's retention overrides.
    fn set_project_retention(&self, project_id: ProjectId, r: RetentionOverride)
        -> StoreResult<()>;
    /// Sets a DSN key's rate-limit overrides.
    fn set_key_limits(&self, public_key: &PublicKey, limits: RateLimit) -> StoreResult<()>;
    /// Adds the door's hourly counts (project, hour start ms, counts) and records which projects
    /// spike protection throttles now (every other project is marked calm).
    fn record_door_usage(
        &self,
        rows: &[(ProjectId, i64, UsageCounts)],
        spikes: &[(ProjectId, SpikeState)],
    ) -> StoreResult<()>;
    /// A project's hourly usage since `since_ms`, oldest first.
    fn usage(&self, project_id: ProjectId, since_ms: i64) -> StoreResult<Vec<(i64, UsageCounts)>>;
    /// Events accepted per project since `since_ms`.
    fn accepted_since(&self, since_ms: i64) -> StoreResult<Vec<(ProjectId, u64)>>;
    /// What a project's SDKs reported dropping since `since_ms`, newest day first.
    fn client_discards(
        &self,
        project_id: ProjectId,
        since_ms: i64,
    ) -> StoreResult<Vec<ClientDiscard>>;
}

/// Keeping the database healthy: eviction steps, giving space back, size and liveness.
pub trait Maintenance: Send + Sync + 'static {
    /// One small eviction step under `policy` (see [`Eviction::more`]).
    fn evict_step(&self, policy: &RetentionPolicy, now_ms: i64) -> StoreResult<Eviction>;
    /// Hands some free pages back to the file system; returns how many (0 when none are left).
    fn vacuum_step(&self) -> StoreResult<u64>;
    /// Bytes the database uses, and bytes free inside its file.
    fn space(&self) -> StoreResult<(u64, u64)>;
    /// Database size in bytes, for the benchmark and `/metrics`.
    fn size_bytes(&self) -> StoreResult<u64>;
    /// Cheap liveness check of the database.
    fn ping(&self) -> StoreResult<()>;
}

/// The durable queue between ingest and digest, as a backend keeps it. The contract that makes
/// "acknowledged means durable" and "every accepted event is digested exactly once" hold, on
/// one node or several (the conformance suite tests each clause):
///
/// 1. [`append`](InboxStore::append) returns only once its entries are committed; ingest
///    answers `200` after that. Ids are positive, increase in commit order, are never reused,
///    and stay above every id a store ever acknowledged.
/// 2. [`claim`](InboxStore::claim) hands each committed entry to one claimer, oldest first.
///    SQLite: one digester per data folder, and a cursor that starts at the store's watermark.
///    PostgreSQL: rows taken with `FOR UPDATE SKIP LOCKED` under a lease that a crashed node's
///    successor takes over.
/// 3. Digest acknowledges an entry by writing its results with its id
///    ([`DigestBatch::inbox_ids`]) in one transaction ([`DigestWriter::apply_digest_batch`]).
///    An entry whose results are committed is never claimed again, even when a crash comes
///    between that commit and [`forget_through`](InboxStore::forget_through); an entry whose
///    results are not committed is claimed again after a restart.
/// 4. [`forget_through`](InboxStore::forget_through) only reclaims space: it may lag or fail
///    without breaking 1-3.
pub trait InboxStore: Send + Sync + 'static {
    /// Commits `entries` (bodies as received) and returns their ids, in order.
    fn append(&self, entries: &[&Entry]) -> StoreResult<Vec<i64>>;
    /// Up to `limit` unclaimed entries, oldest first, stopping once their bodies pass
    /// `max_bytes` (but always at least one). Bodies are left empty: [`Claimed::body_len`] says
    /// their size and [`body`](InboxStore::body) reads one.
    fn claim(&self, limit: usize, max_bytes: usize) -> StoreResult<Vec<Claimed>>;
    /// The stored body of an entry.
    fn body(&self, id: i64) -> StoreResult<bytes::Bytes>;
    /// Drops entries up to and including `id` (their results are committed); returns how many.
    fn forget_through(&self, id: i64) -> StoreResult<u64>;
    /// Entries committed and not yet forgotten.
    fn count(&self) -> StoreResult<i64>;
    /// Hands some of the space a drained backlog took back to the file system (a bounded step).
    fn shrink(&self) -> StoreResult<()>;
    /// Empties the read side's page cache (see [`DigestWriter::release_memory`]).
    fn release_memory(&self) -> StoreResult<()>;
}

/// Releases of an organization and their deploys. A release exists once the API created it or
/// an event named it; deleting it forgets what was said about it and its counts, not its events.
pub trait ReleaseStore: Send + Sync + 'static {
    /// Creates a release unless it exists, then applies `change`; says whether it was new.
    fn upsert_release(
        &self,
        org_id: OrgId,
        version: &str,
        change: &ReleaseChange,
        now_ms: i64,
    ) -> StoreResult<(Release, bool)>;
    /// Changes an existing release.
    fn update_release(
        &self,
        org_id: OrgId,
        version: &str,
        change: &ReleaseChange,
        now_ms: i64,
    ) -> StoreResult<Release>;
    /// One release.
    fn release(&self, org_id: OrgId, version: &str) -> StoreResult<Release>;
    /// Releases of an organization (or of one of its projects), newest first.
    fn releases(
        &self,
        org_id: OrgId,
        project_id: Option<ProjectId>,
        limit: usize,
    ) -> StoreResult<Vec<Release>>;
    /// Deletes a release with its deploys and the source maps uploaded for it.
    fn delete_release(&self, org_id: OrgId, version: &str) -> StoreResult<()>;
    /// Records a deploy of a release.
    fn create_deploy(
        &self,
        org_id: OrgId,
        version: &str,
        deploy: &NewDeploy,
        now_ms: i64,
    ) -> StoreResult<Deploy>;
    /// A release's deploys, newest first.
    fn deploys(&self, org_id: OrgId, version: &str) -> StoreResult<Vec<Deploy>>;
}

/// Source-map uploads: chunks by SHA-1 until assembled, and the artifact bundles made of them.
/// Content-addressed within an organization: uploading or assembling the same thing again
/// changes nothing.
pub trait ArtifactStore: Send + Sync + 'static {
    /// The checksums among `checksums` the organization has no chunk for, in their order.
    fn missing_chunks(&self, org_id: OrgId, checksums: &[String]) -> StoreResult<Vec<String>>;
    /// Keeps chunks (checksum, bytes).
    fn put_chunks(
        &self,
        org_id: OrgId,
        chunks: &[(String, Vec<u8>)],
        now_ms: i64,
    ) -> StoreResult<()>;
    /// The chunks' bytes in the order asked, or `None` when one is missing.
    fn chunk_data(&self, org_id: OrgId, checksums: &[String]) -> StoreResult<Option<Vec<Vec<u8>>>>;
    /// Links a kept bundle to more projects.
    fn link_bundle(&self, org_id: OrgId, checksum: &str, projects: &[ProjectId])
        -> StoreResult<()>;
    /// Whether a bundle with this checksum is kept.
    fn has_bundle(&self, org_id: OrgId, checksum: &str) -> StoreResult<bool>;
    /// Keeps an assembled bundle (`data`, checked) and drops the chunks it was made of.
    fn create_bundle(
        &self,
        bundle: &NewBundle,
        data: &[u8],
        chunks: &[String],
        now_ms: i64,
    ) -> StoreResult<()>;
    /// Files carrying a debug id in the bundles uploaded for a project, newest bundle first:
    /// (bundle checksum, file).
    fn files_by_debug_id(
        &self,
        project_id: ProjectId,
        debug_id: &str,
    ) -> StoreResult<Vec<(String, BundleFile)>>;
    /// Files of the bundles uploaded for a project's release and dist, newest bundle first.
    fn files_of_release(
        &self,
        project_id: ProjectId,
        release: &str,
        dist: Option<&str>,
    ) -> StoreResult<Vec<(String, BundleFile)>>;
    /// Bytes of the bundles uploaded for a project.
    fn uploaded_bytes(&self, project_id: ProjectId) -> StoreResult<u64>;
    /// A bundle's bytes, if it was uploaded for the project.
    fn bundle_bytes(&self, project_id: ProjectId, checksum: &str) -> StoreResult<Option<Vec<u8>>>;
    /// Files of the organization's bundles (of one release), newest bundle first:
    /// (bundle checksum, release, file).
    fn bundle_files(
        &self,
        org_id: OrgId,
        release: Option<&str>,
    ) -> StoreResult<Vec<(String, Option<String>, BundleFile)>>;
}

/// Alerts: channels and rules, and the outbox that carries each notification to its channel.
///
/// Exactly once from domain event to notification: [`enqueue_alerts`](AlertStore::enqueue_alerts)
/// writes a batch's notifications and moves the alerts cursor past its domain events in one
/// transaction. Delivery is at least once: an attempt cut short by a crash is made again, and
/// receivers can tell a repeat by the notification's id.
pub trait AlertStore: Send + Sync + 'static {
    /// Adds a channel.
    fn create_channel(
        &self,
        project_id: ProjectId,
        kind: ChannelKind,
        name: &str,
        target: &str,
        secret: Option<&str>,
    ) -> StoreResult<Channel>;
    /// Channels, of one project or all, in creation order.
    fn channels(&self, project_id: Option<ProjectId>) -> StoreResult<Vec<Channel>>;
    /// One channel.
    fn channel(&self, id: ChannelId) -> StoreResult<Channel>;
    /// Removes a channel; rules stop naming it.
    fn delete_channel(&self, id: ChannelId) -> StoreResult<()>;
    /// Adds a rule; its channels must belong to its project.
    fn create_rule(&self, project_id: ProjectId, spec: &RuleSpec) -> StoreResult<Rule>;
    /// Rules, of one project or all, in creation order.
    fn rules(&self, project_id: Option<ProjectId>) -> StoreResult<Vec<Rule>>;
    /// Removes a rule.
    fn delete_rule(&self, id: RuleId) -> StoreResult<()>;
    /// The last domain event already turned into notifications.
    fn alerts_cursor(&self) -> StoreResult<i64>;
    /// Issues of a project with at least `threshold` events received since `since_ms`, with
    /// their counts, the most first.
    fn frequent_issues(
        &self,
        project_id: ProjectId,
        since_ms: i64,
        threshold: i64,
    ) -> StoreResult<Vec<(IssueId, i64)>>;
    /// Issues of a project that at least `threshold` distinct users met since `since_ms`, with
    /// their counts, the most first.
    fn widely_seen_issues(
        &self,
        project_id: ProjectId,
        since_ms: i64,
        threshold: i64,
    ) -> StoreResult<Vec<(IssueId, i64)>>;
    /// When `rule` last fired for `issue`, ms.
    fn last_fired(&self, rule: RuleId, issue: IssueId) -> StoreResult<Option<i64>>;
    /// Writes notifications due at `now_ms` and moves the cursor to `cursor`, in one transaction.
    fn enqueue_alerts(&self, cursor: i64, alerts: &[NewAlert], now_ms: i64) -> StoreResult<()>;
    /// Pending notifications due at `now_ms`, oldest first.
    fn due_alerts(&self, now_ms: i64, limit: i64) -> StoreResult<Vec<Alert>>;
    /// Records a delivery attempt: sent, or failed with the next attempt's time (`None`: give up).
    fn record_attempt(
        &self,
        id: AlertId,
        outcome: Result<(), &str>,
        next_attempt_ms: Option<i64>,
        now_ms: i64,
    ) -> StoreResult<()>;
    /// Sets (or, with `None`, ends) a user's summary email of a project; a new or changed one
    /// counts from `now_ms`.
    fn set_summary(
        &self,
        user_id: UserId,
        project_id: ProjectId,
        period: Option<SummaryPeriod>,
        now_ms: i64,
    ) -> StoreResult<()>;
    /// Summary emails, of one user or all.
    fn summaries(&self, user_id: Option<UserId>) -> StoreResult<Vec<Summary>>;
    /// Records that a summary covered up to `until_ms`.
    fn summary_sent(
        &self,
        user_id: UserId,
        project_id: ProjectId,
        until_ms: i64,
    ) -> StoreResult<()>;
    /// Notifications newest first, of one project or issue (or all), at most `limit`.
    fn alert_history(
        &self,
        project_id: Option<ProjectId>,
        issue_id: Option<IssueId>,
        limit: i64,
    ) -> StoreResult<Vec<Alert>>;
}
