//! Projects: the overview (unresolved counts, a day of events), a project's settings (DSN keys
//! with setup snippets for each SDK, rename, delete) and creating projects.

use askama::Template;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use super::format::{self, url_encode};
use super::session::{CheckedForm, Viewer};
use super::{blocking, form_status, page, page_with_status, Shared, UiError};
use crate::domain::{Project, ProjectKey};
use crate::ops::{OpsError, ProjectSummary};

/// One project of the overview.
pub struct ProjectRow {
    pub project: Project,
    pub unresolved: i64,
    pub events_today: String,
    pub spark: String,
    pub dsn: Option<String>,
}

#[derive(Template)]
#[template(path = "projects.html")]
struct ProjectsPage {
    viewer: Viewer,
    rows: Vec<ProjectRow>,
    error: Option<String>,
}

fn rows(summaries: Vec<ProjectSummary>, dsn: impl Fn(&ProjectKey) -> String) -> Vec<ProjectRow> {
    summaries
        .into_iter()
        .map(|s| ProjectRow {
            unresolved: s.unresolved,
            events_today: format::count(s.last_day.iter().map(|(_, n)| n).sum()),
            spark: format::sparkline(&s.last_day, 120, 28),
            dsn: s.keys.iter().find(|k| k.is_active).map(&dsn),
            project: s.project,
        })
        .collect()
}

pub async fn list(state: Shared, viewer: Viewer) -> Result<Response, UiError> {
    let rows = blocking(viewer.ops(&state.0), |ops| {
        Ok(rows(ops.project_summaries()?, |k| ops.dsn(k)))
    })
    .await?;
    page(&ProjectsPage {
        viewer,
        rows,
        error: None,
    })
}

/// `POST /projects/`: a new project, then its settings page (where its DSN and setup are).
pub async fn create(
    state: Shared,
    CheckedForm { viewer, form }: CheckedForm,
) -> Result<Response, UiError> {
    let slug = form.get("slug").unwrap_or("").trim().to_string();
    let platform = form
        .get("platform")
        .filter(|p| !p.is_empty())
        .map(str::to_string);
    let made = blocking(viewer.ops(&state.0), move |ops| {
        Ok(
            match ops.create_project(None, &slug, None, platform.as_deref()) {
                Ok((p, _)) => Ok(p),
                Err(OpsError::Invalid(m)) => Err(m),
                Err(OpsError::Conflict(what)) => Err(format!("{what} already exists")),
                Err(e) => return Err(e.into()),
            },
        )
    })
    .await?;
    match made {
        Ok(p) => Ok(Redirect::to(&format!("/projects/{}/", url_encode(&p.slug))).into_response()),
        Err(error) => {
            let rows = blocking(viewer.ops(&state.0), |ops| {
                Ok(rows(ops.project_summaries()?, |k| ops.dsn(k)))
            })
            .await?;
            page_with_status(
                StatusCode::BAD_REQUEST,
                &ProjectsPage {
                    viewer,
                    rows,
                    error: Some(error),
                },
            )
        }
    }
}

/// How to send errors from one SDK.
pub struct Snippet {
    pub name: &'static str,
    pub install: &'static str,
    pub code: String,
}

/// Setup for each official SDK, with the project's DSN filled in.
pub fn snippets(dsn: &str) -> Vec<Snippet> {
    let s = |name, install, code: &str| Snippet {
        name,
        install,
        code: code.replace("{DSN}", dsn),
    };
    vec![
        s(
            "Python",
            "pip install sentry-sdk",
            "import sentry_sdk\n\nsentry_sdk.init(\n    dsn=\"{DSN}\",\n    release=\"my-app@1.0.0\",\n    environment=\"production\",\n)",
        ),
        s(
            "JavaScript (browser)",
            "npm install @sentry/browser",
            "import * as Sentry from \"@sentry/browser\";\n\nSentry.init({\n  dsn: \"{DSN}\",\n  release: \"my-app@1.0.0\",\n});",
        ),
        s(
            "Node.js",
            "npm install @sentry/node",
            "const Sentry = require(\"@sentry/node\");\n\nSentry.init({\n  dsn: \"{DSN}\",\n  release: \"my-app@1.0.0\",\n});",
        ),
        s(
            "Java",
            "implementation 'io.sentry:sentry:8.+'   // Gradle",
            "import io.sentry.Sentry;\n\nSentry.init(options -> {\n  options.setDsn(\"{DSN}\");\n  options.setRelease(\"my-app@1.0.0\");\n});",
        ),
        s(
            "Go",
            "go get github.com/getsentry/sentry-go",
            "err := sentry.Init(sentry.ClientOptions{\n\tDsn:     \"{DSN}\",\n\tRelease: \"my-app@1.0.0\",\n})\nif err != nil {\n\tlog.Fatalf(\"sentry.Init: %s\", err)\n}\ndefer sentry.Flush(2 * time.Second)",
        ),
        s(
            ".NET",
            "dotnet add package Sentry",
            "SentrySdk.Init(options =>\n{\n    options.Dsn = \"{DSN}\";\n    options.Release = \"my-app@1.0.0\";\n});",
        ),
        s(
            "PHP",
            "composer require sentry/sentry",
            "\\Sentry\\init([\n    'dsn' => '{DSN}',\n    'release' => 'my-app@1.0.0',\n]);",
        ),
        s(
            "Ruby",
            "bundle add sentry-ruby",
            "Sentry.init do |config|\n  config.dsn = '{DSN}'\n  config.release = 'my-app@1.0.0'\nend",
        ),
        s(
            "Rust",
            "cargo add sentry",
            "let _guard = sentry::init((\n    \"{DSN}\",\n    sentry::ClientOptions {\n        release: sentry::release_name!(),\n        ..Default::default()\n    },\n));",
        ),
    ]
}

