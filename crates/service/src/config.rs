//! Configuration: a TOML file (several help centers) or flags and environment (one), resolved
//! into a validated [`Config`]. The environment is passed in, never read behind the caller's back.

use helpdex_core::normalize::NormalizeOptions;
use helpdex_sync::{SourceConfig, SyncConfig};
pub use helpdex_zendesk::Secret;
use helpdex_zendesk::retry::RetryPolicy;
use helpdex_zendesk::{Auth, ClientConfig};
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;
use thiserror::Error;

/// Configuration errors: each says what to change.
#[derive(Debug, Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The file is not valid TOML for helpdex.
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// File.
        path: PathBuf,
        /// Parser message.
        message: String,
    },
    /// A value is wrong.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// Per-source limits (`[sources.limits]` in the file).
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    /// Share of the per-minute budget left to other integrations (0.0–0.9), default 0.2.
    pub reserve_share: Option<f64>,
    /// Longest Retry-After honoured, seconds (default 300).
    pub max_retry_after_secs: Option<u64>,
    /// Attempts per request on 5xx/timeouts (default 5).
    pub max_attempts: Option<u32>,
    /// First backoff step in milliseconds (default 500).
    pub base_backoff_ms: Option<u64>,
    /// Pause when under the reserve, milliseconds (default 10000).
    pub low_budget_pause_ms: Option<u64>,
    /// Whole-request timeout, seconds (default 60).
    pub timeout_secs: Option<u64>,
}

/// One help center in the config file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSource {
    /// Unique name; articles are keyed by (name, id).
    pub name: String,
    /// Base URL, e.g. `https://acme.zendesk.com`.
    pub url: String,
    /// Agent or admin email for API-token auth.
    pub email: Option<String>,
    /// API token (prefer `token_env`).
    pub token: Option<Secret>,
    /// Environment variable holding the API token.
    pub token_env: Option<String>,
    /// OAuth access token (prefer `oauth_token_env`).
    pub oauth_token: Option<Secret>,
    /// Environment variable holding the OAuth token.
    pub oauth_token_env: Option<String>,
    /// Cron schedule for `serve`.
    pub schedule: Option<String>,
    /// Limits.
    #[serde(default)]
    pub limits: RawLimits,
}

/// Sync cadences (`[sync]`).
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawSync {
    /// Run the removal reconcile (list every id) every N syncs; 1 = every sync (default), 0 = never.
    pub reconcile_every: Option<u32>,
    /// Compare hashes of every article every N hours (default 24; 0 = never).
    pub full_sweep_hours: Option<u64>,
}

/// The config file as written.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// Data directory.
    pub data_dir: Option<PathBuf>,
    /// Help centers.
    #[serde(default)]
    pub sources: Vec<RawSource>,
    /// Normalizer options.
    #[serde(default)]
    pub normalize: Option<NormalizeOptions>,
    /// Sync cadences.
    #[serde(default)]
    pub sync: RawSync,
    /// Service settings, read by `serve`.
    #[serde(default)]
    pub server: RawServer,
}

/// `[server]`: the HTTP service (`helpdex serve`).
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    /// Listen address, default `127.0.0.1:7700`.
    pub listen: Option<String>,
    /// API keys with the `customer` scope.
    #[serde(default)]
    pub customer_keys: Vec<Secret>,
    /// API keys with the `agent` scope.
    #[serde(default)]
    pub agent_keys: Vec<Secret>,
    /// API keys with the `admin` scope.
    #[serde(default)]
    pub admin_keys: Vec<Secret>,
    /// Signing secret of the Zendesk webhook (`POST /v1/webhooks/zendesk`).
    pub webhook_secret: Option<Secret>,
    /// Environment variable holding the webhook signing secret.
    pub webhook_secret_env: Option<String>,
    /// Oldest webhook timestamp accepted, in seconds (default 300).
    pub webhook_tolerance_secs: Option<u64>,
}

