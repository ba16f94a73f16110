//! The platform catalog: seeding it on first start, reading it (for everyone, and as each
//! org sees it with its own default and hidden models), the operator's commands on it (sync,
//! list a proposed model, retire, override a fact, change the default), the org admin's
//! choices, and the retirement warnings the dependents worker sends.
//!
//! Who may change the catalog: the operator, through server-side commands that read the
//! registry's configuration (`Ctx::operator`), never an org's token.

use std::sync::{Arc, RwLock};

use domain::catalog::{self, Catalog, Day, Entry, FactName, FactValue, Upstream};
use domain::org::{self, PlatformModelFact};
use domain::values::OrgId;
use views::CatalogRow;

use crate::execute::{self, Done, Refused, Stream};
use crate::present::rfc3339;
use crate::{Answer, AppError, Ctx, Registry};

mod choices;
mod retirement;

pub use choices::*;
pub use retirement::*;

/// The seed's command id: every replica seeding at once appends one event (the log's
/// expected sequence 0 and message id both make sure of it).
const SEED_COMMAND: &str = "catalog-seed-v1";

/// The catalog row, read once per views position (resolve reads it on every platform call).
#[derive(Default)]
pub(crate) struct CatalogCache {
    entry: RwLock<Option<(u64, Arc<CatalogRow>)>>,
}

/// The catalog as the views hold it; `None` before the seed reached them.
pub(crate) fn current(registry: &Registry) -> Result<Option<Arc<CatalogRow>>, AppError> {
    let position = registry.views.position();
    if let Ok(entry) = registry.catalog_cache.entry.read()
        && let Some((at, row)) = entry.as_ref()
        && *at == position
    {
        return Ok(Some(Arc::clone(row)));
    }
    let Some(row) = registry.views.catalog()? else {
        return Ok(None);
    };
    let row = Arc::new(row);
    if let Ok(mut entry) = registry.catalog_cache.entry.write() {
        *entry = Some((position, Arc::clone(&row)));
    }
    Ok(Some(row))
}

fn seeded(registry: &Registry) -> Result<Arc<CatalogRow>, AppError> {
    current(registry)?.ok_or_else(|| AppError::Unavailable {
        what: "the platform catalog is not in the views yet".into(),
        source: None,
    })
}

/// Today (UTC), by the registry's clock.
pub(crate) fn today(registry: &Registry) -> Day {
    Day::from_unix_ms(registry.now_ms())
}

/// Records the shipped catalog on first start; nothing when the log holds it already. Safe
/// with several replicas starting at once: the append expects the catalog's subject empty and
/// carries one fixed message id, so exactly one seed lands.
pub async fn seed(registry: &Registry) -> Result<(), AppError> {
    if registry.views.catalog()?.is_some() {
        return Ok(());
    }
    let shipped = catalog::shipped();
    let ctx = Ctx::operator("seed: the shipped catalog", Some(SEED_COMMAND.into()));
    let command = catalog::Command::Seed {
        default: shipped.default,
        models: shipped.models,
        as_of: today(registry),
    };
    let stream = Stream::new(catalog::AGGREGATE_ID, None);
    let refused = |refused: Refused<catalog::Rejection>| match refused {
        Refused::Rejected(rejection) => {
            AppError::internal(format!("the seed was refused: {rejection}"))
        }
        Refused::Conflict => AppError::internal("the seed met a conflict"),
        Refused::Failed(error) => error,
    };
    let event = match execute::decide::<Catalog>(&ctx, stream, None, command).map_err(refused)? {
        execute::Decision::Append(event) => event,
        execute::Decision::Retried | execute::Decision::Unchanged => return Ok(()),
    };
    let appended = match execute::append::<Catalog>(registry, &ctx, stream, event).await {
        Ok(appended) => appended,
        // Another replica (or an earlier start) seeded it.
        Err(Refused::Conflict) => return Ok(()),
        Err(other) => return Err(refused(other)),
    };
    // Serve with the catalog in the views where they keep up; a replica whose views lag
    // (they catch up on their own) starts anyway.
    match registry.settle(appended.seq).await {
        Ok(_) | Err(AppError::Landed { .. }) => Ok(()),
        Err(other) => Err(other),
    }
}

