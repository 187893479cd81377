//! A project's alerts page: its rules (add, remove), its channels (add, send a test, remove)
//! and the notifications sent lately; plus the rows the issue page lists its alerts with.
//! Forms post back to the page, which redirects to itself with a fixed word saying what was
//! done (post/redirect/get); a refused form comes back with what to fix and what was typed.
//! Like every face, it checks and translates input, and leaves the deciding to `ops`.

use std::collections::hash_map::{Entry, HashMap};
use std::fmt::Display;
use std::str::FromStr;

use askama::Template;
use axum::extract::{Path, RawQuery};
use axum::response::{IntoResponse, Redirect, Response};

use super::format::{self, url_encode};
use super::session::{CheckedForm, Form, Viewer};
use super::{blocking, form_status, page_with_status, Shared, UiError};
use crate::api::json::short_id;
use crate::domain::alerts::{
    headline, Alert, Channel, ChannelId, ChannelKind, Filters, RuleId, RuleSpec, SummaryPeriod,
    Trigger, LEVELS,
};
use crate::domain::{IssueId, Project};
use crate::ops::{Ops, OpsError};

/// Notifications the page lists, newest first.
const HISTORY_LEN: i64 = 50;

/// Every channel kind, in the order the "Add channel" form offers them.
const KINDS: [ChannelKind; 9] = [
    ChannelKind::Webhook,
    ChannelKind::Email,
    ChannelKind::Slack,
    ChannelKind::Discord,
    ChannelKind::GoogleChat,
    ChannelKind::Teams,
    ChannelKind::Ntfy,
    ChannelKind::Telegram,
    ChannelKind::PagerDuty,
];

/// What the kind select says; a new kind fails to compile here until it has words.
fn kind_label(kind: ChannelKind) -> &'static str {
    match kind {
        ChannelKind::Webhook => "Webhook (JSON, signed with the secret)",
        ChannelKind::Email => "Email",
        ChannelKind::Slack => "Slack (incoming webhook)",
        ChannelKind::Discord => "Discord (channel webhook)",
        ChannelKind::GoogleChat => "Google Chat (space webhook)",
        ChannelKind::Teams => "Microsoft Teams (workflow webhook)",
        ChannelKind::Ntfy => "ntfy (topic URL)",
        ChannelKind::Telegram => "Telegram (bot sendMessage URL with chat_id)",
        ChannelKind::PagerDuty => "PagerDuty (Events v2 URL with routing_key)",
    }
}

/// The triggers a rule can have (the names `Trigger::as_str` gives), in words.
const TRIGGERS: [(&str, &str); 5] = [
    ("new-issue", "A new issue appears"),
    ("regression", "A resolved issue comes back (regression)"),
    ("unignored", "An ignored issue is back"),
    ("frequency", "An issue gets N or more events in M minutes"),
    ("users", "An issue is seen by N or more users in M minutes"),
];

/// One option of a select.
pub struct Choice {
    pub value: &'static str,
    pub label: &'static str,
    pub selected: bool,
}

fn choices(
    all: impl IntoIterator<Item = (&'static str, &'static str)>,
    picked: &str,
) -> Vec<Choice> {
    all.into_iter()
        .map(|(value, label)| Choice {
            value,
            label,
            selected: value == picked,
        })
        .collect()
}

/// One rule, as the page lists it.
pub struct RuleRow {
    pub id: RuleId,
    pub description: String,
    pub channels: String,
    pub cooldown: String,
}

/// One channel, as the page lists it: never its secret, only whether it has one.
pub struct ChannelRow {
    pub id: ChannelId,
    pub kind: &'static str,
    pub name: String,
    /// The URL, or the addresses of an email channel.
    pub target: String,
    pub signed: bool,
}

/// A channel as a checkbox of the rule form.
pub struct Tick {
    pub id: ChannelId,
    pub name: String,
    pub kind: &'static str,
    pub ticked: bool,
}

/// One notification, as the project's history and the issue page list it.
pub struct AlertRow {
    pub issue_id: IssueId,
    pub time: String,
    pub time_exact: String,
    pub headline: String,
    pub channel: String,
    pub state: &'static str,
    pub attempts: u32,
    pub last_error: String,
}

