//! Turning inbox entries into a [`DigestBatch`]: decode, split, normalize, fingerprint,
//! summarize, compress. Pure CPU work on values; the store writes the result.

use chrono::{DateTime, TimeZone, Utc};
use phoebe_protocol::envelope::{Envelope, ItemType};
use phoebe_protocol::event::{Event, EventKind};
use phoebe_protocol::normalize::{self, NormalizeContext, Problem};

use crate::codec::{self, Encoding};
use crate::inbox::{Claimed, Entry, EntryKind};
use crate::store::{DigestBatch, DigestedEvent, KeptItem};

/// Knobs digest needs from the configuration.
#[derive(Debug, Clone)]
pub struct ProcessOptions {
    /// Cap on a decompressed body (the same as ingest's).
    pub max_body_bytes: u64,
    /// zstd level for stored payloads.
    pub zstd_level: i32,
}

/// What happened to the entries of one batch besides the stored events.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ProcessStats {
    /// Entries or items that could not be read (logged and skipped).
    pub failed: u64,
    /// Items dropped on purpose (transactions, extra events in one envelope).
    pub dropped: u64,
}

/// Builds one store batch out of claimed inbox entries.
pub fn build_batch(claimed: &[Claimed], options: &ProcessOptions) -> (DigestBatch, ProcessStats) {
    let mut batch = DigestBatch {
        last_inbox_id: claimed.last().map(|c| c.id).unwrap_or(0),
        ..Default::default()
    };
    let mut stats = ProcessStats::default();
    for c in claimed {
        if let Err(reason) = process_entry(&c.entry, options, &mut batch, &mut stats) {
            stats.failed += 1;
            tracing::warn!(inbox_id = c.id, project_id = c.entry.project_id, %reason, "skipping unreadable inbox entry");
        }
    }
    (batch, stats)
}

#[derive(serde::Deserialize, Default)]
struct EntryMeta {
    event_id: Option<String>,
    release: Option<String>,
    environment: Option<String>,
}

fn ms_to_time(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or_else(Utc::now)
}

fn process_entry(
    entry: &Entry,
    options: &ProcessOptions,
    batch: &mut DigestBatch,
    stats: &mut ProcessStats,
) -> Result<(), String> {
    let encoding = Encoding::from_header(entry.encoding.as_deref());
    let body =
        codec::decode(encoding, &entry.body, options.max_body_bytes).map_err(|e| e.to_string())?;
    let meta: EntryMeta = entry
        .meta
        .as_deref()
        .and_then(|m| serde_json::from_str(m).ok())
        .unwrap_or_default();
    let meta_event_id = meta
        .event_id
        .as_deref()
        .and_then(|s| uuid::Uuid::parse_str(s).ok());
    let received = ms_to_time(entry.received_ms);
    let mut ctx = NormalizeContext::new(received);
    ctx.client_ip = entry.client_ip.clone();
    match entry.kind {
        EntryKind::Envelope => {
            let envelope = Envelope::parse(&body).map_err(|e| e.to_string())?;
            ctx.sent_at = envelope.header.sent_at;
            ctx.header_event_id = envelope.header.event_id.or(meta_event_id);
            let mut seen_event = false;
            for item in &envelope.items {
                let payload = body.get(item.payload.clone()).unwrap_or_default();
                match item.ty {
                    ItemType::Event if !seen_event => {
                        seen_event = true;
                        match normalize::normalize_event(payload, &ctx) {
                            Ok((event, problems)) => {
                                push_event(entry, event, problems, options, batch, stats)
                            }
                            Err(e) => {
                                stats.failed += 1;
                                tracing::warn!(project_id = entry.project_id, error = %e, "skipping unreadable event item");
                            }
                        }
                    }
                    ItemType::Attachment
                    | ItemType::UserReport
                    | ItemType::Feedback
                    | ItemType::Session
                    | ItemType::Sessions
                    | ItemType::ClientReport => batch.kept.push(KeptItem {
                        project_id: entry.project_id,
                        event_id: ctx.header_event_id,
                        item_type: item.ty.as_str().to_string(),
                        filename: item.filename.clone(),
                        received_ms: entry.received_ms,
                        payload: payload.to_vec(),
                    }),
                    _ => stats.dropped += 1,
                }
            }
        }
        EntryKind::StoreEvent => {
            let json = codec::decode_store_body(body, options.max_body_bytes)
                .map_err(|e| e.to_string())?;
            let json = phoebe_protocol::json::sanitize_non_finite(&json);
            ctx.header_event_id = meta_event_id;
            let (event, problems) =
                normalize::normalize_event(&json, &ctx).map_err(|e| e.to_string())?;
            push_event(entry, event, problems, options, batch, stats);
        }
        EntryKind::SecurityReport => {
            let report: serde_json::Value =
                serde_json::from_slice(&body).map_err(|e| e.to_string())?;
            let value = security_report_event(report, meta.release, meta.environment)
                .ok_or("not a CSP report")?;
            let (event, problems) =
                normalize::normalize_value(value, &ctx).map_err(|e| e.to_string())?;
            push_event(entry, event, problems, options, batch, stats);
        }
    }
    Ok(())
}

