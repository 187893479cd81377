//! Source maps applied to JavaScript stack frames before grouping. For each frame with a line
//! and column: the map is found by debug id (`debug_meta.images`), else by release and URL
//! among the files uploaded for the event's project; the frame then shows the original file,
//! line, column, function and source lines, keeps the minified ones under `data.sourcemap`,
//! and says why when it could not be mapped (`data.sourcemap_error`).

use std::collections::HashMap;
use std::io::{Cursor, Read};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use sourcemap::{DecodedMap, SourceView};

use super::limits::MAX_FILE_SIZE;
use crate::domain::{BundleFile, ProjectId};
use crate::store::ArtifactStore;

/// Bytes of parsed maps and minified sources kept between events (an error storm from one
/// bundle parses it once).
const CACHE_BYTES: usize = 64 * 1024 * 1024;

/// How long the list of a release's (or debug id's) uploaded files is reused: events of one
/// release come in bursts, and a burst without uploads must not query per frame.
const LISTING_TTL: std::time::Duration = std::time::Duration::from_secs(10);

/// Listings kept at most; past this the listing cache starts over.
const MAX_LISTINGS: usize = 10_000;

type Listing = Arc<Vec<(String, BundleFile)>>;

/// Parsed maps by (bundle checksum, file path), and the bytes they hold.
type ParsedCache = (HashMap<(String, String), Arc<Parsed>>, usize);

/// Source lines shown around a mapped frame's line, each way.
const CONTEXT: u32 = 5;

/// Why a frame kept its minified location; shown with the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotMapped {
    /// The event names a debug id for the file, and nothing uploaded carries it.
    UnknownDebugId,
    /// Nothing uploaded for the event's release (and dist) has this file's URL.
    NoBundleForRelease,
    /// The event has no debug id for the file and no release.
    NoReleaseNoDebugId,
    /// The minified file was found but names no source map.
    NoMapReferenced,
    /// The map it names was not uploaded.
    MapMissing,
    /// The map could not be read.
    BadMap,
    /// The map has no token at the frame's line and column.
    NoToken,
}

impl NotMapped {
    /// What the frame says.
    pub fn reason(self) -> &'static str {
        match self {
            NotMapped::UnknownDebugId => "unknown debug id: no uploaded map carries the debug id this file reports (upload the injected files)",
            NotMapped::NoBundleForRelease => "no uploaded file of this release has this URL (check --release and --url-prefix)",
            NotMapped::NoReleaseNoDebugId => "the event has neither a debug id for this file nor a release (run sentry-cli sourcemaps inject, or set release)",
            NotMapped::NoMapReferenced => "the minified file names no source map (no sourceMappingURL)",
            NotMapped::MapMissing => "the source map the file names was not uploaded",
            NotMapped::BadMap => "the source map could not be read",
            NotMapped::NoToken => "the source map has no mapping at this line and column",
        }
    }
}

/// A parsed map, with the minified source when the bundle has it (for function names).
struct Parsed {
    map: DecodedMap,
    minified: Option<SourceView>,
    bytes: usize,
}

/// Maps the frames of events to their original sources, from what was uploaded.
pub struct SourceMaps {
    store: Arc<dyn ArtifactStore>,
    cache: Mutex<ParsedCache>,
    listings: Mutex<HashMap<(ProjectId, String), (std::time::Instant, Listing)>>,
    /// Per uploaded file: the `sourceMappingURL` it ends with, or why its map failed to parse,
    /// so neither costs a bundle read per frame.
    remembered: Mutex<HashMap<(String, String), Remembered>>,
    /// Whether a project has any upload (refreshed like listings): a project that never
    /// uploads maps gets no notes on its frames.
    uploads: Mutex<HashMap<ProjectId, (std::time::Instant, bool)>>,
}

/// What is remembered of an uploaded file (see [`SourceMaps`]).
type Remembered = Result<Option<String>, NotMapped>;

impl SourceMaps {
    /// Over the artifacts kept in `store`.
    pub fn new(store: Arc<dyn ArtifactStore>) -> SourceMaps {
        SourceMaps {
            store,
            cache: Mutex::new((HashMap::new(), 0)),
            listings: Mutex::new(HashMap::new()),
            remembered: Mutex::new(HashMap::new()),
            uploads: Mutex::new(HashMap::new()),
        }
    }

