//! Configuration: defaults, then `phoebe.toml`, then `PHOEBE_SECTION__KEY` environment variables,
//! then command-line flags. `RawConfig` is what the file says; [`Config`] is what the server runs
//! with. No global config: it is passed in, so one test can run differently configured servers.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use phoebe_protocol::limits::Limits;
use serde::{Deserialize, Serialize};

/// The main database's file name inside the data folder.
pub const DATABASE_FILE: &str = "phoebe.sqlite";

/// The inbox's file name inside the data folder.
pub const INBOX_FILE: &str = "inbox.sqlite";

/// Everything `phoebe.toml` can say. Unknown keys are an error, so a typo never passes silently.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RawConfig {
    /// Where the databases live (`--data-dir`, `PHOEBE_DATA_DIR`).
    pub data_dir: PathBuf,
    /// Address to listen on (`--bind`, `PHOEBE_BIND`). Only loopback by default.
    pub bind: String,
    /// The URL users and SDKs reach Phoebe at; used in DSNs and API links.
    /// Empty: derived from `bind`.
    pub public_url: String,
    /// Request size limits (Sentry's defaults).
    pub ingest: Limits,
    /// The durable inbox between ingest and digest.
    pub inbox: InboxConfig,
    /// The digest pipeline.
    pub digest: DigestConfig,
    /// Storage.
    pub store: StoreConfig,
    /// The HTTP server.
    pub server: ServerConfig,
    /// Rate limits and spike protection at the door.
    pub quotas: QuotaConfig,
    /// How many events are kept, and for how long.
    pub retention: RetentionConfig,
    /// Notifications.
    pub alerts: AlertsConfig,
    /// The mail server email alerts go through.
    pub smtp: SmtpConfig,
}

/// `[smtp]`: where email alerts are sent from. Unset, email channels cannot be added.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SmtpConfig {
    /// `smtp://user:pass@host:587?tls=required` (STARTTLS), `smtps://user:pass@host:465`
    /// (implicit TLS) or `smtp://host:25` (plain); also `PHOEBE_SMTP_URL`.
    pub url: String,
    /// The sender, e.g. `Phoebe <errors@example.com>`.
    pub from: String,
    /// A PEM file of certificate authorities to trust besides the public ones, for a mail
    /// server whose certificate a private CA signed; empty: public CAs only.
    pub ca_file: String,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            url: String::new(),
            from: "Phoebe <phoebe@localhost>".into(),
            ca_file: String::new(),
        }
    }
}

/// A URL with its password replaced, for logs and `phoebe config show`.
pub fn mask_password(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.split_once('@') {
            Some((userinfo, host)) if userinfo.contains(':') => {
                let user = userinfo.split(':').next().unwrap_or("");
                format!("{scheme}://{user}:***@{host}")
            }
            _ => url.to_string(),
        },
        None => url.to_string(),
    }
}

/// `[alerts]`: how notifications reach their channels.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct AlertsConfig {
    /// Let channel URLs reach loopback, private and link-local addresses. Off by default:
    /// a project's users type these URLs, and must not reach the server's own network.
    pub allow_private_targets: bool,
    /// Seconds one delivery attempt may take, connecting included.
    pub timeout_secs: u64,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            allow_private_targets: false,
            timeout_secs: 10,
        }
    }
}

/// `[quotas]`: events accepted per clock minute and hour, checked at the door. 0 = unlimited.
/// Projects and DSN keys can override the project and key limits (`phoebe project limits`,
/// `phoebe key limits`, or the API).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct QuotaConfig {
    /// Per DSN key, per minute.
    pub key_events_per_minute: u64,
    /// Per DSN key, per hour.
    pub key_events_per_hour: u64,
    /// Per project, per minute.
    pub project_events_per_minute: u64,
    /// Per project, per hour.
    pub project_events_per_hour: u64,
    /// Per organization, per minute.
    pub org_events_per_minute: u64,
    /// Per organization, per hour.
    pub org_events_per_hour: u64,
    /// The whole server, per minute.
    pub global_events_per_minute: u64,
    /// The whole server, per hour.
    pub global_events_per_hour: u64,
    /// Throttle a project whose rate jumps far above its own recent baseline.
    pub spike_protection: bool,
    /// A minute over `spike_factor` times the project's baseline (events per minute, averaged
    /// over about a day) is a spike...
    pub spike_factor: u64,
    /// ...unless it stays under this many events per minute.
    pub spike_floor_per_minute: u64,
    /// Bytes of source-map bundles one project keeps (0 = no limit); an upload past it is
    /// refused with the reason.
    pub sourcemap_bytes_per_project: u64,
}

