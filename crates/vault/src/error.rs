//! The one error type of the vault; its messages never carry secret material.

/// What went wrong in the vault, named for what the caller can do about it.
///
/// No message ever contains a plaintext, a data key, the master key or any part of them:
/// decoding errors from foreign crates (which quote offending bytes) are replaced by fixed
/// wording before they get here.
#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// The master key material is malformed (operator: fix the configured key).
    #[error("bad master key: {0}")]
    BadMasterKey(String),
    /// The master key file could not be read, created or trusted (operator).
    #[error("master key file: {0}")]
    KeyFile(String),
    /// The keyring backend failed (retry, or operator if it persists).
    #[error("keyring: {0}")]
    Keyring(String),
    /// The secret context cannot name a keyring entry (caller: fix the input).
    #[error("invalid secret context: {0}")]
    InvalidContext(String),
    /// The data key of this credential version is gone: the version was crypto-shredded and
    /// its secret can never be recovered (user: enter the credential again).
    #[error("the data key of this credential version was destroyed")]
    KeyDestroyed,
    /// The stored data key could not be unwrapped: wrong master key or a corrupted keyring
    /// entry (operator).
    #[error("the data key could not be unwrapped (wrong master key or corrupted keyring entry)")]
    KeyUnwrap,
    /// The ciphertext does not authenticate under this context: it was tampered with, or is
    /// opened for another org, credential or version (operator: treat as tampering).
    #[error("the sealed secret failed authentication (tampered, or opened in the wrong context)")]
    Integrity,
    /// A new data key was to be stored for a credential version that has one already (two
    /// commands drew the same id: a defect).
    #[error("the credential version has a data key already")]
    KeyExists,
    /// Encryption itself failed, which only happens for absurdly large secrets.
    #[error("the secret could not be sealed")]
    Seal,
}
