//! Envelope encryption of credential versions: `Vault::seal`, `open`, `destroy`, `rewrap`,
//! and keyed fingerprints.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use aes_kw::KekAes256;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use rand::RngCore;
use rand::rngs::OsRng;
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

use secrets::{Sealed, Secret};

use crate::{Keyring, MasterKey, VaultError};

/// What a sealed secret belongs to. It names the keyring entry of the data key
/// (`"{org}.{credential_id}.{version}"`) and is bound into the ciphertext as AAD, so a
/// ciphertext opens only in the context it was sealed for.
///
/// `org` and `credential_id` must be non-empty and made of `[A-Za-z0-9_-]`, which keeps the
/// key id unambiguous and a valid NATS KV key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SecretContext<'a> {
    pub org: &'a str,
    pub credential_id: &'a str,
    pub version: u64,
}

impl SecretContext<'_> {
    /// The keyring entry of this credential version's data key.
    pub fn key_id(&self) -> Result<String, VaultError> {
        check_token("org", self.org)?;
        check_token("credential id", self.credential_id)?;
        // Pushed rather than `format!`ed: every resolve names its data key.
        let mut version = itoa::Buffer::new();
        let version = version.format(self.version);
        let mut id =
            String::with_capacity(self.org.len() + self.credential_id.len() + version.len() + 2);
        for part in [self.org, ".", self.credential_id, ".", version] {
            id.push_str(part);
        }
        Ok(id)
    }

    /// The additional authenticated data: a version tag, then each field length-prefixed
    /// (u64 big-endian) and the version as a fixed-width u64, so distinct contexts never
    /// encode alike.
    fn aad(&self) -> Vec<u8> {
        let mut aad = Vec::with_capacity(64 + self.org.len() + self.credential_id.len());
        put_field(&mut aad, AAD_TAG);
        put_field(&mut aad, self.org.as_bytes());
        put_field(&mut aad, self.credential_id.as_bytes());
        aad.extend_from_slice(&self.version.to_be_bytes());
        aad
    }
}

/// A wrapped data key made by [`Vault::seal_new`] and not yet in the keyring. It holds the
/// key wrapped under the master key only, never the key itself.
#[derive(Clone)]
pub struct UnstoredKey {
    key_id: String,
    wrapped: Vec<u8>,
}

/// Seals, opens and destroys credential versions, and fingerprints secrets.
///
/// It holds the master key and the key derived from it for fingerprints; it has no `Debug`.
/// By default every `open` reads the keyring. [`Vault::with_cache`] keeps unwrapped data keys
/// in memory for a bounded time (zeroized when evicted, never written anywhere), which takes
/// the keyring off the resolve hot path; a key destroyed in another process then stops
/// opening its ciphertext here only once its cached entry expires.
pub struct Vault {
    /// Wraps every new data key.
    master: MasterKey,
    /// Unwrap only: the keys a master key rotation moves away from.
    older: Vec<MasterKey>,
    fingerprint_key: Box<Zeroizing<[u8; KEY_LEN]>>,
    keyring: Arc<dyn Keyring>,
    cache: Option<KeyCache>,
}

/// Unwrapped data keys by key id, each with when it was cached.
struct KeyCache {
    ttl: Duration,
    capacity: usize,
    entries: Mutex<HashMap<String, (DataKey, Instant)>>,
}

impl KeyCache {
    fn get(&self, key_id: &str) -> Option<DataKey> {
        let entries = self.entries.lock().ok()?;
        let (key, cached_at) = entries.get(key_id)?;
        // `>=`: a zero lifetime caches nothing, however coarse the clock.
        if cached_at.elapsed() >= self.ttl {
            return None;
        }
        Some(Box::new(Zeroizing::new(**key.as_ref())))
    }

    fn put(&self, key_id: &str, key: &DataKey) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= self.capacity {
            // Expired entries go first; if none, everything (dropping zeroizes each key).
            let ttl = self.ttl;
            entries.retain(|_, (_, at)| at.elapsed() <= ttl);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(
            key_id.to_owned(),
            (Box::new(Zeroizing::new(**key.as_ref())), Instant::now()),
        );
    }

    fn forget(&self, key_id: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(key_id);
        }
    }
}

impl Vault {
    /// A vault over `keyring`, wrapping data keys with `master`, with the fingerprint key
    /// derived from `master` (see [`Vault::load`] for the one a registry uses).
    pub fn new(master: MasterKey, keyring: Arc<dyn Keyring>) -> Self {
        let fingerprint_key = derive_fingerprint_key(&master);
        Self {
            master,
            older: Vec::new(),
            fingerprint_key,
            keyring,
            cache: None,
        }
    }

    /// A vault that wraps with `master` and also unwraps with `older` keys (during and after
    /// a master key rotation), whose fingerprint key is kept in the keyring, wrapped like a
    /// data key, so that fingerprints survive master key rotations.
    ///
    /// On first use the fingerprint key is derived as [`Vault::new`] derives it (from the
    /// oldest configured key: the one that made the fingerprints already recorded) and
    /// stored. A stored fingerprint key no configured key can unwrap (a wrong master key)
    /// does not stop the vault: fingerprints then fall back to the derived key, and
    /// [`Vault::fingerprint_key_readable`] says so.
    pub async fn load(
        master: MasterKey,
        older: Vec<MasterKey>,
        keyring: Arc<dyn Keyring>,
    ) -> Result<Self, VaultError> {
        let mut vault = Self::new(master, keyring);
        vault.older = older;
        let derived = derive_fingerprint_key(vault.older.last().unwrap_or(&vault.master));
        let wrapped = vault.wrap_data_key(&derived)?;
        let stored = vault
            .keyring
            .put_if_absent(FINGERPRINT_KEY_ID, &wrapped)
            .await?;
        vault.fingerprint_key = match stored {
            None => derived,
            Some(entry) => vault.unwrap_data_key(&entry).unwrap_or(derived),
        };
        Ok(vault)
    }

