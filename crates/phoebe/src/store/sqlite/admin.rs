//! Organizations, projects, DSN keys, users and tokens.

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::now_ms;
use crate::store::*;

fn unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation)
}

fn check_slug(slug: &str) -> StoreResult<()> {
    let ok = !slug.is_empty()
        && slug.len() <= 50
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        && !slug.bytes().all(|b| b.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "slug {slug:?} must be 1-50 characters of a-z, 0-9, '-' or '_', and not only digits"
        )))
    }
}

/// A new DSN public key: 32 lowercase hex characters, as SDKs and Relay expect.
pub fn new_public_key() -> PublicKey {
    let bytes: [u8; 16] = rand::random();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    PublicKey::parse(&hex).expect("32 lowercase hex characters")
}

pub fn create_org(c: &mut Connection, slug: &str, name: &str) -> StoreResult<Org> {
    check_slug(slug)?;
    let created_ms = now_ms();
    c.execute(
        "INSERT INTO organizations (slug, name, created_ms) VALUES (?1, ?2, ?3)",
        params![slug, name, created_ms],
    )
    .map_err(|e| {
        if unique_violation(&e) {
            StoreError::Conflict(format!("organization {slug:?}"))
        } else {
            e.into()
        }
    })?;
    Ok(Org {
        id: OrgId(c.last_insert_rowid()),
        slug: slug.into(),
        name: name.into(),
        created_ms,
    })
}

