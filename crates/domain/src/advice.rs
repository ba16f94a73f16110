//! Configuration advice: warnings about a model's settings that are allowed but likely to
//! hurt (cut-off tool calls, reasoning starved of tokens), and the recommendation that
//! reported truncations call for. Advice never refuses anything.

use crate::known::KnownModel;
use crate::values::Capabilities;

/// Tool-using steps spend output tokens on calls and their arguments; below this they are
/// cut short.
pub const TOOL_USE_MIN_MAX_TOKENS: u32 = 16_000;

/// The guidance shown beside a max tokens field, before any value is judged.
pub const MAX_TOKENS_GUIDANCE: [&str; 2] = [
    "With tool use: at least 16,000 output tokens, 32,000 for multi-file tool use (smaller limits cut tool calls off).",
    "With extended reasoning: the provider's documented ceiling for the model, since reasoning tokens count toward the limit.",
];

/// What the seed's guidance asks of a model whose tool calls are cut: "raise max tokens to
/// 32,000 for multi-file tool use".
pub const MULTI_FILE_TOOL_USE_MAX_TOKENS: u32 = 32_000;

/// One piece of advice: a stable code and a sentence saying what to change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    pub code: &'static str,
    pub message: String,
}

/// The advice for a model with `capabilities` and `max_tokens`. `known` is what the shipped
/// table says about the provider's model, where it knows it.
pub fn warnings(
    capabilities: &Capabilities,
    max_tokens: u32,
    known: Option<&KnownModel>,
) -> Vec<Warning> {
    let mut out = Vec::new();
    if let Some(ceiling) = known.and_then(|k| k.max_output_tokens) {
        if max_tokens > ceiling {
            out.push(Warning {
                code: "max_tokens.above_documented_ceiling",
                message: format!("the provider documents at most {ceiling} output tokens for this model; requests for more will be refused or cut"),
            });
        } else if capabilities.reasoning.is_some() && max_tokens < ceiling {
            out.push(Warning {
                code: "max_tokens.below_reasoning_ceiling",
                message: format!("reasoning spends output tokens before the answer; the provider documents up to {ceiling} for this model, consider {ceiling}"),
            });
        }
    }
    if capabilities.tool_use && max_tokens < TOOL_USE_MIN_MAX_TOKENS {
        out.push(Warning {
            code: "max_tokens.low_for_tool_use",
            message: format!(
                "tool use is on with max tokens {max_tokens}; use at least 16000, or 32000 for multi-file generation, or tool calls will be cut off"
            ),
        });
    }
    out
}

/// A change to make, with the edit that makes it: the model's max tokens set to
/// `max_tokens` (one `PATCH`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recommendation {
    pub code: &'static str,
    pub message: String,
    pub max_tokens: u32,
}

