//! Phoebe: a self-hosted error tracker that speaks the Sentry protocol. This crate is the I/O
//! shell around the pure `phoebe-protocol` and `phoebe-grouping` crates; `main.rs` is glue.
//! Modules in reading order follow an event from the socket to the screen; see ARCHITECTURE.md.

pub mod alerts;
pub mod api;
pub mod artifacts;
pub mod bench;
pub mod cli;
pub mod codec;
pub mod config;
pub mod digest;
pub mod domain;
pub mod inbox;
pub mod ingest;
pub mod memory;
pub mod ops;
pub mod quota;
pub mod retention;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod ui;
