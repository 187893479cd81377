//! The SQLite schema and its migrations, applied in order on open (`PRAGMA user_version`
//! records how far a database has come). Never edit a shipped migration: add one.

/// Migrations, oldest first. Index + 1 is the `user_version` after applying it.
pub const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;

CREATE TABLE organizations (
    id INTEGER PRIMARY KEY,
    slug TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);

CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    login TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    is_active INTEGER NOT NULL DEFAULT 1,
    created_ms INTEGER NOT NULL
);

CREATE TABLE memberships (
    org_id INTEGER NOT NULL,
    user_id INTEGER NOT NULL,
    role TEXT NOT NULL,
    PRIMARY KEY (org_id, user_id)
) WITHOUT ROWID;

CREATE TABLE api_tokens (
    id INTEGER PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    user_id INTEGER NOT NULL,
    label TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);

CREATE TABLE projects (
    id INTEGER PRIMARY KEY,
    org_id INTEGER NOT NULL,
    slug TEXT NOT NULL,
    name TEXT NOT NULL,
    platform TEXT,
    next_short_id INTEGER NOT NULL DEFAULT 1,
    created_ms INTEGER NOT NULL,
    UNIQUE (org_id, slug)
);

CREATE TABLE project_keys (
    id INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL,
    public_key TEXT NOT NULL UNIQUE,
    label TEXT NOT NULL,
    is_active INTEGER NOT NULL DEFAULT 1,
    created_ms INTEGER NOT NULL
);

CREATE TABLE issues (
    id INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL,
    short_id INTEGER NOT NULL,
    title TEXT NOT NULL,
    culprit TEXT NOT NULL,
    kind TEXT NOT NULL,
    metadata TEXT NOT NULL,
    level TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'unresolved',
    is_regression INTEGER NOT NULL DEFAULT 0,
    first_seen_ms INTEGER NOT NULL,
    last_seen_ms INTEGER NOT NULL,
    times_seen INTEGER NOT NULL,
    user_count INTEGER NOT NULL DEFAULT 0,
    first_release TEXT,
    last_release TEXT,
    platform TEXT NOT NULL,
    logger TEXT
);
-- One index per issue-list sort, per project and across projects.
CREATE INDEX issues_project_last_seen ON issues (project_id, last_seen_ms);
CREATE INDEX issues_project_first_seen ON issues (project_id, first_seen_ms);
CREATE INDEX issues_project_times_seen ON issues (project_id, times_seen);
CREATE INDEX issues_project_user_count ON issues (project_id, user_count);
CREATE INDEX issues_project_status ON issues (project_id, status, last_seen_ms);
CREATE INDEX issues_last_seen ON issues (last_seen_ms);

-- Many fingerprint hashes may point at one issue (merges, algorithm upgrades).
CREATE TABLE issue_hashes (
    project_id INTEGER NOT NULL,
    hash TEXT NOT NULL,
    issue_id INTEGER NOT NULL,
    algorithm TEXT NOT NULL,
    grouping TEXT NOT NULL,
    PRIMARY KEY (project_id, hash)
) WITHOUT ROWID;

CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL,
    event_id BLOB NOT NULL,
    issue_id INTEGER NOT NULL,
    timestamp_ms INTEGER NOT NULL,
    received_ms INTEGER NOT NULL,
    grouping_hash TEXT NOT NULL,
    grouping_variant TEXT NOT NULL,
    payload BLOB NOT NULL
);
CREATE UNIQUE INDEX events_project_event_id ON events (project_id, event_id);
CREATE INDEX events_issue ON events (issue_id, timestamp_ms);

CREATE TABLE issue_hourly (
    issue_id INTEGER NOT NULL,
    hour_ms INTEGER NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (issue_id, hour_ms)
) WITHOUT ROWID;

CREATE TABLE issue_tags (
    issue_id INTEGER NOT NULL,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    count INTEGER NOT NULL,
    first_seen_ms INTEGER NOT NULL,
    last_seen_ms INTEGER NOT NULL,
    PRIMARY KEY (issue_id, key, value)
) WITHOUT ROWID;
CREATE INDEX issue_tags_lookup ON issue_tags (key, value, issue_id);

