//! A full disk: on a small tmpfs the test mounts (where the machine allows it), ingest answers
//! 503 while reads keep working, the log says what to do, and once space returns Phoebe resumes
//! by itself with every acknowledged event intact.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::util::*;

/// A tmpfs mounted for the test's lifetime.
struct SmallDisk {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl SmallDisk {
    fn mount(megabytes: u32) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk");
        std::fs::create_dir(&path).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(&path)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!(
                "skipping: this machine does not let the test mount a small tmpfs (needs root)"
            );
            return None;
        }
        Some(SmallDisk { _dir: dir, path })
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// Writes until the file system refuses.
fn fill(path: &Path) {
    let mut f = std::fs::File::create(path).unwrap();
    let chunk = vec![0xA5u8; 64 * 1024];
    while f.write_all(&chunk).is_ok() {}
    let _ = f.write_all(&[0u8; 512]);
    let _ = f.sync_all();
}

/// An event padded with 20 KB of incompressible text, so each one costs real pages.
fn padded_event(i: u64) -> serde_json::Value {
    let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let noise: String = (0..20_000)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(b'a' + (x % 26) as u8)
        })
        .collect();
    let mut ev = error_event("DiskError", &format!("event {i}"));
    ev["extra"] = serde_json::json!({ "noise": noise });
    ev
}

#[test]
fn full_disk_refuses_ingest_keeps_reads_and_recovers_without_loss() {
    let Some(disk) = SmallDisk::mount(24) else {
        return;
    };
    let server = Server::start_in(&disk.path.join("data"), &[]);
    let token = server.token();
    let mut acked = Vec::new();
    for i in 0..5 {
        let ev = padded_event(i);
        let (code, body) = post_envelope(&server, &envelope(&ev));
        assert_eq!(code, 200, "{body}");
        acked.push(ev["event_id"].as_str().unwrap().to_string());
    }
    server.wait_digested(5);

    let filler = disk.path.join("filler");
    fill(&filler);
    let mut refused = None;
    for i in 5..400 {
        let ev = padded_event(i);
        let (code, body) = post_envelope(&server, &envelope(&ev));
        match code {
            200 => acked.push(ev["event_id"].as_str().unwrap().to_string()),
            503 => {
                refused = Some(body);
                break;
            }
            other => panic!("unexpected {other}: {body}"),
        }
    }
    let refused = refused.expect("ingest never noticed the full disk");
    assert!(
        refused["detail"].as_str().unwrap().contains("disk is full"),
        "{refused}"
    );
    let (code, _) = server.api_get(&token, "/api/0/projects/phoebe/default/issues/");
    assert_eq!(code, 200, "reads keep working on a full disk");
    let log = server.log_lines().join("\n");
    assert!(
        log.contains("the disk holding the data folder is full"),
        "the log should say what happened: {log}"
    );

    // Space returns: Phoebe resumes by itself.
    std::fs::remove_file(&filler).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ev = padded_event(1_000);
        let (code, body) = post_envelope(&server, &envelope(&ev));
        if code == 200 {
            acked.push(ev["event_id"].as_str().unwrap().to_string());
            break;
        }
        assert!(
            Instant::now() < deadline,
            "ingest never recovered: {code} {body}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    server.wait_digested(acked.len() as u64);
    for id in &acked {
        let (code, body) = server.api_get(
            &token,
            &format!("/api/0/projects/phoebe/default/events/{id}/"),
        );
        assert_eq!(code, 200, "acknowledged event {id} lost: {body}");
    }
    assert_eq!(server.stop(), 0);
}
