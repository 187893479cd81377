//! Releases and deploys as sentry-cli and the API manage them: create (idempotently), finalize,
//! archive or restore, list, delete, and record deploys. Projects are named by slug or id within
//! the release's organization.

use super::{Ops, OpsError, OpsResult, Permission};
use crate::domain::*;

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Ops {
    /// Projects of `org` named by slug or id.
    pub(super) fn org_projects_by_name(
        &self,
        org: &Org,
        names: &[String],
    ) -> OpsResult<Vec<ProjectId>> {
        let projects = self.store.projects()?;
        names
            .iter()
            .map(|name| {
                projects
                    .iter()
                    .find(|p| p.org_id == org.id && (p.slug == *name || p.id.to_string() == *name))
                    .map(|p| p.id)
                    .ok_or(OpsError::NotFound("project"))
            })
            .collect()
    }

    /// Creates a release (or, when it exists, changes it as asked); says whether it was new.
    pub fn create_release(
        &self,
        org: &str,
        version: &str,
        projects: &[String],
        mut change: ReleaseChange,
    ) -> OpsResult<(Release, bool)> {
        self.allow(Permission::ManageProjects)?;
        check_version(version).map_err(OpsError::Invalid)?;
        let org = self.org(Some(org))?;
        change.projects = self.org_projects_by_name(&org, projects)?;
        Ok(self
            .store
            .upsert_release(org.id, version, &change, now_ms())?)
    }

    /// Changes a release: projects, link, dates, archived or open.
    pub fn update_release(
        &self,
        org: &str,
        version: &str,
        projects: &[String],
        mut change: ReleaseChange,
    ) -> OpsResult<Release> {
        self.allow(Permission::ManageProjects)?;
        let org = self.org(Some(org))?;
        change.projects = self.org_projects_by_name(&org, projects)?;
        Ok(self
            .store
            .update_release(org.id, version, &change, now_ms())?)
    }

    /// One release.
    pub fn release(&self, org: &str, version: &str) -> OpsResult<Release> {
        self.allow(Permission::Read)?;
        let org = self.org(Some(org))?;
        Ok(self.store.release(org.id, version)?)
    }

    /// Releases of an organization, or of one of its projects (slug or id), newest first;
    /// archived ones only when asked.
    pub fn releases(
        &self,
        org: &str,
        project: Option<&str>,
        archived: bool,
        limit: usize,
    ) -> OpsResult<Vec<Release>> {
        self.allow(Permission::Read)?;
        let org = self.org(Some(org))?;
        let project = match project {
            Some(p) => Some(self.org_projects_by_name(&org, &[p.to_string()])?[0]),
            None => None,
        };
        let wanted = if archived {
            ReleaseStatus::Archived
        } else {
            ReleaseStatus::Open
        };
        Ok(self
            .store
            .releases(org.id, project, usize::MAX)?
            .into_iter()
            .filter(|r| r.status == wanted)
            .take(limit)
            .collect())
    }

    /// Deletes a release with its deploys; its events stay.
    pub fn delete_release(&self, org: &str, version: &str) -> OpsResult<()> {
        self.allow(Permission::ManageProjects)?;
        let org = self.org(Some(org))?;
        Ok(self.store.delete_release(org.id, version)?)
    }

    /// Records a deploy of a release to an environment.
    pub fn create_deploy(&self, org: &str, version: &str, deploy: NewDeploy) -> OpsResult<Deploy> {
        self.allow(Permission::ManageProjects)?;
        if deploy.environment.trim().is_empty() {
            return Err(OpsError::Invalid(
                "a deploy needs an environment (production, staging ...)".into(),
            ));
        }
        let org = self.org(Some(org))?;
        Ok(self
            .store
            .create_deploy(org.id, version, &deploy, now_ms())?)
    }

    /// A release's deploys, newest first.
    pub fn deploys(&self, org: &str, version: &str) -> OpsResult<Vec<Deploy>> {
        self.allow(Permission::Read)?;
        let org = self.org(Some(org))?;
        Ok(self.store.deploys(org.id, version)?)
    }
}
