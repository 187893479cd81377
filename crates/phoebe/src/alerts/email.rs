//! Email notifications: a plain-text and an HTML part saying what happened, the issue's title,
//! culprit, level, counts, releases, its top in-app frames and a link, sent through the
//! configured SMTP server (`[smtp]`, with STARTTLS or implicit TLS as its URL says).

use std::fmt::Write as _;
use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{Message, SmtpTransport, Transport};
use serde_json::Value;

use crate::api::json::{iso, short_id};
use crate::domain::alerts::{headline, Alert, Channel, ChannelKind, MEMBERS};
use crate::domain::{Issue, Project};

/// Issues a digest lists.
const LISTED: usize = 20;

/// The mail server and sender, from `[smtp]`.
#[derive(Clone)]
pub struct Smtp {
    url: String,
    from: Mailbox,
    timeout: Duration,
    /// Extra certificate authorities (`[smtp] ca_file`), PEM.
    ca_pem: Option<Vec<u8>>,
}

impl Smtp {
    /// Reads `[smtp]`; `None` when no server is configured. A sender that is no address is an
    /// error naming the setting.
    pub fn from_config(
        config: &crate::config::SmtpConfig,
        timeout: Duration,
    ) -> Result<Option<Smtp>, String> {
        if config.url.trim().is_empty() {
            return Ok(None);
        }
        let from = config.from.parse::<Mailbox>().map_err(|e| {
            format!(
                "[smtp] from = {:?} is not an address ({e}); e.g. Phoebe <errors@example.com>",
                config.from
            )
        })?;
        let ca_pem = match config.ca_file.trim() {
            "" => None,
            path => {
                let pem = std::fs::read(path).map_err(|e| {
                    format!("[smtp] ca_file = {path:?} cannot be read ({e}); give a PEM file of CA certificates")
                })?;
                Certificate::from_pem(&pem).map_err(|e| {
                    format!("[smtp] ca_file = {path:?} holds no usable PEM certificate ({e})")
                })?;
                Some(pem)
            }
        };
        let smtp = Smtp {
            url: config.url.clone(),
            from,
            timeout,
            ca_pem,
        };
        smtp.transport()?;
        Ok(Some(smtp))
    }

    /// A transport for the configured URL, trusting the extra CAs for its TLS if there are.
    fn transport(&self) -> Result<SmtpTransport, String> {
        let mut builder = SmtpTransport::from_url(&self.url).map_err(|e| {
            format!(
                "[smtp] url = {:?} cannot be used ({e}); e.g. smtps://user:pass@host:465 or smtp://host:587?tls=required",
                crate::config::mask_password(&self.url)
            )
        })?;
        if let Some(pem) = &self.ca_pem {
            let (scheme, rest) = self.url.split_once("://").unwrap_or(("", &self.url));
            let authority = rest.split(['/', '?']).next().unwrap_or("");
            let host_port = authority.rsplit('@').next().unwrap_or(authority);
            let host = match host_port.strip_prefix('[') {
                Some(v6) => v6.split(']').next().unwrap_or(v6),
                None => host_port.split(':').next().unwrap_or(host_port),
            };
            let params = TlsParameters::builder(host.to_string())
                .add_root_certificate(
                    Certificate::from_pem(pem).map_err(|e| format!("[smtp] ca_file: {e}"))?,
                )
                .build_rustls()
                .map_err(|e| format!("cannot set up TLS for the mail server: {e}"))?;
            let query = self.url.split_once('?').map_or("", |(_, q)| q);
            let tls = form_urlencoded::parse(query.as_bytes())
                .find(|(k, _)| k == "tls")
                .map(|(_, v)| v.into_owned());
            builder = match (scheme, tls.as_deref()) {
                ("smtps", _) => builder.tls(Tls::Wrapper(params)),
                (_, Some("required")) => builder.tls(Tls::Required(params)),
                (_, Some("opportunistic")) => builder.tls(Tls::Opportunistic(params)),
                _ => builder,
            };
        }
        Ok(builder.timeout(Some(self.timeout)).build())
    }
}

/// An email channel whose target is [`MEMBERS`], with the members' addresses instead; the error
/// says how to give them one when nobody has.
pub fn with_members(
    directory: &dyn crate::store::Directory,
    mut channel: Channel,
    org_id: crate::domain::OrgId,
) -> Result<Channel, String> {
    if channel.kind != ChannelKind::Email || channel.target != MEMBERS {
        return Ok(channel);
    }
    let emails = directory
        .member_emails(org_id)
        .map_err(|e| format!("cannot read the members' addresses: {e}"))?;
    if emails.is_empty() {
        return Err("no active member has an email address: set one with `phoebe user set-email <login> <address>` or on the Account page".into());
    }
    channel.target = emails.join(", ");
    Ok(channel)
}

