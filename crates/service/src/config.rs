//! Configuration: a TOML file (several help centers) or flags and environment (one), resolved
//! into a validated [`Config`]. The environment is passed in, never read behind the caller's back.

use helpdex_core::normalize::NormalizeOptions;
use helpdex_sync::{SourceConfig, SyncConfig};
pub use helpdex_zendesk::Secret;
use helpdex_zendesk::retry::RetryPolicy;
use helpdex_zendesk::{Auth, ClientConfig};
use serde::{Deserialize, Serialize};
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
    /// Hybrid retrieval's embedding model (`[embeddings]`).
    #[serde(default)]
    pub embeddings: crate::embeddings::RawEmbeddings,
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
    /// Browser origins allowed by CORS (default: any origin; keys, not cookies, authenticate).
    #[serde(default)]
    pub cors_origins: Vec<String>,
    /// Most open connections (default 512; lowered to what the open-file limit allows).
    pub max_connections: Option<usize>,
    /// Seconds a client has to send a request's headers, and the longest idle time between
    /// requests on a connection (default 10).
    pub header_read_timeout_secs: Option<u64>,
    /// Seconds to answer a content, MCP or webhook request, body included (default 30).
    pub request_timeout_secs: Option<u64>,
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
    /// Browser origins allowed by CORS; empty = any.
    pub cors_origins: Vec<String>,
    /// Connection and request limits.
    pub http: crate::http::HttpLimits,
}

/// Shortest accepted API key.
pub const MIN_KEY_CHARS: usize = 16;

/// The keys of one comma-separated variable. A variable that is set must hold keys: a blank
/// one, or a blank entry (`","`, spaces), is an error rather than "no key" (which would open
/// the loopback API to every local caller as an admin).
fn split_keys(var: &str, v: Option<String>) -> Result<Vec<Secret>, ConfigError> {
    let Some(v) = v else {
        return Ok(Vec::new());
    };
    let keys: Vec<&str> = v.split(',').map(str::trim).collect();
    if keys.iter().any(|k| k.is_empty()) {
        return Err(ConfigError::Invalid(format!(
            "{var} is set but {}: give comma-separated keys of at least {MIN_KEY_CHARS} characters (e.g. `openssl rand -hex 24`), or unset it",
            if keys.iter().all(|k| k.is_empty()) {
                "holds no key"
            } else {
                "has an empty entry"
            }
        )));
    }
    Ok(keys.into_iter().map(Secret::new).collect())
}

fn check_keys(name: &str, keys: &[Secret]) -> Result<(), ConfigError> {
    for k in keys {
        let k = k.expose();
        if k.chars().count() < MIN_KEY_CHARS || k.chars().any(char::is_whitespace) {
            return Err(ConfigError::Invalid(format!(
                "{name}: API keys must be at least {MIN_KEY_CHARS} characters without spaces (generate one with `openssl rand -hex 24`)"
            )));
        }
    }
    Ok(())
}

