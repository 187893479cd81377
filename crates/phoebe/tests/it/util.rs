//! The integration-test fixture: the real `phoebe` binary on a free loopback port with a
//! temporary data folder, plus helpers to call it the way SDKs and tools do.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const ADMIN_PASSWORD: &str = "test-password-123";

/// A running `phoebe serve`.
pub struct Server {
    pub child: Child,
    pub url: String,
    pub dsn: String,
    pub data_dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    _stderr: mpsc::Receiver<String>,
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_phoebe")
}

/// `phoebe <args> --data-dir <dir>`, returning (status, stdout, stderr).
pub fn phoebe(data_dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin())
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env("PHOEBE_LOG", "warn")
        .output()
        .expect("running phoebe");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

impl Server {
    /// Starts a server on a fresh data folder.
    pub fn start() -> Server {
        Server::start_with(&[])
    }

    /// Starts a server with extra environment variables.
    pub fn start_with(env: &[(&str, &str)]) -> Server {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        let mut s = Server::start_in(&dir, env);
        s._tmp = Some(tmp);
        s
    }

    /// Starts a server on `data_dir` (which may hold a previous run's data).
    pub fn start_in(data_dir: &Path, env: &[(&str, &str)]) -> Server {
        let mut cmd = Command::new(bin());
        cmd.args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .env("PHOEBE_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("PHOEBE_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("starting phoebe serve");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if std::env::var("PHOEBE_TEST_VERBOSE").is_ok() {
                    eprintln!("[server] {line}");
                }
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut seen = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(rest) = line.split("Phoebe is listening on ").nth(1) {
                        let url = rest.split(". ").next().unwrap().trim().to_string();
                        let dsn = rest.split("DSN: ").nth(1).unwrap().trim().to_string();
                        let server = Server {
                            child,
                            url,
                            dsn,
                            data_dir: data_dir.to_path_buf(),
                            _tmp: None,
                            _stderr: rx,
                        };
                        server.wait_healthy();
                        return server;
                    }
                    seen.push(line);
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "phoebe serve did not start within 30 s; it said:\n{}",
                        seen.join("\n")
                    );
                }
            }
        }
    }

    fn wait_healthy(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let (code, _, _) = phoebe(&self.data_dir, &["healthcheck", "--url", &self.url]);
            if code == 0 {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{}/healthz never answered", self.url);
    }

    pub fn project_id(&self) -> i64 {
        self.dsn.rsplit('/').next().unwrap().parse().unwrap()
    }

    pub fn public_key(&self) -> String {
        self.dsn
            .split("://")
            .nth(1)
            .unwrap()
            .split('@')
            .next()
            .unwrap()
            .to_string()
    }

    pub fn envelope_url(&self) -> String {
        format!("{}/api/{}/envelope/", self.url, self.project_id())
    }

    pub fn auth_header(&self) -> String {
        format!(
            "Sentry sentry_version=7, sentry_client=phoebe-tests/1, sentry_key={}",
            self.public_key()
        )
    }

    /// A fresh API token for the admin.
    pub fn token(&self) -> String {
        let (code, out, err) = phoebe(&self.data_dir, &["token", "create"]);
        assert_eq!(code, 0, "{err}");
        out.trim().to_string()
    }

    /// GET an API path with a token; returns (status, json).
    pub fn api_get(&self, token: &str, path: &str) -> (u16, serde_json::Value) {
        let r = ureq::get(&format!("{}{path}", self.url))
            .set("Authorization", &format!("Bearer {token}"))
            .call();
        json_of(r)
    }

    /// Waits until digest has stored `n` events in total (from /metrics).
    pub fn wait_digested(&self, n: u64) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut last = 0;
        while Instant::now() < deadline {
            last = self.metric("phoebe_digest_events_stored_total") as u64;
            if last >= n {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("only {last} of {n} events digested after 60 s");
    }

    pub fn metric(&self, name: &str) -> f64 {
        let text = ureq::get(&format!("{}/metrics", self.url))
            .call()
            .unwrap()
            .into_string()
            .unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|r| r.trim().parse().ok()))
            .unwrap_or(0.0)
    }

    /// The log lines the server wrote so far (since the last call).
    pub fn log_lines(&self) -> Vec<String> {
        self._stderr.try_iter().collect()
    }

    /// Waits up to 10 s for a log line containing `needle` (lines reach the test through a
    /// reader thread, so a line written just now may not have arrived yet).
    pub fn wait_for_log(&self, needle: &str) -> bool {
        self.wait_for_log_line(needle, Duration::from_secs(10))
            .is_some()
    }

    /// The first log line containing `needle` within `wait`.
    pub fn wait_for_log_line(&self, needle: &str, wait: Duration) -> Option<String> {
        let deadline = Instant::now() + wait;
        while let Ok(line) = self
            ._stderr
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            if line.contains(needle) {
                return Some(line);
            }
        }
        None
    }

    /// The server's resident memory in MB.
    pub fn rss_mb(&self) -> f64 {
        phoebe::memory::status_kib(Some(self.child.id()), "VmRSS").unwrap() as f64 / 1024.0
    }

    /// SIGTERM and wait; returns the exit code.
    pub fn stop(mut self) -> i32 {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let status = self.child.wait().unwrap();
        status.code().unwrap_or(-1)
    }

    /// SIGKILL: no chance to flush.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Status and JSON body of a ureq result, for 2xx and 4xx alike.
