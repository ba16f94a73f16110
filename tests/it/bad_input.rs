//! Bad input: every field's invalid values are refused with a clear problem+json `code`,
//! never a 500. Table-driven.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{Backend, TestApp};

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
    let other = app.registry().create_org("Other Org").await.expect("org");
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
    assert_eq!(
        app.get_model("No Such").await.body["code"],
        "model.not_found"
    );
}
