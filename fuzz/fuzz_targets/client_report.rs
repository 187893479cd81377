//! Fuzzes the client-report parser: `Ok` or `Err`, never a panic, and every quantity it returns
//! is positive and capped.
#![no_main]

use libfuzzer_sys::fuzz_target;
use phoebe_protocol::client_report::parse;

fuzz_target!(|data: &[u8]| {
    if let Ok(discards) = parse(data) {
        for d in discards {
            assert!(d.quantity > 0 && d.quantity <= u32::MAX as u64);
            assert!(d.reason.len() <= 64 && d.category.len() <= 64);
        }
    }
});
