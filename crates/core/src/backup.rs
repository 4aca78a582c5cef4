//! Backup and restore of a data directory's state database.
//!
//! SQLite is the source of truth and the tantivy index is derived, so a backup is one file:
//! SQLite's online backup of `helpdex.sqlite3`, taken through a read-only connection while a
//! writer (`serve`, `sync`) keeps committing. A restore checks the file, takes the data
//! directory's writer lock (so it never swaps the database under a running writer), keeps the
//! previous database beside it, and leaves the index to be rebuilt from the restored store.

use crate::engine::LOCK_FILE;
use crate::store::DB_FILE;
use rusqlite::{Connection, OpenFlags};
use serde::Serialize;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Why a backup or restore did not happen; each says what to do.
#[derive(Debug, Error)]
pub enum BackupError {
    /// There is nothing to back up.
    #[error("no helpdex state database at {path}: check --data-dir (nothing to back up)")]
    NoDatabase {
        /// The file looked for.
        path: PathBuf,
    },
    /// The backup would overwrite an earlier one.
    #[error("{path} already exists: choose an empty or new directory for the backup")]
    Exists {
        /// The file that exists.
        path: PathBuf,
    },
    /// The file to restore is not a usable helpdex database.
    #[error("{path} is not a usable helpdex backup: {reason}")]
    Unusable {
        /// The backup file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A writer holds the data directory.
    #[error(
        "the data directory {dir} is being written by another helpdex process{holder}: stop `helpdex serve` (or wait for `helpdex sync`) before restoring"
    )]
    Busy {
        /// The data directory.
        dir: PathBuf,
        /// " (pid N)" when known.
        holder: String,
    },
    /// SQLite failed.
    #[error("{path}: {source}")]
    Sqlite {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: rusqlite::Error,
    },
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
}

type Result<T> = std::result::Result<T, BackupError>;

/// What a backup or restore did.
#[derive(Debug, Clone, Serialize)]
pub struct BackupReport {
    /// The backup file written or read.
    pub file: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
    /// Its schema version (`PRAGMA user_version`).
    pub schema_version: i64,
    /// Articles it holds.
    pub articles: i64,
    /// Translations it holds.
    pub translations: i64,
    /// Restore only: where the database it replaced was kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous: Option<PathBuf>,
}

fn sqlite(path: &Path) -> impl Fn(rusqlite::Error) -> BackupError + '_ {
    move |source| BackupError::Sqlite {
        path: path.to_path_buf(),
        source,
    }
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Backs up `data_dir`'s state database into `dest_dir/helpdex.sqlite3` (created; never
/// overwritten). Safe while a writer runs: SQLite's online backup copies a consistent snapshot.
pub fn backup(data_dir: &Path, dest_dir: &Path) -> Result<BackupReport> {
    let src_path = data_dir.join(DB_FILE);
    if !src_path.is_file() {
        return Err(BackupError::NoDatabase { path: src_path });
    }
    std::fs::create_dir_all(dest_dir).map_err(io(dest_dir))?;
    let dest = dest_dir.join(DB_FILE);
    if dest.exists() {
        return Err(BackupError::Exists { path: dest });
    }
    let tmp = dest_dir.join(format!("{DB_FILE}.partial"));
    let _ = std::fs::remove_file(&tmp);
    let src = Connection::open_with_flags(
        &src_path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sqlite(&src_path))?;
    src.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(sqlite(&src_path))?;
    src.backup(
        rusqlite::MAIN_DB,
        &tmp,
        None::<fn(rusqlite::backup::Progress)>,
    )
    .map_err(sqlite(&tmp))?;
    {
        // One self-contained file: no WAL beside it.
        let c = Connection::open(&tmp).map_err(sqlite(&tmp))?;
        c.pragma_update(None, "journal_mode", "DELETE")
            .map_err(sqlite(&tmp))?;
    }
    std::fs::rename(&tmp, &dest).map_err(io(&dest))?;
    inspect(&dest, None)
}

