//! The web console at the HTML level (no browser): sign-in with the one-time link and with a
//! pasted token, the session cookie's attributes, the Content-Security-Policy, escaping,
//! CSRF, members kept to reading, the Models page (platform and custom, the default marked,
//! paging and filters on the server), the detail page with its deactivation count and its
//! truncations with the recommendation's one button, the Add
//! Custom Model dialog gated on a passing test, the Credentials and Workflows pages, and the
//! admins' Tokens (shown once, revoked after a confirmation) and Audit pages.

use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::support::{Backend, TestApp};

/// A browser-like client of the console: no redirects followed, the session cookie kept by
/// hand, every page recorded for the secret canary.
pub(crate) struct Browser<'a> {
    app: &'a TestApp,
    http: reqwest::Client,
    session: Option<String>,
}

/// One page as the browser got it.
pub(crate) struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    /// The value of the hidden input `name` (the first one).
    pub(crate) fn hidden(&self, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self
            .body
            .find(&marker)
            .unwrap_or_else(|| panic!("no {name} in {}", self.body))
            + marker.len();
        let end = self.body[start..].find('"').expect("closing quote") + start;
        self.body[start..end].to_owned()
    }

    fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_owned)
            .collect()
    }

    fn cookie(&self, name: &str) -> Option<String> {
        self.set_cookies()
            .into_iter()
            .find(|c| c.starts_with(&format!("{name}=")))
    }

    fn location(&self) -> &str {
        self.headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

impl<'a> Browser<'a> {
    pub(crate) fn new(app: &'a TestApp) -> Self {
        Self {
            app,
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            session: None,
        }
    }

    async fn send(&self, request: reqwest::RequestBuilder, cookies: &[String]) -> Page {
        let mut jar: Vec<String> = cookies.to_vec();
        if let Some(session) = &self.session {
            jar.push(format!("{}={session}", webconsole::SESSION_COOKIE));
        }
        let request = if jar.is_empty() {
            request
        } else {
            request.header("cookie", jar.join("; "))
        };
        let response = request.send().await.expect("request");
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.text().await.expect("body");
        if let Ok(mut all) = self.app.responses.lock() {
            all.push(body.clone());
            for value in headers.iter().filter_map(|(_, v)| v.to_str().ok()) {
                all.push(value.to_owned());
            }
        }
        Page {
            status,
            headers,
            body,
        }
    }

    pub(crate) async fn get(&self, path: &str) -> Page {
        self.send(self.http.get(format!("{}{path}", self.app.base)), &[])
            .await
    }

    pub(crate) async fn post(&self, path: &str, form: &[(&str, &str)]) -> Page {
        self.post_with(path, form, &[]).await
    }

    async fn post_with(&self, path: &str, form: &[(&str, &str)], headers: &[(&str, &str)]) -> Page {
        let mut request = self
            .http
            .post(format!("{}{path}", self.app.base))
            .form(form);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        self.send(request, &[]).await
    }

    /// Opens the sign-in page at `link` and posts its form: the exchange's answer.
    async fn follow_sign_in_link(&self, link: &str) -> Page {
        let page = self.get(link).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let cookie = page
            .cookie(webconsole::SIGN_IN_COOKIE)
            .expect("sign-in cookie");
        let pair = cookie.split(';').next().expect("pair").to_owned();
        let csrf = page.hidden("csrf");
        let code = page.hidden("code");
        self.send(
            self.http
                .post(format!("{}/sign-in", self.app.base))
                .form(&[("csrf", csrf.as_str()), ("code", code.as_str())]),
            &[pair],
        )
        .await
    }

    /// Signs in by pasting `token`; panics unless a session opened.
    pub(crate) async fn sign_in_with(&mut self, token: &str) {
        let page = self.get("/sign-in").await;
        let cookie = page
            .cookie(webconsole::SIGN_IN_COOKIE)
            .expect("sign-in cookie");
        let pair = cookie.split(';').next().expect("pair").to_owned();
        let csrf = page.hidden("csrf");
        let done = self
            .send(
                self.http
                    .post(format!("{}/sign-in", self.app.base))
                    .form(&[("csrf", csrf.as_str()), ("token", token)]),
                &[pair],
            )
            .await;
        assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
        self.keep_session(&done);
    }

    fn keep_session(&mut self, page: &Page) {
        let cookie = page
            .cookie(webconsole::SESSION_COOKIE)
            .expect("a session cookie");
        let value = cookie
            .split(';')
            .next()
            .and_then(|pair| pair.split_once('='))
            .map(|(_, v)| v.to_owned())
            .expect("value");
        self.session = Some(value);
    }

    /// The CSRF token of the session, read from a page's sign-out form.
    pub(crate) async fn csrf(&self) -> String {
        self.get("/models").await.hidden("csrf")
    }
}

/// Signs in as the app's admin.
pub(crate) async fn admin(app: &TestApp) -> Browser<'_> {
    let mut browser = Browser::new(app);
    browser.sign_in_with(&app.token).await;
    browser
}

fn link_for(app: &TestApp) -> String {
    app.console
        .sign_in_link(&secrets::Secret::new(app.token.clone()))
}

async fn add_local(app: &TestApp, name: &str, tool_use: bool) -> String {
    let mut draft = app.local_draft(name);
    draft.max_tokens = Some(32000.into());
    draft.capabilities = Some(api::CapabilitiesInput {
        tool_use: Some(tool_use),
        ..api::CapabilitiesInput::default()
    });
    let added = app.add_model(draft).await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.body);
    added.body["model"]["slug"]
        .as_str()
        .expect("slug")
        .to_owned()
}

