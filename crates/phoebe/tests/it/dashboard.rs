//! The dashboard over plain HTTP: sessions, CSRF, login throttling, triage forms, pages and
//! their errors. `browser.rs` drives the same pages in a real Chromium.

use crate::util::*;

/// A browser-like client: no redirect following, one cookie.
struct Client {
    agent: ureq::Agent,
    base: String,
    cookie: Option<String>,
}

struct Reply {
    status: u16,
    location: Option<String>,
    set_cookie: Option<String>,
    content_disposition: Option<String>,
    body: String,
}

impl Client {
    fn new(server: &Server) -> Client {
        Client {
            agent: ureq::AgentBuilder::new().redirects(0).build(),
            base: server.url.clone(),
            cookie: None,
        }
    }

    fn finish(&mut self, r: Result<ureq::Response, ureq::Error>) -> Reply {
        let resp = match r {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{e}"),
        };
        let set_cookie = resp.header("set-cookie").map(str::to_string);
        if let Some(c) = &set_cookie {
            let value = c.split(';').next().unwrap().to_string();
            self.cookie = (!value.ends_with('=')).then_some(value);
        }
        Reply {
            status: resp.status(),
            location: resp.header("location").map(str::to_string),
            content_disposition: resp.header("content-disposition").map(str::to_string),
            set_cookie,
            body: resp.into_string().unwrap_or_default(),
        }
    }

    fn get(&mut self, path: &str) -> Reply {
        let mut req = self.agent.get(&format!("{}{path}", self.base));
        if let Some(c) = &self.cookie {
            req = req.set("Cookie", c);
        }
        let r = req.call();
        self.finish(r)
    }

    fn post(&mut self, path: &str, form: &[(&str, &str)], headers: &[(&str, &str)]) -> Reply {
        let mut req = self.agent.post(&format!("{}{path}", self.base));
        if let Some(c) = &self.cookie {
            req = req.set("Cookie", c);
        }
        for (k, v) in headers {
            req = req.set(k, v);
        }
        let r = req.send_form(form);
        self.finish(r)
    }

    fn log_in(&mut self, login: &str, password: &str) -> Reply {
        self.post(
            "/login",
            &[
                ("login", login),
                ("password", password),
                ("next", "/issues/"),
            ],
            &[],
        )
    }

