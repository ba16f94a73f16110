//! The console in a real browser: Debian's Chromium, headless, driven through chromedriver
//! (WebDriver, fantoccini) against a registry on port 0. Sign in with the one-time link, see
//! the platform models with the default marked, add custom models for three providers
//! (OpenAI-compatible, Anthropic, Bedrock with an IAM key pair) through the modal dialog with
//! Save disabled until Test Connection passed (and disabled again when the model ID
//! changes), the max tokens advice and the reasoning shape following the switches, keyboard
//! focus kept inside the dialogs, a suggested price accepted, the Bedrock model edited with
//! its alternatives offered and blank secrets keeping the stored key pair, deactivate a
//! model two active workflows reference and see the count, reactivate, copy an issued token;
//! no error in the browser's console on any page. A failed step leaves a screenshot under
//! `target/browser-screenshots/`.
//!
//! Chromium and chromedriver are installed by `just deps`; without them the test fails and
//! says so (it never skips).

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::key::Key;
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Backend, TestApp, free_port};

struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn chromedriver() -> String {
    for candidate in ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"] {
        if std::path::Path::new(candidate).exists() {
            return candidate.to_owned();
        }
    }
    panic!(
        "chromedriver is missing: run `just deps` (it installs Debian's chromium and chromium-driver)"
    );
}

async fn start_driver() -> (Driver, String) {
    let port = free_port();
    let child = Command::new(chromedriver())
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let driver = Driver(child);
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(reply) = reqwest::get(format!("{url}/status")).await
            && reply.status().is_success()
        {
            break;
        }
        assert!(Instant::now() < deadline, "chromedriver did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (driver, url)
}

async fn browser(webdriver: &str) -> Client {
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu",
                "--disable-background-networking", "--disable-dev-shm-usage",
                "--window-size=1280,900",
            ]
        }),
    );
    capabilities.insert("goog:loggingPrefs".into(), json!({ "browser": "ALL" }));
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(capabilities)
        .connect(webdriver)
        .await
        .expect("a Chromium session")
}

/// chromedriver's log of the browser's console since the last read.
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/se/log",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (axum::http::Method, Option<String>) {
        (
            axum::http::Method::POST,
            Some(json!({ "type": "browser" }).to_string()),
        )
    }
}

/// A Chrome DevTools command through chromedriver (to grant the clipboard permission a
/// user would grant).
#[derive(Debug)]
struct Cdp {
    cmd: &'static str,
    params: Value,
}

impl WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/goog/cdp/execute",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (axum::http::Method, Option<String>) {
        (
            axum::http::Method::POST,
            Some(json!({ "cmd": self.cmd, "params": self.params }).to_string()),
        )
    }
}

/// The steps, each named; a failure is reported with the step and a screenshot.
struct Run<'a> {
    client: &'a Client,
    base: String,
    step: &'static str,
}

type Step = Result<(), String>;

