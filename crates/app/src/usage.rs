//! Usage: batches of usage records from pipeline runtimes, each record an aggregate of its
//! own (`reg.<org>.usage.<record id>`) created once, and the spend summary over the usage
//! view, which priced each record at its model's costs when it was recorded.

use std::collections::{BTreeMap, BTreeSet};

use domain::Invalid;
use domain::catalog::Day;
use domain::usage::{self, Record, RecordId, Reported, Tally, Usage};
use futures::StreamExt;

use crate::execute::{self, Decision, Refused, Stream};
use crate::parse;
use crate::{Answer, AppError, Ctx, Registry};

/// Most records one batch may carry (250 typical records are about 60 KiB, within the
/// server's 64 KiB body limit).
pub const MAX_BATCH: usize = 250;

/// Appends in flight at once for one batch: the log's group commit (embedded) and pipelined
/// publishes (JetStream) take them together.
const APPENDS_IN_FLIGHT: usize = 64;

/// Records a batch of usage records: every record is checked and its model looked up before
/// any is appended, so a refused batch records nothing. A record the registry has already
/// (sent before, alone or in another batch, or twice in this one) is counted once: its
/// command id derives from its id, and its subject is created once. A batch that fails half
/// way is sent again as it was.
pub async fn record(
    registry: &Registry,
    ctx: &Ctx,
    batch: api::UsageBatch,
) -> Result<Answer<api::UsageReceipt>, AppError> {
    ctx.require_reporter()?;
    if batch.records.len() > MAX_BATCH {
        return Err(AppError::invalid(Invalid::new(
            "records",
            "usage.batch_too_large",
            format!("a batch holds at most {MAX_BATCH} records; send the rest in another"),
        )));
    }
    let mut problems = Vec::new();
    let mut parsed = Vec::with_capacity(batch.records.len());
    for (index, raw) in batch.records.iter().enumerate() {
        match parse_record(raw) {
            Ok(record) => parsed.push(record),
            Err(found) => problems.extend(found.into_iter().map(|p| in_record(index, p))),
        }
    }
    if !problems.is_empty() {
        return Err(AppError::Invalid(problems));
    }
    let catalog = crate::catalog::current(registry)?;
    let mut seen = BTreeSet::new();
    let mut known: BTreeMap<String, bool> = BTreeMap::new();
    let mut decided = Vec::with_capacity(parsed.len());
    let mut duplicates = 0;
    for (index, (id, record)) in parsed.into_iter().enumerate() {
        if !seen.insert(id.clone()) {
            duplicates += 1;
            continue;
        }
        // A batch is mostly one model's calls: each model is looked up once.
        let model_known = match known.get(&record.model) {
            Some(&known) => known,
            None => {
                let found = if record.model.contains('/') {
                    catalog
                        .as_ref()
                        .is_some_and(|row| row.catalog.find(&record.model).is_some())
                } else {
                    registry
                        .views
                        .model(ctx.org.as_str(), &record.model)?
                        .is_some()
                };
                known.insert(record.model.clone(), found);
                found
            }
        };
        let record_ctx = ctx.with_command(id.command_id());
        let command = usage::Command::Record {
            record,
            model_known,
        };
        let stream = Stream::new(id.as_str(), None);
        match execute::decide::<Usage>(&record_ctx, stream, None, command) {
            Ok(Decision::Append(event)) => decided.push((id, record_ctx, event)),
            Ok(Decision::Retried | Decision::Unchanged) => duplicates += 1,
            Err(Refused::Rejected(usage::Rejection::UnknownModel)) => problems.push(in_record(
                index,
                Invalid::new(
                    "model",
                    "usage.unknown_model",
                    "no model with this slug or platform id in this org; add it, or report the model the call used",
                ),
            )),
            Err(Refused::Conflict) => duplicates += 1,
            Err(Refused::Failed(error)) => return Err(error),
        }
    }
    if !problems.is_empty() {
        return Err(AppError::Invalid(problems));
    }
    let mut appends = futures::stream::iter(decided.into_iter().map(
        |(id, record_ctx, event)| async move {
            let stream = Stream::new(id.as_str(), None);
            execute::append::<Usage>(registry, &record_ctx, stream, event).await
        },
    ))
    .buffer_unordered(APPENDS_IN_FLIGHT);
    let (mut recorded, mut last, mut conflicted) = (0, 0, false);
    while let Some(outcome) = appends.next().await {
        match outcome {
            Ok(appended) if appended.duplicate => {
                duplicates += 1;
                last = last.max(appended.seq);
            }
            Ok(appended) => {
                recorded += 1;
                last = last.max(appended.seq);
            }
            // The record's subject holds it already, from a batch outside the log's
            // duplicate window: counted once.
            Err(Refused::Conflict) => {
                duplicates += 1;
                conflicted = true;
            }
            Err(Refused::Rejected(rejection)) => {
                return Err(AppError::internal(format!(
                    "a usage append was rejected after deciding: {rejection:?}"
                )));
            }
            Err(Refused::Failed(error)) => return Err(error),
        }
    }
    drop(appends);
    if conflicted {
        registry.catch_up().await?;
    }
    let position = if last > 0 {
        registry.settle(last).await?
    } else {
        registry.views.position()
    };
    Ok(Answer {
        value: api::UsageReceipt {
            recorded,
            duplicates,
        },
        position,
    })
}

