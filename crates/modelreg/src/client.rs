//! Client commands: speak HTTP to a running registry. Secrets are read from stdin or a hidden
//! prompt, never from argv (argv is visible to every user of the machine).
//!
//! The command's result goes to stdout: a short summary or table, or the API's JSON with
//! `--json`. Progress, an `add`'s Test Connection outcome, notices and prompts go to stderr,
//! so that `--json` output always parses.

use std::fmt;
use std::io::{BufRead, IsTerminal};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use clap::{Args, Subcommand};
use reqwest::{Method, StatusCode};
use serde_json::{Map, Value, json};

use crate::{note, say};

/// How long opening a connection to the registry may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one request may take: above the longest long poll the CLI asks for.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(40);
/// Seconds one poll of a pending connection test waits on the server (which caps it at 30).
const POLL_WAIT_SECS: u64 = 25;
/// How long to wait for a connection test's outcome before giving up on the worker.
const TEST_DEADLINE: Duration = Duration::from_secs(120);
/// How much of a body that is not the registry's JSON an error message quotes.
const BODY_PREFIX_CHARS: usize = 300;

#[derive(Args)]
pub struct Remote {
    /// The registry's URL (MODELREG_SERVER).
    #[arg(
        long,
        global = true,
        env = "MODELREG_SERVER",
        default_value = "http://127.0.0.1:8080"
    )]
    server: String,
    /// A file holding the API token (MODELREG_TOKEN_FILE); or set MODELREG_TOKEN.
    #[arg(long, global = true, env = "MODELREG_TOKEN_FILE")]
    token_file: Option<std::path::PathBuf>,
    /// Print the API's JSON answers on stdout (human text goes to stderr).
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Subcommand)]
pub enum ModelsCommand {
    /// List platform and custom models.
    List,
    /// Show one custom model.
    Show { slug: String },
    /// Add a custom model: runs Test Connection first (adding is gated on it), then adds.
    /// The secret is read from stdin (--secret-stdin) or a hidden prompt.
    Add(AddArgs),
    /// Test Connection of a saved model with its stored credential (or --new-secret).
    Test {
        slug: String,
        #[command(flatten)]
        secret: NewSecretArgs,
    },
    /// Edit a custom model; only the flags given change. Its provider cannot change.
    Edit(EditArgs),
    /// Deactivate a custom model (the UI's Delete). Asks first when active workflows still
    /// reference it.
    Deactivate {
        slug: String,
        /// Deactivate even if active workflows reference the model, without asking.
        #[arg(long)]
        yes: bool,
    },
    /// Reactivate a deactivated model.
    Reactivate { slug: String },
}

#[derive(Subcommand)]
pub enum CredentialsCommand {
    /// List saved credentials (id, provider, kind, preview, used-by).
    List,
}

#[derive(Args)]
pub struct AddArgs {
    /// openai, anthropic, gemini, openrouter, fireworks, together, bedrock, huggingface, openai_compatible.
    #[arg(long)]
    provider: Option<String>,
    #[command(flatten)]
    fields: ModelFields,
    /// Bedrock: an IAM access key ID; the secret read is then its secret access key.
    #[arg(long, conflicts_with_all = ["credential_id", "no_credential"])]
    access_key_id: Option<String>,
    /// Bedrock with an access key: also read a session token (second line of stdin).
    #[arg(long, requires = "access_key_id")]
    session_token: bool,
    /// Read the secret from stdin's first line instead of prompting.
    #[arg(long)]
    secret_stdin: bool,
    /// No credential (OpenAI-compatible servers without auth).
    #[arg(long, conflicts_with = "credential_id")]
    no_credential: bool,
}

#[derive(Args)]
pub struct EditArgs {
    slug: String,
    #[command(flatten)]
    fields: ModelFields,
    #[command(flatten)]
    secret: NewSecretArgs,
    /// Refuse the edit if the model is no longer at this version.
    #[arg(long)]
    if_match: Option<u64>,
    /// Refused: a model's provider cannot change. Accepted here only to say so clearly.
    #[arg(long, hide = true)]
    provider: Option<String>,
    /// Refused: edit cannot remove a credential. Accepted here only to say so clearly.
    #[arg(long, hide = true)]
    no_credential: bool,
}

