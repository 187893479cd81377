//! The Sentry wire protocol as Phoebe reads it: DSNs and client auth, envelopes, size limits,
//! and the lenient event model with its normalization.
//!
//! Pure code: no I/O, no clock (the receive time is an argument), no panics on input. SDKs send
//! every shape there is, so normalization reports problems beside its result instead of failing.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod auth;
pub mod client_report;
pub mod dsn;
pub mod envelope;
pub mod event;
pub mod json;
pub mod limits;
pub mod normalize;
