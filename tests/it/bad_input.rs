//! Bad input: every field's invalid values are refused with a clear problem+json `code`,
//! never a 500. Table-driven.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{Backend, TestApp};

/// A secret sent where it does not belong: no answer may repeat it.
const CANARY: &str = "sk-canary-123456";

fn valid() -> Value {
    json!({
        "display_name": "Good Model",
        "provider": "anthropic",
        "provider_model_id": "claude-sonnet-4-6",
        "credential": {"api_key": "sk-ant-abcdefghijklmnopqrstuvwxyz"},
        "max_tokens": 16000
    })
}

fn with(field: &str, value: Value) -> Value {
    let mut body = valid();
    body[field] = value;
    body
}

fn without(field: &str) -> Value {
    let mut body = valid();
    body.as_object_mut().expect("object").remove(field);
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_fields_get_codes_never_500() {
    let app = TestApp::start(Backend::Embedded).await;
    let cases: Vec<(&str, Value, StatusCode, &str)> = vec![
        (
            "empty display name",
            with("display_name", json!("   ")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "display_name.empty",
        ),
        (
            "display name with newline",
            with("display_name", json!("a\nb")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "display_name.invalid",
        ),
        (
            "display name too long",
            with("display_name", json!("x".repeat(101))),
            StatusCode::UNPROCESSABLE_ENTITY,
            "display_name.too_long",
        ),
        (
            "missing display name",
            without("display_name"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "field.required",
        ),
        (
            "unknown provider",
            with("provider", json!("azure")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "provider.unknown",
        ),
        (
            "missing api key",
            with("credential", json!({})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "credential.missing_field",
        ),
        (
            "blank api key",
            with("credential", json!({"api_key": " "})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "credential.missing_field",
        ),
        (
            "no credential at all",
            without("credential"),
            StatusCode::UNPROCESSABLE_ENTITY,
            "credential.required",
        ),
        (
            "bedrock shape for anthropic",
            with(
                "credential",
                json!({"access_key_id": "AKIAIOSFODNN7EXAMPLE", "secret_access_key": "x"}),
            ),
            StatusCode::UNPROCESSABLE_ENTITY,
            "credential.wrong_shape",
        ),
        (
            "secret and saved credential both",
            with("credential_id", json!("cred_nope")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "credential.ambiguous",
        ),
        (
            "unknown saved credential",
            {
                let mut b = without("credential");
                b["credential_id"] = json!("cred_nope");
                b
            },
            StatusCode::UNPROCESSABLE_ENTITY,
            "credential.not_found",
        ),
        (
            "bad URL",
            json!({"display_name": "Local", "provider": "openai_compatible", "provider_model_id": "llama3", "endpoint_url": "not a url", "max_tokens": 100}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "url.invalid",
        ),
        (
            "URL with credentials",
            json!({"display_name": "Local", "provider": "openai_compatible", "provider_model_id": "llama3", "endpoint_url": "https://u:p@x.example", "max_tokens": 100}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "url.invalid",
        ),
        (
            "missing base URL",
            json!({"display_name": "Local", "provider": "openai_compatible", "provider_model_id": "llama3", "max_tokens": 100}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "endpoint_url.required",
        ),
        (
            "bad region",
            json!({"display_name": "B", "provider": "bedrock", "provider_model_id": "amazon.nova-pro-v1:0", "region": "mars-1", "credential": {"bedrock_api_key": "abcdefghijklmnop"}, "max_tokens": 100}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "region.invalid",
        ),
        (
            "bad fireworks id",
            json!({"display_name": "F", "provider": "fireworks", "provider_model_id": "deepseek-v3", "credential": {"api_key": "fw_abcdefghijklmnop"}, "max_tokens": 100}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "provider_model_id.invalid",
        ),
        (
            "max tokens zero",
            with("max_tokens", json!(0)),
            StatusCode::UNPROCESSABLE_ENTITY,
            "max_tokens.out_of_range",
        ),
        (
            "max tokens too large",
            with("max_tokens", json!(2_000_001)),
            StatusCode::UNPROCESSABLE_ENTITY,
            "max_tokens.out_of_range",
        ),
        (
            "max tokens not a number",
            with("max_tokens", json!("many")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "max_tokens.invalid",
        ),
        (
            "negative cost",
            with("input_cost_per_token", json!("-0.001")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "cost.negative",
        ),
        (
            "cost not a number",
            with("output_cost_per_token", json!("cheap")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "cost.invalid",
        ),
        (
            "unknown reasoning parameter",
            with("capabilities", json!({"reasoning": "budget"})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "reasoning.unknown_parameter",
        ),
        (
            "unknown field",
            with("colour", json!("blue")),
            StatusCode::BAD_REQUEST,
            "body.invalid_shape",
        ),
        (
            "wrong type",
            with("display_name", json!(5)),
            StatusCode::BAD_REQUEST,
            "body.invalid_shape",
        ),
        (
            "secret where the credential object goes",
            with("credential", json!(CANARY)),
            StatusCode::BAD_REQUEST,
            "body.invalid_shape",
        ),
        (
            "a bare string body",
            json!(CANARY),
            StatusCode::BAD_REQUEST,
            "body.invalid_shape",
        ),
    ];
    for (name, body, status, code) in cases {
        let reply = app.add_model(body).await;
        assert_eq!(reply.status, status, "{name}: {}", reply.body);
        assert_eq!(reply.body["code"], code, "{name}: {}", reply.body);
        assert!(
            reply.body["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{name}: a detail for people"
        );
    }
    assert_no_response_quotes(&app, CANARY);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_oversize_and_foreign_requests() {
    let app = TestApp::start(Backend::Embedded).await;
    let url = format!("{}/v1/models", app.base);

    let malformed = app
        .raw(
            app.http
                .post(&url)
                .bearer_auth(&app.token)
                .header("content-type", "application/json")
                .body("{\"display_name\": "),
        )
        .await;
    assert_eq!(
        (malformed.status, malformed.body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("body.malformed_json"))
    );

    let big = format!("{{\"display_name\": \"{}\"}}", "x".repeat(65 * 1024));
    let oversize = app
        .raw(
            app.http
                .post(&url)
                .bearer_auth(&app.token)
                .header("content-type", "application/json")
                .body(big),
        )
        .await;
    assert_eq!(
        (oversize.status, oversize.body["code"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("body.too_large"))
    );

    let no_type = app
        .raw(app.http.post(&url).bearer_auth(&app.token).body("{}"))
        .await;
    assert_eq!(no_type.body["code"], "body.content_type");

    let no_token = app.raw(app.http.get(&url)).await;
    assert_eq!(
        (no_token.status, no_token.body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("auth.missing_token"))
    );
    let bad_token = app
        .call_with(
            Method::GET,
            "/v1/models",
            None,
            "mr_0000000000000000_nope",
            &[],
        )
        .await;
    assert_eq!(
        (bad_token.status, bad_token.body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("auth.invalid_token"))
    );

    // Another org's token sees none of this org's models or credentials.
    let added = app.add_model(valid()).await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.body);
    let credential_id = added.body["model"]["credential"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let other = app::orgs::create(app.registry(), "Other Org")
        .await
        .expect("org");
    let other_token = other.admin_token.expose_secret().to_owned();
    let foreign = app
        .call_with(
            Method::GET,
            "/v1/models/good-model",
            None,
            &other_token,
            &[],
        )
        .await;
    assert_eq!(
        (foreign.status, foreign.body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("model.not_found"))
    );
    let foreign_edit = app
        .call_with(
            Method::PATCH,
            "/v1/models/good-model",
            Some(json!({"max_tokens": 5})),
            &other_token,
            &[],
        )
        .await;
    assert_eq!(foreign_edit.status, StatusCode::NOT_FOUND);
    let foreign_credential = app
        .call_with(
            Method::GET,
            &format!("/v1/credentials/{credential_id}"),
            None,
            &other_token,
            &[],
        )
        .await;
    assert_eq!(foreign_credential.status, StatusCode::NOT_FOUND);
    let borrowed = app
        .call_with(Method::POST, "/v1/models", Some(json!({"display_name": "Borrow", "provider": "anthropic", "provider_model_id": "claude-sonnet-4-6", "credential_id": credential_id, "max_tokens": 10})), &other_token, &[])
        .await;
    assert_eq!(
        (borrowed.status, borrowed.body["code"].as_str()),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("credential.not_found")
        )
    );
    let other_list = app
        .call_with(Method::GET, "/v1/models", None, &other_token, &[])
        .await;
    assert_eq!(other_list.body["custom"].as_array().map(Vec::len), Some(0));

    // Members read but cannot change anything.
    let issued = app
        .call(
            Method::POST,
            "/v1/tokens",
            Some(json!({"label": "reader", "role": "member"})),
        )
        .await;
    assert_eq!(issued.status, StatusCode::CREATED, "{}", issued.body);
    let member = issued.body["token"].as_str().expect("token").to_owned();
    assert_eq!(
        app.call_with(Method::GET, "/v1/models", None, &member, &[])
            .await
            .status,
        StatusCode::OK
    );
    let denied = app
        .call_with(Method::DELETE, "/v1/models/good-model", None, &member, &[])
        .await;
    assert_eq!(
        (denied.status, denied.body["code"].as_str()),
        (StatusCode::FORBIDDEN, Some("auth.forbidden"))
    );

    // Unknown routes and bad If-Match are problems too.
    assert_eq!(
        app.call(Method::GET, "/v1/nothing", None).await.body["code"],
        "route.not_found"
    );
    let bad_if_match = app
        .call_with(
            Method::PATCH,
            "/v1/models/good-model",
            Some(json!({})),
            &app.token,
            &[("if-match", "abc")],
        )
        .await;
    assert_eq!(bad_if_match.body["code"], "if_match.invalid");
    // `If-Match: *` only asks that the model exists: it passes to the model's lookup.
    let any_version = app
        .call_with(
            Method::PATCH,
            "/v1/models/no-such-model",
            Some(json!({"max_tokens": 1000})),
            &app.token,
            &[("if-match", "*")],
        )
        .await;
    assert_eq!(
        (any_version.status, any_version.body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("model.not_found")),
        "{}",
        any_version.body
    );
    assert_eq!(
        app.get_model("No Such").await.body["code"],
        "model.not_found"
    );
}

/// Every answer `app` has received so far is free of `canary`.
fn assert_no_response_quotes(app: &TestApp, canary: &str) {
    let responses = app.responses.lock().expect("responses");
    assert!(!responses.is_empty(), "no responses were recorded");
    for response in responses.iter() {
        assert!(
            !response.contains(canary),
            "an answer quotes {canary}: {response}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shape_errors_name_the_field_and_never_quote_the_body() {
    let app = TestApp::start(Backend::Embedded).await;
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "/v1/models",
            with("credential", json!(CANARY)),
            "credential: found a string, expected struct CredentialInput",
        ),
        (
            "/v1/models",
            json!(CANARY),
            "body: found a string, expected struct AddModel",
        ),
        (
            "/v1/models",
            with("credential", json!({"api_key": 987_654_321})),
            "credential.api_key: found a number, expected a string",
        ),
        (
            "/v1/connection-tests",
            json!({"provider": "openai", "provider_model_id": "gpt-5", "credential": CANARY}),
            "credential: found a string",
        ),
        (
            "/v1/models/some-model/connection-tests",
            json!({"credential": {"api_key": [CANARY]}}),
            "credential.api_key: found an array",
        ),
        (
            "/v1/models/some-model/connection-tests",
            json!(CANARY),
            "body: found a string",
        ),
        (
            "/v1/credentials/match",
            json!({"provider": "openai", "credential": {"api_key": {"k": CANARY}}}),
            "credential.api_key: found an object",
        ),
    ];
    for (path, body, detail) in cases {
        let reply = app.call(Method::POST, path, Some(body.clone())).await;
        assert_eq!(
            (reply.status, reply.body["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("body.invalid_shape")),
            "{path} {body}: {}",
            reply.body
        );
        assert!(
            reply.body["detail"]
                .as_str()
                .is_some_and(|d| d.starts_with(detail)),
            "{path} {body}: {}",
            reply.body
        );
    }
    assert_no_response_quotes(&app, CANARY);
    assert_no_response_quotes(&app, "987654321");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_number_out_of_range_is_not_malformed_json() {
    let app = TestApp::start(Backend::Embedded).await;
    let add = r#"{"display_name": "Big", "provider": "anthropic", "provider_model_id": "claude-sonnet-4-6", "credential": {"api_key": "sk-ant-abcdefghijklmnopqrstuvwxyz"}, "max_tokens": 1e400}"#;
    for (path, body) in [
        ("/v1/models", add),
        ("/v1/models/some-model/check", r#"{"max_tokens": -1e400}"#),
    ] {
        let reply = app
            .raw(
                app.http
                    .post(format!("{}{path}", app.base))
                    .bearer_auth(&app.token)
                    .header("content-type", "application/json")
                    .body(body),
            )
            .await;
        assert_eq!(
            (reply.status, reply.body["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("body.number_out_of_range")),
            "{path}: {}",
            reply.body
        );
        assert_eq!(
            reply.body["detail"], "max_tokens: the number is out of range",
            "{path}"
        );
    }
    let broken = app
        .raw(
            app.http
                .post(format!("{}/v1/models", app.base))
                .bearer_auth(&app.token)
                .header("content-type", "application/json")
                .body(r#"{"max_tokens": 1e}"#),
        )
        .await;
    assert_eq!(broken.body["code"], "body.malformed_json");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn path_parameters_that_do_not_decode_are_problems() {
    let app = TestApp::start(Backend::Embedded).await;
    let mut checked = 0;
    for (method, template) in crate::openapi::documented_routes() {
        let Some((_, rest)) = template.split_once('{') else {
            continue;
        };
        let (name, _) = rest.split_once('}').expect("closing brace");
        let path = template.replace(&format!("{{{name}}}"), "%FF%FE");
        let verb = Method::from_bytes(method.as_bytes()).expect("method");
        let body = (verb != Method::GET && verb != Method::DELETE).then(|| json!({}));
        let reply = app.call(verb, &path, body).await;
        assert_eq!(
            (reply.status, reply.body["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("path.invalid")),
            "{method} {template}: {}",
            reply.body
        );
        let detail = reply.body["detail"].as_str().unwrap_or("");
        assert!(
            detail.contains(&format!("`{name}`")),
            "{method} {template}: {detail}"
        );
        checked += 1;
    }
    assert!(
        checked >= 10,
        "routes with a parameter were checked ({checked})"
    );
}

/// Sends `request` as raw bytes and answers the whole raw response.
async fn raw_http(app: &TestApp, request: String) -> String {
    let address = app.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("write request");
    let mut response = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(30),
        stream.read_to_end(&mut response),
    )
    .await
    .expect("the server answers and closes")
    .expect("read response");
    String::from_utf8_lossy(&response).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_body_is_not_too_large() {
    let app = TestApp::start(Backend::Embedded).await;
    for path in ["/v1/models/some-model/connection-tests", "/v1/models"] {
        // A chunk size that is not hexadecimal: the body fails to read, well under the limit.
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\
             Connection: close\r\n\r\nzz\r\n{{}}\r\n0\r\n\r\n",
            app.token
        );
        let response = raw_http(&app, request).await;
        assert!(response.starts_with("HTTP/1.1 400"), "{path}: {response}");
        assert!(
            response.contains("\"code\":\"body.unreadable\""),
            "{path}: {response}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bearer_scheme_is_case_insensitive() {
    let app = TestApp::start(Backend::Embedded).await;
    let url = format!("{}/v1/models", app.base);
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let reply = app
            .raw(
                app.http
                    .get(&url)
                    .header("authorization", format!("{scheme} {}", app.token)),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "{scheme}: {}", reply.body);
    }
    for header in [
        format!("Basic {}", app.token),
        format!("Bearer{}", app.token),
    ] {
        let reply = app
            .raw(app.http.get(&url).header("authorization", header))
            .await;
        assert_eq!(
            (reply.status, reply.body["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("auth.invalid_token"))
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn made_up_methods_and_paths_do_not_grow_the_metrics() {
    let app = TestApp::start(Backend::Embedded).await;
    for n in 0..5 {
        let method = Method::from_bytes(format!("FOO{n}").as_bytes()).expect("method");
        app.call(method, "/v1/models", None).await;
        app.call(Method::GET, &format!("/v1/zz-unmatched-{n}"), None)
            .await;
    }
    let text = app
        .http
        .get(format!("{}/metrics", app.base))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(!text.contains("FOO"), "{text}");
    assert!(!text.contains("zz-unmatched"), "{text}");
    assert!(
        text.contains("method=\"OTHER\",route=\"/v1/models\""),
        "{text}"
    );
    assert!(text.contains("command=\"OTHER /v1/models\""), "{text}");
    assert!(
        text.contains("method=\"GET\",route=\"unmatched\""),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_with_secrets_are_not_stored_by_caches() {
    let app = TestApp::start(Backend::Embedded).await;
    let added = app.add_model(valid()).await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.body);
    let service = app.issue_token("runtime", "service").await;

    let resolved = app
        .http
        .get(format!("{}/v1/resolve/good-model", app.base))
        .bearer_auth(&service)
        .send()
        .await
        .expect("resolve");
    assert_eq!(resolved.status(), StatusCode::OK);
    assert_eq!(
        resolved
            .headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );

    let issued = app
        .http
        .post(format!("{}/v1/tokens", app.base))
        .bearer_auth(&app.token)
        .json(&json!({"label": "another", "role": "member"}))
        .send()
        .await
        .expect("issue");
    assert_eq!(issued.status(), StatusCode::CREATED);
    assert_eq!(
        issued
            .headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
}

/// A canary sent in every field that refuses it and in every path parameter: no answer
/// repeats it (a secret pasted into the wrong field must not come back, nor reach a log
/// through an answer), and none is a 5xx.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_answer_repeats_a_value_sent_in_a_field_or_a_path() {
    let app = TestApp::start(Backend::Embedded).await;
    let draft = json!({"provider": "openai", "provider_model_id": "gpt-5",
        "credential": {"api_key": "sk-abcdefghijklmnop"}});
    let mut bodies: Vec<(Method, String, Option<Value>)> = vec![
        (
            Method::POST,
            "/v1/models".into(),
            Some(with("provider", json!(CANARY))),
        ),
        (
            Method::POST,
            "/v1/models".into(),
            Some(with("region", json!(CANARY))),
        ),
        (
            Method::POST,
            "/v1/models".into(),
            Some(with("endpoint_url", json!(CANARY))),
        ),
        (
            Method::POST,
            "/v1/models".into(),
            Some(with("connection_test_id", json!(CANARY))),
        ),
        (
            Method::POST,
            "/v1/models".into(),
            Some(with("input_cost_per_token", json!(CANARY))),
        ),
        (
            Method::POST,
            "/v1/models".into(),
            Some(with("output_cost_per_token", json!(CANARY))),
        ),
        (
            Method::POST,
            "/v1/models".into(),
            Some(with("max_tokens", json!(987_654_321))),
        ),
        (
            Method::POST,
            "/v1/models".into(),
            Some(with("capabilities", json!({"reasoning": CANARY}))),
        ),
        (
            Method::POST,
            "/v1/models?dry_run=true".into(),
            Some(with("provider", json!(CANARY))),
        ),
        (
            Method::POST,
            "/v1/models".into(),
            Some(with(CANARY, json!(1))),
        ),
        (
            Method::POST,
            "/v1/models".into(),
            Some({
                let mut body = without("credential");
                body["credential_id"] = json!(CANARY);
                body
            }),
        ),
        (
            Method::POST,
            "/v1/models".into(),
            Some({
                let mut body = valid();
                body["provider"] = json!("fireworks");
                body["provider_model_id"] = json!(CANARY);
                body
            }),
        ),
        (
            Method::POST,
            "/v1/models".into(),
            Some({
                let mut body = valid();
                body["provider"] = json!("openai_compatible");
                body["endpoint_url"] = json!(format!("https://example.com/v1?api_key={CANARY}"));
                body
            }),
        ),
        (
            Method::POST,
            "/v1/connection-tests".into(),
            Some({
                let mut body = draft.clone();
                body["provider"] = json!(CANARY);
                body
            }),
        ),
        (
            Method::POST,
            "/v1/connection-tests".into(),
            Some({
                let mut body = draft.clone();
                body["region"] = json!(CANARY);
                body
            }),
        ),
        (
            Method::POST,
            "/v1/credentials/match".into(),
            Some(json!({"provider": CANARY, "credential": {"api_key": "sk-abcdefghijklmnop"}})),
        ),
        (
            Method::POST,
            "/v1/credentials".into(),
            Some(
                json!({"name": "x", "provider": CANARY, "credential": {"api_key": "sk-abcdefghijklmnop"}}),
            ),
        ),
        (
            Method::POST,
            "/v1/credentials".into(),
            Some(
                json!({"name": "x", "provider": "openai", "credential": {"api_key": "sk-abcdefghijklmnop"}, "expires_at": CANARY}),
            ),
        ),
        (
            Method::POST,
            "/v1/credentials".into(),
            Some(
                json!({"name": format!("a\tb{CANARY}"), "provider": "openai", "credential": {"api_key": "sk-abcdefghijklmnop"}}),
            ),
        ),
        (
            Method::POST,
            format!("/v1/credentials/{CANARY}/rotation"),
            Some(json!({"credential": {"api_key": "sk-abcdefghijklmnop"}})),
        ),
        (
            Method::PATCH,
            format!("/v1/credentials/{CANARY}"),
            Some(json!({"name": "x"})),
        ),
        (
            Method::DELETE,
            format!("/v1/credentials/{CANARY}/versions/1"),
            None,
        ),
        (
            Method::DELETE,
            format!("/v1/credentials/cred_1/versions/{CANARY}"),
            None,
        ),
        (
            Method::POST,
            "/v1/tokens".into(),
            Some(json!({"label": "x", "role": CANARY})),
        ),
        (
            Method::PATCH,
            "/v1/models/nope".into(),
            Some(json!({"region": CANARY})),
        ),
        (
            Method::PUT,
            "/v1/workflows/wf-1".into(),
            Some(json!({"name": "x", "active": CANARY})),
        ),
    ];
    for path in [
        format!("/v1/models/{CANARY}"),
        format!("/v1/models/{CANARY}/workflows"),
        format!("/v1/models/{CANARY}/activation"),
        format!("/v1/credentials/{CANARY}"),
        format!("/v1/workflows/{CANARY}"),
        format!("/v1/connection-tests/{CANARY}"),
        format!("/v1/resolve/{CANARY}"),
        format!("/v1/tokens/{CANARY}"),
    ] {
        for method in [Method::GET, Method::POST, Method::PATCH, Method::DELETE] {
            bodies.push((method, path.clone(), None));
        }
    }
    bodies.push((
        Method::POST,
        format!("/v1/models/{CANARY}/check"),
        Some(json!({})),
    ));
    // A key with dots, whose part before its last dot is no field name either.
    bodies.push((
        Method::POST,
        "/v1/models".into(),
        Some(with(&format!("x.{CANARY}.y"), json!(1))),
    ));
    bodies.push((
        Method::POST,
        format!("/v1/models/{CANARY}/connection-tests"),
        Some(json!({})),
    ));
    for (method, path, body) in bodies {
        let reply = app.call(method.clone(), &path, body.clone()).await;
        assert!(
            reply.status.is_client_error(),
            "{method} {path} {body:?}: {} {}",
            reply.status,
            reply.body
        );
    }
    // A canary as a query parameter's name or value, on every route that reads a query:
    // refused or passed over (a route may take any parameter), never quoted, never a 5xx.
    for route in [
        "/v1/models",
        "/v1/models/no-such-model",
        "/v1/models/no-such-model/history",
        "/v1/models/no-such-model/workflows",
        "/v1/credentials",
        "/v1/credentials/cred_1/history",
        "/v1/tokens",
        "/v1/audit",
        "/v1/usage/summary",
        "/v1/workflows",
        "/v1/position",
        "/v1/connection-tests/ct_1",
        "/v1/resolve/no-such-model",
    ] {
        for query in [
            CANARY.to_owned(),
            format!("{CANARY}=1"),
            format!("x.{CANARY}.y=1"),
            format!("limit={CANARY}"),
        ] {
            let path = format!("{route}?{query}");
            let reply = app.call(Method::GET, &path, None).await;
            assert!(
                !reply.status.is_server_error(),
                "{path}: {} {}",
                reply.status,
                reply.body
            );
        }
    }
    let unknown = app
        .call(Method::GET, &format!("/v1/models?{CANARY}=1"), None)
        .await;
    assert_eq!(
        (unknown.status, unknown.body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("query.invalid")),
        "{}",
        unknown.body
    );
    assert_no_response_quotes(&app, CANARY);
    assert_no_response_quotes(&app, "987654321");
}

/// A body announced as far over the limit is refused at once, with problem+json, without
/// waiting for a byte of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_announced_oversized_body_is_refused_at_once() {
    let app = TestApp::start(Backend::Embedded).await;
    let address = app.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .expect("connect");
    let head = format!(
        "POST /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 1000000000000\r\n\r\n",
        app.token
    );
    stream.write_all(head.as_bytes()).await.expect("write head");
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    let read = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        while !String::from_utf8_lossy(&answer).contains("body.too_large") {
            let n = stream.read(&mut buffer).await.expect("read");
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buffer[..n]);
        }
    })
    .await;
    let text = String::from_utf8_lossy(&answer);
    assert!(read.is_ok(), "no answer within 5 s: {text}");
    assert!(
        text.starts_with("HTTP/1.1 413") && text.contains("application/problem+json"),
        "{text}"
    );
}

/// A connection that sends nothing, or half its headers, or idles after a request, is closed
/// once the header-read timeout passes (here 500 ms): a few hundred such connections no
/// longer hold the server's file descriptors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_half_sent_connections_are_closed() {
    let app = TestApp::start_with(Backend::Embedded, |config| {
        config.http_header_read_timeout_ms = 500;
    })
    .await;
    let address = app.base.trim_start_matches("http://").to_owned();
    let half = "GET /v1/models HTTP/1.1\r\nHost: x\r\n".to_owned();
    let after_a_request = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n".to_owned();
    for (what, sent) in [
        ("nothing", String::new()),
        ("half the headers", half),
        ("one request, then nothing", after_a_request),
    ] {
        let mut stream = tokio::net::TcpStream::connect(&address)
            .await
            .expect("connect");
        stream.write_all(sent.as_bytes()).await.expect("write");
        let started = std::time::Instant::now();
        let mut sink = Vec::new();
        let closed = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            stream.read_to_end(&mut sink),
        )
        .await;
        assert!(
            closed.is_ok(),
            "{what}: the connection is still open after 10 s"
        );
        assert!(
            started.elapsed() >= std::time::Duration::from_millis(400),
            "{what}: closed before the timeout"
        );
    }
}

/// What hyper refuses before any handler runs (a malformed request line or header, a URI
/// or headers over its limits, an unknown HTTP version, which hyper calls malformed) is
/// answered with problem+json too, not a bare status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_hyper_cannot_read_get_problem_json() {
    let app = TestApp::start(Backend::Embedded).await;
    let address = app.base.trim_start_matches("http://").to_owned();
    let many_headers: String = (0..150).map(|n| format!("X-H{n}: v\r\n")).collect();
    let cases = [
        (
            "malformed",
            "GARBAGE\r\n\r\n".to_owned(),
            400,
            "request.malformed",
        ),
        (
            "bad header",
            "GET /healthz HTTP/1.1\r\nHost x\r\n\r\n".to_owned(),
            400,
            "request.malformed",
        ),
        (
            "long uri",
            format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(70_000)),
            414,
            "request.uri_too_long",
        ),
        (
            "many headers",
            format!("GET /healthz HTTP/1.1\r\nHost: x\r\n{many_headers}\r\n"),
            431,
            "request.headers_too_large",
        ),
        (
            "version",
            "GET /healthz HTTP/1.7\r\nHost: x\r\n\r\n".to_owned(),
            400,
            "request.malformed",
        ),
    ];
    for (what, request, status, code) in cases {
        let mut stream = tokio::net::TcpStream::connect(&address)
            .await
            .expect("connect");
        stream.write_all(request.as_bytes()).await.expect("write");
        let mut answer = Vec::new();
        let read = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            stream.read_to_end(&mut answer),
        )
        .await;
        let text = String::from_utf8_lossy(&answer);
        assert!(read.is_ok(), "{what}: no answer within 10 s: {text}");
        assert!(
            text.starts_with(&format!("HTTP/1.1 {status} ")),
            "{what}: {text}"
        );
        assert!(
            text.contains("content-type: application/problem+json"),
            "{what}: {text}"
        );
        let (_, body) = text.split_once("\r\n\r\n").expect("a head and a body");
        let problem: Value =
            serde_json::from_str(body).unwrap_or_else(|e| panic!("{what}: {e}: {body}"));
        assert_eq!(problem["code"], code, "{what}: {problem}");
        assert_eq!(problem["status"], status, "{what}: {problem}");
    }
    // The connection wrapper leaves ordinary answers alone.
    let health = app.call(Method::GET, "/healthz", None).await;
    assert_eq!(health.status, StatusCode::OK);
}
