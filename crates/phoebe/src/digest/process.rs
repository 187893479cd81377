//! Turning inbox entries into a [`DigestBatch`]: decode, split, normalize, fingerprint,
//! summarize, compress. Pure CPU work on values; the store writes the result.

use chrono::{DateTime, TimeZone, Utc};
use phoebe_protocol::envelope::{Envelope, ItemType};
use phoebe_protocol::event::{Event, EventKind};
use phoebe_protocol::normalize::{self, NormalizeContext, Problem};

use crate::codec::{self, Encoding};
use crate::domain::{Claimed, Entry, EntryKind};
use crate::domain::{ClientDiscard, DigestBatch, DigestedEvent, EventBounds, KeptItem, ProjectId};

const DAY_MS: i64 = 86_400_000;

/// Rewrites an event's stack frames before grouping (source maps), so grouping and storage see
/// the original frames; digest knows nothing else of how.
pub trait FrameMapper: Send + Sync {
    /// Maps the frames of an event of a project, in place; says whether it changed any.
    fn map_frames(&self, project_id: ProjectId, event: &mut serde_json::Value) -> bool;
}

/// Knobs digest needs from the configuration.
#[derive(Clone)]
pub struct ProcessOptions {
    /// Cap on a decompressed body (the same as ingest's).
    pub max_body_bytes: u64,
    /// zstd level for stored payloads.
    pub zstd_level: i32,
    /// How many events each issue keeps.
    pub bounds: EventBounds,
    /// Maps frames before grouping, when there is a mapper.
    pub frames: Option<std::sync::Arc<dyn FrameMapper>>,
}

/// What happened to the entries of one batch besides the stored events.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ProcessStats {
    /// Entries or items that could not be read (logged and skipped).
    pub failed: u64,
    /// Items dropped on purpose (transactions, extra events in one envelope).
    pub dropped: u64,
}

/// How many fingerprint hashes digest remembers having written an explanation for. Past this
/// the memory is cleared; the cost is re-serializing a few explanations.
const MAX_KNOWN_HASHES: usize = 100_000;

/// Digest's CPU half: turns claimed inbox entries into store batches. Owns what is worth
/// reusing between events: the zstd context and the set of hashes whose explanation the store
/// already has.
pub struct Processor {
    options: ProcessOptions,
    compressor: zstd::bulk::Compressor<'static>,
    known_hashes: foldhash::HashSet<(ProjectId, String)>,
    dictionary: DictionaryState,
    /// Reused for every event's JSON and its zstd frame. `Compressor::compress` would return
    /// the frame in a vector sized for the worst case (larger than the JSON): ten times the
    /// frame's size, held by the batch and freed by the store thread.
    json_buf: Vec<u8>,
    zstd_buf: Vec<u8>,
}

/// Payloads are compressed with a zstd dictionary trained on this installation's own first
/// events: small JSON documents share most of their keys and structure, which a dictionary
/// captures once instead of in every frame.
enum DictionaryState {
    /// Collecting raw payloads to train on.
    Sampling { samples: Vec<Vec<u8>>, bytes: usize },
    /// Trained (or loaded); `unsaved` is a new dictionary the next batch must carry to the store.
    Ready { unsaved: Option<(u32, Vec<u8>)> },
}

/// Payloads to train the dictionary on; about 1,000 events gave a dictionary within a few
/// percent of one trained on 10,000 in our measurement, and training takes well under a second.
const DICT_SAMPLES: usize = 1000;
/// Largest dictionary (zstd's recommended size for small-document dictionaries).
const DICT_BYTES: usize = 64 * 1024;
/// Memory the samples may use while collected.
const DICT_SAMPLE_BYTES: usize = 16 << 20;

impl Processor {
    /// A processor with fresh state, compressing with `dictionary` if the store has one.
    pub fn new(options: ProcessOptions, dictionary: Option<Vec<u8>>) -> anyhow::Result<Processor> {
        let (compressor, dictionary) = match dictionary {
            Some(dict) => (
                zstd::bulk::Compressor::with_dictionary(options.zstd_level, &dict)?,
                DictionaryState::Ready { unsaved: None },
            ),
            None => (
                zstd::bulk::Compressor::new(options.zstd_level)?,
                DictionaryState::Sampling {
                    samples: Vec::new(),
                    bytes: 0,
                },
            ),
        };
        Ok(Processor {
            options,
            compressor,
            known_hashes: Default::default(),
            dictionary,
            json_buf: Vec::new(),
            zstd_buf: Vec::new(),
        })
    }

