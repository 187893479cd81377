//! Summary emails: for each person who asked, once a day or a week, one project's new issues
//! and regressions since the last summary, the busiest first. A period with nothing new sends
//! nothing. Sent by their own thread, so a slow mail server delays only summaries.

use std::fmt::Write as _;

use super::email::{self, escape, issue_url, Mail};
use super::Settings;
use crate::api::json::short_id;
use crate::domain::alerts::{Summary, SummaryPeriod};
use crate::domain::{Issue, IssueQuery, IssueSort, IssueStatus, Project};
use crate::store::Store;

/// Issues each list of a summary shows; the rest are counted.
const LISTED: usize = 20;

/// Issues read per list (the counts say "500 or more" beyond).
const READ: i64 = 500;

/// What a summary reports: issues first seen in the period, and issues that came back.
#[derive(Debug, Default)]
pub struct Report {
    /// New issues, the most events first.
    pub new: Vec<Issue>,
    /// Regressed issues (unresolved again and seen in the period), the most events first.
    pub regressed: Vec<Issue>,
}

/// Reads what happened in a project since `since_ms`.
pub fn report(store: &dyn Store, project: &Project, since_ms: i64) -> anyhow::Result<Report> {
    let query = |sort, status| IssueQuery {
        project_ids: vec![project.id],
        status,
        seen_since_ms: Some(since_ms),
        sort,
        limit: READ,
        ..IssueQuery::default()
    };
    let mut new: Vec<Issue> = store
        .issues(&query(IssueSort::FirstSeen, None))?
        .into_iter()
        .filter(|i| i.first_seen_ms >= since_ms)
        .collect();
    let mut regressed: Vec<Issue> = store
        .issues(&query(IssueSort::Events, Some(IssueStatus::Unresolved)))?
        .into_iter()
        .filter(|i| i.is_regression && i.first_seen_ms < since_ms)
        .collect();
    new.sort_by_key(|i| std::cmp::Reverse(i.times_seen));
    regressed.sort_by_key(|i| std::cmp::Reverse(i.times_seen));
    Ok(Report { new, regressed })
}

fn count(n: usize, one: &str, many: &str) -> String {
    let more = if n as i64 >= READ { " or more" } else { "" };
    match n {
        1 => format!("1 {one}"),
        n => format!("{n}{more} {many}"),
    }
}

/// The message for a report, or `None` when there is nothing to say.
pub fn compose(
    report: &Report,
    project: &Project,
    period: SummaryPeriod,
    public_url: &str,
) -> Option<Mail> {
    if report.new.is_empty() && report.regressed.is_empty() {
        return None;
    }
    let headline = format!(
        "{} and {} in {} this {}",
        count(report.new.len(), "new issue", "new issues"),
        count(report.regressed.len(), "regression", "regressions"),
        project.name,
        period.noun()
    );
    let mut text = format!("{headline}\n");
    let mut html = format!("<p>{}</p>", escape(&headline));
    for (title, issues) in [
        ("New issues", &report.new),
        ("Regressions", &report.regressed),
    ] {
        if issues.is_empty() {
            continue;
        }
        let _ = write!(text, "\n{title}:\n");
        let _ = write!(html, "<h3>{title}</h3><ul>");
        for issue in issues.iter().take(LISTED) {
            let url = issue_url(public_url, issue);
            let id = short_id(&project.slug, issue.short_id);
            let _ = writeln!(
                text,
                "- {id} {} ({} events, {} users) {url}",
                issue.title, issue.times_seen, issue.user_count
            );
            let _ = write!(
                html,
                "<li><a href=\"{}\">{} {}</a> ({} events, {} users)</li>",
                escape(&url),
                escape(&id),
                escape(&issue.title),
                issue.times_seen,
                issue.user_count
            );
        }
        html.push_str("</ul>");
        if issues.len() > LISTED {
            let more = issues.len() - LISTED;
            let _ = writeln!(text, "… and {more} more");
            let _ = write!(html, "<p>… and {more} more</p>");
        }
    }
    let list = format!(
        "{}/issues/?project={}",
        public_url.trim_end_matches('/'),
        project.slug
    );
    let _ = write!(
        text,
        "\nAll issues: {list}\nChange or stop this summary on the project's Alerts page.\n"
    );
    let _ = write!(
        html,
        "<p><a href=\"{}\">All issues of {}</a> · change or stop this summary on the project's Alerts page</p>",
        escape(&list),
        escape(&project.name)
    );
    Some(Mail {
        subject: format!("[{}] {headline}", project.name),
        text,
        html,
    })
}

