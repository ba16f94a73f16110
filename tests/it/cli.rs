//! The binary as a user meets it: `serve` on the embedded default prints where it listens and
//! a bootstrap token, the client commands manage models with the secret on stdin, `rebuild`
//! prints the same checksum twice, and `admin create-org` prints a working token. Client
//! commands say what went wrong (every field error, an answer that is not the registry's, an
//! empty token), keep `--json` output parseable, and never wait on an idle stdin.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::crash::modelreg_binary;
use crate::support::fake_provider::FakeProvider;
use crate::support::free_port;
use crate::support::{Backend, TestApp};

struct Serve {
    child: Child,
    base: String,
    stdout: Vec<String>,
}

impl Serve {
    fn start(data: &Path, provider_base: &str) -> Self {
        let port = free_port();
        let mut child = Command::new(modelreg_binary())
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .env("MODELREG_DATA_DIR", data)
            .env("MODELREG_LOG", "warn")
            .env("MODELREG_PROVIDER_ANTHROPIC_BASE_URL", provider_base)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn modelreg serve");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        for line in BufReader::new(stdout).lines() {
            let line = line.expect("line");
            let done = line.starts_with("modelreg listening on");
            lines.push(line);
            if done {
                break;
            }
            assert!(Instant::now() < deadline, "serve did not start: {lines:?}");
        }
        Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            stdout: lines,
        }
    }

    fn stop(mut self) {
        // SIGTERM: a graceful shutdown releases the files.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run(args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Output {
    let mut command = Command::new(modelreg_binary());
    command
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().expect("spawn modelreg");
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(text.as_bytes())
            .expect("write stdin");
    }
    drop(child.stdin.take());
    child.wait_with_output().expect("output")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Runs the binary with stdin an open pipe that nothing is written to, as a script's idle
/// stdin is. Fails the test if the binary has not exited within 10 seconds.
fn run_with_idle_stdin(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(modelreg_binary());
    command
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (key, value) in env {
        command.env(key, value);
    }
    let mut child = command.spawn().expect("spawn modelreg");
    let idle = child.stdin.take();
    let deadline = Instant::now() + Duration::from_secs(10);
    while child.try_wait().expect("try_wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("modelreg {args:?} still waits on an idle stdin");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(idle);
    child.wait_with_output().expect("output")
}

fn stdout_json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "stdout is not JSON ({error}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

/// Every file under `dir` is 0600 and every directory 0700: the log, views and keyring hold
/// the audit trail, which no other local user may read.
fn assert_owner_only(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mut seen = 0;
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let mode = std::fs::metadata(&dir).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{} is {mode:o}", dir.display());
        for entry in std::fs::read_dir(&dir).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                pending.push(path);
                continue;
            }
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{} is {mode:o}", path.display());
            seen += 1;
        }
    }
    assert!(
        seen >= 4,
        "the data dir holds the log, views, keyring and keys: {seen} files"
    );
}

/// The value of `label:` in a model's human summary on stdout.
fn summary_field(output: &Output, label: &str) -> Option<String> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{label}:")))
        .map(|value| value.trim().to_owned())
}