    /// Maps every JavaScript frame of an event (of a project) that has a line and a column;
    /// returns how many it mapped.
    pub fn apply(&self, project_id: ProjectId, event: &mut Value) -> usize {
        if !looks_like_javascript(event) || !self.has_uploads(project_id) {
            return 0;
        }
        let release = event["release"].as_str().map(str::to_string);
        let dist = event["dist"].as_str().map(str::to_string);
        let images: Vec<(String, String)> = event["debug_meta"]["images"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|i| i["type"] == "sourcemap")
            .filter_map(|i| {
                Some((
                    i["code_file"].as_str()?.to_string(),
                    i["debug_id"].as_str()?.to_lowercase(),
                ))
            })
            .collect();
        let ctx = Ctx {
            project_id,
            release: release.as_deref(),
            dist: dist.as_deref(),
            images: &images,
        };
        let mut mapped = 0;
        for frames in frame_lists(event) {
            for frame in frames.iter_mut() {
                mapped += usize::from(self.map_frame(&ctx, frame));
            }
        }
        mapped
    }

    fn map_frame(&self, ctx: &Ctx, frame: &mut Value) -> bool {
        let (Some(line), Some(col)) = (frame["lineno"].as_u64(), frame["colno"].as_u64()) else {
            return false;
        };
        let Some(url) = frame["abs_path"]
            .as_str()
            .or_else(|| frame["filename"].as_str())
            .map(str::to_string)
        else {
            return false;
        };
        // `.js` covers `.mjs`, `.cjs` and `.jsx`.
        if line == 0 || col == 0 || !url.contains(".js") {
            return false;
        }
        let (Ok(line), Ok(col)) = (u32::try_from(line), u32::try_from(col)) else {
            return false;
        };
        match self.lookup(ctx, &url) {
            Ok(parsed) => write_mapped(frame, &parsed, &url, line, col),
            Err(why) => {
                note(frame, "sourcemap_error", Value::String(why.reason().into()));
                false
            }
        }
    }

