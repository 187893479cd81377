//! DSNs: parses `{scheme}://{key}[:{secret}]@{host}[:{port}]{prefix}/{project_id}` and builds the
//! ingest URLs an SDK derives from it (protocol.md §1.1). Pure string work, no I/O.

use std::fmt;
use std::str::FromStr;

use crate::auth::parse_public_key;

/// A parsed DSN. The deprecated secret part is accepted and dropped.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Dsn {
    /// `http` or `https`, lowercased.
    pub scheme: String,
    /// 32 lowercase hex characters, flags (`.no-cache`) stripped.
    pub public_key: String,
    /// Host name or address as written, IPv6 with its brackets (`[::1]`).
    pub host: String,
    /// The port, when the DSN names one (even the scheme's default, so `Display` round-trips).
    pub port: Option<u16>,
    /// The path the API lives under: `""` or e.g. `"/sentry"`, never with a trailing `/`.
    pub path_prefix: String,
    /// The numeric project id.
    pub project_id: u64,
}

/// Why a string is not a DSN; `Display` says what is wrong and what a DSN looks like.
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum DsnError {
    /// Nothing but whitespace.
    #[error("DSN is empty; expected http://<public key>@<host>/<project id>")]
    Empty,
    /// No `://` separating the scheme.
    #[error("DSN has no scheme; expected http://<public key>@<host>/<project id>")]
    MissingScheme,
    /// A scheme other than `http` or `https`.
    #[error("DSN scheme '{0}' is not http or https")]
    BadScheme(String),
    /// No `key@` before the host.
    #[error("DSN has no public key; expected http://<public key>@<host>/<project id>")]
    MissingKey,
    /// The key is not 32 hex characters.
    #[error("DSN public key is not 32 hex characters; copy the DSN from the project's settings")]
    BadKey,
    /// Nothing (or something with spaces) between `@` and the port or path.
    #[error("DSN has no valid host; expected http://<public key>@<host>/<project id>")]
    BadHost,
    /// The port is not a number from 0 to 65535.
    #[error("DSN port '{0}' is not a number from 0 to 65535")]
    BadPort(String),
    /// The path does not end in a project id.
    #[error("DSN has no project id; expected http://<public key>@<host>/<project id>")]
    MissingProjectId,
    /// The last path segment is not an unsigned integer.
    #[error("DSN project id '{0}' is not a number; Phoebe project ids are integers")]
    BadProjectId(String),
}

impl Dsn {
    /// Parses a DSN, ignoring surrounding whitespace (DSNs get pasted into env files), a
    /// deprecated `:secret`, and any `?query` or `#fragment` (SDKs ignore them too).
    pub fn parse(s: &str) -> Result<Dsn, DsnError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(DsnError::Empty);
        }
        let s = s.split(['?', '#']).next().unwrap_or(s);
        let (scheme, rest) = s.split_once("://").ok_or(DsnError::MissingScheme)?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err(DsnError::BadScheme(scheme));
        }
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let (userinfo, host_port) = authority.rsplit_once('@').ok_or(DsnError::MissingKey)?;
        let key = userinfo
            .split_once(':')
            .map_or(userinfo, |(key, _secret)| key);
        if key.is_empty() {
            return Err(DsnError::MissingKey);
        }
        let public_key = parse_public_key(key).map_err(|_| DsnError::BadKey)?;
        let (host, port) = split_host_port(host_port)?;

        // One trailing slash is forgiven: `.../7/` is an obvious typo for `.../7`.
        let path = path.strip_suffix('/').unwrap_or(path);
        let (prefix, id) = path.rsplit_once('/').ok_or(DsnError::MissingProjectId)?;
        if id.is_empty() {
            return Err(DsnError::MissingProjectId);
        }
        if !id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(DsnError::BadProjectId(id.to_owned()));
        }
        let project_id = id
            .parse()
            .map_err(|_| DsnError::BadProjectId(id.to_owned()))?;

        Ok(Dsn {
            scheme,
            public_key,
            host: host.to_owned(),
            port,
            path_prefix: prefix.trim_end_matches('/').to_owned(),
            project_id,
        })
    }

    /// Where SDKs post envelopes: `{scheme}://{host}[:{port}]{prefix}/api/{id}/envelope/`.
    pub fn envelope_url(&self) -> String {
        self.api_url("envelope")
    }

    /// Where legacy SDKs post events: `{scheme}://{host}[:{port}]{prefix}/api/{id}/store/`.
    pub fn store_url(&self) -> String {
        self.api_url("store")
    }

    /// The `X-Sentry-Auth` value an SDK with this DSN sends, `client` being e.g. `phoebe/0.1.0`.
    pub fn auth_header(&self, client: &str) -> String {
        format!(
            "Sentry sentry_key={}, sentry_version=7, sentry_client={client}",
            self.public_key
        )
    }

    fn api_url(&self, endpoint: &str) -> String {
        format!(
            "{}://{}{}/api/{}/{endpoint}/",
            self.scheme,
            self.host_port(),
            self.path_prefix,
            self.project_id
        )
    }

    fn host_port(&self) -> String {
        match self.port {
            Some(port) => format!("{}:{port}", self.host),
            None => self.host.clone(),
        }
    }
}

