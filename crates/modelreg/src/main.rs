//! The `modelreg` binary: `serve`, `admin`, `rebuild`, and client commands that speak HTTP
//! to a running registry.

mod catalog_cmds;
mod client;
mod server_cmds;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "modelreg",
    version,
    about = "The LLM model registry of an organization"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    #[command(flatten)]
    remote: client::Remote,
}

/// Where the registry keeps its state; the same flags for `serve`, `admin` and `rebuild`.
#[derive(Args, Clone)]
pub(crate) struct StateArgs {
    /// A TOML config file (also MODELREG_CONFIG).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Data directory for the embedded log, keyring, views and key files (MODELREG_DATA_DIR).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Use NATS JetStream at these servers (one URL, or several comma-separated) instead of
    /// the embedded log (MODELREG_NATS_URL).
    #[arg(long)]
    nats: Option<String>,
    /// Log format: text or json (MODELREG_LOG_FORMAT).
    #[arg(long)]
    log_format: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the registry: HTTP API, projector (embedded log by default).
    Serve {
        #[command(flatten)]
        state: StateArgs,
        /// Address to listen on, e.g. 127.0.0.1:8080 (MODELREG_LISTEN).
        #[arg(long)]
        listen: Option<String>,
    },
    /// Operator commands that act on the registry's state directly.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Replay the whole log into fresh views, swap them in, and print their checksum.
    /// Stop the server first: the views file is open in it. With --out, build the views
    /// into that file instead (up to --until) and leave the live ones alone.
    Rebuild {
        #[command(flatten)]
        state: StateArgs,
        /// Replay only up to a log position (e.g. 42) or an RFC 3339 time (the last event
        /// recorded at or before it); needs --out.
        #[arg(long, requires = "out")]
        until: Option<String>,
        /// Write the views to this file instead of swapping the live ones (their audit trail
        /// beside it, with the extension `.audit.redb`).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Run a worker process (NATS mode; on the embedded log `serve` runs workers itself).
    Worker {
        #[command(subcommand)]
        kind: WorkerKind,
    },
    /// Manage models through a running registry.
    Models {
        #[command(subcommand)]
        command: Box<client::ModelsCommand>,
    },
    /// Saved credentials (metadata only) through a running registry.
    Credentials {
        #[command(subcommand)]
        command: client::CredentialsCommand,
    },
    /// Workflows as the pipelines product reports them, through a running registry.
    Workflows {
        #[command(subcommand)]
        command: client::WorkflowsCommand,
    },
    /// Usage and spend of the org's LLM calls, through a running registry.
    Usage {
        #[command(subcommand)]
        command: client::UsageCommand,
    },
    /// Exports for other tools, through a running registry.
    Export {
        #[command(subcommand)]
        command: client::ExportCommand,
    },
    /// The providers a custom model can use: each one's credential fields (and alternatives),
    /// endpoint and model id form, through a running registry.
    Providers,
    /// API tokens of the org, through a running registry.
    Tokens {
        #[command(subcommand)]
        command: client::TokensCommand,
    },
    /// The org's choices among platform models, through a running registry.
    Org {
        #[command(subcommand)]
        command: client::OrgCommand,
    },
    /// The platform catalog: list and show through a running registry; sync, add, retire,
    /// override and default as the operator, on the registry's state.
    Catalog {
        #[command(subcommand)]
        command: catalog_cmds::CatalogCommand,
    },
    /// The org's audit trail through a running registry (admins): newest first, as a table
    /// or JSON lines with --json. `audit verify` checks the log itself.
    #[command(args_conflicts_with_subcommands = true)]
    Audit {
        #[command(subcommand)]
        command: Option<AuditCommand>,
        #[command(flatten)]
        list: client::AuditArgs,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Print the running digest over the log at the server's position (admins), as
    /// POSITION:DIGEST: record it somewhere safe; `audit verify --expect` proves later that
    /// the log up to there is unchanged and was not cut short.
    Head,
    /// Walk the whole log (an operator command, reading it like `rebuild`): check every
    /// aggregate's chain of hashes and the running digest, and report the first edited,
    /// removed or reordered event with its position. Exits 1 on a break.
    Verify {
        #[command(flatten)]
        state: StateArgs,
        /// A head recorded earlier (GET /v1/audit/head, or an earlier verify), as
        /// POSITION:DIGEST: the log must still reach it with the same digest, which also
        /// detects a log cut short.
        #[arg(long)]
        expect: Option<String>,
    },
}

#[derive(Subcommand)]
enum WorkerKind {
    /// Run requested connection tests against their providers and record the outcomes.
    ConnectionTests {
        #[command(flatten)]
        state: StateArgs,
        #[command(flatten)]
        ops: OpsArgs,
    },
    /// On each deactivation: count referencing workflows, record the warning, send notices.
    Dependents {
        #[command(flatten)]
        state: StateArgs,
        #[command(flatten)]
        ops: OpsArgs,
    },
}

#[derive(Args)]
pub(crate) struct OpsArgs {
    /// Serve /healthz, /readyz and /metrics (this worker's job counters) at this address,
    /// e.g. 127.0.0.1:9101 (MODELREG_METRICS_LISTEN); unset: none.
    #[arg(long, env = "MODELREG_METRICS_LISTEN")]
    metrics_listen: Option<std::net::SocketAddr>,
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create an org and print its first admin token (once).
    CreateOrg {
        /// The org's name; its id is derived from it.
        name: String,
        #[command(flatten)]
        state: StateArgs,
    },
    /// Re-wrap every data key under the configured master key (master_key), unwrapping with
    /// it or the previous one (previous_master_key): a master key rotation, safe to run
    /// again. In NATS mode it runs while the replicas serve; with the embedded log, stop the
    /// server first. See the runbook in ops/README.md.
    RotateMasterKey {
        #[command(flatten)]
        state: StateArgs,
    },
}

/// mimalloc instead of the system allocator: glibc's arena locks showed up as the largest
/// single cost under concurrent load (allocation and futex waits on the resolve path).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let Cli { command, remote } = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match command {
            Command::Serve { state, listen } => server_cmds::serve(state, listen).await,
            Command::Admin {
                command: AdminCommand::CreateOrg { name, state },
            } => server_cmds::create_org(state, &name).await,
            Command::Admin {
                command: AdminCommand::RotateMasterKey { state },
            } => server_cmds::rotate_master_key(state).await,
            Command::Rebuild { state, until, out } => match out {
                Some(out) => server_cmds::rebuild_into(state, until.as_deref(), &out).await,
                None => server_cmds::rebuild(state).await,
            },
            Command::Worker {
                kind: WorkerKind::Dependents { state, ops },
            } => server_cmds::dependents_worker(state, ops.metrics_listen).await,
            Command::Worker {
                kind: WorkerKind::ConnectionTests { state, ops },
            } => server_cmds::connection_test_worker(state, ops.metrics_listen).await,
            Command::Models { command } => client::models::run(remote, *command).await,
            Command::Credentials { command } => client::credentials::run(remote, command).await,
            Command::Workflows { command } => client::workflows::run(remote, command).await,
            Command::Tokens { command } => client::tokens::run(remote, command).await,
            Command::Providers => client::providers::run(remote).await,
            Command::Usage { command } => client::usage::run(remote, command).await,
            Command::Export { command } => client::export::run(remote, command).await,
            Command::Org { command } => client::org::run(remote, command).await,
            Command::Catalog { command } => catalog_cmds::run(remote, command).await,
            Command::Audit {
                command: Some(AuditCommand::Verify { state, expect }),
                ..
            } => server_cmds::verify(state, expect.as_deref()).await,
            Command::Audit {
                command: Some(AuditCommand::Head),
                ..
            } => client::audit::head(remote).await,
            Command::Audit {
                command: None,
                list,
            } => client::audit::run(remote, list).await,
        }
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) if is_misconfiguration(&error) => {
            eprintln!("configuration error: {error:#}");
            // EX_CONFIG: a restart policy can tell it from a failure that retrying may fix.
            std::process::ExitCode::from(78)
        }
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// A mistake in the configuration, which retrying cannot fix: a setting that does not load,
/// a master key or key file that cannot be used, a worker setting that is refused.
fn is_misconfiguration(error: &anyhow::Error) -> bool {
    error.downcast_ref::<app::config::ConfigError>().is_some()
        || error
            .downcast_ref::<app::AppError>()
            .is_some_and(app::AppError::is_misconfiguration)
        || matches!(
            error.downcast_ref::<workers::WorkerError>(),
            Some(workers::WorkerError::Settings { .. })
        )
}

/// Writes a line to stdout: the binary's output, as opposed to logs on stderr.
pub(crate) fn say(text: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout(), "{text}");
}

/// Writes a line to stderr: progress, notices and advice, kept apart from the output on stdout
/// (so that `--json` output parses).
pub(crate) fn note(text: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{text}");
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Cli;

    /// Every flag and argument of every command says what it is for in `--help`.
    #[test]
    fn every_flag_has_help_text() {
        fn walk(command: &clap::Command, path: &str, missing: &mut Vec<String>) {
            if command.get_about().is_none() && !path.is_empty() {
                missing.push(format!("{path} (the command itself)"));
            }
            for arg in command.get_arguments() {
                let id = arg.get_id().as_str();
                if arg.is_hide_set() || id == "help" || id == "version" {
                    continue;
                }
                if arg.get_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in command.get_subcommands() {
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        let mut cli = Cli::command();
        cli.build();
        walk(&cli, "", &mut missing);
        assert!(missing.is_empty(), "without help text: {missing:?}");
        Cli::command().debug_assert();
    }
}
