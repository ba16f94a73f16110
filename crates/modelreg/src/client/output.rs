//! What the client commands print: the API's JSON with `--json`, else summaries and tables
//! for people, made from the answers' typed values.

use api::{Credential, Model, ModelList, TestResult};

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
    let custom: Vec<Vec<String>> = list
        .custom
        .iter()
        .map(|model| {
            vec![
                model.slug.clone(),
                model.display_name.clone(),
                model.provider.clone(),
                model.status.clone(),
            ]
        })
        .collect();
    // One set of widths for both sections, so their columns line up.
    let all: Vec<Vec<String>> = platform.iter().chain(&custom).cloned().collect();
    let widths = column_widths(&MODEL_HEADER, &all);
    let mut lines = Vec::new();
    for (title, rows) in [("platform:", platform), ("custom:", custom)] {
        lines.push(title.to_owned());
        if rows.is_empty() {
            lines.push("  (none)".to_owned());
            continue;
        }
        lines.push(format!("  {}", table_line(&MODEL_HEADER, &widths)));
        for row in &rows {
            lines.push(format!("  {}", table_line(row, &widths)));
        }
    }
    lines
}

/// Saved credentials, one a row.
pub(crate) fn credential_table(credentials: &[Credential]) -> Vec<String> {
    if credentials.is_empty() {
        return vec!["(none)".to_owned()];
    }
    let rows: Vec<Vec<String>> = credentials
        .iter()
        .map(|credential| {
            vec![
                credential.id.clone(),
                credential.provider.clone(),
                credential.kind.clone(),
                credential.preview.clone(),
                credential.used_by.to_string(),
            ]
        })
        .collect();
    let widths = column_widths(&CREDENTIAL_HEADER, &rows);
    let mut lines = vec![table_line(&CREDENTIAL_HEADER, &widths)];
    lines.extend(rows.iter().map(|row| table_line(row, &widths)));
    lines
}

/// The width of each column: its widest cell, header included.
fn column_widths<S: AsRef<str>>(header: &[S], rows: &[Vec<String>]) -> Vec<usize> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.as_ref().chars().count()).collect();
    for row in rows {
        for (width, value) in widths.iter_mut().zip(row) {
            *width = (*width).max(value.chars().count());
        }
    }
    widths
}

/// One row, each cell padded to its column's width but the last (no trailing spaces).
fn table_line<S: AsRef<str>>(cells: &[S], widths: &[usize]) -> String {
    let last = cells.len().saturating_sub(1);
    let mut line = String::new();
    for (index, (value, width)) in cells.iter().zip(widths).enumerate() {
        if index == last {
            line.push_str(value.as_ref());
        } else {
            line.push_str(&format!("{:<width$}  ", value.as_ref()));
        }
    }
    line
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
        let widths = column_widths(&["ID", "NAME"], &rows);
        assert_eq!(widths, [16, 4]);
        assert_eq!(
            table_line(&["ID", "NAME"], &widths),
            "ID                NAME"
        );
        assert_eq!(table_line(&rows[1], &widths), "b                 y");
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
