//! What the client commands print: the API's JSON with `--json`, else summaries and tables
//! for people, made from the answers' typed values.

use api::{Credential, Model, ModelList, TestResult};
use comfy_table::{Table, presets};

use super::http::Answer;
use crate::say;

/// Prints an answer on stdout: its JSON as received with `--json`, else `lines` of it.
pub(crate) fn show<T>(
    json: bool,
    answer: &Answer<T>,
    lines: impl FnOnce(&T) -> Vec<String>,
) -> anyhow::Result<()> {
    if json {
        say(&answer.pretty()?);
        return Ok(());
    }
    for line in lines(&answer.value) {
        say(&line);
    }
    Ok(())
}

/// A model for people: what it is, whether it is active, which credential and version.
pub(crate) fn model_summary(model: &Model) -> Vec<String> {
    let credential = match &model.credential {
        None => "none".to_owned(),
        Some(credential) => format!("{} ({})", credential.preview, credential.id),
    };
    let mut rows = vec![
        ("slug", model.slug.clone()),
        ("name", model.display_name.clone()),
        ("provider", model.provider.clone()),
        ("model id", model.provider_model_id.clone()),
    ];
    for (label, value) in [("endpoint", &model.endpoint_url), ("region", &model.region)] {
        if let Some(value) = value {
            rows.push((label, value.clone()));
        }
    }
    rows.push(("status", model.status.clone()));
    rows.push(("credential", credential));
    rows.push(("version", model.version.to_string()));
    let width = rows.iter().map(|(label, _)| label.len()).max().unwrap_or(0) + 1;
    let mut lines: Vec<String> = rows
        .into_iter()
        .map(|(label, value)| format!("{:<width$} {value}", format!("{label}:")))
        .collect();
    for warning in &model.warnings {
        lines.push(format!("warning: {}", warning.message));
    }
    lines
}

const MODEL_HEADER: [&str; 4] = ["ID", "NAME", "PROVIDER", "STATUS"];
const CREDENTIAL_HEADER: [&str; 5] = ["ID", "PROVIDER", "KIND", "PREVIEW", "USED BY"];

/// Both groups of models, each under its title, in columns that line up across the two.
pub(crate) fn model_list(list: &ModelList) -> Vec<String> {
    let platform: Vec<Vec<String>> = list
        .platform
        .iter()
        .map(|model| {
            let mut status = model.status.clone();
            if model.default {
                status.push_str(" (default)");
            }
            vec![
                model.id.clone(),
                model.display_name.clone(),
                model.provider.clone(),
                status,
            ]
        })
        .collect();
    let custom = list.custom.iter().map(|model| {
        vec![
            model.slug.clone(),
            model.display_name.clone(),
            model.provider.clone(),
            model.status.clone(),
        ]
    });
    // One table lays out both groups, so that their columns line up; its lines are then
    // printed under their titles: the header, then one line a row, in order.
    let platform_count = platform.len();
    let mut table = table(&MODEL_HEADER, platform.into_iter().chain(custom)).into_iter();
    let header = table.next().unwrap_or_default();
    let mut lines = Vec::new();
    for (title, count) in [
        ("platform:", platform_count),
        ("custom:", list.custom.len()),
    ] {
        lines.push(title.to_owned());
        if count == 0 {
            lines.push("  (none)".to_owned());
            continue;
        }
        lines.push(format!("  {header}"));
        lines.extend(table.by_ref().take(count).map(|row| format!("  {row}")));
    }
    lines
}

/// Saved credentials, one a row.
pub(crate) fn credential_table(credentials: &[Credential]) -> Vec<String> {
    if credentials.is_empty() {
        return vec!["(none)".to_owned()];
    }
    let rows = credentials.iter().map(|credential| {
        vec![
            credential.id.clone(),
            credential.provider.clone(),
            credential.kind.clone(),
            credential.preview.clone(),
            credential.used_by.to_string(),
        ]
    });
    table(&CREDENTIAL_HEADER, rows)
}

