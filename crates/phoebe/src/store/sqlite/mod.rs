//! The SQLite implementation of [`Store`]: one writer connection (digest and admin writes are
//! serialized, which is what SQLite wants) and a small pool of readers, all in WAL mode so
//! reads never wait for the writer.

mod admin;
mod alerts;
mod artifacts;
mod digest;
pub mod inbox;
mod read;
mod releases;
mod retention;
mod schema;
mod triage;
mod usage;

use std::path::Path;
use std::sync::Mutex;

use rusqlite::{Connection, OpenFlags, OptionalExtension};

use super::*;

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        StoreError::Database(e.to_string())
    }
}

/// Ids are integer columns.
macro_rules! sql_id {
    ($($id:ty),*) => {$(
        impl rusqlite::ToSql for $id {
            fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
                Ok(self.0.into())
            }
        }

        impl rusqlite::types::FromSql for $id {
            fn column_result(v: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
                i64::column_result(v).map(Self)
            }
        }
    )*};
}
sql_id!(OrgId, ProjectId, IssueId, UserId, DeployId);

/// Names are text columns, parsed once as rows are read; an unknown name is a corrupt row.
macro_rules! sql_name {
    ($($ty:ty),*) => {$(
        impl rusqlite::ToSql for $ty {
            fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
                Ok(self.as_str().into())
            }
        }

        impl rusqlite::types::FromSql for $ty {
            fn column_result(v: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
                let s = v.as_str()?;
                <$ty>::parse(s).ok_or_else(|| rusqlite::types::FromSqlError::Other(
                    format!("unknown {} {s:?} in the database", stringify!($ty)).into(),
                ))
            }
        }
    )*};
}
sql_name!(IssueStatus, ActivityKind);

impl rusqlite::ToSql for PublicKey {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(self.as_str().into())
    }
}

impl rusqlite::types::FromSql for PublicKey {
    fn column_result(v: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        PublicKey::parse(v.as_str()?)
            .map_err(|e| rusqlite::types::FromSqlError::Other(e.to_string().into()))
    }
}

impl rusqlite::ToSql for Role {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        Ok(self.as_str().into())
    }
}

impl rusqlite::types::FromSql for Role {
    fn column_result(v: rusqlite::types::ValueRef<'_>) -> rusqlite::types::FromSqlResult<Self> {
        Role::parse(v.as_str()?).map_err(|e| rusqlite::types::FromSqlError::Other(e.into()))
    }
}

/// Readers kept open; more are opened on demand and dropped when the pool is full.
const MAX_IDLE_READERS: usize = 8;

/// Phoebe's data in one SQLite file.
pub struct SqliteStore {
    dicts: read::Dictionaries,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    path: std::path::PathBuf,
}

/// Milliseconds since the epoch, now.
pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // 16 MiB page cache per connection (negative = KiB): enough for the hot issue and tag rows,
    // small enough that a handful of connections stays inside the memory target.
    conn.pragma_update(None, "cache_size", -16384)?;
    // Checkpoints truncate the WAL back to this size after a burst grew it.
    conn.pragma_update(None, "journal_size_limit", 16 << 20)?;
    Ok(())
}

impl SqliteStore {
    /// Opens (creating if needed) and migrates the database at `path`.
    pub fn open(path: &Path) -> StoreResult<SqliteStore> {
        let mut conn = Connection::open(path)?;
        // Before WAL: a new database takes the vacuum mode only while its header is unwritten.
        use_incremental_vacuum(&conn)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // Digest deletes inbox rows only after this commit, so the store must be as durable as the inbox.
        conn.pragma_update(None, "synchronous", "FULL")?;
        configure(&conn)?;
        // Write transactions take the write lock when they begin: one that read first and then
        // wrote would fail at once with "database is locked" (no busy wait) if another process
        // (the server, a CLI command) committed in between.
        conn.set_transaction_behavior(rusqlite::TransactionBehavior::Immediate);
        migrate(&mut conn)?;
        Ok(SqliteStore {
            dicts: read::Dictionaries::default(),
            writer: Mutex::new(conn),
            readers: Mutex::new(Vec::new()),
            path: path.to_path_buf(),
        })
    }

