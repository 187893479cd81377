//! `kill -9` during a stream of events loses nothing that was acknowledged.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::util::*;

#[test]
fn kill_9_loses_no_acknowledged_event() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    // Digesting one event per fsync'd transaction keeps digest behind ingest, so the kill
    // lands with a backlog in the inbox.
    let slow_digest = [("PHOEBE_DIGEST__BATCH_SIZE", "1")];
    let server = Server::start_in(&dir, &slow_digest);
    let url = server.envelope_url();
    let auth = server.auth_header();
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let senders: Vec<_> = (0..4)
        .map(|t| {
            let (url, auth, acked, stop) = (url.clone(), auth.clone(), acked.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) && n < 5000 {
                    let ev = error_event(
                        &format!("CrashError{}", n % 7),
                        &format!("thread {t} event {n}"),
                    );
                    let id = ev["event_id"].as_str().unwrap().to_string();
                    match ureq::post(&url)
                        .set("X-Sentry-Auth", &auth)
                        .timeout(Duration::from_secs(5))
                        .send_bytes(&envelope(&ev))
                    {
                        Ok(r) if r.status() == 200 => acked.lock().unwrap().push(id),
                        _ => {}
                    }
                    n += 1;
                }
            })
        })
        .collect();
    // Let a stream build up, then kill the server mid-flight.
    let deadline = Instant::now() + Duration::from_secs(20);
    while acked.lock().unwrap().len() < 300 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    // Kill at a moment when acknowledged events are still waiting in the inbox.
    let mut backlog = server.metric("phoebe_inbox_pending_envelopes");
    while backlog == 0.0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
        backlog = server.metric("phoebe_inbox_pending_envelopes");
    }
    server.kill9();
    stop.store(true, Ordering::Relaxed);
    for s in senders {
        s.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 300,
        "only {} events acknowledged before the kill",
        acked.len()
    );
    assert!(
        backlog > 0.0,
        "the kill must land with undigested events in the inbox"
    );

    let server = Server::start_in(&dir, &[]);
    let token = server.token();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut missing = acked.clone();
    while !missing.is_empty() && Instant::now() < deadline {
        missing.retain(|id| {
            server
                .api_get(
                    &token,
                    &format!("/api/0/projects/phoebe/default/events/{id}/"),
                )
                .0
                != 200
        });
        if !missing.is_empty() {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    assert!(
        missing.is_empty(),
        "{} of {} acknowledged events lost, e.g. {}",
        missing.len(),
        acked.len(),
        missing[0]
    );
    // Every acknowledged event is counted exactly once.
    let (_, issues) = server.api_get(&token, "/api/0/projects/phoebe/default/issues/?limit=100");
    let counted: i64 = issues
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["count"].as_str().unwrap().parse::<i64>().unwrap())
        .sum();
    assert!(
        counted >= acked.len() as i64,
        "counted {counted} < acknowledged {}",
        acked.len()
    );
}
