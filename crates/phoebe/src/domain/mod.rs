//! The domain model every layer shares: ids, organizations and projects, issues and their
//! triage, releases and deploys, source-map artifacts, usage, inbox entries, the digest batch, and the rules that turn digested events into issue changes.
//!
//! Architecture invariant: pure. Nothing here touches storage, the network, the file system or
//! the clock (`now` is an argument); it imports nothing of `crate` outside `domain`. Names from
//! outside (statuses, roles, activity kinds, ids) are parsed into these types once, at the edge.

pub mod alerts;
mod artifact;
mod batch;
mod directory;
mod ids;
mod inbox;
mod issue;
mod release;
pub mod rules;
mod usage;

pub use artifact::*;
pub use batch::*;
pub use directory::*;
pub use ids::*;
pub use inbox::*;
pub use issue::*;
pub use release::*;
pub use usage::*;