/// A new secret for `edit` and `test`; its shape (API key, Bedrock API key or IAM key pair)
/// follows the saved model's provider.
#[derive(Args)]
pub struct NewSecretArgs {
    /// Enter a new secret instead of keeping (or testing with) the stored one.
    #[arg(long)]
    new_secret: bool,
    /// Bedrock: an IAM access key ID; the secret read is then its secret access key.
    #[arg(long, requires = "new_secret")]
    access_key_id: Option<String>,
    /// Bedrock with an access key: also read a session token (second line of stdin).
    #[arg(long, requires = "access_key_id")]
    session_token: bool,
    /// Read the new secret from stdin's first line instead of prompting.
    #[arg(long, requires = "new_secret")]
    secret_stdin: bool,
}

/// The model fields `add` and `edit` share.
#[derive(Args)]
pub struct ModelFields {
    #[arg(long)]
    name: Option<String>,
    /// The model id as the provider names it.
    #[arg(long)]
    model_id: Option<String>,
    /// Base URL (OpenAI-compatible) or Inference Endpoint URL (HuggingFace).
    #[arg(long)]
    endpoint_url: Option<String>,
    /// AWS region (Bedrock).
    #[arg(long)]
    region: Option<String>,
    #[arg(long)]
    max_tokens: Option<u64>,
    #[arg(long)]
    json_mode: Option<bool>,
    #[arg(long)]
    vision: Option<bool>,
    #[arg(long)]
    tool_use: Option<bool>,
    /// effort, max_tokens, or off.
    #[arg(long)]
    reasoning: Option<String>,
    /// USD per token, e.g. 0.000003; on edit, `none` clears it.
    #[arg(long)]
    input_cost: Option<String>,
    /// USD per token, e.g. 0.000015; on edit, `none` clears it.
    #[arg(long)]
    output_cost: Option<String>,
    /// Use a saved credential instead of entering a secret.
    #[arg(long)]
    credential_id: Option<String>,
}

/// An error answer from the registry (or whatever answered at its URL), kept whole so that
/// callers act on its `code` and fields instead of matching its text.
#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    /// The URL the CLI spoke to.
    server: String,
    /// The problem+json body, or a capped prefix of the body's text when it was not JSON.
    body: Value,
}