    /// The payload as JSON in a zstd frame, in a vector of exactly its size.
    fn compress_payload(&mut self, payload: &serde_json::Value) -> Vec<u8> {
        let mut json = std::mem::take(&mut self.json_buf);
        json.clear();
        // Writing a Value into memory cannot fail.
        let _ = serde_json::to_writer(&mut json, payload);
        self.sample_for_dictionary(&json);
        self.zstd_buf.clear();
        self.zstd_buf
            .reserve(zstd::zstd_safe::compress_bound(json.len()));
        let frame = match self
            .compressor
            .compress_to_buffer(&json, &mut self.zstd_buf)
        {
            Ok(_) => self.zstd_buf.to_vec(),
            Err(e) => {
                // As before this buffer existed: zstd does not fail on memory it was given.
                tracing::warn!(error = %e, "compressing an event failed; it is stored without its payload");
                Vec::new()
            }
        };
        // One huge event must not pin its buffers for good.
        if json.capacity() <= MAX_KEPT_BUFFER {
            self.json_buf = json;
        }
        if self.zstd_buf.capacity() > MAX_KEPT_BUFFER {
            self.zstd_buf = Vec::new();
        }
        frame
    }

    /// Keeps `raw` as a training sample; with enough of them, trains the dictionary and switches
    /// the compressor to it.
    fn sample_for_dictionary(&mut self, raw: &[u8]) {
        let DictionaryState::Sampling { samples, bytes } = &mut self.dictionary else {
            return;
        };
        if *bytes + raw.len() <= DICT_SAMPLE_BYTES {
            *bytes += raw.len();
            samples.push(raw.to_vec());
        }
        if samples.len() < DICT_SAMPLES && *bytes + raw.len() <= DICT_SAMPLE_BYTES {
            return;
        }
        let started = std::time::Instant::now();
        let trained = zstd::dict::from_samples(samples, DICT_BYTES)
            .map_err(anyhow::Error::from)
            .and_then(|dict| {
                let id = zstd::zstd_safe::get_dict_id_from_dict(&dict)
                    .ok_or_else(|| anyhow::anyhow!("trained dictionary has no id"))?;
                let compressor =
                    zstd::bulk::Compressor::with_dictionary(self.options.zstd_level, &dict)?;
                Ok((id.get(), dict, compressor))
            });
        match trained {
            Ok((id, dict, compressor)) => {
                tracing::info!(
                    dict_id = id,
                    bytes = dict.len(),
                    samples = samples.len(),
                    millis = started.elapsed().as_millis() as u64,
                    "trained a zstd dictionary for stored events"
                );
                self.compressor = compressor;
                self.dictionary = DictionaryState::Ready {
                    unsaved: Some((id, dict)),
                };
            }
            Err(e) => {
                // Plain zstd still works; training is tried again after a restart.
                tracing::warn!(error = %e, "could not train a zstd dictionary; storing events without one");
                self.dictionary = DictionaryState::Ready { unsaved: None };
            }
        }
    }

    /// Builds one store batch out of claimed inbox entries. The batch may stop early to stay under
    /// [`MAX_BATCH_BYTES`]; `inbox_ids` says which entries it covers (a prefix of `claimed`), and
    /// the caller keeps the rest for the next batch.
    pub fn build_batch(&mut self, claimed: &[Claimed]) -> (DigestBatch, ProcessStats) {
        let mut batch = DigestBatch {
            bounds: self.options.bounds,
            ..DigestBatch::default()
        };
        let mut stats = ProcessStats::default();
        let mut bytes = 0usize;
        let (mut counted_events, mut counted_kept) = (0, 0);
        for c in claimed {
            if let Err(reason) = self.process_entry(c, &mut batch, &mut stats) {
                stats.failed += 1;
                tracing::warn!(inbox_id = c.id, project_id = %c.entry.project_id, %reason, "keeping an unreadable inbox entry aside");
                // The inbox hands over only the decoded body when it has one; the file name
                // says which form was kept.
                let (form, payload) = match (&c.entry.decoded, &c.entry.encoding) {
                    (Some(decoded), _) => ("decoded body".to_owned(), decoded.to_vec()),
                    (None, Some(encoding)) => (
                        format!("body as received, Content-Encoding {encoding}"),
                        c.entry.body.to_vec(),
                    ),
                    (None, None) => ("body as received".to_owned(), c.entry.body.to_vec()),
                };
                batch.kept.push(KeptItem {
                    project_id: c.entry.project_id,
                    event_id: None,
                    item_type: UNREADABLE_ITEM_TYPE.into(),
                    filename: Some(format!("{reason} [{form}]")),
                    received_ms: c.entry.received_ms,
                    payload,
                });
            }
            batch.inbox_ids.push(c.id);
            bytes += batch.events[counted_events..]
                .iter()
                .map(|e| e.payload_zstd.len())
                .sum::<usize>();
            bytes += batch.kept[counted_kept..]
                .iter()
                .map(|k| k.payload.len())
                .sum::<usize>();
            (counted_events, counted_kept) = (batch.events.len(), batch.kept.len());
            if bytes > MAX_BATCH_BYTES {
                break;
            }
        }
        if let DictionaryState::Ready { unsaved } = &mut self.dictionary {
            batch.new_dict = unsaved.take();
        }
        (batch, stats)
    }
}

