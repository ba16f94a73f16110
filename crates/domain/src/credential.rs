//! The credential aggregate: a sealed secret of one provider, reusable by many models of one
//! org, over its whole life. It is created inline with a model or as a named resource,
//! renamed, rotated to a new version (after a passing retest of every model using it, when
//! asked), its retired versions shredded, and deleted once no active model uses it. What
//! clients see of it (its state, whether it expires soon) is a pure function of the state,
//! the time and whether its data key can be unwrapped.

use secrets::{Fingerprint, Sealed};
use serde::{Deserialize, Serialize};

use crate::Invalid;
use crate::connection_test::TestResult;
use crate::provider::{CredentialKind, Provider};
use crate::values::{CredentialId, CredentialName};

/// How far ahead an expiry is flagged in listings: 7 days.
pub const EXPIRY_WARNING_MS: i64 = 7 * 24 * 60 * 60 * 1000;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credential {
    pub id: CredentialId,
    pub provider: Provider,
    pub kind: CredentialKind,
    /// The current version: starts at 1, one more per rotation; the vault's data key is
    /// bound to it.
    pub version: u64,
    pub preview: String,
    pub fingerprint: Fingerprint,
    /// Given when it was created as a resource, or by a rename; `None` for one entered with
    /// a model and never named.
    pub name: Option<CredentialName>,
    /// When the current version stops working, if known.
    pub expires_at_ms: Option<i64>,
    /// Every version, oldest first.
    pub versions: Vec<Version>,
    pub deleted: bool,
}

/// One version of a credential, as its history shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Version {
    pub version: u64,
    pub preview: String,
    /// Its data key was destroyed: its ciphertext can never be opened again.
    pub shredded: bool,
}

/// What clients are told about a credential.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Active,
    /// Past its expiry: resolve refuses it.
    Expired,
    /// Its current version cannot be opened (its data key is shredded, lost, or wrapped
    /// under another master key): someone must enter it again or restore the key.
    NeedsReconfiguration,
    Deleted,
}

impl State {
    pub const ALL: [State; 4] = [
        Self::Active,
        Self::Expired,
        Self::NeedsReconfiguration,
        Self::Deleted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Expired => "expired",
            Self::NeedsReconfiguration => "needs_reconfiguration",
            Self::Deleted => "deleted",
        }
    }
}

/// Why a credential cannot be used for a call now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unusable {
    Deleted,
    Shredded,
    Expired { at_ms: i64 },
}

impl Credential {
    /// The state at `now_ms`, given whether the data key of the current version could be
    /// unwrapped (as far as this process knows).
    pub fn state(&self, now_ms: i64, key_readable: bool) -> State {
        match self.usable(now_ms) {
            Err(Unusable::Deleted) => State::Deleted,
            Err(Unusable::Shredded) => State::NeedsReconfiguration,
            _ if !key_readable => State::NeedsReconfiguration,
            Err(Unusable::Expired { .. }) => State::Expired,
            Ok(()) => State::Active,
        }
    }

    /// Whether the current version may be handed out for a call at `now_ms`.
    pub fn usable(&self, now_ms: i64) -> Result<(), Unusable> {
        if self.deleted {
            return Err(Unusable::Deleted);
        }
        if self.current().is_some_and(|v| v.shredded) {
            return Err(Unusable::Shredded);
        }
        match self.expires_at_ms {
            Some(at_ms) if at_ms <= now_ms => Err(Unusable::Expired { at_ms }),
            _ => Ok(()),
        }
    }

    /// Still usable, but expiring within [`EXPIRY_WARNING_MS`] of `now_ms`.
    pub fn expiring_soon(&self, now_ms: i64) -> bool {
        self.expires_at_ms
            .is_some_and(|at| at > now_ms && at - now_ms <= EXPIRY_WARNING_MS)
    }

    /// Versions no model can use any more and whose data key still exists: every version
    /// but the current one, and the current one too once the credential is deleted.
    pub fn retired_versions(&self) -> Vec<u64> {
        self.versions
            .iter()
            .filter(|v| !v.shredded && (self.deleted || v.version != self.version))
            .map(|v| v.version)
            .collect()
    }

    fn current(&self) -> Option<&Version> {
        self.versions.iter().find(|v| v.version == self.version)
    }
}

