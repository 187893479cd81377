//! Envelopes: splits a decompressed envelope body into its header and items by byte range,
//! without copying or parsing payloads (protocol.md §3.1–§3.4). Payloads stay in the caller's
//! buffer; only the small header lines are JSON-parsed.

use std::ops::Range;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use uuid::Uuid;

/// A parsed envelope: its header and where each item's payload lies in the body.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    /// The envelope header (first line).
    pub header: EnvelopeHeader,
    /// The items in body order.
    pub items: Vec<Item>,
}

/// The envelope header fields Phoebe uses; the rest (`trace`, `sdk.version`, ...) is ignored.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EnvelopeHeader {
    /// `event_id`, 32 hex or dashed; an invalid one fails the whole envelope (Relay answers 400).
    pub event_id: Option<Uuid>,
    /// `dsn`, the auth of last resort for tunnelled browser envelopes (§1.2 item 6).
    pub dsn: Option<String>,
    /// `sent_at`, for clock-drift correction; `None` when absent, `null` or unparsable, since a
    /// bad clock hint is no reason to lose an event.
    pub sent_at: Option<DateTime<Utc>>,
    /// `sdk.name`, e.g. `sentry.javascript.browser`.
    pub sdk_name: Option<String>,
}

/// One item: its header fields and the byte range of its payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// The item type; names Phoebe does not know become [`ItemType::Unknown`].
    pub ty: ItemType,
    /// The `type` exactly as sent.
    pub type_name: String,
    /// Where the payload lies in the body passed to [`Envelope::parse`].
    pub payload: Range<usize>,
    /// `content_type`, if a string.
    pub content_type: Option<String>,
    /// `filename`, if a string (attachments).
    pub filename: Option<String>,
    /// `attachment_type`, if a string (attachments), e.g. `event.minidump`.
    pub attachment_type: Option<String>,
}

impl Item {
    /// The payload bytes, given the body this item was parsed from (empty if it is another body).
    pub fn payload<'a>(&self, body: &'a [u8]) -> &'a [u8] {
        body.get(self.payload.clone()).unwrap_or_default()
    }

    /// The payload length in bytes.
    pub fn len(&self) -> usize {
        self.payload.len()
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.payload.is_empty()
    }
}

/// The item types of Relay's `ItemType::from_str`; anything else is [`ItemType::Unknown`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ItemType {
    /// `event`: an error or message event.
    Event,
    /// `transaction`: a performance transaction.
    Transaction,
    /// `attachment`: raw bytes tied to the envelope's event.
    Attachment,
    /// `session`: one release-health session update.
    Session,
    /// `sessions`: pre-aggregated release-health buckets.
    Sessions,
    /// `client_report`: what the SDK discarded and why.
    ClientReport,
    /// `user_report`: legacy user feedback.
    UserReport,
    /// `feedback`: user feedback as an event.
    Feedback,
    /// `check_in`: a cron monitor check-in.
    CheckIn,
    /// `profile`: a transaction profile.
    Profile,
    /// `profile_chunk` (also `profile_chunk_ui`): continuous profiling.
    ProfileChunk,
    /// `replay_event`: session replay metadata.
    ReplayEvent,
    /// `replay_recording`: session replay recording.
    ReplayRecording,
    /// `replay_video`: mobile session replay video.
    ReplayVideo,
    /// `span`: standalone spans.
    Span,
    /// `otel_span`: an OpenTelemetry span.
    OtelSpan,
    /// `log`: a logs container.
    Log,
    /// `trace_metric`: a trace metrics container.
    TraceMetric,
    /// `statsd`: legacy metrics.
    Statsd,
    /// `metric_buckets`: legacy metric buckets.
    MetricBuckets,
    /// `security`: a CSP or similar report (Relay-internal).
    Security,
    /// `raw_security`: an unparsed security report (Relay-internal).
    RawSecurity,
    /// `unreal_report`: an Unreal Engine crash report (Relay-internal).
    UnrealReport,
    /// `form_data`: multipart form fields (Relay-internal).
    FormData,
    /// `nel`: Network Error Logging reports.
    Nel,
    /// Any other type: kept so it can be counted, never an error (SDKs add types all the time).
    Unknown,
}

