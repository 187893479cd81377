//! Alerts end to end: a rule and a webhook channel made with the CLI, a real event, and a real
//! HTTP receiver that checks the body and the signature, fails once to prove the retry, and
//! sees each notification once.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::util::*;

/// One request the receiver got.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub(crate) path: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

/// A scripted "status" that never answers.
pub(crate) const HANG: u16 = 0;

/// A webhook receiver on a loopback port: answers each request with the next scripted status
/// (200 once the script is used up; [`HANG`]: no answer at all) and keeps what it got. `browser.rs` uses it too.
pub(crate) struct Receiver {
    pub(crate) url: String,
    pub(crate) got: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    pub(crate) fn start(script: Vec<u16>) -> Receiver {
        Receiver::start_on(TcpListener::bind("127.0.0.1:0").unwrap(), script)
    }

    fn start_on(listener: TcpListener, script: Vec<u16>) -> Receiver {
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let seen = got.clone();
        std::thread::spawn(move || {
            let mut script = script.into_iter();
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                let mut headers = Vec::new();
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                        break;
                    }
                    if let Some((k, v)) = h.trim_end().split_once(':') {
                        headers.push((k.trim().to_string(), v.trim().to_string()));
                    }
                }
                let len: usize = header(&headers, "content-length")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                let mut body = vec![0; len];
                let _ = reader.read_exact(&mut body);
                seen.lock().unwrap().push(Received {
                    path,
                    headers,
                    body,
                });
                let status = script.next().unwrap_or(200);
                if status == HANG {
                    // Never answer: hold the connection open until long after any timeout.
                    std::thread::spawn(move || {
                        std::thread::sleep(Duration::from_secs(60));
                        drop(stream);
                    });
                    continue;
                }
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
            }
        });
        Receiver { url, got }
    }

    /// Waits until `n` requests arrived (or `wait` passed); returns them.
    pub(crate) fn wait_for(&self, n: usize, wait: Duration) -> Vec<Received> {
        let until = Instant::now() + wait;
        loop {
            let got = self.got.lock().unwrap().clone();
            if got.len() >= n || Instant::now() > until {
                return got;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A data folder whose alert channels may reach loopback receivers (as tests need).
fn data_dir_allowing_loopback_channels() -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("phoebe.toml"),
        "[alerts]\nallow_private_targets = true\ntimeout_secs = 3\n",
    )
    .unwrap();
    (tmp, dir)
}

fn server_allowing_loopback_channels() -> (tempfile::TempDir, Server) {
    let (tmp, dir) = data_dir_allowing_loopback_channels();
    let server = Server::start_in(&dir, &[]);
    (tmp, server)
}

fn cli_ok(server: &Server, args: &[&str]) -> String {
    let (code, out, err) = phoebe(&server.data_dir, args);
    assert_eq!(code, 0, "phoebe {args:?}: {err}");
    out
}

/// The notification ids a receiver got, whether one per message or folded into a digest.
fn notification_ids(got: &[Received]) -> Vec<String> {
    got.iter()
        .flat_map(|r| {
            let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
            match body["action"].as_str() {
                Some("digest") => body["alerts"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| a["id"].as_str().unwrap().to_string())
                    .collect::<Vec<_>>(),
                _ => vec![body["id"].as_str().unwrap().to_string()],
            }
        })
        .collect()
}

/// How many notifications a receiver was told of: one per message, or a digest's count.
fn notified(got: &[Received]) -> u64 {
    got.iter()
        .map(|r| {
            let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
            body["count"].as_u64().unwrap_or(1)
        })
        .sum()
}

/// A rule that sends the default project's new issues to `channel`; returns the rule's id.
fn notify_on_new_issues(server: &Server, channel: &str) -> String {
    let rule = cli_ok(
        server,
        &[
            "alerts",
            "rule",
            "add",
            "default",
            "--on",
            "new-issue",
            "--channel",
            channel,
        ],
    );
    assert!(rule.trim().parse::<i64>().is_ok(), "{rule}");
    rule.trim().to_string()
}

#[test]
fn a_new_issue_reaches_a_signed_webhook_once_after_a_failed_attempt() {
    let (_tmp, server) = server_allowing_loopback_channels();
    // The first attempt gets a 500; the retry 5 s later succeeds.
    let receiver = Receiver::start(vec![500]);
    let channel = cli_ok(
        &server,
        &[
            "alerts",
            "channel",
            "add",
            "default",
            "webhook",
            &receiver.url,
            "--name",
            "ops",
            "--secret",
            "s3cret",
        ],
    );
    let channel = channel.trim();
    notify_on_new_issues(&server, channel);

    let sent = Instant::now();
    let (status, _) = post_envelope(&server, &envelope(&error_event("KeyError", "'basket'")));
    assert_eq!(status, 200);
    let first = receiver.wait_for(1, Duration::from_secs(10));
    assert_eq!(first.len(), 1, "the first attempt arrived");
    // p95 under 2 s is the goal on an idle server; one sample here only says it is not minutes.
    assert!(sent.elapsed() < Duration::from_secs(10));
    let got = receiver.wait_for(2, Duration::from_secs(20));
    assert_eq!(got.len(), 2, "retried after the 500");

    let r = &got[1];
    assert_eq!(r.path, "/hook");
    let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(body["action"], "created");
    assert_eq!(body["test"], false);
    assert_eq!(body["project"]["slug"], "default");
    assert_eq!(body["data"]["issue"]["title"], "KeyError: 'basket'");
    assert!(
        body["data"]["issue"]["permalink"]
            .as_str()
            .unwrap_or("")
            .starts_with(&server.url),
        "{body}"
    );
    // The signature covers the timestamp and the exact body.
    let ts: i64 = header(&r.headers, "x-phoebe-timestamp")
        .unwrap()
        .parse()
        .unwrap();
    assert!((chrono::Utc::now().timestamp() - ts).abs() < 60);
    assert_eq!(
        header(&r.headers, "x-phoebe-signature"),
        Some(phoebe::alerts::sign("s3cret", ts, &r.body).as_str())
    );
    assert_eq!(
        got[0].body.len(),
        got[1].body.len(),
        "the same notification"
    );

    // History says it was sent on the second attempt, after a 500 (recorded just after the
    // receiver answered: wait for it).
    let until = Instant::now() + Duration::from_secs(5);
    let history = loop {
        let history: serde_json::Value =
            serde_json::from_str(&cli_ok(&server, &["alerts", "history", "--json"])).unwrap();
        if history[0]["state"] == "sent" || Instant::now() > until {
            break history;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(history.as_array().unwrap().len(), 1, "{history}");
    assert_eq!(history[0]["state"], "sent");
    assert_eq!(history[0]["attempts"], 2);
    assert_eq!(history[0]["event"], "issue.created");

    // Another event of the same issue is no new issue: nothing more is sent.
    post_envelope(&server, &envelope(&error_event("KeyError", "'basket'")));
    server.wait_digested(2);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        receiver.got.lock().unwrap().len(),
        2,
        "each notification once"
    );

    // A test notification goes out at once, marked as a test.
    cli_ok(&server, &["alerts", "test", channel]);
    let got = receiver.wait_for(3, Duration::from_secs(5));
    let test: serde_json::Value = serde_json::from_slice(&got[2].body).unwrap();
    assert_eq!(
        (test["test"].as_bool(), test["action"].as_str()),
        (Some(true), Some("test"))
    );
}

#[test]
fn channel_urls_on_private_addresses_are_refused_by_default() {
    let server = Server::start();
    let (code, _, err) = phoebe(
        &server.data_dir,
        &[
            "alerts",
            "channel",
            "add",
            "default",
            "webhook",
            "http://127.0.0.1:9/hook",
        ],
    );
    assert_ne!(code, 0);
    assert!(
        err.contains("private address") && err.contains("allow_private_targets"),
        "{err}"
    );
    let (code, _, err) = phoebe(
        &server.data_dir,
        &[
            "alerts",
            "channel",
            "add",
            "default",
            "webhook",
            "http://169.254.169.254/latest",
        ],
    );
    assert_ne!(code, 0, "cloud metadata is link-local: {err}");
    let (code, _, err) = phoebe(
        &server.data_dir,
        &[
            "alerts",
            "channel",
            "add",
            "default",
            "webhook",
            "file:///etc/passwd",
        ],
    );
    assert_ne!(code, 0);
    assert!(err.contains("http"), "{err}");
    // Nothing was saved.
    let out = cli_ok(&server, &["alerts", "channel", "list", "--json"]);
    assert_eq!(out.trim(), "[]");
}

#[test]
fn kill_9_between_digest_and_delivery_loses_no_alert_and_sends_none_twice() {
    let (_tmp, dir) = data_dir_allowing_loopback_channels();
    // A port with nobody listening yet: the first attempts fail with "connection refused".
    let port = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", port.local_addr().unwrap());
    let server = Server::start_in(&dir, &[]);
    let channel = cli_ok(
        &server,
        &["alerts", "channel", "add", "default", "webhook", &url],
    );
    drop(port);
    notify_on_new_issues(&server, channel.trim());
    // Three new issues (same frames, so a fingerprint of their own keeps them apart).
    for ty in ["AlphaError", "BetaError", "GammaError"] {
        let mut event = error_event(ty, "boom");
        event["fingerprint"] = serde_json::json!([ty]);
        let (status, _) = post_envelope(&server, &envelope(&event));
        assert_eq!(status, 200);
    }
    // Wait until all three notifications failed once, then kill the server hard.
    let until = Instant::now() + Duration::from_secs(15);
    loop {
        let history: serde_json::Value =
            serde_json::from_str(&cli_ok(&server, &["alerts", "history", "--json"])).unwrap();
        let attempted = history
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["attempts"].as_u64() >= Some(1))
            .count();
        if attempted == 3 {
            assert!(history
                .as_array()
                .unwrap()
                .iter()
                .all(|a| a["state"] == "pending"));
            break;
        }
        assert!(
            Instant::now() < until,
            "attempts not recorded: {history}\n{}",
            cli_ok(&server, &["issues", "list", "--query", ""])
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    server.kill9();

    // The receiver comes up on that port; the restarted server delivers each once.
    let receiver = Receiver::start_on(
        TcpListener::bind(url.trim_start_matches("http://").trim_end_matches("/hook")).unwrap(),
        vec![],
    );
    let server = Server::start_in(&dir, &[]);
    // Each comes due at its own retry time (5 s, 10 s … after its last failed attempt), alone or
    // folded with others into a digest.
    let until = Instant::now() + Duration::from_secs(45);
    while notification_ids(&receiver.got.lock().unwrap()).len() < 3 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(2));
    let got = receiver.got.lock().unwrap().clone();
    let ids = notification_ids(&got);
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!((ids.len(), unique.len()), (3, 3), "each once: {ids:?}");
    drop(server);
}

#[test]
fn an_error_storm_of_new_issues_is_a_handful_of_messages() {
    let (_tmp, server) = server_allowing_loopback_channels();
    let receiver = Receiver::start(vec![]);
    let channel = cli_ok(
        &server,
        &[
            "alerts",
            "channel",
            "add",
            "default",
            "webhook",
            &receiver.url,
        ],
    );
    notify_on_new_issues(&server, channel.trim());
    // 40 new issues (a fingerprint each), one more event of the busiest.
    for n in 0..40 {
        let mut event = error_event(&format!("Storm{n}Error"), "boom");
        event["fingerprint"] = serde_json::json!([format!("storm-{n}")]);
        post_envelope(&server, &envelope(&event));
    }
    let mut again = error_event("Storm7Error", "boom");
    again["fingerprint"] = serde_json::json!(["storm-7"]);
    post_envelope(&server, &envelope(&again));
    server.wait_digested(41);

    // Everything arrives within a fold window or two.
    let until = Instant::now() + Duration::from_secs(20);
    while notified(&receiver.got.lock().unwrap()) < 40 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(100));
    }
    let got = receiver.got.lock().unwrap().clone();
    assert_eq!(notified(&got), 40, "every new issue is told");
    assert!(got.len() <= 4, "{} messages for one storm", got.len());
    eprintln!("a storm of 40 new issues: {} messages", got.len());
    let digest = got
        .iter()
        .map(|r| serde_json::from_slice::<serde_json::Value>(&r.body).unwrap())
        .find(|b| b["action"] == "digest")
        .expect("a storm digest");
    let headline = digest["headline"].as_str().unwrap();
    assert!(headline.ends_with("new issues in Default"), "{headline}");
    // (Which issue leads a digest is `domain::alerts::worst_first`'s unit test: here the
    // repeat may or may not be digested before the digest goes out.)
    let listed = digest["alerts"].as_array().unwrap();
    assert!(listed.len() <= 20 && digest["count"].as_u64() >= Some(listed.len() as u64));
    // The server records each attempt just after the receiver answered it.
    let until = Instant::now() + Duration::from_secs(5);
    loop {
        let history: serde_json::Value = serde_json::from_str(&cli_ok(
            &server,
            &["alerts", "history", "--json", "--limit", "100"],
        ))
        .unwrap();
        let history = history.as_array().unwrap().clone();
        assert_eq!(history.len(), 40);
        if history.iter().all(|a| a["state"] == "sent") {
            break;
        }
        assert!(
            Instant::now() < until,
            "not all recorded as sent: {history:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// aiosmtpd, a real SMTP server, installed by `scripts/setup-test-tools` (skipped locally
/// without it; under CI its absence fails the test).
fn smtp_tools() -> Option<std::path::PathBuf> {
    let dir = std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../.tools/smtp"));
    if dir.join("aiosmtpd").is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var("CI").is_err(),
        "CI needs aiosmtpd: run scripts/setup-test-tools"
    );
    eprintln!("skipping: aiosmtpd not installed (run scripts/setup-test-tools)");
    None
}

/// An SMTP server on a loopback port that keeps every message in a maildir.
struct MailServer {
    child: std::process::Child,
    maildir: std::path::PathBuf,
    port: u16,
}

impl Drop for MailServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl MailServer {
    fn start(tools: &std::path::Path, dir: &std::path::Path) -> MailServer {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let maildir = dir.join("maildir");
        let child = std::process::Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .env("PYTHONPATH", tools)
            .spawn()
            .unwrap();
        let until = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < until, "aiosmtpd did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        MailServer {
            child,
            maildir,
            port,
        }
    }

    /// The messages received so far, parsed by Python's `email` package: subject, from, to,
    /// and each part's type with its decoded text.
    fn messages(&self) -> Vec<serde_json::Value> {
        let mut files: Vec<_> = std::fs::read_dir(self.maildir.join("new"))
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        files.sort();
        files
            .iter()
            .map(|f| {
                let out = std::process::Command::new("python3")
                    .args(["-c", PARSE_MAIL])
                    .arg(f)
                    .output()
                    .unwrap();
                serde_json::from_slice(&out.stdout).unwrap()
            })
            .collect()
    }

    fn wait_for(&self, n: usize) -> Vec<serde_json::Value> {
        let until = Instant::now() + Duration::from_secs(20);
        loop {
            let got = self.messages();
            if got.len() >= n || Instant::now() > until {
                return got;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

const PARSE_MAIL: &str = r#"
import email, email.policy, json, sys
m = email.message_from_binary_file(open(sys.argv[1], "rb"), policy=email.policy.default)
parts = [{"type": p.get_content_type(), "text": p.get_content()} for p in m.walk() if not p.is_multipart()]
print(json.dumps({"subject": m["subject"], "from": m["from"], "to": m["to"], "type": m.get_content_type(), "parts": parts}))
"#;

/// A mail server and a data folder whose `[smtp]` sends through it.
fn mail_server_and_data_dir(
    tools: &std::path::Path,
    tmp: &std::path::Path,
) -> (MailServer, std::path::PathBuf) {
    let mail = MailServer::start(tools, tmp);
    let dir = tmp.join("data");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("phoebe.toml"),
        format!(
            "[smtp]\nurl = \"smtp://127.0.0.1:{}\"\nfrom = \"Phoebe <errors@example.com>\"\n",
            mail.port
        ),
    )
    .unwrap();
    (mail, dir)
}

#[test]
fn a_regression_reaches_an_email_channel_through_a_real_smtp_server() {
    let Some(tools) = smtp_tools() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (mail, dir) = mail_server_and_data_dir(&tools, tmp.path());
    let server = Server::start_in(&dir, &[]);
    let channel = cli_ok(
        &server,
        &[
            "alerts",
            "channel",
            "add",
            "default",
            "email",
            "dev@example.com, ops@example.com",
        ],
    );
    let channel = channel.trim();
    cli_ok(
        &server,
        &[
            "alerts",
            "rule",
            "add",
            "default",
            "--on",
            "regression",
            "--channel",
            channel,
        ],
    );
    post_envelope(&server, &envelope(&error_event("KeyError", "'basket'")));
    server.wait_digested(1);
    cli_ok(&server, &["issues", "resolve", "1"]);
    post_envelope(&server, &envelope(&error_event("KeyError", "'basket'")));

    let got = mail.wait_for(1);
    assert_eq!(got.len(), 1, "one email for the regression");
    let m = &got[0];
    let subject = m["subject"].as_str().unwrap();
    assert!(
        subject.contains("Regression in app@1.0.0") && subject.contains("KeyError: 'basket'"),
        "{subject}"
    );
    assert_eq!(m["from"], "Phoebe <errors@example.com>");
    assert_eq!(m["to"], "dev@example.com, ops@example.com");
    assert_eq!(m["type"], "multipart/alternative");
    let part = |t: &str| {
        m["parts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["type"] == t)
            .unwrap_or_else(|| panic!("no {t} part: {m}"))["text"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (text, html) = (part("text/plain"), part("text/html"));
    let link = format!("{}/issues/1/", server.url);
    for needed in [
        "KeyError: 'basket'",
        "app.pay in charge, line 20",
        "Events: 2",
        "environment=production",
        &link,
    ] {
        assert!(text.contains(needed), "{needed:?} missing from:\n{text}");
    }
    for needed in [
        format!("href=\"{link}\""),
        "KeyError: 'basket'".to_string(),
        "<pre>app.pay in charge, line 20".to_string(),
    ] {
        assert!(html.contains(&needed), "{needed:?} missing from:\n{html}");
    }

    // A test message goes out at once.
    cli_ok(&server, &["alerts", "test", channel]);
    let got = mail.wait_for(2);
    assert_eq!(got.len(), 2);
    // Maildir file names do not sort by arrival within a second: look for it.
    assert!(
        got.iter()
            .any(|m| m["subject"] == "[Phoebe] Test notification"),
        "{got:?}"
    );

    // Without a mail server, email channels are refused with the setting to change.
    let bare = Server::start();
    let (code, _, err) = phoebe(
        &bare.data_dir,
        &[
            "alerts",
            "channel",
            "add",
            "default",
            "email",
            "dev@example.com",
        ],
    );
    assert_ne!(code, 0);
    assert!(err.contains("[smtp] url"), "{err}");
}

#[test]
fn chat_services_get_their_own_formats() {
    let (_tmp, server) = server_allowing_loopback_channels();
    let receiver = Receiver::start(vec![]);
    let base = receiver.url.trim_end_matches("/hook").to_string();
    let kinds = [
        "slack",
        "discord",
        "google-chat",
        "teams",
        "ntfy",
        "telegram",
        "pagerduty",
    ];
    let channels: Vec<String> = kinds
        .iter()
        .map(|kind| {
            let url = match *kind {
                "telegram" => format!("{base}/bot123:abc/sendMessage?chat_id=-10042"),
                "pagerduty" => format!("{base}/v2/enqueue?routing_key=R0UT1NG"),
                _ => format!("{base}/{kind}"),
            };
            cli_ok(
                &server,
                &["alerts", "channel", "add", "default", kind, &url],
            )
            .trim()
            .to_string()
        })
        .collect();
    let mut args = vec!["alerts", "rule", "add", "default", "--on", "new-issue"];
    for c in &channels {
        args.extend(["--channel", c.as_str()]);
    }
    cli_ok(&server, &args);
    post_envelope(&server, &envelope(&error_event("KeyError", "'basket'")));
    let got = receiver.wait_for(7, Duration::from_secs(15));
    assert_eq!(got.len(), 7, "one message per channel");
    let at = |path: &str| {
        got.iter()
            .find(|r| r.path == path)
            .unwrap_or_else(|| panic!("nothing at {path}"))
    };
    let json = |path: &str| serde_json::from_slice::<serde_json::Value>(&at(path).body).unwrap();
    let link = format!("{}/issues/1/", server.url);

    let slack = json("/slack");
    let text = slack["text"].as_str().unwrap();
    assert!(text.starts_with("*New issue in Default*"), "{text}");
    assert!(
        text.contains(&format!("<{link}|KeyError: 'basket'>")),
        "{text}"
    );
    assert_eq!(json("/google-chat")["text"], slack["text"]);

    let discord = json("/discord");
    assert_eq!(discord["content"], "New issue in Default");
    assert_eq!(discord["embeds"][0]["title"], "KeyError: 'basket'");
    assert_eq!(discord["embeds"][0]["url"], link.as_str());

    let teams = json("/teams");
    assert_eq!(teams["type"], "message");
    let card = &teams["attachments"][0];
    assert_eq!(
        card["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    assert_eq!(card["content"]["actions"][0]["url"], link.as_str());

    let ntfy = at("/ntfy");
    assert_eq!(header(&ntfy.headers, "title"), Some("New issue in Default"));
    assert_eq!(header(&ntfy.headers, "click"), Some(link.as_str()));
    assert!(header(&ntfy.headers, "content-type")
        .unwrap()
        .starts_with("text/plain"));
    let body = String::from_utf8(ntfy.body.clone()).unwrap();
    assert!(
        body.starts_with(&format!("KeyError: 'basket' {link}")),
        "{body}"
    );

    // Telegram and PagerDuty carry their chat and routing key in the channel's URL.
    let telegram = json("/bot123:abc/sendMessage");
    assert_eq!(telegram["chat_id"], "-10042");
    assert!(telegram["text"]
        .as_str()
        .unwrap()
        .starts_with("New issue in Default\nKeyError"));
    let pagerduty = json("/v2/enqueue");
    assert_eq!(pagerduty["routing_key"], "R0UT1NG");
    assert_eq!(pagerduty["event_action"], "trigger");
    assert_eq!(pagerduty["dedup_key"], "phoebe-issue-1");
    assert_eq!(pagerduty["payload"]["severity"], "error");
    assert_eq!(
        pagerduty["payload"]["summary"],
        "New issue in Default: KeyError: 'basket'"
    );
    assert_eq!(pagerduty["links"][0]["href"], link.as_str());
    // Without its key in the URL, such a channel is refused.
    let (code, _, err) = phoebe(
        &server.data_dir,
        &[
            "alerts",
            "channel",
            "add",
            "default",
            "pagerduty",
            &format!("{base}/v2/enqueue"),
        ],
    );
    assert_ne!(code, 0);
    assert!(err.contains("routing_key"), "{err}");
}

#[test]
fn the_api_manages_rules_and_channels_and_shows_what_was_sent() {
    let (_tmp, server) = server_allowing_loopback_channels();
    let receiver = Receiver::start(vec![]);
    let token = server.token();
    let auth = format!("Bearer {token}");
    let base = format!("{}/api/0/projects/phoebe/default", server.url);
    let post = |path: &str, body: serde_json::Value| {
        json_of(
            ureq::post(&format!("{base}{path}"))
                .set("Authorization", &auth)
                .set("Content-Type", "application/json")
                .send_string(&body.to_string()),
        )
    };
    let delete = |path: &str| {
        json_of(
            ureq::delete(&format!("{base}{path}"))
                .set("Authorization", &auth)
                .call(),
        )
        .0
    };

    let (status, channel) = post(
        "/alert-channels/",
        serde_json::json!({"kind": "webhook", "target": receiver.url, "name": "ops", "secret": "k"}),
    );
    assert_eq!(status, 201, "{channel}");
    assert_eq!(
        (channel["kind"].as_str(), channel["signed"].as_bool()),
        (Some("webhook"), Some(true))
    );
    assert!(channel.get("secret").is_none(), "secrets are never shown");
    let channel_id = channel["id"].as_str().unwrap().to_string();
    let (status, bad) = post(
        "/rules/",
        serde_json::json!({"trigger": "sometimes", "channels": [channel_id]}),
    );
    assert_eq!(status, 400);
    assert!(
        bad["detail"].as_str().unwrap().contains("new-issue"),
        "{bad}"
    );
    let (status, rule) = post(
        "/rules/",
        serde_json::json!({"trigger": "new-issue", "channels": [channel_id], "frequency": 30}),
    );
    assert_eq!(status, 201, "{rule}");
    assert_eq!(
        (rule["frequency"].as_i64(), rule["cooldownSeconds"].as_i64()),
        (Some(30), Some(1800))
    );
    let (_, rules) = server.api_get(&token, "/api/0/projects/phoebe/default/rules/");
    assert_eq!(rules.as_array().unwrap().len(), 1);

    post_envelope(&server, &envelope(&error_event("KeyError", "'basket'")));
    assert_eq!(receiver.wait_for(1, Duration::from_secs(15)).len(), 1);
    let until = Instant::now() + Duration::from_secs(5);
    let history = loop {
        let (_, h) = server.api_get(&token, "/api/0/projects/phoebe/default/alerts/");
        if h[0]["state"] == "sent" || Instant::now() > until {
            break h;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(history[0]["state"], "sent", "{history}");
    let (_, by_issue) = server.api_get(&token, "/api/0/issues/1/alerts/");
    assert_eq!(by_issue, history);

    let (status, tested) = post(
        &format!("/alert-channels/{channel_id}/test/"),
        serde_json::json!({}),
    );
    assert_eq!((status, tested["sent"].as_bool()), (200, Some(true)));
    assert_eq!(receiver.wait_for(2, Duration::from_secs(5)).len(), 2);

    let rule_id = rule["id"].as_str().unwrap();
    assert_eq!(delete(&format!("/rules/{rule_id}/")), 204);
    assert_eq!(delete(&format!("/rules/{rule_id}/")), 404);
    assert_eq!(delete(&format!("/alert-channels/{channel_id}/")), 204);
    let (_, channels) = server.api_get(&token, "/api/0/projects/phoebe/default/alert-channels/");
    assert_eq!(channels, serde_json::json!([]));
}

#[test]
fn frequency_and_user_count_rules_fire_once_per_window_for_the_events_their_filters_admit() {
    let (_tmp, server) = server_allowing_loopback_channels();
    let busy = Receiver::start(vec![]);
    let widely = Receiver::start(vec![]);
    let add_channel = |url: &str| {
        let id = cli_ok(
            &server,
            &["alerts", "channel", "add", "default", "webhook", url],
        );
        id.trim().to_string()
    };
    let (busy_channel, widely_channel) = (add_channel(&busy.url), add_channel(&widely.url));
    let rule = cli_ok(
        &server,
        &[
            "alerts",
            "rule",
            "add",
            "default",
            "--on",
            "frequency",
            "--threshold",
            "5",
            "--window",
            "5m",
            "--environment",
            "production",
            "--level",
            "error",
            "--channel",
            &busy_channel,
        ],
    );
    assert!(rule.trim().parse::<i64>().is_ok(), "{rule}");
    cli_ok(
        &server,
        &[
            "alerts",
            "rule",
            "add",
            "default",
            "--on",
            "users",
            "--threshold",
            "3",
            "--window",
            "1h",
            "--channel",
            &widely_channel,
        ],
    );
    let (code, _, err) = phoebe(
        &server.data_dir,
        &[
            "alerts",
            "rule",
            "add",
            "default",
            "--on",
            "frequency",
            "--channel",
            &busy_channel,
        ],
    );
    assert_ne!(code, 0);
    assert!(err.contains("threshold and a window"), "{err}");
    let rules = cli_ok(&server, &["alerts", "rule", "list"]);
    assert!(
        rules.contains("5 or more events in 5 minutes · environment = production · level ≥ error"),
        "{rules}"
    );

    let send = |ty: &str, environment: &str, user: &str| {
        let mut e = error_event(ty, "boom");
        e["environment"] = environment.into();
        e["user"] = serde_json::json!({ "id": user });
        assert_eq!(post_envelope(&server, &envelope(&e)).0, 200);
    };
    // Busy in production, from one user; as busy in staging; quiet but met by three users.
    for _ in 0..6 {
        send("Busy", "production", "u1");
        send("Staging", "staging", "u1");
    }
    for user in ["u1", "u2", "u3"] {
        send("Widely", "production", user);
    }
    server.wait_digested(15);

    let got = busy.wait_for(1, Duration::from_secs(15));
    assert_eq!(got.len(), 1, "one notification for the busy issue");
    let body: serde_json::Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(body["action"], "frequent");
    assert_eq!(body["count"], 6);
    assert_eq!(body["windowMinutes"], 5);
    assert_eq!(body["data"]["issue"]["title"], "Busy: boom");

    let got = widely.wait_for(1, Duration::from_secs(15));
    let titles: Vec<String> = got
        .iter()
        .map(|r| {
            let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
            assert_eq!(body["action"], "many_users");
            body["data"]["issue"]["title"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(titles, ["Widely: boom"]);

    // Still over the threshold, but within the window it already fired for: quiet.
    for _ in 0..5 {
        send("Busy", "production", "u1");
    }
    server.wait_digested(20);
    std::thread::sleep(Duration::from_secs(7));
    assert_eq!(busy.got.lock().unwrap().len(), 1, "once per window");
    assert_eq!(widely.got.lock().unwrap().len(), 1);
}

#[test]
fn a_new_project_emails_its_members_about_new_issues_when_a_mail_server_is_set() {
    let Some(tools) = smtp_tools() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (mail, dir) = mail_server_and_data_dir(&tools, tmp.path());
    let server = Server::start_in(&dir, &[]);
    let (code, _, err) = phoebe(&dir, &["user", "set-email", "admin", "not an address"]);
    assert_ne!(code, 0);
    assert!(err.contains("not an email address"), "{err}");
    cli_ok(
        &server,
        &["user", "set-email", "admin", "admin@example.com"],
    );
    let users = cli_ok(&server, &["user", "list"]);
    assert!(users.contains("admin@example.com"), "{users}");

    let dsn = cli_ok(&server, &["project", "create", "shop"]);
    let rules = cli_ok(&server, &["alerts", "rule", "list", "--project", "shop"]);
    assert!(
        rules.contains("New issue") && rules.contains("Regression"),
        "{rules}"
    );
    let channels = cli_ok(&server, &["alerts", "channel", "list", "--project", "shop"]);
    assert!(
        channels.contains("Members") && channels.contains("members"),
        "{channels}"
    );

    // An event on the new project's DSN: http://KEY@host/ID
    let dsn = dsn.trim();
    let key = &dsn[dsn.find("://").unwrap() + 3..dsn.find('@').unwrap()];
    let project_id = dsn.rsplit('/').next().unwrap();
    let (status, _, _) = send(
        &server,
        &format!("/api/{project_id}/envelope/"),
        &[(
            "X-Sentry-Auth",
            &format!("Sentry sentry_key={key}, sentry_version=7"),
        )],
        &envelope(&error_event("ValueError", "in the shop")),
    );
    assert_eq!(status, 200);
    let got = mail.wait_for(1);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["to"], "admin@example.com");
    let subject = got[0]["subject"].as_str().unwrap();
    assert!(
        subject.contains("New issue") && subject.contains("ValueError: in the shop"),
        "{subject}"
    );
}

#[test]
fn resolving_an_issue_closes_its_pagerduty_incident_and_tells_no_other_channel() {
    let (_tmp, server) = server_allowing_loopback_channels();
    let pager = Receiver::start(vec![]);
    let hook = Receiver::start(vec![]);
    let base = pager.url.trim_end_matches("/hook").to_string();
    let pd = cli_ok(
        &server,
        &[
            "alerts",
            "channel",
            "add",
            "default",
            "pagerduty",
            &format!("{base}/v2/enqueue?routing_key=R0UT1NG"),
        ],
    );
    let webhook = cli_ok(
        &server,
        &["alerts", "channel", "add", "default", "webhook", &hook.url],
    );
    cli_ok(
        &server,
        &[
            "alerts",
            "rule",
            "add",
            "default",
            "--on",
            "new-issue",
            "--channel",
            pd.trim(),
            "--channel",
            webhook.trim(),
        ],
    );
    // Two new issues at once: PagerDuty gets two events, never a digest.
    post_envelope(&server, &envelope(&error_event("KeyError", "'basket'")));
    post_envelope(&server, &envelope(&error_event("TypeError", "None")));
    let got = pager.wait_for(2, Duration::from_secs(15));
    let bodies: Vec<serde_json::Value> = got
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    let mut keys: Vec<&str> = bodies
        .iter()
        .map(|b| {
            assert_eq!(b["event_action"], "trigger", "{b}");
            assert_eq!(b["routing_key"], "R0UT1NG");
            b["dedup_key"].as_str().unwrap()
        })
        .collect();
    keys.sort();
    assert_eq!(keys, ["phoebe-issue-1", "phoebe-issue-2"]);
    hook.wait_for(1, Duration::from_secs(10));

    cli_ok(&server, &["issues", "resolve", "1"]);
    let got = pager.wait_for(3, Duration::from_secs(10));
    assert_eq!(got.len(), 3, "the resolve arrived");
    let closed: serde_json::Value = serde_json::from_slice(&got[2].body).unwrap();
    assert_eq!(
        closed,
        serde_json::json!({
            "event_action": "resolve", "dedup_key": "phoebe-issue-1", "routing_key": "R0UT1NG"
        })
    );
    std::thread::sleep(Duration::from_secs(1));
    let told = notified(&hook.got.lock().unwrap());
    assert_eq!(
        told, 2,
        "the webhook heard of the two new issues and nothing of the resolve"
    );
    let history = cli_ok(&server, &["alerts", "history", "--issue", "1", "--json"]);
    assert!(history.contains("issue.resolved"), "{history}");
}

#[test]
fn a_receiver_that_fails_then_hangs_then_recovers_gets_each_notification_once_and_holds_up_nobody()
{
    // timeout_secs = 3 (see `data_dir_allowing_loopback_channels`).
    let (_tmp, server) = server_allowing_loopback_channels();
    let flaky = Receiver::start(vec![503, HANG]);
    let healthy = Receiver::start(vec![]);
    let add = |url: &str| {
        cli_ok(
            &server,
            &["alerts", "channel", "add", "default", "webhook", url],
        )
        .trim()
        .to_string()
    };
    let (flaky_channel, healthy_channel) = (add(&flaky.url), add(&healthy.url));
    cli_ok(
        &server,
        &[
            "alerts",
            "rule",
            "add",
            "default",
            "--on",
            "new-issue",
            "--channel",
            &flaky_channel,
            "--channel",
            &healthy_channel,
        ],
    );
    let started = Instant::now();
    assert_eq!(
        post_envelope(&server, &envelope(&error_event("KeyError", "'basket'"))).0,
        200
    );
    // Attempt 1 gets a 503 at once; attempt 2, 5 s later, hangs until the 3 s timeout.
    let got = flaky.wait_for(2, Duration::from_secs(15));
    assert_eq!(got.len(), 2);
    // While the flaky receiver hangs, the other channel has its notification and ingest and
    // digest go on.
    assert_eq!(healthy.wait_for(1, Duration::from_secs(1)).len(), 1);
    let during = Instant::now();
    assert_eq!(
        post_envelope(&server, &envelope(&error_event("TypeError", "None"))).0,
        200
    );
    server.wait_digested(2);
    assert!(
        during.elapsed() < Duration::from_secs(3),
        "ingest did not wait"
    );

    // Attempt 3, 10 s after the timeout, is answered; the second issue's notification goes
    // out with it or right after (folded or not, once).
    let until = Instant::now() + Duration::from_secs(30);
    while notification_ids(&flaky.got.lock().unwrap()[2..]).len() < 2 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(100));
    }
    let got = flaky.got.lock().unwrap().clone();
    let ids = notification_ids(&got);
    assert_eq!(
        ids[0], ids[1],
        "attempts 1 and 2 carried the same notification"
    );
    let mut after: Vec<String> = notification_ids(&got[2..]);
    after.sort();
    after.dedup();
    assert_eq!(
        after.len(),
        2,
        "both notifications arrived after the recovery: {ids:?}"
    );
    assert!(after.contains(&ids[0]));
    assert!(
        started.elapsed() >= Duration::from_secs(5 + 3 + 10),
        "backoff: 5 s after the 503, 10 s after the timeout"
    );
    let history: serde_json::Value = serde_json::from_str(&cli_ok(
        &server,
        &["alerts", "history", "--json", "--issue", "1"],
    ))
    .unwrap();
    let flaky_one = history
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["channel"] == flaky_channel.as_str())
        .unwrap();
    assert_eq!(flaky_one["state"], "sent");
    assert_eq!(flaky_one["attempts"], 3, "{history}");
    // Nothing more turns up.
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(
        flaky.got.lock().unwrap().len(),
        got.len(),
        "nothing sent twice after success"
    );
}

/// A mail server speaking `mode` (plain, starttls, smtps) with a certificate `tls` signed, and
/// requiring `login` when given: `tests/smtp_server.py` on aiosmtpd.
fn secure_mail_server(
    tools: &std::path::Path,
    dir: &std::path::Path,
    mode: &str,
    tls: &TestCa,
    login: &str,
) -> MailServer {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let maildir = dir.join(format!("maildir-{mode}"));
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/smtp_server.py");
    let child = std::process::Command::new("python3")
        .arg(script)
        .arg(port.to_string())
        .arg(&maildir)
        .arg(mode)
        .arg(&tls.cert)
        .arg(&tls.key)
        .arg(login)
        .env("PYTHONPATH", tools)
        .spawn()
        .unwrap();
    let until = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < until, "the mail server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    MailServer {
        child,
        maildir,
        port,
    }
}

/// A private certificate authority and a server certificate it signed for 127.0.0.1, made
/// with the `openssl` command.
struct TestCa {
    ca: std::path::PathBuf,
    cert: std::path::PathBuf,
    key: std::path::PathBuf,
}

impl TestCa {
    fn make(dir: &std::path::Path) -> TestCa {
        let path = |name: &str| dir.join(name);
        let openssl = |args: &[&str]| {
            let out = std::process::Command::new("openssl")
                .args(args)
                .current_dir(dir)
                .output()
                .expect("the tests need the openssl command");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=Phoebe test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign",
        ]);
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ]);
        std::fs::write(
            path("server.ext"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ]);
        TestCa {
            ca: path("ca.pem"),
            cert: path("server.pem"),
            key: path("server.key"),
        }
    }
}

#[test]
fn email_goes_over_starttls_and_implicit_tls_with_a_login_and_checks_the_certificate() {
    let Some(tools) = smtp_tools() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let tls = TestCa::make(tmp.path());
    let starttls = secure_mail_server(&tools, tmp.path(), "starttls", &tls, "mailer:s3cret pass");
    let smtps = secure_mail_server(&tools, tmp.path(), "smtps", &tls, "mailer:s3cret pass");
    let dir = tmp.path().join("data");
    std::fs::create_dir_all(&dir).unwrap();
    let configure = |url: &str, ca: Option<&std::path::Path>| {
        let ca = ca.map_or(String::new(), |p| {
            format!("ca_file = {:?}\n", p.display().to_string())
        });
        std::fs::write(
            dir.join("phoebe.toml"),
            format!("[smtp]\nurl = {url:?}\nfrom = \"errors@example.com\"\n{ca}"),
        )
        .unwrap();
    };
    let starttls_url = format!(
        "smtp://mailer:s3cret%20pass@127.0.0.1:{}?tls=required",
        starttls.port
    );
    let smtps_url = format!("smtps://mailer:s3cret%20pass@127.0.0.1:{}", smtps.port);
    configure(&starttls_url, Some(&tls.ca));
    let server = Server::start_in(&dir, &[]);
    let channel = cli_ok(
        &server,
        &[
            "alerts",
            "channel",
            "add",
            "default",
            "email",
            "dev@example.com",
        ],
    );
    let channel = channel.trim();

    // STARTTLS with a login: delivered.
    cli_ok(&server, &["alerts", "test", channel]);
    let got = starttls.wait_for(1);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["to"], "dev@example.com");
    // Implicit TLS with a login: delivered.
    configure(&smtps_url, Some(&tls.ca));
    cli_ok(&server, &["alerts", "test", channel]);
    assert_eq!(smtps.wait_for(1).len(), 1);

    // A wrong password is refused, and the error says so.
    configure(
        &format!("smtps://mailer:wrong@127.0.0.1:{}", smtps.port),
        Some(&tls.ca),
    );
    let (code, _, err) = phoebe(&dir, &["alerts", "test", channel]);
    assert_ne!(code, 0);
    assert!(err.contains("the test notification failed"), "{err}");
    assert!(err.to_lowercase().contains("auth"), "{err}");
    // Without the private CA the certificate is not trusted: nothing is sent in the clear.
    configure(&starttls_url, None);
    let (code, _, err) = phoebe(&dir, &["alerts", "test", channel]);
    assert_ne!(code, 0);
    assert!(err.to_lowercase().contains("certificate"), "{err}");
    // Without a login the server refuses the message.
    configure(
        &format!("smtp://127.0.0.1:{}?tls=required", starttls.port),
        Some(&tls.ca),
    );
    let (code, _, _) = phoebe(&dir, &["alerts", "test", channel]);
    assert_ne!(code, 0);
    assert_eq!(
        starttls.messages().len(),
        1,
        "only the first message arrived"
    );
    assert_eq!(smtps.messages().len(), 1);
    // A CA file that is not there is named in the error.
    configure(&smtps_url, Some(&tmp.path().join("missing.pem")));
    let (code, _, err) = phoebe(&dir, &["alerts", "test", channel]);
    assert_ne!(code, 0);
    assert!(err.contains("ca_file"), "{err}");
}

#[test]
fn a_weekly_summary_lists_new_issues_and_regressions_and_a_quiet_week_sends_nothing() {
    let Some(tools) = smtp_tools() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (mail, dir) = mail_server_and_data_dir(&tools, tmp.path());
    let server = Server::start_in(&dir, &[]);
    // Not before the mail server knows where to send it.
    cli_ok(
        &server,
        &["user", "set-email", "admin", "admin@example.com"],
    );
    post_envelope(&server, &envelope(&error_event("KeyError", "'basket'")));
    server.wait_digested(1);
    cli_ok(&server, &["issues", "resolve", "1"]);
    std::thread::sleep(Duration::from_millis(20));
    cli_ok(
        &server,
        &[
            "alerts", "summary", "set", "default", "--user", "admin", "--every", "weekly",
        ],
    );
    let list = cli_ok(&server, &["alerts", "summary", "list"]);
    assert!(list.contains("admin") && list.contains("weekly"), "{list}");
    // This week: a new issue, and the resolved one back.
    post_envelope(&server, &envelope(&error_event("TypeError", "None")));
    post_envelope(&server, &envelope(&error_event("KeyError", "'basket'")));
    server.wait_digested(3);

    let (code, _, err) = phoebe(
        &dir,
        &["alerts", "summary", "send", "default", "--user", "admin"],
    );
    assert_eq!(code, 0, "{err}");
    let summaries = |mail: &MailServer| -> Vec<serde_json::Value> {
        mail.messages()
            .into_iter()
            .filter(|m| m["subject"].as_str().unwrap_or("").contains("this week"))
            .collect()
    };
    let until = Instant::now() + Duration::from_secs(10);
    while summaries(&mail).is_empty() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(100));
    }
    let got = summaries(&mail);
    assert_eq!(got.len(), 1);
    assert_eq!(
        got[0]["subject"],
        "[Default] 1 new issue and 1 regression in Default this week"
    );
    assert_eq!(got[0]["to"], "admin@example.com");
    let text = got[0]["parts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["type"] == "text/plain")
        .unwrap()["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        text.contains("New issues:\n- DEFAULT-2 TypeError: None"),
        "{text}"
    );
    assert!(
        text.contains("Regressions:\n- DEFAULT-1 KeyError: 'basket'"),
        "{text}"
    );

    // Nothing happened since: nothing is sent.
    let (code, _, err) = phoebe(
        &dir,
        &["alerts", "summary", "send", "default", "--user", "admin"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("nothing sent"), "{err}");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(summaries(&mail).len(), 1);
    // Stopped, it cannot be sent.
    cli_ok(
        &server,
        &[
            "alerts", "summary", "set", "default", "--user", "admin", "--every", "off",
        ],
    );
    let (code, _, err) = phoebe(
        &dir,
        &["alerts", "summary", "send", "default", "--user", "admin"],
    );
    assert_ne!(code, 0);
    assert!(err.contains("no summary"), "{err}");
}