    /// The CSRF token of the page at `path`.
    fn csrf(&mut self, path: &str) -> String {
        let page = self.get(path);
        assert_eq!(page.status, 200, "{path}: {}", page.body);
        let at = page.body.find(r#"name="csrf" value=""#).expect("a form") + 19;
        page.body[at..at + 32].to_string()
    }
}

fn send_error(server: &Server, ty: &str, value: &str) {
    let (status, _) = post_envelope(server, &envelope(&error_event(ty, value)));
    assert_eq!(status, 200);
}

fn issue_status(server: &Server, token: &str, id: i64) -> String {
    let (code, issue) = server.api_get(token, &format!("/api/0/issues/{id}/"));
    assert_eq!(code, 200);
    issue["status"].as_str().unwrap().to_string()
}

#[test]
fn login_sessions_csrf_and_triage() {
    let server = Server::start();
    let token = server.token();
    send_error(&server, "KeyError", "sku-1");
    send_error(&server, "TimeoutError", "upstream took 30 s");
    server.wait_digested(2);
    let mut c = Client::new(&server);

    // Pages need a session; the login page remembers where to come back to.
    let r = c.get("/issues/?query=is:unresolved");
    assert_eq!(r.status, 303);
    assert_eq!(
        r.location.as_deref(),
        Some("/login?next=%2Fissues%2F%3Fquery%3Dis%3Aunresolved")
    );
    assert_eq!(c.get("/").location.as_deref(), Some("/issues/"));
    let login = c.get("/login?next=/issues/2/");
    assert!(login.body.contains(r#"name="next" value="/issues/2/""#));

    // A wrong password and an unknown login look the same.
    let wrong = c.log_in("admin", "not-the-password");
    assert_eq!(wrong.status, 401);
    assert!(
        wrong.body.contains("Wrong login or password."),
        "{}",
        wrong.body
    );
    assert!(c
        .log_in("nobody", "whatever-123")
        .body
        .contains("Wrong login or password."));
    assert!(c.cookie.is_none());

    // Never a redirect to another site.
    let ok = c.post(
        "/login",
        &[
            ("login", "admin"),
            ("password", ADMIN_PASSWORD),
            ("next", "//evil.example/"),
        ],
        &[],
    );
    assert_eq!(ok.status, 303);
    assert_eq!(ok.location.as_deref(), Some("/issues/"));
    let cookie = ok.set_cookie.unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    assert!(
        !cookie.contains("Secure"),
        "plain-http installs need the cookie: {cookie}"
    );

    // The list shows both issues, with the search and its errors on the page.
    let list = c.get("/issues/");
    assert_eq!(list.status, 200);
    assert!(list.body.contains("KeyError: sku-1") && list.body.contains("TimeoutError"));
    let searched = c.get("/issues/?query=Timeout");
    assert!(searched.body.contains("TimeoutError") && !searched.body.contains("KeyError: sku-1"));
    let bad = c.get("/issues/?query=is:sideways");
    assert_eq!(bad.status, 200);
    assert!(bad.body.contains(r#"class="error""#), "{}", bad.body);

    // Triage forms need this session's CSRF token and a same-site origin.
    let (_, issues) = server.api_get(&token, "/api/0/projects/phoebe/default/issues/");
    let ids: Vec<i64> = issues
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().parse().unwrap())
        .collect();
    let csrf = c.csrf(&format!("/issues/{}/", ids[0]));
    let path = format!("/issues/{}/triage", ids[0]);
    let forged = c.post(&path, &[("action", "resolve")], &[]);
    assert_eq!(forged.status, 403);
    let cross_site = c.post(
        &path,
        &[("action", "resolve"), ("csrf", &csrf)],
        &[("Origin", "https://evil.example")],
    );
    assert_eq!(cross_site.status, 403);
    assert_eq!(issue_status(&server, &token, ids[0]), "unresolved");
    let done = c.post(&path, &[("action", "resolve"), ("csrf", &csrf)], &[]);
    assert_eq!(done.status, 303);
    assert_eq!(issue_status(&server, &token, ids[0]), "resolved");
    let page = c.get(&format!("/issues/{}/", ids[0]));
    assert!(
        page.body.contains(r#"id="status">resolved<"#),
        "{}",
        page.body
    );
    let month = page.body.split(r#"<div id="month-chart">"#).nth(1).unwrap();
    let month = &month[..month.find("</div>").unwrap()];
    assert_eq!(
        month.matches("<rect").count(),
        1,
        "one day with events: {month}"
    );

    // Bulk actions take every selected issue.
    let id_strings: Vec<String> = ids.iter().map(i64::to_string).collect();
    let bulk = c.post(
        "/issues/bulk",
        &[
            ("csrf", &csrf),
            ("action", "ignore"),
            ("id", &id_strings[0]),
            ("id", &id_strings[1]),
            ("back", "/issues/?query=is:ignored"),
        ],
        &[],
    );
    assert_eq!(bulk.location.as_deref(), Some("/issues/?query=is:ignored"));
    for id in &ids {
        assert_eq!(issue_status(&server, &token, *id), "ignored");
    }

    // Event pages: the list of events and the raw JSON download.
    let events = c.get(&format!("/issues/{}/events/", ids[1]));
    assert_eq!(events.status, 200);
    let at = events.body.find("?event=").unwrap() + 7;
    let event_id = events.body[at..at + 32].to_string();
    let raw = c.get(&format!("/issues/{}/events/{event_id}/json", ids[1]));
    assert_eq!(raw.status, 200);
    assert!(raw
        .content_disposition
        .unwrap()
        .contains(&format!("event-{event_id}.json")));
    let payload: serde_json::Value = serde_json::from_str(&raw.body).unwrap();
    assert_eq!(payload["event_id"], event_id.as_str());
    // An event of another issue is not this issue's.
    assert_eq!(
        c.get(&format!("/issues/{}/?event={event_id}", ids[0]))
            .status,
        404
    );
    let missing = c.get("/issues/999999/");
    assert_eq!(missing.status, 404);
    assert!(missing.body.contains("does not exist"));

    // Conditions, assignment and comments from the issue page, logged with who did it.
    let csrf = c.csrf(&format!("/issues/{}/", ids[0]));
    for form in [
        [("action", "ignore-minutes-60"), ("csrf", &csrf)],
        [("action", "assign"), ("assignee", "admin")],
        [("action", "comment"), ("text", "<b>on it</b>")],
    ] {
        let mut form = form.to_vec();
        form.push(("csrf", &csrf));
        let r = c.post(&path, &form, &[]);
        assert_eq!(r.status, 303, "{form:?}: {}", r.body);
    }
    let (_, issue) = server.api_get(&token, &format!("/api/0/issues/{}/", ids[0]));
    assert!(issue["statusDetails"]["ignoreUntil"].is_string(), "{issue}");
    assert_eq!(issue["assignedTo"]["name"], "admin");
    assert_eq!(issue["numComments"], 1);
    let ignored = c.get("/issues/?query=is:ignored");
    assert!(ignored
        .body
        .contains(r#"<span class="comments">1 comment</span>"#));
    let page = c.get(&format!("/issues/{}/", ids[0]));
    assert!(
        page.body.contains("&#60;b&#62;on it&#60;/b&#62;"),
        "comments are escaped"
    );
    assert!(page.body.contains("<strong>admin</strong> commented"));
    assert!(page.body.contains(r#"id="ignore-until">until "#));
    let unknown = c.post(&path, &[("action", "sideways"), ("csrf", &csrf)], &[]);
    assert_eq!(unknown.status, 400);

    // Merge and delete from the list.
    let merged = c.post(
        "/issues/bulk",
        &[
            ("csrf", &csrf),
            ("action", "merge"),
            ("id", &id_strings[0]),
            ("id", &id_strings[1]),
        ],
        &[],
    );
    assert_eq!(merged.status, 303);
    let kept = merged.location.unwrap();
    let kept_id: i64 = kept
        .trim_matches(|ch: char| !ch.is_ascii_digit())
        .parse()
        .unwrap();
    assert!(ids.contains(&kept_id));
    let gone = c.post(
        "/issues/bulk",
        &[
            ("csrf", &csrf),
            ("action", "delete"),
            ("id", &kept_id.to_string()),
            ("back", "/issues/"),
        ],
        &[],
    );
    assert_eq!(gone.location.as_deref(), Some("/issues/"));
    assert_eq!(c.get(&kept).status, 404);

    // Logging out ends the session on the server, not only in the browser.
    let kept = c.cookie.clone();
    let csrf = c.csrf("/account");
    assert_eq!(c.post("/logout", &[("csrf", &csrf)], &[]).status, 303);
    c.cookie = kept;
    assert_eq!(c.get("/issues/").status, 303);
}

#[test]
fn passwords_and_disabled_users_end_sessions() {
    let server = Server::start();
    let mut first = Client::new(&server);
    let mut second = Client::new(&server);
    assert_eq!(first.log_in("admin", ADMIN_PASSWORD).status, 303);
    assert_eq!(second.log_in("admin", ADMIN_PASSWORD).status, 303);

    // Changing the password keeps this session and ends the others.
    let csrf = first.csrf("/account");
    let mismatch = first.post(
        "/account",
        &[
            ("csrf", &csrf),
            ("current", ADMIN_PASSWORD),
            ("new", "a-new-password-1"),
            ("confirm", "another-one-2"),
        ],
        &[],
    );
    assert!(mismatch.body.contains("do not match"), "{}", mismatch.body);
    let wrong = first.post(
        "/account",
        &[
            ("csrf", &csrf),
            ("current", "guess-guess"),
            ("new", "a-new-password-1"),
            ("confirm", "a-new-password-1"),
        ],
        &[],
    );
    assert!(wrong.body.contains("The current password is wrong."));
    let changed = first.post(
        "/account",
        &[
            ("csrf", &csrf),
            ("current", ADMIN_PASSWORD),
            ("new", "a-new-password-1"),
            ("confirm", "a-new-password-1"),
        ],
        &[],
    );
    assert!(
        changed.body.contains("Password changed"),
        "{}",
        changed.body
    );
    assert_eq!(first.get("/issues/").status, 200);
    assert_eq!(second.get("/issues/").status, 303);
    assert_eq!(second.log_in("admin", ADMIN_PASSWORD).status, 401);
    assert_eq!(second.log_in("admin", "a-new-password-1").status, 303);

    // An admin's reset from the command line ends every session of that user.
    let (code, err) = phoebe_with_password(
        &server.data_dir,
        "reset-password-9",
        &["user", "reset-password", "admin"],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(first.get("/issues/").status, 303);
    assert_eq!(second.get("/issues/").status, 303);

    // A disabled user's session stops working at once.
    let (code, err) = phoebe_with_password(
        &server.data_dir,
        "second-user-pw",
        &["user", "create", "dana"],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(first.log_in("dana", "second-user-pw").status, 303);
    assert_eq!(first.get("/issues/").status, 200);
    let (code, _, err) = phoebe(&server.data_dir, &["user", "disable", "dana"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(first.get("/issues/").status, 303);
    assert_eq!(first.log_in("dana", "second-user-pw").status, 401);
}

#[test]
fn repeated_failed_logins_are_throttled_per_login() {
    let server = Server::start();
    let mut c = Client::new(&server);
    for _ in 0..5 {
        assert_eq!(c.log_in("admin", "guess-guess").status, 401);
    }
    let blocked = c.log_in("admin", ADMIN_PASSWORD);
    assert_eq!(blocked.status, 429, "even the right password waits");
    assert!(
        blocked.body.contains("Too many failed attempts"),
        "{}",
        blocked.body
    );
    assert!(blocked.body.contains("phoebe user reset-password admin"));
    assert!(c.cookie.is_none());
    assert!(server.wait_for_log("login throttled"));
    // Other logins from the same address are not locked out by someone guessing this one.
    let (code, err) = phoebe_with_password(
        &server.data_dir,
        "second-user-pw",
        &["user", "create", "eve"],
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(c.log_in("eve", "second-user-pw").status, 303);
}

#[test]
fn projects_overview_settings_keys_rename_and_delete() {
    let server = Server::start();
    send_error(&server, "KeyError", "sku-1");
    server.wait_digested(1);
    let mut c = Client::new(&server);
    assert_eq!(c.log_in("admin", ADMIN_PASSWORD).status, 303);

    let overview = c.get("/projects/");
    assert_eq!(overview.status, 200);
    assert!(
        overview.body.contains(&server.dsn),
        "the overview shows the DSN"
    );
    assert!(
        overview.body.contains("is:unresolved\">1</a>"),
        "{}",
        overview.body
    );

    // Creating: a bad slug is explained on the page; a good one opens its settings.
    let csrf = c.csrf("/projects/");
    let bad = c.post("/projects/", &[("csrf", &csrf), ("slug", "Not OK")], &[]);
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("must be 1-50 characters"), "{}", bad.body);
    let made = c.post(
        "/projects/",
        &[("csrf", &csrf), ("slug", "mobile"), ("platform", "python")],
        &[],
    );
    assert_eq!(made.location.as_deref(), Some("/projects/mobile/"));
    let settings = c.get("/projects/mobile/");
    assert_eq!(settings.status, 200);
    let (_, list, _) = phoebe(&server.data_dir, &["project", "list", "--json"]);
    let projects: serde_json::Value = serde_json::from_str(&list).unwrap();
    let mobile_dsn = projects
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["slug"] == "mobile")
        .and_then(|p| p["dsns"][0].as_str())
        .unwrap_or_else(|| panic!("no mobile DSN in {projects}"))
        .to_string();
    for sdk in [
        "Python",
        "JavaScript (browser)",
        "Node.js",
        "Java",
        "Go",
        ".NET",
        "PHP",
        "Ruby",
        "Rust",
    ] {
        assert!(
            settings.body.contains(&format!("<summary>{sdk}</summary>")),
            "{sdk}"
        );
    }
    assert!(
        settings.body.matches(mobile_dsn.as_str()).count() >= 10,
        "snippets carry the DSN"
    );

    // Keys: create one, disable it.
    let path = "/projects/mobile/";
    let r = c.post(
        path,
        &[("csrf", &csrf), ("action", "create-key"), ("label", "ios")],
        &[],
    );
    assert_eq!(r.status, 303);
    let page = c.get(path);
    assert!(page.body.contains(">ios<"), "{}", page.body);
    let key = mobile_dsn
        .split("//")
        .nth(1)
        .unwrap()
        .split('@')
        .next()
        .unwrap();
    let r = c.post(
        path,
        &[("csrf", &csrf), ("action", "disable-key"), ("key", key)],
        &[],
    );
    assert_eq!(r.status, 303);
    assert!(c.get(path).body.contains("· disabled"));
    // A key of another project is not this project's to disable.
    let other_key = server.public_key();
    let r = c.post(
        path,
        &[
            ("csrf", &csrf),
            ("action", "disable-key"),
            ("key", &other_key),
        ],
        &[],
    );
    assert_eq!(r.status, 404);

    // Rename keeps the slug; delete needs the slug typed.
    let r = c.post(
        path,
        &[
            ("csrf", &csrf),
            ("action", "rename"),
            ("name", "Mobile apps"),
        ],
        &[],
    );
    assert_eq!(r.status, 303);
    assert!(c.get(path).body.contains("<h1>Mobile apps</h1>"));
    let r = c.post(
        path,
        &[("csrf", &csrf), ("action", "delete"), ("confirm", "mobil")],
        &[],
    );
    assert_eq!(r.status, 400);
    assert!(r.body.contains("confirm with its slug"), "{}", r.body);
    let r = c.post(
        path,
        &[("csrf", &csrf), ("action", "delete"), ("confirm", "mobile")],
        &[],
    );
    assert_eq!(r.location.as_deref(), Some("/projects/"));
    assert_eq!(c.get(path).status, 404);

    // The same from the command line.
    let (code, _, err) = phoebe(&server.data_dir, &["project", "rename", "default", "Shop"]);
    assert_eq!(code, 0, "{err}");
    assert!(c.get("/projects/").body.contains(">Shop</a>"));
    let (code, _, err) = phoebe(
        &server.data_dir,
        &["project", "delete", "default", "--confirm", "nope"],
    );
    assert_ne!(code, 0);
    assert!(err.contains("confirm with its slug"), "{err}");
}

#[test]
fn live_updates_stream_new_events_and_end_at_shutdown() {
    use std::io::{BufRead, BufReader, Write};
    let server = Server::start();
    let mut c = Client::new(&server);
    assert_eq!(c.get("/live").status, 303, "the stream needs a session");
    assert_eq!(c.log_in("admin", ADMIN_PASSWORD).status, 303);

    let addr = server.url.trim_start_matches("http://").to_string();
    let mut socket = std::net::TcpStream::connect(&addr).unwrap();
    socket
        .set_read_timeout(Some(std::time::Duration::from_secs(15)))
        .unwrap();
    write!(
        socket,
        "GET /live HTTP/1.1\r\nHost: {addr}\r\nCookie: {}\r\nAccept: text/event-stream\r\n\r\n",
        c.cookie.as_ref().unwrap()
    )
    .unwrap();
    let mut lines = BufReader::new(socket.try_clone().unwrap()).lines();
    let status = lines.next().unwrap().unwrap();
    assert!(status.starts_with("HTTP/1.1 200"), "{status}");
    let headers: Vec<String> = lines
        .by_ref()
        .map_while(Result::ok)
        .take_while(|l| !l.is_empty())
        .collect();
    assert!(
        headers
            .iter()
            .any(|h| h.to_lowercase() == "content-type: text/event-stream"),
        "{headers:?}"
    );

    send_error(&server, "KeyError", "live");
    let update = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.starts_with("data: "))
        .expect("an update within 15 s");
    let data: serde_json::Value = serde_json::from_str(&update["data: ".len()..]).unwrap();
    assert_eq!(
        (data["events"].as_u64(), data["newIssues"].as_u64()),
        (Some(1), Some(1))
    );

    // A change through the API reaches open pages too.
    let token = server.token();
    let (_, issues) = server.api_get(&token, "/api/0/projects/phoebe/default/issues/");
    let id = issues[0]["id"].as_str().unwrap().to_string();
    let r = ureq::put(&format!("{}/api/0/issues/{id}/", server.url))
        .set("Authorization", &format!("Bearer {token}"))
        .set("Content-Type", "application/json")
        .send_string(r#"{"status": "resolved"}"#);
    assert_eq!(r.unwrap().status(), 200);
    let update = lines
        .by_ref()
        .map_while(Result::ok)
        .find(|l| l.starts_with("data: "))
        .expect("an update within 15 s");
    let data: serde_json::Value = serde_json::from_str(&update["data: ".len()..]).unwrap();
    assert_eq!(data["issueChanges"].as_u64(), Some(1));

    // An open stream does not hold up a graceful shutdown.
    let started = std::time::Instant::now();
    assert_eq!(server.stop(), 0);
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    drop(socket);
}

#[test]
fn owners_manage_users_from_the_dashboard() {
    let server = Server::start();
    let mut owner = Client::new(&server);
    assert_eq!(owner.log_in("admin", ADMIN_PASSWORD).status, 303);
    let csrf = owner.csrf("/users/");
    let add = |c: &mut Client, login: &str, role: &str| {
        c.post(
            "/users/",
            &[
                ("csrf", &csrf),
                ("action", "create"),
                ("login", login),
                ("password", "mia-password-1"),
                ("role", role),
            ],
            &[],
        )
    };
    let r = add(&mut owner, "mia", "member");
    assert_eq!(r.status, 200);
    assert!(r.body.contains("Created mia"), "{}", r.body);
    assert_eq!(
        add(&mut owner, "mia", "member").status,
        400,
        "logins are unique"
    );
    let bad = add(&mut owner, "zed", "emperor");
    assert!(bad.body.contains("unknown role"), "{}", bad.body);

    // Members cannot manage users.
    let mut mia = Client::new(&server);
    assert_eq!(mia.log_in("mia", "mia-password-1").status, 303);
    assert_eq!(mia.get("/users/").status, 403);
    assert!(
        !mia.get("/issues/").body.contains("href=\"/users/\""),
        "the menu offers Users only to owners"
    );
    let mia_csrf = mia.csrf("/account");
    let r = mia.post(
        "/users/",
        &[
            ("csrf", &mia_csrf),
            ("action", "disable"),
            ("login", "admin"),
        ],
        &[],
    );
    assert_eq!(r.status, 403);

    // An owner resets, disables and enables; nobody disables themselves.
    fn user<'a>(csrf: &'a str, login: &'a str) -> [(&'a str, &'a str); 2] {
        [("csrf", csrf), ("login", login)]
    }
    let mut form = user(&csrf, "mia").to_vec();
    form.extend([("action", "reset"), ("password", "mia-password-2")]);
    assert!(owner
        .post("/users/", &form, &[])
        .body
        .contains("their sessions ended"));
    assert_eq!(
        mia.get("/issues/").status,
        303,
        "the reset ended mia's session"
    );
    assert_eq!(mia.log_in("mia", "mia-password-2").status, 303);
    let mut form = user(&csrf, "mia").to_vec();
    form.push(("action", "disable"));
    assert!(owner
        .post("/users/", &form, &[])
        .body
        .contains("Disabled mia"));
    assert_eq!(mia.get("/issues/").status, 303);
    assert_eq!(mia.log_in("mia", "mia-password-2").status, 401);
    let mut form = user(&csrf, "mia").to_vec();
    form.push(("action", "enable"));
    assert!(owner
        .post("/users/", &form, &[])
        .body
        .contains("Enabled mia"));
    assert_eq!(mia.log_in("mia", "mia-password-2").status, 303);
    let mut form = user(&csrf, "admin").to_vec();
    form.push(("action", "disable"));
    let r = owner.post("/users/", &form, &[]);
    assert!(r.body.contains("cannot disable yourself"), "{}", r.body);
    let (_, out, _) = phoebe(&server.data_dir, &["user", "list"]);
    assert!(out.contains("mia"), "{out}");
}

#[test]
fn forms_behind_a_proxy_that_rewrites_host_still_work_but_other_sites_do_not() {
    let server = Server::start_with(&[("PHOEBE_PUBLIC_URL", "https://errors.example.com")]);
    let mut c = Client::new(&server);
    let from_other_site = c.post(
        "/login",
        &[("login", "admin"), ("password", ADMIN_PASSWORD)],
        &[
            ("Origin", "https://evil.example"),
            ("Sec-Fetch-Site", "cross-site"),
        ],
    );
    assert_eq!(from_other_site.status, 403);
    let ok = c.post(
        "/login",
        &[("login", "admin"), ("password", ADMIN_PASSWORD)],
        &[("Origin", "https://errors.example.com")],
    );
    assert_eq!(ok.status, 303);
    assert!(
        ok.set_cookie.unwrap().contains("; Secure"),
        "https public URL: Secure cookie"
    );
    // The test client speaks plain http, so it sends the cookie itself.
    let csrf = c.csrf("/account");
    let r = c.post(
        "/logout",
        &[("csrf", &csrf)],
        &[("Origin", "https://errors.example.com")],
    );
    assert_eq!(r.status, 303);
}

#[test]
fn people_set_their_own_email_address_and_owners_see_it() {
    let server = Server::start();
    let mut c = Client::new(&server);
    assert_eq!(c.log_in("admin", ADMIN_PASSWORD).status, 303);
    let csrf = c.csrf("/account");
    let bad = c.post(
        "/account",
        &[
            ("csrf", &csrf),
            ("action", "email"),
            ("email", "not an address"),
        ],
        &[],
    );
    assert!(bad.body.contains("is not an email address"), "{}", bad.body);
    let saved = c.post(
        "/account",
        &[
            ("csrf", &csrf),
            ("action", "email"),
            ("email", "ada@example.com"),
        ],
        &[],
    );
    assert!(saved.body.contains("Email address saved"), "{}", saved.body);
    assert!(saved.body.contains("value=\"ada@example.com\""));
    assert!(c.get("/users/").body.contains("ada@example.com"));
    let (_, out, _) = phoebe(&server.data_dir, &["user", "list", "--json"]);
    assert!(out.contains("\"email\": \"ada@example.com\""), "{out}");
    let cleared = c.post(
        "/account",
        &[("csrf", &csrf), ("action", "email"), ("email", "")],
        &[],
    );
    assert!(
        cleared.body.contains("Email address removed"),
        "{}",
        cleared.body
    );
}

#[test]
fn people_choose_their_own_summary_email_on_the_alerts_page() {
    let bare = Server::start();
    let mut c = Client::new(&bare);
    assert_eq!(c.log_in("admin", ADMIN_PASSWORD).status, 303);
    let csrf = c.csrf("/projects/default/alerts/");
    let refused = c.post(
        "/projects/default/alerts/",
        &[("csrf", &csrf), ("action", "summary"), ("every", "daily")],
        &[],
    );
    assert_eq!(refused.status, 400);
    assert!(
        refused.body.contains("need a mail server"),
        "{}",
        refused.body
    );

    // A mail server is configured (nothing is sent here).
    let server = Server::start_with(&[("PHOEBE_SMTP_URL", "smtp://127.0.0.1:9")]);
    let mut c = Client::new(&server);
    assert_eq!(c.log_in("admin", ADMIN_PASSWORD).status, 303);
    let page = c.get("/projects/default/alerts/");
    assert!(page.body.contains("Summary email"), "{}", page.body);
    let csrf = c.csrf("/projects/default/alerts/");
    let set = c.post(
        "/projects/default/alerts/",
        &[("csrf", &csrf), ("action", "summary"), ("every", "weekly")],
        &[],
    );
    assert_eq!(set.status, 303);
    let page = c.get("/projects/default/alerts/?done=summary-set");
    assert!(page.body.contains("Saved your summary email setting."));
    assert!(
        page.body.contains("<option value=\"weekly\" selected>"),
        "{}",
        page.body
    );
    let (_, list, _) = phoebe(&server.data_dir, &["alerts", "summary", "list"]);
    assert!(list.contains("admin") && list.contains("weekly"), "{list}");
    let bad = c.post(
        "/projects/default/alerts/",
        &[("csrf", &csrf), ("action", "summary"), ("every", "hourly")],
        &[],
    );
    assert_eq!(bad.status, 400);
}

/// POSTs JSON to an API path with a bearer token; returns (status, json).
fn api_post(
    server: &Server,
    token: &str,
    path: &str,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    json_of(
        ureq::post(&format!("{}{path}", server.url))
            .set("Authorization", &format!("Bearer {token}"))
            .set("Content-Type", "application/json")
            .send_string(&body.to_string()),
    )
}

#[test]
fn releases_pages_show_versions_deploys_and_their_issues() {
    let server = Server::start();
    let token = server.token();
    let releases = "/api/0/organizations/phoebe/releases/";
    let (code, body) = api_post(
        &server,
        &token,
        releases,
        serde_json::json!({"version": "web@1.0.0", "projects": ["default"]}),
    );
    assert_eq!(code, 201, "{body}");
    let (code, body) = api_post(
        &server,
        &token,
        &format!("{releases}web@1.0.0/deploys/"),
        serde_json::json!({"environment": "production"}),
    );
    assert_eq!(code, 201, "{body}");
    let mut event = error_event("CheckoutError", "card declined");
    event["release"] = serde_json::json!("web@1.0.0");
    let (status, _) = post_envelope(&server, &envelope(&event));
    assert_eq!(status, 200);
    server.wait_digested(1);
    let (code, body) = api_post(
        &server,
        &token,
        releases,
        serde_json::json!({"version": "web@1.0.1+build.7", "projects": ["default"]}),
    );
    assert_eq!(code, 201, "{body}");

    let mut c = Client::new(&server);
    assert_eq!(c.log_in("admin", ADMIN_PASSWORD).status, 303);
    let list_link = r#"href="/projects/default/releases/""#;
    assert!(c.get("/projects/default/").body.contains(list_link));
    assert!(c.get("/projects/").body.contains(list_link));

    // The list, newest first: each version links to its page (percent-encoded), with its
    // deploys, its new issues and events.
    let page_path = "/projects/default/releases/web%401.0.0/";
    let build_path = "/projects/default/releases/web%401.0.1%2Bbuild.7/";
    let list = c.get("/projects/default/releases/");
    assert_eq!(list.status, 200, "{}", list.body);
    let at = |path: &str| {
        list.body
            .find(&format!(r#"href="{path}""#))
            .unwrap_or_else(|| panic!("no link to {path}: {}", list.body))
    };
    assert!(at(build_path) < at(page_path), "newest first");
    let row = &list.body[at(page_path)..];
    let row = &row[..row.find("</tr>").unwrap()];
    assert!(row.contains(">web@1.0.0</a>"), "{row}");
    assert!(row.contains("1 · production"), "{row}");
    assert!(row.contains("unreleased"), "{row}");
    assert_eq!(
        row.matches(r#"<td class="num">1</td>"#).count(),
        2,
        "one new issue, one event: {row}"
    );
    let row = &list.body[at(build_path)..];
    let row = &row[..row.find("</tr>").unwrap()];
    assert_eq!(row.matches(r#"<td class="num">0</td>"#).count(), 2, "{row}");

    // Archived ones are a link away; there are none.
    assert!(list
        .body
        .contains(r#"href="/projects/default/releases/?archived=1""#));
    let archived = c.get("/projects/default/releases/?archived=1");
    assert_eq!(archived.status, 200);
    assert!(
        archived.body.contains(r#"id="no-releases""#) && !archived.body.contains("web@1.0.0"),
        "{}",
        archived.body
    );

    // A release's page: what is known of it, its deploy, and a link to its issues that finds
    // the issue.
    let page = c.get(page_path);
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("<h1>Release web@1.0.0</h1>"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains(r#"<td id="events">1</td>"#),
        "{}",
        page.body
    );
    assert!(page.body.contains(r#"<td id="new-issues">1</td>"#));
    let deploys = page.body.split(r#"id="deploys""#).nth(1).unwrap();
    assert!(
        deploys.contains("<td><strong>production</strong></td>"),
        "{deploys}"
    );
    let issues_link = "/issues/?project=default&#38;query=release%3Aweb%401.0.0";
    assert!(page.body.contains(issues_link), "{}", page.body);
    let issues = c.get(&issues_link.replace("&#38;", "&"));
    assert!(
        issues.body.contains("CheckoutError: card declined"),
        "{}",
        issues.body
    );
    let build = c.get(build_path);
    assert_eq!(build.status, 200, "{}", build.body);
    assert!(build.body.contains("<h1>Release web@1.0.1+build.7</h1>"));
    assert!(build.body.contains("No deploys recorded."));

    // The issue page links its first and last release there.
    let (_, issues) = server.api_get(&token, "/api/0/projects/phoebe/default/issues/");
    let id = issues[0]["id"].as_str().unwrap();
    let issue = c.get(&format!("/issues/{id}/"));
    assert_eq!(
        issue
            .body
            .matches(&format!(r#"href="{page_path}""#))
            .count(),
        2,
        "first and last release: {}",
        issue.body
    );

    // Unknown versions, projects and another project's view of the release are 404s; paths
    // without the slash redirect.
    let missing = c.get("/projects/default/releases/nope@9/");
    assert_eq!(missing.status, 404);
    assert!(missing.body.contains("does not exist"), "{}", missing.body);
    assert_eq!(c.get("/projects/nope/releases/").status, 404);
    let csrf = c.csrf("/projects/");
    let made = c.post("/projects/", &[("csrf", &csrf), ("slug", "mobile")], &[]);
    assert_eq!(made.location.as_deref(), Some("/projects/mobile/"));
    assert_eq!(c.get("/projects/mobile/releases/web@1.0.0/").status, 404);
    let empty = c.get("/projects/mobile/releases/");
    assert!(
        empty
            .body
            .contains("sentry-cli releases new -p mobile VERSION"),
        "{}",
        empty.body
    );
    assert_eq!(
        c.get("/projects/default/releases").location.as_deref(),
        Some("/projects/default/releases/")
    );
    assert_eq!(
        c.get("/projects/default/releases/web@1.0.0")
            .location
            .as_deref(),
        Some(page_path)
    );
}
