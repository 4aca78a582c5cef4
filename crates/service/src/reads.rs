//! Reads (search, context, article, status) run on tokio's blocking pool, because tantivy and
//! SQLite block; at most a few of them at a time.
//!
//! Without a bound, 16 concurrent HTTP searches ran on 16 blocking threads on a 2-core machine:
//! each thread warms its own analyzer caches (the stem memo is per thread), and the kernel
//! switches between them. Queueing the excess behind a semaphore of two reads per core serves
//! more searches per second at a lower p99 (`cargo bench --bench http`); two per core, not one,
//! so a read waiting on the disk (a cold index page) does not idle a core.

use std::sync::{Arc, OnceLock};
use tokio::sync::Semaphore;

/// Reads allowed to run at once per core.
const READS_PER_CORE: usize = 2;

fn slots() -> &'static Arc<Semaphore> {
    static SLOTS: OnceLock<Arc<Semaphore>> = OnceLock::new();
    SLOTS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Arc::new(Semaphore::new(cores * READS_PER_CORE))
    })
}

/// Runs `f` on the blocking pool once a read slot is free. The slot is held until `f`
/// returns, even when the caller stops waiting (a client that hung up does not free a core
/// that is still busy with its search).
pub async fn run<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, tokio::task::JoinError> {
    let permit = slots()
        .clone()
        .acquire_owned()
        .await
        .expect("the read semaphore is never closed");
    tokio::task::spawn_blocking(move || {
        let _slot = permit;
        f()
    })
    .await
}
