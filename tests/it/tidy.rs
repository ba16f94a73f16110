//! Tidy: the crate graph is the one ARCHITECTURE.md draws. Our crates depend downward only,
//! the pure crates' whole dependency closure stays free of IO, and each third-party crate
//! that does IO (NATS, redb, HTTP) is known only to the crates whose job it is. Read from the
//! resolved graph (`cargo tree`), so a dependency pulled in indirectly counts too. Also: no
//! `mod.rs`; every `MODELREG_*` variable named anywhere is one `app::config` knows.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

/// Each of our crates and the workspace crates it may depend on (normal dependencies).
const ALLOWED: &[(&str, &[&str])] = &[
    ("secrets", &[]),
    ("vault", &["secrets"]),
    ("eventlog", &[]),
    ("domain", &["secrets"]),
    ("api", &["domain", "secrets"]),
    ("providers", &["domain", "secrets"]),
    ("views", &["domain", "eventlog", "secrets"]),
    (
        "app",
        &["api", "domain", "eventlog", "secrets", "vault", "views"],
    ),
    ("webconsole", &["api", "app", "secrets"]),
    ("server", &["api", "app", "domain", "webconsole"]),
    (
        "workers",
        &["api", "app", "domain", "eventlog", "providers", "secrets"],
    ),
    (
        "modelreg",
        &[
            "api",
            "app",
            "domain",
            "eventlog",
            "secrets",
            "server",
            "views",
            "webconsole",
            "workers",
        ],
    ),
    (
        "bench",
        &[
            "app",
            "domain",
            "eventlog",
            "modelreg-runtime",
            "secrets",
            "server",
            "testkit",
            "vault",
            "views",
            "workers",
        ],
    ),
    ("testkit", &[]),
    ("modelreg-runtime", &["api", "domain"]),
];

/// Crates whose whole closure must be pure: no async runtime, no IO backends, no randomness.
const PURE: &[&str] = &["secrets", "domain", "api"];

/// What a pure crate's closure must not contain.
const IMPURE: &[&str] = &[
    "async-nats",
    "redb",
    "tokio",
    "reqwest",
    "hyper",
    "axum",
    "rand",
    "getrandom",
    "mio",
];

/// Third-party crates that do IO, and the only crates that may name them directly, each
/// with the reason. Anything not listed here may name them nowhere.
const IO_CRATES: &[(&str, &[&str], &str)] = &[
    (
        "async-nats",
        &["eventlog", "vault", "app", "workers", "modelreg", "bench"],
        "the JetStream log and KV keyring; app's wiring (the composition root) connects them; \
         workers serve the pipelines' NATS subjects; binaries and benchmarks",
    ),
    (
        "redb",
        &["eventlog", "vault", "views"],
        "the embedded log, the redb keyring and the views",
    ),
    (
        "axum",
        &["server", "webconsole"],
        "the HTTP API and the console's pages (tools and tests may use it for fakes)",
    ),
    (
        "hyper",
        &["server"],
        "the accept loop, for the header-read timeout axum::serve does not offer",
    ),
    (
        "reqwest",
        &["providers", "modelreg", "modelreg-runtime", "bench"],
        "provider calls; the CLI, the runtime crate and benchmarks speak HTTP to a registry",
    ),
];

/// Crates exempt from the IO table: tools and test support, whose job is to drive everything.
const TOOLS: &[&str] = &["bench", "tests", "testkit"];

/// Each of our packages (workspace members) → the names of its normal dependencies, as its
/// manifest declares them.
fn direct_dependencies() -> BTreeMap<String, BTreeSet<String>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml");
    let output = std::process::Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--offline",
            "--no-deps",
        ])
        .args(["--manifest-path", manifest])
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: Value = serde_json::from_slice(&output.stdout).expect("metadata is JSON");
    let mut direct = BTreeMap::new();
    for package in metadata["packages"].as_array().expect("packages") {
        let name = package["name"].as_str().expect("name").to_owned();
        let normal = package["dependencies"]
            .as_array()
            .expect("dependencies")
            .iter()
            .filter(|d| d["kind"].is_null())
            .filter_map(|d| d["name"].as_str().map(str::to_owned))
            .collect();
        direct.insert(name, normal);
    }
    direct
}

/// Every package `name` pulls in through normal and build dependencies, by name, as cargo
/// resolves features for it (`cargo tree`: the resolved graph of `cargo metadata` lists
/// optional dependencies whether or not a feature turns them on).
fn closure(name: &str) -> BTreeSet<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml");
    let output = std::process::Command::new(cargo)
        .args([
            "tree",
            "--offline",
            "-e",
            "normal,build",
            "--prefix",
            "none",
        ])
        .args(["--format", "{p}", "--manifest-path", manifest, "-p", name])
        .output()
        .expect("cargo tree runs");
    assert!(
        output.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|package| *package != name)
        .map(str::to_owned)
        .collect()
}