CREATE TABLE releases (
    project_id INTEGER NOT NULL,
    version TEXT NOT NULL,
    first_seen_ms INTEGER NOT NULL,
    last_seen_ms INTEGER NOT NULL,
    new_issues INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (project_id, version)
) WITHOUT ROWID;

-- zstd dictionaries trained on this installation's own events; a frame names its dictionary
-- by id in its header, so events need no column for it.
CREATE TABLE zstd_dicts (
    dict_id INTEGER PRIMARY KEY,
    created_ms INTEGER NOT NULL,
    dict BLOB NOT NULL
);

-- Attachments, user feedback, sessions and client reports, kept for the features that will read them.
CREATE TABLE kept_items (
    id INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL,
    event_id BLOB,
    item_type TEXT NOT NULL,
    filename TEXT,
    received_ms INTEGER NOT NULL,
    payload BLOB NOT NULL
);
CREATE INDEX kept_items_project ON kept_items (project_id, item_type, id);
"#,
    // 2: quotas, usage, client reports and retention bookkeeping.
    r#"
-- Rate-limit overrides: NULL follows [quotas] in phoebe.toml, 0 means unlimited.
ALTER TABLE projects ADD COLUMN events_per_minute INTEGER;
ALTER TABLE projects ADD COLUMN events_per_hour INTEGER;
ALTER TABLE project_keys ADD COLUMN events_per_minute INTEGER;
ALTER TABLE project_keys ADD COLUMN events_per_hour INTEGER;
-- Set while spike protection throttles the project (written by the server every few seconds).
ALTER TABLE projects ADD COLUMN spike_since_ms INTEGER;
ALTER TABLE projects ADD COLUMN spike_limit_per_minute INTEGER;
-- Retention overrides: NULL follows [retention].
ALTER TABLE projects ADD COLUMN max_age_days INTEGER;
ALTER TABLE projects ADD COLUMN max_stored_events INTEGER;
-- Stored event rows, kept exact by digest and eviction so limits need no count(*).
ALTER TABLE projects ADD COLUMN stored_events INTEGER NOT NULL DEFAULT 0;
UPDATE projects SET stored_events = (SELECT count(*) FROM events e WHERE e.project_id = projects.id);

-- 0: an ordinary event, evicted once the issue has more than [retention] latest_events_per_issue
-- newer ones; 1: one of the issue's first events; 2: a sample. Pinned events leave only by age,
-- the per-project cap or the disk budget.
ALTER TABLE events ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0;
ALTER TABLE issues ADD COLUMN unpinned_stored INTEGER NOT NULL DEFAULT 0;
UPDATE issues SET unpinned_stored = (SELECT count(*) FROM events e WHERE e.issue_id = issues.id);
-- Oldest-first eviction within a project.
CREATE INDEX events_project ON events (project_id, id);

CREATE TABLE usage_hourly (
    project_id INTEGER NOT NULL,
    hour_ms INTEGER NOT NULL,
    accepted INTEGER NOT NULL DEFAULT 0,
    rate_limited INTEGER NOT NULL DEFAULT 0,
    over_quota INTEGER NOT NULL DEFAULT 0,
    spike_protected INTEGER NOT NULL DEFAULT 0,
    stored INTEGER NOT NULL DEFAULT 0,
    evicted INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (project_id, hour_ms)
) WITHOUT ROWID;

-- What the SDKs reported dropping on their side (client reports), per day.
CREATE TABLE client_discards (
    project_id INTEGER NOT NULL,
    day_ms INTEGER NOT NULL,
    reason TEXT NOT NULL,
    category TEXT NOT NULL,
    quantity INTEGER NOT NULL,
    PRIMARY KEY (project_id, day_ms, reason, category)
) WITHOUT ROWID;
"#,
    // 3: finding an issue's oldest ordinary events without reading all of its events; events
    // stored before event bounds existed keep each issue's first ten (the default) pinned.
    r#"
CREATE INDEX events_unpinned ON events (issue_id, id) WHERE pinned = 0;
UPDATE events SET pinned = 1 WHERE id IN (
    SELECT id FROM (SELECT id, row_number() OVER (PARTITION BY issue_id ORDER BY id) AS n FROM events)
    WHERE n <= 10);