fn rejection(rejection: catalog::Rejection) -> AppError {
    use catalog::Rejection as R;
    match rejection {
        R::NotSeeded => AppError::Unavailable {
            what: "the platform catalog is not seeded yet".into(),
            source: None,
        },
        R::NotListed => not_listed(),
        R::AlreadyListed => AppError::Conflict {
            code: "platform_model.already_listed",
            message: "the model is listed already".into(),
            current_version: None,
        },
        R::NotProposed => AppError::NotFound {
            code: "platform_model.not_proposed",
            message: "no sync proposed a model with this id; run `modelreg catalog sync` first and pick one it proposes".into(),
        },
        R::Retired => AppError::Conflict {
            code: "platform_model.retired",
            message: "the model is retired".into(),
            current_version: None,
        },
        R::RetiringDefault => AppError::Conflict {
            code: "platform_model.is_default",
            message: "the platform default cannot be retired; make another model the default first (modelreg catalog default ID)".into(),
            current_version: None,
        },
        R::StillExpired => AppError::Conflict {
            code: "platform_model.expired",
            message: "the model's expiration date has passed; override it first (modelreg catalog override ID expiration_date YYYY-MM-DD --reason ...)".into(),
            current_version: None,
        },
        R::Invalid(invalid) => AppError::invalid(invalid),
    }
}

fn not_listed() -> AppError {
    AppError::NotFound {
        code: "platform_model.not_found",
        message: "no listed platform model has this id".into(),
    }
}

/// Runs an operator's command against the catalog, re-reading it when another change landed
/// first; the log position it reached.
async fn run(
    registry: &Registry,
    ctx: &Ctx,
    command: impl Fn(&Day) -> catalog::Command,
) -> Result<Done, AppError> {
    ctx.require_operator()?;
    let mut attempts = 0;
    loop {
        attempts += 1;
        let row = seeded(registry)?;
        let stream = Stream::new(catalog::AGGREGATE_ID, Some(&row.stream));
        let command = command(&today(registry));
        match execute::execute::<Catalog>(registry, ctx, stream, Some(&row.catalog), command).await
        {
            Ok(done) => return Ok(done),
            Err(Refused::Conflict) if attempts < 5 => registry.catch_up().await?,
            Err(Refused::Conflict) => {
                return Err(AppError::Conflict {
                    code: "catalog.conflict",
                    message: "the catalog kept changing at the same time; retry".into(),
                    current_version: None,
                });
            }
            Err(Refused::Rejected(refused)) => return Err(rejection(refused)),
            Err(Refused::Failed(error)) => return Err(error),
        }
    }
}

/// Whether a sync records what it found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Apply {
    /// Only the diff.
    No,
    Yes,
    /// Unattended (the periodic sync): a diff too sweeping to record so
    /// (`catalog::sweeping`) is refused, 409 `catalog.sync_too_sweeping`, saying why.
    UnlessSweeping,
}

/// The code of a sync held back as too sweeping to record unattended.
pub const TOO_SWEEPING: &str = "catalog.sync_too_sweeping";

