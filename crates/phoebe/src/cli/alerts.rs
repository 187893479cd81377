//! `phoebe alerts …`: channels, rules, a test notification, and the history of what was sent.

use clap::Subcommand;

use crate::api::json::{self as shapes, iso};
use crate::domain::alerts::{
    ChannelId, ChannelKind, Filters, RuleId, RuleSpec, SummaryPeriod, Trigger,
};
use crate::domain::IssueId;
use crate::ops::{parse_period_ms, Ops};

/// `phoebe alerts ...`
#[derive(Subcommand, Debug)]
pub enum AlertsCommand {
    /// Manage where notifications go.
    Channel {
        #[command(subcommand)]
        command: ChannelCommand,
    },
    /// Manage what sends notifications.
    Rule {
        #[command(subcommand)]
        command: RuleCommand,
    },
    /// Daily or weekly summary emails of a project's new issues and regressions.
    Summary {
        #[command(subcommand)]
        command: SummaryCommand,
    },
    /// Send a test notification to a channel now.
    Test {
        /// Channel id (see `phoebe alerts channel list`).
        channel: ChannelId,
    },
    /// Notifications sent, newest first, with their delivery state.
    History {
        /// Only this project's (slug or id).
        #[arg(long)]
        project: Option<String>,
        /// Only this issue's.
        #[arg(long)]
        issue: Option<IssueId>,
        /// How many.
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `phoebe alerts channel ...`
#[derive(Subcommand, Debug)]
pub enum ChannelCommand {
    /// Add a channel to a project and print its id.
    Add {
        /// Project slug or id.
        project: String,
        /// Kind of channel: webhook.
        #[arg(value_parser = ChannelKind::parse)]
        kind: ChannelKind,
        /// Where it goes: the webhook's URL.
        target: String,
        /// A name to recognise it by (default: its kind).
        #[arg(long)]
        name: Option<String>,
        /// Sign webhook bodies with this secret (HMAC-SHA256; see the README).
        #[arg(long, env = "PHOEBE_CHANNEL_SECRET", hide_env_values = true)]
        secret: Option<String>,
    },
    /// List channels.
    List {
        /// Only this project's (slug or id).
        #[arg(long)]
        project: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a channel; rules stop naming it.
    Remove {
        /// Channel id.
        id: ChannelId,
    },
}

/// `phoebe alerts summary ...`
#[derive(Subcommand, Debug)]
pub enum SummaryCommand {
    /// Start, change or stop a user's summary of a project.
    Set {
        /// Project slug or id.
        project: String,
        /// Whose (login).
        #[arg(long)]
        user: String,
        /// daily, weekly or off.
        #[arg(long)]
        every: String,
    },
    /// List summaries: who gets which project's, how often, and up to when the last one went.
    List,
    /// Send a user's summary of a project now (what happened since the last one).
    Send {
        /// Project slug or id.
        project: String,
        /// Whose (login).
        #[arg(long)]
        user: String,
    },
}

/// `phoebe alerts rule ...`
#[derive(Subcommand, Debug)]
pub enum RuleCommand {
    /// Add a rule to a project and print its id.
    Add(Box<AddRule>),
    /// List rules.
    List {
        /// Only this project's (slug or id).
        #[arg(long)]
        project: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove a rule.
    Remove {
        /// Rule id.
        id: RuleId,
    },
}

/// `phoebe alerts rule add ...`
#[derive(clap::Args, Debug)]
pub struct AddRule {
    /// Project slug or id.
    project: String,
    /// What fires it: new-issue, regression, unignored, frequency (--threshold events
    /// within --window) or users (--threshold distinct users within --window).
    #[arg(long = "on")]
    trigger: String,
    /// For frequency and users rules: how many events or users.
    #[arg(long)]
    threshold: Option<i64>,
    /// For frequency and users rules: within how long, 1m to 1d (5m, 1h ...).
    #[arg(long)]
    window: Option<String>,
    /// Channel ids to notify (repeat the flag for several).
    #[arg(long = "channel", required = true)]
    channels: Vec<ChannelId>,
    /// Quiet time per issue after it fired: 30m, 2h, 1d (default: none; a frequency or
    /// users rule is quiet at least for its window).
    #[arg(long)]
    cooldown: Option<String>,
    /// Only events of this environment.
    #[arg(long)]
    environment: Option<String>,
    /// Only events of this release.
    #[arg(long)]
    release: Option<String>,
    /// Only events of this level or more severe: debug, info, warning, error, fatal.
    #[arg(long)]
    level: Option<String>,
    /// Only events with this tag value, key:value (repeat the flag for several).
    #[arg(long = "tag")]
    tags: Vec<String>,
}

fn print_json(v: &serde_json::Value) {
    println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
}

/// Runs `phoebe alerts …`.
pub fn run(ops: &Ops, command: &AlertsCommand) -> anyhow::Result<()> {
    match command {
        AlertsCommand::Channel { command } => match command {
            ChannelCommand::Add {
                project,
                kind,
                target,
                name,
                secret,
            } => {
                let c =
                    ops.add_channel(project, *kind, target, name.as_deref(), secret.as_deref())?;
                eprintln!(
                    "added {} channel {} ({}) to project {}",
                    c.kind.as_str(),
                    c.id,
                    c.name,
                    c.project_id
                );
                println!("{}", c.id);
            }
            ChannelCommand::List { project, json } => {
                let channels = ops.channels(project.as_deref())?;
                if *json {
                    print_json(&channels.iter().map(shapes::alert_channel).collect());
                } else {
                    println!(
                        "{:<5} {:<8} {:<8} {:<20} TARGET",
                        "ID", "PROJECT", "KIND", "NAME"
                    );
                    for c in &channels {
                        let signed = if c.secret.is_some() { " (signed)" } else { "" };
                        println!(
                            "{:<5} {:<8} {:<8} {:<20} {}{signed}",
                            c.id,
                            c.project_id,
                            c.kind.as_str(),
                            c.name,
                            c.target
                        );
                    }
                }
            }
            ChannelCommand::Remove { id } => {
                ops.remove_channel(*id)?;
                eprintln!("removed channel {id}");
            }
        },
        AlertsCommand::Rule { command } => match command {
            RuleCommand::Add(add) => {
                let AddRule {
                    project,
                    trigger,
                    threshold,
                    window,
                    channels,
                    cooldown,
                    environment,
                    release,
                    level,
                    tags,
                } = &**add;
                let period = |flag: &str, d: &str| {
                    parse_period_ms(d).ok_or_else(|| {
                        anyhow::anyhow!(
                            "{flag} {d:?}: give a duration such as 30m, 2h or 1d (at most 90d)"
                        )
                    })
                };
                let cooldown_ms = match cooldown {
                    Some(d) => period("--cooldown", d)?,
                    None => 0,
                };
                let window_minutes = match window {
                    Some(d) => Some(period("--window", d)? / 60_000),
                    None => None,
                };
                let trigger = Trigger::from_parts(trigger, *threshold, window_minutes)
                    .map_err(|e| anyhow::anyhow!("--on: {e}"))?;
                let tags = Filters::parse_tags(&tags.join(","))
                    .map_err(|e| anyhow::anyhow!("--tag: {e}"))?;
                let spec = RuleSpec {
                    trigger,
                    filters: Filters {
                        environment: environment.clone(),
                        release: release.clone(),
                        min_level: level.clone(),
                        tags,
                    },
                    channels: channels.clone(),
                    cooldown_ms,
                };
                let r = ops.add_rule(project, spec)?;
                eprintln!(
                    "added rule {} to project {}: {}, notify channels {:?}",
                    r.id,
                    r.project_id,
                    r.describe(),
                    r.channels.iter().map(|c| c.0).collect::<Vec<_>>()
                );
                println!("{}", r.id);
            }
            RuleCommand::List { project, json } => {
                let rules = ops.rules(project.as_deref())?;
                if *json {
                    print_json(&rules.iter().map(shapes::alert_rule).collect());
                } else {
                    println!(
                        "{:<5} {:<8} {:<10} {:<10} RULE",
                        "ID", "PROJECT", "COOLDOWN", "CHANNELS"
                    );
                    for r in &rules {
                        let channels: Vec<String> =
                            r.channels.iter().map(ChannelId::to_string).collect();
                        println!(
                            "{:<5} {:<8} {:<10} {:<10} {}",
                            r.id,
                            r.project_id,
                            format!("{}s", r.cooldown_ms / 1000),
                            channels.join(","),
                            r.describe()
                        );
                    }
                }
            }
            RuleCommand::Remove { id } => {
                ops.remove_rule(*id)?;
                eprintln!("removed rule {id}");
            }
        },
        AlertsCommand::Summary { command } => match command {
            SummaryCommand::Set {
                project,
                user,
                every,
            } => {
                let period = match every.as_str() {
                    "off" => None,
                    p => Some(
                        SummaryPeriod::parse(p)
                            .map_err(|e| anyhow::anyhow!("--every: {e} (or off)"))?,
                    ),
                };
                ops.set_summary(project, Some(user), period)?;
                match period {
                    Some(p) => eprintln!("{user} gets a {} summary of {project}", p.as_str()),
                    None => eprintln!("{user} gets no summary of {project} any more"),
                }
            }
            SummaryCommand::List => {
                println!(
                    "{:<24} {:<8} {:<8} LAST COVERED UP TO",
                    "USER", "PROJECT", "EVERY"
                );
                for (user, s) in ops.summaries()? {
                    println!(
                        "{:<24} {:<8} {:<8} {}",
                        user.login,
                        s.project_id,
                        s.period.as_str(),
                        iso(s.last_sent_ms)
                    );
                }
            }
            SummaryCommand::Send { project, user } => {
                if ops.send_summary_now(project, Some(user))? {
                    eprintln!("sent {user} the summary of {project}");
                } else {
                    eprintln!("nothing new or regressed in {project} since the last summary: nothing sent");
                }
            }
        },
        AlertsCommand::Test { channel } => {
            let c = ops.test_channel(*channel)?;
            eprintln!(
                "sent a test notification to channel {} ({})",
                c.id, c.target
            );
        }
        AlertsCommand::History {
            project,
            issue,
            limit,
            json,
        } => {
            let alerts = ops.alert_history(project.as_deref(), *issue, *limit)?;
            if *json {
                print_json(&alerts.iter().map(shapes::alert).collect());
            } else {
                println!(
                    "{:<6} {:<24} {:<6} {:<7} {:<16} {:<8} {:<8} ERROR",
                    "ID", "WHEN", "ISSUE", "RULE", "EVENT", "CHANNEL", "STATE"
                );
                for a in &alerts {
                    println!(
                        "{:<6} {:<24} {:<6} {:<7} {:<16} {:<8} {:<8} {}",
                        a.id,
                        iso(a.created_ms),
                        a.alert.issue_id,
                        a.alert.rule_id,
                        a.alert.what.kind(),
                        a.alert.channel_id,
                        format!("{} ({})", a.state.as_str(), a.attempts),
                        a.last_error.as_deref().unwrap_or("")
                    );
                }
            }
        }
    }
    Ok(())
}
