//! Read views in redb, fed by the projector from the event log, and rebuilt from it on demand.
//!
//! Architecture invariant: views never append to the log, and hold nothing that cannot be
//! rebuilt from it. Rows and the checkpoint are written in one write transaction, so a crash
//! never applies an event twice or skips one. The audit trail is in a file of its own that
//! is never behind the views: a batch's audit rows commit first.

mod audit;
mod block;
mod changes;
mod checksum;
mod open;
mod projector;
mod rows;
mod store;

pub use audit::{AuditFilter, AuditPage};
pub use open::audit_path;
pub use projector::{
    FollowSettings, ProjectError, TOKEN_ISSUED, rebuild, rebuild_until, replay, run_projector,
    run_projector_with,
};
pub use rows::{
    AuditRow, CatalogChange, CatalogRow, Change, ConnectionTestRow, CredentialRow, Deactivation,
    DeletedWorkflowRow, LastTest, ModelRow, Notice, OrgRow, Retirement, StreamPos, TokenRow,
    UsageRow, VersionRow, WorkflowRow,
};
pub use store::{ProjectorWrites, ViewError, Views};
