//! Test Connection as the client runs it: request a test, then long-poll it behind a spinner
//! until a worker completed it or the deadline passed.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use api::{ConnectionTest, Positioned, TestResult, WaitQuery};
use serde::Serialize;

use super::http::{Answer, Client, segment};

/// Seconds one poll of a pending connection test waits on the server (which caps it at 30).
const POLL_WAIT_SECS: u64 = 25;
/// How long to wait for a connection test's outcome before giving up on the worker.
const TEST_DEADLINE: Duration = Duration::from_secs(120);

/// A completed connection test: the last answer, as received, and its result.
pub(crate) struct Tested {
    pub(crate) answer: Answer<Positioned<ConnectionTest>>,
    pub(crate) result: TestResult,
}

impl Tested {
    pub(crate) fn id(&self) -> &str {
        &self.answer.value.value.id
    }
}

/// Requests a connection test at `path` (a draft's, or a saved model's) and waits for its
/// outcome behind a spinner, which is cleared however the wait ends.
pub(crate) async fn run<B: Serialize>(
    client: &Client,
    path: &str,
    body: &B,
) -> anyhow::Result<Tested> {
    let requested: Answer<Positioned<ConnectionTest>> =
        client.post(path).body(body).answer().await?;
    let id = requested.value.value.id;
    let _spinner = Spinner::start("testing the connection…");
    let deadline = Instant::now() + TEST_DEADLINE;
    let poll = WaitQuery {
        wait: Some(POLL_WAIT_SECS),
    };
    loop {
        let mut answer: Answer<Positioned<ConnectionTest>> = client
            .get(&format!("/v1/connection-tests/{}", segment(&id)))
            .query(&poll)
            .answer()
            .await?;
        if answer.value.value.status == "completed" {
            let result = answer.value.value.result.take().with_context(|| {
                format!("the registry's completed connection test {id} has no result")
            })?;
            return Ok(Tested { answer, result });
        }
        if Instant::now() > deadline {
            bail!(
                "the connection test {id} is still pending after {} s: no worker ran it. On the embedded log `modelreg serve` runs the worker; in NATS mode start `modelreg worker connection-tests`. GET /v1/connection-tests/{id} shows it later",
                TEST_DEADLINE.as_secs()
            );
        }
    }
}

/// A spinner on stderr (drawn only on a terminal) that clears its line when dropped.
struct Spinner(indicatif::ProgressBar);

impl Spinner {
    fn start(message: &'static str) -> Self {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_message(message);
        bar.enable_steady_tick(Duration::from_millis(100));
        Self(bar)
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}
