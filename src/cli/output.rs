//! What the commands print on stdout. Every write goes through [`out`], which returns the I/O
//! error instead of panicking like `println!`: a closed pipe (`helpdex status | head -1`) then
//! ends the process quietly (see `main`).

use helpdex_core::search::SearchResponse;
use helpdex_service::config::Config;
use helpdex_sync::SyncReport;
use std::io::Write;

/// Writes one line to stdout.
pub fn out(line: &str) -> std::io::Result<()> {
    let mut o = std::io::stdout().lock();
    o.write_all(line.as_bytes())?;
    o.write_all(b"\n")
}

/// Prints a sync report. A failure names the help center's URL, so "could not reach" says
/// where.
pub fn print_sync(report: &SyncReport, cfg: &Config, json: bool) -> std::io::Result<()> {
    if json {
        return out(&serde_json::to_string_pretty(report).unwrap_or_default());
    }
    for s in &report.sources {
        let url = cfg
            .sync
            .sources
            .iter()
            .find(|c| c.name == s.source)
            .map(|c| c.client.base_url.as_str())
            .unwrap_or("?");
        match &s.error {
            None => out(&format!(
                // `articles_fetched` counts article records received (export pages and
                // listings can both carry the same article), so it is not called "articles".
                "{}: {} added, {} updated, {} unchanged, {} removed; {} translations re-indexed; {} article records fetched in {} requests ({} retries, {:.1}s rate-limit wait) in {:.2}s",
                s.source,
                s.added,
                s.updated,
                s.unchanged,
                s.removed,
                s.index_writes,
                s.articles_fetched,
                s.requests,
                s.retries,
                s.rate_limit_wait_secs,
                s.seconds
            ))?,
            Some(e) => out(&format!("{} ({url}): FAILED: {e}", s.source))?,
        }
    }
    Ok(())
}

/// Prints hits for a person.
pub fn print_hits(resp: &SearchResponse) -> std::io::Result<()> {
    if resp.hits.is_empty() {
        return out(&format!(
            "No results for \"{}\" ({} audience).",
            resp.query,
            resp.audience.as_str()
        ));
    }
    for (i, h) in resp.hits.iter().enumerate() {
        let heading = if h.heading.is_empty() {
            String::new()
        } else {
            format!(" › {}", h.heading)
        };
        out(&format!(
            "{}. {}{}  [{} · {}{}]",
            i + 1,
            h.title,
            heading,
            h.locale,
            h.visibility,
            if h.outdated { " · outdated" } else { "" }
        ))?;
        out(&format!("   {}", h.snippet.replace('\n', " ")))?;
        out(&format!("   {}", h.url))?;
    }
    Ok(())
}