impl ItemType {
    /// Every variant, in declaration order.
    pub const ALL: &'static [ItemType] = &[
        ItemType::Event,
        ItemType::Transaction,
        ItemType::Attachment,
        ItemType::Session,
        ItemType::Sessions,
        ItemType::ClientReport,
        ItemType::UserReport,
        ItemType::Feedback,
        ItemType::CheckIn,
        ItemType::Profile,
        ItemType::ProfileChunk,
        ItemType::ReplayEvent,
        ItemType::ReplayRecording,
        ItemType::ReplayVideo,
        ItemType::Span,
        ItemType::OtelSpan,
        ItemType::Log,
        ItemType::TraceMetric,
        ItemType::Statsd,
        ItemType::MetricBuckets,
        ItemType::Security,
        ItemType::RawSecurity,
        ItemType::UnrealReport,
        ItemType::FormData,
        ItemType::Nel,
        ItemType::Unknown,
    ];

    /// Maps a `type` header to its variant; case-sensitive, like Relay.
    pub fn parse(name: &str) -> ItemType {
        match name {
            "event" => ItemType::Event,
            "transaction" => ItemType::Transaction,
            "attachment" => ItemType::Attachment,
            "session" => ItemType::Session,
            "sessions" => ItemType::Sessions,
            "client_report" => ItemType::ClientReport,
            "user_report" => ItemType::UserReport,
            "feedback" => ItemType::Feedback,
            "check_in" => ItemType::CheckIn,
            "profile" => ItemType::Profile,
            "profile_chunk" | "profile_chunk_ui" => ItemType::ProfileChunk,
            "replay_event" => ItemType::ReplayEvent,
            "replay_recording" => ItemType::ReplayRecording,
            "replay_video" => ItemType::ReplayVideo,
            "span" => ItemType::Span,
            "otel_span" => ItemType::OtelSpan,
            "log" => ItemType::Log,
            "trace_metric" => ItemType::TraceMetric,
            "statsd" => ItemType::Statsd,
            "metric_buckets" => ItemType::MetricBuckets,
            "security" => ItemType::Security,
            "raw_security" => ItemType::RawSecurity,
            "unreal_report" => ItemType::UnrealReport,
            "form_data" => ItemType::FormData,
            "nel" => ItemType::Nel,
            _ => ItemType::Unknown,
        }
    }

    /// The canonical wire name; `"unknown"` for [`ItemType::Unknown`] (see [`Item::type_name`]
    /// for what was actually sent).
    pub fn as_str(self) -> &'static str {
        match self {
            ItemType::Event => "event",
            ItemType::Transaction => "transaction",
            ItemType::Attachment => "attachment",
            ItemType::Session => "session",
            ItemType::Sessions => "sessions",
            ItemType::ClientReport => "client_report",
            ItemType::UserReport => "user_report",
            ItemType::Feedback => "feedback",
            ItemType::CheckIn => "check_in",
            ItemType::Profile => "profile",
            ItemType::ProfileChunk => "profile_chunk",
            ItemType::ReplayEvent => "replay_event",
            ItemType::ReplayRecording => "replay_recording",
            ItemType::ReplayVideo => "replay_video",
            ItemType::Span => "span",
            ItemType::OtelSpan => "otel_span",
            ItemType::Log => "log",
            ItemType::TraceMetric => "trace_metric",
            ItemType::Statsd => "statsd",
            ItemType::MetricBuckets => "metric_buckets",
            ItemType::Security => "security",
            ItemType::RawSecurity => "raw_security",
            ItemType::UnrealReport => "unreal_report",
            ItemType::FormData => "form_data",
            ItemType::Nel => "nel",
            ItemType::Unknown => "unknown",
        }
    }

    /// The rate-limit data category SDKs use for this item in `X-Sentry-Rate-Limits` (§5.1),
    /// so a quota on it stops exactly what it should. Client reports are `internal`: they must
    /// never be rate limited. Types SDKs don't send or Phoebe can't place are `default`.
    pub fn category(self) -> &'static str {
        match self {
            ItemType::Event | ItemType::UnrealReport => "error",
            ItemType::Transaction => "transaction",
            ItemType::Attachment => "attachment",
            ItemType::Session | ItemType::Sessions => "session",
            ItemType::ClientReport => "internal",
            ItemType::UserReport | ItemType::Feedback => "feedback",
            ItemType::CheckIn => "monitor",
            ItemType::Profile => "profile",
            ItemType::ProfileChunk => "profile_chunk",
            ItemType::ReplayEvent | ItemType::ReplayRecording | ItemType::ReplayVideo => "replay",
            ItemType::Span | ItemType::OtelSpan => "span",
            ItemType::Log => "log_item",
            ItemType::TraceMetric => "trace_metric",
            ItemType::Statsd | ItemType::MetricBuckets => "metric_bucket",
            ItemType::Security | ItemType::RawSecurity => "security",
            ItemType::FormData | ItemType::Nel | ItemType::Unknown => "default",
        }
    }
}

