//! A registry client for a pipeline worker: resolve with a local cache that follows the
//! registry. An answer is kept with the views position it reflects and served while the
//! org's resolve-relevant changes (its models, credentials and tokens, the platform catalog)
//! have not moved past it; [`Client::follow`] long-polls `GET /v1/position?scope=resolve`
//! so the client learns of such a change (a deactivation, a rotation) as soon as the
//! registry's views apply it, while usage records and workflow reports leave the cache be.
//! A call is then a map lookup, never a round trip, until something changed. Answers are
//! served from the cache only while the follower hears from the registry: without a
//! follower, or once it has not for [`MAX_UNHEARD`], or when its token is refused, every
//! resolve asks the registry.
//!
//! The cache holds decrypted credentials in this process's memory, as the worker must to
//! call a model; it never writes them anywhere.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

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
    /// The highest position of a resolve-relevant change this client has learned of.
    head: AtomicU64,
    /// A follower heard from the registry within [`MAX_UNHEARD`]: only then is a cached
    /// answer served.
    following: AtomicBool,
    /// Model → the answer and the position it reflects.
    cache: RwLock<HashMap<String, (u64, Arc<api::Resolved>)>>,
}

/// How long one `GET /v1/position` waits for the registry to move.
const FOLLOW_WAIT_SECS: u64 = 25;
/// How long cached answers are served while the follower cannot reach the registry: a
/// change made meanwhile goes unseen at most this long.
pub const MAX_UNHEARD: Duration = Duration::from_secs(60);
/// The longest a resolve waits for the registry: it is on the path of an LLM call.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest a long poll waits: its own wait, and time for the answer.
const POLL_TIMEOUT: Duration = Duration::from_secs(FOLLOW_WAIT_SECS + 10);

impl Client {
    /// A client of the registry at `base` (`http://host:8080`) with a service `token`.
    pub fn new(base: &str, token: String) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .timeout(POLL_TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| ClientError::Unavailable(e.to_string()))?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                base: base.trim_end_matches('/').to_owned(),
                token,
                head: AtomicU64::new(0),
                following: AtomicBool::new(false),
                cache: RwLock::default(),
            }),
        })
    }

    /// Whether cached answers are served: a follower hears from the registry.
    pub fn is_following(&self) -> bool {
        self.inner.following.load(Ordering::Acquire)
    }

    /// The highest position of a resolve-relevant change this client has learned of.
    pub fn head(&self) -> u64 {
        self.inner.head.load(Ordering::Acquire)
    }

    /// Learns of a registry position from elsewhere (a command's answer, a notice), so no
    /// answer older than it is served from the cache.
    pub fn observe(&self, position: u64) {
        self.inner.head.fetch_max(position, Ordering::AcqRel);
    }

    /// The cached answer for `model`, if a follower hears from the registry and nothing
    /// that could change the answer happened since it was read.
    pub fn cached(&self, model: &str) -> Option<Arc<api::Resolved>> {
        if !self.is_following() {
            return None;
        }
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
        let path = format!("/v1/resolve/{model}");
        let answer: api::Positioned<api::Resolved> = match self.get(&path, RESOLVE_TIMEOUT).await {
            Ok(answer) => answer,
            Err(error) => {
                if let Ok(mut cache) = self.inner.cache.write() {
                    cache.remove(model);
                }
                return Err(error);
            }
        };
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

    /// Follows the org's resolve-relevant changes until `shutdown` resolves: each answer of
    /// the long poll moves [`Client::head`], which retires every cached answer older than
    /// it. A registry that cannot be reached is asked again a second later; once it has not
    /// answered for [`MAX_UNHEARD`], or refuses the token (revoked), the cache is not served
    /// until it answers again.
    pub async fn follow(&self, shutdown: impl Future<Output = ()>) {
        // However the follow ends (shutdown, or its future dropped), the cache is not
        // served without it.
        struct Unfollowed<'a>(&'a Client);
        impl Drop for Unfollowed<'_> {
            fn drop(&mut self) {
                self.0.stop_serving();
            }
        }
        let _unfollowed = Unfollowed(self);
        let follow = async {
            let mut heard: Option<Instant> = None;
            loop {
                let path = format!(
                    "/v1/position?after={}&wait={FOLLOW_WAIT_SECS}&scope=resolve",
                    self.head()
                );
                let polled = self.get::<api::Positioned<api::ViewsPosition>>(&path, POLL_TIMEOUT);
                match polled.await {
                    Ok(answer) => {
                        // A registry older than `changed_at` follows the whole log.
                        self.observe(answer.value.changed_at.unwrap_or(answer.position));
                        heard = Some(Instant::now());
                        self.inner.following.store(true, Ordering::Release);
                        continue;
                    }
                    Err(
                        error @ ClientError::Refused {
                            status: 401 | 403, ..
                        },
                    ) => {
                        tracing::warn!(%error, "the registry refuses this client's token; its cached answers are not served");
                        heard = None;
                        self.stop_serving();
                    }
                    Err(error) => {
                        tracing::warn!(%error, "cannot follow the registry's changes; retrying");
                        if heard.is_none_or(|at| at.elapsed() >= MAX_UNHEARD) {
                            self.stop_serving();
                        }
                    }
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        };
        tokio::select! {
            _ = follow => {}
            () = shutdown => {}
        }
    }

    /// Serves no cached answer (and forgets them) until a follower hears from the registry.
    fn stop_serving(&self) {
        self.inner.following.store(false, Ordering::Release);
        if let Ok(mut cache) = self.inner.cache.write() {
            cache.clear();
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
        // Its position is not observed: a usage record changes no resolve answer.
        let answer: api::Positioned<api::UsageReceipt> = self.send(request).await?;
        Ok(answer.value)
    }

    async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        timeout: Duration,
    ) -> Result<T, ClientError> {
        let request = self.inner.http.get(format!("{}{path}", self.inner.base));
        self.send(request.timeout(timeout)).await
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
