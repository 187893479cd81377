//! `phoebe issues ...`: list, show and triage issues from a terminal.

use std::io::Write;

use clap::Subcommand;
use serde_json::json;

use crate::api::json as shapes;
use crate::domain::{IssueId, IssueStatus};
use crate::ops::triage::IssueChange;
use crate::ops::{Caller, IssueListRequest, Ops};

/// `phoebe issues ...`
#[derive(Subcommand, Debug)]
pub enum IssuesCommand {
    /// List issues, most recently seen first.
    List {
        /// Project slug or id (default: all projects).
        #[arg(long)]
        project: Option<String>,
        /// Search query, as in the API and dashboard (default: is:unresolved).
        #[arg(long)]
        query: Option<String>,
        /// Sort: date, new, freq or user.
        #[arg(long)]
        sort: Option<String>,
        /// How many to show (at most 100).
        #[arg(long, default_value_t = 25)]
        limit: i64,
        /// Print JSON (the API's issue shape).
        #[arg(long)]
        json: bool,
    },
    /// Show one issue with its latest event.
    Show {
        /// Issue id.
        id: IssueId,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Mark issues resolved.
    Resolve {
        /// Issue ids.
        #[arg(required = true)]
        ids: Vec<IssueId>,
        /// Keep them resolved for events of their current release; a later release re-opens them.
        #[arg(long)]
        next_release: bool,
        #[command(flatten)]
        by: By,
    },
    /// Mark issues unresolved.
    Unresolve {
        /// Issue ids.
        #[arg(required = true)]
        ids: Vec<IssueId>,
        #[command(flatten)]
        by: By,
    },
    /// Ignore issues: forever, or until a time has passed or more events arrived.
    Ignore {
        /// Issue ids.
        #[arg(required = true)]
        ids: Vec<IssueId>,
        /// Re-open on the first event after this long: 30m, 2h, 7d (at most 90d).
        #[arg(long = "for", value_name = "DURATION")]
        duration: Option<String>,
        /// Re-open when this many more events arrived.
        #[arg(long, value_name = "N")]
        until_count: Option<i64>,
        #[command(flatten)]
        by: By,
    },
    /// Assign an issue to a user (`none` unassigns).
    Assign {
        /// Issue id.
        id: IssueId,
        /// Login of the new owner, or `none`.
        login: String,
        #[command(flatten)]
        by: By,
    },
    /// Add a comment to an issue.
    Comment {
        /// Issue id.
        id: IssueId,
        /// The comment.
        text: String,
        #[command(flatten)]
        by: By,
    },
    /// Merge issues of one project into the one with the most events.
    Merge {
        /// Issue ids (two or more).
        #[arg(required = true, num_args = 2..)]
        ids: Vec<IssueId>,
        #[command(flatten)]
        by: By,
    },
    /// Delete issues and their events; later events with their fingerprints start new issues.
    Delete {
        /// Issue ids.
        #[arg(required = true)]
        ids: Vec<IssueId>,
    },
    /// Show what was done to an issue, newest first.
    Activity {
        /// Issue id.
        id: IssueId,
        /// Print JSON (the API's activity shape).
        #[arg(long)]
        json: bool,
    },
}

/// Who the activity log names for a change made from the command line.
#[derive(clap::Args, Debug)]
pub struct By {
    /// Record the change as made by this user (default: nobody in particular).
    #[arg(long, value_name = "LOGIN")]
    by: Option<String>,
}

impl By {
    /// The operations, recording changes as the `--by` user's.
    fn acting(&self, ops: &Ops) -> anyhow::Result<Ops> {
        let as_user = match &self.by {
            Some(login) => Some(
                ops.users()?
                    .into_iter()
                    .find(|u| &u.login == login)
                    .ok_or_else(|| {
                        anyhow::anyhow!("there is no user {login:?} (see `phoebe user list`)")
                    })?,
            ),
            None => None,
        };
        Ok(ops.acting_as(Caller::Cli { as_user }))
    }
}

fn relative(ms: i64) -> String {
    let secs = (chrono::Utc::now().timestamp_millis() - ms).max(0) / 1000;
    match secs {
        s if s < 60 => format!("{s}s ago"),
        s if s < 3600 => format!("{}m ago", s / 60),
        s if s < 86_400 => format!("{}h ago", s / 3600),
        s => format!("{}d ago", s / 86_400),
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n - 1).collect::<String>())
    }
}

