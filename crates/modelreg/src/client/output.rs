//! What the client commands print: the API's JSON with `--json`, else summaries and tables
//! for people, made from the answers' typed values.

use api::{
    AuditEntry, CheckAnswer, Credential, Model, ModelList, ModelReferences, PlatformModel,
    TestResult, Token, Workflow,
};
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

/// A model for people: every field a person set, and what the registry derived.
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
    rows.push(("max tokens", model.max_tokens.to_string()));
    let caps = &model.capabilities;
    rows.extend(capability_rows(
        Some(caps.json_mode),
        Some(caps.vision),
        Some(caps.tool_use),
        Some(caps.reasoning.as_deref().unwrap_or("off")),
    ));
    rows.extend(cost_rows(
        &model.input_cost_per_token,
        &model.output_cost_per_token,
    ));
    rows.push(("status", model.status.clone()));
    rows.push(("credential", credential));
    rows.push(("version", model.version.to_string()));
    if let Some(truncations) = &model.truncations {
        rows.push((
            "truncations",
            format!(
                "{} in the last 24 h, {} in 7 days",
                truncations.last_24h, truncations.last_7d
            ),
        ));
    }
    let mut lines = labelled(rows);
    for warning in &model.warnings {
        lines.push(format!("warning: {}", warning.message));
    }
    if let Some(recommendation) = &model.recommendation {
        lines.push(format!(
            "recommendation: {} (apply: modelreg models edit {} --max-tokens {})",
            recommendation.message, model.slug, recommendation.edit.max_tokens
        ));
    }
    lines
}

/// A platform model for people: what the catalog knows of it, "unknown" where it does not.
pub(crate) fn platform_summary(model: &PlatformModel) -> Vec<String> {
    let mut rows = vec![
        ("id", model.id.clone()),
        ("name", model.display_name.clone()),
        ("provider", model.provider.clone()),
        ("kind", "platform (no keys to manage)".to_owned()),
        (
            "default",
            if model.default { "yes" } else { "no" }.to_owned(),
        ),
        (
            "max tokens",
            model
                .max_tokens
                .map_or_else(|| UNKNOWN.to_owned(), |n| n.to_string()),
        ),
    ];
    let caps = &model.capabilities;
    rows.extend(capability_rows(
        caps.json_mode,
        caps.vision,
        caps.tool_use,
        caps.reasoning.as_deref(),
    ));
    rows.extend(cost_rows(
        &model.input_cost_per_token,
        &model.output_cost_per_token,
    ));
    rows.push(("status", model.status.clone()));
    if let Some(day) = &model.expires_on {
        let users = if model.used_by_workflows.is_empty() {
            "no active workflow uses it".to_owned()
        } else {
            format!("still used by {}", model.used_by_workflows.join(", "))
        };
        rows.push(("expires", format!("{day}; {users}")));
    }
    let mut lines = labelled(rows);
    if !model.facts.is_empty() {
        lines.push("sources:".to_owned());
        lines.extend(model.facts.iter().map(|fact| match &fact.override_reason {
            Some(reason) => format!(
                "  {}: operator override on {} ({reason})",
                fact.fact, fact.as_of
            ),
            None => format!("  {}: {} on {}", fact.fact, fact.source, fact.as_of),
        }));
    }
    lines
}

const UNKNOWN: &str = "unknown";

fn yes_no(value: Option<bool>) -> String {
    match value {
        Some(true) => "yes".to_owned(),
        Some(false) => "no".to_owned(),
        None => UNKNOWN.to_owned(),
    }
}

