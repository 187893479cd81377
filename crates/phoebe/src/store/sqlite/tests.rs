//! What only the SQLite backend has: its schema versions and their upgrades. Everything every
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
            last_inbox_id: 1,
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
