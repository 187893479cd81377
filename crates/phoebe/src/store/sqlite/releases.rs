//! Releases and deploys in SQLite. A release of an organization exists when `release_info`
//! has its version (the API or sentry-cli made it) or an event of one of the organization's
//! projects named it (`releases`, written by digest); it is read by putting the two together.

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::domain::*;
use crate::store::*;

fn deploy_row(r: &Row) -> rusqlite::Result<Deploy> {
    Ok(Deploy {
        id: r.get(0)?,
        version: r.get(1)?,
        environment: r.get(2)?,
        name: r.get(3)?,
        url: r.get(4)?,
        started_ms: r.get(5)?,
        finished_ms: r.get(6)?,
    })
}

const DEPLOY_COLUMNS: &str = "id, version, environment, name, url, started_ms, finished_ms";

/// One release, or `NotFound("release")`.
pub fn get(c: &Connection, org_id: OrgId, version: &str) -> StoreResult<Release> {
    let info = c
        .prepare_cached(
            "SELECT created_ms, released_ms, started_ms, url, status FROM release_info
             WHERE org_id = ?1 AND version = ?2",
        )?
        .query_row(params![org_id, version], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, Option<i64>>(1)?,
                r.get::<_, Option<i64>>(2)?,
                r.get::<_, Option<String>>(3)?,
                r.get::<_, String>(4)?,
            ))
        })
        .optional()?;
    let mut st = c.prepare_cached(
        "SELECT r.project_id, r.first_seen_ms, r.last_seen_ms, r.new_issues, r.events
         FROM releases r JOIN projects p ON p.id = r.project_id
         WHERE p.org_id = ?1 AND r.version = ?2 ORDER BY r.project_id",
    )?;
    let seen: Vec<(ProjectId, i64, i64, i64, i64)> = st
        .query_map(params![org_id, version], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })?
        .collect::<Result<_, _>>()?;
    if info.is_none() && seen.is_empty() {
        return Err(StoreError::NotFound("release"));
    }
    let mut projects: Vec<ProjectId> = c
        .prepare_cached(
            "SELECT rp.project_id FROM release_projects rp JOIN projects p ON p.id = rp.project_id
             WHERE rp.org_id = ?1 AND rp.version = ?2",
        )?
        .query_map(params![org_id, version], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    projects.extend(seen.iter().map(|s| s.0));
    projects.sort();
    projects.dedup();
    let first_event_ms = seen.iter().map(|s| s.1).min();
    let (deploy_count, last_deploy) = deploys_summary(c, org_id, version)?;
    let (created_ms, released_ms, started_ms, url, status) = match info {
        Some((created, released, started, url, status)) => (
            first_event_ms.map_or(created, |f| f.min(created)),
            released,
            started,
            url,
            ReleaseStatus::parse(&status).unwrap_or_default(),
        ),
        None => (
            first_event_ms.unwrap_or(0),
            None,
            None,
            None,
            ReleaseStatus::Open,
        ),
    };
    Ok(Release {
        org_id,
        version: version.to_string(),
        projects,
        created_ms,
        released_ms,
        started_ms,
        url,
        status,
        first_event_ms,
        last_event_ms: seen.iter().map(|s| s.2).max(),
        new_issues: seen.iter().map(|s| s.3).sum(),
        events: seen.iter().map(|s| s.4).sum(),
        deploy_count,
        last_deploy,
    })
}

fn deploys_summary(
    c: &Connection,
    org_id: OrgId,
    version: &str,
) -> StoreResult<(i64, Option<Deploy>)> {
    let count: i64 = c
        .prepare_cached("SELECT count(*) FROM deploys WHERE org_id = ?1 AND version = ?2")?
        .query_row(params![org_id, version], |r| r.get(0))?;
    let last = c
        .prepare_cached(&format!(
            "SELECT {DEPLOY_COLUMNS} FROM deploys WHERE org_id = ?1 AND version = ?2
             ORDER BY id DESC LIMIT 1"
        ))?
        .query_row(params![org_id, version], deploy_row)
        .optional()?;
    Ok((count, last))
}