    fn write<T>(&self, f: impl FnOnce(&mut Connection) -> StoreResult<T>) -> StoreResult<T> {
        let mut conn = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut conn)
    }

    fn read<T>(&self, f: impl FnOnce(&Connection) -> StoreResult<T>) -> StoreResult<T> {
        let pooled = self.readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match pooled {
            Some(c) => c,
            None => {
                let c = Connection::open_with_flags(
                    &self.path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY
                        | OpenFlags::SQLITE_OPEN_NO_MUTEX
                        | OpenFlags::SQLITE_OPEN_URI,
                )?;
                configure(&c)?;
                c
            }
        };
        let result = f(&conn);
        let mut pool = self.readers.lock().unwrap_or_else(|p| p.into_inner());
        if pool.len() < MAX_IDLE_READERS {
            pool.push(conn);
        }
        result
    }
}

/// Hands up to `pages` free pages back to the file system. The pragma frees one page per step,
/// so it is stepped to the end; in WAL mode the file shrinks at a checkpoint, so one is asked
/// for (passive: it never waits for readers).
pub fn incremental_vacuum(conn: &Connection, pages: i64) -> rusqlite::Result<()> {
    let mut st = conn.prepare(&format!("PRAGMA incremental_vacuum({pages})"))?;
    let mut rows = st.query([])?;
    while rows.next()?.is_some() {}
    drop(rows);
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))?;
    Ok(())
}

/// Puts a database in incremental auto-vacuum mode, so freed pages can be handed back to the
/// file system (retention for the store, a drained backlog for the inbox). The mode must be
/// chosen before the first table exists (and before WAL), or applied with a one-time VACUUM.
/// That VACUUM is best effort: it needs free space about the size of the file, and a server
/// that cannot start helps nobody; freed space is then reused but not returned.
pub fn use_incremental_vacuum(conn: &Connection) -> rusqlite::Result<()> {
    const INCREMENTAL: i64 = 2;
    let mode: i64 = conn.pragma_query_value(None, "auto_vacuum", |r| r.get(0))?;
    if mode == INCREMENTAL {
        return Ok(());
    }
    conn.pragma_update(None, "auto_vacuum", INCREMENTAL)?;
    let tables: i64 = conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))?;
    if tables > 0 {
        tracing::info!(file = conn.path().unwrap_or(""), "rewriting the database once so freed space can return to the disk (VACUUM); this takes a while on a big file");
        if let Err(e) = conn.execute_batch("VACUUM") {
            tracing::warn!(error = %e, "could not rewrite the database; freed space will be reused but not returned to the disk until a later start succeeds");
        }
    }
    Ok(())
}

fn migrate(conn: &mut Connection) -> StoreResult<()> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let known = schema::MIGRATIONS.len() as i64;
    if version > known {
        return Err(StoreError::Invalid(format!(
            "the database is at schema version {version} but this phoebe knows only {known}: run a newer phoebe, or restore a backup"
        )));
    }
    for (i, sql) in schema::MIGRATIONS.iter().enumerate().skip(version as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
        tracing::info!(version = i + 1, "migrated database schema");
    }
    Ok(())
}

impl DigestWriter for SqliteStore {
    fn digest_watermark(&self) -> StoreResult<i64> {
        self.read(digest::watermark)
    }

    fn latest_zstd_dict(&self) -> StoreResult<Option<(u32, Vec<u8>)>> {
        self.read(|c| {
            Ok(c.query_row(
                "SELECT dict_id, dict FROM zstd_dicts ORDER BY created_ms DESC, dict_id LIMIT 1",
                [],
                |r| Ok((r.get::<_, u32>(0)?, r.get::<_, Vec<u8>>(1)?)),
            )
            .optional()?)
        })
    }

