//! Memory: a quiet server hands a burst's memory back.

use std::time::Duration;

use crate::util::*;

// Needs /proc, and glibc for the figures: elsewhere the allocator keeps its own schedule.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn an_idle_server_gives_a_bursts_memory_back() {
    let server = Server::start_with(&[("PHOEBE_QUOTAS__SPIKE_PROTECTION", "false")]);
    let pid = server.child.id().to_string();
    let (code, out, err) = phoebe(
        &server.data_dir,
        &[
            "bench",
            "--dsn",
            &server.dsn,
            "--events",
            "5000",
            "--issues",
            "50",
            "--server-pid",
            &pid,
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let busy = server.rss_mb();
    // Digest releases memory once it has had nothing to do for 10 s.
    let line = server
        .wait_for_log_line("handed cached memory back", Duration::from_secs(40))
        .expect("no memory release logged after the burst");
    let idle = server.rss_mb();
    assert!(
        idle < busy && idle < 30.0,
        "RSS {busy:.1} MB after the burst, {idle:.1} MB idle; log: {line}"
    );
    // Cached pages were dropped, not data: the API still reads every issue.
    let (status, issues) = server.api_get(
        &server.token(),
        "/api/0/projects/phoebe/default/issues/?query=&limit=100",
    );
    assert_eq!(status, 200);
    assert_eq!(issues.as_array().unwrap().len(), 50);
}
