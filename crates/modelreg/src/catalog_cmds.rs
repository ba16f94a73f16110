//! `modelreg catalog …`: the platform catalog. `list` and `show` read it from a running
//! registry over HTTP (any token); the changes (`sync`, `add`, `retire`, `reinstate`,
//! `override`, `default`) are the operator's and run server-side on the registry's state, reading its
//! configuration like `admin` (with the embedded log, stop the server first; in NATS mode
//! they run beside the servers).

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;

use crate::client::{self, Remote};
use crate::{StateArgs, say};

#[derive(Subcommand)]
pub(crate) enum CatalogCommand {
    /// List the platform catalog: every model, its status and what is known of it (HTTP).
    List,
    /// Show one platform model: each fact with its source and date, and what is unknown (HTTP).
    Show {
        /// The platform id, e.g. google/gemini-3.1-pro-preview.
        id: String,
    },
    /// Compare OpenRouter's models API (or a saved answer) with the catalog and show the
    /// diff; --apply records it (operator, server-side).
    Sync {
        /// Read a saved answer of OpenRouter's GET /api/v1/models instead of calling it.
        #[arg(long)]
        from: Option<PathBuf>,
        /// Record the sync (without it, only the diff is shown).
        #[arg(long)]
        apply: bool,
        #[command(flatten)]
        state: StateArgs,
    },
    /// List a model a sync proposed (operator, server-side).
    Add {
        /// The proposed model's id.
        id: String,
        #[command(flatten)]
        state: StateArgs,
    },
    /// Retire a model: resolving it answers 410 and workflows using it are warned
    /// (operator, server-side).
    Retire {
        /// The platform id.
        id: String,
        /// Why, as people will read it in the catalog's history and the 410.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        state: StateArgs,
    },
    /// Put a retired model back in service, e.g. one retired by a wrong expiration date
    /// (override the date first) (operator, server-side).
    Reinstate {
        /// The platform id.
        id: String,
        /// Why, as people will read it in the catalog's history.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        state: StateArgs,
    },
    /// Override a fact of a model; it survives later syncs until cleared (operator,
    /// server-side).
    Override {
        /// The platform id.
        id: String,
        /// tool_use, json_mode, vision, reasoning, context_length, max_completion_tokens,
        /// input_cost_per_token, output_cost_per_token or expiration_date.
        fact: String,
        /// The value: true/false, effort/max_tokens/none, a token count, a USD-per-token
        /// decimal, or a YYYY-MM-DD date. Leave it out with --clear.
        value: Option<String>,
        /// Why, as people will read it beside the fact.
        #[arg(long)]
        reason: String,
        /// Clear the override: the synced fact applies again.
        #[arg(long, conflicts_with = "value")]
        clear: bool,
        #[command(flatten)]
        state: StateArgs,
    },
    /// Make a model the platform-wide default (operator, server-side).
    Default {
        /// The platform id.
        id: String,
        #[command(flatten)]
        state: StateArgs,
    },
}

pub(crate) async fn run(remote: Remote, command: CatalogCommand) -> anyhow::Result<()> {
    let json = remote.json;
    match command {
        CatalogCommand::List => client::catalog::list(remote).await,
        CatalogCommand::Show { id } => client::catalog::show_one(remote, &id).await,
        CatalogCommand::Sync { from, apply, state } => {
            operate(state, "modelreg catalog sync", move |registry, ctx, config| {
                Box::pin(async move {
                    let settings = workers::connection_tests::settings(&config.providers)?;
                    let source = match &from {
                        Some(path) => workers::catalog_sync::Source::File(path),
                        None => workers::catalog_sync::Source::Api(&settings.providers),
                    };
                    let auto_list = config.catalog_auto_list();
                    let answer =
                        workers::catalog_sync::sync(&registry, &ctx, source, &auto_list, apply)
                            .await?;
                    print(json, &answer.value, || diff_lines(&answer.value, answer.position))
                })
            })
            .await
        }
        CatalogCommand::Add { id, state } => {
            operate(state, "modelreg catalog add", move |registry, ctx, _| {
                Box::pin(async move {
                    let answer = app::catalog::add(&registry, &ctx, &id).await?;
                    print(json, &answer.value, || {
                        vec![format!("listed {} at position {}", id, answer.position)]
                    })
                })
            })
            .await
        }
        CatalogCommand::Retire { id, reason, state } => {
            operate(state, "modelreg catalog retire", move |registry, ctx, _| {
                Box::pin(async move {
                    let answer = app::catalog::retire(&registry, &ctx, &id, &reason).await?;
                    print(json, &answer.value, || {
                        vec![format!(
                            "retired {id} at position {}; resolving it answers 410, and the dependents worker warns the workflows that use it",
                            answer.position
                        )]
                    })
                })
            })
            .await
        }
        CatalogCommand::Reinstate { id, reason, state } => {
            operate(state, "modelreg catalog reinstate", move |registry, ctx, _| {
                Box::pin(async move {
                    let answer = app::catalog::reinstate(&registry, &ctx, &id, &reason).await?;
                    print(json, &answer.value, || {
                        vec![format!(
                            "{id} is in service at position {}; it resolves again",
                            answer.position
                        )]
                    })
                })
            })
            .await
        }
        CatalogCommand::Override {
            id,
            fact,
            value,
            reason,
            clear,
            state,
        } => {
            if value.is_none() && !clear {
                anyhow::bail!("give the fact's value, or --clear to remove the override");
            }
            operate(state, "modelreg catalog override", move |registry, ctx, _| {
                Box::pin(async move {
                    let answer = app::catalog::override_fact(
                        &registry,
                        &ctx,
                        &id,
                        &fact,
                        value.as_deref(),
                        &reason,
                    )
                    .await?;
                    print(json, &answer.value, || {
                        let what = match &value {
                            Some(value) => format!("{fact} of {id} is now {value} (override)"),
                            None => format!("the override of {fact} of {id} is cleared"),
                        };
                        vec![format!("{what}, at position {}", answer.position)]
                    })
                })
            })
            .await
        }
        CatalogCommand::Default { id, state } => {
            operate(state, "modelreg catalog default", move |registry, ctx, _| {
                Box::pin(async move {
                    let answer = app::catalog::set_default(&registry, &ctx, &id).await?;
                    print(json, &answer.value, || {
                        vec![format!(
                            "{id} is the platform default, at position {}",
                            answer.position
                        )]
                    })
                })
            })
            .await
        }
    }
}

