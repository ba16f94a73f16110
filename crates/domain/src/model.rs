//! The custom model aggregate: add, edit, deactivate.

use serde::{Deserialize, Serialize};

use crate::Invalid;
use crate::provider::{Endpoint, Provider, ProviderModelId, check_endpoint};
use crate::values::{Capabilities, Costs, CredentialId, DisplayName, MaxTokens, Slug};

/// A credential a command wants to attach, with the facts looked up about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialRef {
    pub id: CredentialId,
    pub provider: Provider,
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
    Add(Add),
    Edit(Edit),
    Deactivate,
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
    pub slug: Slug,
    pub display_name: DisplayName,
    pub provider: Provider,
    pub provider_model_id: ProviderModelId,
    pub credential: Option<CredentialRef>,
    pub endpoint: Option<Endpoint>,
    pub max_tokens: MaxTokens,
    pub capabilities: Capabilities,
    pub costs: Costs,
}

/// A partial edit: `None` leaves a field as it is.
#[derive(Clone, Default)]
pub struct Edit {
    pub display_name: Option<DisplayName>,
    pub provider_model_id: Option<ProviderModelId>,
    pub credential: Option<CredentialRef>,
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
    #[error("{0}")]
    Invalid(Invalid),
}

impl From<Invalid> for Rejection {
    fn from(invalid: Invalid) -> Self {
        Self::Invalid(invalid)
    }
}

