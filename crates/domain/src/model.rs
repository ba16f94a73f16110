//! The custom model aggregate: add (gated on a receipt), edit, deactivate (refused while
//! active workflows reference the model, unless confirmed), reactivate.

use secrets::Fingerprint;
use serde::{Deserialize, Serialize};

use crate::Invalid;
use crate::connection_test::{Receipt, ReceiptProblem, digest};
use crate::provider::{Endpoint, Provider, ProviderModelId, check_endpoint};
use crate::values::{Capabilities, Costs, CredentialId, DisplayName, MaxTokens, OrgId, Slug};

/// A credential a command may attach, with the facts looked up about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialRef {
    pub id: CredentialId,
    pub provider: Provider,
    pub fingerprint: Fingerprint,
}

/// What a command says about a model's credential.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CredentialChoice {
    /// None (OpenAI-compatible servers without auth).
    None,
    /// A saved credential named by its id.
    Saved(CredentialRef),
    /// A secret entered now: `new` is the credential it would become (its id drawn, not yet
    /// recorded); `same_secret` is a saved credential of the org with the same secret, if
    /// the fingerprints found one.
    Entered {
        new: CredentialRef,
        same_secret: Option<CredentialRef>,
    },
}

impl CredentialChoice {
    /// The credential the model ends up with: an entered secret that is saved already is
    /// reused, never stored twice ("Reuse saved credentials").
    pub fn chosen(&self) -> Option<&CredentialRef> {
        match self {
            Self::None => None,
            Self::Saved(saved) => Some(saved),
            Self::Entered {
                same_secret: Some(saved),
                ..
            } => Some(saved),
            Self::Entered { new, .. } => Some(new),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Active,
    Deactivated,
}

impl Status {
    pub const ALL: [Status; 2] = [Self::Active, Self::Deactivated];

    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Deactivated => "deactivated",
        }
    }
}

/// The state of one model, as events made it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Model {
    pub slug: Slug,
    pub display_name: DisplayName,
    pub provider: Provider,
    pub provider_model_id: ProviderModelId,
    pub credential_id: Option<CredentialId>,
    pub endpoint: Option<Endpoint>,
    pub max_tokens: MaxTokens,
    pub capabilities: Capabilities,
    pub costs: Costs,
    pub status: Status,
}

#[derive(Clone)]
pub enum Command {
    Add(Box<Add>),
    Edit(Box<Edit>),
    Deactivate {
        /// Deactivate even though active workflows reference the model.
        confirm: bool,
        /// The names of the active workflows that reference the model (looked up).
        dependents: Vec<String>,
    },
    Reactivate,
    /// The dependents worker's record of whom it warned after the deactivation at
    /// `deactivation_seq`.
    RecordWarning {
        deactivation_seq: u64,
        workflow_ids: Vec<String>,
    },
}

#[derive(Clone)]
pub struct Add {
    /// The org the model is added to; the receipt is bound to it.
    pub org: OrgId,
    pub slug: Slug,
    pub display_name: DisplayName,
    pub provider: Provider,
    pub provider_model_id: ProviderModelId,
    pub credential: CredentialChoice,
    pub endpoint: Option<Endpoint>,
    pub max_tokens: MaxTokens,
    pub capabilities: Capabilities,
    pub costs: Costs,
    /// The Test Connection the add names, looked up: the save gate.
    pub receipt: Receipt,
}

/// A partial edit: `None` leaves a field as it is.
#[derive(Clone, Default)]
pub struct Edit {
    pub display_name: Option<DisplayName>,
    pub provider_model_id: Option<ProviderModelId>,
    /// A saved credential or a new secret; `None` keeps the credential.
    pub credential: Option<CredentialChoice>,
    pub endpoint: Option<Endpoint>,
    pub max_tokens: Option<MaxTokens>,
    pub capabilities: Option<Capabilities>,
    pub costs: Option<Costs>,
}