/// A channel's name; a removed channel's history still says which one it was.
fn channel_name(channels: &[Channel], id: ChannelId) -> String {
    channels
        .iter()
        .find(|c| c.id == id)
        .map_or_else(|| format!("channel {id} (removed)"), |c| c.name.clone())
}

/// The rows of notifications; `channels` are their project's.
pub fn alert_rows(alerts: &[Alert], channels: &[Channel], now_ms: i64) -> Vec<AlertRow> {
    alerts
        .iter()
        .map(|a| AlertRow {
            issue_id: a.alert.issue_id,
            time: format::ago(a.created_ms, now_ms),
            time_exact: format::exact(a.created_ms),
            headline: headline(&a.alert.what),
            channel: channel_name(channels, a.alert.channel_id),
            state: a.state.as_str(),
            attempts: a.attempts,
            last_error: a.last_error.clone().unwrap_or_default(),
        })
        .collect()
}

/// "none", "30 minutes", "2 hours", "1 day": a cooldown in words.
fn duration_words(ms: i64) -> String {
    const MINUTE: i64 = 60_000;
    const HOUR: i64 = 60 * MINUTE;
    const DAY: i64 = 24 * HOUR;
    let (n, unit) = match ms {
        i64::MIN..=0 => return "none".into(),
        _ if ms % DAY == 0 => (ms / DAY, "day"),
        _ if ms % HOUR == 0 => (ms / HOUR, "hour"),
        _ if ms % MINUTE == 0 => (ms / MINUTE, "minute"),
        _ => ((ms + 999) / 1000, "second"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// What the "Add rule" form holds: a fresh form, or what was sent when it was refused.
pub struct RuleDraft {
    pub trigger: String,
    pub threshold: String,
    pub minutes: String,
    pub environment: String,
    pub release: String,
    pub min_level: String,
    pub tags: String,
    pub channels: Vec<String>,
    pub cooldown: String,
}

impl Default for RuleDraft {
    fn default() -> Self {
        RuleDraft {
            trigger: "new-issue".into(),
            threshold: String::new(),
            minutes: String::new(),
            environment: String::new(),
            release: String::new(),
            min_level: "any".into(),
            tags: String::new(),
            channels: Vec::new(),
            // Sentry's default "action interval": a busy issue tells you twice an hour at most.
            cooldown: "30".into(),
        }
    }
}

impl RuleDraft {
    fn from_form(form: &Form) -> RuleDraft {
        let field = |name: &str| text(form, name).to_string();
        RuleDraft {
            trigger: field("trigger"),
            threshold: field("threshold"),
            minutes: field("minutes"),
            environment: field("environment"),
            release: field("release"),
            min_level: field("min_level"),
            tags: field("tags"),
            channels: form.all("channel").map(str::to_string).collect(),
            cooldown: field("cooldown"),
        }
    }
}

/// What the "Add channel" form holds (never the secret: it is typed again).
pub struct ChannelDraft {
    pub kind: String,
    pub name: String,
    pub target: String,
}

impl Default for ChannelDraft {
    fn default() -> Self {
        ChannelDraft {
            kind: ChannelKind::Webhook.as_str().into(),
            name: String::new(),
            target: String::new(),
        }
    }
}

impl ChannelDraft {
    fn from_form(form: &Form) -> ChannelDraft {
        ChannelDraft {
            kind: text(form, "kind").to_string(),
            name: text(form, "name").to_string(),
            target: text(form, "target").to_string(),
        }
    }
}

#[derive(Template)]
#[template(path = "alerts.html")]
struct AlertsPage {
    viewer: Viewer,
    project: Project,
    rules: Vec<RuleRow>,
    channels: Vec<ChannelRow>,
    /// Each notification with the issue it is about (short id and title).
    history: Vec<(AlertRow, String)>,
    triggers: Vec<Choice>,
    levels: Vec<Choice>,
    kinds: Vec<Choice>,
    ticks: Vec<Tick>,
    rule_draft: RuleDraft,
    channel_draft: ChannelDraft,
    /// The viewer's own summary email of this project: off, daily or weekly.
    summary: Vec<Choice>,
    error: Option<String>,
    notice: Option<String>,
}

/// What a form did, carried through the redirect as `?done=…`: a fixed word (and a channel
/// id), so a link cannot make the page say anything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Done {
    RuleAdded,
    RuleRemoved,
    ChannelAdded(ChannelId),
    ChannelRemoved,
    TestSent(ChannelId),
    SummarySet,
}

impl Done {
    fn query(self) -> String {
        match self {
            Done::RuleAdded => "done=rule-added".into(),
            Done::RuleRemoved => "done=rule-removed".into(),
            Done::ChannelAdded(id) => format!("done=channel-added&channel={id}"),
            Done::ChannelRemoved => "done=channel-removed".into(),
            Done::TestSent(id) => format!("done=test-sent&channel={id}"),
            Done::SummarySet => "done=summary-set".into(),
        }
    }

    fn parse(query: &str) -> Option<Done> {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        let value = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        let channel = || value("channel").and_then(|c| c.parse::<ChannelId>().ok());
        match value("done")?.as_str() {
            "rule-added" => Some(Done::RuleAdded),
            "rule-removed" => Some(Done::RuleRemoved),
            "channel-added" => channel().map(Done::ChannelAdded),
            "channel-removed" => Some(Done::ChannelRemoved),
            "test-sent" => channel().map(Done::TestSent),
            "summary-set" => Some(Done::SummarySet),
            _ => None,
        }
    }

    fn notice(self, channels: &[Channel]) -> String {
        match self {
            Done::RuleAdded => "Added the rule.".into(),
            Done::RuleRemoved => "Removed the rule.".into(),
            Done::ChannelAdded(id) => format!(
                "Added the channel {}. Send it a test to see that it arrives.",
                channel_name(channels, id)
            ),
            Done::ChannelRemoved => "Removed the channel; no rule notifies it any more.".into(),
            Done::TestSent(id) => format!(
                "Sent a test notification to {}, and the receiver accepted it.",
                channel_name(channels, id)
            ),
            Done::SummarySet => "Saved your summary email setting.".into(),
        }
    }
}

/// `GET /projects/{slug}/alerts/`, after a form with `?done=…`.
pub async fn show(
    state: Shared,
    viewer: Viewer,
    Path(slug): Path<String>,
    RawQuery(query): RawQuery,
) -> Result<Response, UiError> {
    let done = query.as_deref().and_then(Done::parse);
    let drafts = (RuleDraft::default(), ChannelDraft::default());
    render(state, viewer, slug, done, None, drafts).await
}

/// `GET /projects/{slug}/alerts` (no slash): where the page is.
pub async fn to_page(Path(slug): Path<String>) -> Redirect {
    Redirect::permanent(&format!("/projects/{}/alerts/", url_encode(&slug)))
}

/// The label of the issue a notification is about; the issue may have gone since.
fn issue_label(ops: &Ops, project: &Project, id: IssueId) -> Result<String, UiError> {
    match ops.issue(id) {
        Ok(issue) => Ok(format!(
            "{} {}",
            short_id(&project.slug, issue.short_id),
            issue.title
        )),
        Err(OpsError::NotFound(_)) => Ok(format!("Issue {id} (deleted or merged)")),
        Err(e) => Err(e.into()),
    }
}

async fn render(
    state: Shared,
    viewer: Viewer,
    slug: String,
    done: Option<Done>,
    error: Option<String>,
    (rule_draft, channel_draft): (RuleDraft, ChannelDraft),
) -> Result<Response, UiError> {
    let (project, rules, channels, history, issues, mine) =
        blocking(viewer.ops(&state.0), move |ops| {
            let project = ops.find_project(&slug)?;
            let me = ops.me().map(|u| u.id);
            let mine = ops
                .summaries()?
                .into_iter()
                .find(|(u, s)| Some(u.id) == me && s.project_id == project.id)
                .map(|(_, s)| s.period);
            let id = project.id.to_string();
            let rules = ops.rules(Some(&id))?;
            let channels = ops.channels(Some(&id))?;
            let history = ops.alert_history(Some(&id), None, HISTORY_LEN)?;
            let mut issues: HashMap<IssueId, String> = HashMap::new();
            for a in &history {
                if let Entry::Vacant(slot) = issues.entry(a.alert.issue_id) {
                    slot.insert(issue_label(ops, &project, a.alert.issue_id)?);
                }
            }
            Ok((project, rules, channels, history, issues, mine))
        })
        .await?;
    let now = chrono::Utc::now().timestamp_millis();
    let history = alert_rows(&history, &channels, now)
        .into_iter()
        .map(|row| {
            let issue = issues.get(&row.issue_id).cloned().unwrap_or_default();
            (row, issue)
        })
        .collect();
    let rules = rules
        .iter()
        .map(|r| RuleRow {
            id: r.id,
            description: r.describe(),
            channels: r
                .channels
                .iter()
                .map(|c| channel_name(&channels, *c))
                .collect::<Vec<_>>()
                .join(", "),
            cooldown: duration_words(r.cooldown_ms),
        })
        .collect();
    let ticks = channels
        .iter()
        .map(|c| Tick {
            id: c.id,
            name: c.name.clone(),
            kind: c.kind.as_str(),
            ticked: rule_draft.channels.contains(&c.id.to_string()),
        })
        .collect();
    let notice = done.map(|d| d.notice(&channels));
    let levels = choices(
        std::iter::once(("any", "any")).chain(LEVELS.iter().map(|l| (*l, *l))),
        &rule_draft.min_level,
    );
    let kinds = choices(
        KINDS.iter().map(|k| (k.as_str(), kind_label(*k))),
        &channel_draft.kind,
    );
    let channels = channels
        .into_iter()
        .map(|c| ChannelRow {
            id: c.id,
            kind: c.kind.as_str(),
            signed: c.secret.is_some(),
            target: c.shown_target(),
            name: c.name,
        })
        .collect();
    page_with_status(
        form_status(&error),
        &AlertsPage {
            viewer,
            project,
            rules,
            channels,
            history,
            triggers: choices(TRIGGERS, &rule_draft.trigger),
            levels,
            kinds,
            ticks,
            rule_draft,
            channel_draft,
            summary: choices(
                [("off", "Off"), ("daily", "Daily"), ("weekly", "Weekly")],
                mine.map_or("off", SummaryPeriod::as_str),
            ),
            error,
            notice,
        },
    )
}

/// A form's request, parsed and checked before anything is asked of `ops`.
enum Change {
    AddRule(RuleSpec),
    RemoveRule(RuleId),
    AddChannel {
        kind: ChannelKind,
        name: String,
        target: String,
        secret: String,
    },
    RemoveChannel(ChannelId),
    TestChannel(ChannelId),
    Summary(Option<SummaryPeriod>),
}

/// A field, trimmed; empty when absent.
fn text<'a>(form: &'a Form, name: &str) -> &'a str {
    form.get(name).unwrap_or("").trim()
}

