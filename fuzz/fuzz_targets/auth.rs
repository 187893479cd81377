//! Fuzzes client auth and DSN parsing on arbitrary strings: `Ok` or `Err`, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use phoebe_protocol::auth::{authenticate, parse_auth_header, parse_auth_query, parse_basic_auth};
use phoebe_protocol::dsn::Dsn;

fuzz_target!(|data: &[u8]| {
    let input = String::from_utf8_lossy(data);
    // Split the input three ways so one run can feed all sources of `authenticate`.
    let mut parts = input.splitn(3, '\u{1}');
    let (a, b, c) = (parts.next(), parts.next(), parts.next());
    let _ = authenticate(a, b, c);
    let _ = parse_auth_header(&input);
    let _ = parse_basic_auth(&input);
    let _ = parse_auth_query(&input);
    if let Ok(dsn) = Dsn::parse(&input) {
        assert_eq!(Dsn::parse(&dsn.to_string()).as_ref(), Ok(&dsn));
        let _ = (dsn.envelope_url(), dsn.store_url());
    }
});
