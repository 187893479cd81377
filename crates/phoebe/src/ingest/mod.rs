//! The door SDKs knock on: `/api/<project>/envelope/`, `/store/` and `/security/` (with or
//! without a trailing slash, under any path prefix), CORS, authentication, size caps,
//! decompression and envelope splitting, then the durable inbox. It does the least work that
//! makes an event safe.
//!
//! Architecture invariants: a `200` is sent only after the inbox commit; ingest never imports
//! `digest` or `store` (keys come through [`keys::KeyCache`]); no event JSON is parsed here except
//! the minimal `event_id` peek the legacy `/store/` answer needs.

pub mod budget;
mod cors;
mod error;
pub mod keys;
mod route;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http_body_util::BodyExt;
use phoebe_protocol::auth::{self, AuthError, ClientAuth};
use phoebe_protocol::dsn::Dsn;
use phoebe_protocol::envelope::{Envelope, ItemType};
use phoebe_protocol::limits::{self, Limits};

pub use cors::with_cors;
pub use error::IngestError;
pub use route::{parse_ingest_path, Endpoint};

use crate::codec::{self, Encoding};
use crate::domain::ProjectId;
use crate::inbox::{Entry, EntryKind, InboxError, InboxWriter};
use crate::quota::{Grant, Quotas};
use crate::telemetry::Metrics;
use budget::{MemoryBudget, Reservation};

/// What the ingest handlers share.
pub struct IngestState {
    /// Key → project.
    pub keys: keys::KeyCache,
    /// Where accepted bodies go.
    pub inbox: InboxWriter,
    /// Size limits.
    pub limits: Limits,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// Memory for request bodies in flight.
    pub budget: Arc<MemoryBudget>,
    /// Rate limits and usage counts.
    pub quotas: Arc<Quotas>,
}

/// Item types digest reads; everything else is counted and dropped at the door.
fn is_kept(ty: ItemType) -> bool {
    matches!(
        ty,
        ItemType::Event
            | ItemType::Attachment
            | ItemType::UserReport
            | ItemType::Feedback
            | ItemType::Session
            | ItemType::Sessions
            | ItemType::ClientReport
    )
}

/// Handles any request that is not part of the web API: SDK ingest or 404.
pub async fn handle(
    State(state): State<Arc<IngestState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some((project_id, endpoint)) = parse_ingest_path(uri.path()) else {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(serde_json::json!({"detail": "not found"})),
        )
            .into_response();
    };
    if method == Method::OPTIONS {
        return with_cors(StatusCode::OK.into_response());
    }
    if method != Method::POST {
        let r = (
            StatusCode::METHOD_NOT_ALLOWED,
            axum::Json(serde_json::json!({"detail": "use POST"})),
        )
            .into_response();
        return with_cors(r);
    }
    let result = accept(
        &state,
        project_id,
        endpoint,
        peer,
        uri.query(),
        &headers,
        body,
    )
    .await;
    match &result {
        Ok(_) => state.metrics.ingest_accepted.inc(),
        Err(_) => state.metrics.ingest_rejected.inc(),
    }
    with_cors(match result {
        Ok(r) => r,
        Err(e) => e.into_response(),
    })
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn auth_error(e: AuthError) -> IngestError {
    match e {
        AuthError::UnsupportedVersion(_) | AuthError::BadKey => {
            IngestError::BadRequest(e.to_string())
        }
        _ => IngestError::Unauthorized(e.to_string()),
    }
}