/// Splits `host[:port]`, where the host may be a bracketed IPv6 address containing colons.
fn split_host_port(host_port: &str) -> Result<(&str, Option<u16>), DsnError> {
    let port_colon = if host_port.starts_with('[') {
        let close = host_port.find(']').ok_or(DsnError::BadHost)?;
        match host_port.get(close + 1..) {
            Some("") => None,
            Some(after) if after.starts_with(':') => Some(close + 1),
            _ => return Err(DsnError::BadHost),
        }
    } else {
        host_port.rfind(':')
    };
    let (host, port) = match port_colon {
        Some(colon) => {
            let port = host_port.get(colon + 1..).unwrap_or("");
            let port = port
                .parse::<u16>()
                .ok()
                .filter(|_| port.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| DsnError::BadPort(port.to_owned()))?;
            (host_port.get(..colon).unwrap_or(""), Some(port))
        }
        None => (host_port, None),
    };
    let bad_char = |c: char| c.is_whitespace() || c.is_control() || matches!(c, '@' | '\\');
    if host.is_empty() || host.contains(bad_char) {
        return Err(DsnError::BadHost);
    }
    Ok((host, port))
}

impl fmt::Display for Dsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}@{}{}/{}",
            self.scheme,
            self.public_key,
            self.host_port(),
            self.path_prefix,
            self.project_id
        )
    }
}

impl FromStr for Dsn {
    type Err = DsnError;