impl Default for QuotaConfig {
    fn default() -> Self {
        QuotaConfig {
            key_events_per_minute: 0,
            key_events_per_hour: 0,
            project_events_per_minute: 0,
            project_events_per_hour: 0,
            org_events_per_minute: 0,
            org_events_per_hour: 0,
            global_events_per_minute: 0,
            global_events_per_hour: 0,
            spike_protection: true,
            spike_factor: 10,
            spike_floor_per_minute: 3_000,
            sourcemap_bytes_per_project: 1 << 30,
        }
    }
}

/// `[retention]`: which stored events stay. Issues and their counts are never deleted.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionConfig {
    /// Each issue keeps its first this-many events...
    pub first_events_per_issue: u64,
    /// ...its latest this-many...
    pub latest_events_per_issue: u64,
    /// ...and a thinning sample of the rest: this many for every doubling of its event count
    /// (rounded down to a power of two).
    pub samples_per_doubling: u64,
    /// Stored events older than this are evicted (per project: `phoebe project limits`). 0 = forever.
    pub max_age_days: u64,
    /// At most this many stored events per project, oldest evicted first. 0 = unlimited.
    pub max_events_per_project: u64,
    /// Evict the oldest events while the database is bigger than this. 0 = no budget.
    pub max_disk_mb: u64,
    /// Seconds between eviction passes.
    pub interval_secs: u64,
    /// Events deleted per eviction step; small steps keep ingest flowing meanwhile.
    pub batch: u64,
}

impl RetentionConfig {
    /// The per-issue part of the policy, as digest applies it.
    pub fn event_bounds(&self) -> crate::domain::EventBounds {
        crate::domain::EventBounds {
            first: self.first_events_per_issue,
            latest: self.latest_events_per_issue,
            samples_per_doubling: self.samples_per_doubling,
        }
    }
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            first_events_per_issue: 10,
            latest_events_per_issue: 50,
            samples_per_doubling: 8,
            max_age_days: 90,
            max_events_per_project: 1_000_000,
            max_disk_mb: 10_240,
            interval_secs: 10,
            batch: 500,
        }
    }
}

/// `[server]`: the HTTP side's own bounds.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Request bodies (raw and decoded) held in memory at once; past it, ingest answers 503.
    pub max_in_flight_bytes: u64,
    /// A request that takes longer (slow clients included) is answered 408.
    pub request_timeout_secs: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_in_flight_bytes: 256 << 20,
            request_timeout_secs: 30,
        }
    }
}

/// `[inbox]`: the durable queue an acknowledged event waits in.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct InboxConfig {
    /// Over this many undigested envelopes, ingest answers 503 with `Retry-After`.
    pub max_backlog: u64,
    /// Most envelopes appended in one commit (group commit).
    pub max_batch: usize,
    /// `full` fsyncs every commit (survives power loss); `normal` survives a process crash only.
    pub synchronous: String,
}

/// `[digest]`: turning inbox entries into issues.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct DigestConfig {
    /// Envelopes digested in one store transaction.
    pub batch_size: usize,
}

/// `[store]`: where issues and events live.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// zstd level for stored event payloads (3 is zstd's own default: a good speed/size point).
    pub zstd_level: i32,
}

impl Default for RawConfig {
    fn default() -> Self {
        RawConfig {
            data_dir: PathBuf::from("phoebe-data"),
            bind: "127.0.0.1:8000".into(),
            public_url: String::new(),
            ingest: Limits::default(),
            inbox: InboxConfig::default(),
            digest: DigestConfig::default(),
            store: StoreConfig::default(),
            server: ServerConfig::default(),
            quotas: QuotaConfig::default(),
            retention: RetentionConfig::default(),
            alerts: AlertsConfig::default(),
            smtp: SmtpConfig::default(),
        }
    }
}

