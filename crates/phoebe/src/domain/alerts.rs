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
    /// The URL (webhook, chat services), or the addresses, comma-separated (email).
    pub target: String,
    /// Signs webhook bodies when set; never shown once stored.
    pub secret: Option<String>,
    /// Created, ms.
    pub created_ms: i64,
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
}

impl Trigger {
    /// Every trigger.
    pub const ALL: [Trigger; 3] = [Trigger::NewIssue, Trigger::Regression, Trigger::Unignored];

    /// Name in the database, the CLI and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::NewIssue => "new-issue",
            Trigger::Regression => "regression",
            Trigger::Unignored => "unignored",
        }
    }

    /// Parses a name; the error lists the triggers there are.
    pub fn parse(s: &str) -> Result<Trigger, String> {
        Trigger::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| format!("unknown trigger {s:?}: use new-issue, regression or unignored"))
    }

    /// Whether a domain event is one this trigger fires on.
    pub fn fires_on(self, what: &IssueEvent) -> bool {
        matches!(
            (self, what),
            (Trigger::NewIssue, IssueEvent::Created)
                | (Trigger::Regression, IssueEvent::Regressed { .. })
                | (Trigger::Unignored, IssueEvent::Unignored)
        )
    }
}

/// A rule: when `trigger` fires in `project_id`, notify `channels`, at most once per issue per
/// `cooldown_ms`.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Id.
    pub id: RuleId,
    /// Project it watches.
    pub project_id: ProjectId,
    /// What makes it fire.
    pub trigger: Trigger,
    /// Where its notifications go.
    pub channels: Vec<ChannelId>,
    /// Quiet time per issue after it fired, ms (0: none).
    pub cooldown_ms: i64,
    /// Created, ms.
    pub created_ms: i64,
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
/// fires on it and whose cooldown for the issue has run out, one notification per channel.
/// `last_fired(rule, issue)` says when a rule last fired for an issue.
pub fn fire(
    events: &[RecordedEvent],
    rules: &[Rule],
    last_fired: impl Fn(RuleId, IssueId) -> Option<i64>,
) -> Vec<NewAlert> {
    let mut out = Vec::new();
    // Firings of this batch count for the cooldown too.
    let mut fired: Vec<(RuleId, IssueId, i64)> = Vec::new();
    for e in events {
        for rule in rules
            .iter()
            .filter(|r| r.project_id == e.project_id && r.trigger.fires_on(&e.what))
        {
            let previous = fired
                .iter()
                .filter(|(r, i, _)| *r == rule.id && *i == e.issue_id)
                .map(|(_, _, at)| *at)
                .max()
                .or_else(|| last_fired(rule.id, e.issue_id));
            if previous.is_some_and(|at| e.created_ms < at + rule.cooldown_ms) {
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
            created_ms: at,
        }
    }

    fn rule(id: i64, trigger: Trigger, cooldown_ms: i64) -> Rule {
        Rule {
            id: RuleId(id),
            project_id: ProjectId(1),
            trigger,
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
        for t in Trigger::ALL {
            assert_eq!(Trigger::parse(t.as_str()), Ok(t));
        }
        assert!(Trigger::parse("sometimes")
            .unwrap_err()
            .contains("new-issue"));
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
}
