//! What only the SQLite backend has: its schema versions and their upgrades, and the inbox's
//! own file. Everything every
//! backend must do is in the conformance suite (`store::conformance`).

use super::*;

#[test]
fn newer_schema_is_refused_with_advice() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.sqlite");
    drop(SqliteStore::open(&path).unwrap());
    let c = Connection::open(&path).unwrap();
    c.pragma_update(None, "user_version", 99).unwrap();
    drop(c);
    let err = SqliteStore::open(&path).err().unwrap();
    assert!(err.to_string().contains("run a newer phoebe"), "{err}");
}

#[test]
fn a_database_of_the_previous_schema_upgrades_in_place_and_keeps_its_issues() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.sqlite");
    // Schema 5 is what Phoebe wrote before domain events existed.
    let mut c = Connection::open(&path).unwrap();
    for (i, sql) in schema::MIGRATIONS.iter().enumerate().take(5) {
        let tx = c.transaction().unwrap();
        tx.execute_batch(sql).unwrap();
        tx.pragma_update(None, "user_version", (i + 1) as i64)
            .unwrap();
        tx.commit().unwrap();
    }
    c.execute_batch(
        "INSERT INTO organizations (id, slug, name, created_ms) VALUES (1, 'acme', 'Acme', 0);
         INSERT INTO projects (id, org_id, slug, name, created_ms, next_short_id) VALUES (1, 1, 'web', 'Web', 0, 2);
         INSERT INTO issues (id, project_id, short_id, title, culprit, kind, metadata, level,
            first_seen_ms, last_seen_ms, times_seen, status, platform)
            VALUES (1, 1, 1, 'Err old', 'app', 'error', '{}', 'error', 1, 1, 9, 'resolved', 'python');
         INSERT INTO issue_hashes (project_id, hash, issue_id, algorithm, grouping)
            VALUES (1, 'old', 1, 'phoebe-1', '{}');",
    )
    .unwrap();
    drop(c);

    let s = SqliteStore::open(&path).unwrap();
    let p = s.project(ProjectId(1)).unwrap();
    let ev = DigestedEvent::for_test(p.id, "old", 5, "u", Some("2.0"));
    let out = s
        .apply_digest_batch(&DigestBatch {
            events: vec![ev],
            inbox_ids: vec![1],
            ..DigestBatch::default()
        })
        .unwrap();
    assert_eq!(
        (out.new_issues.len(), out.regressions),
        (0, vec![IssueId(1)])
    );
    let issue = s.issue(IssueId(1)).unwrap();
    assert_eq!(
        (issue.times_seen, issue.status, issue.is_regression),
        (10, IssueStatus::Unresolved, true)
    );
    let events: Vec<_> = s
        .domain_events(0, 10)
        .unwrap()
        .into_iter()
        .map(|e| e.what)
        .collect();
    assert_eq!(
        events,
        vec![
            crate::domain::rules::IssueEvent::Regressed {
                release: Some("2.0".into())
            },
            crate::domain::rules::IssueEvent::PassedCount(10)
        ]
    );
}

#[test]
fn a_drained_inbox_gives_a_large_backlog_back_to_the_disk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inbox.sqlite");
    let inbox = inbox::SqliteInbox::open(&path, 0, "normal").unwrap();
    let body = bytes::Bytes::from(vec![7u8; 512 * 1024]);
    let mut last = 0;
    for n in 0..64 {
        let e = Entry {
            project_id: ProjectId(1),
            received_ms: n,
            kind: EntryKind::Envelope,
            client_ip: None,
            encoding: None,
            meta: None,
            body: body.clone(),
            decoded: None,
        };
        last = inbox.append(&[&e]).unwrap()[0];
    }
    let size = || std::fs::metadata(&path).unwrap().len();
    let wal = || std::fs::metadata(dir.path().join("inbox.sqlite-wal")).map_or(0, |m| m.len());
    // The WAL holds the recent writes; a checkpoint moves them into the file.
    Connection::open(&path)
        .unwrap()
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
        .unwrap();
    let full = size();
    assert!(full > 30 << 20, "{full}");
    assert_eq!(inbox.forget_through(last).unwrap(), 64);
    // One step, as digest takes after forgetting; no explicit checkpoint: the drained inbox
    // truncates its own WAL.
    inbox.shrink().unwrap();
    assert!(
        size() + wal() < 8 << 20,
        "{} + {} bytes left of {full}",
        size(),
        wal()
    );
}

#[test]
fn a_batch_retried_after_an_ambiguous_commit_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(&dir.path().join("t.sqlite")).unwrap();
    let org = s.create_org("acme", "Acme").unwrap();
    let (p, _) = s.create_project(org.id, "web", "Web", None).unwrap();
    let batch = DigestBatch {
        events: vec![DigestedEvent::for_test(p.id, "a", 1, "u", None)],
        kept: vec![KeptItem {
            project_id: p.id,
            event_id: None,
            item_type: "attachment".into(),
            filename: None,
            received_ms: 1,
            payload: vec![1],
        }],
        inbox_ids: vec![3],
        ..DigestBatch::default()
    };
    s.apply_digest_batch(&batch).unwrap();
    // The same batch again, as after a commit that reported failure but was written.
    let again = s.apply_digest_batch(&batch).unwrap();
    assert_eq!((again.stored, again.duplicates), (0, 1));
    let kept: i64 = s
        .read(|c| Ok(c.query_row("SELECT count(*) FROM kept_items", [], |r| r.get(0))?))
        .unwrap();
    assert_eq!(kept, 1, "kept items are written once");
}

#[test]
fn a_new_issue_keeps_the_grouping_explanation_its_batch_carried_on_a_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(&dir.path().join("t.sqlite")).unwrap();
    let org = s.create_org("acme", "Acme").unwrap();
    let (p, _) = s.create_project(org.id, "web", "Web", None).unwrap();
    let stored = DigestedEvent::for_test(p.id, "old-hash", 1, "u", None);
    s.apply_digest_batch(&DigestBatch {
        events: vec![stored.clone()],
        inbox_ids: vec![1],
        ..DigestBatch::default()
    })
    .unwrap();
    // The SDK sends the stored event again, now grouped under a new hash; digest explains the
    // hash on that first (duplicate) event only.
    let mut resent = stored;
    resent.hash = "new-hash".into();
    resent.grouping = Some("{\"explained\":true}".into());
    let mut fresh = DigestedEvent::for_test(p.id, "new-hash", 2, "u", None);
    fresh.grouping = None;
    s.apply_digest_batch(&DigestBatch {
        events: vec![resent, fresh],
        inbox_ids: vec![2],
        ..DigestBatch::default()
    })
    .unwrap();
    assert_eq!(
        s.grouping(p.id, "new-hash").unwrap().as_deref(),
        Some("{\"explained\":true}")
    );
}
