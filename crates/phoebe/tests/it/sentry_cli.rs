//! The real `sentry-cli` (from the `@sentry/cli` npm package, installed by
//! `scripts/setup-test-tools`) against a running `phoebe serve`: token formats, organizations,
//! projects, releases, deploys, events and issues, each command's exit code and output, and
//! what the API then says.

use std::path::PathBuf;
use std::process::Command;

use crate::util::*;

/// The sentry-cli binary, or `None` locally without the tools (CI must have them).
fn sentry_cli() -> Option<PathBuf> {
    let bin = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../.tools/cli/node_modules/.bin/sentry-cli"
    ));
    if bin.exists() {
        return Some(bin);
    }
    assert!(
        std::env::var("CI").is_err(),
        "CI needs sentry-cli: run scripts/setup-test-tools"
    );
    eprintln!("skipping: sentry-cli missing (run scripts/setup-test-tools)");
    None
}

/// Runs sentry-cli with `env` (and nothing of the test's own Sentry settings); returns its exit
/// code and its standard output and error together.
fn run(cli: &PathBuf, env: &[(&str, &str)], args: &[&str]) -> (i32, String) {
    let mut cmd = Command::new(cli);
    cmd.args(args)
        .env_remove("SENTRY_URL")
        .env_remove("SENTRY_AUTH_TOKEN")
        .env_remove("SENTRY_ORG")
        .env_remove("SENTRY_PROJECT")
        .env_remove("SENTRY_DSN")
        .env("SENTRY_DISABLE_UPDATE_CHECK", "true")
        .env("SENTRY_LOG_LEVEL", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("running sentry-cli");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// A user token for the server's admin.
fn user_token(server: &Server) -> String {
    let (code, token, err) = phoebe(&server.data_dir, &["token", "create"]);
    assert_eq!(code, 0, "{err}");
    token.trim().to_string()
}

/// sentry-cli's settings for the server's default project.
fn cli_env<'a>(server: &'a Server, token: &'a str) -> [(&'static str, &'a str); 4] {
    [
        ("SENTRY_URL", server.url.as_str()),
        ("SENTRY_AUTH_TOKEN", token),
        ("SENTRY_ORG", "phoebe"),
        ("SENTRY_PROJECT", "default"),
    ]
}

#[test]
fn sentry_cli_manages_releases_and_deploys_and_reads_orgs_projects_issues_and_events() {
    let Some(cli) = sentry_cli() else { return };
    let server = Server::start();
    let (code, token, err) = phoebe(&server.data_dir, &["token", "create"]);
    assert_eq!(code, 0, "{err}");
    let token = token.trim().to_string();
    assert!(token.starts_with("sntryu_"), "{token}");
    let env = [
        ("SENTRY_URL", server.url.as_str()),
        ("SENTRY_AUTH_TOKEN", token.as_str()),
        ("SENTRY_ORG", "phoebe"),
        ("SENTRY_PROJECT", "default"),
    ];
    let ok = |args: &[&str]| -> String {
        let (code, out) = run(&cli, &env, args);
        assert_eq!(code, 0, "sentry-cli {args:?}:\n{out}");
        out
    };

    let info = ok(&["info"]);
    assert!(info.contains("User: admin"), "{info}");
    let (code, out) = run(
        &cli,
        &[
            ("SENTRY_URL", &server.url),
            ("SENTRY_AUTH_TOKEN", &"f".repeat(64)),
        ],
        &["info"],
    );
    assert_ne!(code, 0, "a wrong token is refused:\n{out}");
    assert!(ok(&["organizations", "list"]).contains("phoebe"));
    assert!(ok(&["projects", "list"]).contains("default"));

    // Releases: created twice (the second is no error), finalized, listed, described.
    assert!(ok(&["releases", "new", "web@1.0.0"]).contains("web@1.0.0"));
    ok(&["releases", "new", "web@1.0.0"]);
    ok(&["releases", "finalize", "web@1.0.0"]);
    assert!(ok(&["releases", "list"]).contains("web@1.0.0"));
    assert!(ok(&["releases", "info", "web@1.0.0"]).contains("web@1.0.0"));
    let deployed = ok(&[
        "deploys",
        "new",
        "-r",
        "web@1.0.0",
        "-e",
        "production",
        "-n",
        "first",
        "-u",
        "https://ci.example/run/7",
    ]);
    assert!(deployed.contains("production"), "{deployed}");
    assert!(ok(&["deploys", "list", "-r", "web@1.0.0"]).contains("production"));

    // An event of that release, sent by sentry-cli itself.
    let (code, out) = run(
        &cli,
        &[("SENTRY_DSN", &server.dsn)],
        &["send-event", "-m", "checkout failed", "-r", "web@1.0.0"],
    );
    assert_eq!(code, 0, "{out}");
    server.wait_digested(1);
    assert!(ok(&["issues", "list"]).contains("checkout failed"));
    let events = ok(&["events", "list"]);
    assert!(events.contains("checkout failed"), "{events}");

    let (status, release) =
        server.api_get(&token, "/api/0/organizations/phoebe/releases/web@1.0.0/");
    assert_eq!(status, 200, "{release}");
    assert!(release["dateReleased"].is_string(), "finalized: {release}");
    assert_eq!(release["deployCount"], 1);
    assert_eq!(release["lastDeploy"]["environment"], "production");
    assert_eq!(release["lastDeploy"]["url"], "https://ci.example/run/7");
    assert_eq!(release["projects"][0]["slug"], "default");
    assert_eq!(release["eventCount"], 1);
    assert_eq!(release["newGroups"], 1);
    assert!(release["lastEvent"].is_string());
    let (_, mine) = server.api_get(&token, "/api/0/projects/phoebe/default/releases/");
    assert_eq!(mine[0]["version"], "web@1.0.0");

    // Archived: out of the list, in the archived list; restored: back.
    ok(&["releases", "archive", "web@1.0.0"]);
    assert!(!ok(&["releases", "list"]).contains("web@1.0.0"));
    let (_, archived) = server.api_get(
        &token,
        "/api/0/organizations/phoebe/releases/?status=archived",
    );
    assert_eq!(archived[0]["version"], "web@1.0.0");
    ok(&["releases", "restore", "web@1.0.0"]);
    assert!(ok(&["releases", "list"]).contains("web@1.0.0"));

    // Deleted: gone, and its events stay.
    ok(&["releases", "delete", "web@1.0.0"]);
    let (code, _) = run(&cli, &env, &["releases", "info", "web@1.0.0"]);
    assert_ne!(code, 0, "deleted");
    assert!(ok(&["issues", "list"]).contains("checkout failed"));

    // Bad input is refused with the reason.
    let (code, out) = run(&cli, &env, &["releases", "new", "latest"]);
    assert_ne!(code, 0);
    assert!(out.contains("reserved"), "{out}");

    // An organization token carries the URL and the organization: nothing else is needed.
    let (code, org_token, err) = phoebe(&server.data_dir, &["token", "create", "--org", "phoebe"]);
    assert_eq!(code, 0, "{err}");
    let org_token = org_token.trim();
    assert!(org_token.starts_with("sntrys_"), "{org_token}");
    let only_token = [("SENTRY_AUTH_TOKEN", org_token)];
    let (code, out) = run(&cli, &only_token, &["projects", "list"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("default"), "{out}");
    assert!(!out.contains("Unrecognized auth token"), "{out}");
    let (code, out) = run(
        &cli,
        &only_token,
        &["releases", "new", "-p", "default", "web@2.0.0"],
    );
    assert_eq!(code, 0, "{out}");
    let (_, listed) = server.api_get(&token, "/api/0/organizations/phoebe/releases/");
    assert_eq!(listed[0]["version"], "web@2.0.0");
}

/// A bundle's files as `phoebe sourcemaps` lists them: (type, debug id, release, URL).
fn listed_sourcemaps(server: &Server) -> Vec<(String, String, String, String)> {
    let (code, out, err) = phoebe(&server.data_dir, &["sourcemaps"]);
    assert_eq!(code, 0, "{err}");
    out.lines()
        .skip(1)
        .map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            (
                cols[1].to_string(),
                cols[2].to_string(),
                cols[3].to_string(),
                cols[4].to_string(),
            )
        })
        .collect()
}

