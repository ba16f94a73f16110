//! A keyring in its own redb file, for embedded mode.

use std::fs::{DirBuilder, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use redb::{Database, ReadableTable, TableDefinition};

use crate::{Keyring, VaultError};

/// The keyring file's page cache.
const KEYRING_CACHE_BYTES: usize = 16 << 20;

/// Wrapped data keys by key id.
const WRAPPED_KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new("wrapped_keys");

/// Wrapped data keys in a redb file of their own (never the views' file: views are
/// disposable, the keyring is not).
///
/// Every write is a committed, fsync'd transaction before it returns. Blocking redb calls
/// run on tokio's blocking pool. Note that redb frees the pages of a deleted entry without
/// overwriting them, so until they are reused a destroyed wrapped key may linger in the file;
/// it is still useless without the master key.
pub struct RedbKeyring {
    database: Arc<Database>,
}

impl RedbKeyring {
    /// Opens the keyring file, creating it (mode 0600, parent directories 0700) if absent.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, VaultError> {
        let path = path.as_ref();
        let failed = |action: &str, error: &dyn std::fmt::Display| {
            VaultError::Keyring(format!("{action} {}: {error}", path.display()))
        };
        if let Some(parent) = path
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
        {
            DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)
                .map_err(|error| failed("cannot create the directory of", &error))?;
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(|error| failed("cannot open", &error))?;
        // Data keys are small and few; redb's default cache (1 GiB) is far more than they need.
        let database = Database::builder()
            .set_cache_size(KEYRING_CACHE_BYTES)
            .create_file(file)
            .map_err(|error| failed("cannot open the redb database", &error))?;
        // Create the table up front so reads never meet a missing table.
        let transaction = database
            .begin_write()
            .map_err(|error| failed("cannot write", &error))?;
        transaction
            .open_table(WRAPPED_KEYS)
            .map_err(|error| failed("cannot open the table in", &error))?;
        transaction
            .commit()
            .map_err(|error| failed("cannot commit to", &error))?;
        Ok(Self {
            database: Arc::new(database),
        })
    }

    /// Runs a blocking redb operation on the blocking pool.
    async fn run<T, F>(&self, operation: F) -> Result<T, VaultError>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> Result<T, VaultError> + Send + 'static,
    {
        let database = Arc::clone(&self.database);
        tokio::task::spawn_blocking(move || operation(&database))
            .await
            .map_err(|error| VaultError::Keyring(format!("keyring task failed: {error}")))?
    }
}

/// Maps a redb error of any kind; redb errors name tables and pages, never values.
fn redb_failed(error: impl Into<redb::Error>) -> VaultError {
    VaultError::Keyring(format!("redb: {}", error.into()))
}

#[async_trait]
impl Keyring for RedbKeyring {
    async fn put(&self, key_id: &str, wrapped: &[u8]) -> Result<(), VaultError> {
        let key_id = key_id.to_owned();
        let wrapped = wrapped.to_vec();
        self.run(move |database| {
            let transaction = database.begin_write().map_err(redb_failed)?;
            {
                let mut table = transaction.open_table(WRAPPED_KEYS).map_err(redb_failed)?;
                table
                    .insert(key_id.as_str(), wrapped.as_slice())
                    .map_err(redb_failed)?;
            }
            transaction.commit().map_err(redb_failed)?;
            Ok(())
        })
        .await
    }

    async fn get(&self, key_id: &str) -> Result<Option<Vec<u8>>, VaultError> {
        let key_id = key_id.to_owned();
        self.run(move |database| {
            let transaction = database.begin_read().map_err(redb_failed)?;
            let table = transaction.open_table(WRAPPED_KEYS).map_err(redb_failed)?;
            let wrapped = table.get(key_id.as_str()).map_err(redb_failed)?;
            Ok(wrapped.map(|wrapped| wrapped.value().to_vec()))
        })
        .await
    }

    async fn delete(&self, key_id: &str) -> Result<(), VaultError> {
        let key_id = key_id.to_owned();
        self.run(move |database| {
            let transaction = database.begin_write().map_err(redb_failed)?;
            {
                let mut table = transaction.open_table(WRAPPED_KEYS).map_err(redb_failed)?;
                table.remove(key_id.as_str()).map_err(redb_failed)?;
            }
            transaction.commit().map_err(redb_failed)?;
            Ok(())
        })
        .await
    }

    async fn keys(&self) -> Result<Vec<String>, VaultError> {
        self.run(move |database| {
            let transaction = database.begin_read().map_err(redb_failed)?;
            let table = transaction.open_table(WRAPPED_KEYS).map_err(redb_failed)?;
            let mut keys = Vec::new();
            for entry in table.iter().map_err(redb_failed)? {
                let (key, _) = entry.map_err(redb_failed)?;
                keys.push(key.value().to_owned());
            }
            Ok(keys)
        })
        .await
    }

