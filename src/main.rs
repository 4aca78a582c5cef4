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

/// mimalloc's `mi_option_purge_delay` (its index in `mi_option_t`, the same in mimalloc 2 and 3;
/// the test below checks it still reads that option's default).
const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;

// mimalloc's own C API, linked in by `libmimalloc-sys` (whose Rust bindings of it need a crate
// this project does not otherwise use).
unsafe extern "C" {
    fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
    #[cfg(test)]
    fn mi_option_get(option: std::ffi::c_int) -> std::ffi::c_long;
}

/// Memory freed and not reused within 10 s goes back to the OS, instead of after mimalloc's 1 s.
/// Embedding frees and reallocates activations of every size its length-sorted batches take
/// (tens of MB a layer): with the default, much of it was returned and faulted in again, and the
/// kernel zeroing those pages was 4-8% of a forward pass (74,000 page faults for 3,658 e5
/// passages; 15,000 with 10 s, and ~4% more passages/s). `MIMALLOC_PURGE_DELAY`, when set,
/// still decides.
fn keep_freed_memory_warm() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: a plain setter of mimalloc's options, callable at any time.
        unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, 10_000) };
    }
}

#[tokio::main]
async fn main() {
    keep_freed_memory_warm();
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

#[cfg(test)]
mod tests {
    /// The index names purge_delay: it reads that option's default (1,000 ms in mimalloc 3's
    /// `options.c`), then the value set.
    #[test]
    fn the_purge_delay_index_is_mimallocs() {
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
            return;
        }
        // SAFETY: a plain getter of mimalloc's options.
        let get = || unsafe { super::mi_option_get(super::MI_OPTION_PURGE_DELAY) };
        assert_eq!(get(), 1_000);
        super::keep_freed_memory_warm();
        assert_eq!(get(), 10_000);
    }
}
