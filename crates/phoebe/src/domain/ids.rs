//! Ids as types: a `ProjectId` cannot be passed where an `IssueId` is meant, so one project's
//! data cannot leak into another's through a swapped argument. Each is parsed once at the edge
//! (API path, form, CLI argument, database row) and travels typed from there.

use std::fmt;
use std::str::FromStr;

/// Why an id from outside was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadId {
    what: &'static str,
    input: String,
}

impl fmt::Display for BadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} is not {} id: use the number shown in the dashboard or the API",
            self.input, self.what
        )
    }
}

impl std::error::Error for BadId {}

macro_rules! integer_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        /// A plain number on the wire (the API writes ids as strings where Sentry does).
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_i64(self.0)
            }
        }

        /// Read as a number (or a string of one), so a path like `/issues/{id}/` parses it.
        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct Visit;
                impl serde::de::Visitor<'_> for Visit {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        write!(f, "{} id (a positive number)", $what)
                    }
                    fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<$name, E> {
                        if n > 0 {
                            Ok($name(n))
                        } else {
                            Err(E::custom(format!("{n} is not {} id", $what)))
                        }
                    }
                    fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<$name, E> {
                        self.visit_i64(i64::try_from(n).map_err(E::custom)?)
                    }
                    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<$name, E> {
                        s.parse().map_err(E::custom)
                    }
                }
                d.deserialize_i64(Visit)
            }
        }

        impl FromStr for $name {
            type Err = BadId;

            /// Database ids start at 1; anything else is not one of ours.
            fn from_str(s: &str) -> Result<Self, BadId> {
                match s.trim().parse::<i64>() {
                    Ok(n) if n > 0 => Ok($name(n)),
                    _ => Err(BadId { what: $what, input: s.chars().take(64).collect() }),
                }
            }
        }
    };
}

integer_id!(
    /// An organization.
    OrgId,
    "an organization"
);
integer_id!(
    /// A project; also the number at the end of its DSNs.
    ProjectId,
    "a project"
);
integer_id!(
    /// An issue.
    IssueId,
    "an issue"
);
integer_id!(
    /// A person's account.
    UserId,
    "a user"
);
integer_id!(
    /// An alert channel.
    ChannelId,
    "an alert channel"
);
integer_id!(
    /// An alert rule.
    RuleId,
    "an alert rule"
);
integer_id!(
    /// One notification in the alert outbox (receivers deduplicate by it).
    AlertId,
    "a notification"
);
integer_id!(
    /// A deploy of a release to an environment.
    DeployId,
    "a deploy"
);

/// The public part of a DSN key: 32 lowercase hex characters, as SDKs and Relay expect.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey(String);

impl PublicKey {
    /// Checks the form; anything else names no key of ours.
    pub fn parse(s: &str) -> Result<PublicKey, BadId> {
        let s = s.trim();
        match s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            true => Ok(PublicKey(s.to_string())),
            false => Err(BadId {
                what: "a DSN key",
                input: s.chars().take(64).collect(),
            }),
        }
    }

    /// The key as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Maps keyed by a key answer lookups by the `&str` an SDK sent, without a copy per request.
impl std::borrow::Borrow<str> for PublicKey {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl serde::Serialize for PublicKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_keys_are_32_lowercase_hex_characters() {
        let key = "0123456789abcdef0123456789abcdef";
        assert_eq!(PublicKey::parse(key).unwrap().as_str(), key);
        for bad in [
            "",
            "abc",
            &key.to_uppercase(),
            &format!("{key}0"),
            "g123456789abcdef0123456789abcdef",
        ] {
            assert!(PublicKey::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ids_parse_positive_integers_only() {
        assert_eq!("42".parse::<IssueId>(), Ok(IssueId(42)));
        assert_eq!(" 7 ".parse::<ProjectId>(), Ok(ProjectId(7)));
        for bad in ["0", "-3", "abc", "", "9999999999999999999999"] {
            let err = bad.parse::<IssueId>().unwrap_err();
            assert!(err.to_string().contains("is not an issue id"), "{err}");
        }
    }
}