/// Sends one summary covering up to `now_ms` and records it; `Ok(false)` when there was
/// nothing to report (recorded too, so the next one starts from here).
pub fn send(
    store: &dyn Store,
    settings: &Settings,
    summary: &Summary,
    now_ms: i64,
) -> Result<bool, String> {
    let user = store
        .users()
        .map_err(|e| e.to_string())?
        .into_iter()
        .find(|u| u.id == summary.user_id)
        .ok_or("the user is gone")?;
    let to = user
        .email
        .clone()
        .or_else(|| user.login.contains('@').then(|| user.login.clone()))
        .ok_or_else(|| {
            format!(
                "{} has no email address: set one with `phoebe user set-email` or on the Account page",
                user.login
            )
        })?;
    let project = store
        .project(summary.project_id)
        .map_err(|e| e.to_string())?;
    // At most one period back, even after a long pause.
    let since = summary
        .last_sent_ms
        .max(now_ms - summary.period.ms())
        .min(now_ms);
    let report = report(store, &project, since).map_err(|e| e.to_string())?;
    let sent = match compose(&report, &project, summary.period, &settings.public_url) {
        Some(mail) => {
            email::send(settings.outbound.smtp(), &to, mail)?;
            true
        }
        None => false,
    };
    store
        .summary_sent(summary.user_id, summary.project_id, now_ms)
        .map_err(|e| e.to_string())?;
    Ok(sent)
}

/// Sends every summary that is due at `now_ms` (of active users); returns how many went out.
pub fn send_due(store: &dyn Store, settings: &Settings, now_ms: i64) -> anyhow::Result<usize> {
    let active: std::collections::HashSet<_> = store
        .users()?
        .into_iter()
        .filter(|u| u.is_active)
        .map(|u| u.id)
        .collect();
    let mut sent = 0;
    for summary in store.summaries(None)? {
        if !summary.is_due(now_ms) || !active.contains(&summary.user_id) {
            continue;
        }
        match send(store, settings, &summary, now_ms) {
            Ok(true) => sent += 1,
            Ok(false) => {}
            Err(e) => tracing::warn!(
                user = %summary.user_id,
                project = %summary.project_id,
                error = %e,
                "a summary email could not be sent; it is tried again in a minute"
            ),
        }
    }
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{IssueId, OrgId, ProjectId};

    fn project() -> Project {
        Project {
            id: ProjectId(1),
            org_id: OrgId(1),
            org_slug: "acme".into(),
            slug: "web".into(),
            name: "Web".into(),
            platform: None,
            created_ms: 0,
            limits: Default::default(),
            retention: Default::default(),
            stored_events: 0,
            spike: None,
        }
    }

    fn issue(id: i64, title: &str, times_seen: i64) -> Issue {
        Issue {
            id: IssueId(id),
            short_id: id,
            title: title.into(),
            times_seen,
            ..Issue::for_test()
        }
    }

    #[test]
    fn a_quiet_period_sends_nothing() {
        assert!(compose(
            &Report::default(),
            &project(),
            SummaryPeriod::Daily,
            "https://p"
        )
        .is_none());
    }

    #[test]
    fn a_summary_lists_new_issues_and_regressions_with_links() {
        let report = Report {
            new: vec![issue(3, "KeyError: 'basket'", 40), issue(4, "TypeError", 2)],
            regressed: vec![issue(1, "Timeout <db>", 9)],
        };
        let mail = compose(
            &report,
            &project(),
            SummaryPeriod::Weekly,
            "https://p.example/",
        )
        .unwrap();
        assert_eq!(
            mail.subject,
            "[Web] 2 new issues and 1 regression in Web this week"
        );
        assert!(mail.text.contains(
            "- WEB-3 KeyError: 'basket' (40 events, 0 users) https://p.example/issues/3/"
        ));
        assert!(mail.text.contains("Regressions:\n- WEB-1 Timeout <db>"));
        assert!(mail.html.contains("Timeout &lt;db&gt;"));
        assert!(mail.text.contains("https://p.example/issues/?project=web"));
    }
}
