//! The report's sections, one module each; what they share: which backends a section runs
//! on, and how a target reads.

mod audit;
mod commands;
mod connection_tests;
mod console;
mod rebuild;
mod resolve;
mod runtime;
mod scale;
mod usage;

pub(crate) use audit::audit_section;
pub(crate) use commands::commands_section;
pub(crate) use connection_tests::connection_tests_section;
pub(crate) use console::console_section;
pub(crate) use rebuild::{embedded_rebuild_section, jetstream_rebuild_section};
pub(crate) use resolve::resolve_section;
pub(crate) use runtime::runtime_section;
pub(crate) use scale::scale_section;
pub(crate) use usage::usage_section;

use crate::Cli;
use crate::nats::NatsServer;
use crate::registry::Backend;

/// The log backends a registry section runs on: the bench's nats-server (a stream and a
/// keyring bucket of the section's own), then the embedded log unless skipped.
pub(crate) fn backends(cli: &Cli, nats: &NatsServer, name: &str) -> Vec<Backend> {
    let mut backends = vec![Backend::JetStream {
        url: nats.url(),
        stream: format!("BENCH_{name}"),
        keyring: format!("BENCH_{name}_KEYRING"),
    }];
    if !cli.no_embedded {
        backends.push(Backend::Embedded);
    }
    backends
}

pub(crate) fn nats_pid_of(backend: &Backend, nats: &NatsServer) -> Option<u32> {
    match backend {
        Backend::JetStream { .. } => Some(nats.pid()),
        Backend::Embedded => None,
    }
}