#[test]
fn a_newcomer_runs_the_embedded_registry() {
    let data = tempfile::tempdir().expect("dir");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let fake = runtime.block_on(FakeProvider::start());
    let serve = Serve::start(data.path(), &fake.base);
    let printed = serve.stdout.join("\n");
    assert!(printed.contains("created org \"default\""), "{printed}");
    let token_file = data.path().join("bootstrap-token");
    let token = std::fs::read_to_string(&token_file)
        .expect("token file")
        .trim()
        .to_owned();
    assert!(
        printed.contains(&token),
        "the token is printed once: {printed}"
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&token_file).expect("meta").permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    let key_mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(data.path().join("master.key"))
            .expect("key")
            .permissions(),
    );
    assert_eq!(key_mode & 0o777, 0o600);

    let token_path = token_file.to_str().expect("path");
    let env = [
        ("MODELREG_SERVER", serve.base.as_str()),
        ("MODELREG_TOKEN_FILE", token_path),
    ];
    let added = run(
        &[
            "models",
            "add",
            "--json",
            "--secret-stdin",
            "--name",
            "Team Claude",
            "--provider",
            "anthropic",
            "--model-id",
            "claude-sonnet-4-6",
            "--max-tokens",
            "32000",
            "--tool-use",
            "true",
        ],
        &env,
        Some("sk-ant-cli-secret-0123456789\n"),
    );
    assert!(added.status.success(), "{}", text(&added));
    assert_eq!(
        stdout_json(&added)["model"]["slug"],
        "team-claude",
        "{}",
        text(&added)
    );
    assert!(
        !text(&added).contains("sk-ant-cli-secret"),
        "no secret echoed"
    );

    let edited = run(
        &[
            "models",
            "edit",
            "team-claude",
            "--name",
            "Team Claude (prod)",
            "--if-match",
            "1",
        ],
        &env,
        None,
    );
    assert!(edited.status.success(), "{}", text(&edited));
    let listed = run(&["models", "list"], &env, None);
    assert!(
        text(&listed).contains("team-claude")
            && text(&listed).contains("google/gemini-3.1-pro-preview"),
        "{}",
        text(&listed)
    );
    let credentials = run(&["credentials", "list"], &env, None);
    let listing = String::from_utf8_lossy(&credentials.stdout).to_string();
    let mut rows = listing.lines();
    assert!(
        rows.next()
            .is_some_and(|h| h.starts_with("ID") && h.ends_with("USED BY")),
        "{listing}"
    );
    assert!(
        rows.next()
            .is_some_and(|row| row.contains("anthropic") && row.ends_with(" 1")),
        "{listing}"
    );
    // (A refused add's field errors: `client_commands_answer_clearly_and_keep_json_parseable`.)
    // Deactivation asks first when an active workflow references the model.
    let put = runtime.block_on(async {
        reqwest::Client::new()
            .put(format!("{}/v1/workflows/wf-1", serve.base))
            .bearer_auth(&token)
            .json(&serde_json::json!({"name": "Nightly digest", "active": true, "steps": [{"model": "team-claude"}]}))
            .send()
            .await
            .expect("put workflow")
            .status()
    });
    assert_eq!(put, reqwest::StatusCode::OK);
    let asked = run(&["models", "deactivate", "team-claude"], &env, None);
    assert!(
        !asked.status.success(),
        "no terminal to confirm on: not deactivated"
    );
    assert!(
        text(&asked)
            .contains("1 active workflow (first: \"Nightly digest\") references team-claude")
            && text(&asked).contains("model.has_dependents")
            && text(&asked).contains("--yes")
            && !text(&asked).contains("?confirm=true"),
        "{}",
        text(&asked)
    );
    let forced = run(
        &["models", "deactivate", "team-claude", "--yes"],
        &env,
        None,
    );
    assert!(forced.status.success(), "{}", text(&forced));
    assert_eq!(
        summary_field(&forced, "status").as_deref(),
        Some("deactivated"),
        "{}",
        text(&forced)
    );
    let back = run(&["models", "reactivate", "team-claude"], &env, None);
    assert!(back.status.success(), "{}", text(&back));
    assert_eq!(
        summary_field(&back, "status").as_deref(),
        Some("active"),
        "{}",
        text(&back)
    );
    serve.stop();

    // With the server stopped: rebuild twice gives one checksum; create another org.
    let data_dir = data.path().to_str().expect("path");
    let first = run(&["rebuild", "--data-dir", data_dir], &[], None);
    let second = run(&["rebuild", "--data-dir", data_dir], &[], None);
    assert!(first.status.success(), "{}", text(&first));
    let checksum = |o: &Output| {
        String::from_utf8_lossy(&o.stdout)
            .split("checksum ")
            .nth(1)
            .map(|s| s.trim().to_owned())
    };
    assert!(
        checksum(&first).is_some_and(|c| c.len() == 64),
        "{}",
        text(&first)
    );
    assert_eq!(checksum(&first), checksum(&second));
    assert_owner_only(data.path());

    let created = run(
        &["admin", "create-org", "Beta Team", "--data-dir", data_dir],
        &[],
        None,
    );
    assert!(created.status.success(), "{}", text(&created));
    let beta_token = String::from_utf8_lossy(&created.stdout)
        .lines()
        .find_map(|l| l.trim().strip_prefix("mr_").map(|t| format!("mr_{t}")))
        .expect("token printed");

    let serve = Serve::start(data.path(), &fake.base);
    assert!(
        !serve.stdout.join("\n").contains("created org"),
        "bootstrap happens once"
    );
    let beta_env = [
        ("MODELREG_SERVER", serve.base.as_str()),
        ("MODELREG_TOKEN", beta_token.as_str()),
    ];
    let beta_list = run(&["models", "list", "--json"], &beta_env, None);
    assert!(beta_list.status.success(), "{}", text(&beta_list));
    assert!(
        String::from_utf8_lossy(&beta_list.stdout).contains("\"custom\": []"),
        "{}",
        text(&beta_list)
    );
    let admin_env = [
        ("MODELREG_SERVER", serve.base.as_str()),
        ("MODELREG_TOKEN_FILE", token_path),
    ];
    let still_there = run(&["models", "show", "team-claude"], &admin_env, None);
    assert!(
        text(&still_there).contains("Team Claude (prod)"),
        "{}",
        text(&still_there)
    );
    serve.stop();
}