pub fn json_of(r: Result<ureq::Response, ureq::Error>) -> (u16, serde_json::Value) {
    match r {
        Ok(resp) => {
            let status = resp.status();
            let text = resp.into_string().unwrap_or_default();
            (
                status,
                serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
            )
        }
        Err(ureq::Error::Status(code, resp)) => {
            let text = resp.into_string().unwrap_or_default();
            (
                code,
                serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
            )
        }
        Err(e) => panic!("transport error: {e}"),
    }
}

/// A minimal envelope with one event item.
pub fn envelope(event: &serde_json::Value) -> Vec<u8> {
    let id = event["event_id"].as_str().unwrap_or("").to_string();
    let payload = serde_json::to_vec(event).unwrap();
    let mut body = serde_json::to_vec(&serde_json::json!({"event_id": id})).unwrap();
    body.push(b'\n');
    body.extend(
        serde_json::to_vec(&serde_json::json!({"type": "event", "length": payload.len()})).unwrap(),
    );
    body.push(b'\n');
    body.extend(payload);
    body.push(b'\n');
    body
}

pub fn new_event_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// An exception event whose grouping depends on `ty`.
pub fn error_event(ty: &str, value: &str) -> serde_json::Value {
    serde_json::json!({
        "event_id": new_event_id(),
        "platform": "python",
        "level": "error",
        "release": "app@1.0.0",
        "environment": "production",
        "tags": {"team": "payments"},
        "user": {"id": "42"},
        "exception": {"values": [{"type": ty, "value": value, "stacktrace": {"frames": [
            {"filename": "app/main.py", "module": "app.main", "function": "run", "lineno": 10, "in_app": true, "context_line": "    charge(order)"},
            {"filename": "app/pay.py", "module": "app.pay", "function": "charge", "lineno": 20, "in_app": true, "context_line": "    raise Boom()"}
        ]}}]}
    })
}

/// Posts an envelope with header auth; returns (status, json).
pub fn post_envelope(server: &Server, body: &[u8]) -> (u16, serde_json::Value) {
    json_of(
        ureq::post(&server.envelope_url())
            .set("X-Sentry-Auth", &server.auth_header())
            .set("Content-Type", "application/x-sentry-envelope")
            .send_bytes(body),
    )
}

/// The shared corpus, if this checkout has it beside it; CI must have it.
pub fn corpus_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/corpus"
    ));
    if dir.is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var("CI").is_err(),
        "CI needs the shared corpus at {}",
        dir.display()
    );
    None
}

/// POSTs `body` to `path` with `headers`; returns status, JSON and the response headers.
pub fn send(
    server: &Server,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, serde_json::Value, Vec<(String, String)>) {
    let mut req = ureq::post(&format!("{}{path}", server.url));
    for (k, v) in headers {
        req = req.set(k, v);
    }
    let resp = match req.send_bytes(body) {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{e}"),
    };
    let status = resp.status();
    let headers: Vec<(String, String)> = resp
        .headers_names()
        .into_iter()
        .map(|n| (n.clone(), resp.header(&n).unwrap_or("").to_string()))
        .collect();
    let text = resp.into_string().unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::json!(text)),
        headers,
    )
}

/// A response header by name, any case.
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Runs `phoebe` with a password in PHOEBE_NEW_PASSWORD.
pub fn phoebe_with_password(
    data_dir: &std::path::Path,
    password: &str,
    args: &[&str],
) -> (i32, String) {
    let out = std::process::Command::new(bin())
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env("PHOEBE_LOG", "warn")
        .env("PHOEBE_NEW_PASSWORD", password)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Logs in to the dashboard as the admin; returns the `Cookie` header value.
pub fn dashboard_cookie(server: &Server) -> String {
    let agent = ureq::AgentBuilder::new().redirects(0).build();
    let resp = agent
        .post(&format!("{}/login", server.url))
        .send_form(&[("login", "admin"), ("password", ADMIN_PASSWORD)])
        .unwrap();
    assert_eq!(resp.status(), 303);
    resp.header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string()
}

/// GETs a dashboard page with a session cookie; returns status and body.
pub fn dashboard_get(server: &Server, cookie: &str, path: &str) -> (u16, String) {
    let r = ureq::get(&format!("{}{path}", server.url))
        .set("Cookie", cookie)
        .call();
    let resp = match r {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{path}: {e}"),
    };
    (resp.status(), resp.into_string().unwrap_or_default())
}
