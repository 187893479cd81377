//! Sentry-shaped JSON for the web API (camelCase, string ids, ISO 8601 times), so tools written
//! for Sentry's API read Phoebe's.

use chrono::{TimeZone, Utc};
use serde_json::{json, Map, Value};

use crate::domain::{
    Activity, Issue, IssueStatus, Org, Project, ProjectKey, StoredEvent, TagCount,
};

/// ms since the epoch as ISO 8601 UTC with milliseconds.
pub fn iso(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms)
        .single()
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// Sentry's short ids count in base 36: `DEFAULT-1A`.
pub fn short_id(project_slug: &str, n: i64) -> String {
    const DIGITS: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut n = n.max(0) as u64;
    let mut s = Vec::new();
    loop {
        s.push(DIGITS[(n % 36) as usize]);
        n /= 36;
        if n == 0 {
            break;
        }
    }
    s.reverse();
    format!(
        "{}-{}",
        project_slug.to_ascii_uppercase(),
        String::from_utf8_lossy(&s)
    )
}

/// An organization.
pub fn org(o: &Org) -> Value {
    json!({
        "id": o.id.to_string(), "slug": o.slug, "name": o.name, "dateCreated": iso(o.created_ms),
        "isEarlyAdopter": false, "require2FA": false, "requireEmailVerification": false, "features": [],
        "status": {"id": "active", "name": "active"},
    })
}

/// A project.
pub fn project(p: &Project) -> Value {
    json!({
        "id": p.id.to_string(), "slug": p.slug, "name": p.name, "platform": p.platform,
        "dateCreated": iso(p.created_ms), "isMember": true, "hasAccess": true, "team": null, "teams": [],
        "organization": {"id": p.org_id.to_string(), "slug": p.org_slug, "name": p.org_slug},
        "storedEvents": p.stored_events,
        "spikeProtection": {
            "active": p.spike.is_some(),
            "since": p.spike.map(|s| iso(s.since_ms)),
            "limitPerMinute": p.spike.map(|s| s.limit_per_minute),
        },
    })
}

/// A DSN key.
pub fn key(k: &ProjectKey, dsn: &str) -> Value {
    json!({
        "id": k.id.to_string(), "name": k.label, "public": k.public_key, "secret": null,
        "projectId": k.project_id, "isActive": k.is_active, "dateCreated": iso(k.created_ms), "rateLimit": null,
        "dsn": {"public": dsn, "secret": dsn},
    })
}

/// Sentry's `statusDetails`: the conditions of a resolve or an ignore.
fn status_details(i: &Issue) -> Value {
    let mut d = json!({});
    if let Some(r) = &i.resolved_in_release {
        d["inNextRelease"] = json!(true);
        d["currentRelease"] = json!(r);
    }
    if let Some(ms) = i.ignore_until_ms {
        d["ignoreUntil"] = json!(iso(ms));
    }
    if let Some(n) = i.ignore_until_count {
        d["ignoreUntilCount"] = json!(n);
    }
    d
}

/// One entry of an issue's activity log (Sentry's `activity` shape).
pub fn activity(a: &Activity) -> Value {
    json!({
        "id": a.id.to_string(),
        "type": a.kind.as_str(),
        "data": a.data,
        "user": a.user.as_ref().map(|l| json!({"id": l, "username": l, "name": l})),
        "dateCreated": iso(a.created_ms),
    })
}

