//! Alerts: rules that turn domain events into notifications, the channels they go to, and the
//! outbox entries that carry each notification to each channel. The decisions are here and pure
//! (which rule fires for which event, cooldowns, retry backoff, what a webhook body says);
//! storage keeps them and `crate::alerts` delivers.

pub use super::ids::{AlertId, ChannelId, RuleId};
use super::ids::{IssueId, ProjectId};
use super::rules::{IssueEvent, RecordedEvent};

/// Where notifications go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChannelKind {
    /// An HTTP POST of a JSON body, signed when the channel has a secret.
    Webhook,
    /// A message through the configured SMTP server to one or more addresses.
    Email,
    /// A Slack incoming webhook.
    Slack,
    /// A Discord channel webhook.
    Discord,
    /// A Google Chat space webhook.
    GoogleChat,
    /// A Microsoft Teams workflow ("Post to a channel when a webhook request is received").
    Teams,
    /// An ntfy topic URL (ntfy.sh or your own server).
    Ntfy,
    /// A Telegram bot's sendMessage URL with the chat: `…/bot<token>/sendMessage?chat_id=<id>`.
    Telegram,
    /// PagerDuty Events v2: `https://events.pagerduty.com/v2/enqueue?routing_key=<key>`.
    PagerDuty,
}

impl ChannelKind {
    /// Name in the database, the CLI and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Webhook => "webhook",
            ChannelKind::Email => "email",
            ChannelKind::Slack => "slack",
            ChannelKind::Discord => "discord",
            ChannelKind::GoogleChat => "google-chat",
            ChannelKind::Teams => "teams",
            ChannelKind::Ntfy => "ntfy",
            ChannelKind::Telegram => "telegram",
            ChannelKind::PagerDuty => "pagerduty",
        }
    }

    /// Parses a name; the error lists the kinds there are.
    pub fn parse(s: &str) -> Result<ChannelKind, String> {
        match s {
            "webhook" => Ok(ChannelKind::Webhook),
            "email" => Ok(ChannelKind::Email),
            "slack" => Ok(ChannelKind::Slack),
            "discord" => Ok(ChannelKind::Discord),
            "google-chat" => Ok(ChannelKind::GoogleChat),
            "teams" => Ok(ChannelKind::Teams),
            "ntfy" => Ok(ChannelKind::Ntfy),
            "telegram" => Ok(ChannelKind::Telegram),
            "pagerduty" => Ok(ChannelKind::PagerDuty),
            other => Err(format!(
                "unknown channel kind {other:?}: use webhook, email, slack, discord, google-chat, teams, ntfy, telegram or pagerduty"
            )),
        }
    }
}

/// A configured destination of one project's notifications.
#[derive(Debug, Clone, PartialEq)]
pub struct Channel {
    /// Id.
    pub id: ChannelId,
    /// Project whose alerts it receives.
    pub project_id: ProjectId,
    /// How it is reached.
    pub kind: ChannelKind,
    /// What people call it.
    pub name: String,
    /// The URL (webhook, chat services), or the addresses, comma-separated, or [`MEMBERS`]
    /// (email).
    pub target: String,
    /// Signs webhook bodies when set; never shown once stored.
    pub secret: Option<String>,
    /// Created, ms.
    pub created_ms: i64,
}

/// An email channel's target that stands for the active members of the project's organization
/// (their addresses as they are when a notification is sent).
pub const MEMBERS: &str = "members";

impl Channel {
    /// The target as the API and the dashboard show it: an email channel's addresses, or a
    /// URL's scheme and host only, with its query's names. Chat and on-call URLs carry their
    /// credentials in the path or the query (Slack's and Discord's tokens, a Telegram bot's
    /// token, a PagerDuty routing key, an ntfy topic), so only the server's own CLI sees them.
    pub fn shown_target(&self) -> String {
        if self.kind == ChannelKind::Email {
            return self.target.clone();
        }
        let (scheme, rest) = match self.target.split_once("://") {
            Some(parts) => parts,
            None => return "…".into(),
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let host = rest[..end].rsplit('@').next().unwrap_or("");
        let (path, query) = match rest[end..].split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (&rest[end..], None),
        };
        let mut shown = format!("{scheme}://{host}/");
        if !path.trim_matches('/').is_empty() {
            shown.push('…');
        }
        if let Some(q) = query {
            let names: Vec<String> = q
                .split('&')
                .filter_map(|pair| pair.split('=').next())
                .filter(|name| !name.is_empty())
                .map(|name| format!("{name}=…"))
                .collect();
            if !names.is_empty() {
                shown.push('?');
                shown.push_str(&names.join("&"));
            }
        }
        shown
    }
}

