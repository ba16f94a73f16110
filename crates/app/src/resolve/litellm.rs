//! A resolve answer as LiteLLM's `completion()` keyword arguments (LiteLLM 1.110), built so
//! that a runtime passes them as they are and never falls into LiteLLM's traps (see
//! `shared/reference/litellm.md`): the provider prefix is always sent; a keyless
//! OpenAI-compatible model gets an explicit placeholder key, so LiteLLM never sends the
//! host's `OPENAI_API_KEY` to that server; an Anthropic base is its root (a `/v1` would be
//! doubled); OpenAI reasoning models get `max_completion_tokens` instead of relying on
//! LiteLLM's name detection; known prices are passed per call.

use api::{LiteLlm, LiteLlmKwargs, LiteLlmReasoning, ResolvedCredential, SecretField};
use domain::provider::CredentialKind;
use serde_json::json;

use super::Meta;

/// The key sent to an OpenAI-compatible server that takes none: LiteLLM's `openai/` route
/// requires one and would otherwise read the host's `OPENAI_API_KEY`.
pub(super) const NO_KEY: &str = "no-key";

/// A credential of `kind` as `os.environ/` references to the variables
/// [`super::litellm_env_var`] names, for an exported config.
pub(super) fn env_credential(slug: &str, kind: CredentialKind) -> ResolvedCredential {
    let reference = |field: &str| {
        SecretField::new(format!(
            "os.environ/{}",
            super::litellm_env_var(slug, field)
        ))
    };
    match kind {
        CredentialKind::AwsAccessKey => ResolvedCredential::AwsAccessKey {
            // The key id is not secret, but it travels with its secret key.
            access_key_id: format!(
                "os.environ/{}",
                super::litellm_env_var(slug, "aws_access_key_id")
            ),
            secret_access_key: reference("aws_secret_access_key"),
            session_token: None,
        },
        _ => ResolvedCredential::ApiKey {
            api_key: reference("api_key"),
        },
    }
}

/// The `completion()` arguments for `meta` with its opened `credential`.
pub(super) fn params(meta: &Meta, credential: Option<ResolvedCredential>) -> LiteLlm {
    let id = &meta.provider_model_id;
    let (prefix, api_base) = match meta.provider {
        "openai" => ("openai", meta.base_url.clone()),
        "anthropic" => ("anthropic", meta.base_url.as_deref().map(anthropic_root)),
        "gemini" => (
            "gemini",
            meta.base_url.as_deref().map(|b| gemini_base(b, id)),
        ),
        "openrouter" => ("openrouter", meta.base_url.clone()),
        "fireworks" => ("fireworks_ai", meta.base_url.clone()),
        "together" => ("together_ai", meta.base_url.clone()),
        "bedrock" => ("bedrock/converse", None),
        "huggingface" => ("huggingface", meta.endpoint_url.clone()),
        // `openai/` with the server's base URL, as LiteLLM documents for any such server.
        _ => ("openai", meta.endpoint_url.clone()),
    };
    let mut kwargs = LiteLlmKwargs {
        model: format!("{prefix}/{id}"),
        api_base,
        ..LiteLlmKwargs::default()
    };
    match credential {
        Some(ResolvedCredential::ApiKey { api_key }) => kwargs.api_key = Some(api_key),
        Some(ResolvedCredential::BedrockApiKey { bedrock_api_key }) => {
            // A Bedrock API key is a bearer token, which LiteLLM takes as `api_key`.
            kwargs.api_key = Some(bedrock_api_key);
        }
        Some(ResolvedCredential::AwsAccessKey {
            access_key_id,
            secret_access_key,
            session_token,
        }) => {
            kwargs.aws_access_key_id = Some(access_key_id);
            kwargs.aws_secret_access_key = Some(secret_access_key);
            kwargs.aws_session_token = session_token;
        }
        None if meta.provider == "openai_compatible" => {
            kwargs.api_key = Some(SecretField::new(NO_KEY.to_owned()));
        }
        None => {}
    }
    if meta.provider == "bedrock" {
        kwargs.aws_region_name = meta.region.clone();
    }
    let reasoning = meta.capabilities.as_ref().and_then(|c| c.reasoning.clone());
    // OpenAI's reasoning models refuse `max_tokens`; LiteLLM renames it only for names it
    // recognises, so the registry sends the right field itself.
    if meta.provider == "openai" && reasoning.is_some() {
        kwargs.max_completion_tokens = meta.max_tokens;
    } else {
        kwargs.max_tokens = meta.max_tokens;
    }
    kwargs.input_cost_per_token = meta.input_cost_per_token.as_deref().and_then(price);
    kwargs.output_cost_per_token = meta.output_cost_per_token.as_deref().and_then(price);
    let reasoning = reasoning.map(|shape| reasoning_of(meta, &shape, &mut kwargs));
    LiteLlm { kwargs, reasoning }
}

