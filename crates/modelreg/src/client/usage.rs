//! `modelreg usage summary`: tokens and spend of the org's LLM calls, grouped by model,
//! workflow or day; `modelreg usage record`: usage records from a file.

use std::io::Read;

use anyhow::Context;
use api::{
    Positioned, UsageBatch, UsageGroup, UsageReceipt, UsageRecord, UsageSummary, UsageSummaryQuery,
};

use super::args::UsageCommand;
use super::http::{Answer, Client};
use super::output::{show, table};
use crate::say;

pub(crate) async fn run(remote: super::Remote, command: UsageCommand) -> anyhow::Result<()> {
    let client = Client::new(&remote)?;
    match command {
        UsageCommand::Summary { from, to, group_by } => {
            let answer: Answer<Positioned<UsageSummary>> = client
                .get("/v1/usage/summary")
                .query(&UsageSummaryQuery { from, to, group_by })
                .answer()
                .await?;
            show(client.json, &answer, |summary| {
                summary_table(&summary.value)
            })
        }
        UsageCommand::Record { file } => {
            let text = if file.as_os_str() == "-" {
                let mut text = String::new();
                std::io::stdin()
                    .read_to_string(&mut text)
                    .context("cannot read standard input")?;
                text
            } else {
                std::fs::read_to_string(&file)
                    .with_context(|| format!("cannot read {}", file.display()))?
            };
            let records = parse_records(&text)?;
            let mut total = UsageReceipt {
                recorded: 0,
                duplicates: 0,
            };
            for (n, batch) in records.chunks(BATCH).enumerate() {
                let answer: Answer<Positioned<UsageReceipt>> = client
                    .post("/v1/usage")
                    .body(&UsageBatch {
                        records: batch.to_vec(),
                    })
                    .answer()
                    .await
                    .with_context(|| {
                        format!(
                            "batch {} (records {} to {}) was refused; the batches before it were recorded",
                            n + 1,
                            n * BATCH + 1,
                            n * BATCH + batch.len()
                        )
                    })?;
                total.recorded += answer.value.value.recorded;
                total.duplicates += answer.value.value.duplicates;
            }
            if client.json {
                say(&serde_json::to_string_pretty(&total)?);
            } else {
                say(&format!(
                    "recorded {} usage records; {} the registry had already (counted once)",
                    total.recorded, total.duplicates
                ));
            }
            Ok(())
        }
    }
}

/// The most records `POST /v1/usage` takes at once.
const BATCH: usize = 250;

/// A JSON array of records, or one record per line (blank lines skipped). A mistake names
/// the line (or the array's item) and the field, never the value.
fn parse_records(text: &str) -> anyhow::Result<Vec<UsageRecord>> {
    if text.trim_start().starts_with('[') {
        return serde_json::from_str(text).map_err(|e| {
            anyhow::anyhow!(
                "not a JSON array of usage records (line {}, column {}: {})",
                e.line(),
                e.column(),
                kind_of(&e)
            )
        });
    }
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(n, line)| {
            serde_json::from_str(line).map_err(|e| {
                anyhow::anyhow!(
                    "line {} is not a usage record (column {}: {})",
                    n + 1,
                    e.column(),
                    kind_of(&e)
                )
            })
        })
        .collect()
}

/// What kind of mistake, in serde's words, never quoting the file: an unknown key could be
/// a pasted secret, so only fields of a record (ours) are named.
fn kind_of(error: &serde_json::Error) -> String {
    let text = error.to_string();
    let text = text.split(" at line ").next().unwrap_or_default();
    if text.starts_with("unknown field") {
        return "a field usage records do not have (prompt or response text is never taken)"
            .to_owned();
    }
    if text.starts_with("missing field") {
        return text.to_owned();
    }
    text.split([':', '`', '"'])
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// One row per group and a total; spend of a group with unpriced calls is marked, and a
/// group with no priced call shows "unpriced", never $0.
fn summary_table(summary: &UsageSummary) -> Vec<String> {
    let key = summary.group_by.to_uppercase();
    let rows = summary
        .groups
        .iter()
        .chain(std::iter::once(&summary.total))
        .map(group_row);
    table(
        &[
            &key,
            "CALLS",
            "INPUT TOKENS",
            "OUTPUT TOKENS",
            "SPEND (USD)",
            "TRUNCATED",
        ],
        rows,
    )
}

fn group_row(group: &UsageGroup) -> Vec<String> {
    let spend = match (&group.spend, group.unpriced) {
        (Some(spend), false) => spend.clone(),
        (Some(spend), true) => format!("{spend} + {} unpriced", group.unpriced_calls),
        (None, _) => format!("unpriced ({} calls)", group.unpriced_calls),
    };
    vec![
        group.key.clone(),
        group.calls.to_string(),
        group.input_tokens.to_string(),
        group.output_tokens.to_string(),
        spend,
        group.truncated_calls.to_string(),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(key: &str, spend: Option<&str>, unpriced_calls: u64) -> UsageGroup {
        UsageGroup {
            key: key.into(),
            calls: 2,
            input_tokens: 10,
            output_tokens: 5,
            spend: spend.map(str::to_owned),
            unpriced: unpriced_calls > 0,
            unpriced_calls,
            truncated_calls: 1,
        }
    }

    #[test]
    fn unpriced_spend_is_never_shown_as_zero() {
        let summary = UsageSummary {
            group_by: "model".into(),
            from: None,
            to: None,
            groups: vec![group("team-gpt", Some("0.012"), 0), group("local", None, 2)],
            total: group("total", Some("0.012"), 2),
        };
        let lines = summary_table(&summary);
        assert!(lines[0].starts_with("MODEL"), "{lines:?}");
        assert!(lines[1].contains("0.012"), "{lines:?}");
        assert!(lines[2].contains("unpriced (2 calls)"), "{lines:?}");
        assert!(lines[3].contains("0.012 + 2 unpriced"), "{lines:?}");
    }

    const RECORD: &str = r#"{"id":"r-1","model":"team-gpt","workflow":"digest","input_tokens":10,"output_tokens":5,"called_at":"2026-12-06T10:00:00Z"}"#;

    #[test]
    fn records_come_as_an_array_or_one_a_line() {
        let array = parse_records(&format!("[{RECORD},\n{RECORD}]")).expect("array");
        assert_eq!(array.len(), 2);
        let lines = parse_records(&format!("{RECORD}\n\n{RECORD}\n")).expect("lines");
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1].model, "team-gpt");
    }

    #[test]
    fn a_mistake_names_its_line_and_never_the_value() {
        let canary = "sk-canary-0123456789";
        let pasted = RECORD.replace(r#""id":"r-1""#, &format!(r#""{canary}":"x","id":"r-1""#));
        let error = parse_records(&format!("{RECORD}\n{pasted}"))
            .expect_err("an unknown field")
            .to_string();
        assert!(error.starts_with("line 2 "), "{error}");
        assert!(!error.contains(canary), "{error}");
        let typed = RECORD.replace("10,", &format!(r#""{canary}","#));
        let error = parse_records(&typed).expect_err("a string").to_string();
        assert!(error.contains("invalid type"), "{error}");
        assert!(!error.contains(canary), "{error}");
        let missing = parse_records(r#"[{"id":"r-1"}]"#)
            .expect_err("missing")
            .to_string();
        assert!(
            error.contains("line 1") && missing.contains("missing field"),
            "{missing}"
        );
    }
}
