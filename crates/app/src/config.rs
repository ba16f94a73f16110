//! Configuration in layers, each overriding the one before: defaults, a TOML file,
//! `MODELREG_*` environment variables, command-line flags. figment merges them in
//! [`Config::load_with_flags`]; this file also holds the one list of `MODELREG_*` names.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Format, Toml};
use figment::value::{Dict, Empty, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use serde::Deserialize;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Everything a process needs to start. `master_key` is base64 and secret: it is never
/// printed (there is no Debug on this type for that reason).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the HTTP API listens.
    pub listen: SocketAddr,
    /// Where the embedded log, keyring, views and key files live.
    pub data_dir: PathBuf,
    /// JetStream mode when set; embedded log when not. One server or several, comma-separated
    /// (a TOML array too): the client connects to any reachable one and fails over.
    #[serde(deserialize_with = "nats_servers")]
    pub nats_url: Option<String>,
    /// Replicas of the stream when modelreg creates it (3 on a production cluster).
    pub stream_replicas: usize,
    /// Replicas of the keyring's KV bucket when modelreg creates it.
    pub keyring_replicas: usize,
    /// The JetStream stream holding the log.
    pub stream: String,
    /// The NATS KV bucket holding wrapped data keys.
    pub keyring_bucket: String,
    pub master_key: Option<String>,
    pub master_key_file: Option<PathBuf>,
    /// The master key a rotation moves away from (base64, secret): it only unwraps. Set it
    /// to the old key, and the old key's place to the new one, for the rotation's duration
    /// (see the runbook in `ops/README.md`).
    pub previous_master_key: Option<String>,
    pub previous_master_key_file: Option<PathBuf>,
    /// The platform's OpenRouter key (secret), which platform models resolve to.
    pub platform_openrouter_key: Option<String>,
    pub log_format: LogFormat,
    /// A tracing filter such as `info` or `modelreg=debug`.
    pub log_level: String,
    /// How long a command waits for the views to reflect its write.
    pub read_your_writes_timeout_ms: u64,
    /// How long an HTTP connection may take to send a request's headers (and idle between
    /// requests) before it is closed.
    pub http_header_read_timeout_ms: u64,
    /// How long the projector's tail, or a worker's consumer, may go without delivering
    /// while the log holds events past it before it counts as lost and is made anew from the
    /// checkpoint (a NATS node holding it died, say).
    pub log_stall_timeout_ms: u64,
    /// Create the `default` org and print its admin token on first start.
    pub bootstrap_default_org: bool,
    /// How long an unwrapped data key stays in memory (zeroized when evicted, never written);
    /// 0 reads the keyring on every resolve. A key destroyed in another process stops opening
    /// here after at most this long.
    pub data_key_cache_ttl_ms: u64,
    /// How long a passing connection test lets its draft be added (15 minutes).
    pub connection_test_receipt_ttl_ms: u64,
    /// Sync the platform catalog from OpenRouter's models API every this many seconds inside
    /// `serve` (0: never; the operator runs `modelreg catalog sync`).
    pub catalog_sync_interval_s: u64,
    /// Vendors (comma-separated, e.g. `anthropic,openai`) whose new upstream models a sync
    /// lists at once instead of proposing them.
    pub catalog_auto_list_vendors: Option<String>,
    /// Outbound calls to providers (connection tests).
    pub providers: ProvidersConfig,
}

/// `[providers]` in the config file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProvidersConfig {
    /// Base URL per provider name (`anthropic = "https://proxy.corp/anthropic"`), for
    /// corporate proxies and tests; also `MODELREG_PROVIDER_<NAME>_BASE_URL`.
    pub base_urls: BTreeMap<String, String>,
    /// A connection test's whole deadline.
    pub timeout_ms: u64,
    /// Connection tests one worker runs at once.
    pub concurrency: usize,
    /// Let user-supplied URLs reach private ranges (10/8, 172.16/12, 192.168/16, …).
    pub allow_private: bool,
    /// Let user-supplied URLs reach loopback (127/8, ::1).
    pub allow_loopback: bool,
}