/// An issue, optionally with its `stats` series.
pub fn issue(
    i: &Issue,
    p: &Project,
    public_url: &str,
    stats: Option<(&str, &[(i64, i64)])>,
) -> Value {
    let metadata: Value = serde_json::from_str(&i.metadata).unwrap_or_else(|_| json!({}));
    let mut v = json!({
        "id": i.id.to_string(),
        "shortId": short_id(&p.slug, i.short_id),
        "title": i.title,
        "culprit": i.culprit,
        "level": i.level,
        "status": i.status.as_str(),
        "substatus": match i.status {
            IssueStatus::Unresolved if i.is_regression => Some("regressed"),
            IssueStatus::Unresolved if i.times_seen <= 1 => Some("new"),
            IssueStatus::Unresolved => Some("ongoing"),
            IssueStatus::Ignored => Some("archived_forever"),
            IssueStatus::Resolved => None,
        },
        "isRegression": i.is_regression,
        "statusDetails": status_details(i),
        "type": i.kind,
        "metadata": metadata,
        "count": i.times_seen.to_string(),
        "userCount": i.user_count,
        "firstSeen": iso(i.first_seen_ms),
        "lastSeen": iso(i.last_seen_ms),
        "firstRelease": i.first_release.as_ref().map(|r| json!({"version": r})),
        "lastRelease": i.last_release.as_ref().map(|r| json!({"version": r})),
        "platform": i.platform,
        "logger": i.logger,
        "project": {"id": p.id.to_string(), "name": p.name, "slug": p.slug, "platform": p.platform},
        "permalink": format!("{public_url}/issues/{}/", i.id),
        "numComments": i.num_comments, "isPublic": false, "shareId": null,
        "assignedTo": i.assignee.as_ref().map(|l| json!({"type": "user", "id": l, "name": l, "username": l})),
        "hasSeen": false, "isBookmarked": false, "isSubscribed": false,
    });
    if let Some((period, series)) = stats {
        v["stats"] =
            json!({ period: series.iter().map(|(t, c)| json!([t, c])).collect::<Vec<_>>() });
    }
    v
}

/// Tag counts grouped per key, as `/issues/{id}/tags/` returns them.
pub fn tags(counts: &[TagCount]) -> Value {
    let mut keys: Vec<(String, Vec<&TagCount>)> = Vec::new();
    for c in counts {
        match keys.iter_mut().find(|(k, _)| *k == c.key) {
            Some((_, v)) => v.push(c),
            None => keys.push((c.key.clone(), vec![c])),
        }
    }
    Value::Array(
        keys.into_iter()
            .map(|(key, values)| {
                json!({
                    "key": key, "name": key,
                    "totalValues": values.first().map(|c| c.key_total).unwrap_or(0),
                    "topValues": values.iter().map(|c| json!({
                        "key": key, "value": c.value, "name": c.value, "count": c.count,
                        "firstSeen": iso(c.first_seen_ms), "lastSeen": iso(c.last_seen_ms),
                    })).collect::<Vec<_>>(),
                })
            })
            .collect(),
    )
}

/// A stack frame as Sentry's event API spells it (camelCase, source context as
/// `[[line number, text], ...]`).
fn api_frame(f: &Value) -> Value {
    let g = |k: &str| f.get(k).cloned().unwrap_or(Value::Null);
    let mut context = Vec::new();
    if let Some(line) = f.get("lineno").and_then(Value::as_i64) {
        let pre = f
            .get("pre_context")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let first = line - pre.len() as i64;
        for (i, text) in pre.into_iter().enumerate() {
            context.push(json!([first + i as i64, text]));
        }
        if let Some(text) = f.get("context_line") {
            context.push(json!([line, text]));
        }
        for (i, text) in f
            .get("post_context")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .enumerate()
        {
            context.push(json!([line + 1 + i as i64, text]));
        }
    }
    json!({
        "filename": g("filename"), "absPath": g("abs_path"), "module": g("module"), "package": g("package"),
        "platform": g("platform"), "function": g("function"), "rawFunction": g("raw_function"), "symbol": g("symbol"),
        "lineNo": g("lineno"), "colNo": g("colno"), "inApp": f.get("in_app").and_then(Value::as_bool).unwrap_or(false),
        "context": context, "vars": g("vars"), "instructionAddr": g("instruction_addr"),
        "symbolAddr": g("symbol_addr"), "imageAddr": g("image_addr"), "trust": g("trust"), "errors": null,
        // Source maps: the minified location (`sourcemap`) or why there is none (`sourcemap_error`).
        "data": g("data"),
    })
}

/// A stack trace with its frames in the API's spelling.
fn api_stacktrace(st: &Value) -> Value {
    let frames: Vec<Value> = st
        .get("frames")
        .and_then(Value::as_array)
        .map(|fs| fs.iter().map(api_frame).collect())
        .unwrap_or_default();
    json!({ "frames": frames, "framesOmitted": st.get("frames_omitted").cloned().unwrap_or(Value::Null), "registers": st.get("registers").cloned().unwrap_or(Value::Null), "hasSystemFrames": st.get("frames").and_then(Value::as_array).is_some_and(|fs| fs.iter().any(|f| f.get("in_app") != Some(&Value::Bool(true)))) })
}

