//! Configuration: defaults, then a TOML file, then `MODELREG_*` environment variables.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

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
    /// JetStream mode when set; embedded log when not.
    pub nats_url: Option<String>,
    /// The JetStream stream holding the log.
    pub stream: String,
    /// The NATS KV bucket holding wrapped data keys.
    pub keyring_bucket: String,
    pub master_key: Option<String>,
    pub master_key_file: Option<PathBuf>,
    /// The platform's OpenRouter key (secret), which platform models resolve to.
    pub platform_openrouter_key: Option<String>,
    pub log_format: LogFormat,
    /// A tracing filter such as `info` or `modelreg=debug`.
    pub log_level: String,
    /// How long a command waits for the views to reflect its write.
    pub read_your_writes_timeout_ms: u64,
    /// Create the `default` org and print its admin token on first start.
    pub bootstrap_default_org: bool,
    /// How long an unwrapped data key stays in memory (zeroized when evicted, never written);
    /// 0 reads the keyring on every resolve. A key destroyed in another process stops opening
    /// here after at most this long.
    pub data_key_cache_ttl_ms: u64,
    /// How long a passing connection test lets its draft be added (15 minutes).
    pub connection_test_receipt_ttl_ms: u64,
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
            stream: "REGISTRY".into(),
            keyring_bucket: "MODELREG_KEYRING".into(),
            master_key: None,
            master_key_file: None,
            platform_openrouter_key: None,
            log_format: LogFormat::Text,
            log_level: "info".into(),
            read_your_writes_timeout_ms: 5_000,
            bootstrap_default_org: true,
            connection_test_receipt_ttl_ms: 15 * 60 * 1000,
            data_key_cache_ttl_ms: 60_000,
            providers: ProvidersConfig::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {why}")]
    Read { path: String, why: String },
    #[error("config file {path} is invalid: {why}")]
    Parse { path: String, why: String },
    #[error("environment variable {name} is invalid: {why}")]
    Env { name: String, why: String },
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

fn parse_bool(value: &str) -> Result<bool, String> {
    match value {
        "1" | "true" => Ok(true),
        "0" | "false" => Ok(false),
        other => Err(format!("{other:?}: use true or false")),
    }
}

impl Config {
    /// Loads defaults, then `file` (or `MODELREG_CONFIG`), then environment overrides.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let env: Vec<(String, String)> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("MODELREG_"))
            .collect();
        let from_env = env
            .iter()
            .find(|(k, _)| k == "MODELREG_CONFIG")
            .map(|(_, v)| PathBuf::from(v));
        let file = file.map(Path::to_path_buf).or(from_env);
        let mut config = match file {
            Some(path) => {
                let text = std::fs::read_to_string(&path).map_err(|e| ConfigError::Read {
                    path: path.display().to_string(),
                    why: e.to_string(),
                })?;
                toml::from_str(&text).map_err(|e| ConfigError::Parse {
                    path: path.display().to_string(),
                    why: toml_problem(&text, &e),
                })?
            }
            None => Config::default(),
        };
        for (name, value) in env {
            config.apply_env(&name, value)?;
        }
        Ok(config)
    }

    fn apply_env(&mut self, name: &str, value: String) -> Result<(), ConfigError> {
        let bad = |why: String| ConfigError::Env {
            name: name.to_owned(),
            why,
        };
        let non_empty = |v: String| if v.is_empty() { None } else { Some(v) };
        match name {
            "MODELREG_LISTEN" => {
                self.listen = value
                    .parse()
                    .map_err(|e| bad(format!("{e}; use host:port such as 127.0.0.1:8080")))?
            }
            "MODELREG_DATA_DIR" => self.data_dir = PathBuf::from(value),
            "MODELREG_NATS_URL" => self.nats_url = non_empty(value),
            "MODELREG_STREAM" => self.stream = value,
            "MODELREG_KEYRING_BUCKET" => self.keyring_bucket = value,
            "MODELREG_MASTER_KEY" => self.master_key = non_empty(value),
            "MODELREG_MASTER_KEY_FILE" => {
                self.master_key_file = non_empty(value).map(PathBuf::from)
            }
            "MODELREG_PLATFORM_OPENROUTER_KEY" => self.platform_openrouter_key = non_empty(value),
            "MODELREG_LOG_FORMAT" => {
                self.log_format = match value.as_str() {
                    "text" => LogFormat::Text,
                    "json" => LogFormat::Json,
                    other => return Err(bad(format!("{other:?}: use text or json"))),
                }
            }
            "MODELREG_LOG" => self.log_level = value,
            "MODELREG_READ_YOUR_WRITES_TIMEOUT_MS" => {
                self.read_your_writes_timeout_ms = value.parse().map_err(|e| bad(format!("{e}")))?
            }
            "MODELREG_BOOTSTRAP_DEFAULT_ORG" => {
                self.bootstrap_default_org = match value.as_str() {
                    "1" | "true" => true,
                    "0" | "false" => false,
                    other => return Err(bad(format!("{other:?}: use true or false"))),
                }
            }
            "MODELREG_DATA_KEY_CACHE_TTL_MS" => {
                self.data_key_cache_ttl_ms = value.parse().map_err(|e| bad(format!("{e}")))?
            }
            "MODELREG_CONNECTION_TEST_RECEIPT_TTL_MS" => {
                self.connection_test_receipt_ttl_ms =
                    value.parse().map_err(|e| bad(format!("{e}")))?
            }
            "MODELREG_PROVIDERS_TIMEOUT_MS" => {
                self.providers.timeout_ms = value.parse().map_err(|e| bad(format!("{e}")))?
            }
            "MODELREG_PROVIDERS_CONCURRENCY" => {
                self.providers.concurrency = value.parse().map_err(|e| bad(format!("{e}")))?
            }
            "MODELREG_PROVIDERS_ALLOW_PRIVATE" => {
                self.providers.allow_private = parse_bool(&value).map_err(bad)?
            }
            "MODELREG_PROVIDERS_ALLOW_LOOPBACK" => {
                self.providers.allow_loopback = parse_bool(&value).map_err(bad)?
            }
            other => {
                if let Some(provider) = other
                    .strip_prefix("MODELREG_PROVIDER_")
                    .and_then(|rest| rest.strip_suffix("_BASE_URL"))
                {
                    self.providers
                        .base_urls
                        .insert(provider.to_ascii_lowercase(), value);
                }
                // Anything else is read by other parts (the CLI's server URL and token, the
                // config path itself).
            }
        }
        Ok(())
    }

    pub fn master_key_path(&self) -> PathBuf {
        self.master_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("master.key"))
    }
}

/// A TOML error without the excerpt of the file `toml` would quote: the line may hold a
/// secret (an unquoted key, a misspelled `platform_openrouter_key`). Line and column only.
fn toml_problem(text: &str, error: &toml::de::Error) -> String {
    match error.span() {
        Some(span) => {
            let before = text.get(..span.start).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("line {line}, column {column}: {}", error.message())
        }
        None => error.message().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        ] {
            std::fs::write(&path, text).unwrap();
            let error = Config::load(Some(&path), []).err().unwrap().to_string();
            assert!(!error.contains("canary0123"), "{error}");
            assert!(error.contains("line "), "{error}");
        }
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
}
