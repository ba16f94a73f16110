//! Orgs, API tokens and authentication. A token is `mr_<token id>_<secret>`; only the
//! SHA-256 of the secret part is recorded, in the org's `TokenIssued` event.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use domain::org::{self, Org, Role};
use domain::values::{DisplayName, OrgId, Slug, TokenId};
use eventlog::{Actor, ActorKind};
use rand::RngCore;
use secrets::Secret;
use sha2::{Digest, Sha256};

use crate::execute::{self, Done, Refused, Stream};
use crate::{Answer, AppError, Ctx, Principal, Registry};

const TOKEN_PREFIX: &str = "mr_";

/// A new org and its first admin token, shown once.
pub struct CreatedOrg {
    pub org: OrgId,
    pub admin_token: Secret,
    pub position: u64,
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
        let mut id_bytes = [0u8; 8];
        let mut secret_bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut id_bytes);
        rand::rngs::OsRng.fill_bytes(&mut secret_bytes);
        let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret_bytes);
        let hash: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        let hex_id = hex::encode(id_bytes);
        let id =
            TokenId::parse(&hex_id).unwrap_or_else(|_| unreachable!("hex is a valid token id"));
        let token = Secret::new(format!("{TOKEN_PREFIX}{hex_id}_{secret}"));
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

fn rejection(refused: Refused<org::Rejection>) -> AppError {
    let rejection = match refused {
        Refused::Rejected(rejection) => rejection,
        Refused::Conflict => {
            return AppError::Conflict {
                code: "org.conflict",
                message: "the org changed at the same time; retry".into(),
                current_version: None,
            };
        }
        Refused::Failed(error) => return error,
    };
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
        org::Rejection::TokenExists => AppError::internal("token id collision"),
        org::Rejection::TokenNotFound => AppError::NotFound {
            code: "token.not_found",
            message: "no such token in this org".into(),
        },
        org::Rejection::LastAdminToken => AppError::Conflict {
            code: "token.last_admin",
            message: "this is the org's last active admin token; issue another admin token first, so that someone can still manage the org".into(),
            current_version: None,
        },
        org::Rejection::PlatformModelNotListed | org::Rejection::PlatformModelRetired => {
            AppError::internal("a platform model choice reached the token path")
        }
        org::Rejection::Invalid(invalid) => AppError::invalid(invalid),
    }
}

/// Creates an org named `name` (its id is the slug of the name) with a first admin token.
pub async fn create(registry: &Registry, name: &str) -> Result<CreatedOrg, AppError> {
    create_with(registry, name, PreparedToken::draw()).await
}

/// The same with an admin token drawn beforehand (and kept where a crash cannot lose it).
pub async fn create_with(
    registry: &Registry,
    name: &str,
    admin: PreparedToken,
) -> Result<CreatedOrg, AppError> {
    let display = DisplayName::parse(name).map_err(|mut i| {
        i.field = "name";
        i.code = "org.name_invalid";
        AppError::invalid(i)
    })?;
    let org_id = OrgId::parse(Slug::derive(&display).as_str())?;
    let ctx = Ctx::system(org_id.clone(), "admin create-org");
    let stream = Stream::new(org_id.as_str(), None);
    let command = org::Command::Create {
        name: name.to_owned(),
    };
    match execute::execute::<Org>(registry, &ctx, stream, None, command).await {
        Ok(_) => {}
        Err(Refused::Conflict) => {
            return Err(rejection(Refused::Rejected(org::Rejection::AlreadyExists)));
        }
        Err(refused) => return Err(rejection(refused)),
    }
    // Issuing the token is a second command on the same aggregate, with its own id.
    let issued = issue_prepared(
        registry,
        &ctx.next_command(),
        "bootstrap admin",
        Role::Admin,
        None,
        admin,
    )
    .await?;
    let admin_token = issued
        .value
        .token
        .map(|t| t.0)
        .ok_or_else(|| AppError::internal("the bootstrap token was not returned"))?;
    Ok(CreatedOrg {
        org: org_id,
        admin_token,
        position: issued.position,
    })
}