async fn put_workflow(app: &TestApp, id: &str, name: &str, active: bool, model: &str) {
    let reply = app
        .call(
            Method::PUT,
            &format!("/v1/workflows/{id}"),
            Some(json!({"name": name, "active": active, "steps": [{"model": model, "features": {}}]})),
        )
        .await;
    assert!(reply.status.is_success(), "{}", reply.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sign_in_link_works_once_and_opens_a_strict_session() {
    let app = TestApp::start(Backend::Embedded).await;
    let link = link_for(&app);
    assert!(link.starts_with("/sign-in?code="), "{link}");
    let mut browser = Browser::new(&app);
    let signed = browser.follow_sign_in_link(&link).await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", signed.body);
    assert_eq!(signed.location(), "/models");
    let cookie = signed
        .cookie(webconsole::SESSION_COOKIE)
        .expect("session cookie");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");
    browser.keep_session(&signed);
    let models = browser.get("/models").await;
    assert_eq!(models.status, StatusCode::OK, "{}", models.body);
    assert!(models.body.contains("Sign out"));

    // The same link again: refused, and it opens no session.
    let again = Browser::new(&app).follow_sign_in_link(&link).await;
    assert_eq!(again.status, StatusCode::UNAUTHORIZED, "{}", again.body);
    assert!(again.body.contains("console.sign_in_code_used"));
    assert!(again.cookie(webconsole::SESSION_COOKIE).is_none());

    // Behind a TLS-terminating proxy the cookie is Secure.
    let secure_link = link_for(&app);
    let proxied = Browser::new(&app);
    let page = proxied
        .send(
            proxied
                .http
                .get(format!("{}{secure_link}", app.base))
                .header("x-forwarded-proto", "https"),
            &[],
        )
        .await;
    let pair = page
        .cookie(webconsole::SIGN_IN_COOKIE)
        .expect("cookie")
        .split(';')
        .next()
        .expect("pair")
        .to_owned();
    let (csrf, code) = (page.hidden("csrf"), page.hidden("code"));
    let done = proxied
        .send(
            proxied
                .http
                .post(format!("{}/sign-in", app.base))
                .header("x-forwarded-proto", "https")
                .form(&[("csrf", csrf.as_str()), ("code", code.as_str())]),
            &[pair],
        )
        .await;
    let cookie = done.cookie(webconsole::SESSION_COOKIE).expect("cookie");
    assert!(cookie.contains("; Secure"), "{cookie}");

    // Signing out ends the session on the server, not only in the browser.
    let csrf = browser.csrf().await;
    let out = browser.post("/sign-out", &[("csrf", &csrf)]).await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert!(
        out.cookie(webconsole::SESSION_COOKIE)
            .is_some_and(|c| c.contains("Max-Age=0"))
    );
    let after = browser.get("/models").await;
    assert_eq!(after.status, StatusCode::SEE_OTHER);
    assert_eq!(after.location(), "/sign-in");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_token_or_a_forged_sign_in_opens_no_session() {
    let app = TestApp::start(Backend::Embedded).await;
    let browser = Browser::new(&app);
    let page = browser.get("/sign-in").await;
    let pair = page
        .cookie(webconsole::SIGN_IN_COOKIE)
        .expect("cookie")
        .split(';')
        .next()
        .expect("pair")
        .to_owned();
    let csrf = page.hidden("csrf");
    let wrong = browser
        .send(
            browser.http.post(format!("{}/sign-in", app.base)).form(&[
                ("csrf", csrf.as_str()),
                ("token", "mr_0123456789abcdef_nope"),
            ]),
            &[pair],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "{}", wrong.body);
    assert!(
        wrong.body.contains("auth."),
        "the API's code: {}",
        wrong.body
    );
    assert!(wrong.cookie(webconsole::SESSION_COOKIE).is_none());
    // Without the sign-in form's cookie (a cross-site post): refused before the token is read.
    let forged = browser
        .post(
            "/sign-in",
            &[("csrf", csrf.as_str()), ("token", app.token.as_str())],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.body);
    assert!(forged.cookie(webconsole::SESSION_COOKIE).is_none());
    // Pages need a session; htmx is told to load the sign-in page whole.
    let models = browser.get("/models").await;
    assert_eq!(models.status, StatusCode::SEE_OTHER);
    assert_eq!(models.location(), "/sign-in");
    let partial = browser
        .post_with("/models/new/check", &[], &[("hx-request", "true")])
        .await;
    assert_eq!(partial.status, StatusCode::UNAUTHORIZED);
    assert_eq!(partial.headers["hx-redirect"], "/sign-in");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_carries_a_strict_policy_and_no_inline_script_or_style() {
    let app = TestApp::start(Backend::Embedded).await;
    let slug = add_local(&app, "Policy", false).await;
    let browser = admin(&app).await;
    for path in [
        "/sign-in".to_owned(),
        "/models".to_owned(),
        format!("/models/{slug}"),
        format!("/models/{slug}/deactivate"),
        format!("/models/{slug}/edit"),
        "/models/new?provider=bedrock".to_owned(),
        "/credentials".to_owned(),
        "/workflows".to_owned(),
        "/picker".to_owned(),
        "/platform/google/gemini-3.1-pro-preview".to_owned(),
        "/tokens".to_owned(),
        "/audit".to_owned(),
    ] {
        let page = browser.get(&path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}: {}", page.body);
        let policy = page
            .headers
            .get("content-security-policy")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert_eq!(policy, webconsole::CONTENT_SECURITY_POLICY, "{path}");
        assert!(policy.contains("script-src 'self'") && !policy.contains("unsafe-inline"));
        assert_eq!(page.headers["x-frame-options"], "DENY");
        assert_eq!(page.headers["cache-control"], "no-store");
        assert!(!page.body.contains("<style"), "{path}");
        assert!(!page.body.contains(" style="), "{path}");
        assert!(
            !has_inline_handler(&page.body),
            "{path}: an inline event handler"
        );
        for (at, _) in page.body.match_indices("<script") {
            assert!(
                page.body[at..].starts_with("<script src=\"/assets/"),
                "{path}: inline script"
            );
        }
    }
    for (asset, kind) in [
        ("/assets/htmx.min.js", "text/javascript"),
        ("/assets/console.js", "text/javascript"),
        ("/assets/console.css", "text/css"),
    ] {
        let page = browser.get(asset).await;
        assert_eq!(page.status, StatusCode::OK, "{asset}");
        assert!(
            page.headers["content-type"]
                .to_str()
                .unwrap_or_default()
                .starts_with(kind)
        );
        assert!(page.body.len() > 500, "{asset} is the real file");
    }
}

/// Whether `html` has an attribute like ` onclick="`.
fn has_inline_handler(html: &str) -> bool {
    html.match_indices(" on").any(|(at, _)| {
        let rest = &html[at + 3..];
        let name_len = rest.bytes().take_while(u8::is_ascii_lowercase).count();
        name_len > 0 && rest[name_len..].starts_with("=")
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn markup_in_a_display_name_renders_as_text() {
    let app = TestApp::start(Backend::Embedded).await;
    let name = "<script>alert(1)</script> <b>Team</b>";
    let added = app.add_model(app.local_draft(name)).await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.body);
    let slug = added.body["model"]["slug"]
        .as_str()
        .expect("slug")
        .to_owned();
    let browser = admin(&app).await;
    for path in ["/models".to_owned(), format!("/models/{slug}")] {
        let page = browser.get(&path).await;
        assert!(
            page.body
                .contains("&lt;script&gt;alert(1)&lt;/script&gt; &lt;b&gt;Team&lt;/b&gt;"),
            "{path}: {}",
            page.body
        );
        assert!(!page.body.contains("<script>alert"), "{path}");
        assert!(!page.body.contains("<b>Team"), "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_without_its_csrf_token_is_refused() {
    let app = TestApp::start(Backend::Embedded).await;
    let slug = add_local(&app, "Guarded", false).await;
    let browser = admin(&app).await;
    let path = format!("/models/{slug}/deactivate");
    for form in [
        vec![("confirm", "true")],
        vec![("confirm", "true"), ("csrf", "0000")],
    ] {
        let refused = browser.post(&path, &form).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
        assert!(refused.body.contains("console.csrf"));
    }
    assert_eq!(app.get_model(&slug).await.body["status"], "active");
    // With it, the same form works.
    let csrf = browser.csrf().await;
    let done = browser
        .post(&path, &[("confirm", "true"), ("csrf", &csrf)])
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(app.get_model(&slug).await.body["status"], "deactivated");
}

/// A form that creates something, sent twice as rendered (a double click, a reload of its
/// answer), is one command: it carries a random submission id as its idempotency key. The
/// change is recorded with the client's address, as the JSON API's are.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_sent_twice_is_one_command_recorded_with_its_address() {
    let app = TestApp::start(Backend::Embedded).await;
    let browser = admin(&app).await;
    let form = browser.get("/tokens").await;
    let (csrf, submission) = (form.hidden("csrf"), form.hidden("submission"));
    let fields = [
        ("csrf", csrf.as_str()),
        ("submission", submission.as_str()),
        ("label", "sent twice"),
        ("role", "member"),
    ];
    let first = browser.post("/tokens", &fields).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    assert!(first.body.contains("Copy it now"), "{}", first.body);
    assert_ne!(
        first.hidden("submission"),
        submission,
        "the page it answers carries a fresh form"
    );
    let again = browser.post("/tokens", &fields).await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.body);
    assert!(!again.body.contains("Copy it now"), "{}", again.body);
    assert!(
        again.body.contains("This form was sent before"),
        "{}",
        again.body
    );

    let tokens = app.call(Method::GET, "/v1/tokens", None).await;
    let issued = tokens.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|t| t["label"] == "sent twice")
        .count();
    assert_eq!(issued, 1, "{}", tokens.body);

    let trail = app.call(Method::GET, "/v1/audit?limit=50", None).await;
    let entry = trail.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|e| e.to_string().contains("token issued: sent twice"))
        .unwrap_or_else(|| panic!("no entry: {}", trail.body));
    assert!(
        entry["client_address"]
            .as_str()
            .is_some_and(|a| a.starts_with("127.0.0.1:")),
        "{entry}"
    );
}

/// The deactivation form is decided on what its page showed: shown no dependents, it
/// confirms none, so one that appears meanwhile is refused with its count; and a model
/// changed meanwhile is refused as a stale edit is. It used to confirm whatever came.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deactivation_form_stands_on_what_its_page_showed() {
    let app = TestApp::start(Backend::Embedded).await;
    let slug = add_local(&app, "Quiet", false).await;
    let browser = admin(&app).await;
    let path = format!("/models/{slug}/deactivate");
    let shown = browser.get(&path).await;
    assert!(
        shown
            .body
            .contains("No active workflow references this model.")
    );
    let fields = |page: &Page| {
        [
            ("csrf".to_owned(), page.hidden("csrf")),
            ("confirm".to_owned(), page.hidden("confirm")),
            ("version".to_owned(), page.hidden("version")),
        ]
    };
    let form = fields(&shown);
    assert_eq!(form[1].1, "false", "no dependents shown, none confirmed");

    // A workflow starts using it while the page is open.
    put_workflow(&app, "wf-late", "Late", true, &slug).await;
    let sent: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let refused = browser.post(&path, &sent).await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.body);
    assert!(
        refused.body.contains("model.has_dependents"),
        "{}",
        refused.body
    );
    assert_eq!(app.get_model(&slug).await.body["status"], "active");

    // Shown again (one dependent, confirmed), then edited elsewhere before it is sent.
    let shown = browser.get(&path).await;
    let form = fields(&shown);
    assert_eq!(form[1].1, "true");
    let edited = app
        .call(
            Method::PATCH,
            &format!("/v1/models/{slug}"),
            Some(json!({"max_tokens": 1000})),
        )
        .await;
    assert_eq!(edited.status, StatusCode::OK, "{}", edited.body);
    let sent: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let stale = browser.post(&path, &sent).await;
    assert_eq!(stale.status, StatusCode::CONFLICT, "{}", stale.body);
    assert!(
        stale.body.contains("model.version_mismatch"),
        "{}",
        stale.body
    );
    assert_eq!(app.get_model(&slug).await.body["status"], "active");

    let shown = browser.get(&path).await;
    let form = fields(&shown);
    let sent: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let done = browser.post(&path, &sent).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(app.get_model(&slug).await.body["status"], "deactivated");
}

/// The picker preview lists one page of models; a custom model past it, asked for by slug,
/// is read on its own and shown with its controls, not "Pick a model".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_picker_shows_a_model_past_its_first_page() {
    let app = TestApp::start(Backend::Embedded).await;
    let draft = app.local_draft("Picked 0000");
    let test_id = app.passing_test_of(&draft).await.expect("a passing test");
    // One receipt covers every add of the same draft; only the names differ.
    let test_app = &app;
    let adds = (0..app::models::MAX_LIMIT).map(|n| {
        let mut body =
            serde_json::to_value(app.local_draft(&format!("Picked {n:04}"))).expect("json");
        body["connection_test_id"] = json!(test_id);
        body["capabilities"] = json!({"tool_use": n + 1 == app::models::MAX_LIMIT});
        async move { test_app.add_model_ungated(body).await }
    });
    for added in futures::future::join_all(adds).await {
        assert_eq!(added.status, StatusCode::CREATED, "{}", added.body);
    }
    let last = format!("picked-{:04}", app::models::MAX_LIMIT - 1);
    let browser = admin(&app).await;
    let picker = browser.get(&format!("/picker?model={last}")).await;
    assert_eq!(picker.status, StatusCode::OK, "{}", picker.body);
    assert!(!picker.body.contains("Pick a model."), "{}", picker.body);
    assert!(
        picker.body.contains(&format!(
            "Step controls for Picked {:04}",
            app::models::MAX_LIMIT - 1
        )),
        "{}",
        picker.body
    );
    assert!(
        picker
            .body
            .contains(&format!("<option value=\"{last}\" selected>")),
        "{}",
        picker.body
    );
}

/// An address the console does not serve, or a form's action opened as a page, answers a
/// console page with the console's policy; the API's paths still answer problem+json.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn addresses_the_console_does_not_serve_answer_console_pages() {
    let app = TestApp::start(Backend::Embedded).await;
    let browser = admin(&app).await;
    for (path, status, code) in [
        (
            "/models/new/test",
            StatusCode::METHOD_NOT_ALLOWED,
            "console.method_not_allowed",
        ),
        ("/no-such-page", StatusCode::NOT_FOUND, "console.not_found"),
    ] {
        let page = browser.get(path).await;
        assert_eq!(page.status, status, "{path}: {}", page.body);
        let header = |name: &str| {
            page.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        assert!(header("content-type").starts_with("text/html"), "{path}");
        assert_eq!(
            header("content-security-policy"),
            webconsole::CONTENT_SECURITY_POLICY,
            "{path}"
        );
        assert_eq!(header("cache-control"), "no-store", "{path}");
        assert!(page.body.contains(code), "{path}: {}", page.body);
    }
    let api = app.call(Method::GET, "/v1/nothing", None).await;
    assert_eq!(api.body["code"], "route.not_found", "{}", api.body);
    let api = app.call(Method::DELETE, "/v1/providers", None).await;
    assert_eq!(api.body["code"], "route.method_not_allowed", "{}", api.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_reads_and_is_refused_admin_actions_by_app() {
    let app = TestApp::start(Backend::Embedded).await;
    let slug = add_local(&app, "Shared", false).await;
    let member = app.issue_token("reader", "member").await;
    let mut browser = Browser::new(&app);
    browser.sign_in_with(&member).await;
    let models = browser.get("/models").await;
    assert_eq!(models.status, StatusCode::OK);
    assert!(models.body.contains("member"));
    assert!(
        !models.body.contains("Add Custom Model"),
        "no admin control"
    );
    let detail = browser.get(&format!("/models/{slug}")).await;
    assert!(!detail.body.contains("deactivate"), "{}", detail.body);
    // By URL and form anyway: `app` refuses with the API's problem.
    let csrf = browser.csrf().await;
    let refused = browser
        .post(
            &format!("/models/{slug}/deactivate"),
            &[("confirm", "true"), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert!(
        refused.body.contains("needs an admin token"),
        "{}",
        refused.body
    );
    let save = browser
        .post(
            "/models",
            &[
                ("csrf", &csrf),
                ("provider", "openai_compatible"),
                ("display_name", "Sneaky"),
            ],
        )
        .await;
    assert_eq!(save.status, StatusCode::FORBIDDEN, "{}", save.body);
    assert_eq!(app.get_model(&slug).await.body["status"], "active");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_models_page_lists_the_platform_models_with_the_default_marked() {
    let app = TestApp::start(Backend::Embedded).await;
    let slug = add_local(&app, "Team Llama", true).await;
    let platform = app
        .call(Method::GET, "/v1/models?kind=platform&limit=50", None)
        .await;
    let models = platform.body["platform"].as_array().expect("platform");
    assert_eq!(models.len(), 10, "{}", platform.body);
    let browser = admin(&app).await;
    let page = browser.get("/models").await;
    assert!(page.body.contains("<h2>Platform</h2>") && page.body.contains("<h2>Custom</h2>"));
    for model in models {
        let id = model["id"].as_str().expect("id");
        assert!(page.body.contains(id), "{id} listed");
    }
    let gemini = models
        .iter()
        .find(|m| m["id"] == "google/gemini-3.1-pro-preview")
        .expect("gemini");
    assert_eq!(gemini["default"], true);
    let marked = format!(
        "{}</a> <span class=\"badge default\">default</span>",
        gemini["display_name"].as_str().expect("name")
    );
    assert!(page.body.contains(&marked), "{}", page.body);
    assert_eq!(page.body.matches("badge default").count(), 1);
    assert!(page.body.contains(&format!("/models/{slug}")));
    assert!(page.body.contains("reasoning") || page.body.contains("tools"));
    // A cost the catalog does not know reads "unknown", never 0.
    let unknown_cost = models
        .iter()
        .any(|m| m["input_cost_per_token"].is_null() || m["max_tokens"].is_null());
    if unknown_cost {
        assert!(page.body.contains("unknown"));
    }
    // A platform model's page: its facts with their sources, and the unknown ones.
    let gemini_page = browser.get("/platform/google/gemini-3.1-pro-preview").await;
    assert_eq!(gemini_page.status, StatusCode::OK, "{}", gemini_page.body);
    assert!(gemini_page.body.contains("platform default"));
    assert!(gemini_page.body.contains("<h2>Facts</h2>"));
    let missing = browser.get("/platform/nobody/nothing").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND, "{}", missing.body);

    // The custom model was added without costs: unknown.
    let custom = browser.get("/models?kind=custom").await;
    assert!(
        custom
            .body
            .contains("<span class=\"unknown\">unknown</span>")
    );
    assert!(!custom.body.contains("<td>0</td>"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_are_paged_searched_and_filtered_on_the_server() {
    let app = TestApp::start(Backend::Embedded).await;
    let alpha = add_local(&app, "Alpha", false).await;
    let bravo = add_local(&app, "Bravo", true).await;
    let charlie = add_local(&app, "Charlie", false).await;

    let first = app
        .call(Method::GET, "/v1/models?kind=custom&limit=2", None)
        .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let slugs = |reply: &Value| -> Vec<String> {
        reply["custom"]
            .as_array()
            .expect("custom")
            .iter()
            .map(|m| m["slug"].as_str().expect("slug").to_owned())
            .collect()
    };
    assert_eq!(slugs(&first.body), [alpha.as_str(), bravo.as_str()]);
    assert_eq!(first.body["matching"], 3);
    let cursor = first.body["next_cursor"]
        .as_str()
        .expect("cursor")
        .to_owned();
    let second = app
        .call(
            Method::GET,
            &format!("/v1/models?kind=custom&limit=2&cursor={cursor}"),
            None,
        )
        .await;
    assert_eq!(slugs(&second.body), [charlie.as_str()]);
    assert!(second.body.get("next_cursor").is_none(), "{}", second.body);

    // Across the groups: platform first, then custom.
    let all = app.call(Method::GET, "/v1/models?limit=11", None).await;
    assert_eq!(all.body["platform"].as_array().expect("p").len(), 10);
    assert_eq!(slugs(&all.body), [alpha.as_str()]);
    assert_eq!(all.body["matching"], 13);

    let searched = app.call(Method::GET, "/v1/models?q=BRAV", None).await;
    assert_eq!(slugs(&searched.body), [bravo.as_str()]);
    assert_eq!(searched.body["platform"].as_array().expect("p").len(), 0);
    let tools = app
        .call(
            Method::GET,
            "/v1/models?kind=custom&capability=tool_use",
            None,
        )
        .await;
    assert_eq!(slugs(&tools.body), [bravo.as_str()]);
    let by_provider = app
        .call(Method::GET, "/v1/models?provider=openai_compatible", None)
        .await;
    assert_eq!(slugs(&by_provider.body).len(), 3);
    assert_eq!(by_provider.body["platform"].as_array().expect("p").len(), 0);
    let refused = app
        .call(Method::GET, "/v1/models?capability=telepathy&limit=0", None)
        .await;
    assert_eq!(
        refused.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        refused.body
    );
    let fields: Vec<&str> = refused.body["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert_eq!(fields, ["limit", "capability"], "{}", refused.body);
    // Without paging parameters, every model as before.
    let everything = app.list_models().await;
    assert_eq!(slugs(&everything.body).len(), 3);
    assert!(everything.body.get("next_cursor").is_none());

    // The page runs the same query: search, filter, and a cursor.
    app.deactivate_model(&charlie).await;
    let browser = admin(&app).await;
    let page = browser.get("/models?q=bravo").await;
    assert!(page.body.contains(&format!("/models/{bravo}")));
    assert!(!page.body.contains(&format!("/models/{alpha}")));
    assert!(page.body.contains("1 matching models"), "{}", page.body);
    let page = browser.get("/models?status=deactivated").await;
    assert!(page.body.contains(&format!("/models/{charlie}")));
    assert!(!page.body.contains(&format!("/models/{bravo}")));
    let page = browser
        .get(&format!("/models?kind=custom&cursor=c%3A{alpha}"))
        .await;
    assert!(!page.body.contains(&format!("/models/{alpha}\"")));
    assert!(page.body.contains(&format!("/models/{bravo}")));
    let bad = browser.get("/models?capability=telepathy").await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.body.contains("capability.unknown"));
    // A refused filter keeps the form, to fix it in place.
    assert!(bad.body.contains("<form class=\"filters\""), "{}", bad.body);
    assert!(
        bad.body.contains("aria-current=\"page\">Models"),
        "the sidebar"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_detail_page_shows_the_model_and_the_deactivation_count() {
    let app = TestApp::start(Backend::Embedded).await;
    let slug = add_local(&app, "Team Writer", true).await;
    put_workflow(&app, "wf-one", "Newsletter", true, &slug).await;
    put_workflow(&app, "wf-two", "Digest", true, &slug).await;
    put_workflow(&app, "wf-old", "Archive", false, &slug).await;
    let browser = admin(&app).await;

    let detail = browser.get(&format!("/models/{slug}")).await;
    assert_eq!(detail.status, StatusCode::OK, "{}", detail.body);
    for expected in [
        "Team Writer",
        "openai_compatible",
        "llama3",
        "32000",
        "Newsletter",
        "Digest",
        "Archive",
        "Tool use",
    ] {
        assert!(
            detail.body.contains(expected),
            "{expected}: {}",
            detail.body
        );
    }

    let confirm = browser.get(&format!("/models/{slug}/deactivate")).await;
    // A modal the script opens (focus kept inside; Escape goes back to the model).
    assert!(
        confirm
            .body
            .contains("<dialog class=\"modal\" role=\"alertdialog\""),
        "{}",
        confirm.body
    );
    assert!(
        confirm
            .body
            .contains(&format!("data-modal data-cancel-href=\"/models/{slug}\""))
    );
    assert!(
        confirm
            .body
            .contains("<strong>2</strong> active workflow(s) still reference this model"),
        "{}",
        confirm.body
    );
    assert!(
        confirm
            .body
            .contains("fail to generate responses until they are repointed")
    );

    // Without the confirmation, app refuses with its problem code and count.
    let csrf = browser.csrf().await;
    let refused = browser
        .post(&format!("/models/{slug}/deactivate"), &[("csrf", &csrf)])
        .await;
    assert_eq!(refused.status, StatusCode::CONFLICT, "{}", refused.body);
    assert!(
        refused.body.contains("model.has_dependents"),
        "{}",
        refused.body
    );
    assert!(refused.body.contains("2 active workflow(s)"));

    let done = browser
        .post(
            &format!("/models/{slug}/deactivate"),
            &[("csrf", &csrf), ("confirm", "true")],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    let deactivated = browser.get(&format!("/models/{slug}")).await;
    assert!(deactivated.body.contains("deactivated"));
    assert!(deactivated.body.contains("Deactivated"), "when and by whom");
    assert!(deactivated.body.contains("Reactivate"));
    let workflows = browser.get("/workflows").await;
    assert!(
        workflows.body.contains("2 broken workflow(s) of 3"),
        "{}",
        workflows.body
    );

    let again = browser
        .post(&format!("/models/{slug}/reactivate"), &[("csrf", &csrf)])
        .await;
    assert_eq!(again.status, StatusCode::SEE_OTHER, "{}", again.body);
    assert_eq!(app.get_model(&slug).await.body["status"], "active");
    let twice = browser
        .post(&format!("/models/{slug}/reactivate"), &[("csrf", &csrf)])
        .await;
    assert_eq!(twice.status, StatusCode::CONFLICT);
    assert!(twice.body.contains("model.active"), "{}", twice.body);

    let missing = browser.get("/models/no-such-model").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.body.contains("model.not_found"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn providers_describe_their_forms() {
    let app = TestApp::start(Backend::Embedded).await;
    let reply = app.call(Method::GET, "/v1/providers", None).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let providers = reply.body["providers"].as_array().expect("providers");
    assert_eq!(providers.len(), 9);
    let find = |name: &str| {
        providers
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{name}"))
            .clone()
    };
    let bedrock = find("bedrock");
    let kinds: Vec<&str> = bedrock["credential_alternatives"]
        .as_array()
        .expect("alternatives")
        .iter()
        .filter_map(|a| a["label"].as_str())
        .collect();
    assert_eq!(kinds, ["IAM key pair", "Bedrock API key"]);
    let pair = &bedrock["credential_alternatives"][0]["fields"];
    assert_eq!(pair[0]["name"], "access_key_id");
    assert_eq!(pair[1]["kind"], "secret");
    assert_eq!(pair[2]["required"], false, "the session token is optional");
    assert_eq!(bedrock["endpoint"]["kind"], "region");
    let hf = find("huggingface");
    assert_eq!(hf["endpoint"]["kind"], "url");
    assert_eq!(hf["endpoint"]["required"], true);
    assert_eq!(find("openai_compatible")["credential_required"], false);
    assert!(find("openai")["endpoint"].is_null());
    assert_eq!(
        find("fireworks")["model_id"]["form"],
        "accounts/<account>/models/<name>"
    );
    // The refusal of a bad id quotes the same form.
    let draft = json!({"provider": "fireworks", "provider_model_id": "deepseek",
        "credential": {"api_key": "fw-key"}});
    let refused = app
        .call(Method::POST, "/v1/connection-tests", Some(draft))
        .await;
    assert!(
        refused
            .body
            .to_string()
            .contains("accounts/<account>/models/<name>"),
        "{}",
        refused.body
    );

    let browser = admin(&app).await;
    let dialog = browser.get("/models/new?provider=bedrock").await;
    for expected in [
        "IAM key pair",
        "Bedrock API key",
        "AWS region",
        "Session token",
    ] {
        assert!(dialog.body.contains(expected), "{expected}");
    }
    // A password manager fills no saved token into a secret field.
    let secret_inputs: Vec<&str> = dialog
        .body
        .split("<input")
        .skip(1)
        .filter_map(|rest| rest.split('>').next())
        .filter(|input| input.contains("type=\"password\""))
        .collect();
    assert!(!secret_inputs.is_empty(), "{}", dialog.body);
    for input in secret_inputs {
        assert!(input.contains("autocomplete=\"new-password\""), "{input}");
    }
    let dialog = browser.get("/models/new?provider=huggingface").await;
    assert!(dialog.body.contains("Inference Endpoint URL"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_add_dialog_saves_only_after_a_passing_test_of_the_draft() {
    let app = TestApp::start(Backend::Embedded).await;
    let browser = admin(&app).await;
    let dialog = browser.get("/models/new?provider=openai_compatible").await;
    assert_eq!(dialog.status, StatusCode::OK, "{}", dialog.body);
    assert!(dialog.body.contains("Base URL"));
    assert!(
        dialog.body.contains(
            "<dialog class=\"modal\" id=\"add-dialog\" data-modal data-cancel-href=\"/models\""
        ),
        "a modal the script opens: {}",
        dialog.body
    );
    assert!(
        dialog
            .body
            .contains("<button class=\"primary\" id=\"save\" type=\"submit\" disabled"),
        "Save starts disabled"
    );
    let csrf = dialog.hidden("csrf");
    let endpoint = app.fake.v1();
    let secret = format!("sk-dialog-{}", uuid::Uuid::new_v4().simple());
    let draft = |model_id: &'static str| {
        vec![
            ("csrf", csrf.clone()),
            ("provider", "openai_compatible".to_owned()),
            ("display_name", "Dialog Model".to_owned()),
            ("provider_model_id", model_id.to_owned()),
            ("endpoint_url", endpoint.clone()),
            ("credential_kind", "api_key".to_owned()),
            ("api_key", secret.clone()),
            ("max_tokens", "4096".to_owned()),
            ("json_mode", "on".to_owned()),
            ("extended_reasoning", "on".to_owned()),
            ("reasoning", "max_tokens".to_owned()),
        ]
    };

    // Save without a test: app's gate refuses, and the dialog says why.
    let fields = draft("llama3");
    let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let ungated = browser.post("/models", &pairs).await;
    assert_eq!(
        ungated.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        ungated.body
    );
    assert!(ungated.body.contains("connection_test.required"));

    // Test Connection (as htmx sends it): the receipt and an enabled Save.
    let tested = browser
        .post_with("/models/new/test", &pairs, &[("hx-request", "true")])
        .await;
    assert_eq!(tested.status, StatusCode::OK, "{}", tested.body);
    assert!(tested.body.contains("Connection works"), "{}", tested.body);
    assert!(!tested.body.contains("<html"), "a fragment");
    assert!(
        tested
            .body
            .contains("id=\"save\" type=\"submit\" hx-swap-oob=\"true\">Save")
    );
    let receipt = tested.hidden("connection_test_id");

    // A receipt for another draft (the model id changed): refused by app.
    let mut other = draft("llama3-other");
    other.push(("connection_test_id", receipt.clone()));
    let other: Vec<(&str, &str)> = other.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mismatch = browser.post("/models", &other).await;
    assert_eq!(mismatch.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(mismatch.body.contains("connection_test.mismatch"));

    let mut saved = draft("llama3");
    saved.push(("connection_test_id", receipt));
    let saved: Vec<(&str, &str)> = saved.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let done = browser.post("/models", &saved).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(done.location(), "/models/dialog-model");
    let model = app.get_model("dialog-model").await;
    assert_eq!(model.body["capabilities"]["json_mode"], true);
    assert_eq!(model.body["max_tokens"], 4096);
    assert_eq!(model.body["capabilities"]["reasoning"], "max_tokens");

    // As the draft changes: the slug it gets and the server's advice, from the dry run.
    let checked = browser
        .post_with(
            "/models/new/check",
            &[
                ("csrf", csrf.as_str()),
                ("provider", "openai_compatible"),
                ("display_name", "Team <GPT>"),
                ("provider_model_id", "llama3"),
                ("endpoint_url", endpoint.as_str()),
                ("max_tokens", "8000"),
                ("tool_use", "on"),
            ],
            &[("hx-request", "true")],
        )
        .await;
    assert_eq!(checked.status, StatusCode::OK, "{}", checked.body);
    assert!(
        checked.body.contains("<code>team-gpt</code>"),
        "{}",
        checked.body
    );
    assert!(
        !checked.body.contains("max_tokens.low_for_tool_use"),
        "the advice has its own place beside max tokens: {}",
        checked.body
    );
    let incomplete = browser
        .post_with(
            "/models/new/check",
            &[("csrf", csrf.as_str()), ("provider", "openai_compatible")],
            &[("hx-request", "true")],
        )
        .await;
    assert!(
        incomplete.body.contains("display_name"),
        "{}",
        incomplete.body
    );

    // The same secret again: the dialog offers the saved credential.
    let mut second = draft("llama3");
    second[2].1 = "Dialog Model Two".to_owned();
    let second: Vec<(&str, &str)> = second.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let offered = browser
        .post_with("/models/new/test", &second, &[("hx-request", "true")])
        .await;
    assert!(
        offered.body.contains("Reuse saved credentials"),
        "{}",
        offered.body
    );

    // A failing test shows its class and hint, and Save stays disabled.
    let mut failing = draft("llama3");
    failing[4].1 = format!(
        "{}/nowhere",
        app.fake.base.replace("127.0.0.1", "localhost")
    );
    let failing: Vec<(&str, &str)> = failing.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let failed = browser
        .post_with("/models/new/test", &failing, &[("hx-request", "true")])
        .await;
    assert_eq!(failed.status, StatusCode::OK);
    assert!(
        failed.body.contains("Test failed") || failed.body.contains("class=\"problem\""),
        "{}",
        failed.body
    );
    assert!(failed.body.contains("disabled hx-swap-oob"));

    // The secret is in no page, and the credential is listed by its preview.
    let credentials = browser.get("/credentials").await;
    assert!(credentials.body.contains("openai_compatible"));
    assert!(credentials.body.contains("dialog-model"));
    for page in [&dialog, &ungated, &tested, &done, &credentials] {
        assert!(!page.body.contains(&secret));
    }
    crate::canary::assert_absent(&app, &secret);
}

/// `modelreg serve`, on its first start, prints a sign-in link beside the bootstrap token;
/// the link opens a session once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_prints_a_sign_in_link_that_works_once() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    struct KillOnDrop(std::process::Child);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    let home = tempfile::tempdir().expect("home");
    let port = crate::support::free_port();
    let mut serve = Command::new(crate::crash::modelreg_binary());
    serve
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .env("MODELREG_LISTEN", format!("127.0.0.1:{port}"))
        .env("MODELREG_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = KillOnDrop(serve.spawn().expect("serve"));
    let stdout = child.0.stdout.take().expect("stdout");
    let printed = tokio::task::spawn_blocking(move || {
        let mut printed = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.expect("line");
            let done = line.starts_with("console: ");
            printed.push(line);
            if done {
                break;
            }
        }
        printed
    });
    let printed = tokio::time::timeout(std::time::Duration::from_secs(60), printed)
        .await
        .expect("serve printed its lines in time")
        .expect("reader");
    let console_line = printed.last().expect("lines");
    let base = format!("http://127.0.0.1:{port}");
    let link = console_line
        .split_whitespace()
        .find(|word| word.starts_with(&format!("{base}/sign-in?code=")))
        .unwrap_or_else(|| panic!("no sign-in link: {printed:?}"));
    let token_line = printed
        .iter()
        .position(|l| l.contains("created org \"default\""))
        .expect("the bootstrap token is printed");
    assert!(token_line < printed.len() - 1);

    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let exchange = || async {
        let page = http.get(link).send().await.expect("get");
        assert_eq!(page.status(), StatusCode::OK);
        let cookie = page
            .headers()
            .get(SET_COOKIE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .expect("cookie")
            .to_owned();
        let body = page.text().await.expect("body");
        let page = Page {
            status: StatusCode::OK,
            headers: HeaderMap::new(),
            body,
        };
        let (csrf, code) = (page.hidden("csrf"), page.hidden("code"));
        http.post(format!("{base}/sign-in"))
            .header("cookie", cookie)
            .form(&[("csrf", csrf.as_str()), ("code", code.as_str())])
            .send()
            .await
            .expect("post")
    };
    let first = exchange().await;
    assert_eq!(first.status(), StatusCode::SEE_OTHER);
    let session = first
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(webconsole::SESSION_COOKIE))
        .and_then(|v| v.split(';').next())
        .expect("session")
        .to_owned();
    let models = http
        .get(format!("{base}/models"))
        .header("cookie", session)
        .send()
        .await
        .expect("models");
    assert_eq!(models.status(), StatusCode::OK);
    let body = models.text().await.expect("body");
    assert!(body.contains("google/gemini-3.1-pro-preview"));
    assert_eq!(exchange().await.status(), StatusCode::UNAUTHORIZED);
    drop(child);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_edit_page_keeps_a_blank_credential_and_reports_a_conflict() {
    let app = TestApp::start(Backend::Embedded).await;
    let secret = format!("sk-edit-{}", uuid::Uuid::new_v4().simple());
    let mut draft = app.local_draft("Editable");
    draft.credential = Some(api::CredentialInput {
        api_key: Some(api::SecretField::new(secret.clone())),
        ..api::CredentialInput::default()
    });
    let added = app.add_model(draft).await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.body);
    let before = added.body["model"].clone();
    let slug = before["slug"].as_str().expect("slug").to_owned();
    let browser = admin(&app).await;

    let form = browser.get(&format!("/models/{slug}/edit")).await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    assert_eq!(form.hidden("version"), before["version"].to_string());
    assert!(form.body.contains("value=\"Editable\""));
    assert!(
        form.body
            .contains("Leave blank to keep the stored credential")
    );
    let csrf = form.hidden("csrf");
    let version = form.hidden("version");
    let endpoint = app.fake.v1();
    let edit = |name: &'static str, version: String| {
        vec![
            ("csrf", csrf.clone()),
            ("version", version),
            ("display_name", name.to_owned()),
            ("provider_model_id", "llama3".to_owned()),
            ("endpoint_url", endpoint.clone()),
            ("credential_kind", "api_key".to_owned()),
            ("api_key", String::new()),
            ("max_tokens", "8000".to_owned()),
            ("tool_use", "on".to_owned()),
            ("input_cost_per_token", "0.000001".to_owned()),
        ]
    };
    let fields = edit("Renamed", version.clone());
    let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let saved = browser.post(&format!("/models/{slug}/edit"), &pairs).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let after = app.get_model(&slug).await.body;
    assert_eq!(after["display_name"], "Renamed");
    assert_eq!(after["max_tokens"], 8000);
    assert_eq!(after["capabilities"]["tool_use"], true);
    assert_eq!(after["input_cost_per_token"], "0.000001");
    assert_eq!(
        after["credential"], before["credential"],
        "a blank credential keeps the stored one"
    );

    // Another edit made against the version before: a conflict, with the current values.
    let stale = edit("Stale", version);
    let stale: Vec<(&str, &str)> = stale.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let conflict = browser.post(&format!("/models/{slug}/edit"), &stale).await;
    assert_eq!(conflict.status, StatusCode::CONFLICT, "{}", conflict.body);
    assert!(conflict.body.contains("model.version_mismatch"));
    assert!(conflict.body.contains("Current values (version"));
    assert!(conflict.body.contains("Renamed"));
    assert_eq!(app.get_model(&slug).await.body["display_name"], "Renamed");
    // A version that is none is refused, not dropped (which would skip the check).
    let unversioned = edit("Unversioned", "not-a-version".to_owned());
    let unversioned: Vec<(&str, &str)> =
        unversioned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let refused = browser
        .post(&format!("/models/{slug}/edit"), &unversioned)
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.body);
    assert!(
        refused.body.contains("console.version_invalid"),
        "{}",
        refused.body
    );
    assert_eq!(app.get_model(&slug).await.body["display_name"], "Renamed");

    // Test Connection from the detail page, with the stored credential.
    let detail = browser.get(&format!("/models/{slug}")).await;
    assert!(detail.body.contains("Edit") && detail.body.contains("Test Connection"));
    let tested = browser
        .post_with(
            &format!("/models/{slug}/test"),
            &[("csrf", &csrf)],
            &[("hx-request", "true")],
        )
        .await;
    assert_eq!(tested.status, StatusCode::OK, "{}", tested.body);
    assert!(tested.body.contains("Connection works"), "{}", tested.body);
    for page in [&form, &saved, &conflict, &detail, &tested] {
        assert!(!page.body.contains(&secret));
    }
}

/// Max tokens carries the guidance and the server's warnings for the draft as it stands
/// (asked again by htmx as the value or a switch changes), on the Add dialog and the Edit
/// page; extended reasoning reveals its parameter shape.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_tokens_shows_guidance_and_the_servers_advice_as_the_draft_changes() {
    let app = TestApp::start(Backend::Embedded).await;
    let browser = admin(&app).await;
    let dialog = browser.get("/models/new?provider=anthropic").await;
    assert_eq!(dialog.status, StatusCode::OK, "{}", dialog.body);
    for expected in [
        "at least 16,000 output tokens, 32,000 for multi-file tool use",
        "the provider's documented ceiling",
        "hx-post=\"/models/advice\"",
        "id=\"max-tokens-advice\"",
        "aria-describedby=\"max_tokens-help max-tokens-advice\"",
    ] {
        assert!(
            dialog.body.contains(expected),
            "{expected}: {}",
            dialog.body
        );
    }
    // The reasoning switch and the shape it reveals (a stylesheet rule, no script).
    assert!(
        dialog
            .body
            .contains("id=\"extended_reasoning\" type=\"checkbox\"")
    );
    assert!(dialog.body.contains("class=\"reasoning-shape\""));
    let css = browser.get("/assets/console.css").await;
    assert!(
        css.body.contains(
            ":not(:has(#extended_reasoning:checked)) .reasoning-shape { display: none; }"
        )
    );

    let csrf = dialog.hidden("csrf");
    let client = &browser;
    let advise = |fields: Vec<(&'static str, &'static str)>| {
        let mut form = vec![("csrf", csrf.as_str()), ("provider", "anthropic")];
        form.extend(fields);
        async move {
            client
                .post_with("/models/advice", &form, &[("hx-request", "true")])
                .await
        }
    };
    let low = advise(vec![("max_tokens", "8000"), ("tool_use", "on")]).await;
    assert_eq!(low.status, StatusCode::OK, "{}", low.body);
    assert!(!low.body.contains("<html"), "a fragment");
    assert!(
        low.body.contains("max_tokens.low_for_tool_use"),
        "{}",
        low.body
    );
    let enough = advise(vec![("max_tokens", "16000"), ("tool_use", "on")]).await;
    assert!(
        !enough.body.contains("max_tokens.low_for_tool_use"),
        "{}",
        enough.body
    );
    // A reasoning model below its documented ceiling is told the ceiling, only when the
    // switch is on (a shape chosen while it is off is not reasoning).
    let reasoning = advise(vec![
        ("provider_model_id", "claude-sonnet-4-5"),
        ("max_tokens", "16000"),
        ("extended_reasoning", "on"),
        ("reasoning", "effort"),
    ])
    .await;
    assert!(
        reasoning
            .body
            .contains("max_tokens.below_reasoning_ceiling")
            && reasoning.body.contains("64000"),
        "{}",
        reasoning.body
    );
    let off = advise(vec![
        ("provider_model_id", "claude-sonnet-4-5"),
        ("max_tokens", "16000"),
        ("reasoning", "effort"),
    ])
    .await;
    assert!(
        !off.body.contains("below_reasoning_ceiling"),
        "{}",
        off.body
    );
    let above = advise(vec![
        ("provider_model_id", "claude-sonnet-4-5"),
        ("max_tokens", "70000"),
    ])
    .await;
    assert!(
        above.body.contains("max_tokens.above_documented_ceiling"),
        "{}",
        above.body
    );
    // Not a number: why, from app's parse; nothing while the field is empty.
    let bad = advise(vec![("max_tokens", "lots")]).await;
    assert!(bad.body.contains("max_tokens.invalid"), "{}", bad.body);
    let empty = advise(vec![]).await;
    assert!(!empty.body.contains("class=\"warning\""), "{}", empty.body);
    // Without the CSRF token: refused.
    let forged = browser
        .post_with(
            "/models/advice",
            &[("max_tokens", "8000")],
            &[("hx-request", "true")],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);

    // The Edit page: the same field, the model's warnings shown as it loads, and its
    // reasoning shape chosen.
    let mut draft = app.local_draft("Tool Writer");
    draft.max_tokens = Some(8000.into());
    draft.capabilities = Some(api::CapabilitiesInput {
        tool_use: Some(true),
        reasoning: Some(Some("max_tokens".into())),
        ..api::CapabilitiesInput::default()
    });
    let added = app.add_model(draft).await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.body);
    let edit = browser.get("/models/tool-writer/edit").await;
    assert_eq!(edit.status, StatusCode::OK, "{}", edit.body);
    assert!(edit.body.contains("32,000 for multi-file tool use"));
    assert!(
        edit.body.contains("max_tokens.low_for_tool_use"),
        "{}",
        edit.body
    );
    assert!(edit.body.contains(
        "id=\"extended_reasoning\" type=\"checkbox\" name=\"extended_reasoning\" checked"
    ));
    assert!(edit.body.contains("value=\"max_tokens\" checked"));
    assert!(
        edit.body
            .contains("name=\"provider\" value=\"openai_compatible\"")
    );
}

/// The Edit page of a Bedrock model offers both credential alternatives as a choice; a blank
/// secret keeps the stored credential, a filled alternative replaces it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bedrock_edit_page_offers_both_credential_alternatives() {
    let app = TestApp::start(Backend::Embedded).await;
    let secret_key = format!("bedrock-secret-{}", uuid::Uuid::new_v4().simple());
    let draft = api::AddModel {
        display_name: Some("Nova".into()),
        provider: Some("bedrock".into()),
        provider_model_id: Some("amazon.nova-pro-v1:0".into()),
        region: Some("eu-west-3".into()),
        credential: Some(api::CredentialInput {
            access_key_id: Some("AKIAEXAMPLEKEY000001".into()),
            secret_access_key: Some(api::SecretField::new(secret_key.clone())),
            ..api::CredentialInput::default()
        }),
        max_tokens: Some(4096.into()),
        ..api::AddModel::default()
    };
    let added = app.add_model(draft).await;
    assert_eq!(
        added.status,
        StatusCode::CREATED,
        "a Bedrock test against the fake: {}",
        added.body
    );
    let before = added.body["model"].clone();
    let browser = admin(&app).await;
    let form = browser.get("/models/nova/edit").await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    for expected in [
        "type=\"radio\" name=\"credential_kind\" value=\"aws_access_key\" checked",
        "type=\"radio\" name=\"credential_kind\" value=\"bedrock_api_key\"",
        "id=\"access_key_id\"",
        "id=\"secret_access_key\"",
        "id=\"bedrock_api_key\"",
        "data-alternatives",
        "Leave blank to keep the stored credential",
    ] {
        assert!(form.body.contains(expected), "{expected}: {}", form.body);
    }
    let csrf = form.hidden("csrf");
    let edit = |kind: &'static str, api_key: String, version: String| {
        vec![
            ("csrf", csrf.clone()),
            ("version", version),
            ("display_name", "Nova".to_owned()),
            ("provider_model_id", "amazon.nova-pro-v1:0".to_owned()),
            ("region", "eu-west-3".to_owned()),
            ("credential_kind", kind.to_owned()),
            ("access_key_id", String::new()),
            ("secret_access_key", String::new()),
            ("bedrock_api_key", api_key),
            ("max_tokens", "4096".to_owned()),
        ]
    };
    // The other alternative chosen but left blank: the stored key pair stays.
    let kept = edit("bedrock_api_key", String::new(), form.hidden("version"));
    let pairs: Vec<(&str, &str)> = kept.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let saved = browser.post("/models/nova/edit", &pairs).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let after = app.get_model("nova").await.body;
    assert_eq!(
        after["credential"], before["credential"],
        "a blank secret keeps the stored one"
    );
    // A Bedrock API key entered: it replaces the key pair.
    let api_key = format!("ABSK{}", uuid::Uuid::new_v4().simple());
    let replaced = edit(
        "bedrock_api_key",
        api_key.clone(),
        after["version"].to_string(),
    );
    let pairs: Vec<(&str, &str)> = replaced.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let saved = browser.post("/models/nova/edit", &pairs).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let replaced = app.get_model("nova").await.body;
    assert_ne!(replaced["credential"]["id"], before["credential"]["id"]);
    let preview = replaced["credential"]["preview"]
        .as_str()
        .unwrap_or_default();
    assert!(
        preview.ends_with(&api_key[api_key.len() - 4..]),
        "the new key's preview: {preview}"
    );
    for page in [&form, &saved] {
        assert!(!page.body.contains(&secret_key) && !page.body.contains(&api_key));
    }
    crate::canary::assert_absent(&app, &secret_key);
    crate::canary::assert_absent(&app, &api_key);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_model_picker_preview_follows_each_models_controls() {
    let app = TestApp::start(Backend::Embedded).await;
    let mut capable = app.local_draft("Capable");
    capable.max_tokens = Some(32000.into());
    capable.capabilities = Some(api::CapabilitiesInput {
        tool_use: Some(true),
        reasoning: Some(Some("max_tokens".into())),
        ..api::CapabilitiesInput::default()
    });
    let added = app.add_model(capable).await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.body);
    let plain = add_local(&app, "Plain", false).await;
    let browser = admin(&app).await;

    let default = browser.get("/picker").await;
    assert_eq!(default.status, StatusCode::OK, "{}", default.body);
    assert!(default.body.contains("<optgroup label=\"Platform\">"));
    assert!(default.body.contains("<optgroup label=\"Custom\">"));
    assert!(
        default
            .body
            .contains("<option value=\"google/gemini-3.1-pro-preview\" selected>"),
        "the default is picked first: {}",
        default.body
    );

    let page = browser.get("/picker?model=capable").await;
    assert!(page.body.contains("Step controls for Capable"));
    assert!(
        page.body
            .contains("<input type=\"checkbox\" id=\"tools\" name=\"tools\">"),
        "tool calling enabled: {}",
        page.body
    );
    assert!(page.body.contains("id=\"reasoning_budget\""));
    assert!(!page.body.contains("id=\"reasoning_effort\""));
    assert!(
        page.body
            .contains("id=\"json_output\" name=\"json_output\" disabled")
    );

    let page = browser.get(&format!("/picker?model={plain}")).await;
    assert!(page.body.contains("id=\"tools\" name=\"tools\" disabled"));
    assert!(
        page.body
            .contains("Disabled: the model does not have Tool use.")
    );
    assert!(page.body.contains("id=\"no-reasoning\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_detail_page_shows_history_and_what_workflows_miss() {
    let app = TestApp::start(Backend::Embedded).await;
    let slug = add_local(&app, "Blind", false).await;
    let reply = app
        .call(
            Method::PUT,
            "/v1/workflows/wf-eyes",
            Some(json!({"name": "Photo captions", "active": true,
                "steps": [{"model": slug, "features": {"vision_input": true}}]})),
        )
        .await;
    assert!(reply.status.is_success(), "{}", reply.body);
    let edited = app
        .edit_model(&slug, json!({"display_name": "Blind Renamed"}), None)
        .await;
    assert_eq!(edited.status, StatusCode::OK, "{}", edited.body);
    let browser = admin(&app).await;
    let detail = browser.get(&format!("/models/{slug}")).await;
    assert!(
        detail.body.contains("Features workflows use that it lacks"),
        "{}",
        detail.body
    );
    assert!(detail.body.contains("Photo captions"));
    assert!(detail.body.contains("<h2>History</h2>"));
    let entries = detail.body.matches("position ").count();
    assert!(entries >= 2, "the add and the edit: {}", detail.body);
    assert!(
        detail.body.contains("<code>display_name</code>"),
        "{}",
        detail.body
    );
}

/// The token an issue answer shows, from its read-only field.
fn shown_token(page: &Page) -> String {
    let marker = "id=\"issued-token\" type=\"text\" readonly value=\"";
    let start = page
        .body
        .find(marker)
        .unwrap_or_else(|| panic!("no issued token in {}", page.body))
        + marker.len();
    let end = page.body[start..].find('"').expect("closing quote") + start;
    page.body[start..end].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_is_shown_once_works_for_the_api_and_is_refused_once_revoked() {
    let app = TestApp::start(Backend::Embedded).await;
    let browser = admin(&app).await;
    let tokens = browser.get("/tokens").await;
    assert_eq!(tokens.status, StatusCode::OK, "{}", tokens.body);
    assert!(
        tokens
            .body
            .contains("href=\"/tokens\" aria-current=\"page\"")
    );
    assert!(tokens.body.contains("href=\"/audit\""), "the sidebar");
    // Without the CSRF token nothing is issued.
    let forged = browser
        .post("/tokens", &[("label", "forged"), ("role", "admin")])
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.body);
    assert!(forged.body.contains("console.csrf"));
    let csrf = browser.csrf().await;
    let label = "<b>CI</b> runner";
    let issued = browser
        .post(
            "/tokens",
            &[
                ("csrf", &csrf),
                ("label", label),
                ("role", "member"),
                ("expires_at", "2099-12-31T18:00"),
            ],
        )
        .await;
    assert_eq!(issued.status, StatusCode::CREATED, "{}", issued.body);
    assert_eq!(issued.headers["cache-control"], "no-store");
    assert!(issued.body.contains("shown this once"), "the copy hint");
    assert!(
        issued
            .body
            .contains("id=\"copy-token\" type=\"button\" data-copy=\"issued-token\""),
        "the Copy button names the token's field"
    );
    let token = shown_token(&issued);
    assert!(token.len() > 20, "{token}");
    // It works for the API, with the role and expiry the form gave.
    let models = app
        .call_with(Method::GET, "/v1/models", None, &token, &[])
        .await;
    assert_eq!(models.status, StatusCode::OK, "{}", models.body);
    let listed = app.call(Method::GET, "/v1/tokens", None).await;
    let row = listed.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|t| t["label"] == label)
        .expect("the issued token")
        .clone();
    assert_eq!(row["role"], "member");
    assert_eq!(row["expires_at"], "2099-12-31T18:00:00Z");
    let id = row["token_id"].as_str().expect("id").to_owned();
    // Never shown again; its label is text.
    let again = browser.get("/tokens").await;
    assert!(!again.body.contains(&token), "shown once");
    assert!(
        again.body.contains("&lt;b&gt;CI&lt;/b&gt; runner"),
        "{}",
        again.body
    );
    assert!(!again.body.contains("<b>CI"));
    assert!(again.body.contains(&format!("/tokens/{id}/revoke")));

    // The member it names reads the console but not the tokens, by link, URL or form.
    let mut member = Browser::new(&app);
    member.sign_in_with(&token).await;
    let models_page = member.get("/models").await;
    assert!(
        !models_page.body.contains("href=\"/tokens\""),
        "no Tokens entry"
    );
    assert!(
        !models_page.body.contains("href=\"/audit\""),
        "no Audit entry"
    );
    let refused = member.get("/tokens").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert!(
        refused.body.contains("needs an admin token"),
        "{}",
        refused.body
    );
    let member_csrf = member.csrf().await;
    let issue = member
        .post(
            "/tokens",
            &[("csrf", &member_csrf), ("label", "mine"), ("role", "admin")],
        )
        .await;
    assert_eq!(issue.status, StatusCode::FORBIDDEN, "{}", issue.body);
    assert!(!issue.body.contains("issued-token"));
    let revoke = member
        .post(&format!("/tokens/{id}/revoke"), &[("csrf", &member_csrf)])
        .await;
    assert_eq!(revoke.status, StatusCode::FORBIDDEN, "{}", revoke.body);
    let before = app.call(Method::GET, "/v1/tokens", None).await;
    assert_eq!(before.body["items"].as_array().expect("items").len(), 2);

    // Revoke: a confirmation, then the API refuses the token and its session ends.
    let confirm = browser.get(&format!("/tokens/{id}/revoke")).await;
    assert_eq!(confirm.status, StatusCode::OK, "{}", confirm.body);
    assert!(
        confirm
            .body
            .contains("<dialog class=\"modal\" role=\"alertdialog\"")
    );
    assert!(confirm.body.contains("&lt;b&gt;CI&lt;/b&gt; runner"));
    let unconfirmed = browser.post(&format!("/tokens/{id}/revoke"), &[]).await;
    assert_eq!(unconfirmed.status, StatusCode::FORBIDDEN, "no CSRF token");
    let done = browser
        .post(&format!("/tokens/{id}/revoke"), &[("csrf", &csrf)])
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);
    assert_eq!(done.location(), "/tokens");
    let after = app
        .call_with(Method::GET, "/v1/models", None, &token, &[])
        .await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED, "{}", after.body);
    let ended = member.get("/models").await;
    assert_eq!(ended.status, StatusCode::SEE_OTHER);
    assert_eq!(ended.location(), "/sign-in");
    let listed = browser.get("/tokens").await;
    assert!(listed.body.contains("revoked"), "{}", listed.body);
    // A bad expiry is the API's refusal, on the page with its form.
    let late = browser
        .post(
            "/tokens",
            &[
                ("csrf", &csrf),
                ("label", "late"),
                ("role", "member"),
                ("expires_at", "2001-01-01T00:00"),
            ],
        )
        .await;
    assert_eq!(
        late.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        late.body
    );
    assert!(late.body.contains("class=\"problem\""), "{}", late.body);
    assert!(late.body.contains("Issue token"));
    assert!(!late.body.contains("issued-token"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_page_filters_pages_and_links_models() {
    let app = TestApp::start(Backend::Embedded).await;
    let older = add_local(&app, "Older", false).await;
    let newer = add_local(&app, "Newer", true).await;
    let browser = admin(&app).await;
    let trail = browser.get("/audit").await;
    assert_eq!(trail.status, StatusCode::OK, "{}", trail.body);
    assert!(trail.body.contains("href=\"/audit\" aria-current=\"page\""));
    for slug in [&older, &newer] {
        assert!(
            trail.body.contains(&format!("href=\"/models/{slug}\"")),
            "{slug}: {}",
            trail.body
        );
    }
    assert!(trail.body.contains("<code>display_name</code>"), "changes");
    assert!(trail.body.contains("Newer"));
    // The kinds offered are the kinds entries have.
    assert!(
        trail.body.contains("<option value=\"usage\">"),
        "{}",
        trail.body
    );
    assert!(
        !trail.body.contains("<option value=\"token\">"),
        "{}",
        trail.body
    );
    // Newest first.
    let at = |slug: &str| trail.body.find(&format!("/models/{slug}")).expect("entry");
    assert!(at(&newer) < at(&older), "newest first");

    // A filter, one entry a page: the newer model's add, then the older one's.
    let first = browser.get("/audit?action=model.added&limit=1").await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert!(
        first.body.contains("value=\"model.added\""),
        "the form keeps it"
    );
    assert!(first.body.contains(&format!("/models/{newer}")));
    assert!(!first.body.contains(&format!("/models/{older}")));
    let marker = "rel=\"next\"";
    let link_end = first.body.find(marker).expect("a next page");
    let href_start = first.body[..link_end].rfind("href=\"").expect("href") + 6;
    let href = first.body[href_start..link_end]
        .trim_end()
        .trim_end_matches('"')
        .replace("&amp;", "&");
    assert!(href.contains("cursor="), "{href}");
    let second = browser.get(&href).await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.body);
    assert!(
        second.body.contains(&format!("/models/{older}")),
        "{}",
        second.body
    );
    assert!(!second.body.contains(&format!("/models/{newer}")));

    // The page size is a choice, kept by the form; 25, 50 (the default) and 100 are offered.
    assert!(
        trail
            .body
            .contains("<option value=\"50\" selected>50</option>"),
        "{}",
        trail.body
    );
    assert!(trail.body.contains("<option value=\"100\">100</option>"));
    assert!(
        first
            .body
            .contains("<option value=\"1\" selected>1</option>")
    );
    let hundred = browser.get("/audit?action=model.added&limit=100").await;
    assert!(
        hundred
            .body
            .contains("<option value=\"100\" selected>100</option>")
    );
    assert!(hundred.body.contains(&format!("/models/{older}")));
    assert!(hundred.body.contains(&format!("/models/{newer}")));
    assert!(
        !hundred.body.contains("rel=\"next\""),
        "two entries fit one page"
    );

    // A filter the API refuses keeps the form, with the API's problem.
    let bad = browser.get("/audit?since=yesterday").await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    assert!(bad.body.contains("class=\"problem\""));
    assert!(bad.body.contains("value=\"yesterday\""));
    // A page size that is no number is refused, not dropped for the whole trail.
    let bad_limit = browser.get("/audit?action=model.added&limit=abc").await;
    assert_eq!(
        bad_limit.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        bad_limit.body
    );
    assert!(
        bad_limit.body.contains("limit.invalid"),
        "{}",
        bad_limit.body
    );
    assert!(
        !bad_limit.body.contains("The org's audit trail"),
        "{}",
        bad_limit.body
    );

    // Members are refused by app.
    let member_token = app.issue_token("reader", "member").await;
    let mut member = Browser::new(&app);
    member.sign_in_with(&member_token).await;
    let refused = member.get("/audit").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    assert!(refused.body.contains("needs an admin token"));
}

/// The loop closed in the console: usage with truncations shows on the model's detail page
/// (counts, rounds, tool calls, workflows, the one that keeps truncating marked) with the
/// recommendation and one button; the button's form applies the edit at the page's version
/// (max tokens 32000, the recommendation gone), and the same form at a stale version is a
/// conflict.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_detail_page_applies_the_truncation_recommendation_with_one_button() {
    use app::Clock as _;
    let app = TestApp::start(Backend::Embedded).await;
    let mut draft = app.local_draft("Looping Agent");
    draft.max_tokens = Some(8000.into());
    draft.capabilities = Some(api::CapabilitiesInput {
        tool_use: Some(true),
        ..api::CapabilitiesInput::default()
    });
    let added = app.add_model(draft).await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.body);
    let slug = added.body["model"]["slug"]
        .as_str()
        .expect("slug")
        .to_owned();
    put_workflow(&app, "wf-loop", "Loop builder", true, &slug).await;
    put_workflow(&app, "wf-once", "Once", true, &slug).await;
    let now = app.clock.now_ms();
    let at = |ago_ms: i64| {
        time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(now - ago_ms) * 1_000_000)
            .expect("time")
            .format(&time::format_description::well_known::Rfc3339)
            .expect("format")
    };
    let record = |id: &str, workflow: &str, round: i64, tools: &[&str], ago_ms: i64| {
        json!({"id": id, "model": slug, "workflow": workflow, "input_tokens": 9000,
            "output_tokens": 8000, "finish_reason": "length", "truncated_tool_calls": tools,
            "round": round, "called_at": at(ago_ms)})
    };
    const HOUR: i64 = 3_600_000;
    let records = vec![
        record("c-1", "wf-loop", 4, &["write_file"], HOUR),
        record(
            "c-2",
            "wf-loop",
            4,
            &["write_file", "apply_patch"],
            2 * HOUR,
        ),
        record("c-3", "wf-loop", 6, &[], 30 * HOUR),
        record("c-4", "wf-once", 1, &["apply_patch"], 50 * HOUR),
    ];
    let reported = app
        .call(Method::POST, "/v1/usage", Some(json!({"records": records})))
        .await;
    assert_eq!(reported.status, StatusCode::OK, "{}", reported.body);

    let browser = admin(&app).await;
    let detail = browser.get(&format!("/models/{slug}")).await;
    assert_eq!(detail.status, StatusCode::OK, "{}", detail.body);
    let body = &detail.body;
    assert!(body.contains("<h2>Truncations</h2>"), "{body}");
    assert!(
        body.contains("<strong>2</strong> truncated call(s) in the last 24 hours, <strong>4</strong> in the last 7 days."),
        "{body}"
    );
    assert!(
        body.contains("round 1 (1), round 4 (2), round 6 (1)"),
        "{body}"
    );
    assert!(
        body.contains("<code>apply_patch</code> (2), <code>write_file</code> (2)"),
        "{body}"
    );
    // The workflows list marks the one whose calls keep truncating, and only that one
    assert!(
        body.contains("Loop builder <span class=\"badge\">active</span> <span class=\"badge danger\">keeps truncating</span>"),
        "{body}"
    );
    assert!(
        body.contains("Once <span class=\"badge\">active</span> <span class=\"small\">1 truncated call(s) in 7 days</span>"),
        "{body}"
    );
    assert!(
        body.contains("raise max tokens to 32,000 for multi-file tool use"),
        "{body}"
    );
    assert!(body.contains("Set max tokens to 32000"), "{body}");
    let version = detail.hidden("version");
    assert_eq!(version, added.body["model"]["version"].to_string());
    assert_eq!(detail.hidden("max_tokens"), "32000");
    let csrf = detail.hidden("csrf");

    // One button: the same edit as the Edit page, at the page's version
    let form = [
        ("csrf", csrf.as_str()),
        ("version", version.as_str()),
        ("max_tokens", "32000"),
    ];
    let applied = browser
        .post(&format!("/models/{slug}/recommendation"), &form)
        .await;
    assert_eq!(applied.status, StatusCode::SEE_OTHER, "{}", applied.body);
    let model = app.get_model(&slug).await.body;
    assert_eq!(model["max_tokens"], 32000);
    assert_eq!(
        model["capabilities"]["tool_use"], true,
        "nothing else changed"
    );
    assert!(model.get("recommendation").is_none(), "{model}");
    let after = browser.get(&format!("/models/{slug}")).await;
    assert!(after.body.contains("<h2>Truncations</h2>"));
    assert!(!after.body.contains("Recommendation:"), "{}", after.body);
    assert!(!after.body.contains("Set max tokens to"), "{}", after.body);

    // The same form again, at the version it was loaded at: a conflict, nothing applied
    let stale = browser
        .post(&format!("/models/{slug}/recommendation"), &form)
        .await;
    assert_eq!(stale.status, StatusCode::CONFLICT, "{}", stale.body);
    // And without its CSRF token the form is refused
    let forged = browser
        .post(
            &format!("/models/{slug}/recommendation"),
            &[("version", version.as_str()), ("max_tokens", "32000")],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.body);
}
