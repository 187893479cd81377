//! A project's releases: the list (newest first, open or archived) and one release with what is
//! known of it and its deploys. Read-only: sentry-cli, the API and SDK events make releases, so
//! these pages change nothing; like every face, they ask `ops` and only arrange the answer.

use askama::Template;
use axum::extract::{Path, Query};
use axum::response::{Redirect, Response};
use serde::Deserialize;

use super::format::{self, url_encode};
use super::session::Viewer;
use super::{blocking, page, Shared, UiError};
use crate::domain::{Deploy, Project, Release};
use crate::ops::OpsError;

/// Releases the list shows at most, newest first.
const LIST_LEN: usize = 200;

/// The page of a release of a project.
pub fn release_path(project_slug: &str, version: &str) -> String {
    format!(
        "/projects/{}/releases/{}/",
        url_encode(project_slug),
        path_segment(version)
    )
}

/// The list of a project's releases.
fn list_path(project_slug: &str) -> String {
    format!("/projects/{}/releases/", url_encode(project_slug))
}

/// `s` percent-encoded as one path segment (`web@1.0+7` → `web%401.0%2B7`). `url_encode`
/// writes a space as `+`, which a path keeps as a plus; it writes a `+` of `s` as `%2B`, so
/// every `+` in its output was a space.
fn path_segment(s: &str) -> String {
    url_encode(s).replace('+', "%20")
}

/// The issue search for the issues of a release (`release:` is a tag filter of
/// [`crate::ops::query`]); `None` when the search language cannot say the version, which is
/// when it holds a `"`.
fn issues_query(version: &str) -> Option<String> {
    if version.contains('"') {
        None
    } else if version.contains(char::is_whitespace) {
        Some(format!("release:\"{version}\""))
    } else {
        Some(format!("release:{version}"))
    }
}

/// A time as the pages show it: how long ago, with the exact time for the tooltip.
pub struct When {
    pub ago: String,
    pub exact: String,
}

fn when(ms: i64, now_ms: i64) -> When {
    When {
        ago: format::ago(ms, now_ms),
        exact: format::exact(ms),
    }
}

fn when_some(ms: Option<i64>, now_ms: i64) -> Option<When> {
    ms.map(|ms| when(ms, now_ms))
}

/// A URL someone gave with a release or a deploy: a link only when it is a web address, so
/// that a `javascript:` URL stays text.
pub struct Link {
    pub text: String,
    pub href: Option<String>,
}

fn link(url: &str) -> Link {
    let lower = url.trim_start().to_ascii_lowercase();
    let web = lower.starts_with("https://") || lower.starts_with("http://");
    Link {
        text: url.to_string(),
        href: web.then(|| url.trim_start().to_string()),
    }
}

/// "2 · production": how many deploys and where the last one went; empty when none.
fn deploys_label(count: i64, last: Option<&Deploy>) -> String {
    match (count, last) {
        (i64::MIN..=0, _) => String::new(),
        (n, Some(d)) => format!("{n} · {}", d.environment),
        (n, None) => n.to_string(),
    }
}

/// One release of the list.
pub struct ReleaseRow {
    pub version: String,
    pub href: String,
    pub created: When,
    /// Finalized; `None` while unreleased.
    pub released: Option<When>,
    pub deploys: String,
    pub new_issues: String,
    pub events: String,
    pub last_event: Option<When>,
}

fn row(project_slug: &str, r: &Release, now_ms: i64) -> ReleaseRow {
    ReleaseRow {
        href: release_path(project_slug, &r.version),
        version: r.version.clone(),
        created: when(r.created_ms, now_ms),
        released: when_some(r.released_ms, now_ms),
        deploys: deploys_label(r.deploy_count, r.last_deploy.as_ref()),
        new_issues: format::count(r.new_issues),
        events: format::count(r.events),
        last_event: when_some(r.last_event_ms, now_ms),
    }
}

#[derive(Template)]
#[template(path = "releases.html")]
struct ReleasesPage {
    viewer: Viewer,
    project: Project,
    /// The archived ones, not the open ones.
    archived: bool,
    rows: Vec<ReleaseRow>,
    /// The list stopped at `LIST_LEN`.
    cut: bool,
}

/// `?archived=1` lists the archived releases.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    archived: Option<String>,
}

/// `GET /projects/{slug}/releases/`
pub async fn list(
    state: Shared,
    viewer: Viewer,
    Path(slug): Path<String>,
    Query(q): Query<ListQuery>,
) -> Result<Response, UiError> {
    let archived = q
        .archived
        .as_deref()
        .is_some_and(|v| !v.is_empty() && v != "0");
    let (project, releases) = blocking(viewer.ops(&state.0), move |ops| {
        let project = ops.find_project(&slug)?;
        let id = project.id.to_string();
        let releases = ops.releases(&project.org_slug, Some(&id), archived, LIST_LEN)?;
        Ok((project, releases))
    })
    .await?;
    let now = chrono::Utc::now().timestamp_millis();
    let rows: Vec<ReleaseRow> = releases
        .iter()
        .map(|r| row(&project.slug, r, now))
        .collect();
    page(&ReleasesPage {
        viewer,
        cut: rows.len() >= LIST_LEN,
        project,
        archived,
        rows,
    })
}

/// `GET /projects/{slug}/releases` (no slash): where the page is.
pub async fn to_list(Path(slug): Path<String>) -> Redirect {
    Redirect::permanent(&list_path(&slug))
}

