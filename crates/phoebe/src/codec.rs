//! Request body decoding: `Content-Encoding` (gzip, deflate in both its zlib and raw forms, br,
//! zstd) and the legacy `/store/` base64+zlib form, always streamed under a hard output cap so a
//! zip bomb costs at most the cap. Used by ingest (to validate) and digest (to read the inbox).

use std::io::Read;

use thiserror::Error;

/// A body encoding Phoebe can undo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Not compressed.
    Identity,
    /// gzip (`gzip`, `x-gzip`).
    Gzip,
    /// `deflate`: zlib-wrapped per the HTTP spec, raw from some clients; sniffed.
    Deflate,
    /// brotli (`br`): sentry-python's default when the brotli module is installed.
    Brotli,
    /// zstd.
    Zstd,
}

impl Encoding {
    /// Reads a `Content-Encoding` header. Bogus values real SDKs send (empty from sentry-ruby 5,
    /// `UTF-8` from sentry-java Android 2.0) and unknown tokens mean identity, as in Relay.
    pub fn from_header(value: Option<&str>) -> Encoding {
        let Some(v) = value else {
            return Encoding::Identity;
        };
        match v.trim().to_ascii_lowercase().as_str() {
            "gzip" | "x-gzip" => Encoding::Gzip,
            "deflate" => Encoding::Deflate,
            "br" => Encoding::Brotli,
            "zstd" => Encoding::Zstd,
            _ => Encoding::Identity,
        }
    }

    /// The canonical header token, `None` for identity.
    pub fn token(self) -> Option<&'static str> {
        match self {
            Encoding::Identity => None,
            Encoding::Gzip => Some("gzip"),
            Encoding::Deflate => Some("deflate"),
            Encoding::Brotli => Some("br"),
            Encoding::Zstd => Some("zstd"),
        }
    }
}

/// Why a body could not be decoded.
#[derive(Debug, Error, PartialEq)]
pub enum DecodeError {
    /// More than the cap once decompressed.
    #[error("body is over {cap} bytes once decompressed")]
    TooLarge {
        /// The cap in bytes.
        cap: u64,
    },
    /// The server's memory budget for request bodies is spent: try again later.
    #[error("the server is busy decoding other requests; retry later")]
    OverBudget,
    /// Not valid data for its encoding.
    #[error("could not decompress the {encoding} body: {reason}")]
    Corrupt {
        /// The encoding that failed.
        encoding: &'static str,
        /// What the decoder said.
        reason: String,
    },
}

/// Reads in chunks of at most 64 KiB, charging each to `charge` before reading on, so a caller
/// can bound the memory of all decoders running at once, not only of this one (at most one
/// chunk per decoder is uncharged, as before). Decodes straight into the output, with no scratch
/// buffer to copy from, and with a good `size_hint` without regrowth: decoded bodies wait in
/// memory for digest, where a doubled capacity would be memory nobody counted.
fn read_capped(
    mut reader: impl Read,
    cap: u64,
    encoding: &'static str,
    size_hint: usize,
    charge: &mut dyn FnMut(usize) -> bool,
) -> Result<Vec<u8>, DecodeError> {
    const CHUNK: u64 = 64 * 1024;
    // The hint is the client's word: never reserve more than the cap, nor more than a request's
    // worth of uncharged memory.
    let mut out = Vec::with_capacity(size_hint.min(cap as usize).min(MAX_UNCHARGED_HINT));
    loop {
        let before = out.len();
        // read_to_end retries interrupted reads itself.
        match (&mut reader).take(CHUNK).read_to_end(&mut out) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                return Err(DecodeError::Corrupt {
                    encoding,
                    reason: e.to_string(),
                })
            }
        }
        if out.len() as u64 > cap {
            return Err(DecodeError::TooLarge { cap });
        }
        if !charge(out.len() - before) {
            return Err(DecodeError::OverBudget);
        }
    }
    if out.capacity() - out.len() > out.len() / 8 {
        out.shrink_to_fit();
    }
    Ok(out)
}

/// Most memory a size hint may reserve before any decoded byte is charged to the budget.
const MAX_UNCHARGED_HINT: usize = 1 << 20;