/// Largest reused serialization buffer digest keeps between events.
const MAX_KEPT_BUFFER: usize = 256 * 1024;

/// Payload bytes one store batch may carry.
pub const MAX_BATCH_BYTES: usize = 32 << 20;

/// Kept-item type of an inbox entry digest could not read: its body (decoded, if ingest had
/// decoded it) is set aside instead of being lost. The file name gives the reason and which
/// form of the body was kept.
pub const UNREADABLE_ITEM_TYPE: &str = "phoebe.unreadable";

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

impl Processor {
    fn process_entry(
        &mut self,
        claimed: &Claimed,
        batch: &mut DigestBatch,
        stats: &mut ProcessStats,
    ) -> Result<(), String> {
        let entry = &claimed.entry;
        let options = &self.options;
        // Ingest usually hands over the body it already decoded; after a restart it comes from disk.
        let body: bytes::Bytes = match &entry.decoded {
            Some(decoded) => decoded.clone(),
            None => {
                let encoding = Encoding::from_header(entry.encoding.as_deref());
                codec::decode(encoding, &entry.body, options.max_body_bytes)
                    .map_err(|e| e.to_string())?
                    .into()
            }
        };
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
                                    self.push_event(entry, event, problems, batch, stats)
                                }
                                Err(e) => {
                                    stats.failed += 1;
                                    tracing::warn!(project_id = %entry.project_id, error = %e, "skipping unreadable event item");
                                }
                            }
                        }
                        ItemType::ClientReport => {
                            let day_ms = entry.received_ms.div_euclid(DAY_MS) * DAY_MS;
                            match phoebe_protocol::client_report::parse(payload) {
                                Ok(discards) => {
                                    batch.discards.extend(discards.into_iter().map(|d| {
                                        ClientDiscard {
                                            project_id: entry.project_id,
                                            day_ms,
                                            reason: d.reason,
                                            category: d.category,
                                            quantity: d.quantity,
                                        }
                                    }))
                                }
                                Err(e) => {
                                    stats.dropped += 1;
                                    tracing::debug!(project_id = %entry.project_id, error = %e, "skipping an unreadable client report");
                                }
                            }
                        }
                        ItemType::Attachment
                        | ItemType::UserReport
                        | ItemType::Feedback
                        | ItemType::Session
                        | ItemType::Sessions => batch.kept.push(KeptItem {
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
                let json = codec::decode_store_body(body.to_vec(), self.options.max_body_bytes)
                    .map_err(|e| e.to_string())?;
                let json = phoebe_protocol::json::sanitize_non_finite(&json);
                ctx.header_event_id = meta_event_id;
                let (event, problems) =
                    normalize::normalize_event(&json, &ctx).map_err(|e| e.to_string())?;
                self.push_event(entry, event, problems, batch, stats);
            }
            EntryKind::SecurityReport => {
                let report: serde_json::Value =
                    serde_json::from_slice(&body).map_err(|e| e.to_string())?;
                let value = security_report_event(report, meta.release, meta.environment)
                    .ok_or("not a CSP report")?;
                let (event, problems) =
                    normalize::normalize_value(value, &ctx).map_err(|e| e.to_string())?;
                self.push_event(entry, event, problems, batch, stats);
            }
        }
        Ok(())
    }
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

