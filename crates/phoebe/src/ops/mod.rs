//! Operations people perform, whatever face they use: the REST API ([`crate::api`]), the CLI
//! ([`crate::cli`]) and later the dashboard all call these and nothing below them.
//!
//! API Boundary. Architecture invariant: `api` and `cli` call `ops`, never `store`.

pub mod alerts;
pub mod artifacts;
mod caller;
pub mod limits;
pub mod query;
pub mod releases;
pub mod session;
pub mod triage;

use std::sync::Arc;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::domain::*;
use crate::store::*;

pub use caller::{Caller, Permission};

/// Why an operation failed, in terms a person can act on.
#[derive(Debug, Error)]
pub enum OpsError {
    /// The thing does not exist.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request is wrong; the message says how.
    #[error("{0}")]
    Invalid(String),
    /// A name is taken.
    #[error("{0} already exists")]
    Conflict(String),
    /// The caller may not do this; the message says who may.
    #[error("{0}")]
    Forbidden(String),
    /// Storage failed.
    #[error("{0}")]
    Store(String),
}

impl From<StoreError> for OpsError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => OpsError::NotFound(what),
            StoreError::Conflict(what) => OpsError::Conflict(what),
            StoreError::Invalid(msg) => OpsError::Invalid(msg),
            StoreError::Database(msg) => OpsError::Store(msg),
        }
    }
}

impl From<query::QueryError> for OpsError {
    fn from(e: query::QueryError) -> Self {
        OpsError::Invalid(e.to_string())
    }
}

/// Event counts per bucket: (bucket start in unix seconds, count), oldest first.
pub type Series = Vec<(i64, i64)>;

/// The meta key under which `serve` records the URL it listens on.
const SERVED_URL_KEY: &str = "served_public_url";

/// Result of an operation.
pub type OpsResult<T> = Result<T, OpsError>;

/// What a first start created.
#[derive(Debug, Clone)]
pub struct Bootstrap {
    /// The organization.
    pub org: Org,
    /// The first project.
    pub project: Project,
    /// Its DSN.
    pub dsn: String,
    /// The admin's login.
    pub admin_login: String,
    /// The generated admin password, when none was given (printed once, never stored in clear).
    pub generated_password: Option<String>,
}

/// A request for a page of issues, as the API and CLI receive it.
#[derive(Debug, Clone, Default)]
pub struct IssueListRequest {
    /// Restrict to one project (slug or id) of the organization.
    pub project: Option<String>,
    /// Organization slug (default: the only/first one).
    pub org: Option<String>,
    /// Search query; `None` means Sentry's default `is:unresolved`.
    pub query: Option<String>,
    /// `24h`, `14d` ...: only issues seen in that period.
    pub stats_period: Option<String>,
    /// `date`, `new`, `freq`, `user`.
    pub sort: Option<String>,
    /// Opaque cursor from a previous page.
    pub cursor: Option<String>,
    /// Page size (1-100, default 25).
    pub limit: Option<i64>,
}

/// A neighbouring page: its cursor and whether it has rows (`None` on an empty page).
pub type PageLink = Option<(String, bool)>;

/// One page of events.
#[derive(Debug, Clone)]
pub struct EventPage {
    /// The events, newest first.
    pub events: Vec<StoredEvent>,
    /// The next page.
    pub next: PageLink,
    /// The previous page.
    pub previous: PageLink,
}

/// One page of issues.
#[derive(Debug, Clone)]
pub struct IssuePage {
    /// The issues.
    pub issues: Vec<Issue>,
    /// Page size asked for.
    pub limit: i64,
    /// The next page.
    pub next: PageLink,
    /// The previous page.
    pub previous: PageLink,
}

/// The operations, bound to one store and acting for one [`Caller`] (see [`Ops::acting_as`]).
#[derive(Clone)]
pub struct Ops {
    store: Arc<dyn Store>,
    caller: Caller,
    /// Reaches alert channels (tests and URL checks), as `[alerts]` configures it.
    outbound: crate::alerts::Outbound,
    public_url: String,
    policy: Arc<limits::Policy>,
    /// Counts issue changes made through this process (triage, merge, delete), so open
    /// dashboards can refresh; shared by every clone.
    issue_changes: Arc<std::sync::atomic::AtomicU64>,
}

/// The longest `statsPeriod` accepted: 90 days of hourly buckets is already 2,160 points.
pub const MAX_PERIOD_MS: i64 = 90 * 86_400_000;

