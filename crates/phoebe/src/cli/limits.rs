//! `phoebe project limits`, `phoebe key limits` and `phoebe usage`.

use std::io::Write;

use clap::Args;

use crate::ops::limits::{KeyLimits, LimitChanges, ProjectLimits, Setting, UsageReport};
use crate::ops::{parse_period_ms, Ops};

/// A limit on the command line: a number (0 = none) or `default` (follow phoebe.toml).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LimitArg(Option<u64>);

fn parse_limit(s: &str) -> Result<LimitArg, String> {
    match s {
        "default" => Ok(LimitArg(None)),
        n => n
            .parse::<u64>()
            .map(|n| LimitArg(Some(n)))
            .map_err(|_| format!("{s:?}: give a whole number (0 = no limit) or `default`")),
    }
}

/// `phoebe project limits <project> [...]`
#[derive(Args, Debug)]
pub struct ProjectLimitsArgs {
    /// Project slug or id.
    pub project: String,
    /// Events accepted per minute (a number, 0 = no limit, or `default`).
    #[arg(long, value_parser = parse_limit, value_name = "N|default")]
    pub events_per_minute: Option<LimitArg>,
    /// Events accepted per hour.
    #[arg(long, value_parser = parse_limit, value_name = "N|default")]
    pub events_per_hour: Option<LimitArg>,
    /// Days stored events are kept.
    #[arg(long, value_parser = parse_limit, value_name = "N|default")]
    pub max_age_days: Option<LimitArg>,
    /// Stored events kept (oldest evicted first).
    #[arg(long, value_parser = parse_limit, value_name = "N|default")]
    pub max_stored_events: Option<LimitArg>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `phoebe key limits <key> [...]`
#[derive(Args, Debug)]
pub struct KeyLimitsArgs {
    /// The public key, or the whole DSN.
    pub key: String,
    /// Events accepted per minute with this key.
    #[arg(long, value_parser = parse_limit, value_name = "N|default")]
    pub events_per_minute: Option<LimitArg>,
    /// Events accepted per hour with this key.
    #[arg(long, value_parser = parse_limit, value_name = "N|default")]
    pub events_per_hour: Option<LimitArg>,
}

/// `phoebe usage`
#[derive(Args, Debug)]
pub struct UsageArgs {
    /// Project slug or id (default: every project).
    #[arg(long)]
    pub project: Option<String>,
    /// How far back: 90m, 24h, 14d (at most 90d).
    #[arg(long, default_value = "24h")]
    pub period: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// "600 events (set for this project)", "no limit (phoebe.toml default)".
fn describe(s: Setting, unit: &str, owner: &str) -> String {
    let value = match s.effective {
        0 => "no limit".to_string(),
        n => format!("{n} {unit}"),
    };
    match s.own {
        Some(_) => format!("{value} (set for this {owner})"),
        None => format!("{value} (phoebe.toml default)"),
    }
}

fn print_project_limits(l: &ProjectLimits) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "project            {}/{}",
        l.project.org_slug, l.project.slug
    )?;
    writeln!(
        out,
        "events per minute  {}",
        describe(l.events_per_minute, "events", "project")
    )?;
    writeln!(
        out,
        "events per hour    {}",
        describe(l.events_per_hour, "events", "project")
    )?;
    writeln!(
        out,
        "max age            {}",
        describe(l.max_age_days, "days", "project")
    )?;
    writeln!(
        out,
        "max stored events  {}",
        describe(l.max_stored_events, "events", "project")
    )?;
    writeln!(out, "stored events      {}", l.project.stored_events)?;
    let spike = match (l.spike_protection, l.project.spike) {
        (false, _) => "off".to_string(),
        (true, None) => "on, not throttling".to_string(),
        (true, Some(s)) => format!(
            "THROTTLING since {} at {} events/minute",
            crate::api::json::iso(s.since_ms),
            s.limit_per_minute
        ),
    };
    writeln!(out, "spike protection   {spike}")?;
    Ok(())
}

