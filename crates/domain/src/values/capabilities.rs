//! What a model can do and how many output tokens it may be asked for.

use serde::{Deserialize, Serialize};

use crate::Invalid;

/// Largest output budget a model may declare.
pub const MAX_TOKENS_LIMIT: u32 = 2_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MaxTokens(u32);

impl MaxTokens {
    pub fn parse(raw: i64) -> Result<Self, Invalid> {
        match u32::try_from(raw) {
            Ok(n) if (1..=MAX_TOKENS_LIMIT).contains(&n) => Ok(Self(n)),
            _ => Err(Self::out_of_range()),
        }
    }

    /// The problem for a whole number outside `1..=MAX_TOKENS_LIMIT`, including one too large
    /// for any integer type.
    pub fn out_of_range() -> Invalid {
        Invalid::new(
            "max_tokens",
            "max_tokens.out_of_range",
            format!("max tokens must be a whole number between 1 and {MAX_TOKENS_LIMIT}"),
        )
    }

    pub fn get(self) -> u32 {
        self.0
    }
}

/// How a reasoning model takes its reasoning control.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReasoningParam {
    /// A level such as low / medium / high (OpenAI, OpenRouter, Gemini 3).
    Effort,
    /// A token budget (Anthropic, Bedrock, Gemini 2.5 thinking budget).
    MaxTokens,
}

impl ReasoningParam {
    pub const ALL: [ReasoningParam; 2] = [Self::Effort, Self::MaxTokens];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Effort => "effort",
            Self::MaxTokens => "max_tokens",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        match raw {
            "effort" => Ok(Self::Effort),
            "max_tokens" => Ok(Self::MaxTokens),
            _ => Err(Invalid::new(
                "capabilities.reasoning",
                "reasoning.unknown_parameter",
                "the reasoning parameter is not one of \"effort\" or \"max_tokens\"",
            )),
        }
    }
}

/// What a model can do. `reasoning: None` means extended reasoning is off.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capabilities {
    pub json_mode: bool,
    pub vision: bool,
    pub tool_use: bool,
    pub reasoning: Option<ReasoningParam>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_tokens_range() {
        assert!(MaxTokens::parse(1).is_ok());
        assert!(MaxTokens::parse(2_000_000).is_ok());
        assert_eq!(
            MaxTokens::parse(0).unwrap_err().code,
            "max_tokens.out_of_range"
        );
        assert_eq!(
            MaxTokens::parse(2_000_001).unwrap_err().code,
            "max_tokens.out_of_range"
        );
    }

    #[test]
    fn max_tokens_out_of_range_names_the_range() {
        // Given a number beyond every integer type
        // When its problem is made
        let problem = MaxTokens::out_of_range();
        // Then it is out of range and says the allowed range
        assert_eq!(problem.code, "max_tokens.out_of_range");
        assert!(
            problem.message.contains("between 1 and 2000000"),
            "{}",
            problem.message
        );
        assert_eq!(
            MaxTokens::parse(-5).unwrap_err().code,
            "max_tokens.out_of_range"
        );
    }
}