impl ApiError {
    /// The problem's stable `code`, when the answer was the registry's problem+json.
    fn code(&self) -> Option<&str> {
        self.body.get("code").and_then(Value::as_str)
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(code) = self.code() else {
            let text = match &self.body {
                Value::String(text) if text.is_empty() => "(empty body)".to_owned(),
                Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            return write!(
                f,
                "{} from {} (not a registry answer): {text}",
                self.status, self.server
            );
        };
        let detail = self.body["detail"].as_str().unwrap_or("");
        write!(f, "{}: {detail} ({code})", self.status)?;
        for error in self.body["errors"].as_array().into_iter().flatten() {
            write!(
                f,
                "\n  {}: {} ({})",
                error["field"].as_str().unwrap_or("?"),
                error["detail"].as_str().unwrap_or(""),
                error["code"].as_str().unwrap_or("?")
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for ApiError {}

struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
    json: bool,
}

impl Client {
    fn new(remote: &Remote) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .build()
            .context("cannot set up the HTTP client")?;
        Ok(Self {
            http,
            base: remote.server.trim_end_matches('/').to_owned(),
            token: api_token(remote)?,
            json: remote.json,
        })
    }

    /// Sends one request; a JSON answer on success, else an [`ApiError`] (or, when nothing
    /// usable came back, an error that says what to check).
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        if_match: Option<u64>,
    ) -> anyhow::Result<Value> {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(version) = if_match {
            request = request.header("if-match", format!("\"{version}\""));
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.map_err(|e| self.unreachable(e))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| self.unreachable(e))?;
        let parsed = serde_json::from_str::<Value>(&text);
        if !status.is_success() {
            return Err(ApiError {
                status,
                server: self.base.clone(),
                body: parsed.unwrap_or_else(|_| Value::String(prefix(&text))),
            }
            .into());
        }
        parsed.map_err(|_| {
            anyhow!(
                "{} answered {status} with something other than the registry's JSON; is --server (MODELREG_SERVER) the registry's URL? The answer began: {}",
                self.base,
                prefix(&text)
            )
        })
    }

    fn unreachable(&self, error: reqwest::Error) -> anyhow::Error {
        let what = if error.is_connect() {
            format!(
                "cannot reach the registry at {}: is `modelreg serve` running? (--server / MODELREG_SERVER)",
                self.base
            )
        } else if error.is_timeout() {
            format!(
                "the registry at {} did not answer within {} s",
                self.base,
                REQUEST_TIMEOUT.as_secs()
            )
        } else {
            format!("no answer from the registry at {}", self.base)
        };
        anyhow::Error::new(error).context(what)
    }

    async fn model(&self, slug: &str) -> anyhow::Result<Value> {
        self.call(Method::GET, &model_path(slug), None, None).await
    }

    /// Prints a model: its JSON with `--json`, else a short summary.
    fn print_model(&self, model: &Value) -> anyhow::Result<()> {
        if self.json {
            say(&serde_json::to_string_pretty(model)?);
            return Ok(());
        }
        for line in model_summary(model) {
            say(&line);
        }
        Ok(())
    }
}

/// The API token, refused here when it is empty or not one token: the server would only
/// answer 401 to `Bearer ` and could not say why.
fn api_token(remote: &Remote) -> anyhow::Result<String> {
    let (token, source) = match (&remote.token_file, std::env::var("MODELREG_TOKEN")) {
        (Some(path), _) => (
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read token file {}", path.display()))?
                .trim()
                .to_owned(),
            format!("token file {}", path.display()),
        ),
        (None, Ok(token)) => (token.trim().to_owned(), "MODELREG_TOKEN".to_owned()),
        (None, Err(std::env::VarError::NotUnicode(_))) => {
            bail!("MODELREG_TOKEN is not valid UTF-8")
        }
        (None, Err(std::env::VarError::NotPresent)) => {
            bail!("no API token: set MODELREG_TOKEN or MODELREG_TOKEN_FILE (or --token-file)")
        }
    };
    if token.is_empty() {
        bail!("{source} is empty: it must hold an API token");
    }
    if token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        bail!("{source} holds more than a token (spaces or line breaks inside it)");
    }
    Ok(token)
}

pub async fn models(remote: Remote, command: ModelsCommand) -> anyhow::Result<()> {
    let client = Client::new(&remote)?;
    let model = match command {
        ModelsCommand::List => {
            let answer = client.call(Method::GET, "/v1/models", None, None).await?;
            if client.json {
                say(&serde_json::to_string_pretty(&answer)?);
            } else {
                print_model_list(&answer);
            }
            return Ok(());
        }
        ModelsCommand::Show { slug } => client.model(&slug).await?,
        ModelsCommand::Add(add) => {
            let added = add_model(&client, &add).await?;
            if client.json {
                say(&serde_json::to_string_pretty(&added)?);
                return Ok(());
            }
            if let Some(reused) = added["reused_credential"].as_object() {
                note(&format!(
                    "this secret is already saved as credential {}: the model uses it",
                    reused.get("id").map(cell).unwrap_or_default()
                ));
            }
            added["model"].clone()
        }
        ModelsCommand::Test { slug, secret } => return test_model(&client, &slug, &secret).await,
        ModelsCommand::Edit(edit) => edit_model(&client, &edit).await?,
        ModelsCommand::Deactivate { slug, yes } => deactivate_model(&client, &slug, yes).await?,
        ModelsCommand::Reactivate { slug } => {
            client
                .call(
                    Method::POST,
                    &format!("{}/activation", model_path(&slug)),
                    None,
                    None,
                )
                .await?
        }
    };
    client.print_model(&model)
}

pub async fn credentials(remote: Remote, command: CredentialsCommand) -> anyhow::Result<()> {
    let client = Client::new(&remote)?;
    match command {
        CredentialsCommand::List => {
            let answer = client
                .call(Method::GET, "/v1/credentials", None, None)
                .await?;
            if client.json {
                say(&serde_json::to_string_pretty(&answer)?);
                return Ok(());
            }
            let rows: Vec<Vec<String>> = answer["items"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|c| {
                    ["id", "provider", "kind", "preview", "used_by"]
                        .iter()
                        .map(|key| cell(&c[*key]))
                        .collect()
                })
                .collect();
            if rows.is_empty() {
                say("(none)");
                return Ok(());
            }
            let widths = column_widths(&CREDENTIAL_HEADER, &rows);
            say(&table_line(&CREDENTIAL_HEADER, &widths));
            for row in &rows {
                say(&table_line(row, &widths));
            }
        }
    }
    Ok(())
}

/// Tests the draft, then adds it; the API's answer (the model and any reused credential).
async fn add_model(client: &Client, add: &AddArgs) -> anyhow::Result<Value> {
    // Everything checkable here is checked before asking for a secret.
    let missing: Vec<&str> = [
        ("--name", add.fields.name.is_none()),
        ("--provider", add.provider.is_none()),
        ("--model-id", add.fields.model_id.is_none()),
        ("--max-tokens", add.fields.max_tokens.is_none()),
    ]
    .into_iter()
    .filter_map(|(flag, absent)| absent.then_some(flag))
    .collect();
    if !missing.is_empty() {
        bail!(
            "missing {}: `models add` needs --name, --provider, --model-id and --max-tokens",
            missing.join(", ")
        );
    }
    let provider = add.provider.clone().unwrap_or_default();
    if add.access_key_id.is_some() && provider != "bedrock" {
        bail!("--access-key-id is for Bedrock; a {provider} model takes an API key");
    }
    let mut body = fields_body(&add.fields, false)?;
    body.insert("provider".into(), json!(provider));
    if add.fields.credential_id.is_none() && !add.no_credential {
        let empty_hint = (provider == "openai_compatible")
            .then_some("; for an OpenAI-compatible server without auth, pass --no-credential");
        let credential = read_credential(
            &provider,
            add.access_key_id.as_deref(),
            add.session_token,
            add.secret_stdin,
            empty_hint,
        )?;
        body.insert("credential".into(), credential);
    }
    let draft: Map<String, Value> = [
        "provider",
        "provider_model_id",
        "endpoint_url",
        "region",
        "credential",
        "credential_id",
    ]
    .iter()
    .filter_map(|field| Some(((*field).to_owned(), body.get(*field)?.clone())))
    .collect();
    let draft = Value::Object(draft);
    let test = run_test(client, "/v1/connection-tests", draft).await?;
    for line in outcome_lines(&test["result"]) {
        note(&line);
    }
    if test["result"]["passed"] != true {
        bail!("not added: Test Connection did not pass");
    }
    body.insert("connection_test_id".into(), test["id"].clone());
    offer_prices(&mut body, &test["result"])?;
    client
        .call(Method::POST, "/v1/models", Some(Value::Object(body)), None)
        .await
}

async fn test_model(client: &Client, slug: &str, secret: &NewSecretArgs) -> anyhow::Result<()> {
    let mut body = Map::new();
    if secret.new_secret {
        let provider = provider_of(client, slug).await?;
        body.insert("credential".into(), read_new_secret(&provider, secret)?);
    }
    let test = run_test(
        client,
        &format!("{}/connection-tests", model_path(slug)),
        Value::Object(body),
    )
    .await?;
    if client.json {
        say(&serde_json::to_string_pretty(&test)?);
        for line in outcome_lines(&test["result"]) {
            note(&line);
        }
    } else {
        for line in outcome_lines(&test["result"]) {
            say(&line);
        }
    }
    if test["result"]["passed"] != true {
        bail!("Test Connection did not pass");
    }
    Ok(())
}

async fn edit_model(client: &Client, edit: &EditArgs) -> anyhow::Result<Value> {
    if edit.provider.is_some() {
        bail!(
            "--provider: a model's provider cannot change; add a new model with that provider (and deactivate this one)"
        );
    }
    if edit.no_credential {
        bail!(
            "--no-credential: edit cannot remove a model's credential; add a new model without one"
        );
    }
    if edit.fields.credential_id.is_some() && edit.secret.new_secret {
        bail!("give --credential-id or --new-secret, not both");
    }
    let mut body = fields_body(&edit.fields, true)?;
    if body.is_empty() && !edit.secret.new_secret {
        bail!("nothing to change: give the flags to change (see `modelreg models edit --help`)");
    }
    if edit.secret.new_secret {
        // The secret's shape depends on the provider, which only the saved model knows.
        let provider = provider_of(client, &edit.slug).await?;
        body.insert(
            "credential".into(),
            read_new_secret(&provider, &edit.secret)?,
        );
    }
    client
        .call(
            Method::PATCH,
            &model_path(&edit.slug),
            Some(Value::Object(body)),
            edit.if_match,
        )
        .await
}

async fn deactivate_model(client: &Client, slug: &str, yes: bool) -> anyhow::Result<Value> {
    let path = model_path(slug);
    let error = match client.call(Method::DELETE, &path, None, None).await {
        Ok(model) => return Ok(model),
        Err(error) => error,
    };
    let Some(refusal) = error
        .downcast_ref::<ApiError>()
        .filter(|e| e.code() == Some("model.has_dependents"))
    else {
        return Err(error);
    };
    let notice = dependents_notice(slug, &refusal.body);
    if !yes {
        if !std::io::stdin().is_terminal() {
            bail!(
                "not deactivated: {notice} (model.has_dependents); no terminal to ask on, pass --yes to deactivate anyway"
            );
        }
        note(&notice);
        if !confirm("Deactivate anyway? [y/N] ")? {
            bail!("not deactivated");
        }
    } else {
        note(&notice);
    }
    client
        .call(Method::DELETE, &format!("{path}?confirm=true"), None, None)
        .await
}

/// "2 active workflows (first: "Nightly digest") reference team-gpt; …", from the
/// `model.has_dependents` problem's `count` and `first_dependent`.
fn dependents_notice(slug: &str, problem: &Value) -> String {
    let count = problem["count"].as_u64().unwrap_or(0);
    let first = match problem["first_dependent"].as_str() {
        Some(name) => format!(" (first: {name:?})"),
        None => String::new(),
    };
    let (workflows, reference) = if count == 1 {
        ("workflow", "references")
    } else {
        ("workflows", "reference")
    };
    format!(
        "{count} active {workflows}{first} {reference} {slug}; they fail to generate LLM responses until repointed."
    )
}

async fn provider_of(client: &Client, slug: &str) -> anyhow::Result<String> {
    let model = client.model(slug).await?;
    model["provider"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("the registry's answer for {slug} names no provider"))
}

fn read_new_secret(provider: &str, secret: &NewSecretArgs) -> anyhow::Result<Value> {
    read_credential(
        provider,
        secret.access_key_id.as_deref(),
        secret.session_token,
        secret.secret_stdin,
        None,
    )
}

/// Reads a credential in the shape `provider` takes: an IAM key pair or a Bedrock API key
/// for Bedrock, an API key for the rest. `empty_hint` is added to the refusal of an empty one.
fn read_credential(
    provider: &str,
    access_key_id: Option<&str>,
    session_token: bool,
    from_stdin: bool,
    empty_hint: Option<&str>,
) -> anyhow::Result<Value> {
    let reader = SecretReader { from_stdin };
    match (provider, access_key_id) {
        ("bedrock", Some(access_key_id)) => {
            let secret = reader.read("AWS secret access key", None)?;
            let mut credential =
                json!({"access_key_id": access_key_id, "secret_access_key": secret});
            if session_token {
                credential["session_token"] = json!(reader.read("AWS session token", None)?);
            }
            Ok(credential)
        }
        ("bedrock", None) => Ok(json!({"bedrock_api_key": reader.read("Bedrock API key", None)?})),
        (other, Some(_)) => {
            bail!("--access-key-id is for Bedrock; a {other} model takes an API key")
        }
        (_, None) => Ok(json!({"api_key": reader.read("API key", empty_hint)?})),
    }
}

/// Requests a connection test and waits for its outcome behind a spinner, which is cleared
/// however the wait ends.
async fn run_test(client: &Client, path: &str, body: Value) -> anyhow::Result<Value> {
    let requested = client.call(Method::POST, path, Some(body), None).await?;
    let id = requested["id"]
        .as_str()
        .context("the registry's answer names no connection test")?
        .to_owned();
    let _spinner = Spinner::start("testing the connection…");
    let deadline = Instant::now() + TEST_DEADLINE;
    loop {
        let test = client
            .call(
                Method::GET,
                &format!(
                    "/v1/connection-tests/{}?wait={POLL_WAIT_SECS}",
                    segment(&id)
                ),
                None,
                None,
            )
            .await?;
        if test["status"] == "completed" {
            return Ok(test);
        }
        if Instant::now() > deadline {
            bail!(
                "the connection test {id} is still pending after {} s: no worker ran it. On the embedded log `modelreg serve` runs the worker; in NATS mode start `modelreg worker connection-tests`. GET /v1/connection-tests/{id} shows it later",
                TEST_DEADLINE.as_secs()
            );
        }
    }
}

/// A spinner on stderr (drawn only on a terminal) that clears its line when dropped.
struct Spinner(indicatif::ProgressBar);

impl Spinner {
    fn start(message: &'static str) -> Self {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_message(message);
        bar.enable_steady_tick(Duration::from_millis(100));
        Self(bar)
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

/// A connection test's outcome for people: passed, or the failure class, its fix, when to
/// retry and what the provider said.
fn outcome_lines(result: &Value) -> Vec<String> {
    let latency = result["latency_ms"].as_u64().unwrap_or(0);
    if result["passed"] == true {
        return vec![format!("Test Connection passed ({latency} ms)")];
    }
    let class = result["class"].as_str().unwrap_or("?");
    let mut lines = vec![
        format!("Test Connection failed: {class}"),
        format!("  fix: {}", result["hint"].as_str().unwrap_or("")),
    ];
    if let Some(ms) = result["retry_after_ms"].as_u64() {
        lines.push(format!("  retry after: {}", duration_text(ms)));
    }
    if let Some(message) = result["upstream_message"].as_str() {
        let status = result["upstream_status"]
            .as_u64()
            .map(|s| format!("{s} "))
            .unwrap_or_default();
        lines.push(format!("  provider said: {status}{message}"));
    }
    lines
}

fn duration_text(ms: u64) -> String {
    if ms < 1_000 {
        return format!("{ms} ms");
    }
    format!("{:.1} s", ms as f64 / 1_000.0)
}

/// Offers the suggested prices for costs left blank: applied after a yes on a terminal;
/// without one, only shown.
fn offer_prices(body: &mut Map<String, Value>, result: &Value) -> anyhow::Result<()> {
    let mut offered = Vec::new();
    for (field, suggestion) in [
        ("input_cost_per_token", "suggested_input_cost_per_token"),
        ("output_cost_per_token", "suggested_output_cost_per_token"),
    ] {
        if body.get(field).is_none()
            && let Some(price) = result[suggestion].as_str()
        {
            offered.push((field, price.to_owned()));
        }
    }
    if offered.is_empty() {
        return Ok(());
    }
    let listing: Vec<String> = offered.iter().map(|(f, p)| format!("{f} = {p}")).collect();
    note(&format!(
        "known prices for this model: {}",
        listing.join(", ")
    ));
    if !std::io::stdin().is_terminal() {
        note("  (not applied: pass --input-cost / --output-cost to use them)");
        return Ok(());
    }
    if confirm("Use them? [y/N] ")? {
        for (field, price) in offered {
            body.insert(field.to_owned(), Value::String(price));
        }
    }
    Ok(())
}

/// The JSON body of the shared model flags. `editing` lets a cost of `none` clear it.
fn fields_body(fields: &ModelFields, editing: bool) -> anyhow::Result<Map<String, Value>> {
    let mut body = Map::new();
    let mut put = |key: &str, value: Option<Value>| {
        if let Some(value) = value {
            body.insert(key.to_owned(), value);
        }
    };
    put("display_name", fields.name.clone().map(Value::from));
    put(
        "provider_model_id",
        fields.model_id.clone().map(Value::from),
    );
    put("endpoint_url", fields.endpoint_url.clone().map(Value::from));
    put("region", fields.region.clone().map(Value::from));
    put("max_tokens", fields.max_tokens.map(Value::from));
    put(
        "credential_id",
        fields.credential_id.clone().map(Value::from),
    );
    for (key, flag, cost) in [
        ("input_cost_per_token", "--input-cost", &fields.input_cost),
        (
            "output_cost_per_token",
            "--output-cost",
            &fields.output_cost,
        ),
    ] {
        match cost.as_deref() {
            None => {}
            Some("none") if editing => {
                body.insert(key.to_owned(), Value::Null);
            }
            Some("none") => {
                bail!("{flag} none clears a cost when editing; when adding, leave the flag out")
            }
            Some(cost) => {
                body.insert(key.to_owned(), json!(cost));
            }
        }
    }
    let mut capabilities = Map::new();
    for (key, value) in [
        ("json_mode", fields.json_mode),
        ("vision", fields.vision),
        ("tool_use", fields.tool_use),
    ] {
        if let Some(value) = value {
            capabilities.insert(key.into(), json!(value));
        }
    }
    if let Some(reasoning) = &fields.reasoning {
        capabilities.insert(
            "reasoning".into(),
            if reasoning == "off" {
                Value::Null
            } else {
                json!(reasoning)
            },
        );
    }
    if !capabilities.is_empty() {
        body.insert("capabilities".into(), Value::Object(capabilities));
    }
    Ok(body)
}

/// Asks a yes/no question on the terminal (stderr); the caller checks there is one.
fn confirm(question: &str) -> anyhow::Result<bool> {
    use std::io::Write;
    eprint!("{question}");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

/// Reads secrets: from stdin lines with `--secret-stdin` when stdin is a pipe, else from a
/// hidden prompt. Never from a pipe without `--secret-stdin`: an idle pipe would hang.
struct SecretReader {
    from_stdin: bool,
}

impl SecretReader {
    fn read(&self, what: &str, empty_hint: Option<&str>) -> anyhow::Result<String> {
        let value = match (self.from_stdin, std::io::stdin().is_terminal()) {
            (_, true) => {
                rpassword::prompt_password(format!("{what}: ")).context("cannot read the secret")?
            }
            (true, false) => {
                let mut line = String::new();
                std::io::stdin()
                    .lock()
                    .read_line(&mut line)
                    .context("cannot read the secret from stdin")?;
                line.trim_end_matches(['\r', '\n']).to_owned()
            }
            (false, false) => bail!(
                "cannot ask for the {what}: stdin is not a terminal; pipe the secret with --secret-stdin"
            ),
        };
        if value.is_empty() {
            bail!("no {what} given{}", empty_hint.unwrap_or(""));
        }
        Ok(value)
    }
}

const MODEL_HEADER: [&str; 4] = ["ID", "NAME", "PROVIDER", "STATUS"];
const CREDENTIAL_HEADER: [&str; 5] = ["ID", "PROVIDER", "KIND", "PREVIEW", "USED BY"];

fn print_model_list(answer: &Value) {
    let rows = |key: &str| -> Vec<Vec<String>> {
        answer[key]
            .as_array()
            .into_iter()
            .flatten()
            .map(model_row)
            .collect()
    };
    let (platform, custom) = (rows("platform"), rows("custom"));
    // One set of widths for both sections, so their columns line up.
    let all: Vec<Vec<String>> = platform.iter().chain(&custom).cloned().collect();
    let widths = column_widths(&MODEL_HEADER, &all);
    for (title, rows) in [("platform:", platform), ("custom:", custom)] {
        say(title);
        if rows.is_empty() {
            say("  (none)");
            continue;
        }
        say(&format!("  {}", table_line(&MODEL_HEADER, &widths)));
        for row in &rows {
            say(&format!("  {}", table_line(row, &widths)));
        }
    }
}

fn model_row(model: &Value) -> Vec<String> {
    let id = model.get("slug").unwrap_or(&model["id"]);
    let mut status = cell(&model["status"]);
    if model["default"] == true {
        status.push_str(" (default)");
    }
    vec![
        cell(id),
        cell(&model["display_name"]),
        cell(&model["provider"]),
        status,
    ]
}

/// The width of each column: its widest cell, header included.
fn column_widths<S: AsRef<str>>(header: &[S], rows: &[Vec<String>]) -> Vec<usize> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.as_ref().chars().count()).collect();
    for row in rows {
        for (width, value) in widths.iter_mut().zip(row) {
            *width = (*width).max(value.chars().count());
        }
    }
    widths
}

/// One row, each cell padded to its column's width but the last (no trailing spaces).
fn table_line<S: AsRef<str>>(cells: &[S], widths: &[usize]) -> String {
    let last = cells.len().saturating_sub(1);
    let mut line = String::new();
    for (index, (value, width)) in cells.iter().zip(widths).enumerate() {
        if index == last {
            line.push_str(value.as_ref());
        } else {
            line.push_str(&format!("{:<width$}  ", value.as_ref()));
        }
    }
    line
}

fn cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// A model for people: what it is, whether it is active, which credential and version.
fn model_summary(model: &Value) -> Vec<String> {
    let credential = match &model["credential"] {
        Value::Null => "none".to_owned(),
        credential => format!(
            "{} ({})",
            cell(&credential["preview"]),
            cell(&credential["id"])
        ),
    };
    let mut rows = vec![
        ("slug", cell(&model["slug"])),
        ("name", cell(&model["display_name"])),
        ("provider", cell(&model["provider"])),
        ("model id", cell(&model["provider_model_id"])),
    ];
    for (label, key) in [("endpoint", "endpoint_url"), ("region", "region")] {
        if !model[key].is_null() {
            rows.push((label, cell(&model[key])));
        }
    }
    rows.push(("status", cell(&model["status"])));
    rows.push(("credential", credential));
    rows.push(("version", cell(&model["version"])));
    let width = rows.iter().map(|(label, _)| label.len()).max().unwrap_or(0) + 1;
    let mut lines: Vec<String> = rows
        .into_iter()
        .map(|(label, value)| format!("{:<width$} {value}", format!("{label}:")))
        .collect();
    for warning in model["warnings"].as_array().into_iter().flatten() {
        lines.push(format!("warning: {}", cell(&warning["message"])));
    }
    lines
}

/// The path of one model.
fn model_path(slug: &str) -> String {
    format!("/v1/models/{}", segment(slug))
}

/// The start of a body that is not the registry's JSON, on one line and capped, for an
/// error message (an HTML error page from a proxy, say).
fn prefix(text: &str) -> String {
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= BODY_PREFIX_CHARS {
        return flat;
    }
    let mut capped: String = flat.chars().take(BODY_PREFIX_CHARS).collect();
    capped.push('…');
    capped
}

/// `value` as one path segment: anything but unreserved characters is percent-encoded, so a
/// slug typed as `x?confirm=true` stays a (not found) slug instead of becoming a query.
fn segment(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(segment("team-gpt"), "team-gpt");
        assert_eq!(segment("x?confirm=true"), "x%3Fconfirm%3Dtrue");
        assert_eq!(segment("a/b c"), "a%2Fb%20c");
        assert_eq!(segment("é"), "%C3%A9");
    }