    async fn replace_if(
        &self,
        key_id: &str,
        expected: &[u8],
        wrapped: &[u8],
    ) -> Result<bool, VaultError> {
        let (key_id, expected, wrapped) = (key_id.to_owned(), expected.to_vec(), wrapped.to_vec());
        // One write transaction: the comparison and the write are atomic.
        self.run(move |database| {
            let transaction = database.begin_write().map_err(redb_failed)?;
            let replaced = {
                let mut table = transaction.open_table(WRAPPED_KEYS).map_err(redb_failed)?;
                let current = table
                    .get(key_id.as_str())
                    .map_err(redb_failed)?
                    .map(|found| found.value().to_vec());
                if current.as_deref() == Some(expected.as_slice()) {
                    table
                        .insert(key_id.as_str(), wrapped.as_slice())
                        .map_err(redb_failed)?;
                    true
                } else {
                    false
                }
            };
            if !replaced {
                transaction.abort().map_err(redb_failed)?;
                return Ok(false);
            }
            transaction.commit().map_err(redb_failed)?;
            Ok(true)
        })
        .await
    }

    async fn put_if_absent(
        &self,
        key_id: &str,
        wrapped: &[u8],
    ) -> Result<Option<Vec<u8>>, VaultError> {
        let key_id = key_id.to_owned();
        let wrapped = wrapped.to_vec();
        // One write transaction: redb serializes writers, so the check and the insert are
        // atomic.
        self.run(move |database| {
            let transaction = database.begin_write().map_err(redb_failed)?;
            let existing = {
                let mut table = transaction.open_table(WRAPPED_KEYS).map_err(redb_failed)?;
                let existing = table
                    .get(key_id.as_str())
                    .map_err(redb_failed)?
                    .map(|found| found.value().to_vec());
                if existing.is_none() {
                    table
                        .insert(key_id.as_str(), wrapped.as_slice())
                        .map_err(redb_failed)?;
                }
                existing
            };
            if existing.is_some() {
                transaction.abort().map_err(redb_failed)?;
                return Ok(existing);
            }
            transaction.commit().map_err(redb_failed)?;
            Ok(None)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::keyring::conformance;
    use secrets::Secret;

    use crate::{MasterKey, SecretContext, Vault};

    const PLAINTEXT: &str = "sk-ant-api03-the-plaintext-Zz42";

    #[tokio::test]
    async fn redb_keyring_meets_the_keyring_contract() {
        let dir = tempfile::tempdir().unwrap();
        let keyring = RedbKeyring::open(dir.path().join("keyring.redb")).unwrap();
        conformance::check(&keyring).await;
    }

    #[tokio::test]
    async fn redb_keyring_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/keyring.redb");
        {
            let keyring = RedbKeyring::open(&path).unwrap();
            keyring.put("acme.cred.1", b"wrapped one").await.unwrap();
            keyring.put("acme.cred.2", b"wrapped two").await.unwrap();
            keyring.delete("acme.cred.2").await.unwrap();
        }
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);

        let keyring = RedbKeyring::open(&path).unwrap();
        assert_eq!(
            keyring.get("acme.cred.1").await.unwrap().as_deref(),
            Some(&b"wrapped one"[..])
        );
        assert_eq!(keyring.get("acme.cred.2").await.unwrap(), None);
    }

    #[tokio::test]
    async fn sealed_secrets_open_after_the_keyring_is_reopened() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyring.redb");
        let key_path = dir.path().join("master.key");
        let context = SecretContext {
            org: "acme",
            credential_id: "cred",
            version: 1,
        };
        let sealed = {
            let (master, _) = MasterKey::load_or_create_file(&key_path).unwrap();
            let vault = Vault::new(master, Arc::new(RedbKeyring::open(&path).unwrap()));
            vault
                .seal(&context, &Secret::new(PLAINTEXT.to_owned()))
                .await
                .unwrap()
        };
        let (master, created) = MasterKey::load_or_create_file(&key_path).unwrap();
        assert!(!created);
        let vault = Vault::new(master, Arc::new(RedbKeyring::open(&path).unwrap()));
        let opened = vault.open(&context, &sealed).await.unwrap();
        assert_eq!(opened.expose_secret(), PLAINTEXT);
    }

    #[tokio::test]
    async fn the_keyring_file_holds_neither_data_keys_nor_plaintexts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keyring.redb");
        let keyring = Arc::new(RedbKeyring::open(&path).unwrap());
        let vault = Vault::new(MasterKey::generate(), keyring.clone());

        let mut data_keys = Vec::new();
        let mut wrapped_keys = Vec::new();
        for version in 1..=20 {
            let context = SecretContext {
                org: "acme",
                credential_id: "cred",
                version,
            };
            vault
                .seal(&context, &Secret::new(PLAINTEXT.to_owned()))
                .await
                .unwrap();
            let wrapped = keyring
                .get(&context.key_id().unwrap())
                .await
                .unwrap()
                .unwrap();
            data_keys.push(vault.unwrap_data_key(&wrapped).unwrap());
            wrapped_keys.push(wrapped);
        }
        drop(vault);
        drop(keyring);

        let bytes = std::fs::read(&path).unwrap();
        let contains = |needle: &[u8]| bytes.windows(needle.len()).any(|window| window == needle);
        // The scan itself works: the wrapped keys are there.
        for wrapped in &wrapped_keys {
            assert!(
                contains(wrapped),
                "wrapped key not found; the scan is broken"
            );
        }
        assert!(
            !contains(PLAINTEXT.as_bytes()),
            "plaintext found in the keyring file"
        );
        for data_key in &data_keys {
            assert!(
                !contains(&data_key[..]),
                "a data key found in the keyring file"
            );
        }
    }
}
