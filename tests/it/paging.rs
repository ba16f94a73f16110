//! Cursor paging of the org's lists (workflows, credentials, tokens): following
//! `next_cursor` page by page gives exactly the unpaged list, in its order; the broken
//! filter pages too; a wrong limit or cursor is refused without quoting it.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{Backend, TestApp};

/// Every page of `path` at `limit`, followed by its cursors: the ids in order.
async fn follow(app: &TestApp, path: &str, limit: u32, id: &str) -> Vec<String> {
    let join = if path.contains('?') { '&' } else { '?' };
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let url = match &cursor {
            None => format!("{path}{join}limit={limit}"),
            Some(cursor) => format!("{path}{join}limit={limit}&cursor={cursor}"),
        };
        let page = app.call(Method::GET, &url, None).await;
        assert_eq!(page.status, StatusCode::OK, "{url}: {}", page.body);
        let items = page.body["items"].as_array().expect("items");
        assert!(items.len() <= limit as usize, "{url}: more than the limit");
        ids.extend(
            items
                .iter()
                .map(|item| item[id].as_str().expect("id").to_owned()),
        );
        match page.body["next_cursor"].as_str() {
            Some(next) => {
                assert_eq!(
                    items.len(),
                    limit as usize,
                    "{url}: a short page with a next one"
                );
                cursor = Some(next.to_owned());
            }
            None => return ids,
        }
    }
    panic!("{path}: the cursors never ended");
}

