//! Which data keys this process cannot unwrap. A key that is gone or wrapped under another
//! master key is a fact about this process's keyring and master key, not about the log, so it
//! is never an event: it is found by trying (at start, then every minute, and on every
//! open) and shown as the credential's `needs_reconfiguration` state.

use std::collections::HashSet;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use crate::{AppError, Registry};

/// Key ids (`org.credential.version`) whose data key was last found unreadable.
#[derive(Default)]
pub(crate) struct KeyHealth {
    unreadable: RwLock<HashSet<String>>,
    /// Whether any is: a resolve that opened its key then costs one atomic load.
    any: AtomicBool,
}

impl KeyHealth {
    /// Whether the key was readable when last tried (or never tried).
    pub(crate) fn readable(&self, key_id: &str) -> bool {
        if !self.any.load(Ordering::Acquire) {
            return true;
        }
        self.unreadable
            .read()
            .map_or(true, |unreadable| !unreadable.contains(key_id))
    }

    pub(crate) fn mark(&self, context: &vault::SecretContext<'_>, readable: bool) {
        // The common case, on the resolve path: readable, and nothing is unreadable.
        if readable && !self.any.load(Ordering::Acquire) {
            return;
        }
        let Ok(key_id) = context.key_id() else {
            return;
        };
        if readable && self.readable(&key_id) {
            return;
        }
        if let Ok(mut unreadable) = self.unreadable.write() {
            if readable {
                unreadable.remove(&key_id);
            } else {
                unreadable.insert(key_id);
            }
            self.any.store(!unreadable.is_empty(), Ordering::Release);
        }
    }
}

/// Tries the data key of every live credential's current version; returns how many cannot
/// be unwrapped. A keyring that fails is an error (nothing is marked).
pub async fn check_keys(registry: &Registry) -> Result<usize, AppError> {
    let mut unreadable = 0;
    for row in registry.views.all_credentials()? {
        let credential = &row.credential;
        if credential.deleted {
            continue;
        }
        let context = vault::SecretContext {
            org: &row.org,
            credential_id: credential.id.as_str(),
            version: credential.version,
        };
        match registry.vault.check(&context).await {
            Ok(()) => registry.key_health.mark(&context, true),
            Err(vault::VaultError::KeyDestroyed | vault::VaultError::KeyUnwrap) => {
                unreadable += 1;
                registry.key_health.mark(&context, false);
            }
            Err(other) => return Err(other.into()),
        }
    }
    if unreadable > 0 {
        tracing::warn!(
            unreadable,
            "credentials need reconfiguration: their data keys cannot be unwrapped with the configured master key (or were destroyed)"
        );
    }
    Ok(unreadable)
}

/// Checks the keys once the views hold what the log held at start, then every `every`,
/// until `shutdown`.
pub async fn watch_keys(
    registry: Arc<Registry>,
    every: Duration,
    shutdown: impl Future<Output = ()>,
) {
    tokio::pin!(shutdown);
    let caught_up = async {
        if let Ok(last) = registry.log.last_seq().await {
            let _ = registry
                .views
                .wait_for(last, Duration::from_secs(3600))
                .await;
        }
    };
    tokio::select! {
        _ = &mut shutdown => return,
        _ = caught_up => {}
    }
    loop {
        if let Err(error) = check_keys(&registry).await {
            tracing::warn!(error = %crate::error::chain(&error), "cannot check the data keys");
        }
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_unreadable_from_a_failed_try_until_a_good_one() {
        let health = KeyHealth::default();
        let context = vault::SecretContext {
            org: "acme",
            credential_id: "cred_1",
            version: 2,
        };
        assert!(health.readable("acme.cred_1.2"), "never tried: readable");
        health.mark(&context, false);
        assert!(!health.readable("acme.cred_1.2"));
        assert!(
            health.readable("acme.cred_1.1"),
            "other versions unaffected"
        );
        health.mark(&context, true);
        assert!(health.readable("acme.cred_1.2"));
        assert!(!health.any.load(Ordering::Acquire));
    }
}
