//! The client commands' flags and arguments, as clap parses them.

use clap::{Args, Subcommand};

#[derive(Args)]
pub(crate) struct Remote {
    /// The registry's URL (MODELREG_SERVER).
    #[arg(
        long,
        global = true,
        env = "MODELREG_SERVER",
        default_value = "http://127.0.0.1:8080"
    )]
    pub(crate) server: String,
    /// A file holding the API token (MODELREG_TOKEN_FILE); or set MODELREG_TOKEN.
    #[arg(long, global = true, env = "MODELREG_TOKEN_FILE")]
    pub(crate) token_file: Option<std::path::PathBuf>,
    /// Print the API's JSON answers on stdout (human text goes to stderr).
    #[arg(long, global = true)]
    pub(crate) json: bool,
}

#[derive(Subcommand)]
pub(crate) enum ModelsCommand {
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
pub(crate) enum CredentialsCommand {
    /// List saved credentials (id, provider, kind, preview, used-by).
    List,
}

#[derive(Args)]
pub(crate) struct AddArgs {
    /// openai, anthropic, gemini, openrouter, fireworks, together, bedrock, huggingface, openai_compatible.
    #[arg(long)]
    pub(crate) provider: Option<String>,
    #[command(flatten)]
    pub(crate) fields: ModelFields,
    /// Bedrock: an IAM access key ID; the secret read is then its secret access key.
    #[arg(long, conflicts_with_all = ["credential_id", "no_credential"])]
    pub(crate) access_key_id: Option<String>,
    /// Bedrock with an access key: also read a session token (second line of stdin).
    #[arg(long, requires = "access_key_id")]
    pub(crate) session_token: bool,
    /// Read the secret from stdin's first line instead of prompting.
    #[arg(long)]
    pub(crate) secret_stdin: bool,
    /// No credential (OpenAI-compatible servers without auth).
    #[arg(long, conflicts_with = "credential_id")]
    pub(crate) no_credential: bool,
}

#[derive(Args)]
pub(crate) struct EditArgs {
    pub(crate) slug: String,
    #[command(flatten)]
    pub(crate) fields: ModelFields,
    #[command(flatten)]
    pub(crate) secret: NewSecretArgs,
    /// Refuse the edit if the model is no longer at this version.
    #[arg(long)]
    pub(crate) if_match: Option<u64>,
    /// Refused: a model's provider cannot change. Accepted here only to say so clearly.
    #[arg(long, hide = true)]
    pub(crate) provider: Option<String>,
    /// Refused: edit cannot remove a credential. Accepted here only to say so clearly.
    #[arg(long, hide = true)]
    pub(crate) no_credential: bool,
}

/// A new secret for `edit` and `test`; its shape (API key, Bedrock API key or IAM key pair)
/// follows the saved model's provider.
#[derive(Args)]
pub(crate) struct NewSecretArgs {
    /// Enter a new secret instead of keeping (or testing with) the stored one.
    #[arg(long)]
    pub(crate) new_secret: bool,
    /// Bedrock: an IAM access key ID; the secret read is then its secret access key.
    #[arg(long, requires = "new_secret")]
    pub(crate) access_key_id: Option<String>,
    /// Bedrock with an access key: also read a session token (second line of stdin).
    #[arg(long, requires = "access_key_id")]
    pub(crate) session_token: bool,
    /// Read the new secret from stdin's first line instead of prompting.
    #[arg(long, requires = "new_secret")]
    pub(crate) secret_stdin: bool,
}

/// The model fields `add` and `edit` share.
#[derive(Args)]
pub(crate) struct ModelFields {
    #[arg(long)]
    pub(crate) name: Option<String>,
    /// The model id as the provider names it.
    #[arg(long)]
    pub(crate) model_id: Option<String>,
    /// Base URL (OpenAI-compatible) or Inference Endpoint URL (HuggingFace).
    #[arg(long)]
    pub(crate) endpoint_url: Option<String>,
    /// AWS region (Bedrock).
    #[arg(long)]
    pub(crate) region: Option<String>,
    #[arg(long)]
    pub(crate) max_tokens: Option<u64>,
    #[arg(long)]
    pub(crate) json_mode: Option<bool>,
    #[arg(long)]
    pub(crate) vision: Option<bool>,
    #[arg(long)]
    pub(crate) tool_use: Option<bool>,
    /// effort, max_tokens, or off.
    #[arg(long)]
    pub(crate) reasoning: Option<String>,
    /// USD per token, e.g. 0.000003; on edit, `none` clears it.
    #[arg(long)]
    pub(crate) input_cost: Option<String>,
    /// USD per token, e.g. 0.000015; on edit, `none` clears it.
    #[arg(long)]
    pub(crate) output_cost: Option<String>,
    /// Use a saved credential instead of entering a secret.
    #[arg(long)]
    pub(crate) credential_id: Option<String>,
}
