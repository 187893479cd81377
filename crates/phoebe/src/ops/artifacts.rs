//! Source-map uploads as sentry-cli makes them: chunks checked against the SHA-1 they are named
//! by, then assembled into an artifact bundle that is checked (whole-file SHA-1, ZIP bounds,
//! manifest) before it is kept for its release and projects.

use std::io::Read;

use super::{Ops, OpsError, OpsResult, Permission};
use crate::artifacts::{self, limits};
use crate::domain::*;

/// Bytes in words: `512 KiB`, `3 MiB`.
fn size_text(bytes: u64) -> String {
    match bytes {
        b if b >= 1024 * 1024 => format!("{} MiB", b.div_ceil(1024 * 1024)),
        b => format!("{} KiB", b.div_ceil(1024)),
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// One uploaded chunk: the SHA-1 it is named by, whether it is gzip-compressed, its bytes.
#[derive(Debug, Clone)]
pub struct ChunkPart {
    /// The SHA-1 of its (uncompressed) bytes, as the upload names it.
    pub checksum: String,
    /// Sent as `file_gzip`.
    pub gzip: bool,
    /// As sent.
    pub bytes: Vec<u8>,
}

/// `POST .../artifactbundle/assemble/`: the bundle's SHA-1, its chunks' in order, and what
/// it is for.
#[derive(Debug, Clone, Default)]
pub struct AssembleRequest {
    /// SHA-1 of the whole bundle.
    pub checksum: String,
    /// SHA-1s of its chunks, in order.
    pub chunks: Vec<String>,
    /// Project slugs or ids.
    pub projects: Vec<String>,
    /// Release (`--release`).
    pub version: Option<String>,
    /// Distribution (`--dist`).
    pub dist: Option<String>,
}

impl Ops {
    /// Checks that the caller may upload to an organization (the chunk-upload options).
    pub fn may_upload(&self, org: &str) -> OpsResult<()> {
        self.upload_org(org).map(drop)
    }

    fn upload_org(&self, org: &str) -> OpsResult<Org> {
        self.allow(Permission::ManageProjects)?;
        self.org(Some(org))
    }

    /// Keeps uploaded chunks, each checked against its name; returns how many.
    pub fn upload_chunks(&self, org: &str, parts: Vec<ChunkPart>) -> OpsResult<usize> {
        let org = self.upload_org(org)?;
        if parts.len() > limits::CHUNKS_PER_REQUEST {
            return Err(OpsError::Invalid(format!(
                "at most {} chunks per request",
                limits::CHUNKS_PER_REQUEST
            )));
        }
        let mut chunks = Vec::with_capacity(parts.len());
        for part in parts {
            if !artifacts::is_sha1(&part.checksum) {
                return Err(OpsError::Invalid(format!(
                    "a chunk is named by its SHA-1 (40 hex digits), not {:?}",
                    part.checksum.chars().take(64).collect::<String>()
                )));
            }
            let data = if part.gzip {
                let mut out = Vec::new();
                flate2::read::GzDecoder::new(part.bytes.as_slice())
                    .take(limits::CHUNK_SIZE as u64 + 1)
                    .read_to_end(&mut out)
                    .map_err(|e| {
                        OpsError::Invalid(format!("chunk {} is not valid gzip: {e}", part.checksum))
                    })?;
                out
            } else {
                part.bytes
            };
            if data.len() > limits::CHUNK_SIZE {
                return Err(OpsError::Invalid(format!(
                    "chunk {} is larger than {} bytes",
                    part.checksum,
                    limits::CHUNK_SIZE
                )));
            }
            let actual = artifacts::sha1_hex(&data);
            if actual != part.checksum {
                return Err(OpsError::Invalid(format!(
                    "chunk {} has the SHA-1 {actual}: it was damaged on the way",
                    part.checksum
                )));
            }
            chunks.push((part.checksum, data));
        }
        let n = chunks.len();
        self.store.put_chunks(org.id, &chunks, now_ms())?;
        Ok(n)
    }

    /// Assembles a bundle from its chunks: the missing ones to upload first; or the bundle
    /// checked and kept (again is no copy); or why it cannot be used.
    pub fn assemble_bundle(&self, org: &str, req: AssembleRequest) -> OpsResult<Assembly> {
        let org = self.upload_org(org)?;
        if !artifacts::is_sha1(&req.checksum) || !req.chunks.iter().all(|c| artifacts::is_sha1(c)) {
            return Err(OpsError::Invalid(
                "checksum and chunks are SHA-1s (40 lowercase hex digits)".into(),
            ));
        }
        // More chunks than a bundle may have would ask the store to unpack more than it may hold.
        let max_chunks = limits::MAX_BUNDLE_SIZE.div_ceil(limits::CHUNK_SIZE);
        if req.chunks.len() > max_chunks {
            return Err(OpsError::Invalid(format!(
                "a bundle has at most {max_chunks} chunks of {} bytes",
                limits::CHUNK_SIZE
            )));
        }
        let projects = self.org_projects_by_name(&org, &req.projects)?;
        if projects.is_empty() {
            return Err(OpsError::Invalid(
                "name the project the source maps are for (sentry-cli --project)".into(),
            ));
        }
        if self.store.has_bundle(org.id, &req.checksum)? {
            // The same build uploaded again, perhaps for another project: it serves that too.
            self.store.link_bundle(org.id, &req.checksum, &projects)?;
            return Ok(Assembly::Ok);
        }
        let missing = self.store.missing_chunks(org.id, &req.chunks)?;
        if !missing.is_empty() {
            return Ok(Assembly::Missing(missing));
        }
        let Some(pieces) = self.store.chunk_data(org.id, &req.chunks)? else {
            return Ok(Assembly::Missing(
                self.store.missing_chunks(org.id, &req.chunks)?,
            ));
        };
        let size: usize = pieces.iter().map(Vec::len).sum();
        if size > limits::MAX_BUNDLE_SIZE {
            return Ok(Assembly::Error(format!(
                "the bundle is larger than {} MiB",
                limits::MAX_BUNDLE_SIZE / (1024 * 1024)
            )));
        }
        let data = pieces.concat();
        let actual = artifacts::sha1_hex(&data);
        if actual != req.checksum {
            return Ok(Assembly::Error(format!(
                "the chunks make a file with SHA-1 {actual}, not {}",
                req.checksum
            )));
        }
        let manifest = match artifacts::read_manifest(&data) {
            Ok(m) => m,
            Err(why) => return Ok(Assembly::Error(why)),
        };
        let limit = self.policy.quotas.sourcemap_bytes_per_project;
        if limit > 0 {
            for p in &projects {
                let used = self.store.uploaded_bytes(*p)?;
                if used + data.len() as u64 > limit {
                    let slug = self.store.project(*p)?.slug;
                    return Ok(Assembly::Error(format!(
                        "project {slug} already keeps {} of source maps and this bundle would pass its {} limit ([quotas] sourcemap_bytes_per_project): delete old releases (sentry-cli releases delete) to make room",
                        size_text(used),
                        size_text(limit)
                    )));
                }
            }
        }
        let bundle = NewBundle {
            org_id: org.id,
            checksum: req.checksum.clone(),
            projects,
            release: req
                .version
                .filter(|v| !v.is_empty())
                .or_else(|| manifest.release.clone()),
            dist: req
                .dist
                .filter(|d| !d.is_empty())
                .or_else(|| manifest.dist.clone()),
            manifest,
        };
        self.store
            .create_bundle(&bundle, &data, &req.chunks, now_ms())?;
        Ok(Assembly::Ok)
    }

    /// Files of the organization's artifact bundles (of one release), newest bundle first.
    pub fn artifact_files(
        &self,
        org: &str,
        release: Option<&str>,
    ) -> OpsResult<Vec<(String, Option<String>, BundleFile)>> {
        self.allow(Permission::Read)?;
        let org = self.org(Some(org))?;
        Ok(self.store.bundle_files(org.id, release)?)
    }
}
