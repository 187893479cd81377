//! `/api/0/organizations/{org}/chunk-upload/` and `.../artifactbundle/assemble/`: source-map
//! uploads from `sentry-cli sourcemaps upload`, as Sentry serves them.

use axum::extract::{DefaultBodyLimit, Multipart};
use axum::routing::{get, post, MethodRouter};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{blocking, ApiError, ApiState, Authed, J, P};
use crate::artifacts::limits;
use crate::domain::Assembly;
use crate::ops::artifacts::{AssembleRequest, ChunkPart};
use crate::ops::OpsError;

type Route = MethodRouter<std::sync::Arc<ApiState>>;

/// The chunk-upload route: options, and the multipart upload (with room for its bytes).
pub fn chunk_upload() -> Route {
    get(options).post(upload).layer(DefaultBodyLimit::max(
        limits::MAX_REQUEST_SIZE + 1024 * 1024,
    ))
}

/// The assemble route.
pub fn assemble_route() -> Route {
    post(assemble)
}

/// `GET .../chunk-upload/`: how to upload (sentry-cli requires `url`, `chunkSize`,
/// `chunksPerRequest`, `maxRequestSize`, `hashAlgorithm` and `concurrency`).
async fn options(Authed(ops): Authed, P(org): P<String>) -> Result<Json<Value>, ApiError> {
    let path = format!("/api/0/organizations/{org}/chunk-upload/");
    blocking(ops, move |ops| Ok(ops.may_upload(&org)?)).await?;
    Ok(Json(json!({
        // A path: sentry-cli resolves it against the URL it was given, which survives proxies.
        "url": path,
        "chunkSize": limits::CHUNK_SIZE,
        "chunksPerRequest": limits::CHUNKS_PER_REQUEST,
        "maxFileSize": limits::MAX_BUNDLE_SIZE,
        "maxRequestSize": limits::MAX_REQUEST_SIZE,
        "maxWait": 60,
        "concurrency": 4,
        "hashAlgorithm": "sha1",
        "compression": ["gzip"],
        "accept": ["artifact_bundles", "release_files", "sources"],
    })))
}

fn invalid(msg: String) -> ApiError {
    ApiError::Ops(OpsError::Invalid(msg))
}

/// `POST .../chunk-upload/`: multipart parts `file_gzip` (or `file`), each named by the SHA-1
/// of its uncompressed bytes.
async fn upload(
    Authed(ops): Authed,
    P(org): P<String>,
    mut form: Multipart,
) -> Result<Json<Value>, ApiError> {
    let mut parts = Vec::new();
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| invalid(format!("the upload is not a readable multipart form: {e}")))?
    {
        let gzip = match field.name() {
            Some("file_gzip") => true,
            Some("file") => false,
            _ => continue,
        };
        let checksum = field
            .file_name()
            .map(str::to_string)
            .ok_or_else(|| invalid("each chunk needs its SHA-1 as its file name".into()))?;
        let bytes = field
            .bytes()
            .await
            .map_err(|e| invalid(format!("chunk {checksum} could not be read: {e}")))?;
        parts.push(ChunkPart {
            checksum,
            gzip,
            bytes: bytes.to_vec(),
        });
    }
    let n = blocking(ops, move |ops| Ok(ops.upload_chunks(&org, parts)?)).await?;
    Ok(Json(json!({ "received": n })))
}

/// `POST .../artifactbundle/assemble/` body.
#[derive(Deserialize)]
pub struct AssembleBody {
    checksum: String,
    #[serde(default)]
    chunks: Vec<String>,
    #[serde(default)]
    projects: Vec<Value>,
    version: Option<String>,
    dist: Option<String>,
}

/// `POST .../artifactbundle/assemble/`: `not_found` with the chunks to upload, `ok` once the
/// bundle is checked and kept, or `error` with why.
async fn assemble(
    Authed(ops): Authed,
    P(org): P<String>,
    J(body): J<AssembleBody>,
) -> Result<Json<Value>, ApiError> {
    let req = AssembleRequest {
        checksum: body.checksum,
        chunks: body.chunks,
        projects: body
            .projects
            .iter()
            .map(|p| match p {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect(),
        version: body.version,
        dist: body.dist,
    };
    let outcome = blocking(ops, move |ops| Ok(ops.assemble_bundle(&org, req)?)).await?;
    Ok(Json(match outcome {
        Assembly::Missing(chunks) => {
            json!({"state": "not_found", "missingChunks": chunks, "detail": null})
        }
        Assembly::Ok => json!({"state": "ok", "missingChunks": [], "detail": null}),
        Assembly::Error(why) => json!({"state": "error", "missingChunks": [], "detail": why}),
    }))
}
