//! Who is asking, for which org, and which command this is: the context every command and
//! query runs in, and the ids that make a retried command one command.

use domain::Invalid;
use domain::org::Role;
use domain::values::{IdempotencyKey, OrgId};
use eventlog::{Actor, ActorKind};

use crate::AppError;

/// Who a valid token belongs to.
#[derive(Clone, Debug)]
pub struct Principal {
    pub(crate) org: OrgId,
    pub(crate) role: Role,
    pub(crate) actor: Actor,
}

impl Principal {
    pub fn org(&self) -> &OrgId {
        &self.org
    }

    pub fn role(&self) -> Role {
        self.role
    }
}

/// The context of one request or job.
#[derive(Clone, Debug)]
pub struct Ctx {
    pub(crate) org: OrgId,
    pub(crate) role: Role,
    pub(crate) actor: Actor,
    pub(crate) request_id: String,
    /// Retries with one command id are one command; empty for reads, which append nothing.
    pub(crate) command_id: String,
    /// The command id comes from the sender's idempotency key: a retry under it must ask
    /// for what its first attempt did (another request under the key is refused).
    pub(crate) keyed: bool,
    /// The client's address as the server saw it (the TCP peer); empty off HTTP.
    pub(crate) client_addr: String,
}

impl Ctx {
    /// A read: it appends nothing, so it carries no ids (none are made on the hot path).
    pub fn read(principal: Principal) -> Self {
        Self {
            org: principal.org,
            role: principal.role,
            actor: principal.actor,
            request_id: String::new(),
            command_id: String::new(),
            keyed: false,
            client_addr: String::new(),
        }
    }

    /// A command sent as `method path`: its command id is the client's idempotency key bound
    /// to that target, or a fresh id. A request id the client sent is kept when it is a
    /// plain token (it is logged and recorded).
    pub fn command(
        principal: Principal,
        method: &str,
        path: &str,
        idempotency_key: Option<&IdempotencyKey>,
        request_id: Option<&str>,
    ) -> Self {
        Self {
            org: principal.org,
            role: principal.role,
            actor: principal.actor,
            request_id: request_id
                .filter(|id| IdempotencyKey::parse(id).is_ok())
                .map_or_else(new_id, str::to_owned),
            command_id: idempotency_key
                .map_or_else(new_id, |key| keyed_command_id(method, path, key)),
            keyed: idempotency_key.is_some(),
            client_addr: String::new(),
        }
    }

    /// The registry itself (bootstrap, admin commands run on the server).
    pub fn system(org: OrgId, label: &str) -> Self {
        Self {
            org,
            role: Role::Admin,
            actor: Actor {
                kind: ActorKind::System,
                id: "system".into(),
                label: label.into(),
            },
            request_id: new_id(),
            command_id: new_id(),
            keyed: false,
            client_addr: String::new(),
        }
    }

    /// The platform operator, acting on the platform catalog through a server-side command
    /// (`modelreg catalog …`) or the registry itself (the seed, the periodic sync). The org is
    /// the platform's namespace; `command_id` is fresh, or fixed where a retry must be one
    /// command (the seed).
    pub fn operator(label: &str, command_id: Option<String>) -> Self {
        Self {
            org: OrgId::platform(),
            role: Role::Admin,
            actor: Actor {
                kind: ActorKind::System,
                id: "operator".into(),
                label: label.into(),
            },
            request_id: new_id(),
            command_id: command_id.unwrap_or_else(new_id),
            keyed: false,
            client_addr: String::new(),
        }
    }

    /// A worker's command: its id derives from the job, so a redelivered job records once.
    pub fn worker(org: OrgId, worker: &str, label: &str, command_id: String) -> Self {
        Self {
            org,
            role: Role::Admin,
            actor: Actor {
                kind: ActorKind::Worker,
                id: worker.into(),
                label: label.into(),
            },
            request_id: new_id(),
            command_id,
            keyed: false,
            client_addr: String::new(),
        }
    }

