//! The command line: `phoebe serve` and the administrative subcommands. Admin commands open the
//! configured database directly, so they work whether or not a server is running. Standard
//! output carries only the result (a DSN, a token, a table or JSON); messages go to stderr.

mod alerts;
mod issues;
mod limits;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};

use crate::config::{Config, Sources};
use crate::domain::Role;
use crate::ops::{Caller, Ops};

/// Phoebe: a self-hosted error tracker for the official Sentry SDKs.
#[derive(Parser, Debug)]
#[command(name = "phoebe", version, about, long_about = None)]
pub struct Cli {
    /// Data folder (default ./phoebe-data) [env: PHOEBE_DATA_DIR]
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Configuration file (default: phoebe.toml in the data folder or the working folder) [env: PHOEBE_CONFIG]
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the server: ingest, digest, API. Creates the data folder on first start.
    Serve {
        /// Address to listen on (default 127.0.0.1:8000) [env: PHOEBE_BIND]
        #[arg(long)]
        bind: Option<String>,
    },
    /// Manage projects.
    Project {
        #[command(subcommand)]
        command: ProjectCommand,
    },
    /// Manage DSN keys.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// Manage API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Manage users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Notifications: channels, rules, tests and history.
    Alerts {
        #[command(subcommand)]
        command: alerts::AlertsCommand,
    },
    /// List and inspect issues.
    Issues {
        #[command(subcommand)]
        command: issues::IssuesCommand,
    },
    /// List the source-map files uploaded with sentry-cli: URL, type, debug id, release.
    Sourcemaps {
        /// Organization (default: the first).
        #[arg(long, default_value = "phoebe")]
        org: String,
        /// Only those uploaded for this release.
        #[arg(long)]
        release: Option<String>,
    },
    /// Send one test event to a DSN and print its event id.
    SendTestEvent {
        /// The DSN to send to.
        #[arg(long)]
        dsn: String,
        /// The message of the event.
        #[arg(
            long,
            default_value = "This is a test event from `phoebe send-test-event`."
        )]
        message: String,
    },
    /// Configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Exit 0 when the server at --url answers /healthz (for container health checks and tests).
    Healthcheck {
        /// Base URL of the server (default: from the configuration).
        #[arg(long)]
        url: Option<String>,
    },
    /// What happened to events per project and hour: accepted, refused by limits, stored,
    /// evicted, and what the SDKs reported dropping.
    Usage(limits::UsageArgs),
    /// Load generator: send realistic envelopes to a running server and report throughput.
    Bench(crate::bench::BenchArgs),
}

/// `phoebe project ...`
#[derive(Subcommand, Debug)]
pub enum ProjectCommand {
    /// Create a project and print its DSN (only the DSN, on standard output).
    Create {
        /// URL name: a-z, 0-9, '-' and '_'.
        slug: String,
        /// Display name (default: the slug).
        #[arg(long)]
        name: Option<String>,
        /// Platform hint (python, javascript, node ...).
        #[arg(long)]
        platform: Option<String>,
        /// Organization slug (default: the first organization).
        #[arg(long)]
        org: Option<String>,
    },
    /// List projects with their DSNs.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show or set a project's rate limits and retention.
    Limits(limits::ProjectLimitsArgs),
    /// Change a project's display name (the slug, URLs and DSNs stay).
    Rename {
        /// Project slug or id.
        project: String,
        /// New name.
        name: String,
    },
    /// Delete a project with its keys, issues and events. Cannot be undone.
    Delete {
        /// Project slug or id.
        project: String,
        /// Repeat the project's slug to confirm.
        #[arg(long, value_name = "SLUG")]
        confirm: String,
    },
}

