//! Resolve: the runtime's hot path. Everything needed to call a model, including the
//! decrypted credential, for service tokens only.

use domain::catalog;
use domain::model::Status;
use domain::org::Role;
use domain::provider::{CredentialSecret, Endpoint};
use domain::values::{Capabilities, Cost};
use std::collections::HashMap;
use std::sync::Arc;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use crate::{Answer, AppError, Ctx, Registry};

/// OpenRouter's API base, which platform models resolve to.
pub const OPENROUTER_BASE_URL: &str = "https://openrouter.ai/api/v1";

/// A resolve answer: the model's facts, serialized once per model and views position, and
/// the credential, serialized per request (it is never cached in the clear).
pub struct Resolved {
    /// `{"kind":…,…` with every field but the credential, and no closing brace.
    meta: Arc<Vec<u8>>,
    credential: Option<ResolvedCredential>,
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

/// Everything in a resolve answer but the credential.
#[derive(Serialize)]
struct ResolvedMeta {
    /// `custom` or `platform`.
    kind: &'static str,
    model: String,
    provider: &'static str,
    /// The provider's public base URL where it is fixed (platform: OpenRouter).
    base_url: Option<String>,
    endpoint_url: Option<String>,
    region: Option<String>,
    provider_model_id: String,
    max_tokens: Option<u32>,
    capabilities: Option<Capabilities>,
    input_cost_per_token: Option<Cost>,
    output_cost_per_token: Option<Cost>,
}

impl ResolvedMeta {
    /// The serialized object without its closing brace, ready for the credential.
    fn prefix(&self) -> Arc<Vec<u8>> {
        let mut bytes = serde_json::to_vec(self).unwrap_or_else(|_| b"{}".to_vec());
        bytes.pop();
        Arc::new(bytes)
    }
}

/// A decrypted credential on its way to a service token. Zeroized on drop (it holds
/// [`secrets::Secret`]s); serialized only into the resolve answer.
pub struct ResolvedCredential(CredentialSecret);

impl Serialize for ResolvedCredential {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        match &self.0 {
            CredentialSecret::ApiKey(key) => {
                map.serialize_entry("kind", "api_key")?;
                map.serialize_entry("api_key", key.expose_secret())?;
            }
            CredentialSecret::BedrockApiKey(key) => {
                map.serialize_entry("kind", "bedrock_api_key")?;
                map.serialize_entry("bedrock_api_key", key.expose_secret())?;
            }
            CredentialSecret::AwsAccessKey {
                access_key_id,
                secret_access_key,
                session_token,
            } => {
                map.serialize_entry("kind", "aws_access_key")?;
                map.serialize_entry("access_key_id", access_key_id)?;
                map.serialize_entry("secret_access_key", secret_access_key.expose_secret())?;
                map.serialize_entry(
                    "session_token",
                    &session_token.as_ref().map(|t| t.expose_secret()),
                )?;
            }
        }
        map.end()
    }
}

/// Decoded rows a resolve needs, by (org, slug), valid while the views stay at the position
/// they were read at. Ciphertext only: no plaintext is ever cached here.
#[derive(Default)]
pub struct ResolveCache {
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

impl Registry {
    /// The model and credential rows, from the cache when the views have not moved since.
    fn resolve_rows(&self, org: &str, slug: &str) -> Result<Option<Arc<ResolveRows>>, AppError> {
        let position = self.views.position();
        if let Ok(entries) = self.resolve_cache.entries.read()
            && let Some((at, rows)) = entries.get(org).and_then(|by_slug| by_slug.get(slug))
            && *at == position
        {
            return Ok(Some(Arc::clone(rows)));
        }
        let Some((model, credential)) = self.views.model_with_credential(org, slug)? else {
            return Ok(None);
        };
        let meta = custom_meta(slug, &model).prefix();
        let rows = Arc::new(ResolveRows {
            model,
            credential,
            meta,
        });
        if let Ok(mut entries) = self.resolve_cache.entries.write() {
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

    pub async fn resolve(&self, ctx: &Ctx, model: &str) -> Result<Answer<Resolved>, AppError> {
        if ctx.role != Role::Service {
            return Err(AppError::Forbidden(
                "resolve returns credentials and needs a service token; ask an org admin to issue one".into(),
            ));
        }
        let position = self.views.position();
        if let Some(platform) = catalog::find(model) {
            let key = self.platform_key.as_ref().ok_or_else(|| {
                AppError::Unavailable("the platform OpenRouter key is not configured (MODELREG_PLATFORM_OPENROUTER_KEY)".into())
            })?;
            let credential =
                CredentialSecret::ApiKey(secrets::Secret::new(key.expose_secret().to_owned()));
            let meta = ResolvedMeta {
                kind: "platform",
                model: platform.id.clone(),
                provider: "openrouter",
                base_url: Some(OPENROUTER_BASE_URL.to_owned()),
                endpoint_url: None,
                region: None,
                provider_model_id: platform.id.clone(),
                max_tokens: platform.max_tokens,
                capabilities: None,
                input_cost_per_token: platform.input_cost_per_token,
                output_cost_per_token: platform.output_cost_per_token,
            };
            let value = Resolved {
                meta: meta.prefix(),
                credential: Some(ResolvedCredential(credential)),
            };
            return Ok(Answer { value, position });
        }
        let not_found = || AppError::NotFound {
            code: "model.not_found",
            message: format!("no model {} in this org", domain::echo(model)),
        };
        let rows = self
            .resolve_rows(ctx.org.as_str(), model)?
            .ok_or_else(not_found)?;
        let (row, credential_row) = (&rows.model, rows.credential.as_ref());
        if row.model.status == Status::Deactivated {
            return Err(self.gone(row));
        }
        let credential = match (&row.model.credential_id, credential_row) {
            (None, _) => None,
            (Some(id), None) => {
                return Err(AppError::Internal(format!(
                    "model {model} references missing credential {id}"
                )));
            }
            (Some(id), Some(credential_row)) => {
                let context = vault::SecretContext {
                    org: ctx.org.as_str(),
                    credential_id: id.as_str(),
                    version: credential_row.credential.version,
                };
                let opened = self.vault.open(&context, &credential_row.sealed).await?;
                let secret =
                    CredentialSecret::from_sealable(credential_row.credential.kind, &opened)
                        .ok_or_else(|| {
                            AppError::Internal(format!(
                                "credential {id} does not have its kind's shape"
                            ))
                        })?;
                Some(ResolvedCredential(secret))
            }
        };
        let value = Resolved {
            meta: Arc::clone(&rows.meta),
            credential,
        };
        Ok(Answer { value, position })
    }
}

/// The facts of a custom model's resolve answer.
fn custom_meta(slug: &str, row: &views::ModelRow) -> ResolvedMeta {
    let (endpoint_url, region) = match &row.model.endpoint {
        Some(Endpoint::Url(url)) => (Some(url.as_str().to_owned()), None),
        Some(Endpoint::Region(region)) => (None, Some(region.as_str().to_owned())),
        None => (None, None),
    };
    ResolvedMeta {
        kind: "custom",
        model: slug.to_owned(),
        provider: row.model.provider.as_str(),
        base_url: None,
        endpoint_url,
        region,
        provider_model_id: row.model.provider_model_id.as_str().to_owned(),
        max_tokens: Some(row.model.max_tokens.get()),
        capabilities: Some(row.model.capabilities),
        input_cost_per_token: row.model.costs.input_per_token,
        output_cost_per_token: row.model.costs.output_per_token,
    }
}