impl Processor {
    fn push_event(
        &mut self,
        entry: &Entry,
        mut event: Event,
        problems: Vec<Problem>,
        batch: &mut DigestBatch,
        stats: &mut ProcessStats,
    ) {
        if matches!(event.kind, EventKind::Transaction | EventKind::Feedback) {
            stats.dropped += 1;
            return;
        }
        if let Some(mapper) = &self.options.frames {
            if mapper.map_frames(entry.project_id, &mut event.payload) {
                event.refresh_stacks();
            }
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
        let payload_zstd = self.compress_payload(&payload);
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
            grouping: self.explanation_unless_known(entry.project_id, &grouping),
            user: event.user.as_ref().and_then(|u| u.tag_value()),
            tags,
            payload_zstd,
        });
    }

    /// The grouping explanation as JSON, unless the store already has it for this hash.
    fn explanation_unless_known(
        &mut self,
        project_id: ProjectId,
        grouping: &phoebe_grouping::Grouping,
    ) -> Option<String> {
        if self
            .known_hashes
            .contains(&(project_id, grouping.hash.clone()))
        {
            return None;
        }
        if self.known_hashes.len() >= MAX_KNOWN_HASHES {
            self.known_hashes.clear();
        }
        self.known_hashes
            .insert((project_id, grouping.hash.clone()));
        serde_json::to_string(grouping).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claimed(bodies: Vec<Vec<u8>>) -> Vec<Claimed> {
        bodies
            .into_iter()
            .enumerate()
            .map(|(i, body)| Claimed {
                id: i as i64 + 1,
                body_len: body.len(),
                entry: Entry {
                    project_id: ProjectId(1),
                    received_ms: 1_700_000_000_000,
                    kind: EntryKind::Envelope,
                    client_ip: None,
                    encoding: Some("gzip".into()),
                    meta: None,
                    body: body.into(),
                    decoded: None,
                },
            })
            .collect()
    }

    #[test]
    fn a_dictionary_is_trained_stored_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::open_in(dir.path()).unwrap();
        let org = store.create_org("o", "O").unwrap();
        store.create_project(org.id, "p", "P", None).unwrap();
        let options = ProcessOptions {
            max_body_bytes: 1 << 20,
            zstd_level: 3,
            bounds: EventBounds::default(),
            frames: None,
        };
        let mut processor = Processor::new(options.clone(), None).unwrap();
        let entries = claimed(crate::bench::sample_bodies(DICT_SAMPLES + 200, 10));
        let (first, _) = processor.build_batch(&entries[..DICT_SAMPLES - 1]);
        assert!(first.new_dict.is_none());
        // Frames are held until the store has them: no worst-case capacity around them.
        assert!(first
            .events
            .iter()
            .all(|e| e.payload_zstd.capacity() == e.payload_zstd.len()));
        let plain_size: usize = first
            .events
            .iter()
            .map(|e| e.payload_zstd.len())
            .sum::<usize>()
            / first.events.len();
        store.apply_digest_batch(&first).unwrap();
        let (second, _) = processor.build_batch(&entries[DICT_SAMPLES - 1..]);
        let (dict_id, _) = second
            .new_dict
            .clone()
            .expect("a dictionary after enough samples");
        let dict_size: usize = second
            .events
            .iter()
            .map(|e| e.payload_zstd.len())
            .sum::<usize>()
            / second.events.len();
        assert!(
            dict_size * 2 < plain_size,
            "dictionary frames {dict_size} B vs plain {plain_size} B"
        );
        store.apply_digest_batch(&second).unwrap();
        assert_eq!(
            store.latest_zstd_dict().unwrap().map(|(id, _)| id),
            Some(dict_id)
        );
        // Events from before and after the dictionary both read back whole.
        for ev in [&first.events[0], second.events.last().unwrap()] {
            let stored = store.event(ProjectId(1), ev.event_id).unwrap().unwrap();
            assert_eq!(stored.payload["event_id"], ev.event_id.simple().to_string());
            assert_eq!(stored.payload["platform"], "python");
        }
        // A restarted processor picks the stored dictionary up and needs no new one.
        let mut again =
            Processor::new(options, store.latest_zstd_dict().unwrap().map(|(_, d)| d)).unwrap();
        let (third, _) = again.build_batch(&claimed(crate::bench::sample_bodies(5, 10)));
        assert!(third.new_dict.is_none());
        assert_eq!(
            zstd::zstd_safe::get_dict_id_from_frame(&third.events[0].payload_zstd).map(|i| i.get()),
            Some(dict_id)
        );
    }

    #[test]
    fn an_unreadable_entry_is_set_aside_not_lost() {
        let options = ProcessOptions {
            max_body_bytes: 1 << 20,
            zstd_level: 3,
            bounds: EventBounds::default(),
            frames: None,
        };
        let mut processor = Processor::new(options, None).unwrap();
        // Read back from disk (gzip that is not gzip), and handed over decoded (no envelope).
        let mut entries = claimed(vec![b"not gzip".to_vec(), Vec::new()]);
        entries[1].entry.decoded = Some(bytes::Bytes::from_static(b"\xff not an envelope"));
        let (batch, stats) = processor.build_batch(&entries);
        assert_eq!(stats.failed, 2);
        assert!(batch.events.is_empty());
        let kept: Vec<(&str, &[u8])> = batch
            .kept
            .iter()
            .map(|k| (k.item_type.as_str(), k.payload.as_slice()))
            .collect();
        assert_eq!(
            kept,
            [
                (UNREADABLE_ITEM_TYPE, &b"not gzip"[..]),
                (UNREADABLE_ITEM_TYPE, &b"\xff not an envelope"[..])
            ]
        );
        assert!(batch.kept[0]
            .filename
            .as_deref()
            .unwrap()
            .ends_with("[body as received, Content-Encoding gzip]"));
        assert!(batch.kept[1]
            .filename
            .as_deref()
            .unwrap()
            .ends_with("[decoded body]"));
        assert_eq!(batch.inbox_ids.last(), Some(&entries[1].id));
    }

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