    /// Whether the stored fingerprint key unwraps under the configured keys (`false` means
    /// fingerprints of this process match nothing recorded: the master key is wrong).
    pub async fn fingerprint_key_readable(&self) -> Result<bool, VaultError> {
        match self.keyring.get(FINGERPRINT_KEY_ID).await? {
            Some(entry) => Ok(self.unwrap_data_key(&entry).is_ok()),
            None => Ok(true),
        }
    }

    /// Re-wraps every key of the keyring that is not wrapped under this vault's master key
    /// yet (a master key rotation: the previous key among the older ones), at most `limit`
    /// of them. Each entry is replaced atomically, and only while it holds what was read, so
    /// a key destroyed meanwhile stays destroyed and a run stopped anywhere leaves every
    /// entry readable; running again finishes. No ciphertext changes.
    pub async fn rewrap_all(&self, limit: Option<usize>) -> Result<RewrapReport, VaultError> {
        let mut report = RewrapReport::default();
        for key_id in self.keyring.keys().await? {
            if limit.is_some_and(|limit| report.rewrapped >= limit) {
                report.remaining += 1;
                continue;
            }
            match self.rewrap_entry(&key_id).await {
                Ok(Rewrapped::Done) => report.rewrapped += 1,
                Ok(Rewrapped::Current) => report.current += 1,
                Ok(Rewrapped::Gone) => {}
                Err(VaultError::KeyUnwrap) => report.unreadable.push(key_id),
                Err(other) => return Err(other),
            }
        }
        Ok(report)
    }

    async fn rewrap_entry(&self, key_id: &str) -> Result<Rewrapped, VaultError> {
        // A write between our read and our replacement (a destroy, say) makes us read again.
        for _ in 0..3 {
            let Some(entry) = self.keyring.get(key_id).await? else {
                return Ok(Rewrapped::Gone);
            };
            if wrapped_by(&entry) == Some(self.master.id()) {
                return Ok(Rewrapped::Current);
            }
            let data_key = self.unwrap_data_key(&entry)?;
            let rewrapped = self.wrap_data_key(&data_key)?;
            if self.keyring.replace_if(key_id, &entry, &rewrapped).await? {
                if let Some(cache) = &self.cache {
                    cache.forget(key_id);
                }
                return Ok(Rewrapped::Done);
            }
        }
        Err(VaultError::Keyring(format!(
            "{key_id} kept changing while being re-wrapped"
        )))
    }

    /// Caches up to `capacity` unwrapped data keys for `ttl` each.
    pub fn with_cache(mut self, ttl: Duration, capacity: usize) -> Self {
        self.cache = Some(KeyCache {
            ttl,
            capacity: capacity.max(1),
            entries: Mutex::new(HashMap::new()),
        });
        self
    }

    /// Encrypts `plaintext` for `ctx` under the data key of that credential version.
    ///
    /// The first seal of a version generates a random data key and stores it, wrapped, in
    /// the keyring before returning; a keyring failure fails the seal, so no ciphertext ever
    /// exists without its key. Sealing a version that already has a key (a retried command)
    /// reuses that key, with a fresh nonce, so a ciphertext that already reached the log
    /// stays openable.
    pub async fn seal(
        &self,
        ctx: &SecretContext<'_>,
        plaintext: &Secret,
    ) -> Result<Sealed, VaultError> {
        let key_id = ctx.key_id()?;
        let fresh_key = generate_data_key();
        let wrapped = self.wrap_data_key(&fresh_key)?;
        let data_key = match self.keyring.put_if_absent(&key_id, &wrapped).await? {
            None => fresh_key,
            Some(existing) => self.unwrap_data_key(&existing)?,
        };
        encrypt(&data_key, &ctx.aad(), plaintext)
    }

    /// Encrypts `plaintext` for a credential version that has no data key yet, without
    /// storing the key: nothing is written until [`Vault::store`] is called, so a command
    /// can be decided (and refused) before anything reaches the keyring. Store the key
    /// before the ciphertext is appended to the log.
    pub fn seal_new(
        &self,
        ctx: &SecretContext<'_>,
        plaintext: &Secret,
    ) -> Result<(Sealed, UnstoredKey), VaultError> {
        let key_id = ctx.key_id()?;
        let data_key = generate_data_key();
        let wrapped = self.wrap_data_key(&data_key)?;
        let sealed = encrypt(&data_key, &ctx.aad(), plaintext)?;
        Ok((sealed, UnstoredKey { key_id, wrapped }))
    }

    /// Stores the data key of a [`Vault::seal_new`]. A version that has a key already keeps
    /// it and this fails with [`VaultError::KeyExists`]: its new ciphertext could not be
    /// opened.
    pub async fn store(&self, key: UnstoredKey) -> Result<(), VaultError> {
        match self
            .keyring
            .put_if_absent(&key.key_id, &key.wrapped)
            .await?
        {
            None => Ok(()),
            Some(_) => Err(VaultError::KeyExists),
        }
    }

