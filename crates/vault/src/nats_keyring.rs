//! A keyring in a NATS JetStream key-value bucket, for distributed mode.

use async_nats::jetstream::kv::{self, CreateErrorKind};
use async_nats::jetstream::stream::{self, DiscardPolicy, StorageType};
use async_trait::async_trait;
use bytes::Bytes;

use crate::{Keyring, VaultError};

/// Wrapped data keys in a JetStream KV bucket (file storage, history 1, stream `KV_<bucket>`).
///
/// `put` returns once JetStream acknowledged the write. `delete` purges the key, which drops
/// every stored revision rather than only adding a delete marker. NATS KV keys allow the
/// `"{org}.{credential_id}.{version}"` key ids as they are.
pub struct NatsKeyring {
    store: kv::Store,
}

impl NatsKeyring {
    /// Opens the bucket, creating it with one replica if it does not exist.
    pub async fn connect(client: async_nats::Client, bucket: &str) -> Result<Self, VaultError> {
        Self::connect_with_replicas(client, bucket, 1).await
    }

    /// Opens the bucket, creating it with `replicas` replicas (3 on a production cluster) if
    /// it does not exist. An existing bucket is used as it is.
    pub async fn connect_with_replicas(
        client: async_nats::Client,
        bucket: &str,
        replicas: usize,
    ) -> Result<Self, VaultError> {
        check_bucket_name(bucket)?;
        let jetstream = async_nats::jetstream::new(client);
        if let Ok(store) = jetstream.get_key_value(bucket).await {
            return Ok(Self { store });
        }
        // `create_key_value` first asks for the account info, whose reply from nats-server
        // 2.9 (no `reserved_memory`) async-nats 0.51 cannot parse. So we create the bucket's
        // backing stream ourselves, with the settings `create_key_value` would use, and
        // open it as a bucket.
        let stream_config = stream::Config {
            name: format!("KV_{bucket}"),
            description: Some(
                "modelreg wrapped data keys (primary state, never rebuilt)".to_owned(),
            ),
            subjects: vec![format!("$KV.{bucket}.>")],
            max_messages_per_subject: 1,
            storage: StorageType::File,
            num_replicas: replicas.max(1),
            allow_rollup: true,
            deny_delete: true,
            deny_purge: false,
            allow_direct: true,
            discard: DiscardPolicy::New,
            ..Default::default()
        };
        if let Err(error) = jetstream.get_or_create_stream(stream_config).await {
            // Replicas starting at once race to create it: the loser's create is refused
            // ("name already in use", "subjects overlap") once the winner's stream exists.
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            if let Ok(store) = jetstream.get_key_value(bucket).await {
                return Ok(Self { store });
            }
            return Err(VaultError::Keyring(format!(
                "cannot create the key-value bucket {bucket:?}: {error}"
            )));
        }
        let store = jetstream.get_key_value(bucket).await.map_err(|error| {
            VaultError::Keyring(format!(
                "cannot open the key-value bucket {bucket:?}: {error}"
            ))
        })?;
        Ok(Self { store })
    }
}

/// Bucket names become stream names and subject tokens, so only `[A-Za-z0-9_-]` is allowed.
fn check_bucket_name(bucket: &str) -> Result<(), VaultError> {
    let valid = !bucket.is_empty()
        && bucket
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-');
    if valid {
        return Ok(());
    }
    Err(VaultError::Keyring(format!(
        "invalid key-value bucket name {bucket:?}: use A-Z, a-z, 0-9, '_' and '-'"
    )))
}

fn nats_error(action: &str, key_id: &str, error: impl std::fmt::Display) -> VaultError {
    VaultError::Keyring(format!("cannot {action} {key_id:?} in NATS KV: {error}"))
}

#[async_trait]
impl Keyring for NatsKeyring {
    async fn put(&self, key_id: &str, wrapped: &[u8]) -> Result<(), VaultError> {
        self.store
            .put(key_id, Bytes::copy_from_slice(wrapped))
            .await
            .map_err(|error| nats_error("put", key_id, error))?;
        Ok(())
    }

    async fn get(&self, key_id: &str) -> Result<Option<Vec<u8>>, VaultError> {
        let value = self
            .store
            .get(key_id)
            .await
            .map_err(|error| nats_error("get", key_id, error))?;
        Ok(value.map(|value| value.to_vec()))
    }

    async fn delete(&self, key_id: &str) -> Result<(), VaultError> {
        self.store
            .purge(key_id)
            .await
            .map_err(|error| nats_error("purge", key_id, error))
    }

    async fn keys(&self) -> Result<Vec<String>, VaultError> {
        use futures::TryStreamExt;
        let keys = self
            .store
            .keys()
            .await
            .map_err(|error| nats_error("list", "the keys", error))?;
        keys.try_collect()
            .await
            .map_err(|error| nats_error("list", "the keys", error))
    }

