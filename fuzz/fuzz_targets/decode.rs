//! Every body decoder ingest runs on untrusted bytes: gzip, deflate (zlib and raw), brotli, zstd
//! and the legacy base64+zlib `/store/` form. The invariant: no panic, and never more than the
//! cap of output, however small the input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use phoebe::codec::{decode, decode_store_body, Encoding};

const CAP: u64 = 1 << 16;

fuzz_target!(|data: &[u8]| {
    let Some((selector, body)) = data.split_first() else { return };
    let encoding = match selector % 5 {
        0 => Encoding::Identity,
        1 => Encoding::Gzip,
        2 => Encoding::Deflate,
        3 => Encoding::Brotli,
        _ => Encoding::Zstd,
    };
    if let Ok(out) = decode(encoding, body, CAP) {
        assert!(out.len() as u64 <= CAP);
    }
    if let Ok(out) = decode_store_body(body.to_vec(), CAP) {
        assert!(out.len() as u64 <= CAP.max(body.len() as u64));
    }
});