/// Compares what `source` says now (`upstream`) with the catalog and answers the diff; with
/// `apply`, records it (a sync that finds nothing new records nothing). New upstream models
/// are proposed, not listed, unless their vendor is in `auto_list`.
pub async fn sync(
    registry: &Registry,
    ctx: &Ctx,
    source: &str,
    upstream: Vec<Upstream>,
    auto_list: &[String],
    apply: Apply,
) -> Result<Answer<api::CatalogDiff>, AppError> {
    ctx.require_operator()?;
    registry.catch_up().await?;
    let as_of = today(registry);
    let row = seeded(registry)?;
    let found = catalog::diff(&row.catalog, source, &as_of, &upstream, auto_list);
    if apply == Apply::UnlessSweeping
        && let Some(why) = catalog::sweeping(&row.catalog, &found)
    {
        return Err(AppError::Conflict {
            code: TOO_SWEEPING,
            message: why,
            current_version: None,
        });
    }
    let unchanged = found.is_empty();
    if unchanged || apply == Apply::No {
        return Ok(Answer {
            value: diff(&found, false),
            position: registry.views.position(),
        });
    }
    let done = run(registry, ctx, |as_of| catalog::Command::Sync {
        source: source.to_owned(),
        as_of: as_of.clone(),
        upstream: upstream.clone(),
        auto_list: auto_list.to_vec(),
    })
    .await?;
    // Another sync may have recorded the same findings first: then this one records nothing.
    let recorded = matches!(done, Done::Appended { .. } | Done::Retried { .. });
    Ok(Answer {
        value: diff(&found, recorded),
        position: done.position(),
    })
}

fn diff(synced: &catalog::Synced, recorded: bool) -> api::CatalogDiff {
    let text = |v: &Option<FactValue>| v.as_ref().map(ToString::to_string);
    api::CatalogDiff {
        source: synced.source.clone(),
        as_of: synced.as_of.as_str().to_owned(),
        changed: synced
            .changed
            .iter()
            .map(|c| api::FactChange {
                model: c.id.clone(),
                fact: c.fact.as_str().to_owned(),
                before: text(&c.before),
                after: text(&c.after),
                overridden: c.overridden,
            })
            .collect(),
        proposed: synced.proposed.iter().map(|l| l.id.clone()).collect(),
        listed: synced.listed.iter().map(|l| l.id.clone()).collect(),
        disappeared: synced.disappeared.clone(),
        reappeared: synced.reappeared.clone(),
        expired: synced.expired.clone(),
        unchanged: synced.is_empty(),
        recorded,
    }
}

/// Retires the listed models whose expiration date has come (by the registry's clock)
/// since the last sync; the dependents worker then warns their workflows. Nothing when none
/// is due. The models it retired.
pub async fn expire_due(registry: &Registry) -> Result<Vec<String>, AppError> {
    let ctx = Ctx::operator("expiration dates", None);
    let before = seeded(registry)?;
    run(registry, &ctx, |as_of| catalog::Command::ExpireDue {
        as_of: as_of.clone(),
    })
    .await?;
    let after = seeded(registry)?;
    Ok(after
        .retirements
        .keys()
        .filter(|id| !before.retirements.contains_key(*id))
        .cloned()
        .collect())
}

/// Lists a model a sync proposed.
pub async fn add(
    registry: &Registry,
    ctx: &Ctx,
    id: &str,
) -> Result<Answer<api::CatalogModel>, AppError> {
    let done = run(registry, ctx, |_| catalog::Command::List {
        id: id.to_owned(),
    })
    .await?;
    model_answer(registry, id, done.position())
}

/// Retires a listed model: resolving it answers 410 from now on, and the dependents worker
/// warns the active workflows of every org that use it.
pub async fn retire(
    registry: &Registry,
    ctx: &Ctx,
    id: &str,
    reason: &str,
) -> Result<Answer<api::CatalogModel>, AppError> {
    let done = run(registry, ctx, |_| catalog::Command::Retire {
        id: id.to_owned(),
        reason: reason.to_owned(),
    })
    .await?;
    model_answer(registry, id, done.position())
}

/// Puts a retired model back in service, with a reason (nothing for a listed one). A model
/// whose expiration date has passed is refused until an override moves the date.
pub async fn reinstate(
    registry: &Registry,
    ctx: &Ctx,
    id: &str,
    reason: &str,
) -> Result<Answer<api::CatalogModel>, AppError> {
    let done = run(registry, ctx, |as_of| catalog::Command::Reinstate {
        id: id.to_owned(),
        reason: reason.to_owned(),
        as_of: as_of.clone(),
    })
    .await?;
    model_answer(registry, id, done.position())
}

