//! `modelreg export …`: the org's models in other tools' formats. `litellm-config` writes a
//! LiteLLM proxy `model_list` whose secrets are `os.environ/VAR` references, and on request
//! the variables' values to a 0600 file (with a service token: only resolve hands out
//! secrets).

use std::path::Path;

use anyhow::Context;
use api::{LiteLlmConfig, Positioned, Resolved, ResolvedCredential};

use super::args::{ExportCommand, Remote};
use super::http::{Answer, ApiError, Client, segment};
use crate::{note, say};

pub(crate) async fn run(remote: Remote, command: ExportCommand) -> anyhow::Result<()> {
    let client = Client::new(&remote)?;
    let ExportCommand::LitellmConfig { out, env_file } = command;
    let answer: Answer<Positioned<LiteLlmConfig>> =
        client.get("/v1/exports/litellm-config").answer().await?;
    let config = &answer.value.value;
    let yaml = serde_norway::to_string(config).context("cannot write the config as YAML")?;
    match &out {
        Some(path) => {
            std::fs::write(path, &yaml)
                .with_context(|| format!("cannot write {}", path.display()))?;
            note(&format!(
                "wrote {} deployments to {}",
                config.model_list.len(),
                path.display()
            ));
        }
        None => say(yaml.trim_end()),
    }
    if let Some(path) = env_file {
        let lines = secrets_of(&client, config).await?;
        write_private(&path, &lines)?;
        note(&format!(
            "wrote {} variables to {} (mode 0600)",
            lines.len(),
            path.display()
        ));
    }
    Ok(())
}

/// `VAR=value` for every `os.environ/VAR` the config names, from each model's resolve.
async fn secrets_of(client: &Client, config: &LiteLlmConfig) -> anyhow::Result<Vec<String>> {
    let mut lines = Vec::new();
    for deployment in &config.model_list {
        let params = &deployment.litellm_params;
        let wanted = [
            params
                .api_key
                .as_ref()
                .map(|k| k.0.expose_secret().to_owned()),
            params.aws_access_key_id.clone(),
            params
                .aws_secret_access_key
                .as_ref()
                .map(|k| k.0.expose_secret().to_owned()),
        ];
        if wanted
            .iter()
            .all(|w| w.as_deref().and_then(env_var).is_none())
        {
            continue;
        }
        let path = format!("/v1/resolve/{}", segment(&deployment.model_name));
        let resolved: Answer<Positioned<Resolved>> = match client.get(&path).answer().await {
            Ok(resolved) => resolved,
            Err(error) => {
                let code = error
                    .downcast_ref::<ApiError>()
                    .and_then(ApiError::problem)
                    .map(|p| p.code.clone());
                if code.as_deref() == Some("platform.not_configured") {
                    note(&format!(
                        "{}: no platform key on the registry; set the variable yourself",
                        deployment.model_name
                    ));
                    continue;
                }
                return Err(error);
            }
        };
        let values: [Option<String>; 3] = match &resolved.value.value.credential {
            Some(ResolvedCredential::ApiKey { api_key }) => {
                [Some(api_key.0.expose_secret().to_owned()), None, None]
            }
            Some(ResolvedCredential::BedrockApiKey { bedrock_api_key }) => [
                Some(bedrock_api_key.0.expose_secret().to_owned()),
                None,
                None,
            ],
            Some(ResolvedCredential::AwsAccessKey {
                access_key_id,
                secret_access_key,
                ..
            }) => [
                None,
                Some(access_key_id.clone()),
                Some(secret_access_key.0.expose_secret().to_owned()),
            ],
            None => [None, None, None],
        };
        for (reference, value) in wanted.iter().zip(values) {
            if let (Some(var), Some(value)) = (reference.as_deref().and_then(env_var), value) {
                lines.push(format!("{var}={}", quoted(&value)));
            }
        }
    }
    Ok(lines)
}

/// The variable an `os.environ/VAR` reference names.
fn env_var(reference: &str) -> Option<&str> {
    reference.strip_prefix("os.environ/")
}

/// A value as one shell word for an env file (single-quoted unless plainly safe).
fn quoted(value: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "-_./:+=@".contains(c);
    if !value.is_empty() && value.chars().all(safe) {
        return value.to_owned();
    }
    format!("'{}'", value.replace('\'', "'\\''"))
}

/// Writes `lines` to `path`, readable by its owner only.
fn write_private(path: &Path, lines: &[String]) -> anyhow::Result<()> {
    let text: String = lines.iter().map(|line| format!("{line}\n")).collect();
    eventlog::write_owner_only(path, text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_values_are_quoted_only_when_needed() {
        assert_eq!(quoted("sk-abc_123"), "sk-abc_123");
        assert_eq!(quoted("a b"), "'a b'");
        assert_eq!(quoted("it's"), "'it'\\''s'");
        assert_eq!(
            env_var("os.environ/MODEL_M_API_KEY"),
            Some("MODEL_M_API_KEY")
        );
        assert_eq!(env_var("sk-real"), None);
    }
}