    /// Stores the data key of a [`Vault::seal_new`] in place of a key the version has
    /// already. Only for a version whose earlier key never protected a ciphertext in the log
    /// (an attempt interrupted between storing its key and appending): that key is lost.
    pub async fn replace(&self, key: UnstoredKey) -> Result<(), VaultError> {
        if let Some(cache) = &self.cache {
            cache.forget(&key.key_id);
        }
        self.keyring.put(&key.key_id, &key.wrapped).await
    }

    /// Whether the data key of `ctx` exists and unwraps under this master key, opening
    /// nothing: [`VaultError::KeyDestroyed`] or [`VaultError::KeyUnwrap`] when it does not.
    pub async fn check(&self, ctx: &SecretContext<'_>) -> Result<(), VaultError> {
        let key_id = ctx.key_id()?;
        if self.cache.as_ref().and_then(|c| c.get(&key_id)).is_some() {
            return Ok(());
        }
        let wrapped = self
            .keyring
            .get(&key_id)
            .await?
            .ok_or(VaultError::KeyDestroyed)?;
        self.unwrap_data_key(&wrapped).map(drop)
    }

    /// Decrypts a sealed secret of `ctx`.
    ///
    /// Fails with [`VaultError::KeyDestroyed`] when the version's data key is gone (also when
    /// `ctx` names a version that never had one), [`VaultError::KeyUnwrap`] when the master
    /// key does not match, and [`VaultError::Integrity`] when the ciphertext was tampered
    /// with or belongs to another context.
    pub async fn open(
        &self,
        ctx: &SecretContext<'_>,
        sealed: &Sealed,
    ) -> Result<Secret, VaultError> {
        let key_id = ctx.key_id()?;
        if let Some(data_key) = self.cache.as_ref().and_then(|c| c.get(&key_id)) {
            return decrypt(&data_key, &ctx.aad(), sealed);
        }
        let wrapped = self
            .keyring
            .get(&key_id)
            .await?
            .ok_or(VaultError::KeyDestroyed)?;
        let data_key = self.unwrap_data_key(&wrapped)?;
        let opened = decrypt(&data_key, &ctx.aad(), sealed)?;
        if let Some(cache) = &self.cache {
            cache.put(&key_id, &data_key);
        }
        Ok(opened)
    }

    /// Deletes the data key of `ctx`: every ciphertext of that version, in every copy of the
    /// log, becomes unreadable for good. Destroying twice succeeds.
    pub async fn destroy(&self, ctx: &SecretContext<'_>) -> Result<(), VaultError> {
        let key_id = ctx.key_id()?;
        if let Some(cache) = &self.cache {
            cache.forget(&key_id);
        }
        self.keyring.delete(&key_id).await
    }

    /// Re-wraps the data key of `ctx` under `new_master`. No ciphertext changes. A whole
    /// rotation is [`Vault::rewrap_all`] on a vault whose master key is the new one.
    pub async fn rewrap(
        &self,
        ctx: &SecretContext<'_>,
        new_master: &MasterKey,
    ) -> Result<(), VaultError> {
        let key_id = ctx.key_id()?;
        let wrapped = self
            .keyring
            .get(&key_id)
            .await?
            .ok_or(VaultError::KeyDestroyed)?;
        let data_key = self.unwrap_data_key(&wrapped)?;
        let rewrapped = wrap_with(new_master, &data_key)?;
        self.keyring.put(&key_id, &rewrapped).await
    }

    /// A keyed fingerprint of a secret within an org and provider, for recognizing a
    /// credential that was entered before without storing or comparing plaintexts.
    /// HMAC-SHA256 under a key derived from the master key (HKDF-SHA256), over the
    /// length-prefixed `(org, provider, secret)`: equal inputs give equal fingerprints under
    /// the same master key; other orgs, providers or master keys give unrelated ones.
    pub fn fingerprint(&self, org: &str, provider: &str, plaintext: &Secret) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.fingerprint_key[..])
            .expect("HMAC accepts keys of any length");
        for field in [
            FINGERPRINT_TAG,
            org.as_bytes(),
            provider.as_bytes(),
            plaintext.expose_secret().as_bytes(),
        ] {
            mac.update(&(field.len() as u64).to_be_bytes());
            mac.update(field);
        }
        mac.finalize().into_bytes().into()
    }

    fn wrap_data_key(&self, data_key: &DataKey) -> Result<Vec<u8>, VaultError> {
        wrap_with(&self.master, data_key)
    }

    /// Unwraps a keyring entry with the master key that wrapped it (named by its tag), or,
    /// for an entry written before tags, with whichever configured key opens it.
    pub(crate) fn unwrap_data_key(&self, entry: &[u8]) -> Result<DataKey, VaultError> {
        let keys = std::iter::once(&self.master).chain(&self.older);
        let (wrapped, id) = match wrapped_by(entry) {
            Some(id) => (&entry[TAG.len() + 8..], Some(id)),
            None if entry.len() == WRAPPED_LEN => (entry, None),
            None => return Err(VaultError::KeyUnwrap),
        };
        for master in keys.filter(|key| id.is_none_or(|id| key.id() == id)) {
            if let Ok(data_key) = unwrap_with(master, wrapped) {
                return Ok(data_key);
            }
        }
        Err(VaultError::KeyUnwrap)
    }
}

/// What a rotation's [`Vault::rewrap_all`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RewrapReport {
    /// Entries re-wrapped under the master key now.
    pub rewrapped: usize,
    /// Entries that were under it already (done by an earlier run, or new).
    pub current: usize,
    /// Entries left for a later run (a `limit` was reached).
    pub remaining: usize,
    /// Entries no configured key can unwrap, by key id: the rotation is not complete while
    /// there are any.
    pub unreadable: Vec<String>,
}