/// `phoebe key ...`
#[derive(Subcommand, Debug)]
pub enum KeyCommand {
    /// Add a DSN key to a project and print its DSN (only the DSN, on standard output).
    Create {
        /// Project slug or id.
        #[arg(long)]
        project: String,
        /// A label to recognise the key by.
        #[arg(long, default_value = "cli")]
        label: String,
    },
    /// Refuse events sent with a key (403); a running server notices within 5 seconds.
    Disable {
        /// The public key, or the whole DSN.
        key: String,
    },
    /// Accept events sent with a key again.
    Enable {
        /// The public key, or the whole DSN.
        key: String,
    },
    /// Show or set a key's rate limits.
    Limits(limits::KeyLimitsArgs),
}

/// `phoebe token ...`
#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Create an API token and print it (only the token, on standard output).
    Create {
        /// The user the token acts as (default: the first admin, `admin` or PHOEBE_ADMIN_USER).
        #[arg(long)]
        user: Option<String>,
        /// A label to recognise the token by.
        #[arg(long, default_value = "cli")]
        label: String,
        /// Make an organization token (`sntrys_…`) for this organization: it carries the
        /// public URL and the organization, so sentry-cli needs no SENTRY_URL or --org.
        #[arg(long)]
        org: Option<String>,
    },
}

/// `phoebe user ...`
#[derive(Subcommand, Debug)]
pub enum UserCommand {
    /// Create a user; the password is read from PHOEBE_NEW_PASSWORD or standard input.
    Create {
        /// Login name.
        login: String,
        /// Role in the organization: owner (manages users) or member.
        #[arg(long, default_value = "member", value_parser = Role::parse)]
        role: Role,
        /// Their email address (alerts to a project's members go there).
        #[arg(long)]
        email: Option<String>,
    },
    /// Set a user's email address ("" clears it); alerts to a project's members go there.
    SetEmail {
        /// Login name.
        login: String,
        /// The address.
        email: String,
    },
    /// List users and whether they are active.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Stop a user from logging in; their API tokens and dashboard sessions stop working at once.
    Disable {
        /// Login name.
        login: String,
    },
    /// Let a disabled user log in again.
    Enable {
        /// Login name.
        login: String,
    },
    /// Set a new password (read from PHOEBE_NEW_PASSWORD or standard input); ends their sessions.
    ResetPassword {
        /// Login name.
        login: String,
    },
}

/// `phoebe config ...`
#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Print the effective configuration as TOML.
    Show,
}

/// Parses the process arguments and runs.
pub fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    run(cli)
}

fn load_config(cli: &Cli, bind: Option<String>) -> anyhow::Result<Config> {
    let sources = Sources::from_process(cli.config.clone(), cli.data_dir.clone(), bind);
    let (config, warnings) = Config::load(&sources)?;
    for w in warnings {
        tracing::warn!("{w}");
    }
    Ok(config)
}

/// The operations for the local command line, which may do everything: whoever runs `phoebe`
/// here owns the data folder.
fn open_ops(config: &Config) -> anyhow::Result<Ops> {
    let store = crate::server::open_store(config)?;
    let ops = match config.public_url_configured {
        true => Ops::new(store, &config.public_url),
        false => Ops::with_served_url(store, &config.public_url)?,
    };
    Ok(ops
        .with_policy(crate::ops::limits::Policy::of(config))
        .with_outbound(crate::alerts::Outbound::from_config(config).map_err(anyhow::Error::msg)?)
        .acting_as(Caller::Cli { as_user: None }))
}