/// What makes a rule fire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Trigger {
    /// A new issue appears.
    NewIssue,
    /// A resolved issue receives an event.
    Regression,
    /// An ignored issue's condition ran out.
    Unignored,
    /// An issue receives at least `events` events within `minutes`.
    Frequency {
        /// Events in the window.
        events: i64,
        /// The window, minutes.
        minutes: i64,
    },
    /// At least `users` distinct users meet an issue within `minutes`.
    Users {
        /// Distinct users in the window.
        users: i64,
        /// The window, minutes.
        minutes: i64,
    },
}

/// The longest window a threshold trigger looks back over: a day, as long as per-minute counts
/// are kept.
pub const MAX_WINDOW_MINUTES: i64 = 1440;

/// The trigger names, for help texts and errors.
pub const TRIGGER_NAMES: &str = "new-issue, regression, unignored, frequency or users";

impl Trigger {
    /// Name in the database, the CLI and the API.
    pub fn as_str(&self) -> &'static str {
        match self {
            Trigger::NewIssue => "new-issue",
            Trigger::Regression => "regression",
            Trigger::Unignored => "unignored",
            Trigger::Frequency { .. } => "frequency",
            Trigger::Users { .. } => "users",
        }
    }

    /// Builds a trigger from its name and, for the threshold triggers, the count and window;
    /// the error says what is missing or out of range.
    pub fn from_parts(
        name: &str,
        threshold: Option<i64>,
        minutes: Option<i64>,
    ) -> Result<Trigger, String> {
        let simple = match name {
            "new-issue" => Some(Trigger::NewIssue),
            "regression" => Some(Trigger::Regression),
            "unignored" => Some(Trigger::Unignored),
            "frequency" | "users" => None,
            other => return Err(format!("unknown trigger {other:?}: use {TRIGGER_NAMES}")),
        };
        if let Some(t) = simple {
            return match (threshold, minutes) {
                (None, None) => Ok(t),
                _ => Err(format!("a {name} rule takes no threshold or window")),
            };
        }
        let (Some(n), Some(m)) = (threshold, minutes) else {
            return Err(format!(
                "a {name} rule needs a threshold and a window: how many {} within how many minutes",
                if name == "users" { "users" } else { "events" }
            ));
        };
        if n < 1 {
            return Err("a threshold is at least 1".into());
        }
        if !(1..=MAX_WINDOW_MINUTES).contains(&m) {
            return Err(format!(
                "a window is 1 to {MAX_WINDOW_MINUTES} minutes (one day)"
            ));
        }
        Ok(match name {
            "users" => Trigger::Users {
                users: n,
                minutes: m,
            },
            _ => Trigger::Frequency {
                events: n,
                minutes: m,
            },
        })
    }

    /// The threshold and window of a threshold trigger.
    pub fn threshold(&self) -> Option<(i64, i64)> {
        match *self {
            Trigger::Frequency { events, minutes } => Some((events, minutes)),
            Trigger::Users { users, minutes } => Some((users, minutes)),
            _ => None,
        }
    }

    /// Whether a domain event is one this trigger fires on (threshold triggers fire on counts,
    /// see [`fire_thresholds`]).
    pub fn fires_on(&self, what: &IssueEvent) -> bool {
        matches!(
            (self, what),
            (Trigger::NewIssue, IssueEvent::Created)
                | (Trigger::Regression, IssueEvent::Regressed { .. })
                | (Trigger::Unignored, IssueEvent::Unignored)
        )
    }
}

/// Event levels from the least to the most severe.
pub const LEVELS: [&str; 5] = ["debug", "info", "warning", "error", "fatal"];

fn level_rank(level: &str) -> Option<usize> {
    LEVELS.iter().position(|l| *l == level)
}

/// Which events a rule cares about; every condition set must hold (none set: every event).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters {
    /// The event's environment is this.
    pub environment: Option<String>,
    /// The event's release is this.
    pub release: Option<String>,
    /// The event's level is this or more severe (one of [`LEVELS`]).
    pub min_level: Option<String>,
    /// The event carries each of these tag values.
    pub tags: Vec<(String, String)>,
}

impl Filters {
    /// Checks the names in the filters; the error says which is wrong.
    pub fn check(&self) -> Result<(), String> {
        if let Some(l) = &self.min_level {
            if level_rank(l).is_none() {
                return Err(format!(
                    "unknown level {l:?}: use debug, info, warning, error or fatal"
                ));
            }
        }
        if self.tags.iter().any(|(k, _)| k.trim().is_empty()) {
            return Err("a tag filter is key:value with a key".into());
        }
        Ok(())
    }