    fn apply_digest_batch(&self, batch: &DigestBatch) -> StoreResult<BatchOutcome> {
        self.write(|c| digest::apply(c, batch))
    }

    fn domain_events(&self, after_id: i64, limit: i64) -> StoreResult<Vec<RecordedEvent>> {
        self.read(|c| digest::domain_events(c, after_id, limit))
    }

    fn release_memory(&self) -> StoreResult<()> {
        let writer = self.write(|c| shrink_memory(c));
        // Readers checked out right now keep their cache until next time.
        let pool = self.readers.lock().unwrap_or_else(|p| p.into_inner());
        let readers = pool.iter().try_for_each(shrink_memory);
        writer.and(readers)
    }
}

impl Directory for SqliteStore {
    fn create_org(&self, slug: &str, name: &str) -> StoreResult<Org> {
        self.write(|c| admin::create_org(c, slug, name))
    }

    fn orgs(&self) -> StoreResult<Vec<Org>> {
        self.read(admin::orgs)
    }

    fn create_project(
        &self,
        org_id: OrgId,
        slug: &str,
        name: &str,
        platform: Option<&str>,
    ) -> StoreResult<(Project, ProjectKey)> {
        self.write(|c| admin::create_project(c, org_id, slug, name, platform))
    }

    fn projects(&self) -> StoreResult<Vec<Project>> {
        self.read(|c| admin::projects(c, None))
    }

    fn project_by_slug(&self, org_slug: &str, project: &str) -> StoreResult<Project> {
        self.read(|c| admin::project_by_slug(c, org_slug, project))
    }

    fn project(&self, id: ProjectId) -> StoreResult<Project> {
        self.read(|c| admin::project(c, id))
    }

    fn rename_project(&self, id: ProjectId, name: &str) -> StoreResult<Project> {
        self.write(|c| admin::rename_project(c, id, name))
    }

    fn delete_project(&self, id: ProjectId) -> StoreResult<()> {
        self.write(|c| admin::delete_project(c, id))
    }

    fn project_keys(&self, project_id: ProjectId) -> StoreResult<Vec<ProjectKey>> {
        self.read(|c| admin::keys(c, Some(project_id), None))
    }

    fn all_keys(&self) -> StoreResult<Vec<ProjectKey>> {
        self.read(|c| admin::keys(c, None, None))
    }

    fn key_by_public(&self, public_key: &PublicKey) -> StoreResult<Option<ProjectKey>> {
        Ok(self.read(|c| admin::keys(c, None, Some(public_key)))?.pop())
    }

    fn create_key(&self, project_id: ProjectId, label: &str) -> StoreResult<ProjectKey> {
        self.write(|c| admin::create_key(c, project_id, label))
    }

