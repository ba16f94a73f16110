//! Orgs, API tokens and authentication. A token is `mr_<token id>_<secret>`; only the
//! SHA-256 of the secret part is recorded, in the org's `TokenIssued` event.

use base64::Engine;
use domain::Event;
use domain::org::{self, Role};
use domain::values::{OrgId, Slug, TokenId};
use eventlog::{Actor, ActorKind, AppendError};
use rand::RngCore;
use secrets::Secret;
use sha2::{Digest, Sha256};

use crate::{Answer, AppError, Ctx, Registry};

const TOKEN_PREFIX: &str = "mr_";

pub struct CreatedOrg {
    pub org: OrgId,
    /// The first admin token, shown once.
    pub admin_token: Secret,
    pub position: u64,
}

#[derive(serde::Serialize)]
pub struct IssuedToken {
    pub token_id: String,
    pub label: String,
    pub role: Role,
    /// Shown once; only its hash is kept.
    #[serde(skip)]
    pub token: Option<Secret>,
}

/// Who a valid token belongs to.
#[derive(Clone, Debug)]
pub struct Principal {
    pub org: OrgId,
    pub role: Role,
    pub actor: Actor,
}

fn org_rejection(rejection: org::Rejection) -> AppError {
    match rejection {
        org::Rejection::AlreadyExists => AppError::Conflict {
            code: "org.exists",
            message: "an org with this id already exists".into(),
            current_version: None,
        },
        org::Rejection::NotFound => AppError::NotFound {
            code: "org.not_found",
            message: "no such org".into(),
        },
        org::Rejection::TokenExists => AppError::Internal("token id collision".into()),
        org::Rejection::Invalid(invalid) => AppError::invalid(invalid),
    }
}

/// A token drawn before it is recorded: its id, the secret to hand out once, and the hash
/// the log keeps.
pub struct PreparedToken {
    id: TokenId,
    token: Secret,
    hash: [u8; 32],
}

impl PreparedToken {
    /// A fresh token.
    pub fn draw() -> Self {
        let (id, token, hash) = new_token();
        Self { id, token, hash }
    }

    /// The token `text` (as drawn earlier and kept in a file), or `None` if it is not one.
    pub fn from_text(text: &str) -> Option<Self> {
        let rest = text.trim().strip_prefix(TOKEN_PREFIX)?;
        let (id, secret) = rest.split_once('_')?;
        let id = TokenId::parse(id).ok()?;
        let hash: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        Some(Self {
            id,
            token: Secret::new(text.trim().to_owned()),
            hash,
        })
    }

    pub fn id(&self) -> &TokenId {
        &self.id
    }

    pub fn token(&self) -> &Secret {
        &self.token
    }
}

fn new_token() -> (TokenId, Secret, [u8; 32]) {
    let mut id_bytes = [0u8; 8];
    let mut secret_bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut id_bytes);
    rand::rngs::OsRng.fill_bytes(&mut secret_bytes);
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret_bytes);
    let hash: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
    let hex_id = hex::encode(id_bytes);
    let token_id =
        TokenId::parse(&hex_id).unwrap_or_else(|_| unreachable!("hex is a valid token id"));
    let token = Secret::new(format!("{TOKEN_PREFIX}{hex_id}_{secret}"));
    (token_id, token, hash)
}

impl Registry {
    /// Creates an org named `name` (its id is the slug of the name) with a first admin token.
    pub async fn create_org(&self, name: &str) -> Result<CreatedOrg, AppError> {
        self.create_org_with(name, PreparedToken::draw()).await
    }

    /// The same with an admin token drawn beforehand (and kept where a crash cannot lose it).
    pub async fn create_org_with(
        &self,
        name: &str,
        admin: PreparedToken,
    ) -> Result<CreatedOrg, AppError> {
        let display = domain::values::DisplayName::parse(name).map_err(|mut i| {
            i.field = "name";
            i.code = "org.name_invalid";
            AppError::invalid(i)
        })?;
        let org_id = OrgId::parse(Slug::derive(&display).as_str())?;
        let ctx = Ctx::system(org_id.clone(), "admin create-org");
        let events = org::decide(
            None,
            org::Command::Create {
                name: name.to_owned(),
            },
        )
        .map_err(org_rejection)?;
        let Some(event) = events.into_iter().next() else {
            return Err(AppError::Internal("org creation decided nothing".into()));
        };
        let appended = match self
            .append(&ctx, org_id.as_str(), None, &Event::Org(event))
            .await
        {
            Ok(appended) => appended,
            Err(AppendError::Conflict { .. }) => {
                return Err(org_rejection(org::Rejection::AlreadyExists));
            }
            Err(AppendError::Log(e)) => return Err(e.into()),
        };
        self.settle(appended.seq).await?;
        // Issuing the token is a second command on the same aggregate, with its own id.
        let token_ctx = Ctx {
            command_id: crate::new_id(),
            ..ctx
        };
        let issued = self
            .issue_prepared_token(&token_ctx, "bootstrap admin", "admin", admin)
            .await?;
        let admin_token = issued
            .value
            .token
            .ok_or_else(|| AppError::Internal("token not returned".into()))?;
        Ok(CreatedOrg {
            org: org_id,
            admin_token,
            position: issued.position,
        })
    }