/// Issues a token for the caller's org. Admins only.
pub async fn issue_token(
    registry: &Registry,
    ctx: &Ctx,
    request: api::IssueToken,
) -> Result<Answer<api::IssuedToken>, AppError> {
    ctx.require_admin()?;
    let role = Role::parse(&request.role)?;
    let expires_at_ms = request
        .expires_at
        .as_deref()
        .map(|raw| crate::parse::timestamp("expires_at", raw))
        .transpose()?;
    issue_prepared(
        registry,
        ctx,
        &request.label,
        role,
        expires_at_ms,
        PreparedToken::draw(),
    )
    .await
}

/// Issues `prepared` for the caller's org, refused from `expires_at_ms` on if given. Admins
/// only. A retry of an issue that landed
/// describes the token it issued, without its secret (shown once, to the first attempt).
pub async fn issue_prepared(
    registry: &Registry,
    ctx: &Ctx,
    label: &str,
    role: Role,
    expires_at_ms: Option<i64>,
    prepared: PreparedToken,
) -> Result<Answer<api::IssuedToken>, AppError> {
    ctx.require_admin()?;
    // A retry of an issue that landed, whenever it comes (the log's deduplication lasts a
    // window only): the token it issued, unless this is another request under the same key.
    if let Some(original) = issued_by(registry, ctx)? {
        if original.label != label.trim() || original.role != role {
            return Err(AppError::idempotency_key_reused());
        }
        return Ok(Answer {
            value: issued_again(original),
            position: registry.views.position(),
        });
    }
    let PreparedToken { id, token, hash } = prepared;
    let done = execute_on_org(registry, ctx, |_| {
        Ok(org::Command::IssueToken {
            token_id: id.clone(),
            label: label.to_owned(),
            role,
            hash,
            expires_at_ms,
            now_ms: registry.now_ms(),
        })
    })
    .await
    .map_err(rejection)?;
    let position = done.position();
    if let Done::Retried { .. } = done {
        let original = issued_by(registry, ctx)?.ok_or_else(AppError::idempotency_key_reused)?;
        return Ok(Answer {
            value: issued_again(original),
            position,
        });
    }
    Ok(Answer {
        value: api::IssuedToken {
            token_id: id.as_str().to_owned(),
            label: label.trim().to_owned(),
            role: role.as_str().to_owned(),
            token: Some(api::SecretField(token)),
            expires_at: expires_at_ms.map(crate::present::rfc3339),
        },
        position,
    })
}

/// The token the caller's command issued, if it landed.
fn issued_by(registry: &Registry, ctx: &Ctx) -> Result<Option<views::TokenRow>, AppError> {
    Ok(registry
        .views
        .command_target(ctx.org.as_str(), &ctx.command_id, views::TOKEN_ISSUED)?
        .and_then(|id| registry.views.token(&id).transpose())
        .transpose()?)
}

/// A token issued before, described again: its secret was shown once, to the first attempt.
fn issued_again(original: views::TokenRow) -> api::IssuedToken {
    api::IssuedToken {
        token_id: original.token_id.as_str().to_owned(),
        label: original.label,
        role: original.role.as_str().to_owned(),
        token: None,
        expires_at: original.expires_at_ms.map(crate::present::rfc3339),
    }
}