/// A new password from PHOEBE_NEW_PASSWORD, else the first line of standard input.
fn new_password() -> anyhow::Result<String> {
    if let Ok(p) = std::env::var("PHOEBE_NEW_PASSWORD") {
        return Ok(p);
    }
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

fn admin_login() -> String {
    std::env::var("PHOEBE_ADMIN_USER")
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "admin".into())
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match &cli.command {
        Command::Serve { bind } => {
            let config = load_config(&cli, bind.clone())?;
            serve(config)?;
        }
        Command::Project { command } => {
            let config = load_config(&cli, None)?;
            let ops = open_ops(&config)?;
            match command {
                ProjectCommand::Create {
                    slug,
                    name,
                    platform,
                    org,
                } => {
                    let (_, dsn) = ops.create_project(
                        org.as_deref(),
                        slug,
                        name.as_deref(),
                        platform.as_deref(),
                    )?;
                    println!("{dsn}");
                }
                ProjectCommand::Rename { project, name } => {
                    let p = ops.rename_project(project, name)?;
                    eprintln!("project {} is now named {:?}", p.slug, p.name);
                }
                ProjectCommand::Delete { project, confirm } => {
                    ops.delete_project(project, confirm)?;
                    eprintln!("deleted project {project} with its keys, issues and events");
                }
                ProjectCommand::List { json } => {
                    let projects = ops.projects()?;
                    let mut out = std::io::stdout().lock();
                    if *json {
                        let list: Vec<_> = projects
                            .iter()
                            .map(|(p, keys)| {
                                serde_json::json!({
                                    "id": p.id, "slug": p.slug, "name": p.name, "organization": p.org_slug,
                                    "dsns": keys.iter().filter(|k| k.is_active).map(|k| ops.dsn(k)).collect::<Vec<_>>(),
                                })
                            })
                            .collect();
                        writeln!(out, "{}", serde_json::to_string_pretty(&list)?)?;
                    } else {
                        writeln!(out, "{:<6} {:<24} DSN", "ID", "PROJECT")?;
                        for (p, keys) in &projects {
                            let dsn = keys
                                .iter()
                                .find(|k| k.is_active)
                                .map(|k| ops.dsn(k))
                                .unwrap_or_else(|| "(no active key)".into());
                            writeln!(
                                out,
                                "{:<6} {:<24} {dsn}",
                                p.id,
                                format!("{}/{}", p.org_slug, p.slug)
                            )?;
                        }
                    }
                }
                ProjectCommand::Limits(args) => limits::project_limits(&ops, args)?,
            }
        }
        Command::Key { command } => {
            let config = load_config(&cli, None)?;
            let ops = open_ops(&config)?;
            match command {
                KeyCommand::Create { project, label } => {
                    let (_, dsn) = ops.create_key(project, label)?;
                    println!("{dsn}");
                }
                KeyCommand::Disable { key } => {
                    let k = ops.set_key_active(key, false)?;
                    eprintln!("key {} of project {} disabled", k.public_key, k.project_id);
                }
                KeyCommand::Enable { key } => {
                    let k = ops.set_key_active(key, true)?;
                    eprintln!("key {} of project {} enabled", k.public_key, k.project_id);
                }
                KeyCommand::Limits(args) => limits::key_limits(&ops, args)?,
            }
        }
        Command::Token {
            command: TokenCommand::Create { user, label, org },
        } => {
            let config = load_config(&cli, None)?;
            let ops = open_ops(&config)?;
            let login = user.clone().unwrap_or_else(admin_login);
            let token = ops
                .create_token_for(&login, label, org.as_deref())
                .with_context(|| format!("creating a token for user {login:?}"))?;
            println!("{token}");
        }
        Command::User { command } => {
            let config = load_config(&cli, None)?;
            let ops = open_ops(&config)?;
            match command {
                UserCommand::Create { login, role, email } => {
                    ops.create_user(None, login, &new_password()?, *role)?;
                    if let Some(email) = email {
                        ops.set_user_email(login, Some(email))?;
                    }
                    eprintln!("created user {login}");
                }
                UserCommand::SetEmail { login, email } => {
                    let user = ops.set_user_email(login, Some(email))?;
                    match user.email {
                        Some(e) => eprintln!("user {login} gets email at {e}"),
                        None => eprintln!("user {login} has no email address now"),
                    }
                }
                UserCommand::List { json } => {
                    let users = ops.users()?;
                    let mut out = std::io::stdout().lock();
                    if *json {
                        let list: Vec<_> = users
                            .iter()
                            .map(|u| serde_json::json!({"id": u.id, "login": u.login, "email": u.email, "isActive": u.is_active}))
                            .collect();
                        writeln!(out, "{}", serde_json::to_string_pretty(&list)?)?;
                    } else {
                        writeln!(out, "{:<6} {:<24} {:<32} STATUS", "ID", "LOGIN", "EMAIL")?;
                        for u in &users {
                            let status = if u.is_active { "active" } else { "disabled" };
                            let email = u.email.as_deref().unwrap_or("-");
                            writeln!(out, "{:<6} {:<24} {email:<32} {status}", u.id, u.login)?;
                        }
                    }
                }
                UserCommand::Disable { login } => {
                    ops.set_user_active(login, false)?;
                    eprintln!("user {login} disabled; their API tokens no longer work");
                }
                UserCommand::Enable { login } => {
                    ops.set_user_active(login, true)?;
                    eprintln!("user {login} enabled");
                }
                UserCommand::ResetPassword { login } => {
                    ops.reset_password(login, &new_password()?)?;
                    eprintln!("password of {login} changed");
                }
            }
        }
        Command::Issues { command } => {
            let config = load_config(&cli, None)?;
            let ops = open_ops(&config)?;
            issues::run(&ops, command)?;
        }
        Command::Sourcemaps { org, release } => {
            let config = load_config(&cli, None)?;
            let ops = open_ops(&config)?;
            let files = ops.artifact_files(org, release.as_deref())?;
            let mut out = std::io::stdout().lock();
            writeln!(
                out,
                "{:<40} {:<16} {:<36} {:<12} URL",
                "BUNDLE", "TYPE", "DEBUG ID", "RELEASE"
            )?;
            for (bundle, release, f) in &files {
                writeln!(
                    out,
                    "{bundle:<40} {:<16} {:<36} {:<12} {}",
                    f.kind,
                    f.debug_id.as_deref().unwrap_or("-"),
                    release.as_deref().unwrap_or("-"),
                    f.url
                )?;
            }
            if files.is_empty() {
                eprintln!("no source maps yet: upload them with `sentry-cli sourcemaps upload`");
            }
        }
        Command::SendTestEvent { dsn, message } => {
            let id = send_test_event(dsn, message)?;
            println!("{id}");
        }
        Command::Config {
            command: ConfigCommand::Show,
        } => {
            let config = load_config(&cli, None)?;
            print!("{}", config.to_toml());
        }
        Command::Healthcheck { url } => {
            let base = match url {
                Some(u) => u.trim_end_matches('/').to_string(),
                None => load_config(&cli, None)?.public_url,
            };
            let agent = ureq::AgentBuilder::new()
                .timeout(std::time::Duration::from_secs(2))
                .build();
            return Ok(match agent.get(&format!("{base}/healthz")).call() {
                Ok(r) if r.status() == 200 => ExitCode::SUCCESS,
                Ok(r) => {
                    eprintln!("{base}/healthz answered {}", r.status());
                    ExitCode::FAILURE
                }
                Err(e) => {
                    eprintln!("{base}/healthz: {e}");
                    ExitCode::FAILURE
                }
            });
        }
        Command::Alerts { command } => {
            let config = load_config(&cli, None)?;
            alerts::run(&open_ops(&config)?, command)?;
        }
        Command::Usage(args) => {
            let config = load_config(&cli, None)?;
            limits::usage(&open_ops(&config)?, args)?;
        }
        Command::Bench(args) => crate::bench::run(args)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn serve(mut config: Config) -> anyhow::Result<()> {
    // Before the runtime starts its threads. Only the server: the benchmark's generator
    // allocates a gzip encoder's 300 KiB per body, which the mmap threshold would turn into
    // an mmap, page faults and munmap each.
    crate::memory::tune_malloc();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let store = crate::server::open_store(&config)?;
        let password = std::env::var("PHOEBE_ADMIN_PASSWORD").ok().filter(|p| !p.is_empty());
        let listener = tokio::net::TcpListener::bind(config.bind)
            .await
            .with_context(|| format!("listening on {} (is another server running there? choose another with --bind)", config.bind))?;
        let local = listener.local_addr()?;
        // `--bind 127.0.0.1:0` (tests) picks a free port; DSNs must name the real one.
        if config.bind.port() == 0 && config.public_url == format!("http://{}", config.bind) {
            config.public_url = format!("http://{local}");
        }
        let ops = Ops::new(store.clone(), &config.public_url);
        let boot = tokio::task::spawn_blocking({
            let ops = ops.clone();
            move || -> anyhow::Result<_> {
                ops.record_served_url()?;
                Ok(ops.bootstrap(&admin_login(), password.as_deref())?)
            }
        })
        .await??;
        if let Some(b) = &boot {
            eprintln!("Created organization '{}', user '{}' and project '{}'.", b.org.slug, b.admin_login, b.project.slug);
            if let Some(p) = &b.generated_password {
                eprintln!("Admin password (shown once): {p}");
            }
        }
        // The operator started the server from the command line: it may read its projects.
        let operator = ops.acting_as(Caller::Cli { as_user: None });
        let first_dsn = operator.projects()?.into_iter().find_map(|(_, keys)| keys.into_iter().find(|k| k.is_active)).map(|k| operator.dsn(&k));
        tracing::info!(address = %local, data_dir = %config.data_dir.display(), "Phoebe is listening");
        if let Some(dsn) = first_dsn {
            eprintln!("Phoebe is listening on http://{local}. Point an SDK at this DSN: {dsn}");
        }
        eprintln!("Dashboard: {}/ (log in as an admin user; `phoebe user list` shows them)", config.public_url.trim_end_matches('/'));
        crate::server::run(config, store, listener, crate::server::shutdown_signal()).await
    })
}

