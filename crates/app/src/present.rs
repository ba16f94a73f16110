//! What clients get back: the wire contract's response types, built from view rows. No
//! plaintext secret is in any of them; a credential shows its id and masked preview only.

use domain::connection_test::TestResult;
use domain::credential::State;
use domain::provider::Endpoint;
use domain::values::{Capabilities, Cost, ReasoningParam};
use views::{ConnectionTestRow, CredentialRow, ModelRow};

pub(crate) fn capabilities(capabilities: &Capabilities) -> api::Capabilities {
    api::Capabilities {
        json_mode: capabilities.json_mode,
        vision: capabilities.vision,
        tool_use: capabilities.tool_use,
        reasoning: capabilities.reasoning.map(|r| r.as_str().to_owned()),
    }
}

/// Which Pipeline Builder controls a model with `capabilities` enables.
pub(crate) fn controls(capabilities: &Capabilities) -> api::Controls {
    api::Controls {
        tools: capabilities.tool_use,
        json_mode: capabilities.json_mode,
        image_input: capabilities.vision,
        reasoning_effort: capabilities.reasoning == Some(ReasoningParam::Effort),
        reasoning_budget: capabilities.reasoning == Some(ReasoningParam::MaxTokens),
    }
}

pub(crate) fn cost(cost: Option<Cost>) -> Option<String> {
    cost.map(|c| c.to_string())
}

pub(crate) fn credential_summary(row: &CredentialRow, state: State) -> api::CredentialSummary {
    api::CredentialSummary {
        id: row.credential.id.as_str().to_owned(),
        preview: row.credential.preview.clone(),
        state: state.as_str().to_owned(),
    }
}

/// The endpoint as the wire splits it: a URL or a region.
pub(crate) fn endpoint(endpoint: Option<&Endpoint>) -> (Option<String>, Option<String>) {
    match endpoint {
        Some(Endpoint::Url(url)) => (Some(url.as_str().to_owned()), None),
        Some(Endpoint::Region(region)) => (None, Some(region.as_str().to_owned())),
        None => (None, None),
    }
}

pub(crate) fn model(row: &ModelRow, credential: Option<api::CredentialSummary>) -> api::Model {
    let model = &row.model;
    let (endpoint_url, region) = endpoint(model.endpoint.as_ref());
    let warnings = domain::advice::warnings(
        &model.capabilities,
        model.max_tokens.get(),
        domain::known::lookup(model.provider, &model.provider_model_id),
    );
    api::Model {
        kind: "custom".into(),
        slug: model.slug.as_str().to_owned(),
        display_name: model.display_name.as_str().to_owned(),
        provider: model.provider.as_str().to_owned(),
        provider_model_id: model.provider_model_id.as_str().to_owned(),
        credential,
        endpoint_url,
        region,
        max_tokens: model.max_tokens.get(),
        capabilities: capabilities(&model.capabilities),
        input_cost_per_token: cost(model.costs.input_per_token),
        output_cost_per_token: cost(model.costs.output_per_token),
        status: model.status.as_str().to_owned(),
        version: row.stream.version,
        created_at: rfc3339(row.created_at_ms),
        created_by: row.created_by.clone(),
        updated_at: rfc3339(row.updated_at_ms),
        updated_by: row.updated_by.clone(),
        deactivated_at: row.deactivation.as_ref().map(|d| rfc3339(d.at_ms)),
        deactivated_by: row.deactivation.as_ref().map(|d| d.by.clone()),
        controls: controls(&model.capabilities),
        warnings: advice(warnings),
        truncations: None,
        recommendation: None,
    }
}

pub(crate) fn recommendation(advice: domain::advice::Recommendation) -> api::Recommendation {
    api::Recommendation {
        code: advice.code.to_owned(),
        message: advice.message,
        edit: api::RecommendedEdit {
            max_tokens: advice.max_tokens,
        },
    }
}

