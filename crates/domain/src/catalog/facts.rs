//! The facts the catalog keeps about a model, with their provenance, and the day they were
//! recorded.

use super::*;

/// A calendar day, `YYYY-MM-DD` (UTC): when a fact was recorded, or an expiration date.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Day(String);

impl Day {
    /// A `YYYY-MM-DD` date; an ISO date-time (`2026-03-01T00:00:00Z`) is cut to its day.
    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        let invalid = || Invalid::new("date", "date.invalid", "a date is written YYYY-MM-DD");
        let raw = raw.trim();
        let day = raw.get(..10).ok_or_else(invalid)?;
        let rest = &raw[10..];
        if !(rest.is_empty() || rest.starts_with('T') || rest.starts_with(' ')) {
            return Err(invalid());
        }
        let bytes = day.as_bytes();
        let digits = |range: std::ops::Range<usize>| bytes[range].iter().all(u8::is_ascii_digit);
        if !(digits(0..4) && bytes[4] == b'-' && digits(5..7) && bytes[7] == b'-' && digits(8..10))
        {
            return Err(invalid());
        }
        let month: u32 = day[5..7].parse().map_err(|_| invalid())?;
        let dom: u32 = day[8..10].parse().map_err(|_| invalid())?;
        if !(1..=12).contains(&month) || !(1..=31).contains(&dom) {
            return Err(invalid());
        }
        Ok(Self(day.to_owned()))
    }

    /// The UTC day of a Unix time in milliseconds (the clock's reading, passed in).
    pub fn from_unix_ms(ms: i64) -> Self {
        // Howard Hinnant's days-to-civil algorithm.
        let days = ms.div_euclid(86_400_000);
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let dom = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        Self(format!("{year:04}-{month:02}-{dom:02}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The facts the catalog keeps about a model.
///
/// Architecture invariant: variants are only appended (postcard encodes their index).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FactName {
    ToolUse,
    JsonMode,
    Vision,
    /// Extended reasoning and its parameter shape (`none` when the model does not reason).
    Reasoning,
    ContextLength,
    MaxCompletionTokens,
    InputCost,
    OutputCost,
    /// The day the upstream stops serving the model.
    ExpirationDate,
}

impl FactName {
    pub const ALL: [FactName; 9] = [
        Self::ToolUse,
        Self::JsonMode,
        Self::Vision,
        Self::Reasoning,
        Self::ContextLength,
        Self::MaxCompletionTokens,
        Self::InputCost,
        Self::OutputCost,
        Self::ExpirationDate,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ToolUse => "tool_use",
            Self::JsonMode => "json_mode",
            Self::Vision => "vision",
            Self::Reasoning => "reasoning",
            Self::ContextLength => "context_length",
            Self::MaxCompletionTokens => "max_completion_tokens",
            Self::InputCost => "input_cost_per_token",
            Self::OutputCost => "output_cost_per_token",
            Self::ExpirationDate => "expiration_date",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        Self::ALL
            .into_iter()
            .find(|name| name.as_str() == raw)
            .ok_or_else(|| {
                Invalid::new(
                    "fact",
                    "fact.unknown",
                    format!(
                        "the fact is not one of {}",
                        Self::ALL.map(Self::as_str).join(", ")
                    ),
                )
            })
    }

    /// Parses a value of this fact as an operator writes it: `true`/`false`, a reasoning
    /// shape (`effort`, `max_tokens`, `none`), a token count, a USD-per-token decimal, a day.
    pub fn parse_value(self, raw: &str) -> Result<FactValue, Invalid> {
        let raw = raw.trim();
        match self {
            Self::ToolUse | Self::JsonMode | Self::Vision => match raw {
                "true" => Ok(FactValue::Flag(true)),
                "false" => Ok(FactValue::Flag(false)),
                _ => Err(Invalid::new(
                    "value",
                    "fact.invalid_value",
                    "this fact is true or false",
                )),
            },
            Self::Reasoning => match raw {
                "none" => Ok(FactValue::Reasoning(None)),
                other => ReasoningParam::parse(other)
                    .map(|p| FactValue::Reasoning(Some(p)))
                    .map_err(|_| {
                        Invalid::new(
                            "value",
                            "fact.invalid_value",
                            "reasoning is effort, max_tokens or none",
                        )
                    }),
            },
            Self::ContextLength | Self::MaxCompletionTokens => raw
                .parse::<u32>()
                .ok()
                .filter(|n| *n > 0)
                .map(FactValue::Tokens)
                .ok_or_else(|| {
                    Invalid::new(
                        "value",
                        "fact.invalid_value",
                        "this fact is a positive whole number of tokens",
                    )
                }),
            Self::InputCost | Self::OutputCost => Cost::parse("value", raw).map(FactValue::Cost),
            Self::ExpirationDate => Day::parse(raw).map(FactValue::Date),
        }
    }

    /// Whether `value` is of this fact's kind.
    pub fn accepts(self, value: &FactValue) -> bool {
        matches!(
            (self, value),
            (
                Self::ToolUse | Self::JsonMode | Self::Vision,
                FactValue::Flag(_)
            ) | (Self::Reasoning, FactValue::Reasoning(_))
                | (
                    Self::ContextLength | Self::MaxCompletionTokens,
                    FactValue::Tokens(_)
                )
                | (Self::InputCost | Self::OutputCost, FactValue::Cost(_))
                | (Self::ExpirationDate, FactValue::Date(_))
        )
    }
}

impl fmt::Display for FactName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A fact's value.
///
/// Architecture invariant: variants are only appended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FactValue {
    Flag(bool),
    /// `None`: the model does not reason (known, not unknown).
    Reasoning(Option<ReasoningParam>),
    Tokens(u32),
    Cost(Cost),
    Date(Day),
}

impl fmt::Display for FactValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Flag(flag) => write!(f, "{flag}"),
            Self::Reasoning(None) => f.write_str("none"),
            Self::Reasoning(Some(param)) => f.write_str(param.as_str()),
            Self::Tokens(tokens) => write!(f, "{tokens}"),
            Self::Cost(cost) => write!(f, "{cost}"),
            Self::Date(day) => write!(f, "{day}"),
        }
    }
}

/// A fact as a source gave it, and when it was recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sourced {
    pub value: FactValue,
    pub source: String,
    pub as_of: Day,
}

/// An operator's value for a fact, which wins over the synced one until it is cleared.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Override {
    pub value: FactValue,
    pub reason: String,
    pub as_of: Day,
}

/// What a source says of one model: its id, its name, and the facts it gives (a fact it does
/// not give is absent: unknown).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Upstream {
    pub id: String,
    pub name: String,
    pub facts: BTreeMap<FactName, FactValue>,
}

/// A model as it is put on the catalog (or proposed for it), its facts with their source.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listing {
    pub id: String,
    pub display_name: String,
    pub facts: BTreeMap<FactName, Sourced>,
}

impl Listing {
    pub(super) fn from_upstream(upstream: &Upstream, source: &str, as_of: &Day) -> Self {
        Self {
            id: upstream.id.clone(),
            display_name: upstream.name.clone(),
            facts: sourced(&upstream.facts, source, as_of),
        }
    }
}

pub(super) fn sourced(
    facts: &BTreeMap<FactName, FactValue>,
    source: &str,
    as_of: &Day,
) -> BTreeMap<FactName, Sourced> {
    facts
        .iter()
        .map(|(name, value)| {
            let fact = Sourced {
                value: value.clone(),
                source: source.to_owned(),
                as_of: as_of.clone(),
            };
            (*name, fact)
        })
        .collect()
}
