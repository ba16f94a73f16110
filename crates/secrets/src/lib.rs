//! Secret values as plain data, shared by the pure domain and the vault that seals them: the
//! zeroizing [`Secret`], the [`Sealed`] ciphertext of a credential version, the keyed
//! [`Fingerprint`] of a secret and its masked [`preview`].
//!
//! Architecture invariant: no IO, no randomness, no async; nothing here formats, logs or
//! serializes a plaintext. The only way to read a secret is the greppable
//! [`Secret::expose_secret`].

mod secret;

use serde::{Deserialize, Serialize};

pub use secret::{Secret, preview};

/// A keyed fingerprint (HMAC-SHA256) of a secret within an org and provider: equal secrets
/// have equal fingerprints there, and it reveals nothing about the secret.
pub type Fingerprint = [u8; 32];

/// A sealed credential version: AES-256-GCM ciphertext (tag appended) and its nonce. It is
/// safe to store in events and to log; without its data key it reveals nothing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed {
    pub nonce: [u8; 12],
    pub ciphertext: Vec<u8>,
}
