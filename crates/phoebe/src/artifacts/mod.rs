//! Source-map artifacts as sentry-cli uploads them: content-addressed chunks, assembled into
//! artifact bundles (`SYSB` header + ZIP with a `manifest.json`), which are checked and indexed
//! before they are kept. Applying the maps to stack frames builds on these.
//!
//! Architecture invariant: a bundle is outside data. Its size, its number of entries, each
//! entry's declared and actual size, and its names are bounded and checked before anything is
//! kept; nothing here writes a file.

pub mod bundle;
pub mod sourcemaps;

pub use bundle::read_manifest;
pub use sourcemaps::SourceMaps;

/// What `GET .../chunk-upload/` promises sentry-cli, and what uploads are held to.
pub mod limits {
    /// Bytes per chunk.
    pub const CHUNK_SIZE: usize = 8 * 1024 * 1024;
    /// Chunks per upload request.
    pub const CHUNKS_PER_REQUEST: usize = 64;
    /// Bytes per upload request.
    pub const MAX_REQUEST_SIZE: usize = 32 * 1024 * 1024;
    /// Bytes per assembled bundle.
    pub const MAX_BUNDLE_SIZE: usize = 256 * 1024 * 1024;
    /// Files per bundle.
    pub const MAX_FILES: usize = 20_000;
    /// Bytes of one file once unpacked (a minified bundle or its map).
    pub const MAX_FILE_SIZE: u64 = 100 * 1024 * 1024;
    /// Bytes of all files of a bundle once unpacked.
    pub const MAX_UNPACKED: u64 = 1024 * 1024 * 1024;
    /// Bytes of the manifest.
    pub const MAX_MANIFEST: u64 = 16 * 1024 * 1024;
}

/// The SHA-1 of `data`, in lowercase hex, as sentry-cli names chunks and bundles.
pub fn sha1_hex(data: &[u8]) -> String {
    use sha1::Digest;
    let digest = sha1::Sha1::digest(data);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `s` looks like a SHA-1 in hex (40 lowercase hex digits).
pub fn is_sha1(s: &str) -> bool {
    s.len() == 40
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}
