//! Value types parsed once at the edge and trusted after: names, slugs, ids, URLs, regions,
//! token limits, capabilities and costs.
//!
//! Every type deserializes without re-checking (`serde(transparent)`), so an event written
//! under older, looser rules stays readable forever; constructors check new input.

mod capabilities;
mod costs;
mod endpoints;
mod ids;
mod names;

pub use capabilities::{Capabilities, MAX_TOKENS_LIMIT, MaxTokens, ReasoningParam};
pub use costs::{COST_MAX_DECIMAL_PLACES, Cost, Costs};
pub use endpoints::{AwsRegion, HttpUrl};
pub use ids::{
    CredentialId, IdempotencyKey, OrgId, PLATFORM_ORG, SLUG_MAX, Slug, TokenId, WorkflowId,
};
pub use names::{CredentialName, DisplayName};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_values_are_never_repeated() {
        // Given a 64 KiB value
        let huge = "x".repeat(64 * 1024);
        // When fields that quote their input refuse it
        let problems = [
            AwsRegion::parse(&huge).unwrap_err(),
            ReasoningParam::parse(&huge).unwrap_err(),
            Cost::parse("cost", &huge).unwrap_err(),
            crate::provider::Provider::parse(&huge).unwrap_err(),
            crate::org::Role::parse(&huge).unwrap_err(),
        ];
        // Then no message repeats the value (a secret pasted into a wrong field stays put)
        for problem in problems {
            assert!(!problem.message.contains("xxxx"), "{}", problem.code);
            assert!(
                problem.message.len() < 400,
                "{}: {}",
                problem.code,
                problem.message.len()
            );
        }
    }
}
