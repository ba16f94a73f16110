//! Client commands: speak HTTP to a running registry. Secrets are read from stdin or a hidden
//! prompt, never from argv (argv is visible to every user of the machine).

use std::io::{BufRead, IsTerminal};

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde_json::{Map, Value, json};

use crate::say;

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
    /// Print raw JSON answers.
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
    Add(ModelFields),
    /// Test Connection of a saved model with its stored credential (or --new-secret).
    Test {
        slug: String,
        /// Test with a new secret instead of the stored one (read like `add` reads it).
        #[arg(long)]
        new_secret: bool,
        #[arg(long)]
        secret_stdin: bool,
    },
    /// Edit a custom model; only the flags given change.
    Edit {
        slug: String,
        #[command(flatten)]
        fields: ModelFields,
        /// Refuse the edit if the model is no longer at this version.
        #[arg(long)]
        if_match: Option<u64>,
    },
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
    /// List saved credentials (id, provider, preview, used-by).
    List,
}

#[derive(Args)]
pub struct ModelFields {
    #[arg(long)]
    name: Option<String>,
    /// openai, anthropic, gemini, openrouter, fireworks, together, bedrock, huggingface, openai_compatible.
    #[arg(long)]
    provider: Option<String>,
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
    /// USD per token, e.g. 0.000003.
    #[arg(long)]
    input_cost: Option<String>,
    #[arg(long)]
    output_cost: Option<String>,
    /// Use a saved credential instead of entering a secret.
    #[arg(long)]
    credential_id: Option<String>,
    /// Bedrock: an IAM access key ID; the secret access key is then the secret read.
    #[arg(long)]
    access_key_id: Option<String>,
    /// Bedrock with an access key: also read a session token (second line of stdin).
    #[arg(long)]
    session_token: bool,
    /// Read the secret from stdin's first line instead of prompting.
    #[arg(long)]
    secret_stdin: bool,
    /// Edit: enter a new secret (otherwise the stored one stays).
    #[arg(long)]
    new_secret: bool,
    /// Add: no credential (OpenAI-compatible servers without auth).
    #[arg(long)]
    no_credential: bool,
}

struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
    json: bool,
}

impl Client {
    fn new(remote: &Remote) -> anyhow::Result<Self> {
        let token = match (&remote.token_file, std::env::var("MODELREG_TOKEN")) {
            (Some(path), _) => std::fs::read_to_string(path)
                .with_context(|| format!("cannot read token file {}", path.display()))?
                .trim()
                .to_owned(),
            (None, Ok(token)) if !token.is_empty() => token,
            _ => bail!("no API token: set MODELREG_TOKEN or MODELREG_TOKEN_FILE (or --token-file)"),
        };
        Ok(Self {
            http: reqwest::Client::new(),
            base: remote.server.trim_end_matches('/').to_owned(),
            token,
            json: remote.json,
        })
    }

    async fn call(
        &self,
        method: reqwest::Method,
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
        let response = request
            .send()
            .await
            .with_context(|| format!("cannot reach the registry at {}", self.base))?;
        let status = response.status();
        let value: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let code = value.get("code").and_then(Value::as_str).unwrap_or("error");
            let detail = value.get("detail").and_then(Value::as_str).unwrap_or("");
            let mut message = format!("{status} {code}: {detail}");
            if let Some(errors) = value.get("errors").and_then(Value::as_array) {
                for e in errors.iter().skip(1) {
                    message.push_str(&format!(
                        "\n  {}: {}",
                        e["field"].as_str().unwrap_or(""),
                        e["detail"].as_str().unwrap_or("")
                    ));
                }
            }
            bail!(message);
        }
        Ok(value)
    }
}

