//! The `helpdex` binary: parses arguments, sets up logging, and hands over to the library.

use clap::Parser;
mod cli;

use cli::{Cli, LogFormat};
use tracing_subscriber::EnvFilter;

/// mimalloc instead of glibc's malloc: a search allocates many small, short-lived strings
/// (tokens, snippets, JSON) on whichever blocking-pool thread runs it, and glibc's arenas made
/// allocation about a fifth of `helpdex serve`'s CPU under load (`cargo bench --bench http`).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    let cli = Cli::parse();
    // A level that does not parse is an error, not silently the default: the operator asked
    // for something they would not get.
    let filter = match std::env::var("HELPDEX_LOG") {
        Ok(spec) => match EnvFilter::try_new(&spec) {
            Ok(f) => f,
            Err(e) => {
                eprintln!(
                    "error: HELPDEX_LOG={spec:?} is not a log filter ({e}); use e.g. `info`, `helpdex=debug` or `warn,helpdex_sync=trace`"
                );
                std::process::exit(2);
            }
        },
        Err(std::env::VarError::NotPresent) => EnvFilter::new("helpdex=info,warn"),
        Err(std::env::VarError::NotUnicode(_)) => {
            eprintln!("error: HELPDEX_LOG is not valid UTF-8");
            std::process::exit(2);
        }
    };
    // The HTML parser logs the text it parses (article bodies) at debug and trace: never
    // below info, whatever HELPDEX_LOG asks.
    let filter = ["html5ever=info", "markup5ever=info", "selectors=info"]
        .into_iter()
        .fold(filter, |f, d| {
            f.add_directive(d.parse().expect("a valid static directive"))
        });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if cli.log_format == LogFormat::Json {
        builder.json().init();
    } else {
        builder.init();
    }
    let code = match cli::run(cli).await {
        Ok(code) => code,
        // A closed stdout (`helpdex status | head -1`) is not an error: stop quietly.
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            0
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            2
        }
    };
    std::process::exit(code);
}