/// At most 40 characters of what someone typed, to quote it back.
fn quoted(value: &str) -> String {
    let mut short: String = value.chars().take(40).collect();
    if short.len() < value.len() {
        short.push('…');
    }
    format!("{short:?}")
}

fn parse_id<T>(value: &str) -> Result<T, String>
where
    T: FromStr,
    T::Err: Display,
{
    value
        .parse()
        .map_err(|e: T::Err| format!("{e}; reload the page"))
}

/// A whole number typed into a number field (`what` names it in the message).
fn whole(value: &str, what: &str) -> Result<i64, String> {
    value.parse::<i64>().map_err(|_| {
        format!(
            "{what} is a whole number such as 10, not {}.",
            quoted(value)
        )
    })
}

const NO_TARGET: &str = "Give the channel's target: the URL the service gave you, or for email \
                         the addresses, comma-separated.";

fn parse_change(form: &Form) -> Result<Change, String> {
    match text(form, "action") {
        "add-rule" => parse_rule(form).map(Change::AddRule),
        "remove-rule" => parse_id(text(form, "rule")).map(Change::RemoveRule),
        "add-channel" => {
            let kind = ChannelKind::parse(text(form, "kind"))?;
            let target = text(form, "target");
            if target.is_empty() {
                return Err(NO_TARGET.into());
            }
            Ok(Change::AddChannel {
                kind,
                name: text(form, "name").to_string(),
                target: target.to_string(),
                secret: text(form, "secret").to_string(),
            })
        }
        "remove-channel" => parse_id(text(form, "channel")).map(Change::RemoveChannel),
        "test-channel" => parse_id(text(form, "channel")).map(Change::TestChannel),
        "summary" => match text(form, "every") {
            "off" => Ok(Change::Summary(None)),
            every => SummaryPeriod::parse(every).map(|p| Change::Summary(Some(p))),
        },
        other => Err(format!("unknown action {}; reload the page", quoted(other))),
    }
}