#[test]
fn client_commands_answer_clearly_and_keep_json_parseable() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let app = runtime.block_on(TestApp::start(Backend::Embedded));
    let env = [
        ("MODELREG_SERVER", app.base.as_str()),
        ("MODELREG_TOKEN", app.token.as_str()),
    ];

    // Every field error is printed with its field name and code (the first one too).
    let refused = run(
        &[
            "models",
            "add",
            "--name",
            "X",
            "--provider",
            "nope",
            "--model-id",
            "x",
            "--max-tokens",
            "5",
            "--no-credential",
        ],
        &env,
        None,
    );
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr).to_string();
    assert!(
        said.contains("\n  provider: ")
            && said.trim_end().ends_with("(provider.unknown)")
            && said.matches("not one modelreg supports").count() == 1,
        "each problem once, with its field and code: {said}"
    );

    // A wrong provider is reported before a secret is read (stdin stays idle).
    let early = run_with_idle_stdin(
        &[
            "models",
            "add",
            "--secret-stdin",
            "--name",
            "X",
            "--provider",
            "nope",
            "--model-id",
            "x",
            "--max-tokens",
            "5",
        ],
        &env,
    );
    assert!(
        !early.status.success() && text(&early).contains("(provider.unknown)"),
        "{}",
        text(&early)
    );

    // `--json` output is the API's JSON alone; the Test Connection outcome goes to stderr.
    let added = run(
        &[
            "models",
            "add",
            "--json",
            "--secret-stdin",
            "--name",
            "CLI GPT",
            "--provider",
            "openai",
            "--model-id",
            "gpt-4o",
            "--max-tokens",
            "16000",
            "--input-cost",
            "0.000001",
        ],
        &env,
        Some("sk-good-0123456789abcdef\n"),
    );
    assert!(added.status.success(), "{}", text(&added));
    let model = stdout_json(&added);
    let slug = model["model"]["slug"].as_str().expect("slug").to_owned();
    assert!(
        String::from_utf8_lossy(&added.stderr).contains("Test Connection passed"),
        "{}",
        text(&added)
    );
    let shown = run(&["models", "show", &slug, "--json"], &env, None);
    assert_eq!(stdout_json(&shown)["input_cost_per_token"], "0.000001");
    let tested = run(&["models", "test", &slug, "--json"], &env, None);
    assert!(tested.status.success(), "{}", text(&tested));
    let test = stdout_json(&tested);
    assert_eq!(
        (&test["status"], &test["result"]["passed"]),
        (&json!("completed"), &json!(true)),
        "{test}"
    );

    // Without --json: a short summary, not JSON.
    let summary = run(&["models", "show", &slug], &env, None);
    assert_eq!(
        summary_field(&summary, "slug").as_deref(),
        Some(slug.as_str())
    );
    assert_eq!(
        summary_field(&summary, "provider").as_deref(),
        Some("openai")
    );
    assert_eq!(summary_field(&summary, "version").as_deref(), Some("1"));

    // Edit clears a cost with `none`, and refuses what it cannot do before asking the server.
    let cleared = run(
        &["models", "edit", &slug, "--input-cost", "none", "--json"],
        &env,
        None,
    );
    assert!(cleared.status.success(), "{}", text(&cleared));
    assert_eq!(stdout_json(&cleared)["input_cost_per_token"], Value::Null);
    let moved = run(
        &["models", "edit", &slug, "--provider", "anthropic"],
        &env,
        None,
    );
    assert!(!moved.status.success());
    assert!(
        text(&moved).contains("provider cannot change") && !text(&moved).contains("400"),
        "{}",
        text(&moved)
    );

    // A secret is never read from a pipe without --secret-stdin: an idle one would hang.
    let piped = run_with_idle_stdin(
        &[
            "models",
            "add",
            "--name",
            "Y",
            "--provider",
            "openai",
            "--model-id",
            "gpt-4o",
            "--max-tokens",
            "100",
        ],
        &env,
    );
    assert!(!piped.status.success());
    assert!(
        text(&piped).contains("stdin is not a terminal; pipe the secret with --secret-stdin"),
        "{}",
        text(&piped)
    );
    // The inputs are checked before the secret is asked for.
    let incomplete = run_with_idle_stdin(&["models", "add", "--name", "Z"], &env);
    assert!(
        text(&incomplete).contains("missing --provider, --model-id, --max-tokens"),
        "{}",
        text(&incomplete)
    );

    // An empty token is refused here, not sent as `Bearer `.
    let empty = app.data.path().join("empty-token");
    std::fs::write(&empty, "\n").expect("write token file");
    let empty_path = empty.to_str().expect("path");
    let unauthenticated = run(
        &["models", "list"],
        &[
            ("MODELREG_SERVER", app.base.as_str()),
            ("MODELREG_TOKEN_FILE", empty_path),
        ],
        None,
    );
    assert!(!unauthenticated.status.success());
    assert!(
        text(&unauthenticated).contains(&format!("token file {empty_path} is empty")),
        "{}",
        text(&unauthenticated)
    );
}

#[test]
fn rebuild_refuses_a_data_dir_without_a_log() {
    let data = tempfile::tempdir().expect("dir");
    let data_dir = data.path().to_str().expect("path");
    let refused = run(&["rebuild", "--data-dir", data_dir], &[], None);
    assert!(!refused.status.success());
    assert!(
        text(&refused).contains("no embedded log at") && text(&refused).contains("--data-dir"),
        "{}",
        text(&refused)
    );
    assert!(
        std::fs::read_dir(data.path())
            .expect("dir")
            .next()
            .is_none(),
        "nothing created in the wrong dir"
    );
}

/// Stands in for the registry, or for whatever answers at a wrong URL: a Bedrock and an
/// OpenAI model to edit (their PATCH bodies are kept), an HTML 200 for `GET /v1/models` and
/// a proxy's HTML 502 for `GET /v1/credentials`.
struct StubRegistry {
    base: String,
    patches: Arc<Mutex<Vec<Value>>>,
    task: tokio::task::JoinHandle<()>,
}