impl Default for ProvidersConfig {
    fn default() -> Self {
        Self {
            base_urls: BTreeMap::new(),
            timeout_ms: 20_000,
            concurrency: 256,
            allow_private: false,
            allow_loopback: false,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: default_data_dir(),
            nats_url: None,
            stream_replicas: 1,
            keyring_replicas: 1,
            stream: "REGISTRY".into(),
            keyring_bucket: "MODELREG_KEYRING".into(),
            master_key: None,
            master_key_file: None,
            previous_master_key: None,
            previous_master_key_file: None,
            platform_openrouter_key: None,
            log_format: LogFormat::Text,
            log_level: "info".into(),
            read_your_writes_timeout_ms: 5_000,
            http_header_read_timeout_ms: 30_000,
            log_stall_timeout_ms: 2_000,
            bootstrap_default_org: true,
            connection_test_receipt_ttl_ms: 15 * 60 * 1000,
            catalog_sync_interval_s: 0,
            catalog_auto_list_vendors: None,
            data_key_cache_ttl_ms: 60_000,
            providers: ProvidersConfig::default(),
        }
    }
}

/// A configuration the operator must fix; each says where (a file's line and column, a
/// variable, a flag) and what is wrong, never the value found there.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {why}")]
    Read { path: String, why: String },
    #[error("config file {path} is invalid: {why}")]
    Parse { path: String, why: String },
    #[error("environment variable {name} is invalid: {why}")]
    Env { name: String, why: String },
    /// A `MODELREG_*` variable nothing reads, most likely a misspelling.
    #[error(
        "unknown environment variable {name}: no setting has this name (the README's configuration table lists them)"
    )]
    UnknownEnv { name: String },
    /// `name` is the flag as typed: `--listen`.
    #[error("{name} is invalid: {why}")]
    Flag { name: String, why: String },
}

/// The environment variable naming the config file (the `--config` flag wins over it).
pub const CONFIG_FILE_VAR: &str = "MODELREG_CONFIG";

/// `MODELREG_*` variables that other parts of modelreg read, not this loader. They pass
/// unremarked so that one environment (a shell, a systemd unit) can serve every command;
/// any other unknown `MODELREG_*` name is an error, since it is most likely a misspelling.
pub const READ_ELSEWHERE: &[&str] = &[
    // The CLI's registry URL and API token (crates/modelreg/src/client.rs).
    "MODELREG_SERVER",
    "MODELREG_TOKEN",
    "MODELREG_TOKEN_FILE",
    // A worker process's /healthz, /readyz and /metrics listener (`--metrics-listen`).
    "MODELREG_METRICS_LISTEN",
    // Writes missing golden event encodings in the domain crate's tests.
    "MODELREG_BLESS",
];

/// `MODELREG_PROVIDER_<NAME>_BASE_URL` sets `providers.base_urls.<name>` (lower case).
const BASE_URL_VAR: (&str, &str) = ("MODELREG_PROVIDER_", "_BASE_URL");

/// How a variable's text becomes a value. The environment has only text, so each variable
/// says what its key holds; figment's own guessing would read `MODELREG_STREAM=1` as a
/// number and `MODELREG_BOOTSTRAP_DEFAULT_ORG=1` as anything but a switch.
#[derive(Clone, Copy)]
enum Read {
    /// The text as it is; the key's type parses it (an address, a log format, a path).
    Text,
    /// The text, or unset when empty (an `Option` key).
    TextOrUnset,
    /// A whole number.
    Number,
    /// `true` or `1`, `false` or `0`.
    Switch,
}