/// Validated `[server]` settings, with the environment folded in.
#[derive(Debug, Clone, Default)]
pub struct ServerConfig {
    /// Listen address from the file, if any.
    pub listen: Option<String>,
    /// Keys with the customer scope (file + `HELPDEX_CUSTOMER_KEY`).
    pub customer_keys: Vec<Secret>,
    /// Keys with the agent scope (file + `HELPDEX_AGENT_KEY`).
    pub agent_keys: Vec<Secret>,
    /// Keys with the admin scope (file + `HELPDEX_ADMIN_KEY`).
    pub admin_keys: Vec<Secret>,
    /// Webhook signing secret (file or `HELPDEX_WEBHOOK_SECRET`); webhooks are refused without it.
    pub webhook_secret: Option<Secret>,
    /// Oldest accepted webhook timestamp.
    pub webhook_tolerance: Duration,
}

/// Splits a comma-separated key list, dropping blanks.
fn split_keys(v: Option<String>) -> Vec<Secret> {
    v.map(|s| {
        s.split(',')
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .map(Secret::new)
            .collect()
    })
    .unwrap_or_default()
}

impl ServerConfig {
    fn resolve(
        raw: RawServer,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<ServerConfig, ConfigError> {
        let mut customer_keys = raw.customer_keys;
        customer_keys.extend(split_keys(env("HELPDEX_CUSTOMER_KEY")));
        let mut agent_keys = raw.agent_keys;
        agent_keys.extend(split_keys(env("HELPDEX_AGENT_KEY")));
        let mut admin_keys = raw.admin_keys;
        admin_keys.extend(split_keys(env("HELPDEX_ADMIN_KEY")));
        for k in customer_keys.iter().chain(&agent_keys).chain(&admin_keys) {
            if k.expose().len() < 16 {
                return Err(ConfigError::Invalid(
                    "API keys must be at least 16 characters (generate one with `openssl rand -hex 24`)".into(),
                ));
            }
        }
        let webhook_secret = match (raw.webhook_secret, raw.webhook_secret_env) {
            (Some(s), _) => Some(s),
            (None, Some(var)) => Some(env(&var).map(Secret::new).ok_or_else(|| {
                ConfigError::Invalid(format!(
                    "server.webhook_secret_env names {var}, which is not set"
                ))
            })?),
            (None, None) => env("HELPDEX_WEBHOOK_SECRET")
                .filter(|s| !s.is_empty())
                .map(Secret::new),
        };
        Ok(ServerConfig {
            listen: raw.listen,
            customer_keys,
            agent_keys,
            admin_keys,
            webhook_secret,
            webhook_tolerance: raw
                .webhook_tolerance_secs
                .map_or(crate::webhook::DEFAULT_TOLERANCE, Duration::from_secs),
        })
    }
}

impl RawConfig {
    /// Reads and parses a config file.
    pub fn load(path: &Path) -> Result<RawConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })
    }
}

/// Source settings given by flags and environment (single help center).
#[derive(Debug, Clone, Default)]
pub struct SourceFlags {
    /// `--zendesk-url` / `ZENDESK_URL`.
    pub url: Option<String>,
    /// `--zendesk-email` / `ZENDESK_EMAIL`.
    pub email: Option<String>,
    /// `--zendesk-token` / `ZENDESK_API_TOKEN`.
    pub token: Option<String>,
    /// `--zendesk-oauth-token` / `ZENDESK_OAUTH_TOKEN`.
    pub oauth_token: Option<String>,
    /// `--schedule` / `HELPDEX_SCHEDULE`.
    pub schedule: Option<String>,
}

/// Validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Data directory (SQLite + tantivy).
    pub data_dir: PathBuf,
    /// Help centers and sync cadence.
    pub sync: SyncConfig,
    /// Normalizer options.
    pub normalize: NormalizeOptions,
    /// `[server]`, for the service.
    pub server: ServerConfig,
}

/// Name of the help center given by flags.
pub const FLAG_SOURCE_NAME: &str = "default";