    fn set_key_active(&self, public_key: &PublicKey, active: bool) -> StoreResult<ProjectKey> {
        self.write(|c| {
            let n = c.execute(
                "UPDATE project_keys SET is_active = ?2 WHERE public_key = ?1",
                rusqlite::params![public_key, active],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound("key"));
            }
            admin::keys(c, None, Some(public_key))?
                .pop()
                .ok_or(StoreError::NotFound("key"))
        })
    }

    fn meta(&self, key: &str) -> StoreResult<Option<String>> {
        self.read(|c| {
            Ok(
                c.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
                    .optional()?,
            )
        })
    }

    fn set_meta(&self, key: &str, value: &str) -> StoreResult<()> {
        self.write(|c| {
            c.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                rusqlite::params![key, value],
            )?;
            Ok(())
        })
    }

    fn create_user(
        &self,
        org_id: OrgId,
        login: &str,
        password_hash: &str,
        role: Role,
    ) -> StoreResult<User> {
        self.write(|c| admin::create_user(c, org_id, login, password_hash, role))
    }

    fn roles(&self) -> StoreResult<Vec<(UserId, Role)>> {
        self.read(admin::roles)
    }

    fn user_by_login(&self, login: &str) -> StoreResult<User> {
        self.read(|c| admin::user_by_login(c, login))
    }

    fn users(&self) -> StoreResult<Vec<User>> {
        self.read(admin::users)
    }

    fn set_user_active(&self, login: &str, active: bool) -> StoreResult<User> {
        self.write(|c| admin::set_user_active(c, login, active))
    }

    fn set_password_hash(&self, login: &str, hash: &str) -> StoreResult<User> {
        self.write(|c| admin::set_password_hash(c, login, hash))
    }

    fn set_user_email(&self, login: &str, email: Option<&str>) -> StoreResult<User> {
        self.write(|c| admin::set_user_email(c, login, email))
    }

    fn member_emails(&self, org_id: OrgId) -> StoreResult<Vec<String>> {
        self.read(|c| admin::member_emails(c, org_id))
    }

    fn create_token(&self, user_id: UserId, token_hash: &str, label: &str) -> StoreResult<()> {
        self.write(|c| admin::create_token(c, user_id, token_hash, label))
    }

    fn user_by_token(&self, token_hash: &str) -> StoreResult<Option<User>> {
        self.read(|c| admin::user_by_token(c, token_hash))
    }

    fn create_session(
        &self,
        id_hash: &str,
        user_id: UserId,
        csrf: &str,
        expires_ms: i64,
    ) -> StoreResult<()> {
        self.write(|c| admin::create_session(c, id_hash, user_id, csrf, expires_ms))
    }

    fn session(&self, id_hash: &str) -> StoreResult<Option<Session>> {
        self.read(|c| admin::session(c, id_hash))
    }

    fn delete_session(&self, id_hash: &str) -> StoreResult<()> {
        self.write(|c| admin::delete_session(c, id_hash))
    }

    fn delete_sessions_of(&self, user_id: UserId, keep: Option<&str>) -> StoreResult<()> {
        self.write(|c| admin::delete_sessions_of(c, user_id, keep))
    }
}

impl IssueStore for SqliteStore {
    fn unresolved_counts(&self) -> StoreResult<Vec<(ProjectId, i64)>> {
        self.read(admin::unresolved_counts)
    }

    fn issues(&self, query: &IssueQuery) -> StoreResult<Vec<Issue>> {
        self.read(|c| read::issues(c, query))
    }

    fn issue(&self, id: IssueId) -> StoreResult<Issue> {
        self.read(|c| read::issue(c, id))
    }

    fn issue_hourly(
        &self,
        issue_ids: &[IssueId],
        since_ms: i64,
    ) -> StoreResult<Vec<(IssueId, i64, i64)>> {
        self.read(|c| read::hourly(c, issue_ids, since_ms))
    }

    fn issue_tags(&self, issue_id: IssueId, per_key: usize) -> StoreResult<Vec<TagCount>> {
        self.read(|c| read::tags(c, issue_id, per_key))
    }

    fn grouping(&self, project_id: ProjectId, hash: &str) -> StoreResult<Option<String>> {
        self.read(|c| read::grouping(c, project_id, hash))
    }

    fn triage(&self, id: IssueId, user_id: Option<UserId>, change: &Triage) -> StoreResult<Issue> {
        self.write(|c| triage::triage(c, id, user_id, change))
    }

    fn activity(&self, issue_id: IssueId) -> StoreResult<Vec<Activity>> {
        self.read(|c| triage::activity(c, issue_id))
    }

    fn delete_issues(&self, ids: &[IssueId]) -> StoreResult<u64> {
        self.write(|c| triage::delete_issues(c, ids))
    }

    fn merge_issues(
        &self,
        target: IssueId,
        sources: &[IssueId],
        user_id: Option<UserId>,
    ) -> StoreResult<Issue> {
        self.write(|c| triage::merge_issues(c, target, sources, user_id))
    }

    fn issue_events(
        &self,
        issue_id: IssueId,
        cursor: Option<KeysetCursor>,
        limit: i64,
    ) -> StoreResult<Vec<StoredEvent>> {
        self.read(|c| read::issue_events(c, &self.dicts, issue_id, cursor, limit))
    }