/// Why a body is not an envelope. `Display` is short; it goes into a 400's JSON `detail`.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum EnvelopeError {
    /// The body is empty or only whitespace.
    #[error("invalid envelope: the body is empty")]
    Empty,
    /// The first line is not a JSON object; the text says how.
    #[error("invalid envelope: {0}")]
    BadHeader(String),
    /// An item header is not a JSON object or has a bad `type`/`length`; the text says which.
    #[error("invalid envelope: {0}")]
    BadItemHeader(String),
    /// An item header has no `type`.
    #[error("invalid envelope: an item header has no \"type\"")]
    MissingType,
    /// An item's `length` runs past the end of the body.
    #[error("invalid envelope: unexpected end of file (an item's length runs past the body)")]
    UnexpectedEof,
    /// The byte after a `length`-delimited payload is neither `\n` nor the end.
    #[error("invalid envelope: missing newline after an item's payload")]
    MissingNewline,
    /// The header's `event_id` is not a UUID.
    #[error("invalid envelope: event_id is not a UUID (32 hex characters, dashes allowed)")]
    BadEventId,
    /// More items than [`MAX_ITEMS`].
    #[error("invalid envelope: more than {MAX_ITEMS} items; send fewer per envelope")]
    TooManyItems,
}

/// The longest header line read. SDK headers are a few hundred bytes (the `trace` context is
/// the biggest part); the cap keeps a body-sized JSON header from being parsed into a tree
/// several times its size.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

/// The most items one envelope may hold. Real envelopes carry a handful (Relay caps sessions at
/// 100 and attachments at 30); without a cap, a 100 MiB body of 13-byte `{"type":"x"}` items
/// would cost ~10x its size in `Item`s.
pub const MAX_ITEMS: usize = 10_000;

impl Envelope {
    /// Splits a decompressed body. Lenient where SDKs differ (whitespace between items and at
    /// the end, unknown types and header keys), strict where the framing is ambiguous.
    pub fn parse(body: &[u8]) -> Result<Envelope, EnvelopeError> {
        let mut pos = skip_whitespace(body, 0);
        if pos == body.len() {
            return Err(EnvelopeError::Empty);
        }
        let (line, next) = split_line(body, pos);
        let header = parse_envelope_header(line)?;
        pos = next;

        let mut items = Vec::new();
        loop {
            pos = skip_whitespace(body, pos);
            if pos == body.len() {
                break;
            }
            if items.len() == MAX_ITEMS {
                return Err(EnvelopeError::TooManyItems);
            }
            let (line, payload_start) = split_line(body, pos);
            let index = items.len() + 1;
            let fields = parse_object(line).map_err(|why| {
                EnvelopeError::BadItemHeader(format!("item {index} header {why}"))
            })?;
            let (item, length) = item_from_header(&fields, index)?;
            let payload = match length {
                Some(length) => {
                    let remaining = body.len() - payload_start;
                    let length = usize::try_from(length)
                        .ok()
                        .filter(|&length| length <= remaining)
                        .ok_or(EnvelopeError::UnexpectedEof)?;
                    let end = payload_start + length;
                    match body.get(end) {
                        None => pos = end,
                        Some(b'\n') => pos = end + 1,
                        Some(_) => return Err(EnvelopeError::MissingNewline),
                    }
                    payload_start..end
                }
                None => {
                    let (line, next) = split_line(body, payload_start);
                    pos = next;
                    payload_start..payload_start + line.len()
                }
            };
            items.push(Item { payload, ..item });
        }
        Ok(Envelope { header, items })
    }

    /// Writes an envelope: the header, then each item's header with `length` set to its
    /// payload's size, and the payload. Headers should be JSON objects; `parse` reads the
    /// result back to the same items. Used by `phoebe send-test-event`, benchmarks and tests.
    pub fn serialize(header: &Value, items: &[(Value, &[u8])]) -> Vec<u8> {
        let payload_bytes: usize = items.iter().map(|(_, payload)| payload.len() + 64).sum();
        let mut out = Vec::with_capacity(256 + payload_bytes);
        // Compact serde_json output escapes newlines inside strings, so a header stays one line.
        out.extend_from_slice(header.to_string().as_bytes());
        out.push(b'\n');
        for (item_header, payload) in items {
            let mut item_header = item_header.clone();
            if let Some(fields) = item_header.as_object_mut() {
                fields.insert("length".to_owned(), Value::from(payload.len()));
            }
            out.extend_from_slice(item_header.to_string().as_bytes());
            out.push(b'\n');
            out.extend_from_slice(payload);
            out.push(b'\n');
        }
        out
    }
}

/// Returns the line starting at `start` (without its `\n`) and where the next line starts.
fn split_line(body: &[u8], start: usize) -> (&[u8], usize) {
    let rest = body.get(start..).unwrap_or_default();
    match rest.iter().position(|&b| b == b'\n') {
        Some(newline) => (&rest[..newline], start + newline + 1),
        None => (rest, body.len()),
    }
}

