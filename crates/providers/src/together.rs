//! Together AI (reference §6): `POST {base}/chat/completions`, bearer key, `max_tokens`.
//!
//! Quirks: an unknown model is a 404 `model_not_found`, or a 400 `model_not_available` (not
//! served serverless) or `dedicated_endpoint_not_running`: all three are model problems.

use domain::provider::{CredentialSecret, Provider, ProviderModelId};

use crate::OutcomeClass;
use crate::chat_completions::{self, BudgetField};
use crate::classify::{ErrorInfo, Verdict};
use crate::http::{Call, Reply};
use crate::{api_key, join};

pub(crate) fn call(
    base: &str,
    model: &ProviderModelId,
    credential: Option<&CredentialSecret>,
) -> Result<Call, Verdict> {
    let key = api_key(Provider::Together, credential)?;
    chat_completions::call(
        join(base, "/chat/completions")?,
        model.as_str(),
        Some(key),
        BudgetField::MaxTokens,
    )
}

pub(crate) fn classify(reply: &Reply) -> Verdict {
    chat_completions::classify(reply, quirks)
}

fn quirks(_: &Reply, info: &ErrorInfo) -> Option<OutcomeClass> {
    [
        "model_not_found",
        "model_not_available",
        "dedicated_endpoint_not_running",
    ]
    .iter()
    .any(|code| info.has_label(code))
    .then_some(OutcomeClass::ModelNotFound)
}
