//! `modelreg catalog list|show`: the platform catalog, read from a running registry.

use anyhow::Context;
use api::{Catalog, CatalogModel, Positioned};

use super::args::Remote;
use super::http::{Answer, Client};
use super::output::{show, table};

pub(crate) async fn list(remote: Remote) -> anyhow::Result<()> {
    let client = Client::new(&remote)?;
    let answer: Answer<Positioned<Catalog>> = client.get("/v1/catalog").answer().await?;
    show(client.json, &answer, |catalog| {
        catalog_lines(&catalog.value)
    })
}

pub(crate) async fn show_one(remote: Remote, id: &str) -> anyhow::Result<()> {
    let client = Client::new(&remote)?;
    // Platform ids hold a `/`, which the route takes as it is; each part is one segment.
    let path: Vec<String> = id.split('/').map(super::http::segment).collect();
    let answer: Answer<Positioned<CatalogModel>> = client
        .get(&format!("/v1/catalog/models/{}", path.join("/")))
        .answer()
        .await
        .context("no such platform model; `modelreg catalog list` shows the catalog")?;
    show(client.json, &answer, |model| model_lines(&model.value))
}

fn catalog_lines(catalog: &Catalog) -> Vec<String> {
    let rows: Vec<Vec<String>> = catalog
        .models
        .iter()
        .map(|m| {
            let status = if m.default {
                format!("{} (default)", m.status)
            } else {
                m.status.clone()
            };
            vec![
                m.id.clone(),
                m.display_name.clone(),
                status,
                m.facts.len().to_string(),
                m.unknown.join(","),
                m.expires_on.clone().unwrap_or_default(),
            ]
        })
        .collect();
    let mut lines = table(
        &["ID", "NAME", "STATUS", "FACTS", "UNKNOWN", "EXPIRES"],
        rows,
    );
    if !catalog.proposed.is_empty() {
        lines.push(format!(
            "{} model(s) proposed by syncs, not listed (`modelreg catalog add ID`): {}",
            catalog.proposed.len(),
            catalog
                .proposed
                .iter()
                .map(|p| p.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if let Some(last) = catalog.history.last() {
        lines.push(format!(
            "last change: {} by {} at {}: {}",
            last.event, last.by, last.at, last.summary
        ));
    }
    lines
}

fn model_lines(model: &CatalogModel) -> Vec<String> {
    let mut lines = vec![
        format!("{} ({})", model.display_name, model.id),
        format!(
            "status:  {}{}",
            model.status,
            if model.default {
                " (platform default)"
            } else {
                ""
            }
        ),
    ];
    if let Some(reason) = &model.retired_reason {
        lines.push(format!(
            "retired: {reason} ({} by {})",
            model.retired_at.as_deref().unwrap_or("?"),
            model.retired_by.as_deref().unwrap_or("?")
        ));
    }
    if let Some(since) = &model.missing_upstream_since {
        lines.push(format!("missing upstream since {since}"));
    }
    for fact in &model.facts {
        let mut line = format!(
            "  {}: {} ({}, {})",
            fact.fact, fact.value, fact.source, fact.as_of
        );
        if let Some(reason) = &fact.override_reason {
            line.push_str(&format!(
                "; overridden because {reason}; synced: {}",
                fact.synced_value.as_deref().unwrap_or("unknown")
            ));
        }
        lines.push(line);
    }
    for unknown in &model.unknown {
        lines.push(format!("  {unknown}: unknown (no source gives it)"));
    }
    lines
}