fn capability_rows(
    json_mode: Option<bool>,
    vision: Option<bool>,
    tool_use: Option<bool>,
    reasoning: Option<&str>,
) -> [(&'static str, String); 4] {
    [
        ("json mode", yes_no(json_mode)),
        ("vision", yes_no(vision)),
        ("tool use", yes_no(tool_use)),
        ("reasoning", reasoning.unwrap_or(UNKNOWN).to_owned()),
    ]
}

fn cost_rows(input: &Option<String>, output: &Option<String>) -> [(&'static str, String); 2] {
    let usd = |cost: &Option<String>| {
        cost.as_ref()
            .map_or_else(|| UNKNOWN.to_owned(), |c| format!("{c} USD per token"))
    };
    [("input cost", usd(input)), ("output cost", usd(output))]
}

/// `label: value` lines, the values lined up.
fn labelled(rows: Vec<(&str, String)>) -> Vec<String> {
    let width = rows.iter().map(|(label, _)| label.len()).max().unwrap_or(0) + 1;
    rows.into_iter()
        .map(|(label, value)| {
            let value = value.replace(char::is_control, " ");
            format!("{:<width$} {value}", format!("{label}:"))
        })
        .collect()
}

const MODEL_HEADER: [&str; 4] = ["ID", "NAME", "PROVIDER", "STATUS"];
const CREDENTIAL_HEADER: [&str; 7] = [
    "ID", "NAME", "PROVIDER", "KIND", "PREVIEW", "STATE", "USED BY",
];

/// Both groups of models, each under its title, in columns that line up across the two;
/// deactivated custom models only with `all`. A custom model's id is its slug, so models
/// with one display name are told apart.
pub(crate) fn model_list(list: &ModelList, all: bool) -> Vec<String> {
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
    let custom: Vec<&Model> = list
        .custom
        .iter()
        .filter(|model| all || model.status != "deactivated")
        .collect();
    let hidden = list.custom.len() - custom.len();
    let custom_count = custom.len();
    let custom = custom.into_iter().map(|model| {
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
    for (title, count) in [("platform:", platform_count), ("custom:", custom_count)] {
        lines.push(title.to_owned());
        if count == 0 {
            lines.push("  (none)".to_owned());
            continue;
        }
        lines.push(format!("  {header}"));
        lines.extend(table.by_ref().take(count).map(|row| format!("  {row}")));
    }
    if hidden > 0 {
        lines.push(format!(
            "({hidden} deactivated not shown; --all lists them)"
        ));
    }
    lines
}

/// Who references a model.
pub(crate) fn model_references(references: &ModelReferences) -> Vec<String> {
    let rows = references
        .active
        .iter()
        .map(|w| (w, "yes"))
        .chain(references.inactive.iter().map(|w| (w, "no")))
        .map(|(workflow, active)| {
            let truncated = if workflow.keeps_truncating {
                format!("{} (keeps truncating)", workflow.truncated_calls_7d)
            } else {
                workflow.truncated_calls_7d.to_string()
            };
            vec![
                workflow.id.clone(),
                workflow.name.clone(),
                active.to_owned(),
                truncated,
            ]
        })
        .collect::<Vec<_>>();
    if rows.is_empty() {
        return vec!["(no workflow references it)".to_owned()];
    }
    table(&["WORKFLOW", "NAME", "ACTIVE", "TRUNCATED (7 D)"], rows)
}

/// The capability check's verdict: allowed, or each refusal and its reason.
pub(crate) fn check_lines(verdict: &CheckAnswer) -> Vec<String> {
    let mut lines = vec![if verdict.allowed {
        format!("{}: every wanted feature is available", verdict.model)
    } else {
        format!("{}: refused", verdict.model)
    }];
    for refusal in &verdict.refused {
        lines.push(format!("  {}: {}", refusal.feature, refusal.reason));
    }
    for feature in &verdict.unknown {
        lines.push(format!(
            "  {feature}: unknown (the catalog cannot vouch for it)"
        ));
    }
    lines
}

/// Workflows, one a row.
pub(crate) fn workflow_table(workflows: &[Workflow]) -> Vec<String> {
    if workflows.is_empty() {
        return vec!["(none)".to_owned()];
    }
    let rows = workflows.iter().map(|workflow| {
        vec![
            workflow.id.clone(),
            workflow.name.clone(),
            if workflow.active { "yes" } else { "no" }.to_owned(),
            workflow.steps.len().to_string(),
            if workflow.broken { "BROKEN" } else { "ok" }.to_owned(),
        ]
    });
    table(&["ID", "NAME", "ACTIVE", "STEPS", "STATE"], rows)
}

/// One workflow: its fields, where each model it uses stands, and its notices.
pub(crate) fn workflow_summary(workflow: &Workflow) -> Vec<String> {
    let mut lines = labelled(vec![
        ("id", workflow.id.clone()),
        ("name", workflow.name.clone()),
        (
            "active",
            if workflow.active { "yes" } else { "no" }.to_owned(),
        ),
        (
            "broken",
            if workflow.broken { "yes" } else { "no" }.to_owned(),
        ),
        ("version", workflow.version.to_string()),
        (
            "updated",
            format!("{} by {}", workflow.updated_at, workflow.updated_by),
        ),
    ]);
    for reference in &workflow.references {
        lines.push(format!("model {}: {}", reference.model, reference.status));
        for warning in &reference.warnings {
            lines.push(format!("  {}: {}", warning.feature, warning.reason));
        }
    }
    for notice in &workflow.notices {
        lines.push(format!("notice: {}", notice.message));
    }
    lines
        .iter_mut()
        .for_each(|line| *line = line.replace(char::is_control, " "));
    lines
}

/// The org's tokens, one a row.
pub(crate) fn token_table(tokens: &[Token]) -> Vec<String> {
    let rows = tokens.iter().map(|token| {
        vec![
            token.token_id.clone(),
            token.label.clone(),
            token.role.clone(),
            token.state.clone(),
            format!("{} by {}", token.issued_at, token.issued_by),
            token.expires_at.clone().unwrap_or_else(|| "-".into()),
            token.last_used_at.clone().unwrap_or_else(|| "-".into()),
        ]
    });
    table(
        &[
            "ID",
            "LABEL",
            "ROLE",
            "STATE",
            "ISSUED",
            "EXPIRES",
            "LAST USED",
        ],
        rows,
    )
}

/// One saved credential's metadata, its versions and the models that use it.
pub(crate) fn credential_summary(credential: &Credential) -> Vec<String> {
    let mut fields = vec![
        ("id", credential.id.clone()),
        (
            "name",
            credential.name.clone().unwrap_or_else(|| "-".into()),
        ),
        ("provider", credential.provider.clone()),
        ("kind", credential.kind.clone()),
        ("state", credential.state.clone()),
        ("preview", credential.preview.clone()),
        ("fingerprint", credential.fingerprint.clone()),
        (
            "expires",
            match (&credential.expires_at, credential.expiring_soon) {
                (Some(at), true) => format!("{at} (within 7 days)"),
                (Some(at), false) => at.clone(),
                (None, _) => "never".into(),
            },
        ),
        ("used by", format!("{} model(s)", credential.used_by)),
        (
            "models",
            if credential.models.is_empty() {
                "-".into()
            } else {
                credential.models.join(", ")
            },
        ),
        (
            "last test",
            credential.last_test.as_ref().map_or_else(
                || "-".into(),
                |t| format!("{} at {}", t.class, t.completed_at),
            ),
        ),
        ("version", credential.version.to_string()),
        (
            "created",
            format!("{} by {}", credential.created_at, credential.created_by),
        ),
        ("updated", credential.updated_at.clone()),
    ];
    let versions: Vec<String> = credential
        .versions
        .iter()
        .map(|v| match &v.shredded_at {
            Some(at) => format!("v{} {} {} (shredded {at})", v.version, v.preview, v.state),
            None => format!("v{} {} {}", v.version, v.preview, v.state),
        })
        .collect();
    if !versions.is_empty() {
        fields.push(("versions", versions.join("; ")));
    }
    labelled(fields)
}

/// Saved credentials, one a row.
pub(crate) fn credential_table(credentials: &[Credential]) -> Vec<String> {
    if credentials.is_empty() {
        return vec!["(none)".to_owned()];
    }
    let rows = credentials.iter().map(|credential| {
        let state = if credential.expiring_soon {
            format!("{} (expires soon)", credential.state)
        } else {
            credential.state.clone()
        };
        vec![
            credential.id.clone(),
            credential.name.clone().unwrap_or_default(),
            credential.provider.clone(),
            credential.kind.clone(),
            credential.preview.clone(),
            state,
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
pub(crate) fn table(header: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> Vec<String> {
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

/// The known prices a passing test suggests, if any.
pub(crate) fn price_lines(result: &TestResult) -> Vec<String> {
    [
        (
            "input_cost_per_token",
            &result.suggested_input_cost_per_token,
        ),
        (
            "output_cost_per_token",
            &result.suggested_output_cost_per_token,
        ),
    ]
    .into_iter()
    .filter_map(|(field, price)| Some(format!("known price: {field} = {}", price.as_ref()?)))
    .collect()
}

fn duration_text(ms: u64) -> String {
    if ms < 1_000 {
        return format!("{ms} ms");
    }
    format!("{:.1} s", ms as f64 / 1_000.0)
}

/// Audit entries, one a line: where, when, who, what, and what changed.
pub(crate) fn audit_table(entries: &[AuditEntry]) -> Vec<String> {
    let rows = entries.iter().map(|entry| {
        let changes: Vec<String> = entry
            .changes
            .iter()
            .map(|change| {
                let value = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".to_owned());
                format!(
                    "{}: {} -> {}",
                    change.field,
                    value(&change.before),
                    value(&change.after)
                )
            })
            .collect();
        vec![
            entry.at_position.to_string(),
            entry.at.clone(),
            format!("{} ({})", entry.actor.label, entry.actor.id),
            entry.summary.clone(),
            format!("{} {}", entry.aggregate.kind, entry.aggregate.id),
            changes.join("; "),
        ]
    });
    table(
        &[
            "POSITION",
            "TIME",
            "ACTOR",
            "ACTION",
            "AGGREGATE",
            "CHANGES",
        ],
        rows,
    )
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
                ..api::PlatformModel::default()
            }],
            custom: Vec::new(),
            ..ModelList::default()
        };
        assert_eq!(
            model_list(&list, false),
            [
                "platform:",
                "  ID                             NAME            PROVIDER    STATUS",
                "  google/gemini-3.1-pro-preview  Gemini 3.1 Pro  openrouter  active (default)",
                "custom:",
                "  (none)",
            ]
        );
    }

    fn custom(slug: &str, name: &str, status: &str) -> Model {
        Model {
            kind: "custom".into(),
            slug: slug.into(),
            display_name: name.into(),
            provider: "anthropic".into(),
            provider_model_id: "claude-sonnet-4-6".into(),
            credential: Some(api::CredentialSummary {
                id: "cred_1".into(),
                preview: "sk-ant-…wxyz".into(),
                state: "active".into(),
            }),
            endpoint_url: None,
            region: None,
            max_tokens: 32000,
            capabilities: api::Capabilities {
                json_mode: false,
                vision: true,
                tool_use: true,
                reasoning: Some("max_tokens".into()),
            },
            input_cost_per_token: Some("0.000003".into()),
            output_cost_per_token: None,
            status: status.into(),
            version: 2,
            created_at: "2026-12-01T00:00:00Z".into(),
            created_by: "tok_1".into(),
            updated_at: "2026-12-01T00:00:00Z".into(),
            updated_by: "tok_1".into(),
            deactivated_at: None,
            deactivated_by: None,
            controls: api::Controls {
                tools: true,
                json_mode: false,
                image_input: true,
                reasoning_effort: false,
                reasoning_budget: true,
            },
            warnings: Vec::new(),
            truncations: Some(api::Truncations {
                last_24h: 2,
                last_7d: 5,
                rounds: Vec::new(),
                tool_calls: Vec::new(),
                workflows: Vec::new(),
            }),
            recommendation: None,
        }
    }

    #[test]
    fn deactivated_models_are_listed_only_with_all() {
        let list = ModelList {
            platform: Vec::new(),
            custom: vec![
                custom("team-claude", "Team Claude", "active"),
                custom("team-claude-2", "Team Claude", "deactivated"),
            ],
            ..ModelList::default()
        };
        let shown = model_list(&list, false).join("\n");
        assert!(
            shown.contains("team-claude ") && !shown.contains("team-claude-2"),
            "{shown}"
        );
        assert!(
            shown.ends_with("(1 deactivated not shown; --all lists them)"),
            "{shown}"
        );
        let all = model_list(&list, true).join("\n");
        assert!(
            all.contains("team-claude-2") && all.contains("deactivated"),
            "{all}"
        );
    }

    #[test]
    fn a_summary_shows_every_field_a_person_set() {
        let lines = model_summary(&custom("team-claude", "Team Claude", "active"));
        for expected in [
            "max tokens:  32000",
            "json mode:   no",
            "vision:      yes",
            "tool use:    yes",
            "reasoning:   max_tokens",
            "input cost:  0.000003 USD per token",
            "output cost: unknown",
            "credential:  sk-ant-…wxyz (cred_1)",
            "status:      active",
            "truncations: 2 in the last 24 h, 5 in 7 days",
        ] {
            assert!(
                lines.iter().any(|line| line == expected),
                "{expected:?} in {lines:#?}"
            );
        }
        assert!(!lines.iter().any(|line| line.starts_with("recommendation")));
        // A recommendation is shown with the command that applies it
        let mut advised = custom("team-claude", "Team Claude", "active");
        advised.max_tokens = 8000;
        advised.recommendation = Some(api::Recommendation {
            code: "max_tokens.raise_for_truncations".into(),
            message: "raise max tokens to 32,000 for multi-file tool use".into(),
            edit: api::RecommendedEdit { max_tokens: 32000 },
        });
        let lines = model_summary(&advised);
        assert_eq!(
            lines.last().map(String::as_str),
            Some(
                "recommendation: raise max tokens to 32,000 for multi-file tool use (apply: modelreg models edit team-claude --max-tokens 32000)"
            ),
            "{lines:#?}"
        );
    }

    #[test]
    fn references_show_truncated_calls_and_who_keeps_truncating() {
        let dependent = |id: &str, calls: u64| api::Dependent {
            id: id.into(),
            name: format!("Flow {id}"),
            truncated_calls_7d: calls,
            keeps_truncating: calls >= 3,
        };
        let lines = model_references(&ModelReferences {
            model: "team-gpt".into(),
            active: vec![dependent("wf-a", 4)],
            inactive: vec![dependent("wf-b", 0)],
            next_cursor: None,
        });
        assert!(lines[0].contains("TRUNCATED (7 D)"), "{lines:#?}");
        assert!(
            lines[1].contains("wf-a") && lines[1].ends_with("4 (keeps truncating)"),
            "{lines:#?}"
        );
        assert!(
            lines[2].contains("wf-b") && lines[2].ends_with(" 0"),
            "{lines:#?}"
        );
    }

    #[test]
    fn a_platform_summary_names_each_facts_source_and_an_expiry_with_its_users() {
        let model = api::PlatformModel {
            id: "x-ai/grok-4.3".into(),
            expires_on: Some("2026-09-01".into()),
            used_by_workflows: vec!["nightly".into()],
            facts: vec![
                api::Fact {
                    fact: "tool_use".into(),
                    value: "true".into(),
                    source: "OpenRouter models API".into(),
                    as_of: "2026-02-01".into(),
                    override_reason: None,
                    synced_value: None,
                },
                api::Fact {
                    fact: "max_completion_tokens".into(),
                    value: "128000".into(),
                    source: "operator override".into(),
                    as_of: "2026-02-02".into(),
                    override_reason: Some("measured".into()),
                    synced_value: Some("64000".into()),
                },
            ],
            ..api::PlatformModel::default()
        };
        let lines = platform_summary(&model);
        for expected in [
            "expires:     2026-09-01; still used by nightly",
            "  tool_use: OpenRouter models API on 2026-02-01",
            "  max_completion_tokens: operator override on 2026-02-02 (measured)",
        ] {
            assert!(
                lines.iter().any(|line| line == expected),
                "{expected:?} in {lines:#?}"
            );
        }
    }

    #[test]
    fn a_platform_summary_says_unknown_for_what_the_catalog_does_not_know() {
        let model = api::PlatformModel {
            kind: "platform".into(),
            id: "google/gemini-3.1-pro-preview".into(),
            display_name: "Gemini 3.1 Pro".into(),
            provider: "openrouter".into(),
            default: true,
            capabilities: api::KnownCapabilities {
                tool_use: Some(true),
                ..api::KnownCapabilities::default()
            },
            max_tokens: None,
            input_cost_per_token: None,
            output_cost_per_token: None,
            status: "active".into(),
            ..api::PlatformModel::default()
        };
        let lines = platform_summary(&model);
        for expected in [
            "default:     yes",
            "max tokens:  unknown",
            "tool use:    yes",
            "vision:      unknown",
            "reasoning:   unknown",
        ] {
            assert!(
                lines.iter().any(|line| line == expected),
                "{expected:?} in {lines:#?}"
            );
        }
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
