//! The platform catalog: models every org may use through the platform's OpenRouter key, as
//! one event-sourced aggregate (`reg._platform.catalog.platform`). Seeded once from the
//! shipped `schemas/catalog/platform.json`; changed by syncs from OpenRouter's models API and
//! by the operator (list a proposed model, retire, override a fact, change the default).
//!
//! Facts carry their provenance (source and date); a fact no source gave stays unknown (absent
//! from the map), never invented. An operator's override, with its reason, wins over the
//! synced fact and survives later syncs.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Invalid;
use crate::values::{Cost, ReasoningParam};
use crate::workflow::{Refusal, Wanted};

mod facts;
mod gating;
mod shipped;
mod sweep;

#[cfg(test)]
use facts::sourced;
pub use facts::*;
pub use gating::*;
pub use shipped::*;
pub use sweep::sweeping;

/// The catalog's aggregate id: the last token of its subject.
pub const AGGREGATE_ID: &str = "platform";

/// The source a retirement by expiration date between syncs is recorded under.
pub const EXPIRY_SOURCE: &str = "expiration dates (checked between syncs)";

/// Where the shipped catalog's facts come from.
pub const SHIPPED_SOURCE: &str = "shipped catalog (schemas/catalog/platform.json)";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Status {
    Listed,
    /// Retired by the operator, or because its upstream expiration date passed.
    Retired {
        reason: String,
    },
}

/// One model of the catalog.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub id: String,
    pub display_name: String,
    /// The facts the seed and syncs recorded.
    pub facts: BTreeMap<FactName, Sourced>,
    pub overrides: BTreeMap<FactName, Override>,
    pub status: Status,
    /// Set while the last sync did not find the model upstream: the day it went missing.
    pub missing_upstream_since: Option<Day>,
}

/// A fact as the catalog answers it: the override if there is one, else the synced fact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effective<'a> {
    Synced(&'a Sourced),
    Overridden(&'a Override),
}

impl Effective<'_> {
    pub fn value(&self) -> &FactValue {
        match self {
            Self::Synced(fact) => &fact.value,
            Self::Overridden(fact) => &fact.value,
        }
    }
}

impl Entry {
    pub fn fact(&self, name: FactName) -> Option<Effective<'_>> {
        if let Some(fact) = self.overrides.get(&name) {
            return Some(Effective::Overridden(fact));
        }
        self.facts.get(&name).map(Effective::Synced)
    }

    pub fn value(&self, name: FactName) -> Option<&FactValue> {
        if let Some(fact) = self.overrides.get(&name) {
            return Some(&fact.value);
        }
        self.facts.get(&name).map(|f| &f.value)
    }

    pub fn flag(&self, name: FactName) -> Option<bool> {
        match self.value(name) {
            Some(FactValue::Flag(flag)) => Some(*flag),
            _ => None,
        }
    }

    /// `Some(None)`: known not to reason; `None`: unknown.
    pub fn reasoning(&self) -> Option<Option<ReasoningParam>> {
        match self.value(FactName::Reasoning) {
            Some(FactValue::Reasoning(param)) => Some(*param),
            _ => None,
        }
    }

    pub fn tokens(&self, name: FactName) -> Option<u32> {
        match self.value(name) {
            Some(FactValue::Tokens(tokens)) => Some(*tokens),
            _ => None,
        }
    }

    pub fn cost(&self, name: FactName) -> Option<Cost> {
        match self.value(name) {
            Some(FactValue::Cost(cost)) => Some(*cost),
            _ => None,
        }
    }

    pub fn expiration(&self) -> Option<&Day> {
        match self.value(FactName::ExpirationDate) {
            Some(FactValue::Date(day)) => Some(day),
            _ => None,
        }
    }

    /// Why the model cannot be used on `today`: retired by the operator, or its upstream
    /// expiration date has come (retired or not yet recorded so by a sync).
    pub fn retired(&self, today: &Day) -> Option<String> {
        if let Status::Retired { reason } = &self.status {
            return Some(reason.clone());
        }
        self.expiration()
            .filter(|day| *day <= today)
            .map(expired_reason)
    }

    /// The facts no source gave.
    pub fn unknown(&self) -> Vec<FactName> {
        FactName::ALL
            .into_iter()
            .filter(|name| *name != FactName::ExpirationDate && self.value(*name).is_none())
            .collect()
    }
}

