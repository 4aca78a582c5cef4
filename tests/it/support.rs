//! Shared test environment: the emulator on a loopback port serving the fixture help center,
//! and a helpdex engine in a temporary data directory.

use helpdex_core::engine::Engine;
use helpdex_core::model::{Access, Audience};
use helpdex_core::query::QueryInput;
use helpdex_core::search::{SearchResponse, Tuning};
use helpdex_core::store::{ReadStore, StoreError};
use helpdex_emulator::{Emulator, EmulatorConfig, World};
use helpdex_service::config::{Config, RawConfig, SourceFlags};
use helpdex_sync::{SourceReport, SyncOptions, sync_all};
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub const ADMIN_EMAIL: &str = "sync@lumenpay.test";
pub const ADMIN_TOKEN: &str = "demo-admin-token";
pub const AGENT_EMAIL: &str = "agent@lumenpay.test";
pub const AGENT_TOKEN: &str = "demo-agent-token";

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/helpcenter")
}

/// Every fixture article file, parsed.
pub fn fixture_articles() -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    let mut paths: Vec<_> = std::fs::read_dir(fixtures().join("articles"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    paths.sort();
    for p in paths {
        out.push(serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap());
    }
    out
}

/// A fixture article that is published, public and has a body.
pub fn is_public_fixture(f: &serde_json::Value) -> bool {
    f["article"]["user_segment_ids"]
        .as_array()
        .is_none_or(|v| v.is_empty())
        && !f["article"]["draft"].as_bool().unwrap_or(false)
        && !f["archived"].as_bool().unwrap_or(false)
        && f["article"]["body"].is_string()
}

pub struct Env {
    pub emu: Emulator,
    pub dir: tempfile::TempDir,
    pub engine: Arc<Engine>,
    pub cfg: Config,
}

pub fn config_for(url: &str, email: &str, token: &str, data_dir: &Path) -> Config {
    let flags = SourceFlags {
        url: Some(url.to_string()),
        email: Some(email.to_string()),
        token: Some(token.to_string()),
        ..SourceFlags::default()
    };
    let mut cfg = Config::resolve(
        RawConfig::default(),
        Some(data_dir.to_path_buf()),
        flags,
        &|_| None,
    )
    .unwrap();
    for s in &mut cfg.sync.sources {
        // Fast retries in tests.
        s.client.retry.base_backoff = std::time::Duration::from_millis(5);
        s.client.retry.max_backoff = std::time::Duration::from_millis(50);
        s.client.timeout = std::time::Duration::from_secs(5);
    }
    cfg
}

impl Env {
    pub async fn start() -> Env {
        Env::start_with(EmulatorConfig::default(), ADMIN_EMAIL, ADMIN_TOKEN).await
    }

    pub async fn start_with(ec: EmulatorConfig, email: &str, token: &str) -> Env {
        let world = World::load(&fixtures()).expect("fixtures load");
        Env::start_world(world, ec, email, token).await
    }

    /// A synthetic help center served with default settings, synced by its admin.
    pub async fn synthetic(spec: &helpdex_emulator::Synthetic) -> Env {
        Env::start_world(
            spec.world(),
            EmulatorConfig::default(),
            helpdex_emulator::SYNTHETIC_EMAIL,
            helpdex_emulator::SYNTHETIC_TOKEN,
        )
        .await
    }

    pub async fn start_world(world: World, ec: EmulatorConfig, email: &str, token: &str) -> Env {
        let emu = Emulator::start(world, ec, "127.0.0.1:0".parse().unwrap())
            .await
            .expect("emulator starts");
        let dir = tempfile::tempdir().unwrap();
        let cfg = config_for(&emu.base_url(), email, token, dir.path());
        let engine = Arc::new(Engine::open(dir.path(), cfg.normalize.clone()).unwrap());
        Env {
            emu,
            dir,
            engine,
            cfg,
        }
    }

    pub async fn sync(&self) -> SourceReport {
        self.sync_with(&SyncOptions::default()).await
    }

    pub async fn sync_with(&self, opts: &SyncOptions) -> SourceReport {
        let mut r = sync_all(self.engine.clone(), &self.cfg.sync, opts).await;
        r.sources.remove(0)
    }

    pub fn search(&self, q: &str, access: Access) -> SearchResponse {
        search_in(&self.engine, q, access, 20)
    }

    pub fn customer(&self, q: &str) -> SearchResponse {
        self.search(q, Access::anonymous())
    }

    /// A second, empty data directory synced from the same emulator (the clean reference of
    /// the fault matrix).
    pub async fn fresh_sync(&self) -> (tempfile::TempDir, Arc<Engine>, SourceReport) {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = self.cfg.clone();
        cfg.data_dir = dir.path().to_path_buf();
        let engine = Arc::new(Engine::open(dir.path(), cfg.normalize.clone()).unwrap());
        let mut r = sync_all(engine.clone(), &cfg.sync, &SyncOptions::default()).await;
        (dir, engine, r.sources.remove(0))
    }

    /// Requests the emulator answered since the last reset, by path fragment.
    pub fn count(&self, path_contains: &str) -> usize {
        self.emu
            .requests()
            .iter()
            .filter(|q| q.path.contains(path_contains))
            .count()
    }

    pub fn agent(&self, q: &str) -> SearchResponse {
        self.search(
            q,
            Access {
                audience: Audience::Agent,
                ..Access::default()
            },
        )
    }
}

/// A search on any engine (tests with their own data directory).
pub fn search_in(engine: &Engine, q: &str, access: Access, limit: usize) -> SearchResponse {
    search_tuned(engine, q, access, limit, &Tuning::default())
}

/// [`search_in`] with explicit ranking knobs.
pub fn search_tuned(
    engine: &Engine,
    q: &str,
    access: Access,
    limit: usize,
    tuning: &Tuning,
) -> SearchResponse {
    let query = QueryInput {
        limit: Some(limit),
        ..QueryInput::new(q)
    }
    .validate(access)
    .unwrap();
    helpdex_core::search::search_with(engine.reader(), &query, tuning).unwrap()
}

/// The real binary with a clean environment ([`clean_env`]).
pub fn binary() -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_helpdex"));
    clean_env(&mut c);
    c
}