/// Decides the command `make` builds on the org as the views hold it, and appends it.
///
/// A conflict means these views had not caught up with the org's stream: another replica
/// wrote to it, or a retried command's first attempt landed after an event these views
/// lack. The command is then decided once more on views that hold the log's end, where a
/// retry is recognised as one and a real race is decided on the new state.
pub(crate) async fn execute_on_org(
    registry: &Registry,
    ctx: &Ctx,
    make: impl Fn(&views::OrgRow) -> Result<org::Command, AppError>,
) -> Result<Done, Refused<org::Rejection>> {
    let mut caught_up = false;
    loop {
        let row = registry
            .views
            .org(ctx.org.as_str())
            .map_err(AppError::from)?
            .ok_or_else(|| AppError::NotFound {
                code: "org.not_found",
                message: "no such org".into(),
            })?;
        let command = make(&row)?;
        let stream = Stream::new(ctx.org.as_str(), Some(&row.stream));
        let state = org_state(&row);
        match execute::execute::<Org>(registry, ctx, stream, Some(&state), command).await {
            Err(Refused::Conflict) if !caught_up => {
                caught_up = true;
                let last = registry.log.last_seq().await.map_err(AppError::from)?;
                registry.settle(last).await?;
            }
            done => return done,
        }
    }
}

pub(crate) fn org_state(row: &views::OrgRow) -> Org {
    Org {
        name: row.name.clone(),
        tokens: row.tokens.clone(),
        active_admins: row.active_admins.clone(),
        revoked: row.revoked.clone(),
        default_model: row.default_model.clone(),
        hidden_models: row.hidden_models.clone(),
    }
}

/// The org's tokens, revoked ones included, never a secret. Admins only.
pub fn list_tokens(registry: &Registry, ctx: &Ctx) -> Result<Answer<Vec<api::Token>>, AppError> {
    ctx.require_admin()?;
    let position = registry.views.position();
    let tokens = registry.views.tokens(ctx.org.as_str())?;
    Ok(Answer {
        value: tokens
            .iter()
            .map(|token| present_token(registry, token))
            .collect(),
        position,
    })
}

/// A page of [`list_tokens`]: `limit` tokens after `cursor`, in the order they were issued
/// (the whole list with neither).
pub fn tokens_page(
    registry: &Registry,
    ctx: &Ctx,
    query: &api::PageQuery,
) -> Result<Answer<api::Paged<api::Token>>, AppError> {
    let page = crate::paging::Page::parse(query.limit, query.cursor.as_deref())?;
    let answer = list_tokens(registry, ctx)?;
    Ok(Answer {
        value: match page {
            Some(page) => page.of(answer.value, |token| token.token_id.as_str()),
            None => crate::paging::whole(answer.value),
        },
        position: answer.position,
    })
}

/// Revokes a token of the caller's org: refused from the next request on, on every replica
/// once its views include the revocation (the token cache honours it). Admins only; the
/// org's last active admin token cannot be revoked. Revoking a revoked token changes nothing.
pub async fn revoke_token(
    registry: &Registry,
    ctx: &Ctx,
    token_id: &str,
) -> Result<Answer<api::Token>, AppError> {
    ctx.require_admin()?;
    let not_found = || rejection(Refused::Rejected(org::Rejection::TokenNotFound));
    let id = TokenId::parse(token_id).map_err(|_| not_found())?;
    let done = execute_on_org(registry, ctx, |_| {
        let now_ms = registry.now_ms();
        let expired_admins = registry
            .views
            .tokens(ctx.org.as_str())?
            .into_iter()
            .filter(|token| token.role == Role::Admin && expired(token, now_ms))
            .map(|token| token.token_id)
            .collect();
        Ok(org::Command::RevokeToken {
            token_id: id.clone(),
            expired_admins,
        })
    })
    .await
    .map_err(rejection)?;
    let token = registry
        .views
        .token(id.as_str())?
        .filter(|token| token.org == ctx.org.as_str())
        .ok_or_else(not_found)?;
    Ok(Answer {
        value: present_token(registry, &token),
        position: done.position(),
    })
}

/// Whether the token `row` is past its expiry at `now_ms`.
fn expired(row: &views::TokenRow, now_ms: i64) -> bool {
    row.expires_at_ms.is_some_and(|at| at <= now_ms)
}