/// Architecture invariant: variants and fields are only ever appended (postcard encodes the
/// variant index); golden files in `schemas/events/` hold every variant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    Added(Model),
    /// Only the fields that changed.
    Edited(Edited),
    Deactivated,
    /// Active workflows that referenced the model when it was deactivated, as counted by the
    /// dependents worker; each was sent a notice.
    DependentsWarned {
        deactivation_seq: u64,
        workflow_ids: Vec<String>,
    },
    Reactivated,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Edited {
    pub display_name: Option<DisplayName>,
    pub provider_model_id: Option<ProviderModelId>,
    pub credential_id: Option<CredentialId>,
    pub endpoint: Option<Endpoint>,
    pub max_tokens: Option<MaxTokens>,
    pub capabilities: Option<Capabilities>,
    pub costs: Option<Costs>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("a model with this slug already exists")]
    SlugTaken,
    #[error("no such model")]
    NotFound,
    #[error("the model is deactivated")]
    Deactivated,
    #[error("the model is already deactivated")]
    AlreadyDeactivated,
    #[error("the model is active")]
    NotDeactivated,
    /// Active workflows still reference the model and the deactivation was not confirmed.
    #[error("{count} active workflows reference the model")]
    HasDependents { count: usize, first: String },
    /// The add's receipt does not let this draft be added.
    #[error("the add has no valid receipt: {0:?}")]
    Receipt(ReceiptProblem),
    #[error("{0}")]
    Invalid(Invalid),
}

impl From<Invalid> for Rejection {
    fn from(invalid: Invalid) -> Self {
        Self::Invalid(invalid)
    }
}

/// Decides what a command means for the model in `state`. An add is checked for shape first
/// (endpoint and credential against the provider), then against its receipt, so a bad draft
/// hears what is wrong with it rather than that it lacks a test. An edit that changes nothing
/// yields no event.
pub fn decide(state: Option<&Model>, command: Command) -> Result<Vec<Event>, Rejection> {
    match (state, command) {
        (Some(_), Command::Add(_)) => Err(Rejection::SlugTaken),
        (None, Command::Add(add)) => {
            let add = *add;
            check_endpoint(add.provider, add.endpoint.as_ref())?;
            let credential = add.credential.chosen();
            check_credential(add.provider, credential)?;
            let draft = digest(
                &add.org,
                add.provider,
                add.endpoint.as_ref(),
                &add.provider_model_id,
                credential.map(|c| &c.fingerprint),
            );
            add.receipt
                .check(&add.org, &draft)
                .map_err(Rejection::Receipt)?;
            Ok(vec![Event::Added(Model {
                slug: add.slug,
                display_name: add.display_name,
                provider: add.provider,
                provider_model_id: add.provider_model_id,
                credential_id: credential.map(|c| c.id.clone()),
                endpoint: add.endpoint,
                max_tokens: add.max_tokens,
                capabilities: add.capabilities,
                costs: add.costs,
                status: Status::Active,
            })])
        }
        (None, _) => Err(Rejection::NotFound),
        (Some(model), Command::Edit(edit)) => {
            let edit = *edit;
            if model.status == Status::Deactivated {
                return Err(Rejection::Deactivated);
            }
            if let Some(endpoint) = &edit.endpoint {
                check_endpoint(model.provider, Some(endpoint))?;
            }
            let credential = edit.credential.as_ref().and_then(CredentialChoice::chosen);
            if let Some(credential) = credential {
                check_credential(model.provider, Some(credential))?;
            }
            let changed = Edited {
                display_name: edit.display_name.filter(|v| *v != model.display_name),
                provider_model_id: edit
                    .provider_model_id
                    .filter(|v| *v != model.provider_model_id),
                credential_id: credential
                    .map(|c| c.id.clone())
                    .filter(|v| Some(v) != model.credential_id.as_ref()),
                endpoint: edit.endpoint.filter(|v| Some(v) != model.endpoint.as_ref()),
                max_tokens: edit.max_tokens.filter(|v| *v != model.max_tokens),
                capabilities: edit.capabilities.filter(|v| *v != model.capabilities),
                costs: edit.costs.filter(|v| *v != model.costs),
            };
            if changed == Edited::default() {
                return Ok(Vec::new());
            }
            Ok(vec![Event::Edited(changed)])
        }
        (
            Some(model),
            Command::Deactivate {
                confirm,
                dependents,
            },
        ) => {
            if model.status == Status::Deactivated {
                return Err(Rejection::AlreadyDeactivated);
            }
            if !confirm && let Some(first) = dependents.iter().min() {
                return Err(Rejection::HasDependents {
                    count: dependents.len(),
                    first: first.clone(),
                });
            }
            Ok(vec![Event::Deactivated])
        }
        (Some(model), Command::Reactivate) => {
            if model.status == Status::Active {
                return Err(Rejection::NotDeactivated);
            }
            Ok(vec![Event::Reactivated])
        }
        (
            Some(model),
            Command::RecordWarning {
                deactivation_seq,
                workflow_ids,
            },
        ) => {
            // A warning about a deactivation that was since undone is moot.
            if model.status == Status::Active {
                return Ok(Vec::new());
            }
            Ok(vec![Event::DependentsWarned {
                deactivation_seq,
                workflow_ids,
            }])
        }
    }
}

