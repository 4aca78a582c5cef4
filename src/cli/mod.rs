//! Command-line interface: argument parsing and the commands' output. The work itself lives in
//! the library; this file only wires it to a terminal.

pub mod demo;
mod output;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use helpdex_core::engine::Engine;
use helpdex_core::model::Audience;
use helpdex_core::query::{self as contract, QueryInput};
use helpdex_core::reader::{LazyReader, Reader};
use helpdex_core::store::StoreRead;
use helpdex_service::config::{Config, RawConfig, SourceFlags};
use helpdex_sync::{SyncOptions, sync_all};
pub use output::{out, print_hits, print_sync};
use std::path::PathBuf;
use std::sync::Arc;

/// `helpdex --version`: the release and the commit it was built from.
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("HELPDEX_COMMIT"), ")");

/// What this build is, for `/version` and the metrics.
pub fn build_info() -> helpdex_service::BuildInfo {
    helpdex_service::BuildInfo {
        version: env!("CARGO_PKG_VERSION"),
        commit: env!("HELPDEX_COMMIT"),
    }
}

/// helpdex: keeps AI support agents grounded in your Zendesk Help Center.
#[derive(Debug, Parser)]
#[command(name = "helpdex", version = VERSION, about, long_about = None)]
pub struct Cli {
    /// Data directory (SQLite state + tantivy index).
    #[arg(long, global = true, env = "HELPDEX_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// TOML configuration file (several help centers, limits, normalizer, server).
    #[arg(long, global = true, env = "HELPDEX_CONFIG")]
    pub config: Option<PathBuf>,
    /// Help Center base URL, e.g. https://acme.zendesk.com (any http(s) URL).
    #[arg(long, global = true, env = "ZENDESK_URL")]
    pub zendesk_url: Option<String>,
    /// Agent or admin email for API-token auth.
    #[arg(long, global = true, env = "ZENDESK_EMAIL")]
    pub zendesk_email: Option<String>,
    /// Zendesk API token.
    #[arg(long, global = true, env = "ZENDESK_API_TOKEN", hide_env_values = true)]
    pub zendesk_token: Option<String>,
    /// Zendesk OAuth access token (instead of email + API token).
    #[arg(
        long,
        global = true,
        env = "ZENDESK_OAUTH_TOKEN",
        hide_env_values = true
    )]
    pub zendesk_oauth_token: Option<String>,
    /// Cron schedule of the help center given by flags, for `serve` ("*/10 * * * *").
    #[arg(long, global = true, env = "HELPDEX_SCHEDULE")]
    pub schedule: Option<String>,
    /// Log format on stderr.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "text",
        env = "HELPDEX_LOG_FORMAT"
    )]
    pub log_format: LogFormat,
    /// Command.
    #[command(subcommand)]
    pub command: Command,
}

/// Log output format.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable.
    Text,
    /// One JSON object per line.
    Json,
}

/// Commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Pull what changed since the last sync and update the index.
    Sync {
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Compare hashes of every article now (the periodic full sweep).
        #[arg(long)]
        full: bool,
    },
    /// Search the help center; prints cited passages.
    Search(SearchArgs),
    /// Assemble a prompt-ready grounding context with numbered citations.
    Context {
        /// Search parameters.
        #[command(flatten)]
        search: SearchArgs,
        /// Character budget of the context (200-50000, default 6000).
        #[arg(long)]
        max_chars: Option<usize>,
    },
    /// Show what helpdex stored for an article: per locale, visibility and why, hashes, segments.
    Explain {
        /// Zendesk article id.
        article_id: u64,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Rebuild the index from the local store into a new generation (no network).
    Reindex {
        /// Re-pull everything from Zendesk first (fixes bulk edits that did not move updated_at).
        #[arg(long)]
        refetch: bool,
        /// Always rebuild in this process, even when a `helpdex serve` uses the data directory.
        #[arg(long)]
        local: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Per-source state: cursor, last run, counts.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run the HTTP API and the scheduled sync (one long-lived process per deployment).
    Serve {
        /// Address to listen on (default 127.0.0.1:7700, or [server] listen).
        #[arg(long, env = "HELPDEX_LISTEN")]
        listen: Option<String>,
    },
    /// Model Context Protocol server on stdio (tools: search_help_center, get_context,
    /// get_article, verify_citations). `helpdex serve` also serves MCP over HTTP at /mcp.
    Mcp {
        /// The highest audience a tool call may ask for; `customer` (default) never returns
        /// internal or restricted content unless the call passes the user's segments.
        #[arg(
            long,
            value_enum,
            default_value = "customer",
            env = "HELPDEX_MCP_AUDIENCE"
        )]
        audience: AudienceArg,
    },
    /// Serve a fixture directory as a Zendesk Help Center API (tests, demo, benchmarks).
    Emulate {
        /// Fixture help center directory (default: the bundled one).
        #[arg(long)]
        fixtures: Option<PathBuf>,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:7701")]
        listen: String,
        /// Requests allowed per minute (Zendesk plans: 200 to 2500); unlimited when absent.
        #[arg(long)]
        rate_limit: Option<u32>,
        /// Articles per incremental export page (Zendesk: 1000).
        #[arg(long, default_value_t = 1000)]
        page_size: usize,
    },
    /// Start the bundled emulator, sync from it over HTTP and answer a few questions.
    Demo {
        /// Fixture help center directory.
        #[arg(long)]
        fixtures: Option<PathBuf>,
    },
    /// Check citations an answer used: current, changed (with the current hash) or gone.
    Verify(VerifyArgs),
    /// Configuration tools.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Back up the state database into DIR (SQLite online backup; safe while serve runs). The
    /// index is not backed up: it is rebuilt from the state database.
    Backup {
        /// Directory to write helpdex.sqlite3 into (created; an existing backup is never
        /// overwritten).
        dir: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Restore a backup into the data directory and rebuild the index from it (stop serve
    /// first; the previous database is kept beside it).
    Restore {
        /// A directory written by `helpdex backup`, or the helpdex.sqlite3 file itself.
        backup: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

/// `helpdex config ...`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the configuration (file, flags, environment) and its schedules, without
    /// needing the secrets and without any network access; lists the secret variables that
    /// sync and serve will need.
    Check {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `helpdex verify`: citations as passage ids, or hits/citations JSON from a file or stdin.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Passage ids (`SOURCE:ARTICLE_ID:LOCALE:HASH16`, a hit's `passage_id`).
    pub passage_ids: Vec<String>,
    /// Read citations from a JSON file (`-` for stdin): the output of `search --json` or
    /// `context --json`, a list of hits, or `{"citations": [...]}`.
    #[arg(long, value_name = "FILE")]
    pub from: Option<PathBuf>,
    /// Whose view to check them in (default customer).
    #[arg(long, value_enum)]
    pub audience: Option<AudienceArg>,
    /// Customer's Zendesk user segment ids, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub segments: Vec<u64>,
    /// The customer is signed in.
    #[arg(long)]
    pub signed_in: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `--audience`: whose answer a query grounds.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum AudienceArg {
    /// Only what a customer may see.
    Customer,
    /// Internal content too.
    Agent,
}

impl From<AudienceArg> for Audience {
    fn from(a: AudienceArg) -> Audience {
        match a {
            AudienceArg::Customer => Audience::Customer,
            AudienceArg::Agent => Audience::Agent,
        }
    }
}

/// Search parameters shared by `search` and `context`: the query contract's fields, with its
/// defaults and bounds (`helpdex_core::query`), exactly as HTTP and MCP take them.
#[derive(Debug, Args)]
pub struct SearchArgs {
    /// The question or keywords.
    pub query: String,
    /// Whose answer this grounds: customer (public content only) or agent (internal too).
    #[arg(long, value_enum)]
    pub audience: Option<AudienceArg>,
    /// Only this locale (e.g. en-us, de; case-insensitive).
    #[arg(long)]
    pub locale: Option<String>,
    /// Maximum number of hits (1-50, default 8).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Customer's Zendesk user segment ids, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub segments: Vec<u64>,
    /// The customer is signed in.
    #[arg(long)]
    pub signed_in: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

impl SearchArgs {
    /// The validated query; the command line may ask for any audience.
    fn query(&self, max_chars: Option<usize>) -> Result<contract::Query> {
        let input = QueryInput {
            query: self.query.clone(),
            audience: self.audience.map(Audience::from),
            signed_in: self.signed_in.then_some(true),
            segments: (!self.segments.is_empty()).then(|| self.segments.clone()),
            locale: self.locale.clone(),
            limit: self.limit,
            max_chars,
        };
        let access = input.requested_access();
        Ok(input.validate(access)?)
    }
}

fn env_lookup(k: &str) -> Option<String> {
    std::env::var(k).ok()
}

fn raw_config(cli: &Cli) -> Result<RawConfig> {
    Ok(match &cli.config {
        Some(p) => RawConfig::load(p)?,
        None => RawConfig::default(),
    })
}

fn source_flags(cli: &Cli) -> SourceFlags {
    SourceFlags {
        url: cli.zendesk_url.clone(),
        email: cli.zendesk_email.clone(),
        token: cli.zendesk_token.clone(),
        oauth_token: cli.zendesk_oauth_token.clone(),
        schedule: cli.schedule.clone(),
    }
}

/// Resolves the configuration from the file, flags and environment.
pub fn config(cli: &Cli) -> Result<Config> {
    Ok(Config::resolve(
        raw_config(cli)?,
        cli.data_dir.clone(),
        source_flags(cli),
        &env_lookup,
    )?)
}

/// Runs the parsed command; the exit code is non-zero when a sync source failed.
pub async fn run(cli: Cli) -> Result<i32> {
    match &cli.command {
        Command::Sync { json, full } => {
            let cfg = config(&cli)?;
            if cfg.sync.sources.is_empty() {
                bail!(
                    "no help center configured: pass --zendesk-url (or ZENDESK_URL) with credentials, or --config FILE"
                );
            }
            let engine = open_engine(&cfg)?;
            // The model loads, and embeds what each sync page commits, while the sync runs:
            // on a first sync the embedding is most of the time, and the sync alone leaves
            // a core idle.
            let sync_done = Arc::new(std::sync::atomic::AtomicBool::new(false));
            let embedding = cfg.embeddings.clone().map(|e| {
                let (engine, dir, done) = (engine.clone(), cfg.data_dir.clone(), sync_done.clone());
                tokio::spawn(async move { embed_all(engine, &e, &dir, done).await })
            });
            let bar = progress_bar("syncing");
            let opts = SyncOptions {
                full: *full,
                progress: Some(sync_progress(bar.clone())),
                ..Default::default()
            };
            let report = sync_all(engine.clone(), &cfg.sync, &opts).await;
            sync_done.store(true, std::sync::atomic::Ordering::Release);
            if let Some(b) = bar {
                b.finish_and_clear();
            }
            print_sync(&report, &cfg, *json)?;
            if let Some(embedding) = embedding {
                // A one-shot sync returns once its passages have vectors: the next `search`
                // is hybrid.
                let embedded = embedding.await??;
                if !*json {
                    eprintln!(
                        "embedded {} passages in {:.1}s",
                        embedded.embedded, embedded.seconds
                    );
                }
            }
            Ok(if report.ok() { 0 } else { 1 })
        }
        Command::Search(args) => {
            let q = args.query(None)?;
            let reader = open_reader(&cli)?;
            attach_model(&cli, &reader).await?;
            let resp = helpdex_core::search::search(&reader, &q)?;
            if args.json {
                out(&serde_json::to_string_pretty(&resp)?)?;
            } else {
                print_hits(&resp)?;
            }
            Ok(0)
        }
        Command::Context { search, max_chars } => {
            let q = search.query(*max_chars)?;
            let reader = open_reader(&cli)?;
            attach_model(&cli, &reader).await?;
            let resp = helpdex_core::search::context(&reader, &q)?;
            if search.json {
                out(&serde_json::to_string_pretty(&resp)?)?;
            } else if !resp.found {
                out(&format!(
                    "No relevant help center content found for: {}",
                    resp.query
                ))?;
            } else {
                out(&format!("{}\n", resp.context))?;
                for c in &resp.citations {
                    out(&format!("[{}] {}", c.n, c.url))?;
                }
            }
            Ok(0)
        }
        Command::Explain { article_id, json } => {
            let reader = open_reader(&cli)?;
            let ex = helpdex_core::explain::explain(&reader, *article_id)?;
            if ex.is_empty() {
                bail!("article {article_id} is not in the local store (never synced, or removed)");
            }
            if *json {
                out(&serde_json::to_string_pretty(&ex)?)?;
            } else {
                for e in &ex {
                    out(e.render().trim_end())?;
                }
            }
            Ok(0)
        }
        Command::Reindex {
            refetch,
            json,
            local,
        } => {
            let cfg = config(&cli)?;
            if !*local && let Some(code) = reindex_via_server(&cfg, *refetch, *json).await? {
                return Ok(code);
            }
            let engine = open_engine(&cfg)?;
            if *refetch {
                let report = sync_all(
                    engine.clone(),
                    &cfg.sync,
                    &SyncOptions {
                        full: true,
                        ..Default::default()
                    },
                )
                .await;
                print_sync(&report, &cfg, *json)?;
                if !report.ok() {
                    return Ok(1);
                }
            }
            let e = engine.clone();
            let bar = progress_bar("rebuilding the index");
            let r = tokio::task::spawn_blocking(move || e.rebuild()).await??;
            if let Some(b) = bar {
                b.finish_and_clear();
            }
            if *json {
                out(&serde_json::to_string_pretty(&r)?)?;
            } else {
                out(&format!(
                    "reindexed {} translations ({} passages) into {} in {:.2}s",
                    r.translations, r.passages, r.generation, r.seconds
                ))?;
            }
            Ok(0)
        }
        Command::Status { json } => {
            let reader = open_reader(&cli)?;
            let (sources, counts) =
                reader.store(|s| s.snapshot(|s| Ok((s.sources()?, s.counts(None)?))))?;
            let index = reader.index_status().ok();
            let vectors = helpdex_core::vectors::status(&reader)?;
            if *json {
                let v = serde_json::json!({"sources": sources, "counts": counts, "index": index, "vectors": vectors});
                out(&serde_json::to_string_pretty(&v)?)?;
            } else {
                for s in &sources {
                    out(&format!(
                        "{}: {} cursor={} syncs={} last={} {}",
                        s.name,
                        s.base_url,
                        s.cursor,
                        s.syncs,
                        s.last_result.as_deref().unwrap_or("never"),
                        s.last_error.as_deref().unwrap_or("")
                    ))?;
                    if !s.quarantined.is_empty() {
                        out(&format!(
                            "  quarantined: {} malformed records, never indexed (status --json lists them)",
                            s.quarantined.len()
                        ))?;
                    }
                }
                for c in &counts {
                    out(&format!(
                        "  {:<10} {:<6} {}",
                        c.visibility.as_str(),
                        c.locale,
                        c.translations
                    ))?;
                }
                match index {
                    Some(i) => out(&format!("index {}: {} passages", i.generation, i.passages))?,
                    None => out("index: not built yet (run `helpdex sync`)")?,
                }
                if let Some(v) = &vectors {
                    out(&format!(
                        "vectors: {} of {} passages embedded ({} pending), model {}",
                        v.embedded,
                        v.passages,
                        v.pending,
                        v.model.get(..12).unwrap_or(&v.model)
                    ))?;
                }
            }
            Ok(0)
        }
        Command::Serve { listen } => {
            let cfg = config(&cli)?;
            helpdex_service::server::run(
                cfg,
                helpdex_service::server::ServeOptions {
                    listen: listen.clone(),
                    build: build_info(),
                },
            )
            .await?;
            Ok(0)
        }
        Command::Mcp { audience } => {
            // A reader: it never blocks `sync` or `serve`, and follows their commits. Opened
            // on the first call, so an AI client started before the first sync gets "run
            // `helpdex sync`" as a tool error rather than a server that will not start.
            let mut reader = LazyReader::new(&data_dir(&cli)?);
            if let Some(e) = embeddings(&cli)? {
                let model = helpdex_service::embeddings::open(&e, &data_dir(&cli)?).await?;
                reader = reader.with_embedder(model);
            }
            helpdex_service::mcp::serve_stdio(
                Arc::new(reader),
                helpdex_service::mcp::McpPolicy {
                    max_audience: (*audience).into(),
                },
            )
            .await?;
            Ok(0)
        }
        Command::Emulate {
            fixtures,
            listen,
            rate_limit,
            page_size,
        } => {
            let world = match fixtures {
                Some(dir) => helpdex_emulator::World::load(dir)
                    .with_context(|| format!("loading fixtures from {}", dir.display()))?,
                None => helpdex_emulator::World::demo(),
            };
            let config = helpdex_emulator::EmulatorConfig {
                rate_limit: rate_limit.map(|n| helpdex_emulator::RateLimit {
                    per_window: n,
                    window: std::time::Duration::from_secs(60),
                }),
                incremental_page_size: *page_size,
                ..Default::default()
            };
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("cannot listen on {listen}"))?;
            eprintln!(
                "helpdex emulator serving {} on http://{}",
                fixtures
                    .as_ref()
                    .map_or("the bundled fixture help center".into(), |d| d
                        .display()
                        .to_string()),
                listener.local_addr()?
            );
            helpdex_emulator::serve(world, config, listener).await?;
            Ok(0)
        }
        Command::Demo { fixtures } => {
            let cfg = config(&cli)?;
            demo::run(&cfg.data_dir, fixtures.clone()).await?;
            Ok(0)
        }
        Command::Verify(args) => verify(&cli, args),
        Command::Config(ConfigCommand::Check { json }) => {
            let report = Config::check(
                raw_config(&cli)?,
                cli.data_dir.clone(),
                source_flags(&cli),
                &env_lookup,
            )?;
            if *json {
                out(&serde_json::to_string_pretty(&report)?)?;
            } else {
                out(&format!(
                    "configuration is valid (data directory {})",
                    report.data_dir.display()
                ))?;
                if report.sources.is_empty() {
                    out(
                        "  no help center configured: serve would only answer from an existing index",
                    )?;
                }
                for s in &report.sources {
                    let next = s
                        .next_runs
                        .iter()
                        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
                        .collect::<Vec<_>>()
                        .join(", ");
                    out(&format!(
                        "  source {}: {} schedule {}{}",
                        s.name,
                        s.url,
                        s.schedule
                            .as_deref()
                            .unwrap_or("none (on demand and webhooks only)"),
                        if next.is_empty() {
                            String::new()
                        } else {
                            format!(" (next: {next})")
                        }
                    ))?;
                }
                out(&format!(
                    "  API keys: {} customer, {} agent, {} admin{}; webhooks {}",
                    report.keys.customer,
                    report.keys.agent,
                    report.keys.admin,
                    if report.keys.customer + report.keys.agent + report.keys.admin == 0 {
                        " (serve listens on loopback only)"
                    } else {
                        ""
                    },
                    if report.webhooks { "on" } else { "off" }
                ))?;
                for v in &report.missing_secrets {
                    out(&format!("  not set here (sync and serve need it): {v}"))?;
                }
            }
            Ok(0)
        }
        Command::Backup { dir, json } => {
            let data_dir = data_dir(&cli)?;
            let r = helpdex_core::backup::backup(&data_dir, dir)?;
            if *json {
                out(&serde_json::to_string_pretty(&r)?)?;
            } else {
                out(&format!(
                    "backed up {} ({} articles, {} translations, {} bytes) to {}; restore with `helpdex restore {}`",
                    data_dir.display(),
                    r.articles,
                    r.translations,
                    r.bytes,
                    r.file.display(),
                    dir.display()
                ))?;
            }
            Ok(0)
        }
        Command::Restore { backup, json } => {
            let cfg_dir = data_dir(&cli)?;
            let r = helpdex_core::backup::restore(backup, &cfg_dir)?;
            // The index is derived: rebuild it from the restored store now.
            let normalize = raw_config(&cli)?.normalize.unwrap_or_default();
            let dir = cfg_dir.clone();
            let rebuilt = tokio::task::spawn_blocking(move || -> Result<_> {
                let engine = Engine::open(&dir, normalize)
                    .with_context(|| format!("opening data directory {}", dir.display()))?;
                Ok(engine.rebuild()?)
            })
            .await??;
            if *json {
                out(&serde_json::to_string_pretty(
                    &serde_json::json!({"restore": r, "reindex": rebuilt}),
                )?)?;
            } else {
                out(&format!(
                    "restored {} ({} articles, {} translations) into {}{}; index rebuilt: {} passages in {}",
                    r.file.display(),
                    r.articles,
                    r.translations,
                    cfg_dir.display(),
                    r.previous
                        .as_ref()
                        .map(|p| format!(" (the previous database is kept as {})", p.display()))
                        .unwrap_or_default(),
                    rebuilt.passages,
                    rebuilt.generation
                ))?;
            }
            Ok(0)
        }
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            let mut buf = Vec::new();
            clap_complete::generate(*shell, &mut cmd, "helpdex", &mut buf);
            use std::io::Write;
            std::io::stdout().lock().write_all(&buf)?;
            Ok(0)
        }
    }
}

/// `helpdex verify`.
fn verify(cli: &Cli, args: &VerifyArgs) -> Result<i32> {
    use helpdex_core::verify::{CitationRef, CitationStatus};
    let mut citations: Vec<CitationRef> = args
        .passage_ids
        .iter()
        .map(|id| CitationRef {
            passage_id: Some(id.clone()),
            ..CitationRef::default()
        })
        .collect();
    if let Some(path) = &args.from {
        let text = if path.as_os_str() == "-" {
            std::io::read_to_string(std::io::stdin())?
        } else {
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
        };
        let v: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSON", path.display()))?;
        let list = match &v {
            serde_json::Value::Array(_) => v.clone(),
            _ => v
                .get("citations")
                .filter(|c| c.is_array())
                .or_else(|| v.get("hits"))
                .cloned()
                .unwrap_or_default(),
        };
        let more: Vec<CitationRef> = serde_json::from_value(list).with_context(|| {
            format!(
                "{}: expected the output of `search --json`/`context --json`, a list of hits, or {{\"citations\": [...]}}",
                path.display()
            )
        })?;
        citations.extend(more);
    }
    let input = QueryInput {
        audience: args.audience.map(Audience::from),
        signed_in: args.signed_in.then_some(true),
        segments: (!args.segments.is_empty()).then(|| args.segments.clone()),
        ..QueryInput::default()
    };
    let access = input.requested_access();
    let reader = open_reader(cli)?;
    let resp = helpdex_core::verify::verify(&reader, &citations, &access)?;
    if args.json {
        out(&serde_json::to_string_pretty(&resp)?)?;
    } else {
        for c in &resp.results {
            let what = c.passage_id.as_deref().or(c.url.as_deref()).unwrap_or("?");
            match c.status {
                CitationStatus::Current => out(&format!("current  {what}"))?,
                CitationStatus::Changed => out(&format!(
                    "changed  {what} -> {} (content hash {})",
                    c.current_url.as_deref().unwrap_or("?"),
                    c.current_hash.as_deref().unwrap_or("?")
                ))?,
                CitationStatus::Gone => out(&format!("gone     {what}"))?,
            }
        }
    }
    // Like `diff`: 0 when everything is current, 1 when something is stale.
    Ok(if resp.all_current { 0 } else { 1 })
}

/// Asks a running `helpdex serve` on this data directory to rebuild; `None` when there is none.
///
/// `server.json` only says where a server was: before the admin key goes there, the process
/// must still exist and whatever answers at that address must prove it holds the instance key
/// written beside it (a kill -9 leaves the file behind, and the port can be reused by anyone).
async fn reindex_via_server(cfg: &Config, refetch: bool, json: bool) -> Result<Option<i32>> {
    use helpdex_service::server;
    let Some(advert) = server::read_advert(&cfg.data_dir) else {
        return Ok(None);
    };
    let file = server::advert_path(&cfg.data_dir);
    if !server::pid_alive(advert.pid) {
        tracing::info!(pid = advert.pid, file = %file.display(), "stale server.json (that process is gone); reindexing locally");
        return Ok(None);
    }
    let probe = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()?;
    let nonce: String = (0..32)
        .map(|_| format!("{:x}", rand::random::<u8>() & 0x0f))
        .collect();
    let not_ours = |why: String| {
        anyhow::anyhow!(
            "{url} (named by {file}) is not the helpdex server of this data directory ({why}); the admin key was not sent. \
             If no `helpdex serve` runs here, delete {file} and run `helpdex reindex` again",
            url = advert.url,
            file = file.display()
        )
    };
    let proof = match probe
        .get(format!("{}/v1/instance/proof", advert.url))
        .query(&[("nonce", &nonce)])
        .send()
        .await
    {
        Ok(r) if r.status().is_success() => r
            .json::<serde_json::Value>()
            .await
            .ok()
            .and_then(|v| v["proof"].as_str().map(str::to_string))
            .unwrap_or_default(),
        Ok(r) => {
            return Err(not_ours(format!(
                "it answered {} to the challenge",
                r.status()
            )));
        }
        Err(e) if e.is_connect() => {
            tracing::info!(url = %advert.url, "stale server.json (no server answers); reindexing locally");
            return Ok(None);
        }
        Err(e) => return Err(not_ours(format!("the challenge failed: {e}"))),
    };
    if !server::proof_matches(&advert, &nonce, &proof) {
        return Err(not_ours(
            "it could not prove it holds the instance key".into(),
        ));
    }
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(3600))
        .build()?;
    let url = format!("{}/v1/admin/reindex", advert.url);
    let mut req = client
        .post(&url)
        .json(&serde_json::json!({"refetch": refetch}));
    if let Some(key) = cfg.server.admin_keys.first() {
        req = req.bearer_auth(key.expose());
    }
    let resp = req.send().await.with_context(|| {
        format!(
            "the running helpdex server at {} did not answer the reindex",
            advert.url
        )
    })?;
    let status = resp.status();
    let body: serde_json::Value = resp.json().await.unwrap_or_default();
    if !status.is_success() {
        let msg = body["error"]["message"].as_str().unwrap_or("no details");
        bail!(
            "the running helpdex server at {} refused the reindex ({status}): {msg}",
            advert.url
        );
    }
    if json {
        out(&serde_json::to_string_pretty(&body)?)?;
    } else {
        let r = &body["reindex"];
        out(&format!(
            "reindexed by the running server at {}: {} translations ({} passages) into {} in {:.2}s",
            advert.url,
            r["translations"],
            r["passages"],
            r["generation"].as_str().unwrap_or("?"),
            r["seconds"].as_f64().unwrap_or(0.0)
        ))?;
    }
    Ok(Some(0))
}

/// A spinner on stderr, only when stderr is a terminal (never in logs, pipes or CI).
fn progress_bar(msg: &str) -> Option<indicatif::ProgressBar> {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let b = indicatif::ProgressBar::new_spinner();
    b.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    b.set_message(msg.to_string());
    b.enable_steady_tick(std::time::Duration::from_millis(120));
    Some(b)
}

/// How often a sync without a terminal logs its progress.
const PROGRESS_LOG_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// Sync progress: on the spinner when stderr is a terminal, else a log line at most every
/// [`PROGRESS_LOG_EVERY`] (systemd, CI and pipes see that a long first sync is moving).
fn sync_progress(bar: Option<indicatif::ProgressBar>) -> helpdex_sync::Progress {
    let last = std::sync::Mutex::new(std::time::Instant::now());
    helpdex_sync::Progress(Arc::new(move |source: &str, fetched: u64| match &bar {
        Some(bar) => bar.set_message(format!(
            "syncing {source}: {fetched} article records fetched"
        )),
        None => {
            let mut last = last.lock().unwrap_or_else(|p| p.into_inner());
            if last.elapsed() >= PROGRESS_LOG_EVERY {
                *last = std::time::Instant::now();
                tracing::info!(source, fetched, "sync in progress");
            }
        }
    }))
}

/// A reader of the data directory: never takes the writer's lock, never writes, and says what
/// to do when there is nothing to read.
fn open_reader(cli: &Cli) -> Result<Reader> {
    Ok(Reader::open(&data_dir(cli)?)?)
}

/// The data directory from the flag, the environment or the config file. Only that is needed
/// to read: sources and their secrets are the writer's business.
fn data_dir(cli: &Cli) -> Result<PathBuf> {
    let from_file = match (&cli.data_dir, &cli.config) {
        (None, Some(p)) => RawConfig::load(p)?.data_dir,
        _ => None,
    };
    Ok(cli
        .data_dir
        .clone()
        .or(from_file)
        .unwrap_or_else(|| PathBuf::from("index")))
}

/// The embedding model setting: `HELPDEX_EMBEDDING_MODEL`, else the config file's
/// `[embeddings]` (readers need nothing else of the configuration).
fn embeddings(cli: &Cli) -> Result<Option<helpdex_service::embeddings::EmbeddingsConfig>> {
    let raw = raw_config(cli)?;
    Ok(helpdex_service::embeddings::EmbeddingsConfig::resolve(
        &raw.embeddings,
        &env_lookup,
    )?)
}

/// Turns hybrid retrieval on for `reader` when a model is configured (weights memory-mapped:
/// a question from the CLI stays interactive).
async fn attach_model(cli: &Cli, reader: &Reader) -> Result<()> {
    if let Some(e) = embeddings(cli)? {
        let model = helpdex_service::embeddings::open(&e, reader.data_dir()).await?;
        reader.set_embedder(model);
    }
    Ok(())
}

/// Embeds every passage still without a vector, with progress on a terminal (once the sync is
/// done: two spinners would garble each other). Passes follow the sync as it commits pages,
/// each from the last passage the previous one saw (new and edited passages get higher
/// rowids); the pass that starts after `sync_done` is set reads every pending passage from
/// the first, and prunes.
async fn embed_all(
    engine: Arc<Engine>,
    cfg: &helpdex_service::embeddings::EmbeddingsConfig,
    data_dir: &std::path::Path,
    sync_done: Arc<std::sync::atomic::AtomicBool>,
) -> Result<helpdex_core::engine::EmbedReport> {
    use std::sync::atomic::Ordering;
    let model = helpdex_service::embeddings::open(cfg, data_dir).await?;
    let batch = cfg.batch;
    let started = std::time::Instant::now();
    let report = tokio::task::spawn_blocking(move || {
        let mut bar: Option<Option<indicatif::ProgressBar>> = None;
        let mut last = std::time::Instant::now();
        let (mut embedded, mut pruned, mut from) = (0u64, 0usize, 0i64);
        loop {
            let finished = sync_done.load(Ordering::Acquire);
            let before = embedded;
            let report = engine.embed_pending(
                model.as_ref(),
                helpdex_core::engine::EmbedPass {
                    // The last pass starts from the first passage: it then knows how many
                    // are left (for the progress) and cannot miss one.
                    from: if finished { 0 } else { from },
                    batch,
                    prune: finished,
                },
                &mut |done, total| {
                    let done = before + done;
                    if !sync_done.load(Ordering::Acquire) {
                        return true;
                    }
                    let total = total
                        .map(|t| (before + t).to_string())
                        .unwrap_or_else(|| "?".into());
                    match bar.get_or_insert_with(|| progress_bar("embedding passages")) {
                        Some(b) => b.set_message(format!("embedding passages: {done} of {total}")),
                        None => {
                            if last.elapsed() >= PROGRESS_LOG_EVERY {
                                last = std::time::Instant::now();
                                tracing::info!(done, total, "embedding in progress");
                            }
                        }
                    }
                    true
                },
            )?;
            embedded += report.embedded;
            pruned += report.pruned;
            from = report.last_rowid;
            if finished {
                if let Some(Some(b)) = bar {
                    b.finish_and_clear();
                }
                return Ok::<_, helpdex_core::engine::EngineError>(
                    helpdex_core::engine::EmbedReport {
                        embedded,
                        pruned,
                        last_rowid: from,
                        complete: report.complete,
                        seconds: started.elapsed().as_secs_f64(),
                    },
                );
            }
            if report.embedded == 0 {
                // Caught up with the sync: wait for its next page.
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
        }
    })
    .await??;
    Ok(report)
}

fn open_engine(cfg: &Config) -> Result<Arc<Engine>> {
    let engine = Engine::open(&cfg.data_dir, cfg.normalize.clone())
        .with_context(|| format!("opening data directory {}", cfg.data_dir.display()))?;
    Ok(Arc::new(engine))
}