/// Exceptions or threads with their stack traces in the API's spelling.
fn api_values(values: &Value) -> Value {
    let list: Vec<Value> = values
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| {
            let mut v = v.clone();
            if let Some(st) = v.get("stacktrace").filter(|s| s.is_object()) {
                v["stacktrace"] = api_stacktrace(st);
            }
            if let Some(st) = v.get("raw_stacktrace").filter(|s| s.is_object()) {
                v["rawStacktrace"] = api_stacktrace(st);
            }
            v
        })
        .collect();
    Value::Array(list)
}

fn entry(ty: &str, data: Value) -> Value {
    json!({ "type": ty, "data": data })
}

/// An event as Sentry's event endpoints return it: the interfaces as `entries`, tags as
/// `[{key, value}]`, plus the grouping explanation.
pub fn event(e: &StoredEvent, issue: Option<&Issue>, grouping: Option<Value>) -> Value {
    let empty = Map::new();
    let p = e.payload.as_object().unwrap_or(&empty);
    let mut entries = Vec::new();
    if let Some(exc) = p.get("exception") {
        let values = exc.get("values").cloned().unwrap_or(Value::Array(vec![]));
        let has_system = values
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|x| {
                x.pointer("/stacktrace/frames")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
            })
            .any(|f| f.get("in_app") != Some(&Value::Bool(true)));
        entries.push(entry(
            "exception",
            json!({"values": api_values(&values), "hasSystemFrames": has_system, "excOmitted": null}),
        ));
    }
    if let Some(msg) = p.get("logentry") {
        entries.push(entry("message", msg.clone()));
    }
    if let Some(st) = p.get("stacktrace") {
        entries.push(entry("stacktrace", api_stacktrace(st)));
    }
    if let Some(th) = p.get("threads") {
        entries.push(entry(
            "threads",
            json!({"values": api_values(th.get("values").unwrap_or(&Value::Null))}),
        ));
    }
    if let Some(b) = p.get("breadcrumbs") {
        entries.push(entry(
            "breadcrumbs",
            json!({"values": b.get("values").cloned().unwrap_or(Value::Array(vec![]))}),
        ));
    }
    if let Some(r) = p.get("request") {
        entries.push(entry("request", r.clone()));
    }
    if let Some(c) = p.get("csp") {
        entries.push(entry("csp", c.clone()));
    }
    if let Some(d) = p.get("debug_meta") {
        entries.push(entry("debugmeta", d.clone()));
    }
    let tags: Vec<Value> = p
        .get("tags")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|pair| Some(json!({"key": pair.get(0)?, "value": pair.get(1)?})))
        .collect();
    let message = p
        .get("logentry")
        .and_then(|l| l.get("formatted").or_else(|| l.get("message")))
        .cloned()
        .unwrap_or(Value::String(String::new()));
    let id = e.event_id.simple().to_string();
    json!({
        "id": id,
        "eventID": id,
        "groupID": e.issue_id.to_string(),
        "projectID": e.project_id.to_string(),
        "title": issue.map(|i| i.title.clone()).unwrap_or_default(),
        "culprit": issue.map(|i| i.culprit.clone()).unwrap_or_default(),
        "message": message,
        "platform": p.get("platform"),
        "type": issue.map(|i| i.kind.clone()),
        "dateCreated": iso(e.timestamp_ms),
        "dateReceived": iso(e.received_ms),
        "level": p.get("level"),
        "release": p.get("release").map(|r| json!({"version": r})),
        "environment": p.get("environment"),
        "dist": p.get("dist"),
        "location": p.get("transaction"),
        "tags": tags,
        "entries": entries,
        "contexts": p.get("contexts").cloned().unwrap_or(json!({})),
        "context": p.get("extra").cloned().unwrap_or(json!({})),
        "user": p.get("user"),
        "sdk": p.get("sdk"),
        "packages": p.get("modules").cloned().unwrap_or(json!({})),
        "fingerprints": [e.grouping_hash],
        "errors": p.get("errors").cloned().unwrap_or(json!([])),
        "grouping": {"hash": e.grouping_hash, "variant": e.grouping_variant, "explanation": grouping},
        "size": e.stored_bytes,
    })
}

/// An alert channel; its secret is never shown, only whether it has one.
pub fn alert_channel(c: &crate::domain::alerts::Channel) -> Value {
    json!({
        "id": c.id.to_string(), "project": c.project_id.to_string(), "kind": c.kind.as_str(),
        "name": c.name, "target": c.shown_target(), "signed": c.secret.is_some(),
        "dateCreated": iso(c.created_ms),
    })
}