fn parse_rule(form: &Form) -> Result<RuleSpec, String> {
    let name = text(form, "trigger");
    // N and M belong to the threshold triggers only; the other triggers ignore what is typed.
    let (threshold, minutes) = match name {
        "frequency" | "users" => {
            let number = |field: &str, what: &str| match text(form, field) {
                "" => Ok(None),
                v => whole(v, what).map(Some),
            };
            (number("threshold", "N")?, number("minutes", "M")?)
        }
        _ => (None, None),
    };
    let trigger = Trigger::from_parts(name, threshold, minutes)?;
    let optional = |field: &str| Some(text(form, field).to_string()).filter(|v| !v.is_empty());
    let min_level = match text(form, "min_level") {
        "" | "any" => None,
        level => Some(level.to_string()),
    };
    let tags = Filters::parse_tags(text(form, "tags"))?;
    let channels = form
        .all("channel")
        .map(parse_id::<ChannelId>)
        .collect::<Result<Vec<_>, _>>()?;
    if channels.is_empty() {
        return Err(
            "Tick at least one channel to notify (add a channel below if there is none).".into(),
        );
    }
    let cooldown_ms = match text(form, "cooldown") {
        "" => 0,
        v => match whole(v, "The cooldown")? {
            m if m < 0 => return Err("The cooldown is 0 minutes or more.".into()),
            m => m
                .checked_mul(60_000)
                .ok_or("The cooldown is at most 90 days (129600 minutes).")?,
        },
    };
    Ok(RuleSpec {
        trigger,
        filters: Filters {
            environment: optional("environment"),
            release: optional("release"),
            min_level,
            tags,
        },
        channels,
        cooldown_ms,
    })
}