/// Runs an issues subcommand.
pub fn run(ops: &Ops, command: &IssuesCommand) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match command {
        IssuesCommand::List {
            project,
            query,
            sort,
            limit,
            json,
        } => {
            let page = ops.list_issues(&IssueListRequest {
                project: project.clone(),
                query: query.clone(),
                sort: sort.clone(),
                limit: Some(*limit),
                ..Default::default()
            })?;
            if *json {
                let mut list = Vec::new();
                for i in &page.issues {
                    let p = ops.project_by_id(i.project_id)?;
                    list.push(shapes::issue(i, &p, ops.public_url(), None));
                }
                writeln!(out, "{}", serde_json::to_string_pretty(&list)?)?;
            } else {
                writeln!(
                    out,
                    "{:<7} {:<8} {:<10} {:>7} {:>6} {:<10} TITLE",
                    "ID", "LEVEL", "STATUS", "EVENTS", "USERS", "LAST SEEN"
                )?;
                for i in &page.issues {
                    let status = if i.is_regression {
                        "regressed"
                    } else {
                        i.status.as_str()
                    };
                    writeln!(
                        out,
                        "{:<7} {:<8} {:<10} {:>7} {:>6} {:<10} {}",
                        i.id,
                        i.level,
                        status,
                        i.times_seen,
                        i.user_count,
                        relative(i.last_seen_ms),
                        truncate(&i.title, 80)
                    )?;
                }
                if page.issues.is_empty() {
                    eprintln!("no issues match");
                }
            }
        }
        IssuesCommand::Show { id, json } => {
            let issue = ops.issue(*id)?;
            let project = ops.project_by_id(issue.project_id)?;
            let latest = ops.issue_event_edge(*id, true).ok();
            if *json {
                let mut v = shapes::issue(&issue, &project, ops.public_url(), None);
                v["latestEvent"] = latest
                    .as_ref()
                    .map(|e| shapes::event(e, Some(&issue), None))
                    .unwrap_or(json!(null));
                writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
                return Ok(());
            }
            writeln!(
                out,
                "{}  {}",
                shapes::short_id(&project.slug, issue.short_id),
                issue.title
            )?;
            if !issue.culprit.is_empty() {
                writeln!(out, "culprit:    {}", issue.culprit)?;
            }
            writeln!(
                out,
                "status:     {}{}",
                issue.status.as_str(),
                if issue.is_regression {
                    " (regression)"
                } else {
                    ""
                }
            )?;
            writeln!(out, "level:      {}", issue.level)?;
            writeln!(
                out,
                "events:     {}   users: {}",
                issue.times_seen, issue.user_count
            )?;
            writeln!(
                out,
                "first seen: {} ({})",
                shapes::iso(issue.first_seen_ms),
                relative(issue.first_seen_ms)
            )?;
            writeln!(
                out,
                "last seen:  {} ({})",
                shapes::iso(issue.last_seen_ms),
                relative(issue.last_seen_ms)
            )?;
            if let Some(r) = &issue.first_release {
                writeln!(
                    out,
                    "releases:   first {r}, last {}",
                    issue.last_release.as_deref().unwrap_or(r)
                )?;
            }
            for t in ops.issue_tags(*id)? {
                writeln!(out, "tag         {}={} ({})", t.key, t.value, t.count)?;
            }
            if let Some(e) = latest {
                writeln!(out, "latest event {}:", e.event_id.simple())?;
                let frames = e
                    .payload
                    .pointer("/exception/values")
                    .and_then(|v| v.as_array())
                    .cloned()
                    .unwrap_or_default();
                for exc in frames {
                    writeln!(
                        out,
                        "  {}: {}",
                        exc["type"].as_str().unwrap_or("?"),
                        exc["value"].as_str().unwrap_or("")
                    )?;
                    for f in exc
                        .pointer("/stacktrace/frames")
                        .and_then(|v| v.as_array())
                        .into_iter()
                        .flatten()
                    {
                        writeln!(
                            out,
                            "    at {} ({}:{})",
                            f["function"].as_str().unwrap_or("?"),
                            f["filename"]
                                .as_str()
                                .or(f["abs_path"].as_str())
                                .unwrap_or("?"),
                            f["lineno"]
                                .as_u64()
                                .map(|l| l.to_string())
                                .unwrap_or_default()
                        )?;
                    }
                }
            }
        }
        IssuesCommand::Resolve {
            ids,
            next_release,
            by,
        } => {
            let change = IssueChange {
                status: Some(IssueStatus::Resolved),
                in_next_release: *next_release,
                ..Default::default()
            };
            change_all(ops, ids, &change, by)?;
        }
        IssuesCommand::Unresolve { ids, by } => {
            let change = IssueChange {
                status: Some(IssueStatus::Unresolved),
                ..Default::default()
            };
            change_all(ops, ids, &change, by)?;
        }
        IssuesCommand::Ignore {
            ids,
            duration,
            until_count,
            by,
        } => {
            let minutes = match duration {
                Some(d) => {
                    let ms = crate::ops::parse_period_ms(d).ok_or_else(|| {
                        anyhow::anyhow!("bad --for {d:?}: use e.g. 30m, 2h or 7d (at most 90d)")
                    })?;
                    Some((ms + 59_999) / 60_000)
                }
                None => None,
            };
            let change = IssueChange {
                status: Some(IssueStatus::Ignored),
                ignore_minutes: minutes,
                ignore_count: *until_count,
                ..Default::default()
            };
            change_all(ops, ids, &change, by)?;
        }
        IssuesCommand::Assign { id, login, by } => {
            let change = IssueChange {
                assign: Some((login != "none").then(|| login.clone())),
                ..Default::default()
            };
            change_all(ops, &[*id], &change, by)?;
        }
        IssuesCommand::Comment { id, text, by } => {
            let change = IssueChange {
                comment: Some(text.clone()),
                ..Default::default()
            };
            change_all(ops, &[*id], &change, by)?;
        }
        IssuesCommand::Merge { ids, by } => {
            let merged = by.acting(ops)?.merge_issues(ids)?;
            eprintln!(
                "merged {} issues into issue {}: {}",
                ids.len(),
                merged.id,
                merged.title
            );
        }
        IssuesCommand::Delete { ids } => {
            let n = ops.delete_issues(ids)?;
            eprintln!("deleted {n} of {} issues", ids.len());
        }
        IssuesCommand::Activity { id, json } => {
            let log = ops.activity(*id)?;
            if *json {
                let v: Vec<serde_json::Value> = log.iter().map(shapes::activity).collect();
                writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
            } else {
                for a in &log {
                    writeln!(
                        out,
                        "{}  {:<10} {:<11} {}",
                        shapes::iso(a.created_ms),
                        a.user.as_deref().unwrap_or("phoebe"),
                        a.kind,
                        if a.data.as_object().is_some_and(|m| m.is_empty()) {
                            String::new()
                        } else {
                            a.data.to_string()
                        }
                    )?;
                }
            }
        }
    }
    Ok(())
}

fn change_all(ops: &Ops, ids: &[IssueId], change: &IssueChange, by: &By) -> anyhow::Result<()> {
    let ops = by.acting(ops)?;
    for id in ids {
        let issue = ops.change_issue(*id, change)?;
        eprintln!(
            "issue {id}: {}{}",
            issue.status.as_str(),
            issue
                .assignee
                .as_ref()
                .map(|a| format!(", assigned to {a}"))
                .unwrap_or_default()
        );
    }
    Ok(())
}
