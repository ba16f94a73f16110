//! Availability on a 3-node NATS cluster on loopback, on Debian's nats-server (2.9.10) and
//! the current one (`just deps`): a stream-leader kill under write load, a kill of the node
//! holding a replica's tail consumer, a kill (SIGKILL) of an API server process under write
//! load with its clients failing over to another replica, replicas that start late and catch
//! up, a replica starting with a listed node down, and workers outliving a node.
//!
//! Each scenario checks what an operator's fault test checked: every acknowledged write is
//! in the log exactly once and on every replica, no message id twice, the replicas' views
//! agree to the byte, and the replica is ready again within 10 s of the stream having a
//! leader: `/readyz` answers 200 and a write sent after the fault is acknowledged (one in
//! flight across it may be of an event stored before it). It prints the longest gap between
//! acknowledgements and the time to ready.
//!
//! Ignored in `just test` (clusters of two server versions are slow on 2 cores); `just
//! test-cluster` runs them, and CI runs both recipes.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use futures::{StreamExt, TryStreamExt};
use reqwest::{Method, StatusCode};
use serde_json::json;
use testkit::{NatsCluster, ServerProgram};
use tokio::task::JoinHandle;

use crate::support::TestApp;

const STREAM: &str = "REGISTRY";
/// How soon after the stream has a leader a replica must be ready again.
const READY_WITHIN: Duration = Duration::from_secs(10);
/// How long any one wait of these tests may take before it fails.
const DEADLINE: Duration = Duration::from_secs(60);
/// Between two polls of a condition.
const POLL: Duration = Duration::from_millis(20);

/// A cluster of `program` and a client to watch it with.
struct Fixture {
    cluster: NatsCluster,
    version: String,
    js: jetstream::Context,
    client: async_nats::Client,
}

impl Fixture {
    async fn start(program: &ServerProgram) -> Self {
        let cluster = NatsCluster::start(&program.path, 3);
        let client = eventlog::connect_nats(&cluster.urls())
            .await
            .expect("connect to the cluster");
        Self {
            js: jetstream::new(client.clone()),
            client,
            cluster,
            version: program.version.clone(),
        }
    }

    /// The node that leads the stream now; `None` while it is being elected (or the answer
    /// takes over 500 ms: the time a leader was found is then at most that late).
    async fn stream_leader(&self) -> Option<usize> {
        let info = tokio::time::timeout(Duration::from_millis(500), async {
            self.js.get_stream(STREAM).await.ok()?.get_info().await.ok()
        })
        .await
        .ok()??;
        let leader = info.cluster?.leader?;
        self.cluster.index_of(&leader)
    }

    /// Waits until the stream has a leader other than `not`; returns it.
    async fn wait_for_leader(&self, not: Option<usize>) -> usize {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(leader) = self.stream_leader().await
                && Some(leader) != not
            {
                return leader;
            }
            assert!(
                Instant::now() < deadline,
                "[{}] the stream has no leader after {DEADLINE:?}",
                self.version
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Where the consumers of the stream live: `(name, durable, node)` for each that has a
    /// leader now.
    async fn consumers(&self) -> Vec<(String, bool, usize)> {
        let Ok(stream) = self.js.get_stream(STREAM).await else {
            return Vec::new();
        };
        let infos: Vec<jetstream::consumer::Info> =
            stream.consumers().try_collect().await.unwrap_or_default();
        infos
            .into_iter()
            .filter_map(|info| {
                let node = self.cluster.index_of(&info.cluster?.leader?)?;
                Some((info.name, info.config.durable_name.is_some(), node))
            })
            .collect()
    }

    /// Asks the stream's leader to hand over leadership, and waits for another to lead.
    async fn step_down(&self, leader: usize) -> usize {
        let subject = format!("$JS.API.STREAM.LEADER.STEPDOWN.{STREAM}");
        let _ = self.client.request(subject, "".into()).await;
        self.wait_for_leader(Some(leader)).await
    }
}

/// What a writer of a [`Load`] writes, each under its own idempotency key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Write {
    /// `PUT /v1/workflows/wf-…`: a repeat of a stored workflow changes nothing, so only the
    /// message ids show a command applied twice.
    Workflow,
    /// `POST /v1/tokens` labelled `tk-…`: each command applied issues another token, so a
    /// retry applied twice leaves two tokens of one label.
    Token,
}

impl Write {
    /// The first attempt of write `id` to `base`, or a retry under the same key.
    fn request(
        self,
        http: &reqwest::Client,
        base: &str,
        token: &str,
        id: &str,
    ) -> reqwest::RequestBuilder {
        let request = match self {
            Self::Workflow => http
                .put(format!("{base}/v1/workflows/{id}"))
                .json(&json!({"name": id, "active": true, "steps": [{"model": "m"}]})),
            Self::Token => http
                .post(format!("{base}/v1/tokens"))
                .json(&json!({"label": id, "role": "member"})),
        };
        request
            .bearer_auth(token)
            .header("idempotency-key", format!("write-{id}"))
    }