UPDATE issues SET unpinned_stored =
    (SELECT count(*) FROM events e WHERE e.issue_id = issues.id AND e.pinned = 0);
"#,
    // 4: dashboard sessions. Only a hash of the cookie's secret is kept, as for API tokens, so a
    // copy of the database cannot be used to log in.
    r#"
CREATE TABLE sessions (
    id_hash TEXT PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX sessions_user ON sessions (user_id);
"#,
    // 5: triage beyond a status: who owns an issue, until when it stays ignored, which release
    // a "resolved in the next release" waits for, and the activity log of everything done to it.
    r#"
ALTER TABLE issues ADD COLUMN assignee_id INTEGER;
ALTER TABLE issues ADD COLUMN ignore_until_ms INTEGER;
ALTER TABLE issues ADD COLUMN ignore_until_count INTEGER;
ALTER TABLE issues ADD COLUMN resolved_in_release TEXT;
CREATE TABLE activity (
    id INTEGER PRIMARY KEY,
    issue_id INTEGER NOT NULL,
    user_id INTEGER,
    kind TEXT NOT NULL,
    data TEXT NOT NULL DEFAULT '{}',
    created_ms INTEGER NOT NULL
);
CREATE INDEX activity_issue ON activity (issue_id, id);
"#,
    // 6: domain events (an issue was created, regressed, unignored, passed a count), written in
    // the transaction of the batch that caused them, for alerts to read in order.
    r#"
CREATE TABLE domain_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id INTEGER NOT NULL,
    issue_id INTEGER NOT NULL,
    kind TEXT NOT NULL,
    data TEXT NOT NULL DEFAULT '{}',
    created_ms INTEGER NOT NULL
);
"#,
    // 7: alerts. Channels and rules per project; the outbox holds every notification, one per
    // rule, event and channel, with its delivery attempts; `alerts_cursor` in `meta` is the last
    // domain event turned into notifications, moved in the same transaction as they are written.
    r#"
CREATE TABLE alert_channels (
    id INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    target TEXT NOT NULL,
    secret TEXT,
    created_ms INTEGER NOT NULL
);
CREATE INDEX alert_channels_project ON alert_channels (project_id);
CREATE TABLE alert_rules (
    id INTEGER PRIMARY KEY,
    project_id INTEGER NOT NULL,
    trigger TEXT NOT NULL,
    channels TEXT NOT NULL,
    cooldown_ms INTEGER NOT NULL DEFAULT 0,
    created_ms INTEGER NOT NULL
);
CREATE INDEX alert_rules_project ON alert_rules (project_id);
CREATE TABLE alert_outbox (
    id INTEGER PRIMARY KEY,
    rule_id INTEGER NOT NULL,
    channel_id INTEGER NOT NULL,
    project_id INTEGER NOT NULL,
    issue_id INTEGER NOT NULL,
    event_id INTEGER NOT NULL,
    kind TEXT NOT NULL,
    data TEXT NOT NULL DEFAULT '{}',
    state TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_ms INTEGER NOT NULL,
    last_error TEXT,
    created_ms INTEGER NOT NULL,
    sent_ms INTEGER
);
CREATE INDEX alert_outbox_due ON alert_outbox (next_attempt_ms) WHERE state = 'pending';
CREATE INDEX alert_outbox_fired ON alert_outbox (rule_id, issue_id, created_ms);
CREATE INDEX alert_outbox_issue ON alert_outbox (issue_id, id);
-- Domain events recorded before alerts existed are history, not news.
INSERT INTO meta (key, value)
    SELECT 'alerts_cursor', CAST(coalesce(max(id), 0) AS TEXT) FROM domain_events
    WHERE true ON CONFLICT (key) DO NOTHING;
"#,
    // 8: rules that count and filter. Threshold rules (events or distinct users within a
    // window) keep their count and window; every rule keeps its filters as JSON; each domain
    // event keeps the level and tags of the event behind it for those filters; events per issue
    // and minute of receipt, kept a day, are what frequency rules count.
    r#"
