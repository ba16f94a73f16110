//! The credential aggregate: a sealed secret with its fingerprint and preview, reusable by
//! many models of one org.

use secrets::{Fingerprint, Sealed};
use serde::{Deserialize, Serialize};

use crate::provider::{CredentialKind, Provider};
use crate::values::CredentialId;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credential {
    pub id: CredentialId,
    pub provider: Provider,
    pub kind: CredentialKind,
    /// Starts at 1; the vault's data key is bound to it.
    pub version: u64,
    pub preview: String,
    pub fingerprint: Fingerprint,
}

/// Secret material sealed at the edge, before the command is decided.
pub struct SealedMaterial {
    pub kind: CredentialKind,
    pub sealed: Sealed,
    pub fingerprint: Fingerprint,
    pub preview: String,
}

pub enum Command {
    Create {
        id: CredentialId,
        provider: Provider,
        material: SealedMaterial,
    },
}

/// Architecture invariant: append-only, like every event enum.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    Created(Created),
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

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("a credential with this id already exists")]
    AlreadyExists,
}

pub fn decide(state: Option<&Credential>, command: Command) -> Result<Vec<Event>, Rejection> {
    match (state, command) {
        (Some(_), Command::Create { .. }) => Err(Rejection::AlreadyExists),
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
    }
}

pub fn evolve(_state: Option<Credential>, event: &Event) -> Option<Credential> {
    match event {
        Event::Created(created) => Some(Credential {
            id: created.id.clone(),
            provider: created.provider,
            kind: created.kind,
            version: created.version,
            preview: created.preview.clone(),
            fingerprint: created.fingerprint,
        }),
    }
}

crate::aggregate::aggregate!(Credential, CREDENTIAL, Credential);

#[cfg(test)]
mod tests {
    use super::*;

    fn create() -> Command {
        Command::Create {
            id: CredentialId::parse("cred_1").unwrap(),
            provider: Provider::Anthropic,
            material: SealedMaterial {
                kind: CredentialKind::ApiKey,
                sealed: Sealed {
                    nonce: [1; 12],
                    ciphertext: vec![9; 40],
                },
                fingerprint: [3; 32],
                preview: "••••wxyz".into(),
            },
        }
    }

    #[test]
    fn create_records_version_one_and_no_plaintext() {
        let events = decide(None, create()).unwrap();
        let state = events.iter().fold(None, evolve).unwrap();
        assert_eq!(state.version, 1);
        assert_eq!(state.preview, "••••wxyz");
        assert_eq!(
            decide(Some(&state), create()).unwrap_err(),
            Rejection::AlreadyExists
        );
    }
}