    /// Issues a token for the caller's org. Admins only.
    pub async fn issue_token(
        &self,
        ctx: &Ctx,
        label: &str,
        role: &str,
    ) -> Result<Answer<IssuedToken>, AppError> {
        self.issue_prepared_token(ctx, label, role, PreparedToken::draw())
            .await
    }

    /// Issues `prepared` for the caller's org. Admins only.
    pub async fn issue_prepared_token(
        &self,
        ctx: &Ctx,
        label: &str,
        role: &str,
        prepared: PreparedToken,
    ) -> Result<Answer<IssuedToken>, AppError> {
        ctx.require_admin()?;
        let role = Role::parse(role)?;
        let row = self
            .views
            .org(ctx.org.as_str())?
            .ok_or_else(|| org_rejection(org::Rejection::NotFound))?;
        let state = org::Org {
            name: row.name.clone(),
            tokens: row.tokens.clone(),
        };
        let PreparedToken {
            id: token_id,
            token,
            hash,
        } = prepared;
        let command = org::Command::IssueToken {
            token_id: token_id.clone(),
            label: label.to_owned(),
            role,
            hash,
        };
        let events = org::decide(Some(&state), command).map_err(org_rejection)?;
        let Some(event) = events.into_iter().next() else {
            return Err(AppError::Internal("token issue decided nothing".into()));
        };
        let appended = match self
            .append(ctx, ctx.org.as_str(), Some(&row.stream), &Event::Org(event))
            .await
        {
            Ok(appended) => appended,
            Err(AppendError::Conflict { .. }) => {
                return Err(AppError::Conflict {
                    code: "org.conflict",
                    message: "the org changed at the same time; retry".into(),
                    current_version: Some(row.stream.version),
                });
            }
            Err(AppendError::Log(e)) => return Err(e.into()),
        };
        let position = self.settle(appended.seq).await?;
        if appended.duplicate {
            // A retry of a command that landed: describe the token it issued (whose secret
            // was shown once, to the first attempt), not the one this attempt drew.
            let original = self
                .views
                .command_target(ctx.org.as_str(), &ctx.command_id, views::TOKEN_ISSUED)?
                .and_then(|id| self.views.token(&id).transpose())
                .transpose()?
                .ok_or_else(AppError::idempotency_key_reused)?;
            let value = IssuedToken {
                token_id: original.token_id.as_str().to_owned(),
                label: original.label,
                role: original.role,
                token: None,
            };
            return Ok(Answer { value, position });
        }
        let value = IssuedToken {
            token_id: token_id.as_str().to_owned(),
            label: label.trim().to_owned(),
            role,
            token: Some(token),
        };
        Ok(Answer { value, position })
    }

    /// Checks a bearer token against the views.
    pub fn authenticate(&self, bearer: &str) -> Result<Principal, AppError> {
        let invalid = || {
            AppError::Unauthorized("the token is not valid; ask an org admin for a new one".into())
        };
        let rest = bearer.strip_prefix(TOKEN_PREFIX).ok_or_else(invalid)?;
        let (token_id, secret) = rest.split_once('_').ok_or_else(invalid)?;
        if token_id.len() != 16 || !token_id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid());
        }
        let row = match self.tokens.get(token_id) {
            Some(row) => row,
            None => {
                let row = self.views.token(token_id)?.ok_or_else(invalid)?;
                self.tokens.put(&row);
                row
            }
        };
        let hash: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        // Both sides are hashes of high-entropy secrets; a timing difference reveals nothing
        // usable, but compare without early exit anyway.
        let same = hash
            .iter()
            .zip(row.hash.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
        if !same {
            return Err(invalid());
        }
        let org = OrgId::parse(&row.org)?;
        Ok(Principal {
            org,
            role: row.role,
            actor: Actor {
                kind: ActorKind::Token,
                id: row.token_id.as_str().to_owned(),
                label: row.label,
            },
        })
    }
}
