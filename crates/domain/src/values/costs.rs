//! Prices in USD per token, exact: parsed without rounding, serialized as decimal strings.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Invalid;

/// Most decimal places a cost keeps (all that [`Decimal`] holds). A finer price is refused,
/// never rounded.
pub const COST_MAX_DECIMAL_PLACES: u32 = Decimal::MAX_SCALE;

/// A price in USD per token, exact. Serialized as a decimal string everywhere, so neither JSON
/// nor postcard ever sees a float.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cost(Decimal);

impl Cost {
    /// Parses a plain or scientific decimal (`"0.000003"`, `"3e-6"`) exactly: a value that
    /// [`Decimal`] could only hold rounded is refused, never rounded.
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, Invalid> {
        let Some(exact) = ExactDecimal::parse(raw.trim()) else {
            return Err(Invalid::new(
                field,
                "cost.invalid",
                format!("{field} is not a decimal number; give USD per token, e.g. \"0.000003\""),
            ));
        };
        if exact.negative && !exact.is_zero() {
            return Err(Invalid::new(
                field,
                "cost.negative",
                "a cost cannot be negative",
            ));
        }
        if exact.exceeds_one() {
            return Err(Invalid::new(
                field,
                "cost.too_large",
                "a cost is at most 1 USD per token; a larger value is surely a price per million \
                 tokens",
            ));
        }
        // Zero is exact however many zeros follow the point.
        if !exact.is_zero() && exact.decimal_places() > i64::from(COST_MAX_DECIMAL_PLACES) {
            return Err(Invalid::new(
                field,
                "cost.too_precise",
                format!(
                    "a cost has at most {COST_MAX_DECIMAL_PLACES} decimal places; round it \
                     before sending, as the registry never rounds a price"
                ),
            ));
        }
        let value = exact.to_decimal().ok_or_else(|| {
            // Unreachable after the checks above (at most 1 with at most 28 places fits), but
            // a refusal is better than a panic.
            Invalid::new(
                field,
                "cost.invalid",
                format!("{field} cannot be held exactly"),
            )
        })?;
        Ok(Self(value.normalize()))
    }

    pub fn decimal(self) -> Decimal {
        self.0
    }
}

impl fmt::Display for Cost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Serialize for Cost {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0.to_string())
    }
}

impl<'de> Deserialize<'de> for Cost {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Decimal::from_str(&text)
            .map(Self)
            .map_err(serde::de::Error::custom)
    }
}

/// A decimal number exactly as written: `digits × 10^exponent`, with neither leading nor trailing
/// zeros in `digits` (so zero has no digits). Checking size and precision on this form, before
/// building a [`Decimal`], is what keeps parsing from rounding.
struct ExactDecimal {
    negative: bool,
    digits: String,
    exponent: i64,
}

impl ExactDecimal {
    /// Exponents beyond this are clamped: any such value is far too large or too precise anyway.
    const EXPONENT_CLAMP: i64 = 1_000_000_000;

    /// `[+-]digits[.digits][(e|E)[+-]digits]`, with at least one digit before the exponent.
    fn parse(text: &str) -> Option<Self> {
        let (negative, unsigned) = match text.as_bytes().first() {
            Some(b'-') => (true, &text[1..]),
            Some(b'+') => (false, &text[1..]),
            _ => (false, text),
        };
        let (mantissa, written_exponent) = match unsigned.find(['e', 'E']) {
            Some(at) => (&unsigned[..at], Some(&unsigned[at + 1..])),
            None => (unsigned, None),
        };
        let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let all_digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
        if whole.len() + fraction.len() == 0 || !all_digits(whole) || !all_digits(fraction) {
            return None;
        }
        let written_exponent = match written_exponent {
            None => 0,
            Some(text) => {
                let magnitude = text.strip_prefix(['+', '-']).unwrap_or(text);
                if magnitude.is_empty() || !all_digits(magnitude) {
                    return None;
                }
                let clamped = magnitude
                    .parse::<i64>()
                    .map_or(Self::EXPONENT_CLAMP, |e| e.min(Self::EXPONENT_CLAMP));
                if text.starts_with('-') {
                    -clamped
                } else {
                    clamped
                }
            }
        };
        let fraction_len = i64::try_from(fraction.len()).ok()?;
        let joined = format!("{whole}{fraction}");
        let significant = joined.trim_start_matches('0');
        let digits = significant.trim_end_matches('0');
        let trailing_zeros = i64::try_from(significant.len() - digits.len()).ok()?;
        Some(Self {
            negative,
            digits: digits.to_owned(),
            exponent: written_exponent - fraction_len + trailing_zeros,
        })
    }

    fn is_zero(&self) -> bool {
        self.digits.is_empty()
    }

    /// Whether the magnitude is above 1, the largest cost.
    fn exceeds_one(&self) -> bool {
        if self.is_zero() {
            return false;
        }
        let Ok(count) = i64::try_from(self.digits.len()) else {
            return true;
        };
        // The leading digit stands at 10^(count - 1 + exponent).
        match (count - 1 + self.exponent).cmp(&0) {
            std::cmp::Ordering::Greater => true,
            std::cmp::Ordering::Less => false,
            std::cmp::Ordering::Equal => self.digits != "1" || self.exponent != 0,
        }
    }