/// The decoded size of a gzip body: its trailer's ISIZE (the size modulo 2^32 of the last
/// member; SDKs send one member). Only a hint, since a client can write anything there; never
/// more than deflate's largest ratio (1032:1) allows, so a tiny body cannot reserve much.
fn gzip_size_hint(input: &[u8]) -> Option<usize> {
    let trailer: [u8; 4] = input.get(input.len().checked_sub(4)?..)?.try_into().ok()?;
    (input.len() >= 18)
        .then(|| (u32::from_le_bytes(trailer) as usize).min(input.len().saturating_mul(1032)))
}

/// A zlib stream starts with a CMF/FLG pair whose 16-bit value is a multiple of 31 and whose
/// method is deflate (8); raw deflate almost never does.
fn looks_like_zlib(b: &[u8]) -> bool {
    b.len() >= 2 && b[0] & 0x0f == 8 && (u16::from(b[0]) << 8 | u16::from(b[1])) % 31 == 0
}

/// Decodes `input` with `encoding`, producing at most `cap` bytes.
pub fn decode(encoding: Encoding, input: &[u8], cap: u64) -> Result<Vec<u8>, DecodeError> {
    decode_metered(encoding, input, cap, &mut |_| true)
}

/// Like [`decode`], charging every decoded chunk to `charge` first (see `ingest::budget`).
pub fn decode_metered(
    encoding: Encoding,
    input: &[u8],
    cap: u64,
    charge: &mut dyn FnMut(usize) -> bool,
) -> Result<Vec<u8>, DecodeError> {
    let hint = input.len().saturating_mul(4);
    match encoding {
        Encoding::Identity => {
            if input.len() as u64 > cap {
                return Err(DecodeError::TooLarge { cap });
            }
            if !charge(input.len()) {
                return Err(DecodeError::OverBudget);
            }
            Ok(input.to_vec())
        }
        Encoding::Gzip => read_capped(
            flate2::read::MultiGzDecoder::new(input),
            cap,
            "gzip",
            gzip_size_hint(input).unwrap_or(hint),
            charge,
        ),
        Encoding::Deflate if looks_like_zlib(input) => read_capped(
            flate2::read::ZlibDecoder::new(input),
            cap,
            "deflate",
            hint,
            charge,
        ),
        Encoding::Deflate => read_capped(
            flate2::read::DeflateDecoder::new(input),
            cap,
            "deflate",
            hint,
            charge,
        ),
        Encoding::Brotli => read_capped(
            brotli::Decompressor::new(input, 4096),
            cap,
            "br",
            hint,
            charge,
        ),
        Encoding::Zstd => {
            let decoder =
                zstd::stream::read::Decoder::new(input).map_err(|e| DecodeError::Corrupt {
                    encoding: "zstd",
                    reason: e.to_string(),
                })?;
            read_capped(decoder, cap, "zstd", hint, charge)
        }
    }
}

