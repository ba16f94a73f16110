//! Capability checks before a call, on a resolve answer, with the rules `POST
//! /v1/models/{model}/check` applies (`domain::workflow::refusals`): a feature the model
//! lacks is refused with the registry's reason; one the answer does not vouch for (a
//! platform model whose catalog facts are incomplete) is unknown, never guessed.

use domain::values::{Capabilities, ReasoningParam};
use domain::workflow::{Refusal, Wanted, refusals};

/// Which wanted features the model serves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checked {
    /// True when every wanted feature is served.
    pub allowed: bool,
    pub refused: Vec<Refusal>,
    /// Wanted features the answer cannot vouch for.
    pub unknown: Vec<&'static str>,
}

/// Checks `wanted` against a resolved model's capabilities and token limit.
pub fn check(resolved: &api::Resolved, wanted: &Wanted) -> Checked {
    let mut unknown = Vec::new();
    let max_tokens = match (resolved.max_tokens, wanted.max_tokens) {
        (Some(limit), _) => limit,
        (None, Some(_)) => {
            unknown.push("max_tokens");
            u32::MAX
        }
        (None, None) => u32::MAX,
    };
    let capabilities = resolved.capabilities.as_ref().map(|c| Capabilities {
        json_mode: c.json_mode,
        vision: c.vision,
        tool_use: c.tool_use,
        reasoning: c
            .reasoning
            .as_deref()
            .and_then(|shape| ReasoningParam::parse(shape).ok()),
    });
    let refused = match capabilities {
        Some(capabilities) => refusals(&capabilities, max_tokens, wanted),
        None => {
            for (feature, want) in [
                ("tools", wanted.tools),
                ("json_mode", wanted.json_mode),
                ("image_input", wanted.image_input),
                ("reasoning_effort", wanted.reasoning_effort),
                ("reasoning_budget", wanted.reasoning_budget),
            ] {
                if want {
                    unknown.push(feature);
                }
            }
            let tokens_only = Wanted {
                max_tokens: wanted.max_tokens,
                ..Wanted::default()
            };
            refusals(&Capabilities::default(), max_tokens, &tokens_only)
        }
    };
    Checked {
        allowed: refused.is_empty() && unknown.is_empty(),
        refused,
        unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolved(capabilities: Option<api::Capabilities>, max_tokens: Option<u32>) -> api::Resolved {
        api::Resolved {
            kind: "custom".into(),
            model: "m".into(),
            provider: "openai".into(),
            base_url: None,
            endpoint_url: None,
            region: None,
            provider_model_id: "gpt-4o".into(),
            max_tokens,
            capabilities,
            input_cost_per_token: None,
            output_cost_per_token: None,
            credential: None,
        }
    }

    fn caps(tool_use: bool, reasoning: Option<&str>) -> Option<api::Capabilities> {
        Some(api::Capabilities {
            json_mode: true,
            vision: false,
            tool_use,
            reasoning: reasoning.map(str::to_owned),
        })
    }

    #[test]
    fn the_registrys_rules_decide() {
        let wanted = Wanted {
            tools: true,
            image_input: true,
            reasoning_effort: true,
            max_tokens: Some(64_000),
            ..Wanted::default()
        };
        let checked = check(
            &resolved(caps(true, Some("max_tokens")), Some(32_000)),
            &wanted,
        );
        let features: Vec<&str> = checked.refused.iter().map(|r| r.feature).collect();
        assert_eq!(features, ["image_input", "reasoning_effort", "max_tokens"]);
        assert_eq!(
            checked.refused,
            refusals(
                &Capabilities {
                    json_mode: true,
                    vision: false,
                    tool_use: true,
                    reasoning: Some(ReasoningParam::MaxTokens),
                },
                32_000,
                &wanted
            ),
            "the same refusals, words included, as the registry's check"
        );
        assert!(!checked.allowed);
        let fine = Wanted {
            tools: true,
            json_mode: true,
            ..Wanted::default()
        };
        assert!(check(&resolved(caps(true, None), Some(32_000)), &fine).allowed);
    }

    #[test]
    fn what_the_answer_does_not_vouch_for_is_unknown() {
        let wanted = Wanted {
            tools: true,
            max_tokens: Some(1_000),
            ..Wanted::default()
        };
        let checked = check(&resolved(None, None), &wanted);
        assert_eq!(checked.unknown, ["max_tokens", "tools"]);
        assert!(checked.refused.is_empty() && !checked.allowed);
        let over = check(
            &resolved(None, Some(500)),
            &Wanted {
                max_tokens: Some(1_000),
                ..Wanted::default()
            },
        );
        assert_eq!(over.refused[0].feature, "max_tokens");
    }
}