/// Whether a channel is one of the project's (ids in forms come from the page, but the page
/// may be old, or the form forged).
fn check_ours(channels: &[Channel], id: ChannelId) -> Result<(), OpsError> {
    if channels.iter().any(|c| c.id == id) {
        Ok(())
    } else {
        Err(OpsError::Invalid(format!(
            "Channel {id} is not one of this project's (any more); the lists below are current."
        )))
    }
}

fn apply(ops: &Ops, project: &Project, change: Change) -> Result<Done, OpsError> {
    let id = project.id.to_string();
    match change {
        Change::AddRule(spec) => {
            let channels = ops.channels(Some(&id))?;
            for c in &spec.channels {
                check_ours(&channels, *c)?;
            }
            ops.add_rule(&id, spec)?;
            Ok(Done::RuleAdded)
        }
        Change::RemoveRule(rule) => {
            if !ops.rules(Some(&id))?.iter().any(|r| r.id == rule) {
                return Err(OpsError::Invalid(
                    "That rule is not one of this project's (any more); the list below is current."
                        .into(),
                ));
            }
            ops.remove_rule(rule)?;
            Ok(Done::RuleRemoved)
        }
        Change::AddChannel {
            kind,
            name,
            target,
            secret,
        } => {
            let non_empty = |s: &String| !s.is_empty();
            let name = Some(name).filter(non_empty);
            let secret = Some(secret).filter(non_empty);
            let c = ops.add_channel(&id, kind, &target, name.as_deref(), secret.as_deref())?;
            Ok(Done::ChannelAdded(c.id))
        }
        Change::RemoveChannel(channel) => {
            check_ours(&ops.channels(Some(&id))?, channel)?;
            ops.remove_channel(channel)?;
            Ok(Done::ChannelRemoved)
        }
        Change::TestChannel(channel) => {
            check_ours(&ops.channels(Some(&id))?, channel)?;
            // Sent now, while the form waits: the error says what the receiver answered.
            ops.test_channel(channel)?;
            Ok(Done::TestSent(channel))
        }
        Change::Summary(period) => {
            ops.set_summary(&id, None, period)?;
            Ok(Done::SummarySet)
        }
    }
}