    /// Parses `key:value` pairs separated by commas (`browser:Chrome 120, region:eu`).
    pub fn parse_tags(s: &str) -> Result<Vec<(String, String)>, String> {
        s.split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| {
                p.split_once(':')
                    .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                    .filter(|(k, _)| !k.is_empty())
                    .ok_or_else(|| format!("{p:?} is not a tag filter: write key:value"))
            })
            .collect()
    }

    /// Whether an event with these facts passes.
    pub fn admit(&self, facts: &Facts) -> bool {
        let tag = |key: &str| facts.tags.iter().find(|(k, _)| k == key).map(|(_, v)| v);
        let equal =
            |want: &Option<String>, key: &str| want.as_ref().is_none_or(|w| tag(key) == Some(w));
        let severe = self.min_level.as_deref().is_none_or(|min| {
            matches!((level_rank(&facts.level), level_rank(min)), (Some(l), Some(m)) if l >= m)
        });
        equal(&self.environment, "environment")
            && equal(&self.release, "release")
            && severe
            && self
                .tags
                .iter()
                .all(|(k, v)| facts.tags.iter().any(|(fk, fv)| fk == k && fv == v))
    }

    /// The filters as stored.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "environment": self.environment,
            "release": self.release,
            "min_level": self.min_level,
            "tags": self.tags,
        })
    }

    /// Reads stored filters; what is missing is no condition.
    pub fn from_json(v: &serde_json::Value) -> Filters {
        let text = |key: &str| v[key].as_str().map(str::to_string);
        Filters {
            environment: text("environment"),
            release: text("release"),
            min_level: text("min_level"),
            tags: v["tags"]
                .as_array()
                .map(|pairs| {
                    pairs
                        .iter()
                        .filter_map(|p| {
                            Some((p[0].as_str()?.to_string(), p[1].as_str()?.to_string()))
                        })
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// Words for the conditions, empty when there are none.
    fn describe(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(e) = &self.environment {
            out.push(format!("environment = {e}"));
        }
        if let Some(r) = &self.release {
            out.push(format!("release = {r}"));
        }
        if let Some(l) = &self.min_level {
            out.push(format!("level ≥ {l}"));
        }
        out.extend(self.tags.iter().map(|(k, v)| format!("{k} = {v}")));
        out
    }
}

/// What rule filters look at in the event behind a notification: its level and tags (which
/// include `environment` and `release`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// `error`, `warning` ...
    pub level: String,
    /// Tag values, as the event was digested.
    pub tags: Vec<(String, String)>,
}

impl Facts {
    /// The facts as stored.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({ "level": self.level, "tags": self.tags })
    }

    /// Reads stored facts, or a stored event's normalized payload (`level`, `tags` as pairs or
    /// an object, `environment`, `release`); what is missing stays empty.
    pub fn from_json(v: &serde_json::Value) -> Facts {
        let mut tags: Vec<(String, String)> = match &v["tags"] {
            serde_json::Value::Array(pairs) => pairs
                .iter()
                .filter_map(|p| Some((p[0].as_str()?.to_string(), p[1].as_str()?.to_string())))
                .collect(),
            serde_json::Value::Object(map) => map
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect(),
            _ => Vec::new(),
        };
        for key in ["environment", "release"] {
            if let Some(value) = v[key].as_str() {
                if !tags.iter().any(|(k, _)| k == key) {
                    tags.push((key.to_string(), value.to_string()));
                }
            }
        }
        Facts {
            level: v["level"].as_str().unwrap_or_default().to_string(),
            tags,
        }
    }
}

/// A rule: when `trigger` fires in `project_id` for an event that passes `filters`, notify
/// `channels`, at most once per issue per `cooldown_ms`.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Id.
    pub id: RuleId,
    /// Project it watches.
    pub project_id: ProjectId,
    /// What makes it fire.
    pub trigger: Trigger,
    /// Which events count.
    pub filters: Filters,
    /// Where its notifications go.
    pub channels: Vec<ChannelId>,
    /// Quiet time per issue after it fired, ms (0: none).
    pub cooldown_ms: i64,
    /// Created, ms.
    pub created_ms: i64,
}

impl Rule {
    /// What the rule does, in words: `New issue · environment = production · level ≥ error`.
    pub fn describe(&self) -> String {
        let what = match self.trigger {
            Trigger::NewIssue => "New issue".to_string(),
            Trigger::Regression => "Regression".to_string(),
            Trigger::Unignored => "Ignored issue is back".to_string(),
            Trigger::Frequency { events, minutes } => {
                format!("{events} or more events in {}", minutes_text(minutes))
            }
            Trigger::Users { users, minutes } => {
                format!("{users} or more users in {}", minutes_text(minutes))
            }
        };
        std::iter::once(what)
            .chain(self.filters.describe())
            .collect::<Vec<_>>()
            .join(" · ")
    }

