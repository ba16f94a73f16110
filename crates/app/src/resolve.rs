//! Resolve: the runtime's hot path. Everything needed to call a model, including the
//! decrypted credential, for service tokens only.

use std::collections::HashMap;
use std::sync::Arc;

use domain::catalog::{Entry, FactName};
use domain::model::Status;
use domain::provider::CredentialSecret;
use domain::values::Capabilities;
use serde::Serialize;

use crate::{Answer, AppError, Ctx, Registry, credentials, present};

mod litellm;

/// OpenRouter's API base, which platform models resolve to.
pub const OPENROUTER_BASE_URL: &str = "https://openrouter.ai/api/v1";

/// A resolve answer (`api::Resolved`): the model's facts, serialized once per model and views
/// position, and the credential, serialized per request (it is never cached in the clear).
pub struct Resolved {
    /// `{"kind":…,…` with every field but the credential, and no closing brace.
    meta: Arc<Vec<u8>>,
    credential: Option<api::ResolvedCredential>,
}

impl Resolved {
    /// The answer as a JSON object.
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.meta.len() + 160);
        out.extend_from_slice(&self.meta);
        out.extend_from_slice(b",\"credential\":");
        if serde_json::to_writer(&mut out, &self.credential).is_err() {
            out.extend_from_slice(b"null");
        }
        out.push(b'}');
        out
    }
}

/// Everything in `api::Resolved` but the credential, serialized once.
#[derive(Serialize)]
struct Meta {
    kind: &'static str,
    model: String,
    provider: &'static str,
    base_url: Option<String>,
    endpoint_url: Option<String>,
    region: Option<String>,
    provider_model_id: String,
    max_tokens: Option<u32>,
    capabilities: Option<api::Capabilities>,
    input_cost_per_token: Option<String>,
    output_cost_per_token: Option<String>,
}

impl Meta {
    /// The serialized object without its closing brace, ready for the credential.
    fn prefix(&self) -> Arc<Vec<u8>> {
        let mut bytes = serde_json::to_vec(self).unwrap_or_else(|_| b"{}".to_vec());
        bytes.pop();
        Arc::new(bytes)
    }
}

fn wire(secret: CredentialSecret) -> api::ResolvedCredential {
    match secret {
        CredentialSecret::ApiKey(key) => api::ResolvedCredential::ApiKey {
            api_key: api::SecretField(key),
        },
        CredentialSecret::BedrockApiKey(key) => api::ResolvedCredential::BedrockApiKey {
            bedrock_api_key: api::SecretField(key),
        },
        CredentialSecret::AwsAccessKey {
            access_key_id,
            secret_access_key,
            session_token,
        } => api::ResolvedCredential::AwsAccessKey {
            access_key_id,
            secret_access_key: api::SecretField(secret_access_key),
            session_token: session_token.map(api::SecretField),
        },
    }
}

/// Decoded rows a resolve needs, by (org, slug), valid while the views stay at the position
/// they were read at. Ciphertext only: no plaintext is ever cached here.
#[derive(Default)]
pub(crate) struct ResolveCache {
    /// org → slug → rows; looked up by `&str`, so a hit allocates nothing.
    entries: std::sync::RwLock<HashMap<String, HashMap<String, CachedRows>>>,
}

/// The rows and, for an active model, its answer's serialized facts.
struct ResolveRows {
    model: views::ModelRow,
    credential: Option<views::CredentialRow>,
    meta: Arc<Vec<u8>>,
}

/// The rows and the views position they were read at.
type CachedRows = (u64, Arc<ResolveRows>);

impl ResolveCache {
    const CAPACITY: usize = 10_000;
}

/// The model and credential rows, from the cache when the views have not moved since.
fn rows(registry: &Registry, org: &str, slug: &str) -> Result<Option<Arc<ResolveRows>>, AppError> {
    let position = registry.views.position();
    if let Ok(entries) = registry.resolve_cache.entries.read()
        && let Some((at, rows)) = entries.get(org).and_then(|by_slug| by_slug.get(slug))
        && *at == position
    {
        return Ok(Some(Arc::clone(rows)));
    }
    let Some((model, credential)) = registry.views.model_with_credential(org, slug)? else {
        return Ok(None);
    };
    let meta = custom_meta(slug, &model).prefix();
    let rows = Arc::new(ResolveRows {
        model,
        credential,
        meta,
    });
    if let Ok(mut entries) = registry.resolve_cache.entries.write() {
        if entries.values().map(HashMap::len).sum::<usize>() >= ResolveCache::CAPACITY {
            entries.clear();
        }
        entries
            .entry(org.to_owned())
            .or_default()
            .insert(slug.to_owned(), (position, Arc::clone(&rows)));
    }
    Ok(Some(rows))
}

/// Everything the runtime needs to call `model`, credential included. Service tokens only.
pub async fn resolve(
    registry: &Registry,
    ctx: &Ctx,
    model: &str,
) -> Result<Answer<Resolved>, AppError> {
    let found = find(registry, ctx, model).await?;
    let meta = match found.facts {
        Facts::Platform(meta) => meta.prefix(),
        Facts::Custom(rows) => Arc::clone(&rows.meta),
    };
    Ok(Answer {
        value: Resolved {
            meta,
            credential: found.credential,
        },
        position: found.position,
    })
}