/// Every setting's variable and key. Names map to keys here rather than by splitting at
/// `_`, because a key may hold one (`MODELREG_READ_YOUR_WRITES_TIMEOUT_MS` is one key).
const SETTINGS: &[(&str, &[&str], Read)] = &[
    ("MODELREG_LISTEN", &["listen"], Read::Text),
    ("MODELREG_DATA_DIR", &["data_dir"], Read::Text),
    ("MODELREG_NATS_URL", &["nats_url"], Read::TextOrUnset),
    ("MODELREG_STREAM", &["stream"], Read::Text),
    (
        "MODELREG_STREAM_REPLICAS",
        &["stream_replicas"],
        Read::Number,
    ),
    (
        "MODELREG_KEYRING_REPLICAS",
        &["keyring_replicas"],
        Read::Number,
    ),
    ("MODELREG_KEYRING_BUCKET", &["keyring_bucket"], Read::Text),
    ("MODELREG_MASTER_KEY", &["master_key"], Read::TextOrUnset),
    (
        "MODELREG_MASTER_KEY_FILE",
        &["master_key_file"],
        Read::TextOrUnset,
    ),
    (
        "MODELREG_PREVIOUS_MASTER_KEY",
        &["previous_master_key"],
        Read::TextOrUnset,
    ),
    (
        "MODELREG_PREVIOUS_MASTER_KEY_FILE",
        &["previous_master_key_file"],
        Read::TextOrUnset,
    ),
    (
        "MODELREG_PLATFORM_OPENROUTER_KEY",
        &["platform_openrouter_key"],
        Read::TextOrUnset,
    ),
    ("MODELREG_LOG_FORMAT", &["log_format"], Read::Text),
    ("MODELREG_LOG", &["log_level"], Read::Text),
    (
        "MODELREG_READ_YOUR_WRITES_TIMEOUT_MS",
        &["read_your_writes_timeout_ms"],
        Read::Number,
    ),
    (
        "MODELREG_HTTP_HEADER_READ_TIMEOUT_MS",
        &["http_header_read_timeout_ms"],
        Read::Number,
    ),
    (
        "MODELREG_LOG_STALL_TIMEOUT_MS",
        &["log_stall_timeout_ms"],
        Read::Number,
    ),
    (
        "MODELREG_BOOTSTRAP_DEFAULT_ORG",
        &["bootstrap_default_org"],
        Read::Switch,
    ),
    (
        "MODELREG_DATA_KEY_CACHE_TTL_MS",
        &["data_key_cache_ttl_ms"],
        Read::Number,
    ),
    (
        "MODELREG_CONNECTION_TEST_RECEIPT_TTL_MS",
        &["connection_test_receipt_ttl_ms"],
        Read::Number,
    ),
    (
        "MODELREG_CATALOG_SYNC_INTERVAL_S",
        &["catalog_sync_interval_s"],
        Read::Number,
    ),
    (
        "MODELREG_CATALOG_AUTO_LIST_VENDORS",
        &["catalog_auto_list_vendors"],
        Read::TextOrUnset,
    ),
    (
        "MODELREG_PROVIDERS_TIMEOUT_MS",
        &["providers", "timeout_ms"],
        Read::Number,
    ),
    (
        "MODELREG_PROVIDERS_CONCURRENCY",
        &["providers", "concurrency"],
        Read::Number,
    ),
    (
        "MODELREG_PROVIDERS_ALLOW_PRIVATE",
        &["providers", "allow_private"],
        Read::Switch,
    ),
    (
        "MODELREG_PROVIDERS_ALLOW_LOOPBACK",
        &["providers", "allow_loopback"],
        Read::Switch,
    ),
];

/// Command-line flags: the last layer, over the environment. `None` leaves a setting to the
/// layers below. (No `Debug`: a NATS URL may carry a password.)
#[derive(Clone, Default)]
pub struct Flags {
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `--nats`.
    pub nats_url: Option<String>,
    /// `--log-format`.
    pub log_format: Option<String>,
    /// `--listen`.
    pub listen: Option<String>,
}

/// Each flag and its key.
const FLAGS: &[(&str, &str)] = &[
    ("--data-dir", "data_dir"),
    ("--nats", "nats_url"),
    ("--log-format", "log_format"),
    ("--listen", "listen"),
];

/// Whether some part of modelreg reads the environment variable `name`: a setting, the
/// config file's variable, one of [`READ_ELSEWHERE`], or a provider's base URL.
pub fn is_known_env_var(name: &str) -> bool {
    name == CONFIG_FILE_VAR
        || READ_ELSEWHERE.contains(&name)
        || SETTINGS.iter().any(|(var, _, _)| *var == name)
        || base_url_provider(name).is_some()
}

/// `anthropic` for `MODELREG_PROVIDER_ANTHROPIC_BASE_URL`.
fn base_url_provider(name: &str) -> Option<String> {
    let (prefix, suffix) = BASE_URL_VAR;
    name.strip_prefix(prefix)?
        .strip_suffix(suffix)
        .filter(|provider| !provider.is_empty())
        .map(str::to_ascii_lowercase)
}

/// `$XDG_DATA_HOME/modelreg`, else `~/.local/share/modelreg`, else `./.modelreg`.
pub fn default_data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("modelreg");
    }
    if let Some(home) = std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(home).join(".local/share/modelreg");
    }
    PathBuf::from(".modelreg")
}

impl Config {
    /// The vendors whose new upstream models a catalog sync lists at once.
    pub fn catalog_auto_list(&self) -> Vec<String> {
        self.catalog_auto_list_vendors
            .as_deref()
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|vendor| !vendor.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// Loads defaults, then `file` (or `MODELREG_CONFIG`), then the `MODELREG_*` variables
    /// of `env` (the process's, or a test's own).
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        Self::load_with_flags(file, env, &Flags::default())
    }