impl StubRegistry {
    async fn start() -> Self {
        use axum::extract::Path as UrlPath;
        use axum::http::{StatusCode, header};
        use axum::routing::get;

        // A model as the contract shapes it, so that the typed client reads it as it reads
        // the registry's.
        fn model(slug: &str) -> Option<api::Positioned<api::Model>> {
            let provider = match slug {
                "bedrock-model" => "bedrock",
                "openai-model" => "openai",
                _ => return None,
            };
            let at = "2026-01-01T00:00:00Z".to_owned();
            Some(api::Positioned {
                value: api::Model {
                    kind: "custom".into(),
                    slug: slug.into(),
                    display_name: slug.into(),
                    provider: provider.into(),
                    provider_model_id: "m".into(),
                    credential: None,
                    endpoint_url: None,
                    region: None,
                    max_tokens: 1000,
                    capabilities: api::Capabilities::default(),
                    input_cost_per_token: None,
                    output_cost_per_token: None,
                    status: "active".into(),
                    version: 1,
                    created_at: at.clone(),
                    created_by: "stub".into(),
                    updated_at: at,
                    updated_by: "stub".into(),
                    deactivated_at: None,
                    deactivated_by: None,
                    controls: api::Controls::default(),
                    warnings: Vec::new(),
                    truncations: None,
                    recommendation: None,
                },
                position: 1,
            })
        }
        let patches: Arc<Mutex<Vec<Value>>> = Arc::default();
        let kept = Arc::clone(&patches);
        let html = || [(header::CONTENT_TYPE, "text/html")];
        let app = axum::Router::new()
            .route(
                "/v1/models",
                get(move || async move { (html(), "<html><body>Welcome to nginx!</body></html>") }),
            )
            .route(
                "/v1/credentials",
                get(move || async move {
                    (
                        StatusCode::BAD_GATEWAY,
                        html(),
                        "<html>\n<head><title>502 Bad Gateway</title></head>\n</html>",
                    )
                }),
            )
            .route(
                "/v1/models/{slug}",
                get(|UrlPath(slug): UrlPath<String>| async move {
                    model(&slug).map(axum::Json).ok_or(StatusCode::NOT_FOUND)
                })
                .patch(
                    move |UrlPath(slug): UrlPath<String>, axum::Json(body): axum::Json<Value>| {
                        let kept = Arc::clone(&kept);
                        async move {
                            kept.lock().expect("patches").push(body);
                            model(&slug).map(axum::Json).ok_or(StatusCode::NOT_FOUND)
                        }
                    },
                ),
            );
        let (base, task) = crate::support::serve_local(app).await;
        Self {
            base,
            patches,
            task,
        }
    }

    fn patches(&self) -> Vec<Value> {
        self.patches.lock().expect("patches").clone()
    }
}

impl Drop for StubRegistry {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[test]
fn a_new_secret_on_edit_takes_the_shape_of_the_models_provider() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let stub = runtime.block_on(StubRegistry::start());
    let env = [
        ("MODELREG_SERVER", stub.base.as_str()),
        ("MODELREG_TOKEN", "mr_test"),
    ];
    let api_key = run(
        &[
            "models",
            "edit",
            "bedrock-model",
            "--new-secret",
            "--secret-stdin",
        ],
        &env,
        Some("ABSKbedrockapikey0123\n"),
    );
    assert!(api_key.status.success(), "{}", text(&api_key));
    let key_pair = run(
        &[
            "models",
            "edit",
            "bedrock-model",
            "--new-secret",
            "--secret-stdin",
            "--access-key-id",
            "AKIAIOSFODNN7EXAMPLE",
            "--session-token",
        ],
        &env,
        Some("wJalrXUtnFEMIsecret\nFwoGZXIvYXdzEtoken\n"),
    );
    assert!(key_pair.status.success(), "{}", text(&key_pair));
    let not_bedrock = run(
        &[
            "models",
            "edit",
            "openai-model",
            "--new-secret",
            "--secret-stdin",
            "--access-key-id",
            "AKIAIOSFODNN7EXAMPLE",
        ],
        &env,
        Some("sk-x\n"),
    );
    assert!(
        !not_bedrock.status.success()
            && text(&not_bedrock).contains("--access-key-id is for Bedrock"),
        "{}",
        text(&not_bedrock)
    );
    let credentials: Vec<Value> = stub
        .patches()
        .into_iter()
        .map(|body| body["credential"].clone())
        .collect();
    assert_eq!(
        credentials,
        [
            json!({"bedrock_api_key": "ABSKbedrockapikey0123"}),
            json!({"access_key_id": "AKIAIOSFODNN7EXAMPLE", "secret_access_key": "wJalrXUtnFEMIsecret", "session_token": "FwoGZXIvYXdzEtoken"}),
        ]
    );
}

#[test]
fn answers_that_are_not_the_registrys_are_shown_not_swallowed() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let stub = runtime.block_on(StubRegistry::start());
    let env = [
        ("MODELREG_SERVER", stub.base.as_str()),
        ("MODELREG_TOKEN", "mr_test"),
    ];
    // A proxy's error page: its status and the start of its text.
    let proxied = run(&["credentials", "list"], &env, None);
    assert!(!proxied.status.success());
    assert!(
        text(&proxied).contains("502 Bad Gateway from")
            && text(&proxied).contains("<title>502 Bad Gateway</title>"),
        "{}",
        text(&proxied)
    );
    // A 200 that is not the registry's JSON (a wrong --server) is an error, not empty lists.
    let wrong = run(&["models", "list"], &env, None);
    assert!(!wrong.status.success(), "{}", text(&wrong));
    assert!(
        text(&wrong).contains(&stub.base)
            && text(&wrong).contains("is --server")
            && text(&wrong).contains("Welcome to nginx!"),
        "{}",
        text(&wrong)
    );
    // Nothing listening: say what to check.
    let nowhere = format!("http://127.0.0.1:{}", free_port());
    let refused = run(
        &["models", "list"],
        &[("MODELREG_SERVER", &nowhere), ("MODELREG_TOKEN", "mr_test")],
        None,
    );
    assert!(
        text(&refused).contains("is `modelreg serve` running? (--server / MODELREG_SERVER)"),
        "{}",
        text(&refused)
    );
}

