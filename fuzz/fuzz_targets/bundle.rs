//! Fuzzes the artifact-bundle reader (`SYSB` + ZIP + manifest from sentry-cli): `Ok` or `Err`,
//! never a panic or a runaway allocation, and what it accepts is within the bounds it promises.
#![no_main]

use libfuzzer_sys::fuzz_target;
use phoebe::artifacts::{limits, read_manifest};

fuzz_target!(|data: &[u8]| {
    if let Ok(manifest) = read_manifest(data) {
        assert!(manifest.files.len() <= limits::MAX_FILES);
        for f in &manifest.files {
            assert!(f.size <= limits::MAX_FILE_SIZE);
            assert!(!f.path.contains("..") || f.path.split('/').all(|p| p != ".."));
        }
    }
});