/// The same, as the keyword arguments of LiteLLM's `completion()` for that provider
/// (`?format=litellm`). Service tokens only.
pub async fn resolve_litellm(
    registry: &Registry,
    ctx: &Ctx,
    model: &str,
) -> Result<Answer<api::LiteLlm>, AppError> {
    let Found {
        facts,
        credential,
        position,
    } = find(registry, ctx, model).await?;
    let value = match &facts {
        Facts::Platform(meta) => litellm::params(meta, credential),
        Facts::Custom(rows) => litellm::params(&custom_meta(model, &rows.model), credential),
    };
    Ok(Answer { value, position })
}

/// A LiteLLM proxy `model_list` of the org's active custom models and the platform models,
/// each secret an `os.environ/VAR` reference ([`litellm_env_var`] names them). Admins and
/// service tokens; no credential is opened.
pub fn litellm_config(
    registry: &Registry,
    ctx: &Ctx,
) -> Result<Answer<api::LiteLlmConfig>, AppError> {
    ctx.require_reporter()?;
    let position = registry.views.position();
    let mut model_list = Vec::new();
    for row in registry.views.models(ctx.org.as_str())? {
        if row.model.status != Status::Active {
            continue;
        }
        let slug = row.model.slug.as_str();
        let kind = match &row.model.credential_id {
            Some(id) => registry
                .views
                .credential(ctx.org.as_str(), id.as_str())?
                .map(|c| c.credential.kind),
            None => None,
        };
        let credential = kind.map(|kind| litellm::env_credential(slug, kind));
        let mut params = litellm::params(&custom_meta(slug, &row), credential);
        litellm::for_the_proxy(&mut params.kwargs);
        model_list.push(deployment(slug, params.kwargs));
    }
    for platform in crate::catalog::org_view(registry, ctx)?.models {
        if platform.status != "active" {
            continue;
        }
        let Some(row) = crate::catalog::usable(registry, &ctx.org, &platform.id)? else {
            continue;
        };
        let Some(entry) = row.catalog.find(&platform.id) else {
            continue;
        };
        let meta = platform_meta(entry);
        let key = api::ResolvedCredential::ApiKey {
            api_key: api::SecretField::new(format!("os.environ/{PLATFORM_KEY_VAR}")),
        };
        let params = litellm::params(&meta, Some(key));
        model_list.push(deployment(&platform.id, params.kwargs));
    }
    Ok(Answer {
        value: api::LiteLlmConfig { model_list },
        position,
    })
}

/// The views position this server's answers reflect, and where the caller's org last changed
/// in a way that can alter a resolve answer; with `after`, held up to `wait` (at most 30 s)
/// until the position of `scope` passes it. Any token. A runtime long-polls it with the
/// `resolve` scope to learn that its cached resolve answers may be stale, and no sooner:
/// usage records and workflow reports move the views, not that.
pub async fn position(
    registry: &Registry,
    ctx: &Ctx,
    query: api::PositionQuery,
) -> Result<Answer<api::ViewsPosition>, AppError> {
    const MAX_WAIT: std::time::Duration = std::time::Duration::from_secs(30);
    let wait = std::time::Duration::from_secs(query.wait.unwrap_or_default());
    let deadline = tokio::time::Instant::now() + wait.min(MAX_WAIT);
    loop {
        let position = registry.views.position();
        let changed_at = registry.views.resolve_changed_at(ctx.org.as_str());
        let watched = match query.scope.unwrap_or_default() {
            api::PositionScope::Views => position,
            api::PositionScope::Resolve => changed_at,
        };
        let moved = query.after.is_none_or(|after| watched > after);
        if moved || tokio::time::Instant::now() >= deadline {
            return Ok(Answer {
                value: api::ViewsPosition {
                    moved,
                    changed_at: Some(changed_at),
                },
                position,
            });
        }
        let left = deadline - tokio::time::Instant::now();
        registry.views.changed_after(position, left).await;
    }
}

/// The variable a LiteLLM config reads a model's secret from: `MODEL_<SLUG>_<FIELD>`, e.g.
/// `MODEL_TEAM_GPT_API_KEY` (not `MODELREG_*`, which modelreg's own settings own).
pub fn litellm_env_var(slug: &str, field: &str) -> String {
    format!(
        "MODEL_{}_{}",
        slug.to_ascii_uppercase().replace('-', "_"),
        field.to_ascii_uppercase()
    )
}

/// The variable the platform models' key is read from in an exported config.
pub const PLATFORM_KEY_VAR: &str = "OPENROUTER_API_KEY";

fn deployment(name: &str, litellm_params: api::LiteLlmKwargs) -> api::LiteLlmDeployment {
    api::LiteLlmDeployment {
        model_name: name.to_owned(),
        litellm_params,
        model_info: api::LiteLlmModelInfo {
            id: name.to_owned(),
            mode: "chat".into(),
        },
    }
}