    async fn replace_if(
        &self,
        key_id: &str,
        expected: &[u8],
        wrapped: &[u8],
    ) -> Result<bool, VaultError> {
        let entry = self
            .store
            .entry(key_id)
            .await
            .map_err(|error| nats_error("read", key_id, error))?;
        let Some(entry) = entry.filter(|e| e.operation == kv::Operation::Put) else {
            return Ok(false);
        };
        if entry.value.as_ref() != expected {
            return Ok(false);
        }
        // `update` is a compare-and-set on the revision read: a destroy or another write in
        // between makes it fail, and nothing is written.
        match self
            .store
            .update(key_id, Bytes::copy_from_slice(wrapped), entry.revision)
            .await
        {
            Ok(_) => Ok(true),
            Err(error) if error.kind() == kv::UpdateErrorKind::WrongLastRevision => Ok(false),
            Err(error) => Err(nats_error("update", key_id, error)),
        }
    }

    async fn put_if_absent(
        &self,
        key_id: &str,
        wrapped: &[u8],
    ) -> Result<Option<Vec<u8>>, VaultError> {
        // `create` is a compare-and-set on "no live value", so it is atomic across processes.
        // If the key exists we read it; should it be destroyed in between, we try again.
        for _ in 0..3 {
            let created = self
                .store
                .create(key_id, Bytes::copy_from_slice(wrapped))
                .await;
            match created {
                Ok(_) => return Ok(None),
                Err(error) if error.kind() == CreateErrorKind::AlreadyExists => {
                    if let Some(existing) = self.get(key_id).await? {
                        return Ok(Some(existing));
                    }
                }
                Err(error) => return Err(nats_error("create", key_id, error)),
            }
        }
        Err(VaultError::Keyring(format!(
            "{key_id:?} kept changing while being created in NATS KV"
        )))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use testkit::NatsServer;

    use super::*;
    use crate::keyring::conformance;
    use secrets::{Sealed, Secret};

    use crate::{MasterKey, SecretContext, Vault};

    /// A client of `server`, which accepts connections once started.
    async fn client(server: &NatsServer) -> async_nats::Client {
        async_nats::connect(server.url())
            .await
            .unwrap_or_else(|error| {
                panic!(
                    "cannot connect to nats-server at {} ({error}):\n{}",
                    server.url(),
                    server.log()
                )
            })
    }

    #[tokio::test]
    async fn nats_keyring_meets_the_keyring_contract() {
        let server = NatsServer::start();
        let keyring = NatsKeyring::connect(client(&server).await, "keyring_contract")
            .await
            .unwrap();
        conformance::check(&keyring).await;
    }

    #[tokio::test]
    async fn nats_keyring_reopens_an_existing_bucket() {
        let server = NatsServer::start();
        let first = NatsKeyring::connect(client(&server).await, "keys")
            .await
            .unwrap();
        first.put("acme.cred.1", b"wrapped").await.unwrap();

        let second = NatsKeyring::connect(client(&server).await, "keys")
            .await
            .unwrap();
        assert_eq!(
            second.get("acme.cred.1").await.unwrap().as_deref(),
            Some(&b"wrapped"[..])
        );
    }

    #[tokio::test]
    async fn seal_and_open_through_nats_and_destroy_shreds() {
        let server = NatsServer::start();
        let keyring = Arc::new(
            NatsKeyring::connect(client(&server).await, "keys")
                .await
                .unwrap(),
        );
        let vault = Vault::new(MasterKey::generate(), keyring.clone());
        let context = SecretContext {
            org: "acme",
            credential_id: "cred_01",
            version: 3,
        };
        let plaintext = "hf_the-token-through-nats-0123";

        let sealed = vault
            .seal(&context, &Secret::new(plaintext.to_owned()))
            .await
            .unwrap();
        assert!(keyring.get("acme.cred_01.3").await.unwrap().is_some());
        let opened = vault.open(&context, &sealed).await.unwrap();
        assert_eq!(opened.expose_secret(), plaintext);

        vault.destroy(&context).await.unwrap();
        assert!(matches!(
            vault.open(&context, &sealed).await,
            Err(VaultError::KeyDestroyed)
        ));
    }

    #[tokio::test]
    async fn concurrent_first_seals_of_a_version_agree_on_one_data_key() {
        let server = NatsServer::start();
        let client = client(&server).await;
        let keyring: Arc<dyn Keyring> =
            Arc::new(NatsKeyring::connect(client, "keys").await.unwrap());
        let vault = Arc::new(Vault::new(MasterKey::generate(), keyring));
        let context = SecretContext {
            org: "acme",
            credential_id: "cred",
            version: 1,
        };

        let seals = (0..8).map(|_| {
            let vault = Arc::clone(&vault);
            tokio::spawn(async move {
                let context = SecretContext {
                    org: "acme",
                    credential_id: "cred",
                    version: 1,
                };
                vault
                    .seal(&context, &Secret::new("sk-raced-secret-value".to_owned()))
                    .await
                    .unwrap()
            })
        });
        let sealed: Vec<Sealed> = futures::future::try_join_all(seals).await.unwrap();
        // Whichever seal reached the log, it opens under the one key that was kept.
        for sealed in &sealed {
            let opened = vault.open(&context, sealed).await.unwrap();
            assert_eq!(opened.expose_secret(), "sk-raced-secret-value");
        }
    }
}
