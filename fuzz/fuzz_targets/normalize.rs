//! Event normalization and grouping on arbitrary bytes: whatever an SDK sends, digest must not
//! panic on it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use phoebe_protocol::normalize::{normalize_event, NormalizeContext};

fuzz_target!(|data: &[u8]| {
    let ctx = NormalizeContext::new(chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default());
    if let Ok((event, _)) = normalize_event(data, &ctx) {
        let _ = phoebe_grouping::group(&event);
        let _ = phoebe_grouping::summarize(&event);
    }
});