/// A table as plain columns, laid out by comfy-table: the header line, then one line a row;
/// no borders, each column as wide as its widest value (as the terminal shows it) and two
/// spaces between columns, no trailing spaces. A control character in a value (a line break,
/// an escape sequence) is shown as a space, so that a row stays one line and a value cannot
/// drive the terminal.
fn table(header: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> Vec<String> {
    let mut table = Table::new();
    table.load_style(presets::NOTHING);
    table.set_header(header.to_vec());
    for row in rows {
        table.add_row(row.iter().map(|value| value.replace(char::is_control, " ")));
    }
    for column in table.column_iter_mut() {
        column.set_padding((0, 2));
    }
    table
        .lines()
        .map(|line| line.trim_end().to_owned())
        .collect()
}

/// A connection test's outcome for people: passed, or the failure class, its fix, when to
/// retry and what the provider said.
pub(crate) fn outcome_lines(result: &TestResult) -> Vec<String> {
    if result.passed {
        return vec![format!("Test Connection passed ({} ms)", result.latency_ms)];
    }
    let mut lines = vec![
        format!("Test Connection failed: {}", result.class),
        format!("  fix: {}", result.hint),
    ];
    if let Some(ms) = result.retry_after_ms {
        lines.push(format!("  retry after: {}", duration_text(ms)));
    }
    if let Some(message) = &result.upstream_message {
        let status = result
            .upstream_status
            .map(|s| format!("{s} "))
            .unwrap_or_default();
        lines.push(format!("  provider said: {status}{message}"));
    }
    lines
}

fn duration_text(ms: u64) -> String {
    if ms < 1_000 {
        return format!("{ms} ms");
    }
    format!("{:.1} s", ms as f64 / 1_000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_as_wide_as_their_widest_value() {
        let rows = vec![
            vec!["a-very-long-slug".to_owned(), "x".to_owned()],
            vec!["b".to_owned(), "y".to_owned()],
        ];
        assert_eq!(
            table(&["ID", "NAME"], rows),
            [
                "ID                NAME",
                "a-very-long-slug  x",
                "b                 y"
            ]
        );
    }

    #[test]
    fn a_value_with_a_line_break_stays_on_its_row() {
        let rows = vec![vec!["a\nb\x1b[2J".to_owned(), "x".to_owned()]];
        assert_eq!(
            table(&["ID", "NAME"], rows),
            ["ID       NAME", "a b [2J  x"]
        );
    }

    #[test]
    fn the_model_list_shows_each_group_under_its_title() {
        let list = ModelList {
            platform: vec![api::PlatformModel {
                kind: "platform".into(),
                id: "google/gemini-3.1-pro-preview".into(),
                display_name: "Gemini 3.1 Pro".into(),
                provider: "openrouter".into(),
                default: true,
                capabilities: api::KnownCapabilities::default(),
                max_tokens: None,
                input_cost_per_token: None,
                output_cost_per_token: None,
                status: "active".into(),
            }],
            custom: Vec::new(),
        };
        assert_eq!(
            model_list(&list),
            [
                "platform:",
                "  ID                             NAME            PROVIDER    STATUS",
                "  google/gemini-3.1-pro-preview  Gemini 3.1 Pro  openrouter  active (default)",
                "custom:",
                "  (none)",
            ]
        );
    }

    #[test]
    fn a_rate_limited_outcome_says_when_to_retry() {
        let result = TestResult {
            passed: false,
            class: "rate_limited".into(),
            hint: "wait and retry".into(),
            retry_after_ms: Some(2500),
            upstream_status: Some(429),
            upstream_message: Some("slow down".into()),
            latency_ms: 0,
            suggested_input_cost_per_token: None,
            suggested_output_cost_per_token: None,
        };
        assert_eq!(
            outcome_lines(&result),
            [
                "Test Connection failed: rate_limited",
                "  fix: wait and retry",
                "  retry after: 2.5 s",
                "  provider said: 429 slow down",
            ]
        );
    }
}
