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
pub use ids::{CredentialId, IdempotencyKey, OrgId, SLUG_MAX, Slug, TokenId, WorkflowId};
pub use names::DisplayName;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echoed_values_are_capped() {
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
        // Then each message quotes only the first characters, then an ellipsis
        let quoted = format!("{:?}…", "x".repeat(crate::ECHO_MAX_CHARS));
        for problem in problems {
            assert!(problem.message.contains(&quoted), "{}", problem.code);
            assert!(
                problem.message.len() < 400,
                "{}: {}",
                problem.code,
                problem.message.len()
            );
        }
    }
}
