//! A registry client for a pipeline worker: resolve with a local cache that follows the
//! registry's position. An answer is kept with the views position it reflects and served
//! while the registry has not moved past it; [`Client::follow`] long-polls
//! `GET /v1/position` so the client learns of any write (a deactivation, a rotation) as soon
//! as the registry's views apply it, and every answer's position counts too. A call is then
//! a map lookup, never a round trip, until something changed.
//!
//! The cache holds decrypted credentials in this process's memory, as the worker must to
//! call a model; it never writes them anywhere.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::check::{Checked, check};

/// What went wrong, named for what the caller can do.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The registry refused (an unknown or deactivated model, a token without the role):
    /// its problem's status and stable code, and its detail (never a secret).
    #[error("the registry answered {status} {code}: {detail}")]
    Refused {
        status: u16,
        code: String,
        detail: String,
    },
    /// The registry could not be reached or answered something unreadable: retry later.
    #[error("the registry is unavailable: {0}")]
    Unavailable(String),
}

/// A registry client whose resolves are cached while the registry stands still. Cheap to
/// clone (one shared cache).
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base: String,
    /// A service token (resolve hands out credentials to service tokens only).
    token: String,
    /// The highest registry position this client has learned of.
    head: AtomicU64,
    /// Model → the answer and the position it reflects.
    cache: RwLock<HashMap<String, (u64, Arc<api::Resolved>)>>,
}

/// How long one `GET /v1/position` waits for the registry to move.
const FOLLOW_WAIT_SECS: u64 = 25;

impl Client {
    /// A client of the registry at `base` (`http://host:8080`) with a service `token`.
    pub fn new(base: &str, token: String) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(FOLLOW_WAIT_SECS + 10))
            .build()
            .map_err(|e| ClientError::Unavailable(e.to_string()))?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                base: base.trim_end_matches('/').to_owned(),
                token,
                head: AtomicU64::new(0),
                cache: RwLock::default(),
            }),
        })
    }

    /// The highest registry position this client has learned of.
    pub fn head(&self) -> u64 {
        self.inner.head.load(Ordering::Acquire)
    }

    /// Learns of a registry position from elsewhere (a command's answer, a notice), so no
    /// answer older than it is served from the cache.
    pub fn observe(&self, position: u64) {
        self.inner.head.fetch_max(position, Ordering::AcqRel);
    }

    /// The cached answer for `model`, if the registry has not moved since it was read.
    pub fn cached(&self, model: &str) -> Option<Arc<api::Resolved>> {
        let head = self.head();
        let cache = self.inner.cache.read().ok()?;
        let (at, resolved) = cache.get(model)?;
        (*at >= head).then(|| Arc::clone(resolved))
    }

    /// Everything needed to call `model`: from the cache while the registry stands still,
    /// else `GET /v1/resolve/{model}` (a deactivated model is an error, never cached).
    pub async fn resolve(&self, model: &str) -> Result<Arc<api::Resolved>, ClientError> {
        if let Some(resolved) = self.cached(model) {
            return Ok(resolved);
        }
        let answer: api::Positioned<api::Resolved> =
            match self.get(&format!("/v1/resolve/{model}")).await {
                Ok(answer) => answer,
                Err(error) => {
                    if let Ok(mut cache) = self.inner.cache.write() {
                        cache.remove(model);
                    }
                    return Err(error);
                }
            };
        self.observe(answer.position);
        let resolved = Arc::new(answer.value);
        if let Ok(mut cache) = self.inner.cache.write() {
            cache.insert(model.to_owned(), (answer.position, Arc::clone(&resolved)));
        }
        Ok(resolved)
    }

    /// Resolves `model` and checks the features a step wants with the registry's rules.
    pub async fn check(
        &self,
        model: &str,
        wanted: &domain::workflow::Wanted,
    ) -> Result<Checked, ClientError> {
        Ok(check(&*self.resolve(model).await?, wanted))
    }

    /// Follows the registry's position until `shutdown` resolves: each answer of the long
    /// poll moves [`Client::head`], which retires every cached answer older than it. A
    /// registry that cannot be reached is asked again a second later.
    pub async fn follow(&self, shutdown: impl Future<Output = ()>) {
        let follow = async {
            loop {
                let path = format!("/v1/position?after={}&wait={FOLLOW_WAIT_SECS}", self.head());
                match self.get::<api::Positioned<api::ViewsPosition>>(&path).await {
                    Ok(answer) => self.observe(answer.position),
                    Err(error) => {
                        tracing::warn!(%error, "cannot follow the registry's position; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        };
        tokio::select! {
            _ = follow => {}
            () = shutdown => {}
        }
    }

    /// Reports usage records (`POST /v1/usage`), a truncation's among them (see
    /// [`crate::Inspection::usage`]). A record the registry has already is counted once, so a
    /// batch whose answer was lost is sent again as it was.
    pub async fn report(
        &self,
        records: Vec<api::UsageRecord>,
    ) -> Result<api::UsageReceipt, ClientError> {
        let request = self
            .inner
            .http
            .post(format!("{}/v1/usage", self.inner.base))
            .json(&api::UsageBatch { records });
        let answer: api::Positioned<api::UsageReceipt> = self.send(request).await?;
        self.observe(answer.position);
        Ok(answer.value)
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        let request = self.inner.http.get(format!("{}{path}", self.inner.base));
        self.send(request).await
    }

    async fn send<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<T, ClientError> {
        let response = request
            .bearer_auth(&self.inner.token)
            .send()
            .await
            .map_err(|e| ClientError::Unavailable(e.without_url().to_string()))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| ClientError::Unavailable(e.without_url().to_string()))?;
        if !status.is_success() {
            let problem: Option<api::Problem> = serde_json::from_slice(&bytes).ok();
            return Err(match problem {
                Some(problem) if !status.is_server_error() => ClientError::Refused {
                    status: status.as_u16(),
                    code: problem.code,
                    detail: problem.detail,
                },
                _ => ClientError::Unavailable(format!("the registry answered {status}")),
            });
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| ClientError::Unavailable(format!("an unreadable answer: {e}")))
    }
}
