//! Alerts at run time: one thread turns domain events into notifications in the outbox
//! ([`crate::domain::alerts::fire`] decides; the store writes them with the cursor, exactly
//! once), another delivers what is due, each channel on its own thread so a slow or hanging
//! receiver holds up nobody else, and failed attempts are retried with backoff across restarts.
//!
//! Architecture invariant: neither thread runs on the ingest or digest path; a channel can only
//! delay its own notifications.

mod chat;
pub mod email;
pub mod outbound;
pub mod summary;
mod webhook;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::domain::alerts::*;
use crate::domain::rules::IssueEvent;
use crate::domain::IssueId;
use crate::store::Store;

pub use chat::split_target;
pub use outbound::Outbound;
pub use webhook::{sign, SIGNATURE_HEADER, TIMESTAMP_HEADER};

/// How often the threads look for work when nobody rang: digest rings when it recorded domain
/// events, and the evaluating thread when it queued notifications; polling is the fallback.
const POLL: Duration = Duration::from_millis(200);

/// How often threshold rules are checked against the per-minute counts.
const COUNT_EVERY: Duration = Duration::from_secs(5);

/// Domain events read per pass.
const EVENTS_PER_PASS: i64 = 500;

/// Channels delivered to at once (each on its own thread).
const MAX_IN_FLIGHT: usize = 8;

/// Due notifications read per pass; a storm's worth for one channel goes out as one message.
const MAX_DUE: usize = 1000;

/// After a channel was sent something, what comes due for it within this long waits and goes
/// out folded into one message: a storm of new issues is a handful of messages, not thousands,
/// while a quiet channel hears of its first alert at once.
const FOLD_WINDOW: Duration = Duration::from_secs(5);

/// What the alert threads need to know.
#[derive(Clone)]
pub struct Settings {
    /// Base URL for links to issues.
    pub public_url: String,
    /// The HTTP client channels are reached with.
    pub outbound: Outbound,
}

/// A wake-up call between threads: `ring` wakes whoever `wait`s, or makes their next wait
/// return at once; waits also end after a timeout, so a missed ring costs one poll.
#[derive(Default)]
pub struct Signal {
    rung: Mutex<u64>,
    cond: Condvar,
}

impl Signal {
    /// Wakes the waiter.
    pub fn ring(&self) {
        *self.rung.lock().unwrap_or_else(|p| p.into_inner()) += 1;
        self.cond.notify_all();
    }

    /// Waits for a ring newer than `seen` (updated), or `timeout`.
    fn wait(&self, seen: &mut u64, timeout: Duration) {
        let guard = self.rung.lock().unwrap_or_else(|p| p.into_inner());
        let (guard, _) = self
            .cond
            .wait_timeout_while(guard, timeout, |rung| *rung == *seen)
            .unwrap_or_else(|p| p.into_inner());
        *seen = *guard;
    }
}