/// One deploy of a release.
pub struct DeployRow {
    pub environment: String,
    pub name: String,
    pub link: Option<Link>,
    pub started: Option<When>,
    pub finished: When,
}

#[derive(Template)]
#[template(path = "release.html")]
struct ReleasePage {
    viewer: Viewer,
    project: Project,
    version: String,
    /// `open` or `archived`.
    status: &'static str,
    created: When,
    released: Option<When>,
    started: Option<When>,
    link: Option<Link>,
    first_event: Option<When>,
    last_event: Option<When>,
    new_issues: i64,
    events: i64,
    /// The projects it belongs to, each with this release's page there; the counts are theirs
    /// together.
    projects: Vec<(String, String)>,
    deploys: Vec<DeployRow>,
    /// The issue list searching for this release, when the search can name it.
    issues_href: Option<String>,
    releases_href: String,
}

/// `GET /projects/{slug}/releases/{version}/`: 404 when the project has no such release.
pub async fn detail(
    state: Shared,
    viewer: Viewer,
    Path((slug, version)): Path<(String, String)>,
) -> Result<Response, UiError> {
    let (project, release, deploys, projects) = blocking(viewer.ops(&state.0), move |ops| {
        let project = ops.find_project(&slug)?;
        let release = ops.release(&project.org_slug, &version)?;
        // Releases belong to an organization; another project's is not this project's page.
        if !release.projects.contains(&project.id) {
            return Err(OpsError::NotFound("release").into());
        }
        let deploys = ops.deploys(&project.org_slug, &version)?;
        let projects: Vec<String> = ops
            .projects()?
            .into_iter()
            .filter(|(p, _)| release.projects.contains(&p.id))
            .map(|(p, _)| p.slug)
            .collect();
        Ok((project, release, deploys, projects))
    })
    .await?;
    let now = chrono::Utc::now().timestamp_millis();
    let deploys = deploys
        .iter()
        .map(|d| DeployRow {
            environment: d.environment.clone(),
            name: d.name.clone().unwrap_or_default(),
            link: d.url.as_deref().map(link),
            started: when_some(d.started_ms, now),
            finished: when(d.finished_ms, now),
        })
        .collect();
    let projects = projects
        .into_iter()
        .map(|slug| {
            let href = release_path(&slug, &release.version);
            (slug, href)
        })
        .collect();
    let issues_href = issues_query(&release.version).map(|query| {
        format!(
            "/issues/?project={}&query={}",
            url_encode(&project.slug),
            url_encode(&query)
        )
    });
    page(&ReleasePage {
        viewer,
        releases_href: list_path(&project.slug),
        project,
        status: release.status.as_str(),
        created: when(release.created_ms, now),
        released: when_some(release.released_ms, now),
        started: when_some(release.started_ms, now),
        link: release.url.as_deref().map(link),
        first_event: when_some(release.first_event_ms, now),
        last_event: when_some(release.last_event_ms, now),
        new_issues: release.new_issues,
        events: release.events,
        projects,
        deploys,
        issues_href,
        version: release.version,
    })
}

/// `GET /projects/{slug}/releases/{version}` (no slash): where the page is.
pub async fn to_detail(Path((slug, version)): Path<(String, String)>) -> Redirect {
    Redirect::permanent(&release_path(&slug, &version))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{DeployId, IssueQuery};

    #[test]
    fn versions_become_one_path_segment() {
        assert_eq!(
            release_path("web", "web@1.0.0+build.7"),
            "/projects/web/releases/web%401.0.0%2Bbuild.7/"
        );
        assert_eq!(
            release_path("web", "nightly 2026-12-03"),
            "/projects/web/releases/nightly%202026-12-03/"
        );
    }

    #[test]
    fn the_issue_search_names_the_version_exactly() {
        for version in ["web@1.0.0", "1.0+build:7", "nightly 2026-12-03"] {
            let mut q = IssueQuery::default();
            crate::ops::query::parse_into(&issues_query(version).unwrap(), &mut q).unwrap();
            assert_eq!(q.tags, [("release".to_string(), version.to_string())]);
            assert!(q.text.is_empty() && q.status.is_none(), "{version}: {q:?}");
        }
        assert_eq!(issues_query("say \"hi\""), None);
    }

    #[test]
    fn only_web_addresses_become_links() {
        let href = |url: &str| link(url).href;
        assert_eq!(
            href("https://ci.example/run/7").as_deref(),
            Some("https://ci.example/run/7")
        );
        assert_eq!(
            href("HTTP://ci.example").as_deref(),
            Some("HTTP://ci.example")
        );
        assert_eq!(href("javascript:alert(1)"), None);
        assert_eq!(href("ci.example/run/7"), None);
        assert_eq!(link("javascript:alert(1)").text, "javascript:alert(1)");
    }

    #[test]
    fn deploys_say_how_many_and_where_the_last_went() {
        let production = Deploy {
            id: DeployId(1),
            version: "1.0".into(),
            environment: "production".into(),
            name: None,
            url: None,
            started_ms: None,
            finished_ms: 0,
        };
        assert_eq!(deploys_label(2, Some(&production)), "2 · production");
        assert_eq!(deploys_label(1, None), "1");
        assert_eq!(deploys_label(0, None), "");
    }
}
