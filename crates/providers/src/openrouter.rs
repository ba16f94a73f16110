//! OpenRouter (reference §4): `POST {base}/chat/completions`, bearer key, `max_tokens`.
//!
//! Quirks: an unknown model is a 400 ("X is not a valid model ID"), which the shared 400 rule
//! reads as a model problem; 402 is out of credits; errors met after generation started come
//! back as a 200 with an `error` body or `finish_reason: "error"`.

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
    let key = api_key(Provider::Openrouter, credential)?;
    let mut call = chat_completions::call(
        join(base, "/chat/completions")?,
        model.as_str(),
        Some(key),
        BudgetField::MaxTokens,
    )?;
    // Optional attribution headers ("optional but recommended" in OpenRouter's example).
    call.header("x-title", "modelreg connection test");
    Ok(call)
}

pub(crate) fn classify(reply: &Reply) -> Verdict {
    chat_completions::classify(reply, chat_completions::no_quirks)
}
