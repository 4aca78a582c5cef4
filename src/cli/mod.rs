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

/// helpdex: keeps AI support agents grounded in your Zendesk Help Center.
#[derive(Debug, Parser)]
#[command(name = "helpdex", version, about, long_about = None)]
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
    /// Model Context Protocol server on stdio (tools: search_help_center, get_context, get_article).
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

/// Resolves the configuration from the file, flags and environment.
pub fn config(cli: &Cli) -> Result<Config> {
    let raw = match &cli.config {
        Some(p) => RawConfig::load(p)?,
        None => RawConfig::default(),
    };
    let flags = SourceFlags {
        url: cli.zendesk_url.clone(),
        email: cli.zendesk_email.clone(),
        token: cli.zendesk_token.clone(),
        oauth_token: cli.zendesk_oauth_token.clone(),
        schedule: cli.schedule.clone(),
    };
    Ok(Config::resolve(
        raw,
        cli.data_dir.clone(),
        flags,
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
            let bar = progress_bar("syncing");
            let opts = SyncOptions {
                full: *full,
                progress: bar.as_ref().map(sync_progress),
                ..Default::default()
            };
            let report = sync_all(engine, &cfg.sync, &opts).await;
            if let Some(b) = bar {
                b.finish_and_clear();
            }
            print_sync(&report, *json)?;
            Ok(if report.ok() { 0 } else { 1 })
        }
        Command::Search(args) => {
            let q = args.query(None)?;
            let reader = open_reader(&cli)?;
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
                print_sync(&report, *json)?;
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
            if *json {
                let v = serde_json::json!({"sources": sources, "counts": counts, "index": index});
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
            }
            Ok(0)
        }
        Command::Serve { listen } => {
            let cfg = config(&cli)?;
            helpdex_service::server::run(cfg, listen.clone()).await?;
            Ok(0)
        }
        Command::Mcp { audience } => {
            // A reader: it never blocks `sync` or `serve`, and follows their commits. Opened
            // on the first call, so an AI client started before the first sync gets "run
            // `helpdex sync`" as a tool error rather than a server that will not start.
            let reader = LazyReader::new(&data_dir(&cli)?);
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
    }
}

/// Asks a running `helpdex serve` on this data directory to rebuild; `None` when there is none.
async fn reindex_via_server(cfg: &Config, refetch: bool, json: bool) -> Result<Option<i32>> {
    let Some(advert) = helpdex_service::server::read_advert(&cfg.data_dir) else {
        return Ok(None);
    };
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
    let resp = match req.send().await {
        Ok(r) => r,
        Err(e) if e.is_connect() => {
            tracing::info!(url = %advert.url, "stale server.json (no server answers); reindexing locally");
            return Ok(None);
        }
        Err(e) => bail!(
            "the running helpdex server at {} did not answer the reindex: {e}",
            advert.url
        ),
    };
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

fn sync_progress(bar: &indicatif::ProgressBar) -> helpdex_sync::Progress {
    let bar = bar.clone();
    helpdex_sync::Progress(Arc::new(move |source: &str, fetched: u64| {
        bar.set_message(format!("syncing {source}: {fetched} articles fetched"));
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

fn open_engine(cfg: &Config) -> Result<Arc<Engine>> {
    let engine = Engine::open(&cfg.data_dir, cfg.normalize.clone())
        .with_context(|| format!("opening data directory {}", cfg.data_dir.display()))?;
    Ok(Arc::new(engine))
}