impl RewrapReport {
    /// Every entry is under the master key now.
    pub fn complete(&self) -> bool {
        self.remaining == 0 && self.unreadable.is_empty()
    }
}

enum Rewrapped {
    Done,
    Current,
    Gone,
}

/// The keyring entry of the fingerprint key (data key ids always hold two dots, so it can
/// never name one).
const FINGERPRINT_KEY_ID: &str = "vault.fingerprint-key";

/// Whether a vault was loaded on `keyring` before: it holds keys wrapped by a master key,
/// which a master key made now would open none of.
pub async fn keyring_in_use(keyring: &dyn Keyring) -> Result<bool, VaultError> {
    Ok(keyring.get(FINGERPRINT_KEY_ID).await?.is_some())
}
/// The tag of an entry that names the master key that wrapped it: `mk1:` + 8-byte id +
/// the RFC 3394 wrapping. Entries written before tags are the bare wrapping.
const TAG: &[u8] = b"mk1:";

/// The id of the master key that wrapped a tagged entry.
fn wrapped_by(entry: &[u8]) -> Option<[u8; 8]> {
    if entry.len() != TAG.len() + 8 + WRAPPED_LEN || !entry.starts_with(TAG) {
        return None;
    }
    let mut id = [0u8; 8];
    id.copy_from_slice(&entry[TAG.len()..TAG.len() + 8]);
    Some(id)
}

fn derive_fingerprint_key(master: &MasterKey) -> DataKey {
    let mut fingerprint_key = Box::new(Zeroizing::new([0u8; KEY_LEN]));
    Hkdf::<Sha256>::new(None, master.bytes())
        .expand(FINGERPRINT_INFO, &mut fingerprint_key[..])
        .expect("32 bytes is far below HKDF-SHA256's output limit");
    fingerprint_key
}

fn unwrap_with(master: &MasterKey, wrapped: &[u8]) -> Result<DataKey, VaultError> {
    let kek = KekAes256::try_from(&master.bytes()[..]).map_err(|_| VaultError::KeyUnwrap)?;
    let mut data_key: DataKey = Box::new(Zeroizing::new([0u8; KEY_LEN]));
    kek.unwrap(wrapped, &mut data_key[..])
        .map_err(|_| VaultError::KeyUnwrap)?;
    Ok(data_key)
}

/// Length of data keys, the master key and the fingerprint key.
const KEY_LEN: usize = 32;
/// A data key wrapped with RFC 3394: the key plus one 8-byte semiblock.
const WRAPPED_LEN: usize = KEY_LEN + aes_kw::IV_LEN;
/// Versions the AAD layout, so a future layout can never be confused with this one.
const AAD_TAG: &[u8] = b"modelreg secret aad v1";
/// HKDF info of the fingerprint key.
const FINGERPRINT_INFO: &[u8] = b"modelreg fingerprint v1";
/// First field of every fingerprinted message, for domain separation.
const FINGERPRINT_TAG: &[u8] = b"modelreg fingerprint v1";

/// A data key on the heap (so moves leave no copies), wiped on drop.
pub(crate) type DataKey = Box<Zeroizing<[u8; KEY_LEN]>>;

fn generate_data_key() -> DataKey {
    let mut data_key: DataKey = Box::new(Zeroizing::new([0u8; KEY_LEN]));
    OsRng.fill_bytes(&mut data_key[..]);
    data_key
}

/// A data key wrapped under `master`, tagged with the master key's id.
fn wrap_with(master: &MasterKey, data_key: &DataKey) -> Result<Vec<u8>, VaultError> {
    let kek = KekAes256::try_from(&master.bytes()[..]).map_err(|_| VaultError::Seal)?;
    let mut wrapped = [0u8; WRAPPED_LEN];
    kek.wrap(&data_key[..], &mut wrapped)
        .map_err(|_| VaultError::Seal)?;
    let mut entry = Vec::with_capacity(TAG.len() + 8 + WRAPPED_LEN);
    entry.extend_from_slice(TAG);
    entry.extend_from_slice(&master.id());
    entry.extend_from_slice(&wrapped);
    Ok(entry)
}

fn encrypt(data_key: &DataKey, aad: &[u8], plaintext: &Secret) -> Result<Sealed, VaultError> {
    let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&data_key[..]));
    let mut nonce = [0u8; 12];
    OsRng.fill_bytes(&mut nonce);
    let payload = Payload {
        msg: plaintext.expose_secret().as_bytes(),
        aad,
    };
    let ciphertext = cipher
        .encrypt(Nonce::from_slice(&nonce), payload)
        .map_err(|_| VaultError::Seal)?;
    Ok(Sealed { nonce, ciphertext })
}

fn decrypt(data_key: &DataKey, aad: &[u8], sealed: &Sealed) -> Result<Secret, VaultError> {
    let cipher = Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&data_key[..]));
    let payload = Payload {
        msg: &sealed.ciphertext,
        aad,
    };
    let plaintext = cipher
        .decrypt(Nonce::from_slice(&sealed.nonce), payload)
        .map_err(|_| VaultError::Integrity)?;
    match String::from_utf8(plaintext) {
        Ok(plaintext) => Ok(Secret::new(plaintext)),
        // Authentic but not text: this vault never seals such a thing.
        Err(error) => {
            error.into_bytes().zeroize();
            Err(VaultError::Integrity)
        }
    }
}