/// The legacy `/store/` body: JSON, or base64 of zlib of JSON (old SDKs), whatever the headers say.
pub fn decode_store_body(body: Vec<u8>, cap: u64) -> Result<Vec<u8>, DecodeError> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'{') || first.is_none() {
        return Ok(body);
    }
    use base64::Engine;
    let text: Vec<u8> = body
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(&text)
        .map_err(|e| DecodeError::Corrupt {
            encoding: "base64",
            reason: e.to_string(),
        })?;
    if decoded.first() == Some(&b'{') {
        return Ok(decoded);
    }
    decode(Encoding::Deflate, &decoded, cap)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn every_encoding_round_trips() {
        let data = b"{\"hello\": \"world\"}\n".repeat(50);
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&data).unwrap();
        let zlib = z.finish().unwrap();
        let mut d = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        d.write_all(&data).unwrap();
        let raw = d.finish().unwrap();
        let mut br = Vec::new();
        brotli::BrotliCompress(&mut data.as_slice(), &mut br, &Default::default()).unwrap();
        let zst = zstd::encode_all(data.as_slice(), 3).unwrap();
        for (enc, body) in [
            (Encoding::Gzip, gzip(&data)),
            (Encoding::Deflate, zlib),
            (Encoding::Deflate, raw),
            (Encoding::Brotli, br),
            (Encoding::Zstd, zst),
            (Encoding::Identity, data.clone()),
        ] {
            assert_eq!(decode(enc, &body, 1 << 20).unwrap(), data, "{enc:?}");
        }
    }

    #[test]
    fn bomb_stops_at_the_cap() {
        let bomb = gzip(&vec![0u8; 50 << 20]);
        assert!(bomb.len() < 100_000);
        assert_eq!(
            decode(Encoding::Gzip, &bomb, 1 << 20),
            Err(DecodeError::TooLarge { cap: 1 << 20 })
        );
    }

    #[test]
    fn exactly_at_the_cap_is_fine() {
        assert_eq!(
            decode(Encoding::Gzip, &gzip(&[7u8; 100]), 100)
                .unwrap()
                .len(),
            100
        );
    }

    #[test]
    fn garbage_is_corrupt_not_a_panic() {
        for enc in [
            Encoding::Gzip,
            Encoding::Deflate,
            Encoding::Brotli,
            Encoding::Zstd,
        ] {
            assert!(
                matches!(
                    decode(enc, b"definitely not compressed", 1000),
                    Err(DecodeError::Corrupt { .. })
                ),
                "{enc:?}"
            );
        }
    }

    #[test]
    fn bogus_encodings_are_identity() {
        for v in [
            Some(""),
            Some("UTF-8"),
            Some("identity"),
            Some("compress"),
            None,
        ] {
            assert_eq!(Encoding::from_header(v), Encoding::Identity);
        }
        assert_eq!(Encoding::from_header(Some(" X-GZIP ")), Encoding::Gzip);
    }

    #[test]
    fn decoded_bodies_carry_little_spare_capacity() {
        // Decoded bodies wait in memory for digest; spare capacity would be uncounted memory.
        let data: Vec<u8> = (0..300_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        let mut br = Vec::new();
        brotli::CompressorWriter::new(&mut br, 4096, 5, 22)
            .write_all(&data)
            .unwrap();
        for (enc, body) in [(Encoding::Gzip, gzip(&data)), (Encoding::Brotli, br)] {
            let out = decode(enc, &body, 10 << 20).unwrap();
            assert_eq!(out, data, "{enc:?}");
            assert!(out.capacity() <= out.len() + out.len() / 8, "{enc:?}");
        }
    }

    #[test]
    fn a_lying_gzip_size_trailer_is_only_a_hint() {
        let data = b"{\"hello\": \"world\"}".repeat(100);
        for isize in [0u32, 1, u32::MAX] {
            let mut body = gzip(&data);
            let n = body.len();
            body[n - 4..].copy_from_slice(&isize.to_le_bytes());
            // flate2 checks the trailer, so the lie is caught; it must not panic nor reserve
            // more than the cap on the way.
            assert!(matches!(
                decode(Encoding::Gzip, &body, 4096),
                Err(DecodeError::Corrupt { .. })
            ));
        }
        assert_eq!(gzip_size_hint(&gzip(&data)), Some(data.len()));
        assert_eq!(gzip_size_hint(b"short"), None);
        let mut tiny = gzip(b"{}");
        let n = tiny.len();
        tiny[n - 4..].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(gzip_size_hint(&tiny), Some(n * 1032));
    }

    #[test]
    fn store_body_base64_zlib() {
        use base64::Engine;
        let json = br#"{"message":"hi"}"#;
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(json).unwrap();
        let b64 = base64::engine::general_purpose::STANDARD.encode(z.finish().unwrap());
        assert_eq!(decode_store_body(b64.into_bytes(), 1000).unwrap(), json);
        assert_eq!(decode_store_body(json.to_vec(), 1000).unwrap(), json);
    }

    proptest::proptest! {
        #[test]
        fn decoders_never_panic(enc in 0..5u8, body in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let enc = [Encoding::Identity, Encoding::Gzip, Encoding::Deflate, Encoding::Brotli, Encoding::Zstd][enc as usize];
            let _ = decode(enc, &body, 4096);
            let _ = decode_store_body(body, 4096);
        }
    }
}
