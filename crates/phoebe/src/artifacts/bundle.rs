//! Reading an artifact bundle: the `SYSB` header, then a ZIP whose `manifest.json` lists the
//! files (`files/…`) with their URL (`~/static/app.min.js`), type and headers (`debug-id`,
//! `sourcemap`). Bombs, traversal and oversized entries are refused before anything is kept.

use std::io::{Cursor, Read};

use serde_json::Value;

use super::limits::*;
use crate::domain::{BundleFile, Manifest};

fn text(v: &Value, key: &str) -> Option<String> {
    v[key]
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// A header of a manifest entry, by name in any case.
fn header(entry: &Value, name: &str) -> Option<String> {
    entry["headers"]
        .as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.as_str())
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Whether a ZIP entry name is a plain relative path (no `..`, no root, no drive, no NUL).
fn safe_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(['/', '\\'])
        && !name.contains(['\0', '\\', ':'])
        && name.split('/').all(|part| part != ".." && part != ".")
}

/// Reads and checks a bundle: a ZIP within the size bounds, safe names, a manifest whose files
/// all exist with sizes within bounds. The error says what is wrong, for the uploader.
pub fn read_manifest(bundle: &[u8]) -> Result<Manifest, String> {
    if bundle.len() > MAX_BUNDLE_SIZE {
        return Err(format!(
            "the bundle is larger than {} MiB",
            MAX_BUNDLE_SIZE / (1024 * 1024)
        ));
    }
    // sentry-cli writes `SYSB` and a format version before the ZIP; the reader finds where the
    // ZIP starts by itself, whether its offsets count that header or not.
    let mut archive = zip::ZipArchive::new(Cursor::new(bundle))
        .map_err(|e| format!("the bundle is not a ZIP archive: {e}"))?;
    if archive.len() > MAX_FILES + 1 {
        return Err(format!("the bundle has more than {MAX_FILES} files"));
    }
    // Declared sizes, checked before anything is unpacked; reads are bounded as well, since a
    // declared size can lie.
    let mut sizes = std::collections::HashMap::new();
    let mut total: u64 = 0;
    for i in 0..archive.len() {
        let entry = archive
            .by_index_raw(i)
            .map_err(|e| format!("entry {i} of the bundle is unreadable: {e}"))?;
        let name = entry
            .name()
            .map_err(|e| format!("entry {i} of the bundle has an unreadable name: {e}"))?
            .to_string();
        if !safe_name(&name) {
            return Err(format!("the bundle has an unsafe file name {name:?}"));
        }
        if entry.size() > MAX_FILE_SIZE {
            return Err(format!(
                "{name} is larger than {} MiB unpacked",
                MAX_FILE_SIZE / (1024 * 1024)
            ));
        }
        total = total.saturating_add(entry.size());
        sizes.insert(name, entry.size());
    }
    if total > MAX_UNPACKED {
        return Err(format!(
            "the bundle unpacks to more than {} MiB",
            MAX_UNPACKED / (1024 * 1024)
        ));
    }
    let manifest = {
        let entry = archive
            .by_name("manifest.json")
            .map_err(|_| "the bundle has no manifest.json".to_string())?;
        let mut raw = Vec::new();
        entry
            .take(MAX_MANIFEST + 1)
            .read_to_end(&mut raw)
            .map_err(|e| format!("manifest.json is unreadable: {e}"))?;
        if raw.len() as u64 > MAX_MANIFEST {
            return Err("manifest.json is too large".into());
        }
        serde_json::from_slice::<Value>(&raw)
            .map_err(|e| format!("manifest.json is not JSON: {e}"))?
    };
    let mut files = Vec::new();
    if let Some(listed) = manifest["files"].as_object() {
        for (path, entry) in listed {
            let size = *sizes
                .get(path)
                .ok_or_else(|| format!("manifest.json lists {path}, which the bundle lacks"))?;
            let url =
                text(entry, "url").ok_or_else(|| format!("manifest.json gives {path} no url"))?;
            files.push(BundleFile {
                path: path.clone(),
                url,
                kind: text(entry, "type").unwrap_or_else(|| "source".into()),
                // Stored lowercase, as events are looked up.
                debug_id: header(entry, "debug-id").map(|id| id.to_lowercase()),
                sourcemap: header(entry, "sourcemap"),
                size,
            });
        }
    }
    Ok(Manifest {
        release: text(&manifest, "release"),
        dist: text(&manifest, "dist"),
        debug_id: text(&manifest, "debug_id"),
        files,
    })
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use std::io::Write;

    /// A bundle as sentry-cli writes it, with these (name, content) entries.
    pub fn bundle(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default();
        for (name, content) in entries {
            zip.start_file(*name, options).unwrap();
            zip.write_all(content).unwrap();
        }
        let mut out = b"SYSB\x02\x00\x00\x00".to_vec();
        out.extend(zip.finish().unwrap().into_inner());
        out
    }

    const MANIFEST: &str = r#"{"files":{"files/_/_/app.min.js":{"type":"minified_source","url":"~/app.min.js","headers":{"Debug-Id":"151fbe13-4ed4-5497-b9e0-eafca98aaa7e","sourcemap":"app.min.js.map"}},"files/_/_/app.min.js.map":{"type":"source_map","url":"~/app.min.js.map","headers":{"debug-id":"151fbe13-4ed4-5497-b9e0-eafca98aaa7e"}}},"debug_id":"7005a89e-9145-5616-845e-9e5a1cfdc604","release":"web@2.3.0"}"#;

    #[test]
    fn a_sentry_cli_bundle_lists_its_files_with_urls_and_debug_ids() {
        let b = bundle(&[
            ("files/_/_/app.min.js", b"function a(){}"),
            ("files/_/_/app.min.js.map", b"{}"),
            ("manifest.json", MANIFEST.as_bytes()),
        ]);
        let m = read_manifest(&b).unwrap();
        assert_eq!(m.release.as_deref(), Some("web@2.3.0"));
        let js = m
            .files
            .iter()
            .find(|f| f.kind == "minified_source")
            .unwrap();
        assert_eq!(js.url, "~/app.min.js");
        assert_eq!(
            js.debug_id.as_deref(),
            Some("151fbe13-4ed4-5497-b9e0-eafca98aaa7e")
        );
        assert_eq!(js.sourcemap.as_deref(), Some("app.min.js.map"));
        assert_eq!(js.size, 14);
    }

    #[test]
    fn bad_bundles_are_refused_with_the_reason() {
        assert!(read_manifest(b"SYSB\x02\x00\x00\x00not a zip")
            .unwrap_err()
            .contains("not a ZIP"));
        let no_manifest = bundle(&[("files/a.js", b"x")]);
        assert!(read_manifest(&no_manifest)
            .unwrap_err()
            .contains("no manifest"));
        let traversal = bundle(&[("../../etc/passwd", b"x"), ("manifest.json", b"{}")]);
        assert!(read_manifest(&traversal).unwrap_err().contains("unsafe"));
        let missing = bundle(&[("manifest.json", MANIFEST.as_bytes())]);
        assert!(read_manifest(&missing).unwrap_err().contains("lacks"));
        let not_json = bundle(&[("manifest.json", b"{")]);
        assert!(read_manifest(&not_json).unwrap_err().contains("not JSON"));
    }

    #[test]
    fn a_zip_bomb_is_refused_by_its_declared_size() {
        // 200 MiB of zeros compress to a few hundred KiB.
        let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        zip.start_file("files/bomb.js", options).unwrap();
        let zeros = vec![0u8; 1024 * 1024];
        for _ in 0..200 {
            zip.write_all(&zeros).unwrap();
        }
        zip.start_file("manifest.json", options).unwrap();
        zip.write_all(b"{}").unwrap();
        let bytes = zip.finish().unwrap().into_inner();
        assert!(bytes.len() < 2 * 1024 * 1024);
        assert!(read_manifest(&bytes).unwrap_err().contains("larger than"));
    }

    #[test]
    fn names_are_checked() {
        for ok in ["manifest.json", "files/_/_/app.min.js", "files/a b/c.map"] {
            assert!(safe_name(ok), "{ok}");
        }
        for bad in ["", "/etc/x", "a/../b", "C:\\x", "a\\b", "./a"] {
            assert!(!safe_name(bad), "{bad}");
        }
    }
}