fn put_field(out: &mut Vec<u8>, field: &[u8]) {
    out.extend_from_slice(&(field.len() as u64).to_be_bytes());
    out.extend_from_slice(field);
}

fn check_token(what: &str, token: &str) -> Result<(), VaultError> {
    let valid = !token.is_empty()
        && token
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-');
    if valid {
        return Ok(());
    }
    Err(VaultError::InvalidContext(format!(
        "{what} {token:?} must be non-empty and made of A-Z, a-z, 0-9, '_' and '-'"
    )))
}

#[cfg(test)]
mod tests {
    use async_trait::async_trait;

    use super::*;
    use crate::MemoryKeyring;

    const PLAINTEXT: &str = "sk-proj-very-secret-Ab9z";

    fn ctx<'a>(org: &'a str, credential_id: &'a str, version: u64) -> SecretContext<'a> {
        SecretContext {
            org,
            credential_id,
            version,
        }
    }

    fn secret(plaintext: &str) -> Secret {
        Secret::new(plaintext.to_owned())
    }

    fn memory_vault() -> (Vault, Arc<MemoryKeyring>) {
        let keyring = Arc::new(MemoryKeyring::new());
        (Vault::new(MasterKey::generate(), keyring.clone()), keyring)
    }

    #[tokio::test]
    async fn cached_keys_open_without_the_keyring_until_they_expire_or_are_destroyed() {
        let keyring = Arc::new(MemoryKeyring::new());
        let master =
            MasterKey::from_base64("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=").unwrap();
        let vault = Vault::new(master, keyring.clone()).with_cache(Duration::from_secs(3600), 8);
        let context = ctx("acme", "cred_01", 1);
        let sealed = vault.seal(&context, &secret(PLAINTEXT)).await.unwrap();
        assert_eq!(
            vault.open(&context, &sealed).await.unwrap().expose_secret(),
            PLAINTEXT
        );
        // Gone from the keyring behind the vault's back (another process): the cache serves.
        keyring.delete("acme.cred_01.1").await.unwrap();
        assert_eq!(
            vault.open(&context, &sealed).await.unwrap().expose_secret(),
            PLAINTEXT
        );
        // Destroyed through this vault: refused at once.
        vault.destroy(&context).await.unwrap();
        assert!(matches!(
            vault.open(&context, &sealed).await,
            Err(VaultError::KeyDestroyed)
        ));

        // With a zero lifetime every open goes to the keyring.
        let uncached = Vault::new(MasterKey::generate(), Arc::new(MemoryKeyring::new()))
            .with_cache(Duration::ZERO, 8);
        let other = ctx("acme", "cred_02", 1);
        let sealed = uncached.seal(&other, &secret(PLAINTEXT)).await.unwrap();
        assert!(uncached.open(&other, &sealed).await.is_ok());
        uncached.keyring.delete("acme.cred_02.1").await.unwrap();
        assert!(matches!(
            uncached.open(&other, &sealed).await,
            Err(VaultError::KeyDestroyed)
        ));
    }

    #[tokio::test]
    async fn a_deferred_seal_writes_nothing_until_stored() {
        // Given a secret sealed for a new version, its key not yet stored
        let (vault, keyring) = memory_vault();
        let context = ctx("acme", "cred_01", 1);
        let (sealed, key) = vault.seal_new(&context, &secret(PLAINTEXT)).unwrap();
        // Then the keyring is untouched and the ciphertext does not open
        assert!(keyring.get("acme.cred_01.1").await.unwrap().is_none());
        assert!(matches!(
            vault.open(&context, &sealed).await,
            Err(VaultError::KeyDestroyed)
        ));
        // When the key is stored, Then it opens
        vault.store(key).await.unwrap();
        assert_eq!(
            vault.open(&context, &sealed).await.unwrap().expose_secret(),
            PLAINTEXT
        );
        // And a second new key for the same version is refused, keeping the first
        let (_, again) = vault.seal_new(&context, &secret("other")).unwrap();
        assert!(matches!(
            vault.store(again).await,
            Err(VaultError::KeyExists)
        ));
        assert!(vault.open(&context, &sealed).await.is_ok());
    }

    #[tokio::test]
    async fn seal_then_open_returns_the_plaintext() {
        let (vault, keyring) = memory_vault();
        let context = ctx("acme", "cred_01", 1);
        let sealed = vault.seal(&context, &secret(PLAINTEXT)).await.unwrap();

        assert_eq!(
            vault.open(&context, &sealed).await.unwrap().expose_secret(),
            PLAINTEXT
        );
        assert!(keyring.get("acme.cred_01.1").await.unwrap().is_some());
        assert_ne!(sealed.ciphertext, PLAINTEXT.as_bytes());
        // The ciphertext carries a 16-byte tag.
        assert_eq!(sealed.ciphertext.len(), PLAINTEXT.len() + 16);
    }

    #[tokio::test]
    async fn empty_and_non_ascii_secrets_round_trip() {
        let (vault, _) = memory_vault();
        for (version, plaintext) in [(1, ""), (2, "clé-secrète-🔑-日本")] {
            let context = ctx("acme", "cred", version);
            let sealed = vault.seal(&context, &secret(plaintext)).await.unwrap();
            let opened = vault.open(&context, &sealed).await.unwrap();
            assert_eq!(opened.expose_secret(), plaintext);
        }
    }