/// Makes a listed, active model the platform-wide default.
pub async fn set_default(
    registry: &Registry,
    ctx: &Ctx,
    id: &str,
) -> Result<Answer<api::CatalogModel>, AppError> {
    let done = run(registry, ctx, |_| catalog::Command::SetDefault {
        id: id.to_owned(),
    })
    .await?;
    model_answer(registry, id, done.position())
}

/// Sets an operator's value for a fact of a listed model, with a reason; `value: None`
/// clears the override. The override wins over synced facts until cleared.
pub async fn override_fact(
    registry: &Registry,
    ctx: &Ctx,
    id: &str,
    fact: &str,
    value: Option<&str>,
    reason: &str,
) -> Result<Answer<api::CatalogModel>, AppError> {
    let fact = FactName::parse(fact)?;
    let value = value.map(|raw| fact.parse_value(raw)).transpose()?;
    let done = run(registry, ctx, |as_of| catalog::Command::Override {
        id: id.to_owned(),
        fact,
        value: value.clone(),
        reason: reason.to_owned(),
        as_of: as_of.clone(),
    })
    .await?;
    model_answer(registry, id, done.position())
}

fn model_answer(
    registry: &Registry,
    id: &str,
    position: u64,
) -> Result<Answer<api::CatalogModel>, AppError> {
    let row = seeded(registry)?;
    let entry = row.catalog.find(id).ok_or_else(not_listed)?;
    Ok(Answer {
        value: catalog_model(&row, entry, &today(registry)),
        position,
    })
}

/// The platform catalog: every listed model with its facts and their provenance, the
/// proposals of the last syncs, and the history. Any token may read it.
pub fn get(registry: &Registry, _ctx: &Ctx) -> Result<Answer<api::Catalog>, AppError> {
    let position = registry.views.position();
    let row = seeded(registry)?;
    let today = today(registry);
    Ok(Answer {
        value: api::Catalog {
            default: row.catalog.default.clone(),
            models: row
                .catalog
                .models
                .values()
                .map(|entry| catalog_model(&row, entry, &today))
                .collect(),
            proposed: row
                .catalog
                .proposed
                .values()
                .map(|listing| api::ProposedModel {
                    id: listing.id.clone(),
                    display_name: listing.display_name.clone(),
                    facts: listing
                        .facts
                        .iter()
                        .map(|(name, fact)| synced_fact(*name, fact))
                        .collect(),
                })
                .collect(),
            history: row
                .history
                .iter()
                .map(|change| api::CatalogChange {
                    seq: change.seq,
                    at: rfc3339(change.at_ms),
                    by: change.by.clone(),
                    event: change.event.clone(),
                    summary: change.summary.clone(),
                })
                .collect(),
        },
        position,
    })
}

/// One listed platform model, retired ones included.
pub fn get_model(
    registry: &Registry,
    _ctx: &Ctx,
    id: &str,
) -> Result<Answer<api::CatalogModel>, AppError> {
    model_answer(registry, id, registry.views.position())
}

fn synced_fact(name: FactName, fact: &catalog::Sourced) -> api::Fact {
    api::Fact {
        fact: name.as_str().to_owned(),
        value: fact.value.to_string(),
        source: fact.source.clone(),
        as_of: fact.as_of.as_str().to_owned(),
        override_reason: None,
        synced_value: None,
    }
}

pub(crate) fn facts(entry: &Entry) -> Vec<api::Fact> {
    FactName::ALL
        .into_iter()
        .filter_map(|name| match entry.fact(name)? {
            catalog::Effective::Synced(fact) => Some(synced_fact(name, fact)),
            catalog::Effective::Overridden(fact) => Some(api::Fact {
                fact: name.as_str().to_owned(),
                value: fact.value.to_string(),
                source: "operator override".into(),
                as_of: fact.as_of.as_str().to_owned(),
                override_reason: Some(fact.reason.clone()),
                synced_value: entry.facts.get(&name).map(|f| f.value.to_string()),
            }),
        })
        .collect()
}