    /// Whether anything was uploaded for a project (cached like listings).
    fn has_uploads(&self, project_id: ProjectId) -> bool {
        let mut uploads = self.uploads.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, has)) = uploads.get(&project_id) {
            if at.elapsed() < LISTING_TTL {
                return *has;
            }
        }
        let has = self
            .store
            .uploaded_bytes(project_id)
            .is_ok_and(|bytes| bytes > 0);
        if uploads.len() >= MAX_LISTINGS {
            uploads.clear();
        }
        uploads.insert(project_id, (std::time::Instant::now(), has));
        has
    }

    /// A project's files for a key (`id:<debug id>` or `release:<release>\n<dist>`), from the
    /// listing cache or the store.
    fn listing(
        &self,
        project_id: ProjectId,
        key: String,
        read: impl FnOnce() -> crate::store::StoreResult<Vec<(String, BundleFile)>>,
    ) -> Result<Listing, NotMapped> {
        let cache_key = (project_id, key);
        if let Some((at, hit)) = self
            .listings
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&cache_key)
        {
            if at.elapsed() < LISTING_TTL {
                return Ok(hit.clone());
            }
        }
        let files: Listing = Arc::new(read().map_err(|_| NotMapped::MapMissing)?);
        let mut listings = self.listings.lock().unwrap_or_else(|p| p.into_inner());
        if listings.len() >= MAX_LISTINGS {
            listings.clear();
        }
        listings.insert(cache_key, (std::time::Instant::now(), files.clone()));
        Ok(files)
    }

    /// Finds and parses the map for a frame's file.
    fn lookup(&self, ctx: &Ctx, url: &str) -> Result<Arc<Parsed>, NotMapped> {
        if let Some((_, debug_id)) = ctx.images.iter().find(|(file, _)| file == url) {
            let files = self.listing(ctx.project_id, format!("id:{debug_id}"), || {
                self.store.files_by_debug_id(ctx.project_id, debug_id)
            })?;
            if let Some(map) = files.iter().find(|(_, f)| f.kind == "source_map") {
                let minified = files.iter().find(|(_, f)| f.kind == "minified_source");
                return self.parse(ctx, map, minified);
            }
            // Nothing carries the debug id: the release may still have the file by its URL.
            if ctx.release.is_none() {
                return Err(NotMapped::UnknownDebugId);
            }
        }
        let Some(release) = ctx.release else {
            return Err(NotMapped::NoReleaseNoDebugId);
        };
        let key = format!("release:{release}\n{}", ctx.dist.unwrap_or(""));
        let files = self.listing(ctx.project_id, key, || {
            self.store
                .files_of_release(ctx.project_id, release, ctx.dist)
        })?;
        let minified = find_by_url(&files, url, |f| f.kind != "source_map")
            .ok_or(NotMapped::NoBundleForRelease)?;
        // The map the upload's `sourcemap` header names, else the file's own
        // `sourceMappingURL` comment (possibly a `data:` URL holding the map itself), else a map
        // uploaded beside it as `<file>.map`.
        let named = match &minified.1.sourcemap {
            Some(name) => Some(name.clone()),
            None => self.mapping_url(ctx, minified),
        };
        if let Some(inline) = named.as_deref().and_then(|n| n.strip_prefix("data:")) {
            return self.parse_inline(minified, inline);
        }
        let map_url = match &named {
            Some(name) => resolve(&minified.1.url, name),
            None => format!("{}.map", minified.1.url),
        };
        let map = files
            .iter()
            .find(|(_, f)| f.kind == "source_map" && f.url == map_url)
            .ok_or(if named.is_some() {
                NotMapped::MapMissing
            } else {
                NotMapped::NoMapReferenced
            })?;
        self.parse(ctx, map, Some(minified))
    }

    /// The `sourceMappingURL` a minified file ends with, if any.
    fn mapping_url(&self, ctx: &Ctx, minified: &(String, BundleFile)) -> Option<String> {
        let key = (minified.0.clone(), minified.1.path.clone());
        if let Some(Ok(known)) = self.lock_remembered().get(&key) {
            return known.clone();
        }
        let found = self
            .store
            .bundle_bytes(ctx.project_id, &minified.0)
            .ok()
            .flatten()
            .and_then(|bundle| entry(&bundle, &minified.1.path))
            .and_then(|source| source_mapping_url(&source));
        self.remember_result(key, Ok(found.clone()));
        found
    }

    fn lock_remembered(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Remembered>> {
        self.remembered.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn remember_result(&self, key: (String, String), result: Remembered) {
        let mut remembered = self.lock_remembered();
        if remembered.len() >= MAX_LISTINGS {
            remembered.clear();
        }
        remembered.insert(key, result);
    }

    /// A map carried in a `data:` URL (`application/json;base64,…`).
    fn parse_inline(
        &self,
        minified: &(String, BundleFile),
        data: &str,
    ) -> Result<Arc<Parsed>, NotMapped> {
        use base64::Engine as _;
        let key = (minified.0.clone(), format!("{}#inline", minified.1.path));
        if let Some(hit) = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .0
            .get(&key)
        {
            return Ok(hit.clone());
        }
        let (meta, payload) = data.split_once(',').ok_or(NotMapped::BadMap)?;
        let raw = if meta.ends_with(";base64") {
            base64::engine::general_purpose::STANDARD
                .decode(payload.trim())
                .map_err(|_| NotMapped::BadMap)?
        } else {
            payload.as_bytes().to_vec()
        };
        let parsed = Arc::new(Parsed {
            bytes: raw.len(),
            map: flat(sourcemap::decode_slice(&raw).map_err(|_| NotMapped::BadMap)?)?,
            minified: None,
        });
        self.remember(key, parsed.clone());
        Ok(parsed)
    }

    fn remember(&self, key: (String, String), parsed: Arc<Parsed>) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.1 + parsed.bytes > CACHE_BYTES {
            cache.0.clear();
            cache.1 = 0;
        }
        cache.1 += parsed.bytes;
        cache.0.insert(key, parsed);
    }

    fn parse(
        &self,
        ctx: &Ctx,
        map: &(String, BundleFile),
        minified: Option<&(String, BundleFile)>,
    ) -> Result<Arc<Parsed>, NotMapped> {
        let key = (map.0.clone(), map.1.path.clone());
        if let Some(hit) = self
            .cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .0
            .get(&key)
        {
            return Ok(hit.clone());
        }
        if let Some(Err(why)) = self.lock_remembered().get(&key) {
            return Err(*why);
        }
        let parsed = self.parse_uncached(ctx, map, minified);
        if let Err(why) = &parsed {
            self.remember_result(key, Err(*why));
        }
        parsed
    }

    fn parse_uncached(
        &self,
        ctx: &Ctx,
        map: &(String, BundleFile),
        minified: Option<&(String, BundleFile)>,
    ) -> Result<Arc<Parsed>, NotMapped> {
        let key = (map.0.clone(), map.1.path.clone());
        let bundle = self
            .store
            .bundle_bytes(ctx.project_id, &map.0)
            .ok()
            .flatten()
            .ok_or(NotMapped::MapMissing)?;
        let raw = entry(&bundle, &map.1.path).ok_or(NotMapped::BadMap)?;
        let decoded = flat(sourcemap::decode_slice(&raw).map_err(|_| NotMapped::BadMap)?)?;
        let minified = minified
            .filter(|m| m.0 == map.0)
            .and_then(|m| entry(&bundle, &m.1.path))
            .and_then(|b| String::from_utf8(b).ok())
            .map(SourceView::from_string);
        let parsed = Arc::new(Parsed {
            bytes: raw.len() + minified.as_ref().map_or(0, |m| m.source().len()),
            map: decoded,
            minified,
        });
        self.remember(key, parsed.clone());
        Ok(parsed)
    }
}