    #[tokio::test]
    async fn each_version_gets_its_own_data_key_and_each_seal_its_own_nonce() {
        let (vault, keyring) = memory_vault();
        let first = vault
            .seal(&ctx("acme", "cred", 1), &secret(PLAINTEXT))
            .await
            .unwrap();
        let second = vault
            .seal(&ctx("acme", "cred", 2), &secret(PLAINTEXT))
            .await
            .unwrap();
        assert_ne!(first.nonce, second.nonce);
        assert_ne!(first.ciphertext, second.ciphertext);
        let key_one = vault
            .unwrap_data_key(&keyring.get("acme.cred.1").await.unwrap().unwrap())
            .unwrap();
        let key_two = vault
            .unwrap_data_key(&keyring.get("acme.cred.2").await.unwrap().unwrap())
            .unwrap();
        assert_ne!(key_one[..], key_two[..]);
    }

    #[tokio::test]
    async fn sealing_a_version_again_keeps_earlier_ciphertexts_openable() {
        let (vault, _) = memory_vault();
        let context = ctx("acme", "cred", 1);
        let first = vault.seal(&context, &secret(PLAINTEXT)).await.unwrap();
        let retried = vault.seal(&context, &secret(PLAINTEXT)).await.unwrap();
        assert_ne!(first.nonce, retried.nonce);
        for sealed in [&first, &retried] {
            assert_eq!(
                vault.open(&context, sealed).await.unwrap().expose_secret(),
                PLAINTEXT
            );
        }
    }

    #[test]
    fn the_aad_binds_org_credential_and_version() {
        let data_key = generate_data_key();
        let sealed_for = ctx("acme", "cred", 1);
        let sealed = encrypt(&data_key, &sealed_for.aad(), &secret(PLAINTEXT)).unwrap();
        assert_eq!(
            decrypt(&data_key, &sealed_for.aad(), &sealed)
                .unwrap()
                .expose_secret(),
            PLAINTEXT
        );
        // Same data key, other context: only the AAD differs, and it must be refused.
        for other in [
            ctx("other", "cred", 1),
            ctx("acme", "other", 1),
            ctx("acme", "cred", 2),
        ] {
            assert!(matches!(
                decrypt(&data_key, &other.aad(), &sealed),
                Err(VaultError::Integrity)
            ));
        }
    }

    #[test]
    fn the_aad_encoding_is_unambiguous() {
        let pairs = [
            (ctx("ab", "c", 1), ctx("a", "bc", 1)),
            (ctx("a-b", "c", 1), ctx("a", "b-c", 1)),
            (ctx("a", "b1", 1), ctx("a", "b", 11)),
        ];
        for (left, right) in pairs {
            assert_ne!(left.aad(), right.aad());
        }
    }

    #[tokio::test]
    async fn opening_in_another_context_fails_with_integrity() {
        let (vault, _) = memory_vault();
        let sealed = vault
            .seal(&ctx("acme", "cred", 1), &secret(PLAINTEXT))
            .await
            .unwrap();
        // Each of these contexts has a data key of its own, so the refusal comes from
        // authentication, not from a missing key.
        for other in [
            ctx("other", "cred", 1),
            ctx("acme", "other", 1),
            ctx("acme", "cred", 2),
        ] {
            vault
                .seal(&other, &secret("unrelated secret"))
                .await
                .unwrap();
            assert!(matches!(
                vault.open(&other, &sealed).await,
                Err(VaultError::Integrity)
            ));
        }
        // A context that never had a key reports the key as missing.
        assert!(matches!(
            vault.open(&ctx("acme", "cred", 9), &sealed).await,
            Err(VaultError::KeyDestroyed)
        ));
    }

    #[tokio::test]
    async fn tampering_fails_with_integrity() {
        let (vault, _) = memory_vault();
        let context = ctx("acme", "cred", 1);
        let sealed = vault.seal(&context, &secret(PLAINTEXT)).await.unwrap();

        let mut flipped_body = sealed.clone();
        flipped_body.ciphertext[0] ^= 0x01;
        let mut flipped_tag = sealed.clone();
        *flipped_tag.ciphertext.last_mut().unwrap() ^= 0x80;
        let mut flipped_nonce = sealed.clone();
        flipped_nonce.nonce[11] ^= 0x01;
        let mut truncated = sealed.clone();
        truncated.ciphertext.truncate(10);

        for tampered in [flipped_body, flipped_tag, flipped_nonce, truncated] {
            assert!(matches!(
                vault.open(&context, &tampered).await,
                Err(VaultError::Integrity)
            ));
        }
    }

    #[tokio::test]
    async fn a_destroyed_key_makes_the_version_unreadable() {
        let (vault, keyring) = memory_vault();
        let destroyed = ctx("acme", "cred", 1);
        let kept = ctx("acme", "cred", 2);
        let sealed = vault.seal(&destroyed, &secret(PLAINTEXT)).await.unwrap();
        let kept_sealed = vault.seal(&kept, &secret(PLAINTEXT)).await.unwrap();

        vault.destroy(&destroyed).await.unwrap();

        assert!(keyring.get("acme.cred.1").await.unwrap().is_none());
        assert!(matches!(
            vault.open(&destroyed, &sealed).await,
            Err(VaultError::KeyDestroyed)
        ));
        vault.destroy(&destroyed).await.unwrap();
        assert_eq!(
            vault
                .open(&kept, &kept_sealed)
                .await
                .unwrap()
                .expose_secret(),
            PLAINTEXT
        );
    }