async fn accept(
    state: &Arc<IngestState>,
    project_id: ProjectId,
    endpoint: Endpoint,
    peer: SocketAddr,
    query: Option<&str>,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, IngestError> {
    let request_auth = auth::authenticate(
        header_str(headers, header::HeaderName::from_static("x-sentry-auth")),
        header_str(headers, header::AUTHORIZATION),
        query,
    )
    .map_err(auth_error)?;
    // Tunnelled envelopes carry their DSN in the envelope header instead; everything else must authenticate up front.
    if request_auth.is_none() && endpoint != Endpoint::Envelope {
        return Err(IngestError::Unauthorized(
            "missing authentication: send X-Sentry-Auth or ?sentry_key=<public key> (see your project's DSN)".into(),
        ));
    }
    let mut grant = match &request_auth {
        Some(a) => Some(authorize(state, a, project_id).await?),
        None => None,
    };
    let now = now_ms();
    let content_type = header_str(headers, header::CONTENT_TYPE).map(str::to_ascii_lowercase);
    let endpoint_kind = match endpoint {
        Endpoint::Store
            if content_type
                .as_deref()
                .is_some_and(|c| c.starts_with("application/x-sentry-envelope")) =>
        {
            Endpoint::Envelope
        }
        other => other,
    };
    // A `/store/` or `/security/` body holds exactly one event, so a limit refuses it before the
    // body is read at all.
    if let (Some(g), Endpoint::Store | Endpoint::Security) = (&grant, endpoint_kind) {
        if let Some(limited) = state.quotas.check(g, now) {
            state.quotas.refuse(g.project_id, limited.refusal(), 1, now);
            drain(body).await;
            return Err(IngestError::RateLimited(limited));
        }
    }

    if endpoint == Endpoint::Security {
        let ct = header_str(headers, header::CONTENT_TYPE).unwrap_or("");
        if !Endpoint::accepts_security_content_type(&ct.to_ascii_lowercase()) {
            return Err(IngestError::UnsupportedMediaType(format!(
                "security reports must be application/csp-report or application/json, not {ct:?}"
            )));
        }
    }
    let compressed_cap = state.limits.max_compressed_body_bytes;
    let mut reservation = state.budget.reserve();
    let raw = read_body(body, compressed_cap, &mut reservation).await?;
    if raw.is_empty() {
        return Err(IngestError::BadRequest("empty request body".into()));
    }
    let encoding = Encoding::from_header(header_str(headers, header::CONTENT_ENCODING));
    let decoded_cap = match endpoint {
        Endpoint::Envelope => state.limits.max_envelope_bytes,
        Endpoint::Store => state.limits.max_store_body_bytes,
        Endpoint::Security => state.limits.max_security_report_bytes,
    };
    let limits = state.limits.clone();
    let raw_for_decode = raw.clone();
    // Small bodies decode inline; only big ones are worth a hop to the blocking pool.
    let run_check = move |mut reservation: Reservation| {
        let result = check_body(
            endpoint_kind,
            encoding,
            raw_for_decode,
            decoded_cap,
            &limits,
            &mut reservation,
        );
        (result, reservation)
    };
    let (checked, _reservation) = if raw.len() <= INLINE_DECODE_BYTES {
        run_check(reservation)
    } else {
        tokio::task::spawn_blocking(move || run_check(reservation))
            .await
            .map_err(|e| IngestError::Unexpected(e.to_string()))?
    };
    let checked = checked?;

    if let Some(dsn) = &checked.envelope_dsn {
        let dsn = Dsn::parse(dsn).map_err(|e| {
            IngestError::Unauthorized(format!("bad envelope authentication header: {e}"))
        })?;
        match &request_auth {
            Some(a) if a.public_key != dsn.public_key => {
                return Err(IngestError::Unauthorized(
                    "public key header mismatch: the envelope's DSN names another key".into(),
                ))
            }
            _ => {}
        }
        if dsn.project_id as i64 != project_id.0 {
            return Err(IngestError::Forbidden(
                "project id header mismatch: the envelope's DSN names another project".into(),
            ));
        }
        if request_auth.is_none() {
            let a = ClientAuth {
                public_key: dsn.public_key.clone(),
                version: None,
                client: None,
            };
            grant = Some(authorize(state, &a, project_id).await?);
        }
    } else if request_auth.is_none() {
        return Err(IngestError::Unauthorized(
            "missing authentication: send X-Sentry-Auth, ?sentry_key=<public key>, or a dsn in the envelope header".into(),
        ));
    }

    let Some(grant) = grant else {
        return Err(IngestError::Unexpected(
            "authenticated request without a key".into(),
        ));
    };
    // Events are admitted (checked and counted in one step) once the items are known, so an
    // envelope without events (sessions, client reports) always goes through; SDKs are told
    // about an active limit on its 200. A refused envelope's other items are still kept.
    let notice = match checked.events {
        0 if endpoint_kind == Endpoint::Envelope => state.quotas.check(&grant, now),
        _ => None,
    };
    if let Err(limited) = state.quotas.admit(&grant, checked.events, now) {
        if let Some(rest) = checked.without_events() {
            let entry = Entry {
                project_id,
                received_ms: now,
                kind: EntryKind::Envelope,
                client_ip: Some(peer.ip().to_string()),
                encoding: None,
                meta: None,
                body: rest.clone(),
                decoded: Some(rest),
            };
            if let Err(e) = state.inbox.append(entry).await {
                tracing::warn!(error = %e, "could not keep the non-event items of a rate-limited envelope");
            }
        }
        return Err(IngestError::RateLimited(limited));
    }

    let event_id = checked.event_id;
    if checked.keep {
        let meta = match endpoint {
            Endpoint::Security => Some(security_meta(query)),
            _ => checked.generated_event_id.then(|| {
                serde_json::json!({ "event_id": event_id.map(|u| u.simple().to_string()) })
                    .to_string()
            }),
        };
        let entry = Entry {
            project_id,
            received_ms: now,
            kind: match endpoint_kind {
                Endpoint::Envelope => EntryKind::Envelope,
                Endpoint::Store => EntryKind::StoreEvent,
                Endpoint::Security => EntryKind::SecurityReport,
            },
            client_ip: Some(peer.ip().to_string()),
            encoding: encoding.token().map(Into::into),
            meta,
            body: raw,
            decoded: Some(checked.decoded),
        };
        if let Err(e) = state.inbox.append(entry).await {
            state.quotas.release(&grant, checked.events, now);
            return Err(match e {
                InboxError::Full(_) | InboxError::Closed | InboxError::Io(_) => {
                    IngestError::Overloaded(format!("{e}"))
                }
            });
        }
    } else {
        state.metrics.items_dropped.add(checked.dropped_items);
    }

    let mut response = match endpoint {
        Endpoint::Security => StatusCode::OK.into_response(),
        _ => {
            let body = match event_id {
                Some(id) => serde_json::json!({ "id": id.simple().to_string() }),
                None => serde_json::json!({}),
            };
            (StatusCode::OK, axum::Json(body)).into_response()
        }
    };
    if let Some(limited) = notice {
        error::add_rate_limit_headers(response.headers_mut(), &limited);
    }
    Ok(response)
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Items that count against event limits: `event` (errors, messages, CSP reports sent as
/// envelopes). Transactions are dropped at the door and count against nothing.
fn counts_as_event(ty: ItemType) -> bool {
    matches!(ty, ItemType::Event)
}

fn security_meta(query: Option<&str>) -> String {
    let mut release = None;
    let mut environment = None;
    for pair in query.unwrap_or("").split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = route::percent_decode(v);
        match k {
            "sentry_release" => release = Some(v),
            "sentry_environment" => environment = Some(v),
            _ => {}
        }
    }
    serde_json::json!({ "release": release, "environment": environment }).to_string()
}

async fn authorize(
    state: &Arc<IngestState>,
    a: &ClientAuth,
    project_id: ProjectId,
) -> Result<Grant, IngestError> {
    let info = match state.keys.lookup_cached(&a.public_key) {
        Some(info) => Some(info),
        None => {
            let st = state.clone();
            let key = a.public_key.clone();
            tokio::task::spawn_blocking(move || st.keys.lookup_blocking(&key))
                .await
                .map_err(|e| IngestError::Unexpected(e.to_string()))?
        }
    };
    let Some(info) = info else {
        return Err(IngestError::Unauthorized(format!(
            "unknown DSN public key {}: copy the DSN from `phoebe project list`",
            a.public_key
        )));
    };
    if !info.is_active {
        return Err(IngestError::Forbidden(
            "event submission rejected with_reason: ProjectKeyDisabled (this DSN key is disabled)"
                .into(),
        ));
    }
    if info.grant.project_id != project_id {
        return Err(IngestError::Forbidden(format!(
            "event submission rejected with_reason: this DSN key belongs to project {}, not {project_id}",
            info.grant.project_id
        )));
    }
    Ok(info.grant)
}

/// Bodies up to this size are decoded on the async worker; bigger ones on the blocking pool.
const INLINE_DECODE_BYTES: usize = 64 * 1024;

async fn read_body(
    body: Body,
    cap: u64,
    reservation: &mut Reservation,
) -> Result<Bytes, IngestError> {
    let mut body = body;
    let mut buf = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            IngestError::BadRequest(format!("could not read the request body: {e}"))
        })?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        if (buf.len() + data.len()) as u64 > cap {
            drain(body).await;
            return Err(IngestError::TooLarge(format!(
                "request body over {cap} bytes; send less or raise [ingest] max_compressed_body_bytes"
            )));
        }
        if !reservation.grow(data.len()) {
            return Err(IngestError::Overloaded(
                "the server is holding as many request bodies as its memory budget allows; retry later".into(),
            ));
        }
        buf.extend_from_slice(&data);
    }
    Ok(buf.freeze())
}

