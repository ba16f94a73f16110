//! The README as a newcomer follows it: its "try it without a paid key" commands run, as
//! written, against a fresh data dir (a fresh `HOME`), with the test's fake provider as the
//! local OpenAI-compatible server. The blocks are found by their `<!-- readme-test: … -->`
//! markers, so a README edit is an edit of this test's input, and it cannot drift.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::crash::modelreg_binary;
use crate::support::fake_provider::FakeProvider;
use crate::support::free_port;

fn readme() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md");
    std::fs::read_to_string(path).expect("README.md")
}

/// The fenced block after `<!-- readme-test: NAME -->`.
fn block(readme: &str, name: &str) -> String {
    let marker = format!("<!-- readme-test: {name} -->");
    let after = readme
        .split_once(&marker)
        .unwrap_or_else(|| panic!("README has no {marker}"))
        .1;
    let fence = after
        .trim_start()
        .strip_prefix("```sh\n")
        .expect("a ```sh block follows the marker");
    fence
        .split_once("\n```")
        .expect("the block ends")
        .0
        .to_owned()
}

#[test]
fn the_readme_quick_start_runs_as_written() {
    let readme = readme();
    let quick_start = readme
        .split_once("## Quick start")
        .expect("a quick start")
        .1;
    assert!(
        quick_start.contains("just run ") && quick_start.contains("just test "),
        "the quick start is the two commands"
    );
    // The install line names the crate that builds the `modelreg` binary.
    assert!(readme.contains("cargo install --path crates/modelreg"));
    let manifest = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../crates/modelreg/Cargo.toml"
    ))
    .expect("manifest");
    assert!(manifest.contains("name = \"modelreg\""));

    // `VAR=value … just run`: the registry, started with exactly those settings (`just run`
    // is `modelreg serve`), on a free port instead of 8080.
    let serve_line = block(&readme, "serve");
    let mut words: Vec<&str> = serve_line.split_whitespace().collect();
    assert_eq!(
        words.split_off(words.len() - 2),
        ["just", "run"],
        "{serve_line}"
    );
    let settings: Vec<(&str, &str)> = words
        .iter()
        .map(|word| word.split_once('=').expect("VAR=value"))
        .collect();

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let fake = runtime.block_on(FakeProvider::start());
    let home = tempfile::tempdir().expect("home");
    let port = free_port();
    let mut serve = Command::new(modelreg_binary());
    serve
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .env("MODELREG_LISTEN", format!("127.0.0.1:{port}"))
        .env("MODELREG_LOG", "warn")
        .envs(settings)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = KillOnDrop(serve.spawn().expect("serve"));
    let stdout = child.0.stdout.take().expect("stdout");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut client_env = None;
    let mut printed = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("line");
        if let Some(export) = line.strip_prefix("clients: ") {
            client_env = Some(export.to_owned());
            break;
        }
        printed.push(line);
        assert!(
            Instant::now() < deadline,
            "serve did not start: {printed:?}"
        );
    }
    let client_env = client_env.unwrap_or_else(|| panic!("no `clients:` line: {printed:?}"));
    assert!(
        printed
            .iter()
            .any(|l| l.contains("created org \"default\"")),
        "{printed:?}"
    );
    assert!(
        client_env.contains(&format!("MODELREG_SERVER=http://127.0.0.1:{port}"))
            && client_env.contains("/.local/share/modelreg/bootstrap-token"),
        "{client_env}"
    );

    // The client block, after the pasted export line, in bash with `modelreg` on PATH.
    let binary_dir = modelreg_binary().parent().expect("dir").to_path_buf();
    let script = format!(
        "set -euo pipefail\n{client_env}\n{}\n",
        block(&readme, "client")
    );
    let output = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .env_clear()
        .env(
            "PATH",
            format!(
                "{}:{}",
                binary_dir.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .env("HOME", home.path())
        .env("LLM_URL", fake.v1())
        .stdin(Stdio::null())
        .output()
        .expect("bash");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "the README's commands failed:\n{said}"
    );
    for expected in [
        "Test Connection passed",
        "slug:        local-llama",
        "tool use:    yes",
        "1 active workflow (first: \"Nightly digest\") references local-llama",
        "nightly",
        "deactivated",
    ] {
        assert!(said.contains(expected), "{expected:?} in:\n{said}");
    }
    assert!(
        fake.seen() >= 1,
        "the test connection reached the local server"
    );
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
