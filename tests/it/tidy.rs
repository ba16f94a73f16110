//! Tidy: dependencies between our crates point down only, as ARCHITECTURE.md draws them.

use std::collections::BTreeMap;

/// Each crate and the workspace crates it may depend on.
const ALLOWED: &[(&str, &[&str])] = &[
    ("testkit", &[]),
    ("vault", &[]),
    ("eventlog", &[]),
    ("domain", &["vault"]),
    ("providers", &["domain", "vault"]),
    ("views", &["domain", "eventlog", "vault"]),
    ("app", &["domain", "eventlog", "vault", "views"]),
    ("server", &["app", "domain"]),
    (
        "workers",
        &["app", "domain", "eventlog", "providers", "vault"],
    ),
    (
        "modelreg",
        &["app", "server", "eventlog", "views", "workers"],
    ),
    (
        "bench",
        &[
            "app", "server", "eventlog", "views", "domain", "vault", "workers", "testkit",
        ],
    ),
];

#[test]
fn crates_depend_downward_only() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../crates");
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let ours: Vec<&str> = allowed.keys().copied().collect();
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
        let Some(permitted) = allowed.get(name.as_str()) else {
            panic!("crate {name} is not in the tidy table; add it with its allowed dependencies");
        };
        let deps = manifest
            .get("dependencies")
            .and_then(|d| d.as_table())
            .cloned()
            .unwrap_or_default();
        for dep in deps.keys() {
            if ours.contains(&dep.as_str()) {
                assert!(
                    permitted.contains(&dep.as_str()),
                    "{name} must not depend on {dep}"
                );
            }
        }
        assert!(
            !manifest.to_string().contains("[[bin]]") || name == "modelreg",
            "only modelreg is a binary"
        );
        seen += 1;
    }
    assert!(seen >= 7, "the crates were found ({seen})");
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