pub fn orgs(c: &Connection) -> StoreResult<Vec<Org>> {
    let mut st =
        c.prepare_cached("SELECT id, slug, name, created_ms FROM organizations ORDER BY id")?;
    let rows = st.query_map([], |r| {
        Ok(Org {
            id: r.get(0)?,
            slug: r.get(1)?,
            name: r.get(2)?,
            created_ms: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn create_project(
    c: &mut Connection,
    org_id: OrgId,
    slug: &str,
    name: &str,
    platform: Option<&str>,
) -> StoreResult<(Project, ProjectKey)> {
    check_slug(slug)?;
    let tx = c.transaction()?;
    let org_slug: String = tx
        .query_row(
            "SELECT slug FROM organizations WHERE id = ?1",
            [org_id],
            |r| r.get(0),
        )
        .optional()?
        .ok_or(StoreError::NotFound("organization"))?;
    let created_ms = now_ms();
    tx.execute(
        "INSERT INTO projects (org_id, slug, name, platform, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![org_id, slug, name, platform, created_ms],
    )
    .map_err(|e| if unique_violation(&e) { StoreError::Conflict(format!("project {slug:?}")) } else { e.into() })?;
    let project_id = ProjectId(tx.last_insert_rowid());
    let public_key = new_public_key();
    tx.execute(
        "INSERT INTO project_keys (project_id, public_key, label, created_ms) VALUES (?1, ?2, 'Default', ?3)",
        params![project_id, public_key, created_ms],
    )?;
    let key_id = tx.last_insert_rowid();
    tx.commit()?;
    let project = Project {
        id: project_id,
        org_id,
        org_slug,
        slug: slug.into(),
        name: name.into(),
        platform: platform.map(Into::into),
        created_ms,
        limits: RateLimit::default(),
        retention: RetentionOverride::default(),
        stored_events: 0,
        spike: None,
    };
    let key = ProjectKey {
        id: key_id,
        project_id,
        public_key,
        label: "Default".into(),
        is_active: true,
        created_ms,
        limits: RateLimit::default(),
    };
    Ok((project, key))
}

pub fn create_key(
    c: &mut Connection,
    project_id: ProjectId,
    label: &str,
) -> StoreResult<ProjectKey> {
    let exists: bool = c.query_row(
        "SELECT count(*) FROM projects WHERE id = ?1",
        [project_id],
        |r| r.get(0),
    )?;
    if !exists {
        return Err(StoreError::NotFound("project"));
    }
    let public_key = new_public_key();
    let created_ms = now_ms();
    c.execute(
        "INSERT INTO project_keys (project_id, public_key, label, created_ms) VALUES (?1, ?2, ?3, ?4)",
        params![project_id, public_key, label, created_ms],
    )?;
    Ok(ProjectKey {
        id: c.last_insert_rowid(),
        project_id,
        public_key,
        label: label.into(),
        is_active: true,
        created_ms,
        limits: RateLimit::default(),
    })
}

const PROJECT_COLUMNS: &str = "p.id, p.org_id, o.slug, p.slug, p.name, p.platform, p.created_ms,
    p.events_per_minute, p.events_per_hour, p.max_age_days, p.max_stored_events, p.stored_events,
    p.spike_since_ms, p.spike_limit_per_minute
    FROM projects p JOIN organizations o ON o.id = p.org_id";

fn project_row(r: &Row) -> rusqlite::Result<Project> {
    let spike_since: Option<i64> = r.get(12)?;
    Ok(Project {
        id: r.get(0)?,
        org_id: r.get(1)?,
        org_slug: r.get(2)?,
        slug: r.get(3)?,
        name: r.get(4)?,
        platform: r.get(5)?,
        created_ms: r.get(6)?,
        limits: RateLimit {
            per_minute: r.get(7)?,
            per_hour: r.get(8)?,
        },
        retention: RetentionOverride {
            max_age_days: r.get(9)?,
            max_stored_events: r.get(10)?,
        },
        stored_events: r.get(11)?,
        spike: match spike_since {
            Some(since_ms) => Some(SpikeState {
                since_ms,
                limit_per_minute: r.get::<_, Option<u64>>(13)?.unwrap_or(0),
            }),
            None => None,
        },
    })
}

/// Sets a project's rate-limit overrides.
pub fn set_project_limits(c: &Connection, project_id: ProjectId, l: RateLimit) -> StoreResult<()> {
    let n = c.execute(
        "UPDATE projects SET events_per_minute = ?2, events_per_hour = ?3 WHERE id = ?1",
        params![project_id, l.per_minute, l.per_hour],
    )?;
    found(n, "project")
}

/// Sets a project's retention overrides.
pub fn set_project_retention(
    c: &Connection,
    project_id: ProjectId,
    r: RetentionOverride,
) -> StoreResult<()> {
    let n = c.execute(
        "UPDATE projects SET max_age_days = ?2, max_stored_events = ?3 WHERE id = ?1",
        params![project_id, r.max_age_days, r.max_stored_events],
    )?;
    found(n, "project")
}

/// Sets a key's rate-limit overrides.
pub fn set_key_limits(c: &Connection, public_key: &PublicKey, l: RateLimit) -> StoreResult<()> {
    let n = c.execute(
        "UPDATE project_keys SET events_per_minute = ?2, events_per_hour = ?3 WHERE public_key = ?1",
        params![public_key, l.per_minute, l.per_hour],
    )?;
    found(n, "key")
}

/// Records which projects spike protection throttles now; the others are cleared.
pub fn set_spikes(tx: &Connection, spikes: &[(ProjectId, SpikeState)]) -> StoreResult<()> {
    tx.execute(
        "UPDATE projects SET spike_since_ms = NULL, spike_limit_per_minute = NULL WHERE spike_since_ms IS NOT NULL",
        [],
    )?;
    for (project_id, s) in spikes {
        tx.execute(
            "UPDATE projects SET spike_since_ms = ?2, spike_limit_per_minute = ?3 WHERE id = ?1",
            params![project_id, s.since_ms, s.limit_per_minute],
        )?;
    }
    Ok(())
}

fn found(rows: usize, what: &'static str) -> StoreResult<()> {
    match rows {
        0 => Err(StoreError::NotFound(what)),
        _ => Ok(()),
    }
}

pub fn projects(c: &Connection, id: Option<ProjectId>) -> StoreResult<Vec<Project>> {
    let sql = format!("SELECT {PROJECT_COLUMNS} WHERE ?1 IS NULL OR p.id = ?1 ORDER BY p.id");
    let mut st = c.prepare_cached(&sql)?;
    let rows = st.query_map([id], project_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn project_by_slug(c: &Connection, org_slug: &str, project: &str) -> StoreResult<Project> {
    let sql = format!(
        "SELECT {PROJECT_COLUMNS} WHERE o.slug = ?1 AND (p.slug = ?2 OR CAST(p.id AS TEXT) = ?2)"
    );
    c.query_row(&sql, params![org_slug, project], project_row)
        .optional()?
        .ok_or(StoreError::NotFound("project"))
}

pub fn keys(
    c: &Connection,
    project_id: Option<ProjectId>,
    public_key: Option<&PublicKey>,
) -> StoreResult<Vec<ProjectKey>> {
    let mut st = c.prepare_cached(
        "SELECT id, project_id, public_key, label, is_active, created_ms, events_per_minute,
                events_per_hour FROM project_keys
         WHERE (?1 IS NULL OR project_id = ?1) AND (?2 IS NULL OR public_key = ?2) ORDER BY id",
    )?;
    let rows = st.query_map(params![project_id, public_key], |r| {
        Ok(ProjectKey {
            id: r.get(0)?,
            project_id: r.get(1)?,
            public_key: r.get(2)?,
            label: r.get(3)?,
            is_active: r.get(4)?,
            created_ms: r.get(5)?,
            limits: RateLimit {
                per_minute: r.get(6)?,
                per_hour: r.get(7)?,
            },
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub fn create_user(
    c: &mut Connection,
    org_id: OrgId,
    login: &str,
    password_hash: &str,
    role: Role,
) -> StoreResult<User> {
    if login.trim().is_empty() || login.len() > 100 {
        return Err(StoreError::Invalid("a login is 1-100 characters".into()));
    }
    let tx = c.transaction()?;
    tx.execute(
        "INSERT INTO users (login, password_hash, created_ms) VALUES (?1, ?2, ?3)",
        params![login, password_hash, now_ms()],
    )
    .map_err(|e| {
        if unique_violation(&e) {
            StoreError::Conflict(format!("user {login:?}"))
        } else {
            e.into()
        }
    })?;
    let id = UserId(tx.last_insert_rowid());
    tx.execute(
        "INSERT INTO memberships (org_id, user_id, role) VALUES (?1, ?2, ?3)",
        params![org_id, id, role],
    )?;
    tx.commit()?;
    Ok(User {
        id,
        login: login.into(),
        password_hash: password_hash.into(),
        is_active: true,
        email: None,
    })
}

fn user_row(r: &Row) -> rusqlite::Result<User> {
    Ok(User {
        id: r.get(0)?,
        login: r.get(1)?,
        password_hash: r.get(2)?,
        is_active: r.get(3)?,
        email: r.get(4)?,
    })
}

pub fn user_by_login(c: &Connection, login: &str) -> StoreResult<User> {
    c.query_row(
        "SELECT id, login, password_hash, is_active, email FROM users WHERE login = ?1",
        [login],
        user_row,
    )
    .optional()?
    .ok_or(StoreError::NotFound("user"))
}

pub fn create_token(
    c: &mut Connection,
    user_id: UserId,
    token_hash: &str,
    label: &str,
) -> StoreResult<()> {
    c.execute(
        "INSERT INTO api_tokens (token_hash, user_id, label, created_ms) VALUES (?1, ?2, ?3, ?4)",
        params![token_hash, user_id, label, now_ms()],
    )?;
    Ok(())
}

/// Every user, in creation order.
pub fn users(c: &Connection) -> StoreResult<Vec<User>> {
    let mut st = c.prepare_cached(
        "SELECT id, login, password_hash, is_active, email FROM users ORDER BY id",
    )?;
    let rows = st.query_map([], user_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Enables or disables a user; disabled users' tokens stop working at once.
pub fn set_user_active(c: &Connection, login: &str, active: bool) -> StoreResult<User> {
    let n = c.execute(
        "UPDATE users SET is_active = ?2 WHERE login = ?1",
        params![login, active],
    )?;
    found(n, "user")?;
    user_by_login(c, login)
}

/// Sets or clears a user's email address.
pub fn set_user_email(c: &Connection, login: &str, email: Option<&str>) -> StoreResult<User> {
    let n = c.execute(
        "UPDATE users SET email = ?2 WHERE login = ?1",
        params![login, email],
    )?;
    found(n, "user")?;
    user_by_login(c, login)
}

/// The addresses of an organization's active members: their email, or their login when it is
/// an address.
pub fn member_emails(c: &Connection, org_id: OrgId) -> StoreResult<Vec<String>> {
    let mut st = c.prepare_cached(
        "SELECT coalesce(u.email, CASE WHEN u.login LIKE '%_@_%' THEN u.login END)
         FROM memberships m JOIN users u ON u.id = m.user_id
         WHERE m.org_id = ?1 AND u.is_active = 1 ORDER BY u.id",
    )?;
    let rows = st.query_map([org_id], |r| r.get::<_, Option<String>>(0))?;
    let emails: Vec<Option<String>> = rows.collect::<Result<_, _>>()?;
    Ok(emails.into_iter().flatten().collect())
}

/// Replaces a user's password hash.
pub fn set_password_hash(c: &Connection, login: &str, hash: &str) -> StoreResult<User> {
    let n = c.execute(
        "UPDATE users SET password_hash = ?2 WHERE login = ?1",
        params![login, hash],
    )?;
    found(n, "user")?;
    user_by_login(c, login)
}

pub fn user_by_token(c: &Connection, token_hash: &str) -> StoreResult<Option<User>> {
    Ok(c.query_row(
        "SELECT u.id, u.login, u.password_hash, u.is_active, u.email FROM api_tokens t JOIN users u ON u.id = t.user_id
         WHERE t.token_hash = ?1 AND u.is_active = 1",
        [token_hash],
        user_row,
    )
    .optional()?)
}

pub fn create_session(
    c: &Connection,
    id_hash: &str,
    user_id: UserId,
    csrf: &str,
    expires_ms: i64,
) -> StoreResult<()> {
    let now = now_ms();
    // Expired sessions are swept here, on the rare write, so the table never grows unbounded.
    c.execute("DELETE FROM sessions WHERE expires_ms < ?1", [now])?;
    c.execute(
        "INSERT INTO sessions (id_hash, user_id, csrf, created_ms, expires_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![id_hash, user_id, csrf, now, expires_ms],
    )?;
    Ok(())
}

pub fn session(c: &Connection, id_hash: &str) -> StoreResult<Option<Session>> {
    Ok(c.query_row(
        "SELECT u.id, u.login, u.password_hash, u.is_active, u.email, s.csrf
         FROM sessions s JOIN users u ON u.id = s.user_id
         WHERE s.id_hash = ?1 AND u.is_active = 1 AND s.expires_ms > ?2",
        params![id_hash, now_ms()],
        |r| {
            Ok(Session {
                user: user_row(r)?,
                csrf: r.get(5)?,
            })
        },
    )
    .optional()?)
}

pub fn delete_session(c: &Connection, id_hash: &str) -> StoreResult<()> {
    c.execute("DELETE FROM sessions WHERE id_hash = ?1", [id_hash])?;
    Ok(())
}

/// Ends every session of a user except `keep` (the one that changed its own password).
pub fn delete_sessions_of(c: &Connection, user_id: UserId, keep: Option<&str>) -> StoreResult<()> {
    c.execute(
        "DELETE FROM sessions WHERE user_id = ?1 AND id_hash IS NOT ?2",
        params![user_id, keep],
    )?;
    Ok(())
}

pub fn rename_project(c: &Connection, id: ProjectId, name: &str) -> StoreResult<Project> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(StoreError::Invalid(
            "a project name needs 1 to 100 characters".into(),
        ));
    }
    let n = c.execute(
        "UPDATE projects SET name = ?2 WHERE id = ?1",
        params![id, name],
    )?;
    found(n, "project")?;
    project(c, id)
}

pub fn project(c: &Connection, id: ProjectId) -> StoreResult<Project> {
    projects(c, Some(id))?
        .pop()
        .ok_or(StoreError::NotFound("project"))
}

/// Deletes a project with everything it holds: keys (its SDKs get 401 at once, or within the
/// key cache's refresh), issues, events, counters, usage.
pub fn delete_project(c: &mut Connection, id: ProjectId) -> StoreResult<()> {
    let tx = c.transaction()?;
    project(&tx, id)?;
    for sql in [
        "DELETE FROM issue_hourly WHERE issue_id IN (SELECT id FROM issues WHERE project_id = ?1)",
        "DELETE FROM issue_minutes WHERE issue_id IN (SELECT id FROM issues WHERE project_id = ?1)",
        "DELETE FROM alert_summaries WHERE project_id = ?1",
        "DELETE FROM alert_outbox WHERE project_id = ?1",
        "DELETE FROM alert_rules WHERE project_id = ?1",
        "DELETE FROM alert_channels WHERE project_id = ?1",
        "DELETE FROM issue_tags WHERE issue_id IN (SELECT id FROM issues WHERE project_id = ?1)",
        "DELETE FROM activity WHERE issue_id IN (SELECT id FROM issues WHERE project_id = ?1)",
        "DELETE FROM events WHERE project_id = ?1",
        "DELETE FROM issue_hashes WHERE project_id = ?1",
        "DELETE FROM issues WHERE project_id = ?1",
        "DELETE FROM releases WHERE project_id = ?1",
        "DELETE FROM release_projects WHERE project_id = ?1",
        "DELETE FROM artifact_bundle_projects WHERE project_id = ?1",
        "DELETE FROM kept_items WHERE project_id = ?1",
        "DELETE FROM usage_hourly WHERE project_id = ?1",
        "DELETE FROM client_discards WHERE project_id = ?1",
        "DELETE FROM project_keys WHERE project_id = ?1",
        "DELETE FROM projects WHERE id = ?1",
    ] {
        tx.execute(sql, [id])?;
    }
    tx.commit()?;
    Ok(())
}

/// Unresolved issues per project: (project id, count).
pub fn unresolved_counts(c: &Connection) -> StoreResult<Vec<(ProjectId, i64)>> {
    let mut st = c.prepare_cached(
        "SELECT project_id, count(*) FROM issues WHERE status = 'unresolved' GROUP BY project_id",
    )?;
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Every user's role: (user id, role), in any organization.
pub fn roles(c: &Connection) -> StoreResult<Vec<(UserId, Role)>> {
    let mut st = c.prepare_cached("SELECT user_id, role FROM memberships ORDER BY user_id")?;
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}