/// Most bytes of an oversized body read and thrown away so the client gets to read its 413.
const DRAIN_BYTES: usize = 8 << 20;

/// Reads and discards the rest of a refused body (up to [`DRAIN_BYTES`]): answering while the
/// client is still sending makes it see a broken connection instead of the status.
async fn drain(mut body: Body) {
    let mut drained = 0usize;
    while drained < DRAIN_BYTES {
        match body.frame().await {
            Some(Ok(frame)) => drained += frame.data_ref().map_or(0, |d| d.len()),
            _ => break,
        }
    }
}

/// What ingest learned from a body it accepted.
struct Checked {
    decoded: Bytes,
    event_id: Option<uuid::Uuid>,
    generated_event_id: bool,
    envelope_dsn: Option<String>,
    keep: bool,
    dropped_items: u64,
    /// Items that count against event limits.
    events: u64,
    /// The split envelope (envelope bodies only), to keep its other items when events are refused.
    envelope: Option<Envelope>,
}

impl Checked {
    /// The envelope without its events and their attachments, if anything worth keeping
    /// (sessions, client reports, feedback) remains.
    fn without_events(&self) -> Option<Bytes> {
        let envelope = self.envelope.as_ref()?;
        let body = &self.decoded[..];
        let keep: Vec<_> = envelope
            .items
            .iter()
            .filter(|i| is_kept(i.ty) && !matches!(i.ty, ItemType::Event | ItemType::Attachment))
            .collect();
        if keep.is_empty() {
            return None;
        }
        let header_line = body.split(|b| *b == b'\n').next().unwrap_or(b"{}");
        let mut out = Vec::with_capacity(body.len());
        out.extend_from_slice(header_line);
        out.push(b'\n');
        for item in keep {
            let mut header = serde_json::json!({"type": item.type_name, "length": item.len()});
            if let Some(ct) = &item.content_type {
                header["content_type"] = ct.as_str().into();
            }
            if let Some(name) = &item.filename {
                header["filename"] = name.as_str().into();
            }
            out.extend_from_slice(header.to_string().as_bytes());
            out.push(b'\n');
            out.extend_from_slice(item.payload(body));
            out.push(b'\n');
        }
        Some(Bytes::from(out))
    }
}