impl crate::digest::FrameMapper for SourceMaps {
    fn map_frames(&self, project_id: ProjectId, event: &mut Value) -> bool {
        self.apply(project_id, event) > 0
    }
}

struct Ctx<'a> {
    project_id: ProjectId,
    release: Option<&'a str>,
    dist: Option<&'a str>,
    images: &'a [(String, String)],
}

/// Whether an event comes from JavaScript (browser, node, or a JS framework SDK).
fn looks_like_javascript(event: &Value) -> bool {
    matches!(event["platform"].as_str(), Some("javascript" | "node"))
        || event["sdk"]["name"]
            .as_str()
            .is_some_and(|n| n.starts_with("sentry.javascript"))
}

/// The event's frame lists: each exception's, the top-level stacktrace's, each thread's.
fn frame_lists(event: &mut Value) -> Vec<&mut Vec<Value>> {
    let mut out = Vec::new();
    let Some(obj) = event.as_object_mut() else {
        return out;
    };
    for (key, value) in obj.iter_mut() {
        match key.as_str() {
            "exception" | "threads" => {
                let values = match value {
                    Value::Object(o) => o.get_mut("values"),
                    other => Some(other),
                };
                if let Some(Value::Array(items)) = values {
                    for item in items {
                        if let Some(Value::Array(frames)) = item.pointer_mut("/stacktrace/frames") {
                            out.push(frames);
                        }
                    }
                }
            }
            "stacktrace" => {
                if let Some(Value::Array(frames)) = value.get_mut("frames") {
                    out.push(frames);
                }
            }
            _ => {}
        }
    }
    out
}

/// The uploaded file a frame's URL names: the same URL, or `~/path` for its path (with and
/// without the query), or else one whose `~/…` path ends the frame's path (node's absolute
/// file paths).
fn find_by_url<'a>(
    files: &'a [(String, BundleFile)],
    url: &str,
    wanted: impl Fn(&BundleFile) -> bool,
) -> Option<&'a (String, BundleFile)> {
    let no_query = url.split(['?', '#']).next().unwrap_or(url);
    let path = no_query
        .split_once("://")
        .map(|(_, rest)| rest.find('/').map_or("/", |i| &rest[i..]))
        .unwrap_or(no_query);
    let tilde = format!("~{path}");
    let candidates = [url, no_query, tilde.as_str()];
    files
        .iter()
        .filter(|(_, f)| wanted(f))
        .find(|(_, f)| candidates.contains(&f.url.as_str()))
        .or_else(|| {
            files.iter().filter(|(_, f)| wanted(f)).find(|(_, f)| {
                f.url
                    .strip_prefix('~')
                    .is_some_and(|suffix| suffix.starts_with('/') && path.ends_with(suffix))
            })
        })
}