    fn from_str(s: &str) -> Result<Dsn, DsnError> {
        Dsn::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const KEY: &str = "e2b6c1f0a9d84c3b8f7e6d5c4b3a2910";

    /// Renders the parsed fields and derived URLs (or the error) as one line.
    fn check(input: &str, expected: &str) {
        let rendered = match Dsn::parse(input) {
            Ok(dsn) => {
                assert_eq!(
                    Dsn::parse(&dsn.to_string()).as_ref(),
                    Ok(&dsn),
                    "round trip"
                );
                format!(
                    "scheme={} key={} host={} port={} prefix={:?} id={} | {} | {} | {}",
                    dsn.scheme,
                    dsn.public_key,
                    dsn.host,
                    dsn.port.map_or("-".to_owned(), |p| p.to_string()),
                    dsn.path_prefix,
                    dsn.project_id,
                    dsn,
                    dsn.envelope_url(),
                    dsn.store_url(),
                )
            }
            Err(err) => format!("error: {err}"),
        };
        assert_eq!(rendered, expected);
    }

    #[test]
    fn plain_dsn_with_port() {
        check(
            &format!("http://{KEY}@127.0.0.1:8000/1"),
            &format!(
                "scheme=http key={KEY} host=127.0.0.1 port=8000 prefix=\"\" id=1 \
                 | http://{KEY}@127.0.0.1:8000/1 \
                 | http://127.0.0.1:8000/api/1/envelope/ \
                 | http://127.0.0.1:8000/api/1/store/"
            ),
        );
    }

    #[test]
    fn dsn_with_path_prefix_and_secret() {
        check(
            &format!(" HTTPS://{KEY}:deadbeef@example.com/sentry/7\n"),
            &format!(
                "scheme=https key={KEY} host=example.com port=- prefix=\"/sentry\" id=7 \
                 | https://{KEY}@example.com/sentry/7 \
                 | https://example.com/sentry/api/7/envelope/ \
                 | https://example.com/sentry/api/7/store/"
            ),
        );
        check(
            &format!("https://{KEY}@example.com/a/b/42/?x=1#y"),
            &format!(
                "scheme=https key={KEY} host=example.com port=- prefix=\"/a/b\" id=42 \
                 | https://{KEY}@example.com/a/b/42 \
                 | https://example.com/a/b/api/42/envelope/ \
                 | https://example.com/a/b/api/42/store/"
            ),
        );
    }

    #[test]
    fn dsn_key_is_normalized_and_ipv6_host_kept() {
        check(
            &format!("http://{}.no-cache@[::1]:9000/3", KEY.to_uppercase()),
            &format!(
                "scheme=http key={KEY} host=[::1] port=9000 prefix=\"\" id=3 \
                 | http://{KEY}@[::1]:9000/3 \
                 | http://[::1]:9000/api/3/envelope/ \
                 | http://[::1]:9000/api/3/store/"
            ),
        );
        check(
            &format!("http://{KEY}@[::1]/3"),
            &format!(
                "scheme=http key={KEY} host=[::1] port=- prefix=\"\" id=3 \
                 | http://{KEY}@[::1]/3 \
                 | http://[::1]/api/3/envelope/ \
                 | http://[::1]/api/3/store/"
            ),
        );
    }

    #[test]
    fn bad_dsns() {
        let cases = [
            ("", "DSN is empty; expected http://<public key>@<host>/<project id>"),
            (
                "example.com/1",
                "DSN has no scheme; expected http://<public key>@<host>/<project id>",
            ),
            (&format!("ftp://{KEY}@h/1"), "DSN scheme 'ftp' is not http or https"),
            (
                "http://example.com/1",
                "DSN has no public key; expected http://<public key>@<host>/<project id>",
            ),
            (
                "http://:secret@example.com/1",
                "DSN has no public key; expected http://<public key>@<host>/<project id>",
            ),
            (
                "http://abc@example.com/1",
                "DSN public key is not 32 hex characters; copy the DSN from the project's settings",
            ),
            (
                &format!("http://{KEY}@/1"),
                "DSN has no valid host; expected http://<public key>@<host>/<project id>",
            ),
            (
                &format!("http://{KEY}@exa mple.com/1"),
                "DSN has no valid host; expected http://<public key>@<host>/<project id>",
            ),
            (
                &format!("http://{KEY}@[::1/1"),
                "DSN has no valid host; expected http://<public key>@<host>/<project id>",
            ),
            (
                &format!("http://{KEY}@[::1]x/1"),
                "DSN has no valid host; expected http://<public key>@<host>/<project id>",
            ),
            (
                &format!("http://{KEY}@h:99999/1"),
                "DSN port '99999' is not a number from 0 to 65535",
            ),
            (&format!("http://{KEY}@h:/1"), "DSN port '' is not a number from 0 to 65535"),
            (&format!("http://{KEY}@h:+80/1"), "DSN port '+80' is not a number from 0 to 65535"),
            (
                &format!("http://{KEY}@h"),
                "DSN has no project id; expected http://<public key>@<host>/<project id>",
            ),
            (
                &format!("http://{KEY}@h/"),
                "DSN has no project id; expected http://<public key>@<host>/<project id>",
            ),
            (
                &format!("http://{KEY}@h/proj"),
                "DSN project id 'proj' is not a number; Phoebe project ids are integers",
            ),
            (
                &format!("http://{KEY}@h/+1"),
                "DSN project id '+1' is not a number; Phoebe project ids are integers",
            ),
            (
                &format!("http://{KEY}@h/99999999999999999999999"),
                "DSN project id '99999999999999999999999' is not a number; Phoebe project ids are integers",
            ),
        ];
        for (input, expected) in cases {
            check(input, &format!("error: {expected}"));
        }
    }

    #[test]
    fn from_str_and_auth_header() {
        let dsn: Dsn = format!("http://{KEY}@localhost/5").parse().unwrap();
        assert_eq!(
            dsn.auth_header("phoebe/0.1.0"),
            format!("Sentry sentry_key={KEY}, sentry_version=7, sentry_client=phoebe/0.1.0")
        );
        assert_eq!(
            crate::auth::parse_auth_header(&dsn.auth_header("phoebe/0.1.0")).map(|a| a.public_key),
            Ok(KEY.to_owned())
        );
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in ".*") {
            let _ = Dsn::parse(&s);
            let _ = Dsn::parse(&format!("http://{KEY}@{s}"));
        }

        #[test]
        fn display_round_trips(
            https in any::<bool>(),
            host in "[a-z0-9.-]{1,20}",
            port in proptest::option::of(any::<u16>()),
            prefix in "(/[a-z0-9_-]{1,8}){0,3}",
            project_id in any::<u64>(),
        ) {
            let dsn = Dsn {
                scheme: if https { "https" } else { "http" }.to_owned(),
                public_key: KEY.to_owned(),
                host,
                port,
                path_prefix: prefix,
                project_id,
            };
            prop_assert_eq!(Dsn::parse(&dsn.to_string()), Ok(dsn));
        }
    }
}