fn decode_error(e: codec::DecodeError, setting: &str) -> IngestError {
    match e {
        codec::DecodeError::OverBudget => IngestError::Overloaded(e.to_string()),
        codec::DecodeError::TooLarge { cap } => IngestError::TooLarge(format!(
            "body over {cap} bytes once decompressed; send less or raise [ingest] {setting}"
        )),
        other => IngestError::BadRequest(other.to_string()),
    }
}

/// Decodes and validates a body without keeping the decoded copy: the inbox stores what the
/// client sent, and digest decodes it again.
fn check_body(
    endpoint: Endpoint,
    encoding: Encoding,
    raw: Bytes,
    cap: u64,
    limits: &Limits,
    reservation: &mut Reservation,
) -> Result<Checked, IngestError> {
    let mut decode = |setting: &str| -> Result<Bytes, IngestError> {
        if encoding == Encoding::Identity {
            if raw.len() as u64 > cap {
                return Err(decode_error(codec::DecodeError::TooLarge { cap }, setting));
            }
            return Ok(raw.clone());
        }
        codec::decode_metered(encoding, &raw, cap, &mut |n| reservation.grow(n))
            .map(Bytes::from)
            .map_err(|e| decode_error(e, setting))
    };
    match endpoint {
        Endpoint::Envelope => {
            let body = decode("max_envelope_bytes")?;
            if body.iter().all(u8::is_ascii_whitespace) {
                return Err(IngestError::BadRequest("empty request body".into()));
            }
            let envelope = Envelope::parse(&body)
                .map_err(|e| IngestError::BadRequest(format!("invalid event envelope: {e}")))?;
            limits::check_envelope(&envelope, limits)
                .map_err(|e| IngestError::TooLarge(e.to_string()))?;
            let keep = envelope.items.iter().any(|i| is_kept(i.ty));
            let dropped_items = envelope.items.iter().filter(|i| !is_kept(i.ty)).count() as u64;
            let needs_id = envelope.items.iter().any(|i| {
                matches!(
                    i.ty,
                    ItemType::Event | ItemType::Attachment | ItemType::UserReport
                )
            });
            let (event_id, generated) = match envelope.header.event_id {
                Some(id) => (Some(id), false),
                None if needs_id => (Some(uuid::Uuid::new_v4()), true),
                None => (None, false),
            };
            Ok(Checked {
                event_id,
                generated_event_id: generated,
                envelope_dsn: envelope.header.dsn.clone(),
                keep,
                dropped_items,
                events: envelope
                    .items
                    .iter()
                    .filter(|i| counts_as_event(i.ty))
                    .count() as u64,
                envelope: Some(envelope),
                decoded: body,
            })
        }
        Endpoint::Store => {
            let body = decode("max_store_body_bytes")?;
            let json = codec::decode_store_body(body.to_vec(), cap)
                .map_err(|e| decode_error(e, "max_store_body_bytes"))?;
            if json.iter().all(u8::is_ascii_whitespace) {
                return Err(IngestError::BadRequest("empty request body".into()));
            }
            let (event_id, generated) = peek_event_id(&json)?;
            Ok(Checked {
                event_id: Some(event_id),
                generated_event_id: generated,
                envelope_dsn: None,
                keep: true,
                dropped_items: 0,
                events: 1,
                envelope: None,
                decoded: Bytes::from(json),
            })
        }
        Endpoint::Security => {
            let body = decode("max_security_report_bytes")?;
            if body.iter().all(u8::is_ascii_whitespace) {
                return Err(IngestError::BadRequest("empty request body".into()));
            }
            serde_json::from_slice::<serde::de::IgnoredAny>(&body)
                .map_err(|e| IngestError::BadRequest(format!("invalid JSON data: {e}")))?;
            Ok(Checked {
                event_id: None,
                generated_event_id: false,
                envelope_dsn: None,
                keep: true,
                dropped_items: 0,
                events: 1,
                envelope: None,
                decoded: body,
            })
        }
    }
}

