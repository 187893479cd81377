//! The read API: issues, filters, pagination, events, status changes and regressions.

use serde_json::json;

use crate::util::*;

fn put(
    server: &Server,
    token: &str,
    path: &str,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    json_of(
        ureq::put(&format!("{}{path}", server.url))
            .set("Authorization", &format!("Bearer {token}"))
            .set("Content-Type", "application/json")
            .send_string(&body.to_string()),
    )
}

#[test]
fn issues_events_filters_pagination_and_regressions() {
    let server = Server::start();
    let token = server.token();

    // 3 events of one issue (different values and users), 1 of another, 1 warning message in staging.
    let mut first = error_event("PaymentError", "order 1 failed");
    first["user"] = json!({"id": "1"});
    let first_id = first["event_id"].as_str().unwrap().to_string();
    let mut second = error_event("PaymentError", "order 2 failed");
    second["user"] = json!({"id": "2"});
    second["release"] = json!("app@1.1.0");
    let third = error_event("PaymentError", "order 3 failed");
    let other = error_event("TimeoutError", "upstream");
    let message = json!({"event_id": new_event_id(), "message": "disk almost full", "level": "warning", "environment": "staging", "platform": "python"});
    for ev in [&first, &second, &third, &other, &message] {
        let (code, body) = post_envelope(&server, &envelope(ev));
        assert_eq!(code, 200, "{body}");
    }
    server.wait_digested(5);

    let base = "/api/0/projects/phoebe/default/issues/";
    let (code, list) = server.api_get(&token, base);
    assert_eq!(code, 200, "{list}");
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 3);
    let pay = list
        .iter()
        .find(|i| i["metadata"]["type"] == "PaymentError")
        .expect("PaymentError issue");
    assert_eq!(pay["count"], "3");
    assert_eq!(pay["userCount"], 3);
    assert_eq!(pay["status"], "unresolved");
    assert_eq!(
        pay["shortId"].as_str().unwrap().split('-').next(),
        Some("DEFAULT")
    );
    assert_eq!(pay["firstRelease"]["version"], "app@1.0.0");
    assert_eq!(pay["lastRelease"]["version"], "app@1.0.0");
    assert_eq!(
        pay["stats"]["24h"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p[1].as_i64().unwrap())
            .sum::<i64>(),
        3
    );
    let pay_id = pay["id"].as_str().unwrap().to_string();

    // Filters.
    let count = |q: &str| {
        server
            .api_get(
                &token,
                &format!("{base}?query={}", q.replace(' ', "%20").replace(':', "%3A")),
            )
            .1
            .as_array()
            .map(Vec::len)
    };
    assert_eq!(count("level:warning"), Some(1));
    assert_eq!(count("environment:staging"), Some(1));
    assert_eq!(count("release:app@1.1.0"), Some(1));
    assert_eq!(count("team:payments"), Some(2));
    assert_eq!(count("Timeout"), Some(1));
    assert_eq!(count("is:resolved"), Some(0));
    assert_eq!(
        server
            .api_get(&token, &format!("{base}?query=is%3Abogus"))
            .0,
        400
    );
    assert_eq!(
        server
            .api_get(&token, &format!("{base}?statsPeriod=24h"))
            .1
            .as_array()
            .map(Vec::len),
        Some(3)
    );

    // Pagination: one issue per page, walked forward and back through the Link header.
    let page = |url: &str| {
        let r = ureq::get(url)
            .set("Authorization", &format!("Bearer {token}"))
            .call()
            .unwrap();
        let link = r.header("link").unwrap().to_string();
        let body: serde_json::Value = serde_json::from_str(&r.into_string().unwrap()).unwrap();
        (body, link)
    };
    let target = |link: &str, rel: &str| -> (String, bool) {
        let part = link
            .split(", <")
            .find(|p| p.contains(&format!("rel=\"{rel}\"")))
            .unwrap();
        let url = part
            .trim_start_matches('<')
            .split('>')
            .next()
            .unwrap()
            .to_string();
        (url, part.contains("results=\"true\""))
    };
    let (first, link) = page(&format!("{}{base}?limit=1", server.url));
    assert!(
        link.starts_with(&format!("<{}{base}?limit=1&cursor=", server.url)),
        "{link}"
    );
    assert!(!target(&link, "previous").1, "{link}");
    let (next, more) = target(&link, "next");
    assert!(more, "{link}");
    let (second, link) = page(&next);
    let (next, more) = target(&link, "next");
    assert!(more && target(&link, "previous").1, "{link}");
    let (third, link) = page(&next);
    assert!(!target(&link, "next").1, "the last page says so: {link}");
    let ids: Vec<&str> = [&first, &second, &third]
        .iter()
        .map(|p| p[0]["id"].as_str().unwrap())
        .collect();
    let all: Vec<&str> = list.iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert_eq!(ids, all, "pages walk the list in order, once each");
    let (back, _) = page(&target(&link, "previous").0);
    assert_eq!(back[0]["id"], second[0]["id"]);

    // Issue detail, its events, latest, tags; one event by id.
    let (code, issue) = server.api_get(&token, &format!("/api/0/issues/{pay_id}/"));
    assert_eq!(
        (code, issue["title"].as_str()),
        (200, Some("PaymentError: order 1 failed"))
    );
    let (_, events) = server.api_get(&token, &format!("/api/0/issues/{pay_id}/events/"));
    let events = events.as_array().unwrap();
    assert_eq!(events.len(), 3);
    let dates: Vec<&str> = events
        .iter()
        .map(|e| e["dateCreated"].as_str().unwrap())
        .collect();
    assert!(
        dates.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {dates:?}"
    );
    let (two, link) = page(&format!(
        "{}/api/0/issues/{pay_id}/events/?limit=2",
        server.url
    ));
    assert_eq!(two.as_array().unwrap().len(), 2);
    let (next, more) = target(&link, "next");
    assert!(more, "{link}");
    let (rest, link) = page(&next);
    assert_eq!(rest.as_array().unwrap().len(), 1);
    assert_eq!(rest[0]["eventID"], events[2]["eventID"]);
    assert!(!target(&link, "next").1, "{link}");
    let (_, oldest) = server.api_get(&token, &format!("/api/0/issues/{pay_id}/events/oldest/"));
    assert_eq!(oldest["eventID"], first_id.as_str());
    let (_, latest) = server.api_get(&token, &format!("/api/0/issues/{pay_id}/events/latest/"));
    assert_eq!(latest["groupID"], pay_id);
    let exc = latest["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "exception")
        .unwrap();
    let frames = exc["data"]["values"][0]["stacktrace"]["frames"]
        .as_array()
        .unwrap();
    assert_eq!(frames.last().unwrap()["function"], "charge");
    assert_eq!(frames.last().unwrap()["lineNo"], 20);
    assert_eq!(frames.last().unwrap()["inApp"], true);
    assert_eq!(
        frames.last().unwrap()["context"],
        json!([[20, "    raise Boom()"]])
    );
    assert!(
        latest["grouping"]["explanation"]["components"].is_array(),
        "{}",
        latest["grouping"]
    );
    let (_, tags) = server.api_get(&token, &format!("/api/0/issues/{pay_id}/tags/"));
    let keys: Vec<&str> = tags
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["key"].as_str().unwrap())
        .collect();
    let level = tags
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["key"] == "level")
        .unwrap();
    assert_eq!(
        (
            level["totalValues"].as_i64(),
            level["topValues"][0]["value"].as_str()
        ),
        (Some(3), Some("error"))
    );
    for k in ["environment", "level", "release", "team", "user"] {
        assert!(keys.contains(&k), "{k} missing from {keys:?}");
    }
    let (code, ev) = server.api_get(
        &token,
        &format!("/api/0/projects/phoebe/default/events/{first_id}/"),
    );
    assert_eq!(
        (code, ev["eventID"].as_str()),
        (200, Some(first_id.as_str()))
    );
    assert_eq!(
        server
            .api_get(
                &token,
                "/api/0/projects/phoebe/default/events/00000000000000000000000000000000/"
            )
            .0,
        404
    );

    // Resolve, then the same error again: unresolved and marked as a regression.
    let (code, resolved) = put(
        &server,
        &token,
        &format!("/api/0/issues/{pay_id}/"),
        json!({"status": "resolved"}),
    );
    assert_eq!((code, resolved["status"].as_str()), (200, Some("resolved")));
    assert_eq!(count("is:resolved"), Some(1));
    let (code, _) = post_envelope(
        &server,
        &envelope(&error_event("PaymentError", "order 4 failed")),
    );
    assert_eq!(code, 200);
    server.wait_digested(6);
    let (_, again) = server.api_get(&token, &format!("/api/0/issues/{pay_id}/"));
    assert_eq!(again["status"], "unresolved");
    assert_eq!(again["isRegression"], true);
    assert_eq!(again["substatus"], "regressed");
    assert_eq!(again["count"], "4");

    // Bulk update like sentry-cli's `issues resolve`.
    let other_id = list
        .iter()
        .find(|i| i["metadata"]["type"] == "TimeoutError")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (code, _) = put(
        &server,
        &token,
        &format!("{base}?id={pay_id}&id={other_id}"),
        json!({"status": "ignored"}),
    );
    assert_eq!(code, 200);
    assert_eq!(count("is:ignored"), Some(2));
    let (code, body) = put(&server, &token, base, json!({"status": "resolved"}));
    assert_eq!(code, 400, "a bulk change must name its issues: {body}");
    let (code, body) = put(
        &server,
        &token,
        &format!("/api/0/issues/{pay_id}/"),
        json!({"status": "bogus"}),
    );
    assert_eq!(
        (
            code,
            body["detail"]
                .as_str()
                .map(|d| d.contains("unknown status"))
        ),
        (400, Some(true))
    );
    let (code, body) = json_of(
        ureq::put(&format!("{}/api/0/issues/{pay_id}/", server.url))
            .set("Authorization", &format!("Bearer {token}"))
            .set("Content-Type", "application/json")
            .send_string("{not json"),
    );
    assert_eq!(code, 400);
    assert!(
        body["detail"].as_str().unwrap().contains("bad JSON body"),
        "{body}"
    );
    assert_eq!(server.api_get(&token, "/api/0/issues/abc/").0, 404);
}