    /// A workflow report from the pipelines product over NATS (`pipelines.<org>.…`), as
    /// `method path` with the sender's idempotency key.
    pub fn pipelines(
        org: OrgId,
        method: &str,
        path: &str,
        idempotency_key: Option<&IdempotencyKey>,
    ) -> Self {
        Self {
            org,
            role: Role::Service,
            actor: Actor {
                kind: ActorKind::System,
                id: "pipelines".into(),
                label: "pipelines (NATS)".into(),
            },
            request_id: new_id(),
            command_id: idempotency_key
                .map_or_else(new_id, |key| keyed_command_id(method, path, key)),
            keyed: idempotency_key.is_some(),
            client_addr: String::new(),
        }
    }

    /// The same context, recorded as coming from `address` (the TCP peer the server saw).
    pub fn from_address(self, address: impl std::fmt::Display) -> Self {
        Self {
            client_addr: address.to_string(),
            ..self
        }
    }

    pub fn org(&self) -> &OrgId {
        &self.org
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// The same caller with a command id derived from this one's: a further command of one
    /// request that a retry of the request must find again (the tests of a rotation's
    /// retest, the shredding after it).
    pub(crate) fn derived(&self, suffix: &str) -> Self {
        Self {
            command_id: format!("{}-{suffix}", self.command_id),
            ..self.clone()
        }
    }

    /// The same caller with the command id `command_id`: a command whose id derives from
    /// what it records (a usage record's id), not from the request carrying it.
    pub(crate) fn with_command(&self, command_id: String) -> Self {
        Self {
            command_id,
            ..self.clone()
        }
    }

    /// The same caller with another command id: a second command of one request.
    pub(crate) fn next_command(&self) -> Self {
        Self {
            command_id: new_id(),
            ..self.clone()
        }
    }

    pub(crate) fn require_admin(&self) -> Result<(), AppError> {
        match self.role {
            Role::Admin => Ok(()),
            Role::Member | Role::Service => Err(AppError::Forbidden(
                "this needs an admin token; member and service tokens cannot manage models".into(),
            )),
        }
    }

    /// The platform catalog is the operator's: only `Ctx::operator` changes it.
    pub(crate) fn require_operator(&self) -> Result<(), AppError> {
        if self.org.is_platform() {
            return Ok(());
        }
        Err(AppError::Forbidden(
            "the platform catalog is changed by the operator (modelreg catalog …on the server), not through an org's token".into(),
        ))
    }

    /// Workflows are reported by the pipelines product (a service token) or an admin.
    pub(crate) fn require_reporter(&self) -> Result<(), AppError> {
        match self.role {
            Role::Admin | Role::Service => Ok(()),
            Role::Member => Err(AppError::Forbidden("member tokens can only read".into())),
        }
    }

    /// Resolve hands out credentials: service tokens only.
    pub(crate) fn require_service(&self) -> Result<(), AppError> {
        match self.role {
            Role::Service => Ok(()),
            Role::Admin | Role::Member => Err(AppError::Forbidden(
                "resolve returns credentials and needs a service token; ask an org admin to issue one".into(),
            )),
        }
    }
}

/// The command id of a request that carries an `Idempotency-Key`: the key belongs to one
/// request target, so the same key on another method or path is another command (the log
/// would otherwise take it for a retry and append nothing). HTTP and the NATS workflow
/// reports name the target alike (`PUT /v1/workflows/<id>`).
pub fn keyed_command_id(method: &str, path: &str, key: &IdempotencyKey) -> String {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    for part in [method, path, key.as_str()] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    let digest = hasher.finalize();
    format!("k-{}", hex::encode(&digest[..16]))
}

/// A fresh id, unique across processes: 64 random bits drawn once per process, then a
/// counter. Cheap enough for every request (no system call per id).
pub fn new_id() -> String {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicU64, Ordering};
    static PREFIX: OnceLock<String> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = PREFIX.get_or_init(|| {
        let mut bytes = [0u8; 8];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
        hex::encode(bytes)
    });
    format!("{prefix}{:012x}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// The TCP peer of a request's connection, as the server saw it (a proxy in front is what
/// it sees, then). The server puts it in a command request's extensions; the JSON API and
/// the console record it in the envelope of every command the request runs.
#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub std::net::SocketAddr);

/// An idempotency key as sent, or the problem with it (the same rule on every transport).
pub fn idempotency_key(raw: Option<&str>) -> Result<Option<IdempotencyKey>, Invalid> {
    raw.map(IdempotencyKey::parse).transpose()
}
