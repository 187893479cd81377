//! Chat, push and on-call services, each in its own native format: Slack and Google Chat
//! incoming webhooks, Discord webhooks, Microsoft Teams Workflows (an Adaptive Card, the payload
//! that replaced Office 365 connectors), ntfy topics, Telegram bots and PagerDuty Events v2.
//! They all say the same [`Notice`].

use serde_json::{json, Value};

use super::Outbound;
use crate::api::json::short_id;
use crate::domain::alerts::{headline, Alert, Channel, ChannelKind};
use crate::domain::rules::IssueEvent;
use crate::domain::{Issue, Project};

/// Lines a digest lists.
const LISTED: usize = 10;

/// What a chat message says, whatever the service.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    /// "New issue in Web", "12 new issues in Web", "Test notification".
    pub headline: String,
    /// Issues with their links (one, or a digest's worst).
    pub issues: Vec<(String, String)>,
    /// Short facts about a single issue: events, users, level, release.
    pub facts: Vec<(String, String)>,
    /// How many more a digest did not list.
    pub more: usize,
    /// What on-call services deduplicate by: one incident per issue.
    pub key: String,
    /// PagerDuty's severity: critical, error, warning or info.
    pub severity: &'static str,
    /// Where it comes from: `phoebe/<project>`.
    pub source: String,
    /// The issue was resolved: on-call services close its incident.
    pub resolved: bool,
}

/// PagerDuty's severity for an event level.
fn severity(level: &str) -> &'static str {
    match level {
        "fatal" => "critical",
        "error" => "error",
        "warning" => "warning",
        _ => "info",
    }
}

/// Splits a target URL into the URL to post to and one query parameter it carries (Telegram's
/// `chat_id`, PagerDuty's `routing_key`).
pub fn split_target<'a>(target: &'a str, param: &str) -> Result<(&'a str, String), String> {
    let (base, query) = target
        .split_once('?')
        .ok_or_else(|| format!("the URL needs ?{param}=…"))?;
    let value = form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == param)
        .map(|(_, v)| v.into_owned())
        .filter(|v| !v.is_empty())
        .ok_or_else(|| format!("the URL needs ?{param}=…"))?;
    Ok((base, value))
}

fn issue_url(public_url: &str, issue: &Issue) -> String {
    format!("{}/issues/{}/", public_url.trim_end_matches('/'), issue.id)
}

impl Notice {
    /// One notification.
    pub fn one(alert: &Alert, issue: &Issue, project: &Project, public_url: &str) -> Notice {
        let mut facts = vec![
            ("Issue".to_string(), short_id(&project.slug, issue.short_id)),
            ("Events".to_string(), issue.times_seen.to_string()),
            ("Users".to_string(), issue.user_count.to_string()),
            ("Level".to_string(), issue.level.clone()),
        ];
        if let Some(r) = &issue.last_release {
            facts.push(("Release".to_string(), r.clone()));
        }
        Notice {
            headline: format!("{} in {}", headline(&alert.alert.what), project.name),
            issues: vec![(issue.title.clone(), issue_url(public_url, issue))],
            facts,
            more: 0,
            key: format!("phoebe-issue-{}", issue.id),
            severity: severity(&issue.level),
            source: format!("phoebe/{}", project.slug),
            resolved: alert.alert.what == IssueEvent::Resolved,
        }
    }

    /// Several notifications folded into one (the worst issues first).
    pub fn digest(items: &[(&Alert, Issue)], project: &Project, public_url: &str) -> Notice {
        Notice {
            headline: format!("{} alerts in {}", items.len(), project.name),
            issues: items
                .iter()
                .take(LISTED)
                .map(|(a, i)| {
                    (
                        format!("{}: {}", headline(&a.alert.what), i.title),
                        issue_url(public_url, i),
                    )
                })
                .collect(),
            facts: Vec::new(),
            more: items.len().saturating_sub(LISTED),
            key: format!(
                "phoebe-digest-{}",
                items.iter().map(|(a, _)| a.id.0).min().unwrap_or(0)
            ),
            severity: "error",
            source: format!("phoebe/{}", project.slug),
            resolved: false,
        }
    }

    /// A test message.
    pub fn test(channel: &Channel, public_url: &str) -> Notice {
        Notice {
            headline: format!("Test notification from Phoebe for channel {}", channel.name),
            issues: vec![("Phoebe".into(), public_url.to_string())],
            facts: Vec::new(),
            more: 0,
            key: format!("phoebe-test-{}", channel.id),
            severity: "info",
            source: "phoebe".into(),
            resolved: false,
        }
    }

