//! The org aggregate: its creation, the API tokens it issues and revokes, and its choices
//! among the platform models (its own default, the models it hides).

use serde::{Deserialize, Serialize};

use crate::Invalid;
use crate::values::TokenId;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Manages models and credentials.
    Admin,
    /// Reads.
    Member,
    /// The pipeline runtime: reads and resolves models with their credentials.
    Service,
}

impl Role {
    pub const ALL: [Role; 3] = [Self::Admin, Self::Member, Self::Service];

    pub fn parse(raw: &str) -> Result<Self, Invalid> {
        match raw {
            "admin" => Ok(Self::Admin),
            "member" => Ok(Self::Member),
            "service" => Ok(Self::Service),
            _ => Err(Invalid::new(
                "role",
                "role.unknown",
                "the role is not one of admin, member or service",
            )),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Member => "member",
            Self::Service => "service",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Org {
    pub name: String,
    /// Every token ever issued, revoked ones included (an id is never reused).
    pub tokens: Vec<TokenId>,
    /// The admin tokens not revoked: the last one cannot be revoked.
    pub active_admins: Vec<TokenId>,
    pub revoked: Vec<TokenId>,
    /// The org's own default platform model, if it chose one.
    pub default_model: Option<String>,
    /// Platform models the org must not use.
    pub hidden_models: Vec<String>,
}

/// What the catalog says of a platform model an org command names (looked up).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlatformModelFact {
    /// Listed and not retired.
    Usable,
    Retired,
    NotListed,
}

/// Cloned when a command is decided again after a conflict (`app::orgs::execute_on_org`).
#[derive(Clone)]
pub enum Command {
    Create {
        name: String,
    },
    IssueToken {
        token_id: TokenId,
        label: String,
        role: Role,
        hash: [u8; 32],
        /// When the token stops being accepted, if ever (a fact of the request).
        expires_at_ms: Option<i64>,
        /// The time of the request, to refuse an expiry already past.
        now_ms: i64,
    },
    RevokeToken {
        token_id: TokenId,
        /// The org's admin tokens past their expiry (a fact: looked up with the clock). They
        /// no longer count as admins, so the last admin token that works is never revoked.
        expired_admins: Vec<TokenId>,
    },
    /// Choose the org's default platform model (`None`: the platform's default again).
    ChooseDefault {
        model: Option<(String, PlatformModelFact)>,
    },
    /// Hide exactly these platform models from the org (each with what the catalog says).
    HideModels {
        models: Vec<(String, PlatformModelFact)>,
    },
    /// The dependents worker's record of the org's active workflows it warned about the
    /// retirement of platform model `model` at `retirement_seq`.
    RecordPlatformWarning {
        model: String,
        retirement_seq: u64,
        workflow_ids: Vec<String>,
    },
}

/// Architecture invariant: variants and fields are only ever appended (postcard encodes the
/// variant index); golden files in `schemas/events/` hold every variant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    Created {
        name: String,
    },
    /// Only the SHA-256 of the token's secret part is recorded.
    TokenIssued {
        token_id: TokenId,
        label: String,
        role: Role,
        hash: [u8; 32],
    },
    /// The token is refused from now on, on every replica.
    TokenRevoked {
        token_id: TokenId,
    },
    /// The org's default platform model; `None`: the platform's default.
    DefaultModelChosen {
        model: Option<String>,
    },
    /// The platform models the org hides, all of them (an empty list shows every model).
    PlatformModelsHidden {
        models: Vec<String>,
    },
    /// Active workflows of the org that referenced a platform model when it was retired, as
    /// counted by the dependents worker; each was sent a notice.
    PlatformDependentsWarned {
        model: String,
        retirement_seq: u64,
        workflow_ids: Vec<String>,
    },
    /// A token issued as [`Event::TokenIssued`] that is refused from `expires_at_ms` on.
    TokenIssuedExpiring {
        token_id: TokenId,
        label: String,
        role: Role,
        hash: [u8; 32],
        expires_at_ms: i64,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("the org already exists")]
    AlreadyExists,
    #[error("no such org")]
    NotFound,
    #[error("the token id is already issued")]
    TokenExists,
    #[error("no such token in this org")]
    TokenNotFound,
    #[error("the org's last admin token cannot be revoked")]
    LastAdminToken,
    #[error("no listed platform model has this id")]
    PlatformModelNotListed,
    #[error("the platform model is retired")]
    PlatformModelRetired,
    #[error("{0}")]
    Invalid(Invalid),
}

