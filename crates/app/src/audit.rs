//! The audit trail as the API answers it: the org-wide trail (admins), a model's and a
//! credential's history (any role of the org), and the running digest over the log.

use domain::Invalid;
use views::{AuditFilter, AuditRow};

use crate::{Answer, AppError, Ctx, Registry};

/// The kinds of an org's audit entries (`kind` filters on them). A token's changes are
/// `org` entries, related to the token; the platform catalog's are the operator's, in no org.
pub const KINDS: &[&str] = &[
    domain::event::kind::ORG,
    domain::event::kind::CREDENTIAL,
    domain::event::kind::MODEL,
    domain::event::kind::WORKFLOW,
    domain::event::kind::CONNECTION_TEST,
    domain::event::kind::USAGE,
];

/// Entries per page unless the caller asks otherwise.
pub const DEFAULT_LIMIT: u32 = 50;
const MAX_LIMIT: u32 = 500;
/// Entries one request examines at most: a rare filter over a long trail answers a short
/// page with a cursor instead of holding the request.
const SCAN_BUDGET: usize = 20_000;

/// The org's trail, newest first, filtered. Admins only.
pub fn list(
    registry: &Registry,
    ctx: &Ctx,
    query: api::AuditQuery,
) -> Result<Answer<api::AuditPage>, AppError> {
    ctx.require_admin()?;
    let mut problems = Vec::new();
    let mut keep = |result: Result<Option<i64>, Invalid>| {
        result.unwrap_or_else(|invalid| {
            problems.push(invalid);
            None
        })
    };
    let since_ms = keep(time(query.since.as_deref(), "since"));
    let until_ms = keep(time(query.until.as_deref(), "until"));
    let aggregate = match (query.kind.clone(), query.id) {
        (Some(kind), Some(id)) => Some((kind, id)),
        (None, Some(_)) => {
            problems.push(Invalid::new(
                "id",
                "audit.id_without_kind",
                "id names an aggregate together with kind (e.g. kind=model&id=<slug>)",
            ));
            None
        }
        (_, None) => None,
    };
    let cursor = cursor(query.cursor.as_deref()).unwrap_or_else(|invalid| {
        problems.push(invalid);
        None
    });
    let limit = limit(query.limit).unwrap_or_else(|invalid| {
        problems.push(invalid);
        DEFAULT_LIMIT
    });
    if !problems.is_empty() {
        return Err(AppError::Invalid(problems));
    }
    let filter = AuditFilter {
        kind: if aggregate.is_some() {
            None
        } else {
            query.kind
        },
        aggregate,
        actor: query.actor,
        action: query.action,
        since_ms,
        until_ms,
    };
    page(registry, ctx, &filter, cursor, limit)
}

/// A model's history: its events, its connection tests, its dependents warnings.
pub fn model_history(
    registry: &Registry,
    ctx: &Ctx,
    slug: &str,
    query: api::HistoryQuery,
) -> Result<Answer<api::AuditPage>, AppError> {
    let (cursor, limit) = paging(&query)?;
    if registry.views.model(ctx.org.as_str(), slug)?.is_none() {
        return Err(AppError::NotFound {
            code: "model.not_found",
            message: "no custom model with this slug in this org".into(),
        });
    }
    let filter = AuditFilter {
        aggregate: Some((domain::event::kind::MODEL.into(), slug.into())),
        ..AuditFilter::default()
    };
    page(registry, ctx, &filter, cursor, limit)
}

/// A credential's history: its events and the models that took it up or let it go.
pub fn credential_history(
    registry: &Registry,
    ctx: &Ctx,
    id: &str,
    query: api::HistoryQuery,
) -> Result<Answer<api::AuditPage>, AppError> {
    let (cursor, limit) = paging(&query)?;
    if registry.views.credential(ctx.org.as_str(), id)?.is_none() {
        return Err(AppError::NotFound {
            code: "credential.not_found",
            message: "no credential with this id in this org".into(),
        });
    }
    let filter = AuditFilter {
        aggregate: Some((domain::event::kind::CREDENTIAL.into(), id.into())),
        ..AuditFilter::default()
    };
    page(registry, ctx, &filter, cursor, limit)
}

