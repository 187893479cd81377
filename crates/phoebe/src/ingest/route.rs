//! Recognizing ingest paths: `.../api/<project id>/<endpoint>[/]`, under any prefix, because a DSN
//! may carry a path (`https://key@host/sentry/7` posts to `/sentry/api/7/envelope/`).

use crate::domain::ProjectId;

/// The SDK endpoints Phoebe serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `/envelope/`: everything modern.
    Envelope,
    /// `/store/`: one legacy JSON event.
    Store,
    /// `/security/` and `/csp-report/`: browser security reports.
    Security,
}

/// Splits an ingest path into project id and endpoint; `None` for anything else.
pub fn parse_ingest_path(path: &str) -> Option<(ProjectId, Endpoint)> {
    let path = path.strip_suffix('/').unwrap_or(path);
    let mut parts = path.rsplit('/');
    let endpoint = match parts.next()? {
        "envelope" => Endpoint::Envelope,
        "store" => Endpoint::Store,
        "security" | "csp-report" => Endpoint::Security,
        _ => return None,
    };
    let id = parts.next()?;
    if id.is_empty() || id.len() > 18 || !id.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if parts.next()? != "api" {
        return None;
    }
    let id: i64 = id.parse().ok()?;
    // `/api/0/...` is the web API, never a project.
    (id > 0).then_some((ProjectId(id), endpoint))
}

/// Decodes `%XX` escapes and `+` (form encoding); invalid escapes are kept as they are.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match u8::from_str_radix(
                    std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz"),
                    16,
                ) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        let cases = [
            (
                "/api/42/envelope/",
                Some((ProjectId(42), Endpoint::Envelope)),
            ),
            (
                "/api/42/envelope",
                Some((ProjectId(42), Endpoint::Envelope)),
            ),
            (
                "/sentry/api/7/store/",
                Some((ProjectId(7), Endpoint::Store)),
            ),
            ("/api/3/security/", Some((ProjectId(3), Endpoint::Security))),
            (
                "/api/3/csp-report",
                Some((ProjectId(3), Endpoint::Security)),
            ),
            ("/api/0/envelope/", None),
            ("/api/x/envelope/", None),
            ("/api/42/minidumpx/", None),
            ("/42/envelope/", None),
            ("/", None),
            ("", None),
        ];
        for (path, expected) in cases {
            assert_eq!(parse_ingest_path(path), expected, "{path}");
        }
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%2Fb+c"), "a/b c");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
    }
}