/// The commands a newcomer needs beyond models: workflows, tokens, the capability check and
/// credential show/match, with the global flags before or after the subcommand; `add`
/// applies suggested prices without a terminal when asked, and `list` hides deactivated
/// models unless `--all`.
#[test]
fn every_route_has_a_command_and_global_flags_go_anywhere() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let app = runtime.block_on(TestApp::start(Backend::Embedded));
    let env = [
        ("MODELREG_SERVER", app.base.as_str()),
        ("MODELREG_TOKEN", app.token.as_str()),
        // Left empty by a template: means unset, not an error.
        ("MODELREG_TOKEN_FILE", ""),
    ];
    let ok = |args: &[&str], stdin: Option<&str>| {
        let output = run(args, &env, stdin);
        assert!(output.status.success(), "{args:?}: {}", text(&output));
        output
    };
    let key = "sk-good-cli-0123456789abcdef\n";
    let added = ok(
        &[
            "models",
            "add",
            "--secret-stdin",
            "--accept-suggested-prices",
            "--name",
            "Team GPT",
            "--provider",
            "openai",
            "--model-id",
            "gpt-4o",
            "--max-tokens",
            "16000",
            "--tool-use",
            "true",
        ],
        Some(key),
    );
    assert_eq!(
        summary_field(&added, "input cost").as_deref(),
        Some("0.0000025 USD per token"),
        "{}",
        text(&added)
    );
    for field in [
        "max tokens",
        "tool use",
        "vision",
        "reasoning",
        "output cost",
        "credential",
    ] {
        assert!(
            summary_field(&added, field).is_some(),
            "{field}: {}",
            text(&added)
        );
    }

    // --json before the subcommand, between, and after.
    for args in [
        &["--json", "models", "show", "team-gpt"][..],
        &["models", "--json", "show", "team-gpt"],
        &["models", "show", "team-gpt", "--json"],
    ] {
        assert_eq!(stdout_json(&ok(args, None))["slug"], "team-gpt", "{args:?}");
    }
    let platform = ok(&["models", "show", "google/gemini-3.1-pro-preview"], None);
    assert_eq!(summary_field(&platform, "default").as_deref(), Some("yes"));

    // What adding a model of each provider asks for, as the console's dialog has it.
    let providers = ok(&["providers"], None);
    let listed = text(&providers);
    assert!(listed.starts_with("PROVIDER"), "{listed}");
    let bedrock = listed
        .lines()
        .find(|l| l.starts_with("bedrock"))
        .unwrap_or_else(|| panic!("no bedrock row: {listed}"));
    assert!(
        bedrock.contains("access_key_id") && bedrock.contains(" | "),
        "the IAM key pair and the Bedrock API key as alternatives: {bedrock}"
    );
    let providers = stdout_json(&ok(&["--json", "providers"], None));
    assert_eq!(
        providers["providers"].as_array().map(Vec::len),
        Some(9),
        "{providers}"
    );

    let tested = ok(&["models", "test", "team-gpt"], None);
    assert!(
        text(&tested).contains("Test Connection passed"),
        "{}",
        text(&tested)
    );

    // Workflows, reported from the CLI as a pipeline would.
    ok(
        &[
            "workflows",
            "put",
            "wf-1",
            "--name",
            "Nightly digest",
            "--step",
            "team-gpt:tools",
        ],
        None,
    );
    let shown = ok(&["workflows", "show", "wf-1"], None);
    assert!(
        text(&shown).contains("model team-gpt: active"),
        "{}",
        text(&shown)
    );
    let listed = ok(&["workflows", "list"], None);
    assert!(
        String::from_utf8_lossy(&listed.stdout).contains("wf-1"),
        "{}",
        text(&listed)
    );
    let broken = ok(&["workflows", "list", "--broken"], None);
    assert_eq!(String::from_utf8_lossy(&broken.stdout).trim(), "(none)");
    let references = ok(&["models", "workflows", "team-gpt"], None);
    assert!(
        text(&references).contains("Nightly digest"),
        "{}",
        text(&references)
    );

    // The capability check: allowed, or refused with the reason (and a failing exit).
    ok(&["models", "check", "team-gpt", "--tools"], None);
    let refused = run(
        &["models", "check", "team-gpt", "--image-input"],
        &env,
        None,
    );
    assert!(!refused.status.success());
    assert!(text(&refused).contains("image_input"), "{}", text(&refused));

    // Credentials: show one, and match a secret against the saved ones.
    let credential = stdout_json(&ok(&["credentials", "list", "--json"], None))["items"][0]["id"]
        .as_str()
        .expect("credential id")
        .to_owned();
    let shown = ok(&["credentials", "show", &credential], None);
    assert_eq!(
        summary_field(&shown, "used by").as_deref(),
        Some("1 model(s)")
    );
    let matched = ok(
        &[
            "credentials",
            "match",
            "--provider",
            "openai",
            "--secret-stdin",
        ],
        Some(key),
    );
    assert!(text(&matched).contains(&credential), "{}", text(&matched));
    assert!(!text(&matched).contains("sk-good-cli"), "no secret echoed");

    // Tokens: an issued member token reads, and may not issue.
    let issued = ok(
        &[
            "tokens",
            "issue",
            "--label",
            "ci reader",
            "--role",
            "member",
        ],
        None,
    );
    let member = String::from_utf8_lossy(&issued.stdout).trim().to_owned();
    assert!(member.starts_with("mr_"), "{}", text(&issued));
    let member_env = [
        ("MODELREG_SERVER", app.base.as_str()),
        ("MODELREG_TOKEN", member.as_str()),
    ];
    let read = run(&["models", "list"], &member_env, None);
    assert!(read.status.success(), "{}", text(&read));
    let denied = run(
        &["tokens", "issue", "--label", "x", "--role", "admin"],
        &member_env,
        None,
    );
    assert!(
        !denied.status.success() && text(&denied).contains("auth.forbidden"),
        "{}",
        text(&denied)
    );
    let expiring = ok(
        &[
            "tokens",
            "issue",
            "--label",
            "nightly",
            "--role",
            "service",
            "--expires-in",
            "30d",
        ],
        None,
    );
    assert!(
        text(&expiring).contains("refused from"),
        "{}",
        text(&expiring)
    );
    let tokens = ok(&["tokens", "list"], None);
    let listing = String::from_utf8_lossy(&tokens.stdout).to_string();
    let in_30_days = (time::OffsetDateTime::now_utc() + time::Duration::days(30)).date();
    let nightly = listing
        .lines()
        .find(|line| line.contains("nightly"))
        .unwrap_or_else(|| panic!("nightly listed: {listing}"));
    assert!(
        nightly.contains(&in_30_days.to_string()),
        "expiry listed: {listing}"
    );
    let reader_id = listing
        .lines()
        .find(|line| line.contains("ci reader"))
        .and_then(|line| line.split_whitespace().next())
        .unwrap_or_else(|| panic!("ci reader listed: {listing}"))
        .to_owned();
    assert!(
        listing.contains("member") && listing.contains("active"),
        "{listing}"
    );
    let revoked = ok(&["tokens", "revoke", &reader_id], None);
    assert!(text(&revoked).contains("revoked"), "{}", text(&revoked));
    let after = run(&["models", "list"], &member_env, None);
    assert!(
        !after.status.success() && text(&after).contains("revoked"),
        "{}",
        text(&after)
    );

    // A LiteLLM proxy config: references in the file, values only in the 0600 env file,
    // which needs a service token.
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("litellm.yaml");
    let env_file = dir.path().join("litellm.env");
    ok(
        &[
            "export",
            "litellm-config",
            "--out",
            config.to_str().expect("path"),
        ],
        None,
    );
    let yaml = std::fs::read_to_string(&config).expect("config");
    assert!(
        yaml.contains("model_list:")
            && yaml.contains("openai/gpt-4o")
            && yaml.contains("os.environ/MODEL_TEAM_GPT_API_KEY")
            && !yaml.contains("sk-good-cli"),
        "{yaml}"
    );
    let issued = ok(
        &[
            "tokens", "issue", "--label", "exporter", "--role", "service",
        ],
        None,
    );
    let service = String::from_utf8_lossy(&issued.stdout).trim().to_owned();
    let service_env = [
        ("MODELREG_SERVER", app.base.as_str()),
        ("MODELREG_TOKEN", service.as_str()),
    ];
    let exported = run(
        &[
            "export",
            "litellm-config",
            "--out",
            config.to_str().expect("path"),
            "--env-file",
            env_file.to_str().expect("path"),
        ],
        &service_env,
        None,
    );
    assert!(exported.status.success(), "{}", text(&exported));
    let values = std::fs::read_to_string(&env_file).expect("env file");
    assert!(
        values.contains("MODEL_TEAM_GPT_API_KEY=sk-good-cli-0123456789abcdef"),
        "{values}"
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&env_file).expect("meta").permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    assert!(
        !text(&exported).contains("sk-good-cli"),
        "no secret on the terminal"
    );

    // Deactivated models leave the list unless --all; workflows can be deleted.
    ok(&["workflows", "delete", "wf-1"], None);
    ok(&["models", "deactivate", "team-gpt"], None);
    let listed = ok(&["models", "list"], None);
    assert!(
        !String::from_utf8_lossy(&listed.stdout).contains("team-gpt"),
        "{}",
        text(&listed)
    );
    let all = ok(&["models", "list", "--all"], None);
    assert!(
        String::from_utf8_lossy(&all.stdout).contains("team-gpt"),
        "{}",
        text(&all)
    );
}

