//! HuggingFace Inference Endpoints / TGI Messages API (reference §8): `POST
//! {endpoint}/v1/chat/completions`, bearer `hf_…` token, `max_tokens`.
//!
//! Quirks: TGI serves one model and ignores `model`, so a wrong model id cannot fail here (the
//! router at `router.huggingface.co/v1` does check it, with a 404); errors are
//! `{"error": "…", "error_type": "…"}`: 422 validation, 424 generation, 429 overloaded; a
//! scaled-to-zero endpoint answers 503 while it wakes. A bare 404 is a wrong endpoint URL.

use domain::provider::{CredentialSecret, Provider, ProviderModelId};
use domain::values::HttpUrl;

use crate::chat_completions::{self, BudgetField};
use crate::classify::Verdict;
use crate::http::{Call, Reply};
use crate::{api_key, join};

pub(crate) fn call(
    endpoint: &HttpUrl,
    model: &ProviderModelId,
    credential: Option<&CredentialSecret>,
) -> Result<Call, Verdict> {
    let key = api_key(Provider::Huggingface, credential)?;
    chat_completions::call(
        join(endpoint.as_str(), chat_path(endpoint.as_str()))?,
        model.as_str(),
        Some(key),
        BudgetField::MaxTokens,
    )
}

/// The endpoint URL is the endpoint's root (`https://x.endpoints.huggingface.cloud`) or, as
/// users often paste it, already ends in `/v1` or the full path.
fn chat_path(endpoint: &str) -> &'static str {
    let path = endpoint.trim_end_matches('/');
    if path.ends_with("/chat/completions") {
        ""
    } else if path.ends_with("/v1") {
        "/chat/completions"
    } else {
        "/v1/chat/completions"
    }
}

pub(crate) fn classify(reply: &Reply) -> Verdict {
    chat_completions::classify(reply, chat_completions::self_hosted_quirks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chat_path_is_added_once() {
        assert_eq!(chat_path("https://x.cloud"), "/v1/chat/completions");
        assert_eq!(chat_path("https://x.cloud/v1/"), "/chat/completions");
        assert_eq!(chat_path("https://x.cloud/v1/chat/completions"), "");
    }
}
