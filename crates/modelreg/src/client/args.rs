//! The client commands' flags and arguments, as clap parses them. Every flag has help text
//! (a test walks the command tree).

use clap::{Args, Subcommand};

/// How client commands reach the registry and print; global, so they go before or after the
/// subcommand (`modelreg --json models show x` and `modelreg models show x --json`).
#[derive(Args)]
pub(crate) struct Remote {
    /// The registry's URL (MODELREG_SERVER); `serve` prints the one to use.
    #[arg(
        long,
        global = true,
        env = "MODELREG_SERVER",
        default_value = "http://127.0.0.1:8080",
        help_heading = "Client options"
    )]
    pub(crate) server: String,
    /// A file holding the API token (MODELREG_TOKEN_FILE; empty means unset); or set
    /// MODELREG_TOKEN.
    #[arg(
        long,
        global = true,
        env = "MODELREG_TOKEN_FILE",
        help_heading = "Client options"
    )]
    pub(crate) token_file: Option<String>,
    /// Print the API's JSON answers on stdout (human text goes to stderr).
    #[arg(long, global = true, help_heading = "Client options")]
    pub(crate) json: bool,
}

#[derive(Subcommand)]
pub(crate) enum ModelsCommand {
    /// List platform and active custom models (slug, name, provider, status).
    List {
        /// Also list deactivated custom models.
        #[arg(long)]
        all: bool,
        /// As they were at a log position or an RFC 3339 time.
        #[arg(long)]
        as_of: Option<String>,
    },
    /// Show every field of a custom model (by slug) or a platform model (by id, such as
    /// google/gemini-3.1-pro-preview).
    Show {
        /// A custom model's slug or a platform model's id.
        model: String,
        /// As it was at a log position or an RFC 3339 time (a custom model).
        #[arg(long)]
        as_of: Option<String>,
    },
    /// Add a custom model: runs Test Connection first (adding is gated on it), then adds.
    /// The secret is read from stdin (--secret-stdin) or a hidden prompt, after the other
    /// fields are checked.
    Add(AddArgs),
    /// Test Connection of a saved model with its stored credential (or --new-secret).
    Test {
        /// The model's slug.
        slug: String,
        #[command(flatten)]
        secret: NewSecretArgs,
    },
    /// Edit a custom model; only the flags given change. Its provider cannot change.
    Edit(EditArgs),
    /// Deactivate a custom model (the UI's Delete). Asks first when active workflows still
    /// reference it.
    Deactivate {
        /// The model's slug.
        slug: String,
        /// Deactivate even if active workflows reference the model, without asking.
        #[arg(long)]
        yes: bool,
    },
    /// Reactivate a deactivated model.
    Reactivate {
        /// The model's slug.
        slug: String,
    },
    /// Capability gating: which features a pipeline step may use with a model.
    Check(CheckArgs),
    /// The workflows that reference a custom model, active and inactive.
    Workflows {
        /// The model's slug.
        slug: String,
    },
    /// A custom model's history, newest first: its changes, connection tests and
    /// dependents warnings, who did them and when.
    History {
        /// The model's slug.
        slug: String,
        #[command(flatten)]
        pages: PageArgs,
    },
}

#[derive(Args)]
pub(crate) struct CheckArgs {
    /// A custom model's slug or a platform model's id.
    pub(crate) model: String,
    /// The step calls tools.
    #[arg(long)]
    pub(crate) tools: bool,
    /// The step asks for JSON output.
    #[arg(long)]
    pub(crate) json_mode: bool,
    /// The step sends images.
    #[arg(long)]
    pub(crate) image_input: bool,
    /// The step sets a reasoning effort (low / medium / high).
    #[arg(long)]
    pub(crate) reasoning_effort: bool,
    /// The step sets a reasoning token budget.
    #[arg(long)]
    pub(crate) reasoning_budget: bool,
    /// The output tokens the step asks for.
    #[arg(long)]
    pub(crate) max_tokens: Option<u64>,
}