    #[tokio::test]
    async fn check_tells_a_usable_key_from_a_destroyed_or_foreign_one() {
        let keyring = Arc::new(MemoryKeyring::new());
        let vault = Vault::new(MasterKey::generate(), keyring.clone());
        let other = Vault::new(MasterKey::generate(), keyring);
        let context = ctx("acme", "cred", 1);
        vault.seal(&context, &secret(PLAINTEXT)).await.unwrap();
        vault.check(&context).await.unwrap();
        assert!(matches!(
            other.check(&context).await,
            Err(VaultError::KeyUnwrap)
        ));
        vault.destroy(&context).await.unwrap();
        assert!(matches!(
            vault.check(&context).await,
            Err(VaultError::KeyDestroyed)
        ));
    }

    #[tokio::test]
    async fn replace_takes_the_place_of_an_orphaned_key() {
        let (vault, _) = memory_vault();
        let context = ctx("acme", "cred", 2);
        // An interrupted attempt stored a key whose ciphertext never reached the log.
        let (_, orphan) = vault.seal_new(&context, &secret("lost")).unwrap();
        vault.store(orphan).await.unwrap();
        let (sealed, key) = vault.seal_new(&context, &secret(PLAINTEXT)).unwrap();
        vault.replace(key).await.unwrap();
        assert_eq!(
            vault.open(&context, &sealed).await.unwrap().expose_secret(),
            PLAINTEXT
        );
    }

    #[tokio::test]
    async fn another_master_key_cannot_unwrap() {
        let keyring = Arc::new(MemoryKeyring::new());
        let vault = Vault::new(MasterKey::generate(), keyring.clone());
        let intruder = Vault::new(MasterKey::generate(), keyring);
        let context = ctx("acme", "cred", 1);
        let sealed = vault.seal(&context, &secret(PLAINTEXT)).await.unwrap();
        assert!(matches!(
            intruder.open(&context, &sealed).await,
            Err(VaultError::KeyUnwrap)
        ));
    }

    #[tokio::test]
    async fn rewrap_moves_data_keys_to_a_new_master_key() {
        let keyring = Arc::new(MemoryKeyring::new());
        let old_vault = Vault::new(MasterKey::generate(), keyring.clone());
        let context = ctx("acme", "cred", 1);
        let sealed = old_vault.seal(&context, &secret(PLAINTEXT)).await.unwrap();
        let new_master = MasterKey::generate();
        let new_master_copy = MasterKey::from_base64(&base64_of(&new_master)).unwrap();

        old_vault.rewrap(&context, &new_master).await.unwrap();

        let new_vault = Vault::new(new_master_copy, keyring);
        assert_eq!(
            new_vault
                .open(&context, &sealed)
                .await
                .unwrap()
                .expose_secret(),
            PLAINTEXT
        );
        assert!(matches!(
            old_vault.open(&context, &sealed).await,
            Err(VaultError::KeyUnwrap)
        ));
        assert!(matches!(
            old_vault.rewrap(&ctx("acme", "cred", 2), &new_master).await,
            Err(VaultError::KeyDestroyed)
        ));
    }

    fn copy(key: &MasterKey) -> MasterKey {
        MasterKey::from_base64(&base64_of(key)).unwrap()
    }

    #[tokio::test]
    async fn a_rotation_rewraps_every_key_resumes_and_keeps_fingerprints() {
        let keyring = Arc::new(MemoryKeyring::new());
        let old = MasterKey::generate();
        let before = Vault::load(copy(&old), vec![], keyring.clone())
            .await
            .unwrap();
        let print = before.fingerprint("acme", "openai", &secret(PLAINTEXT));
        let mut sealed = Vec::new();
        for version in 1..=3 {
            let context = ctx("acme", "cred", version);
            sealed.push(before.seal(&context, &secret(PLAINTEXT)).await.unwrap());
        }
        // An entry from before entries named their master key still opens.
        let legacy = ctx("acme", "legacy", 1);
        let legacy_sealed = before.seal(&legacy, &secret(PLAINTEXT)).await.unwrap();
        let tagged = keyring.get("acme.legacy.1").await.unwrap().unwrap();
        keyring
            .put("acme.legacy.1", &tagged[TAG.len() + 8..])
            .await
            .unwrap();

        // The new key wraps, the old one still unwraps: a run stopped after two entries
        let new = MasterKey::generate();
        let during = Vault::load(copy(&new), vec![copy(&old)], keyring.clone())
            .await
            .unwrap();
        let stopped = during.rewrap_all(Some(2)).await.unwrap();
        assert_eq!((stopped.rewrapped, stopped.remaining), (2, 3));
        assert!(!stopped.complete());
        for (version, sealed) in (1..=3).zip(&sealed) {
            let opened = during.open(&ctx("acme", "cred", version), sealed).await;
            assert_eq!(opened.unwrap().expose_secret(), PLAINTEXT);
        }
        // and a second run finishes
        let finished = during.rewrap_all(None).await.unwrap();
        assert!(finished.complete(), "{finished:?}");
        assert_eq!(finished.rewrapped + finished.current, 5);

        // Without the old key every secret opens and fingerprints still match.
        let after = Vault::load(copy(&new), vec![], keyring.clone())
            .await
            .unwrap();
        for (version, sealed) in (1..=3).zip(&sealed) {
            let opened = after.open(&ctx("acme", "cred", version), sealed).await;
            assert_eq!(opened.unwrap().expose_secret(), PLAINTEXT);
        }
        assert_eq!(
            after
                .open(&legacy, &legacy_sealed)
                .await
                .unwrap()
                .expose_secret(),
            PLAINTEXT
        );
        assert_eq!(
            after.fingerprint("acme", "openai", &secret(PLAINTEXT)),
            print
        );
        assert!(after.fingerprint_key_readable().await.unwrap());
        // And the old key alone opens nothing any more
        let stale = Vault::load(copy(&old), vec![], keyring).await.unwrap();
        assert!(!stale.fingerprint_key_readable().await.unwrap());
        assert!(matches!(
            stale.open(&ctx("acme", "cred", 1), &sealed[0]).await,
            Err(VaultError::KeyUnwrap)
        ));
    }