/// What a resolve found: the model's facts, its credential opened, and the views position.
struct Found {
    facts: Facts,
    credential: Option<api::ResolvedCredential>,
    position: u64,
}

enum Facts {
    Platform(Box<Meta>),
    Custom(Arc<ResolveRows>),
}

async fn find(registry: &Registry, ctx: &Ctx, model: &str) -> Result<Found, AppError> {
    ctx.require_service()?;
    let position = registry.views.position();
    if let Some(row) = crate::catalog::usable(registry, &ctx.org, model)?
        && let Some(platform) = row.catalog.find(model)
    {
        let key = registry
            .platform_key
            .as_ref()
            .ok_or_else(|| AppError::NotConfigured {
                code: "platform.not_configured",
                message: "platform models cannot be resolved here: the operator has not configured the platform's OpenRouter key (MODELREG_PLATFORM_OPENROUTER_KEY)".into(),
            })?;
        let credential =
            CredentialSecret::ApiKey(secrets::Secret::new(key.expose_secret().to_owned()));
        let meta = platform_meta(platform);
        return Ok(Found {
            facts: Facts::Platform(Box::new(meta)),
            credential: Some(wire(credential)),
            position,
        });
    }
    let not_found = || AppError::NotFound {
        code: "model.not_found",
        message: "no model with this slug or platform id in this org".into(),
    };
    // A version shredded just after its rows were read (a rotation elsewhere) is read again
    // once the views hold the log's end: the caller gets the old secret or the new one.
    let mut caught_up = false;
    loop {
        let rows = rows(registry, ctx.org.as_str(), model)?.ok_or_else(not_found)?;
        let (row, credential_row) = (&rows.model, rows.credential.as_ref());
        if row.model.status == Status::Deactivated {
            return Err(crate::models::gone(row));
        }
        let credential = match (&row.model.credential_id, credential_row) {
            (None, _) => None,
            (Some(id), None) => {
                return Err(AppError::internal(format!(
                    "model {model} references missing credential {id}"
                )));
            }
            (Some(_), Some(credential_row)) => {
                unusable(&credential_row.credential, registry.now_ms())?;
                match credentials::open(registry, &ctx.org, credential_row).await {
                    Ok(secret) => Some(wire(secret)),
                    Err(AppError::NeedsReconfiguration { .. }) if !caught_up => {
                        caught_up = true;
                        let last = registry.log.last_seq().await?;
                        registry.settle(last).await?;
                        continue;
                    }
                    Err(error) => return Err(error),
                }
            }
        };
        return Ok(Found {
            facts: Facts::Custom(rows),
            credential,
            position,
        });
    }
}

/// Refuses a credential that cannot be handed out now, saying why.
fn unusable(credential: &domain::credential::Credential, now_ms: i64) -> Result<(), AppError> {
    use domain::credential::Unusable;
    let id = credential.id.as_str();
    match credential.usable(now_ms) {
        Ok(()) => Ok(()),
        Err(Unusable::Expired { at_ms }) => Err(AppError::CredentialUnusable {
            code: "credential.expired",
            message: format!(
                "the model's credential {id} expired at {}; rotate it to a new secret, or move the model to another credential",
                present::rfc3339(at_ms)
            ),
        }),
        Err(Unusable::Deleted) => Err(AppError::CredentialUnusable {
            code: "credential.deleted",
            message: format!(
                "the model's credential {id} was deleted; move the model to another credential"
            ),
        }),
        Err(Unusable::Shredded) => Err(AppError::NeedsReconfiguration {
            credential: id.to_owned(),
            why: "its current version was shredded",
        }),
    }
}

/// The facts of a platform model's resolve answer: OpenRouter, with the platform key, and
/// what the catalog knows (capabilities only when every one of them is known).
fn platform_meta(platform: &Entry) -> Meta {
    Meta {
        kind: "platform",
        model: platform.id.clone(),
        provider: "openrouter",
        base_url: Some(OPENROUTER_BASE_URL.to_owned()),
        endpoint_url: None,
        region: None,
        provider_model_id: platform.id.clone(),
        max_tokens: platform.tokens(FactName::MaxCompletionTokens),
        capabilities: crate::catalog::full_capabilities(platform),
        input_cost_per_token: present::cost(platform.cost(FactName::InputCost)),
        output_cost_per_token: present::cost(platform.cost(FactName::OutputCost)),
    }
}

/// The facts of a custom model's resolve answer.
fn custom_meta(slug: &str, row: &views::ModelRow) -> Meta {
    let (endpoint_url, region) = present::endpoint(row.model.endpoint.as_ref());
    let capabilities: Capabilities = row.model.capabilities;
    Meta {
        kind: "custom",
        model: slug.to_owned(),
        provider: row.model.provider.as_str(),
        base_url: None,
        endpoint_url,
        region,
        provider_model_id: row.model.provider_model_id.as_str().to_owned(),
        max_tokens: Some(row.model.max_tokens.get()),
        capabilities: Some(present::capabilities(&capabilities)),
        input_cost_per_token: present::cost(row.model.costs.input_per_token),
        output_cost_per_token: present::cost(row.model.costs.output_per_token),
    }
}