#[derive(Subcommand)]
pub(crate) enum CredentialsCommand {
    /// List saved credentials (id, provider, kind, preview, used-by).
    List {
        /// As they were at a log position or an RFC 3339 time.
        #[arg(long)]
        as_of: Option<String>,
    },
    /// Show one saved credential's metadata (never its secret): state, expiry, the models
    /// using it, its last test and every version.
    Show {
        /// The credential's id (cred_…).
        id: String,
    },
    /// Save a credential for models to reference with --credential-id; the secret is read
    /// from a hidden prompt, or stdin with --secret-stdin.
    Add {
        /// What people call it, e.g. "Prod OpenAI".
        #[arg(long)]
        name: String,
        /// The provider the secret is for.
        #[arg(long)]
        provider: String,
        /// When the secret stops working (RFC 3339, e.g. 2026-12-31T23:59:00Z).
        #[arg(long)]
        expires_at: Option<String>,
        #[command(flatten)]
        secret: SecretArgs,
    },
    /// Rename a credential.
    Rename {
        /// The credential's id (cred_…).
        id: String,
        /// The new name.
        #[arg(long)]
        name: String,
    },
    /// Rotate a credential to a new secret (read like `add`'s): a new version, used by every
    /// model of the credential at once; the previous version is then shredded.
    Rotate {
        /// The credential's id (cred_…).
        id: String,
        /// Test the new secret with every active model using the credential first, and
        /// switch only if all pass.
        #[arg(long)]
        retest: bool,
        /// The new secret's expiry (RFC 3339).
        #[arg(long)]
        expires_at: Option<String>,
        #[command(flatten)]
        secret: SecretArgs,
    },
    /// Delete a credential no active model uses (move them first), shredding every version.
    Delete {
        /// The credential's id (cred_…).
        id: String,
    },
    /// Shred a retired version: destroy its data key, so its secret can never be recovered.
    Shred {
        /// The credential's id (cred_…).
        id: String,
        /// The version to shred (see `credentials show`).
        #[arg(long)]
        version: u64,
    },
    /// A saved credential's history, newest first: its events and the models that took it
    /// up or let it go (previews and fingerprints, never a secret).
    History {
        /// The credential's id (cred_…).
        id: String,
        #[command(flatten)]
        pages: PageArgs,
    },
    /// Whether a secret is already saved (the dialog's "Reuse saved credentials"): reads the
    /// secret from stdin or a hidden prompt and prints the saved credential's id, if any.
    Match {
        /// The provider the secret is for.
        #[arg(long)]
        provider: String,
        /// Bedrock: an IAM access key ID; the secret read is then its secret access key.
        #[arg(long)]
        access_key_id: Option<String>,
        /// Bedrock with an access key: also read a session token (second line of stdin).
        #[arg(long, requires = "access_key_id")]
        session_token: bool,
        /// Read the secret from stdin's first line instead of prompting.
        #[arg(long)]
        secret_stdin: bool,
    },
}

/// How a secret is read: never from a flag, which would leave it in the shell's history and
/// the process list.
#[derive(Args)]
pub(crate) struct SecretArgs {
    /// Bedrock: an IAM access key ID; the secret read is then its secret access key.
    #[arg(long)]
    pub(crate) access_key_id: Option<String>,
    /// Bedrock with an access key: also read a session token (second line of stdin).
    #[arg(long, requires = "access_key_id")]
    pub(crate) session_token: bool,
    /// Read the secret from stdin's first line instead of prompting.
    #[arg(long)]
    pub(crate) secret_stdin: bool,
}

#[derive(Subcommand)]
pub(crate) enum WorkflowsCommand {
    /// List the org's workflows and whether each is broken.
    List {
        /// Only active workflows that reference a deactivated or unknown model.
        #[arg(long)]
        broken: bool,
    },
    /// Show a workflow: its steps, where they point and its notices.
    Show {
        /// The workflow's id.
        id: String,
    },
    /// Report (create or replace) a workflow, as the pipelines product does.
    Put(PutWorkflowArgs),
    /// Forget a workflow and its references.
    Delete {
        /// The workflow's id.
        id: String,
    },
}

