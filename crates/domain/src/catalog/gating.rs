//! What the facts allow: capability gating of a platform model, whether an org may use it,
//! and which default an org gets.

use super::*;

/// Capability gating for a platform model: refusals where a fact says no, and the wanted
/// features no fact speaks of (unknown, never guessed).
pub fn check(entry: &Entry, wanted: &Wanted) -> (Vec<Refusal>, Vec<&'static str>) {
    let mut refused = Vec::new();
    let mut unknown = Vec::new();
    for (feature, want, fact, what) in [
        ("tools", wanted.tools, FactName::ToolUse, "tool calling"),
        (
            "json_mode",
            wanted.json_mode,
            FactName::JsonMode,
            "JSON output",
        ),
        (
            "image_input",
            wanted.image_input,
            FactName::Vision,
            "image input",
        ),
    ] {
        match (want, entry.flag(fact)) {
            (false, _) | (true, Some(true)) => {}
            (true, None) => unknown.push(feature),
            (true, Some(false)) => refused.push(Refusal {
                feature,
                reason: format!(
                    "{what} is unavailable: the catalog says this model does not support it"
                ),
            }),
        }
    }
    let reasoning = entry.reasoning();
    for (feature, want, shape) in [
        (
            "reasoning_effort",
            wanted.reasoning_effort,
            ReasoningParam::Effort,
        ),
        (
            "reasoning_budget",
            wanted.reasoning_budget,
            ReasoningParam::MaxTokens,
        ),
    ] {
        if !want {
            continue;
        }
        match reasoning {
            None => unknown.push(feature),
            Some(None) => refused.push(Refusal {
                feature,
                reason: "the catalog says this model does not reason".into(),
            }),
            Some(Some(param)) if param != shape => refused.push(Refusal {
                feature,
                reason: format!("the model takes reasoning as {}", param.as_str()),
            }),
            Some(Some(_)) => {}
        }
    }
    if let Some(wanted_tokens) = wanted.max_tokens {
        match entry.tokens(FactName::MaxCompletionTokens) {
            None => unknown.push("max_tokens"),
            Some(limit) if wanted_tokens > u64::from(limit) => refused.push(Refusal {
                feature: "max_tokens",
                reason: format!("the model allows at most {limit} output tokens"),
            }),
            Some(_) => {}
        }
    }
    (refused, unknown)
}

/// What the facts refuse of a workflow step's features (an unknown fact warns of nothing).
pub fn step_refusals(entry: &Entry, features: &crate::workflow::Features) -> Vec<Refusal> {
    let wanted = Wanted {
        tools: features.tools,
        json_mode: features.json_output,
        image_input: features.vision_input,
        reasoning_effort: false,
        reasoning_budget: false,
        max_tokens: None,
    };
    let (mut refused, _) = check(entry, &wanted);
    if features.reasoning && entry.reasoning() == Some(None) {
        refused.push(Refusal {
            feature: "reasoning",
            reason: "the step uses reasoning but the catalog says this model does not reason"
                .into(),
        });
    }
    refused
}

/// Why an org cannot use a listed platform model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unusable {
    /// Retired by the operator, or its upstream expiration date has come: the reason.
    Retired(String),
    /// The org hides it.
    Hidden,
}

/// Whether an org that hides `hidden` may use `entry` on `today`. Retirement comes first: a
/// retired model is gone for everyone, hidden or not.
pub fn usable_by(entry: &Entry, hidden: &[String], today: &Day) -> Result<(), Unusable> {
    if let Some(reason) = entry.retired(today) {
        return Err(Unusable::Retired(reason));
    }
    if hidden.contains(&entry.id) {
        return Err(Unusable::Hidden);
    }
    Ok(())
}

/// Which default an org gets: its own choice while that is listed, usable and not hidden,
/// else the platform's, saying why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DefaultChoice {
    pub model: String,
    pub chosen_by_org: bool,
    /// Why the org's choice is not used, when it is not.
    pub fallback: Option<String>,
}

pub fn default_for(
    catalog: &Catalog,
    org_choice: Option<&str>,
    hidden: &[String],
    today: &Day,
) -> DefaultChoice {
    let platform = || catalog.default.clone();
    let Some(choice) = org_choice else {
        return DefaultChoice {
            model: platform(),
            chosen_by_org: false,
            fallback: None,
        };
    };
    let why_not = match catalog.find(choice) {
        None => Some("is no longer in the platform catalog".to_owned()),
        Some(entry) => entry
            .retired(today)
            .map(|reason| format!("is retired ({reason})")),
    }
    .or_else(|| {
        hidden
            .iter()
            .any(|h| h == choice)
            .then(|| "is hidden for this org".to_owned())
    });
    match why_not {
        None => DefaultChoice {
            model: choice.to_owned(),
            chosen_by_org: true,
            fallback: None,
        },
        Some(why) => DefaultChoice {
            model: platform(),
            chosen_by_org: false,
            fallback: Some(format!(
                "the org's default {choice} {why}; the platform default applies"
            )),
        },
    }
}
