//! The background eviction thread: every `[retention] interval_secs` it runs small eviction
//! steps until nothing is left to evict, pausing between steps so digest's batches get the
//! writer in between, then returns the freed space to the file system.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::config::RetentionConfig;
use crate::domain::{Eviction, RetentionPolicy};
use crate::store::Maintenance;

/// Pause between steps: the writer lock is free for digest meanwhile.
const PAUSE: Duration = Duration::from_millis(20);

/// The running eviction thread.
pub struct Retention {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl Retention {
    /// Starts evicting under `config`.
    pub fn start(
        store: Arc<dyn Maintenance>,
        config: &RetentionConfig,
    ) -> std::io::Result<Retention> {
        let policy = RetentionPolicy {
            max_age_days: config.max_age_days,
            max_events_per_project: config.max_events_per_project,
            max_disk_bytes: config.max_disk_mb.saturating_mul(1 << 20),
            batch: config.batch,
        };
        let interval = Duration::from_secs(config.interval_secs);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::Builder::new()
            .name("retention".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    run_pass(&*store, &policy, &flag);
                    sleep_unless_stopped(interval, &flag);
                }
            })?;
        Ok(Retention {
            stop,
            handle: Some(handle),
        })
    }

    /// Stops after the current step.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            h.thread().unpark();
            let _ = h.join();
        }
    }
}

fn sleep_unless_stopped(d: Duration, stop: &AtomicBool) {
    let until = std::time::Instant::now() + d;
    while !stop.load(Ordering::Relaxed) {
        let now = std::time::Instant::now();
        if now >= until {
            break;
        }
        std::thread::park_timeout(until - now);
    }
}

/// Free space below this stays in the file: new events reuse it, and returning it to the file
/// system only for the next inserts to take it back costs CPU for nothing.
const KEEP_FREE_BYTES: u64 = 16 << 20;

/// Whether enough of the file is free to be worth handing back: more than [`KEEP_FREE_BYTES`]
/// and more than a tenth of what is in use.
fn worth_vacuuming(store: &dyn Maintenance) -> bool {
    match store.space() {
        Ok((used, free)) => free > KEEP_FREE_BYTES && free > used / 10,
        Err(_) => false,
    }
}

/// Evicts until a step comes back short, then vacuums; logs what it did.
fn run_pass(store: &dyn Maintenance, policy: &RetentionPolicy, stop: &AtomicBool) {
    let mut total = Eviction::default();
    loop {
        let now = chrono::Utc::now().timestamp_millis();
        match store.evict_step(policy, now) {
            Ok(e) => {
                total.by_age += e.by_age;
                total.by_count += e.by_count;
                total.by_disk += e.by_disk;
                total.kept += e.kept;
                if !e.more || stop.load(Ordering::Relaxed) {
                    break;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "evicting old events failed; retrying at the next pass");
                break;
            }
        }
        std::thread::sleep(PAUSE);
    }
    let mut pages = 0;
    while !stop.load(Ordering::Relaxed) && worth_vacuuming(store) {
        match store.vacuum_step() {
            Ok(0) => break,
            Ok(n) => pages += n,
            Err(e) => {
                tracing::warn!(error = %e, "returning free space to the disk failed; retrying at the next pass");
                break;
            }
        }
        std::thread::sleep(PAUSE);
    }
    if total != Eviction::default() {
        tracing::info!(
            by_age = total.by_age,
            by_project_cap = total.by_count,
            by_disk_budget = total.by_disk,
            kept_items = total.kept,
            freed_pages = pages,
            "retention evicted stored events (issues and counts stay)"
        );
        if total.by_disk > 0 {
            tracing::warn!("the database is over [retention] max_disk_mb: the oldest events were evicted to stay under it; raise the budget or shorten max_age_days");
        }
    }
}