impl Config {
    /// Resolves file, flags and environment. Flags name one source and take precedence over
    /// the file's sources (which are then ignored); `env` looks up `*_env` indirections.
    pub fn resolve(
        raw: RawConfig,
        data_dir: Option<PathBuf>,
        flags: SourceFlags,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let data_dir = data_dir
            .or(raw.data_dir)
            .unwrap_or_else(|| PathBuf::from("index"));
        let mut sources = Vec::new();
        if let Some(url) = flags.url.filter(|u| !u.trim().is_empty()) {
            let auth = auth_from(
                flags.email,
                flags.token.map(Secret::new),
                flags.oauth_token.map(Secret::new),
                FLAG_SOURCE_NAME,
            )?;
            sources.push(SourceConfig {
                name: FLAG_SOURCE_NAME.into(),
                client: ClientConfig::new(url, auth),
                schedule: flags.schedule,
            });
        } else {
            for s in raw.sources {
                if s.name.is_empty()
                    || !s
                        .name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                {
                    return Err(ConfigError::Invalid(format!(
                        "source name '{}' must be non-empty letters, digits, '-' or '_'",
                        s.name
                    )));
                }
                if sources.iter().any(|o: &SourceConfig| o.name == s.name) {
                    return Err(ConfigError::Invalid(format!(
                        "source name '{}' appears twice",
                        s.name
                    )));
                }
                let lookup =
                    |direct: Option<Secret>, var: Option<String>, what: &str| match (direct, var) {
                        (Some(d), _) => Ok(Some(d)),
                        (None, Some(v)) => env(&v).map(|x| Some(Secret::new(x))).ok_or_else(|| {
                            ConfigError::Invalid(format!(
                                "source '{}': environment variable {v} (its {what}) is not set",
                                s.name
                            ))
                        }),
                        (None, None) => Ok(None),
                    };
                let token = lookup(s.token.clone(), s.token_env.clone(), "API token")?;
                let oauth = lookup(
                    s.oauth_token.clone(),
                    s.oauth_token_env.clone(),
                    "OAuth token",
                )?;
                let auth = auth_from(s.email.clone(), token, oauth, &s.name)?;
                let mut client = ClientConfig::new(s.url.clone(), auth);
                apply_limits(&mut client, &s.limits, &s.name)?;
                sources.push(SourceConfig {
                    name: s.name,
                    client,
                    schedule: s.schedule.or_else(|| flags.schedule.clone()),
                });
            }
        }
        let normalize = raw.normalize.unwrap_or_default();
        helpdex_core::normalize::validate_selectors(&normalize.drop_selectors)
            .map_err(|e| ConfigError::Invalid(format!("[normalize] {e}")))?;
        if normalize.max_passage_chars < 200 {
            return Err(ConfigError::Invalid(
                "[normalize] max_passage_chars must be at least 200".into(),
            ));
        }
        let full_sweep_every = match raw.sync.full_sweep_hours.unwrap_or(24) {
            0 => None,
            h => Some(Duration::from_secs(h * 3600)),
        };
        Ok(Config {
            data_dir,
            sync: SyncConfig {
                sources,
                reconcile_every: raw.sync.reconcile_every.unwrap_or(1),
                full_sweep_every,
            },
            normalize,
            server: ServerConfig::resolve(raw.server, env)?,
        })
    }
}

fn auth_from(
    email: Option<String>,
    token: Option<Secret>,
    oauth: Option<Secret>,
    name: &str,
) -> Result<Auth, ConfigError> {
    let email = email.filter(|e| !e.trim().is_empty());
    let token = token.filter(|t| !t.expose().trim().is_empty());
    let oauth = oauth.filter(|t| !t.expose().trim().is_empty());
    match (email, token, oauth) {
        (_, _, Some(o)) => Ok(Auth::OAuth(o)),
        (Some(email), Some(token), None) => Ok(Auth::ApiToken { email, token }),
        (None, Some(_), None) => Err(ConfigError::Invalid(format!(
            "source '{name}': an API token needs the agent's email too (--zendesk-email / ZENDESK_EMAIL)"
        ))),
        (Some(_), None, None) => Err(ConfigError::Invalid(format!(
            "source '{name}': an email was given without an API token (--zendesk-token / ZENDESK_API_TOKEN)"
        ))),
        (None, None, None) => Ok(Auth::Anonymous),
    }
}