#[test]
fn crates_depend_downward_only() {
    let direct = direct_dependencies();
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    for (name, deps) in &direct {
        if name == "tests" {
            continue;
        }
        let Some(permitted) = allowed.get(name.as_str()) else {
            panic!("crate {name} is not in the tidy table; add it with its allowed dependencies");
        };
        for dep in deps {
            if direct.contains_key(dep) {
                assert!(
                    permitted.contains(&dep.as_str()),
                    "{name} must not depend on {dep} (see ARCHITECTURE.md's codemap)"
                );
            }
        }
    }
    assert!(direct.len() >= 10, "the crates were found");
}

#[test]
fn pure_crates_pull_in_no_io() {
    for name in PURE {
        let closure = closure(name);
        let impure: Vec<&&str> = IMPURE.iter().filter(|c| closure.contains(**c)).collect();
        assert!(
            impure.is_empty(),
            "{name} must stay pure, but its dependencies pull in {impure:?}"
        );
    }
}

#[test]
fn io_crates_are_named_only_where_they_belong() {
    let direct = direct_dependencies();
    for (name, deps) in &direct {
        if TOOLS.contains(&name.as_str()) {
            continue;
        }
        for (io, permitted, why) in IO_CRATES {
            if deps.contains(*io) {
                assert!(
                    permitted.contains(&name.as_str()),
                    "{name} must not depend on {io}: only {permitted:?} may ({why})"
                );
            }
        }
    }
}

#[test]
fn folder_name_is_package_name_and_one_binary() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../crates");
    let mut seen = 0;
    for entry in std::fs::read_dir(root).expect("crates dir") {
        let dir = entry.expect("entry").path();
        let name = dir
            .file_name()
            .and_then(|n| n.to_str())
            .expect("name")
            .to_owned();
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).expect("Cargo.toml");
        let manifest: toml::Table = toml::from_str(&manifest).expect("valid Cargo.toml");
        let package = manifest["package"]["name"].as_str().expect("package name");
        assert_eq!(package, name, "folder name = package name");
        assert!(
            !manifest.to_string().contains("[[bin]]") || name == "modelreg",
            "only modelreg is a binary"
        );
        seen += 1;
    }
    assert!(seen >= 10, "the crates were found ({seen})");
}

#[test]
fn no_mod_rs_files() {
    fn walk(dir: &std::path::Path) {
        for entry in std::fs::read_dir(dir).expect("dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(&path);
            } else {
                assert_ne!(
                    path.file_name().and_then(|n| n.to_str()),
                    Some("mod.rs"),
                    "{}",
                    path.display()
                );
            }
        }
    }
    walk(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../crates"
    )));
}

/// A variable read or documented somewhere but missing from `app::config`'s list would be
/// refused at start as unknown; this finds it first.
#[test]
fn every_modelreg_variable_is_known_to_the_config() {
    let root = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."));
    let mut files = Vec::new();
    for dir in ["crates", "tests", "ops"] {
        collect(&root.join(dir), &mut files);
    }
    for file in ["README.md", "ARCHITECTURE.md", "justfile", ".ci/run"] {
        files.push(root.join(file));
    }
    let mut seen = 0;
    for path in files {
        // The list itself (and its tests of unknown names), and this test's exceptions.
        if path.ends_with("crates/app/src/config.rs") || path.ends_with("tests/it/tidy.rs") {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        for (at, _) in text.match_indices("MODELREG_") {
            let name: String = text[at..]
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == '_')
                .collect();
            // A name built in code or written as a pattern (`MODELREG_PROVIDER_<NAME>_…`),
            // and the keyring bucket's default name, which is no variable.
            if name.ends_with('_') || name == "MODELREG_KEYRING" {
                continue;
            }
            assert!(
                app::config::is_known_env_var(&name),
                "{name} in {} is not in app::config's list of variables",
                path.display()
            );
            seen += 1;
        }
    }
    assert!(seen > 20, "the variables were found ({seen})");
}

fn collect(dir: &std::path::Path, files: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if !path.ends_with("target") {
                collect(&path, files);
            }
        } else if path.extension().is_some_and(|e| {
            ["rs", "md", "service", "toml", "conf"]
                .iter()
                .any(|x| e == *x)
        }) {
            files.push(path);
        }
    }
}