/// Secret material sealed at the edge, before the command is decided.
pub struct SealedMaterial {
    pub kind: CredentialKind,
    pub sealed: Sealed,
    pub fingerprint: Fingerprint,
    pub preview: String,
    /// The longest the secret can live, where the provider makes that known
    /// (`CredentialSecret::known_lifetime_ms`).
    pub known_lifetime_ms: Option<i64>,
}

pub enum Command {
    /// A credential entered with a model.
    Create {
        id: CredentialId,
        provider: Provider,
        material: SealedMaterial,
    },
    /// A credential created as a resource, with a name.
    Register(Box<Register>),
    Rename {
        name: CredentialName,
    },
    Rotate(Box<Rotate>),
    Delete {
        /// The active models that use the credential (looked up).
        users: Vec<String>,
    },
    /// Records that a retired version's data key was destroyed.
    Shred {
        version: u64,
    },
}

pub struct Register {
    pub id: CredentialId,
    pub provider: Provider,
    pub name: CredentialName,
    pub material: SealedMaterial,
    pub expires_at_ms: Option<i64>,
    pub now_ms: i64,
    /// The saved credential of the org with the same secret, if any (looked up by
    /// fingerprint).
    pub same_secret: Option<CredentialId>,
}

pub struct Rotate {
    pub material: SealedMaterial,
    pub expires_at_ms: Option<i64>,
    pub now_ms: i64,
    /// The saved credential of the org with the new secret, if any (this one included).
    pub same_secret: Option<CredentialId>,
    /// With a retest: the active models that use the credential and the connection tests
    /// run with the new secret for them.
    pub retest: Option<Retest>,
}

#[derive(Clone)]
pub struct Retest {
    pub users: Vec<String>,
    pub outcomes: Vec<Outcome>,
}

/// A connection test of a model with the new secret; no result when it did not finish.
#[derive(Clone)]
pub struct Outcome {
    pub model: String,
    pub result: Option<TestResult>,
}

/// A model whose retest did not pass, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub model: String,
    pub class: String,
    pub hint: String,
}

