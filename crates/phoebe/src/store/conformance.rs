//! The storage conformance suite: what every backend must do, written against the interfaces
//! only. Each test runs on every backend [`backends`] yields: SQLite always; the PostgreSQL
//! backend joins the list when it exists. Digest rules, triage, limits and usage, retention,
//! sessions and tokens, and the domain events batches record.

use std::sync::Arc;

use super::*;
use crate::domain::rules::IssueEvent;

/// A fresh, empty store of one backend; dropping it removes its data.
struct Backend {
    name: &'static str,
    store: Arc<dyn Store>,
    /// Opens (again) the backend's inbox, as a restarted server would, at a store watermark.
    inbox: Box<dyn Fn(i64) -> Arc<dyn InboxStore>>,
    _dir: Arc<tempfile::TempDir>,
}

fn backends() -> Vec<Backend> {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let inbox_dir = dir.clone();
    vec![Backend {
        name: "sqlite",
        store: open_in(dir.path()).unwrap(),
        inbox: Box::new(move |watermark| open_inbox_in(inbox_dir.path(), watermark).unwrap()),
        _dir: dir,
    }]
}

/// Runs `test` on a fresh store of every backend, with an organization `acme` and a project `web`.
fn on_each_backend(test: impl Fn(&dyn Store, &Project)) {
    for b in backends() {
        let s = &*b.store;
        let org = s.create_org("acme", "Acme").unwrap();
        let (p, _) = s.create_project(org.id, "web", "Web", None).unwrap();
        eprintln!("backend: {}", b.name);
        test(s, &p);
    }
}

/// A test event with a small stored payload.
fn event(p: &Project, hash: &str, ts: i64, user: &str, release: &str) -> DigestedEvent {
    DigestedEvent {
        payload_zstd: zstd::bulk::compress(b"{\"a\":1}", 3).unwrap(),
        ..DigestedEvent::for_test(p.id, hash, ts, user, Some(release))
    }
}