/// A deploy of a release.
pub fn deploy(d: &crate::domain::Deploy) -> Value {
    json!({
        "id": d.id.to_string(), "environment": d.environment, "name": d.name, "url": d.url,
        "dateStarted": d.started_ms.map(iso), "dateFinished": iso(d.finished_ms),
    })
}

/// A release as Sentry's release endpoints answer (`sentry-cli` reads `version`,
/// `dateCreated`, `dateReleased`, `lastEvent`, `newGroups`, `projects`, `lastCommit`), plus
/// its event count. `projects` are the release's projects that still exist.
pub fn release(r: &crate::domain::Release, projects: &[Project]) -> Value {
    let listed: Vec<Value> = r
        .projects
        .iter()
        .filter_map(|id| projects.iter().find(|p| p.id == *id))
        .map(|p| {
            json!({
                "id": p.id.to_string(), "slug": p.slug, "name": p.name, "platform": p.platform,
                "platforms": p.platform.iter().collect::<Vec<_>>(), "hasHealthData": false,
                "newGroups": null,
            })
        })
        .collect();
    json!({
        "version": r.version, "shortVersion": r.version, "ref": null, "url": r.url,
        "status": r.status.as_str(),
        "dateCreated": iso(r.created_ms), "dateReleased": r.released_ms.map(iso),
        "dateStarted": r.started_ms.map(iso),
        "firstEvent": r.first_event_ms.map(iso), "lastEvent": r.last_event_ms.map(iso),
        "newGroups": r.new_issues, "eventCount": r.events,
        "projects": listed, "lastCommit": null, "commitCount": 0, "authors": [],
        "lastDeploy": r.last_deploy.as_ref().map(deploy), "deployCount": r.deploy_count,
        "data": {},
    })
}

/// An alert rule. `frequency` is Sentry's name for the minutes a rule stays quiet per issue.
pub fn alert_rule(r: &crate::domain::alerts::Rule) -> Value {
    json!({
        "id": r.id.to_string(), "project": r.project_id.to_string(), "trigger": r.trigger.as_str(),
        "threshold": r.trigger.threshold().map(|(n, _)| n),
        "windowMinutes": r.trigger.threshold().map(|(_, m)| m),
        "environment": r.filters.environment, "release": r.filters.release,
        "level": r.filters.min_level,
        "tags": r.filters.tags.iter().map(|(k, v)| (k.clone(), Value::from(v.as_str())))
            .collect::<serde_json::Map<String, Value>>(),
        "description": r.describe(),
        "channels": r.channels.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
        "frequency": r.cooldown_ms / 60_000, "cooldownSeconds": r.cooldown_ms / 1000,
        "dateCreated": iso(r.created_ms),
    })
}

/// One notification with its delivery state.
pub fn alert(a: &crate::domain::alerts::Alert) -> Value {
    use crate::domain::alerts::AlertState;
    json!({
        "id": a.id.to_string(), "rule": a.alert.rule_id.to_string(),
        "channel": a.alert.channel_id.to_string(), "project": a.alert.project_id.to_string(),
        "issue": a.alert.issue_id.to_string(), "event": a.alert.what.kind(),
        "state": a.state.as_str(), "attempts": a.attempts, "lastError": a.last_error,
        "dateCreated": iso(a.created_ms), "dateSent": a.sent_ms.map(iso),
        "nextAttempt": (a.state == AlertState::Pending).then(|| iso(a.next_attempt_ms)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_ids_are_base36() {
        assert_eq!(short_id("web", 1), "WEB-1");
        assert_eq!(short_id("web", 46), "WEB-1A");
        assert_eq!(short_id("web", 0), "WEB-0");
    }

    #[test]
    fn frames_use_the_api_spelling_and_numbered_context() {
        let f = json!({"abs_path": "/a.py", "lineno": 10, "in_app": true, "pre_context": ["a", "b"],
                       "context_line": "c", "post_context": ["d"], "function": "f"});
        let v = api_frame(&f);
        assert_eq!(v["absPath"], "/a.py");
        assert_eq!(v["lineNo"], 10);
        assert_eq!(v["inApp"], true);
        assert_eq!(
            v["context"],
            json!([[8, "a"], [9, "b"], [10, "c"], [11, "d"]])
        );
    }

    #[test]
    fn iso_has_millis_and_z() {
        assert_eq!(iso(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
    }
}
