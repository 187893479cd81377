//! The admin commands, run against the same data folder as a live server.

use crate::util::*;

#[test]
fn project_token_issues_and_test_event_commands() {
    let server = Server::start();
    let (code, out, err) = phoebe(&server.data_dir, &["project", "create", "web"]);
    assert_eq!(code, 0, "{err}");
    let dsn = out.trim();
    assert_eq!(
        out.lines().count(),
        1,
        "stdout must be only the DSN: {out:?}"
    );
    assert!(dsn.starts_with("http://") && dsn.ends_with("/2"), "{dsn}");
    // --data-dir may come before the subcommand too.
    let out = std::process::Command::new(bin())
        .arg("--data-dir")
        .arg(&server.data_dir)
        .args(["project", "list"])
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(
        listing.contains("phoebe/web") && listing.contains(dsn),
        "{listing}"
    );
    let (code, _, err) = phoebe(&server.data_dir, &["project", "create", "web"]);
    assert_ne!(code, 0);
    assert!(err.contains("already exists"), "{err}");

    let (code, token, _) = phoebe(&server.data_dir, &["token", "create"]);
    assert_eq!(code, 0);
    assert!(
        token.trim().starts_with("sntryu_") && token.trim().len() == 71,
        "{token}"
    );

    // The key was made while the server ran: ingest finds it without a restart.
    let (code, id, err) = phoebe(
        &server.data_dir,
        &[
            "send-test-event",
            "--dsn",
            dsn,
            "--message",
            "hello from the cli",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(id.trim().len(), 32);
    server.wait_digested(1);
    let (code, out, _) = phoebe(&server.data_dir, &["issues", "list", "--project", "web"]);
    assert_eq!(code, 0);
    assert!(out.contains("hello from the cli"), "{out}");
    let (_, json_out, _) = phoebe(
        &server.data_dir,
        &["issues", "list", "--json", "--query", "hello"],
    );
    let issues: serde_json::Value = serde_json::from_str(&json_out).unwrap();
    let issue_id = issues[0]["id"].as_str().unwrap().to_string();
    let (code, shown, _) = phoebe(&server.data_dir, &["issues", "show", &issue_id]);
    assert_eq!(code, 0);
    assert!(
        shown.contains("hello from the cli") && shown.contains("events:     1"),
        "{shown}"
    );
    let (code, _, _) = phoebe(&server.data_dir, &["issues", "resolve", &issue_id]);
    assert_eq!(code, 0);
    let (_, out, _) = phoebe(
        &server.data_dir,
        &["issues", "list", "--query", "is:resolved"],
    );
    assert!(out.contains("hello from the cli"), "{out}");

    let (code, config, _) = phoebe(&server.data_dir, &["config", "show"]);
    assert_eq!(code, 0);
    assert!(config.contains("max_event_bytes"), "{config}");
    assert_eq!(server.stop(), 0, "SIGTERM must exit 0");
}

#[test]
fn bad_configuration_is_reported_with_the_key() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(tmp.path()).unwrap();
    std::fs::write(
        tmp.path().join("phoebe.toml"),
        "[ingest]\nmax_evnt_bytes = 3\n",
    )
    .unwrap();
    let (code, _, err) = phoebe(tmp.path(), &["config", "show"]);
    assert_ne!(code, 0);
    assert!(err.contains("max_evnt_bytes"), "{err}");
}

#[test]
fn users_are_listed_disabled_enabled_and_get_new_passwords() {
    let server = Server::start();
    let dir = &server.data_dir;
    let (code, err) = phoebe_with_password(dir, "correct horse", &["user", "create", "bob"]);
    assert_eq!(code, 0, "{err}");
    let (code, out, _) = phoebe(dir, &["token", "create", "--user", "bob"]);
    assert_eq!(code, 0);
    let bob_token = out.trim().to_string();
    assert_eq!(server.api_get(&bob_token, "/api/0/projects/").0, 200);

    let (_, list, _) = phoebe(dir, &["user", "list"]);
    assert!(
        list.lines()
            .any(|l| l.contains("bob") && l.ends_with("active")),
        "{list}"
    );

    let (code, _, err) = phoebe(dir, &["user", "disable", "bob"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        server.api_get(&bob_token, "/api/0/projects/").0,
        401,
        "a disabled user's token stops working"
    );
    let (_, list, _) = phoebe(dir, &["user", "list", "--json"]);
    let list: serde_json::Value = serde_json::from_str(&list).unwrap();
    let bob = list
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["login"] == "bob")
        .unwrap();
    assert_eq!(bob["isActive"], false);

    let (code, _, _) = phoebe(dir, &["user", "enable", "bob"]);
    assert_eq!(code, 0);
    assert_eq!(server.api_get(&bob_token, "/api/0/projects/").0, 200);

    let (code, err) = phoebe_with_password(dir, "short", &["user", "reset-password", "bob"]);
    assert_ne!(code, 0);
    assert!(err.contains("at least 8 characters"), "{err}");
    let (code, err) =
        phoebe_with_password(dir, "battery staple", &["user", "reset-password", "bob"]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = phoebe(dir, &["user", "disable", "nobody"]);
    assert_ne!(code, 0);
    assert!(err.contains("user not found"), "{err}");

    // The last active user cannot lock everyone out.
    phoebe(dir, &["user", "disable", "bob"]);
    let (code, _, err) = phoebe(dir, &["user", "disable", "admin"]);
    assert_ne!(code, 0);
    assert!(err.contains("last active user"), "{err}");
}
