//! Size limits: Sentry's caps on bodies and envelope items as configurable defaults, and the
//! check of a parsed envelope against them (protocol.md §4). Pure: the server enforces the body
//! caps while reading and decompressing; this module only holds their values.

use crate::envelope::{Envelope, ItemType};

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;

/// Byte limits, the `[ingest]` section of the config. Defaults follow Sentry's documented limits
/// (where current Relay is looser, the docs' numbers: SDKs are built to stay under those).
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// A request body as received, before decompression (docs: 20 MB).
    pub max_compressed_body_bytes: u64,
    /// An envelope body after decompression (docs: 100 MB; Relay today 200 MiB).
    pub max_envelope_bytes: u64,
    /// One `event`, `transaction`, `feedback` or `user_report` item (1 MiB).
    pub max_event_bytes: u64,
    /// One `attachment` or `unreal_report` item (docs: 100 MB).
    pub max_attachment_bytes: u64,
    /// All attachments of one envelope together (docs: 100 MB).
    pub max_attachments_bytes: u64,
    /// One `session` or `sessions` item. Relay allows 10 MiB, but a session is ~250 bytes and a
    /// full 100-bucket aggregate ~10 KiB, and digest parses them as JSON.
    pub max_session_bytes: u64,
    /// One `client_report` item (Relay today 100 KiB; older Relay and the docs 4 KiB).
    pub max_client_report_bytes: u64,
    /// One `check_in` item (100 KiB).
    pub max_check_in_bytes: u64,
    /// A `/store/` body after decompression (1 MiB, the event limit).
    pub max_store_body_bytes: u64,
    /// A `/security/` report body, and `security`/`raw_security` items (64 KiB, as Bugsink).
    pub max_security_report_bytes: u64,
    /// Any other item: profiles, replays, spans, logs, metrics, unknown types. 50 MiB is Relay's
    /// largest cap among them (profiles); a tighter one would turn away the event they travel
    /// with, and Phoebe drops these items anyway.
    pub max_other_item_bytes: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_compressed_body_bytes: 20 * MIB,
            max_envelope_bytes: 100 * MIB,
            max_event_bytes: MIB,
            max_attachment_bytes: 100 * MIB,
            max_attachments_bytes: 100 * MIB,
            max_session_bytes: MIB,
            max_client_report_bytes: 100 * KIB,
            max_check_in_bytes: 100 * KIB,
            max_store_body_bytes: MIB,
            max_security_report_bytes: 64 * KIB,
            max_other_item_bytes: 50 * MIB,
        }
    }
}

impl Limits {
    /// The cap on one item of type `ty` and the name of the setting that raises it.
    pub fn item_limit(&self, ty: ItemType) -> (u64, &'static str) {
        match ty {
            ItemType::Event | ItemType::Transaction | ItemType::Feedback | ItemType::UserReport => {
                (self.max_event_bytes, "max_event_bytes")
            }
            // Relay counts Unreal crash reports (a zip with a minidump) as attachments.
            ItemType::Attachment | ItemType::UnrealReport => {
                (self.max_attachment_bytes, "max_attachment_bytes")
            }
            ItemType::Session | ItemType::Sessions => (self.max_session_bytes, "max_session_bytes"),
            ItemType::ClientReport => (self.max_client_report_bytes, "max_client_report_bytes"),
            ItemType::CheckIn => (self.max_check_in_bytes, "max_check_in_bytes"),
            ItemType::Security | ItemType::RawSecurity => {
                (self.max_security_report_bytes, "max_security_report_bytes")
            }
            ItemType::Profile
            | ItemType::ProfileChunk
            | ItemType::ReplayEvent
            | ItemType::ReplayRecording
            | ItemType::ReplayVideo
            | ItemType::Span
            | ItemType::OtelSpan
            | ItemType::Log
            | ItemType::TraceMetric
            | ItemType::Statsd
            | ItemType::MetricBuckets
            | ItemType::FormData
            | ItemType::Nel
            | ItemType::Unknown => (self.max_other_item_bytes, "max_other_item_bytes"),
        }
    }
}