ALTER TABLE alert_rules ADD COLUMN threshold INTEGER;
ALTER TABLE alert_rules ADD COLUMN window_minutes INTEGER;
ALTER TABLE alert_rules ADD COLUMN filters TEXT NOT NULL DEFAULT '{}';
ALTER TABLE domain_events ADD COLUMN facts TEXT NOT NULL DEFAULT '{}';
CREATE TABLE issue_minutes (
    minute_ms INTEGER NOT NULL,
    issue_id INTEGER NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (minute_ms, issue_id)
) WITHOUT ROWID;
"#,
    // 9: where users get email: alerts to "the project's members" go to these addresses.
    r#"
ALTER TABLE users ADD COLUMN email TEXT;
"#,
    // 10: summary emails: who gets one for which project, how often, and up to when the last
    // one reported.
    r#"
CREATE TABLE alert_summaries (
    user_id INTEGER NOT NULL,
    project_id INTEGER NOT NULL,
    period TEXT NOT NULL,
    last_sent_ms INTEGER NOT NULL,
    PRIMARY KEY (user_id, project_id)
) WITHOUT ROWID;
"#,
    // 11: releases as sentry-cli and the API manage them. `releases` keeps what events say per
    // project (now with an event count); `release_info` what was said about a version of an
    // organization (created, released, link, archived); `release_projects` the projects it
    // was created for; `deploys` where it went.
    r#"
ALTER TABLE releases ADD COLUMN events INTEGER NOT NULL DEFAULT 0;
CREATE TABLE release_info (
    org_id INTEGER NOT NULL,
    version TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    released_ms INTEGER,
    started_ms INTEGER,
    url TEXT,
    status TEXT NOT NULL DEFAULT 'open',
    PRIMARY KEY (org_id, version)
) WITHOUT ROWID;
CREATE TABLE release_projects (
    org_id INTEGER NOT NULL,
    version TEXT NOT NULL,
    project_id INTEGER NOT NULL,
    PRIMARY KEY (org_id, version, project_id)
) WITHOUT ROWID;
CREATE TABLE deploys (
    id INTEGER PRIMARY KEY,
    org_id INTEGER NOT NULL,
    version TEXT NOT NULL,
    environment TEXT NOT NULL,
    name TEXT,
    url TEXT,
    started_ms INTEGER,
    finished_ms INTEGER NOT NULL
);
CREATE INDEX deploys_release ON deploys (org_id, version, id);
"#,
    // 12: source-map uploads. Chunks are kept per organization by their SHA-1, zstd-compressed,
    // until a bundle is assembled from them; an artifact bundle is kept whole (zstd) with its
    // manifest's files indexed by URL and debug id, for the release and projects it was
    // uploaded for.
    r#"
CREATE TABLE upload_chunks (
    org_id INTEGER NOT NULL,
    checksum TEXT NOT NULL,
    size INTEGER NOT NULL,
    data BLOB NOT NULL,
    created_ms INTEGER NOT NULL,
    PRIMARY KEY (org_id, checksum)
) WITHOUT ROWID;
CREATE TABLE artifact_bundles (
    id INTEGER PRIMARY KEY,
    org_id INTEGER NOT NULL,
    checksum TEXT NOT NULL,
    release TEXT,
    dist TEXT,
    debug_id TEXT,
    size INTEGER NOT NULL,
    data BLOB NOT NULL,
    created_ms INTEGER NOT NULL,
    UNIQUE (org_id, checksum)
);
CREATE TABLE artifact_bundle_projects (
    bundle_id INTEGER NOT NULL,
    project_id INTEGER NOT NULL,
    PRIMARY KEY (bundle_id, project_id)
) WITHOUT ROWID;
CREATE TABLE artifact_files (
    bundle_id INTEGER NOT NULL,
    path TEXT NOT NULL,
    url TEXT NOT NULL,
    kind TEXT NOT NULL,
    debug_id TEXT,
    sourcemap TEXT,
    size INTEGER NOT NULL,
    PRIMARY KEY (bundle_id, path)
) WITHOUT ROWID;
CREATE INDEX artifact_files_debug_id ON artifact_files (debug_id) WHERE debug_id IS NOT NULL;
CREATE INDEX artifact_files_url ON artifact_files (url);
"#,
];