/// A configuration error (a wrong server list, an unknown variable) exits with status 78
/// (EX_CONFIG), which the systemd units do not restart, and says where the mistake is
/// without quoting it; an unreachable NATS is not one.
#[test]
fn configuration_errors_exit_78_and_name_the_setting() {
    let data = tempfile::tempdir().expect("dir");
    let data_dir = data.path().to_str().expect("path");
    // The misspelt name is built here, so the tidy test's scan of names does not see it.
    let misspelt = format!("MODELREG_{}", "NATS_URLS");
    for (name, value) in [
        (
            "MODELREG_NATS_URL",
            "nats://127.0.0.1:4222,nats://u:sk-canary0123@::bad::",
        ),
        (misspelt.as_str(), "nats://127.0.0.1:4222"),
    ] {
        let output = run(&["serve", "--data-dir", data_dir], &[(name, value)], None);
        let said = text(&output);
        assert_eq!(output.status.code(), Some(78), "{name}: {said}");
        assert!(
            said.contains("configuration error") && said.contains(name) && !said.contains("canary"),
            "{name}: {said}"
        );
    }
    // A master key or key file that cannot be used is the operator's to fix too: a key that
    // is no key, a key file others may read, a key file that holds no key (never quoted).
    use std::os::unix::fs::PermissionsExt;
    let key_file = |name: &str, text: &str, mode: u32| {
        let path = data.path().join(name);
        std::fs::write(&path, text).expect("key file");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        path.to_str().expect("path").to_owned()
    };
    let readable = key_file(
        "readable.key",
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n",
        0o644,
    );
    let garbage = key_file("garbage.key", "sk-canary0123\n", 0o600);
    for (name, value) in [
        ("MODELREG_MASTER_KEY", "sk-canary0123"),
        ("MODELREG_MASTER_KEY_FILE", readable.as_str()),
        ("MODELREG_MASTER_KEY_FILE", garbage.as_str()),
    ] {
        let output = run(&["serve", "--data-dir", data_dir], &[(name, value)], None);
        let said = text(&output);
        assert_eq!(output.status.code(), Some(78), "{name}: {said}");
        assert!(
            said.contains("configuration error") && !said.contains("canary"),
            "{name}: {said}"
        );
    }
    let free = free_port();
    let unreachable = run(
        &["serve", "--data-dir", data_dir],
        &[("MODELREG_NATS_URL", &format!("nats://127.0.0.1:{free}"))],
        None,
    );
    assert_eq!(unreachable.status.code(), Some(1), "{}", text(&unreachable));
}