    fn project_events(
        &self,
        project_id: ProjectId,
        cursor: Option<KeysetCursor>,
        limit: i64,
    ) -> StoreResult<Vec<StoredEvent>> {
        self.read(|c| read::project_events(c, &self.dicts, project_id, cursor, limit))
    }

    fn issue_event_edge(
        &self,
        issue_id: IssueId,
        newest: bool,
    ) -> StoreResult<Option<StoredEvent>> {
        self.read(|c| read::issue_event_edge(c, &self.dicts, issue_id, newest))
    }

    fn event(
        &self,
        project_id: ProjectId,
        event_id: uuid::Uuid,
    ) -> StoreResult<Option<StoredEvent>> {
        self.read(|c| read::event(c, &self.dicts, project_id, event_id))
    }
}

impl UsageStore for SqliteStore {
    fn set_project_limits(&self, project_id: ProjectId, limits: RateLimit) -> StoreResult<()> {
        self.write(|c| admin::set_project_limits(c, project_id, limits))
    }

    fn set_project_retention(
        &self,
        project_id: ProjectId,
        r: RetentionOverride,
    ) -> StoreResult<()> {
        self.write(|c| admin::set_project_retention(c, project_id, r))
    }

    fn set_key_limits(&self, public_key: &PublicKey, limits: RateLimit) -> StoreResult<()> {
        self.write(|c| admin::set_key_limits(c, public_key, limits))
    }

    fn record_door_usage(
        &self,
        rows: &[(ProjectId, i64, UsageCounts)],
        spikes: &[(ProjectId, SpikeState)],
    ) -> StoreResult<()> {
        self.write(|c| {
            let tx = c.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            usage::add(&tx, rows)?;
            admin::set_spikes(&tx, spikes)?;
            tx.commit()?;
            Ok(())
        })
    }

    fn usage(&self, project_id: ProjectId, since_ms: i64) -> StoreResult<Vec<(i64, UsageCounts)>> {
        self.read(|c| usage::hourly(c, project_id, since_ms))
    }

    fn accepted_since(&self, since_ms: i64) -> StoreResult<Vec<(ProjectId, u64)>> {
        self.read(|c| usage::accepted_since(c, since_ms))
    }

    fn client_discards(
        &self,
        project_id: ProjectId,
        since_ms: i64,
    ) -> StoreResult<Vec<ClientDiscard>> {
        self.read(|c| usage::discards(c, project_id, since_ms))
    }
}

impl ArtifactStore for SqliteStore {
    fn missing_chunks(&self, org_id: OrgId, checksums: &[String]) -> StoreResult<Vec<String>> {
        self.read(|c| artifacts::missing_chunks(c, org_id, checksums))
    }

    fn put_chunks(
        &self,
        org_id: OrgId,
        chunks: &[(String, Vec<u8>)],
        now_ms: i64,
    ) -> StoreResult<()> {
        self.write(|c| artifacts::put_chunks(c, org_id, chunks, now_ms))
    }

    fn chunk_data(&self, org_id: OrgId, checksums: &[String]) -> StoreResult<Option<Vec<Vec<u8>>>> {
        self.read(|c| artifacts::chunk_data(c, org_id, checksums))
    }

    fn link_bundle(
        &self,
        org_id: OrgId,
        checksum: &str,
        projects: &[ProjectId],
    ) -> StoreResult<()> {
        self.write(|c| artifacts::link_bundle(c, org_id, checksum, projects))
    }

    fn has_bundle(&self, org_id: OrgId, checksum: &str) -> StoreResult<bool> {
        self.read(|c| artifacts::has_bundle(c, org_id, checksum))
    }

    fn create_bundle(
        &self,
        bundle: &NewBundle,
        data: &[u8],
        chunks: &[String],
        now_ms: i64,
    ) -> StoreResult<()> {
        self.write(|c| artifacts::create_bundle(c, bundle, data, chunks, now_ms))
    }

