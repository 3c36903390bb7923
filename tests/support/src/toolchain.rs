//! The compiler the recordings were made with.
//!
//! `cargo xtask bless` writes the `rustc --version` it ran with to `rust-toolchain-recorded`
//! at the root of the repository. Compiler output shown in the book (the trybuild `.stderr`
//! files, a panic message) is exact text of that compiler: another version words its errors
//! differently. [`on_recorded_toolchain`] lets such a comparison run only there.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The file, at the root of the repository, that holds the recorded `rustc --version`.
pub const RECORDED_FILE: &str = "rust-toolchain-recorded";

/// The root of the repository (the directory that holds `rust-toolchain-recorded`).
pub fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("tests/support is two levels below the root")
        .to_path_buf()
}

/// The `rustc --version` line of the compiler that builds (the one `cargo` would use).
pub fn current_rustc() -> String {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(&rustc)
        .arg("--version")
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{rustc} --version`: {e}"));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The recorded `rustc --version` line, if any.
pub fn recorded_rustc() -> Option<String> {
    fs::read_to_string(repository_root().join(RECORDED_FILE))
        .ok()
        .and_then(|text| {
            text.lines()
                .map(str::trim)
                .find(|l| l.starts_with("rustc "))
                .map(str::to_string)
        })
}

/// The release number in a `rustc --version` line: `rustc 1.95.0 (59807616e 2026-04-14)`
/// → `1.95.0`. Builds of one release word their errors the same way.
pub fn release(version_line: &str) -> &str {
    version_line
        .split_whitespace()
        .nth(1)
        .unwrap_or(version_line)
}

/// Whether exact compiler text recorded for the book can be compared here: `true` on the
/// recorded release, and while `cargo xtask bless` re-records (`TRYBUILD=overwrite` or
/// `BOOK_BLESS`). Elsewhere it prints why `what` is skipped and returns `false` — unless
/// `CI=true`, where running on another compiler is an error.
pub fn on_recorded_toolchain(what: &str) -> bool {
    if std::env::var("TRYBUILD").is_ok_and(|v| v == "overwrite")
        || std::env::var_os(crate::BLESS_VAR).is_some()
    {
        return true;
    }
    let current = current_rustc();
    let Some(recorded) = recorded_rustc() else {
        panic!(
            "{} is missing: record the compiler with `cargo xtask bless`",
            repository_root().join(RECORDED_FILE).display()
        );
    };
    if release(&current) == release(&recorded) {
        return true;
    }
    let why = format!(
        "{what}: recorded with `{recorded}`, this is `{current}`; \
         another compiler words its messages differently"
    );
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!(
            "{why}. CI must run on the recorded compiler (install it with `rustup toolchain install {}`), or re-record everything with `cargo xtask bless`",
            release(&recorded)
        );
    }
    // Written to stderr directly: the test harness hides what a passing test prints with
    // `eprintln!`, and the newcomer should see why a check did not run.
    let _ = writeln!(
        std::io::stderr(),
        "note: skipped {why}. The comparison runs on Rust {}.",
        release(&recorded)
    );
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_release_is_the_second_word() {
        assert_eq!(release("rustc 1.95.0 (59807616e 2026-04-14)"), "1.95.0");
        assert_eq!(
            release("rustc 1.96.0-nightly (abc 2026-05-01)"),
            "1.96.0-nightly"
        );
    }

    #[test]
    fn the_recorded_compiler_is_known() {
        let recorded = recorded_rustc().expect("rust-toolchain-recorded names a rustc");
        assert!(recorded.starts_with("rustc 1."), "{recorded}");
    }
}
