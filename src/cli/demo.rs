//! `helpdex demo`: the whole pipeline on a fresh machine, with no Zendesk account. Starts the
//! bundled emulator (its fixture help center is embedded in the binary, so a copied binary runs
//! the demo anywhere), syncs from it over real HTTP into the data directory, and answers a few
//! questions with citations, for a customer and for an agent.

use super::{out, print_hits, print_sync};
use anyhow::{Context, Result};
use helpdex_core::engine::Engine;
use helpdex_core::model::{Access, Audience};
use helpdex_core::query::QueryInput;
use helpdex_service::config::{Config, RawConfig, SourceFlags};
use helpdex_sync::{SyncOptions, sync_all};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Questions the demo asks (audience, query).
const QUESTIONS: &[(Audience, &str)] = &[
    (Audience::Customer, "How do I refund part of a payment?"),
    (Audience::Customer, "Why is my payout delayed?"),
    (
        Audience::Customer,
        "Wie richte ich die Zwei-Faktor-Authentifizierung ein?",
    ),
    (Audience::Agent, "fraud review escalation"),
];

fn world(fixtures: Option<&Path>) -> Result<helpdex_emulator::World> {
    match fixtures {
        Some(dir) => helpdex_emulator::World::load(dir)
            .with_context(|| format!("loading the fixture help center from {}", dir.display())),
        None => Ok(helpdex_emulator::World::demo()),
    }
}

/// Runs the demo into `data_dir`.
pub async fn run(data_dir: &Path, fixtures: Option<PathBuf>) -> Result<()> {
    // A stable port keeps citation URLs (and so index hashes) identical across demo runs.
    let emulator = match helpdex_emulator::Emulator::start(
        world(fixtures.as_deref())?,
        Default::default(),
        "127.0.0.1:7701".parse()?,
    )
    .await
    {
        Ok(e) => e,
        Err(_) => {
            helpdex_emulator::Emulator::start(
                world(fixtures.as_deref())?,
                Default::default(),
                "127.0.0.1:0".parse()?,
            )
            .await?
        }
    };
    out(&format!(
        "Emulated Zendesk Help Center at {} (fixtures: {})",
        emulator.base_url(),
        fixtures
            .as_ref()
            .map_or("bundled".into(), |d| d.display().to_string())
    ))?;
    let flags = SourceFlags {
        url: Some(emulator.base_url()),
        email: Some("sync@lumenpay.test".into()),
        token: Some("demo-admin-token".into()),
        ..SourceFlags::default()
    };
    // The fixture help center marks support-staff notes inside public articles with
    // `class="agent-only"`: dropping them is this help center's normalizer setting.
    let raw = RawConfig {
        normalize: Some(helpdex_core::normalize::NormalizeOptions {
            drop_selectors: vec![".agent-only".into()],
            ..Default::default()
        }),
        ..RawConfig::default()
    };
    let cfg: Config = Config::resolve(raw, Some(data_dir.to_path_buf()), flags, &|_| None)?;
    let engine = Arc::new(
        Engine::open(&cfg.data_dir, cfg.normalize.clone())
            .with_context(|| format!("opening data directory {}", cfg.data_dir.display()))?,
    );
    out(&format!("Syncing into {} ...", cfg.data_dir.display()))?;
    let report = sync_all(engine.clone(), &cfg.sync, &SyncOptions::default()).await;
    print_sync(&report, &cfg, false)?;
    anyhow::ensure!(report.ok(), "the demo sync failed");
    out("Syncing again (nothing changed, so nothing is re-indexed) ...")?;
    let again = sync_all(engine.clone(), &cfg.sync, &SyncOptions::default()).await;
    print_sync(&again, &cfg, false)?;
    for (audience, q) in QUESTIONS {
        out(&format!("\n=== {} asks: {q}", audience.as_str()))?;
        let input = QueryInput {
            limit: Some(3),
            ..QueryInput::new(*q)
        };
        let query = input.validate(Access {
            audience: *audience,
            ..Access::default()
        })?;
        let resp = helpdex_core::search::search(engine.reader(), &query)?;
        print_hits(&resp)?;
    }
    out("\nTry it yourself: cargo run --release -- search \"export invoices\" --json")?;
    emulator.shutdown().await;
    Ok(())
}
