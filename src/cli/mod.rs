//! Command-line interface: argument parsing and the commands' output. The work itself lives in
//! the library; this file only wires it to a terminal.

pub mod demo;

use anyhow::{Context, Result, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use helpdex_core::engine::Engine;
use helpdex_core::model::{Access, Audience};
use helpdex_core::search::{ContextRequest, SearchRequest, SearchResponse};
use helpdex_service::config::{Config, RawConfig, SourceFlags};
use helpdex_sync::{SyncOptions, SyncReport, sync_all};
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
        /// Character budget of the context.
        #[arg(long, default_value_t = 6000)]
        max_chars: usize,
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
        /// Fixture help center directory.
        #[arg(long, default_value = "fixtures/helpcenter")]
        fixtures: PathBuf,
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

/// Search parameters shared by `search` and `context`.
#[derive(Debug, Args)]
pub struct SearchArgs {
    /// The question or keywords.
    pub query: String,
    /// Whose answer this grounds: customer (public content only) or agent (internal too).
    #[arg(long, value_enum, default_value = "customer")]
    pub audience: AudienceArg,
    /// Only this locale (e.g. en-us, de).
    #[arg(long)]
    pub locale: Option<String>,
    /// Maximum number of hits.
    #[arg(long, default_value_t = 5)]
    pub limit: usize,
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
    fn request(&self) -> SearchRequest {
        SearchRequest {
            query: self.query.clone(),
            access: Access {
                audience: self.audience.into(),
                signed_in: self.signed_in,
                segments: self.segments.clone(),
            },
            locale: self.locale.clone(),
            limit: self.limit,
        }
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
            print_sync(&report, *json);
            Ok(if report.ok() { 0 } else { 1 })
        }
        Command::Search(args) => {
            let cfg = config(&cli)?;
            let engine = Engine::open_for_search(&cfg.data_dir)?;
            let resp = helpdex_core::search::search(&engine, &args.request())?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&resp)?);
            } else {
                print_hits(&resp);
            }
            Ok(0)
        }
        Command::Context { search, max_chars } => {
            let cfg = config(&cli)?;
            let engine = Engine::open_for_search(&cfg.data_dir)?;
            let resp = helpdex_core::search::context(
                &engine,
                &ContextRequest {
                    search: search.request(),
                    max_chars: *max_chars,
                },
            )?;
            if search.json {
                println!("{}", serde_json::to_string_pretty(&resp)?);
            } else if !resp.found {
                println!("No relevant help center content found for: {}", resp.query);
            } else {
                println!("{}\n", resp.context);
                for c in &resp.citations {
                    println!("[{}] {}", c.n, c.url);
                }
            }
            Ok(0)
        }
        Command::Explain { article_id, json } => {
            let cfg = config(&cli)?;
            let engine = Engine::open_for_search(&cfg.data_dir)?;
            let ex = helpdex_core::explain::explain(&engine, *article_id)?;
            if ex.is_empty() {
                bail!("article {article_id} is not in the local store (never synced, or removed)");
            }
            if *json {
                println!("{}", serde_json::to_string_pretty(&ex)?);
            } else {
                for e in &ex {
                    print!("{}", e.render());
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
                print_sync(&report, *json);
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
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                println!(
                    "reindexed {} translations ({} segments) into {} in {:.2}s",
                    r.translations, r.segments, r.generation, r.seconds
                );
            }
            Ok(0)
        }
        Command::Status { json } => {
            let cfg = config(&cli)?;
            let engine = Engine::open_for_search(&cfg.data_dir)?;
            let (sources, counts) = {
                let s = engine.store();
                (s.sources()?, s.counts(None)?)
            };
            let index = engine.index_status();
            if *json {
                let v = serde_json::json!({"sources": sources, "counts": counts, "index": index});
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                for s in &sources {
                    println!(
                        "{}: {} cursor={} syncs={} last={} {}",
                        s.name,
                        s.base_url,
                        s.cursor,
                        s.syncs,
                        s.last_result.as_deref().unwrap_or("never"),
                        s.last_error.as_deref().unwrap_or("")
                    );
                }
                for c in &counts {
                    println!("  {:<10} {:<6} {}", c.visibility, c.locale, c.translations);
                }
                println!("index {}: {} segments", index.generation, index.segments);
            }
            Ok(0)
        }
        Command::Serve { listen } => {
            let cfg = config(&cli)?;
            helpdex_service::server::run(cfg, listen.clone()).await?;
            Ok(0)
        }
        Command::Mcp { audience } => {
            let cfg = config(&cli)?;
            let dir = cfg.data_dir.clone();
            let engine =
                tokio::task::spawn_blocking(move || Engine::open_for_search(&dir)).await??;
            helpdex_service::mcp::serve_stdio(
                Arc::new(engine),
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
            let world = helpdex_emulator::World::load(fixtures)
                .with_context(|| format!("loading fixtures from {}", fixtures.display()))?;
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
                fixtures.display(),
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
        println!("{}", serde_json::to_string_pretty(&body)?);
    } else {
        let r = &body["reindex"];
        println!(
            "reindexed by the running server at {}: {} translations ({} segments) into {} in {:.2}s",
            advert.url,
            r["translations"],
            r["segments"],
            r["generation"].as_str().unwrap_or("?"),
            r["seconds"].as_f64().unwrap_or(0.0)
        );
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

fn open_engine(cfg: &Config) -> Result<Arc<Engine>> {
    let engine = Engine::open(&cfg.data_dir, cfg.normalize.clone())
        .with_context(|| format!("opening data directory {}", cfg.data_dir.display()))?;
    Ok(Arc::new(engine))
}

/// Prints a sync report.
pub fn print_sync(report: &SyncReport, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(report).unwrap_or_default()
        );
        return;
    }
    for s in &report.sources {
        match &s.error {
            None => println!(
                "{}: fetched {} articles: {} added, {} updated, {} unchanged, {} removed; {} translations re-indexed; {} requests ({} retries, {:.1}s rate-limit wait) in {:.2}s",
                s.source,
                s.articles_fetched,
                s.added,
                s.updated,
                s.unchanged,
                s.removed,
                s.index_writes,
                s.requests,
                s.retries,
                s.rate_limit_wait_secs,
                s.seconds
            ),
            Some(e) => println!("{}: FAILED: {e}", s.source),
        }
    }
}

/// Prints hits for a person.
pub fn print_hits(resp: &SearchResponse) {
    if resp.hits.is_empty() {
        println!(
            "No results for \"{}\" ({} audience).",
            resp.query,
            resp.audience.as_str()
        );
        return;
    }
    for (i, h) in resp.hits.iter().enumerate() {
        let heading = if h.heading.is_empty() {
            String::new()
        } else {
            format!(" › {}", h.heading)
        };
        println!(
            "{}. {}{}  [{} · {}{}]",
            i + 1,
            h.title,
            heading,
            h.locale,
            h.visibility,
            if h.outdated { " · outdated" } else { "" }
        );
        println!("   {}", h.snippet.replace('\n', " "));
        println!("   {}", h.url);
    }
}