/// What reported truncations call for. A model with tool use whose calls were truncated
/// (`truncated_calls_7d`, the last 7 days) and whose max tokens is below 32,000 is told to
/// raise it to 32,000, or to the provider's documented ceiling where `known` puts that
/// lower. `None` when no change applies: no tool use, no truncation, or max tokens already
/// there.
pub fn recommendation(
    capabilities: &Capabilities,
    max_tokens: u32,
    truncated_calls_7d: u64,
    known: Option<&KnownModel>,
) -> Option<Recommendation> {
    if !capabilities.tool_use
        || truncated_calls_7d == 0
        || max_tokens >= MULTI_FILE_TOOL_USE_MAX_TOKENS
    {
        return None;
    }
    match known.and_then(|k| k.max_output_tokens) {
        Some(ceiling) if ceiling < MULTI_FILE_TOOL_USE_MAX_TOKENS => {
            (max_tokens < ceiling).then(|| Recommendation {
                code: "max_tokens.raise_to_documented_ceiling",
                message: format!(
                    "{truncated_calls_7d} call(s) were cut in the last 7 days; raise max tokens to {ceiling}, the most the provider documents for this model (32,000 is advised for multi-file tool use)"
                ),
                max_tokens: ceiling,
            })
        }
        _ => Some(Recommendation {
            code: "max_tokens.raise_for_truncations",
            message: format!(
                "{truncated_calls_7d} call(s) were cut in the last 7 days; raise max tokens to 32,000 for multi-file tool use"
            ),
            max_tokens: MULTI_FILE_TOOL_USE_MAX_TOKENS,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::values::ReasoningParam;

    fn known(ceiling: u32) -> KnownModel {
        KnownModel {
            max_output_tokens: Some(ceiling),
            ..KnownModel::default()
        }
    }

    fn codes(warnings: Vec<Warning>) -> Vec<&'static str> {
        warnings.into_iter().map(|w| w.code).collect()
    }

    #[test]
    fn tool_use_wants_enough_output_tokens() {
        // Given tool use on
        let tools = Capabilities {
            tool_use: true,
            ..Capabilities::default()
        };
        // When max tokens is below 16,000, Then the advice says so; at 16,000 it does not
        assert_eq!(
            codes(warnings(&tools, 8_000, None)),
            ["max_tokens.low_for_tool_use"]
        );
        assert!(warnings(&tools, TOOL_USE_MIN_MAX_TOKENS, None).is_empty());
        // And without tool use a low limit is fine
        assert!(warnings(&Capabilities::default(), 1_000, None).is_empty());
    }

    #[test]
    fn documented_ceilings_bound_and_feed_reasoning() {
        let reasoning = Capabilities {
            reasoning: Some(ReasoningParam::Effort),
            ..Capabilities::default()
        };
        // Above the documented ceiling, whatever the capabilities
        assert_eq!(
            codes(warnings(
                &Capabilities::default(),
                70_000,
                Some(&known(64_000))
            )),
            ["max_tokens.above_documented_ceiling"]
        );
        // A reasoning model below its ceiling is told the ceiling
        let below = warnings(&reasoning, 32_000, Some(&known(64_000)));
        assert_eq!(below[0].code, "max_tokens.below_reasoning_ceiling");
        assert!(below[0].message.contains("64000"), "{}", below[0].message);
        // At the ceiling there is nothing to say
        assert!(warnings(&reasoning, 64_000, Some(&known(64_000))).is_empty());
    }

    #[test]
    fn truncations_recommend_32000_for_tool_use() {
        // Given a model with tool use at 16,000 whose calls were cut this week
        let tools = Capabilities {
            tool_use: true,
            ..Capabilities::default()
        };
        // When advice is asked, Then it is to raise max tokens to 32,000
        let advice = recommendation(&tools, 16_000, 3, None).expect("a recommendation");
        assert_eq!(advice.code, "max_tokens.raise_for_truncations");
        assert_eq!(advice.max_tokens, MULTI_FILE_TOOL_USE_MAX_TOKENS);
        assert!(
            advice
                .message
                .contains("raise max tokens to 32,000 for multi-file tool use"),
            "{}",
            advice.message
        );
        // And a documented ceiling above 32,000 changes nothing
        assert_eq!(
            recommendation(&tools, 16_000, 3, Some(&known(128_000))),
            Some(advice)
        );
    }

    #[test]
    fn a_lower_documented_ceiling_is_recommended_instead() {
        let tools = Capabilities {
            tool_use: true,
            ..Capabilities::default()
        };
        // Given a provider that documents at most 8,192 output tokens
        let advice = recommendation(&tools, 4_096, 1, Some(&known(8_192))).expect("advice");
        // Then the ceiling is recommended, not 32,000
        assert_eq!(advice.code, "max_tokens.raise_to_documented_ceiling");
        assert_eq!(advice.max_tokens, 8_192);
        assert!(advice.message.contains("8192"), "{}", advice.message);
        // And at the ceiling there is nothing left to raise
        assert_eq!(recommendation(&tools, 8_192, 1, Some(&known(8_192))), None);
    }

    #[test]
    fn no_recommendation_when_none_applies() {
        let tools = Capabilities {
            tool_use: true,
            ..Capabilities::default()
        };
        // No truncation this week
        assert_eq!(recommendation(&tools, 4_096, 0, None), None);
        // No tool use
        assert_eq!(
            recommendation(&Capabilities::default(), 4_096, 5, None),
            None
        );
        // Already at 32,000 or above
        assert_eq!(recommendation(&tools, 32_000, 5, None), None);
        assert_eq!(recommendation(&tools, 64_000, 5, None), None);
    }
}