/// Architecture invariant: append-only, like every event enum; golden files in
/// `schemas/events/` hold every variant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    Created(Created),
    Registered(Registered),
    Renamed {
        name: CredentialName,
    },
    /// A new version became current, for every model using the credential at once.
    Rotated(Rotated),
    /// The data key of `version` was destroyed.
    Shredded {
        version: u64,
    },
    Deleted,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Created {
    pub id: CredentialId,
    pub provider: Provider,
    pub kind: CredentialKind,
    pub version: u64,
    pub sealed: Sealed,
    pub fingerprint: Fingerprint,
    pub preview: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registered {
    pub id: CredentialId,
    pub provider: Provider,
    pub kind: CredentialKind,
    pub version: u64,
    pub sealed: Sealed,
    pub fingerprint: Fingerprint,
    pub preview: String,
    pub name: CredentialName,
    pub expires_at_ms: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rotated {
    pub version: u64,
    pub kind: CredentialKind,
    pub sealed: Sealed,
    pub fingerprint: Fingerprint,
    pub preview: String,
    pub expires_at_ms: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("a credential with this id already exists")]
    AlreadyExists,
    #[error("no such credential")]
    NotFound,
    #[error("the credential is deleted")]
    Deleted,
    /// The secret is saved already, as another credential of the org.
    #[error("the secret is saved already as credential {0}")]
    SecretSaved(CredentialId),
    /// A rotation to the secret the credential has now.
    #[error("the new secret is the current one")]
    SameSecret,
    #[error("{} active models use the credential", .models.len())]
    InUse { models: Vec<String> },
    #[error("the retest failed for {} models", .0.len())]
    RetestFailed(Vec<Failure>),
    #[error("the credential has no version {0}")]
    NoSuchVersion(u64),
    #[error("version {0} is the current one")]
    VersionInUse(u64),
    #[error("{0}")]
    Invalid(Invalid),
}

impl From<Invalid> for Rejection {
    fn from(invalid: Invalid) -> Self {
        Self::Invalid(invalid)
    }
}

pub fn decide(state: Option<&Credential>, command: Command) -> Result<Vec<Event>, Rejection> {
    match (state, command) {
        (Some(_), Command::Create { .. } | Command::Register(_)) => Err(Rejection::AlreadyExists),
        (
            None,
            Command::Create {
                id,
                provider,
                material,
            },
        ) => Ok(vec![Event::Created(Created {
            id,
            provider,
            kind: material.kind,
            version: 1,
            sealed: material.sealed,
            fingerprint: material.fingerprint,
            preview: material.preview,
        })]),
        (None, Command::Register(register)) => {
            let register = *register;
            if let Some(saved) = register.same_secret {
                return Err(Rejection::SecretSaved(saved));
            }
            let expires_at_ms = expiry(
                register.expires_at_ms,
                register.material.known_lifetime_ms,
                register.now_ms,
            )?;
            let material = register.material;
            Ok(vec![Event::Registered(Registered {
                id: register.id,
                provider: register.provider,
                kind: material.kind,
                version: 1,
                sealed: material.sealed,
                fingerprint: material.fingerprint,
                preview: material.preview,
                name: register.name,
                expires_at_ms,
            })])
        }
        (None, _) => Err(Rejection::NotFound),
        (Some(credential), Command::Shred { version }) => {
            let Some(found) = credential.versions.iter().find(|v| v.version == version) else {
                return Err(Rejection::NoSuchVersion(version));
            };
            if found.shredded {
                return Ok(Vec::new());
            }
            if !credential.retired_versions().contains(&version) {
                return Err(Rejection::VersionInUse(version));
            }
            Ok(vec![Event::Shredded { version }])
        }
        (Some(credential), _) if credential.deleted => Err(Rejection::Deleted),
        (Some(credential), Command::Rename { name }) => {
            if credential.name.as_ref() == Some(&name) {
                return Ok(Vec::new());
            }
            Ok(vec![Event::Renamed { name }])
        }
        (Some(credential), Command::Rotate(rotate)) => {
            let rotate = *rotate;
            match rotate.same_secret {
                Some(same) if same == credential.id => return Err(Rejection::SameSecret),
                Some(other) => return Err(Rejection::SecretSaved(other)),
                None => {}
            }
            if let Some(retest) = &rotate.retest {
                let failures = retest_failures(retest);
                if !failures.is_empty() {
                    return Err(Rejection::RetestFailed(failures));
                }
            }
            let expires_at_ms = expiry(
                rotate.expires_at_ms,
                rotate.material.known_lifetime_ms,
                rotate.now_ms,
            )?;
            let material = rotate.material;
            Ok(vec![Event::Rotated(Rotated {
                version: credential.version + 1,
                kind: material.kind,
                sealed: material.sealed,
                fingerprint: material.fingerprint,
                preview: material.preview,
                expires_at_ms,
            })])
        }
        (Some(_), Command::Delete { mut users }) => {
            if !users.is_empty() {
                users.sort();
                users.dedup();
                return Err(Rejection::InUse { models: users });
            }
            Ok(vec![Event::Deleted])
        }
    }
}

/// Every user without a passing test of the new secret, in model order.
fn retest_failures(retest: &Retest) -> Vec<Failure> {
    let mut users = retest.users.clone();
    users.sort();
    users.dedup();
    users
        .into_iter()
        .filter_map(|model| {
            let result = retest
                .outcomes
                .iter()
                .find(|o| o.model == model)
                .and_then(|o| o.result.as_ref());
            match result {
                Some(result) if result.passed() => None,
                Some(result) => Some(Failure {
                    model,
                    class: result.class.clone(),
                    hint: result.hint.clone(),
                }),
                None => Some(Failure {
                    model,
                    class: "not_completed".into(),
                    hint: "the connection test with the new secret did not finish in time; rotate again".into(),
                }),
            }
        })
        .collect()
}

/// The expiry a new secret gets: the one given (which must lie ahead), capped by what the
/// provider says such a secret lives at most.
fn expiry(
    given: Option<i64>,
    known_lifetime_ms: Option<i64>,
    now_ms: i64,
) -> Result<Option<i64>, Invalid> {
    if given.is_some_and(|at| at <= now_ms) {
        return Err(Invalid::new(
            "expires_at",
            "expires_at.past",
            "the expiry must lie in the future",
        ));
    }
    let cap = known_lifetime_ms.map(|lifetime| now_ms.saturating_add(lifetime));
    Ok(match (given, cap) {
        (Some(given), Some(cap)) => Some(given.min(cap)),
        (given, cap) => given.or(cap),
    })
}

pub fn evolve(state: Option<Credential>, event: &Event) -> Option<Credential> {
    match (state, event) {
        (_, Event::Created(created)) => Some(Credential {
            id: created.id.clone(),
            provider: created.provider,
            kind: created.kind,
            version: created.version,
            preview: created.preview.clone(),
            fingerprint: created.fingerprint,
            name: None,
            expires_at_ms: None,
            versions: vec![Version {
                version: created.version,
                preview: created.preview.clone(),
                shredded: false,
            }],
            deleted: false,
        }),
        (_, Event::Registered(registered)) => Some(Credential {
            id: registered.id.clone(),
            provider: registered.provider,
            kind: registered.kind,
            version: registered.version,
            preview: registered.preview.clone(),
            fingerprint: registered.fingerprint,
            name: Some(registered.name.clone()),
            expires_at_ms: registered.expires_at_ms,
            versions: vec![Version {
                version: registered.version,
                preview: registered.preview.clone(),
                shredded: false,
            }],
            deleted: false,
        }),
        (Some(mut credential), Event::Renamed { name }) => {
            credential.name = Some(name.clone());
            Some(credential)
        }
        (Some(mut credential), Event::Rotated(rotated)) => {
            credential.version = rotated.version;
            credential.kind = rotated.kind;
            credential.preview = rotated.preview.clone();
            credential.fingerprint = rotated.fingerprint;
            credential.expires_at_ms = rotated.expires_at_ms;
            credential.versions.push(Version {
                version: rotated.version,
                preview: rotated.preview.clone(),
                shredded: false,
            });
            Some(credential)
        }
        (Some(mut credential), Event::Shredded { version }) => {
            for v in &mut credential.versions {
                if v.version == *version {
                    v.shredded = true;
                }
            }
            Some(credential)
        }
        (Some(mut credential), Event::Deleted) => {
            credential.deleted = true;
            Some(credential)
        }
        (None, _) => None,
    }
}

crate::aggregate::aggregate!(Credential, CREDENTIAL, Credential);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::given;

    const NOW: i64 = 1_700_000_000_000;
    const DAY: i64 = 24 * 60 * 60 * 1000;

    fn id(raw: &str) -> CredentialId {
        CredentialId::parse(raw).unwrap()
    }

    fn material(byte: u8) -> SealedMaterial {
        SealedMaterial {
            kind: CredentialKind::ApiKey,
            sealed: Sealed {
                nonce: [byte; 12],
                ciphertext: vec![9; 40],
            },
            fingerprint: [byte; 32],
            preview: format!("••••{byte:04}"),
            known_lifetime_ms: None,
        }
    }

    fn create() -> Command {
        Command::Create {
            id: id("cred_1"),
            provider: Provider::Anthropic,
            material: material(3),
        }
    }

    fn register(expires_at_ms: Option<i64>) -> Command {
        Command::Register(Box::new(Register {
            id: id("cred_1"),
            provider: Provider::Openai,
            name: CredentialName::parse("Prod OpenAI").unwrap(),
            material: material(3),
            expires_at_ms,
            now_ms: NOW,
            same_secret: None,
        }))
    }

    fn rotate(byte: u8, retest: Option<Retest>) -> Command {
        Command::Rotate(Box::new(Rotate {
            material: material(byte),
            expires_at_ms: None,
            now_ms: NOW,
            same_secret: None,
            retest,
        }))
    }

    fn passed(class: &str) -> Option<TestResult> {
        Some(TestResult {
            class: class.into(),
            hint: format!("hint for {class}"),
            retry_after_ms: None,
            upstream_status: None,
            upstream_message: None,
            latency_ms: 5,
            suggested_input_cost: None,
            suggested_output_cost: None,
        })
    }

    /// The events a command makes on top of `history`, and the state after them.
    fn when(history: &[Event], command: Command) -> (Vec<Event>, Credential) {
        let state = given::<Credential>(history);
        let events = decide(state.as_ref(), command).unwrap();
        let all: Vec<Event> = history.iter().chain(&events).cloned().collect();
        (events, given::<Credential>(&all).unwrap())
    }

    #[test]
    fn create_records_version_one_and_no_plaintext() {
        let events = decide(None, create()).unwrap();
        let state = events.iter().fold(None, evolve).unwrap();
        assert_eq!(state.version, 1);
        assert_eq!(state.preview, "••••0003");
        assert_eq!(state.name, None);
        assert_eq!(
            decide(Some(&state), create()).unwrap_err(),
            Rejection::AlreadyExists
        );
    }

    #[test]
    fn a_registered_credential_has_its_name_and_expiry() {
        let (events, state) = when(&[], register(Some(NOW + 30 * DAY)));
        assert!(matches!(events[0], Event::Registered(_)));
        assert_eq!(state.name.unwrap().as_str(), "Prod OpenAI");
        assert_eq!(state.expires_at_ms, Some(NOW + 30 * DAY));
        // An expiry in the past is refused
        let past = decide(None, register(Some(NOW - 1))).unwrap_err();
        assert!(matches!(past, Rejection::Invalid(i) if i.code == "expires_at.past"));
    }

    #[test]
    fn a_secret_saved_already_is_not_registered_twice() {
        let Command::Register(mut register) = register(None) else {
            unreachable!()
        };
        register.same_secret = Some(id("cred_old"));
        assert_eq!(
            decide(None, Command::Register(register)).unwrap_err(),
            Rejection::SecretSaved(id("cred_old"))
        );
    }

    #[test]
    fn a_known_lifetime_caps_the_expiry() {
        // Given a Bedrock short-term key, which lives 12 hours at most
        let Command::Register(mut register) = register(Some(NOW + 30 * DAY)) else {
            unreachable!()
        };
        register.material.known_lifetime_ms = Some(crate::provider::BEDROCK_SHORT_TERM_LIFETIME_MS);
        // When it is registered with a later expiry, or none
        let (_, capped) = when(&[], Command::Register(register));
        // Then it expires 12 hours from now
        assert_eq!(capped.expires_at_ms, Some(NOW + 12 * 60 * 60 * 1000));
        assert!(capped.expiring_soon(NOW));
    }

    #[test]
    fn rename_records_only_a_change() {
        let (history, _) = when(&[], register(None));
        let name = CredentialName::parse("Staging").unwrap();
        let (renamed, state) = when(&history, Command::Rename { name: name.clone() });
        assert_eq!(renamed.len(), 1);
        assert_eq!(state.name, Some(name.clone()));
        let all: Vec<Event> = history.into_iter().chain(renamed).collect();
        let (again, _) = when(&all, Command::Rename { name });
        assert!(again.is_empty());
    }

    #[test]
    fn rotation_makes_a_new_current_version_and_keeps_the_history() {
        // Given a credential at version 1
        let (history, _) = when(&[], register(Some(NOW + DAY)));
        // When it is rotated to a new secret
        let (rotated, state) = when(&history, rotate(4, None));
        // Then version 2 is current, with the new preview and fingerprint, and no expiry
        assert_eq!(state.version, 2);
        assert_eq!(state.preview, "••••0004");
        assert_eq!(state.fingerprint, [4; 32]);
        assert_eq!(state.expires_at_ms, None);
        let previews: Vec<&str> = state.versions.iter().map(|v| v.preview.as_str()).collect();
        assert_eq!(previews, ["••••0003", "••••0004"]);
        // And version 1 is retired, waiting to be shredded
        assert_eq!(state.retired_versions(), [1]);
        assert!(matches!(rotated[0], Event::Rotated(_)));
    }

    #[test]
    fn rotation_to_a_saved_secret_is_refused() {
        let (history, state) = when(&[], register(None));
        let same = |same_secret| {
            Command::Rotate(Box::new(Rotate {
                same_secret: Some(same_secret),
                ..match rotate(4, None) {
                    Command::Rotate(r) => *r,
                    _ => unreachable!(),
                }
            }))
        };
        let given = given::<Credential>(&history);
        assert_eq!(
            decide(given.as_ref(), same(state.id.clone())).unwrap_err(),
            Rejection::SameSecret
        );
        assert_eq!(
            decide(given.as_ref(), same(id("cred_9"))).unwrap_err(),
            Rejection::SecretSaved(id("cred_9"))
        );
    }

    #[test]
    fn a_retest_switches_only_when_every_user_passes() {
        let (history, _) = when(&[], register(None));
        let state = given::<Credential>(&history);
        let users = || vec!["a".to_owned(), "b".to_owned(), "c".to_owned()];
        // Given three users, one failing with the new secret and one not finished
        let retest = Retest {
            users: users(),
            outcomes: vec![
                Outcome {
                    model: "a".into(),
                    result: passed("ok"),
                },
                Outcome {
                    model: "b".into(),
                    result: passed("auth_invalid"),
                },
            ],
        };
        // When rotating with the retest
        let refused = decide(state.as_ref(), rotate(4, Some(retest))).unwrap_err();
        // Then nothing switches, and the failures are named with class and hint
        assert_eq!(
            refused,
            Rejection::RetestFailed(vec![
                Failure {
                    model: "b".into(),
                    class: "auth_invalid".into(),
                    hint: "hint for auth_invalid".into(),
                },
                Failure {
                    model: "c".into(),
                    class: "not_completed".into(),
                    hint: "the connection test with the new secret did not finish in time; rotate again".into(),
                },
            ])
        );
        // And when all pass, it switches
        let all_pass = Retest {
            users: users(),
            outcomes: users()
                .into_iter()
                .map(|model| Outcome {
                    model,
                    result: passed("ok"),
                })
                .collect(),
        };
        let events = decide(state.as_ref(), rotate(4, Some(all_pass))).unwrap();
        assert!(matches!(&events[0], Event::Rotated(r) if r.version == 2));
    }

    #[test]
    fn delete_is_refused_while_active_models_use_it() {
        let (history, _) = when(&[], register(None));
        let state = given::<Credential>(&history);
        let refused = decide(
            state.as_ref(),
            Command::Delete {
                users: vec!["zeta".into(), "alpha".into()],
            },
        )
        .unwrap_err();
        assert_eq!(
            refused,
            Rejection::InUse {
                models: vec!["alpha".into(), "zeta".into()]
            }
        );
        // Once they moved, it is deleted, and every version is then retired
        let (_, deleted) = when(&history, Command::Delete { users: vec![] });
        assert!(deleted.deleted);
        assert_eq!(deleted.retired_versions(), [1]);
        assert_eq!(deleted.state(NOW, true), State::Deleted);
        // And nothing but shredding applies to it any more
        assert_eq!(
            decide(Some(&deleted), rotate(5, None)).unwrap_err(),
            Rejection::Deleted
        );
    }

    #[test]
    fn only_retired_versions_are_shredded_and_once() {
        let (history, _) = when(&[], register(None));
        let (rotated, _) = when(&history, rotate(4, None));
        let history: Vec<Event> = history.into_iter().chain(rotated).collect();
        let state = given::<Credential>(&history);
        assert_eq!(
            decide(state.as_ref(), Command::Shred { version: 2 }).unwrap_err(),
            Rejection::VersionInUse(2)
        );
        assert_eq!(
            decide(state.as_ref(), Command::Shred { version: 7 }).unwrap_err(),
            Rejection::NoSuchVersion(7)
        );
        let (shredded, after) = when(&history, Command::Shred { version: 1 });
        assert_eq!(shredded, vec![Event::Shredded { version: 1 }]);
        assert!(after.versions[0].shredded);
        assert!(after.retired_versions().is_empty());
        assert_eq!(after.state(NOW, true), State::Active);
        assert!(
            decide(Some(&after), Command::Shred { version: 1 })
                .unwrap()
                .is_empty(),
            "a second shred records nothing"
        );
    }

    #[test]
    fn state_and_expiry_follow_the_clock_and_the_key() {
        let (_, state) = when(&[], register(Some(NOW + 10 * DAY)));
        assert_eq!(state.state(NOW, true), State::Active);
        assert!(!state.expiring_soon(NOW));
        assert!(state.expiring_soon(NOW + 3 * DAY + 1));
        assert_eq!(state.state(NOW + 10 * DAY, true), State::Expired);
        assert!(
            !state.expiring_soon(NOW + 10 * DAY),
            "expired, not expiring"
        );
        assert_eq!(
            state.usable(NOW + 10 * DAY),
            Err(Unusable::Expired {
                at_ms: NOW + 10 * DAY
            })
        );
        assert_eq!(state.state(NOW, false), State::NeedsReconfiguration);
        assert_eq!(
            state.state(NOW + 10 * DAY, false),
            State::NeedsReconfiguration,
            "an unreadable key is what to fix first"
        );
    }
}