/// The running digest at the views' position. Admins only.
pub fn head(registry: &Registry, ctx: &Ctx) -> Result<Answer<api::AuditHead>, AppError> {
    ctx.require_admin()?;
    let head = registry.views.head()?.unwrap_or(eventlog::Head {
        position: 0,
        digest: eventlog::chain::GENESIS,
    });
    Ok(Answer {
        value: api::AuditHead {
            head_position: head.position,
            digest: hex::encode(head.digest),
            expect: head.to_string(),
        },
        position: head.position,
    })
}

fn page(
    registry: &Registry,
    ctx: &Ctx,
    filter: &AuditFilter,
    cursor: Option<u64>,
    limit: u32,
) -> Result<Answer<api::AuditPage>, AppError> {
    // The position first: the page reflects at least it.
    let position = registry.views.position();
    let page = registry.views.audit(
        ctx.org.as_str(),
        filter,
        cursor,
        limit as usize,
        SCAN_BUDGET,
    )?;
    Ok(Answer {
        value: api::AuditPage {
            items: page.entries.iter().map(entry).collect(),
            next_cursor: page.next.map(|next| next.to_string()),
        },
        position,
    })
}

fn paging(query: &api::HistoryQuery) -> Result<(Option<u64>, u32), AppError> {
    match (cursor(query.cursor.as_deref()), limit(query.limit)) {
        (Ok(cursor), Ok(limit)) => Ok((cursor, limit)),
        (cursor, limit) => Err(AppError::Invalid(
            [cursor.err(), limit.err()].into_iter().flatten().collect(),
        )),
    }
}

/// A cursor this API handed out: the position the next page starts before.
fn cursor(raw: Option<&str>) -> Result<Option<u64>, Invalid> {
    raw.map(|raw| {
        raw.parse::<u64>().ok().filter(|p| *p > 0).ok_or_else(|| {
            Invalid::new(
                "cursor",
                "audit.cursor_invalid",
                "cursor takes the next_cursor of a previous page",
            )
        })
    })
    .transpose()
}

fn limit(raw: Option<u32>) -> Result<u32, Invalid> {
    match raw {
        None => Ok(DEFAULT_LIMIT),
        Some(limit @ 1..=MAX_LIMIT) => Ok(limit),
        Some(_) => Err(Invalid::new(
            "limit",
            "audit.limit_out_of_range",
            format!("limit takes 1 to {MAX_LIMIT} entries per page"),
        )),
    }
}

/// An RFC 3339 time as ms since the Unix epoch.
pub(crate) fn time(raw: Option<&str>, field: &'static str) -> Result<Option<i64>, Invalid> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    time::OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339)
        .ok()
        .and_then(|t| i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok())
        .map(Some)
        .ok_or_else(|| {
            Invalid::new(
                field,
                "audit.time_invalid",
                format!("{field} takes an RFC 3339 time, e.g. 2026-01-31T12:00:00Z"),
            )
        })
}

fn entry(row: &AuditRow) -> api::AuditEntry {
    let aggregate = |kind: &str, id: &str| api::AuditAggregate {
        kind: kind.to_owned(),
        id: id.to_owned(),
    };
    api::AuditEntry {
        at_position: row.seq,
        at: crate::present::rfc3339(row.recorded_at_ms),
        action: row.action.clone(),
        summary: row.summary.clone(),
        aggregate: aggregate(&row.kind, &row.aggregate_id),
        actor: api::AuditActor {
            kind: row.actor.kind.as_str().to_owned(),
            id: row.actor.id.clone(),
            label: row.actor.label.clone(),
        },
        request_id: row.request_id.clone(),
        command_id: row.command_id.clone(),
        client_address: (!row.client_addr.is_empty()).then(|| row.client_addr.clone()),
        changes: row
            .changes
            .iter()
            .map(|c| api::AuditChange {
                field: c.field.clone(),
                before: c.before.clone(),
                after: c.after.clone(),
            })
            .collect(),
        related: row
            .related
            .iter()
            .map(|(kind, id)| aggregate(kind, id))
            .collect(),
    }
}