/// A browser CSP report (`{"csp-report": {...}}`, or the Reporting API's `[{"type":
/// "csp-violation", "body": {...}}]`) as a Sentry-style `csp` event.
fn security_report_event(
    report: serde_json::Value,
    release: Option<String>,
    environment: Option<String>,
) -> Option<serde_json::Value> {
    use serde_json::{json, Value};
    let body = match report {
        Value::Object(mut o) if o.contains_key("csp-report") => o.remove("csp-report")?,
        Value::Array(items) => items
            .into_iter()
            .find(|i| i["type"] == "csp-violation")?
            .get("body")?
            .clone(),
        _ => return None,
    };
    let field = |dashed: &str, camel: &str| -> String {
        body.get(dashed)
            .or_else(|| body.get(camel))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let effective = field("effective-directive", "effectiveDirective");
    let violated = field("violated-directive", "violatedDirective");
    let directive = if effective.is_empty() {
        violated.split_whitespace().next().unwrap_or("").to_string()
    } else {
        effective
    };
    let blocked = field("blocked-uri", "blockedURL");
    let document = field("document-uri", "documentURL");
    let message = format!(
        "Blocked '{}' from '{}'",
        directive,
        if blocked.is_empty() {
            "inline"
        } else {
            &blocked
        }
    );
    Some(json!({
        "type": "csp",
        "logger": "csp",
        "level": "error",
        "platform": "javascript",
        "message": message,
        "release": release,
        "environment": environment,
        "csp": {
            "effective_directive": directive,
            "violated_directive": violated,
            "blocked_uri": blocked,
            "document_uri": document,
            "original_policy": field("original-policy", "originalPolicy"),
            "source_file": field("source-file", "sourceFile"),
        },
        "request": { "url": document },
    }))
}

fn push_event(
    entry: &Entry,
    event: Event,
    problems: Vec<Problem>,
    options: &ProcessOptions,
    batch: &mut DigestBatch,
    stats: &mut ProcessStats,
) {
    if matches!(event.kind, EventKind::Transaction | EventKind::Feedback) {
        stats.dropped += 1;
        return;
    }
    let grouping = phoebe_grouping::group(&event);
    let summary = phoebe_grouping::summarize(&event);
    let mut payload = event.payload;
    if !problems.is_empty() {
        if let Some(obj) = payload.as_object_mut() {
            let errors: Vec<serde_json::Value> = problems
                .iter()
                .map(|p| serde_json::json!({ "type": p.kind, "name": p.path, "value": p.detail }))
                .collect();
            obj.insert("errors".into(), serde_json::Value::Array(errors));
        }
    }
    let raw = serde_json::to_vec(&payload).unwrap_or_default();
    let payload_zstd = zstd::bulk::compress(&raw, options.zstd_level).unwrap_or_default();
    let metadata = match &summary.ty {
        Some(_) => serde_json::json!({
            "type": summary.ty, "value": summary.value, "filename": summary.filename, "function": summary.function,
        }),
        None => serde_json::json!({ "title": summary.title }),
    };
    let mut tags = event.tags;
    if let Some(user) = event.user.as_ref().and_then(|u| u.tag_value()) {
        if !tags.iter().any(|(k, _)| k == "user") {
            tags.push(("user".into(), user));
        }
    }
    batch.events.push(DigestedEvent {
        project_id: entry.project_id,
        event_id: event.event_id,
        timestamp_ms: event.timestamp.timestamp_millis(),
        received_ms: entry.received_ms,
        level: event.level.as_str(),
        kind: event.kind.as_str(),
        platform: event.platform,
        logger: event.logger,
        release: event.release,
        title: summary.title,
        culprit: summary.culprit,
        metadata: metadata.to_string(),
        hash: grouping.hash.clone(),
        variant: grouping.variant.as_str(),
        grouping: serde_json::to_string(&grouping).unwrap_or_default(),
        user: event.user.as_ref().and_then(|u| u.tag_value()),
        tags,
        payload_zstd,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csp_report_becomes_a_csp_event() {
        let report = serde_json::json!({"csp-report": {
            "document-uri": "https://example.com/page", "violated-directive": "script-src 'self'",
            "blocked-uri": "https://evil.example/x.js", "original-policy": "script-src 'self'"}});
        let v = security_report_event(report, Some("1.0".into()), None).unwrap();
        assert_eq!(v["type"], "csp");
        assert_eq!(v["csp"]["effective_directive"], "script-src");
        assert_eq!(
            v["message"],
            "Blocked 'script-src' from 'https://evil.example/x.js'"
        );
        assert_eq!(v["release"], "1.0");
    }

    #[test]
    fn non_report_is_refused() {
        assert_eq!(
            security_report_event(serde_json::json!({"x": 1}), None, None),
            None
        );
    }
}