fn model_line(model: &Value) -> String {
    let name = model["display_name"].as_str().unwrap_or("");
    let id = model
        .get("slug")
        .or_else(|| model.get("id"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let provider = model["provider"].as_str().unwrap_or("");
    let status = model["status"].as_str().unwrap_or("");
    let default = if model["default"].as_bool() == Some(true) {
        " (default)"
    } else {
        ""
    };
    format!("  {id:<40} {name:<28} {provider:<18} {status}{default}")
}

pub async fn models(remote: Remote, command: ModelsCommand) -> anyhow::Result<()> {
    let client = Client::new(&remote)?;
    let answer = match command {
        ModelsCommand::List => {
            let answer = client
                .call(reqwest::Method::GET, "/v1/models", None, None)
                .await?;
            if !client.json {
                say("platform:");
                for model in answer["platform"].as_array().into_iter().flatten() {
                    say(&model_line(model));
                }
                say("custom:");
                for model in answer["custom"].as_array().into_iter().flatten() {
                    say(&model_line(model));
                }
                return Ok(());
            }
            answer
        }
        ModelsCommand::Show { slug } => {
            client
                .call(
                    reqwest::Method::GET,
                    &format!("/v1/models/{}", segment(&slug)),
                    None,
                    None,
                )
                .await?
        }
        ModelsCommand::Add(fields) => {
            let mut body = fields_body(&fields, true)?;
            let mut draft = Map::new();
            for key in [
                "provider",
                "provider_model_id",
                "endpoint_url",
                "region",
                "credential",
                "credential_id",
            ] {
                if let Some(value) = body.get(key) {
                    draft.insert(key.to_owned(), value.clone());
                }
            }
            let test = run_test(&client, "/v1/connection-tests", Value::Object(draft)).await?;
            let result = &test["result"];
            if result["passed"] != true {
                bail!("not added: Test Connection did not pass");
            }
            body["connection_test_id"] = test["id"].clone();
            offer_prices(&mut body, result)?;
            client
                .call(reqwest::Method::POST, "/v1/models", Some(body), None)
                .await?
        }
        ModelsCommand::Test {
            slug,
            new_secret,
            secret_stdin,
        } => {
            let mut body = Map::new();
            if new_secret {
                let shown = client
                    .call(
                        reqwest::Method::GET,
                        &format!("/v1/models/{}", segment(&slug)),
                        None,
                        None,
                    )
                    .await?;
                let provider = shown["provider"].as_str().unwrap_or("").to_owned();
                let mut reader = SecretReader::new(secret_stdin);
                let key = if provider == "bedrock" {
                    "bedrock_api_key"
                } else {
                    "api_key"
                };
                body.insert(
                    "credential".into(),
                    json!({ key: reader.read("new secret")? }),
                );
            }
            let test = run_test(
                &client,
                &format!("/v1/models/{}/connection-tests", segment(&slug)),
                Value::Object(body),
            )
            .await?;
            if test["result"]["passed"] != true {
                bail!("Test Connection did not pass");
            }
            return Ok(());
        }
        ModelsCommand::Edit {
            slug,
            fields,
            if_match,
        } => {
            let body = fields_body(&fields, false)?;
            client
                .call(
                    reqwest::Method::PATCH,
                    &format!("/v1/models/{}", segment(&slug)),
                    Some(body),
                    if_match,
                )
                .await?
        }
        ModelsCommand::Deactivate { slug, yes } => {
            let path = format!("/v1/models/{}", segment(&slug));
            match client
                .call(reqwest::Method::DELETE, &path, None, None)
                .await
            {
                Ok(answer) => answer,
                Err(error) if error.to_string().contains("model.has_dependents") => {
                    say(&format!("{error}"));
                    if !yes
                        && !confirm(
                            "Deactivate anyway? Those workflows will fail until repointed [y/N] ",
                        )?
                    {
                        anyhow::bail!("not deactivated");
                    }
                    client
                        .call(
                            reqwest::Method::DELETE,
                            &format!("{path}?confirm=true"),
                            None,
                            None,
                        )
                        .await?
                }
                Err(error) => return Err(error),
            }
        }
        ModelsCommand::Reactivate { slug } => {
            client
                .call(
                    reqwest::Method::POST,
                    &format!("/v1/models/{}/activation", segment(&slug)),
                    None,
                    None,
                )
                .await?
        }
    };
    say(&serde_json::to_string_pretty(&answer)?);
    Ok(())
}

pub async fn credentials(remote: Remote, command: CredentialsCommand) -> anyhow::Result<()> {
    let client = Client::new(&remote)?;
    match command {
        CredentialsCommand::List => {
            let answer = client
                .call(reqwest::Method::GET, "/v1/credentials", None, None)
                .await?;
            if client.json {
                say(&serde_json::to_string_pretty(&answer)?);
                return Ok(());
            }
            for c in answer["items"].as_array().into_iter().flatten() {
                say(&format!(
                    "  {:<40} {:<18} {:<12} used by {}",
                    c["id"].as_str().unwrap_or(""),
                    c["provider"].as_str().unwrap_or(""),
                    c["preview"].as_str().unwrap_or(""),
                    c["used_by"]
                ));
            }
        }
    }
    Ok(())
}

/// Requests a connection test, shows a spinner until it completes, prints the outcome and
/// its hint, and returns the test.
async fn run_test(client: &Client, path: &str, body: Value) -> anyhow::Result<Value> {
    let requested = client
        .call(reqwest::Method::POST, path, Some(body), None)
        .await?;
    let id = requested["id"].as_str().unwrap_or("").to_owned();
    let spinner = indicatif::ProgressBar::new_spinner();
    spinner.set_message("testing the connection…");
    spinner.enable_steady_tick(std::time::Duration::from_millis(100));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let test = loop {
        let test = client
            .call(
                reqwest::Method::GET,
                &format!("/v1/connection-tests/{}?wait=2", segment(&id)),
                None,
                None,
            )
            .await?;
        if test["status"] == "completed" {
            break test;
        }
        if std::time::Instant::now() > deadline {
            spinner.finish_and_clear();
            bail!(
                "the connection test {id} is still pending; check the worker (GET /v1/connection-tests/{id})"
            );
        }
    };
    spinner.finish_and_clear();
    let result = &test["result"];
    let class = result["class"].as_str().unwrap_or("?");
    let latency = result["latency_ms"].as_u64().unwrap_or(0);
    if result["passed"] == true {
        say(&format!("Test Connection passed ({latency} ms)"));
    } else {
        say(&format!("Test Connection failed: {class}"));
        say(&format!("  fix: {}", result["hint"].as_str().unwrap_or("")));
        if let Some(message) = result["upstream_message"].as_str() {
            let status = result["upstream_status"]
                .as_u64()
                .map(|s| format!("{s} "))
                .unwrap_or_default();
            say(&format!("  provider said: {status}{message}"));
        }
    }
    Ok(test)
}

/// Offers the suggested prices for costs left blank: applied after a yes on a terminal;
/// without one, printed only.
fn offer_prices(body: &mut Value, result: &Value) -> anyhow::Result<()> {
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
    say(&format!(
        "known prices for this model: {}",
        listing.join(", ")
    ));
    if std::io::stdin().is_terminal() && confirm("Use them? [y/N] ")? {
        for (field, price) in offered {
            body[field] = Value::String(price);
        }
    }
    Ok(())
}

/// Builds the JSON body from flags, reading secrets when a credential is entered.
fn fields_body(fields: &ModelFields, adding: bool) -> anyhow::Result<Value> {
    let mut body = Map::new();
    let mut put = |key: &str, value: Option<Value>| {
        if let Some(value) = value {
            body.insert(key.to_owned(), value);
        }
    };
    put("display_name", fields.name.clone().map(Value::from));
    put("provider", fields.provider.clone().map(Value::from));
    put(
        "provider_model_id",
        fields.model_id.clone().map(Value::from),
    );
    put("endpoint_url", fields.endpoint_url.clone().map(Value::from));
    put("region", fields.region.clone().map(Value::from));
    put("max_tokens", fields.max_tokens.map(Value::from));
    put(
        "input_cost_per_token",
        fields.input_cost.clone().map(Value::from),
    );
    put(
        "output_cost_per_token",
        fields.output_cost.clone().map(Value::from),
    );
    put(
        "credential_id",
        fields.credential_id.clone().map(Value::from),
    );
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
    let wants_secret = if adding {
        fields.credential_id.is_none() && !fields.no_credential
    } else {
        fields.new_secret
    };
    if wants_secret {
        let provider = fields.provider.as_deref().unwrap_or("");
        body.insert("credential".into(), read_credential(provider, fields)?);
    }
    Ok(Value::Object(body))
}

fn read_credential(provider: &str, fields: &ModelFields) -> anyhow::Result<Value> {
    let mut lines = SecretReader::new(fields.secret_stdin);
    if let Some(access_key_id) = &fields.access_key_id {
        let secret = lines.read("AWS secret access key")?;
        let mut credential = json!({"access_key_id": access_key_id, "secret_access_key": secret});
        if fields.session_token {
            credential["session_token"] = json!(lines.read("AWS session token")?);
        }
        return Ok(credential);
    }
    if provider == "bedrock" {
        return Ok(json!({"bedrock_api_key": lines.read("Bedrock API key")?}));
    }
    Ok(json!({"api_key": lines.read("API key")?}))
}

/// Asks a yes/no question on the terminal; without one, the answer is no.
fn confirm(question: &str) -> anyhow::Result<bool> {
    use std::io::Write;
    if !std::io::stdin().is_terminal() {
        say("no terminal to confirm on; pass --yes to deactivate anyway");
        return Ok(false);
    }
    eprint!("{question}");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

struct SecretReader {
    from_stdin: bool,
}

impl SecretReader {
    fn new(from_stdin: bool) -> Self {
        Self { from_stdin }
    }

    fn read(&mut self, what: &str) -> anyhow::Result<String> {
        let value = if self.from_stdin || !std::io::stdin().is_terminal() {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .context("cannot read the secret from stdin")?;
            line.trim_end_matches(['\r', '\n']).to_owned()
        } else {
            rpassword::prompt_password(format!("{what}: ")).context("cannot read the secret")?
        };
        if value.is_empty() {
            bail!("no {what} given");
        }
        Ok(value)
    }
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
    use super::segment;

    #[test]
    fn path_segments_are_encoded() {
        assert_eq!(segment("team-gpt"), "team-gpt");
        assert_eq!(segment("x?confirm=true"), "x%3Fconfirm%3Dtrue");
        assert_eq!(segment("a/b c"), "a%2Fb%20c");
        assert_eq!(segment("é"), "%C3%A9");
    }
}
