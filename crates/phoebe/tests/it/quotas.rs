//! Rate limits, spike protection, per-issue event bounds and usage, against the real server:
//! the 429s carry Sentry's headers, the real Python SDK backs off and resumes, and the counts
//! stay exact while stored events stay bounded.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::util::*;

/// Seconds into the current minute.
fn second_of_minute() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        % 60
}

/// Per-minute counters reset at the minute boundary; start a short test well before it.
fn avoid_minute_edge() {
    let s = second_of_minute();
    if s >= 45 {
        std::thread::sleep(Duration::from_secs(61 - s));
    }
}

/// POST to an ingest endpoint of the test project with header auth and a browser's Origin.
fn post(
    server: &Server,
    endpoint: &str,
    body: &[u8],
) -> (u16, serde_json::Value, Vec<(String, String)>) {
    let auth = server.auth_header();
    let path = format!("/api/{}/{endpoint}/", server.project_id());
    send(
        server,
        &path,
        &[("X-Sentry-Auth", &auth), ("Origin", "https://shop.example")],
        body,
    )
}

fn client_report_envelope(quantity: u64) -> Vec<u8> {
    let payload = json!({"discarded_events": [
        {"reason": "ratelimit_backoff", "category": "error", "quantity": quantity}
    ]})
    .to_string();
    format!(
        "{{}}\n{{\"type\":\"client_report\",\"length\":{}}}\n{payload}\n",
        payload.len()
    )
    .into_bytes()
}