impl Default for InboxConfig {
    fn default() -> Self {
        InboxConfig {
            max_backlog: 100_000,
            max_batch: 512,
            synchronous: "full".into(),
        }
    }
}

impl Default for DigestConfig {
    fn default() -> Self {
        DigestConfig { batch_size: 500 }
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig { zstd_level: 3 }
    }
}

/// The validated configuration the program runs with.
#[derive(Debug, Clone)]
pub struct Config {
    /// Data folder (created on start).
    pub data_dir: PathBuf,
    /// Listen address.
    pub bind: SocketAddr,
    /// Base URL for DSNs and links, without a trailing slash.
    pub public_url: String,
    /// Whether `public_url` was set (file or env) rather than derived from `bind`.
    pub public_url_configured: bool,
    /// Size limits.
    pub limits: Limits,
    /// Inbox settings.
    pub inbox: InboxConfig,
    /// Digest settings.
    pub digest: DigestConfig,
    /// Store settings.
    pub store: StoreConfig,
    /// HTTP server settings.
    pub server: ServerConfig,
    /// Rate limits.
    pub quotas: QuotaConfig,
    /// Retention.
    pub retention: RetentionConfig,
    /// Alerts.
    pub alerts: AlertsConfig,
    /// SMTP for email alerts.
    pub smtp: SmtpConfig,
}

/// Top-level environment variables that are not `SECTION__KEY` overrides.
const PLAIN_VARS: &[&str] = &[
    "PHOEBE_DATA_DIR",
    "PHOEBE_BIND",
    "PHOEBE_PUBLIC_URL",
    "PHOEBE_CONFIG",
    "PHOEBE_LOG",
    "PHOEBE_LOG_FORMAT",
    "PHOEBE_ADMIN_USER",
    "PHOEBE_ADMIN_PASSWORD",
    "PHOEBE_TEST_DATABASE_URL",
    "PHOEBE_CHANNEL_SECRET",
    "PHOEBE_SMTP_URL",
];

/// Where the settings come from, besides the defaults.
#[derive(Debug, Default, Clone)]
pub struct Sources {
    /// `--config` / `PHOEBE_CONFIG`; else `phoebe.toml` in the data folder or the working folder.
    pub config_file: Option<PathBuf>,
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `--bind`.
    pub bind: Option<String>,
    /// The environment (passed in so tests control it).
    pub env: BTreeMap<String, String>,
}

impl Sources {
    /// Flags plus the process environment.
    pub fn from_process(
        config_file: Option<PathBuf>,
        data_dir: Option<PathBuf>,
        bind: Option<String>,
    ) -> Sources {
        Sources {
            config_file,
            data_dir,
            bind,
            env: std::env::vars().collect(),
        }
    }
}