    fn decimal_places(&self) -> i64 {
        (-self.exponent).max(0)
    }

    /// The value as a [`Decimal`], when it fits exactly.
    fn to_decimal(&self) -> Option<Decimal> {
        if self.is_zero() {
            return Some(Decimal::ZERO);
        }
        if self.exponent > 0 {
            return None;
        }
        let scale = u32::try_from(-self.exponent).ok()?;
        let mantissa: i128 = self.digits.parse().ok()?;
        let magnitude = Decimal::try_from_i128_with_scale(mantissa, scale).ok()?;
        Some(if self.negative { -magnitude } else { magnitude })
    }
}

/// Optional per-token prices; `None` is "not set", never zero.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Costs {
    pub input_per_token: Option<Cost>,
    pub output_per_token: Option<Cost>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs_are_exact_and_non_negative() {
        let cost = Cost::parse("cost", "0.0000030").unwrap();
        assert_eq!(cost.to_string(), "0.000003");
        assert_eq!(Cost::parse("cost", "3e-6").unwrap(), cost);
        assert_eq!(
            Cost::parse("cost", "-0.1").unwrap_err().code,
            "cost.negative"
        );
        assert_eq!(Cost::parse("cost", "abc").unwrap_err().code, "cost.invalid");
        assert_eq!(Cost::parse("cost", "3").unwrap_err().code, "cost.too_large");
        let json = serde_json::to_string(&cost).unwrap();
        assert_eq!(json, "\"0.000003\"");
        assert_eq!(
            postcard::from_bytes::<Cost>(&postcard::to_stdvec(&cost).unwrap()).unwrap(),
            cost
        );
    }

    #[test]
    fn costs_are_never_rounded() {
        // Given a cost with exactly 28 decimal places
        let finest = format!("0.{}1", "0".repeat(27));
        // When parsed
        // Then it is kept exactly
        assert_eq!(Cost::parse("cost", &finest).unwrap().to_string(), finest);
        assert_eq!(Cost::parse("cost", "1e-28").unwrap().to_string(), finest);
        // And trailing zeros past 28 places change nothing, so they are fine
        let padded = format!("0.1{}", "0".repeat(40));
        assert_eq!(Cost::parse("cost", &padded).unwrap().to_string(), "0.1");
        // Nor are they for zero
        let zero = format!("0.{}", "0".repeat(40));
        assert!(
            Cost::parse("cost", &zero)
                .unwrap()
                .to_string()
                .starts_with('0')
        );
        // Given costs with a 29th decimal place
        for too_fine in [
            "1e-29".to_owned(),
            format!("0.{}1", "0".repeat(28)),
            format!("0.0000012{}5", "0".repeat(30)),
            "1e-99999999999999999999999".to_owned(),
        ] {
            // When parsed
            let refused = Cost::parse("cost", &too_fine).unwrap_err();
            // Then they are refused, naming the maximum, not rounded (possibly to 0)
            assert_eq!(refused.code, "cost.too_precise", "{too_fine}");
            assert!(
                refused.message.contains("28 decimal places"),
                "{}",
                refused.message
            );
        }
    }

    #[test]
    fn costs_above_one_are_too_large_however_long() {
        // Given values above the 1 USD maximum, some beyond what a Decimal holds
        for too_large in [
            "1.0000000000000000000000000000001".to_owned(),
            "1".repeat(40),
            "1e999999999999999999999".to_owned(),
            "12345.0000000000000000000000000000001".to_owned(),
        ] {
            // When parsed
            let refused = Cost::parse("cost", &too_large).unwrap_err();
            // Then they are too large, and the message names the maximum
            assert_eq!(refused.code, "cost.too_large", "{too_large}");
            assert!(
                refused.message.contains("at most 1 USD"),
                "{}",
                refused.message
            );
        }
        // And 1 itself, however written, is allowed
        for one in ["1", "1.000", "0.1e1", "+1", "100e-2"] {
            assert_eq!(Cost::parse("cost", one).unwrap().to_string(), "1", "{one}");
        }
    }

    #[test]
    fn costs_keep_their_codes_for_negative_zero_and_garbage() {
        assert_eq!(
            Cost::parse("cost", "-1e-40").unwrap_err().code,
            "cost.negative"
        );
        assert_eq!(Cost::parse("cost", "-0").unwrap().to_string(), "0");
        assert_eq!(Cost::parse("cost", "0e999999999").unwrap().to_string(), "0");
        assert_eq!(
            Cost::parse("cost", " 3E-6 ").unwrap().to_string(),
            "0.000003"
        );
        assert_eq!(Cost::parse("cost", ".5").unwrap().to_string(), "0.5");
        for garbage in [
            "", ".", "e5", "1e", "1e+", "1.2.3", "--1", "1 0", "NaN", "inf", "0x1", "1_0",
        ] {
            assert_eq!(
                Cost::parse("cost", garbage).unwrap_err().code,
                "cost.invalid",
                "{garbage:?}"
            );
        }
    }
}
