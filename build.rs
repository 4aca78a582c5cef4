//! Records the git commit the binary is built from, for `helpdex --version`, `/version` and
//! `helpdex_build_info`. `HELPDEX_COMMIT` overrides it (builds from a source tarball);
//! outside a git checkout it is `unknown`.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
}

fn main() {
    println!("cargo:rerun-if-env-changed=HELPDEX_COMMIT");
    let commit = std::env::var("HELPDEX_COMMIT")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .or_else(|| git(&["rev-parse", "--short=12", "HEAD"]))
        .unwrap_or_else(|| "unknown".into());
    // Rebuild when HEAD moves (a worktree's HEAD lives in its own git dir, its branch refs in
    // the common one). Only files that exist: a missing one would rerun this on every build.
    let mut watch = Vec::new();
    if let Some(dir) = git(&["rev-parse", "--git-dir"]) {
        watch.push(format!("{dir}/HEAD"));
        if let (Some(head_ref), Some(common)) = (
            git(&["symbolic-ref", "-q", "HEAD"]),
            git(&["rev-parse", "--git-common-dir"]),
        ) {
            watch.push(format!("{common}/{head_ref}"));
            watch.push(format!("{common}/packed-refs"));
        }
    }
    for path in watch {
        if std::path::Path::new(&path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    println!("cargo:rustc-env=HELPDEX_COMMIT={commit}");
}
