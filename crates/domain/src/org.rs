//! The org aggregate: its creation and the API tokens it issues.

use serde::{Deserialize, Serialize};

use crate::values::TokenId;
use crate::{Invalid, echo};

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
                format!("{} is not a role; use admin, member or service", echo(raw)),
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
    pub tokens: Vec<TokenId>,
}

pub enum Command {
    Create {
        name: String,
    },
    IssueToken {
        token_id: TokenId,
        label: String,
        role: Role,
        hash: [u8; 32],
    },
}

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
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("the org already exists")]
    AlreadyExists,
    #[error("no such org")]
    NotFound,
    #[error("the token id is already issued")]
    TokenExists,
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
            Ok(vec![Event::TokenIssued {
                token_id,
                label,
                role,
                hash,
            }])
        }
    }
}

pub fn evolve(state: Option<Org>, event: &Event) -> Option<Org> {
    match (state, event) {
        (_, Event::Created { name }) => Some(Org {
            name: name.clone(),
            tokens: Vec::new(),
        }),
        (Some(mut org), Event::TokenIssued { token_id, .. }) => {
            org.tokens.push(token_id.clone());
            Some(org)
        }
        (None, Event::TokenIssued { .. }) => None,
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

    #[test]
    fn tokens_need_an_org_and_names_are_checked() {
        assert_eq!(decide(None, issue("t1")).unwrap_err(), Rejection::NotFound);
        assert!(matches!(
            decide(None, Command::Create { name: "\n".into() }),
            Err(Rejection::Invalid(_))
        ));
    }
}