/// Nothing of the caller's helpdex or Zendesk environment leaks into a test's process; logs
/// at `warn`.
pub fn clean_env(c: &mut std::process::Command) {
    c.env("HELPDEX_LOG", "warn");
    for v in [
        "ZENDESK_URL",
        "ZENDESK_EMAIL",
        "ZENDESK_API_TOKEN",
        "ZENDESK_OAUTH_TOKEN",
        "HELPDEX_CONFIG",
        "HELPDEX_DATA_DIR",
        "HELPDEX_CUSTOMER_KEY",
        "HELPDEX_AGENT_KEY",
        "HELPDEX_ADMIN_KEY",
        "HELPDEX_WEBHOOK_SECRET",
        "HELPDEX_SCHEDULE",
        "HELPDEX_EMBEDDING_MODEL",
    ] {
        c.env_remove(v);
    }
}

/// [`binary`] on a data directory, signed in to the emulator at `url` as its admin with
/// `token`.
pub fn binary_on(data: &Path, url: &str, token: &str) -> std::process::Command {
    let mut c = binary();
    c.args(["--data-dir", data.to_str().unwrap()])
        .env("ZENDESK_URL", url)
        .env("ZENDESK_EMAIL", ADMIN_EMAIL)
        .env("ZENDESK_API_TOKEN", token);
    c
}

/// Runs `f` on a read connection of the engine's data directory.
pub fn db<T>(engine: &Engine, f: impl FnOnce(&mut ReadStore) -> Result<T, StoreError>) -> T {
    engine.reader().store(f).unwrap()
}

/// The emulator on a loopback port, serving a fixture directory with default settings.
pub async fn emulator_on(dir: &Path) -> Emulator {
    Emulator::start(
        World::load(dir).expect("fixtures load"),
        EmulatorConfig::default(),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .expect("emulator starts")
}

pub fn ok(r: &SourceReport) {
    assert!(r.error.is_none(), "sync failed: {:?}", r.error);
}