impl Config {
    /// Layers defaults, the file, the environment and flags; errors name the key and the fix.
    pub fn load(sources: &Sources) -> anyhow::Result<(Config, Vec<String>)> {
        let mut warnings = Vec::new();
        let explicit = sources
            .config_file
            .clone()
            .or_else(|| sources.env.get("PHOEBE_CONFIG").map(PathBuf::from));
        let data_dir_hint = sources
            .data_dir
            .clone()
            .or_else(|| sources.env.get("PHOEBE_DATA_DIR").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("phoebe-data"));
        let file = match explicit {
            Some(path) => Some(path),
            None => [
                data_dir_hint.join("phoebe.toml"),
                PathBuf::from("phoebe.toml"),
            ]
            .into_iter()
            .find(|p| p.is_file()),
        };
        let mut table = match &file {
            Some(path) => read_table(path)?,
            None => toml::Table::new(),
        };
        for (name, value) in &sources.env {
            let Some(rest) = name.strip_prefix("PHOEBE_") else {
                continue;
            };
            if PLAIN_VARS.contains(&name.as_str()) {
                continue;
            }
            let Some((section, key)) = rest.split_once("__") else {
                warnings.push(format!("ignoring unknown environment variable {name}: settings are PHOEBE_SECTION__KEY, e.g. PHOEBE_INGEST__MAX_EVENT_BYTES"));
                continue;
            };
            let section = section.to_ascii_lowercase();
            let key = key.to_ascii_lowercase();
            let entry = table
                .entry(section.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            let Some(sub) = entry.as_table_mut() else {
                bail!("{name} sets [{section}] {key}, but `{section}` is not a section");
            };
            sub.insert(key, env_value(value));
        }
        let source_name = file
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "defaults".into());
        let mut raw: RawConfig = toml::Value::Table(table)
            .try_into()
            .with_context(|| format!("invalid configuration (from {source_name} and PHOEBE_* variables); `phoebe config show` prints the effective settings, README.md lists every key"))?;
        if let Some(d) = sources.env.get("PHOEBE_DATA_DIR") {
            raw.data_dir = PathBuf::from(d);
        }
        if let Some(b) = sources.env.get("PHOEBE_BIND") {
            raw.bind = b.clone();
        }
        if let Some(u) = sources.env.get("PHOEBE_PUBLIC_URL") {
            raw.public_url = u.clone();
        }
        if let Some(u) = sources.env.get("PHOEBE_SMTP_URL") {
            raw.smtp.url = u.clone();
        }
        if let Some(d) = &sources.data_dir {
            raw.data_dir = d.clone();
        }
        if let Some(b) = &sources.bind {
            raw.bind = b.clone();
        }
        Ok((Config::from_raw(raw)?, warnings))
    }

    /// Validates a raw configuration.
    pub fn from_raw(raw: RawConfig) -> anyhow::Result<Config> {
        let bind: SocketAddr = raw
            .bind
            .parse()
            .with_context(|| format!("bind = {:?} is not an address like 127.0.0.1:8000 (set --bind, PHOEBE_BIND or `bind` in phoebe.toml)", raw.bind))?;
        if !matches!(raw.inbox.synchronous.as_str(), "full" | "normal") {
            bail!("[inbox] synchronous = {:?}: use \"full\" or \"normal\" (PHOEBE_INBOX__SYNCHRONOUS)", raw.inbox.synchronous);
        }
        if raw.digest.batch_size == 0 || raw.inbox.max_batch == 0 {
            bail!("[digest] batch_size and [inbox] max_batch must be at least 1");
        }
        if raw.quotas.spike_factor < 2 {
            bail!("[quotas] spike_factor must be at least 2 (PHOEBE_QUOTAS__SPIKE_FACTOR)");
        }
        if raw.alerts.timeout_secs == 0 || raw.alerts.timeout_secs > 300 {
            bail!(
                "[alerts] timeout_secs = {}: use 1 to 300 (PHOEBE_ALERTS__TIMEOUT_SECS)",
                raw.alerts.timeout_secs
            );
        }
        if raw.retention.interval_secs == 0 || raw.retention.batch == 0 {
            bail!("[retention] interval_secs and batch must be at least 1");
        }
        let public_url_configured = !raw.public_url.is_empty();
        let public_url = if raw.public_url.is_empty() {
            format!("http://{bind}")
        } else {
            raw.public_url.trim_end_matches('/').to_string()
        };
        Ok(Config {
            data_dir: raw.data_dir,
            bind,
            public_url,
            public_url_configured,
            limits: raw.ingest,
            inbox: raw.inbox,
            digest: raw.digest,
            store: raw.store,
            server: raw.server,
            quotas: raw.quotas,
            retention: raw.retention,
            alerts: raw.alerts,
            smtp: raw.smtp,
        })
    }