    fn plain_lines(&self) -> Vec<String> {
        let mut lines: Vec<String> = self
            .issues
            .iter()
            .map(|(title, url)| format!("{title} {url}"))
            .collect();
        if !self.facts.is_empty() {
            let facts: Vec<String> = self
                .facts
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect();
            lines.push(facts.join(" · "));
        }
        if self.more > 0 {
            lines.push(format!("… and {} more", self.more));
        }
        lines
    }
}

/// Slack's mrkdwn needs `&`, `<` and `>` escaped; links are `<url|text>`.
fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The body a service expects for `notice`: JSON, or plain text for ntfy.
pub fn body(kind: ChannelKind, notice: &Notice) -> Value {
    let facts = || {
        notice
            .facts
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect::<Vec<_>>()
            .join(" · ")
    };
    match kind {
        // Slack and Google Chat both read `text` with `<url|label>` links and `*bold*`.
        ChannelKind::Slack | ChannelKind::GoogleChat => {
            let mut text = format!("*{}*", slack_escape(&notice.headline));
            for (title, url) in &notice.issues {
                text.push_str(&format!("\n<{url}|{}>", slack_escape(title)));
            }
            if !notice.facts.is_empty() {
                text.push_str(&format!("\n{}", slack_escape(&facts())));
            }
            if notice.more > 0 {
                text.push_str(&format!("\n… and {} more", notice.more));
            }
            json!({ "text": text })
        }
        ChannelKind::Discord => {
            let description: Vec<String> = notice
                .issues
                .iter()
                .map(|(title, url)| format!("[{title}]({url})"))
                .chain((!notice.facts.is_empty()).then(facts))
                .chain((notice.more > 0).then(|| format!("… and {} more", notice.more)))
                .collect();
            json!({
                "content": notice.headline,
                "embeds": [{
                    "title": notice.issues.first().map(|(t, _)| t.clone()).unwrap_or_default(),
                    "url": notice.issues.first().map(|(_, u)| u.clone()),
                    "description": description.join("\n"),
                    "color": 0xE0_4E_39,
                }],
                "allowed_mentions": {"parse": []},
            })
        }
        ChannelKind::Teams => {
            let mut card_body = vec![json!({
                "type": "TextBlock", "text": notice.headline, "weight": "Bolder", "size": "Medium", "wrap": true,
            })];
            for (title, url) in &notice.issues {
                card_body.push(
                    json!({"type": "TextBlock", "text": format!("[{title}]({url})"), "wrap": true}),
                );
            }
            if !notice.facts.is_empty() {
                card_body.push(json!({
                    "type": "FactSet",
                    "facts": notice.facts.iter().map(|(k, v)| json!({"title": k, "value": v})).collect::<Vec<_>>(),
                }));
            }
            if notice.more > 0 {
                card_body.push(json!({"type": "TextBlock", "text": format!("… and {} more", notice.more), "wrap": true}));
            }
            json!({
                "type": "message",
                "attachments": [{
                    "contentType": "application/vnd.microsoft.card.adaptive",
                    "contentUrl": null,
                    "content": {
                        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                        "type": "AdaptiveCard",
                        "version": "1.4",
                        "body": card_body,
                        "actions": notice.issues.first().map(|(_, url)| vec![json!({
                            "type": "Action.OpenUrl", "title": "Open in Phoebe", "url": url,
                        })]).unwrap_or_default(),
                    },
                }],
            })
        }
        ChannelKind::Ntfy => Value::String(notice.plain_lines().join("\n")),
        // The chat and the routing key come from the target URL (see `post`).
        ChannelKind::Telegram => json!({
            "text": format!("{}\n{}", notice.headline, notice.plain_lines().join("\n")),
            "disable_web_page_preview": true,
        }),
        ChannelKind::PagerDuty if notice.resolved => json!({
            "event_action": "resolve",
            "dedup_key": notice.key,
        }),
        ChannelKind::PagerDuty => {
            let summary = match notice.issues.as_slice() {
                [(title, _)] => format!("{}: {title}", notice.headline),
                _ => notice.headline.clone(),
            };
            json!({
                "event_action": "trigger",
                "dedup_key": notice.key,
                "payload": {
                    // PagerDuty refuses summaries over 1,024 characters.
                    "summary": summary.chars().take(1024).collect::<String>(),
                    "source": notice.source,
                    "severity": notice.severity,
                    "component": "phoebe",
                    "custom_details": notice.facts.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect::<serde_json::Map<String, Value>>(),
                },
                "links": notice.issues.iter().map(|(t, u)| json!({"href": u, "text": t})).collect::<Vec<_>>(),
                "client": "Phoebe",
                "client_url": notice.issues.first().map(|(_, u)| u.clone()),
            })
        }
        ChannelKind::Webhook | ChannelKind::Email => json!(null),
    }
}

