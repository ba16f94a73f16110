//! What the CLI reads from the person at the keyboard: secrets from stdin or a hidden prompt,
//! never from argv (argv is visible to every user of the machine), and yes/no answers.

use std::io::{BufRead, IsTerminal};

use anyhow::{Context, bail};
use api::{CredentialInput, SecretField};

/// Reads a credential in the shape `provider` takes: an IAM key pair or a Bedrock API key
/// for Bedrock, an API key for the rest. `empty_hint` is added to the refusal of an empty one.
pub(crate) fn read_credential(
    provider: &str,
    access_key_id: Option<&str>,
    session_token: bool,
    from_stdin: bool,
    empty_hint: Option<&str>,
) -> anyhow::Result<CredentialInput> {
    let reader = SecretReader { from_stdin };
    match (provider, access_key_id) {
        ("bedrock", Some(access_key_id)) => {
            let secret_access_key = reader.read("AWS secret access key", None)?;
            let session_token = if session_token {
                Some(reader.read("AWS session token", None)?)
            } else {
                None
            };
            Ok(CredentialInput {
                access_key_id: Some(access_key_id.to_owned()),
                secret_access_key: Some(secret_access_key),
                session_token,
                ..CredentialInput::default()
            })
        }
        ("bedrock", None) => Ok(CredentialInput {
            bedrock_api_key: Some(reader.read("Bedrock API key", None)?),
            ..CredentialInput::default()
        }),
        (other, Some(_)) => {
            bail!("--access-key-id is for Bedrock; a {other} model takes an API key")
        }
        (_, None) => Ok(CredentialInput {
            api_key: Some(reader.read("API key", empty_hint)?),
            ..CredentialInput::default()
        }),
    }
}

/// Asks a yes/no question on the terminal (stderr); the caller checks there is one.
pub(crate) fn confirm(question: &str) -> anyhow::Result<bool> {
    use std::io::Write;
    eprint!("{question}");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

/// Whether a person can be asked: stdin is a terminal.
pub(crate) fn on_a_terminal() -> bool {
    std::io::stdin().is_terminal()
}

/// Reads secrets: from stdin lines with `--secret-stdin` when stdin is a pipe, else from a
/// hidden prompt. Never from a pipe without `--secret-stdin`: an idle pipe would hang.
struct SecretReader {
    from_stdin: bool,
}

impl SecretReader {
    /// One secret, straight into a [`SecretField`] (zeroized on drop) once it is known not
    /// to be empty.
    fn read(&self, what: &str, empty_hint: Option<&str>) -> anyhow::Result<SecretField> {
        let value = match (self.from_stdin, on_a_terminal()) {
            (_, true) => {
                rpassword::prompt_password(format!("{what}: ")).context("cannot read the secret")?
            }
            (true, false) => {
                let mut line = String::new();
                std::io::stdin()
                    .lock()
                    .read_line(&mut line)
                    .context("cannot read the secret from stdin")?;
                // Truncated in place, so that no second copy of the secret is left behind.
                let kept = line.trim_end_matches(['\r', '\n']).len();
                line.truncate(kept);
                line
            }
            (false, false) => bail!(
                "cannot ask for the {what}: stdin is not a terminal; pipe the secret with --secret-stdin"
            ),
        };
        if value.is_empty() {
            bail!("no {what} given{}", empty_hint.unwrap_or(""));
        }
        Ok(SecretField::new(value))
    }
}