/// Skips JSON whitespace, as Relay's streaming reader does before each header.
fn skip_whitespace(body: &[u8], mut pos: usize) -> usize {
    while body
        .get(pos)
        .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
    {
        pos += 1;
    }
    pos
}

/// Parses a header line as a JSON object; the error completes "... header {why}".
fn parse_object(line: &[u8]) -> Result<Map<String, Value>, String> {
    if line.len() > MAX_HEADER_BYTES {
        return Err(format!("is longer than {} KiB", MAX_HEADER_BYTES / 1024));
    }
    match serde_json::from_slice::<Value>(line) {
        Ok(Value::Object(fields)) => Ok(fields),
        Ok(_) => Err("is not a JSON object".to_owned()),
        Err(err) => Err(format!("is not valid JSON ({err})")),
    }
}

fn parse_envelope_header(line: &[u8]) -> Result<EnvelopeHeader, EnvelopeError> {
    let fields =
        parse_object(line).map_err(|why| EnvelopeError::BadHeader(format!("header {why}")))?;
    let event_id = match fields.get("event_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) if id.len() == 32 || id.len() == 36 => {
            Some(Uuid::try_parse(id).map_err(|_| EnvelopeError::BadEventId)?)
        }
        Some(_) => return Err(EnvelopeError::BadEventId),
    };
    let sent_at = fields
        .get("sent_at")
        .and_then(Value::as_str)
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc));
    Ok(EnvelopeHeader {
        event_id,
        dsn: string_field(&fields, "dsn"),
        sent_at,
        sdk_name: fields
            .get("sdk")
            .and_then(|sdk| sdk.get("name"))
            .and_then(Value::as_str)
            .map(str::to_owned),
    })
}

/// Reads an item header into an `Item` with an empty payload, plus its `length` if given.
fn item_from_header(
    fields: &Map<String, Value>,
    index: usize,
) -> Result<(Item, Option<u64>), EnvelopeError> {
    let type_name = match fields.get("type") {
        None | Some(Value::Null) => return Err(EnvelopeError::MissingType),
        Some(Value::String(name)) => name.clone(),
        Some(_) => {
            return Err(EnvelopeError::BadItemHeader(format!(
                "item {index} type is not a string"
            )))
        }
    };
    // Relay reads `length` as an optional integer, so `null` means "no length".
    let length = match fields.get("length") {
        None | Some(Value::Null) => None,
        Some(length) => Some(length.as_u64().ok_or_else(|| {
            EnvelopeError::BadItemHeader(format!(
                "item {index} length is not a non-negative integer"
            ))
        })?),
    };
    let item = Item {
        ty: ItemType::parse(&type_name),
        type_name,
        payload: 0..0,
        content_type: string_field(fields, "content_type"),
        filename: string_field(fields, "filename"),
        attachment_type: string_field(fields, "attachment_type"),
    };
    Ok((item, length))
}