/// An indexed (sectioned) map as one regular map: lookups by line then need no section offsets.
fn flat(map: DecodedMap) -> Result<DecodedMap, NotMapped> {
    match map {
        DecodedMap::Index(index) => index
            .flatten()
            .map(DecodedMap::Regular)
            .map_err(|_| NotMapped::BadMap),
        other => Ok(other),
    }
}

/// The URL in a file's last `//# sourceMappingURL=` (or `//@`) comment.
fn source_mapping_url(source: &[u8]) -> Option<String> {
    // The comment is at the end; a data URL can be long, so look at the last 1 MiB.
    let tail = &source[source.len().saturating_sub(1024 * 1024)..];
    let text = String::from_utf8_lossy(tail);
    text.lines().rev().find_map(|line| {
        let line = line.trim();
        let rest = line
            .strip_prefix("//# sourceMappingURL=")
            .or_else(|| line.strip_prefix("//@ sourceMappingURL="))?;
        Some(rest.trim().to_string()).filter(|u| !u.is_empty())
    })
}

/// `name` (a `sourcemap` header or `sourceMappingURL`) relative to the file's URL.
fn resolve(file_url: &str, name: &str) -> String {
    if name.contains("://") || name.starts_with('~') || name.starts_with('/') {
        return name.to_string();
    }
    match file_url.rsplit_once('/') {
        Some((dir, _)) => format!("{dir}/{name}"),
        None => name.to_string(),
    }
}

/// One entry of a bundle, read with its size bounded.
fn entry(bundle: &[u8], path: &str) -> Option<Vec<u8>> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bundle)).ok()?;
    let file = archive.by_name(path).ok()?;
    let mut out = Vec::new();
    file.take(MAX_FILE_SIZE + 1).read_to_end(&mut out).ok()?;
    (out.len() as u64 <= MAX_FILE_SIZE).then_some(out)
}

/// Rewrites a frame to its original location, keeping the minified one.
fn write_mapped(frame: &mut Value, parsed: &Parsed, url: &str, line: u32, col: u32) -> bool {
    // The nearest token before the position, on the frame's own line: a token from an earlier
    // line would name code that did not run here.
    let token = parsed
        .map
        .lookup_token(line - 1, col - 1)
        .filter(|t| t.get_dst_line() == line - 1 && t.get_source().is_some());
    let Some(token) = token else {
        note(
            frame,
            "sourcemap_error",
            Value::String(NotMapped::NoToken.reason().into()),
        );
        return false;
    };
    let minified_function = frame["function"].as_str().map(str::to_string);
    let short = minified_function
        .as_deref()
        .and_then(|f| f.rsplit('.').next())
        .map(str::to_string);
    let function = parsed
        .map
        .get_original_function_name(
            line - 1,
            col - 1,
            short.as_deref(),
            parsed.minified.as_ref(),
        )
        .map(str::to_string);
    let source = token.get_source().unwrap_or(url).to_string();
    let src_line = token.get_src_line();
    let raw = json!({
        "abs_path": url,
        "lineno": line,
        "colno": col,
        "function": minified_function,
        "module": frame["module"].clone(),
    });
    note(frame, "sourcemap", raw);
    // The SDK's module names the minified file (`dist:app.min`): it would keep two builds of the
    // same code apart in grouping. The original file stands in for it.
    if let Some(obj) = frame.as_object_mut() {
        obj.remove("module");
    }
    frame["abs_path"] = Value::String(source.clone());
    frame["filename"] = Value::String(clean_filename(&source));
    frame["lineno"] = json!(src_line + 1);
    frame["colno"] = json!(token.get_src_col() + 1);
    if let Some(f) = function.or_else(|| minified_function.clone()) {
        frame["function"] = Value::String(f);
    }
    if source.contains("/node_modules/") || source.starts_with("node_modules/") {
        frame["in_app"] = Value::Bool(false);
    }
    if let Some(view) = token.get_source_view() {
        let first = src_line.saturating_sub(CONTEXT);
        let pre: Vec<Value> = (first..src_line)
            .filter_map(|i| view.get_line(i).map(|l| Value::String(l.into())))
            .collect();
        let post: Vec<Value> = (src_line + 1..=src_line + CONTEXT)
            .filter_map(|i| view.get_line(i).map(|l| Value::String(l.into())))
            .collect();
        if let Some(current) = view.get_line(src_line) {
            frame["context_line"] = Value::String(current.into());
            frame["pre_context"] = Value::Array(pre);
            frame["post_context"] = Value::Array(post);
        }
    }
    true
}