/// A key with its DSN, for the settings page.
pub struct KeyRow {
    pub key: ProjectKey,
    pub dsn: String,
    pub created: String,
}

#[derive(Template)]
#[template(path = "project.html")]
struct ProjectPage {
    viewer: Viewer,
    project: Project,
    keys: Vec<KeyRow>,
    snippets: Vec<Snippet>,
    error: Option<String>,
}

async fn settings_page(
    state: Shared,
    viewer: Viewer,
    slug: String,
    error: Option<String>,
) -> Result<Response, UiError> {
    let (project, keys) = blocking(viewer.ops(&state.0), move |ops| {
        let project = ops.find_project(&slug)?;
        let keys = ops.project_keys(&project)?;
        let now = chrono::Utc::now().timestamp_millis();
        let keys: Vec<KeyRow> = keys
            .into_iter()
            .map(|key| KeyRow {
                dsn: ops.dsn(&key),
                created: format::ago(key.created_ms, now),
                key,
            })
            .collect();
        Ok((project, keys))
    })
    .await?;
    let dsn = keys
        .iter()
        .find(|k| k.key.is_active)
        .map_or("<create an active key first>".to_string(), |k| {
            k.dsn.clone()
        });
    page_with_status(
        form_status(&error),
        &ProjectPage {
            viewer,
            project,
            keys,
            snippets: snippets(&dsn),
            error,
        },
    )
}

pub async fn settings(
    state: Shared,
    viewer: Viewer,
    Path(slug): Path<String>,
) -> Result<Response, UiError> {
    settings_page(state, viewer, slug, None).await
}

/// `POST /projects/{slug}/`: `action` = `create-key` (with `label`), `disable-key` or
/// `enable-key` (with `key`), `rename` (with `name`) or `delete` (with `confirm`, the slug).
pub async fn change(
    state: Shared,
    Path(slug): Path<String>,
    CheckedForm { viewer, form }: CheckedForm,
) -> Result<Response, UiError> {
    let field = |name: &str| form.get(name).unwrap_or("").to_string();
    let (action, label, key, name, confirm) = (
        field("action"),
        field("label"),
        field("key"),
        field("name"),
        field("confirm"),
    );
    let target = slug.clone();
    let outcome = blocking(viewer.ops(&state.0), move |ops| {
        let project = ops.find_project(&target)?;
        let key_of_project = |key: &str| -> Result<(), OpsError> {
            let ours = ops
                .project_keys(&project)?
                .iter()
                .any(|k| k.public_key.as_str() == key);
            if ours {
                Ok(())
            } else {
                Err(OpsError::NotFound("key"))
            }
        };
        let done = match action.as_str() {
            "create-key" => {
                let label = if label.trim().is_empty() {
                    "Default"
                } else {
                    label.trim()
                };
                ops.create_key(&project.slug, label).map(|_| ())
            }
            "disable-key" | "enable-key" => key_of_project(&key)
                .and_then(|()| ops.set_key_active(&key, action == "enable-key").map(|_| ())),
            "rename" => ops.rename_project(&project.slug, &name).map(|_| ()),
            "delete" => {
                return match ops.delete_project(&project.slug, &confirm) {
                    Ok(()) => Ok(Ok("/projects/".to_string())),
                    Err(OpsError::Invalid(m)) => Ok(Err(m)),
                    Err(e) => Err(e.into()),
                }
            }
            other => Err(OpsError::Invalid(format!("unknown action {other:?}"))),
        };
        match done {
            Ok(()) => Ok(Ok(format!("/projects/{}/", url_encode(&project.slug)))),
            Err(OpsError::Invalid(m)) => Ok(Err(m)),
            Err(e) => Err(e.into()),
        }
    })
    .await?;
    match outcome {
        Ok(to) => Ok(Redirect::to(&to).into_response()),
        Err(error) => settings_page(state, viewer, slug, Some(error)).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_snippet_names_the_dsn() {
        let all = snippets("http://k@h:8000/3");
        assert_eq!(all.len(), 9);
        for s in &all {
            assert!(s.code.contains("http://k@h:8000/3"), "{}", s.name);
        }
    }
}
