//! The SQLite store against its contract: batches are idempotent, counters are exact, queries filter.

use super::*;

fn store() -> (tempfile::TempDir, SqliteStore, Project) {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(&dir.path().join("t.sqlite")).unwrap();
    let org = s.create_org("acme", "Acme").unwrap();
    let (p, _) = s.create_project(org.id, "web", "Web", None).unwrap();
    (dir, s, p)
}

fn event(p: &Project, hash: &str, ts: i64, user: &str, release: &str) -> DigestedEvent {
    DigestedEvent {
        project_id: p.id,
        event_id: uuid::Uuid::new_v4(),
        timestamp_ms: ts,
        received_ms: ts,
        level: "error",
        kind: "error",
        platform: "python".into(),
        logger: None,
        release: Some(release.into()),
        title: format!("Err {hash}"),
        culprit: "app in f".into(),
        metadata: "{}".into(),
        hash: hash.into(),
        variant: "app",
        grouping: Some("{\"components\":[]}".into()),
        tags: vec![
            ("user".into(), user.into()),
            ("release".into(), release.into()),
        ],
        user: Some(user.into()),
        payload_zstd: zstd::bulk::compress(b"{\"a\":1}", 3).unwrap(),
    }
}

#[test]
fn batches_group_count_and_are_idempotent() {
    let (_d, s, p) = store();
    let hour = 3_600_000;
    let batch = DigestBatch {
        events: vec![
            event(&p, "h1", 10 * hour + 5, "id:1", "1.0"),
            event(&p, "h1", 10 * hour + 9, "id:2", "1.1"),
            event(&p, "h1", 11 * hour, "id:1", "1.1"),
            event(&p, "h2", 11 * hour, "id:1", "1.0"),
        ],
        kept: vec![],
        last_inbox_id: 7,
        new_dict: None,
    };
    let out = s.apply_digest_batch(&batch).unwrap();
    assert_eq!(
        (out.stored, out.duplicates, out.new_issues.len()),
        (4, 0, 2)
    );
    assert_eq!(s.digest_watermark().unwrap(), 7);
    // The same batch again (a crash before the inbox was trimmed) changes nothing.
    let again = s.apply_digest_batch(&batch).unwrap();
    assert_eq!((again.stored, again.duplicates), (0, 4));

    let issues = s
        .issues(&IssueQuery {
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(issues.len(), 2);
    let h1 = issues.iter().find(|i| i.title == "Err h1").unwrap();
    assert_eq!((h1.times_seen, h1.user_count), (3, 2));
    assert_eq!(
        (h1.first_release.as_deref(), h1.last_release.as_deref()),
        (Some("1.0"), Some("1.1"))
    );
    assert_eq!(
        (h1.first_seen_ms, h1.last_seen_ms),
        (10 * hour + 5, 11 * hour)
    );
    let hourly = s.issue_hourly(&[h1.id], 0).unwrap();
    let mut hourly: Vec<(i64, i64)> = hourly.into_iter().map(|(_, h, c)| (h, c)).collect();
    hourly.sort();
    assert_eq!(hourly, vec![(10 * hour, 2), (11 * hour, 1)]);
    let tags = s.issue_tags(h1.id, 10).unwrap();
    let user1 = tags
        .iter()
        .find(|t| t.key == "user" && t.value == "id:1")
        .unwrap();
    assert_eq!(user1.count, 2);

    // Filters.
    let q = |f: fn(&mut IssueQuery)| {
        let mut q = IssueQuery {
            limit: 10,
            ..Default::default()
        };
        f(&mut q);
        s.issues(&q).unwrap().len()
    };
    assert_eq!(q(|q| q.tags.push(("release".into(), "1.1".into()))), 1);
    assert_eq!(q(|q| q.text.push("h2".into())), 1);
    assert_eq!(q(|q| q.text.push("100%".into())), 0);
    assert_eq!(q(|q| q.status = Some(IssueStatus::Resolved)), 0);

    // Resolve, then a new event: regression.
    s.set_issue_status(h1.id, IssueStatus::Resolved).unwrap();
    let out = s
        .apply_digest_batch(&DigestBatch {
            events: vec![event(&p, "h1", 12 * hour, "id:3", "1.2")],
            kept: vec![],
            last_inbox_id: 8,
            new_dict: None,
        })
        .unwrap();
    assert_eq!(out.regressions, vec![h1.id]);
    let h1 = s.issue(h1.id).unwrap();
    assert_eq!(
        (h1.status, h1.is_regression, h1.times_seen, h1.user_count),
        (IssueStatus::Unresolved, true, 4, 3)
    );
    let latest = s.issue_event_edge(h1.id, true).unwrap().unwrap();
    assert_eq!(latest.payload, serde_json::json!({"a": 1}));
    assert_eq!(
        s.event(p.id, latest.event_id)
            .unwrap()
            .unwrap()
            .timestamp_ms,
        12 * hour
    );
}

#[test]
fn slugs_and_names_are_validated() {
    let (_d, s, p) = store();
    assert!(matches!(
        s.create_project(p.org_id, "web", "x", None),
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        s.create_project(p.org_id, "Bad Slug", "x", None),
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        s.create_project(p.org_id, "123", "x", None),
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(
        s.project_by_slug("acme", &p.id.to_string()).unwrap().slug,
        "web"
    );
    assert_eq!(s.all_keys().unwrap()[0].public_key.len(), 32);
}

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