/// Records a batch sent for one model (over NATS, on `usage.<org>.<model>`): as [`record`],
/// once every record is found to name that model; a record of another model refuses the
/// batch, naming the record (never its value).
pub async fn record_for_model(
    registry: &Registry,
    ctx: &Ctx,
    model: &str,
    batch: api::UsageBatch,
) -> Result<Answer<api::UsageReceipt>, AppError> {
    let problems: Vec<Invalid> = batch
        .records
        .iter()
        .enumerate()
        .filter(|(_, raw)| raw.model.trim() != model)
        .map(|(index, _)| {
            in_record(
                index,
                Invalid::new(
                    "model",
                    "usage.model_mismatch",
                    "the record's model is not the subject's; send it on usage.<org>.<its model>",
                ),
            )
        })
        .collect();
    if !problems.is_empty() {
        return Err(AppError::Invalid(problems));
    }
    record(registry, ctx, batch).await
}

fn parse_record(raw: &api::UsageRecord) -> Result<(RecordId, Record), Vec<Invalid>> {
    let mut problems = Vec::new();
    let id = RecordId::parse(&raw.id).map_err(|p| problems.push(p)).ok();
    let called_at_ms = parse::timestamp("called_at", &raw.called_at)
        .map_err(|p| problems.push(p))
        .ok();
    let record = Record::parse(&Reported {
        model: &raw.model,
        workflow: &raw.workflow,
        input_tokens: raw.input_tokens,
        output_tokens: raw.output_tokens,
        finish_reason: raw.finish_reason.as_deref(),
        truncated_tool_calls: &raw.truncated_tool_calls,
        round: raw.round,
        called_at_ms: called_at_ms.unwrap_or_default(),
    })
    .map_err(|found| problems.extend(found))
    .ok();
    match (id, record) {
        (Some(id), Some(record)) if problems.is_empty() => Ok((id, record)),
        _ => Err(problems),
    }
}

/// A record's problem, saying which record (by its place in the batch, never its values).
fn in_record(index: usize, problem: Invalid) -> Invalid {
    Invalid {
        message: format!("record {index}: {}", problem.message),
        ..problem
    }
}

/// How a summary groups calls.
#[derive(Clone, Copy)]
enum GroupBy {
    Model,
    Workflow,
    Day,
}

impl GroupBy {
    fn parse(raw: Option<&str>) -> Result<Self, Invalid> {
        match raw.map(str::trim) {
            None | Some("" | "model") => Ok(Self::Model),
            Some("workflow") => Ok(Self::Workflow),
            Some("day") => Ok(Self::Day),
            Some(_) => Err(Invalid::new(
                "group_by",
                "usage.group_by_invalid",
                "group_by is model, workflow or day",
            )),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Self::Model => "model",
            Self::Workflow => "workflow",
            Self::Day => "day",
        }
    }

    fn key(self, record: &Record) -> String {
        match self {
            Self::Model => record.model.clone(),
            Self::Workflow => record.workflow.as_str().to_owned(),
            Self::Day => Day::from_unix_ms(record.called_at_ms).as_str().to_owned(),
        }
    }
}