impl ServerConfig {
    fn resolve(
        raw: RawServer,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<ServerConfig, ConfigError> {
        check_keys("[server] customer_keys", &raw.customer_keys)?;
        check_keys("[server] agent_keys", &raw.agent_keys)?;
        check_keys("[server] admin_keys", &raw.admin_keys)?;
        let mut customer_keys = raw.customer_keys;
        let mut agent_keys = raw.agent_keys;
        let mut admin_keys = raw.admin_keys;
        for (var, list) in [
            ("HELPDEX_CUSTOMER_KEY", &mut customer_keys),
            ("HELPDEX_AGENT_KEY", &mut agent_keys),
            ("HELPDEX_ADMIN_KEY", &mut admin_keys),
        ] {
            let keys = split_keys(var, env(var))?;
            check_keys(var, &keys)?;
            list.extend(keys);
        }
        let mut http = crate::http::HttpLimits::default();
        if let Some(n) = raw.max_connections {
            if n == 0 {
                return Err(ConfigError::Invalid(
                    "[server] max_connections must be at least 1".into(),
                ));
            }
            http.max_connections = n;
        }
        if let Some(s) = raw.header_read_timeout_secs {
            http.header_read_timeout = Duration::from_secs(s.max(1));
        }
        if let Some(s) = raw.request_timeout_secs {
            http.request_timeout = Duration::from_secs(s.max(1));
        }
        for o in &raw.cors_origins {
            let ok = url::Url::parse(o)
                .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
            if !ok || o.ends_with('/') {
                return Err(ConfigError::Invalid(format!(
                    "[server] cors_origins: '{o}' is not an origin (scheme://host[:port], no path), e.g. https://app.example.com"
                )));
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
            cors_origins: raw.cors_origins,
            http,
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
    /// The embedding model, when hybrid retrieval is on.
    pub embeddings: Option<crate::embeddings::EmbeddingsConfig>,
}

/// Name of the help center given by flags.
pub const FLAG_SOURCE_NAME: &str = "default";

/// Whether resolving needs the secrets themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Secrets {
    /// `sync`, `serve`: a secret variable that is not set is an error.
    Required,
    /// `config check`: missing secret variables are listed, not errors.
    Optional,
}

/// What `helpdex config check` found: the configuration is valid; these are what it needs
/// from the environment at run time and what it will do.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    /// The data directory.
    pub data_dir: PathBuf,
    /// Per source: name, URL, schedule and its next fires.
    pub sources: Vec<CheckedSource>,
    /// Environment variables holding secrets that are not set here (sync and serve need them).
    pub missing_secrets: Vec<String>,
    /// API keys configured, per scope.
    pub keys: KeyCounts,
    /// Whether webhooks are configured.
    pub webhooks: bool,
}

/// One source in a [`CheckReport`].
#[derive(Debug, Clone, Serialize)]
pub struct CheckedSource {
    /// Name.
    pub name: String,
    /// Base URL.
    pub url: String,
    /// The schedule as written, if any.
    pub schedule: Option<String>,
    /// Its next three fires (UTC, before jitter).
    pub next_runs: Vec<chrono::DateTime<chrono::Utc>>,
}

/// How many keys each scope has.
#[derive(Debug, Clone, Serialize)]
pub struct KeyCounts {
    /// Customer keys.
    pub customer: usize,
    /// Agent keys.
    pub agent: usize,
    /// Admin keys.
    pub admin: usize,
}

impl Config {
    /// Resolves file, flags and environment; `env` looks up `*_env` indirections and the
    /// `HELPDEX_*` variables. A help center given by flags (`--zendesk-url` / `ZENDESK_URL`)
    /// and `[[sources]]` in a config file are refused together: one of them would be silently
    /// ignored.
    pub fn resolve(
        raw: RawConfig,
        data_dir: Option<PathBuf>,
        flags: SourceFlags,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        Ok(Self::resolve_with(raw, data_dir, flags, env, Secrets::Required)?.0)
    }

    /// Validates everything [`Config::resolve`] validates, schedules included, without
    /// needing the secrets to be set and without any network access.
    pub fn check(
        raw: RawConfig,
        data_dir: Option<PathBuf>,
        flags: SourceFlags,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<CheckReport, ConfigError> {
        let (cfg, missing_secrets) =
            Self::resolve_with(raw, data_dir, flags, env, Secrets::Optional)?;
        let now = chrono::Utc::now();
        let sources = cfg
            .sync
            .sources
            .iter()
            .map(|s| CheckedSource {
                name: s.name.clone(),
                url: s.client.base_url.clone(),
                schedule: s.schedule.clone(),
                next_runs: s
                    .schedule
                    .as_deref()
                    .and_then(|e| crate::schedule::Schedule::parse(e).ok())
                    .map(|sch| {
                        let mut t = now;
                        let mut out = Vec::new();
                        while out.len() < 3 {
                            match sch.next_after(t) {
                                Some(n) => {
                                    out.push(n);
                                    t = n;
                                }
                                None => break,
                            }
                        }
                        out
                    })
                    .unwrap_or_default(),
            })
            .collect();
        Ok(CheckReport {
            data_dir: cfg.data_dir,
            sources,
            missing_secrets,
            keys: KeyCounts {
                customer: cfg.server.customer_keys.len(),
                agent: cfg.server.agent_keys.len(),
                admin: cfg.server.admin_keys.len(),
            },
            webhooks: cfg.server.webhook_secret.is_some(),
        })
    }

    fn resolve_with(
        raw: RawConfig,
        data_dir: Option<PathBuf>,
        flags: SourceFlags,
        env: &dyn Fn(&str) -> Option<String>,
        secrets: Secrets,
    ) -> Result<(Config, Vec<String>), ConfigError> {
        let data_dir = data_dir
            .or(raw.data_dir)
            .unwrap_or_else(|| PathBuf::from("index"));
        let mut sources = Vec::new();
        let mut missing = Vec::new();
        let flag_url = flags.url.filter(|u| !u.trim().is_empty());
        if let Some(url) = &flag_url
            && !raw.sources.is_empty()
        {
            return Err(ConfigError::Invalid(format!(
                "both --zendesk-url / ZENDESK_URL ({}) and the config file's [[sources]] ({}) name help centers;                  one would be ignored: unset ZENDESK_URL (and --zendesk-url) to use the file, or remove [[sources]]",
                redact_url(url),
                raw.sources
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        if let Some(url) = flag_url {
            let url = validate_url(FLAG_SOURCE_NAME, &url)?;
            let auth = auth_from(
                flags.email,
                flags.token.map(Secret::new),
                flags.oauth_token.map(Secret::new),
                FLAG_SOURCE_NAME,
            )?;
            validate_schedule(FLAG_SOURCE_NAME, flags.schedule.as_deref())?;
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
                let url = validate_url(&s.name, &s.url)?;
                let mut lookup =
                    |direct: Option<Secret>, var: Option<String>, what: &str| match (direct, var) {
                        (Some(d), _) => Ok(Some(d)),
                        (None, Some(v)) => match env(&v).filter(|x| !x.trim().is_empty()) {
                            Some(x) => Ok(Some(Secret::new(x))),
                            None if secrets == Secrets::Optional => {
                                missing.push(v);
                                Ok(None)
                            }
                            None => Err(ConfigError::Invalid(format!(
                                "source '{}': environment variable {v} (its {what}) is not set",
                                s.name
                            ))),
                        },
                        (None, None) => Ok(None),
                    };
                let token = lookup(s.token.clone(), s.token_env.clone(), "API token")?;
                let oauth = lookup(
                    s.oauth_token.clone(),
                    s.oauth_token_env.clone(),
                    "OAuth token",
                )?;
                let token_missing = secrets == Secrets::Optional
                    && token.is_none()
                    && s.token.is_none()
                    && s.token_env.is_some();
                let auth = if token_missing && oauth.is_none() {
                    // Only checking: the email is fine, its token is reported missing.
                    Auth::Anonymous
                } else {
                    auth_from(s.email.clone(), token, oauth, &s.name)?
                };
                let schedule = s.schedule.or_else(|| flags.schedule.clone());
                validate_schedule(&s.name, schedule.as_deref())?;
                let mut client = ClientConfig::new(url, auth);
                apply_limits(&mut client, &s.limits, &s.name)?;
                sources.push(SourceConfig {
                    name: s.name,
                    client,
                    schedule,
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
        let mut server = raw.server;
        if secrets == Secrets::Optional
            && server.webhook_secret.is_none()
            && let Some(var) = &server.webhook_secret_env
            && env(var).is_none()
        {
            missing.push(var.clone());
            server.webhook_secret_env = None;
        }
        Ok((
            Config {
                data_dir,
                sync: SyncConfig {
                    sources,
                    reconcile_every: raw.sync.reconcile_every.unwrap_or(1),
                    full_sweep_every,
                },
                normalize,
                server: ServerConfig::resolve(server, env)?,
                embeddings: crate::embeddings::EmbeddingsConfig::resolve(&raw.embeddings, env)?,
            },
            missing,
        ))
    }
}

/// A URL as it may be shown: without user info.
fn redact_url(url: &str) -> String {
    match url::Url::parse(url.trim()) {
        Ok(mut u) => {
            let _ = u.set_username("");
            let _ = u.set_password(None);
            u.to_string()
        }
        Err(_) => "an unparsable URL".into(),
    }
}

/// Checks a Help Center base URL: `http(s)://host[:port]`, optionally with a path prefix for a
/// proxy, but not a Help Center page (`/hc/...`), an API path, or credentials.
fn validate_url(source: &str, raw: &str) -> Result<String, ConfigError> {
    let bad = |why: String| {
        ConfigError::Invalid(format!(
            "source '{source}': {why}; the URL must be the help center's base URL, scheme and host only, e.g. https://acme.zendesk.com"
        ))
    };
    let u = url::Url::parse(raw.trim())
        .map_err(|e| bad(format!("'{}' is not a URL ({e})", redact_url(raw))))?;
    if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none_or(str::is_empty) {
        return Err(bad(format!("'{}' is not an http(s) URL", redact_url(raw))));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(bad(
            "the URL carries credentials; give them as --zendesk-email / --zendesk-token (or token_env) instead".into(),
        ));
    }
    if u.query().is_some() || u.fragment().is_some() {
        return Err(bad(format!(
            "'{}' has a query or fragment",
            redact_url(raw)
        )));
    }
    let path = u.path().trim_end_matches('/');
    let host = u.host_str().unwrap_or("").to_ascii_lowercase();
    let page = path == "/hc"
        || path.starts_with("/hc/")
        || path.contains("/api/v2")
        || (host.ends_with(".zendesk.com") && !path.is_empty());
    if page {
        let mut base = u.clone();
        base.set_path("");
        return Err(bad(format!(
            "{} has the path {path}, which is a Help Center page or API path, not the base URL (use {})",
            redact_url(raw),
            base.as_str().trim_end_matches('/')
        )));
    }
    Ok(raw.trim().to_string())
}

fn validate_schedule(source: &str, schedule: Option<&str>) -> Result<(), ConfigError> {
    if let Some(expr) = schedule {
        crate::schedule::Schedule::parse(expr).map_err(|e| {
            ConfigError::Invalid(format!("source '{source}': invalid schedule '{expr}': {e}"))
        })?;
    }
    Ok(())
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

    fn flags(url: &str) -> SourceFlags {
        SourceFlags {
            url: Some(url.into()),
            ..SourceFlags::default()
        }
    }

    #[test]
    fn a_set_but_blank_key_is_an_error_not_no_keys() {
        for (var, value) in [
            ("HELPDEX_CUSTOMER_KEY", ","),
            ("HELPDEX_AGENT_KEY", "   "),
            ("HELPDEX_ADMIN_KEY", ""),
            ("HELPDEX_ADMIN_KEY", "admin-key-0123456789,,"),
        ] {
            let env = |k: &str| (k == var).then(|| value.to_string());
            let e = Config::resolve(RawConfig::default(), None, SourceFlags::default(), &env)
                .unwrap_err()
                .to_string();
            assert!(
                e.contains(var) && e.contains("is set but"),
                "{var}={value:?}: {e}"
            );
        }
        let env = |k: &str| (k == "HELPDEX_ADMIN_KEY").then(|| "short".to_string());
        let e = Config::resolve(RawConfig::default(), None, SourceFlags::default(), &env)
            .unwrap_err()
            .to_string();
        assert!(e.contains("at least 16 characters"), "{e}");
        let raw: RawConfig = toml::from_str("[server]\ncustomer_keys = [\"  \"]").unwrap();
        assert!(Config::resolve(raw, None, SourceFlags::default(), &|_| None).is_err());
        let env = |k: &str| {
            (k == "HELPDEX_ADMIN_KEY")
                .then(|| "admin-key-0123456789, admin-key-abcdefghij".to_string())
        };
        let c = Config::resolve(RawConfig::default(), None, SourceFlags::default(), &env).unwrap();
        assert_eq!(c.server.admin_keys.len(), 2);
    }

    #[test]
    fn a_help_center_page_is_not_a_base_url() {
        for bad in [
            "https://acme.zendesk.com/hc/en-us",
            "https://acme.zendesk.com/hc",
            "https://acme.zendesk.com/api/v2/help_center",
            "https://help.acme.com/hc/en-us/articles/1",
            "https://bot%40acme.com:tok@acme.zendesk.com",
            "ftp://acme.zendesk.com",
            "acme.zendesk.com",
        ] {
            let e = Config::resolve(RawConfig::default(), None, flags(bad), &|_| None)
                .unwrap_err()
                .to_string();
            assert!(e.contains("e.g. https://acme.zendesk.com"), "{bad}: {e}");
            assert!(!e.contains("tok@"), "credentials echoed: {e}");
        }
        let e = Config::resolve(
            RawConfig::default(),
            None,
            flags("https://acme.zendesk.com/hc/en-us"),
            &|_| None,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("(use https://acme.zendesk.com)"), "{e}");
        for good in [
            "https://acme.zendesk.com",
            "https://acme.zendesk.com/",
            "http://127.0.0.1:7701",
            "https://proxy.example.com/zendesk",
        ] {
            assert!(
                Config::resolve(RawConfig::default(), None, flags(good), &|_| None).is_ok(),
                "{good}"
            );
        }
    }

    #[test]
    fn flags_and_file_sources_are_not_mixed_silently() {
        let raw: RawConfig =
            toml::from_str("[[sources]]\nname = \"a\"\nurl = \"https://a.zendesk.com\"").unwrap();
        let e = Config::resolve(raw, None, flags("https://b.zendesk.com"), &|_| None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("ZENDESK_URL") && e.contains("[[sources]] (a)"),
            "{e}"
        );
    }

    #[test]
    fn check_needs_no_secret_but_refuses_a_bad_schedule() {
        let raw: RawConfig = toml::from_str(
            r#"
            [server]
            webhook_secret_env = "HOOK"
            [[sources]]
            name = "a"
            url = "https://a.zendesk.com"
            email = "x@a"
            token_env = "A_TOKEN"
            schedule = "*/10 * * * *"
            "#,
        )
        .unwrap();
        let r = Config::check(raw.clone(), None, SourceFlags::default(), &|_| None).unwrap();
        assert_eq!(r.missing_secrets, ["A_TOKEN", "HOOK"]);
        assert_eq!(r.sources[0].next_runs.len(), 3);
        assert!(Config::resolve(raw.clone(), None, SourceFlags::default(), &|_| None).is_err());
        let mut bad = raw;
        bad.sources[0].schedule = Some("every ten minutes".into());
        let e = Config::check(bad.clone(), None, SourceFlags::default(), &|_| None)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("source 'a': invalid schedule 'every ten minutes'"),
            "{e}"
        );
        let env = |k: &str| matches!(k, "A_TOKEN" | "HOOK").then(|| "x".to_string());
        assert!(Config::resolve(bad, None, SourceFlags::default(), &env).is_err());
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let e =
            toml::from_str::<RawConfig>("[[sources]]\nname='a'\nurl='u'\ncolour='x'").unwrap_err();
        assert!(e.to_string().contains("colour"));
    }
}