    /// As [`Config::load`], with `flags` over everything else. An unknown TOML key or
    /// `MODELREG_*` variable is an error naming it; no error quotes a value, which may be
    /// a secret.
    pub fn load_with_flags(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
        flags: &Flags,
    ) -> Result<Self, ConfigError> {
        let mut env: Vec<(String, String)> = env
            .into_iter()
            .filter(|(name, _)| name.starts_with("MODELREG_"))
            .collect();
        // Sorted, so that of several unknown names the same one is reported every time.
        env.sort();
        let from_env = env
            .iter()
            .find(|(name, _)| name == CONFIG_FILE_VAR)
            .map(|(_, path)| PathBuf::from(path));
        let file = file.map(Path::to_path_buf).or(from_env);
        // The defaults are `Config::default()`, through `#[serde(default)]`.
        let mut figment = Figment::new();
        if let Some(path) = &file {
            figment = figment.merge(file_layer(path)?);
        }
        let figment = figment
            .merge(Layer {
                source: ENVIRONMENT,
                values: env_values(&env)?,
                name_of: env_var_of,
            })
            .merge(Layer {
                source: COMMAND_LINE,
                values: flag_values(flags)?,
                name_of: flag_of,
            });
        figment
            .extract()
            .map_err(|error| extraction_problem(&error, file.as_deref()))
    }

    pub fn master_key_path(&self) -> PathBuf {
        self.master_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("master.key"))
    }
}

const ENVIRONMENT: &str = "environment";
const COMMAND_LINE: &str = "command line";

/// The config file as a layer, once it is known to parse and to fit [`Config`] on its own:
/// checked here, an error can give the line of the problem (figment knows keys, not lines).
fn file_layer(path: &Path) -> Result<impl Provider, ConfigError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
        path: shown.clone(),
        why: e.to_string(),
    })?;
    if let Err(error) = text.parse::<toml::Table>() {
        return Err(ConfigError::Parse {
            path: shown,
            why: toml_problem(&text, &error),
        });
    }
    let layer = Toml::string(&text);
    if let Err(error) = Figment::from(&layer).extract::<Config>() {
        // toml locates the problem; figment's kind of error says what it is without the
        // value toml's message would quote (`invalid type: string "sk-…"`).
        let at = match toml::from_str::<Config>(&text) {
            Err(located) => located.span().map(|span| location(&text, span.start)),
            Ok(_) => None,
        };
        let what = problem(&error, true);
        return Err(ConfigError::Parse {
            path: shown,
            why: match at {
                Some(at) => format!("{at}: {what}"),
                None => what,
            },
        });
    }
    Ok(layer)
}

/// The `MODELREG_*` variables as nested keys, each read as [`SETTINGS`] says.
fn env_values(env: &[(String, String)]) -> Result<Dict, ConfigError> {
    let mut values = Dict::new();
    for (name, text) in env {
        let bad = |why: String| ConfigError::Env {
            name: name.clone(),
            why,
        };
        if let Some((_, key, read)) = SETTINGS.iter().find(|(var, _, _)| var == name) {
            let value = match read {
                Read::Text => Value::from(text.as_str()),
                Read::TextOrUnset if text.is_empty() => Empty::None.into(),
                Read::TextOrUnset => Value::from(text.as_str()),
                Read::Number => Value::from(text.parse::<u64>().map_err(|e| bad(e.to_string()))?),
                Read::Switch => Value::from(match text.as_str() {
                    "1" | "true" => true,
                    "0" | "false" => false,
                    _ => return Err(bad("use true or false".into())),
                }),
            };
            insert(&mut values, key, value);
        } else if let Some(provider) = base_url_provider(name) {
            insert(
                &mut values,
                &["providers", "base_urls", &provider],
                Value::from(text.as_str()),
            );
        } else if !is_known_env_var(name) {
            return Err(ConfigError::UnknownEnv { name: name.clone() });
        }
    }
    Ok(values)
}