#[test]
fn sentry_cli_uploads_source_maps_by_debug_id_and_by_release_and_again_uploads_nothing() {
    let Some(cli) = sentry_cli() else { return };
    let Some(corpus) = corpus_dir() else { return };
    let server = Server::start();
    let token = user_token(&server);
    let env = cli_env(&server, &token);
    let artifacts = corpus.join("node/artifacts");
    let with_ids = artifacts.join("dist-debugid");
    let plain = artifacts.join("dist");

    // Injected debug ids: no release needed.
    let (code, out) = run(
        &cli,
        &env,
        &["sourcemaps", "upload", with_ids.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{out}");
    // No debug ids: by release and URL, waiting for the assembly.
    let (code, out) = run(
        &cli,
        &env,
        &[
            "sourcemaps",
            "upload",
            "--release",
            "node@2.3.0",
            "--url-prefix",
            "~/static",
            "--wait",
            plain.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{out}");
    let listed = listed_sourcemaps(&server);
    let debug_id = "151fbe13-4ed4-5497-b9e0-eafca98aaa7e";
    assert!(
        listed.contains(&(
            "minified_source".into(),
            debug_id.into(),
            "-".into(),
            "~/app.min.js".into()
        )),
        "{listed:?}"
    );
    assert!(
        listed
            .iter()
            .any(|(kind, _, release, url)| kind == "source_map"
                && release == "node@2.3.0"
                && url == "~/static/app.min.js.map"),
        "{listed:?}"
    );
    // The same bundle again: nothing is uploaded or kept twice.
    let (code, out) = run(
        &cli,
        &env,
        &["sourcemaps", "upload", with_ids.to_str().unwrap()],
    );
    assert_eq!(code, 0, "{out}");
    assert_eq!(listed_sourcemaps(&server).len(), listed.len());

    // A chunk that does not match the SHA-1 it is named by is refused, and so is a bundle
    // assembled from chunks that were never sent.
    let boundary = "XyZ";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{}\"\r\nContent-Type: application/octet-stream\r\n\r\nnot what the name says\r\n--{boundary}--\r\n",
        "0".repeat(40)
    );
    let (status, answer, _) = send(
        &server,
        "/api/0/organizations/phoebe/chunk-upload/",
        &[
            ("Authorization", &format!("Bearer {token}")),
            (
                "Content-Type",
                &format!("multipart/form-data; boundary={boundary}"),
            ),
        ],
        body.as_bytes(),
    );
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["detail"].as_str().unwrap().contains("damaged"),
        "{answer}"
    );
    let sum = "1".repeat(40);
    let (status, answer, _) = send(
        &server,
        "/api/0/organizations/phoebe/artifactbundle/assemble/",
        &[
            ("Authorization", &format!("Bearer {token}")),
            ("Content-Type", "application/json"),
        ],
        serde_json::json!({"checksum": sum, "chunks": [sum], "projects": ["default"]})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(status, 200);
    assert_eq!(answer["state"], "not_found");
    assert_eq!(answer["missingChunks"], serde_json::json!([sum]));
}

/// The event inside a recorded node envelope of the corpus.
fn recorded_event(corpus: &std::path::Path, name: &str) -> serde_json::Value {
    let raw = std::fs::read(corpus.join("node").join(name)).unwrap();
    let lines: Vec<&[u8]> = raw.split(|b| *b == b'\n').collect();
    serde_json::from_slice(lines[2]).unwrap()
}

/// The innermost exception's frames of an issue's latest event, through the API.
fn latest_frames(server: &Server, token: &str, title_part: &str) -> Vec<serde_json::Value> {
    let (_, issues) = server.api_get(token, "/api/0/projects/phoebe/default/issues/");
    let issue = issues
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["title"].as_str().unwrap_or("").contains(title_part))
        .unwrap_or_else(|| panic!("no issue with {title_part:?}: {issues}"));
    let (_, event) = server.api_get(
        token,
        &format!(
            "/api/0/issues/{}/events/latest/",
            issue["id"].as_str().unwrap()
        ),
    );
    let exception = event["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "exception")
        .unwrap()
        .clone();
    exception["data"]["values"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()["stacktrace"]["frames"]
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn minified_node_events_show_their_typescript_after_sentry_cli_uploaded_the_maps() {
    let Some(cli) = sentry_cli() else { return };
    let Some(corpus) = corpus_dir() else { return };
    let server = Server::start();
    let token = user_token(&server);
    let env = cli_env(&server, &token);
    let artifacts = corpus.join("node/artifacts");
    // One build with injected debug ids; the other by release (the recorded events' release).
    for args in [
        vec![
            "sourcemaps",
            "upload",
            artifacts.join("dist-debugid").to_str().unwrap(),
        ],
        vec![
            "sourcemaps",
            "upload",
            "--release",
            "corpus-node@2.3.0",
            artifacts.join("dist").to_str().unwrap(),
        ],
    ] {
        let (code, out) = run(&cli, &env, &args);
        assert_eq!(code, 0, "{out}");
    }
    let by_debug_id = recorded_event(&corpus, "022-minified-bundle-debugid--event.req");
    let by_release = recorded_event(&corpus, "020-minified-bundle--event.req");
    let mut elsewhere = by_release.clone();
    elsewhere["release"] = "corpus-node@9.9.9".into();
    elsewhere["event_id"] = new_event_id().into();
    elsewhere["exception"]["values"][0]["type"] = "UnmappedError".into();
    for e in [&by_debug_id, &by_release, &elsewhere] {
        assert_eq!(post_envelope(&server, &envelope(e)).0, 200);
    }
    server.wait_digested(3);

    // The two builds are the same code: mapped, they are one issue.
    let (_, issues) = server.api_get(&token, "/api/0/projects/phoebe/default/issues/");
    let ranged: Vec<&serde_json::Value> = issues
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["title"].as_str().unwrap_or("").starts_with("RangeError"))
        .collect();
    assert_eq!(ranged.len(), 1, "one issue for both builds: {issues}");
    assert_eq!(ranged[0]["count"], "2");

    let frames = latest_frames(&server, &token, "RangeError");
    let in_app: Vec<&serde_json::Value> = frames
        .iter()
        .filter(|f| f["filename"].as_str().unwrap_or("").ends_with("app.ts"))
        .collect();
    assert!(!in_app.is_empty(), "mapped to app.ts: {frames:#?}");
    let throwing = in_app.last().unwrap();
    assert_eq!(
        throwing["context"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c[0] == throwing["lineNo"])
            .unwrap()[1]
            .as_str()
            .unwrap()
            .trim(),
        "throw new RangeError(`invalid quantity ${item.quantity} for ${item.sku}`);"
    );
    assert_eq!(throwing["lineNo"], 19);
    // Method names survive esbuild's minification; the map has no better name for them.
    assert!(
        in_app
            .iter()
            .any(|f| f["function"].as_str().unwrap_or("").ends_with("subtotal")),
        "function names: {in_app:#?}"
    );

    // A release nothing was uploaded for: the frames stay minified and say why.
    let frames = latest_frames(&server, &token, "UnmappedError");
    let minified = frames
        .iter()
        .find(|f| f["filename"].as_str().unwrap_or("").ends_with("app.min.js"))
        .unwrap();
    assert!(
        minified
            .to_string()
            .contains("no uploaded file of this release"),
        "{minified:#}"
    );

    // The issue pages say the same.
    let cookie = dashboard_cookie(&server);
    let (_, issues) = server.api_get(&token, "/api/0/projects/phoebe/default/issues/");
    let id_of = |prefix: &str| {
        issues
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["title"].as_str().unwrap_or("").starts_with(prefix))
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (status, page) = dashboard_get(
        &server,
        &cookie,
        &format!("/issues/{}/", id_of("RangeError")),
    );
    assert_eq!(status, 200);
    assert!(
        page.contains("app/app.ts") && page.contains("source-mapped from"),
        "{page}"
    );
    let (_, page) = dashboard_get(
        &server,
        &cookie,
        &format!("/issues/{}/", id_of("UnmappedError")),
    );
    assert!(
        page.contains("not source-mapped: no uploaded file of this release"),
        "{page}"
    );
}

#[test]
fn a_minified_browser_event_shows_its_typescript_after_an_upload_by_release_and_url_prefix() {
    let Some(cli) = sentry_cli() else { return };
    let Some(corpus) = corpus_dir() else { return };
    let server = Server::start();
    let token = user_token(&server);
    let env = cli_env(&server, &token);
    let dist = corpus.join("browser/artifacts/dist-browser");
    let (code, out) = run(
        &cli,
        &env,
        &[
            "sourcemaps",
            "upload",
            "--release",
            "corpus-browser@3.1.0",
            "--url-prefix",
            "~/static",
            dist.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{out}");
    let raw = std::fs::read(corpus.join("browser/003-uncaught-error--event.req")).unwrap();
    let lines: Vec<&[u8]> = raw.split(|b| *b == b'\n').collect();
    let event: serde_json::Value = serde_json::from_slice(lines[2]).unwrap();
    assert_eq!(post_envelope(&server, &envelope(&event)).0, 200);
    server.wait_digested(1);

    let frames = latest_frames(&server, &token, "TypeError");
    let app: Vec<&serde_json::Value> = frames
        .iter()
        .filter(|f| f["filename"].as_str().unwrap_or("").ends_with("app.ts"))
        .collect();
    assert_eq!(app.len(), 3, "the three app.min.js frames: {frames:#?}");
    let functions: Vec<&str> = app
        .iter()
        .map(|f| f["function"].as_str().unwrap_or(""))
        .collect();
    // The minifier renamed them `d` and `p`; the map's names bring them back.
    assert_eq!(
        functions[1..],
        ["renderTotal", "applyCoupon"],
        "{functions:?}"
    );
    let failing = app.last().unwrap();
    let line = failing["lineNo"].as_u64().unwrap();
    let source = std::fs::read_to_string(corpus.join("browser/artifacts/page/app.ts")).unwrap();
    let expected = source.lines().nth(line as usize - 1).unwrap().trim();
    let shown = failing["context"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c[0] == line)
        .unwrap()[1]
        .as_str()
        .unwrap()
        .trim()
        .to_string();
    assert_eq!(shown, expected);
    assert!(
        shown.contains("percent"),
        "the line that read .percent: {shown}"
    );
    assert_eq!(
        failing["data"]["sourcemap"]["abs_path"]
            .as_str()
            .map(|u| u.ends_with("/static/app.min.js")),
        Some(true)
    );
    // The SDK's own bundle was not uploaded: that frame says so.
    let vendor = frames
        .iter()
        .find(|f| {
            f["filename"]
                .as_str()
                .unwrap_or("")
                .contains("vendor.sentry.min.js")
        })
        .unwrap();
    assert!(
        vendor
            .to_string()
            .contains("no uploaded file of this release"),
        "{vendor:#}"
    );
}

#[test]
fn a_project_over_its_source_map_quota_is_told_how_to_make_room() {
    let Some(cli) = sentry_cli() else { return };
    let Some(corpus) = corpus_dir() else { return };
    let server = Server::start_with(&[("PHOEBE_QUOTAS__SOURCEMAP_BYTES_PER_PROJECT", "4000")]);
    let token = user_token(&server);
    let env = cli_env(&server, &token);
    let upload = |dir: &str, release: &str| {
        let path = corpus.join(dir);
        run(
            &cli,
            &env,
            &[
                "sourcemaps",
                "upload",
                "--release",
                release,
                path.to_str().unwrap(),
            ],
        )
    };
    let (code, out) = upload("node/artifacts/dist", "web@1");
    assert_eq!(code, 0, "the first bundle fits: {out}");
    let (code, out) = upload("browser/artifacts/dist-browser", "web@2");
    assert_ne!(code, 0, "{out}");
    assert!(out.contains("sourcemap_bytes_per_project"), "{out}");
    // Deleting the old release makes room.
    let (code, out) = run(&cli, &env, &["releases", "delete", "web@1"]);
    assert_eq!(code, 0, "{out}");
    let (code, out) = upload("browser/artifacts/dist-browser", "web@2");
    assert_eq!(code, 0, "{out}");
}
