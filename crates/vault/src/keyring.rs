//! The `Keyring` trait, where wrapped data keys live, and an in-memory keyring for tests.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use crate::VaultError;

/// Durable storage for wrapped data keys, keyed by `"{org}.{credential_id}.{version}"`.
///
/// The keyring is primary state, never a projection: rebuilding views never touches it, and
/// deleting an entry crypto-shreds that credential version everywhere. Values are data keys
/// wrapped with the master key, so a keyring on its own reveals nothing.
#[async_trait]
pub trait Keyring: Send + Sync {
    /// Stores (or replaces) the wrapped key; it is durable when this returns `Ok`.
    async fn put(&self, key_id: &str, wrapped: &[u8]) -> Result<(), VaultError>;

    /// The wrapped key, or `None` if there is none (never stored, or destroyed).
    async fn get(&self, key_id: &str) -> Result<Option<Vec<u8>>, VaultError>;

    /// Removes the wrapped key. Deleting a missing key succeeds, so destroying is idempotent.
    async fn delete(&self, key_id: &str) -> Result<(), VaultError>;

    /// Every key id that holds a key, in no particular order (a master key rotation walks
    /// them).
    async fn keys(&self) -> Result<Vec<String>, VaultError>;

    /// Replaces the key at `key_id` with `wrapped` only while it still holds `expected`;
    /// `false`, writing nothing, when it holds something else or nothing (destroyed
    /// meanwhile). Re-wrapping under a new master key uses it, so a key shredded during a
    /// rotation is never brought back. Atomic in every keyring of this crate.
    async fn replace_if(
        &self,
        key_id: &str,
        expected: &[u8],
        wrapped: &[u8],
    ) -> Result<bool, VaultError>;

    /// Stores `wrapped` only if `key_id` holds no key yet; returns the key already stored
    /// otherwise (and stores nothing). Durable when it returns `Ok(None)`.
    ///
    /// [`crate::Vault::seal`] uses it so that sealing the same credential version twice (a
    /// retried command) never replaces a data key that a ciphertext in the log may already
    /// depend on. The provided implementation is a `get` then a `put` and is not atomic;
    /// every keyring of this crate overrides it with an atomic one.
    async fn put_if_absent(
        &self,
        key_id: &str,
        wrapped: &[u8],
    ) -> Result<Option<Vec<u8>>, VaultError> {
        if let Some(existing) = self.get(key_id).await? {
            return Ok(Some(existing));
        }
        self.put(key_id, wrapped).await?;
        Ok(None)
    }
}

/// A keyring in process memory, for tests. Nothing survives the process.
#[derive(Default)]
pub struct MemoryKeyring {
    keys: Mutex<HashMap<String, Vec<u8>>>,
}

impl MemoryKeyring {
    /// An empty keyring.
    pub fn new() -> Self {
        Self::default()
    }

    fn keys(&self) -> Result<MutexGuard<'_, HashMap<String, Vec<u8>>>, VaultError> {
        self.keys
            .lock()
            .map_err(|_| VaultError::Keyring("in-memory keyring lock poisoned".to_owned()))
    }
}

#[async_trait]
impl Keyring for MemoryKeyring {
    async fn put(&self, key_id: &str, wrapped: &[u8]) -> Result<(), VaultError> {
        self.keys()?.insert(key_id.to_owned(), wrapped.to_vec());
        Ok(())
    }

    async fn get(&self, key_id: &str) -> Result<Option<Vec<u8>>, VaultError> {
        Ok(self.keys()?.get(key_id).cloned())
    }

    async fn delete(&self, key_id: &str) -> Result<(), VaultError> {
        self.keys()?.remove(key_id);
        Ok(())
    }

    async fn keys(&self) -> Result<Vec<String>, VaultError> {
        Ok(MemoryKeyring::keys(self)?.keys().cloned().collect())
    }

    async fn replace_if(
        &self,
        key_id: &str,
        expected: &[u8],
        wrapped: &[u8],
    ) -> Result<bool, VaultError> {
        let mut keys = MemoryKeyring::keys(self)?;
        match keys.get_mut(key_id) {
            Some(current) if current.as_slice() == expected => {
                *current = wrapped.to_vec();
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn put_if_absent(
        &self,
        key_id: &str,
        wrapped: &[u8],
    ) -> Result<Option<Vec<u8>>, VaultError> {
        let mut keys = self.keys()?;
        if let Some(existing) = keys.get(key_id) {
            return Ok(Some(existing.clone()));
        }
        keys.insert(key_id.to_owned(), wrapped.to_vec());
        Ok(None)
    }
}

/// The contract every keyring must meet, run against each implementation.
#[cfg(test)]
pub(crate) mod conformance {
    use super::*;

    pub(crate) async fn check(keyring: &dyn Keyring) {
        assert_eq!(keyring.get("org1.cred1.1").await.unwrap(), None);

        keyring.put("org1.cred1.1", b"wrapped one").await.unwrap();
        assert_eq!(
            keyring.get("org1.cred1.1").await.unwrap().as_deref(),
            Some(&b"wrapped one"[..])
        );

        keyring.put("org1.cred1.1", b"replaced").await.unwrap();
        assert_eq!(
            keyring.get("org1.cred1.1").await.unwrap().as_deref(),
            Some(&b"replaced"[..])
        );

        let existing = keyring
            .put_if_absent("org1.cred1.1", b"other")
            .await
            .unwrap();
        assert_eq!(existing.as_deref(), Some(&b"replaced"[..]));
        assert_eq!(
            keyring.get("org1.cred1.1").await.unwrap().as_deref(),
            Some(&b"replaced"[..])
        );

        assert_eq!(
            keyring.put_if_absent("org1.cred1.2", b"new").await.unwrap(),
            None
        );
        assert_eq!(
            keyring.get("org1.cred1.2").await.unwrap().as_deref(),
            Some(&b"new"[..])
        );

        keyring.delete("org1.cred1.1").await.unwrap();
        assert_eq!(keyring.get("org1.cred1.1").await.unwrap(), None);
        // Idempotent, and other keys are untouched.
        keyring.delete("org1.cred1.1").await.unwrap();
        keyring.delete("never.stored.7").await.unwrap();
        assert!(keyring.get("org1.cred1.2").await.unwrap().is_some());

        // Keys are listed; a replacement applies only over the value expected.
        let mut listed = keyring.keys().await.unwrap();
        listed.sort();
        assert_eq!(listed, ["org1.cred1.2"]);
        assert!(
            !keyring
                .replace_if("org1.cred1.2", b"stale", b"rewrapped")
                .await
                .unwrap()
        );
        assert!(
            keyring
                .replace_if("org1.cred1.2", b"new", b"rewrapped")
                .await
                .unwrap()
        );
        assert_eq!(
            keyring.get("org1.cred1.2").await.unwrap().as_deref(),
            Some(&b"rewrapped"[..])
        );
        assert!(
            !keyring
                .replace_if("org1.cred1.1", b"replaced", b"revived")
                .await
                .unwrap(),
            "a destroyed key is never brought back"
        );
        assert_eq!(keyring.get("org1.cred1.1").await.unwrap(), None);

        // A destroyed key id can hold a new key again.
        assert_eq!(
            keyring
                .put_if_absent("org1.cred1.1", b"again")
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            keyring.get("org1.cred1.1").await.unwrap().as_deref(),
            Some(&b"again"[..])
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_keyring_meets_the_keyring_contract() {
        conformance::check(&MemoryKeyring::new()).await;
    }
}