    /// Quiet time after firing for an issue: a threshold rule stays quiet at least for its
    /// window, so one spike is one notification.
    pub fn quiet_ms(&self) -> i64 {
        let window = self.trigger.threshold().map_or(0, |(_, m)| m * 60_000);
        self.cooldown_ms.max(window)
    }
}

fn minutes_text(minutes: i64) -> String {
    match minutes {
        1 => "1 minute".into(),
        m if m % 60 == 0 && m > 60 => format!("{} hours", m / 60),
        60 => "1 hour".into(),
        m => format!("{m} minutes"),
    }
}

/// What a new rule is made of.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleSpec {
    /// What makes it fire.
    pub trigger: Trigger,
    /// Which events count.
    pub filters: Filters,
    /// Where its notifications go (channels of the same project).
    pub channels: Vec<ChannelId>,
    /// Quiet time per issue after it fired, ms.
    pub cooldown_ms: i64,
}

/// A notification to write to the outbox: one rule, one event, one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAlert {
    /// The rule that fired.
    pub rule_id: RuleId,
    /// Where it goes.
    pub channel_id: ChannelId,
    /// Project.
    pub project_id: ProjectId,
    /// The issue it is about.
    pub issue_id: IssueId,
    /// The domain event that caused it.
    pub event_id: i64,
    /// What happened, as the domain event said.
    pub what: IssueEvent,
}

/// Where a notification stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertState {
    /// Waiting for its (next) delivery attempt.
    Pending,
    /// Delivered.
    Sent,
    /// Given up after [`MAX_ATTEMPTS`] attempts.
    Failed,
}

impl AlertState {
    /// Name in the database and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Pending => "pending",
            AlertState::Sent => "sent",
            AlertState::Failed => "failed",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<AlertState> {
        match s {
            "pending" => Some(AlertState::Pending),
            "sent" => Some(AlertState::Sent),
            "failed" => Some(AlertState::Failed),
            _ => None,
        }
    }
}

/// A notification in the outbox, with its delivery history.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// Id (receivers deduplicate by it).
    pub id: AlertId,
    /// What it is.
    pub alert: NewAlert,
    /// Where it stands.
    pub state: AlertState,
    /// Delivery attempts made.
    pub attempts: u32,
    /// When the next attempt is due, ms.
    pub next_attempt_ms: i64,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// Written to the outbox, ms.
    pub created_ms: i64,
    /// Delivered, ms.
    pub sent_ms: Option<i64>,
}

/// Attempts before a notification is given up: with [`retry_delay_ms`] about a day of trying,
/// so a receiver down overnight still gets what happened.
pub const MAX_ATTEMPTS: u32 = 30;

/// How long to wait after failed attempt number `attempts` (1-based): 5 s, doubling, at most an
/// hour, so a receiver that is down for a minute gets the notification soon after it is back.
pub fn retry_delay_ms(attempts: u32) -> i64 {
    let exponent = attempts.saturating_sub(1).min(20);
    (5_000i64 << exponent).min(3_600_000)
}

/// What to send for one batch of domain events: for each event, each rule of its project that
/// fires on it, admits its facts, and whose quiet time for the issue has run out, one
/// notification per channel. `last_fired(rule, issue)` says when a rule last fired for an issue.
pub fn fire(
    events: &[RecordedEvent],
    rules: &[Rule],
    last_fired: impl Fn(RuleId, IssueId) -> Option<i64>,
) -> Vec<NewAlert> {
    let mut out = Vec::new();
    // Firings of this batch count for the cooldown too.
    let mut fired: Vec<(RuleId, IssueId, i64)> = Vec::new();
    for e in events {
        for rule in rules.iter().filter(|r| {
            r.project_id == e.project_id && r.trigger.fires_on(&e.what) && r.filters.admit(&e.facts)
        }) {
            let previous = fired
                .iter()
                .filter(|(r, i, _)| *r == rule.id && *i == e.issue_id)
                .map(|(_, _, at)| *at)
                .max()
                .or_else(|| last_fired(rule.id, e.issue_id));
            if previous.is_some_and(|at| e.created_ms < at + rule.quiet_ms()) {
                continue;
            }
            fired.push((rule.id, e.issue_id, e.created_ms));
            out.extend(rule.channels.iter().map(|channel_id| NewAlert {
                rule_id: rule.id,
                channel_id: *channel_id,
                project_id: e.project_id,
                issue_id: e.issue_id,
                event_id: e.id,
                what: e.what.clone(),
            }));
        }
    }
    out
}

