//! `modelreg usage summary`: tokens and spend of the org's LLM calls, grouped by model,
//! workflow or day.

use api::{Positioned, UsageGroup, UsageSummary, UsageSummaryQuery};

use super::args::UsageCommand;
use super::http::{Answer, Client};
use super::output::{show, table};

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
    }
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
}