/// A deployment as LiteLLM's proxy (its Router) takes it: a HuggingFace endpoint is routed
/// as `openai/` at the endpoint's `/v1`, since the Router prices `huggingface/` deployments
/// at $0 whatever prices they carry (LiteLLM 1.110).
pub(super) fn for_the_proxy(kwargs: &mut LiteLlmKwargs) {
    let Some(id) = kwargs.model.strip_prefix("huggingface/") else {
        return;
    };
    kwargs.model = format!("openai/{id}");
    kwargs.api_base = kwargs.api_base.as_deref().map(|base| {
        let base = base.trim_end_matches('/');
        if base.ends_with("/v1") {
            base.to_owned()
        } else {
            format!("{base}/v1")
        }
    });
}

/// How to ask this model for extended reasoning through LiteLLM, in the model's shape.
fn reasoning_of(meta: &Meta, shape: &str, kwargs: &mut LiteLlmKwargs) -> LiteLlmReasoning {
    let budget = meta
        .max_tokens
        .map_or(1024, |max| (max / 4).clamp(1024, 16_384));
    let effort = ("reasoning_effort", json!("medium"));
    let (kwarg, example) = match (meta.provider, shape) {
        // OpenRouter's documented `reasoning` object goes upstream as it is.
        ("openrouter", "effort") => ("reasoning", json!({"effort": "medium"})),
        ("openrouter", _) => ("reasoning", json!({"max_tokens": budget})),
        // LiteLLM refuses `thinking` for OpenAI, and drops a Gemini 3 budget silently (sending
        // only `includeThoughts`): both are asked through an effort, whatever the shape.
        ("openai", _) => effort,
        ("gemini", _) if meta.provider_model_id.starts_with("gemini-3") => effort,
        (_, "effort") => effort,
        _ => (
            "thinking",
            json!({"type": "enabled", "budget_tokens": budget}),
        ),
    };
    if matches!(meta.provider, "fireworks" | "together") && kwarg == "reasoning_effort" {
        // LiteLLM refuses the parameter for models its cost map does not mark as reasoning.
        kwargs.allowed_openai_params = Some(vec!["reasoning_effort".to_owned()]);
    }
    LiteLlmReasoning {
        kwarg: kwarg.to_owned(),
        shape: shape.to_owned(),
        example,
    }
}

/// An Anthropic base as LiteLLM takes it: the root, since it appends `/v1/messages`.
fn anthropic_root(base: &str) -> String {
    let base = base.trim_end_matches('/');
    base.strip_suffix("/v1").unwrap_or(base).to_owned()
}

/// A Gemini base as LiteLLM takes it: with the API version, which LiteLLM inserts only into
/// its default URL (`v1alpha` for Gemini 3, `v1beta` before).
fn gemini_base(base: &str, id: &str) -> String {
    let base = base.trim_end_matches('/');
    if ["/v1", "/v1beta", "/v1alpha"]
        .iter()
        .any(|version| base.ends_with(version))
    {
        return base.to_owned();
    }
    let version = if id.starts_with("gemini-3") {
        "v1alpha"
    } else {
        "v1beta"
    };
    format!("{base}/{version}")
}

