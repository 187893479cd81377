//! The real Python `sentry-sdk` and `@sentry/node` send errors to a running server; the test
//! reads the issues back through the API. The SDKs are installed into `.tools/` by
//! `scripts/setup-test-tools`; without them the test is skipped locally and fails under CI.

use std::path::PathBuf;
use std::process::Command;

use crate::util::*;

pub fn tools() -> Option<PathBuf> {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../.tools"));
    let ready = dir.join("python/sentry_sdk").is_dir()
        && dir.join("node/node_modules/@sentry/node").is_dir();
    if ready {
        return Some(dir);
    }
    assert!(
        std::env::var("CI").is_err(),
        "CI needs the SDKs: run scripts/setup-test-tools"
    );
    eprintln!("skipping: SDKs not installed (run scripts/setup-test-tools)");
    None
}

/// Runs a Python script with the installed SDK and the DSN as its argument; fails on error.
pub fn run_python(tools: &std::path::Path, script: &str, dsn: &str) {
    let out = Command::new("python3")
        .args(["-c", script, dsn])
        .env("PYTHONPATH", tools.join("python"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "python: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

const PYTHON_APP: &str = r#"
import sys, sentry_sdk
sentry_sdk.init(dsn=sys.argv[1], release="shop@2.0.0", environment="ci", server_name="py-host")
sentry_sdk.set_tag("component", "checkout")
sentry_sdk.set_user({"id": "u-7", "email": "seven@example.com"})
sentry_sdk.add_breadcrumb(category="cart", message="added sku-1")

def parse_amount(raw):
    return int(raw)

def checkout(raw):
    return parse_amount(raw)

for raw in ["12x", "oops", "x"]:
    try:
        checkout(raw)
    except ValueError:
        sentry_sdk.capture_exception()
sentry_sdk.capture_message("inventory low for sku-1", level="warning")
sentry_sdk.flush(timeout=10)
"#;

const NODE_APP: &str = r#"
const Sentry = require("@sentry/node");
Sentry.init({ dsn: process.argv[2], release: "api@3.1.0", environment: "ci" });
Sentry.setTag("component", "orders");
function loadOrder(id) { throw new TypeError(`order ${id} has no customer`); }
function handle(id) { return loadOrder(id); }
for (const id of [1, 2]) {
  try { handle(id); } catch (e) { Sentry.captureException(e); }
}
Sentry.flush(10000).then(() => process.exit(0));
"#;

#[test]
fn python_and_node_sdks_report_into_issues() {
    let Some(tools) = tools() else { return };
    let server = Server::start();
    let (_, node_dsn, _) = phoebe(
        &server.data_dir,
        &["project", "create", "node-api", "--platform", "node"],
    );
    let node_dsn = node_dsn.trim().to_string();

    run_python(&tools, PYTHON_APP, &server.dsn);
    let script = tools.join("node/app.cjs");
    std::fs::write(&script, NODE_APP).unwrap();
    let out = Command::new("node")
        .arg(&script)
        .arg(&node_dsn)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "node: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    server.wait_digested(6);

    let token = server.token();
    let (_, py) = server.api_get(&token, "/api/0/projects/phoebe/default/issues/");
    let py = py.as_array().unwrap();
    assert_eq!(py.len(), 2, "{py:#?}");
    let value_error = py
        .iter()
        .find(|i| i["metadata"]["type"] == "ValueError")
        .expect("ValueError issue");
    assert_eq!(
        value_error["count"], "3",
        "the three ValueErrors differ only in their message"
    );
    assert_eq!(value_error["culprit"], "__main__ in parse_amount");
    assert_eq!(value_error["userCount"], 1);
    assert_eq!(value_error["firstRelease"]["version"], "shop@2.0.0");
    let message = py
        .iter()
        .find(|i| i["level"] == "warning")
        .expect("message issue");
    assert_eq!(message["title"], "inventory low for sku-1");

    let id = value_error["id"].as_str().unwrap();
    let (_, event) = server.api_get(&token, &format!("/api/0/issues/{id}/events/latest/"));
    let exc = event["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "exception")
        .unwrap();
    let functions: Vec<&str> = exc["data"]["values"][0]["stacktrace"]["frames"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["function"].as_str())
        .collect();
    assert!(
        functions.ends_with(&["checkout", "parse_amount"]),
        "{functions:?}"
    );
    let tags: Vec<(String, String)> = event["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["key"].as_str().unwrap().into(),
                t["value"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(
        tags.contains(&("component".into(), "checkout".into())),
        "{tags:?}"
    );
    assert_eq!(event["environment"], "ci");
    assert!(event["entries"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["type"] == "breadcrumbs"));
    let (_, issue_tags) = server.api_get(&token, &format!("/api/0/issues/{id}/tags/"));
    let server_name = issue_tags
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["key"] == "server_name")
        .expect("server_name tag");
    assert_eq!(server_name["topValues"][0]["value"], "py-host");

    let (_, node) = server.api_get(&token, "/api/0/projects/phoebe/node-api/issues/");
    let node = node.as_array().unwrap();
    assert_eq!(node.len(), 1, "{node:#?}");
    assert_eq!(node[0]["count"], "2");
    assert_eq!(node[0]["metadata"]["type"], "TypeError");
    assert_eq!(node[0]["firstRelease"]["version"], "api@3.1.0");
    assert!(
        node[0]["culprit"].as_str().unwrap().contains("loadOrder"),
        "{}",
        node[0]["culprit"]
    );
}
