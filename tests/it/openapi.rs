//! `schemas/openapi.yaml` and the served routes describe the same API: a route missing from
//! either side fails.

use std::collections::BTreeSet;

use reqwest::Method;

use crate::support::{Backend, TestApp};

fn documented() -> BTreeSet<String> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../schemas/openapi.yaml");
    let text = std::fs::read_to_string(path).expect("schemas/openapi.yaml");
    let mut routes = BTreeSet::new();
    let mut in_paths = false;
    let mut current = None;
    for line in text.lines() {
        if line == "paths:" {
            in_paths = true;
            continue;
        }
        if in_paths && !line.starts_with(' ') && !line.is_empty() {
            in_paths = false;
        }
        if !in_paths {
            continue;
        }
        if let Some(path) = line.strip_prefix("  /").and_then(|l| l.strip_suffix(':')) {
            current = Some(format!("/{path}"));
            continue;
        }
        let method = line.strip_prefix("    ").and_then(|l| l.strip_suffix(':'));
        if let (Some(method), Some(path)) = (method, &current)
            && ["get", "post", "put", "patch", "delete"].contains(&method)
        {
            routes.insert(format!("{} {path}", method.to_uppercase()));
        }
    }
    routes
}

#[test]
fn documented_routes_equal_served_routes() {
    let served: BTreeSet<String> = server::ROUTES.iter().map(|r| (*r).to_owned()).collect();
    let documented = documented();
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty(),
        "served but not in openapi.yaml: {undocumented:?}"
    );
    assert!(
        unserved.is_empty(),
        "in openapi.yaml but not served: {unserved:?}"
    );
}

/// `ROUTES` is what the router really serves: each answers with something other than the
/// router's own 404/405.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_listed_route_is_routed() {
    let app = TestApp::start(Backend::Embedded).await;
    for route in server::ROUTES {
        let (method, path) = route.split_once(' ').expect("METHOD path");
        let path = path
            .replace("{slug}", "some-model")
            .replace("{id}", "cred_x");
        let method = Method::from_bytes(method.as_bytes()).expect("method");
        let reply = app.call(method, &path, Some(serde_json::json!({}))).await;
        let code = reply
            .body
            .get("code")
            .and_then(|c| c.as_str())
            .unwrap_or("");
        assert!(
            !code.starts_with("route."),
            "{route} is not routed: {}",
            reply.body
        );
    }
}