type Job = std::pin::Pin<Box<dyn std::future::Future<Output = anyhow::Result<()>> + Send>>;

/// Opens the registry's state as the operator (the seed runs if the log has no catalog),
/// waits for its views to hold the whole log, runs `job`, and stops.
async fn operate(
    state: StateArgs,
    label: &'static str,
    job: impl FnOnce(std::sync::Arc<app::Registry>, app::Ctx, app::config::Config) -> Job,
) -> anyhow::Result<()> {
    let mut config = crate::server_cmds::load_config(&state, None)?;
    config.bootstrap_default_org = false;
    crate::server_cmds::init_logging(&config);
    let running = app::start(&config)
        .await
        .map_err(crate::server_cmds::stop_the_server_first)?;
    let registry = std::sync::Arc::clone(&running.registry);
    let last = registry
        .log()
        .last_seq()
        .await
        .map_err(app::AppError::from)?;
    registry
        .views()
        .wait_for(last, std::time::Duration::from_secs(60))
        .await
        .map_err(app::AppError::from)
        .context("the views did not catch up with the log")?;
    let ctx = app::Ctx::operator(label, None);
    let result = job(registry, ctx, config).await;
    running.stop().await;
    result
}

fn print<T: serde::Serialize>(
    json: bool,
    value: &T,
    lines: impl FnOnce() -> Vec<String>,
) -> anyhow::Result<()> {
    if json {
        say(&serde_json::to_string_pretty(value)?);
        return Ok(());
    }
    for line in lines() {
        say(&line);
    }
    Ok(())
}

/// A sync's diff for people.
pub(crate) fn diff_lines(diff: &api::CatalogDiff, position: u64) -> Vec<String> {
    let mut lines = vec![format!("sync from {} as of {}:", diff.source, diff.as_of)];
    if diff.unchanged {
        lines.push("  nothing new upstream; nothing to record".into());
        return lines;
    }
    let unknown = "unknown".to_owned();
    if !diff.changed.is_empty() {
        lines.push("  changed facts:".into());
        for change in &diff.changed {
            lines.push(format!(
                "    {}  {}: {} -> {}{}",
                change.model,
                change.fact,
                change.before.as_ref().unwrap_or(&unknown),
                change.after.as_ref().unwrap_or(&unknown),
                if change.overridden {
                    " (overridden: the override stays)"
                } else {
                    ""
                }
            ));
        }
    }
    for (title, ids) in [
        (
            "new upstream, proposed (not listed; `modelreg catalog add ID` lists one):",
            &diff.proposed,
        ),
        (
            "new upstream, listed (their vendor is in catalog_auto_list_vendors):",
            &diff.listed,
        ),
        ("listed but gone from the upstream:", &diff.disappeared),
        ("back upstream:", &diff.reappeared),
        (
            "expiration date passed (retired by this sync):",
            &diff.expired,
        ),
    ] {
        if ids.is_empty() {
            continue;
        }
        lines.push(format!("  {title}"));
        lines.extend(ids.iter().map(|id| format!("    {id}")));
    }
    lines.push(if diff.recorded {
        format!("recorded at position {position}")
    } else {
        "not recorded: run again with --apply to record it".into()
    });
    lines
}