/// A credential's life from the CLI (add, rename, rotate, shred, show, delete), each secret
/// read from stdin and never echoed; then `admin rotate-master-key` on the stopped embedded
/// registry's state, after which it starts with the new key alone and everything opens.
#[test]
fn credentials_live_from_the_cli_and_the_master_key_rotates_offline() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut app = runtime.block_on(TestApp::start(Backend::Embedded));
    let env = [
        ("MODELREG_SERVER", app.base.as_str()),
        ("MODELREG_TOKEN", app.token.as_str()),
    ];
    let ok = |args: &[&str], stdin: Option<&str>| {
        let output = run(args, &env, stdin);
        assert!(output.status.success(), "{args:?}: {}", text(&output));
        assert!(!text(&output).contains("sk-cli-"), "a secret was echoed");
        output
    };
    let added = ok(
        &[
            "credentials",
            "add",
            "--name",
            "CLI key",
            "--provider",
            "openai",
            "--secret-stdin",
            "--json",
        ],
        Some("sk-cli-first-0123456789abcdef\n"),
    );
    let id = stdout_json(&added)["id"].as_str().expect("id").to_owned();
    let renamed = ok(&["credentials", "rename", &id, "--name", "Renamed"], None);
    assert_eq!(summary_field(&renamed, "name").as_deref(), Some("Renamed"));
    let rotated = ok(
        &["credentials", "rotate", &id, "--secret-stdin"],
        Some("sk-cli-second-0123456789abcdef\n"),
    );
    assert_eq!(summary_field(&rotated, "version").as_deref(), Some("2"));
    ok(&["credentials", "shred", &id, "--version", "1"], None);
    let shown = ok(&["credentials", "show", &id], None);
    let versions = summary_field(&shown, "versions").expect("versions");
    assert!(
        versions.starts_with("v1 ") && versions.contains("shredded") && versions.contains("v2 "),
        "{versions}"
    );
    let deleted = ok(&["credentials", "delete", &id], None);
    assert_eq!(summary_field(&deleted, "state").as_deref(), Some("deleted"));
    let kept = ok(
        &[
            "credentials",
            "add",
            "--name",
            "Kept",
            "--provider",
            "openai",
            "--secret-stdin",
            "--json",
        ],
        Some("sk-cli-kept-0123456789abcdef\n"),
    );
    let kept = stdout_json(&kept)["id"].as_str().expect("id").to_owned();

    // Offline (the embedded keyring is one process's file): new key as the master key, the
    // old one as the previous.
    runtime.block_on(app.stop());
    let new_key = "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=";
    let data_dir = app.data.path().display().to_string();
    let rotation = run(
        &["admin", "rotate-master-key", "--data-dir", &data_dir],
        &[
            ("MODELREG_MASTER_KEY", new_key),
            (
                "MODELREG_PREVIOUS_MASTER_KEY",
                crate::support::registry::MASTER_KEY,
            ),
        ],
        None,
    );
    assert!(rotation.status.success(), "{}", text(&rotation));
    assert!(text(&rotation).contains("complete"), "{}", text(&rotation));
    app.set_tweak(|config| {
        config.master_key = Some("ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=".to_owned());
    });
    runtime.block_on(async {
        app.restart().await;
        let unreadable = app::credentials::check_keys(app.registry())
            .await
            .expect("checked");
        assert_eq!(unreadable, 0);
        assert_eq!(app.get_credential(&kept).await.body["state"], "active");
        app.stop().await;
    });
}

