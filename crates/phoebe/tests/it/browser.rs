//! The dashboard in a real headless Chromium (Debian's `chromium`, driven by `playwright-core`
//! from `tests/browser/dashboard.cjs`), on issues the real Python SDK created, and alerts set
//! up in it reaching a real webhook receiver. Screenshots go to `target/screenshots/`. Without
//! the browser tools the tests are skipped locally and fail under CI;
//! `scripts/setup-test-tools` installs them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::alerts::Receiver;
use crate::sdks::tools;
use crate::util::*;

/// A chained exception (RuntimeError from ValueError) twice, with breadcrumbs, a user and a tag.
const PYTHON_APP: &str = r#"
import sys, sentry_sdk
sentry_sdk.init(dsn=sys.argv[1], release="shop@2.0.0", environment="ci", server_name="py-host")
sentry_sdk.set_tag("component", "checkout")
sentry_sdk.set_user({"id": "u-7", "email": "seven@example.com"})
sentry_sdk.add_breadcrumb(category="cart", message="added sku-1", data={"sku": "sku-1", "qty": 2})
sentry_sdk.add_breadcrumb(category="http", message="GET /api/price", level="warning")

def parse_amount(raw):
    return int(raw)

def checkout(raw):
    try:
        return parse_amount(raw)
    except ValueError as e:
        raise RuntimeError("checkout failed for " + raw) from e

for raw in ["oops", "12x"]:
    try:
        checkout(raw)
    except RuntimeError:
        sentry_sdk.capture_exception()
sentry_sdk.flush(timeout=10)
"#;

fn browser_tools(tools: &Path) -> Option<(PathBuf, PathBuf)> {
    let modules = tools.join("browser/node_modules");
    let chromium = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    if modules.join("playwright-core").is_dir() && chromium.exists() {
        return Some((modules, chromium));
    }
    assert!(
        std::env::var("CI").is_err(),
        "CI needs chromium and playwright-core: run scripts/setup-test-tools"
    );
    eprintln!("skipping: chromium or playwright-core missing (run scripts/setup-test-tools)");
    None
}

/// Runs the app from a file, as real apps run, so the SDK can send source context lines.
fn run_app(tools: &Path, dir: &Path, dsn: &str) {
    let file = dir.join("shop.py");
    std::fs::write(&file, PYTHON_APP).unwrap();
    let out = Command::new("python3")
        .arg(&file)
        .arg(dsn)
        // The SDK counts files under the working folder as the app's own (in-app).
        .current_dir(dir)
        .env("PYTHONPATH", tools.join("python"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Where screenshots go (created).
fn screenshots() -> PathBuf {
    let shots = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../target/screenshots"
    ));
    std::fs::create_dir_all(&shots).unwrap();
    shots
}

fn drive(modules: &Path, chromium: &Path, phase: &str, server: &Server, shots: &Path) {
    drive_with(modules, chromium, phase, server, shots, &[]);
}

/// Runs a phase with `extra` arguments after the usual ones.
fn drive_with(
    modules: &Path,
    chromium: &Path,
    phase: &str,
    server: &Server,
    shots: &Path,
    extra: &[&str],
) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/dashboard.cjs");
    let out = Command::new("node")
        .args([script, phase, &server.url, "admin", ADMIN_PASSWORD])
        .arg(shots)
        .arg(&server.dsn)
        .args(extra)
        .env("NODE_PATH", modules)
        .env("CHROMIUM", chromium)
        .output()
        .expect("running node");
    assert!(
        out.status.success(),
        "dashboard {phase} in chromium failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn an_sdk_issue_is_triaged_in_chromium_and_comes_back_as_a_regression() {
    let Some(tools) = tools() else { return };
    let Some((modules, chromium)) = browser_tools(&tools) else {
        return;
    };
    let shots = screenshots();
    let server = Server::start();
    let app_dir = tempfile::tempdir().unwrap();
    run_app(&tools, app_dir.path(), &server.dsn);
    server.wait_digested(2);
    drive(&modules, &chromium, "triage", &server, &shots);
    run_app(&tools, app_dir.path(), &server.dsn);
    server.wait_digested(4);
    drive(&modules, &chromium, "regression", &server, &shots);
}

/// Waits until the server has recorded its newest notification as sent (it records a delivery
/// just after the receiver answered).
fn wait_recorded_sent(server: &Server) {
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let (code, out, err) = phoebe(&server.data_dir, &["alerts", "history", "--json"]);
        assert_eq!(code, 0, "{err}");
        let history: serde_json::Value = serde_json::from_str(&out).unwrap();
        if history[0]["state"] == "sent" {
            return;
        }
        assert!(Instant::now() < until, "not recorded as sent: {history}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn alerts_set_up_in_chromium_reach_a_webhook_and_show_in_the_history_and_on_the_issue() {
    let Some(tools) = tools() else { return };
    let Some((modules, chromium)) = browser_tools(&tools) else {
        return;
    };
    let shots = screenshots();
    // Channels may reach the receiver on loopback.
    let server = Server::start_with(&[("PHOEBE_ALERTS__ALLOW_PRIVATE_TARGETS", "true")]);
    // The first request (the first test) gets a 500, every later one a 200.
    let receiver = Receiver::start(vec![500]);

    // In the page: a signed webhook channel, a test the receiver refuses (the page says what
    // it answered), one it accepts, a refused rule form, then a new-issue rule.
    drive_with(
        &modules,
        &chromium,
        "alerts-setup",
        &server,
        &shots,
        &[&receiver.url],
    );
    let got = receiver.wait_for(2, Duration::from_secs(5));
    assert_eq!(got.len(), 2, "the refused test and the accepted one");
    let test: serde_json::Value = serde_json::from_slice(&got[1].body).unwrap();
    assert_eq!(
        (test["test"].as_bool(), test["action"].as_str()),
        (Some(true), Some("test"))
    );
    // Signed with the secret typed into the form.
    let ts: i64 = header(&got[1].headers, "x-phoebe-timestamp")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        header(&got[1].headers, "x-phoebe-signature"),
        Some(phoebe::alerts::sign("s3cret", ts, &got[1].body).as_str())
    );

    // A new issue: the rule made in the page sends it to the channel made there.
    let (status, _) = post_envelope(&server, &envelope(&error_event("KeyError", "'basket'")));
    assert_eq!(status, 200);
    let got = receiver.wait_for(3, Duration::from_secs(15));
    assert_eq!(got.len(), 3, "the new issue was notified");
    let body: serde_json::Value = serde_json::from_slice(&got[2].body).unwrap();
    assert_eq!(
        (body["action"].as_str(), body["test"].as_bool()),
        (Some("created"), Some(false))
    );
    wait_recorded_sent(&server);

    // The project's history lists it, and so does the issue's page.
    drive_with(
        &modules,
        &chromium,
        "alerts-history",
        &server,
        &shots,
        &[&receiver.url],
    );
}