pub(crate) fn advice(warnings: Vec<domain::advice::Warning>) -> Vec<api::Warning> {
    warnings
        .into_iter()
        .map(|w| api::Warning {
            code: w.code.to_owned(),
            message: w.message,
        })
        .collect()
}

/// A saved credential in `state` at `now_ms`, with the models that reference it.
pub(crate) fn credential(
    row: &CredentialRow,
    state: State,
    now_ms: i64,
    models: Vec<String>,
) -> api::Credential {
    let credential = &row.credential;
    let versions = row
        .history
        .iter()
        .map(|v| api::CredentialVersion {
            version: v.version,
            preview: v.preview.clone(),
            state: match (v.shredded_at_ms, v.version == credential.version) {
                (Some(_), _) => "shredded",
                (None, true) if !credential.deleted => "current",
                (None, _) => "retired",
            }
            .to_owned(),
            created_at: rfc3339(v.created_at_ms),
            created_by: v.created_by.clone(),
            shredded_at: v.shredded_at_ms.map(rfc3339),
        })
        .collect();
    api::Credential {
        id: credential.id.as_str().to_owned(),
        provider: credential.provider.as_str().to_owned(),
        kind: credential.kind.as_str().to_owned(),
        preview: credential.preview.clone(),
        fingerprint: hex::encode(credential.fingerprint),
        version: credential.version,
        used_by: row.used_by,
        created_at: rfc3339(row.created_at_ms),
        created_by: row.created_by.clone(),
        updated_at: rfc3339(row.updated_at_ms),
        name: credential.name.as_ref().map(|n| n.as_str().to_owned()),
        state: state.as_str().to_owned(),
        expires_at: credential.expires_at_ms.map(rfc3339),
        expiring_soon: credential.expiring_soon(now_ms),
        models,
        last_test: row.last_test.as_ref().map(|t| api::CredentialTest {
            class: t.class.clone(),
            passed: t.class == "ok",
            completed_at: rfc3339(t.completed_at_ms),
            model: t.model.clone(),
        }),
        versions,
    }
}

fn test_result(result: &TestResult) -> api::TestResult {
    api::TestResult {
        class: result.class.clone(),
        passed: result.passed(),
        hint: result.hint.clone(),
        retry_after_ms: result.retry_after_ms,
        upstream_status: result.upstream_status,
        upstream_message: result.upstream_message.clone(),
        latency_ms: result.latency_ms,
        suggested_input_cost_per_token: cost(result.suggested_input_cost),
        suggested_output_cost_per_token: cost(result.suggested_output_cost),
    }
}

/// A connection test; `ttl_ms` is how long a passing test of a draft is a receipt.
pub(crate) fn connection_test(row: &ConnectionTestRow, ttl_ms: i64) -> api::ConnectionTest {
    let passed = row.test.result.as_ref().is_some_and(TestResult::passed);
    api::ConnectionTest {
        id: row.id.clone(),
        status: if row.test.result.is_some() {
            "completed"
        } else {
            "pending"
        }
        .into(),
        provider: row.test.draft.provider.as_str().to_owned(),
        provider_model_id: row.test.draft.provider_model_id.as_str().to_owned(),
        model: row.test.model.as_ref().map(|s| s.as_str().to_owned()),
        result: row.test.result.as_ref().map(test_result),
        requested_at: rfc3339(row.requested_at_ms),
        requested_by: row.requested_by.clone(),
        completed_at: row.completed_at_ms.map(rfc3339),
        receipt_expires_at: row
            .completed_at_ms
            .filter(|_| passed)
            .map(|at| rfc3339(at.saturating_add(ttl_ms))),
        version: row.stream.version,
    }
}

pub(crate) fn refusal(refusal: domain::workflow::Refusal) -> api::Refusal {
    api::Refusal {
        feature: refusal.feature.to_owned(),
        reason: refusal.reason,
    }
}

/// RFC 3339 with milliseconds, UTC.
pub(crate) fn rfc3339(ms: i64) -> String {
    let nanos = i128::from(ms) * 1_000_000;
    time::OffsetDateTime::from_unix_timestamp_nanos(nanos)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}