fn expired_reason(day: &Day) -> String {
    format!("its upstream expiration date {day} has passed")
}

/// The catalog's state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalog {
    /// The platform-wide default model.
    pub default: String,
    pub models: BTreeMap<String, Entry>,
    /// Models a sync found upstream that are not listed: `catalog add ID` lists one.
    pub proposed: BTreeMap<String, Listing>,
}

impl Catalog {
    /// A listed model (retired ones included).
    pub fn find(&self, id: &str) -> Option<&Entry> {
        self.models.get(id)
    }
}

pub enum Command {
    /// Seed the catalog from the shipped file on first start; nothing if it exists.
    Seed {
        default: String,
        models: Vec<Upstream>,
        as_of: Day,
    },
    /// Record what a source says now: changed facts, new models (proposed, or listed when
    /// their vendor is in `auto_list`), models gone missing upstream or back, and listed
    /// models whose expiration date came.
    Sync {
        source: String,
        as_of: Day,
        upstream: Vec<Upstream>,
        /// Vendors (the part of an id before `/`) whose new models are listed at once.
        auto_list: Vec<String>,
    },
    /// Retire the listed models whose expiration date has come by `as_of`, between syncs.
    ExpireDue {
        as_of: Day,
    },
    /// List a proposed model.
    List {
        id: String,
    },
    Retire {
        id: String,
        reason: String,
    },
    SetDefault {
        id: String,
    },
    /// Put a retired model back in service (a retirement by mistake, or by an upstream
    /// expiration date that was wrong: override it first). Nothing for a listed model.
    Reinstate {
        id: String,
        reason: String,
        as_of: Day,
    },
    /// Set an operator's value for a fact (`value: None` clears the override).
    Override {
        id: String,
        fact: FactName,
        value: Option<FactValue>,
        reason: String,
        as_of: Day,
    },
}

/// Architecture invariant: variants and fields are only ever appended; golden files in
/// `schemas/events/` hold every variant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    /// The shipped catalog, recorded on first start.
    Seeded {
        default: String,
        models: Vec<Listing>,
    },
    /// A sync that found something new.
    Synced(Synced),
    /// A proposed model the operator put on the catalog.
    Listed(Listing),
    Retired {
        id: String,
        reason: String,
    },
    DefaultChanged {
        id: String,
    },
    OverrideSet {
        id: String,
        fact: FactName,
        /// `None`: the override is cleared and the synced fact applies again.
        value: Option<FactValue>,
        reason: String,
        as_of: Day,
    },
    /// A retired model back in service, by the operator.
    Reinstated {
        id: String,
        reason: String,
    },
}

/// What a sync found, which is also the diff shown before applying it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Synced {
    pub source: String,
    pub as_of: Day,
    pub changed: Vec<FactChange>,
    /// New upstream models, proposed for listing.
    pub proposed: Vec<Listing>,
    /// New upstream models listed by the operator's rule (their vendor is auto-listed).
    pub listed: Vec<Listing>,
    /// Listed models the upstream no longer lists.
    pub disappeared: Vec<String>,
    /// Listed models missing before that the upstream lists again.
    pub reappeared: Vec<String>,
    /// Listed models whose expiration date has come: retired by this sync.
    pub expired: Vec<String>,
}

impl Synced {
    pub fn is_empty(&self) -> bool {
        self.changed.is_empty()
            && self.proposed.is_empty()
            && self.listed.is_empty()
            && self.disappeared.is_empty()
            && self.reappeared.is_empty()
            && self.expired.is_empty()
    }
}

/// One fact of one listed model that a sync changed (`None`: unknown).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FactChange {
    pub id: String,
    pub fact: FactName,
    pub before: Option<FactValue>,
    pub after: Option<FactValue>,
    /// An operator's override hides the change: the model keeps the overridden value.
    pub overridden: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("the catalog has not been seeded")]
    NotSeeded,
    #[error("no listed platform model has this id")]
    NotListed,
    #[error("the model is already listed")]
    AlreadyListed,
    #[error("no sync has proposed a model with this id; run a sync first")]
    NotProposed,
    #[error("the model is retired")]
    Retired,
    #[error("the platform default cannot be retired; choose another default first")]
    RetiringDefault,
    #[error("the model's expiration date has passed; override its expiration_date first")]
    StillExpired,
    #[error("{0}")]
    Invalid(Invalid),
}

