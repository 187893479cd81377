//! The dashboard in a real headless Chromium (Debian's `chromium`, driven by `playwright-core`
//! from `tests/browser/dashboard.cjs`), on issues the real Python SDK created. Screenshots go to
//! `target/screenshots/`. Without the browser tools the test is skipped locally and fails
//! under CI; `scripts/setup-test-tools` installs them.

use std::path::{Path, PathBuf};
use std::process::Command;

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

fn drive(modules: &Path, chromium: &Path, phase: &str, server: &Server, shots: &Path) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser/dashboard.cjs");
    let out = Command::new("node")
        .args([script, phase, &server.url, "admin", ADMIN_PASSWORD])
        .arg(shots)
        .arg(&server.dsn)
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
    let shots = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../target/screenshots"
    ));
    std::fs::create_dir_all(&shots).unwrap();
    let server = Server::start();
    let app_dir = tempfile::tempdir().unwrap();
    run_app(&tools, app_dir.path(), &server.dsn);
    server.wait_digested(2);
    drive(&modules, &chromium, "triage", &server, &shots);
    run_app(&tools, app_dir.path(), &server.dsn);
    server.wait_digested(4);
    drive(&modules, &chromium, "regression", &server, &shots);
}