#[test]
fn api_needs_a_valid_token() {
    let server = Server::start();
    let (code, body) = json_of(ureq::get(&format!("{}/api/0/projects/", server.url)).call());
    assert_eq!(code, 401);
    assert!(body["detail"]
        .as_str()
        .unwrap()
        .contains("phoebe token create"));
    let (code, _) = server.api_get("sntryu_0000", "/api/0/projects/");
    assert_eq!(code, 401);
    let token = server.token();
    let (code, index) = server.api_get(&token, "/api/0/");
    assert_eq!(
        (code, index["user"]["username"].as_str()),
        (200, Some("admin")),
        "{index}"
    );
    let (code, projects) = server.api_get(&token, "/api/0/projects/");
    assert_eq!(code, 200);
    assert_eq!(projects[0]["slug"], "default");
    let (_, orgs) = server.api_get(&token, "/api/0/organizations/");
    for field in [
        "id",
        "slug",
        "name",
        "dateCreated",
        "isEarlyAdopter",
        "require2FA",
        "requireEmailVerification",
        "features",
    ] {
        assert!(orgs[0].get(field).is_some(), "organization lacks {field}");
    }
    let (_, keys) = server.api_get(&token, "/api/0/projects/phoebe/default/keys/");
    assert_eq!(keys[0]["dsn"]["public"], server.dsn);
    assert_eq!(server.api_get(&token, "/api/0/issues/999999/").0, 404);
    assert_eq!(server.api_get(&token, "/api/0/nope/").0, 404);
}
