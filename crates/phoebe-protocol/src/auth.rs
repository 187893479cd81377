//! Client auth: finds the SDK's public key in a request's `X-Sentry-Auth`, `Authorization` and
//! query string (protocol.md §1.2, §1.3). Pure: it checks the key's shape, never whether the key
//! exists; that lookup belongs to the server.

/// What an SDK told us about itself when authenticating.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAuth {
    /// The DSN's public key: 32 lowercase hex characters, flags (`.no-cache`) stripped.
    pub public_key: String,
    /// `sentry_version`, if sent (`7.0` reads as 7). Never above [`MAX_VERSION`].
    pub version: Option<u32>,
    /// `sentry_client`, e.g. `sentry.python/2.19.0`, if sent and non-empty.
    pub client: Option<String>,
}

/// Why a request's auth could not be read. `Display` is short and goes into a JSON `detail`.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum AuthError {
    /// The header or a value in it has the wrong syntax; the text says which.
    #[error("{0}")]
    Malformed(String),
    /// An auth header was sent without `sentry_key`.
    #[error("missing public key: send sentry_key=<key from the DSN> in X-Sentry-Auth or the query string")]
    MissingKey,
    /// `sentry_version` is newer than this server speaks.
    #[error("unsupported protocol version ({0}); Phoebe speaks sentry_version 7 and older")]
    UnsupportedVersion(u32),
    /// The key is not 32 hex characters.
    #[error("public key is not 32 hex characters; copy the DSN from the project's settings")]
    BadKey,
    /// Two sources in one request name different keys.
    #[error("multiple authorization payloads name different keys; send one key per request")]
    Conflicting,
}

/// The newest `sentry_version` Phoebe speaks; Relay rejects anything above it with a 400.
pub const MAX_VERSION: u32 = 7;

/// Parses `Sentry sentry_key=..., sentry_version=7, ...`, the syntax of `X-Sentry-Auth` and of
/// `Authorization: Sentry ...`. The `Sentry` prefix is case-insensitive; `sentry_secret`,
/// `sentry_timestamp` and unknown keys are ignored.
pub fn parse_auth_header(value: &str) -> Result<ClientAuth, AuthError> {
    parse_sentry_scheme(value, "X-Sentry-Auth")
}

fn parse_sentry_scheme(value: &str, header: &str) -> Result<ClientAuth, AuthError> {
    let Some(pairs) = strip_scheme(value, "sentry") else {
        return Err(AuthError::Malformed(format!(
            "{header} header is not 'Sentry sentry_key=<key>, sentry_version=7, ...'"
        )));
    };
    let mut fields = Fields::default();
    for pair in pairs.split(',') {
        // sentry-rust and Relay skip pairs without `=` rather than failing the request.
        if let Some((key, value)) = pair.split_once('=') {
            fields.set(key.trim(), value.trim())?;
        }
    }
    fields.finish()?.ok_or(AuthError::MissingKey)
}

/// Parses `Authorization: Basic base64(key:secret)`, what `curl https://KEY@host/...` sends.
/// Only the user part (before `:`) is used.
pub fn parse_basic_auth(value: &str) -> Result<ClientAuth, AuthError> {
    let malformed =
        || AuthError::Malformed("Authorization header is not 'Basic base64(<key>:)'".to_owned());
    let encoded = strip_scheme(value, "basic").ok_or_else(malformed)?;
    let decoded = decode_base64(encoded.trim()).ok_or_else(malformed)?;
    let user = match decoded.iter().position(|&b| b == b':') {
        Some(colon) => &decoded[..colon],
        None => &decoded[..],
    };
    let user = std::str::from_utf8(user).map_err(|_| AuthError::BadKey)?;
    Ok(ClientAuth {
        public_key: parse_public_key(user)?,
        version: None,
        client: None,
    })
}

/// Parses a form-urlencoded query string (`sentry_version=7&sentry_key=...&sentry_client=...`,
/// how the JavaScript SDKs authenticate to avoid a CORS preflight). `Ok(None)` when it names no
/// `sentry_key`: the query then carries no auth at all.
pub fn parse_auth_query(query: &str) -> Result<Option<ClientAuth>, AuthError> {
    let query = query.strip_prefix('?').unwrap_or(query);
    let mut fields = Fields::default();
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        // Only decode what we might use: other parameters can be long and are none of our business.
        if key.starts_with("sentry_") || key.contains('%') {
            fields.set(&percent_decode(key), &percent_decode(value))?;
        }
    }
    fields.finish()
}