/// Why an envelope is over a size limit; the server answers 413 with `Display` as the detail.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum LimitError {
    /// One item is over its type's cap.
    #[error("envelope exceeded size limits for type '{item_type}' ({size} bytes, limit {limit}); send less or raise [ingest] {setting}")]
    ItemTooLarge {
        /// The item type as sent (cut to 64 bytes).
        item_type: String,
        /// The item's payload size.
        size: u64,
        /// The cap it exceeded.
        limit: u64,
        /// The `[ingest]` setting that raises the cap.
        setting: &'static str,
    },
    /// The attachments together are over `max_attachments_bytes`.
    #[error("envelope exceeded size limits for type 'attachment' ({size} bytes in all attachments, limit {limit}); send fewer or raise [ingest] max_attachments_bytes")]
    AttachmentsTooLarge {
        /// The attachments' total payload size.
        size: u64,
        /// The cap it exceeded.
        limit: u64,
    },
    /// All payloads together are over `max_envelope_bytes`.
    #[error("envelope exceeded size limits ({size} bytes of items, limit {limit}); send less or raise [ingest] max_envelope_bytes")]
    EnvelopeTooLarge {
        /// The items' total payload size.
        size: u64,
        /// The cap it exceeded.
        limit: u64,
    },
}

/// The longest item type echoed back in an error: the name is client-chosen.
const MAX_TYPE_NAME_IN_ERROR: usize = 64;

/// Checks every item against its type's cap, then the attachments and all items together. Like
/// Relay, one item over its cap fails the whole envelope (a 413 the SDK will not retry).
pub fn check_envelope(envelope: &Envelope, limits: &Limits) -> Result<(), LimitError> {
    let mut attachments_bytes: u64 = 0;
    let mut total_bytes: u64 = 0;
    for item in &envelope.items {
        let size = item.payload.len() as u64;
        let (limit, setting) = limits.item_limit(item.ty);
        if size > limit {
            return Err(LimitError::ItemTooLarge {
                item_type: truncate(&item.type_name, MAX_TYPE_NAME_IN_ERROR).to_owned(),
                size,
                limit,
                setting,
            });
        }
        if matches!(item.ty, ItemType::Attachment | ItemType::UnrealReport) {
            attachments_bytes = attachments_bytes.saturating_add(size);
        }
        total_bytes = total_bytes.saturating_add(size);
    }
    if attachments_bytes > limits.max_attachments_bytes {
        return Err(LimitError::AttachmentsTooLarge {
            size: attachments_bytes,
            limit: limits.max_attachments_bytes,
        });
    }
    if total_bytes > limits.max_envelope_bytes {
        return Err(LimitError::EnvelopeTooLarge {
            size: total_bytes,
            limit: limits.max_envelope_bytes,
        });
    }
    Ok(())
}

