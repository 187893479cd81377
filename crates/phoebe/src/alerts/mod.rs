//! Alerts at run time: one thread turns domain events into notifications in the outbox
//! ([`crate::domain::alerts::fire`] decides; the store writes them with the cursor, exactly
//! once), another delivers what is due, each channel on its own thread so a slow or hanging
//! receiver holds up nobody else, and failed attempts are retried with backoff across restarts.
//!
//! Architecture invariant: neither thread runs on the ingest or digest path; a channel can only
//! delay its own notifications.

pub mod outbound;
mod webhook;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::domain::alerts::*;
use crate::store::Store;

pub use outbound::Outbound;
pub use webhook::{sign, SIGNATURE_HEADER, TIMESTAMP_HEADER};

/// How often the threads look for work. Domain events are recorded by digest within a second
/// of the 200; this keeps the time from a new issue to its webhook well under two seconds.
const POLL: Duration = Duration::from_millis(200);

/// Domain events read per pass.
const EVENTS_PER_PASS: i64 = 500;

/// Notifications delivered at once (each on its own thread, one per channel).
const MAX_IN_FLIGHT: usize = 8;

/// What the alert threads need to know.
#[derive(Clone)]
pub struct Settings {
    /// Base URL for links to issues.
    pub public_url: String,
    /// The HTTP client channels are reached with.
    pub outbound: Outbound,
}

/// The running alert threads.
pub struct Alerts {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Alerts {
    /// Starts evaluating and delivering.
    pub fn start(store: Arc<dyn Store>, settings: Settings) -> std::io::Result<Alerts> {
        let stop = Arc::new(AtomicBool::new(false));
        let evaluate = {
            let (store, stop) = (store.clone(), stop.clone());
            std::thread::Builder::new()
                .name("alerts".into())
                .spawn(move || evaluate_loop(&*store, &stop))?
        };
        let deliver = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("alerts-delivery".into())
                .spawn(move || deliver_loop(store, settings, &stop))?
        };
        Ok(Alerts {
            stop,
            threads: vec![evaluate, deliver],
        })
    }

    /// Stops both threads; what is pending waits in the outbox for the next start.
    pub fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads {
            let _ = t.join();
        }
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn evaluate_loop(store: &dyn Store, stop: &AtomicBool) {
    while !stop.load(Ordering::SeqCst) {
        match evaluate_once(store) {
            Ok(0) => std::thread::sleep(POLL),
            Ok(_) => {}
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
    let alerts = fire(&events, &rules, |rule, issue| {
        store.last_fired(rule, issue).ok().flatten()
    });
    store.enqueue_alerts(last.id, &alerts, now_ms())?;
    if !alerts.is_empty() {
        tracing::debug!(n = alerts.len(), "alerts queued");
    }
    Ok(events.len())
}

fn deliver_loop(store: Arc<dyn Store>, settings: Settings, stop: &AtomicBool) {
    let busy: Arc<Mutex<HashSet<ChannelId>>> = Arc::default();
    while !stop.load(Ordering::SeqCst) {
        let due = match store.due_alerts(now_ms(), 100) {
            Ok(d) => d,
            Err(e) => {
                tracing::error!(error = %e, "reading the alert outbox failed; retrying in 1 s");
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
        };
        for alert in due {
            let channel = alert.alert.channel_id;
            {
                let mut busy = busy.lock().unwrap_or_else(|p| p.into_inner());
                // One attempt per channel at a time: its next alert waits for this one.
                if busy.len() >= MAX_IN_FLIGHT || !busy.insert(channel) {
                    continue;
                }
            }
            let (store, settings, done) = (store.clone(), settings.clone(), busy.clone());
            let spawned = std::thread::Builder::new()
                .name("alerts-send".into())
                .spawn(move || {
                    attempt(&*store, &settings, &alert);
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
        std::thread::sleep(POLL);
    }
}

/// One delivery attempt, recorded: sent, retried later, or given up.
fn attempt(store: &dyn Store, settings: &Settings, alert: &Alert) {
    let result = deliver(store, settings, alert);
    let attempts = alert.attempts + 1;
    let next = match &result {
        Ok(()) => None,
        Err(_) if attempts >= MAX_ATTEMPTS => None,
        Err(_) => Some(now_ms() + retry_delay_ms(attempts)),
    };
    match &result {
        Ok(()) => tracing::debug!(alert = %alert.id, "alert delivered"),
        Err(e) => tracing::warn!(
            alert = %alert.id,
            channel = %alert.alert.channel_id,
            attempts,
            error = %e,
            "alert delivery failed{}",
            if next.is_some() { "; it will be retried" } else { "; giving up" }
        ),
    }
    if let Err(e) = store.record_attempt(
        alert.id,
        result.as_ref().map(|_| ()).map_err(String::as_str),
        next,
        now_ms(),
    ) {
        tracing::error!(alert = %alert.id, error = %e, "could not record a delivery attempt; it will be made again");
    }
}

fn deliver(store: &dyn Store, settings: &Settings, alert: &Alert) -> Result<(), String> {
    let channel = store
        .channel(alert.alert.channel_id)
        .map_err(|e| format!("the channel is gone: {e}"))?;
    let issue = store
        .issue(alert.alert.issue_id)
        .map_err(|e| format!("the issue is gone: {e}"))?;
    let project = store
        .project(alert.alert.project_id)
        .map_err(|e| format!("the project is gone: {e}"))?;
    let rule = store
        .rules(Some(project.id))
        .ok()
        .and_then(|rules| rules.into_iter().find(|r| r.id == alert.alert.rule_id));
    let body = webhook::body(alert, rule.as_ref(), &issue, &project, &settings.public_url);
    send(&settings.outbound, &channel, &body)
}

/// Sends a body to a channel in its format.
fn send(outbound: &Outbound, channel: &Channel, body: &serde_json::Value) -> Result<(), String> {
    match channel.kind {
        ChannelKind::Webhook => webhook::post(outbound, channel, body),
    }
}

/// Sends a test notification to a channel now, outside the outbox: what `phoebe alerts test`
/// and the API's test action do.
pub fn send_test(outbound: &Outbound, channel: &Channel, public_url: &str) -> Result<(), String> {
    send(outbound, channel, &webhook::test_body(channel, public_url))
}