impl From<Invalid> for Rejection {
    fn from(invalid: Invalid) -> Self {
        Self::Invalid(invalid)
    }
}

/// Decides what a command means for the catalog in `state`. Seeding an existing catalog, a
/// sync that finds nothing new, retiring a retired model, choosing the default again or
/// setting an override to its value yield no event.
pub fn decide(state: Option<&Catalog>, command: Command) -> Result<Vec<Event>, Rejection> {
    let Some(catalog) = state else {
        let Command::Seed {
            default,
            models,
            as_of,
        } = command
        else {
            return Err(Rejection::NotSeeded);
        };
        let models = models
            .iter()
            .map(|m| Listing::from_upstream(m, SHIPPED_SOURCE, &as_of))
            .collect();
        return Ok(vec![Event::Seeded { default, models }]);
    };
    match command {
        Command::Seed { .. } => Ok(Vec::new()),
        Command::Sync {
            source,
            as_of,
            upstream,
            auto_list,
        } => {
            let synced = diff(catalog, &source, &as_of, &upstream, &auto_list);
            if synced.is_empty() {
                return Ok(Vec::new());
            }
            Ok(vec![Event::Synced(synced)])
        }
        Command::ExpireDue { as_of } => {
            let expired: Vec<String> = catalog
                .models
                .values()
                .filter(|entry| entry.status == Status::Listed)
                .filter(|entry| entry.expiration().is_some_and(|day| *day <= as_of))
                .map(|entry| entry.id.clone())
                .collect();
            if expired.is_empty() {
                return Ok(Vec::new());
            }
            Ok(vec![Event::Synced(Synced {
                source: EXPIRY_SOURCE.into(),
                as_of,
                changed: Vec::new(),
                proposed: Vec::new(),
                listed: Vec::new(),
                disappeared: Vec::new(),
                reappeared: Vec::new(),
                expired,
            })])
        }
        Command::List { id } => {
            if catalog.models.contains_key(&id) {
                return Err(Rejection::AlreadyListed);
            }
            let listing = catalog
                .proposed
                .get(&id)
                .ok_or(Rejection::NotProposed)?
                .clone();
            Ok(vec![Event::Listed(listing)])
        }
        Command::Retire { id, reason } => {
            let entry = catalog.models.get(&id).ok_or(Rejection::NotListed)?;
            if matches!(entry.status, Status::Retired { .. }) {
                return Ok(Vec::new());
            }
            if catalog.default == id {
                return Err(Rejection::RetiringDefault);
            }
            let reason = check_reason(&reason)?;
            Ok(vec![Event::Retired { id, reason }])
        }
        Command::SetDefault { id } => {
            let entry = catalog.models.get(&id).ok_or(Rejection::NotListed)?;
            if matches!(entry.status, Status::Retired { .. }) {
                return Err(Rejection::Retired);
            }
            if catalog.default == id {
                return Ok(Vec::new());
            }
            Ok(vec![Event::DefaultChanged { id }])
        }
        Command::Reinstate { id, reason, as_of } => {
            let entry = catalog.models.get(&id).ok_or(Rejection::NotListed)?;
            if entry.status == Status::Listed {
                return Ok(Vec::new());
            }
            if entry.expiration().is_some_and(|day| *day <= as_of) {
                return Err(Rejection::StillExpired);
            }
            let reason = check_reason(&reason)?;
            Ok(vec![Event::Reinstated { id, reason }])
        }
        Command::Override {
            id,
            fact,
            value,
            reason,
            as_of,
        } => {
            let entry = catalog.models.get(&id).ok_or(Rejection::NotListed)?;
            if let Some(value) = &value
                && !fact.accepts(value)
            {
                return Err(Rejection::Invalid(Invalid::new(
                    "value",
                    "fact.invalid_value",
                    format!("the value is not a {fact} value"),
                )));
            }
            let reason = check_reason(&reason)?;
            let current = entry.overrides.get(&fact).map(|o| &o.value);
            if current == value.as_ref() {
                return Ok(Vec::new());
            }
            Ok(vec![Event::OverrideSet {
                id,
                fact,
                value,
                reason,
                as_of,
            }])
        }
    }
}

fn check_reason(reason: &str) -> Result<String, Invalid> {
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 || reason.chars().any(char::is_control) {
        return Err(Invalid::new(
            "reason",
            "reason.invalid",
            "give a reason of 1 to 500 characters with no control characters",
        ));
    }
    Ok(reason.to_owned())
}