/// Checks an email channel's target: one or more addresses, comma-separated.
pub fn parse_recipients(target: &str) -> Result<Vec<Mailbox>, String> {
    let all: Vec<&str> = target
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .collect();
    if all.is_empty() {
        return Err("an email channel needs at least one address".into());
    }
    all.iter()
        .map(|a| {
            a.parse::<Mailbox>()
                .map_err(|e| format!("{a:?} is not an email address ({e})"))
        })
        .collect()
}

/// A message's subject and its two bodies.
pub struct Mail {
    /// Subject line.
    pub subject: String,
    /// Plain text.
    pub text: String,
    /// HTML.
    pub html: String,
}

pub(super) fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub(super) fn issue_url(public_url: &str, issue: &Issue) -> String {
    format!("{}/issues/{}/", public_url.trim_end_matches('/'), issue.id)
}

/// The innermost exception's in-app frames of an event, the failing one first: the lines
/// someone fixing it reads first.
pub fn top_frames(payload: &Value, n: usize) -> Vec<String> {
    let values = payload["exception"]["values"]
        .as_array()
        .or_else(|| payload["exception"].as_array());
    let Some(frames) = values
        .and_then(|v| v.last())
        .and_then(|e| e["stacktrace"]["frames"].as_array())
    else {
        return Vec::new();
    };
    frames
        .iter()
        .rev()
        .filter(|f| f["in_app"].as_bool() == Some(true))
        .take(n)
        .map(|f| {
            let place = f["module"]
                .as_str()
                .or_else(|| f["filename"].as_str())
                .unwrap_or("?");
            let function = f["function"].as_str().unwrap_or("?");
            match f["lineno"].as_i64() {
                Some(line) => format!("{place} in {function}, line {line}"),
                None => format!("{place} in {function}"),
            }
        })
        .collect()
}

/// Keys a message leaves out of its tag line: shown elsewhere in it, or personal.
const UNLISTED_TAGS: [&str; 3] = ["level", "release", "user"];

/// Tags a message lists at most.
const LISTED_TAGS: usize = 10;

/// The most common value of each of an issue's tags (given one per key), the keys most
/// events carry first, as `key=value`.
pub fn top_tags(tags: &[crate::domain::TagCount]) -> Vec<String> {
    let mut tags: Vec<&crate::domain::TagCount> = tags
        .iter()
        .filter(|t| !UNLISTED_TAGS.contains(&t.key.as_str()))
        .collect();
    tags.sort_by(|a, b| b.key_total.cmp(&a.key_total).then(a.key.cmp(&b.key)));
    tags.into_iter()
        .take(LISTED_TAGS)
        .map(|t| format!("{}={}", t.key, t.value))
        .collect()
}

/// One notification about one issue.
pub fn one(
    alert: &Alert,
    issue: &Issue,
    project: &Project,
    frames: &[String],
    tags: &[String],
    public_url: &str,
) -> Mail {
    let what = headline(&alert.alert.what);
    let url = issue_url(public_url, issue);
    let id = short_id(&project.slug, issue.short_id);
    let facts = [
        ("Issue", id.clone()),
        ("Where", issue.culprit.clone()),
        ("Level", issue.level.clone()),
        ("Events", issue.times_seen.to_string()),
        ("Users", issue.user_count.to_string()),
        ("First seen", iso(issue.first_seen_ms)),
        ("Last seen", iso(issue.last_seen_ms)),
        (
            "First release",
            issue.first_release.clone().unwrap_or_default(),
        ),
        (
            "Last release",
            issue.last_release.clone().unwrap_or_default(),
        ),
        ("Tags", tags.join(", ")),
    ];
    let mut text = format!("{what} in {}\n\n{}\n\n", project.name, issue.title);
    let mut html = format!(
        "<p>{} in <b>{}</b></p><h2 style=\"font-family:sans-serif\"><a href=\"{}\">{}</a></h2><table>",
        escape(&what),
        escape(&project.name),
        escape(&url),
        escape(&issue.title)
    );
    for (k, v) in facts.iter().filter(|(_, v)| !v.is_empty()) {
        let _ = writeln!(text, "{k}: {v}");
        let _ = write!(
            html,
            "<tr><th align=\"left\">{k}</th><td>{}</td></tr>",
            escape(v)
        );
    }
    html.push_str("</table>");
    if !frames.is_empty() {
        text.push_str("\nWhere it failed (most recent first):\n");
        html.push_str("<p>Where it failed (most recent first):</p><pre>");
        for f in frames {
            let _ = writeln!(text, "  {f}");
            let _ = writeln!(html, "{}", escape(f));
        }
        html.push_str("</pre>");
    }
    let _ = write!(text, "\nOpen it: {url}\n");
    let _ = write!(
        html,
        "<p><a href=\"{}\">Open {} in Phoebe</a></p>",
        escape(&url),
        escape(&id)
    );
    Mail {
        subject: format!("[{}] {what}: {}", project.name, issue.title),
        text,
        html,
    }
}

