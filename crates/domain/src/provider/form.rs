//! How each provider's model is entered: the credential's fields (with the alternatives
//! Bedrock offers as an explicit choice), the endpoint field, and the model id's documented
//! form. The one description of it: `GET /v1/providers` and the console's Add Custom Model
//! dialog are derived from it, and the refusals of a model id quote the same form.

use super::{CredentialKind, EndpointNeed, Provider};

/// What an input holds, for a form to pick its control.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldKind {
    /// Shown masked, never echoed back.
    Secret,
    Text,
    Url,
    /// An AWS region.
    Region,
    /// One of the listed alternatives.
    Choice,
}

impl FieldKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Secret => "secret",
            Self::Text => "text",
            Self::Url => "url",
            Self::Region => "region",
            Self::Choice => "choice",
        }
    }
}

/// One input of a provider's form. `name` is the request's field (`credential.<name>` for a
/// credential's).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    pub name: &'static str,
    pub label: &'static str,
    pub kind: FieldKind,
    pub required: bool,
    pub placeholder: &'static str,
    pub help: &'static str,
}

/// The documented form of a provider's model ids, and an example.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModelIdForm {
    pub form: &'static str,
    pub example: &'static str,
}

const API_KEY: Field = Field {
    name: "api_key",
    label: "API key",
    kind: FieldKind::Secret,
    required: true,
    placeholder: "",
    help: "Stored sealed; only its last characters are shown again.",
};

const AWS_ACCESS_KEY: &[Field] = &[
    Field {
        name: "access_key_id",
        label: "Access key ID",
        kind: FieldKind::Text,
        required: true,
        placeholder: "AKIA…",
        help: "An IAM user's or role's access key ID, 16 to 128 characters of A-Z and 0-9.",
    },
    Field {
        name: "secret_access_key",
        label: "Secret access key",
        kind: FieldKind::Secret,
        required: true,
        placeholder: "",
        help: "The secret half of the key pair.",
    },
    Field {
        name: "session_token",
        label: "Session token",
        kind: FieldKind::Secret,
        required: false,
        placeholder: "",
        help: "Only for temporary credentials (STS); leave empty for a long-term key pair.",
    },
];

const BEDROCK_API_KEY: &[Field] = &[Field {
    name: "bedrock_api_key",
    label: "Bedrock API key",
    kind: FieldKind::Secret,
    required: true,
    placeholder: "ABSK… or bedrock-api-key-…",
    help: "A long-term key (ABSK…) or a short-term one, which lasts at most 12 hours.",
}];

const REGION: Field = Field {
    name: "region",
    label: "AWS region",
    kind: FieldKind::Region,
    required: true,
    placeholder: "us-east-1",
    help: "The region whose Bedrock endpoint serves the model.",
};

const HF_ENDPOINT: Field = Field {
    name: "endpoint_url",
    label: "Inference Endpoint URL",
    kind: FieldKind::Url,
    required: true,
    placeholder: "https://xyz.us-east-1.aws.endpoints.huggingface.cloud",
    help: "The URL of your HuggingFace Inference Endpoint.",
};

const COMPATIBLE_ENDPOINT: Field = Field {
    name: "endpoint_url",
    label: "Base URL",
    kind: FieldKind::Url,
    required: true,
    placeholder: "https://llm.example.com/v1",
    help: "The OpenAI-compatible base URL (vLLM, Ollama, a gateway), up to and including /v1.",
};

impl Provider {
    /// The provider's name as people know it.
    pub fn label(self) -> &'static str {
        match self {
            Self::Openai => "OpenAI",
            Self::Anthropic => "Anthropic",
            Self::Gemini => "Google Gemini",
            Self::Openrouter => "OpenRouter",
            Self::Fireworks => "Fireworks",
            Self::Together => "Together AI",
            Self::Bedrock => "AWS Bedrock",
            Self::Huggingface => "HuggingFace Inference Endpoints",
            Self::OpenaiCompatible => "OpenAI-compatible",
        }
    }

    /// The endpoint input a model of this provider needs, if any.
    pub fn endpoint_field(self) -> Option<Field> {
        match (self.endpoint_need(), self) {
            (EndpointNeed::None, _) => None,
            (EndpointNeed::Region, _) => Some(REGION),
            (EndpointNeed::Url, Self::Huggingface) => Some(HF_ENDPOINT),
            (EndpointNeed::Url, _) => Some(COMPATIBLE_ENDPOINT),
        }
    }

    /// The documented form of the provider's model ids.
    pub fn model_id_form(self) -> ModelIdForm {
        let (form, example) = match self {
            Self::Openai => ("the model name", "gpt-5"),
            Self::Anthropic => ("the model name", "claude-sonnet-4-6"),
            Self::Gemini => ("the model name", "gemini-2.5-pro"),
            Self::Openrouter => ("<vendor>/<model>", "anthropic/claude-sonnet-4.6"),
            Self::Fireworks => (
                "accounts/<account>/models/<name>",
                "accounts/fireworks/models/deepseek-v3",
            ),
            Self::Together => ("<org>/<model>", "meta-llama/Llama-3.3-70B-Instruct-Turbo"),
            Self::Bedrock => (
                "a model id, an inference profile id or an arn:aws:bedrock:… ARN",
                "anthropic.claude-sonnet-4-20250514-v1:0",
            ),
            Self::Huggingface => ("the model the endpoint serves", "tgi"),
            Self::OpenaiCompatible => ("the model name the server knows", "llama3"),
        };
        ModelIdForm { form, example }
    }
}

impl CredentialKind {
    /// The alternative's name in a form.
    pub fn label(self) -> &'static str {
        match self {
            Self::ApiKey => "API key",
            Self::AwsAccessKey => "IAM key pair",
            Self::BedrockApiKey => "Bedrock API key",
        }
    }

    /// The inputs this shape of credential is made of.
    pub fn fields(self) -> &'static [Field] {
        match self {
            Self::ApiKey => std::slice::from_ref(&API_KEY),
            Self::AwsAccessKey => AWS_ACCESS_KEY,
            Self::BedrockApiKey => BEDROCK_API_KEY,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_provider_describes_what_its_rules_check() {
        for provider in Provider::ALL {
            assert_eq!(
                provider.endpoint_field().is_some(),
                provider.endpoint_need() != EndpointNeed::None,
                "{provider}"
            );
            let example = provider.model_id_form().example;
            assert!(
                crate::provider::ProviderModelId::parse(provider, example).is_ok(),
                "{provider}'s example {example} passes its own check"
            );
            for kind in provider.credential_kinds() {
                assert!(kind.fields().iter().any(|f| f.required), "{provider}");
            }
        }
    }

    #[test]
    fn bedrock_offers_both_alternatives() {
        let kinds = Provider::Bedrock.credential_kinds();
        let labels: Vec<&str> = kinds.iter().map(|k| k.label()).collect();
        assert_eq!(labels, ["IAM key pair", "Bedrock API key"]);
    }
}
