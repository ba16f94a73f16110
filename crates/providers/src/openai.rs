//! OpenAI Chat Completions (reference §1): `POST {base}/chat/completions`, bearer key,
//! `max_completion_tokens` (o-series models reject `max_tokens`).
//!
//! Quirks: `insufficient_quota` comes as a 429 and is a billing problem, not a rate limit (the
//! shared rules read the code first); 404 `model_not_found` also covers "no access".

use domain::provider::{CredentialSecret, Provider, ProviderModelId};

use crate::chat_completions::{self, BudgetField};
use crate::classify::Verdict;
use crate::http::{Call, Reply};
use crate::{api_key, join};

pub(crate) fn call(
    base: &str,
    model: &ProviderModelId,
    credential: Option<&CredentialSecret>,
) -> Result<Call, Verdict> {
    let key = api_key(Provider::Openai, credential)?;
    chat_completions::call(
        join(base, "/chat/completions")?,
        model.as_str(),
        Some(key),
        BudgetField::MaxCompletionTokens,
    )
}

pub(crate) fn classify(reply: &Reply) -> Verdict {
    chat_completions::classify(reply, chat_completions::no_quirks)
}