    fn files_by_debug_id(
        &self,
        project_id: ProjectId,
        debug_id: &str,
    ) -> StoreResult<Vec<(String, BundleFile)>> {
        self.read(|c| artifacts::files_by_debug_id(c, project_id, debug_id))
    }

    fn files_of_release(
        &self,
        project_id: ProjectId,
        release: &str,
        dist: Option<&str>,
    ) -> StoreResult<Vec<(String, BundleFile)>> {
        self.read(|c| artifacts::files_of_release(c, project_id, release, dist))
    }

    fn uploaded_bytes(&self, project_id: ProjectId) -> StoreResult<u64> {
        self.read(|c| artifacts::uploaded_bytes(c, project_id))
    }

    fn bundle_bytes(&self, project_id: ProjectId, checksum: &str) -> StoreResult<Option<Vec<u8>>> {
        self.read(|c| artifacts::bundle_bytes(c, project_id, checksum))
    }

    fn bundle_files(
        &self,
        org_id: OrgId,
        release: Option<&str>,
    ) -> StoreResult<Vec<(String, Option<String>, BundleFile)>> {
        self.read(|c| artifacts::bundle_files(c, org_id, release))
    }
}

impl ReleaseStore for SqliteStore {
    fn upsert_release(
        &self,
        org_id: OrgId,
        version: &str,
        change: &ReleaseChange,
        now_ms: i64,
    ) -> StoreResult<(Release, bool)> {
        self.write(|c| releases::upsert(c, org_id, version, change, now_ms))
    }

    fn update_release(
        &self,
        org_id: OrgId,
        version: &str,
        change: &ReleaseChange,
        now_ms: i64,
    ) -> StoreResult<Release> {
        self.write(|c| releases::update(c, org_id, version, change, now_ms))
    }

    fn release(&self, org_id: OrgId, version: &str) -> StoreResult<Release> {
        self.read(|c| releases::get(c, org_id, version))
    }

    fn releases(
        &self,
        org_id: OrgId,
        project_id: Option<ProjectId>,
        limit: usize,
    ) -> StoreResult<Vec<Release>> {
        self.read(|c| releases::list(c, org_id, project_id, limit))
    }

    fn delete_release(&self, org_id: OrgId, version: &str) -> StoreResult<()> {
        self.write(|c| releases::delete(c, org_id, version))
    }

    fn create_deploy(
        &self,
        org_id: OrgId,
        version: &str,
        deploy: &NewDeploy,
        now_ms: i64,
    ) -> StoreResult<Deploy> {
        self.write(|c| releases::create_deploy(c, org_id, version, deploy, now_ms))
    }

    fn deploys(&self, org_id: OrgId, version: &str) -> StoreResult<Vec<Deploy>> {
        self.read(|c| releases::deploys(c, org_id, version))
    }
}

impl AlertStore for SqliteStore {
    fn create_channel(
        &self,
        project_id: ProjectId,
        kind: ChannelKind,
        name: &str,
        target: &str,
        secret: Option<&str>,
    ) -> StoreResult<Channel> {
        self.write(|c| alerts::create_channel(c, project_id, kind, name, target, secret))
    }

    fn channels(&self, project_id: Option<ProjectId>) -> StoreResult<Vec<Channel>> {
        self.read(|c| alerts::channels(c, project_id))
    }

    fn channel(&self, id: ChannelId) -> StoreResult<Channel> {
        self.read(|c| alerts::channel(c, id))
    }

    fn delete_channel(&self, id: ChannelId) -> StoreResult<()> {
        self.write(|c| alerts::delete_channel(c, id))
    }

    fn create_rule(&self, project_id: ProjectId, spec: &RuleSpec) -> StoreResult<Rule> {
        self.write(|c| alerts::create_rule(c, project_id, spec))
    }

    fn rules(&self, project_id: Option<ProjectId>) -> StoreResult<Vec<Rule>> {
        self.read(|c| alerts::rules(c, project_id))
    }

