//! Every way an SDK request can be refused gets the right status and a JSON `detail`, and the
//! accepted edge cases (tunnels, prefixes, unknown items) really are accepted.

use std::io::Write;

use serde_json::json;

use crate::util::*;

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[track_caller]
fn assert_refused(
    result: (u16, serde_json::Value, Vec<(String, String)>),
    status: u16,
    detail_part: &str,
) {
    let (code, body, headers) = result;
    assert_eq!(code, status, "{body}");
    let detail = body["detail"]
        .as_str()
        .unwrap_or_else(|| panic!("no detail in {body}"));
    assert!(
        detail.contains(detail_part),
        "detail {detail:?} lacks {detail_part:?}"
    );
    assert_eq!(
        header(&headers, "access-control-allow-origin"),
        Some("*"),
        "CORS missing on {status}"
    );
    assert!(header(&headers, "access-control-expose-headers")
        .unwrap_or("")
        .contains("x-sentry-rate-limits"));
}

#[test]
fn refusals_have_the_right_status_and_a_detail() {
    let server = Server::start_with(&[
        ("PHOEBE_INGEST__MAX_COMPRESSED_BODY_BYTES", "200000"),
        ("PHOEBE_INGEST__MAX_ENVELOPE_BYTES", "300000"),
        ("PHOEBE_INGEST__MAX_EVENT_BYTES", "100000"),
    ]);
    let pid = server.project_id();
    let env_path = format!("/api/{pid}/envelope/");
    let auth = server.auth_header();
    let good = envelope(&error_event("ValueError", "x"));

    assert_refused(
        send(&server, &env_path, &[("X-Sentry-Auth", &auth)], b""),
        400,
        "empty request body",
    );
    assert_refused(
        send(
            &server,
            &env_path,
            &[("X-Sentry-Auth", &auth)],
            b"not an envelope",
        ),
        400,
        "invalid event envelope",
    );
    assert_refused(
        send(&server, &env_path, &[], &good),
        401,
        "missing authentication",
    );
    assert_refused(
        send(
            &server,
            &env_path,
            &[(
                "X-Sentry-Auth",
                "Sentry sentry_key=0123456789abcdef0123456789abcdef",
            )],
            &good,
        ),
        401,
        "unknown DSN public key",
    );
    assert_refused(
        send(
            &server,
            &env_path,
            &[("X-Sentry-Auth", "Sentry sentry_key=nothex")],
            &good,
        ),
        400,
        "32 hex",
    );
    assert_refused(
        send(
            &server,
            &env_path,
            &[("X-Sentry-Auth", "Bearer xyz")],
            &good,
        ),
        401,
        "X-Sentry-Auth",
    );
    let v8 = format!(
        "Sentry sentry_version=8, sentry_key={}",
        server.public_key()
    );
    assert_refused(
        send(&server, &env_path, &[("X-Sentry-Auth", &v8)], &good),
        400,
        "version",
    );
    let conflicting = format!("{env_path}?sentry_key=0123456789abcdef0123456789abcdef");
    assert_refused(
        send(&server, &conflicting, &[("X-Sentry-Auth", &auth)], &good),
        401,
        "different keys",
    );
    let tunnel_other_key = format!(
        "{{\"dsn\":\"http://0123456789abcdef0123456789abcdef@127.0.0.1/{pid}\"}}\n{{\"type\":\"event\"}}\n{{}}\n"
    );
    assert_refused(
        send(
            &server,
            &env_path,
            &[("X-Sentry-Auth", &auth)],
            tunnel_other_key.as_bytes(),
        ),
        401,
        "mismatch",
    );
    let get = ureq::get(&format!("{}{env_path}", server.url)).call();
    assert!(
        matches!(get, Err(ureq::Error::Status(405, _))),
        "GET on an ingest endpoint must be 405"
    );

    // A key of another project is refused on this project's path.
    let (code, other_dsn, err) = phoebe(&server.data_dir, &["project", "create", "other"]);
    assert_eq!(code, 0, "{err}");
    let other_key = other_dsn
        .trim()
        .split("://")
        .nth(1)
        .unwrap()
        .split('@')
        .next()
        .unwrap()
        .to_string();
    let other_auth = format!("Sentry sentry_key={other_key}");
    assert_refused(
        send(&server, &env_path, &[("X-Sentry-Auth", &other_auth)], &good),
        403,
        "belongs to project",
    );

    // Sizes: compressed body, decompressed body (a zip bomb), one event item.
    let huge = vec![b'a'; 250_000];
    assert_refused(
        send(&server, &env_path, &[("X-Sentry-Auth", &auth)], &huge),
        413,
        "max_compressed_body_bytes",
    );
    let bomb = gzip(&vec![b' '; 50 << 20]);
    assert_refused(
        send(
            &server,
            &env_path,
            &[("X-Sentry-Auth", &auth), ("Content-Encoding", "gzip")],
            &bomb,
        ),
        413,
        "max_envelope_bytes",
    );
    let mut big = error_event("ValueError", "x");
    big["extra"] = json!({"blob": "y".repeat(150_000)});
    assert_refused(
        send(
            &server,
            &env_path,
            &[("X-Sentry-Auth", &auth), ("Content-Encoding", "gzip")],
            &gzip(&envelope(&big)),
        ),
        413,
        "'event'",
    );
    assert_refused(
        send(
            &server,
            &env_path,
            &[("X-Sentry-Auth", &auth), ("Content-Encoding", "gzip")],
            b"\x1f\x8bnope",
        ),
        400,
        "gzip",
    );

    // Legacy store and security endpoints.
    let store_path = format!("/api/{pid}/store/");
    assert_refused(
        send(
            &server,
            &store_path,
            &[("X-Sentry-Auth", &auth)],
            b"{not json",
        ),
        400,
        "invalid JSON",
    );
    assert_refused(
        send(
            &server,
            &store_path,
            &[("X-Sentry-Auth", &auth)],
            br#"{"event_id": "nope"}"#,
        ),
        400,
        "event_id",
    );
    let sec = format!("/api/{pid}/security/?sentry_key={}", server.public_key());
    assert_refused(
        send(&server, &sec, &[("Content-Type", "text/html")], b"{}"),
        415,
        "csp-report",
    );
    assert_refused(
        send(
            &server,
            &sec,
            &[("Content-Type", "application/csp-report")],
            b"",
        ),
        400,
        "empty",
    );
    assert_refused(
        send(
            &server,
            &sec,
            &[("Content-Type", "application/csp-report")],
            b"{oops",
        ),
        400,
        "invalid JSON",
    );
    assert_eq!(
        send(
            &server,
            &format!("/api/{pid}/nothing/"),
            &[("X-Sentry-Auth", &auth)],
            &good
        )
        .0,
        404
    );

    // A disabled key is refused with 403 once the server has noticed (it reloads keys every 5 s).
    let (code, _, err) = phoebe(&server.data_dir, &["key", "disable", other_dsn.trim()]);
    assert_eq!(code, 0, "{err}");
    let other_path = format!(
        "/api/{}/envelope/",
        other_dsn.trim().rsplit('/').next().unwrap()
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let mut last = (0, json!(null), vec![]);
    while std::time::Instant::now() < deadline {
        last = send(
            &server,
            &other_path,
            &[("X-Sentry-Auth", &other_auth)],
            b"{}\n",
        );
        if last.0 == 403 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert_refused(last, 403, "disabled");

    // Nothing above was stored, and the server is still healthy.
    let (code, _, _) = phoebe(&server.data_dir, &["healthcheck", "--url", &server.url]);
    assert_eq!(code, 0);
    // (The header-only envelopes sent while waiting for the disabled key are accepted but hold nothing.)
    assert_eq!(server.metric("phoebe_inbox_pending_envelopes"), 0.0);
    assert_eq!(server.metric("phoebe_digest_events_stored_total"), 0.0);
}

#[test]
fn full_inbox_answers_503_with_retry_after() {
    let server = Server::start_with(&[("PHOEBE_INBOX__MAX_BACKLOG", "0")]);
    let (code, body, headers) = send(
        &server,
        &format!("/api/{}/envelope/", server.project_id()),
        &[("X-Sentry-Auth", &server.auth_header())],
        &envelope(&error_event("E", "x")),
    );
    assert_eq!(code, 503, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("retry later"),
        "{body}"
    );
    assert_eq!(header(&headers, "retry-after"), Some("10"));
    let ready = ureq::get(&format!("{}/readyz", server.url)).call();
    assert!(
        matches!(ready, Err(ureq::Error::Status(503, _))),
        "readyz must report the full backlog"
    );
}

#[test]
fn store_endpoint_decodes_every_body_form() {
    use base64::Engine;
    let server = Server::start();
    let path = format!("/api/{}/store/", server.project_id());
    let auth = server.auth_header();
    let event = |msg: &str| {
        serde_json::to_vec(&json!({"event_id": new_event_id(), "message": msg})).unwrap()
    };
    let mut br = Vec::new();
    brotli::BrotliCompress(
        &mut event("via brotli").as_slice(),
        &mut br,
        &Default::default(),
    )
    .unwrap();
    let zst = zstd::encode_all(event("via zstd").as_slice(), 3).unwrap();
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(&event("via base64 zlib")).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(z.finish().unwrap());
    for (encoding, body) in [
        ("br", br),
        ("zstd", zst),
        ("", b64.into_bytes()),
        ("gzip", gzip(&event("via gzip"))),
    ] {
        let (code, body, _) = send(
            &server,
            &path,
            &[("X-Sentry-Auth", &auth), ("Content-Encoding", encoding)],
            &body,
        );
        assert_eq!(code, 200, "{encoding}: {body}");
    }
    server.wait_digested(4);
    let token = server.token();
    let (_, issues) = server.api_get(&token, "/api/0/projects/phoebe/default/issues/");
    let mut titles: Vec<String> = issues
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["title"].as_str().unwrap().to_string())
        .collect();
    titles.sort();
    assert_eq!(
        titles,
        ["via base64 zlib", "via brotli", "via gzip", "via zstd"]
    );
}

#[test]
fn accepted_edge_cases() {
    let server = Server::start();
    let pid = server.project_id();
    let key = server.public_key();
    let auth = server.auth_header();

    // No trailing slash, a path prefix, and query-string auth as the JS SDKs send it.
    let ev = error_event("KeyError", "a");
    let (code, body, headers) = send(
        &server,
        &format!("/api/{pid}/envelope"),
        &[("X-Sentry-Auth", &auth)],
        &envelope(&ev),
    );
    assert_eq!((code, body["id"].as_str()), (200, ev["event_id"].as_str()));
    assert_eq!(header(&headers, "access-control-allow-origin"), Some("*"));
    let q = format!("/sentry/api/{pid}/envelope/?sentry_version=7&sentry_key={key}&sentry_client=sentry.javascript.node%2F11.12.0");
    assert_eq!(
        send(
            &server,
            &q,
            &[("Content-Type", "text/plain;charset=UTF-8")],
            &envelope(&error_event("KeyError", "b"))
        )
        .0,
        200
    );

    // A tunnelled envelope authenticates with the DSN in its header; a mismatching one is refused.
    let id = new_event_id();
    let tunnel = format!(
        "{{\"event_id\":\"{id}\",\"dsn\":\"{}\"}}\n{{\"type\":\"event\"}}\n{{\"message\":\"through a tunnel\"}}\n",
        server.dsn
    );
    let (code, body, _) = send(
        &server,
        &format!("/api/{pid}/envelope/"),
        &[],
        tunnel.as_bytes(),
    );
    assert_eq!(
        (code, body["id"].as_str()),
        (200, Some(id.as_str())),
        "{body}"
    );
    let wrong = tunnel.replace(&format!("/{pid}\""), "/999\"");
    assert_eq!(
        send(
            &server,
            &format!("/api/{pid}/envelope/"),
            &[],
            wrong.as_bytes()
        )
        .0,
        403
    );

    // Unknown item types and client reports only: accepted, no event id.
    let odd = b"{}\n{\"type\":\"something_new\"}\n{\"x\":1}\n{\"type\":\"client_report\"}\n{\"discarded_events\":[]}\n";
    let (code, body, _) = send(
        &server,
        &format!("/api/{pid}/envelope/"),
        &[("X-Sentry-Auth", &auth)],
        odd,
    );
    assert_eq!((code, body), (200, json!({})));

    // Bogus Content-Encoding values are ignored; deflate without the zlib wrapper works.
    let plain = envelope(&error_event("KeyError", "c"));
    assert_eq!(
        send(
            &server,
            &format!("/api/{pid}/envelope/"),
            &[("X-Sentry-Auth", &auth), ("Content-Encoding", "UTF-8")],
            &plain
        )
        .0,
        200
    );
    let mut raw = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    raw.write_all(&envelope(&error_event("KeyError", "d")))
        .unwrap();
    let raw = raw.finish().unwrap();
    assert_eq!(
        send(
            &server,
            &format!("/api/{pid}/envelope/"),
            &[("X-Sentry-Auth", &auth), ("Content-Encoding", "deflate")],
            &raw
        )
        .0,
        200
    );

    // /store/ with NaN (old sentry-python) and a CSP report.
    let (code, body, _) = send(
        &server,
        &format!("/api/{pid}/store/"),
        &[("X-Sentry-Auth", &auth)],
        br#"{"message": "nan here", "extra": {"v": NaN, "w": -Infinity}}"#,
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["id"].as_str().map(str::len), Some(32));
    let csp = br#"{"csp-report": {"document-uri": "https://example.com/", "violated-directive": "script-src 'self'", "blocked-uri": "https://evil.example/x.js"}}"#;
    let sec = format!("/api/{pid}/security/?sentry_key={key}&sentry_release=web%401.0");
    let (code, _, _) = send(
        &server,
        &sec,
        &[("Content-Type", "application/csp-report")],
        csp,
    );
    assert_eq!(code, 200);

    // CORS preflight needs no auth.
    let pre = ureq::request("OPTIONS", &format!("{}/api/{pid}/envelope/", server.url))
        .set("Origin", "http://example.com")
        .set("Access-Control-Request-Method", "POST")
        .set("Access-Control-Request-Headers", "x-custom")
        .call()
        .unwrap();
    assert_eq!(pre.status(), 200);
    assert_eq!(pre.header("access-control-allow-origin"), Some("*"));

    // All of the accepted events become issues: 4 KeyError events group together, plus
    // the tunnel message, the NaN store event and the CSP report.
    server.wait_digested(7);
    let token = server.token();
    let (_, issues) = server.api_get(&token, "/api/0/projects/phoebe/default/issues/");
    let titles: Vec<&str> = issues
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles.len(), 4, "{titles:?}");
    assert!(
        titles.contains(&"KeyError: c") || titles.iter().any(|t| t.starts_with("KeyError")),
        "{titles:?}"
    );
    assert!(
        titles.iter().any(|t| t.contains("through a tunnel")),
        "{titles:?}"
    );
    assert!(titles.iter().any(|t| t.contains("nan here")), "{titles:?}");
    assert!(
        titles.iter().any(|t| t.contains("script-src")),
        "{titles:?}"
    );
}