/// On-call incidents to close: for each resolved issue, one notification to each on-call
/// channel that was told of it. `paged(issue)` lists the (rule, channel) pairs that notified an
/// on-call channel about the issue.
pub fn close_incidents(
    events: &[RecordedEvent],
    paged: impl Fn(IssueId) -> Vec<(RuleId, ChannelId)>,
) -> Vec<NewAlert> {
    let mut out: Vec<NewAlert> = Vec::new();
    for e in events.iter().filter(|e| e.what == IssueEvent::Resolved) {
        for (rule_id, channel_id) in paged(e.issue_id) {
            let repeat = out
                .iter()
                .any(|a| a.event_id == e.id && a.channel_id == channel_id);
            if !repeat {
                out.push(NewAlert {
                    rule_id,
                    channel_id,
                    project_id: e.project_id,
                    issue_id: e.issue_id,
                    event_id: e.id,
                    what: IssueEvent::Resolved,
                });
            }
        }
    }
    out
}

/// An issue over a threshold rule's count within its window, with the facts of its newest event.
#[derive(Debug, Clone, PartialEq)]
pub struct OverThreshold {
    /// The issue.
    pub issue_id: IssueId,
    /// Events (or distinct users) within the window.
    pub count: i64,
    /// What the issue's newest stored event says (for the rule's filters).
    pub facts: Facts,
}

/// What to send for a threshold rule at `now_ms`: each issue over it whose newest event passes
/// the filters and that the rule has not fired for within its quiet time. Notifications about
/// counts come from no domain event: their `event_id` is 0.
pub fn fire_thresholds(
    rule: &Rule,
    over: &[OverThreshold],
    now_ms: i64,
    last_fired: impl Fn(RuleId, IssueId) -> Option<i64>,
) -> Vec<NewAlert> {
    let Some((_, minutes)) = rule.trigger.threshold() else {
        return Vec::new();
    };
    over.iter()
        .filter(|o| rule.filters.admit(&o.facts))
        .filter(|o| last_fired(rule.id, o.issue_id).is_none_or(|at| now_ms >= at + rule.quiet_ms()))
        .flat_map(|o| {
            let what = match rule.trigger {
                Trigger::Users { .. } => IssueEvent::ManyUsers {
                    users: o.count,
                    minutes,
                },
                _ => IssueEvent::Frequent {
                    events: o.count,
                    minutes,
                },
            };
            rule.channels.iter().map(move |channel_id| NewAlert {
                rule_id: rule.id,
                channel_id: *channel_id,
                project_id: rule.project_id,
                issue_id: o.issue_id,
                event_id: 0,
                what: what.clone(),
            })
        })
        .collect()
}

/// Orders a storm digest's issues the worst first: the most events, then the most users.
pub fn worst_first(items: &mut [(&Alert, super::Issue)]) {
    items.sort_by_key(|(_, i)| std::cmp::Reverse((i.times_seen, i.user_count)));
}

/// Words for what happened, for a message's headline.
pub fn headline(what: &IssueEvent) -> String {
    match what {
        IssueEvent::Created => "New issue".into(),
        IssueEvent::Regressed { release: Some(r) } => format!("Regression in {r}"),
        IssueEvent::Regressed { release: None } => "Regression".into(),
        IssueEvent::Unignored => "Ignored issue is back".into(),
        IssueEvent::PassedCount(n) => format!("Issue passed {n} events"),
        IssueEvent::Resolved => "Resolved".into(),
        IssueEvent::Frequent { events, minutes } => {
            format!("{events} events in {}", minutes_text(*minutes))
        }
        IssueEvent::ManyUsers { users, minutes } => {
            format!("{users} users in {}", minutes_text(*minutes))
        }
    }
}

/// How often a summary email goes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SummaryPeriod {
    /// Every 24 hours.
    Daily,
    /// Every 7 days.
    Weekly,
}

impl SummaryPeriod {
    /// Name in the database, the CLI and the forms.
    pub fn as_str(self) -> &'static str {
        match self {
            SummaryPeriod::Daily => "daily",
            SummaryPeriod::Weekly => "weekly",
        }
    }

    /// Parses a name; the error lists the periods there are.
    pub fn parse(s: &str) -> Result<SummaryPeriod, String> {
        match s {
            "daily" => Ok(SummaryPeriod::Daily),
            "weekly" => Ok(SummaryPeriod::Weekly),
            other => Err(format!("unknown period {other:?}: use daily or weekly")),
        }
    }

    /// Its length, ms.
    pub fn ms(self) -> i64 {
        match self {
            SummaryPeriod::Daily => 86_400_000,
            SummaryPeriod::Weekly => 7 * 86_400_000,
        }
    }

    /// "day" or "week", for subjects.
    pub fn noun(self) -> &'static str {
        match self {
            SummaryPeriod::Daily => "day",
            SummaryPeriod::Weekly => "week",
        }
    }
}