impl Run<'_> {
    async fn go(&mut self, step: &'static str, path: &str) -> Step {
        self.step = step;
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .map_err(|e| e.to_string())
    }

    async fn text(&self) -> Result<String, String> {
        let body = self
            .client
            .find(Locator::Css("body"))
            .await
            .map_err(|e| e.to_string())?;
        body.text().await.map_err(|e| e.to_string())
    }

    /// Clicks the element; one replaced by a swap between finding and clicking is found again.
    async fn click(&self, css: &str) -> Step {
        let mut attempts = 0;
        loop {
            attempts += 1;
            let clicked = self
                .client
                .wait()
                .at_most(Duration::from_secs(10))
                .for_element(Locator::Css(css))
                .await
                .map_err(|e| format!("{css}: {e}"))?
                .click()
                .await;
            match clicked {
                Ok(()) => return Ok(()),
                Err(error) if attempts < 3 && error.to_string().contains("stale") => {}
                Err(error) => return Err(format!("click {css}: {error}")),
            }
        }
    }

    async fn fill(&self, css: &str, value: &str) -> Step {
        let input = self
            .client
            .find(Locator::Css(css))
            .await
            .map_err(|e| format!("{css}: {e}"))?;
        input.clear().await.map_err(|e| e.to_string())?;
        input.send_keys(value).await.map_err(|e| e.to_string())
    }

    async fn shown(&self, css: &str) -> Result<bool, String> {
        self.client
            .find(Locator::Css(css))
            .await
            .map_err(|e| format!("{css}: {e}"))?
            .is_displayed()
            .await
            .map_err(|e| e.to_string())
    }

    async fn save_disabled(&self) -> Result<bool, String> {
        let save = self
            .client
            .find(Locator::Id("save"))
            .await
            .map_err(|e| e.to_string())?;
        let enabled = save.is_enabled().await.map_err(|e| e.to_string())?;
        Ok(!enabled)
    }

    /// Waits until the page's text contains `needle`.
    async fn wait_text(&self, needle: &str) -> Step {
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            // Mid-navigation the body can be gone or stale: that is "not yet".
            let text = self.text().await.unwrap_or_default();
            if text.contains(needle) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("no {needle:?} on the page: {text}"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the browser is at `path`.
    async fn wait_path(&self, path: &str) -> Step {
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            let now = self.path().await.unwrap_or_default();
            if now == path {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("at {now}, not {path}"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn path(&self) -> Result<String, String> {
        let url = self.client.current_url().await.map_err(|e| e.to_string())?;
        Ok(url.path().to_owned())
    }

    /// The browser console's entries at level SEVERE since the last call.
    async fn console_errors(&self) -> Result<Vec<String>, String> {
        let log = self
            .client
            .issue_cmd(BrowserLog)
            .await
            .map_err(|e| e.to_string())?;
        Ok(log
            .as_array()
            .map(|entries| {
                entries
                    .iter()
                    .filter(|e| e["level"] == "SEVERE")
                    .map(|e| e["message"].as_str().unwrap_or_default().to_owned())
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn no_console_errors(&self) -> Step {
        let errors = self.console_errors().await?;
        if errors.is_empty() {
            return Ok(());
        }
        Err(format!("browser console errors: {errors:?}"))
    }

    async fn script(&self, script: &str) -> Result<Value, String> {
        self.client
            .execute(script, vec![])
            .await
            .map_err(|e| e.to_string())
    }

    /// Waits until `script` answers `true`.
    async fn wait_script(&self, script: &str, what: &str) -> Step {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if self.script(script).await.ok() == Some(Value::Bool(true)) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!("never true: {what}"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Presses `keys` on whatever has focus.
    async fn press(&self, keys: &str) -> Step {
        self.client
            .active_element()
            .await
            .map_err(|e| e.to_string())?
            .send_keys(keys)
            .await
            .map_err(|e| e.to_string())
    }

    /// The open modal dialog `css` keeps focus: it is modal, and Tab from its last control
    /// and Shift+Tab from its first stay inside, wrapping around.
    async fn keeps_focus(&self, css: &str) -> Step {
        let modal = format!("return document.querySelector({css:?}).matches(':modal');");
        self.check(
            self.script(&modal).await? == Value::Bool(true),
            &format!("{css} is modal"),
        )?;
        let inside =
            format!("return document.querySelector({css:?}).contains(document.activeElement);");
        self.check(
            self.script(&inside).await? == Value::Bool(true),
            "focus starts inside",
        )?;
        let controls = format!(
            "return Array.from(document.querySelector({css:?}).querySelectorAll('a[href], button, input:not([type=hidden]), select'))\
             .filter(e => !e.disabled && e.getClientRects().length > 0);"
        );
        let focus_last = format!(
            "{} let c = f(); c[c.length - 1].focus(); return true;",
            wrap(&controls)
        );
        let is_first = format!(
            "{} return document.activeElement === f()[0];",
            wrap(&controls)
        );
        let is_last = format!(
            "{} let c = f(); return document.activeElement === c[c.length - 1];",
            wrap(&controls)
        );
        self.script(&focus_last).await?;
        self.press(&Key::Tab).await?;
        self.check(
            self.script(&is_first).await? == Value::Bool(true),
            "Tab from the last control goes to the first",
        )?;
        self.press(&format!("{}{}", Key::Shift, Key::Tab)).await?;
        self.check(
            self.script(&is_last).await? == Value::Bool(true),
            "Shift+Tab from the first goes to the last",
        )?;
        for _ in 0..3 {
            self.press(&Key::Tab).await?;
            self.check(
                self.script(&inside).await? == Value::Bool(true),
                "Tab stays inside",
            )?;
        }
        Ok(())
    }

    /// Adds a model through the dialog already filled in: Save disabled until Test
    /// Connection passes, then saved, landing on the model's page.
    async fn test_and_save(&mut self, slug: &str) -> Step {
        self.check(self.save_disabled().await?, "Save starts disabled")?;
        self.click("button[hx-post='/models/new/test']").await?;
        self.wait_text("Connection works").await?;
        self.check(!self.save_disabled().await?, "Save enabled after the test")?;
        self.click("#save").await?;
        self.wait_path(&format!("/models/{slug}")).await?;
        self.wait_text("Version").await?;
        self.no_console_errors().await
    }

    fn check(&self, ok: bool, what: &str) -> Step {
        if ok { Ok(()) } else { Err(what.to_owned()) }
    }
}

/// A script line defining `f`, a function that runs `controls` (a `return …;`).
fn wrap(controls: &str) -> String {
    format!("let f = () => {{ {controls} }};")
}

async fn put_workflow(app: &TestApp, id: &str, name: &str, model: &str) {
    let body = json!({"name": name, "active": true, "steps": [{"model": model, "features": {}}]});
    let reply = app
        .call(Method::PUT, &format!("/v1/workflows/{id}"), Some(body))
        .await;
    assert!(reply.status.is_success(), "{}", reply.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_works_in_chromium() {
    let app = TestApp::start(Backend::Embedded).await;
    let (_driver, webdriver) = start_driver().await;
    let client = browser(&webdriver).await;
    let mut run = Run {
        client: &client,
        base: app.base.clone(),
        step: "start",
    };
    let outcome = steps(&app, &mut run).await;
    if let Err(problem) = &outcome {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/browser-screenshots");
        let _ = std::fs::create_dir_all(&dir);
        if let Ok(png) = client.screenshot().await {
            let _ = std::fs::write(dir.join(format!("{}.png", run.step)), png);
        }
        let _ = client.clone().close().await;
        panic!(
            "step {:?} failed: {problem} (screenshot in {})",
            run.step,
            dir.display()
        );
    }
    let _ = client.close().await;
}

async fn steps(app: &TestApp, run: &mut Run<'_>) -> Step {
    // Sign in with the one-time link.
    let link = app
        .console
        .sign_in_link(&secrets::Secret::new(app.token.clone()));
    run.go("sign-in", &link).await?;
    run.click("form.card button.primary").await?;
    run.wait_path("/models").await?;
    run.wait_text("Platform").await?;
    run.no_console_errors().await?;

    // The 10 platform models, Gemini 3.1 Pro marked default.
    run.step = "models";
    let rows = run
        .client
        .find_all(Locator::Css("table:first-of-type tbody tr"))
        .await
        .map_err(|e| e.to_string())?;
    run.check(
        rows.len() == 10,
        &format!("10 platform rows, not {}", rows.len()),
    )?;
    let default = run
        .client
        .find(Locator::XPath(
            "//tr[.//span[contains(@class,'default')]]//code",
        ))
        .await
        .map_err(|e| e.to_string())?
        .text()
        .await
        .map_err(|e| e.to_string())?;
    run.check(
        default == "google/gemini-3.1-pro-preview",
        &format!("the default is {default}"),
    )?;

    // The dialog: Save disabled until the test passes, and again after the id changes.
    run.go("dialog", "/models/new?provider=openai_compatible")
        .await?;
    run.fill("#display_name", "Browser Model").await?;
    run.fill("#provider_model_id", "llama3").await?;
    run.fill("#endpoint_url", &app.fake.v1()).await?;
    run.fill("#max_tokens", "8192").await?;
    run.check(run.save_disabled().await?, "Save starts disabled")?;
    run.step = "dialog-focus";
    run.keeps_focus("#add-dialog").await?;
    run.step = "live-check";
    run.wait_text("Slug: browser-model").await?;
    run.click("input[name='tool_use']").await?;
    run.wait_text("max_tokens.low_for_tool_use").await?;
    run.step = "max-tokens-advice";
    run.check(
        run.text().await?.contains("32,000 for multi-file tool use"),
        "the guidance beside max tokens",
    )?;
    run.fill("#max_tokens", "32000").await?;
    run.wait_script(
        "let a = document.getElementById('max-tokens-advice'); return a.textContent.trim() === '';",
        "the tool-use warning gone at 32000",
    )
    .await?;
    run.fill("#max_tokens", "8192").await?;
    run.wait_script(
        "return document.getElementById('max-tokens-advice').textContent.includes('max_tokens.low_for_tool_use');",
        "the tool-use warning back at 8192",
    )
    .await?;
    // Extended reasoning reveals the parameter shape, by keyboard too.
    run.step = "reasoning-shape";
    run.check(
        !run.shown("#reasoning-shape").await?,
        "shape hidden while reasoning is off",
    )?;
    run.script("document.getElementById('extended_reasoning').focus(); return true;")
        .await?;
    run.press(" ").await?;
    run.check(
        run.shown("#reasoning-shape").await?,
        "shape shown once reasoning is on",
    )?;
    run.press(&Key::Tab).await?;
    run.check(
        run.script("return document.activeElement.name === 'reasoning';")
            .await?
            == Value::Bool(true),
        "Tab reaches the shape choice",
    )?;
    run.click("#extended_reasoning").await?;
    run.check(!run.shown("#reasoning-shape").await?, "shape hidden again")?;
    // A form whose anti-forgery token went stale (a sign-in in another tab) is refused:
    // the refusal shows where the outcome would have, rather than nothing happening.
    run.step = "stale-form";
    let csrf = "document.querySelector('#add-model input[name=csrf]')";
    let kept = run.script(&format!("return {csrf}.value;")).await?;
    run.script(&format!("{csrf}.value = 'stale'; return true;"))
        .await?;
    run.click("button[hx-post='/models/new/test']").await?;
    run.wait_text("anti-forgery token").await?;
    // The browser logs the refused request; that is the point of this step.
    run.console_errors().await?;
    run.script(&format!("{csrf}.value = {kept}; return true;"))
        .await?;
    run.step = "test-connection";
    run.click("button[hx-post='/models/new/test']").await?;
    run.wait_text("Connection works").await?;
    run.check(!run.save_disabled().await?, "Save enabled after the test")?;
    run.step = "change-after-test";
    run.fill("#provider_model_id", "llama3-changed").await?;
    run.check(
        run.save_disabled().await?,
        "Save disabled after the model id changed",
    )?;
    run.wait_text("run Test Connection again").await?;
    run.check(
        !run.text().await?.contains("Connection works"),
        "the passing outcome is gone with its receipt",
    )?;
    run.fill("#provider_model_id", "llama3").await?;
    run.click("button[hx-post='/models/new/test']").await?;
    run.wait_text("Connection works").await?;
    run.step = "save";
    run.click("#save").await?;
    run.wait_path("/models/browser-model").await?;
    run.wait_text("Version").await?;
    run.no_console_errors().await?;

    // Bedrock's alternatives: one shown at a time, switched by the choice.
    run.go("bedrock", "/models/new?provider=bedrock").await?;
    run.check(run.shown("#access_key_id").await?, "IAM key pair shown")?;
    run.check(!run.shown("#bedrock_api_key").await?, "API key hidden")?;
    run.click("input[value='bedrock_api_key']").await?;
    run.check(run.shown("#bedrock_api_key").await?, "API key shown")?;
    run.check(!run.shown("#access_key_id").await?, "key pair hidden")?;
    run.click("input[value='aws_access_key']").await?;
    run.fill("#display_name", "Browser Nova").await?;
    run.fill("#provider_model_id", "amazon.nova-pro-v1:0")
        .await?;
    run.fill("#region", "eu-west-3").await?;
    run.fill("#access_key_id", "AKIAEXAMPLEBROWSER01").await?;
    run.fill("#secret_access_key", "browser-aws-secret-0123456789")
        .await?;
    run.fill("#max_tokens", "4096").await?;
    run.step = "bedrock-save";
    run.test_and_save("browser-nova").await?;

    // A third provider: Anthropic, its base URL the fake's.
    run.go("anthropic", "/models/new?provider=anthropic")
        .await?;
    run.fill("#display_name", "Browser Claude").await?;
    run.fill("#provider_model_id", "claude-sonnet-4-5").await?;
    run.fill("#max_tokens", "64000").await?;
    // A refused key first: the failure's class and its one-line fix, Save still disabled.
    run.step = "failed-test";
    run.fill("#api_key", "sk-bad-browser-0123456789").await?;
    run.click("button[hx-post='/models/new/test']").await?;
    run.wait_text("Test failed").await?;
    let failure = run
        .script(
            "let p = document.querySelector('div.problem[role=alert]'); \
             return p ? [p.querySelector('code').textContent, p.querySelectorAll('p')[1].textContent] : null;",
        )
        .await?;
    run.check(
        failure[0]
            .as_str()
            .is_some_and(|class| class.starts_with("auth")),
        &format!("the failure's class shown: {failure}"),
    )?;
    run.check(
        failure[1].as_str().is_some_and(|hint| hint.len() > 10),
        &format!("the failure's hint shown: {failure}"),
    )?;
    run.check(
        run.save_disabled().await?,
        "Save disabled after a failed test",
    )?;
    run.check(
        !run.text().await?.contains("sk-bad-browser"),
        "the key is not shown back",
    )?;
    run.step = "anthropic-save";
    run.fill("#api_key", "sk-ant-browser-0123456789").await?;
    run.check(run.save_disabled().await?, "Save starts disabled")?;
    run.click("button[hx-post='/models/new/test']").await?;
    run.wait_text("Connection works").await?;
    // A known model: the test suggests its prices, accepted with one click.
    run.step = "suggested-prices";
    run.click("button[data-fill-input]").await?;
    run.wait_text("Prices filled in").await?;
    let filled = run
        .script("return document.getElementById('input_cost_per_token').value;")
        .await?;
    run.check(
        filled.as_str().is_some_and(|v| !v.is_empty()),
        "the input price filled in",
    )?;
    run.check(
        !run.save_disabled().await?,
        "Save still enabled: prices are not bound",
    )?;
    run.click("#save").await?;
    run.wait_path("/models/browser-claude").await?;
    run.wait_text("Version").await?;
    let claude: Value = app.get_model("browser-claude").await.body;
    run.check(
        claude["input_cost_per_token"] == filled,
        &format!("the accepted price saved: {claude}"),
    )?;
    run.no_console_errors().await?;

    // The same secret again: the dialog offers the saved credential, and Save uses it.
    run.go("reuse", "/models/new?provider=anthropic").await?;
    run.fill("#display_name", "Browser Claude Two").await?;
    run.fill("#provider_model_id", "claude-sonnet-4-5").await?;
    run.fill("#api_key", "sk-ant-browser-0123456789").await?;
    run.fill("#max_tokens", "64000").await?;
    run.click("button[hx-post='/models/new/test']").await?;
    run.wait_text("Reuse saved credentials").await?;
    run.click("#save").await?;
    run.wait_path("/models/browser-claude-two").await?;
    run.wait_text("Version").await?;
    let second: Value = app.get_model("browser-claude-two").await.body;
    run.check(
        second["credential"]["id"].is_string()
            && second["credential"]["id"] == claude["credential"]["id"],
        &format!("one saved credential for both: {second} / {claude}"),
    )?;
    run.no_console_errors().await?;

    // Edit the Bedrock model: both alternatives offered, the chosen one shown; blank
    // secrets keep the stored key pair.
    run.go("bedrock-edit", "/models/browser-nova/edit").await?;
    run.check(run.shown("#access_key_id").await?, "IAM key pair shown")?;
    run.check(!run.shown("#bedrock_api_key").await?, "API key hidden")?;
    run.click("input[value='bedrock_api_key']").await?;
    run.check(run.shown("#bedrock_api_key").await?, "API key shown")?;
    run.check(!run.shown("#access_key_id").await?, "key pair hidden")?;
    let stored: Value = app.get_model("browser-nova").await.body;
    run.fill("#display_name", "Browser Nova Renamed").await?;
    run.click("button.primary[type='submit']").await?;
    run.wait_path("/models/browser-nova").await?;
    run.wait_text("Browser Nova Renamed").await?;
    let edited: Value = app.get_model("browser-nova").await.body;
    run.check(
        edited["credential"] == stored["credential"],
        &format!("the stored credential kept: {edited}"),
    )?;
    run.no_console_errors().await?;
    for slug in ["browser-model", "browser-nova", "browser-claude"] {
        let model: Value = app.get_model(slug).await.body;
        run.check(
            model["status"] == "active",
            &format!("{slug} added: {model}"),
        )?;
    }

    // Delete with the count of active workflows, then reactivate.
    put_workflow(app, "wf-a", "Newsletter", "browser-model").await;
    put_workflow(app, "wf-b", "Digest", "browser-model").await;
    run.go("delete", "/models/browser-model").await?;
    run.click("a.button.danger").await?;
    run.wait_text("2 active workflow(s) still reference this model")
        .await?;
    run.step = "delete-focus";
    run.check(
        run.script("return document.activeElement.textContent === 'Cancel';")
            .await?
            == Value::Bool(true),
        "the confirmation focuses Cancel, not the destructive button",
    )?;
    run.keeps_focus("dialog[data-modal]").await?;
    run.click("button.danger").await?;
    run.wait_text("Reactivate").await?;
    let status: Value = app.get_model("browser-model").await.body;
    run.check(status["status"] == "deactivated", "deactivated")?;
    run.step = "reactivate";
    run.click("form button.primary").await?;
    run.wait_text("Delete (deactivate)").await?;
    let status: Value = app.get_model("browser-model").await.body;
    run.check(status["status"] == "active", "active again")?;

    // The other pages, with no console error.
    for (step, path) in [
        ("credentials", "/credentials"),
        ("workflows", "/workflows"),
        ("picker", "/picker?model=browser-model"),
        ("platform", "/platform/google/gemini-3.1-pro-preview"),
        ("edit", "/models/browser-model/edit"),
        ("audit", "/audit?kind=model"),
    ] {
        run.go(step, path).await?;
        run.no_console_errors().await?;
    }
    run.check(
        run.text().await?.contains("model.added"),
        "the audit trail shows the add",
    )?;

    // Issue a token: shown once, with the copy hint.
    run.go("tokens", "/tokens").await?;
    run.fill("#label", "Browser CI").await?;
    run.click("form.card button.primary").await?;
    run.wait_text("shown this once").await?;
    run.check(run.shown("#issued-token").await?, "the token is shown")?;
    run.step = "copy-token";
    run.client
        .issue_cmd(Cdp {
            cmd: "Browser.grantPermissions",
            params: json!({
                "origin": app.base,
                "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"],
            }),
        })
        .await
        .map_err(|e| e.to_string())?;
    run.click("#copy-token").await?;
    run.wait_text("Copied to the clipboard.").await?;
    let copied = run
        .client
        .execute_async(
            "const done = arguments[arguments.length - 1];\
             navigator.clipboard.readText().then(t => done(t === document.getElementById('issued-token').value), () => done(false));",
            vec![],
        )
        .await
        .map_err(|e| e.to_string())?;
    run.check(
        copied == Value::Bool(true),
        "the clipboard holds the issued token",
    )?;
    run.no_console_errors().await?;

    // The revocation's confirmation keeps focus too; Escape cancels it, revoking nothing.
    run.step = "revoke-dialog";
    run.click("a.button.danger").await?;
    run.wait_script(
        "return location.pathname.endsWith('/revoke') && document.querySelector('dialog[data-modal]') !== null;",
        "at a revocation's confirmation",
    )
    .await?;
    run.keeps_focus("dialog[data-modal]").await?;
    run.press(&Key::Escape).await?;
    run.wait_path("/tokens").await?;
    run.check(
        !run.text().await?.contains("revoked"),
        "Escape revoked nothing",
    )?;

    // A narrow window: the sidebar wraps above the page and stays usable, nothing overflows.
    run.step = "narrow";
    run.client
        .set_window_size(480, 900)
        .await
        .map_err(|e| e.to_string())?;
    run.go("narrow", "/models").await?;
    let overflow = run
        .client
        .execute(
            "return document.documentElement.scrollWidth - document.documentElement.clientWidth;",
            vec![],
        )
        .await
        .map_err(|e| e.to_string())?;
    run.check(
        overflow.as_i64() == Some(0),
        &format!("the page overflows the narrow window by {overflow}px"),
    )?;
    run.check(
        run.shown("nav.sidebar a[href='/tokens']").await?,
        "the sidebar's Tokens entry is visible",
    )?;
    run.click("nav.sidebar a[href='/audit']").await?;
    run.wait_path("/audit").await?;
    run.no_console_errors().await?;
    Ok(())
}