/// The legacy `/store/` answer carries the event id, so this is the one JSON peek ingest does.
fn peek_event_id(json: &[u8]) -> Result<(uuid::Uuid, bool), IngestError> {
    #[derive(serde::Deserialize)]
    struct Peek {
        #[serde(default)]
        event_id: Option<serde_json::Value>,
    }
    let sanitized = phoebe_protocol::json::sanitize_non_finite(json);
    let peek: Peek = serde_json::from_slice(&sanitized)
        .map_err(|e| IngestError::BadRequest(format!("invalid JSON data: {e}")))?;
    match peek.event_id {
        Some(serde_json::Value::String(s)) => match uuid::Uuid::parse_str(&s) {
            Ok(id) => Ok((id, false)),
            Err(_) => Err(IngestError::BadRequest(format!(
                "invalid event_id {s:?}: expected a UUID"
            ))),
        },
        Some(serde_json::Value::Null) | None => Ok((uuid::Uuid::new_v4(), true)),
        Some(_) => Err(IngestError::BadRequest(
            "invalid event_id: expected a UUID string".into(),
        )),
    }
}

/// Which endpoint a POST addressed.
impl Endpoint {
    /// Content types the security endpoint accepts (browsers send several).
    pub fn accepts_security_content_type(ct: &str) -> bool {
        let ct = ct.split(';').next().unwrap_or("").trim();
        matches!(
            ct,
            "application/json"
                | "application/csp-report"
                | "application/expect-ct-report"
                | "application/expect-ct-report+json"
                | "application/expect-staple-report"
                | "application/reports+json"
        )
    }
}