#[derive(Subcommand)]
pub(crate) enum UsageCommand {
    /// Tokens and spend of the org's LLM calls, each priced as its model was priced when the
    /// call was recorded; calls of models without prices are counted and marked unpriced.
    Summary {
        /// Calls made at or after this RFC 3339 time.
        #[arg(long)]
        from: Option<String>,
        /// Calls made before this RFC 3339 time.
        #[arg(long)]
        to: Option<String>,
        /// Group by model (default), workflow or day.
        #[arg(long, value_parser = ["model", "workflow", "day"])]
        group_by: Option<String>,
    },
    /// Record usage from a file (a backfill, or a runtime without the runtime crate): a JSON
    /// array of records or one record per line, each as `POST /v1/usage` takes it (id,
    /// model, workflow, input_tokens, output_tokens, called_at, ...), sent in batches of 250.
    /// A record the registry has already is counted once.
    Record {
        /// The file to read, or `-` for standard input.
        #[arg(long)]
        file: std::path::PathBuf,
    },
}

#[derive(Args)]
pub(crate) struct PutWorkflowArgs {
    /// The workflow's id (letters, digits, `-`, `_`).
    pub(crate) id: String,
    /// The workflow's name as people read it.
    #[arg(long)]
    pub(crate) name: String,
    /// Report it inactive (its references then never block a deactivation).
    #[arg(long)]
    pub(crate) inactive: bool,
    /// A step: the model it uses, then the features it asks for, e.g.
    /// `team-gpt:tools,json_output` (features: tools, json_output, vision_input, reasoning).
    /// Repeat for each step.
    #[arg(long = "step", value_name = "MODEL[:FEATURES]")]
    pub(crate) steps: Vec<String>,
}

#[derive(Subcommand)]
pub(crate) enum ExportCommand {
    /// A LiteLLM proxy `model_list` (YAML) for the org's active and platform models, every
    /// secret an `os.environ/VAR` reference.
    LitellmConfig {
        /// Write the config here instead of stdout.
        #[arg(long)]
        out: Option<std::path::PathBuf>,
        /// Also write the variables' values (the secrets) to this file, mode 0600; needs a
        /// service token (resolve hands out credentials to service tokens only).
        #[arg(long)]
        env_file: Option<std::path::PathBuf>,
    },
}

#[derive(Subcommand)]
pub(crate) enum OrgCommand {
    /// The org's choices among platform models: its default, the models it hides.
    PlatformModels,
    /// Choose the org's default model among the active platform models (admins).
    DefaultModel {
        /// The platform id, e.g. x-ai/grok-4.3.
        #[arg(required_unless_present = "platform")]
        id: Option<String>,
        /// Go back to the platform's default.
        #[arg(long, conflicts_with = "id")]
        platform: bool,
    },
    /// Hide exactly these platform models from the org (admins); none: show them all again.
    HideModels {
        /// Platform ids.
        ids: Vec<String>,
    },
}

#[derive(Subcommand)]
pub(crate) enum TokensCommand {
    /// Issue an API token for the org (admins only); it is printed once.
    Issue {
        /// Who or what the token is for, as the audit trail will name it.
        #[arg(long)]
        label: String,
        /// admin manages; member reads; service (a pipeline runtime) reads, reports
        /// workflows and resolves credentials.
        #[arg(long)]
        role: String,
        /// Refuse the token from this long after now on: a number and a unit, m, h or d
        /// (e.g. 30d).
        #[arg(long, conflicts_with = "expires_at")]
        expires_in: Option<String>,
        /// Refuse the token from this time on (RFC 3339, e.g. 2026-12-31T23:59:00Z).
        #[arg(long)]
        expires_at: Option<String>,
    },
    /// List the org's tokens (label, role, issued by and when, expiry, state); never a secret.
    List,
    /// Revoke a token: refused from the next request on. The org's last admin token stays.
    Revoke {
        /// The token's id (the 16 hex digits after `mr_`).
        id: String,
    },
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
    /// Apply the known prices Test Connection suggests for costs left blank, without asking
    /// (without a terminal they are otherwise only shown).
    #[arg(long)]
    pub(crate) accept_suggested_prices: bool,
}