async fn all(app: &TestApp, path: &str, id: &str) -> Vec<String> {
    let list = app.call(Method::GET, path, None).await;
    assert_eq!(list.status, StatusCode::OK, "{path}: {}", list.body);
    assert!(list.body.get("next_cursor").is_none(), "{}", list.body);
    list.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| item[id].as_str().expect("id").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_page_by_cursor() {
    let app = TestApp::start(Backend::Embedded).await;
    let added = app
        .add_model(
            json!({"display_name": "Live", "provider": "openai", "provider_model_id": "gpt-5",
            "credential": {"api_key": "sk-paging-0000000000000000"}, "max_tokens": 32000}),
        )
        .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.body);

    // Seven workflows: the odd ones point at a model the org does not have (broken).
    for n in 0..7 {
        let model = if n % 2 == 1 { "missing" } else { "live" };
        let body: Value = json!({"name": format!("W {n}"), "active": true,
            "steps": [{"model": model, "features": {}}]});
        let put = app
            .call(Method::PUT, &format!("/v1/workflows/wf-{n}"), Some(body))
            .await;
        assert!(put.status.is_success(), "{}", put.body);
    }
    // Five saved credentials besides the model's.
    for n in 0..5 {
        let body = json!({"name": format!("Key {n}"), "provider": "openai",
            "credential": {"api_key": format!("sk-paging-{n:016}x")}});
        let saved = app.call(Method::POST, "/v1/credentials", Some(body)).await;
        assert_eq!(saved.status, StatusCode::CREATED, "{}", saved.body);
    }
    // Four tokens besides the bootstrap admin's.
    for n in 0..4 {
        app.issue_token(&format!("token {n}"), "member").await;
    }

    let workflows = all(&app, "/v1/workflows", "id").await;
    assert_eq!(workflows.len(), 7);
    for limit in [1, 2, 3, 7, 500] {
        assert_eq!(follow(&app, "/v1/workflows", limit, "id").await, workflows);
    }
    let broken = all(&app, "/v1/workflows?broken=true", "id").await;
    assert_eq!(broken, ["wf-1", "wf-3", "wf-5"]);
    for limit in [1, 2, 3] {
        assert_eq!(
            follow(&app, "/v1/workflows?broken=true", limit, "id").await,
            broken
        );
    }

    let credentials = all(&app, "/v1/credentials", "id").await;
    assert_eq!(credentials.len(), 6);
    for limit in [1, 4, 6] {
        assert_eq!(
            follow(&app, "/v1/credentials", limit, "id").await,
            credentials
        );
    }

    let tokens = all(&app, "/v1/tokens", "token_id").await;
    assert_eq!(tokens.len(), 5);
    for limit in [1, 2, 5] {
        assert_eq!(follow(&app, "/v1/tokens", limit, "token_id").await, tokens);
    }

    // A model's dependents page in id order, each page split into active and inactive.
    let inactive =
        json!({"name": "Off", "active": false, "steps": [{"model": "live", "features": {}}]});
    let put = app
        .call(Method::PUT, "/v1/workflows/wf-3a", Some(inactive))
        .await;
    assert!(put.status.is_success(), "{}", put.body);
    let refs = app
        .call(Method::GET, "/v1/models/live/workflows", None)
        .await;
    let ids_of = |body: &Value| -> (Vec<String>, Vec<String>) {
        let ids = |group: &str| -> Vec<String> {
            body[group]
                .as_array()
                .expect("group")
                .iter()
                .map(|w| w["id"].as_str().expect("id").to_owned())
                .collect()
        };
        (ids("active"), ids("inactive"))
    };
    let (all_active, all_inactive) = ids_of(&refs.body);
    assert_eq!(all_active, ["wf-0", "wf-2", "wf-4", "wf-6"]);
    assert_eq!(all_inactive, ["wf-3a"]);
    for limit in [1, 2, 5] {
        let (mut active, mut inactive, mut cursor) = (Vec::new(), Vec::new(), String::new());
        loop {
            let url = format!("/v1/models/live/workflows?limit={limit}{cursor}");
            let page = app.call(Method::GET, &url, None).await;
            assert_eq!(page.status, StatusCode::OK, "{url}: {}", page.body);
            let (a, i) = ids_of(&page.body);
            assert!(a.len() + i.len() <= limit, "{url}: more than the limit");
            active.extend(a);
            inactive.extend(i);
            match page.body["next_cursor"].as_str() {
                Some(next) => cursor = format!("&cursor={next}"),
                None => break,
            }
            assert!(
                active.len() + inactive.len() < 10,
                "{url}: the cursors never ended"
            );
        }
        assert_eq!(
            (&active, &inactive),
            (&all_active, &all_inactive),
            "limit {limit}"
        );
    }

    // Models page through the platform ones, then the custom ones: a page that ends with
    // the last platform model still says more follow.
    let everything = app.call(Method::GET, "/v1/models", None).await;
    let expected: Vec<String> = ["platform", "custom"]
        .iter()
        .flat_map(|group| everything.body[group].as_array().expect("group").clone())
        .map(|m| {
            m["id"]
                .as_str()
                .or(m["slug"].as_str())
                .expect("id")
                .to_owned()
        })
        .collect();
    assert_eq!(expected.len(), 11, "{}", everything.body);
    for (query, want) in [("", expected.clone()), ("&q=live", vec!["live".to_owned()])] {
        for limit in [1, 5, 10, 11] {
            let mut seen = Vec::new();
            let mut cursor = String::new();
            loop {
                let url = format!("/v1/models?limit={limit}{query}{cursor}");
                let page = app.call(Method::GET, &url, None).await;
                assert_eq!(page.status, StatusCode::OK, "{url}: {}", page.body);
                assert_eq!(page.body["matching"], want.len(), "{url}: {}", page.body);
                for group in ["platform", "custom"] {
                    for m in page.body[group].as_array().expect("group") {
                        seen.push(
                            m["id"]
                                .as_str()
                                .or(m["slug"].as_str())
                                .expect("id")
                                .to_owned(),
                        );
                    }
                }
                match page.body["next_cursor"].as_str() {
                    Some(next) => cursor = format!("&cursor={next}"),
                    None => break,
                }
                assert!(seen.len() <= want.len(), "{url}: the cursors never ended");
            }
            assert_eq!(seen, want, "limit {limit}{query}");
        }
    }

    // Refusals name the field and the mistake, never the value sent.
    for (path, code) in [
        ("/v1/workflows?limit=0", "limit.out_of_range"),
        ("/v1/credentials?limit=501", "limit.out_of_range"),
        (
            "/v1/tokens?limit=2&cursor=sk-secret%2Fvalue",
            "cursor.invalid",
        ),
        ("/v1/credentials?as_of=1&limit=2", "as_of.with_page"),
        // A platform cursor from another list, or whose model is not in this one.
        (
            "/v1/models?kind=custom&limit=2&cursor=p:google/gemini-3.1-pro-preview",
            "cursor.invalid",
        ),
        ("/v1/models?limit=2&cursor=p:no/sk-secret", "cursor.invalid"),
    ] {
        let refused = app.call(Method::GET, path, None).await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{path}: {}",
            refused.body
        );
        assert_eq!(refused.body["code"], code, "{path}: {}", refused.body);
        assert!(
            !refused.body.to_string().contains("sk-secret"),
            "{}",
            refused.body
        );
    }
}