/// Posts `notice` to a chat channel in its service's format.
pub fn post(outbound: &Outbound, channel: &Channel, notice: &Notice) -> Result<(), String> {
    match (channel.kind, body(channel.kind, notice)) {
        (ChannelKind::Ntfy, Value::String(text)) => {
            // ntfy reads the message from the body and the rest from headers; header values
            // must be single-line ASCII-safe text.
            let title: String = notice
                .headline
                .chars()
                .filter(|c| !c.is_control())
                .collect();
            let mut headers = vec![("Title", title), ("Tags", "rotating_light".to_string())];
            if let Some((_, url)) = notice.issues.first() {
                headers.push(("Click", url.clone()));
            }
            outbound.post(
                &channel.target,
                "text/plain; charset=utf-8",
                text.as_bytes(),
                &headers,
            )
        }
        (ChannelKind::Telegram, mut body) => {
            let (url, chat) = split_target(&channel.target, "chat_id")?;
            body["chat_id"] = Value::String(chat);
            let bytes = serde_json::to_vec(&body).map_err(|e| e.to_string())?;
            outbound.post(url, "application/json", &bytes, &[])
        }
        (ChannelKind::PagerDuty, mut body) => {
            let (url, key) = split_target(&channel.target, "routing_key")?;
            body["routing_key"] = Value::String(key);
            let bytes = serde_json::to_vec(&body).map_err(|e| e.to_string())?;
            outbound.post(url, "application/json", &bytes, &[])
        }
        (_, body) => {
            let bytes = serde_json::to_vec(&body).map_err(|e| e.to_string())?;
            outbound.post(&channel.target, "application/json", &bytes, &[])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice() -> Notice {
        Notice {
            headline: "New issue in Web".into(),
            issues: vec![(
                "KeyError: <basket>".into(),
                "https://p.example/issues/7/".into(),
            )],
            facts: vec![("Events".into(), "3".into())],
            more: 0,
            key: "phoebe-issue-7".into(),
            severity: "error",
            source: "phoebe/web".into(),
            resolved: false,
        }
    }

    #[test]
    fn on_call_and_bot_targets_carry_their_key_in_the_url() {
        assert_eq!(
            split_target(
                "https://events.pagerduty.com/v2/enqueue?routing_key=abc",
                "routing_key"
            ),
            Ok(("https://events.pagerduty.com/v2/enqueue", "abc".to_string()))
        );
        assert!(split_target("https://api.telegram.org/bot1:x/sendMessage", "chat_id").is_err());
        let pd = body(ChannelKind::PagerDuty, &notice());
        assert_eq!(pd["event_action"], "trigger");
        assert_eq!(pd["dedup_key"], "phoebe-issue-7");
        assert_eq!(
            pd["payload"]["summary"],
            "New issue in Web: KeyError: <basket>"
        );
        assert_eq!(pd["payload"]["custom_details"]["Events"], "3");
        let closed = body(
            ChannelKind::PagerDuty,
            &Notice {
                resolved: true,
                ..notice()
            },
        );
        assert_eq!(
            closed,
            serde_json::json!({"event_action": "resolve", "dedup_key": "phoebe-issue-7"})
        );
    }

    #[test]
    fn each_service_gets_its_own_shape() {
        let slack = body(ChannelKind::Slack, &notice());
        assert_eq!(
            slack["text"],
            "*New issue in Web*\n<https://p.example/issues/7/|KeyError: &lt;basket&gt;>\nEvents: 3"
        );
        let discord = body(ChannelKind::Discord, &notice());
        assert_eq!(discord["content"], "New issue in Web");
        assert_eq!(discord["embeds"][0]["url"], "https://p.example/issues/7/");
        assert_eq!(discord["allowed_mentions"]["parse"], json!([]));
        let teams = body(ChannelKind::Teams, &notice());
        let card = &teams["attachments"][0]["content"];
        assert_eq!(card["type"], "AdaptiveCard");
        assert_eq!(card["actions"][0]["url"], "https://p.example/issues/7/");
        assert_eq!(card["body"][2]["facts"][0]["value"], "3");
        assert_eq!(
            body(ChannelKind::Ntfy, &notice()),
            Value::String("KeyError: <basket> https://p.example/issues/7/\nEvents: 3".into())
        );
    }
}