/// Someone's summary email of one project's new and regressed issues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Who gets it.
    pub user_id: super::UserId,
    /// Which project it covers.
    pub project_id: ProjectId,
    /// How often.
    pub period: SummaryPeriod,
    /// The end of the last period it covered (or when it was set up), ms.
    pub last_sent_ms: i64,
}

impl Summary {
    /// Whether the next summary is due at `now_ms`.
    pub fn is_due(&self, now_ms: i64) -> bool {
        now_ms >= self.last_sent_ms + self.period.ms()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: i64, issue: i64, what: IssueEvent, at: i64) -> RecordedEvent {
        RecordedEvent {
            id,
            project_id: ProjectId(1),
            issue_id: IssueId(issue),
            what,
            facts: Facts {
                level: "error".into(),
                tags: vec![("environment".into(), "production".into())],
            },
            created_ms: at,
        }
    }

    fn rule(id: i64, trigger: Trigger, cooldown_ms: i64) -> Rule {
        Rule {
            id: RuleId(id),
            project_id: ProjectId(1),
            trigger,
            filters: Filters::default(),
            channels: vec![ChannelId(10), ChannelId(11)],
            cooldown_ms,
            created_ms: 0,
        }
    }

    #[test]
    fn rules_fire_on_their_trigger_to_each_channel_of_their_project() {
        let events = [
            event(1, 7, IssueEvent::Created, 1_000),
            event(2, 8, IssueEvent::Regressed { release: None }, 1_000),
            event(3, 9, IssueEvent::PassedCount(10), 1_000),
        ];
        let mut other_project = rule(3, Trigger::NewIssue, 0);
        other_project.project_id = ProjectId(2);
        let rules = [
            rule(1, Trigger::NewIssue, 0),
            rule(2, Trigger::Unignored, 0),
            other_project,
        ];
        let out = fire(&events, &rules, |_, _| None);
        let got: Vec<(i64, i64, i64)> = out
            .iter()
            .map(|a| (a.rule_id.0, a.channel_id.0, a.issue_id.0))
            .collect();
        assert_eq!(got, vec![(1, 10, 7), (1, 11, 7)]);
        assert_eq!(out[0].event_id, 1);
    }

    #[test]
    fn a_cooldown_keeps_a_rule_quiet_per_issue() {
        let r = [rule(1, Trigger::Regression, 60_000)];
        let back = |id, issue, at| event(id, issue, IssueEvent::Regressed { release: None }, at);
        // Fired 30 s ago for issue 7: quiet; issue 8 was never alerted.
        let out = fire(&[back(1, 7, 100_000), back(2, 8, 100_000)], &r, |_, i| {
            (i == IssueId(7)).then_some(70_000)
        });
        assert_eq!(out.iter().map(|a| a.issue_id.0).collect::<Vec<_>>(), [8, 8]);
        // Within one batch: the second regression of issue 8 is inside the first one's cooldown.
        let out = fire(
            &[back(1, 8, 0), back(2, 8, 59_999), back(3, 8, 60_000)],
            &r,
            |_, _| None,
        );
        assert_eq!(
            out.iter().map(|a| a.event_id).collect::<Vec<_>>(),
            [1, 1, 3, 3]
        );
    }

    #[test]
    fn retries_back_off_from_seconds_to_an_hour() {
        let delays: Vec<i64> = (1..=MAX_ATTEMPTS).map(retry_delay_ms).collect();
        assert_eq!(&delays[..4], &[5_000, 10_000, 20_000, 40_000]);
        assert_eq!(*delays.last().unwrap(), 3_600_000);
        assert!(
            delays.iter().sum::<i64>() > 6 * 3_600_000,
            "about a day of trying"
        );
    }

    #[test]
    fn a_digest_lists_the_issue_with_the_most_events_then_users_first() {
        let alert = Alert {
            id: AlertId(1),
            alert: NewAlert {
                rule_id: RuleId(1),
                channel_id: ChannelId(1),
                project_id: ProjectId(1),
                issue_id: IssueId(1),
                event_id: 1,
                what: IssueEvent::Created,
            },
            state: AlertState::Pending,
            attempts: 0,
            next_attempt_ms: 0,
            last_error: None,
            created_ms: 0,
            sent_ms: None,
        };
        let issue = |id: i64, times_seen: i64, user_count: i64| crate::domain::Issue {
            id: IssueId(id),
            times_seen,
            user_count,
            ..crate::domain::Issue::for_test()
        };
        let mut items = vec![
            (&alert, issue(1, 1, 1)),
            (&alert, issue(2, 5, 1)),
            (&alert, issue(3, 5, 3)),
        ];
        worst_first(&mut items);
        let order: Vec<i64> = items.iter().map(|(_, i)| i.id.0).collect();
        assert_eq!(order, [3, 2, 1]);
    }