    #[test]
    fn every_field_error_is_shown_with_its_name_and_code() {
        let error = ApiError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            server: "http://127.0.0.1:8080".into(),
            body: json!({
                "code": "provider.unknown",
                "detail": "unknown provider",
                "errors": [
                    {"field": "provider", "code": "provider.unknown", "detail": "unknown provider"},
                    {"field": "max_tokens", "code": "max_tokens.too_large", "detail": "too large"},
                ],
            }),
        };
        assert_eq!(
            error.to_string(),
            "422 Unprocessable Entity: unknown provider (provider.unknown)\n  provider: unknown provider (provider.unknown)\n  max_tokens: too large (max_tokens.too_large)"
        );
    }

    #[test]
    fn a_body_that_is_not_json_is_quoted_capped() {
        let page = format!(
            "<html>\n<h1>502 Bad Gateway</h1>{}</html>",
            "x".repeat(1000)
        );
        let error = ApiError {
            status: StatusCode::BAD_GATEWAY,
            server: "http://proxy".into(),
            body: Value::String(prefix(&page)),
        };
        let text = error.to_string();
        assert!(
            text.starts_with("502 Bad Gateway from http://proxy (not a registry answer): <html> <h1>502 Bad Gateway</h1>"),
            "{text}"
        );
        assert!(text.ends_with('…') && text.chars().count() < 400, "{text}");
    }

