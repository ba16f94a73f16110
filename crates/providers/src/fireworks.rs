//! Fireworks AI (reference §5): `POST {base}/chat/completions` under `/inference/v1`, bearer
//! key, `max_tokens`. Not `GET /models`, which fails for some accounts.
//!
//! Quirks: an unknown model is a 404 in one of two body shapes (flat `{message, code:
//! "NOT_FOUND"}` or the nested OpenAI envelope); the shared reader accepts both.

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
    let key = api_key(Provider::Fireworks, credential)?;
    chat_completions::call(
        join(base, "/chat/completions")?,
        model.as_str(),
        Some(key),
        BudgetField::MaxTokens,
    )
}

pub(crate) fn classify(reply: &Reply) -> Verdict {
    chat_completions::classify(reply, chat_completions::no_quirks)
}