/// Tokens and spend of the org's calls made in `from..to`, grouped by model, workflow or
/// day; each call priced as it was recorded, unpriced calls counted and flagged.
pub fn summary(
    registry: &Registry,
    ctx: &Ctx,
    query: api::UsageSummaryQuery,
) -> Result<Answer<api::UsageSummary>, AppError> {
    let position = registry.views.position();
    let mut problems = parse::Problems(Vec::new());
    let from = query
        .from
        .as_deref()
        .and_then(|raw| problems.take(parse::timestamp("from", raw)));
    let to = query
        .to
        .as_deref()
        .and_then(|raw| problems.take(parse::timestamp("to", raw)));
    let group_by = problems.take(GroupBy::parse(query.group_by.as_deref()));
    let group_by = problems.finish(|| group_by).map_err(AppError::Invalid)?;
    let rows = registry
        .views
        .usage(ctx.org.as_str(), from.unwrap_or(0), to.unwrap_or(i64::MAX))?;
    let mut groups: BTreeMap<String, Tally> = BTreeMap::new();
    let mut total = Tally::default();
    for row in &rows {
        groups
            .entry(group_by.key(&row.record))
            .or_default()
            .add(&row.record, &row.costs);
        total.add(&row.record, &row.costs);
    }
    Ok(Answer {
        value: api::UsageSummary {
            group_by: group_by.as_str().to_owned(),
            from: from.map(crate::present::rfc3339),
            to: to.map(crate::present::rfc3339),
            groups: groups
                .into_iter()
                .map(|(key, tally)| group(key, &tally))
                .collect(),
            total: group("total".to_owned(), &total),
        },
        position,
    })
}

fn group(key: String, tally: &Tally) -> api::UsageGroup {
    api::UsageGroup {
        key,
        calls: tally.records,
        input_tokens: tally.input_tokens,
        output_tokens: tally.output_tokens,
        spend: tally.spend(),
        unpriced: tally.unpriced(),
        unpriced_calls: tally.unpriced_records,
        truncated_calls: tally.truncated_records,
    }
}

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// A model's truncated calls in the last 24 hours and 7 days (by the time of the call),
/// and the rounds, tool calls and workflows of the last 7 days' ones, from `views` (the
/// live ones, or a replay).
pub(crate) fn truncations(
    registry: &Registry,
    views: &views::Views,
    ctx: &Ctx,
    model: &str,
) -> Result<api::Truncations, AppError> {
    let now = registry.now_ms();
    let week = week_of_truncations(registry, views, ctx, model)?;
    let last_24h = week
        .iter()
        .filter(|record| record.called_at_ms >= now - DAY_MS)
        .count();
    let summary = usage::TruncationSummary::of(&week);
    Ok(api::Truncations {
        last_24h: last_24h as u64,
        last_7d: summary.calls,
        rounds: summary
            .rounds
            .into_iter()
            .map(|(round, calls)| api::TruncatedRound { round, calls })
            .collect(),
        tool_calls: summary
            .tool_calls
            .into_iter()
            .map(|(name, calls)| api::TruncatedToolCall { name, calls })
            .collect(),
        workflows: summary
            .workflows
            .into_iter()
            .map(|(id, calls)| api::TruncatingWorkflow {
                id: id.as_str().to_owned(),
                truncated_calls_7d: calls,
                keeps_truncating: usage::keeps_truncating(calls),
            })
            .collect(),
    })
}

/// Each workflow's truncated calls of `model` in the last 7 days (workflows with none are
/// absent).
pub(crate) fn truncated_calls_by_workflow(
    registry: &Registry,
    ctx: &Ctx,
    model: &str,
) -> Result<BTreeMap<String, u64>, AppError> {
    let mut counts = BTreeMap::new();
    for record in week_of_truncations(registry, &registry.views, ctx, model)? {
        *counts
            .entry(record.workflow.as_str().to_owned())
            .or_default() += 1;
    }
    Ok(counts)
}

/// The truncated calls of `model` made in the last 7 days. A call reported with a time a
/// little ahead of this clock still counts as recent.
fn week_of_truncations(
    registry: &Registry,
    views: &views::Views,
    ctx: &Ctx,
    model: &str,
) -> Result<Vec<Record>, AppError> {
    let now = registry.now_ms();
    let until = now.saturating_add(DAY_MS);
    Ok(views.truncated_calls(ctx.org.as_str(), model, now - 7 * DAY_MS, until)?)
}
