//! Secrets at rest: the `Secret` type, envelope sealing under per-version data keys, key
//! wrapping with the master key, keyed fingerprints, previews and the keyrings that hold
//! wrapped data keys.
//!
//! A credential version is sealed with AES-256-GCM under its own random data key; the AAD
//! binds the ciphertext to `(org, credential id, version)`. The data key is wrapped with the
//! master key (AES key wrap, RFC 3394) and stored in a [`Keyring`] outside the event log, so
//! deleting it ([`Vault::destroy`]) crypto-shreds every copy of the ciphertext, replays
//! included.
//!
//! Architecture invariant: nothing in this crate logs, prints, formats or serializes a
//! plaintext secret, a data key or the master key. The only way to read a secret is the
//! explicit, greppable `secrets::Secret::expose_secret`. The plain value types (`Secret`,
//! `Sealed`, fingerprints, previews) live in the leaf crate `secrets`, so the pure domain can
//! name them without depending on this adapter.

mod error;
mod keyring;
mod master_key;
mod nats_keyring;
mod redb_keyring;
mod seal;

pub use error::VaultError;
pub use keyring::{Keyring, MemoryKeyring};
pub use master_key::MasterKey;
pub use nats_keyring::NatsKeyring;
pub use redb_keyring::RedbKeyring;
pub use seal::{RewrapReport, SecretContext, UnstoredKey, Vault, keyring_in_use};
