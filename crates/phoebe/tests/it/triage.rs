//! Triage beyond a status, through the API, the CLI and the events that follow: resolve in the
//! next release, ignore until a count, assign, comment, merge, delete, and the activity log.

use crate::util::*;

fn event_in(ty: &str, value: &str, release: &str) -> serde_json::Value {
    let mut e = error_event(ty, value);
    e["release"] = serde_json::json!(release);
    e
}

fn send(server: &Server, e: &serde_json::Value) {
    assert_eq!(post_envelope(server, &envelope(e)).0, 200);
}

fn api(
    server: &Server,
    token: &str,
    method: &str,
    path: &str,
    body: &str,
) -> (u16, serde_json::Value) {
    let r = ureq::request(method, &format!("{}{path}", server.url))
        .set("Authorization", &format!("Bearer {token}"))
        .set("Content-Type", "application/json")
        .send_string(body);
    json_of(r)
}

fn issue_ids(server: &Server, token: &str) -> Vec<(i64, String)> {
    let (_, list) = server.api_get(token, "/api/0/projects/phoebe/default/issues/?query=");
    list.as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["id"].as_str().unwrap().parse().unwrap(),
                i["title"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn id_of(server: &Server, token: &str, title_start: &str) -> i64 {
    issue_ids(server, token)
        .into_iter()
        .find(|(_, t)| t.starts_with(title_start))
        .unwrap_or_else(|| panic!("no issue {title_start}"))
        .0
}

#[test]
fn triage_conditions_assignment_comments_merge_and_delete() {
    let server = Server::start();
    let token = server.token();
    send(&server, &event_in("KeyError", "sku", "1.0"));
    send(&server, &event_in("TimeoutError", "db", "1.0"));
    send(&server, &event_in("OSError", "disk", "1.0"));
    server.wait_digested(3);
    let key_error = id_of(&server, &token, "KeyError");
    let path = format!("/api/0/issues/{key_error}/");

    // Resolved in the next release: 1.0 keeps it resolved, 1.1 re-opens it.
    let (code, issue) = api(
        &server,
        &token,
        "PUT",
        &path,
        r#"{"status": "resolvedInNextRelease"}"#,
    );
    assert_eq!(code, 200, "{issue}");
    assert_eq!(issue["statusDetails"]["inNextRelease"], true);
    send(&server, &event_in("KeyError", "sku", "1.0"));
    server.wait_digested(4);
    assert_eq!(server.api_get(&token, &path).1["status"], "resolved");
    send(&server, &event_in("KeyError", "sku", "1.1"));
    server.wait_digested(5);
    let (_, issue) = server.api_get(&token, &path);
    assert_eq!(
        (issue["status"].as_str(), issue["isRegression"].as_bool()),
        (Some("unresolved"), Some(true))
    );

    // Ignored until 2 more events, from the CLI.
    let (code, _, err) = phoebe(
        &server.data_dir,
        &[
            "issues",
            "ignore",
            &key_error.to_string(),
            "--until-count",
            "2",
            "--by",
            "admin",
        ],
    );
    assert_eq!(code, 0, "{err}");
    // Three events so far: it re-opens at the fifth.
    assert_eq!(
        server.api_get(&token, &path).1["statusDetails"]["ignoreUntilCount"],
        5
    );
    send(&server, &event_in("KeyError", "sku", "1.1"));
    server.wait_digested(6);
    assert_eq!(server.api_get(&token, &path).1["status"], "ignored");
    send(&server, &event_in("KeyError", "sku", "1.1"));
    server.wait_digested(7);
    assert_eq!(server.api_get(&token, &path).1["status"], "unresolved");
    let (code, _, err) = phoebe(
        &server.data_dir,
        &["issues", "ignore", "1", "--for", "soon"],
    );
    assert_ne!(code, 0);
    assert!(err.contains("30m, 2h or 7d"), "{err}");

    // Assign and comment, through the API and the CLI.
    let (code, issue) = api(&server, &token, "PUT", &path, r#"{"assignedTo": "admin"}"#);
    assert_eq!(code, 200);
    assert_eq!(issue["assignedTo"]["name"], "admin");
    let (code, _) = api(
        &server,
        &token,
        "PUT",
        &path,
        r#"{"assignedTo": "nobody-here"}"#,
    );
    assert_eq!(code, 400);
    let (code, c) = api(
        &server,
        &token,
        "POST",
        &format!("{path}comments/"),
        r#"{"text": "looking"}"#,
    );
    assert_eq!((code, c["type"].as_str()), (201, Some("comment")));
    let (code, _) = api(
        &server,
        &token,
        "POST",
        &format!("{path}comments/"),
        r#"{"text": "  "}"#,
    );
    assert_eq!(code, 400);
    let (code, _, err) = phoebe(
        &server.data_dir,
        &[
            "issues",
            "comment",
            &key_error.to_string(),
            "fixed in #42",
            "--by",
            "admin",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = phoebe(
        &server.data_dir,
        &["issues", "assign", &key_error.to_string(), "none"],
    );
    assert_eq!(code, 0, "{err}");
    let (_, issue) = server.api_get(&token, &path);
    assert!(issue["assignedTo"].is_null());
    // The API comment and the CLI's; the refused blank one is not counted.
    assert_eq!(issue["numComments"], 2);

    // The activity log has all of it, newest first.
    let (_, log) = server.api_get(&token, &format!("{path}activities/"));
    let kinds: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "unassigned",
            "comment",
            "comment",
            "assigned",
            "unignored",
            "ignored",
            "regression",
            "resolved"
        ]
    );
    assert_eq!(log[1]["data"]["text"], "fixed in #42");
    assert_eq!(log[1]["user"]["name"], "admin");
    let (code, out, _) = phoebe(
        &server.data_dir,
        &["issues", "activity", &key_error.to_string()],
    );
    assert_eq!(code, 0);
    assert!(
        out.contains("comment") && out.contains("regression"),
        "{out}"
    );

    // Merge through the bulk endpoint: the issue with more events is kept.
    let timeout = id_of(&server, &token, "TimeoutError");
    let (code, merged) = api(
        &server,
        &token,
        "PUT",
        &format!("/api/0/projects/phoebe/default/issues/?id={key_error}&id={timeout}"),
        r#"{"merge": 1}"#,
    );
    assert_eq!(code, 200, "{merged}");
    assert_eq!(merged["merge"]["parent"], key_error.to_string());
    assert_eq!(
        server
            .api_get(&token, &format!("/api/0/issues/{timeout}/"))
            .0,
        404
    );
    send(&server, &event_in("TimeoutError", "db", "1.1"));
    server.wait_digested(8);
    let (_, issue) = server.api_get(&token, &path);
    assert_eq!(
        issue["count"], "7",
        "the merged fingerprint's new event lands in the merged issue"
    );

    // Delete: the issue goes; its next event starts a new one.
    let os = id_of(&server, &token, "OSError");
    let (code, _) = api(
        &server,
        &token,
        "DELETE",
        &format!("/api/0/issues/{os}/"),
        "",
    );
    assert_eq!(code, 202);
    assert_eq!(
        server.api_get(&token, &format!("/api/0/issues/{os}/")).0,
        404
    );
    send(&server, &event_in("OSError", "disk", "1.1"));
    server.wait_digested(9);
    assert_ne!(id_of(&server, &token, "OSError"), os);
    let (code, _, err) = phoebe(
        &server.data_dir,
        &["issues", "delete", &key_error.to_string()],
    );
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("deleted 1 of 1"), "{err}");
}