/// The running alert threads.
pub struct Alerts {
    stop: Arc<AtomicBool>,
    signals: [Arc<Signal>; 3],
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Alerts {
    /// Starts evaluating and delivering; `events` is rung when digest recorded domain events.
    pub fn start(
        store: Arc<dyn Store>,
        settings: Settings,
        events: Arc<Signal>,
    ) -> std::io::Result<Alerts> {
        let stop = Arc::new(AtomicBool::new(false));
        let due = Arc::new(Signal::default());
        let evaluate = {
            let (store, stop, events, due) =
                (store.clone(), stop.clone(), events.clone(), due.clone());
            std::thread::Builder::new()
                .name("alerts".into())
                .spawn(move || evaluate_loop(&*store, &stop, &events, &due))?
        };
        let summaries = Arc::new(Signal::default());
        let summarize = {
            let (store, settings, stop, wake) = (
                store.clone(),
                settings.clone(),
                stop.clone(),
                summaries.clone(),
            );
            std::thread::Builder::new()
                .name("alerts-summary".into())
                .spawn(move || summary_loop(&*store, &settings, &stop, &wake))?
        };
        let deliver = {
            let (stop, due) = (stop.clone(), due.clone());
            std::thread::Builder::new()
                .name("alerts-delivery".into())
                .spawn(move || deliver_loop(store, settings, &stop, &due))?
        };
        Ok(Alerts {
            stop,
            signals: [events, due, summaries],
            threads: vec![evaluate, deliver, summarize],
        })
    }

    /// Stops both threads; what is pending waits in the outbox for the next start.
    pub fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        for s in &self.signals {
            s.ring();
        }
        for t in self.threads {
            let _ = t.join();
        }
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn evaluate_loop(store: &dyn Store, stop: &AtomicBool, events: &Signal, due: &Signal) {
    let mut seen = 0;
    let mut counted_at = Instant::now();
    while !stop.load(Ordering::SeqCst) {
        if counted_at.elapsed() >= COUNT_EVERY {
            counted_at = Instant::now();
            match evaluate_thresholds(store, now_ms()) {
                Ok(0) => {}
                Ok(_) => due.ring(),
                Err(e) => {
                    tracing::error!(error = %e, "checking frequency and user-count rules failed; trying again in 5 s")
                }
            }
        }
        match evaluate_once(store) {
            Ok(0) => events.wait(&mut seen, POLL),
            Ok(_) => due.ring(),
            Err(e) => {
                tracing::error!(error = %e, "turning domain events into alerts failed; retrying in 1 s");
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    }
}

/// One pass: the next domain events, the rules that fire on them, written with the cursor.
/// Returns how many events it consumed.
pub fn evaluate_once(store: &dyn Store) -> anyhow::Result<usize> {
    let cursor = store.alerts_cursor()?;
    let events = store.domain_events(cursor, EVENTS_PER_PASS)?;
    let Some(last) = events.last() else {
        return Ok(0);
    };
    let rules = store.rules(None)?;
    let mut alerts = fire(&events, &rules, |rule, issue| {
        store.last_fired(rule, issue).ok().flatten()
    });
    if events.iter().any(|e| e.what == IssueEvent::Resolved) {
        let on_call: HashSet<ChannelId> = store
            .channels(None)?
            .into_iter()
            .filter(|c| c.kind == ChannelKind::PagerDuty)
            .map(|c| c.id)
            .collect();
        alerts.extend(close_incidents(&events, |issue| {
            paged(store, &on_call, issue)
        }));
    }
    store.enqueue_alerts(last.id, &alerts, now_ms())?;
    if !alerts.is_empty() {
        tracing::debug!(n = alerts.len(), "alerts queued");
    }
    Ok(events.len())
}

/// The (rule, channel) pairs that told an on-call channel about an issue, newest first.
fn paged(
    store: &dyn Store,
    on_call: &HashSet<ChannelId>,
    issue: IssueId,
) -> Vec<(RuleId, ChannelId)> {
    store
        .alert_history(None, Some(issue), 1000)
        .unwrap_or_default()
        .into_iter()
        .filter(|a| on_call.contains(&a.alert.channel_id) && a.alert.what != IssueEvent::Resolved)
        .map(|a| (a.alert.rule_id, a.alert.channel_id))
        .collect()
}

/// Checks each threshold rule (frequency, distinct users) against the counts at `now_ms` and
/// queues what fires. Returns how many notifications it queued.
pub fn evaluate_thresholds(store: &dyn Store, now_ms: i64) -> anyhow::Result<usize> {
    let rules: Vec<Rule> = store
        .rules(None)?
        .into_iter()
        .filter(|r| r.trigger.threshold().is_some())
        .collect();
    let mut alerts = Vec::new();
    for rule in &rules {
        let Some((threshold, minutes)) = rule.trigger.threshold() else {
            continue;
        };
        let since = now_ms - minutes * 60_000;
        let counts = match rule.trigger {
            Trigger::Users { .. } => store.widely_seen_issues(rule.project_id, since, threshold)?,
            _ => store.frequent_issues(rule.project_id, since, threshold)?,
        };
        let mut over = Vec::with_capacity(counts.len());
        for (issue_id, count) in counts {
            // Filters look at the issue's newest event; without filters nothing needs reading.
            let facts = if rule.filters == Filters::default() {
                Facts::default()
            } else {
                store
                    .issue_event_edge(issue_id, true)?
                    .map(|e| Facts::from_json(&e.payload))
                    .unwrap_or_default()
            };
            over.push(OverThreshold {
                issue_id,
                count,
                facts,
            });
        }
        alerts.extend(fire_thresholds(rule, &over, now_ms, |rule, issue| {
            store.last_fired(rule, issue).ok().flatten()
        }));
    }
    if !alerts.is_empty() {
        store.enqueue_alerts(store.alerts_cursor()?, &alerts, now_ms)?;
        tracing::debug!(n = alerts.len(), "threshold alerts queued");
    }
    Ok(alerts.len())
}

/// How often the summary thread looks for summaries that came due.
const SUMMARY_CHECK: Duration = Duration::from_secs(60);

fn summary_loop(store: &dyn Store, settings: &Settings, stop: &AtomicBool, wake: &Signal) {
    let mut seen = 0;
    while !stop.load(Ordering::SeqCst) {
        if let Err(e) = summary::send_due(store, settings, now_ms()) {
            tracing::error!(error = %e, "looking for due summary emails failed; trying again in a minute");
        }
        wake.wait(&mut seen, SUMMARY_CHECK);
    }
}

fn deliver_loop(store: Arc<dyn Store>, settings: Settings, stop: &AtomicBool, due_now: &Signal) {
    let mut seen = 0;
    let busy: Arc<Mutex<HashSet<ChannelId>>> = Arc::default();
    let last_sent: Arc<Mutex<HashMap<ChannelId, Instant>>> = Arc::default();
    while !stop.load(Ordering::SeqCst) {
        let due = match store.due_alerts(now_ms(), MAX_DUE as i64) {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = %e, "reading the alert outbox failed; retrying in 1 s");
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
        };
        for (channel, alerts) in by_channel(due) {
            let folding = last_sent
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&channel)
                .is_some_and(|at| at.elapsed() < FOLD_WINDOW);
            if folding {
                continue;
            }
            {
                let mut busy = busy.lock().unwrap_or_else(|p| p.into_inner());
                // One attempt per channel at a time: what comes due meanwhile waits, and goes
                // out folded into one message with whatever else came due by then.
                if busy.len() >= MAX_IN_FLIGHT || !busy.insert(channel) {
                    continue;
                }
            }
            let (store, settings, done, sent) = (
                store.clone(),
                settings.clone(),
                busy.clone(),
                last_sent.clone(),
            );
            let spawned = std::thread::Builder::new()
                .name("alerts-send".into())
                .spawn(move || {
                    attempt(&*store, &settings, &alerts);
                    sent.lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(channel, Instant::now());
                    done.lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&channel);
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a delivery thread");
                busy.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&channel);
            }
        }
        due_now.wait(&mut seen, POLL);
    }
}

/// Due notifications grouped by channel, each group oldest first, channels in the order their
/// oldest notification came due.
fn by_channel(due: Vec<Alert>) -> Vec<(ChannelId, Vec<Alert>)> {
    let mut groups: Vec<(ChannelId, Vec<Alert>)> = Vec::new();
    for alert in due {
        match groups
            .iter_mut()
            .find(|(c, _)| *c == alert.alert.channel_id)
        {
            Some((_, group)) => group.push(alert),
            None => groups.push((alert.alert.channel_id, vec![alert])),
        }
    }
    groups
}

/// One delivery attempt for a channel's due notifications — one message, a storm digest when
/// there are several — recorded for each: sent, retried later, or given up.
fn attempt(store: &dyn Store, settings: &Settings, alerts: &[Alert]) {
    let result = deliver(store, settings, alerts);
    let now = now_ms();
    for alert in alerts {
        let attempts = alert.attempts + 1;
        let next = match &result {
            Ok(()) => None,
            Err(_) if attempts >= MAX_ATTEMPTS => None,
            Err(_) => Some(now + retry_delay_ms(attempts)),
        };
        if let Err(e) = &result {
            tracing::warn!(
                alert = %alert.id,
                channel = %alert.alert.channel_id,
                attempts,
                error = %e,
                "alert delivery failed{}",
                if next.is_some() { "; it will be retried" } else { "; giving up" }
            );
        }
        let outcome = result.as_ref().map(|_| ()).map_err(String::as_str);
        if let Err(e) = store.record_attempt(alert.id, outcome, next, now) {
            tracing::error!(alert = %alert.id, error = %e, "could not record a delivery attempt; it will be made again");
        }
    }
    if result.is_ok() {
        tracing::debug!(n = alerts.len(), "alerts delivered");
    }
}

fn deliver(store: &dyn Store, settings: &Settings, alerts: &[Alert]) -> Result<(), String> {
    let first = alerts.first().ok_or("nothing to deliver")?;
    let channel = store
        .channel(first.alert.channel_id)
        .map_err(|e| format!("the channel is gone: {e}"))?;
    let project = store
        .project(first.alert.project_id)
        .map_err(|e| format!("the project is gone: {e}"))?;
    let channel = email::with_members(store, channel, project.org_id)?;
    let (out, url) = (&settings.outbound, settings.public_url.as_str());
    if let [alert] = alerts {
        return deliver_one(store, settings, &channel, &project, alert);
    }
    if channel.kind == ChannelKind::PagerDuty {
        // On-call services keep one incident per issue: each notification is its own event,
        // never a digest (a repeat after a failure is deduplicated by the issue's key).
        for alert in alerts {
            deliver_one(store, settings, &channel, &project, alert)?;
        }
        return Ok(());
    }
    // An issue deleted since is left out of the digest; its notification counts as sent.
    let mut items: Vec<(&Alert, crate::domain::Issue)> = alerts
        .iter()
        .filter_map(|a| store.issue(a.alert.issue_id).ok().map(|i| (a, i)))
        .collect();
    worst_first(&mut items);
    match channel.kind {
        ChannelKind::Webhook => {
            webhook::post(out, &channel, &webhook::digest_body(&items, &project, url))
        }
        ChannelKind::Email => email::send(
            out.smtp(),
            &channel.target,
            email::digest(&items, &project, url),
        ),
        _ => chat::post(out, &channel, &chat::Notice::digest(&items, &project, url)),
    }
}

/// Sends one notification to a channel in its own message.
fn deliver_one(
    store: &dyn Store,
    settings: &Settings,
    channel: &Channel,
    project: &crate::domain::Project,
    alert: &Alert,
) -> Result<(), String> {
    let (out, url) = (&settings.outbound, settings.public_url.as_str());
    let issue = store
        .issue(alert.alert.issue_id)
        .map_err(|e| format!("the issue is gone: {e}"))?;
    match channel.kind {
        ChannelKind::Webhook => {
            let rules = store.rules(Some(project.id)).unwrap_or_default();
            let rule = rules.iter().find(|r| r.id == alert.alert.rule_id);
            let body = webhook::body(alert, rule, &issue, project, url);
            webhook::post(out, channel, &body)
        }
        ChannelKind::Slack
        | ChannelKind::Discord
        | ChannelKind::GoogleChat
        | ChannelKind::Teams
        | ChannelKind::Ntfy
        | ChannelKind::Telegram
        | ChannelKind::PagerDuty => chat::post(
            out,
            channel,
            &chat::Notice::one(alert, &issue, project, url),
        ),
        ChannelKind::Email => {
            let frames = match store.issue_event_edge(issue.id, true) {
                Ok(Some(event)) => email::top_frames(&event.payload, 5),
                _ => Vec::new(),
            };
            let tags = email::top_tags(&store.issue_tags(issue.id, 1).unwrap_or_default());
            let mail = email::one(alert, &issue, project, &frames, &tags, url);
            email::send(out.smtp(), &channel.target, mail)
        }
    }
}

/// Sends a test notification to a channel now, outside the outbox: what `phoebe alerts test`
/// and the API's test action do.
pub fn send_test(outbound: &Outbound, channel: &Channel, public_url: &str) -> Result<(), String> {
    match channel.kind {
        ChannelKind::Webhook => {
            webhook::post(outbound, channel, &webhook::test_body(channel, public_url))
        }
        ChannelKind::Email => email::send(
            outbound.smtp(),
            &channel.target,
            email::test(channel, public_url),
        ),
        _ => chat::post(outbound, channel, &chat::Notice::test(channel, public_url)),
    }
}
