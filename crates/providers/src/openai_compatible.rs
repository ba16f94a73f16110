//! Any OpenAI-compatible server (reference §9: vLLM, Ollama, gateways): `POST
//! {base}/chat/completions` with `max_tokens`; the key is optional and sent as a bearer token
//! only when given.
//!
//! Quirks: vLLM answers an unknown model with a flat `{"object":"error","message",…}` (old) or
//! the nested envelope (new), Ollama with the nested one: both are read. A bare 404 is a wrong
//! base URL (the server has no `/chat/completions` there), not an unknown model.

use domain::provider::{CredentialSecret, Provider, ProviderModelId};
use domain::values::HttpUrl;

use crate::chat_completions::{self, BudgetField};
use crate::classify::Verdict;
use crate::http::{Call, Reply};
use crate::{api_key, join};

pub(crate) fn call(
    base: &HttpUrl,
    model: &ProviderModelId,
    credential: Option<&CredentialSecret>,
) -> Result<Call, Verdict> {
    let key = match credential {
        None => None,
        Some(credential) => Some(api_key(Provider::OpenaiCompatible, Some(credential))?),
    };
    let suffix = match base.as_str().ends_with("/chat/completions") {
        true => "",
        false => "/chat/completions",
    };
    chat_completions::call(
        join(base.as_str(), suffix)?,
        model.as_str(),
        key,
        BudgetField::MaxTokens,
    )
}

pub(crate) fn classify(reply: &Reply) -> Verdict {
    chat_completions::classify(reply, chat_completions::self_hosted_quirks)
}