/// Shows or changes a project's limits.
pub fn project_limits(ops: &Ops, a: &ProjectLimitsArgs) -> anyhow::Result<()> {
    let p = ops.find_project(&a.project)?;
    let changes = LimitChanges {
        events_per_minute: a.events_per_minute.map(|l| l.0),
        events_per_hour: a.events_per_hour.map(|l| l.0),
        max_age_days: a.max_age_days.map(|l| l.0),
        max_stored_events: a.max_stored_events.map(|l| l.0),
    };
    let changed = [
        changes.events_per_minute,
        changes.events_per_hour,
        changes.max_age_days,
        changes.max_stored_events,
    ]
    .iter()
    .any(Option::is_some);
    let l = match changed {
        true => ops.set_project_limits(&p, changes)?,
        false => ops.project_limits(&p),
    };
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&crate::api::limits_json(&l))?
        );
    } else {
        print_project_limits(&l)?;
    }
    if changed {
        eprintln!("saved; a running server applies rate limits within 5 seconds");
    }
    Ok(())
}

/// Shows or changes a key's limits.
pub fn key_limits(ops: &Ops, a: &KeyLimitsArgs) -> anyhow::Result<()> {
    let l: KeyLimits = match (a.events_per_minute, a.events_per_hour) {
        (None, None) => ops.key_limits(&a.key)?,
        (m, h) => ops.set_key_limits(&a.key, m.map(|l| l.0), h.map(|l| l.0))?,
    };
    println!(
        "key                {} (project {})",
        l.key.public_key, l.key.project_id
    );
    println!(
        "events per minute  {}",
        describe(l.events_per_minute, "events", "key")
    );
    println!(
        "events per hour    {}",
        describe(l.events_per_hour, "events", "key")
    );
    Ok(())
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn print_usage(out: &mut impl Write, r: &UsageReport) -> anyhow::Result<()> {
    let t = &r.totals;
    writeln!(
        out,
        "{}/{}: {} accepted, {} rate-limited, {} over quota, {} spike-protected, {} stored, {} evicted",
        r.project.org_slug,
        r.project.slug,
        thousands(t.accepted),
        thousands(t.rate_limited),
        thousands(t.over_quota),
        thousands(t.spike_protected),
        thousands(t.stored),
        thousands(t.evicted)
    )?;
    for (hour, u) in &r.hours {
        writeln!(
            out,
            "  {}  accepted {:>9}  rate-limited {:>7}  over-quota {:>7}  spike {:>7}  stored {:>9}  evicted {:>9}",
            crate::api::json::iso(*hour).get(..16).unwrap_or(""),
            u.accepted,
            u.rate_limited,
            u.over_quota,
            u.spike_protected,
            u.stored,
            u.evicted
        )?;
    }
    let dropped = r
        .discards
        .iter()
        .fold(0u64, |n, d| n.saturating_add(d.quantity));
    if dropped > 0 {
        let mut by_reason: Vec<(String, u64)> = Vec::new();
        for d in &r.discards {
            match by_reason.iter_mut().find(|(k, _)| *k == d.reason) {
                Some((_, n)) => *n = n.saturating_add(d.quantity),
                None => by_reason.push((d.reason.clone(), d.quantity)),
            }
        }
        by_reason.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
        let reasons: Vec<String> = by_reason
            .iter()
            .map(|(k, n)| format!("{k} {}", thousands(*n)))
            .collect();
        writeln!(
            out,
            "  your SDKs dropped {} events before sending: {}",
            thousands(dropped),
            reasons.join(", ")
        )?;
    }
    Ok(())
}

/// Prints what happened to events, per project and hour.
pub fn usage(ops: &Ops, a: &UsageArgs) -> anyhow::Result<()> {
    let ms = parse_period_ms(&a.period).ok_or_else(|| {
        anyhow::anyhow!(
            "--period {:?}: use a period like 90m, 24h or 14d (at most 90d)",
            a.period
        )
    })?;
    let since = (chrono::Utc::now().timestamp_millis() - ms).div_euclid(3_600_000) * 3_600_000;
    let projects = match &a.project {
        Some(p) => vec![ops.find_project(p)?],
        None => ops.projects()?.into_iter().map(|(p, _)| p).collect(),
    };
    let reports = projects
        .iter()
        .map(|p| ops.usage(p, since))
        .collect::<Result<Vec<_>, _>>()?;
    let mut out = std::io::stdout().lock();
    if a.json {
        let v: Vec<_> = reports.iter().map(crate::api::usage_json).collect();
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
    } else {
        for r in &reports {
            print_usage(&mut out, r)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_arguments() {
        assert_eq!(parse_limit("default"), Ok(LimitArg(None)));
        assert_eq!(parse_limit("0"), Ok(LimitArg(Some(0))));
        assert!(parse_limit("-1").unwrap_err().contains("default"));
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(1234567), "1,234,567");
        assert_eq!(thousands(12), "12");
    }
}