fn apply_limits(c: &mut ClientConfig, l: &RawLimits, name: &str) -> Result<(), ConfigError> {
    let r: &mut RetryPolicy = &mut c.retry;
    if let Some(v) = l.reserve_share {
        if !(0.0..=0.9).contains(&v) {
            return Err(ConfigError::Invalid(format!(
                "source '{name}': limits.reserve_share must be between 0.0 and 0.9, got {v}"
            )));
        }
        r.reserve_share = v;
    }
    if let Some(v) = l.max_retry_after_secs {
        r.max_retry_after = Duration::from_secs(v);
    }
    if let Some(v) = l.max_attempts {
        r.max_attempts = v.max(1);
    }
    if let Some(v) = l.base_backoff_ms {
        r.base_backoff = Duration::from_millis(v);
    }
    if let Some(v) = l.low_budget_pause_ms {
        r.low_budget_pause = Duration::from_millis(v);
    }
    if let Some(v) = l.timeout_secs {
        c.timeout = Duration::from_secs(v.max(1));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_never_prints() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?} {s}"), "Secret(***) ***");
    }

    #[test]
    fn flags_make_one_source() {
        let flags = SourceFlags {
            url: Some("https://acme.zendesk.com".into()),
            email: Some("a@b.c".into()),
            token: Some("tok".into()),
            ..SourceFlags::default()
        };
        let c = Config::resolve(RawConfig::default(), None, flags, &|_| None).unwrap();
        assert_eq!(c.sync.sources.len(), 1);
        assert_eq!(c.sync.sources[0].name, "default");
        assert!(matches!(
            c.sync.sources[0].client.auth,
            Auth::ApiToken { .. }
        ));
        assert_eq!(c.data_dir, PathBuf::from("index"));
        assert!(!format!("{c:?}").contains("tok\""));
    }

    #[test]
    fn token_without_email_is_an_error() {
        let flags = SourceFlags {
            url: Some("https://acme.zendesk.com".into()),
            token: Some("tok".into()),
            ..SourceFlags::default()
        };
        let e = Config::resolve(RawConfig::default(), None, flags, &|_| None).unwrap_err();
        assert!(e.to_string().contains("ZENDESK_EMAIL"), "{e}");
    }

    #[test]
    fn file_sources_with_env_tokens() {
        let raw: RawConfig = toml::from_str(
            r#"
            [[sources]]
            name = "a"
            url = "https://a.zendesk.com"
            email = "x@a"
            token_env = "A_TOKEN"
            [sources.limits]
            reserve_share = 0.5
            [[sources]]
            name = "b"
            url = "https://b.zendesk.com"
            oauth_token_env = "B_OAUTH"
            "#,
        )
        .unwrap();
        let env = |k: &str| match k {
            "A_TOKEN" => Some("ta".to_string()),
            "B_OAUTH" => Some("tb".to_string()),
            _ => None,
        };
        let c = Config::resolve(raw.clone(), None, SourceFlags::default(), &env).unwrap();
        assert_eq!(c.sync.sources.len(), 2);
        assert_eq!(c.sync.sources[0].client.retry.reserve_share, 0.5);
        assert!(matches!(c.sync.sources[1].client.auth, Auth::OAuth(_)));
        let e = Config::resolve(raw, None, SourceFlags::default(), &|_| None).unwrap_err();
        assert!(e.to_string().contains("A_TOKEN"), "{e}");
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let e =
            toml::from_str::<RawConfig>("[[sources]]\nname='a'\nurl='u'\ncolour='x'").unwrap_err();
        assert!(e.to_string().contains("colour"));
    }
}
