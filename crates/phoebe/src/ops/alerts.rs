//! Alerts as people manage them: channels (checked before they are saved), rules, a test
//! notification, and the history of what was sent.

use super::{Ops, OpsError, OpsResult, Permission};
use crate::domain::alerts::*;
use crate::domain::IssueId;

/// Longest channel name, in characters.
const MAX_NAME: usize = 200;

impl Ops {
    /// Adds a channel to a project. Its URL must be http(s) and, unless the configuration allows
    /// it, must not reach a private address.
    pub fn add_channel(
        &self,
        project: &str,
        kind: ChannelKind,
        target: &str,
        name: Option<&str>,
        secret: Option<&str>,
    ) -> OpsResult<Channel> {
        self.allow(Permission::ManageProjects)?;
        let project = self.find_project(project)?;
        let target = target.trim();
        match kind {
            ChannelKind::Webhook
            | ChannelKind::Slack
            | ChannelKind::Discord
            | ChannelKind::GoogleChat
            | ChannelKind::Teams
            | ChannelKind::Ntfy => self
                .outbound
                .check_target(target)
                .map_err(OpsError::Invalid)?,
            ChannelKind::Telegram | ChannelKind::PagerDuty => {
                let param = match kind {
                    ChannelKind::Telegram => "chat_id",
                    _ => "routing_key",
                };
                crate::alerts::split_target(target, param).map_err(OpsError::Invalid)?;
                self.outbound
                    .check_target(target)
                    .map_err(OpsError::Invalid)?
            }
            ChannelKind::Email => {
                if target != MEMBERS {
                    crate::alerts::email::parse_recipients(target).map_err(OpsError::Invalid)?;
                }
                if self.outbound.smtp().is_none() {
                    return Err(OpsError::Invalid(
                        "email channels need a mail server: set [smtp] url (or PHOEBE_SMTP_URL) and from".into(),
                    ));
                }
            }
        }
        let name = name
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .unwrap_or(kind.as_str());
        if name.chars().count() > MAX_NAME {
            return Err(OpsError::Invalid(format!(
                "a channel name has at most {MAX_NAME} characters"
            )));
        }
        Ok(self.store.create_channel(
            project.id,
            kind,
            name,
            target,
            secret.filter(|s| !s.is_empty()),
        )?)
    }

    /// Channels, of one project (slug or id) or all.
    pub fn channels(&self, project: Option<&str>) -> OpsResult<Vec<Channel>> {
        self.allow(Permission::Read)?;
        let project = project.map(|p| self.find_project(p)).transpose()?;
        Ok(self.store.channels(project.map(|p| p.id))?)
    }

    /// Removes a channel; rules stop naming it and its pending notifications are dropped.
    pub fn remove_channel(&self, id: ChannelId) -> OpsResult<()> {
        self.allow(Permission::ManageProjects)?;
        Ok(self.store.delete_channel(id)?)
    }

    /// Adds a rule to a project: when its trigger fires for an event its filters admit,
    /// notify its channels (of the same project), at most once per issue per cooldown.
    pub fn add_rule(&self, project: &str, spec: RuleSpec) -> OpsResult<Rule> {
        self.allow(Permission::ManageProjects)?;
        let project = self.find_project(project)?;
        if spec.channels.is_empty() {
            return Err(OpsError::Invalid(
                "a rule needs at least one channel: add one with `phoebe alerts channel add`"
                    .into(),
            ));
        }
        if !(0..=super::MAX_PERIOD_MS).contains(&spec.cooldown_ms) {
            return Err(OpsError::Invalid("a cooldown is at most 90 days".into()));
        }
        spec.filters.check().map_err(OpsError::Invalid)?;
        Ok(self.store.create_rule(project.id, &spec)?)
    }

    /// Rules, of one project (slug or id) or all.
    pub fn rules(&self, project: Option<&str>) -> OpsResult<Vec<Rule>> {
        self.allow(Permission::Read)?;
        let project = project.map(|p| self.find_project(p)).transpose()?;
        Ok(self.store.rules(project.map(|p| p.id))?)
    }

    /// Removes a rule.
    pub fn remove_rule(&self, id: RuleId) -> OpsResult<()> {
        self.allow(Permission::ManageProjects)?;
        Ok(self.store.delete_rule(id)?)
    }

