//! The binary as a user meets it: `serve` on the embedded default prints where it listens and
//! a bootstrap token, the client commands manage models with the secret on stdin, `rebuild`
//! prints the same checksum twice, and `admin create-org` prints a working token.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::crash::modelreg_binary;
use crate::support::fake_provider::FakeProvider;
use crate::support::nats::free_port;

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
    assert!(
        text(&added).contains("\"slug\": \"team-claude\""),
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
    assert!(
        text(&credentials).contains("anthropic") && text(&credentials).contains("used by 1"),
        "{}",
        text(&credentials)
    );
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
    assert!(
        text(&refused).contains("provider.unknown"),
        "{}",
        text(&refused)
    );
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
        text(&asked).contains("model.has_dependents") && text(&asked).contains("Nightly digest"),
        "{}",
        text(&asked)
    );
    let forced = run(
        &["models", "deactivate", "team-claude", "--yes"],
        &env,
        None,
    );
    assert!(forced.status.success(), "{}", text(&forced));
    assert!(
        text(&forced).contains("\"status\": \"deactivated\""),
        "{}",
        text(&forced)
    );
    let back = run(&["models", "reactivate", "team-claude"], &env, None);
    assert!(
        back.status.success() && text(&back).contains("\"status\": \"active\""),
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
