//! The OpenAPI document (`server::openapi`, committed as `schemas/openapi.yaml`) and the
//! served API are one: the router is built from the same registrations as the document, and
//! every documented operation is routed on a running registry.

use reqwest::Method;

use crate::support::{Backend, TestApp};

/// Every documented operation as (method, path template), from the generated document.
pub(crate) fn documented_routes() -> Vec<(String, String)> {
    let document = serde_json::to_value(server::openapi()).expect("the document as JSON");
    let mut routes = Vec::new();
    for (path, item) in document["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                routes.push((method.to_uppercase(), path.clone()));
            }
        }
    }
    routes.sort();
    routes
}

/// Each documented operation answers with something other than the router's own 404/405.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_route_is_routed() {
    let app = TestApp::start(Backend::Embedded).await;
    let routes = documented_routes();
    assert!(
        routes.len() >= 23,
        "the document lists the API ({})",
        routes.len()
    );
    for (method, path) in routes {
        let concrete = path
            .replace("{slug}", "some-model")
            .replace("{model}", "some-model")
            .replace("{id}", "cred_x");
        let method = Method::from_bytes(method.as_bytes()).expect("method");
        let reply = app
            .call(method.clone(), &concrete, Some(serde_json::json!({})))
            .await;
        let code = reply
            .body
            .get("code")
            .and_then(|c| c.as_str())
            .unwrap_or("");
        assert!(
            !code.starts_with("route."),
            "{method} {path} is documented but not routed: {}",
            reply.body
        );
    }
    // And what is not documented is not served.
    let undocumented = app.call(Method::GET, "/v1/undocumented", None).await;
    assert_eq!(undocumented.body["code"], "route.not_found");
}