/// Releases of an organization (of one project, when given), newest first, at most `limit`.
pub fn list(
    c: &Connection,
    org_id: OrgId,
    project_id: Option<ProjectId>,
    limit: usize,
) -> StoreResult<Vec<Release>> {
    let mut st = c.prepare_cached(
        "SELECT version FROM release_info WHERE org_id = ?1
         UNION SELECT r.version FROM releases r JOIN projects p ON p.id = r.project_id
         WHERE p.org_id = ?1",
    )?;
    let versions: Vec<String> = st
        .query_map([org_id], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut out = Vec::with_capacity(versions.len());
    for v in versions {
        let release = get(c, org_id, &v)?;
        if project_id.is_none_or(|p| release.projects.contains(&p)) {
            out.push(release);
        }
    }
    out.sort_by(|a, b| {
        b.created_ms
            .cmp(&a.created_ms)
            .then_with(|| b.version.cmp(&a.version))
    });
    out.truncate(limit);
    Ok(out)
}

/// Creates a release if it does not exist, then applies `change`; says whether it was new.
pub fn upsert(
    c: &mut Connection,
    org_id: OrgId,
    version: &str,
    change: &ReleaseChange,
    now_ms: i64,
) -> StoreResult<(Release, bool)> {
    let tx = c.transaction()?;
    let existed = get(&tx, org_id, version).is_ok();
    tx.execute(
        "INSERT INTO release_info (org_id, version, created_ms) VALUES (?1, ?2, ?3)
         ON CONFLICT (org_id, version) DO NOTHING",
        params![org_id, version, now_ms],
    )?;
    apply(&tx, org_id, version, change)?;
    let release = get(&tx, org_id, version)?;
    tx.commit()?;
    Ok((release, !existed))
}

/// Applies `change` to an existing release.
pub fn update(
    c: &mut Connection,
    org_id: OrgId,
    version: &str,
    change: &ReleaseChange,
    now_ms: i64,
) -> StoreResult<Release> {
    let tx = c.transaction()?;
    let before = get(&tx, org_id, version)?;
    // A release only events made gets its row now, dated by its first event.
    tx.execute(
        "INSERT INTO release_info (org_id, version, created_ms) VALUES (?1, ?2, ?3)
         ON CONFLICT (org_id, version) DO NOTHING",
        params![org_id, version, before.first_event_ms.unwrap_or(now_ms)],
    )?;
    apply(&tx, org_id, version, change)?;
    let release = get(&tx, org_id, version)?;
    tx.commit()?;
    Ok(release)
}

fn apply(c: &Connection, org_id: OrgId, version: &str, change: &ReleaseChange) -> StoreResult<()> {
    for p in &change.projects {
        let project = super::admin::project(c, *p)?;
        if project.org_id != org_id {
            return Err(StoreError::NotFound("project"));
        }
        c.execute(
            "INSERT INTO release_projects (org_id, version, project_id) VALUES (?1, ?2, ?3)
             ON CONFLICT DO NOTHING",
            params![org_id, version, p],
        )?;
    }
    c.execute(
        "UPDATE release_info SET url = coalesce(?3, url), released_ms = coalesce(?4, released_ms),
            started_ms = coalesce(?5, started_ms), status = coalesce(?6, status)
         WHERE org_id = ?1 AND version = ?2",
        params![
            org_id,
            version,
            change.url,
            change.released_ms,
            change.started_ms,
            change.status.map(ReleaseStatus::as_str)
        ],
    )?;
    Ok(())
}

/// Deletes a release: what was said about it, its deploys, its per-project counts and the
/// source maps uploaded for it (its events keep naming it, and a new one brings it back).
pub fn delete(c: &mut Connection, org_id: OrgId, version: &str) -> StoreResult<()> {
    let tx = c.transaction()?;
    // A version only source maps were uploaded for (`sourcemaps upload --release`) counts too:
    // deleting it is how their space is given back.
    let has_maps: bool = tx.query_row(
        "SELECT EXISTS (SELECT 1 FROM artifact_bundles WHERE org_id = ?1 AND release = ?2)",
        params![org_id, version],
        |r| r.get(0),
    )?;
    if !has_maps {
        get(&tx, org_id, version)?;
    }
    for sql in [
        "DELETE FROM release_info WHERE org_id = ?1 AND version = ?2",
        "DELETE FROM release_projects WHERE org_id = ?1 AND version = ?2",
        "DELETE FROM deploys WHERE org_id = ?1 AND version = ?2",
        "DELETE FROM releases WHERE version = ?2
            AND project_id IN (SELECT id FROM projects WHERE org_id = ?1)",
        // Its source maps go with it.
        "DELETE FROM artifact_files WHERE bundle_id IN
            (SELECT id FROM artifact_bundles WHERE org_id = ?1 AND release = ?2)",
        "DELETE FROM artifact_bundle_projects WHERE bundle_id IN
            (SELECT id FROM artifact_bundles WHERE org_id = ?1 AND release = ?2)",
        "DELETE FROM artifact_bundles WHERE org_id = ?1 AND release = ?2",
    ] {
        tx.execute(sql, params![org_id, version])?;
    }
    tx.commit()?;
    Ok(())
}

/// Records a deploy of an existing release.
pub fn create_deploy(
    c: &mut Connection,
    org_id: OrgId,
    version: &str,
    deploy: &NewDeploy,
    now_ms: i64,
) -> StoreResult<Deploy> {
    let tx = c.transaction()?;
    get(&tx, org_id, version)?;
    tx.execute(
        "INSERT INTO deploys (org_id, version, environment, name, url, started_ms, finished_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            org_id,
            version,
            deploy.environment,
            deploy.name,
            deploy.url,
            deploy.started_ms,
            deploy.finished_ms.unwrap_or(now_ms)
        ],
    )?;
    let id = tx.last_insert_rowid();
    let created = tx.query_row(
        &format!("SELECT {DEPLOY_COLUMNS} FROM deploys WHERE id = ?1"),
        [id],
        deploy_row,
    )?;
    tx.commit()?;
    Ok(created)
}

/// A release's deploys, newest first.
pub fn deploys(c: &Connection, org_id: OrgId, version: &str) -> StoreResult<Vec<Deploy>> {
    get(c, org_id, version)?;
    let mut st = c.prepare_cached(&format!(
        "SELECT {DEPLOY_COLUMNS} FROM deploys WHERE org_id = ?1 AND version = ?2 ORDER BY id DESC"
    ))?;
    let rows = st.query_map(params![org_id, version], deploy_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}
