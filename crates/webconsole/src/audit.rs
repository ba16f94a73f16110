//! The Audit page: the org's trail, newest first, from `app::audit::list` (the function
//! `GET /v1/audit` calls) with its filters and cursor paging; each entry's changes before
//! and after, and links from a model's entries to the model's page. The page size is a choice
//! in the filter form (25, 50 or 100); paging stays on the server.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;

use app::Registry;

use crate::layout::{Section, html_response, page, problem_box};
use crate::models::encode;
use crate::session::SignedIn;

/// The page's query: the API's own filters, the cursor and the page size.
#[derive(Default, Deserialize)]
pub(crate) struct TrailQuery {
    kind: Option<String>,
    id: Option<String>,
    actor: Option<String>,
    action: Option<String>,
    since: Option<String>,
    until: Option<String>,
    cursor: Option<String>,
    /// Read here, so that a page size that is no number is refused like the API refuses it.
    limit: Option<String>,
}

pub(crate) async fn trail(
    State(registry): State<Arc<Registry>>,
    signed: SignedIn,
    query: Result<Query<TrailQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let query = match query {
        Ok(Query(query)) => query,
        Err(rejection) => return crate::layout::unreadable_query(&signed, rejection),
    };
    let blank = |v: &Option<String>| v.clone().filter(|v| !v.trim().is_empty());
    // `Some(None)`: a page size that is no number.
    let limit = blank(&query.limit).map(|l| l.trim().parse::<u32>().ok());
    let wanted = api::AuditQuery {
        kind: blank(&query.kind),
        id: blank(&query.id),
        actor: blank(&query.actor),
        action: blank(&query.action),
        since: blank(&query.since),
        until: blank(&query.until),
        cursor: blank(&query.cursor),
        limit: limit.flatten(),
    };
    let listed = match limit {
        Some(None) => Err(api::Problem::new(
            422,
            "limit.invalid",
            "limit takes a whole number of entries",
        )),
        _ => {
            app::audit::list(&registry, &signed.read(), wanted.clone()).map_err(|e| e.to_problem())
        }
    };
    let (status, body) = match listed {
        Ok(answer) => (StatusCode::OK, entries(&answer.value, &wanted)),
        Err(problem) => {
            // A member is refused the page itself; a bad filter keeps the form to fix it.
            if problem.status == 401 || problem.status == 403 {
                return crate::layout::problem_page(Some(&signed), &problem);
            }
            let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::BAD_REQUEST);
            (status, problem_box(&problem))
        }
    };
    let content = html! {
        (filters(&wanted))
        (body)
    };
    html_response(status, page(&signed, Section::Audit, "Audit", content))
}

fn entries(trail: &api::AuditPage, wanted: &api::AuditQuery) -> Markup {
    let next = trail.next_cursor.as_ref().map(|cursor| {
        let mut next = wanted.clone();
        next.cursor = Some(cursor.clone());
        format!("/audit?{}", query_string(&next))
    });
    html! {
        @if trail.items.is_empty() {
            p { "No entries match on this page." }
        } @else {
            table {
                caption.visually-hidden { "The org's audit trail, newest first" }
                thead { tr { th { "When" } th { "Who" } th { "What" } th { "Of" } th { "Changes" } } }
                tbody {
                    @for entry in &trail.items {
                        tr {
                            td { (entry.at) br; span.small { "position " (entry.at_position) } }
                            td {
                                (entry.actor.label) br;
                                span.small { (entry.actor.kind) " " code { (entry.actor.id) } }
                                @if let Some(address) = &entry.client_address { br; span.small { "from " (address) } }
                            }
                            td { code { (entry.action) } br; (entry.summary) }
                            td {
                                (aggregate(&entry.aggregate))
                                @for related in &entry.related { br; span.small { "also " (aggregate(related)) } }
                            }
                            td {
                                @if entry.changes.is_empty() { span.unknown { "no field changes" } }
                                @for change in &entry.changes {
                                    code { (change.field) } ": "
                                    (value_or_none(change.before.as_deref())) " → "
                                    (value_or_none(change.after.as_deref()))
                                    br;
                                }
                            }
                        }
                    }
                }
            }
        }
        @if let Some(next) = next {
            nav.pager aria-label="Pages" { a href=(next) rel="next" { "Older entries" } }
        }
    }
}

/// An aggregate, linked to its page when the console has one (a custom model's).
fn aggregate(aggregate: &api::AuditAggregate) -> Markup {
    html! {
        (aggregate.kind) " "
        @if aggregate.kind == "model" && !aggregate.id.contains('/') {
            a href=(format!("/models/{}", encode(&aggregate.id))) { (aggregate.id) }
        } @else {
            code { (aggregate.id) }
        }
    }
}

fn value_or_none(value: Option<&str>) -> Markup {
    match value {
        Some(value) => html! { (value) },
        None => html! { span.unknown { "none" } },
    }
}

/// The filter form (a GET: it changes nothing).
fn filters(query: &api::AuditQuery) -> Markup {
    let value = |v: &Option<String>| v.clone().unwrap_or_default();
    let limit = query.limit.unwrap_or(app::audit::DEFAULT_LIMIT);
    let kinds = app::audit::KINDS;
    html! {
        form.filters method="get" action="/audit" role="search" {
            label for="kind" { "Kind" }
            select id="kind" name="kind" {
                option value="" { "any" }
                @for kind in kinds {
                    @if query.kind.as_deref() == Some(kind) {
                        option value=(kind) selected { (kind) }
                    } @else {
                        option value=(kind) { (kind) }
                    }
                }
            }
            label for="id" { "ID (with kind)" }
            input id="id" name="id" type="text" value=(value(&query.id));
            label for="actor" { "Actor" }
            input id="actor" name="actor" type="text" value=(value(&query.actor)) placeholder="token id or label";
            label for="action" { "Action" }
            input id="action" name="action" type="text" value=(value(&query.action)) placeholder="model.edited or model.";
            label for="since" { "Since" }
            input id="since" name="since" type="text" value=(value(&query.since)) placeholder="2026-01-31T12:00:00Z";
            label for="until" { "Until" }
            input id="until" name="until" type="text" value=(value(&query.until)) placeholder="RFC 3339";
            label for="limit" { "Per page" }
            select id="limit" name="limit" {
                @for size in page_sizes(limit) {
                    option value=(size) selected[size == limit] { (size) }
                }
            }
            button type="submit" { "Filter" }
        }
    }
}

/// The page sizes offered, with `current` among them when a link asked for another.
fn page_sizes(current: u32) -> Vec<u32> {
    let mut sizes = vec![25, 50, 100];
    if !sizes.contains(&current) {
        sizes.push(current);
        sizes.sort_unstable();
    }
    sizes
}

fn query_string(query: &api::AuditQuery) -> String {
    let mut parts = Vec::new();
    for (name, value) in [
        ("kind", &query.kind),
        ("id", &query.id),
        ("actor", &query.actor),
        ("action", &query.action),
        ("since", &query.since),
        ("until", &query.until),
        ("cursor", &query.cursor),
    ] {
        if let Some(value) = value {
            parts.push(format!("{name}={}", encode(value)));
        }
    }
    if let Some(limit) = query.limit {
        parts.push(format!("limit={limit}"));
    }
    parts.join("&")
}