/// Polls the project's usage until `done` holds (usage is written every 5 s).
fn wait_usage(
    server: &Server,
    token: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (code, usage) = server.api_get(
            token,
            "/api/0/projects/phoebe/default/usage/?statsPeriod=24h",
        );
        assert_eq!(code, 200, "{usage}");
        if done(&usage) {
            return usage;
        }
        assert!(Instant::now() < deadline, "usage never got there: {usage}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn key_limit_refuses_with_sentry_headers_and_usage_adds_up() {
    let server = Server::start_with(&[("PHOEBE_QUOTAS__KEY_EVENTS_PER_MINUTE", "2")]);
    let token = server.token();
    avoid_minute_edge();
    for i in 0..2 {
        let (code, body, _) = post(
            &server,
            "envelope",
            &envelope(&error_event("KeyError", &format!("k{i}"))),
        );
        assert_eq!(code, 200, "{body}");
    }
    let (code, body, headers) = post(
        &server,
        "envelope",
        &envelope(&error_event("KeyError", "k3")),
    );
    assert_eq!(code, 429, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("key limit"),
        "{body}"
    );
    let retry: u64 = header(&headers, "retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(
        header(&headers, "x-sentry-rate-limits").unwrap(),
        format!("{retry}:error;default;security:key:key_quota")
    );
    assert!(header(&headers, "access-control-expose-headers")
        .unwrap()
        .contains("x-sentry-rate-limits"));

    // The legacy endpoint is refused before its body is read.
    let event = error_event("KeyError", "legacy");
    let (code, _, _) = post(&server, "store", event.to_string().as_bytes());
    assert_eq!(code, 429);

    // Client reports are never limited; the 200 still tells the SDK about the limit.
    let (code, body, headers) = post(&server, "envelope", &client_report_envelope(3));
    assert_eq!(code, 200, "{body}");
    assert!(header(&headers, "x-sentry-rate-limits")
        .unwrap()
        .contains("key_quota"));

    // A refused envelope's other items are kept: its client report still counts.
    let mut mixed = envelope(&error_event("KeyError", "k4"));
    let report = client_report_envelope(4);
    mixed.extend_from_slice(&report[report.iter().position(|b| *b == b'\n').unwrap() + 1..]);
    let (code, body, _) = post(&server, "envelope", &mixed);
    assert_eq!(code, 429, "{body}");

    server.wait_digested(2);
    let usage = wait_usage(&server, &token, |u| {
        u["totals"]["accepted"] == 2 && u["totals"]["rateLimited"] == 3 && u["clientDiscarded"] == 7
    });
    assert_eq!(usage["totals"]["stored"], 2, "{usage}");
    assert_eq!(usage["clientDiscards"][0]["reason"], "ratelimit_backoff");
    assert_eq!(usage["clientDiscards"][0]["category"], "error");

    let (code, out, err) = phoebe(&server.data_dir, &["usage", "--project", "default"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("2 accepted, 3 rate-limited"), "{out}");
    assert!(
        out.contains("your SDKs dropped 7 events before sending: ratelimit_backoff 7"),
        "{out}"
    );
}

#[test]
fn project_and_key_limits_through_cli_and_api() {
    let server = Server::start();
    let token = server.token();
    let (code, out, err) = phoebe(
        &server.data_dir,
        &[
            "project",
            "limits",
            "default",
            "--events-per-minute",
            "1",
            "--max-age-days",
            "7",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("events per minute  1 events (set for this project)"),
        "{out}"
    );
    assert!(
        out.contains("max age            7 days (set for this project)"),
        "{out}"
    );
    assert!(
        out.contains("events per hour    no limit (phoebe.toml default)"),
        "{out}"
    );

    // A running server picks the change up within 5 s.
    avoid_minute_edge();
    let deadline = Instant::now() + Duration::from_secs(15);
    let headers = loop {
        let (code, _, headers) = post(&server, "envelope", &envelope(&error_event("E", "x")));
        if code == 429 {
            break headers;
        }
        assert_eq!(code, 200);
        assert!(Instant::now() < deadline, "the project limit never applied");
        std::thread::sleep(Duration::from_millis(250));
    };
    assert!(header(&headers, "x-sentry-rate-limits")
        .unwrap()
        .ends_with(":project:project_quota"));

    // The API shows and changes the same settings; null goes back to the default.
    let (code, limits) = server.api_get(&token, "/api/0/projects/phoebe/default/limits/");
    assert_eq!(code, 200);
    assert_eq!(
        limits["eventsPerMinute"],
        json!({"value": 1, "effective": 1})
    );
    assert_eq!(limits["maxAgeDays"], json!({"value": 7, "effective": 7}));
    assert_eq!(limits["maxStoredEvents"]["effective"], 1_000_000);
    assert_eq!(limits["spikeProtection"]["enabled"], true);
    let put = |path: &str, body: serde_json::Value| {
        json_of(
            ureq::put(&format!("{}{path}", server.url))
                .set("Authorization", &format!("Bearer {token}"))
                .set("Content-Type", "application/json")
                .send_string(&body.to_string()),
        )
    };
    let (code, limits) = put(
        "/api/0/projects/phoebe/default/limits/",
        json!({"eventsPerMinute": null}),
    );
    assert_eq!(code, 200, "{limits}");
    assert_eq!(
        limits["eventsPerMinute"],
        json!({"value": null, "effective": 0})
    );
    assert_eq!(
        limits["maxAgeDays"]["value"], 7,
        "fields not sent are left alone"
    );
    let (code, err) = put(
        "/api/0/projects/phoebe/default/limits/",
        json!({"eventsPerMinute": -1}),
    );
    assert_eq!(code, 400, "{err}");
    let (code, err) = put(
        "/api/0/projects/phoebe/default/limits/",
        json!({"eventsPerMinuet": 1}),
    );
    assert_eq!(code, 400, "{err}");

    // Keys take Sentry's one-window rateLimit or Phoebe's two fields.
    let key = server.public_key();
    let path = format!("/api/0/projects/phoebe/default/keys/{key}/");
    let (code, k) = put(&path, json!({"rateLimit": {"window": 3600, "count": 5}}));
    assert_eq!(code, 200, "{k}");
    assert_eq!(k["rateLimit"], json!({"window": 3600, "count": 5}));
    assert_eq!(k["eventsPerHour"], json!({"value": 5, "effective": 5}));
    let (code, _) = put(&path, json!({"rateLimit": {"window": 10, "count": 5}}));
    assert_eq!(code, 400);
    let (code, _) = server.api_get(
        &token,
        "/api/0/projects/phoebe/default/keys/0123456789abcdef0123456789abcdef/",
    );
    assert_eq!(code, 404);
    let (code, out, err) = phoebe(
        &server.data_dir,
        &["key", "limits", &server.dsn, "--events-per-minute", "9"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("events per minute  9 events (set for this key)"),
        "{out}"
    );
    assert!(
        out.contains("events per hour    5 events (set for this key)"),
        "{out}"
    );
    let (code, _, err) = phoebe(
        &server.data_dir,
        &["project", "limits", "default", "--events-per-hour", "lots"],
    );
    assert_ne!(code, 0);
    assert!(err.contains("or `default`"), "{err}");
}

#[test]
fn spike_protection_throttles_a_burst_and_says_since_when() {
    let server = Server::start_with(&[("PHOEBE_QUOTAS__SPIKE_FLOOR_PER_MINUTE", "5")]);
    let token = server.token();
    avoid_minute_edge();
    for i in 0..5 {
        let (code, body, _) = post(
            &server,
            "envelope",
            &envelope(&error_event("Storm", &i.to_string())),
        );
        assert_eq!(code, 200, "{body}");
    }
    let (code, body, headers) = post(&server, "envelope", &envelope(&error_event("Storm", "6")));
    assert_eq!(code, 429, "{body}");
    assert!(header(&headers, "x-sentry-rate-limits")
        .unwrap()
        .ends_with(":project:spike_protection"));
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("spike protection"),
        "{body}"
    );

    let deadline = Instant::now() + Duration::from_secs(20);
    let project = loop {
        let (_, p) = server.api_get(&token, "/api/0/projects/phoebe/default/");
        if p["spikeProtection"]["active"] == true {
            break p;
        }
        assert!(Instant::now() < deadline, "spike never reported: {p}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(project["spikeProtection"]["since"]
        .as_str()
        .unwrap()
        .ends_with('Z'));
    assert_eq!(project["spikeProtection"]["limitPerMinute"], 5);
    let usage = wait_usage(&server, &token, |u| u["totals"]["spikeProtected"] == 1);
    assert_eq!(usage["totals"]["accepted"], 5);
    let (_, out, _) = phoebe(&server.data_dir, &["project", "limits", "default"]);
    assert!(out.contains("spike protection   THROTTLING since"), "{out}");
}

#[test]
fn an_issue_keeps_first_sampled_and_latest_events_but_counts_all() {
    let server = Server::start_with(&[
        ("PHOEBE_RETENTION__FIRST_EVENTS_PER_ISSUE", "2"),
        ("PHOEBE_RETENTION__LATEST_EVENTS_PER_ISSUE", "3"),
        ("PHOEBE_RETENTION__SAMPLES_PER_DOUBLING", "1"),
    ]);
    let token = server.token();
    for i in 0..40 {
        let (code, body) = post_envelope(&server, &envelope(&error_event("Hot", &i.to_string())));
        assert_eq!(code, 200, "{body}");
    }
    server.wait_digested(40);
    let (_, issues) = server.api_get(&token, "/api/0/projects/phoebe/default/issues/");
    assert_eq!(issues.as_array().unwrap().len(), 1);
    assert_eq!(issues[0]["count"], "40");
    let id = issues[0]["id"].as_str().unwrap();
    let (_, events) = server.api_get(&token, &format!("/api/0/issues/{id}/events/"));
    // First 2, the powers of two 4, 8, 16, 32, and the latest 3 (38, 39, 40).
    assert_eq!(events.as_array().unwrap().len(), 9, "{events:#}");
    let (_, p) = server.api_get(&token, "/api/0/projects/phoebe/default/");
    assert_eq!(p["storedEvents"], 9);
    let usage = wait_usage(&server, &token, |u| u["totals"]["accepted"] == 40);
    assert_eq!(
        (
            usage["totals"]["stored"].as_u64(),
            usage["totals"]["evicted"].as_u64()
        ),
        (Some(40), Some(31))
    );
}

const PYTHON_BACKOFF: &str = r#"
import sys, time, sentry_sdk
second = time.time() % 60
if second > 40:
    time.sleep(61 - second)
sentry_sdk.init(dsn=sys.argv[1])
for i in range(5):
    try:
        raise ValueError(f"attempt {i}")
    except ValueError:
        sentry_sdk.capture_exception()
    sentry_sdk.flush(timeout=5)
# The third was refused (429); the fourth and fifth never left this process. The SDK waits
# Retry-After (rounded up to a second) from when it read the 429, which under a loaded machine
# is a while after the server wrote it: wake 3 s into the next minute to be past both.
time.sleep(63 - time.time() % 60)
sentry_sdk.capture_message("after the window")
sentry_sdk.flush(timeout=5)
"#;

#[test]
fn python_sdk_stops_sending_for_the_window_and_resumes_after_it() {
    let Some(tools) = crate::sdks::tools() else {
        return;
    };
    let server = Server::start_with(&[("PHOEBE_QUOTAS__KEY_EVENTS_PER_MINUTE", "2")]);
    let token = server.token();
    crate::sdks::run_python(&tools, PYTHON_BACKOFF, &server.dsn);
    server.wait_digested(3);
    // Exactly one request was refused: the SDK stopped after the first 429.
    let usage = wait_usage(&server, &token, |u| {
        u["totals"]["accepted"] == 3 && u["totals"]["rateLimited"] == 1
    });
    assert_eq!(server.metric("phoebe_ingest_rejected_total"), 1.0);
    let (_, issues) = server.api_get(&token, "/api/0/projects/phoebe/default/issues/");
    let count_of = |title_start: &str| {
        issues
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["title"].as_str().unwrap().starts_with(title_start))
            .map(|i| i["count"].clone())
    };
    assert_eq!(count_of("ValueError"), Some(json!("2")), "{issues:#}");
    assert_eq!(count_of("after the window"), Some(json!("1")), "{issues:#}");
    // The SDK reported what it dropped while backing off.
    let usage = if usage["clientDiscarded"].as_u64().unwrap_or(0) >= 2 {
        usage
    } else {
        wait_usage(&server, &token, |u| {
            u["clientDiscarded"].as_u64().unwrap_or(0) >= 2
        })
    };
    let backoff = usage["clientDiscards"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["reason"] == "ratelimit_backoff" && d["category"] == "error");
    assert_eq!(
        backoff.map(|d| d["quantity"].clone()),
        Some(json!(2)),
        "{usage:#}"
    );
}

#[test]
fn a_long_stream_stays_under_its_storage_bounds_while_counts_stay_exact() {
    let server = Server::start_with(&[
        ("PHOEBE_RETENTION__FIRST_EVENTS_PER_ISSUE", "5"),
        ("PHOEBE_RETENTION__LATEST_EVENTS_PER_ISSUE", "10"),
        ("PHOEBE_RETENTION__SAMPLES_PER_DOUBLING", "2"),
        ("PHOEBE_RETENTION__MAX_EVENTS_PER_PROJECT", "100"),
        ("PHOEBE_RETENTION__INTERVAL_SECS", "1"),
    ]);
    let token = server.token();
    let total = 1_200;
    let (url, auth) = (server.envelope_url(), server.auth_header());
    std::thread::scope(|s| {
        for t in 0..4 {
            let (url, auth) = (&url, &auth);
            s.spawn(move || {
                for i in 0..total / 4 {
                    let ev = error_event(&format!("Stream{t}"), &i.to_string());
                    let (code, body) = json_of(
                        ureq::post(url)
                            .set("X-Sentry-Auth", auth)
                            .send_bytes(&envelope(&ev)),
                    );
                    assert_eq!(code, 200, "{body}");
                }
            });
        }
    });
    server.wait_digested(total);
    let (_, issues) = server.api_get(&token, "/api/0/projects/phoebe/default/issues/");
    let issues = issues.as_array().unwrap();
    assert_eq!(issues.len(), 4);
    for issue in issues {
        assert_eq!(issue["count"], "300", "every event counted: {issue}");
        let id = issue["id"].as_str().unwrap();
        let (_, tags) = server.api_get(&token, &format!("/api/0/issues/{id}/tags/"));
        let team = tags
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["key"] == "team")
            .unwrap();
        assert_eq!(team["totalValues"], 300, "tag counts stay exact: {team}");
    }
    // Per issue: 5 first + 2 samples per doubling up to 300 + 10 latest = 5 + 12 + 10 = 27, so
    // 108 for the four; the project cap (100) then evicts the oldest in the background.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, p) = server.api_get(&token, "/api/0/projects/phoebe/default/");
        let stored = p["storedEvents"].as_u64().unwrap();
        if stored <= 100 {
            break;
        }
        assert!(stored <= 108, "per-issue bounds exceeded: {stored}");
        assert!(
            Instant::now() < deadline,
            "the project cap was never applied: {stored}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let usage = wait_usage(&server, &token, |u| {
        u["totals"]["accepted"] == total && u["totals"]["stored"] == total
    });
    let evicted = usage["totals"]["evicted"].as_u64().unwrap();
    assert!((1_100..=1_110).contains(&evicted), "{usage}");
}

#[test]
fn hour_quota_organization_and_global_limits_refuse_with_their_scope() {
    let server = Server::start_with(&[
        ("PHOEBE_QUOTAS__PROJECT_EVENTS_PER_HOUR", "1"),
        ("PHOEBE_QUOTAS__ORG_EVENTS_PER_MINUTE", "1"),
        ("PHOEBE_QUOTAS__GLOBAL_EVENTS_PER_MINUTE", "1"),
    ]);
    let token = server.token();
    // Start well inside an hour, so the hour window cannot turn over mid-test.
    let into_hour = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        % 3600;
    if into_hour >= 3480 {
        std::thread::sleep(Duration::from_secs(3601 - into_hour));
    }
    avoid_minute_edge();
    let (code, body, _) = post(&server, "envelope", &envelope(&error_event("Q", "1")));
    assert_eq!(code, 200, "{body}");
    let (code, body, headers) = post(&server, "envelope", &envelope(&error_event("Q", "2")));
    assert_eq!(code, 429, "{body}");
    let limits = header(&headers, "x-sentry-rate-limits")
        .unwrap()
        .to_string();
    let parts: Vec<&str> = limits.split(", ").collect();
    assert_eq!(parts.len(), 3, "{limits}");
    // The hour quota has the longest wait: it comes first and sets Retry-After.
    let retry: u64 = header(&headers, "retry-after").unwrap().parse().unwrap();
    assert!(parts[0].starts_with(&format!(
        "{retry}:error;default;security:project:project_quota"
    )));
    assert!(retry > 60 && retry <= 3600, "{retry}");
    assert!(
        parts[1..]
            .iter()
            .any(|p| p.ends_with(":organization:org_quota")),
        "{limits}"
    );
    assert!(
        parts[1..]
            .iter()
            .any(|p| p.ends_with(":organization:global_quota")),
        "{limits}"
    );
    let usage = wait_usage(&server, &token, |u| u["totals"]["overQuota"] == 1);
    assert_eq!(usage["totals"]["rateLimited"], 0, "{usage}");
}