/// Checks a backup and reports what it holds.
fn inspect(file: &Path, previous: Option<PathBuf>) -> Result<BackupReport> {
    let unusable = |reason: String| BackupError::Unusable {
        path: file.to_path_buf(),
        reason,
    };
    let c = Connection::open_with_flags(file, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| unusable(e.to_string()))?;
    let check: String = c
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .map_err(|e| unusable(e.to_string()))?;
    if check != "ok" {
        return Err(unusable(format!("integrity check failed: {check}")));
    }
    let schema_version: i64 = c
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| unusable(e.to_string()))?;
    let supported = crate::store::schema_version();
    if schema_version < 1 || schema_version > supported {
        return Err(unusable(format!(
            "schema version {schema_version}; this helpdex reads 1 to {supported}"
        )));
    }
    let count = |table: &str| -> Result<i64> {
        c.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
            .map_err(|e| unusable(format!("no {table} table ({e})")))
    };
    Ok(BackupReport {
        file: file.to_path_buf(),
        bytes: std::fs::metadata(file).map_err(io(file))?.len(),
        schema_version,
        articles: count("articles")?,
        translations: count("translations")?,
        previous,
    })
}

/// Restores `backup` (a backup directory or the database file itself) into `data_dir`. Takes
/// the writer lock for the swap; the previous database is kept as
/// `helpdex.sqlite3.before-restore-<unix time>`. The index is left to be rebuilt: open an
/// [`crate::engine::Engine`] afterwards (and call `rebuild`).
pub fn restore(backup: &Path, data_dir: &Path) -> Result<BackupReport> {
    let file = if backup.is_dir() {
        backup.join(DB_FILE)
    } else {
        backup.to_path_buf()
    };
    if !file.is_file() {
        return Err(BackupError::NoDatabase { path: file });
    }
    inspect(&file, None)?;
    std::fs::create_dir_all(data_dir).map_err(io(data_dir))?;
    let _lock = lock(data_dir)?;
    let live = data_dir.join(DB_FILE);
    let staged = data_dir.join(format!("{DB_FILE}.restoring"));
    let _ = std::fs::remove_file(&staged);
    std::fs::copy(&file, &staged).map_err(io(&staged))?;
    {
        // The live generation the backup names belongs to another moment: forget it, so the
        // next writer rebuilds the index from this store instead of replaying onto it.
        let c = Connection::open(&staged).map_err(sqlite(&staged))?;
        c.execute_batch("DELETE FROM index_state; DELETE FROM changes;")
            .map_err(sqlite(&staged))?;
    }
    let mut previous = None;
    if live.exists() {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let kept = data_dir.join(format!("{DB_FILE}.before-restore-{stamp}"));
        std::fs::rename(&live, &kept).map_err(io(&kept))?;
        for suffix in ["-wal", "-shm"] {
            let side = data_dir.join(format!("{DB_FILE}{suffix}"));
            if side.exists() {
                let to = data_dir.join(format!("{DB_FILE}.before-restore-{stamp}{suffix}"));
                std::fs::rename(&side, &to).map_err(io(&to))?;
            }
        }
        previous = Some(kept);
    }
    std::fs::rename(&staged, &live).map_err(io(&live))?;
    inspect(&live, previous)
}

/// The data directory's writer lock, for the time of the swap.
fn lock(dir: &Path) -> Result<std::fs::File> {
    let path = dir.join(LOCK_FILE);
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(io(&path))?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(std::fs::TryLockError::WouldBlock) => Err(BackupError::Busy {
            dir: dir.to_path_buf(),
            holder: std::fs::read_to_string(&path)
                .ok()
                .and_then(|s| s.trim().parse::<u32>().ok())
                .map(|pid| format!(" (pid {pid})"))
                .unwrap_or_default(),
        }),
        Err(std::fs::TryLockError::Error(e)) => Err(BackupError::Io { path, source: e }),
    }
}
