//! Source-map uploads in SQLite: chunks by organization and SHA-1 until assembled, and artifact
//! bundles kept whole (zstd) with their files indexed by URL and debug id.

use rusqlite::{params, Connection, OptionalExtension};

use crate::domain::*;
use crate::store::*;

/// zstd level for chunks and bundles: they are written once and read rarely.
const LEVEL: i32 = 3;

fn compress(data: &[u8]) -> StoreResult<Vec<u8>> {
    zstd::bulk::compress(data, LEVEL).map_err(|e| StoreError::Invalid(e.to_string()))
}

/// The checksums among `checksums` the organization has no chunk for, in their order.
pub fn missing_chunks(
    c: &Connection,
    org_id: OrgId,
    checksums: &[String],
) -> StoreResult<Vec<String>> {
    let mut has = c.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM upload_chunks WHERE org_id = ?1 AND checksum = ?2)",
    )?;
    let mut missing = Vec::new();
    for sum in checksums {
        let present: bool = has.query_row(params![org_id, sum], |r| r.get(0))?;
        if !present && !missing.contains(sum) {
            missing.push(sum.clone());
        }
    }
    Ok(missing)
}

/// Keeps chunks (checksum, bytes); a chunk already kept is left as it is.
pub fn put_chunks(
    c: &mut Connection,
    org_id: OrgId,
    chunks: &[(String, Vec<u8>)],
    now_ms: i64,
) -> StoreResult<()> {
    let tx = c.transaction()?;
    {
        let mut insert = tx.prepare_cached(
            "INSERT INTO upload_chunks (org_id, checksum, size, data, created_ms)
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
        )?;
        for (sum, data) in chunks {
            insert.execute(params![
                org_id,
                sum,
                data.len() as i64,
                compress(data)?,
                now_ms
            ])?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// The chunks' bytes, in the order asked; `None` if one is missing.
pub fn chunk_data(
    c: &Connection,
    org_id: OrgId,
    checksums: &[String],
) -> StoreResult<Option<Vec<Vec<u8>>>> {
    let mut get = c.prepare_cached(
        "SELECT data, size FROM upload_chunks WHERE org_id = ?1 AND checksum = ?2",
    )?;
    let mut out = Vec::with_capacity(checksums.len());
    for sum in checksums {
        let row: Option<(Vec<u8>, i64)> = get
            .query_row(params![org_id, sum], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let Some((packed, size)) = row else {
            return Ok(None);
        };
        let data = zstd::bulk::decompress(&packed, size.max(0) as usize)
            .map_err(|e| StoreError::Invalid(format!("a stored chunk is damaged: {e}")))?;
        out.push(data);
    }
    Ok(Some(out))
}

/// Links a kept bundle to more projects (the same build uploaded for another project).
pub fn link_bundle(
    c: &Connection,
    org_id: OrgId,
    checksum: &str,
    projects: &[ProjectId],
) -> StoreResult<()> {
    let mut link = c.prepare_cached(
        "INSERT INTO artifact_bundle_projects (bundle_id, project_id)
         SELECT id, ?3 FROM artifact_bundles WHERE org_id = ?1 AND checksum = ?2
         ON CONFLICT DO NOTHING",
    )?;
    for p in projects {
        link.execute(params![org_id, checksum, p])?;
    }
    Ok(())
}

/// Whether the organization already keeps a bundle with this checksum.
pub fn has_bundle(c: &Connection, org_id: OrgId, checksum: &str) -> StoreResult<bool> {
    Ok(c.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM artifact_bundles WHERE org_id = ?1 AND checksum = ?2)",
    )?
    .query_row(params![org_id, checksum], |r| r.get(0))?)
}

/// Keeps an assembled bundle with its file index and projects, and drops the chunks it was
/// made of; a bundle kept already is left as it is.
pub fn create_bundle(
    c: &mut Connection,
    bundle: &NewBundle,
    data: &[u8],
    chunks: &[String],
    now_ms: i64,
) -> StoreResult<()> {
    let tx = c.transaction()?;
    let inserted = tx.execute(
        "INSERT INTO artifact_bundles (org_id, checksum, release, dist, debug_id, size, data, created_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (org_id, checksum) DO NOTHING",
        params![
            bundle.org_id,
            bundle.checksum,
            bundle.release,
            bundle.dist,
            bundle.manifest.debug_id,
            data.len() as i64,
            compress(data)?,
            now_ms
        ],
    )?;
    if inserted == 1 {
        let id = tx.last_insert_rowid();
        let mut file = tx.prepare_cached(
            "INSERT INTO artifact_files (bundle_id, path, url, kind, debug_id, sourcemap, size)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING",
        )?;
        for f in &bundle.manifest.files {
            file.execute(params![
                id,
                f.path,
                f.url,
                f.kind,
                f.debug_id,
                f.sourcemap,
                f.size as i64
            ])?;
        }
        let mut project = tx.prepare_cached(
            "INSERT INTO artifact_bundle_projects (bundle_id, project_id) VALUES (?1, ?2)
             ON CONFLICT DO NOTHING",
        )?;
        for p in &bundle.projects {
            project.execute(params![id, p])?;
        }
    }
    {
        let mut forget =
            tx.prepare_cached("DELETE FROM upload_chunks WHERE org_id = ?1 AND checksum = ?2")?;
        for sum in chunks {
            forget.execute(params![bundle.org_id, sum])?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// The files of an organization's bundles (of one release, when given), newest bundle first:
/// (bundle checksum, release, file).
pub fn bundle_files(
    c: &Connection,
    org_id: OrgId,
    release: Option<&str>,
) -> StoreResult<Vec<(String, Option<String>, BundleFile)>> {
    let mut st = c.prepare_cached(
        "SELECT b.checksum, b.release, f.path, f.url, f.kind, f.debug_id, f.sourcemap, f.size
         FROM artifact_files f JOIN artifact_bundles b ON b.id = f.bundle_id
         WHERE b.org_id = ?1 AND (?2 IS NULL OR b.release = ?2)
         ORDER BY b.id DESC, f.path",
    )?;
    let rows = st.query_map(params![org_id, release], |r| {
        Ok((
            r.get(0)?,
            r.get(1)?,
            BundleFile {
                path: r.get(2)?,
                url: r.get(3)?,
                kind: r.get(4)?,
                debug_id: r.get(5)?,
                sourcemap: r.get(6)?,
                size: r.get::<_, i64>(7)?.max(0) as u64,
            },
        ))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

const FILE_COLUMNS: &str = "b.checksum, f.path, f.url, f.kind, f.debug_id, f.sourcemap, f.size";

fn file_row(r: &rusqlite::Row) -> rusqlite::Result<(String, BundleFile)> {
    Ok((
        r.get(0)?,
        BundleFile {
            path: r.get(1)?,
            url: r.get(2)?,
            kind: r.get(3)?,
            debug_id: r.get(4)?,
            sourcemap: r.get(5)?,
            size: r.get::<_, i64>(6)?.max(0) as u64,
        },
    ))
}

/// Files carrying a debug id in the bundles uploaded for a project, newest bundle first.
pub fn files_by_debug_id(
    c: &Connection,
    project_id: ProjectId,
    debug_id: &str,
) -> StoreResult<Vec<(String, BundleFile)>> {
    let mut st = c.prepare_cached(&format!(
        "SELECT {FILE_COLUMNS} FROM artifact_files f JOIN artifact_bundles b ON b.id = f.bundle_id
         WHERE f.debug_id = lower(?2)
           AND b.id IN (SELECT bundle_id FROM artifact_bundle_projects WHERE project_id = ?1)
         ORDER BY b.id DESC"
    ))?;
    let rows = st.query_map(params![project_id, debug_id], file_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Files of the bundles uploaded for a project's release (and dist), newest bundle first.
pub fn files_of_release(
    c: &Connection,
    project_id: ProjectId,
    release: &str,
    dist: Option<&str>,
) -> StoreResult<Vec<(String, BundleFile)>> {
    let mut st = c.prepare_cached(&format!(
        "SELECT {FILE_COLUMNS} FROM artifact_files f JOIN artifact_bundles b ON b.id = f.bundle_id
         WHERE b.release = ?2 AND b.dist IS ?3
           AND b.id IN (SELECT bundle_id FROM artifact_bundle_projects WHERE project_id = ?1)
         ORDER BY b.id DESC"
    ))?;
    let rows = st.query_map(params![project_id, release, dist], file_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A bundle's bytes, if it was uploaded for the project.
pub fn bundle_bytes(
    c: &Connection,
    project_id: ProjectId,
    checksum: &str,
) -> StoreResult<Option<Vec<u8>>> {
    let row: Option<(Vec<u8>, i64)> = c
        .prepare_cached(
            "SELECT data, size FROM artifact_bundles WHERE checksum = ?2
               AND id IN (SELECT bundle_id FROM artifact_bundle_projects WHERE project_id = ?1)",
        )?
        .query_row(params![project_id, checksum], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    row.map(|(packed, size)| {
        zstd::bulk::decompress(&packed, size.max(0) as usize)
            .map_err(|e| StoreError::Invalid(format!("a stored bundle is damaged: {e}")))
    })
    .transpose()
}

/// Bytes of the bundles uploaded for a project.
pub fn uploaded_bytes(c: &Connection, project_id: ProjectId) -> StoreResult<u64> {
    let n: i64 = c
        .prepare_cached(
            "SELECT coalesce(sum(b.size), 0) FROM artifact_bundles b
             JOIN artifact_bundle_projects p ON p.bundle_id = b.id WHERE p.project_id = ?1",
        )?
        .query_row([project_id], |r| r.get(0))?;
    Ok(n.max(0) as u64)
}