fn check_credential(provider: Provider, credential: Option<&CredentialRef>) -> Result<(), Invalid> {
    match credential {
        None if provider.credential_optional() => Ok(()),
        None => Err(Invalid::new(
            "credential",
            "credential.required",
            format!(
                "{provider} models need a credential: give one inline or a saved credential_id"
            ),
        )),
        Some(credential) if credential.provider != provider => Err(Invalid::new(
            "credential_id",
            "credential.provider_mismatch",
            format!(
                "credential {} is a {} credential; this model needs a {provider} one",
                credential.id, credential.provider
            ),
        )),
        Some(_) => Ok(()),
    }
}

crate::aggregate::aggregate!(Model, MODEL, Model);

/// Applies an event. An `Edited` or `Deactivated` before `Added` cannot come from `decide`;
/// replay leaves the state untouched rather than inventing a model.
pub fn evolve(state: Option<Model>, event: &Event) -> Option<Model> {
    match (state, event) {
        (_, Event::Added(model)) => Some(model.clone()),
        (Some(mut model), Event::Edited(edited)) => {
            let e = edited.clone();
            if let Some(v) = e.display_name {
                model.display_name = v;
            }
            if let Some(v) = e.provider_model_id {
                model.provider_model_id = v;
            }
            if let Some(v) = e.credential_id {
                model.credential_id = Some(v);
            }
            if let Some(v) = e.endpoint {
                model.endpoint = Some(v);
            }
            if let Some(v) = e.max_tokens {
                model.max_tokens = v;
            }
            if let Some(v) = e.capabilities {
                model.capabilities = v;
            }
            if let Some(v) = e.costs {
                model.costs = v;
            }
            Some(model)
        }
        (Some(mut model), Event::Deactivated) => {
            model.status = Status::Deactivated;
            Some(model)
        }
        (Some(mut model), Event::Reactivated) => {
            model.status = Status::Active;
            Some(model)
        }
        (Some(model), Event::DependentsWarned { .. }) => Some(model),
        (None, _) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::given;
    use crate::connection_test::{
        ConnectionTest, Draft, Named, RECEIPT_TTL_MS, TestCredential, TestResult,
    };
    use crate::values::{AwsRegion, Cost, HttpUrl, ReasoningParam};

    fn org() -> OrgId {
        OrgId::parse("acme").unwrap()
    }

    fn cred(provider: Provider, id: &str, fingerprint: u8) -> CredentialRef {
        CredentialRef {
            id: CredentialId::parse(id).unwrap(),
            provider,
            fingerprint: [fingerprint; 32],
        }
    }

    fn result(class: &str) -> TestResult {
        TestResult {
            class: class.into(),
            hint: String::new(),
            retry_after_ms: None,
            upstream_status: Some(200),
            upstream_message: None,
            latency_ms: 9,
            suggested_input_cost: None,
            suggested_output_cost: None,
        }
    }

    /// A receipt: a test with `class` of exactly the draft `add` describes, completed at 0,
    /// looked at `now_ms` later.
    fn receipt_for(add: &Add, class: &str, now_ms: i64) -> Receipt {
        let credential = add.credential.chosen();
        let test = ConnectionTest {
            draft: Draft {
                provider: add.provider,
                endpoint: add.endpoint.clone(),
                provider_model_id: add.provider_model_id.clone(),
                credential: match credential {
                    Some(c) => TestCredential::Saved {
                        id: c.id.clone(),
                        version: 1,
                    },
                    None => TestCredential::None,
                },
                fingerprint: credential.map(|c| c.fingerprint),
            },
            model: None,
            result: Some(result(class)),
        };
        Receipt {
            named: Named::Test {
                test: Box::new(test),
                completed_at_ms: Some(0),
            },
            now_ms,
            ttl_ms: RECEIPT_TTL_MS,
        }
    }

    /// An add of `id` with a saved credential and a fresh passing receipt for exactly it.
    fn add(provider: Provider, id: &str) -> Add {
        let display_name = DisplayName::parse("Team GPT").unwrap();
        let mut add = Add {
            org: org(),
            slug: Slug::derive(&display_name),
            display_name,
            provider,
            provider_model_id: ProviderModelId::parse(provider, id).unwrap(),
            credential: CredentialChoice::Saved(cred(provider, "cred_1", 3)),
            endpoint: None,
            max_tokens: MaxTokens::parse(16_000).unwrap(),
            capabilities: Capabilities {
                tool_use: true,
                ..Capabilities::default()
            },
            costs: Costs::default(),
            receipt: Receipt {
                named: Named::Nothing,
                now_ms: 0,
                ttl_ms: RECEIPT_TTL_MS,
            },
        };
        add.receipt = receipt_for(&add, "ok", 1);
        add
    }

    fn added() -> Event {
        decide(None, Command::Add(Box::new(add(Provider::Openai, "gpt-5"))))
            .unwrap()
            .remove(0)
    }

    fn deactivate(confirm: bool, dependents: &[&str]) -> Command {
        Command::Deactivate {
            confirm,
            dependents: dependents.iter().map(|d| (*d).to_owned()).collect(),
        }
    }

    fn invalid_code(result: Result<Vec<Event>, Rejection>) -> &'static str {
        match result {
            Err(Rejection::Invalid(invalid)) => invalid.code,
            other => panic!("expected an invalid draft, got {other:?}"),
        }
    }

    #[test]
    fn add_creates_an_active_model() {
        let model = given::<Model>(&[added()]).unwrap();
        assert_eq!(model.slug.as_str(), "team-gpt");
        assert_eq!(model.status, Status::Active);
        assert_eq!(model.credential_id.unwrap().as_str(), "cred_1");
    }

    #[test]
    fn add_twice_is_refused() {
        let state = given::<Model>(&[added()]);
        let again = decide(
            state.as_ref(),
            Command::Add(Box::new(add(Provider::Openai, "gpt-5"))),
        );
        assert_eq!(again.unwrap_err(), Rejection::SlugTaken);
    }

    #[test]
    fn add_checks_credential_and_endpoint_against_provider() {
        let mut no_cred = add(Provider::Anthropic, "claude-sonnet-4-6");
        no_cred.credential = CredentialChoice::None;
        assert_eq!(
            invalid_code(decide(None, Command::Add(Box::new(no_cred)))),
            "credential.required"
        );

        let mut wrong = add(Provider::Anthropic, "claude-sonnet-4-6");
        wrong.credential = CredentialChoice::Saved(cred(Provider::Openai, "cred_9", 3));
        assert_eq!(
            invalid_code(decide(None, Command::Add(Box::new(wrong)))),
            "credential.provider_mismatch"
        );

        let mut compatible = add(Provider::OpenaiCompatible, "llama3");
        compatible.credential = CredentialChoice::None;
        assert_eq!(
            invalid_code(decide(None, Command::Add(Box::new(compatible.clone())))),
            "endpoint_url.required"
        );

        compatible.endpoint = Some(Endpoint::Url(
            HttpUrl::parse("endpoint_url", "http://vllm.internal:8000/v1").unwrap(),
        ));
        compatible.receipt = receipt_for(&compatible, "ok", 1);
        assert!(decide(None, Command::Add(Box::new(compatible))).is_ok());

        let mut bedrock = add(Provider::Bedrock, "amazon.nova-pro-v1:0");
        bedrock.endpoint = Some(Endpoint::Region(AwsRegion::parse("eu-west-1").unwrap()));
        bedrock.receipt = receipt_for(&bedrock, "ok", 1);
        assert!(decide(None, Command::Add(Box::new(bedrock))).is_ok());
    }

    #[test]
    fn add_is_gated_on_a_passing_test_of_exactly_this_draft() {
        let refused = |add: Add| match decide(None, Command::Add(Box::new(add))) {
            Err(Rejection::Receipt(problem)) => problem,
            other => panic!("expected the gate to refuse, got {other:?}"),
        };
        // Given no test, a failed one, one of another model id, and one too old
        let mut none = add(Provider::Openai, "gpt-5");
        none.receipt.named = Named::Nothing;
        assert_eq!(refused(none), ReceiptProblem::Missing);

        let mut failed = add(Provider::Openai, "gpt-5");
        failed.receipt = receipt_for(&failed, "auth_invalid", 1);
        assert_eq!(
            refused(failed),
            ReceiptProblem::Failed("auth_invalid".into())
        );

        let mut other_model = add(Provider::Openai, "gpt-5");
        other_model.provider_model_id = ProviderModelId::parse(Provider::Openai, "gpt-4o").unwrap();
        assert_eq!(refused(other_model), ReceiptProblem::Mismatch);

        let mut other_secret = add(Provider::Openai, "gpt-5");
        other_secret.credential = CredentialChoice::Saved(cred(Provider::Openai, "cred_2", 4));
        assert_eq!(refused(other_secret), ReceiptProblem::Mismatch);

        let mut old = add(Provider::Openai, "gpt-5");
        old.receipt = receipt_for(&old, "ok", RECEIPT_TTL_MS + 1);
        assert_eq!(
            refused(old),
            ReceiptProblem::Expired {
                ttl_ms: RECEIPT_TTL_MS
            }
        );

        // And a draft that is wrong in shape hears that first, receipt or not
        let mut bad_shape = add(Provider::Anthropic, "claude-sonnet-4-6");
        bad_shape.credential = CredentialChoice::None;
        bad_shape.receipt.named = Named::Nothing;
        assert_eq!(
            invalid_code(decide(None, Command::Add(Box::new(bad_shape)))),
            "credential.required"
        );
    }

    #[test]
    fn an_entered_secret_that_is_saved_already_is_reused() {
        // Given an entered secret whose fingerprint matches saved credential cred_saved
        let mut entered = add(Provider::Openai, "gpt-5");
        entered.credential = CredentialChoice::Entered {
            new: cred(Provider::Openai, "cred_new", 7),
            same_secret: Some(cred(Provider::Openai, "cred_saved", 7)),
        };
        entered.receipt = receipt_for(&entered, "ok", 1);
        // When the model is added
        let model =
            given::<Model>(&decide(None, Command::Add(Box::new(entered))).unwrap()).unwrap();
        // Then it uses the saved credential, not a second copy
        assert_eq!(model.credential_id.unwrap().as_str(), "cred_saved");

        // Given a secret no saved credential has
        let mut fresh = add(Provider::Openai, "gpt-5");
        fresh.credential = CredentialChoice::Entered {
            new: cred(Provider::Openai, "cred_new", 8),
            same_secret: None,
        };
        fresh.receipt = receipt_for(&fresh, "ok", 1);
        // Then the model uses the new credential
        let model = given::<Model>(&decide(None, Command::Add(Box::new(fresh))).unwrap()).unwrap();
        assert_eq!(model.credential_id.unwrap().as_str(), "cred_new");
    }

    #[test]
    fn edit_records_only_what_changed_and_keeps_the_slug() {
        let state = given::<Model>(&[added()]);
        let edit = Edit {
            display_name: Some(DisplayName::parse("Renamed").unwrap()),
            max_tokens: Some(MaxTokens::parse(16_000).unwrap()),
            costs: Some(Costs {
                input_per_token: Some(Cost::parse("c", "0.000001").unwrap()),
                output_per_token: None,
            }),
            capabilities: Some(Capabilities {
                tool_use: true,
                reasoning: Some(ReasoningParam::Effort),
                ..Capabilities::default()
            }),
            ..Edit::default()
        };
        let events = decide(state.as_ref(), Command::Edit(Box::new(edit))).unwrap();
        let Event::Edited(edited) = &events[0] else {
            panic!("expected Edited")
        };
        assert!(
            edited.max_tokens.is_none(),
            "unchanged max tokens not recorded"
        );
        let model = given::<Model>(&[added(), events[0].clone()]).unwrap();
        assert_eq!(model.display_name.as_str(), "Renamed");
        assert_eq!(model.slug.as_str(), "team-gpt");
        assert_eq!(model.capabilities.reasoning, Some(ReasoningParam::Effort));
        assert_eq!(
            model.credential_id.unwrap().as_str(),
            "cred_1",
            "credential kept when none given"
        );
    }

    #[test]
    fn an_edit_moves_to_another_credential_of_the_provider_only() {
        let state = given::<Model>(&[added()]);
        let to = |credential| Edit {
            credential: Some(CredentialChoice::Saved(credential)),
            ..Edit::default()
        };
        let moved = decide(
            state.as_ref(),
            Command::Edit(Box::new(to(cred(Provider::Openai, "cred_2", 5)))),
        )
        .unwrap();
        assert_eq!(
            given::<Model>(&[added(), moved[0].clone()])
                .unwrap()
                .credential_id
                .unwrap()
                .as_str(),
            "cred_2"
        );
        assert_eq!(
            invalid_code(decide(
                state.as_ref(),
                Command::Edit(Box::new(to(cred(Provider::Anthropic, "cred_3", 5))))
            )),
            "credential.provider_mismatch"
        );
    }

    #[test]
    fn an_edit_that_changes_nothing_yields_no_event() {
        let state = given::<Model>(&[added()]);
        let same = Edit {
            display_name: Some(DisplayName::parse("Team GPT").unwrap()),
            credential: Some(CredentialChoice::Saved(cred(Provider::Openai, "cred_1", 3))),
            ..Edit::default()
        };
        assert!(
            decide(state.as_ref(), Command::Edit(Box::new(same)))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn deactivation_is_refused_while_active_workflows_reference_the_model() {
        // Given an active model referenced by two active workflows
        let state = given::<Model>(&[added()]);
        // When it is deactivated without confirming
        let refused = decide(state.as_ref(), deactivate(false, &["Nightly", "Digest"]));
        // Then it is refused with their count and the first by name
        assert_eq!(
            refused.unwrap_err(),
            Rejection::HasDependents {
                count: 2,
                first: "Digest".into()
            }
        );
        // And confirmed, or with no dependents, it is deactivated
        assert_eq!(
            decide(state.as_ref(), deactivate(true, &["Nightly"])).unwrap(),
            vec![Event::Deactivated]
        );
        assert_eq!(
            decide(state.as_ref(), deactivate(false, &[])).unwrap(),
            vec![Event::Deactivated]
        );
    }

    #[test]
    fn deactivate_once_then_edits_are_refused() {
        let events = decide(given::<Model>(&[added()]).as_ref(), deactivate(false, &[])).unwrap();
        let state = given::<Model>(&[added(), events[0].clone()]);
        assert_eq!(state.as_ref().unwrap().status, Status::Deactivated);
        assert_eq!(
            decide(state.as_ref(), deactivate(true, &[])).unwrap_err(),
            Rejection::AlreadyDeactivated
        );
        assert_eq!(
            decide(state.as_ref(), Command::Edit(Box::default())).unwrap_err(),
            Rejection::Deactivated
        );
        assert_eq!(
            decide(None, deactivate(false, &[])).unwrap_err(),
            Rejection::NotFound
        );
    }

    #[test]
    fn reactivate_only_a_deactivated_model_and_warnings_only_while_deactivated() {
        let deactivated = decide(given::<Model>(&[added()]).as_ref(), deactivate(false, &[]))
            .unwrap()
            .remove(0);
        let warn = || Command::RecordWarning {
            deactivation_seq: 7,
            workflow_ids: vec!["wf1".into()],
        };
        let state = given::<Model>(&[added(), deactivated.clone()]);
        assert_eq!(decide(state.as_ref(), warn()).unwrap().len(), 1);
        let reactivated = decide(state.as_ref(), Command::Reactivate)
            .unwrap()
            .remove(0);
        let state = given::<Model>(&[added(), deactivated, reactivated]);
        assert_eq!(state.as_ref().unwrap().status, Status::Active);
        assert!(
            decide(state.as_ref(), warn()).unwrap().is_empty(),
            "moot after reactivation"
        );
        assert_eq!(
            decide(state.as_ref(), Command::Reactivate).unwrap_err(),
            Rejection::NotDeactivated
        );
    }
}
