//! Every SDK request recorded in `../shared/corpus` (real official clients), replayed byte for
//! byte with its recorded headers against the real server: all accepted, all events digested.

use std::path::Path;

use serde_json::Value;

use crate::util::*;

const RECORDED_PROJECT: &str = "/api/42/";

fn rewrite_key(value: &str, recorded: &str, ours: &str) -> String {
    value.replace(recorded, ours)
}

/// The public key a capture used (from its auth header or query).
fn recorded_key(sidecar: &Value) -> Option<String> {
    let from = |s: &str| {
        s.split("sentry_key=").nth(1).map(|k| {
            k.chars()
                .take_while(|c| c.is_ascii_hexdigit())
                .collect::<String>()
        })
    };
    if let Some(q) = sidecar["query"].as_str().and_then(from) {
        return Some(q);
    }
    sidecar["headers"].as_array()?.iter().find_map(|h| {
        let name = h[0].as_str()?;
        (name.eq_ignore_ascii_case("x-sentry-auth"))
            .then(|| from(h[1].as_str()?))
            .flatten()
    })
}

struct Replayed {
    name: String,
    status: u16,
    body: String,
    event_items: usize,
}

fn replay(server: &Server, dir: &Path) -> Vec<Replayed> {
    let mut sidecars: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    sidecars.sort();
    let mut out = Vec::new();
    for path in sidecars {
        let sidecar: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let kind = sidecar["summary"]["kind"].as_str().unwrap_or("");
        let method = sidecar["method"].as_str().unwrap_or("");
        if !(matches!(kind, "envelope" | "store") || method == "OPTIONS")
            || sidecar["path"]
                .as_str()
                .unwrap_or("")
                .starts_with("/api/0/")
        {
            continue;
        }
        let recorded = recorded_key(&sidecar).unwrap_or_default();
        let ours = server.public_key();
        let mut url = format!(
            "{}{}",
            server.url,
            sidecar["path"]
                .as_str()
                .unwrap()
                .replace(RECORDED_PROJECT, &format!("/api/{}/", server.project_id()))
        );
        if let Some(q) = sidecar["query"].as_str().filter(|q| !q.is_empty()) {
            url.push('?');
            url.push_str(&rewrite_key(q, &recorded, &ours));
        }
        let mut req = ureq::request(method, &url);
        for h in sidecar["headers"].as_array().unwrap() {
            let (name, value) = (h[0].as_str().unwrap(), h[1].as_str().unwrap());
            if ["host", "content-length", "transfer-encoding", "connection"]
                .contains(&name.to_ascii_lowercase().as_str())
            {
                continue;
            }
            req = req.set(name, &rewrite_key(value, &recorded, &ours));
        }
        let body = std::fs::read(path.with_extension("req")).unwrap();
        let result = if method == "OPTIONS" {
            req.call()
        } else {
            req.send_bytes(&body)
        };
        let (status, text) = match result {
            Ok(r) => (r.status(), r.into_string().unwrap_or_default()),
            Err(ureq::Error::Status(c, r)) => (c, r.into_string().unwrap_or_default()),
            Err(e) => panic!("{}: {e}", path.display()),
        };
        let event_items = match kind {
            "store" => 1,
            _ => sidecar["summary"]["items"]
                .as_array()
                .map(|items| items.iter().filter(|i| i["type"] == "event").count())
                .unwrap_or(0),
        };
        out.push(Replayed {
            name: path.file_stem().unwrap().to_string_lossy().into_owned(),
            status,
            body: text,
            event_items,
        });
    }
    out
}

#[test]
fn every_recorded_sdk_request_is_accepted_and_digested() {
    let Some(corpus) = corpus_dir() else { return };
    let server = Server::start();
    let mut all = Vec::new();
    for client in ["python", "python-legacy", "node", "browser", "cli", "rust"] {
        for r in replay(&server, &corpus.join(client)) {
            all.push((client, r));
        }
    }
    assert!(all.len() >= 70, "only {} requests replayed", all.len());
    let refused: Vec<String> = all
        .iter()
        .filter(|(_, r)| r.status != 200)
        .map(|(c, r)| format!("{c}/{}: {} {}", r.name, r.status, r.body))
        .collect();
    assert!(refused.is_empty(), "refused:\n{}", refused.join("\n"));
    let events: usize = all.iter().map(|(_, r)| r.event_items).sum();
    assert!(events >= 30, "{events}");
    server.wait_digested(events as u64);
    assert_eq!(server.metric("phoebe_digest_events_failed_total"), 0.0);

    let token = server.token();
    let (_, issues) = server.api_get(
        &token,
        "/api/0/projects/phoebe/default/issues/?limit=100&query=",
    );
    let titles: Vec<String> = issues
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["title"].as_str().unwrap().to_string())
        .collect();
    for expected in ["ZeroDivisionError: division by zero", "PermissionError"] {
        assert!(
            titles.iter().any(|t| t.starts_with(expected)),
            "no issue titled {expected:?} in {titles:#?}"
        );
    }
    assert!(
        titles
            .iter()
            .all(|t| !t.is_empty() && t != "<unlabeled event>"),
        "{titles:#?}"
    );
    // Issues, not events: python/012 and /013 log "noisy message 0" and "noisy message 2" from one
    // call site; their parameterized message makes them one issue of two events.
    let (_, noisy) = server.api_get(&token, "/api/0/projects/phoebe/default/issues/?query=noisy");
    let noisy = noisy.as_array().unwrap();
    assert_eq!(noisy.len(), 1, "{noisy:#?}");
    assert_eq!(noisy[0]["count"], "2");

    // The dashboard draws every issue and every stored event of every recorded SDK shape.
    let cookie = dashboard_cookie(&server);
    let mut pages = 0;
    for issue in issues.as_array().unwrap() {
        let id = issue["id"].as_str().unwrap();
        let (_, events) = server.api_get(&token, &format!("/api/0/issues/{id}/events/"));
        let mut paths = vec![format!("/issues/{id}/"), format!("/issues/{id}/events/")];
        for e in events.as_array().unwrap() {
            paths.push(format!(
                "/issues/{id}/?event={}",
                e["eventID"].as_str().unwrap()
            ));
        }
        for path in paths {
            let (status, body) = dashboard_get(&server, &cookie, &path);
            assert_eq!(status, 200, "{path}: {body}");
            pages += 1;
        }
    }
    assert!(pages > 60, "only {pages} pages drawn");
    let (status, list) = dashboard_get(&server, &cookie, "/issues/?query=ZeroDivisionError");
    assert_eq!(status, 200);
    assert!(list.contains("ZeroDivisionError: division by zero"));
}
