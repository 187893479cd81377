//! Integration tests: the real `phoebe` binary, real HTTP, real SDKs.

mod util;

mod alerts;
mod api;
mod browser;
mod cli;
mod corpus;
mod crash;
mod dashboard;
mod disk_full;
mod ingest_errors;
mod memory;
mod quotas;
mod sdks;
mod sentry_cli;
mod triage;