fn unknown(entry: &Entry) -> Vec<String> {
    entry
        .unknown()
        .into_iter()
        .map(|name| name.as_str().to_owned())
        .collect()
}

/// When, by whom and why a model is out of service on `today`, if it is.
struct Out {
    reason: String,
    at: String,
    by: String,
}

fn out_of_service(row: &CatalogRow, entry: &Entry, today: &Day) -> Option<Out> {
    let reason = entry.retired(today)?;
    Some(match row.retirements.get(&entry.id) {
        Some(retirement) => Out {
            reason,
            at: rfc3339(retirement.at_ms),
            by: retirement.by.clone(),
        },
        // Expired by its date before any sync recorded it.
        None => Out {
            reason,
            at: entry
                .expiration()
                .map(|d| format!("{d}T00:00:00Z"))
                .unwrap_or_default(),
            by: "upstream expiration".into(),
        },
    })
}

fn catalog_model(row: &CatalogRow, entry: &Entry, today: &Day) -> api::CatalogModel {
    let out = out_of_service(row, entry, today);
    api::CatalogModel {
        id: entry.id.clone(),
        display_name: entry.display_name.clone(),
        status: if out.is_some() { "retired" } else { "active" }.into(),
        retired_reason: out.as_ref().map(|o| o.reason.clone()),
        retired_at: out.as_ref().map(|o| o.at.clone()),
        retired_by: out.as_ref().map(|o| o.by.clone()),
        default: row.catalog.default == entry.id,
        missing_upstream_since: entry
            .missing_upstream_since
            .as_ref()
            .map(|d| d.as_str().to_owned()),
        facts: facts(entry),
        unknown: unknown(entry),
        expires_on: entry.expiration().map(|d| d.as_str().to_owned()),
    }
}

/// The capabilities as far as the facts know them (`null`: unknown). A model known not to
/// reason shows `reasoning: null` too; its `facts` say `none`.
pub(crate) fn known_capabilities(entry: &Entry) -> api::KnownCapabilities {
    api::KnownCapabilities {
        json_mode: entry.flag(FactName::JsonMode),
        vision: entry.flag(FactName::Vision),
        tool_use: entry.flag(FactName::ToolUse),
        reasoning: entry
            .reasoning()
            .flatten()
            .map(|param| param.as_str().to_owned()),
    }
}

/// The Pipeline Builder controls the facts enable: only what a fact says yes to.
pub(crate) fn controls(entry: &Entry) -> api::Controls {
    let reasoning = entry.reasoning().flatten();
    api::Controls {
        tools: entry.flag(FactName::ToolUse) == Some(true),
        json_mode: entry.flag(FactName::JsonMode) == Some(true),
        image_input: entry.flag(FactName::Vision) == Some(true),
        reasoning_effort: reasoning == Some(domain::values::ReasoningParam::Effort),
        reasoning_budget: reasoning == Some(domain::values::ReasoningParam::MaxTokens),
    }
}

/// The capabilities of a model whose every capability fact is known, for the runtime.
pub(crate) fn full_capabilities(entry: &Entry) -> Option<api::Capabilities> {
    Some(api::Capabilities {
        json_mode: entry.flag(FactName::JsonMode)?,
        vision: entry.flag(FactName::Vision)?,
        tool_use: entry.flag(FactName::ToolUse)?,
        reasoning: entry.reasoning()?.map(|p| p.as_str().to_owned()),
    })
}

/// What an org sees of the catalog: the models it does not hide, its default (with why the
/// platform's applies when its own cannot), and the models it hides.
pub(crate) struct OrgView {
    pub(crate) models: Vec<api::PlatformModel>,
    pub(crate) default: api::DefaultModel,
    pub(crate) hidden: Vec<String>,
}