/// The operator's catalog commands work on the registry's state (the server stopped, on the
/// embedded log): a sync from a saved models answer shows its diff, records it with
/// `--apply` and nothing when run again; retire and override record; then a client reads the
/// catalog over HTTP.
#[test]
fn the_operator_syncs_the_catalog_from_a_saved_answer_and_clients_read_it() {
    let data = tempfile::tempdir().expect("temp dir");
    let dir = data.path().to_str().expect("path");
    let mut models: Vec<Value> = domain::catalog::shipped()
        .models
        .iter()
        .map(|m| {
            json!({"id": m.id, "name": m.name, "context_length": 200000,
                "pricing": {"prompt": "0.000001", "completion": "0.000004"},
                "supported_parameters": ["tools", "response_format"]})
        })
        .collect();
    models.push(
        json!({"id": "new/model", "name": "New", "pricing": {"prompt": "0", "completion": "0"}}),
    );
    let saved = data.path().join("models.json");
    std::fs::write(&saved, json!({"data": models}).to_string()).expect("write");
    let saved = saved.to_str().expect("path");
    let env = [("MODELREG_LOG", "warn")];
    let sync = |apply: bool| {
        let mut args = vec!["catalog", "sync", "--from", saved, "--data-dir", dir];
        if apply {
            args.push("--apply");
        }
        run(&args, &env, None)
    };
    let dry = sync(false);
    assert!(dry.status.success(), "{}", text(&dry));
    let shown = text(&dry);
    assert!(
        shown.contains("changed facts:") && shown.contains("new/model"),
        "{shown}"
    );
    assert!(shown.contains("not recorded"), "{shown}");
    let applied = sync(true);
    assert!(
        text(&applied).contains("recorded at position"),
        "{}",
        text(&applied)
    );
    let again = sync(true);
    assert!(
        text(&again).contains("nothing new upstream"),
        "{}",
        text(&again)
    );
    let retired = run(
        &[
            "catalog",
            "retire",
            "x-ai/grok-4.3",
            "--reason",
            "superseded",
            "--data-dir",
            dir,
        ],
        &env,
        None,
    );
    assert!(retired.status.success(), "{}", text(&retired));
    // Undone, then retired again: a retirement is the operator's to take back.
    let catalog_change = |verb: &str, reason: &str| {
        run(
            &[
                "catalog",
                verb,
                "x-ai/grok-4.3",
                "--reason",
                reason,
                "--data-dir",
                dir,
            ],
            &env,
            None,
        )
    };
    let reinstated = catalog_change("reinstate", "retired by mistake");
    assert!(reinstated.status.success(), "{}", text(&reinstated));
    assert!(
        text(&reinstated).contains("in service"),
        "{}",
        text(&reinstated)
    );
    let retired = catalog_change("retire", "superseded");
    assert!(retired.status.success(), "{}", text(&retired));
    let overridden = run(
        &[
            "catalog",
            "override",
            "openai/gpt-5.4",
            "max_completion_tokens",
            "128000",
            "--reason",
            "measured",
            "--data-dir",
            dir,
        ],
        &env,
        None,
    );
    assert!(overridden.status.success(), "{}", text(&overridden));
    let refused = run(
        &[
            "catalog",
            "retire",
            "google/gemini-3.1-pro-preview",
            "--reason",
            "x",
            "--data-dir",
            dir,
        ],
        &env,
        None,
    );
    assert!(!refused.status.success());
    assert!(text(&refused).contains("default"), "{}", text(&refused));

    let serve = Serve::start(data.path(), "http://127.0.0.1:9");
    let token_file = data.path().join("bootstrap-token");
    let client = [
        ("MODELREG_SERVER", serve.base.as_str()),
        ("MODELREG_TOKEN_FILE", token_file.to_str().expect("path")),
    ];
    let list = run(&["catalog", "list"], &client, None);
    assert!(list.status.success(), "{}", text(&list));
    let listed = text(&list);
    assert!(
        listed
            .lines()
            .any(|l| l.contains("x-ai/grok-4.3") && l.contains("retired")),
        "{listed}"
    );
    assert!(
        listed.contains("new/model"),
        "proposals are named: {listed}"
    );
    let show = run(&["catalog", "show", "openai/gpt-5.4"], &client, None);
    let shown = text(&show);
    assert!(
        shown.contains("max_completion_tokens: 128000")
            && shown.contains("overridden because measured"),
        "{shown}"
    );
    assert!(shown.contains("vision: unknown"), "{shown}");
    // An org admin's choices.
    let chosen = run(&["org", "default-model", "openai/gpt-5.4"], &client, None);
    assert!(
        text(&chosen).contains("openai/gpt-5.4 (chosen by the org)"),
        "{}",
        text(&chosen)
    );
    let hidden = run(&["org", "hide-models", "openai/gpt-5.5"], &client, None);
    assert!(
        text(&hidden).contains("hidden platform models: openai/gpt-5.5"),
        "{}",
        text(&hidden)
    );
    let models = text(&run(&["models", "list"], &client, None));
    assert!(
        models
            .lines()
            .any(|l| l.contains("openai/gpt-5.4 ") && l.contains("(default)")),
        "{models}"
    );
    assert!(!models.contains("openai/gpt-5.5"), "{models}");
    serve.stop();
}
