//! Integration tests: the real `phoebe` binary, real HTTP, real SDKs.

mod util;

mod api;
mod cli;
mod corpus;
mod crash;
mod ingest_errors;
mod sdks;