    fn prefix(self) -> &'static str {
        match self {
            Self::Workflow => "wf",
            Self::Token => "tk",
        }
    }
}

/// An acknowledged write.
#[derive(Clone)]
struct Ack {
    /// When it was acknowledged.
    at: Instant,
    id: String,
    /// When its first attempt was sent.
    sent: Instant,
}

/// Writers under load, each writing new workflows (or tokens) one command at a time, each
/// under its own idempotency key, retrying a failed attempt with the same key until it is
/// acknowledged. Given several replicas, the writers act as a load balancer would: they
/// write through the first, and once it cannot be reached, through the next.
struct Load {
    acks: Arc<Mutex<Vec<Ack>>>,
    /// Writes whose answer was lost: an attempt sent and never answered (the connection
    /// dropped), retried with the same key elsewhere.
    lost: Arc<Mutex<BTreeSet<String>>>,
    /// Token issues acknowledged as the retry of an issue already stored.
    replayed: Arc<Mutex<BTreeSet<String>>>,
    /// Attempts sent and not yet answered.
    in_flight: Arc<AtomicUsize>,
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Load {
    fn start(base: &str, token: &str, writers: usize) -> Self {
        Self::balanced(&[base], token, writers, &[Write::Workflow])
    }

    /// `writers` writers through `bases` in order, writer `n` writing `writes[n % len]`.
    fn balanced(bases: &[&str], token: &str, writers: usize, writes: &[Write]) -> Self {
        let acks = Arc::new(Mutex::new(Vec::new()));
        let lost = Arc::new(Mutex::new(BTreeSet::new()));
        let replayed = Arc::new(Mutex::new(BTreeSet::new()));
        let in_flight = Arc::new(AtomicUsize::new(0));
        let stop = tokio::sync::watch::Sender::new(false);
        let bases: Vec<String> = bases.iter().map(|base| (*base).to_owned()).collect();
        let tasks = (0..writers)
            .map(|writer| {
                let (acks, lost, mut stopped) =
                    (Arc::clone(&acks), Arc::clone(&lost), stop.subscribe());
                let (in_flight, replayed) = (Arc::clone(&in_flight), Arc::clone(&replayed));
                let (bases, token) = (bases.clone(), token.to_owned());
                let write = writes[writer % writes.len()];
                tokio::spawn(async move {
                    let http = reqwest::Client::builder()
                        .timeout(Duration::from_secs(40))
                        .build()
                        .expect("client");
                    let mut through = 0;
                    for n in 0.. {
                        let id = format!("{}-{writer}-{n}", write.prefix());
                        let sent = Instant::now();
                        loop {
                            if *stopped.borrow_and_update() {
                                return;
                            }
                            in_flight.fetch_add(1, Ordering::SeqCst);
                            let answer = write
                                .request(&http, &bases[through], &token, &id)
                                .send()
                                .await;
                            in_flight.fetch_sub(1, Ordering::SeqCst);
                            match answer {
                                Ok(answer) if answer.status().is_success() => {
                                    // A token is shown to the attempt that issued it only:
                                    // without it, the answer is a retry's of a stored issue.
                                    if write == Write::Token {
                                        let body: serde_json::Value =
                                            answer.json().await.unwrap_or_default();
                                        if body["token"].is_null() {
                                            replayed.lock().expect("replayed").insert(id.clone());
                                        }
                                    }
                                    acks.lock().expect("acks").push(Ack {
                                        at: Instant::now(),
                                        id: id.clone(),
                                        sent,
                                    });
                                    break;
                                }
                                Ok(answer) if answer.status().is_client_error() => {
                                    let status = answer.status();
                                    let body = answer.text().await.unwrap_or_default();
                                    panic!("{id}: refused with {status}: {body}")
                                }
                                // Unavailable: the same command again.
                                Ok(_) => tokio::time::sleep(POLL).await,
                                // Not answered: the replica is gone; the same command
                                // through the next one (the last one is kept).
                                Err(error) => {
                                    if !error.is_connect() {
                                        lost.lock().expect("lost").insert(id.clone());
                                    }
                                    if through + 1 < bases.len() {
                                        through += 1;
                                    } else {
                                        tokio::time::sleep(POLL).await;
                                    }
                                }
                            }
                        }
                    }
                })
            })
            .collect();
        Self {
            acks,
            lost,
            replayed,
            in_flight,
            stop,
            tasks,
        }
    }

    /// The writes whose answer was lost so far.
    fn lost(&self) -> BTreeSet<String> {
        self.lost.lock().expect("lost").clone()
    }

    /// The token issues acknowledged as retries of an issue already stored.
    fn replayed(&self) -> BTreeSet<String> {
        self.replayed.lock().expect("replayed").clone()
    }

    /// Waits until at least `n` attempts are sent and not answered.
    async fn wait_for_in_flight(&self, n: usize) {
        let deadline = Instant::now() + DEADLINE;
        while self.in_flight.load(Ordering::SeqCst) < n {
            assert!(
                Instant::now() < deadline,
                "never {n} attempts in flight at once"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    fn count(&self) -> usize {
        self.acks.lock().expect("acks").len()
    }

    /// Waits until `n` writes more than now are acknowledged.
    async fn wait_for_more(&self, n: usize, what: &str) {
        let target = self.count() + n;
        let deadline = Instant::now() + DEADLINE;
        while self.count() < target {
            assert!(
                Instant::now() < deadline,
                "{what}: {} of {target} writes acknowledged after {DEADLINE:?}",
                self.count()
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// When the first acknowledgement of a write `which` picks came. A write sent before a
    /// fault and acknowledged after it may be of an event stored before the fault: whether
    /// the replica takes new commands shows in a write sent after it.
    fn first_ack(&self, which: impl Fn(&Ack) -> bool) -> Option<Instant> {
        let acks = self.acks.lock().expect("acks");
        acks.iter().filter(|ack| which(ack)).map(|ack| ack.at).min()
    }

    /// Stops the writers; the acknowledged ids and the longest gap between two
    /// acknowledgements.
    async fn stop(self) -> (Vec<String>, Duration) {
        self.stop.send_replace(true);
        for task in self.tasks {
            task.await.expect("a writer failed");
        }
        let mut acks = self.acks.lock().expect("acks").clone();
        acks.sort_by(|a, b| (a.at, &a.id).cmp(&(b.at, &b.id)));
        let gap = acks
            .windows(2)
            .map(|pair| pair[1].at - pair[0].at)
            .max()
            .unwrap_or_default();
        (acks.into_iter().map(|ack| ack.id).collect(), gap)
    }
}

/// Waits until the replica's `/readyz` answers 200; when it did.
async fn wait_until_ready(app: &TestApp, what: &str) -> Instant {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let ready = app
            .http
            .get(format!("{}/readyz", app.base))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .is_ok_and(|answer| answer.status() == StatusCode::OK);
        if ready {
            return Instant::now();
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not ready after {DEADLINE:?}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// What every scenario ends with: the log holds each acknowledged write exactly once and no
/// message id twice; every replica reaches the log's last position, holds every
/// acknowledged write, and their views agree to the byte.
async fn check_exactly_once(fixture: &Fixture, replicas: &[&TestApp], acked: &[String]) {
    let version = &fixture.version;
    // A node restarted just before may still be rejoining: the stream's info can time out
    // for a moment, as it does for any client, so the check's own connection retries.
    let deadline = Instant::now() + DEADLINE;
    let log = loop {
        match eventlog::JetStreamLog::connect(&fixture.cluster.urls(), STREAM).await {
            Ok(log) => break log,
            Err(e) if Instant::now() < deadline => {
                eprintln!("cluster [{version}] the check's connection waits: {e}");
                tokio::time::sleep(POLL).await;
            }
            Err(e) => panic!("[{version}] the log: {e:?}"),
        }
    };
    // Events written after the load stopped (by a worker, say) move the log on while it is
    // checked: the check starts again at the new end.
    for _ in 0..5 {
        if checked_at_the_end(version, &log, replicas, acked).await {
            return;
        }
    }
    panic!("[{version}] the log kept moving while it was checked");
}

/// The check at the log's current end; false if a replica moved past it meanwhile.
async fn checked_at_the_end(
    version: &str,
    log: &eventlog::JetStreamLog,
    replicas: &[&TestApp],
    acked: &[String],
) -> bool {
    let last = eventlog::EventLog::last_seq(log).await.expect("last seq");
    let mut tail = eventlog::EventLog::tail(log, 1).await.expect("tail");
    let mut per_workflow: BTreeMap<String, usize> = BTreeMap::new();
    let mut message_ids: BTreeMap<String, u64> = BTreeMap::new();
    // The running digest of the log as this check reads it (`eventlog::chain`): a replica
    // whose views hold another one at `last` read another history.
    let mut digest = eventlog::chain::GENESIS;
    let mut seq = 0;
    while seq < last {
        let stored = tokio::time::timeout(DEADLINE, tail.next())
            .await
            .expect("the log's tail delivers")
            .expect("the tail goes on")
            .expect("a message");
        seq = stored.seq;
        digest =
            eventlog::chain::next_digest(&digest, seq, &eventlog::Envelope::hash_of(&stored.data));
        let envelope = eventlog::Envelope::decode(&stored.data).expect("an envelope");
        let message_id = format!("{}:{}:{}", envelope.org, envelope.command_id, envelope.kind);
        if let Some(first) = message_ids.insert(message_id.clone(), seq) {
            panic!("[{version}] message id {message_id} at {first} and again at {seq}");
        }
        if envelope.kind == "workflow" {
            *per_workflow.entry(envelope.aggregate_id).or_default() += 1;
        }
    }
    for id in acked {
        assert_eq!(
            per_workflow.get(id),
            Some(&1),
            "[{version}] acknowledged write {id} is not in the log exactly once"
        );
    }
    let read = eventlog::Head {
        position: last,
        digest,
    };
    let mut sums = Vec::new();
    for (n, replica) in replicas.iter().enumerate() {
        let views = replica.registry().views();
        views
            .wait_for(last, DEADLINE)
            .await
            .unwrap_or_else(|e| panic!("[{version}] replica {n} does not catch up: {e}"));
        for id in acked {
            let row = views
                .workflow(&org_of(replica).await, id)
                .expect("views read");
            assert!(row.is_some(), "[{version}] replica {n} misses {id}");
        }
        match agreed_state(version, n, views, read) {
            Some(sum) => sums.push(sum),
            None => return false,
        }
    }
    assert!(
        sums.windows(2).all(|pair| pair[0] == pair[1]),
        "[{version}] replicas disagree at position {last} (the log read here: {read}): \
         {sums:#?}\n{}",
        registry_log()
    );
    true
}

/// A replica's views at the log's `last` position, for comparing replicas: its head (the
/// running digest, which must be the one `read` from the log) and the checksum; `None` if
/// the views moved past `last` (an event written since).
fn agreed_state(
    version: &str,
    n: usize,
    views: &views::Views,
    read: eventlog::Head,
) -> Option<(String, String)> {
    let head = views.head().expect("views head").expect("a head");
    if head.position == read.position {
        assert_eq!(
            head,
            read,
            "[{version}] replica {n} folded another history than the log holds\n{}",
            registry_log()
        );
    }
    let checksum = views.checksum().expect("checksum");
    let after = views.head().expect("views head").expect("a head");
    (head == read && after == read).then(|| (head.to_string(), checksum))
}

/// What the registry (not the NATS client) logged at info level and above, with
/// timestamps, for a failure's message.
fn registry_log() -> String {
    let captured = crate::support::logs::captured();
    String::from_utf8_lossy(&captured)
        .lines()
        .filter(|line| {
            (line.contains(" WARN ") || line.contains(" INFO ") || line.contains(" ERROR "))
                && !line.contains("async_nats")
                && !line.contains("request")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The org id the replica's token belongs to.
async fn org_of(app: &TestApp) -> String {
    let principal = app::orgs::authenticate(app.registry(), &app.token).expect("the token");
    principal.org().as_str().to_owned()
}

/// A replica of the registry on `fixture`'s cluster (stream and keyring R3), joining the
/// org of `token` or creating `acme`.
async fn replica(fixture: &Fixture, token: Option<&str>) -> TestApp {
    TestApp::on_cluster(&fixture.cluster.urls(), 3, token, |_| {}).await
}

/// One line of figures for the issue note.
fn report(version: &str, scenario: &str, acked: usize, gap: Duration, more: &str) {
    eprintln!(
        "cluster [{version}] {scenario}: {acked} writes acknowledged, longest gap between acknowledgements {:.2} s{more}",
        gap.as_secs_f64()
    );
}

fn seconds(duration: Duration) -> String {
    format!("{:.2} s", duration.as_secs_f64())
}

/// A replica of the registry as its own `modelreg serve` process on the cluster (stream and
/// keyring R3), so that a kill is a crash: SIGKILL, nothing flushed or closed. Killed on drop.
struct ApiProcess {
    child: std::process::Child,
    base: String,
    /// Its data dir (views), for the replica that takes over after a crash.
    data: Option<tempfile::TempDir>,
    /// Its output, for failure messages.
    output: tempfile::NamedTempFile,
}

impl ApiProcess {
    /// Starts it and waits until it is ready and knows `token` (its views caught up).
    async fn start(fixture: &Fixture, token: &str) -> Self {
        let data = tempfile::tempdir().expect("temp dir");
        let output = tempfile::NamedTempFile::new().expect("temp file");
        let port = crate::support::free_port();
        let child = std::process::Command::new(crate::crash::modelreg_binary())
            .args(["serve", "--nats", &fixture.cluster.urls()])
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--data-dir")
            .arg(data.path())
            .env("MODELREG_MASTER_KEY", crate::support::registry::MASTER_KEY)
            .env("MODELREG_STREAM_REPLICAS", "3")
            .env("MODELREG_KEYRING_REPLICAS", "3")
            .env("MODELREG_BOOTSTRAP_DEFAULT_ORG", "0")
            .env("MODELREG_READ_YOUR_WRITES_TIMEOUT_MS", "30000")
            .env("MODELREG_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(output.reopen().expect("output"))
            .spawn()
            .expect("spawn modelreg serve");
        let process = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            data: Some(data),
            output,
        };
        let http = reqwest::Client::new();
        let deadline = Instant::now() + DEADLINE;
        loop {
            let known = http
                .get(format!("{}/v1/workflows", process.base))
                .bearer_auth(token)
                .timeout(Duration::from_secs(5))
                .send()
                .await
                .is_ok_and(|answer| answer.status() == StatusCode::OK);
            if known {
                return process;
            }
            assert!(
                Instant::now() < deadline,
                "[{}] modelreg serve is not ready after {DEADLINE:?}; its output:\n{}",
                fixture.version,
                std::fs::read_to_string(process.output.path()).unwrap_or_default()
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// `kill -9`; answers its data dir.
    fn kill9(&mut self) -> tempfile::TempDir {
        self.child.kill().expect("SIGKILL");
        let _ = self.child.wait();
        self.data.take().expect("killed once")
    }
}

impl Drop for ApiProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every acknowledged token label is issued exactly once on every replica, and no label
/// twice: a retry applied twice would issue a second token.
async fn check_tokens_once(version: &str, replicas: &[&TestApp], acked: &[String]) {
    for (n, replica) in replicas.iter().enumerate() {
        let tokens = replica
            .registry()
            .views()
            .tokens(&org_of(replica).await)
            .expect("views read");
        let mut per_label: BTreeMap<&str, usize> = BTreeMap::new();
        for row in &tokens {
            *per_label.entry(row.label.as_str()).or_default() += 1;
        }
        if let Some((label, count)) = per_label.iter().find(|(_, count)| **count > 1) {
            panic!("[{version}] replica {n} issued token {label} {count} times");
        }
        for label in acked {
            assert_eq!(
                per_label.get(label.as_str()),
                Some(&1),
                "[{version}] replica {n}: acknowledged token {label} is not issued exactly once"
            );
        }
    }
}

async fn api_server_kill_under_write_load(program: &ServerProgram) {
    let fixture = Fixture::start(program).await;
    let version = fixture.version.clone();
    // B, the replica the load balancer falls back to, creates the org; A, its own process,
    // takes the writes until it is killed.
    let b = replica(&fixture, None).await;
    let mut a = ApiProcess::start(&fixture, &b.token).await;
    // One writer issues tokens: an org's tokens are one aggregate, and two issues at once
    // conflict (409) by design.
    let load = Load::balanced(
        &[&a.base, &b.base],
        &b.token,
        4,
        &[
            Write::Token,
            Write::Workflow,
            Write::Workflow,
            Write::Workflow,
        ],
    );
    load.wait_for_more(100, "before the kill").await;

    // Killed while writes are in flight: their answers are lost, and the writers send them
    // again with the same key through B.
    load.wait_for_in_flight(2).await;
    let killed_at = Instant::now();
    let data = a.kill9();
    load.wait_for_more(100, "through B after the kill").await;
    let through_b = load
        .first_ack(|ack| ack.at > killed_at)
        .expect("an acknowledgement after the kill")
        - killed_at;

    // A' starts on A's data dir (the views A left mid-write) and the same cluster.
    let started = Instant::now();
    let a2 = TestApp::on_cluster_in(&fixture.cluster.urls(), 3, Some(&b.token), |_| {}, data).await;
    let ready = wait_until_ready(&a2, "A' after the kill").await - started;
    assert!(
        ready <= READY_WITHIN,
        "[{version}] A' ready {ready:?} after its start; the registry's log:\n{}",
        registry_log()
    );
    load.wait_for_more(50, "after A' started").await;
    let (lost, replayed) = (load.lost(), load.replayed());
    let (acked, gap) = load.stop().await;
    // The lost answers whose write A had stored (as far as a token's answer tells).
    let stored_by_a = replayed.intersection(&lost).count();
    assert!(
        !lost.is_empty(),
        "[{version}] no answer was lost: the kill met no write in flight"
    );
    let acked_set: BTreeSet<&String> = acked.iter().collect();
    let unacked: Vec<&String> = lost.iter().filter(|id| !acked_set.contains(id)).collect();
    assert!(
        unacked.is_empty(),
        "[{version}] writes whose answer was lost and never acknowledged: {unacked:?}"
    );

    let (workflows, tokens): (Vec<String>, Vec<String>) =
        acked.iter().cloned().partition(|id| id.starts_with("wf-"));
    // A' follows the writes B took: once its views hold them (the last answers through B
    // may be a few milliseconds ahead of it, and an issue decided on an org row that misses
    // one is refused as a conflict)...
    let last = eventlog::EventLog::last_seq(a2.registry().log().as_ref())
        .await
        .expect("last seq");
    a2.registry()
        .views()
        .wait_for(last, DEADLINE)
        .await
        .expect("A' reaches the log's end");
    // ...every acknowledged issue sent again with its key, now through A': each is stored,
    // so each answers as a retry (no secret) and issues nothing.
    for id in &tokens {
        let answer = Write::Token
            .request(&a2.http, &a2.base, &b.token, id)
            .send()
            .await
            .expect("a retry through A'");
        let status = answer.status();
        let body: serde_json::Value = answer.json().await.unwrap_or_default();
        assert!(
            status.is_success() && body["token"].is_null() && body["label"] == id.as_str(),
            "[{version}] {id} again through A': {status} {}",
            body["code"]
        );
    }
    check_exactly_once(&fixture, &[&b, &a2], &workflows).await;
    check_tokens_once(&version, &[&b, &a2], &tokens).await;
    let more = format!(
        " ({} workflows, {} tokens), none lost or duplicated; {} answers lost in the kill and \
         retried through B ({} of them tokens, {} of those stored by A before it died), every \
         acknowledged token issue sent again through A' answered as a retry, the first ack through B {} after the kill, A' \
         ready {} after its start",
        workflows.len(),
        tokens.len(),
        lost.len(),
        lost.iter().filter(|id| id.starts_with("tk-")).count(),
        stored_by_a,
        seconds(through_b),
        seconds(ready)
    );
    report(&version, "API server kill", acked.len(), gap, &more);
}

async fn stream_leader_kill_under_write_load(program: &ServerProgram) {
    let mut fixture = Fixture::start(program).await;
    let version = fixture.version.clone();
    let first = replica(&fixture, None).await;
    let load = Load::start(&first.base, &first.token, 4);
    load.wait_for_more(100, "before the kill").await;

    let leader = fixture.wait_for_leader(None).await;
    let killed_at = Instant::now();
    fixture.cluster.kill(leader);
    let new_leader = fixture.wait_for_leader(Some(leader)).await;
    let led_at = Instant::now();
    let ready_at = wait_until_ready(&first, "after the leader kill").await;
    load.wait_for_more(100, "after the kill").await;
    let ack_at = load
        .first_ack(|ack| ack.sent > led_at)
        .expect("a write sent after the new leader, acknowledged");
    let ready = ready_at.max(ack_at) - led_at;
    assert!(
        ready <= READY_WITHIN,
        "[{version}] ready {ready:?} after the stream had a leader again ({} after the kill)",
        (led_at - killed_at).as_secs_f64()
    );
    let (acked, gap) = load.stop().await;
    fixture.cluster.restart(leader);
    assert_ne!(new_leader, leader);

    // A second and a third replica start now and catch up; all three agree.
    let second = replica(&fixture, Some(&first.token)).await;
    let third = replica(&fixture, Some(&first.token)).await;
    check_exactly_once(&fixture, &[&first, &second, &third], &acked).await;
    let more = format!(
        ", a new stream leader {} after the kill, ready {} after that",
        seconds(led_at - killed_at),
        seconds(ready)
    );
    report(&version, "stream-leader kill", acked.len(), gap, &more);
}

async fn tail_consumer_node_kill(program: &ServerProgram) {
    let mut fixture = Fixture::start(program).await;
    let version = fixture.version.clone();
    let first = replica(&fixture, None).await;
    let load = Load::start(&first.base, &first.token, 4);
    load.wait_for_more(50, "before the kill").await;

    // The replica's tail is the stream's one ephemeral consumer; the workers' are durable.
    let deadline = Instant::now() + DEADLINE;
    let tail_node = loop {
        let tails: Vec<usize> = fixture
            .consumers()
            .await
            .into_iter()
            .filter(|(_, durable, _)| !durable)
            .map(|(_, _, node)| node)
            .collect();
        if let [node] = tails[..] {
            break node;
        }
        assert!(Instant::now() < deadline, "[{version}] tails: {tails:?}");
        tokio::time::sleep(POLL).await;
    };
    // The stream keeps its leader: only the tail's node dies.
    let leader = fixture.wait_for_leader(None).await;
    if leader == tail_node {
        fixture.step_down(leader).await;
    }
    let killed_at = Instant::now();
    fixture.cluster.kill(tail_node);
    let led_at = Instant::now().max(killed_at);
    fixture.wait_for_leader(Some(tail_node)).await;
    let ready_at = wait_until_ready(&first, "after the tail's node was killed").await;
    load.wait_for_more(100, "after the kill").await;
    let ack_at = load
        .first_ack(|ack| ack.sent > killed_at)
        .expect("a write sent after the kill, acknowledged");
    let ready = ready_at.max(ack_at) - led_at;
    assert!(
        ready <= READY_WITHIN,
        "[{version}] ready {ready:?} after the kill of the tail's node (node {tail_node}, stream leader {leader}); the registry's log:\n{}",
        registry_log()
    );
    let (acked, gap) = load.stop().await;
    fixture.cluster.restart(tail_node);
    let second = replica(&fixture, Some(&first.token)).await;
    check_exactly_once(&fixture, &[&first, &second], &acked).await;
    assert!(
        first.registry().views().resumes() >= 1,
        "[{version}] the projector never replaced its tail"
    );
    let more = format!(
        ", ready {} after the kill (the stream kept its leader), {} tail(s) made anew",
        seconds(ready),
        first.registry().views().resumes()
    );
    report(
        &version,
        "tail consumer's node kill",
        acked.len(),
        gap,
        &more,
    );
}

async fn a_replica_starts_with_a_listed_node_down(program: &ServerProgram) {
    let mut fixture = Fixture::start(program).await;
    let version = fixture.version.clone();
    let first = replica(&fixture, None).await;
    fixture.cluster.kill(0);
    fixture.wait_for_leader(Some(0)).await;
    // The list names the dead node first. This replica is configured for one replica of
    // the log (the stream exists with three): on a cluster that is warned about, in the log
    // and in /readyz.
    let second = TestApp::on_cluster(&fixture.cluster.urls(), 1, Some(&first.token), |_| {}).await;
    let load = Load::start(&second.base, &second.token, 2);
    load.wait_for_more(20, "with a node down").await;
    wait_until_ready(&second, "with a node down").await;
    let readiness = second
        .http
        .get(format!("{}/readyz", second.base))
        .send()
        .await
        .expect("readyz")
        .text()
        .await
        .expect("text");
    assert!(
        readiness.contains(
            "warning: NATS runs a cluster but the log or the keyring is created with one replica"
        ),
        "[{version}] {readiness}"
    );
    let (acked, gap) = load.stop().await;
    fixture.cluster.restart(0);
    check_exactly_once(&fixture, &[&first, &second], &acked).await;
    report(
        &version,
        "replica started with node 1 down",
        acked.len(),
        gap,
        "",
    );
}

async fn workers_survive_node_loss(program: &ServerProgram) {
    let mut fixture = Fixture::start(program).await;
    let version = fixture.version.clone();
    let app = replica(&fixture, None).await;
    let draft = api::DraftTest::of(&app.local_draft("Before"));
    let test = |draft: api::DraftTest| {
        let app = &app;
        async move {
            let requested = app
                .call(
                    Method::POST,
                    "/v1/connection-tests",
                    Some(crate::support::registry::json_of(draft)),
                )
                .await;
            assert_eq!(requested.status, StatusCode::ACCEPTED, "{}", requested.body);
            let id = requested.body["id"].as_str().expect("id").to_owned();
            app.wait_for_test(&id).await
        }
    };
    let done = test(draft).await;
    assert_eq!(
        done.body["status"], "completed",
        "[{version}] {}",
        done.body
    );

    // Kill the node that leads the connection-test worker's durable consumer.
    let node = fixture
        .consumers()
        .await
        .into_iter()
        .find(|(name, _, _)| name == workers::connection_tests::CONSUMER)
        .map(|(_, _, node)| node)
        .expect("the connection-test consumer");
    let killed_at = Instant::now();
    fixture.cluster.kill(node);
    fixture.wait_for_leader(Some(node)).await;
    let draft = api::DraftTest::of(&app.local_draft("After"));
    let done = test(draft).await;
    let completed = killed_at.elapsed();
    assert_eq!(
        done.body["status"], "completed",
        "[{version}] a test requested after the node's loss: {}",
        done.body
    );
    fixture.cluster.restart(node);
    check_exactly_once(&fixture, &[&app], &[]).await;
    eprintln!(
        "cluster [{version}] connection-test worker's consumer's node kill: a test requested after it completed {} after the kill",
        seconds(completed)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a 3-node cluster on two server versions: just test-cluster"]
async fn a_stream_leader_kill_under_write_load_loses_and_repeats_nothing() {
    for program in testkit::server_programs() {
        stream_leader_kill_under_write_load(&program).await;
    }
}

/// Runs in `just test` (about 13 s a server version), not only in `just test-cluster`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_of_the_api_server_under_write_load_loses_and_repeats_nothing() {
    for program in testkit::server_programs() {
        api_server_kill_under_write_load(&program).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a 3-node cluster on two server versions: just test-cluster"]
async fn a_replica_whose_tail_node_dies_follows_again_within_seconds() {
    for program in testkit::server_programs() {
        tail_consumer_node_kill(&program).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a 3-node cluster on two server versions: just test-cluster"]
async fn a_replica_starts_while_a_listed_node_is_down() {
    for program in testkit::server_programs() {
        a_replica_starts_with_a_listed_node_down(&program).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a 3-node cluster on two server versions: just test-cluster"]
async fn workers_outlive_the_node_of_their_consumer() {
    for program in testkit::server_programs() {
        workers_survive_node_loss(&program).await;
    }
}

/// The NATS configs in `ops/` are valid for the current server, and set an fsync policy
/// Debian's 2.9.10 does not know (which is why production needs the current one).
#[test]
fn the_ops_configs_suit_the_current_server() {
    let ops = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../ops");
    let configs = [
        ops.join("nats-single.conf"),
        ops.join("nats-cluster/node-1.conf"),
        ops.join("nats-cluster/node-2.conf"),
        ops.join("nats-cluster/node-3.conf"),
    ];
    for program in testkit::server_programs() {
        for config in &configs {
            let text = std::fs::read_to_string(config).expect("config");
            assert!(
                text.contains("sync_interval: always"),
                "{}",
                config.display()
            );
            let checked = std::process::Command::new(&program.path)
                .arg("-c")
                .arg(config)
                .arg("-t")
                .output()
                .expect("nats-server -t");
            let current = !program.version.starts_with("v2.9.");
            assert_eq!(
                checked.status.success(),
                current,
                "{} with {}: {}{}",
                config.display(),
                program.version,
                String::from_utf8_lossy(&checked.stdout),
                String::from_utf8_lossy(&checked.stderr)
            );
        }
    }
}