/// Decides what a command means for the model in `state`. An edit that changes nothing
/// yields no event.
pub fn decide(state: Option<&Model>, command: Command) -> Result<Vec<Event>, Rejection> {
    match (state, command) {
        (Some(_), Command::Add(_)) => Err(Rejection::SlugTaken),
        (None, Command::Add(add)) => {
            check_endpoint(add.provider, add.endpoint.as_ref())?;
            check_credential(add.provider, add.credential.as_ref())?;
            Ok(vec![Event::Added(Model {
                slug: add.slug,
                display_name: add.display_name,
                provider: add.provider,
                provider_model_id: add.provider_model_id,
                credential_id: add.credential.map(|c| c.id),
                endpoint: add.endpoint,
                max_tokens: add.max_tokens,
                capabilities: add.capabilities,
                costs: add.costs,
                status: Status::Active,
            })])
        }
        (None, _) => Err(Rejection::NotFound),
        (Some(model), Command::Edit(edit)) => {
            if model.status == Status::Deactivated {
                return Err(Rejection::Deactivated);
            }
            if let Some(endpoint) = &edit.endpoint {
                check_endpoint(model.provider, Some(endpoint))?;
            }
            if let Some(credential) = &edit.credential {
                check_credential(model.provider, Some(credential))?;
            }
            let changed = Edited {
                display_name: edit.display_name.filter(|v| *v != model.display_name),
                provider_model_id: edit
                    .provider_model_id
                    .filter(|v| *v != model.provider_model_id),
                credential_id: edit
                    .credential
                    .map(|c| c.id)
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
        (Some(model), Command::Deactivate) => {
            if model.status == Status::Deactivated {
                return Err(Rejection::AlreadyDeactivated);
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

/// The rules `decide` applies to an addition, to check a draft before anything is stored.
pub fn check_draft(
    provider: Provider,
    endpoint: Option<&Endpoint>,
    credential: Option<&CredentialRef>,
) -> Result<(), Invalid> {
    check_endpoint(provider, endpoint)?;
    check_credential(provider, credential)
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
    use crate::values::{AwsRegion, Cost, HttpUrl, ReasoningParam};

    fn cred(provider: Provider) -> CredentialRef {
        CredentialRef {
            id: CredentialId::parse("cred_1").unwrap(),
            provider,
        }
    }

    fn add(provider: Provider, id: &str) -> Add {
        let display_name = DisplayName::parse("Team GPT").unwrap();
        Add {
            slug: Slug::derive(&display_name),
            display_name,
            provider,
            provider_model_id: ProviderModelId::parse(provider, id).unwrap(),
            credential: Some(cred(provider)),
            endpoint: None,
            max_tokens: MaxTokens::parse(16_000).unwrap(),
            capabilities: Capabilities {
                tool_use: true,
                ..Capabilities::default()
            },
            costs: Costs::default(),
        }
    }

    fn given(events: &[Event]) -> Option<Model> {
        events.iter().fold(None, evolve)
    }

    fn added() -> Event {
        decide(None, Command::Add(add(Provider::Openai, "gpt-5")))
            .unwrap()
            .remove(0)
    }

    #[test]
    fn add_creates_an_active_model() {
        let model = given(&[added()]).unwrap();
        assert_eq!(model.slug.as_str(), "team-gpt");
        assert_eq!(model.status, Status::Active);
        assert_eq!(model.credential_id.unwrap().as_str(), "cred_1");
    }

    #[test]
    fn add_twice_is_refused() {
        let state = given(&[added()]);
        let again = decide(state.as_ref(), Command::Add(add(Provider::Openai, "gpt-5")));
        assert_eq!(again.unwrap_err(), Rejection::SlugTaken);
    }

    #[test]
    fn add_checks_credential_and_endpoint_against_provider() {
        let mut no_cred = add(Provider::Anthropic, "claude-sonnet-4-6");
        no_cred.credential = None;
        assert!(
            matches!(decide(None, Command::Add(no_cred)), Err(Rejection::Invalid(i)) if i.code == "credential.required")
        );

        let mut wrong = add(Provider::Anthropic, "claude-sonnet-4-6");
        wrong.credential = Some(cred(Provider::Openai));
        assert!(
            matches!(decide(None, Command::Add(wrong)), Err(Rejection::Invalid(i)) if i.code == "credential.provider_mismatch")
        );

        let mut compatible = add(Provider::OpenaiCompatible, "llama3");
        compatible.credential = None;
        assert!(
            matches!(decide(None, Command::Add(compatible)), Err(Rejection::Invalid(i)) if i.code == "endpoint_url.required")
        );

        let mut compatible = add(Provider::OpenaiCompatible, "llama3");
        compatible.credential = None;
        compatible.endpoint = Some(Endpoint::Url(
            HttpUrl::parse("endpoint_url", "http://vllm.internal:8000/v1").unwrap(),
        ));
        assert!(decide(None, Command::Add(compatible)).is_ok());

        let mut bedrock = add(Provider::Bedrock, "amazon.nova-pro-v1:0");
        bedrock.endpoint = Some(Endpoint::Region(AwsRegion::parse("eu-west-1").unwrap()));
        assert!(decide(None, Command::Add(bedrock)).is_ok());
    }

    #[test]
    fn edit_records_only_what_changed_and_keeps_the_slug() {
        let state = given(&[added()]);
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
        let events = decide(state.as_ref(), Command::Edit(edit)).unwrap();
        let Event::Edited(edited) = &events[0] else {
            panic!("expected Edited")
        };
        assert!(
            edited.max_tokens.is_none(),
            "unchanged max tokens not recorded"
        );
        let model = given(&[added(), events[0].clone()]).unwrap();
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
    fn an_edit_that_changes_nothing_yields_no_event() {
        let state = given(&[added()]);
        let same = Edit {
            display_name: Some(DisplayName::parse("Team GPT").unwrap()),
            ..Edit::default()
        };
        assert!(
            decide(state.as_ref(), Command::Edit(same))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn deactivate_once_then_edits_are_refused() {
        let events = decide(given(&[added()]).as_ref(), Command::Deactivate).unwrap();
        let state = given(&[added(), events[0].clone()]);
        assert_eq!(state.as_ref().unwrap().status, Status::Deactivated);
        assert_eq!(
            decide(state.as_ref(), Command::Deactivate).unwrap_err(),
            Rejection::AlreadyDeactivated
        );
        assert_eq!(
            decide(state.as_ref(), Command::Edit(Edit::default())).unwrap_err(),
            Rejection::Deactivated
        );
        assert_eq!(
            decide(None, Command::Deactivate).unwrap_err(),
            Rejection::NotFound
        );
    }

    #[test]
    fn reactivate_only_a_deactivated_model_and_warnings_only_while_deactivated() {
        let deactivated = decide(given(&[added()]).as_ref(), Command::Deactivate)
            .unwrap()
            .remove(0);
        let warn = || Command::RecordWarning {
            deactivation_seq: 7,
            workflow_ids: vec!["wf1".into()],
        };
        let state = given(&[added(), deactivated.clone()]);
        assert_eq!(decide(state.as_ref(), warn()).unwrap().len(), 1);
        let reactivated = decide(state.as_ref(), Command::Reactivate)
            .unwrap()
            .remove(0);
        let state = given(&[added(), deactivated, reactivated]);
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