    /// Sends a test notification to a channel now; the error says what the receiver answered.
    pub fn test_channel(&self, id: ChannelId) -> OpsResult<Channel> {
        self.allow(Permission::ManageProjects)?;
        let channel = self.store.channel(id)?;
        let org_id = self.store.project(channel.project_id)?.org_id;
        let resolved = crate::alerts::email::with_members(&*self.store, channel.clone(), org_id)
            .map_err(OpsError::Invalid)?;
        crate::alerts::send_test(&self.outbound, &resolved, &self.public_url)
            .map_err(|e| OpsError::Invalid(format!("the test notification failed: {e}")))?;
        Ok(channel)
    }

    /// Notifications newest first, of one project (slug or id) or issue, or all.
    pub fn alert_history(
        &self,
        project: Option<&str>,
        issue: Option<IssueId>,
        limit: i64,
    ) -> OpsResult<Vec<Alert>> {
        self.allow(Permission::Read)?;
        let project = project.map(|p| self.find_project(p)).transpose()?;
        Ok(self
            .store
            .alert_history(project.map(|p| p.id), issue, limit.clamp(1, 1000))?)
    }
}

impl Ops {
    /// The signed-in user the operations act for, if a person.
    pub fn me(&self) -> Option<&crate::domain::User> {
        match &self.caller {
            super::Caller::Member { user, .. } => Some(user),
            _ => None,
        }
    }

    /// The user a summary is for: `login`, or the signed-in caller when `None`. People set their
    /// own summaries; owners (and the server's CLI) anyone's.
    fn summary_user(&self, login: Option<&str>) -> OpsResult<crate::domain::User> {
        match (login, self.me().cloned()) {
            (None, Some(me)) => Ok(me),
            (Some(login), Some(me)) if me.login == login => Ok(me),
            (None, None) => Err(OpsError::Invalid(
                "say whose summary this is: --user <login>".into(),
            )),
            (Some(login), _) => {
                self.allow(Permission::ManageUsers)?;
                Ok(self.store.user_by_login(login)?)
            }
        }
    }

    /// Starts, changes (`Some`) or stops (`None`) a summary email of a project for a user (see
    /// [`Ops::summary_user`]); a new one covers from now.
    pub fn set_summary(
        &self,
        project: &str,
        login: Option<&str>,
        period: Option<SummaryPeriod>,
    ) -> OpsResult<()> {
        self.allow(Permission::Read)?;
        let project = self.find_project(project)?;
        let user = self.summary_user(login)?;
        if period.is_some() && self.outbound.smtp().is_none() {
            return Err(OpsError::Invalid(
                "summary emails need a mail server: set [smtp] url (or PHOEBE_SMTP_URL) and from"
                    .into(),
            ));
        }
        let now = chrono::Utc::now().timestamp_millis();
        Ok(self.store.set_summary(user.id, project.id, period, now)?)
    }

    /// Summary emails: the caller's own, or everyone's for owners and the CLI.
    pub fn summaries(&self) -> OpsResult<Vec<(crate::domain::User, Summary)>> {
        self.allow(Permission::Read)?;
        let users = self.store.users()?;
        let mine = match &self.caller {
            super::Caller::Member { user, .. } if !self.caller.may(Permission::ManageUsers) => {
                Some(user.id)
            }
            _ => None,
        };
        Ok(self
            .store
            .summaries(mine)?
            .into_iter()
            .filter_map(|s| {
                let user = users.iter().find(|u| u.id == s.user_id)?.clone();
                Some((user, s))
            })
            .collect())
    }

    /// Sends a user's summary of a project now, covering what happened since the last one (at
    /// most a period back); `Ok(false)` when there was nothing to report.
    pub fn send_summary_now(&self, project: &str, login: Option<&str>) -> OpsResult<bool> {
        self.allow(Permission::Read)?;
        let project = self.find_project(project)?;
        let user = self.summary_user(login)?;
        let summary = self
            .store
            .summaries(Some(user.id))?
            .into_iter()
            .find(|s| s.project_id == project.id)
            .ok_or_else(|| {
                OpsError::Invalid(format!(
                    "{} has no summary of {}: set one up first",
                    user.login, project.slug
                ))
            })?;
        let settings = crate::alerts::Settings {
            public_url: self.public_url.clone(),
            outbound: self.outbound.clone(),
        };
        let now = chrono::Utc::now().timestamp_millis();
        crate::alerts::summary::send(&*self.store, &settings, &summary, now)
            .map_err(|e| OpsError::Invalid(format!("the summary could not be sent: {e}")))
    }
}