fn string_field(fields: &Map<String, Value>, key: &str) -> Option<String> {
    fields.get(key).and_then(Value::as_str).map(str::to_owned)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;
    use std::io::Read;
    use std::path::PathBuf;

    /// Renders a parse result as lines: the header fields, then one line per item with its
    /// type, range, optional headers and payload; or the error's `Display`.
    fn check(body: &[u8], expected: &str) {
        let rendered = match Envelope::parse(body) {
            Ok(envelope) => {
                let h = &envelope.header;
                let mut out = format!(
                    "header event_id={} dsn={} sent_at={} sdk={}",
                    h.event_id
                        .map_or("-".to_owned(), |id| id.simple().to_string()),
                    h.dsn.as_deref().unwrap_or("-"),
                    h.sent_at.map_or("-".to_owned(), |t| t.to_rfc3339()),
                    h.sdk_name.as_deref().unwrap_or("-"),
                );
                for item in &envelope.items {
                    out.push_str(&format!(
                        "\n{:?} {:?} {:?}",
                        item.ty, item.type_name, item.payload
                    ));
                    for (key, value) in [
                        ("content_type", &item.content_type),
                        ("filename", &item.filename),
                        ("attachment_type", &item.attachment_type),
                    ] {
                        if let Some(value) = value {
                            out.push_str(&format!(" {key}={value}"));
                        }
                    }
                    out.push_str(&format!(
                        " {:?}",
                        String::from_utf8_lossy(item.payload(body))
                    ));
                }
                out
            }
            Err(err) => format!("error: {err}"),
        };
        assert_eq!(
            rendered,
            expected,
            "body: {:?}",
            String::from_utf8_lossy(body)
        );
    }

    const ID: &str = "9ec79c33ec9942ab8353589fcb2e04dc";

    #[test]
    fn header_only_with_and_without_newline() {
        let expected = format!("header event_id={ID} dsn=- sent_at=- sdk=-");
        check(format!("{{\"event_id\":\"{ID}\"}}").as_bytes(), &expected);
        check(format!("{{\"event_id\":\"{ID}\"}}\n").as_bytes(), &expected);
        check(b"{}", "header event_id=- dsn=- sent_at=- sdk=-");
    }

    #[test]
    fn header_fields() {
        check(
            br#"{"event_id":"9ec79c33-ec99-42ab-8353-589fcb2e04dc","dsn":"https://e2b6c1f0a9d84c3b8f7e6d5c4b3a2910@o1.ingest.sentry.io/42","sent_at":"2024-05-06T07:08:09.123456+00:00","sdk":{"name":"sentry.python","version":"2.75.0"},"trace":{"trace_id":"x"}}"#,
            &format!("header event_id={ID} dsn=https://e2b6c1f0a9d84c3b8f7e6d5c4b3a2910@o1.ingest.sentry.io/42 sent_at=2024-05-06T07:08:09.123456+00:00 sdk=sentry.python"),
        );
    }

    #[test]
    fn bad_sent_at_is_none_not_an_error() {
        for sent_at in ["null", "\"yesterday\"", "1714979289", "{}"] {
            check(
                format!("{{\"sent_at\":{sent_at},\"sdk\":\"x\",\"dsn\":5}}").as_bytes(),
                "header event_id=- dsn=- sent_at=- sdk=-",
            );
        }
        check(
            br#"{"sent_at":"2024-05-06T07:08:09Z","event_id":null}"#,
            "header event_id=- dsn=- sent_at=2024-05-06T07:08:09+00:00 sdk=-",
        );
    }

    #[test]
    fn invalid_event_id() {
        for id in [
            "\"abc\"",
            "\"9ec79c33ec9942ab8353589fcb2e04dg\"",
            "\"{9ec79c33-ec99-42ab-8353-589fcb2e04dc}\"",
            "42",
            "\"\"",
        ] {
            check(
                format!("{{\"event_id\":{id}}}\n").as_bytes(),
                "error: invalid envelope: event_id is not a UUID (32 hex characters, dashes allowed)",
            );
        }
    }

    #[test]
    fn two_empty_attachments_with_length_0() {
        check(
            format!(
                "{{\"event_id\":\"{ID}\"}}\n\
                 {{\"type\":\"attachment\",\"length\":0}}\n\
                 \n\
                 {{\"type\":\"attachment\",\"length\":0}}\n\
                 \n"
            )
            .as_bytes(),
            &format!(
                "header event_id={ID} dsn=- sent_at=- sdk=-\n\
                 Attachment \"attachment\" 81..81 \"\"\n\
                 Attachment \"attachment\" 115..115 \"\""
            ),
        );
    }

    #[test]
    fn implicit_length_terminated_by_newline_or_eof() {
        let expected = "header event_id=- dsn=- sent_at=- sdk=-\n\
                        Attachment \"attachment\" 25..35 \"helloworld\"";
        check(b"{}\n{\"type\":\"attachment\"}\nhelloworld\n", expected);
        check(b"{}\n{\"type\":\"attachment\"}\nhelloworld", expected);
    }

    #[test]
    fn implicit_length_empty_item_at_eof() {
        check(
            b"{}\n{\"type\":\"attachment\"}",
            "header event_id=- dsn=- sent_at=- sdk=-\n\
             Attachment \"attachment\" 24..24 \"\"",
        );
        check(
            b"{}\n{\"type\":\"attachment\"}\n",
            "header event_id=- dsn=- sent_at=- sdk=-\n\
             Attachment \"attachment\" 25..25 \"\"",
        );
        check(
            b"{}\n{\"type\":\"attachment\",\"length\":0}",
            "header event_id=- dsn=- sent_at=- sdk=-\n\
             Attachment \"attachment\" 35..35 \"\"",
        );
    }

    #[test]
    fn implicit_length_items_back_to_back() {
        check(
            b"{}\n{\"type\":\"session\"}\n{\"a\":1}\n{\"type\":\"event\"}\n{\"b\":2}\r\n",
            "header event_id=- dsn=- sent_at=- sdk=-\n\
             Session \"session\" 22..29 \"{\\\"a\\\":1}\"\n\
             Event \"event\" 47..55 \"{\\\"b\\\":2}\\r\"",
        );
    }

    #[test]
    fn payload_ending_in_crlf_inside_length() {
        check(
            b"{}\n{\"type\":\"attachment\",\"length\":7,\"content_type\":\"text/plain\",\"filename\":\"a.txt\",\"attachment_type\":\"event.attachment\"}\nhello\r\n",
            "header event_id=- dsn=- sent_at=- sdk=-\n\
             Attachment \"attachment\" 120..127 content_type=text/plain filename=a.txt attachment_type=event.attachment \"hello\\r\\n\"",
        );
    }

    #[test]
    fn length_payload_may_contain_newlines() {
        check(
            b"{}\n{\"type\":\"attachment\",\"length\":4}\na\n\nb\n{\"type\":\"event\",\"length\":2}\n{}",
            "header event_id=- dsn=- sent_at=- sdk=-\n\
             Attachment \"attachment\" 36..40 \"a\\n\\nb\"\n\
             Event \"event\" 69..71 \"{}\"",
        );
    }

    #[test]
    fn unknown_item_types_are_kept() {
        check(
            b"{}\n{\"type\":\"future_thing\",\"length\":3}\nabc\n{\"type\":\"Event\"}\nx\n{\"type\":\"event\"}\n{}\n",
            "header event_id=- dsn=- sent_at=- sdk=-\n\
             Unknown \"future_thing\" 38..41 \"abc\"\n\
             Unknown \"Event\" 59..60 \"x\"\n\
             Event \"event\" 78..80 \"{}\"",
        );
    }

    #[test]
    fn blank_lines_and_trailing_whitespace_are_tolerated() {
        check(
            b"\n  {}\n\n\r\n {\"type\":\"event\",\"length\":2}\n{}\n\n\n{\"type\":\"session\",\"length\":1}\nx\n \t\r\n",
            "header event_id=- dsn=- sent_at=- sdk=-\n\
             Event \"event\" 38..40 \"{}\"\n\
             Session \"session\" 73..74 \"x\"",
        );
    }

    #[test]
    fn empty_bodies() {
        check(b"", "error: invalid envelope: the body is empty");
        check(b" \n\r\n\t", "error: invalid envelope: the body is empty");
    }

    #[test]
    fn bad_envelope_headers() {
        check(
            b"{\"event_id\":\n{}",
            "error: invalid envelope: header is not valid JSON (EOF while parsing a value at line 1 column 12)",
        );
        check(
            b"[]\n",
            "error: invalid envelope: header is not a JSON object",
        );
        check(
            b"\"{}\"\n",
            "error: invalid envelope: header is not a JSON object",
        );
        check(
            b"{} {}\n",
            "error: invalid envelope: header is not valid JSON (trailing characters at line 1 column 4)",
        );
        let long = format!("{{\"x\":\"{}\"}}", "a".repeat(MAX_HEADER_BYTES));
        check(
            long.as_bytes(),
            "error: invalid envelope: header is longer than 64 KiB",
        );
    }

    #[test]
    fn bad_item_headers() {
        check(
            b"{}\n{\"type\":\"event\"\n",
            "error: invalid envelope: item 1 header is not valid JSON (EOF while parsing an object at line 1 column 15)",
        );
        check(
            b"{}\n{\"type\":\"event\",\"length\":1}\n{\nnull\n",
            "error: invalid envelope: item 2 header is not a JSON object",
        );
        check(
            b"{}\n{\"length\":0}\n",
            "error: invalid envelope: an item header has no \"type\"",
        );
        check(
            b"{}\n{\"type\":null}\n",
            "error: invalid envelope: an item header has no \"type\"",
        );
        check(
            b"{}\n{\"type\":7}\n",
            "error: invalid envelope: item 1 type is not a string",
        );
        for length in ["-1", "1.5", "\"3\"", "18446744073709551616"] {
            check(
                format!("{{}}\n{{\"type\":\"event\",\"length\":{length}}}\nabc").as_bytes(),
                "error: invalid envelope: item 1 length is not a non-negative integer",
            );
        }
        check(
            b"{}\n{\"type\":\"event\",\"length\":null}\nabc",
            "header event_id=- dsn=- sent_at=- sdk=-\n\
             Event \"event\" 34..37 \"abc\"",
        );
    }

    #[test]
    fn length_past_eof() {
        check(
            b"{}\n{\"type\":\"attachment\",\"length\":10}\nhello",
            "error: invalid envelope: unexpected end of file (an item's length runs past the body)",
        );
        check(
            b"{}\n{\"type\":\"attachment\",\"length\":18446744073709551615}\nhello",
            "error: invalid envelope: unexpected end of file (an item's length runs past the body)",
        );
        check(
            b"{}\n{\"type\":\"attachment\",\"length\":1}",
            "error: invalid envelope: unexpected end of file (an item's length runs past the body)",
        );
    }

    #[test]
    fn missing_newline_after_length_payload() {
        check(
            b"{}\n{\"type\":\"attachment\",\"length\":4}\nhello\n",
            "error: invalid envelope: missing newline after an item's payload",
        );
        check(
            b"{}\n{\"type\":\"attachment\",\"length\":0}\nx",
            "error: invalid envelope: missing newline after an item's payload",
        );
    }

    #[test]
    fn too_many_items() {
        let mut body = b"{}\n".to_vec();
        for _ in 0..MAX_ITEMS {
            body.extend_from_slice(b"{\"type\":\"x\"}\n\n");
        }
        assert_eq!(Envelope::parse(&body).map(|e| e.items.len()), Ok(MAX_ITEMS));
        body.extend_from_slice(b"{\"type\":\"x\"}\n");
        check(
            &body,
            "error: invalid envelope: more than 10000 items; send fewer per envelope",
        );
    }

    #[test]
    fn item_type_names_round_trip() {
        for &ty in ItemType::ALL {
            if ty != ItemType::Unknown {
                assert_eq!(ItemType::parse(ty.as_str()), ty);
            }
        }
        assert_eq!(ItemType::parse("unknown"), ItemType::Unknown);
        assert_eq!(ItemType::parse("profile_chunk_ui"), ItemType::ProfileChunk);
        let categories: Vec<_> = ItemType::ALL.iter().map(|ty| ty.category()).collect();
        assert_eq!(
            categories.join(" "),
            "error transaction attachment session session internal feedback feedback monitor \
             profile profile_chunk replay replay replay span span log_item trace_metric \
             metric_bucket metric_bucket security security error default default default"
        );
    }

    #[test]
    fn serialize_sets_length_and_round_trips() {
        let body = Envelope::serialize(
            &json!({"event_id": ID, "note": "a\nb"}),
            &[
                (json!({"type": "event", "length": 999}), b"{\"x\":1}"),
                (
                    json!({"type": "attachment", "filename": "f.bin"}),
                    b"\n\r\n\0",
                ),
            ],
        );
        assert_eq!(
            String::from_utf8_lossy(&body),
            format!(
                "{{\"event_id\":\"{ID}\",\"note\":\"a\\nb\"}}\n\
                 {{\"length\":7,\"type\":\"event\"}}\n{{\"x\":1}}\n\
                 {{\"filename\":\"f.bin\",\"length\":4,\"type\":\"attachment\"}}\n\n\r\n\0\n"
            )
        );
        check(
            &body,
            &format!(
                "header event_id={ID} dsn=- sent_at=- sdk=-\n\
                 Event \"event\" 90..97 \"{{\\\"x\\\":1}}\"\n\
                 Attachment \"attachment\" 150..154 filename=f.bin \"\\n\\r\\n\\0\""
            ),
        );
    }

    /// The corpus folder, or `None` when it is absent outside CI (it lives beside the repo,
    /// not in it); under `CI` its absence fails the test instead of skipping it.
    pub(crate) fn corpus_dir() -> Option<PathBuf> {
        let dir = PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/corpus"
        ));
        if dir.is_dir() {
            return Some(dir);
        }
        assert!(
            std::env::var_os("CI").is_none(),
            "corpus folder {} is missing (CI is set, so this fails instead of skipping)",
            dir.display()
        );
        eprintln!("skipping: corpus folder {} not found", dir.display());
        None
    }

    /// One captured request: its sidecar and (still encoded) body.
    pub(crate) struct Capture {
        pub(crate) name: String,
        pub(crate) sidecar: Value,
        pub(crate) body: Vec<u8>,
    }

    /// Every capture in the corpus, sorted by path; empty when the corpus is absent locally.
    pub(crate) fn corpus_sidecars() -> Vec<Capture> {
        let Some(dir) = corpus_dir() else {
            return Vec::new();
        };
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
            .expect("reading the corpus folder")
            .map(|entry| entry.expect("reading the corpus folder").path())
            .filter(|path| path.is_dir())
            .flat_map(|client| std::fs::read_dir(client).expect("reading a corpus client folder"))
            .map(|entry| entry.expect("reading a corpus client folder").path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
            .collect();
        paths.sort();
        paths
            .into_iter()
            .map(|path| {
                let sidecar: Value = serde_json::from_slice(
                    &std::fs::read(&path).expect("reading a corpus sidecar"),
                )
                .expect("corpus sidecars are JSON");
                let body =
                    std::fs::read(path.with_extension("req")).expect("reading a corpus body");
                let name = path
                    .strip_prefix(&dir)
                    .unwrap_or(&path)
                    .display()
                    .to_string();
                Capture {
                    name,
                    sidecar,
                    body,
                }
            })
            .collect()
    }

    fn decode(encoding: &str, body: &[u8], name: &str) -> Vec<u8> {
        let mut out = Vec::new();
        match encoding {
            "none" => out.extend_from_slice(body),
            "gzip" => {
                flate2::read::GzDecoder::new(body)
                    .read_to_end(&mut out)
                    .unwrap_or_else(|err| panic!("{name}: gunzip: {err}"));
            }
            "br" => {
                brotli::Decompressor::new(body, 4096)
                    .read_to_end(&mut out)
                    .unwrap_or_else(|err| panic!("{name}: brotli: {err}"));
            }
            other => panic!("{name}: corpus envelope with unexpected encoding {other}"),
        }
        out
    }

    #[test]
    fn corpus_envelopes_split_as_the_sidecars_say() {
        let mut n_envelopes = 0;
        for capture in corpus_sidecars() {
            let summary = &capture.sidecar["summary"];
            if summary["kind"] != "envelope" {
                continue;
            }
            let name = &capture.name;
            let encoding = summary["content_encoding"].as_str().unwrap_or("none");
            let body = decode(encoding, &capture.body, name);
            if let Some(size) = summary["decoded_size"].as_u64() {
                assert_eq!(body.len() as u64, size, "{name}: decoded size");
            }
            let envelope = Envelope::parse(&body).unwrap_or_else(|err| panic!("{name}: {err}"));
            let actual: Vec<String> = envelope
                .items
                .iter()
                .map(|item| format!("{}:{}", item.ty.as_str(), item.len()))
                .collect();
            let expected: Vec<String> = summary["items"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|item| format!("{}:{}", item["type"].as_str().unwrap_or("?"), item["size"]))
                .collect();
            assert_eq!(actual, expected, "{name}");
            for (item, summarized) in envelope
                .items
                .iter()
                .zip(summary["items"].as_array().into_iter().flatten())
            {
                assert_eq!(
                    item.content_type.as_deref(),
                    summarized["content_type"].as_str(),
                    "{name}: content_type"
                );
                assert_eq!(
                    item.filename.as_deref(),
                    summarized["filename"].as_str(),
                    "{name}: filename"
                );
            }
            n_envelopes += 1;
        }
        if corpus_dir().is_some() {
            // The README counts 67 envelope captures; a parse that silently skipped some
            // would still pass the loop above.
            assert_eq!(n_envelopes, 67);
        }
    }

    fn item_type_name() -> impl Strategy<Value = String> {
        prop_oneof![
            proptest::sample::select(ItemType::ALL).prop_map(|ty| ty.as_str().to_owned()),
            "[a-z_]{1,12}",
        ]
    }

    proptest! {
        #[test]
        fn serialize_then_parse_round_trips(
            items in proptest::collection::vec(
                (item_type_name(), proptest::collection::vec(any::<u8>(), 0..64)),
                0..6,
            ),
            event_id in proptest::option::of(any::<u128>()),
        ) {
            let header = match event_id {
                Some(id) => json!({"event_id": Uuid::from_u128(id).simple().to_string()}),
                None => json!({}),
            };
            let headers: Vec<(Value, &[u8])> = items
                .iter()
                .map(|(name, payload)| (json!({"type": name}), payload.as_slice()))
                .collect();
            let body = Envelope::serialize(&header, &headers);
            let envelope = Envelope::parse(&body).expect("a serialized envelope parses");
            prop_assert_eq!(envelope.header.event_id, event_id.map(Uuid::from_u128));
            prop_assert_eq!(envelope.items.len(), items.len());
            for (item, (name, payload)) in envelope.items.iter().zip(&items) {
                prop_assert_eq!(&item.type_name, name);
                prop_assert_eq!(item.ty, ItemType::parse(name));
                prop_assert_eq!(item.payload(&body), payload.as_slice());
            }
        }

        #[test]
        fn parse_never_panics(body in proptest::collection::vec(any::<u8>(), 0..256)) {
            if let Ok(envelope) = Envelope::parse(&body) {
                for item in &envelope.items {
                    prop_assert!(item.payload.end <= body.len());
                    prop_assert!(item.payload.start <= item.payload.end);
                }
            }
        }

        #[test]
        fn parse_never_panics_on_envelope_like_input(
            lines in proptest::collection::vec(
                prop_oneof![
                    Just("{}".to_owned()),
                    Just("".to_owned()),
                    "[a-z\r ]{0,6}",
                    "\\{\"type\":\"(event|attachment)\"(,\"length\":[0-9]{1,2})?\\}",
                ],
                0..8,
            )
        ) {
            let body = lines.join("\n");
            if let Ok(envelope) = Envelope::parse(body.as_bytes()) {
                for item in &envelope.items {
                    prop_assert!(item.payload.end <= body.len());
                }
            }
        }
    }
}