/// The flags given, as keys.
fn flag_values(flags: &Flags) -> Result<Dict, ConfigError> {
    let mut values = Dict::new();
    if let Some(dir) = &flags.data_dir {
        // Every other layer is text too; a path that is not would change if made into text.
        let Some(dir) = dir.to_str() else {
            return Err(ConfigError::Flag {
                name: "--data-dir".into(),
                why: "not valid UTF-8".into(),
            });
        };
        values.insert("data_dir".into(), Value::from(dir));
    }
    for (key, text) in [
        ("nats_url", &flags.nats_url),
        ("log_format", &flags.log_format),
        ("listen", &flags.listen),
    ] {
        if let Some(text) = text {
            values.insert(key.into(), Value::from(text.as_str()));
        }
    }
    Ok(values)
}

fn insert(values: &mut Dict, key: &[&str], value: Value) {
    let Some((last, parents)) = key.split_last() else {
        return;
    };
    let mut dict = values;
    for parent in parents {
        let entry = dict
            .entry((*parent).to_owned())
            .or_insert_with(|| Dict::new().into());
        let Value::Dict(_, inner) = entry else {
            return;
        };
        dict = inner;
    }
    dict.insert((*last).to_owned(), value);
}

/// A layer made here (the environment's, the flags'), which names its keys as the user
/// wrote them, so that an error says `MODELREG_LISTEN` or `--listen` rather than `listen`.
struct Layer {
    source: &'static str,
    values: Dict,
    name_of: fn(&Profile, &[&str]) -> String,
}

impl Provider for Layer {
    fn metadata(&self) -> Metadata {
        Metadata::named(self.source).interpolater(self.name_of)
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        Ok(Profile::Default.collect(self.values.clone()))
    }
}

fn env_var_of(_: &Profile, key: &[&str]) -> String {
    if let Some((var, _, _)) = SETTINGS.iter().find(|(_, k, _)| *k == key) {
        return (*var).to_owned();
    }
    match key {
        ["providers", "base_urls", provider, ..] => format!(
            "{}{}{}",
            BASE_URL_VAR.0,
            provider.to_ascii_uppercase(),
            BASE_URL_VAR.1
        ),
        _ => key.join("."),
    }
}

fn flag_of(_: &Profile, key: &[&str]) -> String {
    FLAGS
        .iter()
        .find(|(_, k)| [*k] == key)
        .map_or_else(|| key.join("."), |(flag, _)| (*flag).to_owned())
}

/// An error of the merged layers, named after the variable or flag that set the value.
fn extraction_problem(error: &figment::Error, file: Option<&Path>) -> ConfigError {
    let key: Vec<&str> = error.path.iter().map(String::as_str).collect();
    let profile = error.profile.clone().unwrap_or_default();
    match &error.metadata {
        Some(metadata) if metadata.name == ENVIRONMENT => ConfigError::Env {
            name: metadata.interpolate(&profile, &key),
            why: problem(error, false),
        },
        Some(metadata) if metadata.name == COMMAND_LINE => ConfigError::Flag {
            name: metadata.interpolate(&profile, &key),
            why: problem(error, false),
        },
        // The file was checked on its own, so this is unlikely; say what and where anyway.
        _ => ConfigError::Parse {
            path: file.map_or_else(|| "(none)".into(), |f| f.display().to_string()),
            why: problem(error, true),
        },
    }
}

/// What is wrong, in words that never repeat the value: serde's messages quote what they
/// found, and the value may be a secret. Keys are named (they are not secrets); `keyed`
/// starts with the key, for a file, whose keys are not named otherwise.
fn problem(error: &figment::Error, keyed: bool) -> String {
    use figment::error::Kind;
    let key = error.path.join(".");
    let what = match &error.kind {
        Kind::InvalidType(_, expected) | Kind::InvalidValue(_, expected) => {
            format!("expected {expected}")
        }
        Kind::InvalidLength(_, expected) => format!("expected {expected}"),
        Kind::UnknownVariant(_, expected) => format!("use {}", expected.join(" or ")),
        // The path ends with the unknown key already, where there is a path.
        Kind::UnknownField(field, _) if key.is_empty() => return format!("unknown key {field}"),
        Kind::UnknownField(..) => return format!("unknown key {key}"),
        Kind::MissingField(field) => format!("missing {field}"),
        Kind::DuplicateField(field) => format!("{field} is given twice"),
        Kind::ISizeOutOfRange(_) | Kind::USizeOutOfRange(_) => "out of range".into(),
        Kind::Unsupported(_) | Kind::UnsupportedKey(..) => "not a value this key takes".into(),
        // Custom messages come from the keys' own parsers: std's address parser says
        // "invalid socket address syntax" and nothing of what it read.
        Kind::Message(message) => message.clone(),
    };
    let hint = match key.as_str() {
        "listen" => "; use host:port such as 127.0.0.1:8080",
        _ => "",
    };
    if keyed && !key.is_empty() {
        return format!("{key}: {what}{hint}");
    }
    format!("{what}{hint}")
}