/// `POST /projects/{slug}/alerts/`: `action` = `add-rule` (`trigger`, `threshold` and
/// `minutes` for the threshold triggers, `environment`, `release`, `min_level`, `tags`, each
/// ticked `channel`, `cooldown` in minutes), `remove-rule` (`rule`), `add-channel` (`kind`,
/// `name`, `target`, `secret`), `remove-channel` or `test-channel` (`channel`).
pub async fn change(
    state: Shared,
    Path(slug): Path<String>,
    CheckedForm { viewer, form }: CheckedForm,
) -> Result<Response, UiError> {
    // A refused form is shown again with what was typed in it.
    let drafts = || match text(&form, "action") {
        "add-rule" => (RuleDraft::from_form(&form), ChannelDraft::default()),
        "add-channel" => (RuleDraft::default(), ChannelDraft::from_form(&form)),
        _ => (RuleDraft::default(), ChannelDraft::default()),
    };
    let change = match parse_change(&form) {
        Ok(change) => change,
        Err(error) => return render(state, viewer, slug, None, Some(error), drafts()).await,
    };
    let target = slug.clone();
    let outcome = blocking(viewer.ops(&state.0), move |ops| {
        let project = ops.find_project(&target)?;
        match apply(ops, &project, change) {
            Ok(done) => Ok(Ok((project.slug, done))),
            Err(OpsError::Invalid(m)) => Ok(Err(m)),
            Err(OpsError::Conflict(what)) => Ok(Err(format!("{what} already exists"))),
            Err(e) => Err(e.into()),
        }
    })
    .await?;
    match outcome {
        Ok((slug, done)) => Ok(Redirect::to(&format!(
            "/projects/{}/alerts/?{}",
            url_encode(&slug),
            done.query()
        ))
        .into_response()),
        Err(error) => render(state, viewer, slug, None, Some(error), drafts()).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(fields: &[(&str, &str)]) -> Form {
        Form(
            fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    /// A rule form with these fields over a valid new-issue rule on channel 3.
    fn rule(fields: &[(&str, &str)]) -> Result<RuleSpec, String> {
        let mut all = vec![
            ("action", "add-rule"),
            ("trigger", "new-issue"),
            ("channel", "3"),
            ("cooldown", "30"),
        ];
        for &(k, v) in fields {
            all.retain(|&(name, _)| name != k);
            all.push((k, v));
        }
        match parse_change(&form(&all))? {
            Change::AddRule(spec) => Ok(spec),
            _ => panic!("add-rule parses as a rule"),
        }
    }

    /// The message a refused rule form gets.
    fn refused(fields: &[(&str, &str)]) -> String {
        rule(fields).expect_err("refused")
    }

    #[test]
    fn a_rule_form_becomes_a_spec() {
        let spec = rule(&[
            ("trigger", "frequency"),
            ("threshold", "100"),
            ("minutes", "5"),
            ("environment", " production "),
            ("release", ""),
            ("min_level", "error"),
            ("tags", "team:payments, url:http://x"),
        ])
        .unwrap();
        assert!(matches!(
            spec.trigger,
            Trigger::Frequency {
                events: 100,
                minutes: 5
            }
        ));
        assert_eq!(spec.filters.environment.as_deref(), Some("production"));
        assert_eq!(spec.filters.release, None);
        assert_eq!(spec.filters.min_level.as_deref(), Some("error"));
        assert_eq!(
            spec.filters.tags,
            [
                ("team".to_string(), "payments".to_string()),
                ("url".to_string(), "http://x".to_string())
            ]
        );
        assert_eq!(spec.channels, [ChannelId(3)]);
        assert_eq!(spec.cooldown_ms, 30 * 60_000);

        // N and M typed for a trigger without them are ignored; "any" level is no filter.
        let spec = rule(&[("threshold", "7"), ("min_level", "any"), ("cooldown", "")]).unwrap();
        assert!(matches!(spec.trigger, Trigger::NewIssue));
        assert_eq!((spec.filters.min_level, spec.cooldown_ms), (None, 0));
        let spec = rule(&[("trigger", "users"), ("threshold", "3"), ("minutes", "60")]).unwrap();
        assert!(matches!(
            spec.trigger,
            Trigger::Users {
                users: 3,
                minutes: 60
            }
        ));
    }

    #[test]
    fn bad_rule_input_gets_a_message_that_says_what_to_fix() {
        let frequency = [("trigger", "frequency"), ("minutes", "5")];
        let msg = refused(&[frequency[0], frequency[1], ("threshold", "lots")]);
        assert!(
            msg.contains("whole number") && msg.contains("\"lots\""),
            "{msg}"
        );
        let msg = refused(&frequency);
        assert!(msg.contains("threshold"), "{msg}");
        let msg = refused(&[("tags", "team")]);
        assert!(msg.contains("key:value"), "{msg}");
        let msg = refused(&[("channel", "")]);
        assert!(msg.contains("channel"), "{msg}");
        let msg = refused(&[("cooldown", "-5")]);
        assert!(msg.contains("0 minutes or more"), "{msg}");
        let msg = refused(&[("cooldown", "99999999999999999")]);
        assert!(msg.contains("at most 90 days"), "{msg}");
        let msg = refused(&[("trigger", "sometimes")]);
        assert!(msg.contains("new-issue"), "{msg}");
        let all: Vec<(&str, &str)> = vec![("action", "add-rule"), ("trigger", "new-issue")];
        assert!(parse_change(&form(&all)).err().unwrap().contains("channel"));
    }

    #[test]
    fn channel_forms_name_their_kind_and_target() {
        let add = |kind: &str, target: &str| {
            parse_change(&form(&[
                ("action", "add-channel"),
                ("kind", kind),
                ("target", target),
                ("name", " ops "),
            ]))
        };
        match add("webhook", "http://127.0.0.1:9/hook") {
            Ok(Change::AddChannel { kind, name, .. }) => {
                assert_eq!((kind, name.as_str()), (ChannelKind::Webhook, "ops"))
            }
            _ => panic!("a webhook channel"),
        }
        assert!(add("pigeon", "x").err().unwrap().contains("webhook"));
        assert!(add("slack", " ").err().unwrap().contains("target"));
        let remove = parse_change(&form(&[("action", "remove-channel"), ("channel", "x")]));
        assert!(remove.err().unwrap().contains("reload the page"));
        let what = parse_change(&form(&[("action", "explode")]));
        assert!(what.err().unwrap().contains("unknown action"));
    }

    #[test]
    fn outcomes_survive_the_redirect_and_nothing_else_does() {
        for done in [
            Done::RuleAdded,
            Done::RuleRemoved,
            Done::ChannelAdded(ChannelId(4)),
            Done::ChannelRemoved,
            Done::TestSent(ChannelId(5)),
        ] {
            assert_eq!(Done::parse(&done.query()), Some(done));
        }
        assert_eq!(Done::parse("done=you-have-been-hacked"), None);
        assert_eq!(Done::parse("done=test-sent&channel=nope"), None);
        assert_eq!(Done::parse(""), None);
    }

    #[test]
    fn cooldowns_read_naturally() {
        assert_eq!(duration_words(0), "none");
        assert_eq!(duration_words(60_000), "1 minute");
        assert_eq!(duration_words(30 * 60_000), "30 minutes");
        assert_eq!(duration_words(2 * 3_600_000), "2 hours");
        assert_eq!(duration_words(86_400_000), "1 day");
        assert_eq!(duration_words(90_000), "90 seconds");
    }

    #[test]
    fn every_channel_kind_is_offered_once() {
        let mut names: Vec<&str> = KINDS.iter().map(|k| k.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), KINDS.len());
        for name in names {
            assert!(ChannelKind::parse(name).is_ok(), "{name}");
        }
    }
}