/// What `upstream`, read from `source` on `as_of`, changes in `catalog`. Facts are compared
/// with what the seed and earlier syncs recorded (not with overrides, which the change does
/// not touch); a model already proposed is not proposed again; a new model of a vendor in
/// `auto_list` is listed (a proposed one too).
pub fn diff(
    catalog: &Catalog,
    source: &str,
    as_of: &Day,
    upstream: &[Upstream],
    auto_list: &[String],
) -> Synced {
    let mut synced = Synced {
        source: source.to_owned(),
        as_of: as_of.clone(),
        changed: Vec::new(),
        proposed: Vec::new(),
        listed: Vec::new(),
        disappeared: Vec::new(),
        reappeared: Vec::new(),
        expired: Vec::new(),
    };
    let by_id: BTreeMap<&str, &Upstream> = upstream.iter().map(|u| (u.id.as_str(), u)).collect();
    for (id, entry) in &catalog.models {
        let Some(found) = by_id.get(id.as_str()) else {
            if entry.missing_upstream_since.is_none() {
                synced.disappeared.push(id.clone());
            }
            continue;
        };
        if entry.missing_upstream_since.is_some() {
            synced.reappeared.push(id.clone());
        }
        for fact in FactName::ALL {
            let before = entry.facts.get(&fact).map(|f| &f.value);
            let after = found.facts.get(&fact);
            if before != after {
                synced.changed.push(FactChange {
                    id: id.clone(),
                    fact,
                    before: before.cloned(),
                    after: after.cloned(),
                    overridden: entry.overrides.contains_key(&fact),
                });
            }
        }
        // The expiration date as it will stand after this sync.
        let expires = match entry.overrides.get(&FactName::ExpirationDate) {
            Some(o) => Some(&o.value),
            None => found.facts.get(&FactName::ExpirationDate),
        };
        if entry.status == Status::Listed
            && matches!(expires, Some(FactValue::Date(day)) if day <= as_of)
        {
            synced.expired.push(id.clone());
        }
    }
    for found in upstream {
        if catalog.models.contains_key(&found.id) {
            continue;
        }
        let vendor = found.id.split_once('/').map_or("", |(vendor, _)| vendor);
        if auto_list.iter().any(|v| v == vendor) {
            synced
                .listed
                .push(Listing::from_upstream(found, source, as_of));
        } else if !catalog.proposed.contains_key(&found.id) {
            synced
                .proposed
                .push(Listing::from_upstream(found, source, as_of));
        }
    }
    synced
}

pub fn evolve(state: Option<Catalog>, event: &Event) -> Option<Catalog> {
    match (state, event) {
        (_, Event::Seeded { default, models }) => Some(Catalog {
            default: default.clone(),
            models: models
                .iter()
                .map(|listing| (listing.id.clone(), entry(listing)))
                .collect(),
            proposed: BTreeMap::new(),
        }),
        (None, _) => None,
        (Some(mut catalog), Event::Synced(synced)) => {
            let as_of = &synced.as_of;
            for change in &synced.changed {
                let Some(entry) = catalog.models.get_mut(&change.id) else {
                    continue;
                };
                match &change.after {
                    Some(value) => {
                        let fact = Sourced {
                            value: value.clone(),
                            source: synced.source.clone(),
                            as_of: as_of.clone(),
                        };
                        entry.facts.insert(change.fact, fact);
                    }
                    None => {
                        entry.facts.remove(&change.fact);
                    }
                }
            }
            for listing in &synced.proposed {
                catalog.proposed.insert(listing.id.clone(), listing.clone());
            }
            for listing in &synced.listed {
                catalog.proposed.remove(&listing.id);
                catalog.models.insert(listing.id.clone(), entry(listing));
            }
            for id in &synced.disappeared {
                if let Some(entry) = catalog.models.get_mut(id) {
                    entry.missing_upstream_since = Some(as_of.clone());
                }
            }
            for id in &synced.reappeared {
                if let Some(entry) = catalog.models.get_mut(id) {
                    entry.missing_upstream_since = None;
                }
            }
            for id in &synced.expired {
                if let Some(entry) = catalog.models.get_mut(id) {
                    let reason = entry.expiration().map_or_else(
                        || "its upstream expiration date has passed".into(),
                        expired_reason,
                    );
                    entry.status = Status::Retired { reason };
                }
            }
            Some(catalog)
        }
        (Some(mut catalog), Event::Listed(listing)) => {
            catalog.proposed.remove(&listing.id);
            catalog.models.insert(listing.id.clone(), entry(listing));
            Some(catalog)
        }
        (Some(mut catalog), Event::Retired { id, reason }) => {
            if let Some(entry) = catalog.models.get_mut(id) {
                entry.status = Status::Retired {
                    reason: reason.clone(),
                };
            }
            Some(catalog)
        }
        (Some(mut catalog), Event::DefaultChanged { id }) => {
            catalog.default = id.clone();
            Some(catalog)
        }
        (Some(mut catalog), Event::Reinstated { id, .. }) => {
            if let Some(entry) = catalog.models.get_mut(id) {
                entry.status = Status::Listed;
            }
            Some(catalog)
        }
        (
            Some(mut catalog),
            Event::OverrideSet {
                id,
                fact,
                value,
                reason,
                as_of,
            },
        ) => {
            if let Some(entry) = catalog.models.get_mut(id) {
                match value {
                    Some(value) => {
                        let set = Override {
                            value: value.clone(),
                            reason: reason.clone(),
                            as_of: as_of.clone(),
                        };
                        entry.overrides.insert(*fact, set);
                    }
                    None => {
                        entry.overrides.remove(fact);
                    }
                }
            }
            Some(catalog)
        }
    }
}

