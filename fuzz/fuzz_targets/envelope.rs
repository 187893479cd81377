//! Fuzzes envelope splitting and the size check: arbitrary bytes must give `Ok` or `Err`, never
//! a panic, and every item range must lie inside the body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use phoebe_protocol::envelope::Envelope;
use phoebe_protocol::limits::{check_envelope, Limits};

fuzz_target!(|body: &[u8]| {
    let Ok(envelope) = Envelope::parse(body) else {
        return;
    };
    for item in &envelope.items {
        assert!(item.payload.start <= item.payload.end && item.payload.end <= body.len());
        let _ = item.ty.category();
    }
    // Tiny limits so the error paths run too, not only the happy one.
    let tight = Limits {
        max_event_bytes: 8,
        max_attachment_bytes: 8,
        max_attachments_bytes: 12,
        max_other_item_bytes: 8,
        max_envelope_bytes: 32,
        ..Limits::default()
    };
    let _ = check_envelope(&envelope, &Limits::default());
    let _ = check_envelope(&envelope, &tight).map_err(|err| err.to_string());
});
