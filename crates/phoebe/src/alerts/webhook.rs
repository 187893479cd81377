//! The generic webhook: a JSON body (README, "Alerts"), signed with HMAC-SHA256 over
//! `"{timestamp}.{body}"` when the channel has a secret, so a receiver can check who sent it and
//! refuse a replay of an old one.

use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use super::Outbound;
use crate::api::json as shapes;
use crate::domain::alerts::{headline, Alert, Channel, Rule};
use crate::domain::rules::IssueEvent;
use crate::domain::{Issue, Project};

/// Unix seconds the signature covers.
pub const TIMESTAMP_HEADER: &str = "X-Phoebe-Timestamp";
/// `sha256=<hex>` of HMAC-SHA256(secret, "{timestamp}.{body}").
pub const SIGNATURE_HEADER: &str = "X-Phoebe-Signature";

/// The signature header's value for a body sent at `timestamp`.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

fn action(what: &IssueEvent) -> &'static str {
    match what {
        IssueEvent::Created => "created",
        IssueEvent::Regressed { .. } => "regressed",
        IssueEvent::Unignored => "unignored",
        IssueEvent::PassedCount(_) => "passed_count",
        IssueEvent::Resolved => "resolved",
        IssueEvent::Frequent { .. } => "frequent",
        IssueEvent::ManyUsers { .. } => "many_users",
    }
}

/// The body of one notification.
pub fn body(
    alert: &Alert,
    rule: Option<&Rule>,
    issue: &Issue,
    project: &Project,
    public_url: &str,
) -> Value {
    let what = &alert.alert.what;
    let release = match what {
        IssueEvent::Regressed { release } => release.clone(),
        _ => None,
    };
    json!({
        "id": alert.id.to_string(),
        "action": action(what),
        "headline": format!("{}: {}", headline(what), issue.title),
        "project": shapes::project(project),
        "rule": rule.map(|r| json!({
            "id": r.id.to_string(), "trigger": r.trigger.as_str(), "description": r.describe(),
        })),
        "release": release,
        "count": match what {
            IssueEvent::Frequent { events: n, .. } | IssueEvent::ManyUsers { users: n, .. } => Some(*n),
            _ => None,
        },
        "windowMinutes": match what {
            IssueEvent::Frequent { minutes, .. } | IssueEvent::ManyUsers { minutes, .. } => Some(*minutes),
            _ => None,
        },
        "data": {"issue": shapes::issue(issue, project, public_url, None)},
        "test": false,
    })
}

/// Issues a storm digest lists; the rest are counted.
const LISTED: usize = 20;

/// One message for several notifications of a channel (an error storm): how many of each kind,
/// and the worst issues first (`items` comes sorted).
pub fn digest_body(items: &[(&Alert, Issue)], project: &Project, public_url: &str) -> Value {
    let mut kinds: Vec<(&'static str, usize)> = Vec::new();
    for (a, _) in items {
        let noun = match &a.alert.what {
            IssueEvent::Created => "new issues",
            IssueEvent::Regressed { .. } => "regressions",
            IssueEvent::Unignored => "ignored issues back",
            IssueEvent::PassedCount(_) => "issues passing a count",
            IssueEvent::Resolved => "resolved issues",
            IssueEvent::Frequent { .. } => "issues with many events",
            IssueEvent::ManyUsers { .. } => "issues meeting many users",
        };
        match kinds.iter_mut().find(|(k, _)| *k == noun) {
            Some((_, n)) => *n += 1,
            None => kinds.push((noun, 1)),
        }
    }
    let summary: Vec<String> = kinds.iter().map(|(k, n)| format!("{n} {k}")).collect();
    let listed: Vec<Value> = items
        .iter()
        .take(LISTED)
        .map(|(a, issue)| {
            json!({
                "id": a.id.to_string(),
                "action": action(&a.alert.what),
                "issue": shapes::issue(issue, project, public_url, None),
            })
        })
        .collect();
    json!({
        // The same notifications folded again (a retry) keep the same id.
        "id": format!("digest-{}", items.iter().map(|(a, _)| a.id.0).min().unwrap_or(0)),
        "action": "digest",
        "headline": format!("{} in {}", summary.join(", "), project.name),
        "project": shapes::project(project),
        "count": items.len(),
        "alerts": listed,
        "more": items.len().saturating_sub(LISTED),
        "test": false,
    })
}

/// The body of a test notification: the same shape, marked as a test, with no issue.
pub fn test_body(channel: &Channel, public_url: &str) -> Value {
    json!({
        "id": "test",
        "action": "test",
        "headline": format!("Test notification for channel {} ({})", channel.name, channel.id),
        "project": {"id": channel.project_id.to_string()},
        "rule": null,
        "release": null,
        "data": {"issue": null, "url": public_url},
        "test": true,
    })
}

/// POSTs `body` to the channel's URL, signed when it has a secret.
pub fn post(outbound: &Outbound, channel: &Channel, body: &Value) -> Result<(), String> {
    let bytes = serde_json::to_vec(body).map_err(|e| e.to_string())?;
    let mut headers = Vec::new();
    if let Some(secret) = channel.secret.as_deref().filter(|s| !s.is_empty()) {
        let timestamp = chrono::Utc::now().timestamp();
        headers.push((TIMESTAMP_HEADER, timestamp.to_string()));
        headers.push((SIGNATURE_HEADER, sign(secret, timestamp, &bytes)));
    }
    outbound.post_json(&channel.target, &bytes, &headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hmac_hex(key: &[u8], data: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
        mac.update(data);
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    #[test]
    fn signatures_match_an_independent_hmac() {
        // RFC 4231 test case 2: the HMAC itself is the standard one.
        assert_eq!(
            hmac_hex(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Ours covers "{timestamp}.{body}" ...
        let expected = format!("sha256={}", hmac_hex(b"s3cret", b"1700000000.{}"));
        assert_eq!(sign("s3cret", 1_700_000_000, b"{}"), expected);
        // ... and is what the README's Python recipe computes for the same input.
        assert_eq!(
            expected,
            "sha256=97926816e98fbb41ccb1673225ff29a2f35369099990e1b1561651e7bd097ebf"
        );
    }
}
