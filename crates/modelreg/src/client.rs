//! Client commands: speak HTTP to a running registry, every request and answer one of the
//! wire contract's types (`api`). Secrets are read from stdin or a hidden prompt, never from
//! argv (argv is visible to every user of the machine).
//!
//! The command's result goes to stdout: a short summary or table, or the API's JSON with
//! `--json`. Progress, an `add`'s Test Connection outcome, notices and prompts go to stderr,
//! so that `--json` output always parses.
//!
//! Along its seams: `args` (the clap structs), `http` (the client, its requests, timeouts and
//! errors), `input` (secrets from stdin or a hidden prompt, yes/no questions), `output`
//! (summaries and tables), `connection_test` (request one, wait for its outcome), and one flow
//! per noun: `models`, `credentials`, `workflows`, `tokens`.

mod args;
pub(crate) mod audit;
pub(crate) mod catalog;
mod connection_test;
pub(crate) mod credentials;
pub(crate) mod export;
mod http;
mod input;
pub(crate) mod models;
pub(crate) mod org;
mod output;
pub(crate) mod providers;
pub(crate) mod tokens;
pub(crate) mod usage;
pub(crate) mod workflows;

pub(crate) use args::{
    AuditArgs, CredentialsCommand, ExportCommand, ModelsCommand, OrgCommand, Remote, TokensCommand,
    UsageCommand, WorkflowsCommand,
};