    #[tokio::test]
    async fn a_key_destroyed_during_a_rotation_stays_destroyed() {
        let keyring = Arc::new(MemoryKeyring::new());
        let old = MasterKey::generate();
        let before = Vault::new(copy(&old), keyring.clone());
        let context = ctx("acme", "cred", 1);
        before.seal(&context, &secret(PLAINTEXT)).await.unwrap();
        let entry = keyring.get("acme.cred.1").await.unwrap().unwrap();
        before.destroy(&context).await.unwrap();
        // A rotation that read the entry before it was destroyed cannot write it back.
        let new = Vault::new(MasterKey::generate(), keyring.clone());
        let rewrapped = new
            .wrap_data_key(&before.unwrap_data_key(&entry).unwrap())
            .unwrap();
        assert!(
            !keyring
                .replace_if("acme.cred.1", &entry, &rewrapped)
                .await
                .unwrap()
        );
        assert_eq!(keyring.get("acme.cred.1").await.unwrap(), None);
    }

    fn base64_of(key: &MasterKey) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(key.bytes())
    }

    struct FailingKeyring;

    #[async_trait]
    impl Keyring for FailingKeyring {
        async fn put(&self, _: &str, _: &[u8]) -> Result<(), VaultError> {
            Err(VaultError::Keyring("disk full".to_owned()))
        }
        async fn get(&self, _: &str) -> Result<Option<Vec<u8>>, VaultError> {
            Ok(None)
        }
        async fn delete(&self, _: &str) -> Result<(), VaultError> {
            Ok(())
        }
        async fn keys(&self) -> Result<Vec<String>, VaultError> {
            Ok(Vec::new())
        }
        async fn replace_if(&self, _: &str, _: &[u8], _: &[u8]) -> Result<bool, VaultError> {
            Err(VaultError::Keyring("disk full".to_owned()))
        }
    }

    #[tokio::test]
    async fn a_keyring_write_failure_fails_the_seal() {
        let vault = Vault::new(MasterKey::generate(), Arc::new(FailingKeyring));
        let result = vault
            .seal(&ctx("acme", "cred", 1), &secret(PLAINTEXT))
            .await;
        assert!(matches!(result, Err(VaultError::Keyring(_))));
    }

    #[tokio::test]
    async fn contexts_that_cannot_name_a_key_are_refused() {
        let (vault, _) = memory_vault();
        for (org, credential_id) in [("", "cred"), ("acme", ""), ("a.b", "cred"), ("acme", "c*")] {
            let context = ctx(org, credential_id, 1);
            let result = vault.seal(&context, &secret(PLAINTEXT)).await;
            assert!(
                matches!(result, Err(VaultError::InvalidContext(_))),
                "{org:?} {credential_id:?}"
            );
        }
        assert_eq!(
            ctx("org_1", "cred-2", 42).key_id().unwrap(),
            "org_1.cred-2.42"
        );
    }

    #[test]
    fn fingerprints_are_deterministic_and_separate_secrets_orgs_and_master_keys() {
        let master = MasterKey::generate();
        let master_copy = MasterKey::from_base64(&base64_of(&master)).unwrap();
        let vault = Vault::new(master, Arc::new(MemoryKeyring::new()));
        let same_master = Vault::new(master_copy, Arc::new(MemoryKeyring::new()));
        let other_master = Vault::new(MasterKey::generate(), Arc::new(MemoryKeyring::new()));

        let print = vault.fingerprint("acme", "openai", &secret(PLAINTEXT));
        assert_eq!(
            print,
            vault.fingerprint("acme", "openai", &secret(PLAINTEXT))
        );
        assert_eq!(
            print,
            same_master.fingerprint("acme", "openai", &secret(PLAINTEXT))
        );

        assert_ne!(
            print,
            vault.fingerprint("acme", "openai", &secret("sk-proj-other"))
        );
        assert_ne!(
            print,
            vault.fingerprint("globex", "openai", &secret(PLAINTEXT))
        );
        assert_ne!(
            print,
            vault.fingerprint("acme", "anthropic", &secret(PLAINTEXT))
        );
        assert_ne!(
            print,
            other_master.fingerprint("acme", "openai", &secret(PLAINTEXT))
        );
        // Field boundaries are part of the input.
        assert_ne!(
            vault.fingerprint("ab", "c", &secret("x")),
            vault.fingerprint("a", "bc", &secret("x"))
        );
    }

    #[tokio::test]
    async fn error_messages_carry_no_secret_material() {
        let (vault, _) = memory_vault();
        let context = ctx("acme", "cred", 1);
        let mut sealed = vault.seal(&context, &secret(PLAINTEXT)).await.unwrap();
        sealed.ciphertext[0] ^= 1;
        let errors = [
            vault.open(&context, &sealed).await.err().unwrap(),
            VaultError::KeyDestroyed,
            VaultError::KeyUnwrap,
        ];
        for error in errors {
            let shown = format!("{error} {error:?}");
            assert!(!shown.contains(PLAINTEXT), "{shown}");
            assert!(!shown.contains("Ab9z"), "{shown}");
        }
    }
}