/// Sends a message event to `dsn` through the real ingest endpoint and returns the event id.
pub fn send_test_event(dsn: &str, message: &str) -> anyhow::Result<String> {
    let dsn: phoebe_protocol::dsn::Dsn =
        dsn.parse().map_err(|e| anyhow::anyhow!("bad --dsn: {e}"))?;
    let event_id = uuid::Uuid::new_v4().simple().to_string();
    let event = serde_json::json!({
        "event_id": event_id,
        "timestamp": chrono::Utc::now().timestamp_millis() as f64 / 1000.0,
        "platform": "other",
        "level": "info",
        "logger": "phoebe.send-test-event",
        "message": {"formatted": message},
        "sdk": {"name": "phoebe.cli", "version": env!("CARGO_PKG_VERSION")},
    });
    let payload = serde_json::to_vec(&event)?;
    let body = phoebe_protocol::envelope::Envelope::serialize(
        &serde_json::json!({"event_id": event_id, "sent_at": chrono::Utc::now().to_rfc3339()}),
        &[(
            serde_json::json!({"type": "event", "content_type": "application/json"}),
            payload.as_slice(),
        )],
    );
    let auth = format!(
        "Sentry sentry_version=7, sentry_client=phoebe-cli/{}, sentry_key={}",
        env!("CARGO_PKG_VERSION"),
        dsn.public_key
    );
    let response = ureq::post(&dsn.envelope_url())
        .set("X-Sentry-Auth", &auth)
        .set("Content-Type", "application/x-sentry-envelope")
        .send_bytes(&body);
    match response {
        Ok(_) => Ok(event_id),
        Err(ureq::Error::Status(code, r)) => bail!(
            "the server refused the event with {code}: {}",
            r.into_string().unwrap_or_default()
        ),
        Err(e) => bail!("could not reach {}: {e}", dsn.envelope_url()),
    }
}