#[test]
fn batches_group_count_and_are_idempotent() {
    on_each_backend(|s, p| {
        let hour = 3_600_000;
        let batch = DigestBatch {
            events: vec![
                event(p, "h1", 10 * hour + 5, "id:1", "1.0"),
                event(p, "h1", 10 * hour + 9, "id:2", "1.1"),
                event(p, "h1", 11 * hour, "id:1", "1.1"),
                event(p, "h2", 11 * hour, "id:1", "1.0"),
            ],
            kept: vec![],
            inbox_ids: vec![7],
            new_dict: None,
            ..DigestBatch::default()
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
        s.triage(h1.id, None, &Triage::Resolve { in_release: None })
            .unwrap();
        let out = s
            .apply_digest_batch(&DigestBatch {
                events: vec![event(p, "h1", 12 * hour, "id:3", "1.2")],
                kept: vec![],
                inbox_ids: vec![8],
                new_dict: None,
                ..DigestBatch::default()
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
    });
}

#[test]
fn slugs_and_names_are_validated() {
    on_each_backend(|s, p| {
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
        assert_eq!(s.all_keys().unwrap()[0].public_key.as_str().len(), 32);
    });
}

/// Stored events of an issue, through the read interface.
fn count_events(s: &dyn Store, issue_id: IssueId) -> usize {
    s.issue_events(issue_id, None, 100_000).unwrap().len()
}

fn one_issue_batches(s: &dyn Store, p: &Project, n: usize, bounds: EventBounds, per_batch: usize) {
    let events: Vec<DigestedEvent> = (0..n)
        .map(|i| event(p, "hot", 1_000 + i as i64, &format!("u{}", i % 7), "1.0"))
        .collect();
    // Inbox ids only grow: each batch acknowledges the next one.
    let first = s.digest_watermark().unwrap() + 1;
    for (next_inbox, chunk) in (first..).zip(events.chunks(per_batch)) {
        s.apply_digest_batch(&DigestBatch {
            events: chunk.to_vec(),
            inbox_ids: vec![next_inbox],
            bounds,
            ..DigestBatch::default()
        })
        .unwrap();
    }
}

#[test]
fn pins_keep_first_events_and_thinning_samples() {
    let b = EventBounds {
        first: 3,
        latest: 5,
        samples_per_doubling: 2,
    };
    let pins: Vec<u64> = (1..=40).filter(|n| b.pin(*n) != pin::NONE).collect();
    // 1..=3 first; then two samples per doubling: 4, 6, 8, 12, 16, 24, 32.
    assert_eq!(pins, vec![1, 2, 3, 4, 6, 8, 12, 16, 24, 32]);
}

#[test]
fn an_issue_stores_a_bounded_number_of_events_while_counts_stay_exact() {
    on_each_backend(|s, p| {
        let bounds = EventBounds {
            first: 3,
            latest: 5,
            samples_per_doubling: 2,
        };
        one_issue_batches(s, p, 200, bounds, 16);
        let issue = &s
            .issues(&IssueQuery {
                project_ids: vec![p.id],
                limit: 10,
                ..Default::default()
            })
            .unwrap()[0];
        assert_eq!(issue.times_seen, 200);
        assert_eq!(issue.user_count, 7);
        // Pinned: 3 first + samples up to 200 (4, 6, 8, 12, 16, 24, 32, 48, 64, 96, 128, 192) = 15;
        // plus the 5 latest ordinary ones.
        assert_eq!(count_events(s, issue.id), 15 + 5);
        let users: i64 = s
            .issue_tags(issue.id, 10)
            .unwrap()
            .iter()
            .filter(|t| t.key == "user")
            .map(|t| t.count)
            .sum();
        assert_eq!(users, 200, "tag counts cover every event");
        let project = s.project(p.id).unwrap();
        assert_eq!(project.stored_events, 20);
        let usage = s.usage(p.id, 0).unwrap();
        let (stored, evicted) = usage
            .iter()
            .fold((0, 0), |(a, b), (_, u)| (a + u.stored, b + u.evicted));
        assert_eq!((stored, evicted), (200, 180));
        // The newest event is always there.
        let newest = s.issue_event_edge(issue.id, true).unwrap().unwrap();
        assert_eq!(newest.timestamp_ms, 1_000 + 199);
    });
}

#[test]
fn retention_evicts_by_age_by_cap_and_by_disk_budget_and_returns_space() {
    on_each_backend(|s, p| {
        let unbounded = EventBounds::default();
        one_issue_batches(s, p, 300, unbounded, 100);
        let day = 86_400_000;
        // Received at ms 1000..1300 (1970): with a 1-day maximum age, "now" two days later expires all.
        let policy = RetentionPolicy {
            max_age_days: 1,
            max_events_per_project: 0,
            max_disk_bytes: 0,
            batch: 120,
        };
        let first = s.evict_step(&policy, 2 * day).unwrap();
        assert_eq!((first.by_age, first.more), (120, true));
        let second = s.evict_step(&policy, 2 * day).unwrap();
        let third = s.evict_step(&policy, 2 * day).unwrap();
        assert_eq!((second.by_age, third.by_age, third.more), (120, 60, false));
        let issue = &s
            .issues(&IssueQuery {
                project_ids: vec![p.id],
                limit: 10,
                ..Default::default()
            })
            .unwrap()[0];
        assert_eq!(issue.times_seen, 300, "retention never changes counts");
        assert_eq!(count_events(s, issue.id), 0);
        assert_eq!(s.project(p.id).unwrap().stored_events, 0);

        // Per-project cap: the oldest go first.
        one_issue_batches(s, p, 50, unbounded, 50);
        let capped = RetentionPolicy {
            max_age_days: 0,
            max_events_per_project: 20,
            ..policy
        };
        assert_eq!(s.evict_step(&capped, 0).unwrap().by_count, 30);
        assert_eq!(s.project(p.id).unwrap().stored_events, 20);
        let oldest = s.issue_event_edge(issue.id, false).unwrap().unwrap();
        assert_eq!(oldest.timestamp_ms, 1_000 + 30);

        // A per-project override beats the default.
        s.set_project_retention(
            p.id,
            RetentionOverride {
                max_age_days: None,
                max_stored_events: Some(0),
            },
        )
        .unwrap();
        assert_eq!(s.evict_step(&capped, 0).unwrap().by_count, 0);

        // Disk budget: anything over one byte evicts everything, oldest first; vacuum frees pages.
        let (used_before, _) = s.space().unwrap();
        let tiny = RetentionPolicy {
            max_disk_bytes: 1,
            max_events_per_project: 0,
            ..capped
        };
        assert_eq!(s.evict_step(&tiny, 0).unwrap().by_disk, 20);
        while s.vacuum_step().unwrap() > 0 {}
        let (used_after, free_after) = s.space().unwrap();
        assert_eq!(free_after, 0, "free pages were handed back");
        assert!(used_after <= used_before, "{used_after} > {used_before}");
        let usage = s.usage(p.id, 0).unwrap();
        let evicted: u64 = usage.iter().map(|(_, u)| u.evicted).sum();
        assert_eq!(evicted, 300 + 30 + 20);
    });
}

#[test]
fn limits_overrides_round_trip() {
    on_each_backend(|s, p| {
        let l = RateLimit {
            per_minute: Some(10),
            per_hour: None,
        };
        s.set_project_limits(p.id, l).unwrap();
        assert_eq!(s.project(p.id).unwrap().limits, l);
        let key = s.all_keys().unwrap().remove(0);
        s.set_key_limits(
            &key.public_key,
            RateLimit {
                per_minute: None,
                per_hour: Some(0),
            },
        )
        .unwrap();
        assert_eq!(
            s.key_by_public(&key.public_key)
                .unwrap()
                .unwrap()
                .limits
                .per_hour,
            Some(0)
        );
        assert!(matches!(
            s.set_key_limits(&PublicKey::parse(&"0".repeat(32)).unwrap(), l),
            Err(StoreError::NotFound("key"))
        ));
        s.record_door_usage(
            &[(
                p.id,
                0,
                UsageCounts {
                    accepted: 5,
                    rate_limited: 2,
                    ..UsageCounts::default()
                },
            )],
            &[(
                p.id,
                SpikeState {
                    since_ms: 7,
                    limit_per_minute: 100,
                },
            )],
        )
        .unwrap();
        s.record_door_usage(
            &[(
                p.id,
                0,
                UsageCounts {
                    accepted: 1,
                    ..UsageCounts::default()
                },
            )],
            &[],
        )
        .unwrap();
        assert_eq!(s.usage(p.id, 0).unwrap()[0].1.accepted, 6);
        assert_eq!(s.accepted_since(0).unwrap(), vec![(p.id, 6)]);
        assert_eq!(
            s.project(p.id).unwrap().spike,
            None,
            "the second write cleared the spike"
        );
    });
}

/// Applies one batch of events (inbox ids must only grow, so each call takes the next).
fn digest(s: &dyn Store, events: Vec<DigestedEvent>) -> BatchOutcome {
    let next = s.digest_watermark().unwrap() + 1;
    s.apply_digest_batch(&DigestBatch {
        events,
        inbox_ids: vec![next],
        ..DigestBatch::default()
    })
    .unwrap()
}

/// The issue the test events of fingerprint `hash` went to (their title names the hash).
fn issue_of(s: &dyn Store, p: &Project, hash: &str) -> Issue {
    s.issues(&IssueQuery {
        project_ids: vec![p.id],
        limit: 100,
        ..Default::default()
    })
    .unwrap()
    .into_iter()
    .find(|i| i.title == format!("Err {hash}"))
    .unwrap()
}

#[test]
fn triage_conditions_decide_what_reopens_an_issue() {
    on_each_backend(|s, p| {
        let admin = s.create_user(p.org_id, "ann", "x", Role::Owner).unwrap();
        digest(s, vec![event(p, "h", 1_000, "id:1", "1.0")]);
        let id = issue_of(s, p, "h").id;
        let status = |s: &dyn Store| {
            let i = s.issue(id).unwrap();
            (i.status, i.is_regression)
        };

        // Resolved in the next release: more events of 1.0 keep it resolved; 1.1 re-opens it.
        let resolve_next = Triage::Resolve {
            in_release: Some("1.0".into()),
        };
        s.triage(id, Some(admin.id), &resolve_next).unwrap();
        assert!(digest(s, vec![event(p, "h", 2_000, "id:1", "1.0")])
            .regressions
            .is_empty());
        assert_eq!(status(s), (IssueStatus::Resolved, false));
        assert_eq!(
            digest(s, vec![event(p, "h", 3_000, "id:1", "1.1")]).regressions,
            vec![id]
        );
        assert_eq!(status(s), (IssueStatus::Unresolved, true));
        assert_eq!(s.issue(id).unwrap().resolved_in_release, None);

        // Ignored until 2 more events: the first keeps it ignored, the second ends it.
        let seen = s.issue(id).unwrap().times_seen;
        let ignore = Triage::Ignore {
            until_ms: None,
            until_count: Some(seen + 2),
        };
        s.triage(id, Some(admin.id), &ignore).unwrap();
        digest(s, vec![event(p, "h", 4_000, "id:1", "1.1")]);
        assert_eq!(status(s).0, IssueStatus::Ignored);
        digest(s, vec![event(p, "h", 5_000, "id:1", "1.1")]);
        assert_eq!(status(s), (IssueStatus::Unresolved, false));

        // Ignored until a time that has passed: the next event ends it.
        let ignore = Triage::Ignore {
            until_ms: Some(1),
            until_count: None,
        };
        s.triage(id, None, &ignore).unwrap();
        digest(s, vec![event(p, "h", 6_000, "id:1", "1.1")]);
        assert_eq!(status(s).0, IssueStatus::Unresolved);

        s.triage(id, Some(admin.id), &Triage::Assign(Some(admin.id)))
            .unwrap();
        s.triage(id, Some(admin.id), &Triage::Comment("on it".into()))
            .unwrap();
        assert_eq!(s.issue(id).unwrap().assignee.as_deref(), Some("ann"));
        assert!(s
            .triage(id, None, &Triage::Assign(Some(UserId(999))))
            .is_err());
        let log: Vec<(ActivityKind, Option<String>)> = s
            .activity(id)
            .unwrap()
            .into_iter()
            .map(|a| (a.kind, a.user))
            .collect();
        let ann = Some("ann".to_string());
        assert_eq!(
            log,
            vec![
                (ActivityKind::Comment, ann.clone()),
                (ActivityKind::Assigned, ann.clone()),
                (ActivityKind::Unignored, None),
                (ActivityKind::Ignored, None),
                (ActivityKind::Unignored, None),
                (ActivityKind::Ignored, ann.clone()),
                (ActivityKind::Regression, None),
                (ActivityKind::Resolved, ann),
            ]
        );
    });
}

#[test]
fn merged_issues_pool_their_events_and_keep_receiving_them_and_deleted_ones_start_over() {
    on_each_backend(|s, p| {
        digest(
            s,
            vec![
                event(p, "a", 1_000, "id:1", "1.0"),
                event(p, "a", 2_000, "id:2", "1.0"),
                event(p, "b", 500, "id:3", "0.9"),
                event(p, "c", 3_000, "id:4", "1.0"),
            ],
        );
        let (a, b) = (issue_of(s, p, "a"), issue_of(s, p, "b"));
        let merged = s.merge_issues(a.id, &[a.id, b.id], None).unwrap();
        assert_eq!(
            (merged.times_seen, merged.user_count, merged.first_seen_ms),
            (3, 3, 500)
        );
        assert_eq!(merged.first_release.as_deref(), Some("0.9"));
        assert!(matches!(s.issue(b.id), Err(StoreError::NotFound(_))));
        assert_eq!(count_events(s, a.id), 3);
        // A later event of the merged fingerprint lands in the merged issue.
        digest(s, vec![event(p, "b", 4_000, "id:3", "1.0")]);
        let a = s.issue(a.id).unwrap();
        assert_eq!((a.times_seen, a.user_count), (4, 3));
        assert_eq!(s.activity(a.id).unwrap()[0].kind, ActivityKind::Merged);

        // Deleting forgets the fingerprint: the next event starts a new issue.
        let c = issue_of(s, p, "c");
        assert_eq!(s.delete_issues(&[c.id, IssueId(424242)]).unwrap(), 1);
        assert!(matches!(s.issue(c.id), Err(StoreError::NotFound(_))));
        let out = digest(s, vec![event(p, "c", 5_000, "id:4", "1.0")]);
        assert_eq!(out.new_issues.len(), 1);
        assert_ne!(out.new_issues[0], c.id);
        assert_eq!(s.project(p.id).unwrap().stored_events, 5);
    });
}

#[test]
fn batches_record_domain_events_once_in_order() {
    on_each_backend(|s, p| {
        let first = vec![
            event(p, "a", 1_000, "id:1", "1.0"),
            event(p, "b", 1_000, "id:1", "1.0"),
        ];
        digest(s, first.clone());
        let a = issue_of(s, p, "a");
        let b = issue_of(s, p, "b");
        // A replayed batch (same event ids) records nothing again.
        digest(s, first);
        s.triage(a.id, None, &Triage::Resolve { in_release: None })
            .unwrap();
        s.triage(
            b.id,
            None,
            &Triage::Ignore {
                until_ms: None,
                until_count: Some(3),
            },
        )
        .unwrap();
        let more: Vec<DigestedEvent> = (0..9)
            .map(|i| event(p, "a", 2_000 + i, "id:2", "1.1"))
            .chain([event(p, "b", 2_000, "id:1", "1.1")])
            .chain([event(p, "b", 2_001, "id:1", "1.1")])
            .collect();
        digest(s, more);
        let log = s.domain_events(0, 100).unwrap();
        let got: Vec<(IssueId, IssueEvent)> =
            log.iter().map(|e| (e.issue_id, e.what.clone())).collect();
        assert_eq!(
            got,
            vec![
                (a.id, IssueEvent::Created),
                (b.id, IssueEvent::Created),
                (a.id, IssueEvent::Resolved),
                (
                    a.id,
                    IssueEvent::Regressed {
                        release: Some("1.1".into())
                    }
                ),
                (a.id, IssueEvent::PassedCount(10)),
                (b.id, IssueEvent::Unignored),
            ]
        );
        assert!(log.windows(2).all(|w| w[0].id < w[1].id));
        assert!(log.iter().all(|e| e.project_id == p.id));
        // Reading on from a position returns only what came after it.
        assert_eq!(s.domain_events(log[2].id, 100).unwrap(), log[3..].to_vec());
        assert_eq!(s.domain_events(log[0].id, 1).unwrap(), log[1..2].to_vec());
    });
}

#[test]
fn tokens_and_sessions_belong_to_active_users_only() {
    on_each_backend(|s, p| {
        let ann = s
            .create_user(p.org_id, "ann", "hash-a", Role::Owner)
            .unwrap();
        let bob = s
            .create_user(p.org_id, "bob", "hash-b", Role::Member)
            .unwrap();
        assert!(matches!(
            s.create_user(p.org_id, "bob", "x", Role::Member),
            Err(StoreError::Conflict(_))
        ));
        let mut roles = s.roles().unwrap();
        roles.sort_by_key(|(id, _)| *id);
        assert_eq!(roles, vec![(ann.id, Role::Owner), (bob.id, Role::Member)]);
        s.create_token(bob.id, "tok-hash", "ci").unwrap();
        assert_eq!(
            s.user_by_token("tok-hash").unwrap().map(|u| u.login),
            Some("bob".into())
        );
        assert_eq!(s.user_by_token("other").unwrap(), None);
        let later = i64::MAX / 2;
        s.create_session("s1", bob.id, "csrf1", later).unwrap();
        s.create_session("s2", bob.id, "csrf2", later).unwrap();
        s.create_session("gone", bob.id, "csrf3", 1).unwrap();
        assert_eq!(
            s.session("s1").unwrap().map(|x| x.csrf),
            Some("csrf1".into())
        );
        assert!(s.session("gone").unwrap().is_none(), "expired");
        s.delete_sessions_of(bob.id, Some("s2")).unwrap();
        assert!(s.session("s1").unwrap().is_none());
        assert!(s.session("s2").unwrap().is_some(), "the kept one");
        s.delete_session("s2").unwrap();
        assert!(s.session("s2").unwrap().is_none());

        s.create_session("s3", bob.id, "csrf", later).unwrap();
        s.set_user_active("bob", false).unwrap();
        assert_eq!(s.user_by_token("tok-hash").unwrap(), None);
        assert!(s.session("s3").unwrap().is_none());
        s.set_user_active("bob", true).unwrap();
        assert_eq!(
            s.set_password_hash("bob", "hash-c").unwrap().password_hash,
            "hash-c"
        );
        assert_eq!(s.user_by_login("bob").unwrap().password_hash, "hash-c");
        assert!(matches!(
            s.user_by_login("carol"),
            Err(StoreError::NotFound(_))
        ));
    });
}

fn inbox_entry(p: &Project, n: u8) -> Entry {
    Entry {
        project_id: p.id,
        received_ms: 1_000 + n as i64,
        kind: EntryKind::Envelope,
        client_ip: None,
        encoding: Some("gzip".into()),
        meta: None,
        body: bytes::Bytes::from(vec![n; 100]),
        decoded: None,
    }
}

#[test]
fn inbox_ids_grow_above_the_watermark_and_each_entry_is_claimed_once_in_order() {
    for b in backends() {
        let org = b.store.create_org("acme", "Acme").unwrap();
        let (p, _) = b.store.create_project(org.id, "web", "Web", None).unwrap();
        let inbox = (b.inbox)(41);
        let entries: Vec<Entry> = (1..=3).map(|n| inbox_entry(&p, n)).collect();
        let ids = inbox.append(&entries.iter().collect::<Vec<_>>()).unwrap();
        assert!(
            ids[0] > 41 && ids.windows(2).all(|w| w[0] < w[1]),
            "{ids:?}"
        );
        assert_eq!(inbox.count().unwrap(), 3);
        let first = inbox.claim(2, usize::MAX).unwrap();
        assert_eq!(first.iter().map(|c| c.id).collect::<Vec<_>>(), ids[..2]);
        assert_eq!(first[0].entry.kind, EntryKind::Envelope);
        assert_eq!(first[0].body_len, 100);
        assert_eq!(inbox.body(ids[0]).unwrap(), entries[0].body);
        // A byte budget stops a claim early, but never before its first entry.
        let rest = inbox.claim(10, 1).unwrap();
        assert_eq!(rest.iter().map(|c| c.id).collect::<Vec<_>>(), ids[2..]);
        assert!(inbox.claim(10, usize::MAX).unwrap().is_empty());
        assert_eq!(inbox.forget_through(ids[1]).unwrap(), 2);
        assert_eq!(inbox.count().unwrap(), 1);
        eprintln!("backend: {}", b.name);
    }
}

#[test]
fn an_acknowledged_entry_is_never_claimed_again_and_an_unacknowledged_one_is() {
    for b in backends() {
        let s = &*b.store;
        let org = s.create_org("acme", "Acme").unwrap();
        let (p, _) = s.create_project(org.id, "web", "Web", None).unwrap();
        let inbox = (b.inbox)(s.digest_watermark().unwrap());
        let entries: Vec<Entry> = (1..=3).map(|n| inbox_entry(&p, n)).collect();
        let ids = inbox.append(&entries.iter().collect::<Vec<_>>()).unwrap();
        assert_eq!(inbox.claim(10, usize::MAX).unwrap().len(), 3);
        // The results of the first two commit with their acknowledgement; then the process
        // dies before the inbox forgets them, and before the third entry's results commit.
        let results = DigestBatch {
            events: vec![event(&p, "a", 1_000, "u", "1.0")],
            inbox_ids: ids[..2].to_vec(),
            ..DigestBatch::default()
        };
        s.apply_digest_batch(&results).unwrap();
        drop(inbox);
        let restarted = (b.inbox)(s.digest_watermark().unwrap());
        let again = restarted.claim(10, usize::MAX).unwrap();
        assert_eq!(again.iter().map(|c| c.id).collect::<Vec<_>>(), ids[2..]);
        // Replaying the acknowledged batch changes nothing.
        let replay = s.apply_digest_batch(&results).unwrap();
        assert_eq!(
            (replay.stored, replay.duplicates, replay.new_issues.len()),
            (0, 1, 0)
        );
        assert_eq!(issue_of(s, &p, "a").times_seen, 1);
        eprintln!("backend: {}", b.name);
    }
}

#[test]
fn retention_drops_domain_events_past_the_default_maximum_age() {
    on_each_backend(|s, p| {
        digest(s, vec![event(p, "a", 1_000, "u", "1.0")]);
        assert_eq!(s.domain_events(0, 10).unwrap().len(), 1);
        let policy = RetentionPolicy {
            max_age_days: 1,
            batch: 100,
            ..RetentionPolicy::default()
        };
        let now = chrono::Utc::now().timestamp_millis();
        assert_eq!(s.evict_step(&policy, now).unwrap().domain_events, 0);
        let later = s.evict_step(&policy, now + 2 * 86_400_000).unwrap();
        assert_eq!(later.domain_events, 1);
        assert!(s.domain_events(0, 10).unwrap().is_empty());
        assert_eq!(issue_of(s, p, "a").times_seen, 1, "issues stay");
    });
}

#[test]
fn alerts_are_queued_once_per_domain_event_and_their_delivery_is_recorded() {
    use crate::domain::alerts::*;
    on_each_backend(|s, p| {
        let hook = s
            .create_channel(
                p.id,
                ChannelKind::Webhook,
                "ops",
                "https://example.com/h",
                Some("k"),
            )
            .unwrap();
        let other = s
            .create_project(p.org_id, "other", "Other", None)
            .unwrap()
            .0;
        let foreign = s
            .create_channel(
                other.id,
                ChannelKind::Webhook,
                "x",
                "https://example.com/x",
                None,
            )
            .unwrap();
        let spec = |channel: ChannelId| RuleSpec {
            trigger: Trigger::NewIssue,
            filters: Filters::default(),
            channels: vec![channel],
            cooldown_ms: 0,
        };
        assert!(matches!(
            s.create_rule(p.id, &spec(foreign.id)),
            Err(StoreError::Invalid(_))
        ));
        let rule = s.create_rule(p.id, &spec(hook.id)).unwrap();
        assert_eq!(s.rules(Some(p.id)).unwrap(), vec![rule.clone()]);
        assert_eq!(s.channel(hook.id).unwrap().secret.as_deref(), Some("k"));

        digest(
            s,
            vec![
                event(p, "a", 1_000, "u", "1.0"),
                event(p, "b", 1_000, "u", "1.0"),
            ],
        );
        assert_eq!(crate::alerts::evaluate_once(s).unwrap(), 2);
        assert_eq!(
            crate::alerts::evaluate_once(s).unwrap(),
            0,
            "the cursor moved"
        );
        let due = s.due_alerts(i64::MAX, 10).unwrap();
        assert_eq!(due.len(), 2);
        assert!(due
            .iter()
            .all(|a| a.alert.rule_id == rule.id && a.state == AlertState::Pending));
        let a = issue_of(s, p, "a");
        assert!(s.last_fired(rule.id, a.id).unwrap().is_some());

        // One sent, one failed and retried later, then given up.
        s.record_attempt(due[0].id, Ok(()), None, 5).unwrap();
        s.record_attempt(due[1].id, Err("503"), Some(i64::MAX - 1), 5)
            .unwrap();
        assert!(s.due_alerts(i64::MAX - 2, 10).unwrap().is_empty());
        s.record_attempt(due[1].id, Err("still 503"), None, 6)
            .unwrap();
        let history = s.alert_history(Some(p.id), None, 10).unwrap();
        let states: Vec<(AlertState, u32, Option<&str>)> = history
            .iter()
            .map(|h| (h.state, h.attempts, h.last_error.as_deref()))
            .collect();
        assert_eq!(
            states,
            vec![
                (AlertState::Failed, 2, Some("still 503")),
                (AlertState::Sent, 1, None)
            ]
        );
        assert_eq!(s.alert_history(None, Some(a.id), 10).unwrap().len(), 1);

        // Removing a channel takes it out of its rules.
        s.delete_channel(hook.id).unwrap();
        assert!(s.rules(Some(p.id)).unwrap()[0].channels.is_empty());
        s.delete_rule(rule.id).unwrap();
        assert!(matches!(
            s.delete_rule(rule.id),
            Err(StoreError::NotFound(_))
        ));
    });
}

#[test]
fn rules_keep_their_thresholds_and_filters_and_domain_events_their_facts() {
    use crate::domain::alerts::*;
    on_each_backend(|s, p| {
        let hook = s
            .create_channel(
                p.id,
                ChannelKind::Webhook,
                "h",
                "https://example.com/h",
                None,
            )
            .unwrap();
        let spec = RuleSpec {
            trigger: Trigger::Frequency {
                events: 3,
                minutes: 5,
            },
            filters: Filters {
                environment: Some("production".into()),
                release: None,
                min_level: Some("error".into()),
                tags: vec![("region".into(), "eu".into())],
            },
            channels: vec![hook.id],
            cooldown_ms: 0,
        };
        let rule = s.create_rule(p.id, &spec).unwrap();
        assert_eq!((rule.trigger, &rule.filters), (spec.trigger, &spec.filters));
        assert_eq!(s.rules(Some(p.id)).unwrap(), vec![rule]);

        let now = chrono::Utc::now().timestamp_millis();
        let mut e = event(p, "a", now, "u1", "1.0");
        e.tags.push(("environment".into(), "production".into()));
        digest(s, vec![e]);
        let recorded = s.domain_events(0, 10).unwrap();
        assert_eq!(recorded[0].facts.level, "error");
        assert!(recorded[0]
            .facts
            .tags
            .contains(&("environment".into(), "production".into())));

        // Three more events from two more users, a minute apart.
        digest(
            s,
            vec![
                event(p, "a", now - 60_000, "u2", "1.0"),
                event(p, "a", now, "u3", "1.0"),
                event(p, "b", now, "u1", "1.0"),
            ],
        );
        let a = issue_of(s, p, "a");
        let since = now - 5 * 60_000;
        assert_eq!(s.frequent_issues(p.id, since, 3).unwrap(), vec![(a.id, 3)]);
        assert!(s.frequent_issues(p.id, since, 4).unwrap().is_empty());
        assert!(s.frequent_issues(p.id, now + 60_000, 1).unwrap().is_empty());
        assert_eq!(
            s.widely_seen_issues(p.id, since, 3).unwrap(),
            vec![(a.id, 3)]
        );
        // u2's only event is two minutes old.
        assert!(s
            .widely_seen_issues(p.id, now - 30_000, 3)
            .unwrap()
            .is_empty());
    });
}

#[test]
fn events_of_a_deleted_project_are_acknowledged_and_dropped() {
    on_each_backend(|s, p| {
        let (gone, _) = s.create_project(p.org_id, "gone", "Gone", None).unwrap();
        s.delete_project(gone.id).unwrap();
        let out = digest(
            s,
            vec![
                event(&gone, "a", 1_000, "u", "1.0"),
                event(p, "b", 1_000, "u", "1.0"),
            ],
        );
        assert_eq!(out.stored, 1, "the live project's event is stored");
        assert_eq!(issue_of(s, p, "b").times_seen, 1);
        assert!(
            s.digest_watermark().unwrap() > 0,
            "the batch was acknowledged"
        );
    });
}

#[test]
fn releases_come_from_events_and_the_api_and_keep_their_deploys() {
    on_each_backend(|s, p| {
        // An event names 1.0; the API creates 2.0 for the project.
        digest(s, vec![event(p, "a", 5_000, "u", "1.0")]);
        let one = s.release(p.org_id, "1.0").unwrap();
        assert_eq!(
            (
                one.projects.clone(),
                one.events,
                one.new_issues,
                one.created_ms
            ),
            (vec![p.id], 1, 1, 5_000)
        );
        let change = ReleaseChange {
            projects: vec![p.id],
            url: Some("https://example.com/r/2".into()),
            ..ReleaseChange::default()
        };
        let (two, created) = s.upsert_release(p.org_id, "2.0", &change, 9_000).unwrap();
        assert!(created);
        assert_eq!(
            (two.projects.clone(), two.events, two.created_ms),
            (vec![p.id], 0, 9_000)
        );
        let (_, again) = s.upsert_release(p.org_id, "2.0", &change, 9_500).unwrap();
        assert!(!again, "creating it again is no error and no copy");
        let (_, for_one) = s
            .upsert_release(p.org_id, "1.0", &ReleaseChange::default(), 9_600)
            .unwrap();
        assert!(!for_one, "an event already made 1.0");

        let finalized = s
            .update_release(
                p.org_id,
                "2.0",
                &ReleaseChange {
                    released_ms: Some(10_000),
                    status: Some(ReleaseStatus::Archived),
                    ..ReleaseChange::default()
                },
                10_000,
            )
            .unwrap();
        assert_eq!(finalized.released_ms, Some(10_000));
        assert_eq!(finalized.status, ReleaseStatus::Archived);
        assert_eq!(
            finalized.url.as_deref(),
            Some("https://example.com/r/2"),
            "kept"
        );

        let deploy = s
            .create_deploy(
                p.org_id,
                "2.0",
                &NewDeploy {
                    environment: "production".into(),
                    ..NewDeploy::default()
                },
                11_000,
            )
            .unwrap();
        assert_eq!(deploy.finished_ms, 11_000);
        assert_eq!(s.deploys(p.org_id, "2.0").unwrap(), vec![deploy.clone()]);
        assert_eq!(
            s.release(p.org_id, "2.0").unwrap().last_deploy,
            Some(deploy)
        );
        assert!(matches!(
            s.create_deploy(p.org_id, "9.9", &NewDeploy::default(), 0),
            Err(StoreError::NotFound(_))
        ));

        let listed: Vec<String> = s
            .releases(p.org_id, Some(p.id), 10)
            .unwrap()
            .into_iter()
            .map(|r| r.version)
            .collect();
        assert_eq!(listed, ["2.0", "1.0"], "newest first");

        s.delete_release(p.org_id, "2.0").unwrap();
        assert!(matches!(
            s.release(p.org_id, "2.0"),
            Err(StoreError::NotFound(_))
        ));
        assert!(s.deploys(p.org_id, "2.0").is_err());
        s.delete_release(p.org_id, "1.0").unwrap();
        assert_eq!(issue_of(s, p, "a").times_seen, 1, "events stay");
    });
}

#[test]
fn chunks_are_content_addressed_and_a_kept_bundle_drops_them() {
    on_each_backend(|s, p| {
        let a = ("a".repeat(40), b"first half".to_vec());
        let b = ("b".repeat(40), b"second half".to_vec());
        let sums = vec![a.0.clone(), b.0.clone()];
        assert_eq!(s.missing_chunks(p.org_id, &sums).unwrap(), sums);
        s.put_chunks(p.org_id, std::slice::from_ref(&a), 1).unwrap();
        s.put_chunks(p.org_id, std::slice::from_ref(&a), 2).unwrap();
        assert_eq!(
            s.missing_chunks(p.org_id, &sums).unwrap(),
            vec![b.0.clone()]
        );
        assert_eq!(s.chunk_data(p.org_id, &sums).unwrap(), None);
        s.put_chunks(p.org_id, std::slice::from_ref(&b), 3).unwrap();
        assert_eq!(
            s.chunk_data(p.org_id, &sums).unwrap(),
            Some(vec![a.1.clone(), b.1.clone()])
        );
        let other_org = s.create_org("other", "Other").unwrap();
        assert_eq!(
            s.missing_chunks(other_org.id, &sums).unwrap(),
            sums,
            "per organization"
        );

        let bundle = NewBundle {
            org_id: p.org_id,
            checksum: "c".repeat(40),
            projects: vec![p.id],
            release: Some("web@1".into()),
            dist: None,
            manifest: Manifest {
                files: vec![BundleFile {
                    path: "files/_/_/app.min.js".into(),
                    url: "~/app.min.js".into(),
                    kind: "minified_source".into(),
                    debug_id: Some("151fbe13-4ed4-5497-b9e0-eafca98aaa7e".into()),
                    sourcemap: Some("app.min.js.map".into()),
                    size: 14,
                }],
                ..Manifest::default()
            },
        };
        s.create_bundle(&bundle, b"first halfsecond half", &sums, 4)
            .unwrap();
        s.create_bundle(&bundle, b"first halfsecond half", &sums, 5)
            .unwrap();
        assert!(s.has_bundle(p.org_id, &bundle.checksum).unwrap());
        assert_eq!(
            s.missing_chunks(p.org_id, &sums).unwrap(),
            sums,
            "chunks dropped"
        );
        let files = s.bundle_files(p.org_id, Some("web@1")).unwrap();
        assert_eq!(files.len(), 1, "kept once");
        assert_eq!(files[0].2, bundle.manifest.files[0]);
        assert!(s.bundle_files(p.org_id, Some("web@2")).unwrap().is_empty());
        // The same bundle uploaded for another project serves it too.
        let (api, _) = s.create_project(p.org_id, "api", "API", None).unwrap();
        assert!(s
            .files_of_release(api.id, "web@1", None)
            .unwrap()
            .is_empty());
        s.link_bundle(p.org_id, &bundle.checksum, &[api.id])
            .unwrap();
        s.link_bundle(p.org_id, &bundle.checksum, &[api.id])
            .unwrap();
        assert_eq!(s.files_of_release(api.id, "web@1", None).unwrap().len(), 1);
        assert_eq!(
            s.files_by_debug_id(api.id, "151FBE13-4ED4-5497-B9E0-EAFCA98AAA7E")
                .unwrap()
                .len(),
            1,
            "debug ids are matched in any case"
        );
    });
}

#[test]
fn retention_bounds_notification_history_and_abandoned_upload_chunks() {
    use crate::domain::alerts::*;
    on_each_backend(|s, p| {
        let hook = s
            .create_channel(
                p.id,
                ChannelKind::Webhook,
                "h",
                "https://example.com/h",
                None,
            )
            .unwrap();
        let rule = s
            .create_rule(
                p.id,
                &RuleSpec {
                    trigger: Trigger::NewIssue,
                    filters: Filters::default(),
                    channels: vec![hook.id],
                    cooldown_ms: 0,
                },
            )
            .unwrap();
        digest(
            s,
            vec![
                event(p, "a", 1_000, "u", "1.0"),
                event(p, "b", 1_000, "u", "1.0"),
            ],
        );
        let a = issue_of(s, p, "a");
        let b = issue_of(s, p, "b");
        let alert = |issue: IssueId| NewAlert {
            rule_id: rule.id,
            channel_id: hook.id,
            project_id: p.id,
            issue_id: issue,
            event_id: 0,
            what: crate::domain::rules::IssueEvent::Created,
        };
        // Both written at time 1000; one sent, one still pending.
        s.enqueue_alerts(0, &[alert(a.id), alert(b.id)], 1_000)
            .unwrap();
        let due = s.due_alerts(i64::MAX, 10).unwrap();
        s.record_attempt(due[0].id, Ok(()), None, 2_000).unwrap();
        s.put_chunks(p.org_id, &[("a".repeat(40), b"x".to_vec())], 1_000)
            .unwrap();

        let policy = RetentionPolicy {
            batch: 100,
            ..RetentionPolicy::default()
        };
        let day = 86_400_000;
        let soon = s.evict_step(&policy, 1_000 + day / 2).unwrap();
        assert_eq!((soon.upload_chunks, soon.alert_history), (0, 0));
        let later = s.evict_step(&policy, 1_000 + 2 * day).unwrap();
        assert_eq!(later.upload_chunks, 1, "an upload cut short a day ago");
        assert_eq!(later.alert_history, 0);
        let much_later = s.evict_step(&policy, 1_000 + 91 * day).unwrap();
        assert_eq!(
            much_later.alert_history, 1,
            "the sent one; the pending one stays"
        );
        let left = s.alert_history(Some(p.id), None, 10).unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].state, AlertState::Pending);
    });
}

#[test]
fn deleting_a_release_deletes_its_source_maps() {
    on_each_backend(|s, p| {
        let bundle = |release: &str, checksum: char| NewBundle {
            org_id: p.org_id,
            checksum: checksum.to_string().repeat(40),
            projects: vec![p.id],
            release: Some(release.into()),
            dist: None,
            manifest: Manifest {
                files: vec![BundleFile {
                    path: "files/a.js".into(),
                    url: "~/a.js".into(),
                    kind: "minified_source".into(),
                    debug_id: None,
                    sourcemap: None,
                    size: 1,
                }],
                ..Manifest::default()
            },
        };
        s.upsert_release(p.org_id, "web@1", &ReleaseChange::default(), 0)
            .unwrap();
        s.create_bundle(&bundle("web@1", 'a'), b"x", &[], 0)
            .unwrap();
        s.create_bundle(&bundle("web@2", 'b'), b"y", &[], 0)
            .unwrap();
        s.delete_release(p.org_id, "web@1").unwrap();
        assert!(!s.has_bundle(p.org_id, &"a".repeat(40)).unwrap());
        assert!(s.files_of_release(p.id, "web@1", None).unwrap().is_empty());
        assert_eq!(s.files_of_release(p.id, "web@2", None).unwrap().len(), 1);

        // A bundle whose projects are all gone goes at the next retention step.
        s.delete_project(p.id).unwrap();
        let policy = RetentionPolicy {
            batch: 100,
            ..RetentionPolicy::default()
        };
        let step = s.evict_step(&policy, 0).unwrap();
        assert_eq!(step.upload_chunks, 1);
        assert!(!s.has_bundle(p.org_id, &"b".repeat(40)).unwrap());
    });
}