    #[test]
    fn names_read_back() {
        for t in [Trigger::NewIssue, Trigger::Regression, Trigger::Unignored] {
            assert_eq!(Trigger::from_parts(t.as_str(), None, None), Ok(t));
        }
        for t in [
            Trigger::Frequency {
                events: 100,
                minutes: 5,
            },
            Trigger::Users {
                users: 10,
                minutes: 60,
            },
        ] {
            let (n, m) = t.threshold().unwrap();
            assert_eq!(Trigger::from_parts(t.as_str(), Some(n), Some(m)), Ok(t));
        }
        assert!(Trigger::from_parts("sometimes", None, None)
            .unwrap_err()
            .contains("new-issue"));
        assert!(Trigger::from_parts("frequency", Some(5), None)
            .unwrap_err()
            .contains("window"));
        assert!(Trigger::from_parts("users", Some(5), Some(1441)).is_err());
        assert!(Trigger::from_parts("users", Some(0), Some(5)).is_err());
        assert!(Trigger::from_parts("new-issue", Some(5), None).is_err());
        assert_eq!(ChannelKind::parse("webhook"), Ok(ChannelKind::Webhook));
        for kind in [
            "webhook",
            "email",
            "slack",
            "discord",
            "google-chat",
            "teams",
            "ntfy",
            "telegram",
            "pagerduty",
        ] {
            assert_eq!(ChannelKind::parse(kind).map(ChannelKind::as_str), Ok(kind));
        }
        for s in [AlertState::Pending, AlertState::Sent, AlertState::Failed] {
            assert_eq!(AlertState::parse(s.as_str()), Some(s));
        }
    }

    #[test]
    fn filters_admit_events_by_environment_release_level_and_tags() {
        let facts = Facts {
            level: "warning".into(),
            tags: vec![
                ("environment".into(), "production".into()),
                ("release".into(), "web@2".into()),
                ("region".into(), "eu".into()),
            ],
        };
        let admits = |f: Filters| f.admit(&facts);
        assert!(admits(Filters::default()));
        assert!(admits(Filters {
            environment: Some("production".into()),
            release: Some("web@2".into()),
            min_level: Some("warning".into()),
            tags: vec![("region".into(), "eu".into())],
        }));
        assert!(!admits(Filters {
            environment: Some("staging".into()),
            ..Filters::default()
        }));
        assert!(!admits(Filters {
            min_level: Some("error".into()),
            ..Filters::default()
        }));
        assert!(admits(Filters {
            min_level: Some("info".into()),
            ..Filters::default()
        }));
        assert!(!admits(Filters {
            tags: vec![("region".into(), "us".into())],
            ..Filters::default()
        }));
        assert!(!admits(Filters {
            release: Some("web@1".into()),
            ..Filters::default()
        }));
        // An event without an environment fails an environment filter.
        assert!(!Filters {
            environment: Some("production".into()),
            ..Filters::default()
        }
        .admit(&Facts::default()));
        assert!(Filters {
            min_level: Some("loud".into()),
            ..Filters::default()
        }
        .check()
        .is_err());
        assert_eq!(
            Filters::parse_tags("region:eu, browser: Chrome 120"),
            Ok(vec![
                ("region".into(), "eu".into()),
                ("browser".into(), "Chrome 120".into())
            ])
        );
        assert!(Filters::parse_tags("region").is_err());
        let f = Filters {
            environment: Some("production".into()),
            release: None,
            min_level: Some("error".into()),
            tags: vec![("a".into(), "b".into())],
        };
        assert_eq!(Filters::from_json(&f.to_json()), f);
    }

    #[test]
    fn a_rule_skips_events_its_filters_refuse() {
        let mut r = rule(1, Trigger::NewIssue, 0);
        r.filters.environment = Some("staging".into());
        assert!(fire(&[event(1, 7, IssueEvent::Created, 0)], &[r], |_, _| None).is_empty());
    }

    #[test]
    fn facts_read_stored_payloads_and_stored_facts() {
        let payload = serde_json::json!({
            "level": "fatal", "environment": "prod", "release": "r1",
            "tags": [["zone", "eu"], ["release", "r1"]],
        });
        let f = Facts::from_json(&payload);
        assert_eq!(f.level, "fatal");
        assert!(f.tags.contains(&("environment".into(), "prod".into())));
        assert_eq!(f.tags.iter().filter(|(k, _)| k == "release").count(), 1);
        assert_eq!(Facts::from_json(&f.to_json()), f);
    }

