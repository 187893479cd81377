//! Integration tests: the real `phoebe` binary, real HTTP, real SDKs.

mod util;

mod api;
mod cli;
mod corpus;
mod crash;
mod disk_full;
mod ingest_errors;
mod quotas;
mod sdks;
