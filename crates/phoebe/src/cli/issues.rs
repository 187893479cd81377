//! `phoebe issues ...`: list, show and triage issues from a terminal.

use std::io::Write;

use clap::Subcommand;
use serde_json::json;

use crate::api::json as shapes;
use crate::ops::{IssueListRequest, Ops};

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
        id: i64,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Mark issues resolved.
    Resolve {
        /// Issue ids.
        ids: Vec<i64>,
    },
    /// Mark issues unresolved.
    Unresolve {
        /// Issue ids.
        ids: Vec<i64>,
    },
    /// Ignore issues.
    Ignore {
        /// Issue ids.
        ids: Vec<i64>,
    },
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
        IssuesCommand::Resolve { ids } => set_status(ops, ids, "resolved")?,
        IssuesCommand::Unresolve { ids } => set_status(ops, ids, "unresolved")?,
        IssuesCommand::Ignore { ids } => set_status(ops, ids, "ignored")?,
    }
    Ok(())
}

fn set_status(ops: &Ops, ids: &[i64], status: &str) -> anyhow::Result<()> {
    if ids.is_empty() {
        anyhow::bail!("name at least one issue id");
    }
    for id in ids {
        ops.set_issue_status(*id, status)?;
        eprintln!("issue {id}: {status}");
    }
    Ok(())
}