    #[test]
    fn threshold_rules_fire_once_per_window_for_each_issue_over_them() {
        let r = rule(
            1,
            Trigger::Frequency {
                events: 100,
                minutes: 5,
            },
            0,
        );
        assert_eq!(r.quiet_ms(), 300_000, "quiet at least for the window");
        assert_eq!(r.describe(), "100 or more events in 5 minutes");
        let over = [
            OverThreshold {
                issue_id: IssueId(7),
                count: 120,
                facts: Facts::default(),
            },
            OverThreshold {
                issue_id: IssueId(8),
                count: 100,
                facts: Facts::default(),
            },
        ];
        // Issue 8 fired two minutes ago: still quiet.
        let out = fire_thresholds(&r, &over, 1_000_000, |_, i| {
            (i == IssueId(8)).then_some(880_000)
        });
        assert_eq!(out.len(), 2, "issue 7 to both channels");
        assert_eq!(
            out[0].what,
            IssueEvent::Frequent {
                events: 120,
                minutes: 5
            }
        );
        assert_eq!(out[0].event_id, 0);
        let mut users = rule(
            2,
            Trigger::Users {
                users: 10,
                minutes: 60,
            },
            2 * 3_600_000,
        );
        assert_eq!(users.quiet_ms(), 2 * 3_600_000, "a longer cooldown wins");
        users.filters.min_level = Some("error".into());
        assert_eq!(
            users.describe(),
            "10 or more users in 1 hour · level ≥ error"
        );
        assert!(
            fire_thresholds(&users, &over, 0, |_, _| None).is_empty(),
            "no facts, no level"
        );
        assert!(fire_thresholds(&rule(3, Trigger::NewIssue, 0), &over, 0, |_, _| None).is_empty());
    }

    #[test]
    fn resolving_an_issue_closes_the_incidents_of_the_on_call_channels_told_of_it() {
        let events = [
            event(1, 7, IssueEvent::Resolved, 0),
            event(2, 8, IssueEvent::Resolved, 0),
            event(3, 7, IssueEvent::Created, 0),
        ];
        let out = close_incidents(&events, |issue| match issue.0 {
            7 => vec![
                (RuleId(1), ChannelId(5)),
                (RuleId(2), ChannelId(5)),
                (RuleId(1), ChannelId(6)),
            ],
            _ => vec![],
        });
        let got: Vec<(i64, i64, i64)> = out
            .iter()
            .map(|a| (a.issue_id.0, a.channel_id.0, a.rule_id.0))
            .collect();
        assert_eq!(got, [(7, 5, 1), (7, 6, 1)], "one per channel");
        assert!(out
            .iter()
            .all(|a| a.what == IssueEvent::Resolved && a.event_id == 1));
    }

    #[test]
    fn summaries_come_due_a_period_after_the_last_one() {
        let s = Summary {
            user_id: crate::domain::UserId(1),
            project_id: ProjectId(1),
            period: SummaryPeriod::Daily,
            last_sent_ms: 1_000,
        };
        assert!(!s.is_due(1_000 + 86_399_999));
        assert!(s.is_due(1_000 + 86_400_000));
        let weekly = Summary {
            period: SummaryPeriod::Weekly,
            ..s
        };
        assert!(!weekly.is_due(1_000 + 86_400_000));
        for p in [SummaryPeriod::Daily, SummaryPeriod::Weekly] {
            assert_eq!(SummaryPeriod::parse(p.as_str()), Ok(p));
        }
        assert!(SummaryPeriod::parse("hourly")
            .unwrap_err()
            .contains("weekly"));
    }

    #[test]
    fn shown_targets_keep_credentials_out() {
        let channel = |kind, target: &str| Channel {
            id: ChannelId(1),
            project_id: ProjectId(1),
            kind,
            name: "x".into(),
            target: target.into(),
            secret: None,
            created_ms: 0,
        };
        let shown = |kind, target: &str| channel(kind, target).shown_target();
        assert_eq!(
            shown(
                ChannelKind::Slack,
                "https://hooks.slack.com/services/T0/B0/XYZ"
            ),
            "https://hooks.slack.com/…"
        );
        assert_eq!(
            shown(
                ChannelKind::PagerDuty,
                "https://events.pagerduty.com/v2/enqueue?routing_key=abc&x"
            ),
            "https://events.pagerduty.com/…?routing_key=…&x=…"
        );
        assert_eq!(
            shown(ChannelKind::Webhook, "http://user:pw@127.0.0.1:8080"),
            "http://127.0.0.1:8080/"
        );
        assert_eq!(
            shown(ChannelKind::Ntfy, "https://ntfy.sh/topic"),
            "https://ntfy.sh/…"
        );
        assert_eq!(
            shown(ChannelKind::Email, "a@example.com, b@example.com"),
            "a@example.com, b@example.com"
        );
    }
}