fn present_token(registry: &Registry, row: &views::TokenRow) -> api::Token {
    let now_ms = registry.now_ms();
    api::Token {
        token_id: row.token_id.as_str().to_owned(),
        label: row.label.clone(),
        role: row.role.as_str().to_owned(),
        state: if row.revoked.is_some() {
            "revoked"
        } else if expired(row, now_ms) {
            "expired"
        } else {
            "active"
        }
        .to_owned(),
        issued_at: crate::present::rfc3339(row.issued_at_ms),
        issued_by: row.issued_by.clone(),
        revoked_at: row
            .revoked
            .as_ref()
            .map(|(at, _)| crate::present::rfc3339(*at)),
        revoked_by: row.revoked.as_ref().map(|(_, by)| by.clone()),
        expires_at: row.expires_at_ms.map(crate::present::rfc3339),
        last_used_at: registry
            .token_use
            .last_used(row.token_id.as_str())
            .map(crate::present::rfc3339),
    }
}

/// Checks a bearer token against the views.
pub fn authenticate(registry: &Registry, bearer: &str) -> Result<Principal, AppError> {
    let invalid =
        || AppError::Unauthorized("the token is not valid; ask an org admin for a new one".into());
    let rest = bearer.strip_prefix(TOKEN_PREFIX).ok_or_else(invalid)?;
    let (token_id, secret) = rest.split_once('_').ok_or_else(invalid)?;
    if token_id.len() != 16 || !token_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid());
    }
    let row = match registry
        .tokens
        .get(token_id, registry.views.last_revocation())
    {
        Some(row) => row,
        None => {
            // The position first: a revocation applied after it makes this read stale.
            let position = registry.views.position();
            let row = Arc::new(registry.views.token(token_id)?.ok_or_else(invalid)?);
            registry.tokens.put(&row, position);
            row
        }
    };
    if row.revoked.is_some() {
        return Err(AppError::Unauthorized(
            "the token was revoked; ask an org admin for a new one".into(),
        ));
    }
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
    // Only once the secret matched: an expiry is not told to whoever merely knows the id.
    if expired(&row, registry.now_ms()) {
        return Err(AppError::TokenExpired {
            at: row
                .expires_at_ms
                .map(crate::present::rfc3339)
                .unwrap_or_default(),
        });
    }
    let org = OrgId::parse(&row.org)?;
    registry
        .token_use
        .touch(row.token_id.as_str(), registry.now_ms());
    Ok(Principal {
        org,
        role: row.role,
        actor: Actor {
            kind: ActorKind::Token,
            id: row.token_id.as_str().to_owned(),
            label: row.label.clone(),
        },
    })
}

/// Whether an org exists (the NATS API checks a subject's org before anything else).
pub fn exists(registry: &Registry, org: &OrgId) -> Result<bool, AppError> {
    Ok(registry.views.org(org.as_str())?.is_some())
}

/// Token rows by token id, each with when and at which views position it was read. A row
/// changes only when its token is revoked: an entry read before the views' last revocation
/// is read again, so a revocation holds from the views position that applied it on (not
/// after a TTL). Entries also expire, bounding the memory of tokens no longer used. A row is
/// shared, not copied, with each request that reads it.
#[derive(Default)]
pub(crate) struct TokenCache {
    rows: std::sync::RwLock<std::collections::HashMap<String, CachedToken>>,
}

/// A cached row, when it was read and at which views position.
type CachedToken = (Arc<views::TokenRow>, Instant, u64);

impl TokenCache {
    const TTL: Duration = Duration::from_secs(30);
    const CAPACITY: usize = 100_000;

    fn get(&self, token_id: &str, last_revocation: u64) -> Option<Arc<views::TokenRow>> {
        let rows = self.rows.read().ok()?;
        let (row, at, position) = rows.get(token_id)?;
        (at.elapsed() < Self::TTL && *position >= last_revocation).then(|| Arc::clone(row))
    }

    fn put(&self, row: &Arc<views::TokenRow>, position: u64) {
        let Ok(mut rows) = self.rows.write() else {
            return;
        };
        if rows.len() >= Self::CAPACITY {
            rows.clear();
        }
        rows.insert(
            row.token_id.as_str().to_owned(),
            (Arc::clone(row), Instant::now(), position),
        );
    }
}