    /// The effective settings as TOML, as `phoebe config show` prints them.
    pub fn to_toml(&self) -> String {
        let raw = RawConfig {
            data_dir: self.data_dir.clone(),
            bind: self.bind.to_string(),
            public_url: self.public_url.clone(),
            ingest: self.limits.clone(),
            inbox: self.inbox.clone(),
            digest: self.digest.clone(),
            store: self.store.clone(),
            server: self.server.clone(),
            quotas: self.quotas.clone(),
            retention: self.retention.clone(),
            alerts: self.alerts.clone(),
            smtp: SmtpConfig {
                url: mask_password(&self.smtp.url),
                ..self.smtp.clone()
            },
        };
        toml::to_string_pretty(&raw).unwrap_or_default()
    }

    /// Path of the main database.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join(DATABASE_FILE)
    }

    /// Path of the inbox database.
    pub fn inbox_path(&self) -> PathBuf {
        self.data_dir.join(INBOX_FILE)
    }
}

fn read_table(path: &Path) -> anyhow::Result<toml::Table> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.parse::<toml::Table>()
        .with_context(|| format!("{} is not valid TOML", path.display()))
}

/// Environment values are strings; numbers and booleans are recognised so `PHOEBE_INGEST__MAX_EVENT_BYTES=1000` works.
fn env_value(value: &str) -> toml::Value {
    if let Ok(i) = value.parse::<i64>() {
        return toml::Value::Integer(i);
    }
    match value {
        "true" => toml::Value::Boolean(true),
        "false" => toml::Value::Boolean(false),
        _ => toml::Value::String(value.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smtp_passwords_never_show() {
        assert_eq!(
            mask_password("smtps://mail:hunter2@smtp.example.com:465"),
            "smtps://mail:***@smtp.example.com:465"
        );
        assert_eq!(mask_password("smtp://127.0.0.1:25"), "smtp://127.0.0.1:25");
        let sources = Sources {
            env: [(
                "PHOEBE_SMTP_URL".to_string(),
                "smtp://u:secret@h:587?tls=required".to_string(),
            )]
            .into(),
            ..Sources::default()
        };
        let (config, warnings) = Config::load(&sources).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(config.smtp.url, "smtp://u:secret@h:587?tls=required");
        assert!(!config.to_toml().contains("secret"));
    }

    fn load(env: &[(&str, &str)], file: Option<&str>) -> anyhow::Result<(Config, Vec<String>)> {
        let dir = tempfile::tempdir().unwrap();
        let config_file = file.map(|text| {
            let p = dir.path().join("phoebe.toml");
            std::fs::write(&p, text).unwrap();
            p
        });
        let sources = Sources {
            config_file,
            data_dir: None,
            bind: None,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        Config::load(&sources)
    }

    #[test]
    fn defaults_listen_on_loopback_8000() {
        let (c, w) = load(&[], None).unwrap();
        assert_eq!(c.bind.to_string(), "127.0.0.1:8000");
        assert_eq!(c.public_url, "http://127.0.0.1:8000");
        assert_eq!(c.data_dir, PathBuf::from("phoebe-data"));
        assert!(w.is_empty());
    }

    #[test]
    fn env_overrides_file_and_sections() {
        let (c, _) = load(
            &[
                ("PHOEBE_INGEST__MAX_EVENT_BYTES", "1234"),
                ("PHOEBE_BIND", "127.0.0.1:9"),
            ],
            Some("bind = \"127.0.0.1:7\"\n[ingest]\nmax_event_bytes = 99\n"),
        )
        .unwrap();
        assert_eq!(c.limits.max_event_bytes, 1234);
        assert_eq!(c.bind.to_string(), "127.0.0.1:9");
    }

    #[test]
    fn unknown_key_in_file_is_an_error_naming_it() {
        let err = load(&[], Some("[ingest]\nmax_evnt_bytes = 1\n")).unwrap_err();
        assert!(format!("{err:#}").contains("max_evnt_bytes"), "{err:#}");
    }

    #[test]
    fn unknown_plain_variable_warns() {
        let (_, w) = load(&[("PHOEBE_BINDD", "x")], None).unwrap();
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("PHOEBE_BINDD"));
    }

    #[test]
    fn bad_bind_names_the_setting() {
        let err = load(&[("PHOEBE_BIND", "localhost")], None).unwrap_err();
        assert!(format!("{err:#}").contains("PHOEBE_BIND"));
    }
}
