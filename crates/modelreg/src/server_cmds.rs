//! Commands that run the registry or act on its state: serve, admin create-org, rebuild.

use std::sync::Arc;

use anyhow::{Context, bail};
use app::config::{Config, Flags, LogFormat};
use indicatif::{ProgressBar, ProgressStyle};
use tracing_subscriber::EnvFilter;

use crate::{StateArgs, say};

/// The config's layers, flags last: `app::config` merges them all, so the binary only says
/// which flags were given.
pub(crate) fn load_config(state: &StateArgs, listen: Option<String>) -> anyhow::Result<Config> {
    let flags = Flags {
        data_dir: state.data_dir.clone(),
        nats_url: state.nats.clone(),
        log_format: state.log_format.clone(),
        listen,
    };
    Ok(Config::load_with_flags(
        state.config.as_deref(),
        std::env::vars(),
        &flags,
    )?)
}

pub(crate) fn init_logging(config: &Config) {
    let filter = EnvFilter::try_new(&config.log_level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match config.log_format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

fn describe_backend(config: &Config) -> String {
    match &config.nats_url {
        Some(url) => format!(
            "NATS JetStream at {} (stream {})",
            eventlog::redacted_url(url),
            config.stream
        ),
        None => format!("embedded log in {}", config.data_dir.display()),
    }
}

pub(crate) async fn serve(state: StateArgs, listen: Option<String>) -> anyhow::Result<()> {
    let config = load_config(&state, listen)?;
    init_logging(&config);
    let running = app::start(&config).await?;
    if running.created_master_key
        && let Some(path) = &running.master_key_path
    {
        say(&format!(
            "generated a master key in {} (mode 0600); back it up: without it no credential can be opened",
            path.display()
        ));
    }
    // The web console on the same listener; its sessions live in this process.
    let console = Arc::new(webconsole::Console::default());
    let mut sign_in_link = None;
    if config.bootstrap_default_org
        && let Some((path, token)) =
            app::bootstrap_default_org(&running.registry, &config.data_dir).await?
    {
        say("created org \"default\"; its admin token (shown once, also kept in a 0600 file):");
        say(&format!("  {}", token.expose_secret()));
        say(&format!("  saved in {}", path.display()));
        sign_in_link = Some(console.sign_in_link(&token));
    }
    if config.platform_openrouter_key.is_none() {
        // Custom models work without it, so the server stays ready; platform models do not.
        tracing::warn!(
            "no platform OpenRouter key (MODELREG_PLATFORM_OPENROUTER_KEY): resolving a platform model answers 503 platform.not_configured until the operator sets it; custom models work"
        );
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let address = listener.local_addr()?;
    say(&format!(
        "modelreg listening on http://{address} ({})",
        describe_backend(&config)
    ));
    // What a client in another shell needs, ready to paste.
    let token_file = config.data_dir.join("bootstrap-token");
    let mut client_env = format!("export MODELREG_SERVER=http://{}", reachable(address));
    if token_file.exists() {
        client_env.push_str(&format!(
            " MODELREG_TOKEN_FILE={}",
            shell_word(&token_file.display().to_string())
        ));
    }
    say(&format!("clients: {client_env}"));
    say("  then: modelreg models list");
    if let Some(link) = sign_in_link {
        say(&format!(
            "console: open http://{}{link} to sign in as the admin (the link works once)",
            reachable(address)
        ));
    } else {
        say(&format!(
            "console: http://{}/ (sign in with an API token)",
            reachable(address)
        ));
    }
    // On the embedded log the workers run here; with NATS they are their own processes.
    // They stop after HTTP has drained and before the projector, so a job in flight can
    // still wait for the views and ack (stopping them with the projector left such jobs to
    // time out, unacked, and run again on the next start).
    let workers_stop = tokio::sync::watch::Sender::new(false);
    let workers_stopped = || {
        let mut receiver = workers_stop.subscribe();
        async move {
            let _ = receiver.wait_for(|stopped| *stopped).await;
        }
    };
    let mut workers = Vec::new();
    match &config.nats_url {
        None => {
            let registry = Arc::clone(&running.registry);
            let stopped = workers_stopped();
            workers.push(tokio::spawn(async move {
                if let Err(error) =
                    workers::dependents::run(registry, Arc::new(workers::QuietNotifier), stopped)
                        .await
                {
                    tracing::error!(%error, "dependents worker stopped");
                }
            }));
            let settings = workers::connection_tests::settings(&config.providers)?;
            let registry = Arc::clone(&running.registry);
            let stopped = workers_stopped();
            workers.push(tokio::spawn(async move {
                if let Err(error) =
                    workers::connection_tests::run(registry, settings, stopped).await
                {
                    tracing::error!(%error, "connection-test worker stopped");
                }
            }));
        }
        Some(url) => {
            // Workflow reports and usage records arrive over NATS too; every replica serves
            // them (queue groups).
            let client = eventlog::connect_nats(url).await?;
            let registry = Arc::clone(&running.registry);
            let stopped = workers_stopped();
            let pipelines_client = client.clone();
            workers.push(tokio::spawn(async move {
                if let Err(error) =
                    workers::pipelines::run(registry, pipelines_client, stopped).await
                {
                    tracing::error!(%error, "workflow reports over NATS stopped");
                }
            }));
            let registry = Arc::clone(&running.registry);
            let stopped = workers_stopped();
            workers.push(tokio::spawn(async move {
                if let Err(error) = workers::usage_reports::run(registry, client, stopped).await {
                    tracing::error!(%error, "usage reports over NATS stopped");
                }
            }));
        }
    }
    {
        // Expiration dates that come between syncs retire their models too (hourly).
        let registry = Arc::clone(&running.registry);
        let stopped = workers_stopped();
        workers.push(tokio::spawn(async move {
            workers::catalog_sync::run_expiry_checks(
                registry,
                std::time::Duration::from_secs(3600),
                stopped,
            )
            .await;
        }));
    }
    if config.catalog_sync_interval_s > 0 {
        let settings = workers::connection_tests::settings(&config.providers)?.providers;
        let every = std::time::Duration::from_secs(config.catalog_sync_interval_s);
        let auto_list = config.catalog_auto_list();
        let registry = Arc::clone(&running.registry);
        let stopped = workers_stopped();
        say(&format!(
            "the platform catalog syncs from OpenRouter every {} s",
            config.catalog_sync_interval_s
        ));
        workers.push(tokio::spawn(async move {
            workers::catalog_sync::run_periodic(registry, settings, auto_list, every, stopped)
                .await;
        }));
    }
    let registry = Arc::clone(&running.registry);
    let served = server::serve_console(
        listener,
        registry,
        console,
        timeouts(&config),
        shutdown_signal(),
    )
    .await;
    workers_stop.send_replace(true);
    for worker in workers {
        let _ = worker.await;
    }
    running.stop().await;
    Ok(served?)
}

/// `address` as a client on this machine reaches it: a wildcard listen address is not one
/// to connect to.
fn reachable(address: std::net::SocketAddr) -> String {
    match address.ip() {
        std::net::IpAddr::V4(ip) if ip.is_unspecified() => format!("127.0.0.1:{}", address.port()),
        std::net::IpAddr::V6(ip) if ip.is_unspecified() => format!("localhost:{}", address.port()),
        _ => address.to_string(),
    }
}

/// Adds "stop the server first" to an error only when it says a file is locked by another
/// process; any other failure to open the state keeps its own message.
pub(crate) fn stop_the_server_first<E>(error: E) -> anyhow::Error
where
    E: std::error::Error + Send + Sync + 'static,
{
    // The embedded log, the keyring and the views all say "already open" (redb's lock).
    let locked = error.to_string().contains("already open");
    let error = anyhow::Error::new(error);
    if locked {
        return error.context(
            "the registry's state is in use by another process: stop the server (and any worker on this data dir) first",
        );
    }
    error
}

/// The connection timeouts `config` sets, for every HTTP listener.
fn timeouts(config: &app::config::Config) -> server::Timeouts {
    server::Timeouts {
        header_read: std::time::Duration::from_millis(config.http_header_read_timeout_ms.max(1)),
    }
}

/// A worker's `/healthz`, `/readyz` and `/metrics` at `address`, until the returned sender
/// is used (or dropped).
async fn serve_worker_ops(
    registry: &Arc<app::Registry>,
    address: Option<std::net::SocketAddr>,
    timeouts: server::Timeouts,
) -> anyhow::Result<
    Option<(
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<()>,
    )>,
> {
    let Some(address) = address else {
        return Ok(None);
    };
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address} for metrics"))?;
    say(&format!(
        "metrics, health and readiness on http://{}/metrics",
        reachable(listener.local_addr()?)
    ));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let registry = Arc::clone(registry);
    let task = tokio::spawn(async move {
        let shutdown = async move {
            let _ = stopped.await;
        };
        if let Err(error) = server::serve_ops(listener, registry, timeouts, shutdown).await {
            tracing::error!(%error, "the metrics listener stopped");
        }
    });
    Ok(Some((stop, task)))
}

async fn stop_worker_ops(
    ops: Option<(
        tokio::sync::oneshot::Sender<()>,
        tokio::task::JoinHandle<()>,
    )>,
) {
    if let Some((stop, task)) = ops {
        let _ = stop.send(());
        let _ = task.await;
    }
}

pub(crate) async fn connection_test_worker(
    state: StateArgs,
    metrics_listen: Option<std::net::SocketAddr>,
) -> anyhow::Result<()> {
    let mut config = load_config(&state, None)?;
    config.bootstrap_default_org = false;
    init_logging(&config);
    if config.nats_url.is_none() {
        bail!(
            "the connection-test worker runs as its own process in NATS mode (--nats URL); on the embedded log `serve` runs it"
        );
    }
    let settings = workers::connection_tests::settings(&config.providers)?;
    let running = app::start(&config).await?;
    let ops = serve_worker_ops(&running.registry, metrics_listen, timeouts(&config)).await?;
    say("connection-test worker running");
    let result =
        workers::connection_tests::run(Arc::clone(&running.registry), settings, shutdown_signal())
            .await;
    stop_worker_ops(ops).await;
    running.stop().await;
    Ok(result?)
}

pub(crate) async fn dependents_worker(
    state: StateArgs,
    metrics_listen: Option<std::net::SocketAddr>,
) -> anyhow::Result<()> {
    let mut config = load_config(&state, None)?;
    config.bootstrap_default_org = false;
    init_logging(&config);
    let Some(url) = config.nats_url.clone() else {
        bail!(
            "the dependents worker runs as its own process in NATS mode (--nats URL); on the embedded log `serve` runs it"
        );
    };
    let client = eventlog::connect_nats(&url).await?;
    let running = app::start(&config).await?;
    let ops = serve_worker_ops(&running.registry, metrics_listen, timeouts(&config)).await?;
    say("dependents worker running");
    let result = workers::dependents::run(
        Arc::clone(&running.registry),
        Arc::new(workers::NatsNotifier(client)),
        shutdown_signal(),
    )
    .await;
    stop_worker_ops(ops).await;
    running.stop().await;
    Ok(result?)
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut terminate =
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate.recv() => {}
    }
    tracing::info!("shutting down");
}

pub(crate) async fn create_org(state: StateArgs, name: &str) -> anyhow::Result<()> {
    let mut config = load_config(&state, None)?;
    config.bootstrap_default_org = false;
    init_logging(&config);
    let running = app::start(&config).await.map_err(stop_the_server_first)?;
    let last = running
        .registry
        .log()
        .last_seq()
        .await
        .map_err(app::AppError::from)?;
    running
        .registry
        .views()
        .wait_for(last, std::time::Duration::from_secs(60))
        .await
        .map_err(app::AppError::from)?;
    let created = app::orgs::create(&running.registry, name).await;
    running.stop().await;
    let created = created?;
    say(&format!(
        "created org {:?}; its admin token (shown once):",
        created.org.as_str()
    ));
    say(&format!("  {}", created.admin_token.expose_secret()));
    Ok(())
}

/// Re-wraps every data key under the configured master key (the previous one configured
/// beside it), reporting what it did; safe to run again until it says complete.
pub(crate) async fn rotate_master_key(state: StateArgs) -> anyhow::Result<()> {
    let config = load_config(&state, None)?;
    init_logging(&config);
    if config.previous_master_key.is_none() && config.previous_master_key_file.is_none() {
        crate::note(
            "no previous master key is configured: re-wrapping only entries that an older build wrote without naming their key",
        );
    }
    let report = app::rotate_master_key(&config, None)
        .await
        .map_err(stop_the_server_first)?;
    say(&format!(
        "re-wrapped {} key(s); {} already under the current master key",
        report.rewrapped, report.current
    ));
    if !report.unreadable.is_empty() {
        bail!(
            "{} key(s) open with neither configured master key (first: {}); configure the key that wrapped them as the previous master key and run again",
            report.unreadable.len(),
            report.unreadable[0]
        );
    }
    say(
        "complete: every key is wrapped under the current master key; the previous one can be removed from the configuration and destroyed",
    );
    Ok(())
}

pub(crate) async fn rebuild(state: StateArgs) -> anyhow::Result<()> {
    let config = load_config(&state, None)?;
    init_logging(&config);
    let live = app::views_path(&config.data_dir);
    let embedded_log = config.data_dir.join("log.redb");
    // Opening creates a missing log: a mistyped data dir would "rebuild" empty views.
    if config.nats_url.is_none() && !embedded_log.exists() {
        bail!(
            "no embedded log at {}: is --data-dir (MODELREG_DATA_DIR) the registry's data directory? (for NATS, pass --nats URL)",
            embedded_log.display()
        );
    }
    // The live views first: redb's lock on them tells a running server apart (in NATS mode
    // nothing else would), and holding them keeps one from starting until the swap is done.
    let held = views::Views::open(&live).map_err(stop_the_server_first)?;
    let log: Arc<dyn eventlog::EventLog> = match &config.nats_url {
        Some(url) => Arc::new(eventlog::JetStreamLog::connect(url, &config.stream).await?),
        None => {
            Arc::new(eventlog::EmbeddedLog::open(&embedded_log).map_err(stop_the_server_first)?)
        }
    };
    let fresh = live.with_extension("redb.rebuild");
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} replaying [{bar:40}] {pos}/{len} events ({per_sec}, eta {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let checksum = views::rebuild(log, &fresh, |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    })
    .await?;
    bar.finish();
    // The audit file first: a crash between the two leaves it ahead of the old views, which
    // they take as it is; one behind them would make the next start replay the whole log.
    for (from, to) in [
        (views::audit_path(&fresh), views::audit_path(&live)),
        (fresh.clone(), live.clone()),
    ] {
        std::fs::rename(&from, &to)
            .with_context(|| format!("cannot move {} into place", from.display()))?;
    }
    // The renames are durable before "rebuilt" is said: a power loss must not bring the old
    // views back after it.
    let dir = live
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    std::fs::File::open(dir)
        .and_then(|dir| dir.sync_all())
        .with_context(|| format!("cannot make the move in {} durable", dir.display()))?;
    drop(held);
    say(&format!("rebuilt {} ; checksum {checksum}", live.display()));
    Ok(())
}

/// `modelreg rebuild --out FILE [--until POINT]`: the views as of a point, in a file of
/// their own; the live views are not touched (a running server may keep serving).
pub(crate) async fn rebuild_into(
    state: StateArgs,
    until: Option<&str>,
    out: &std::path::Path,
) -> anyhow::Result<()> {
    let config = load_config(&state, None)?;
    init_logging(&config);
    let log = open_log(&config).await?;
    let until = match until {
        None => log.last_seq().await?,
        Some(text) => match text.parse::<u64>() {
            Ok(position) => position,
            Err(_) => {
                let time = time::OffsetDateTime::parse(
                    text,
                    &time::format_description::well_known::Rfc3339,
                )
                .map_err(|_| {
                    anyhow::anyhow!(
                        "--until takes a log position or an RFC 3339 time, e.g. 2026-01-31T12:00:00Z"
                    )
                })?;
                let ms = i64::try_from(time.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX);
                eventlog::position_at(log.as_ref(), ms).await?
            }
        },
    };
    let checksum = views::rebuild_until(log, out, until, |_, _| {}).await?;
    say(&format!(
        "rebuilt {} (audit trail in {}) as of position {until}; checksum {checksum}",
        out.display(),
        views::audit_path(out).display()
    ));
    Ok(())
}

/// `modelreg audit verify`: walks the log, checks the chains and the running digest, and
/// reports the first break; an error (exit 1) when there is one.
pub(crate) async fn verify(state: StateArgs, expect: Option<&str>) -> anyhow::Result<()> {
    let config = load_config(&state, None)?;
    init_logging(&config);
    let expect = expect
        .map(|text| text.parse::<eventlog::Head>())
        .transpose()
        .map_err(|why| anyhow::anyhow!("--expect: {why}"))?;
    let log = open_log(&config).await?;
    let verified = eventlog::chain::verify(log.as_ref(), expect).await?;
    match verified.first_break {
        None => {
            say(&format!(
                "verified: {} events of {} aggregates, every chain intact",
                verified.messages, verified.aggregates
            ));
            if let Some(expect) = expect {
                say(&format!(
                    "the digest at position {} is the one expected",
                    expect.position
                ));
            }
            say(&format!("head: {}", verified.head));
            Ok(())
        }
        Some(found) => {
            say(&format!(
                "BROKEN at position {} ({}): {}",
                found.position,
                found.kind.as_str(),
                found.detail
            ));
            say(&format!(
                "intact up to position {}: {}",
                verified.head.position, verified.head
            ));
            bail!("the log does not verify")
        }
    }
}

/// The log the configuration names, for an operator command; an embedded log must exist
/// (opening creates a missing one, and a mistyped data dir would look empty).
async fn open_log(config: &Config) -> anyhow::Result<Arc<dyn eventlog::EventLog>> {
    if let Some(url) = &config.nats_url {
        return Ok(Arc::new(
            eventlog::JetStreamLog::connect(url, &config.stream).await?,
        ));
    }
    let embedded_log = config.data_dir.join("log.redb");
    if !embedded_log.exists() {
        bail!(
            "no embedded log at {}: is --data-dir (MODELREG_DATA_DIR) the registry's data directory? (for NATS, pass --nats URL)",
            embedded_log.display()
        );
    }
    Ok(Arc::new(
        eventlog::EmbeddedLog::open(&embedded_log).map_err(stop_the_server_first)?,
    ))
}

/// `text` as one shell word: as it is when it holds only safe characters, else single-quoted.
fn shell_word(text: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "/._-+:@%=,".contains(c);
    if !text.is_empty() && text.chars().all(safe) {
        return text.to_owned();
    }
    format!("'{}'", text.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::shell_word;

    #[test]
    fn paths_are_quoted_for_the_shell_only_when_needed() {
        assert_eq!(
            shell_word("/home/a/.local/share/modelreg/bootstrap-token"),
            "/home/a/.local/share/modelreg/bootstrap-token"
        );
        assert_eq!(shell_word("/tmp/my dir/t"), "'/tmp/my dir/t'");
        assert_eq!(shell_word("/tmp/it's"), "'/tmp/it'\\''s'");
    }
}