/// The longest prefix of `s` of at most `max` bytes that ends on a char boundary.
fn truncate(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::{EnvelopeHeader, Item};

    /// Builds an envelope of `(type, payload size)` items and checks it against `limits`.
    fn check(items: &[(&str, usize)], limits: &Limits, expected: &str) {
        let mut offset = 0;
        let envelope = Envelope {
            header: EnvelopeHeader::default(),
            items: items
                .iter()
                .map(|&(name, size)| {
                    let payload = offset..offset + size;
                    offset += size;
                    Item {
                        ty: ItemType::parse(name),
                        type_name: name.to_owned(),
                        payload,
                        content_type: None,
                        filename: None,
                        attachment_type: None,
                    }
                })
                .collect(),
        };
        let rendered = match check_envelope(&envelope, limits) {
            Ok(()) => "ok".to_owned(),
            Err(err) => err.to_string(),
        };
        assert_eq!(rendered, expected);
    }

    const MIB: usize = 1024 * 1024;

    #[test]
    fn defaults_are_sentrys_numbers() {
        let limits = Limits::default();
        assert_eq!(
            serde_json::to_value(&limits).unwrap(),
            serde_json::json!({
                "max_compressed_body_bytes": 20 * MIB,
                "max_envelope_bytes": 100 * MIB,
                "max_event_bytes": MIB,
                "max_attachment_bytes": 100 * MIB,
                "max_attachments_bytes": 100 * MIB,
                "max_session_bytes": MIB,
                "max_client_report_bytes": 100 * 1024,
                "max_check_in_bytes": 100 * 1024,
                "max_store_body_bytes": MIB,
                "max_security_report_bytes": 64 * 1024,
                "max_other_item_bytes": 50 * MIB,
            })
        );
    }

    #[test]
    fn config_fills_in_defaults_and_rejects_unknown_keys() {
        let limits: Limits = serde_json::from_str(r#"{"max_event_bytes": 10}"#).unwrap();
        assert_eq!(
            limits,
            Limits {
                max_event_bytes: 10,
                ..Limits::default()
            }
        );
        let err = serde_json::from_str::<Limits>(r#"{"max_event_size": 10}"#).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("unknown field `max_event_size`"),
            "{err}"
        );
    }

    #[test]
    fn items_at_their_limit_pass() {
        check(
            &[
                ("event", MIB),
                ("attachment", 3 * MIB),
                ("session", MIB),
                ("client_report", 100 * 1024),
                ("check_in", 100 * 1024),
                ("profile", 50 * MIB),
            ],
            &Limits::default(),
            "ok",
        );
        check(&[("whatever", 50 * MIB)], &Limits::default(), "ok");
        check(&[], &Limits::default(), "ok");
    }

    #[test]
    fn one_item_over_its_limit_fails_the_envelope() {
        let cases = [
            ("event", MIB + 1, 1048576, "max_event_bytes"),
            ("transaction", MIB + 1, 1048576, "max_event_bytes"),
            ("feedback", MIB + 1, 1048576, "max_event_bytes"),
            (
                "attachment",
                100 * MIB + 1,
                104857600,
                "max_attachment_bytes",
            ),
            ("sessions", MIB + 1, 1048576, "max_session_bytes"),
            (
                "client_report",
                100 * 1024 + 1,
                102400,
                "max_client_report_bytes",
            ),
            ("check_in", 100 * 1024 + 1, 102400, "max_check_in_bytes"),
            (
                "security",
                64 * 1024 + 1,
                65536,
                "max_security_report_bytes",
            ),
            (
                "replay_recording",
                50 * MIB + 1,
                52428800,
                "max_other_item_bytes",
            ),
        ];
        for (name, size, limit, setting) in cases {
            check(
                &[("session", 10), (name, size)],
                &Limits::default(),
                &format!(
                    "envelope exceeded size limits for type '{name}' ({size} bytes, limit {limit}); \
                     send less or raise [ingest] {setting}"
                ),
            );
        }
    }

    #[test]
    fn unknown_type_names_are_cut_in_errors() {
        let name = format!("{}é", "x".repeat(63));
        check(
            &[(&name, 11)],
            &Limits {
                max_other_item_bytes: 10,
                ..Limits::default()
            },
            &format!(
                "envelope exceeded size limits for type '{}' (11 bytes, limit 10); \
                 send less or raise [ingest] max_other_item_bytes",
                "x".repeat(63)
            ),
        );
    }

    #[test]
    fn attachments_together_are_capped() {
        let limits = Limits {
            max_attachments_bytes: 100,
            ..Limits::default()
        };
        check(
            &[("attachment", 60), ("event", 500), ("attachment", 40)],
            &limits,
            "ok",
        );
        check(
            &[("attachment", 60), ("unreal_report", 41)],
            &limits,
            "envelope exceeded size limits for type 'attachment' (101 bytes in all attachments, \
             limit 100); send fewer or raise [ingest] max_attachments_bytes",
        );
    }

    #[test]
    fn all_items_together_are_capped() {
        let limits = Limits {
            max_envelope_bytes: 100,
            ..Limits::default()
        };
        check(&[("event", 50), ("session", 50)], &limits, "ok");
        check(
            &[("event", 50), ("session", 50), ("span", 1)],
            &limits,
            "envelope exceeded size limits (101 bytes of items, limit 100); send less or raise \
             [ingest] max_envelope_bytes",
        );
    }

    #[test]
    fn truncate_respects_char_boundaries() {
        assert_eq!(truncate("aé", 2), "a");
        assert_eq!(truncate("aé", 3), "aé");
        assert_eq!(truncate("", 3), "");
    }
}