/// Parses Sentry's `statsPeriod` (`90m`, `24h`, `14d`, `2w`) into milliseconds; at most 90 days.
pub fn parse_period_ms(s: &str) -> Option<i64> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit())?);
    let n: i64 = num.parse().ok()?;
    let unit_ms = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        _ => return None,
    };
    n.checked_mul(unit_ms)
        .filter(|ms| (1..=MAX_PERIOD_MS).contains(ms))
}

fn random_hex(bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect()
}

/// Hashes a password for storage (argon2id, default parameters).
pub fn hash_password(password: &str) -> OpsResult<String> {
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>())
        .map_err(|e| OpsError::Invalid(format!("cannot make a salt: {e}")))?;
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| OpsError::Invalid(format!("cannot hash password: {e}")))
}

/// Checks a password against a stored hash.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

fn check_password(password: &str) -> OpsResult<()> {
    if password.chars().count() < 8 {
        return Err(OpsError::Invalid(
            "a password needs at least 8 characters".into(),
        ));
    }
    Ok(())
}

fn token_hash(token: &str) -> String {
    let digest = Sha256::digest(token.trim().as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

impl Ops {
    /// Operations on `store` for Phoebe itself ([`Caller::System`], which may only start up and
    /// check credentials); `public_url` is how SDKs and people reach this server.
    pub fn new(store: Arc<dyn Store>, public_url: &str) -> Ops {
        Ops {
            store,
            caller: Caller::System,
            outbound: crate::alerts::Outbound::new(std::time::Duration::from_secs(10), false),
            public_url: public_url.trim_end_matches('/').to_string(),
            policy: Arc::default(),
            issue_changes: Arc::default(),
        }
    }

    /// Operations whose DSNs name the URL `phoebe serve` last recorded (see
    /// [`Ops::record_served_url`]), else `fallback`: so `phoebe serve --bind 0.0.0.0:9000` and a
    /// later `phoebe project create` agree without configuration.
    pub fn with_served_url(store: Arc<dyn Store>, fallback: &str) -> OpsResult<Ops> {
        let url = store
            .meta(SERVED_URL_KEY)?
            .unwrap_or_else(|| fallback.to_string());
        Ok(Ops::new(store, &url))
    }

    /// These operations reaching alert channels with `outbound`.
    pub fn with_outbound(mut self, outbound: crate::alerts::Outbound) -> Ops {
        self.outbound = outbound;
        self
    }

    /// The same operations on behalf of `caller`.
    pub fn acting_as(&self, caller: Caller) -> Ops {
        Ops {
            caller,
            ..self.clone()
        }
    }

    /// On whose behalf these operations run.
    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    /// Refuses with a message that says who may, unless the caller may do what `p` covers.
    fn allow(&self, p: Permission) -> OpsResult<()> {
        match self.caller.may(p) {
            true => Ok(()),
            false => Err(OpsError::Forbidden(self.caller.refusal(p))),
        }
    }

    /// The caller for a user who proved who they are (token or session): a member with their
    /// role in the organization.
    fn member(&self, user: User) -> OpsResult<Caller> {
        let role = self
            .store
            .roles()?
            .into_iter()
            .find(|(id, _)| *id == user.id)
            .map_or(Role::Member, |(_, r)| r);
        Ok(Caller::Member { user, role })
    }

    /// Records this server's public URL for [`Ops::with_served_url`].
    pub fn record_served_url(&self) -> OpsResult<()> {
        Ok(self.store.set_meta(SERVED_URL_KEY, &self.public_url)?)
    }

    /// The public base URL.
    pub fn public_url(&self) -> &str {
        &self.public_url
    }

    /// The DSN of a key: `{scheme}://{key}@{host}{prefix}/{project}`.
    pub fn dsn(&self, key: &ProjectKey) -> String {
        let (scheme, rest) = self
            .public_url
            .split_once("://")
            .unwrap_or(("http", &self.public_url));
        format!("{scheme}://{}@{rest}/{}", key.public_key, key.project_id)
    }

    /// On an empty database: an organization, an admin and a first project. `None` otherwise.
    pub fn bootstrap(
        &self,
        admin_login: &str,
        admin_password: Option<&str>,
    ) -> OpsResult<Option<Bootstrap>> {
        if !self.store.orgs()?.is_empty() {
            return Ok(None);
        }
        let org = self.store.create_org("phoebe", "Phoebe")?;
        let generated = admin_password.is_none().then(|| random_hex(12));
        let password = admin_password
            .map(str::to_string)
            .or_else(|| generated.clone())
            .unwrap_or_default();
        self.store
            .create_user(org.id, admin_login, &hash_password(&password)?, Role::Owner)?;
        let (project, key) = self
            .store
            .create_project(org.id, "default", "Default", None)?;
        self.add_default_alerts(&project)?;
        let dsn = self.dsn(&key);
        Ok(Some(Bootstrap {
            org,
            project,
            dsn,
            admin_login: admin_login.into(),
            generated_password: generated,
        }))
    }

    fn org(&self, slug: Option<&str>) -> OpsResult<Org> {
        let orgs = self.store.orgs()?;
        match slug {
            Some(s) => orgs
                .into_iter()
                .find(|o| o.slug == s)
                .ok_or(OpsError::NotFound("organization")),
            None => orgs.into_iter().next().ok_or_else(|| {
                OpsError::Invalid("no organization yet: run `phoebe serve` once".into())
            }),
        }
    }

    /// All organizations.
    pub fn orgs(&self) -> OpsResult<Vec<Org>> {
        self.allow(Permission::Read)?;
        Ok(self.store.orgs()?)
    }

    /// Creates a project and returns it with its DSN.
    pub fn create_project(
        &self,
        org: Option<&str>,
        slug: &str,
        name: Option<&str>,
        platform: Option<&str>,
    ) -> OpsResult<(Project, String)> {
        self.allow(Permission::ManageProjects)?;
        let org = self.org(org)?;
        let (project, key) =
            self.store
                .create_project(org.id, slug, name.unwrap_or(slug), platform)?;
        self.add_default_alerts(&project)?;
        Ok((project, self.dsn(&key)))
    }

    /// A new project's starting rules when a mail server is configured: new issues and
    /// regressions, by email to the organization's members.
    fn add_default_alerts(&self, project: &Project) -> OpsResult<()> {
        use crate::domain::alerts::{ChannelKind, Filters, RuleSpec, Trigger, MEMBERS};
        if self.outbound.smtp().is_none() {
            return Ok(());
        }
        let channel =
            self.store
                .create_channel(project.id, ChannelKind::Email, "Members", MEMBERS, None)?;
        for trigger in [Trigger::NewIssue, Trigger::Regression] {
            self.store.create_rule(
                project.id,
                &RuleSpec {
                    trigger,
                    filters: Filters::default(),
                    channels: vec![channel.id],
                    cooldown_ms: 0,
                },
            )?;
        }
        Ok(())
    }

    /// Projects with their keys.
    pub fn projects(&self) -> OpsResult<Vec<(Project, Vec<ProjectKey>)>> {
        self.allow(Permission::Read)?;
        let projects = self.store.projects()?;
        projects
            .into_iter()
            .map(|p| {
                let keys = self.store.project_keys(p.id)?;
                Ok((p, keys))
            })
            .collect()
    }

    /// A project's DSN keys.
    pub fn project_keys(&self, project: &Project) -> OpsResult<Vec<ProjectKey>> {
        self.allow(Permission::Read)?;
        Ok(self.store.project_keys(project.id)?)
    }

    /// One project by organization and slug (or id).
    pub fn project(&self, org: &str, project: &str) -> OpsResult<Project> {
        self.allow(Permission::Read)?;
        Ok(self.store.project_by_slug(org, project)?)
    }

    /// One project by id.
    pub fn project_by_id(&self, id: ProjectId) -> OpsResult<Project> {
        self.allow(Permission::Read)?;
        Ok(self.store.project(id)?)
    }

    /// Finds a project by slug or id in any organization (the CLI's `--project`).
    pub fn find_project(&self, name: &str) -> OpsResult<Project> {
        self.allow(Permission::Read)?;
        self.store
            .projects()?
            .into_iter()
            .find(|p| p.slug == name || p.id.to_string() == name)
            .ok_or(OpsError::NotFound("project"))
    }

    /// Adds a DSN key to a project (by slug or id) and returns it with its DSN.
    pub fn create_key(&self, project: &str, label: &str) -> OpsResult<(ProjectKey, String)> {
        self.allow(Permission::ManageProjects)?;
        let p = self.find_project(project)?;
        let key = self.store.create_key(p.id, label)?;
        let dsn = self.dsn(&key);
        Ok((key, dsn))
    }

    /// Enables or disables a DSN key (by its public part or its whole DSN). A running server
    /// notices within [`crate::ingest::keys::REFRESH_INTERVAL`].
    pub fn set_key_active(&self, key_or_dsn: &str, active: bool) -> OpsResult<ProjectKey> {
        self.allow(Permission::ManageProjects)?;
        Ok(self
            .store
            .set_key_active(&limits::public_key_of(key_or_dsn)?, active)?)
    }

    /// Mints an API token for a user; only its hash is stored.
    pub fn create_token(&self, login: &str, label: &str) -> OpsResult<String> {
        self.create_token_for(login, label, None)
    }

    /// Creates an API token for a user. With `org`, it has Sentry's organization-token form
    /// (`sntrys_<payload>_<secret>`), whose payload carries this server's public URL and the
    /// organization, so sentry-cli needs no `SENTRY_URL` or `--org` with it; it still acts as
    /// its user.
    pub fn create_token_for(
        &self,
        login: &str,
        label: &str,
        org: Option<&str>,
    ) -> OpsResult<String> {
        use base64::Engine as _;
        self.allow(Permission::ManageUsers)?;
        let user = self.store.user_by_login(login)?;
        let token = match org {
            None => format!("sntryu_{}", random_hex(32)),
            Some(slug) => {
                let org = self.org(Some(slug))?;
                let payload = serde_json::json!({
                    "iat": chrono::Utc::now().timestamp(),
                    "url": self.public_url,
                    "region_url": self.public_url,
                    "org": org.slug,
                });
                let secret: [u8; 32] = rand::random();
                format!(
                    "sntrys_{}_{}",
                    base64::engine::general_purpose::STANDARD.encode(payload.to_string()),
                    base64::engine::general_purpose::STANDARD_NO_PAD.encode(secret)
                )
            }
        };
        self.store
            .create_token(user.id, &token_hash(&token), label)?;
        Ok(token)
    }

    /// Who a bearer token stands for: its (active) user, with their role.
    pub fn authenticate_token(&self, token: &str) -> OpsResult<Option<Caller>> {
        match self.store.user_by_token(&token_hash(token))? {
            Some(user) => Ok(Some(self.member(user)?)),
            None => Ok(None),
        }
    }

    /// Every user.
    pub fn users(&self) -> OpsResult<Vec<User>> {
        self.allow(Permission::Read)?;
        Ok(self.store.users()?)
    }

    /// Enables or disables a user. The last active user cannot be disabled: nobody could log
    /// in or use the API afterwards.
    pub fn set_user_active(&self, login: &str, active: bool) -> OpsResult<User> {
        self.allow(Permission::ManageUsers)?;
        let users = self.store.users()?;
        let user = users
            .iter()
            .find(|u| u.login == login)
            .ok_or(OpsError::NotFound("user"))?;
        if !active && user.is_active && users.iter().filter(|u| u.is_active).count() == 1 {
            return Err(OpsError::Invalid(format!(
                "{login} is the last active user; create or enable another one first"
            )));
        }
        Ok(self.store.set_user_active(login, active)?)
    }

    /// Sets a new password for a user.
    pub fn reset_password(&self, login: &str, password: &str) -> OpsResult<User> {
        self.allow(Permission::ManageUsers)?;
        check_password(password)?;
        let user = self
            .store
            .set_password_hash(login, &hash_password(password)?)?;
        // Whoever knew the old password may hold a session: end them all.
        self.store.delete_sessions_of(user.id, None)?;
        Ok(user)
    }

    /// Sets (or, with `None` or an empty address, clears) a user's email address: owners for
    /// anyone, everyone for themselves.
    pub fn set_user_email(&self, login: &str, email: Option<&str>) -> OpsResult<User> {
        let own = matches!(&self.caller, Caller::Member { user, .. } if user.login == login);
        if !own {
            self.allow(Permission::ManageUsers)?;
        }
        let email = email.map(str::trim).filter(|e| !e.is_empty());
        if let Some(e) = email {
            match crate::alerts::email::parse_recipients(e) {
                Ok(one) if one.len() == 1 => {}
                Ok(_) => return Err(OpsError::Invalid("give one email address".into())),
                Err(msg) => return Err(OpsError::Invalid(msg)),
            }
        }
        Ok(self.store.set_user_email(login, email)?)
    }

    /// Every user with their role.
    pub fn users_with_roles(&self) -> OpsResult<Vec<(User, Role)>> {
        self.allow(Permission::ManageUsers)?;
        let roles: std::collections::HashMap<UserId, Role> =
            self.store.roles()?.into_iter().collect();
        Ok(self
            .store
            .users()?
            .into_iter()
            .map(|u| {
                let role = roles.get(&u.id).copied().unwrap_or(Role::Member);
                (u, role)
            })
            .collect())
    }

    /// Creates a user in the organization with a role.
    pub fn create_user(
        &self,
        org: Option<&str>,
        login: &str,
        password: &str,
        role: Role,
    ) -> OpsResult<User> {
        self.allow(Permission::ManageUsers)?;
        check_password(password)?;
        let org = self.org(org)?;
        Ok(self
            .store
            .create_user(org.id, login, &hash_password(password)?, role)?)
    }

    /// A page of issues.
    pub fn list_issues(&self, req: &IssueListRequest) -> OpsResult<IssuePage> {
        self.allow(Permission::Read)?;
        let limit = req.limit.unwrap_or(25).clamp(1, 100);
        let cursor = parse_cursor_param(req.cursor.as_deref())?;
        let mut q = IssueQuery {
            limit: limit + 1,
            cursor,
            ..Default::default()
        };
        if let Some(project) = &req.project {
            let p = match &req.org {
                Some(org) => self.store.project_by_slug(org, project)?,
                None => self.find_project(project)?,
            };
            q.project_ids.push(p.id);
        } else if let Some(org) = &req.org {
            let org = self.org(Some(org))?;
            q.project_ids = self
                .store
                .projects()?
                .into_iter()
                .filter(|p| p.org_id == org.id)
                .map(|p| p.id)
                .collect();
            if q.project_ids.is_empty() {
                return Ok(IssuePage {
                    issues: vec![],
                    limit,
                    next: None,
                    previous: None,
                });
            }
        }
        query::parse_into(req.query.as_deref().unwrap_or("is:unresolved"), &mut q)?;
        if let Some(period) = &req.stats_period {
            let ms = parse_period_ms(period).ok_or_else(|| {
                OpsError::Invalid(format!("bad statsPeriod {period:?}: use e.g. 24h or 14d"))
            })?;
            q.seen_since_ms = Some(chrono::Utc::now().timestamp_millis() - ms);
        }
        q.sort = match req.sort.as_deref() {
            None | Some("date") | Some("") => IssueSort::LastSeen,
            Some("new") => IssueSort::FirstSeen,
            Some("freq") => IssueSort::Events,
            Some("user") => IssueSort::Users,
            Some(other) => {
                return Err(OpsError::Invalid(format!(
                    "unknown sort {other:?}: use date, new, freq or user"
                )))
            }
        };
        let mut issues = self.store.issues(&q)?;
        let sort = q.sort;
        let (previous, next) =
            finish_page(&mut issues, limit, cursor, |i| (sort.value_of(i), i.id.0));
        Ok(IssuePage {
            issues,
            limit,
            next,
            previous,
        })
    }

    /// One issue.
    pub fn issue(&self, id: IssueId) -> OpsResult<Issue> {
        self.allow(Permission::Read)?;
        Ok(self.store.issue(id)?)
    }

    /// Event counts of issues per bucket over the last `period_ms`, oldest bucket first.
    pub fn issue_stats(
        &self,
        issue_ids: &[IssueId],
        period_ms: i64,
        bucket_ms: i64,
    ) -> OpsResult<Vec<(IssueId, Series)>> {
        self.allow(Permission::Read)?;
        const HOUR_MS: i64 = 3_600_000;
        let now = chrono::Utc::now().timestamp_millis();
        let bucket_ms = bucket_ms.max(HOUR_MS);
        let first = (now - period_ms).div_euclid(bucket_ms) * bucket_ms + bucket_ms;
        let n = ((now.div_euclid(bucket_ms) * bucket_ms - first) / bucket_ms + 1).max(1) as usize;
        let rows = self.store.issue_hourly(issue_ids, first)?;
        Ok(issue_ids
            .iter()
            .map(|id| {
                let mut series: Vec<(i64, i64)> = (0..n)
                    .map(|i| ((first + i as i64 * bucket_ms) / 1000, 0))
                    .collect();
                for (_, hour, count) in rows.iter().filter(|r| r.0 == *id) {
                    let idx = ((hour - first).div_euclid(bucket_ms)) as usize;
                    if let Some(slot) = series.get_mut(idx) {
                        slot.1 += count;
                    }
                }
                (*id, series)
            })
            .collect())
    }

    /// Tag value counts of an issue.
    pub fn issue_tags(&self, id: IssueId) -> OpsResult<Vec<TagCount>> {
        self.allow(Permission::Read)?;
        self.store.issue(id)?;
        Ok(self.store.issue_tags(id, 10)?)
    }

    /// Events of an issue, newest first, from a cursor; with the previous and next cursors
    /// (each with whether that page has rows).
    pub fn issue_events(
        &self,
        id: IssueId,
        cursor: Option<&str>,
        limit: i64,
    ) -> OpsResult<EventPage> {
        self.allow(Permission::Read)?;
        self.store.issue(id)?;
        let cursor = parse_cursor_param(cursor)?;
        let limit = limit.clamp(1, 100);
        let mut events = self.store.issue_events(id, cursor, limit + 1)?;
        let (previous, next) =
            finish_page(&mut events, limit, cursor, |e| (e.timestamp_ms, e.row_id));
        Ok(EventPage {
            events,
            next,
            previous,
        })
    }

    /// A page of a project's events (by organization and slug), the most recently stored first.
    pub fn project_events(
        &self,
        org: &str,
        project: &str,
        cursor: Option<&str>,
        limit: i64,
    ) -> OpsResult<EventPage> {
        self.allow(Permission::Read)?;
        let project = self.store.project_by_slug(org, project)?;
        let cursor = parse_cursor_param(cursor)?;
        let limit = limit.clamp(1, 100);
        let mut events = self.store.project_events(project.id, cursor, limit + 1)?;
        let (previous, next) = finish_page(&mut events, limit, cursor, |e| (e.row_id, e.row_id));
        Ok(EventPage {
            events,
            next,
            previous,
        })
    }

    /// The newest or oldest event of an issue.
    pub fn issue_event_edge(&self, id: IssueId, newest: bool) -> OpsResult<StoredEvent> {
        self.allow(Permission::Read)?;
        self.store
            .issue_event_edge(id, newest)?
            .ok_or(OpsError::NotFound("event"))
    }

    /// The ids of the events just older and just newer than `e` in its issue.
    pub fn event_neighbours(
        &self,
        e: &StoredEvent,
    ) -> OpsResult<(Option<uuid::Uuid>, Option<uuid::Uuid>)> {
        self.allow(Permission::Read)?;
        let at = |backwards| KeysetCursor {
            value: e.timestamp_ms,
            id: e.row_id,
            backwards,
        };
        let older = self.store.issue_events(e.issue_id, Some(at(false)), 1)?;
        let newer = self.store.issue_events(e.issue_id, Some(at(true)), 1)?;
        Ok((
            older.first().map(|x| x.event_id),
            newer.first().map(|x| x.event_id),
        ))
    }

    /// One event of an issue (not found when the event belongs to another issue).
    pub fn issue_event(&self, issue: &Issue, event_id: &str) -> OpsResult<StoredEvent> {
        self.allow(Permission::Read)?;
        let e = self.event(issue.project_id, event_id)?;
        if e.issue_id != issue.id {
            return Err(OpsError::NotFound("event"));
        }
        Ok(e)
    }

    /// One event of a project.
    pub fn event(&self, project_id: ProjectId, event_id: &str) -> OpsResult<StoredEvent> {
        self.allow(Permission::Read)?;
        let id = uuid::Uuid::parse_str(event_id)
            .map_err(|_| OpsError::Invalid(format!("{event_id:?} is not an event id")))?;
        self.store
            .event(project_id, id)?
            .ok_or(OpsError::NotFound("event"))
    }

    /// The grouping explanation of an event's hash.
    pub fn grouping(
        &self,
        project_id: ProjectId,
        hash: &str,
    ) -> OpsResult<Option<serde_json::Value>> {
        self.allow(Permission::Read)?;
        Ok(self
            .store
            .grouping(project_id, hash)?
            .and_then(|g| serde_json::from_str(&g).ok()))
    }
}

/// Trims a page that was fetched with one row more than `limit` (which tells whether more rows
/// lie that way) and returns the (previous, next) cursors, each with whether its page has rows.
/// `position` gives a row's sort value and id.
fn finish_page<T>(
    rows: &mut Vec<T>,
    limit: i64,
    cursor: Option<KeysetCursor>,
    position: impl Fn(&T) -> (i64, i64),
) -> (PageLink, PageLink) {
    let more = rows.len() as i64 > limit;
    let backwards = cursor.is_some_and(|c| c.backwards);
    if backwards {
        // A backwards page was read in reverse: its extra row is at the front.
        if more {
            rows.remove(0);
        }
    } else {
        rows.truncate(limit.max(0) as usize);
    }
    let at = |row: &T, backwards: bool| {
        let (value, id) = position(row);
        keyset_cursor(KeysetCursor {
            value,
            id,
            backwards,
        })
    };
    let previous = rows
        .first()
        .map(|r| (at(r, true), if backwards { more } else { cursor.is_some() }));
    let next = rows.last().map(|r| (at(r, false), backwards || more));
    (previous, next)
}

/// A `cursor` parameter, if given.
fn parse_cursor_param(cursor: Option<&str>) -> OpsResult<Option<KeysetCursor>> {
    // sentry-cli asks for the first page with an empty `?cursor=`.
    cursor
        .filter(|c| !c.is_empty())
        .map(|c| {
            parse_keyset_cursor(c).ok_or_else(|| {
                OpsError::Invalid(format!(
                    "bad cursor {c:?}: pass the cursor from a Link header"
                ))
            })
        })
        .transpose()
}

/// Issue cursors look like Sentry's (`<sort value>:<id>:<is_prev>`).
pub fn parse_keyset_cursor(c: &str) -> Option<KeysetCursor> {
    let mut parts = c.split(':');
    let value = parts.next()?.parse().ok()?;
    let id = parts.next()?.parse().ok()?;
    let backwards = match parts.next()? {
        "0" => false,
        "1" => true,
        _ => return None,
    };
    parts.next().is_none().then_some(KeysetCursor {
        value,
        id,
        backwards,
    })
}

/// The cursor string of a position.
pub fn keyset_cursor(c: KeysetCursor) -> String {
    format!("{}:{}:{}", c.value, c.id, u8::from(c.backwards))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_check_their_caller_in_one_place() {
        let dir = tempfile::tempdir().unwrap();
        let system = Ops::new(crate::store::open_in(dir.path()).unwrap(), "http://x");
        system.bootstrap("ann", Some("ann-password")).unwrap();
        let forbidden = |r: OpsResult<_>| matches!(r, Err(OpsError::Forbidden(_)));
        // Phoebe itself, before anyone is authenticated, reads nothing.
        assert!(forbidden(system.projects().map(drop)));
        assert!(forbidden(
            system.list_issues(&IssueListRequest::default()).map(drop)
        ));

        let cli = system.acting_as(Caller::Cli { as_user: None });
        cli.create_user(None, "bob", "bob-password", Role::Member)
            .unwrap();
        let token = cli.create_token("bob", "ci").unwrap();
        let bob = system.authenticate_token(&token).unwrap().unwrap();
        assert!(matches!(&bob, Caller::Member { role: Role::Member, user } if user.login == "bob"));
        let bob = system.acting_as(bob);
        assert_eq!(bob.projects().unwrap().len(), 1);
        bob.create_project(None, "web", Some("Web"), None).unwrap();
        match bob.create_user(None, "eve", "eve-password", Role::Owner) {
            Err(OpsError::Forbidden(why)) => assert!(why.contains("only owners"), "{why}"),
            other => panic!("{other:?}"),
        }
        assert!(forbidden(bob.set_user_active("ann", false).map(drop)));
        assert!(forbidden(bob.create_token("ann", "steal").map(drop)));

        let login = system.log_in("ann", "ann-password").unwrap();
        let (_, ann) = system.session(&login.secret).unwrap().unwrap();
        let ann = system.acting_as(ann);
        ann.set_user_active("bob", false).unwrap();
        // A token of a disabled user stands for nobody.
        assert_eq!(system.authenticate_token(&token).unwrap(), None);
    }

    #[test]
    fn people_change_their_own_email_and_summary_and_owners_anyones() {
        use crate::domain::alerts::SummaryPeriod;
        let dir = tempfile::tempdir().unwrap();
        let system = Ops::new(crate::store::open_in(dir.path()).unwrap(), "http://x");
        system.bootstrap("ann", Some("ann-password")).unwrap();
        let cli = system.acting_as(Caller::Cli { as_user: None });
        cli.create_user(None, "bob", "bob-password", Role::Member)
            .unwrap();
        let forbidden = |r: OpsResult<()>| matches!(r, Err(OpsError::Forbidden(_)));
        let bob = system.acting_as(
            system
                .authenticate_token(&cli.create_token("bob", "t").unwrap())
                .unwrap()
                .unwrap(),
        );
        let ann = system.acting_as(
            system
                .authenticate_token(&cli.create_token("ann", "t").unwrap())
                .unwrap()
                .unwrap(),
        );
        // A member: their own address, not someone else's.
        assert!(bob.set_user_email("bob", Some("bob@example.com")).is_ok());
        assert!(forbidden(
            bob.set_user_email("ann", Some("x@example.com")).map(drop)
        ));
        assert!(ann.set_user_email("bob", Some("b2@example.com")).is_ok());
        // Summaries: their own passes the permission (then needs a mail server), not another's.
        let weekly = Some(SummaryPeriod::Weekly);
        assert!(matches!(
            bob.set_summary("default", None, weekly),
            Err(OpsError::Invalid(why)) if why.contains("mail server")
        ));
        assert!(forbidden(bob.set_summary("default", Some("ann"), weekly)));
        assert!(forbidden(
            bob.send_summary_now("default", Some("ann")).map(drop)
        ));
        // Releases and uploads need someone signed in.
        let change = crate::domain::ReleaseChange::default();
        assert!(forbidden(
            system
                .create_release("phoebe", "1.0", &[], change.clone())
                .map(drop)
        ));
        assert!(forbidden(system.may_upload("phoebe")));
        assert!(bob.create_release("phoebe", "1.0", &[], change).is_ok());
    }

    #[test]
    fn periods() {
        assert_eq!(parse_period_ms("24h"), Some(86_400_000));
        assert_eq!(parse_period_ms("14d"), Some(14 * 86_400_000));
        assert_eq!(parse_period_ms("h"), None);
        assert_eq!(parse_period_ms("5y"), None);
        assert_eq!(parse_period_ms("91d"), None);
        assert_eq!(parse_period_ms("100000000000000d"), None);
        assert_eq!(parse_period_ms("0h"), None);
    }

    #[test]
    fn pages_trim_the_probe_row_and_point_both_ways() {
        let pos = |r: &i64| (*r, *r);
        // First page of 2 out of more: a next page, no previous.
        let mut rows = vec![9, 8, 7];
        let (prev, next) = finish_page(&mut rows, 2, None, pos);
        assert_eq!(rows, vec![9, 8]);
        assert_eq!(
            (prev, next),
            (Some(("9:9:1".into(), false)), Some(("8:8:0".into(), true)))
        );
        // A backwards page read in reverse order and turned around: the probe row is at the front.
        let back = Some(KeysetCursor {
            value: 5,
            id: 5,
            backwards: true,
        });
        let mut rows = vec![8, 7, 6];
        let (prev, next) = finish_page(&mut rows, 2, back, pos);
        assert_eq!(rows, vec![7, 6]);
        assert_eq!(
            (prev, next),
            (Some(("7:7:1".into(), true)), Some(("6:6:0".into(), true)))
        );
        // An empty page has no neighbours to name.
        let mut rows: Vec<i64> = vec![];
        assert_eq!(finish_page(&mut rows, 2, None, pos), (None, None));
    }

    #[test]
    fn issue_cursors_round_trip() {
        let c = KeysetCursor {
            value: 1_700_000_000_000,
            id: 42,
            backwards: true,
        };
        assert_eq!(parse_keyset_cursor(&keyset_cursor(c)), Some(c));
        assert_eq!(parse_keyset_cursor("1:2"), None);
        assert_eq!(parse_keyset_cursor("1:2:3"), None);
        assert_eq!(parse_keyset_cursor("x:2:0"), None);
    }

    #[test]
    fn passwords_verify() {
        let h = hash_password("correct horse").unwrap();
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong", &h));
    }
}

/// A project as the overview shows it.
#[derive(Debug, Clone)]
pub struct ProjectSummary {
    /// The project.
    pub project: Project,
    /// Its keys.
    pub keys: Vec<ProjectKey>,
    /// Unresolved issues.
    pub unresolved: i64,
    /// Events accepted per hour over the last day, oldest first.
    pub last_day: Series,
}

impl Ops {
    /// Every project with its unresolved issue count and its last day of accepted events.
    pub fn project_summaries(&self) -> OpsResult<Vec<ProjectSummary>> {
        self.allow(Permission::Read)?;
        const HOUR_MS: i64 = 3_600_000;
        let counts: std::collections::HashMap<ProjectId, i64> =
            self.store.unresolved_counts()?.into_iter().collect();
        let now_hour = chrono::Utc::now().timestamp_millis().div_euclid(HOUR_MS) * HOUR_MS;
        let first = now_hour - 23 * HOUR_MS;
        self.projects()?
            .into_iter()
            .map(|(project, keys)| {
                let mut last_day: Series =
                    (0..24).map(|i| ((first + i * HOUR_MS) / 1000, 0)).collect();
                for (hour, usage) in self.store.usage(project.id, first)? {
                    if let Some(slot) = last_day.get_mut(((hour - first) / HOUR_MS) as usize) {
                        slot.1 += usage.accepted as i64;
                    }
                }
                Ok(ProjectSummary {
                    unresolved: counts.get(&project.id).copied().unwrap_or(0),
                    project,
                    keys,
                    last_day,
                })
            })
            .collect()
    }

    /// Renames a project (by slug or id); the slug, and so URLs and DSNs, stay.
    pub fn rename_project(&self, project: &str, name: &str) -> OpsResult<Project> {
        self.allow(Permission::ManageProjects)?;
        let p = self.find_project(project)?;
        Ok(self.store.rename_project(p.id, name)?)
    }

    /// Deletes a project (by slug or id) and everything in it. `confirm` must repeat its slug.
    pub fn delete_project(&self, project: &str, confirm: &str) -> OpsResult<()> {
        self.allow(Permission::ManageProjects)?;
        let p = self.find_project(project)?;
        if confirm.trim() != p.slug {
            return Err(OpsError::Invalid(format!(
                "to delete project {0:?} and all its issues and events, confirm with its slug {0:?}",
                p.slug
            )));
        }
        Ok(self.store.delete_project(p.id)?)
    }
}