fn entry(listing: &Listing) -> Entry {
    Entry {
        id: listing.id.clone(),
        display_name: listing.display_name.clone(),
        facts: listing.facts.clone(),
        overrides: BTreeMap::new(),
        status: Status::Listed,
        missing_upstream_since: None,
    }
}

crate::aggregate::aggregate!(Catalog, CATALOG, Catalog);

/// The models a retiring event takes out of service.
pub fn retired_by(event: &Event) -> Vec<String> {
    match event {
        Event::Retired { id, .. } => vec![id.clone()],
        Event::Synced(synced) => synced.expired.clone(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::given;

    fn day(raw: &str) -> Day {
        Day::parse(raw).unwrap()
    }

    fn seeded() -> Vec<Event> {
        let shipped = shipped();
        decide(
            None,
            Command::Seed {
                default: shipped.default,
                models: shipped.models,
                as_of: day("2026-01-01"),
            },
        )
        .unwrap()
    }

    fn upstream(id: &str, facts: &[(FactName, FactValue)]) -> Upstream {
        Upstream {
            id: id.into(),
            name: id.into(),
            facts: facts.iter().cloned().collect(),
        }
    }

    fn sync(state: &Catalog, upstream: Vec<Upstream>, on: &str) -> Vec<Event> {
        decide(
            Some(state),
            Command::Sync {
                source: "openrouter".into(),
                as_of: day(on),
                upstream,
                auto_list: Vec::new(),
            },
        )
        .unwrap()
    }

    fn all_listed(state: &Catalog, extra: &[(FactName, FactValue)]) -> Vec<Upstream> {
        state.models.keys().map(|id| upstream(id, extra)).collect()
    }

    #[test]
    fn the_shipped_file_seeds_ten_models_with_unknown_facts_and_the_default() {
        let shipped = shipped();
        assert_eq!(shipped.models.len(), 10);
        assert_eq!(shipped.default, "google/gemini-3.1-pro-preview");
        let catalog = given::<Catalog>(&seeded()).unwrap();
        assert!(catalog.find(&catalog.default).is_some());
        assert_eq!(
            catalog.find("x-ai/grok-4.3").unwrap().display_name,
            "Grok 4.3"
        );
        // No primary source gives these facts: unknown, never invented.
        assert!(catalog.models.values().all(|m| m.facts.is_empty()));
        // Seeding again records nothing.
        let again = decide(
            Some(&catalog),
            Command::Seed {
                default: "x".into(),
                models: Vec::new(),
                as_of: day("2026-01-02"),
            },
        );
        assert!(again.unwrap().is_empty());
    }

    #[test]
    fn a_sync_records_changes_once_and_an_unchanged_sync_nothing() {
        let mut events = seeded();
        let catalog = given::<Catalog>(&events).unwrap();
        let tools = [(FactName::ToolUse, FactValue::Flag(true))];
        let mut upstream_now = all_listed(&catalog, &tools);
        upstream_now.push(upstream("new/model", &[]));
        // When the first sync runs
        let first = sync(&catalog, upstream_now.clone(), "2026-02-01");
        let Event::Synced(synced) = &first[0] else {
            panic!("a sync event")
        };
        // Then every listed model gains the fact, and the new model is proposed, not listed
        assert_eq!(synced.changed.len(), 10);
        assert_eq!(synced.proposed.len(), 1);
        events.extend(first);
        let catalog = given::<Catalog>(&events).unwrap();
        let gemini = catalog.find("google/gemini-3.1-pro-preview").unwrap();
        assert_eq!(gemini.flag(FactName::ToolUse), Some(true));
        assert_eq!(gemini.facts[&FactName::ToolUse].as_of, day("2026-02-01"));
        assert!(catalog.find("new/model").is_none());
        // And the same again records nothing
        assert!(sync(&catalog, upstream_now, "2026-02-02").is_empty());
    }

    #[test]
    fn new_models_of_an_auto_listed_vendor_are_listed_the_rest_proposed() {
        let mut events = seeded();
        let catalog = given::<Catalog>(&events).unwrap();
        let mut upstream_now = all_listed(&catalog, &[]);
        upstream_now.push(upstream("mistralai/large", &[]));
        upstream_now.push(upstream("qwen/max", &[]));
        let synced = decide(
            Some(&catalog),
            Command::Sync {
                source: "openrouter".into(),
                as_of: day("2026-02-01"),
                upstream: upstream_now,
                auto_list: vec!["mistralai".into()],
            },
        )
        .unwrap();
        events.extend(synced);
        let catalog = given::<Catalog>(&events).unwrap();
        assert!(catalog.find("mistralai/large").is_some());
        assert!(catalog.find("qwen/max").is_none());
        assert!(catalog.proposed.contains_key("qwen/max"));
    }

    #[test]
    fn an_override_survives_a_sync_and_a_missing_model_is_noticed() {
        let mut events = seeded();
        let catalog = given::<Catalog>(&events).unwrap();
        let overridden = decide(
            Some(&catalog),
            Command::Override {
                id: "x-ai/grok-4.3".into(),
                fact: FactName::ToolUse,
                value: Some(FactValue::Flag(false)),
                reason: "broken upstream".into(),
                as_of: day("2026-01-05"),
            },
        )
        .unwrap();
        events.extend(overridden);
        let catalog = given::<Catalog>(&events).unwrap();
        let mut upstream_now = all_listed(&catalog, &[(FactName::ToolUse, FactValue::Flag(true))]);
        upstream_now.retain(|u| u.id != "openai/gpt-5.5");
        let synced = sync(&catalog, upstream_now, "2026-02-01");
        let Event::Synced(diff) = &synced[0] else {
            panic!("a sync event")
        };
        assert_eq!(diff.disappeared, vec!["openai/gpt-5.5".to_owned()]);
        assert!(
            diff.changed
                .iter()
                .any(|c| c.id == "x-ai/grok-4.3" && c.overridden)
        );
        events.extend(synced);
        let catalog = given::<Catalog>(&events).unwrap();
        assert_eq!(
            catalog
                .find("x-ai/grok-4.3")
                .unwrap()
                .flag(FactName::ToolUse),
            Some(false)
        );
        assert!(
            catalog
                .find("openai/gpt-5.5")
                .unwrap()
                .missing_upstream_since
                .is_some()
        );
        // An override needs a reason and a value of the fact's kind.
        let bad = decide(
            Some(&catalog),
            Command::Override {
                id: "x-ai/grok-4.3".into(),
                fact: FactName::ToolUse,
                value: Some(FactValue::Tokens(3)),
                reason: "x".into(),
                as_of: day("2026-01-05"),
            },
        );
        assert!(matches!(bad, Err(Rejection::Invalid(_))));
    }

    #[test]
    fn a_sync_that_clears_or_loses_most_models_is_sweeping() {
        let mut events = seeded();
        let catalog = given::<Catalog>(&events).unwrap();
        let ids: Vec<String> = catalog.models.keys().cloned().collect();
        let known = all_listed(&catalog, &[(FactName::ToolUse, FactValue::Flag(true))]);
        let first = diff(&catalog, "openrouter", &day("2026-01-02"), &known, &[]);
        assert_eq!(
            sweeping(&catalog, &first),
            None,
            "learning facts is not sweeping"
        );
        events.push(Event::Synced(first));
        let catalog = given::<Catalog>(&events).unwrap();
        let on = day("2026-01-03");
        let sweeps = |upstream: &[Upstream]| {
            sweeping(&catalog, &diff(&catalog, "openrouter", &on, upstream, &[]))
        };
        // The answer's shape changed: every model is there, with no facts.
        let bare = all_listed(&catalog, &[]);
        assert!(sweeps(&bare).is_some_and(|why| why.contains("10 of the 10")));
        // An empty answer.
        assert!(sweeps(&[]).is_some_and(|why| why.contains("gone upstream")));
        // One model lost a fact: an ordinary sync.
        let mut one = known.clone();
        one[0] = upstream(&ids[0], &[]);
        assert_eq!(sweeps(&one), None);
    }

    /// A retirement is undone by the operator; one by an expiration date only once an
    /// override moved the date, or the next expiry check would retire it again.
    #[test]
    fn a_retired_model_is_reinstated_once_its_date_allows() {
        let mut events = seeded();
        let catalog = given::<Catalog>(&events).unwrap();
        let id = "x-ai/grok-4.3";
        let reinstate = |on: &str| Command::Reinstate {
            id: id.into(),
            reason: "retired by mistake".into(),
            as_of: day(on),
        };
        assert!(
            decide(Some(&catalog), reinstate("2026-03-01"))
                .unwrap()
                .is_empty()
        );
        events.extend(sync(
            &catalog,
            vec![upstream(
                id,
                &[(FactName::ExpirationDate, FactValue::Date(day("2026-02-15")))],
            )],
            "2026-02-16",
        ));
        let catalog = given::<Catalog>(&events).unwrap();
        assert!(
            catalog
                .find(id)
                .unwrap()
                .retired(&day("2026-02-16"))
                .is_some()
        );
        assert_eq!(
            decide(Some(&catalog), reinstate("2026-02-16")).unwrap_err(),
            Rejection::StillExpired
        );
        let later = Command::Override {
            id: id.into(),
            fact: FactName::ExpirationDate,
            value: Some(FactValue::Date(day("2027-01-01"))),
            reason: "the upstream date was wrong".into(),
            as_of: day("2026-02-16"),
        };
        events.extend(decide(Some(&catalog), later).unwrap());
        let catalog = given::<Catalog>(&events).unwrap();
        let reinstated = decide(Some(&catalog), reinstate("2026-02-16")).unwrap();
        assert!(matches!(&reinstated[..], [Event::Reinstated { .. }]));
        events.extend(reinstated);
        let catalog = given::<Catalog>(&events).unwrap();
        assert_eq!(catalog.find(id).unwrap().retired(&day("2026-02-16")), None);
        let due = decide(
            Some(&catalog),
            Command::ExpireDue {
                as_of: day("2026-02-17"),
            },
        );
        assert!(due.unwrap().is_empty(), "the override keeps it in service");
    }

    #[test]
    fn retirement_expiry_default_and_listing_follow_the_rules() {
        let mut events = seeded();
        let catalog = given::<Catalog>(&events).unwrap();
        let retire = |id: &str| Command::Retire {
            id: id.into(),
            reason: "superseded".into(),
        };
        assert_eq!(
            decide(Some(&catalog), retire("google/gemini-3.1-pro-preview")).unwrap_err(),
            Rejection::RetiringDefault
        );
        assert_eq!(
            decide(Some(&catalog), retire("nope/x")).unwrap_err(),
            Rejection::NotListed
        );
        events.extend(decide(Some(&catalog), retire("x-ai/grok-4.3")).unwrap());
        let catalog = given::<Catalog>(&events).unwrap();
        let today = day("2026-03-01");
        assert!(
            catalog
                .find("x-ai/grok-4.3")
                .unwrap()
                .retired(&today)
                .is_some()
        );
        assert_eq!(
            decide(
                Some(&catalog),
                Command::SetDefault {
                    id: "x-ai/grok-4.3".into()
                }
            )
            .unwrap_err(),
            Rejection::Retired
        );
        // An expiration date that has come retires the model in the sync that sees it.
        let expiring = FactValue::Date(day("2026-02-15"));
        let upstream_now: Vec<Upstream> = catalog
            .models
            .keys()
            .map(|id| {
                if id == "openai/gpt-5.4" {
                    upstream(id, &[(FactName::ExpirationDate, expiring.clone())])
                } else {
                    upstream(id, &[])
                }
            })
            .collect();
        let synced = sync(&catalog, upstream_now, "2026-03-01");
        let Event::Synced(diff) = &synced[0] else {
            panic!("a sync event")
        };
        assert_eq!(diff.expired, vec!["openai/gpt-5.4".to_owned()]);
        assert_eq!(retired_by(&synced[0]), vec!["openai/gpt-5.4".to_owned()]);
        // Between syncs, a known expiration date that comes retires the model too.
        let mut with_date = seeded();
        let catalog = given::<Catalog>(&with_date).unwrap();
        with_date.extend(sync(
            &catalog,
            catalog
                .models
                .keys()
                .map(|id| upstream(id, &[(FactName::ExpirationDate, expiring.clone())]))
                .collect(),
            "2026-02-01",
        ));
        let catalog = given::<Catalog>(&with_date).unwrap();
        let due = |on: &str| decide(Some(&catalog), Command::ExpireDue { as_of: day(on) }).unwrap();
        assert!(due("2026-02-14").is_empty());
        assert_eq!(retired_by(&due("2026-02-15")[0]).len(), 10);
        // A model no sync proposed cannot be listed.
        assert_eq!(
            decide(Some(&catalog), Command::List { id: "a/b".into() }).unwrap_err(),
            Rejection::NotProposed
        );
    }

    #[test]
    fn gating_refuses_what_facts_deny_and_names_what_they_do_not_know() {
        let mut entry = entry(&Listing {
            id: "a/b".into(),
            display_name: "B".into(),
            facts: sourced(
                &[
                    (FactName::ToolUse, FactValue::Flag(true)),
                    (FactName::Vision, FactValue::Flag(false)),
                    (
                        FactName::Reasoning,
                        FactValue::Reasoning(Some(ReasoningParam::Effort)),
                    ),
                    (FactName::MaxCompletionTokens, FactValue::Tokens(1000)),
                ]
                .into_iter()
                .collect(),
                "test",
                &day("2026-01-01"),
            ),
        });
        let wanted = Wanted {
            tools: true,
            json_mode: true,
            image_input: true,
            reasoning_effort: true,
            reasoning_budget: true,
            max_tokens: Some(2000),
        };
        let (refused, unknown) = check(&entry, &wanted);
        let features: Vec<&str> = refused.iter().map(|r| r.feature).collect();
        assert_eq!(features, ["image_input", "reasoning_budget", "max_tokens"]);
        assert_eq!(unknown, ["json_mode"]);
        entry.status = Status::Retired { reason: "r".into() };
        assert!(entry.retired(&day("2020-01-01")).is_some());
    }

    #[test]
    fn an_org_default_that_cannot_serve_falls_back_to_the_platform_default_and_says_so() {
        let mut events = seeded();
        let catalog = given::<Catalog>(&events).unwrap();
        events.extend(
            decide(
                Some(&catalog),
                Command::Retire {
                    id: "x-ai/grok-4.3".into(),
                    reason: "gone".into(),
                },
            )
            .unwrap(),
        );
        let catalog = given::<Catalog>(&events).unwrap();
        let today = day("2026-01-10");
        let chosen = default_for(&catalog, Some("openai/gpt-5.4"), &[], &today);
        assert!(chosen.chosen_by_org);
        let fallen = default_for(&catalog, Some("x-ai/grok-4.3"), &[], &today);
        assert_eq!(fallen.model, "google/gemini-3.1-pro-preview");
        assert!(fallen.fallback.unwrap().contains("retired"));
    }

    #[test]
    fn days_parse_and_come_from_the_clock() {
        assert_eq!(Day::from_unix_ms(0).as_str(), "1970-01-01");
        assert_eq!(Day::from_unix_ms(1_772_323_200_000).as_str(), "2026-03-01");
        assert_eq!(day("2026-03-01T10:00:00Z").as_str(), "2026-03-01");
        assert!(Day::parse("2026-13-01").is_err());
        assert!(Day::parse("soon").is_err());
        assert_eq!(
            FactName::InputCost
                .parse_value("0.000003")
                .unwrap()
                .to_string(),
            "0.000003"
        );
        assert!(FactName::ToolUse.parse_value("yes").is_err());
    }
}