pub fn decide(state: Option<&Org>, command: Command) -> Result<Vec<Event>, Rejection> {
    match (state, command) {
        (Some(_), Command::Create { .. }) => Err(Rejection::AlreadyExists),
        (None, Command::Create { name }) => {
            let name = name.trim().to_owned();
            if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
                return Err(Rejection::Invalid(Invalid::new(
                    "name",
                    "org.name_invalid",
                    "an org name is 1 to 100 characters with no control characters",
                )));
            }
            Ok(vec![Event::Created { name }])
        }
        (None, Command::IssueToken { .. }) => Err(Rejection::NotFound),
        (
            Some(org),
            Command::IssueToken {
                token_id,
                label,
                role,
                hash,
                expires_at_ms,
                now_ms,
            },
        ) => {
            if org.tokens.contains(&token_id) {
                return Err(Rejection::TokenExists);
            }
            let label = label.trim().to_owned();
            if label.is_empty()
                || label.chars().count() > 100
                || label.chars().any(char::is_control)
            {
                return Err(Rejection::Invalid(Invalid::new(
                    "label",
                    "token.label_invalid",
                    "a token label is 1 to 100 characters with no control characters",
                )));
            }
            Ok(vec![match expires_at_ms {
                None => Event::TokenIssued {
                    token_id,
                    label,
                    role,
                    hash,
                },
                Some(at) if at <= now_ms => {
                    return Err(Rejection::Invalid(Invalid::new(
                        "expires_at",
                        "expires_at.past",
                        "the expiry must lie in the future",
                    )));
                }
                Some(expires_at_ms) => Event::TokenIssuedExpiring {
                    token_id,
                    label,
                    role,
                    hash,
                    expires_at_ms,
                },
            }])
        }
        (None, Command::RevokeToken { .. }) => Err(Rejection::NotFound),
        (
            Some(org),
            Command::RevokeToken {
                token_id,
                expired_admins,
            },
        ) => {
            if !org.tokens.contains(&token_id) {
                return Err(Rejection::TokenNotFound);
            }
            if org.revoked.contains(&token_id) {
                return Ok(Vec::new());
            }
            let another_admin_works = org
                .active_admins
                .iter()
                .any(|id| *id != token_id && !expired_admins.contains(id));
            if org.active_admins.contains(&token_id) && !another_admin_works {
                return Err(Rejection::LastAdminToken);
            }
            Ok(vec![Event::TokenRevoked { token_id }])
        }
        (None, Command::ChooseDefault { .. } | Command::HideModels { .. }) => {
            Err(Rejection::NotFound)
        }
        (None, Command::RecordPlatformWarning { .. }) => Err(Rejection::NotFound),
        (Some(org), Command::ChooseDefault { model }) => {
            let model = match model {
                None => None,
                Some((_, PlatformModelFact::NotListed)) => {
                    return Err(Rejection::PlatformModelNotListed);
                }
                Some((_, PlatformModelFact::Retired)) => {
                    return Err(Rejection::PlatformModelRetired);
                }
                Some((id, PlatformModelFact::Usable)) => Some(id),
            };
            if model == org.default_model {
                return Ok(Vec::new());
            }
            Ok(vec![Event::DefaultModelChosen { model }])
        }
        (Some(org), Command::HideModels { models }) => {
            // Hiding a retired model is harmless; hiding an unknown id is a mistake.
            if models
                .iter()
                .any(|(_, fact)| *fact == PlatformModelFact::NotListed)
            {
                return Err(Rejection::PlatformModelNotListed);
            }
            let mut ids: Vec<String> = models.into_iter().map(|(id, _)| id).collect();
            ids.sort();
            ids.dedup();
            if ids == org.hidden_models {
                return Ok(Vec::new());
            }
            Ok(vec![Event::PlatformModelsHidden { models: ids }])
        }
        (
            Some(_),
            Command::RecordPlatformWarning {
                model,
                retirement_seq,
                workflow_ids,
            },
        ) => Ok(vec![Event::PlatformDependentsWarned {
            model,
            retirement_seq,
            workflow_ids,
        }]),
    }
}