/// Combines the auth sources of one request; each argument is the raw header or query value if
/// the request has one. `Ok(None)` when none carries a key (the envelope header's `dsn` may
/// still). Several sources are fine when they name the same key; `Authorization` schemes other
/// than `Sentry` and `Basic` (e.g. `Bearer` for the web API) are ignored.
pub fn authenticate(
    x_sentry_auth: Option<&str>,
    authorization: Option<&str>,
    query: Option<&str>,
) -> Result<Option<ClientAuth>, AuthError> {
    let mut found: Vec<ClientAuth> = Vec::new();
    if let Some(value) = x_sentry_auth {
        found.push(parse_auth_header(value)?);
    }
    if let Some(value) = authorization {
        if strip_scheme(value, "sentry").is_some() {
            found.push(parse_sentry_scheme(value, "Authorization")?);
        } else if strip_scheme(value, "basic").is_some() {
            found.push(parse_basic_auth(value)?);
        }
    }
    if let Some(value) = query {
        found.extend(parse_auth_query(value)?);
    }
    let mut sources = found.into_iter();
    let Some(mut merged) = sources.next() else {
        return Ok(None);
    };
    // Earlier sources win for version and client: headers say more than a query string.
    for other in sources {
        if other.public_key != merged.public_key {
            return Err(AuthError::Conflicting);
        }
        merged.version = merged.version.or(other.version);
        merged.client = merged.client.or(other.client);
    }
    Ok(Some(merged))
}

/// Checks a DSN public key and returns its canonical form: flags after a `.` (`<key>.no-cache`,
/// Relay's `ProjectKey::parse_with_flags`) are dropped and hex is lowercased, so every source
/// spelling the same key compares equal.
pub fn parse_public_key(key: &str) -> Result<String, AuthError> {
    let key = key.split_once('.').map_or(key, |(key, _flags)| key);
    if key.len() == 32 && key.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(key.to_ascii_lowercase())
    } else {
        Err(AuthError::BadKey)
    }
}

/// `sentry_version` as SDKs send it: an integer, anything after a `.` ignored (`7.0`).
fn parse_version(value: &str) -> Result<u32, AuthError> {
    let major = value.split_once('.').map_or(value, |(major, _minor)| major);
    let version: u32 = major.parse().map_err(|_| {
        AuthError::Malformed("sentry_version is not a number; send sentry_version=7".to_owned())
    })?;
    if version > MAX_VERSION {
        return Err(AuthError::UnsupportedVersion(version));
    }
    Ok(version)
}

/// The key/value fields shared by the header and query forms.
#[derive(Default)]
struct Fields {
    key: Option<String>,
    // Checked only once a key is found: without one, the fields are not auth at all.
    version: Option<Result<u32, AuthError>>,
    client: Option<String>,
}

impl Fields {
    fn set(&mut self, key: &str, value: &str) -> Result<(), AuthError> {
        match key {
            "sentry_key" => {
                let parsed = parse_public_key(value)?;
                if self.key.as_ref().is_some_and(|seen| *seen != parsed) {
                    return Err(AuthError::Conflicting);
                }
                self.key = Some(parsed);
            }
            "sentry_version" => self.version = Some(parse_version(value)),
            "sentry_client" if !value.is_empty() => self.client = Some(value.to_owned()),
            _ => {}
        }
        Ok(())
    }

    fn finish(self) -> Result<Option<ClientAuth>, AuthError> {
        let Some(public_key) = self.key else {
            return Ok(None);
        };
        Ok(Some(ClientAuth {
            public_key,
            version: self.version.transpose()?,
            client: self.client,
        }))
    }
}

/// Returns what follows `scheme` and at least one space, if `value` starts with the
/// (ASCII case-insensitive) scheme word.
fn strip_scheme<'a>(value: &'a str, scheme: &str) -> Option<&'a str> {
    let value = value.trim_start();
    let word_end = value
        .find(|c: char| c.is_ascii_whitespace())
        .unwrap_or(value.len());
    let (word, rest) = value.split_at(word_end);
    if word.eq_ignore_ascii_case(scheme) {
        Some(rest)
    } else {
        None
    }
}

/// Form-urlencoded decoding: `+` is a space, `%XX` a byte; a `%` not followed by two hex digits
/// stays literal (as browsers' URLSearchParams do), and invalid UTF-8 becomes U+FFFD.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = bytes.get(i + 1).and_then(|&h| hex_value(h));
                let lo = bytes.get(i + 2).and_then(|&l| hex_value(l));
                if let (Some(hi), Some(lo)) = (hi, lo) {
                    out.push((hi << 4) | lo);
                    i += 2;
                } else {
                    out.push(b'%');
                }
            }
            _ => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Standard base64 (RFC 4648 §4) with optional `=` padding; `None` on any other byte. Written