/// A decimal USD price as the float LiteLLM takes. Python reads a JSON number as a float
/// anyway; the parse is correctly rounded and the float is written in its shortest
/// round-trip form, so a price of up to 15 significant digits reaches LiteLLM as exactly the
/// decimal the registry holds (`0.000003` is written `3e-6`), and a longer one as the float
/// nearest to it.
fn price(decimal: &str) -> Option<f64> {
    decimal.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(provider: &'static str, id: &str) -> Meta {
        Meta {
            kind: "custom",
            model: "m".into(),
            provider,
            base_url: None,
            endpoint_url: None,
            region: None,
            provider_model_id: id.into(),
            max_tokens: Some(32_000),
            capabilities: Some(api::Capabilities {
                json_mode: false,
                vision: false,
                tool_use: true,
                reasoning: None,
            }),
            input_cost_per_token: Some("0.000003".into()),
            output_cost_per_token: None,
        }
    }

    fn key() -> Option<ResolvedCredential> {
        Some(ResolvedCredential::ApiKey {
            api_key: SecretField::new("sk-test-0123456789".into()),
        })
    }

    fn as_json(params: &LiteLlm) -> serde_json::Value {
        serde_json::to_value(params).expect("json")
    }

    #[test]
    fn every_provider_gets_its_prefix_and_credential_shape() {
        for (provider, id, model) in [
            ("openai", "gpt-4o-mini", "openai/gpt-4o-mini"),
            (
                "anthropic",
                "claude-sonnet-4-6",
                "anthropic/claude-sonnet-4-6",
            ),
            (
                "gemini",
                "gemini-3.1-pro-preview",
                "gemini/gemini-3.1-pro-preview",
            ),
            (
                "openrouter",
                "anthropic/claude-opus-4.7",
                "openrouter/anthropic/claude-opus-4.7",
            ),
            (
                "fireworks",
                "accounts/acme/models/ft",
                "fireworks_ai/accounts/acme/models/ft",
            ),
            (
                "together",
                "meta-llama/L-70B",
                "together_ai/meta-llama/L-70B",
            ),
            ("huggingface", "tgi", "huggingface/tgi"),
            ("openai_compatible", "llama3.2", "openai/llama3.2"),
        ] {
            let out = as_json(&params(&meta(provider, id), key()));
            assert_eq!(out["kwargs"]["model"], model, "{provider}");
            assert_eq!(out["kwargs"]["api_key"], "sk-test-0123456789", "{provider}");
            assert_eq!(out["kwargs"]["max_tokens"], 32_000, "{provider}");
            assert_eq!(
                out["kwargs"]["input_cost_per_token"], 0.000003,
                "{provider}"
            );
            assert!(
                out["kwargs"].get("output_cost_per_token").is_none(),
                "unknown: absent"
            );
        }
    }

    #[test]
    fn bedrock_takes_iam_keys_or_a_bearer_key_and_its_region() {
        let mut bedrock = meta("bedrock", "us.anthropic.claude-sonnet-4-20250514-v1:0");
        bedrock.region = Some("us-east-1".into());
        let iam = Some(ResolvedCredential::AwsAccessKey {
            access_key_id: "AKIATEST".into(),
            secret_access_key: SecretField::new("secret".into()),
            session_token: Some(SecretField::new("session".into())),
        });
        let out = as_json(&params(&bedrock, iam));
        assert_eq!(
            out["kwargs"]["model"],
            "bedrock/converse/us.anthropic.claude-sonnet-4-20250514-v1:0"
        );
        assert_eq!(
            (
                &out["kwargs"]["aws_access_key_id"],
                &out["kwargs"]["aws_secret_access_key"],
                &out["kwargs"]["aws_session_token"],
                &out["kwargs"]["aws_region_name"]
            ),
            (
                &json!("AKIATEST"),
                &json!("secret"),
                &json!("session"),
                &json!("us-east-1")
            )
        );
        assert!(out["kwargs"].get("api_key").is_none());
        let bearer = Some(ResolvedCredential::BedrockApiKey {
            bedrock_api_key: SecretField::new("bedrock-key".into()),
        });
        let out = as_json(&params(&bedrock, bearer));
        assert_eq!(out["kwargs"]["api_key"], "bedrock-key");
        assert!(out["kwargs"].get("aws_access_key_id").is_none());
    }

    #[test]
    fn the_traps_are_avoided() {
        // A keyless OpenAI-compatible server gets a placeholder key, never the host's.
        let mut local = meta("openai_compatible", "llama3.2");
        local.endpoint_url = Some("http://127.0.0.1:11434/v1".into());
        let out = as_json(&params(&local, None));
        assert_eq!(out["kwargs"]["api_key"], NO_KEY);
        assert_eq!(out["kwargs"]["api_base"], "http://127.0.0.1:11434/v1");
        // An Anthropic base is its root.
        let mut anthropic = meta("anthropic", "claude-sonnet-4-6");
        anthropic.base_url = Some("https://proxy.corp/anthropic/v1/".into());
        let out = as_json(&params(&anthropic, key()));
        assert_eq!(out["kwargs"]["api_base"], "https://proxy.corp/anthropic");
        // An OpenAI reasoning model gets max_completion_tokens, and how to ask for effort.
        let mut o3 = meta("openai", "o3-my-ft");
        o3.capabilities = Some(api::Capabilities {
            reasoning: Some("effort".into()),
            ..o3.capabilities.clone().expect("caps")
        });
        let out = as_json(&params(&o3, key()));
        assert_eq!(out["kwargs"]["max_completion_tokens"], 32_000);
        assert!(out["kwargs"].get("max_tokens").is_none());
        assert_eq!(out["reasoning"]["kwarg"], "reasoning_effort");
    }

    #[test]
    fn the_proxy_routes_huggingface_as_openai_at_v1() {
        let mut hf = meta("huggingface", "tgi");
        hf.endpoint_url = Some("https://x.endpoints.huggingface.cloud".into());
        let mut kwargs = params(&hf, key()).kwargs;
        for_the_proxy(&mut kwargs);
        assert_eq!(kwargs.model, "openai/tgi");
        assert_eq!(
            kwargs.api_base.as_deref(),
            Some("https://x.endpoints.huggingface.cloud/v1")
        );
        let mut other = params(&meta("openai", "gpt-4o"), key()).kwargs;
        for_the_proxy(&mut other);
        assert_eq!(other.model, "openai/gpt-4o");
    }

    #[test]
    fn reasoning_follows_the_models_shape_and_provider() {
        let with = |provider: &'static str, shape: &str| {
            let mut m = meta(provider, "x");
            m.capabilities = Some(api::Capabilities {
                reasoning: Some(shape.into()),
                ..m.capabilities.clone().expect("caps")
            });
            as_json(&params(&m, key()))
        };
        let anthropic = with("anthropic", "max_tokens");
        assert_eq!(anthropic["reasoning"]["kwarg"], "thinking");
        assert_eq!(anthropic["reasoning"]["example"]["budget_tokens"], 8000);
        assert_eq!(
            with("openrouter", "effort")["reasoning"]["example"],
            json!({"effort": "medium"})
        );
        assert_eq!(
            with("openrouter", "max_tokens")["reasoning"]["kwarg"],
            "reasoning"
        );
        let fireworks = with("fireworks", "effort");
        assert_eq!(
            fireworks["kwargs"]["allowed_openai_params"],
            json!(["reasoning_effort"])
        );
        assert!(
            with("gemini", "effort")["kwargs"]
                .get("allowed_openai_params")
                .is_none()
        );
        assert!(as_json(&params(&meta("openai", "gpt-4o"), key()))["reasoning"].is_null());
    }

    #[test]
    fn platform_models_take_the_openrouter_form_with_the_platform_key() {
        let mut platform = meta("openrouter", "google/gemini-3.1-pro-preview");
        platform.kind = "platform";
        platform.base_url = Some(super::super::OPENROUTER_BASE_URL.into());
        let out = as_json(&params(&platform, key()));
        assert_eq!(
            out["kwargs"],
            json!({
                "model": "openrouter/google/gemini-3.1-pro-preview",
                "api_key": "sk-test-0123456789",
                "api_base": "https://openrouter.ai/api/v1",
                "max_tokens": 32_000,
                "input_cost_per_token": 0.000003,
            })
        );
    }

    #[test]
    fn a_gemini_base_carries_its_api_version() {
        for (id, base, expected) in [
            ("gemini-2.5-flash", "https://gw/", "https://gw/v1beta"),
            ("gemini-3.1-pro-preview", "https://gw", "https://gw/v1alpha"),
            (
                "gemini-3.1-pro-preview",
                "https://gw/v1beta",
                "https://gw/v1beta",
            ),
        ] {
            let mut gemini = meta("gemini", id);
            gemini.base_url = Some(base.into());
            let out = as_json(&params(&gemini, key()));
            assert_eq!(out["kwargs"]["api_base"], expected, "{id} at {base}");
        }
    }

    #[test]
    fn reasoning_is_asked_the_way_litellm_honours_it() {
        let kwarg = |provider: &'static str, id: &str, shape: &str| {
            let mut m = meta(provider, id);
            m.capabilities = Some(api::Capabilities {
                reasoning: Some(shape.into()),
                ..m.capabilities.clone().expect("caps")
            });
            as_json(&params(&m, key()))["reasoning"]["kwarg"].clone()
        };
        // (provider, id, the model's shape, the kwarg that works in LiteLLM 1.110)
        for (provider, id, shape, expected) in [
            ("openai", "o3", "max_tokens", "reasoning_effort"),
            ("openai", "gpt-5", "effort", "reasoning_effort"),
            (
                "gemini",
                "gemini-3.1-pro-preview",
                "max_tokens",
                "reasoning_effort",
            ),
            ("gemini", "gemini-2.5-flash", "max_tokens", "thinking"),
            ("anthropic", "claude-sonnet-4-6", "max_tokens", "thinking"),
            ("anthropic", "claude-opus-4-7", "effort", "reasoning_effort"),
            (
                "bedrock",
                "us.anthropic.claude-sonnet-4-20250514-v1:0",
                "max_tokens",
                "thinking",
            ),
            ("openrouter", "x/y", "max_tokens", "reasoning"),
        ] {
            assert_eq!(
                kwarg(provider, id, shape),
                expected,
                "{provider} {id} {shape}"
            );
        }
    }

    #[test]
    fn prices_reach_python_as_the_registrys_decimals() {
        for decimal in [
            "0.000003",
            "0.0000009",
            "0.00000125",
            "0.000015",
            "0",
            "1.5",
        ] {
            let mut m = meta("openai", "gpt-4o");
            m.input_cost_per_token = Some(decimal.into());
            m.output_cost_per_token = Some(decimal.into());
            let text = serde_json::to_string(&params(&m, key()).kwargs).expect("json");
            let written: serde_json::Value = serde_json::from_str(&text).expect("json");
            let number = written["input_cost_per_token"].to_string();
            // The written number is the decimal itself, perhaps in exponent form.
            assert_eq!(
                normal(&number),
                normal(decimal),
                "{decimal} written {number}"
            );
        }
    }

    /// A decimal number's significant digits and power of ten: `3e-6` and `0.000003` are
    /// both `("3", -6)`.
    fn normal(text: &str) -> (String, i32) {
        let (mantissa, exponent) = text.split_once('e').unwrap_or((text, "0"));
        let mut exponent: i32 = exponent.parse().expect("exponent");
        let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        exponent -= i32::try_from(frac.len()).expect("short");
        let digits = format!("{int}{frac}");
        let digits = digits.trim_start_matches('0');
        let trimmed = digits.trim_end_matches('0');
        if trimmed.is_empty() {
            return ("0".into(), 0);
        }
        exponent += i32::try_from(digits.len() - trimmed.len()).expect("short");
        (trimmed.to_owned(), exponent)
    }
}