/// Sets `frame.data[key]`; the SDK's `data` may be anything, and a non-object would not take a
/// key (indexing it would panic).
fn note(frame: &mut Value, key: &str, value: Value) {
    if !frame["data"].is_object() {
        frame["data"] = json!({});
    }
    frame["data"][key] = value;
}

/// `webpack:///./src/app.ts` → `src/app.ts`; `../app/app.ts` → `app/app.ts`.
fn clean_filename(source: &str) -> String {
    let path = source
        .split_once("://")
        .map_or(source, |(_, rest)| rest.trim_start_matches('/'));
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." | ".." => {}
            p => parts.push(p),
        }
    }
    parts.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(url: &str, kind: &str) -> (String, BundleFile) {
        (
            "c".repeat(40),
            BundleFile {
                path: format!("files/{url}"),
                url: url.into(),
                kind: kind.into(),
                debug_id: None,
                sourcemap: None,
                size: 1,
            },
        )
    }

    #[test]
    fn urls_match_exactly_by_path_or_by_a_path_suffix() {
        let files = [
            file("~/static/app.min.js", "minified_source"),
            file("~/app.min.js", "minified_source"),
        ];
        let any = |_: &BundleFile| true;
        let hit = |url| find_by_url(&files, url, any).map(|f| f.1.url.clone());
        assert_eq!(
            hit("https://shop.example/static/app.min.js?v=3").as_deref(),
            Some("~/static/app.min.js")
        );
        assert_eq!(
            hit("/tmp/build/dist/app.min.js").as_deref(),
            Some("~/app.min.js")
        );
        assert_eq!(hit("https://shop.example/other.js"), None);
    }

    #[test]
    fn map_names_resolve_against_the_file() {
        assert_eq!(
            resolve("~/static/app.min.js", "app.min.js.map"),
            "~/static/app.min.js.map"
        );
        assert_eq!(
            resolve("~/app.js", "https://cdn/x.map"),
            "https://cdn/x.map"
        );
        assert_eq!(clean_filename("webpack:///./src/app.ts"), "src/app.ts");
        assert_eq!(clean_filename("../app/app.ts"), "app/app.ts");
    }

    #[test]
    fn a_frame_maps_through_a_map_the_sourcemap_crate_wrote() {
        let mut builder = sourcemap::SourceMapBuilder::new(Some("app.min.js"));
        let src = builder.add_source("../app/app.ts");
        builder.set_source_contents(
            src,
            Some("line one\nfunction subtotal() {\n  throw new Error('x');\n}\n"),
        );
        let name = builder.add_name("subtotal");
        builder.add_raw(0, 10, 1, 2, Some(src), Some(name), false);
        builder.add_raw(0, 20, 2, 2, Some(src), None, false);
        let map = builder.into_sourcemap();
        let parsed = Parsed {
            map: DecodedMap::Regular(map),
            minified: None,
            bytes: 0,
        };
        let mut frame = json!({"filename": "/srv/app.min.js", "lineno": 1, "colno": 21, "function": "o.a", "in_app": true});
        assert!(write_mapped(&mut frame, &parsed, "/srv/app.min.js", 1, 21));
        assert_eq!(frame["filename"], "app/app.ts");
        assert_eq!(frame["lineno"], 3);
        assert_eq!(frame["colno"], 3);
        assert_eq!(frame["context_line"], "  throw new Error('x');");
        assert_eq!(frame["pre_context"][1], "function subtotal() {");
        assert_eq!(frame["data"]["sourcemap"]["colno"], 21);
        let mut outside = json!({"lineno": 9, "colno": 1});
        assert!(!write_mapped(
            &mut outside,
            &parsed,
            "/srv/app.min.js",
            9,
            1
        ));
        assert!(outside["data"]["sourcemap_error"].is_string());
    }

    /// A map of `app.min.js` line 1: column 10 → `src/app.ts` line 2, column 20 → line 3.
    fn map_bytes() -> Vec<u8> {
        let mut builder = sourcemap::SourceMapBuilder::new(Some("app.min.js"));
        let src = builder.add_source("webpack:///./src/app.ts");
        builder.set_source_contents(src, Some("a\nfunction pay() {\n  boom();\n}\n"));
        builder.add_raw(0, 10, 1, 0, Some(src), None, false);
        builder.add_raw(0, 20, 2, 2, Some(src), None, false);
        let mut out = Vec::new();
        builder.into_sourcemap().to_writer(&mut out).unwrap();
        out
    }

    /// A store with one project and, for each bundle, its release and (path, url, kind,
    /// debug id, sourcemap header, bytes) files.
    #[allow(clippy::type_complexity)]
    fn store_with(
        bundles: &[(
            Option<&str>,
            Vec<(&str, &str, &str, Option<&str>, Option<&str>, Vec<u8>)>,
        )],
    ) -> (tempfile::TempDir, Arc<dyn crate::store::Store>, ProjectId) {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::open_in(dir.path()).unwrap();
        let org = store.create_org("o", "O").unwrap();
        let (project, _) = store.create_project(org.id, "web", "Web", None).unwrap();
        for (n, (release, files)) in bundles.iter().enumerate() {
            let entries: Vec<(&str, &[u8])> = files.iter().map(|f| (f.0, f.5.as_slice())).collect();
            let data = super::super::bundle::tests::bundle(&entries);
            let manifest = crate::domain::Manifest {
                files: files
                    .iter()
                    .map(|f| BundleFile {
                        path: f.0.into(),
                        url: f.1.into(),
                        kind: f.2.into(),
                        debug_id: f.3.map(str::to_string),
                        sourcemap: f.4.map(str::to_string),
                        size: f.5.len() as u64,
                    })
                    .collect(),
                ..Default::default()
            };
            let bundle = crate::domain::NewBundle {
                org_id: org.id,
                checksum: format!("{n:040}"),
                projects: vec![project.id],
                release: release.map(str::to_string),
                dist: None,
                manifest,
            };
            store.create_bundle(&bundle, &data, &[], 0).unwrap();
        }
        (dir, store, project.id)
    }

    /// The first frame of an event after mapping.
    fn mapped(store: &Arc<dyn crate::store::Store>, project: ProjectId, event: Value) -> Value {
        let maps = SourceMaps::new(store.clone());
        let mut event = event;
        maps.apply(project, &mut event);
        event["exception"]["values"][0]["stacktrace"]["frames"][0].clone()
    }

    fn event(release: Option<&str>, url: &str, debug_id: Option<&str>) -> Value {
        let mut e = json!({
            "platform": "javascript",
            "exception": {"values": [{"type": "E", "stacktrace": {"frames": [
                {"abs_path": url, "filename": url, "lineno": 1, "colno": 21, "function": "t", "module": "min"}
            ]}}]},
        });
        if let Some(r) = release {
            e["release"] = r.into();
        }
        if let Some(id) = debug_id {
            e["debug_meta"] =
                json!({"images": [{"type": "sourcemap", "code_file": url, "debug_id": id}]});
        }
        e
    }

    const URL: &str = "https://shop.example/static/app.min.js?v=2";

    #[test]
    fn maps_are_found_by_header_by_comment_inline_and_by_debug_id() {
        use base64::Engine as _;
        let inline = format!(
            "x\n//# sourceMappingURL=data:application/json;base64,{}\n",
            base64::engine::general_purpose::STANDARD.encode(map_bytes())
        );
        let (_dir, store, project) = store_with(&[
            (
                Some("r-header"),
                vec![
                    (
                        "files/a.js",
                        "~/static/app.min.js",
                        "minified_source",
                        None,
                        Some("app.min.js.map"),
                        b"x".to_vec(),
                    ),
                    (
                        "files/a.js.map",
                        "~/static/app.min.js.map",
                        "source_map",
                        None,
                        None,
                        map_bytes(),
                    ),
                ],
            ),
            (
                Some("r-comment"),
                vec![
                    (
                        "files/a.js",
                        "~/static/app.min.js",
                        "minified_source",
                        None,
                        None,
                        b"x\n//# sourceMappingURL=maps/a.map\n".to_vec(),
                    ),
                    (
                        "files/a.map",
                        "~/static/maps/a.map",
                        "source_map",
                        None,
                        None,
                        map_bytes(),
                    ),
                ],
            ),
            (
                Some("r-inline"),
                vec![(
                    "files/a.js",
                    "~/static/app.min.js",
                    "minified_source",
                    None,
                    None,
                    inline.into_bytes(),
                )],
            ),
            (
                None,
                vec![(
                    "files/m.map",
                    "~/m.map",
                    "source_map",
                    Some("3c4d5e6f-0000-4000-8000-000000000001"),
                    None,
                    map_bytes(),
                )],
            ),
        ]);
        for release in ["r-header", "r-comment", "r-inline"] {
            let frame = mapped(&store, project, event(Some(release), URL, None));
            assert_eq!(frame["filename"], "src/app.ts", "{release}: {frame}");
            assert_eq!(frame["lineno"], 3, "{release}");
            assert_eq!(frame["context_line"], "  boom();", "{release}");
            assert_eq!(frame["data"]["sourcemap"]["abs_path"], URL);
            assert!(frame.get("module").is_none(), "the minified module goes");
        }
        let by_id = mapped(
            &store,
            project,
            event(None, URL, Some("3C4D5E6F-0000-4000-8000-000000000001")),
        );
        assert_eq!(by_id["filename"], "src/app.ts", "{by_id}");
    }

    #[test]
    fn every_reason_a_frame_stays_minified_is_said() {
        let (_dir, store, project) = store_with(&[
            (
                Some("no-map"),
                vec![(
                    "files/a.js",
                    "~/static/app.min.js",
                    "minified_source",
                    None,
                    None,
                    b"x".to_vec(),
                )],
            ),
            (
                Some("map-missing"),
                vec![(
                    "files/a.js",
                    "~/static/app.min.js",
                    "minified_source",
                    None,
                    Some("gone.map"),
                    b"x".to_vec(),
                )],
            ),
            (
                Some("bad-map"),
                vec![
                    (
                        "files/a.js",
                        "~/static/app.min.js",
                        "minified_source",
                        None,
                        Some("app.min.js.map"),
                        b"x".to_vec(),
                    ),
                    (
                        "files/a.js.map",
                        "~/static/app.min.js.map",
                        "source_map",
                        None,
                        None,
                        b"not a map".to_vec(),
                    ),
                ],
            ),
        ]);
        let why = |e: Value| {
            mapped(&store, project, e)["data"]["sourcemap_error"]
                .as_str()
                .unwrap_or("")
                .to_string()
        };
        let reason = |r: NotMapped| r.reason().to_string();
        assert_eq!(
            why(event(Some("no-map"), URL, None)),
            reason(NotMapped::NoMapReferenced)
        );
        assert_eq!(
            why(event(Some("map-missing"), URL, None)),
            reason(NotMapped::MapMissing)
        );
        assert_eq!(
            why(event(Some("bad-map"), URL, None)),
            reason(NotMapped::BadMap)
        );
        assert_eq!(
            why(event(Some("other"), URL, None)),
            reason(NotMapped::NoBundleForRelease)
        );
        assert_eq!(
            why(event(None, URL, None)),
            reason(NotMapped::NoReleaseNoDebugId)
        );
        assert_eq!(
            why(event(
                None,
                URL,
                Some("00000000-0000-4000-8000-000000000009")
            )),
            reason(NotMapped::UnknownDebugId)
        );
        // Whatever an SDK put in a frame's `data`, the reason is added without a panic, and
        // absurd line numbers are left alone.
        let mut odd = event(Some("no-map"), URL, None);
        odd["exception"]["values"][0]["stacktrace"]["frames"][0]["data"] = "x".into();
        assert!(mapped(&store, project, odd)["data"]["sourcemap_error"].is_string());
        let mut huge = event(Some("no-map"), URL, None);
        huge["exception"]["values"][0]["stacktrace"]["frames"][0]["lineno"] = json!(1u64 << 40);
        assert!(mapped(&store, project, huge).get("data").is_none());
        // Not JavaScript, or no column: left alone.
        let mut python = event(Some("no-map"), URL, None);
        python["platform"] = "python".into();
        assert!(mapped(&store, project, python).get("data").is_none());
    }

    #[test]
    fn a_project_without_uploads_gets_no_notes_on_its_frames() {
        let (_dir, store, project) = store_with(&[]);
        let frame = mapped(&store, project, event(Some("web@1"), URL, None));
        assert!(frame.get("data").is_none(), "{frame}");
    }
}