    fn delete_rule(&self, id: RuleId) -> StoreResult<()> {
        self.write(|c| alerts::delete_rule(c, id))
    }

    fn alerts_cursor(&self) -> StoreResult<i64> {
        self.read(alerts::cursor)
    }

    fn frequent_issues(
        &self,
        project_id: ProjectId,
        since_ms: i64,
        threshold: i64,
    ) -> StoreResult<Vec<(IssueId, i64)>> {
        self.read(|c| alerts::frequent_issues(c, project_id, since_ms, threshold))
    }

    fn widely_seen_issues(
        &self,
        project_id: ProjectId,
        since_ms: i64,
        threshold: i64,
    ) -> StoreResult<Vec<(IssueId, i64)>> {
        self.read(|c| alerts::widely_seen_issues(c, project_id, since_ms, threshold))
    }

    fn set_summary(
        &self,
        user_id: UserId,
        project_id: ProjectId,
        period: Option<SummaryPeriod>,
        now_ms: i64,
    ) -> StoreResult<()> {
        self.write(|c| alerts::set_summary(c, user_id, project_id, period, now_ms))
    }

    fn summaries(&self, user_id: Option<UserId>) -> StoreResult<Vec<Summary>> {
        self.read(|c| alerts::summaries(c, user_id))
    }

    fn summary_sent(
        &self,
        user_id: UserId,
        project_id: ProjectId,
        until_ms: i64,
    ) -> StoreResult<()> {
        self.write(|c| alerts::summary_sent(c, user_id, project_id, until_ms))
    }

    fn last_fired(&self, rule: RuleId, issue: IssueId) -> StoreResult<Option<i64>> {
        self.read(|c| alerts::last_fired(c, rule, issue))
    }

    fn enqueue_alerts(&self, cursor: i64, new: &[NewAlert], now_ms: i64) -> StoreResult<()> {
        self.write(|c| alerts::enqueue(c, cursor, new, now_ms))
    }

    fn due_alerts(&self, now_ms: i64, limit: i64) -> StoreResult<Vec<Alert>> {
        self.read(|c| alerts::due(c, now_ms, limit))
    }

    fn record_attempt(
        &self,
        id: AlertId,
        outcome: Result<(), &str>,
        next_attempt_ms: Option<i64>,
        now_ms: i64,
    ) -> StoreResult<()> {
        self.write(|c| alerts::record_attempt(c, id, outcome, next_attempt_ms, now_ms))
    }

    fn alert_history(
        &self,
        project_id: Option<ProjectId>,
        issue_id: Option<IssueId>,
        limit: i64,
    ) -> StoreResult<Vec<Alert>> {
        self.read(|c| alerts::history(c, project_id, issue_id, limit))
    }
}

impl Maintenance for SqliteStore {
    fn evict_step(&self, policy: &RetentionPolicy, now_ms: i64) -> StoreResult<Eviction> {
        self.write(|c| retention::step(c, policy, now_ms))
    }

    fn vacuum_step(&self) -> StoreResult<u64> {
        self.write(|c| retention::vacuum_step(c))
    }

    fn space(&self) -> StoreResult<(u64, u64)> {
        self.read(retention::bytes)
    }

    fn size_bytes(&self) -> StoreResult<u64> {
        let main = std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0);
        let wal = std::fs::metadata(self.path.with_extension("sqlite-wal"))
            .map(|m| m.len())
            .unwrap_or(0);
        Ok(main + wal)
    }

    fn ping(&self) -> StoreResult<()> {
        self.read(|c| Ok(c.query_row("SELECT 1", [], |_| Ok(()))?))
    }
}

/// Empties a connection's page cache; pages are read again (from the OS cache) when needed.
pub(crate) fn shrink_memory(conn: &Connection) -> StoreResult<()> {
    Ok(conn.execute_batch("PRAGMA shrink_memory")?)
}

#[cfg(test)]
mod tests;
