//! Live updates: `GET /live` is a Server-Sent Events stream that says when digest stored new
//! events or someone changed an issue (dashboard or API), so open pages refresh their lists and
//! counts without a reload. It watches counters once a second (nothing to wire into digest)
//! and ends when the server shuts down, so open browser tabs never hold a graceful shutdown.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream};
use serde_json::json;
use tokio::sync::watch;

use super::session::Viewer;
use super::Shared;
use crate::ops::Ops;
use crate::telemetry::Metrics;

/// How often the stream looks for new events; also the most often a page refreshes.
const TICK: Duration = Duration::from_secs(1);

struct Watch {
    metrics: Arc<Metrics>,
    ops: Ops,
    stopping: watch::Receiver<bool>,
    tick: tokio::time::Interval,
    seen: (u64, u64, u64),
}

impl Watch {
    /// (events stored, issues created, issue changes) so far.
    fn counts(&self) -> (u64, u64, u64) {
        (
            self.metrics.digest_events_stored.get(),
            self.metrics.digest_issues_created.get(),
            self.ops.issue_changes(),
        )
    }

    /// Waits for the next change; `None` once the server is stopping.
    async fn next(mut self) -> Option<(Result<Event, Infallible>, Watch)> {
        loop {
            if *self.stopping.borrow() {
                return None;
            }
            tokio::select! {
                _ = self.tick.tick() => {}
                _ = self.stopping.changed() => return None,
            }
            let now = self.counts();
            if now != self.seen {
                let data = json!({
                    "events": now.0 - self.seen.0,
                    "newIssues": now.1 - self.seen.1,
                    "issueChanges": now.2 - self.seen.2,
                });
                self.seen = now;
                let event = Event::default().event("update").data(data.to_string());
                return Some((Ok(event), self));
            }
        }
    }
}

pub async fn stream(
    state: Shared,
    _viewer: Viewer,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut w = Watch {
        metrics: state.0.metrics.clone(),
        ops: state.0.ops.clone(),
        stopping: state.0.stopping.clone(),
        tick,
        seen: (0, 0, 0),
    };
    w.seen = w.counts();
    Sse::new(stream::unfold(w, Watch::next)).keep_alive(KeepAlive::default())
}