/// out because ten lines don't justify a dependency (style.md §9).
fn decode_base64(s: &str) -> Option<Vec<u8>> {
    let digits = s.trim_end_matches('=').as_bytes();
    let mut out = Vec::with_capacity(digits.len() / 4 * 3 + 2);
    let mut acc: u32 = 0;
    let mut n_bits = 0;
    for &c in digits {
        let value = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = ((acc << 6) | u32::from(value)) & 0xff_ffff;
        n_bits += 6;
        if n_bits >= 8 {
            n_bits -= 8;
            out.push((acc >> n_bits) as u8);
        }
    }
    // A single leftover digit carries only 6 bits: no encoder produces that.
    if n_bits == 6 {
        return None;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const KEY: &str = "e2b6c1f0a9d84c3b8f7e6d5c4b3a2910";

    /// Renders an outcome as one line so each case states exactly what it expects.
    fn check(actual: Result<Option<ClientAuth>, AuthError>, expected: &str) {
        let rendered = match actual {
            Ok(None) => "none".to_owned(),
            Ok(Some(auth)) => format!(
                "key={} version={} client={}",
                auth.public_key,
                auth.version.map_or("-".to_owned(), |v| v.to_string()),
                auth.client.as_deref().unwrap_or("-"),
            ),
            Err(err) => format!("error: {err}"),
        };
        assert_eq!(rendered, expected);
    }

    fn header(value: &str) -> Result<Option<ClientAuth>, AuthError> {
        parse_auth_header(value).map(Some)
    }

    fn basic(value: &str) -> Result<Option<ClientAuth>, AuthError> {
        parse_basic_auth(value).map(Some)
    }

    fn base64(input: &[u8]) -> String {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in input.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    #[test]
    fn x_sentry_auth_as_python_sends_it() {
        check(
            header(&format!(
                "Sentry sentry_key={KEY}, sentry_version=7, sentry_client=sentry.python/2.75.0"
            )),
            &format!("key={KEY} version=7 client=sentry.python/2.75.0"),
        );
    }

    #[test]
    fn x_sentry_auth_tolerates_case_spacing_and_extra_keys() {
        check(
            header(&format!(
                "  sentry   sentry_version = 7.0 ,sentry_timestamp=1700000000.5,,junk, \
                 sentry_secret=abc, sentry_key = {KEY} , future_key=1"
            )),
            &format!("key={KEY} version=7 client=-"),
        );
        check(
            header(&format!("SENTRY sentry_key={KEY}")),
            &format!("key={KEY} version=- client=-"),
        );
    }

    #[test]
    fn raven_sends_version_6_and_a_secret() {
        check(
            header(&format!(
                "Sentry sentry_timestamp=1.5, sentry_client=raven-python/6.10.0, sentry_version=6, \
                 sentry_key={KEY}, sentry_secret=f00d"
            )),
            &format!("key={KEY} version=6 client=raven-python/6.10.0"),
        );
    }

    #[test]
    fn key_flags_are_stripped_and_hex_lowercased() {
        check(
            header("Sentry sentry_key=E2B6C1F0A9D84C3B8F7E6D5C4B3A2910.no-cache"),
            &format!("key={KEY} version=- client=-"),
        );
    }

    #[test]
    fn bad_x_sentry_auth_headers() {
        check(
            header(&format!("Bearer sentry_key={KEY}")),
            "error: X-Sentry-Auth header is not 'Sentry sentry_key=<key>, sentry_version=7, ...'",
        );
        check(
            header(&format!("Sentrysentry_key={KEY}")),
            "error: X-Sentry-Auth header is not 'Sentry sentry_key=<key>, sentry_version=7, ...'",
        );
        check(
            header("Sentry sentry_version=7"),
            "error: missing public key: send sentry_key=<key from the DSN> in X-Sentry-Auth or the query string",
        );
        check(
            header("Sentry sentry_version=8"),
            "error: missing public key: send sentry_key=<key from the DSN> in X-Sentry-Auth or the query string",
        );
        check(
            header("Sentry"),
            "error: missing public key: send sentry_key=<key from the DSN> in X-Sentry-Auth or the query string",
        );
        check(
            header("Sentry sentry_key=abc"),
            "error: public key is not 32 hex characters; copy the DSN from the project's settings",
        );
        check(
            header("Sentry sentry_key=e2b6c1f0a9d84c3b8f7e6d5c4b3a291g"),
            "error: public key is not 32 hex characters; copy the DSN from the project's settings",
        );
        check(
            header("Sentry sentry_key="),
            "error: public key is not 32 hex characters; copy the DSN from the project's settings",
        );
        check(
            header(&format!("Sentry sentry_key={KEY}, sentry_version=seven")),
            "error: sentry_version is not a number; send sentry_version=7",
        );
    }

    #[test]
    fn version_above_7_is_rejected() {
        check(
            header(&format!("Sentry sentry_key={KEY}, sentry_version=8")),
            "error: unsupported protocol version (8); Phoebe speaks sentry_version 7 and older",
        );
        check(
            parse_auth_query(&format!("sentry_key={KEY}&sentry_version=8.0")),
            "error: unsupported protocol version (8); Phoebe speaks sentry_version 7 and older",
        );
    }

    #[test]
    fn one_header_naming_two_keys_conflicts() {
        check(
            header(&format!(
                "Sentry sentry_key={KEY}, sentry_key=00000000000000000000000000000000"
            )),
            "error: multiple authorization payloads name different keys; send one key per request",
        );
        check(
            header(&format!("Sentry sentry_key={KEY}, sentry_key={KEY}")),
            &format!("key={KEY} version=- client=-"),
        );
    }

    #[test]
    fn basic_auth_as_curl_sends_it() {
        check(
            basic(&format!("Basic {}", base64(format!("{KEY}:").as_bytes()))),
            &format!("key={KEY} version=- client=-"),
        );
        check(
            basic(&format!(
                "basic   {}",
                base64(format!("{KEY}:secret").as_bytes())
            )),
            &format!("key={KEY} version=- client=-"),
        );
        // Unpadded base64 and a user without a colon.
        check(
            basic(&format!(
                "Basic {}",
                base64(KEY.as_bytes()).trim_end_matches('=')
            )),
            &format!("key={KEY} version=- client=-"),
        );
    }

    #[test]
    fn bad_basic_auth() {
        check(
            basic("Basic !!!!"),
            "error: Authorization header is not 'Basic base64(<key>:)'",
        );
        check(
            basic("Basic QUJDRA=x"),
            "error: Authorization header is not 'Basic base64(<key>:)'",
        );
        check(
            basic(&format!("Sentry {}", base64(KEY.as_bytes()))),
            "error: Authorization header is not 'Basic base64(<key>:)'",
        );
        check(
            basic(&format!("Basic {}", base64(b"user:password"))),
            "error: public key is not 32 hex characters; copy the DSN from the project's settings",
        );
        check(
            basic(&format!("Basic {}", base64(b"\xff\xfe:"))),
            "error: public key is not 32 hex characters; copy the DSN from the project's settings",
        );
    }

    #[test]
    fn base64_decoder_matches_the_encoder() {
        for input in [
            &b""[..],
            b"f",
            b"fo",
            b"foo",
            b"foob",
            b"fooba",
            b"foobar",
            b"\0\xff\x80",
        ] {
            assert_eq!(decode_base64(&base64(input)).as_deref(), Some(input));
        }
        assert_eq!(decode_base64("Zm9vYg"), Some(b"foob".to_vec()));
        assert_eq!(decode_base64("Z"), None);
        assert_eq!(decode_base64("Zm-v"), None);
    }

    #[test]
    fn query_as_the_javascript_sdks_send_it() {
        check(
            parse_auth_query(&format!(
                "sentry_version=7&sentry_key={KEY}&sentry_client=sentry.javascript.node%2F11.12.0"
            )),
            &format!("key={KEY} version=7 client=sentry.javascript.node/11.12.0"),
        );
    }

    #[test]
    fn query_percent_decoding() {
        check(
            parse_auth_query(&format!(
                "?other=%zz&sentry%5Fkey={KEY}&sentry_client=a+b%2Fc%&sentry_secret=x"
            )),
            &format!("key={KEY} version=- client=a b/c%"),
        );
        assert_eq!(percent_decode("%41%4a%4A%"), "AJJ%");
        assert_eq!(percent_decode("%e2%9c%93%ff"), "\u{2713}\u{fffd}");
    }

    #[test]
    fn query_without_key_is_no_auth() {
        check(parse_auth_query(""), "none");
        check(parse_auth_query("page=2&sentry_version=7"), "none");
        check(parse_auth_query("sentry_version=8&sentry_client=x"), "none");
        check(
            parse_auth_query("sentry_key=nope"),
            "error: public key is not 32 hex characters; copy the DSN from the project's settings",
        );
    }

    #[test]
    fn authenticate_combines_sources() {
        let x_auth = format!("Sentry sentry_key={KEY}, sentry_version=7");
        let query = format!("sentry_key={KEY}&sentry_client=sentry.javascript.browser%2F11.12.0");
        check(authenticate(None, None, None), "none");
        check(
            authenticate(Some(&x_auth), None, Some(&query)),
            &format!("key={KEY} version=7 client=sentry.javascript.browser/11.12.0"),
        );
        check(
            authenticate(
                None,
                Some(&format!(
                    "Sentry sentry_key={}.no-cache",
                    KEY.to_uppercase()
                )),
                Some(&query),
            ),
            &format!("key={KEY} version=- client=sentry.javascript.browser/11.12.0"),
        );
        check(
            authenticate(
                None,
                Some(&format!("Basic {}", base64(format!("{KEY}:").as_bytes()))),
                None,
            ),
            &format!("key={KEY} version=- client=-"),
        );
    }

    #[test]
    fn authenticate_ignores_other_authorization_schemes() {
        check(authenticate(None, Some("Bearer sntryu_abc"), None), "none");
        check(
            authenticate(None, Some("Digest x"), Some(&format!("sentry_key={KEY}"))),
            &format!("key={KEY} version=- client=-"),
        );
        check(authenticate(None, Some(""), Some("a=b")), "none");
    }

    #[test]
    fn authenticate_rejects_disagreeing_sources() {
        let other = "0123456789abcdef0123456789abcdef";
        check(
            authenticate(
                Some(&format!("Sentry sentry_key={KEY}")),
                None,
                Some(&format!("sentry_key={other}")),
            ),
            "error: multiple authorization payloads name different keys; send one key per request",
        );
        check(
            authenticate(
                Some(&format!("Sentry sentry_key={KEY}")),
                Some(&format!("Sentry sentry_key={other}")),
                None,
            ),
            "error: multiple authorization payloads name different keys; send one key per request",
        );
    }

    #[test]
    fn authenticate_reports_the_failing_header() {
        check(
            authenticate(Some("Basic abc"), None, None),
            "error: X-Sentry-Auth header is not 'Sentry sentry_key=<key>, sentry_version=7, ...'",
        );
        check(
            authenticate(
                None,
                Some(&format!("Sentry sentry_version=x, sentry_key={KEY}")),
                None,
            ),
            "error: sentry_version is not a number; send sentry_version=7",
        );
        check(
            authenticate(None, Some("Basic @@"), None),
            "error: Authorization header is not 'Basic base64(<key>:)'",
        );
    }

    #[test]
    fn every_corpus_request_authenticates_with_the_corpus_key() {
        let mut n_checked = 0;
        for capture in crate::envelope::tests::corpus_sidecars() {
            let header = |name: &str| {
                capture.sidecar["headers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|pair| {
                        pair[0]
                            .as_str()
                            .is_some_and(|n| n.eq_ignore_ascii_case(name))
                    })
                    .and_then(|pair| pair[1].as_str())
                    .map(str::to_owned)
            };
            let query = capture.sidecar["query"].as_str().filter(|q| !q.is_empty());
            let result = authenticate(
                header("x-sentry-auth").as_deref(),
                header("authorization").as_deref(),
                query,
            );
            let expected = match capture.sidecar["summary"]["auth"].as_str() {
                Some("Authorization: Bearer header") | None => "none".to_owned(),
                Some(_) => format!("key={KEY}"),
            };
            let rendered = match result {
                Ok(Some(auth)) => format!("key={}", auth.public_key),
                Ok(None) => "none".to_owned(),
                Err(err) => format!("error: {err}"),
            };
            assert_eq!(rendered, expected, "{}", capture.name);
            n_checked += 1;
        }
        if crate::envelope::tests::corpus_dir().is_some() {
            assert!(n_checked >= 90, "only {n_checked} corpus requests found");
        }
    }

    proptest! {
        #[test]
        fn auth_parsers_never_panic(s in ".*", bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let lossy = String::from_utf8_lossy(&bytes);
            for input in [s.as_str(), &lossy] {
                let _ = parse_auth_header(input);
                let _ = parse_basic_auth(input);
                let _ = parse_auth_query(input);
                let _ = authenticate(Some(input), Some(input), Some(input));
                let _ = parse_basic_auth(&format!("Basic {input}"));
                let _ = parse_auth_header(&format!("Sentry {input}"));
            }
        }

        #[test]
        fn base64_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            prop_assert_eq!(decode_base64(&base64(&bytes)), Some(bytes));
        }
    }
}