/// `nats_url`: a comma-separated list (or an array) of NATS server URLs, each checked here,
/// so that a wrong list is a configuration error at start, not "temporarily unavailable".
/// Kept as the comma-separated text; [`eventlog::connect_nats`] reads it.
fn nats_servers<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    let list = match Option::<OneOrMany>::deserialize(d)? {
        None => return Ok(None),
        Some(OneOrMany::One(text)) => text,
        Some(OneOrMany::Many(urls)) => urls.join(","),
    };
    eventlog::check_server_list(&list).map_err(serde::de::Error::custom)?;
    Ok(Some(list))
}

/// `line 2, column 7` of byte `offset` in `text`.
fn location(text: &str, offset: usize) -> String {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    format!("line {line}, column {column}")
}

/// A TOML syntax error without the excerpt of the file `toml` would quote: the line may
/// hold a secret (an unquoted key). Line and column, and what toml expected there.
fn toml_problem(text: &str, error: &toml::de::Error) -> String {
    match error.span() {
        Some(span) => format!("{}: {}", location(text, span.start), error.message()),
        None => error.message().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nats_takes_a_list_of_servers_and_a_wrong_one_is_named_by_position() {
        let env = |value: &str| [("MODELREG_NATS_URL".to_owned(), value.to_owned())];
        let config = Config::load(None, env("nats://a:4222, nats://b:4222,c:4222")).unwrap();
        assert_eq!(
            config.nats_url.as_deref(),
            Some("nats://a:4222, nats://b:4222,c:4222")
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "nats_url = [\"nats://a:4222\", \"nats://b:4222\"]\nstream_replicas = 3\n",
        )
        .unwrap();
        let config = Config::load(Some(&path), []).unwrap();
        assert_eq!(
            config.nats_url.as_deref(),
            Some("nats://a:4222,nats://b:4222")
        );
        assert_eq!((config.stream_replicas, config.keyring_replicas), (3, 1));
        let error = Config::load(None, env("nats://a:4222,nats://u:sk-canary0123@::bad::"))
            .err()
            .unwrap();
        assert!(matches!(error, ConfigError::Env { .. }), "{error}");
        let text = error.to_string();
        assert!(
            text.contains("MODELREG_NATS_URL")
                && text.contains("entry 2")
                && !text.contains("canary"),
            "{text}"
        );
    }

    #[test]
    fn file_then_env() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("modelreg.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9000\"\nlog_format = \"json\"\n",
        )
        .unwrap();
        let env = [
            (
                "MODELREG_NATS_URL".to_owned(),
                "nats://127.0.0.1:4222".to_owned(),
            ),
            ("HOME".into(), "/x".into()),
        ];
        let config = Config::load(Some(&path), env).unwrap();
        assert_eq!(config.listen.port(), 9000);
        assert_eq!(config.log_format, LogFormat::Json);
        assert_eq!(config.nats_url.as_deref(), Some("nats://127.0.0.1:4222"));
    }

    #[test]
    fn a_bad_config_line_is_located_not_quoted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        for text in [
            "listen = \"127.0.0.1:9000\"\nplatform_openrouter_key = sk-or-v1-canary0123\n",
            "platform_openrouter_kye = \"sk-or-v1-canary0123\"\n",
            "stream = \"R\"\nread_your_writes_timeout_ms = \"sk-or-v1-canary0123\"\n",
            "[providers]\ntimeout_ms = 1\nallow_private = \"sk-or-v1-canary0123\"\n",
        ] {
            std::fs::write(&path, text).unwrap();
            let error = Config::load(Some(&path), []).err().unwrap().to_string();
            assert!(!error.contains("canary0123"), "{error}");
            assert!(error.contains("line "), "{error}");
        }
        std::fs::write(&path, "[providers]\ntimeout_ms = 1\nalow_private = true\n").unwrap();
        let error = Config::load(Some(&path), []).err().unwrap().to_string();
        assert!(
            error.ends_with("line 3, column 1: unknown key providers.alow_private"),
            "{error}"
        );
    }

    #[test]
    fn bad_values_are_named() {
        let err = Config::load(None, [("MODELREG_LISTEN".to_owned(), "nowhere".to_owned())])
            .err()
            .unwrap();
        assert!(err.to_string().contains("MODELREG_LISTEN"));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "lissen = 1\n").unwrap();
        assert!(matches!(
            Config::load(Some(&path), []),
            Err(ConfigError::Parse { .. })
        ));
    }

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect()
    }

    #[test]
    fn flags_win_over_env_which_wins_over_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9000\"\nstream = \"FILE\"\nlog_level = \"debug\"\n\
             nats_url = \"nats://file:4222\"\n[providers]\nconcurrency = 3\n",
        )
        .unwrap();
        let env = vars(&[
            ("MODELREG_LISTEN", "127.0.0.1:9001"),
            ("MODELREG_STREAM", "ENV"),
            ("MODELREG_NATS_URL", "nats://env:4222"),
        ]);
        let flags = Flags {
            listen: Some("127.0.0.1:9002".into()),
            nats_url: Some("nats://flag:4222".into()),
            ..Flags::default()
        };
        let config = Config::load_with_flags(Some(&path), env, &flags).unwrap();
        assert_eq!(config.listen.port(), 9002);
        assert_eq!(config.nats_url.as_deref(), Some("nats://flag:4222"));
        assert_eq!(config.stream, "ENV");
        assert_eq!(config.log_level, "debug");
        assert_eq!(config.providers.concurrency, 3);
        // Untouched by every layer: the default.
        assert_eq!(config.keyring_bucket, "MODELREG_KEYRING");
        assert_eq!(config.providers.timeout_ms, 20_000);
    }

    #[test]
    fn the_config_file_may_come_from_the_environment() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "stream = \"FROM_FILE\"\n").unwrap();
        let env = vars(&[("MODELREG_CONFIG", path.to_str().unwrap())]);
        assert_eq!(Config::load(None, env).unwrap().stream, "FROM_FILE");
    }

    #[test]
    fn every_setting_has_its_variable() {
        let env = vars(&[
            ("MODELREG_LISTEN", "0.0.0.0:81"),
            ("MODELREG_DATA_DIR", "/d"),
            ("MODELREG_NATS_URL", "nats://n:4222"),
            ("MODELREG_STREAM", "S"),
            ("MODELREG_KEYRING_BUCKET", "K"),
            ("MODELREG_MASTER_KEY", "bWs="),
            ("MODELREG_MASTER_KEY_FILE", "/k"),
            ("MODELREG_PLATFORM_OPENROUTER_KEY", "sk-or"),
            ("MODELREG_LOG_FORMAT", "json"),
            ("MODELREG_LOG", "warn"),
            ("MODELREG_READ_YOUR_WRITES_TIMEOUT_MS", "7"),
            ("MODELREG_BOOTSTRAP_DEFAULT_ORG", "0"),
            ("MODELREG_DATA_KEY_CACHE_TTL_MS", "8"),
            ("MODELREG_CONNECTION_TEST_RECEIPT_TTL_MS", "9"),
            ("MODELREG_PROVIDERS_TIMEOUT_MS", "10"),
            ("MODELREG_PROVIDERS_CONCURRENCY", "11"),
            ("MODELREG_PROVIDERS_ALLOW_PRIVATE", "1"),
            ("MODELREG_PROVIDERS_ALLOW_LOOPBACK", "true"),
            (
                "MODELREG_PROVIDER_ANTHROPIC_BASE_URL",
                "https://proxy/anthropic",
            ),
        ]);
        let config = Config::load(None, env).unwrap();
        assert_eq!(config.listen, SocketAddr::from(([0, 0, 0, 0], 81)));
        assert_eq!(config.data_dir, PathBuf::from("/d"));
        assert_eq!(config.nats_url.as_deref(), Some("nats://n:4222"));
        assert_eq!(config.stream, "S");
        assert_eq!(config.keyring_bucket, "K");
        assert_eq!(config.master_key.as_deref(), Some("bWs="));
        assert_eq!(config.master_key_file, Some(PathBuf::from("/k")));
        assert_eq!(config.platform_openrouter_key.as_deref(), Some("sk-or"));
        assert_eq!(config.log_format, LogFormat::Json);
        assert_eq!(config.log_level, "warn");
        assert_eq!(config.read_your_writes_timeout_ms, 7);
        assert!(!config.bootstrap_default_org);
        assert_eq!(config.data_key_cache_ttl_ms, 8);
        assert_eq!(config.connection_test_receipt_ttl_ms, 9);
        assert_eq!(config.providers.timeout_ms, 10);
        assert_eq!(config.providers.concurrency, 11);
        assert!(config.providers.allow_private);
        assert!(config.providers.allow_loopback);
        assert_eq!(
            config
                .providers
                .base_urls
                .get("anthropic")
                .map(String::as_str),
            Some("https://proxy/anthropic")
        );
    }

    #[test]
    fn an_empty_variable_unsets_what_the_file_set() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            "nats_url = \"nats://file:4222\"\nstream = \"FILE\"\n\
             [providers.base_urls]\nopenai = \"https://file/v1\"\nanthropic = \"https://file\"\n",
        )
        .unwrap();
        let env = vars(&[
            ("MODELREG_NATS_URL", ""),
            ("MODELREG_PROVIDER_ANTHROPIC_BASE_URL", "https://env"),
        ]);
        let config = Config::load(Some(&path), env).unwrap();
        assert_eq!(config.nats_url, None);
        assert_eq!(config.stream, "FILE");
        // Base URLs merge key by key: the file's openai stays, the environment's anthropic wins.
        assert_eq!(
            config.providers.base_urls.get("openai").map(String::as_str),
            Some("https://file/v1")
        );
        assert_eq!(
            config
                .providers
                .base_urls
                .get("anthropic")
                .map(String::as_str),
            Some("https://env")
        );
    }

    #[test]
    fn unknown_variables_are_named_and_those_read_elsewhere_pass() {
        let known = vars(&[
            ("MODELREG_SERVER", "http://127.0.0.1:8080"),
            ("MODELREG_TOKEN", "mr_x"),
            ("MODELREG_TOKEN_FILE", "/t"),
            ("MODELREG_METRICS_LISTEN", "127.0.0.1:9101"),
            ("MODELREG_BLESS", "1"),
            ("PATH", "/bin"),
        ]);
        assert!(Config::load(None, known).is_ok());
        for name in [
            "MODELREG_LISTN",
            "MODELREG_PROVIDERS_TIMEOUT",
            "MODELREG_PROVIDER__BASE_URL",
        ] {
            let error = Config::load(None, vars(&[(name, "sk-or-v1-canary0123")]))
                .err()
                .unwrap();
            assert!(
                matches!(&error, ConfigError::UnknownEnv { name: named } if named == name),
                "{error}"
            );
            assert!(!error.to_string().contains("canary0123"), "{error}");
        }
    }

    #[test]
    fn a_bad_value_names_its_variable_or_flag_not_the_value() {
        for name in [
            "MODELREG_LISTEN",
            "MODELREG_LOG_FORMAT",
            "MODELREG_READ_YOUR_WRITES_TIMEOUT_MS",
            "MODELREG_PROVIDERS_CONCURRENCY",
            "MODELREG_BOOTSTRAP_DEFAULT_ORG",
            "MODELREG_PROVIDERS_ALLOW_LOOPBACK",
        ] {
            let error = Config::load(None, vars(&[(name, "sk-or-v1-canary0123")]))
                .err()
                .unwrap();
            assert!(
                matches!(&error, ConfigError::Env { name: named, .. } if named == name),
                "{error}"
            );
            assert!(!error.to_string().contains("canary0123"), "{error}");
        }
        let flags = Flags {
            listen: Some("sk-or-v1-canary0123".into()),
            ..Flags::default()
        };
        let error = Config::load_with_flags(None, [], &flags).err().unwrap();
        assert!(
            matches!(&error, ConfigError::Flag { name, .. } if name == "--listen"),
            "{error}"
        );
        assert!(error.to_string().contains("host:port"), "{error}");
        assert!(!error.to_string().contains("canary0123"), "{error}");
        let flags = Flags {
            log_format: Some("xml".into()),
            ..Flags::default()
        };
        let error = Config::load_with_flags(None, [], &flags).err().unwrap();
        assert_eq!(
            error.to_string(),
            "--log-format is invalid: use text or json"
        );
    }

    #[test]
    fn every_known_name_is_known() {
        for name in SETTINGS
            .iter()
            .map(|(var, _, _)| *var)
            .chain(READ_ELSEWHERE.iter().copied())
        {
            assert!(is_known_env_var(name), "{name}");
        }
        assert!(is_known_env_var(CONFIG_FILE_VAR));
        assert!(is_known_env_var("MODELREG_PROVIDER_OPENAI_BASE_URL"));
        assert!(!is_known_env_var("MODELREG_KEYRING"));
    }
}