pub fn evolve(state: Option<Org>, event: &Event) -> Option<Org> {
    match (state, event) {
        (_, Event::Created { name }) => Some(Org {
            name: name.clone(),
            tokens: Vec::new(),
            active_admins: Vec::new(),
            revoked: Vec::new(),
            default_model: None,
            hidden_models: Vec::new(),
        }),
        (
            Some(mut org),
            Event::TokenIssued { token_id, role, .. }
            | Event::TokenIssuedExpiring { token_id, role, .. },
        ) => {
            org.tokens.push(token_id.clone());
            if *role == Role::Admin {
                org.active_admins.push(token_id.clone());
            }
            Some(org)
        }
        (Some(mut org), Event::TokenRevoked { token_id }) => {
            org.active_admins.retain(|id| id != token_id);
            org.revoked.push(token_id.clone());
            Some(org)
        }
        (Some(mut org), Event::DefaultModelChosen { model }) => {
            org.default_model = model.clone();
            Some(org)
        }
        (Some(mut org), Event::PlatformModelsHidden { models }) => {
            org.hidden_models = models.clone();
            Some(org)
        }
        (Some(org), Event::PlatformDependentsWarned { .. }) => Some(org),
        (None, _) => None,
    }
}

crate::aggregate::aggregate!(Org, ORG, Org);

#[cfg(test)]
mod tests {
    use super::*;

    fn issue(id: &str) -> Command {
        Command::IssueToken {
            token_id: TokenId::parse(id).unwrap(),
            label: "ci".into(),
            role: Role::Member,
            hash: [1; 32],
            expires_at_ms: None,
            now_ms: 1_000,
        }
    }

    #[test]
    fn create_then_issue_tokens() {
        let created = decide(
            None,
            Command::Create {
                name: " Acme ".into(),
            },
        )
        .unwrap();
        assert_eq!(
            created,
            vec![Event::Created {
                name: "Acme".into()
            }]
        );
        let org = created.iter().fold(None, evolve);
        let issued = decide(org.as_ref(), issue("t1")).unwrap();
        let org = issued.iter().fold(org, evolve);
        assert_eq!(
            decide(org.as_ref(), issue("t1")).unwrap_err(),
            Rejection::TokenExists
        );
        assert_eq!(
            decide(org.as_ref(), Command::Create { name: "x".into() }).unwrap_err(),
            Rejection::AlreadyExists
        );
    }

    fn issue_as(id: &str, role: Role) -> Command {
        Command::IssueToken {
            token_id: TokenId::parse(id).unwrap(),
            label: "ci".into(),
            role,
            hash: [1; 32],
            expires_at_ms: None,
            now_ms: 1_000,
        }
    }

    fn revoke(id: &str) -> Command {
        Command::RevokeToken {
            token_id: TokenId::parse(id).unwrap(),
            expired_admins: Vec::new(),
        }
    }

    /// Given an org with `commands` decided and applied in order.
    fn given(commands: Vec<Command>) -> Option<Org> {
        let mut org = evolve(
            None,
            &Event::Created {
                name: "Acme".into(),
            },
        );
        for command in commands {
            for event in decide(org.as_ref(), command).unwrap() {
                org = evolve(org, &event);
            }
        }
        org
    }

