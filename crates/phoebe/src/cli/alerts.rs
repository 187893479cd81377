//! `phoebe alerts …`: channels, rules, a test notification, and the history of what was sent.

use clap::Subcommand;

use crate::api::json::{self as shapes, iso};
use crate::domain::alerts::{ChannelId, ChannelKind, RuleId, Trigger};
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

/// `phoebe alerts rule ...`
#[derive(Subcommand, Debug)]
pub enum RuleCommand {
    /// Add a rule to a project and print its id.
    Add {
        /// Project slug or id.
        project: String,
        /// What fires it: new-issue, regression or unignored.
        #[arg(long = "on", value_parser = Trigger::parse)]
        trigger: Trigger,
        /// Channel ids to notify (repeat the flag for several).
        #[arg(long = "channel", required = true)]
        channels: Vec<ChannelId>,
        /// Quiet time per issue after it fired: 30m, 2h, 1d (default: none).
        #[arg(long)]
        cooldown: Option<String>,
    },
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
        AlertsCommand::Rule { command } => {
            match command {
                RuleCommand::Add {
                    project,
                    trigger,
                    channels,
                    cooldown,
                } => {
                    let cooldown_ms = match cooldown {
                    Some(d) => parse_period_ms(d).ok_or_else(|| {
                        anyhow::anyhow!("--cooldown {d:?}: give a duration such as 30m, 2h or 1d (at most 90d)")
                    })?,
                    None => 0,
                };
                    let r = ops.add_rule(project, *trigger, channels, cooldown_ms)?;
                    eprintln!(
                        "added rule {}: on {} in project {}, notify channels {:?}",
                        r.id,
                        r.trigger.as_str(),
                        r.project_id,
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
                            "{:<5} {:<8} {:<12} {:<10} CHANNELS",
                            "ID", "PROJECT", "ON", "COOLDOWN"
                        );
                        for r in &rules {
                            let channels: Vec<String> =
                                r.channels.iter().map(ChannelId::to_string).collect();
                            println!(
                                "{:<5} {:<8} {:<12} {:<10} {}",
                                r.id,
                                r.project_id,
                                r.trigger.as_str(),
                                format!("{}s", r.cooldown_ms / 1000),
                                channels.join(",")
                            );
                        }
                    }
                }
                RuleCommand::Remove { id } => {
                    ops.remove_rule(*id)?;
                    eprintln!("removed rule {id}");
                }
            }
        }
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
