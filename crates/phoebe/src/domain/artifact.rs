//! Source-map artifacts: what an uploaded artifact bundle holds (its manifest's files) and what
//! is kept of it.

use super::ids::{OrgId, ProjectId};

/// One file of a bundle, as its manifest describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleFile {
    /// Its path inside the ZIP (`files/_/_/app.min.js`).
    pub path: String,
    /// The URL it was served at (`~/app.min.js`, `app:///main.js`).
    pub url: String,
    /// `minified_source`, `source_map`, `source` or `indexed_ram_bundle`.
    pub kind: String,
    /// The debug id `sourcemaps inject` gave it.
    pub debug_id: Option<String>,
    /// The map it names (`sourcemap` header).
    pub sourcemap: Option<String>,
    /// Bytes once unpacked.
    pub size: u64,
}

/// What a bundle's manifest says.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Manifest {
    /// The release it was uploaded for, if any.
    pub release: Option<String>,
    /// The distribution, if any.
    pub dist: Option<String>,
    /// The bundle's own debug id.
    pub debug_id: Option<String>,
    /// Its files.
    pub files: Vec<BundleFile>,
}

/// An assembled, checked bundle to keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewBundle {
    /// Organization.
    pub org_id: OrgId,
    /// SHA-1 of the whole bundle, as sentry-cli names it.
    pub checksum: String,
    /// Projects it was uploaded for.
    pub projects: Vec<ProjectId>,
    /// Release (the upload's `--release`, else the manifest's).
    pub release: Option<String>,
    /// Distribution.
    pub dist: Option<String>,
    /// What its manifest says.
    pub manifest: Manifest,
}

/// Where an assembly stands, as sentry-cli's `assemble` endpoint reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assembly {
    /// Chunks are missing: upload these.
    Missing(Vec<String>),
    /// Assembled and kept.
    Ok,
    /// The chunks do not make a usable bundle; why.
    Error(String),
}