#[derive(Args)]
pub(crate) struct EditArgs {
    /// The model's slug.
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
    /// The display name people pick the model by; the slug is made from it once and never
    /// changes.
    #[arg(long)]
    pub(crate) name: Option<String>,
    /// The model id as the provider names it, e.g. gpt-5.1 or claude-sonnet-4-6.
    #[arg(long)]
    pub(crate) model_id: Option<String>,
    /// Base URL (OpenAI-compatible) or Inference Endpoint URL (HuggingFace).
    #[arg(long)]
    pub(crate) endpoint_url: Option<String>,
    /// AWS region (Bedrock).
    #[arg(long)]
    pub(crate) region: Option<String>,
    /// The most output tokens a request to this model may ask for (1 to 2000000). With tool
    /// use, at least 16000 (32000 for multi-file generation), or tool calls are cut off;
    /// with extended reasoning, the provider's documented ceiling.
    #[arg(long)]
    pub(crate) max_tokens: Option<u64>,
    /// JSON mode: the model can be asked for JSON output (response_format).
    #[arg(long)]
    pub(crate) json_mode: Option<bool>,
    /// Vision: the model accepts images in its input.
    #[arg(long)]
    pub(crate) vision: Option<bool>,
    /// Tool use: the model can call tools (function calling); pipeline steps with tools are
    /// refused on models without it.
    #[arg(long)]
    pub(crate) tool_use: Option<bool>,
    /// Extended reasoning and the parameter shape it takes: `effort` (a level such as
    /// low/medium/high: OpenAI, OpenRouter, Gemini 3), `max_tokens` (a token budget:
    /// Anthropic, Bedrock, Gemini 2.5), or `off`.
    #[arg(long)]
    pub(crate) reasoning: Option<String>,
    /// USD per input token, e.g. 0.000003; on edit, `none` clears it.
    #[arg(long)]
    pub(crate) input_cost: Option<String>,
    /// USD per output token, e.g. 0.000015; on edit, `none` clears it.
    #[arg(long)]
    pub(crate) output_cost: Option<String>,
    /// Use a saved credential (its id, cred_…) instead of entering a secret.
    #[arg(long)]
    pub(crate) credential_id: Option<String>,
}

/// `modelreg audit`: which entries of the org's trail to print.
#[derive(Args, Clone, Default)]
pub(crate) struct AuditArgs {
    /// Entries of aggregates of this kind: org (tokens are the org's), credential, model,
    /// workflow, connection_test; with --id, also token.
    #[arg(long)]
    pub(crate) kind: Option<String>,
    /// With --kind: one aggregate's history by its id (a model's slug, a credential's id).
    #[arg(long, requires = "kind")]
    pub(crate) id: Option<String>,
    /// The actor: a token id, system, a worker's name, or a token's label.
    #[arg(long)]
    pub(crate) actor: Option<String>,
    /// An action (model.edited), or every action of a kind (model.).
    #[arg(long)]
    pub(crate) action: Option<String>,
    /// Recorded at or after this RFC 3339 time.
    #[arg(long)]
    pub(crate) since: Option<String>,
    /// Recorded at or before this RFC 3339 time.
    #[arg(long)]
    pub(crate) until: Option<String>,
    #[command(flatten)]
    pub(crate) pages: PageArgs,
}

/// How much of a trail or history to print.
#[derive(Args, Clone, Default)]
pub(crate) struct PageArgs {
    /// Entries per page (1 to 500; default 50).
    #[arg(long)]
    pub(crate) limit: Option<u32>,
    /// Follow the pages to the start of the trail (for an export with --json).
    #[arg(long)]
    pub(crate) all: bool,
    /// Start from this cursor (the next_cursor a previous page printed).
    #[arg(long)]
    pub(crate) cursor: Option<String>,
}