/// Several notifications in one message (an error storm), the worst issues first.
pub fn digest(items: &[(&Alert, Issue)], project: &Project, public_url: &str) -> Mail {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for (a, _) in items {
        let what = headline(&a.alert.what);
        match counts.iter_mut().find(|(k, _)| *k == what) {
            Some((_, n)) => *n += 1,
            None => counts.push((what, 1)),
        }
    }
    let summary: Vec<String> = counts.iter().map(|(k, n)| format!("{n} × {k}")).collect();
    let summary = summary.join(", ");
    let mut text = format!("{summary} in {}\n\n", project.name);
    let mut html = format!(
        "<p>{} in <b>{}</b></p><ul>",
        escape(&summary),
        escape(&project.name)
    );
    for (a, issue) in items.iter().take(LISTED) {
        let url = issue_url(public_url, issue);
        let what = headline(&a.alert.what);
        let _ = writeln!(
            text,
            "- {what}: {} ({} events) {url}",
            issue.title, issue.times_seen
        );
        let _ = write!(
            html,
            "<li>{}: <a href=\"{}\">{}</a> ({} events)</li>",
            escape(&what),
            escape(&url),
            escape(&issue.title),
            issue.times_seen
        );
    }
    html.push_str("</ul>");
    if items.len() > LISTED {
        let more = items.len() - LISTED;
        let _ = writeln!(text, "… and {more} more");
        let _ = write!(html, "<p>… and {more} more</p>");
    }
    Mail {
        subject: format!("[{}] {summary}", project.name),
        text,
        html,
    }
}

/// A test message.
pub fn test(channel: &Channel, public_url: &str) -> Mail {
    let text = format!(
        "This is a test notification for the email channel {} ({}). Alerts will look like it, with the issue.\n\n{public_url}\n",
        channel.name, channel.id
    );
    Mail {
        subject: "[Phoebe] Test notification".into(),
        html: format!("<p>{}</p>", escape(&text)),
        text,
    }
}

/// Sends `mail` to `to`: addresses, comma-separated.
pub fn send(smtp: Option<&Smtp>, to: &str, mail: Mail) -> Result<(), String> {
    let smtp =
        smtp.ok_or("no mail server is configured: set [smtp] url (PHOEBE_SMTP_URL) and restart")?;
    let mut builder = Message::builder()
        .from(smtp.from.clone())
        .subject(mail.subject);
    for to in parse_recipients(to)? {
        builder = builder.to(to);
    }
    let message = builder
        .multipart(MultiPart::alternative_plain_html(mail.text, mail.html))
        .map_err(|e| format!("cannot build the message: {e}"))?;
    let transport = smtp.transport()?;
    transport
        .send(&message)
        .map(|_| ())
        .map_err(|e| format!("the mail server refused or failed: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipients_are_checked() {
        assert_eq!(
            parse_recipients("a@example.com, b@example.com")
                .unwrap()
                .len(),
            2
        );
        assert!(parse_recipients(" , ").is_err());
        assert!(parse_recipients("not an address")
            .unwrap_err()
            .contains("not an email"));
    }

    #[test]
    fn the_failing_in_app_frames_come_first() {
        let payload = serde_json::json!({"exception": {"values": [{"stacktrace": {"frames": [
            {"module": "lib", "function": "x", "in_app": false},
            {"module": "app.main", "function": "run", "lineno": 10, "in_app": true},
            {"filename": "app/pay.py", "function": "charge", "lineno": 20, "in_app": true}
        ]}}]}});
        assert_eq!(
            top_frames(&payload, 5),
            ["app/pay.py in charge, line 20", "app.main in run, line 10"]
        );
        assert!(top_frames(&serde_json::json!({"message": "x"}), 5).is_empty());
    }
}