    #[test]
    fn columns_are_as_wide_as_their_widest_value() {
        let rows = vec![
            vec!["a-very-long-slug".to_owned(), "x".to_owned()],
            vec!["b".to_owned(), "y".to_owned()],
        ];
        let widths = column_widths(&["ID", "NAME"], &rows);
        assert_eq!(widths, [16, 4]);
        assert_eq!(
            table_line(&["ID", "NAME"], &widths),
            "ID                NAME"
        );
        assert_eq!(table_line(&rows[1], &widths), "b                 y");
    }

    #[test]
    fn a_rate_limited_outcome_says_when_to_retry() {
        let result = json!({"passed": false, "class": "rate_limited", "hint": "wait and retry",
            "retry_after_ms": 2500, "upstream_status": 429, "upstream_message": "slow down"});
        assert_eq!(
            outcome_lines(&result),
            [
                "Test Connection failed: rate_limited",
                "  fix: wait and retry",
                "  retry after: 2.5 s",
                "  provider said: 429 slow down",
            ]
        );
    }

    #[test]
    fn the_dependents_notice_counts_and_names_the_first() {
        let one = json!({"count": 1, "first_dependent": "Nightly digest"});
        assert_eq!(
            dependents_notice("team-gpt", &one),
            "1 active workflow (first: \"Nightly digest\") references team-gpt; they fail to generate LLM responses until repointed."
        );
        let two = json!({"count": 2, "first_dependent": "A"});
        assert!(
            dependents_notice("m", &two)
                .starts_with("2 active workflows (first: \"A\") reference m;")
        );
    }
}
