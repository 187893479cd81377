//! The issue search language shared by the API, the CLI and (later) the dashboard:
//! `is:unresolved level:error release:1.2 environment:prod browser:Chrome "free text" words`.
//! Pure: a string in, an [`IssueQuery`] filter out.

use crate::domain::{IssueQuery, IssueStatus};

/// Why a query could not be understood.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum QueryError {
    /// `is:` with an unknown status.
    #[error("unknown status {0:?} in is: — use is:unresolved, is:resolved or is:ignored")]
    BadStatus(String),
    /// `level:` with an unknown level.
    #[error("unknown level {0:?} — use debug, info, warning, error or fatal")]
    BadLevel(String),
}

/// Splits on whitespace, keeping `"quoted phrases"` (also as `key:"quoted value"`) together.
fn tokens(input: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for ch in input.chars() {
        match ch {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            c => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Applies the filters in `input` to `query`.
pub fn parse_into(input: &str, query: &mut IssueQuery) -> Result<(), QueryError> {
    for token in tokens(input) {
        let Some((key, value)) = token
            .split_once(':')
            .filter(|(k, v)| !k.is_empty() && !v.is_empty() && !v.starts_with("//"))
        else {
            query.text.push(token);
            continue;
        };
        match key {
            "is" => {
                query.status = Some(
                    IssueStatus::parse(value).ok_or_else(|| QueryError::BadStatus(value.into()))?,
                );
            }
            "level" => {
                let level = phoebe_protocol::event::Level::parse(value)
                    .ok_or_else(|| QueryError::BadLevel(value.into()))?;
                query.level = Some(level.as_str().into());
            }
            _ => {
                // Sentry spells tag filters `key:value` and `tags[key]:value`.
                let key = key
                    .strip_prefix("tags[")
                    .and_then(|k| k.strip_suffix(']'))
                    .unwrap_or(key);
                query.tags.push((key.to_string(), value.to_string()));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: IssueQuery) {
        let mut q = IssueQuery::default();
        parse_into(input, &mut q).unwrap();
        assert_eq!(q, expected, "{input}");
    }

    #[test]
    fn filters_and_text() {
        check(
            "is:resolved level:WARN release:1.2.3 environment:prod browser:\"Chrome 120\" ZeroDivision \"by zero\"",
            IssueQuery {
                status: Some(IssueStatus::Resolved),
                level: Some("warning".into()),
                tags: vec![
                    ("release".into(), "1.2.3".into()),
                    ("environment".into(), "prod".into()),
                    ("browser".into(), "Chrome 120".into()),
                ],
                text: vec!["ZeroDivision".into(), "by zero".into()],
                ..Default::default()
            },
        );
    }

    #[test]
    fn urls_and_bare_colons_are_text() {
        check(
            "http://x/y a: :b",
            IssueQuery {
                text: vec!["http://x/y".into(), "a:".into(), ":b".into()],
                ..Default::default()
            },
        );
    }

    #[test]
    fn sentry_tag_syntax() {
        check(
            "tags[server_name]:web-1",
            IssueQuery {
                tags: vec![("server_name".into(), "web-1".into())],
                ..Default::default()
            },
        );
    }

    #[test]
    fn bad_status_is_an_error() {
        let mut q = IssueQuery::default();
        assert_eq!(
            parse_into("is:open", &mut q),
            Err(QueryError::BadStatus("open".into()))
        );
    }
}
