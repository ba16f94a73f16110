//! `modelreg audit` and the histories of a model or a credential: the trail as a table, or
//! with `--json` one entry per line (JSON lines, for a SIEM), newest first.

use api::{AuditEntry, AuditHead, AuditPage, AuditQuery, HistoryQuery, Positioned};

use super::args::{AuditArgs, PageArgs, Remote};
use super::http::{Answer, Client};
use super::output::{audit_table, show};
use crate::{note, say};

/// The org's trail (admins).
pub(crate) async fn run(remote: Remote, args: AuditArgs) -> anyhow::Result<()> {
    let client = Client::new(&remote)?;
    let query = AuditQuery {
        kind: args.kind,
        id: args.id,
        actor: args.actor,
        action: args.action,
        since: args.since,
        until: args.until,
        cursor: None,
        limit: None,
    };
    print_pages(&client, "/v1/audit", &args.pages, |cursor, limit| {
        AuditQuery {
            cursor,
            limit,
            ..query.clone()
        }
    })
    .await
}

/// The running digest to record (admins): `POSITION:DIGEST`, or the answer with `--json`.
pub(crate) async fn head(remote: Remote) -> anyhow::Result<()> {
    let client = Client::new(&remote)?;
    let answer: Answer<Positioned<AuditHead>> = client.get("/v1/audit/head").answer().await?;
    show(client.json, &answer, |head| vec![head.value.expect.clone()])
}

/// A model's or a credential's history at `path`.
pub(crate) async fn history(client: &Client, path: &str, pages: &PageArgs) -> anyhow::Result<()> {
    print_pages(client, path, pages, |cursor, limit| HistoryQuery {
        cursor,
        limit,
    })
    .await
}

/// Prints one page, or every page from the cursor on with `--all`.
async fn print_pages<Q: serde::Serialize>(
    client: &Client,
    path: &str,
    pages: &PageArgs,
    query: impl Fn(Option<String>, Option<u32>) -> Q,
) -> anyhow::Result<()> {
    let mut cursor = pages.cursor.clone();
    let mut first = true;
    loop {
        let answer: Answer<Positioned<AuditPage>> = client
            .get(path)
            .query(&query(cursor.clone(), pages.limit))
            .answer()
            .await?;
        let page = answer.value.value;
        print_entries(client.json, &page.items, first)?;
        first = false;
        match page.next_cursor {
            Some(next) if pages.all => cursor = Some(next),
            Some(next) => {
                note(&format!("more: --cursor {next} (or --all)"));
                return Ok(());
            }
            None => return Ok(()),
        }
    }
}

fn print_entries(json: bool, entries: &[AuditEntry], header: bool) -> anyhow::Result<()> {
    if json {
        for entry in entries {
            say(&serde_json::to_string(entry)?);
        }
        return Ok(());
    }
    let lines = audit_table(entries);
    for line in lines.iter().skip(usize::from(!header)) {
        say(line);
    }
    Ok(())
}