    #[test]
    fn a_token_is_revoked_once_and_the_last_admin_token_never() {
        let org = given(vec![issue_as("a1", Role::Admin), issue("m1")]);
        assert_eq!(
            decide(org.as_ref(), revoke("m1")).unwrap(),
            vec![Event::TokenRevoked {
                token_id: TokenId::parse("m1").unwrap()
            }]
        );
        assert_eq!(
            decide(org.as_ref(), revoke("a1")).unwrap_err(),
            Rejection::LastAdminToken
        );
        assert_eq!(
            decide(org.as_ref(), revoke("nope")).unwrap_err(),
            Rejection::TokenNotFound
        );
        // Revoking a revoked token changes nothing; with a second admin, the first may go.
        let org = given(vec![
            issue_as("a1", Role::Admin),
            issue("m1"),
            revoke("m1"),
            issue_as("a2", Role::Admin),
        ]);
        assert_eq!(decide(org.as_ref(), revoke("m1")).unwrap(), Vec::new());
        assert_eq!(decide(org.as_ref(), revoke("a1")).unwrap().len(), 1);
        assert_eq!(decide(None, revoke("a1")).unwrap_err(), Rejection::NotFound);
        // An expired admin token is no admin: the other one is the last that works.
        let expired_a1 = |id: &str| Command::RevokeToken {
            token_id: TokenId::parse(id).unwrap(),
            expired_admins: vec![TokenId::parse("a1").unwrap()],
        };
        assert_eq!(
            decide(org.as_ref(), expired_a1("a2")).unwrap_err(),
            Rejection::LastAdminToken
        );
        assert_eq!(decide(org.as_ref(), expired_a1("a1")).unwrap().len(), 1);
    }

    #[test]
    fn an_org_chooses_a_usable_default_and_hides_listed_models() {
        use PlatformModelFact::*;
        let org = given(vec![]);
        let choose = |id: &str, fact| Command::ChooseDefault {
            model: Some((id.to_owned(), fact)),
        };
        assert_eq!(
            decide(org.as_ref(), choose("a/b", Retired)).unwrap_err(),
            Rejection::PlatformModelRetired
        );
        assert_eq!(
            decide(org.as_ref(), choose("a/b", NotListed)).unwrap_err(),
            Rejection::PlatformModelNotListed
        );
        let chosen = decide(org.as_ref(), choose("a/b", Usable)).unwrap();
        let org = chosen.iter().fold(org, evolve);
        assert_eq!(org.as_ref().unwrap().default_model.as_deref(), Some("a/b"));
        assert!(
            decide(org.as_ref(), choose("a/b", Usable))
                .unwrap()
                .is_empty()
        );
        let hide = |ids: &[&str]| Command::HideModels {
            models: ids.iter().map(|id| ((*id).to_owned(), Usable)).collect(),
        };
        let hidden = decide(org.as_ref(), hide(&["c/d", "a/b", "c/d"])).unwrap();
        assert_eq!(
            hidden,
            vec![Event::PlatformModelsHidden {
                models: vec!["a/b".into(), "c/d".into()]
            }]
        );
        let org = hidden.iter().fold(org, evolve);
        assert!(
            decide(org.as_ref(), hide(&["a/b", "c/d"]))
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn a_token_may_expire_later_never_earlier() {
        let org = given(vec![issue_as("a1", Role::Admin)]);
        let expiring = |at: i64| Command::IssueToken {
            token_id: TokenId::parse("e1").unwrap(),
            label: "ci".into(),
            role: Role::Service,
            hash: [2; 32],
            expires_at_ms: Some(at),
            now_ms: 1_000,
        };
        assert!(matches!(
            decide(org.as_ref(), expiring(1_000)),
            Err(Rejection::Invalid(i)) if i.code == "expires_at.past"
        ));
        let issued = decide(org.as_ref(), expiring(5_000)).unwrap();
        assert_eq!(
            issued,
            vec![Event::TokenIssuedExpiring {
                token_id: TokenId::parse("e1").unwrap(),
                label: "ci".into(),
                role: Role::Service,
                hash: [2; 32],
                expires_at_ms: 5_000,
            }]
        );
        let org = issued.iter().fold(org, evolve);
        assert_eq!(
            decide(org.as_ref(), expiring(5_000)).unwrap_err(),
            Rejection::TokenExists
        );
    }

    #[test]
    fn tokens_need_an_org_and_names_are_checked() {
        assert_eq!(decide(None, issue("t1")).unwrap_err(), Rejection::NotFound);
        assert!(matches!(
            decide(None, Command::Create { name: "\n".into() }),
            Err(Rejection::Invalid(_))
        ));
    }
}
