//! Developer commands for the book, run as `cargo xtask <command>`:
//!
//! - `serve [--port N]`: build the book, serve it on <http://127.0.0.1:3000>, rebuild when
//!   `src/`, `listings/`, `theme/` or `book.toml` change (the open page reloads itself).
//! - `build`: build the HTML into `book/`.
//! - `bless [PACKAGE…]`: re-record every `output.txt` from a real run, the sessions checked
//!   with `book_support::assert_matches_recording`, and the `.stderr` files of the
//!   compile-fail cases from real `rustc` output; with package names, only those listings.
//! - `lint`: check the Japanese prose of `src/` with textlint (the presets in
//!   `.textlintrc.yml` and the glossary in `prh.yml`), installing the npm packages pinned
//!   by `package-lock.json` into `node_modules/` first when they are missing.
//!
//! Nothing needs to be installed by hand: mdBook is used as a library (`mdbook-driver`).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result, bail};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = xtask::workspace_root();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["build"] => build(&root).map(|out| println!("built {}", out.join("index.html").display())),
        ["serve"] => serve(&root, 3000),
        ["serve", "--port", port] => serve(&root, port.parse().context("--port needs a number")?),
        ["bless", packages @ ..] => bless(&root, packages),
        ["lint"] => lint(&root),
        _ => {
            eprintln!("usage: cargo xtask <build | serve [--port N] | bless [PACKAGE…] | lint>");
            std::process::exit(2);
        }
    }
}

/// Builds the book into `book/` and returns the HTML directory.
fn build(root: &Path) -> Result<PathBuf> {
    xtask::build_book(root, None)
}

/// A fingerprint of everything the book is built from: changes when any file does.
fn sources_fingerprint(root: &Path) -> (usize, SystemTime) {
    fn walk(dir: &Path, acc: &mut (usize, SystemTime)) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.file_name().is_some_and(|n| n == "target") {
                continue;
            }
            if path.is_dir() {
                walk(&path, acc);
            } else if let Ok(modified) = entry.metadata().and_then(|m| m.modified()) {
                acc.0 += 1;
                acc.1 = acc.1.max(modified);
            }
        }
    }
    let mut acc = (0, SystemTime::UNIX_EPOCH);
    for dir in ["src", "listings", "theme"] {
        walk(&root.join(dir), &mut acc);
    }
    if let Ok(modified) = fs::metadata(root.join("book.toml")).and_then(|m| m.modified()) {
        acc.1 = acc.1.max(modified);
    }
    acc
}

fn serve(root: &Path, port: u16) -> Result<()> {
    let out = build(root)?;
    // Served under the path the book is published under, so that 404.html works as online.
    let base = xtask::site_path(root)?;
    // Bumped after every rebuild; the reload script the server adds to each page polls it.
    let generation = Arc::new(AtomicU64::new(1));

    let watcher_root = root.to_path_buf();
    let watcher_generation = Arc::clone(&generation);
    std::thread::spawn(move || {
        let mut seen = sources_fingerprint(&watcher_root);
        loop {
            std::thread::sleep(Duration::from_millis(500));
            let now = sources_fingerprint(&watcher_root);
            if now == seen {
                continue;
            }
            seen = now;
            match build(&watcher_root) {
                Ok(_) => {
                    watcher_generation.fetch_add(1, Ordering::SeqCst);
                    eprintln!("rebuilt the book");
                }
                Err(e) => eprintln!("the book did not build: {e:#}"),
            }
        }
    });

    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .with_context(|| format!("cannot listen on 127.0.0.1:{port} (try --port)"))?;
        println!(
            "serving the book on http://{}{base} (Ctrl-C to stop)",
            listener.local_addr()?
        );
        axum::serve(listener, xtask::router(&out, &base, Some(generation))).await?;
        Ok(())
    })
}

fn lint(root: &Path) -> Result<()> {
    let textlint = root.join("node_modules/.bin/textlint");
    // `npm ci` installs exactly what package-lock.json pins; rerun it when the lock file is
    // newer than the installed tree.
    let installed = fs::metadata(root.join("node_modules/.package-lock.json"))
        .and_then(|m| m.modified())
        .ok();
    let locked = fs::metadata(root.join("package-lock.json"))?.modified()?;
    if !textlint.exists() || installed.is_none_or(|t| t < locked) {
        let status = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(root)
            .status()
            .context("cannot run npm: install Node.js (with npm) to lint the prose")?;
        if !status.success() {
            bail!("npm ci failed");
        }
    }
    let status = Command::new(&textlint)
        .arg("src")
        .current_dir(root)
        .status()?;
    if !status.success() {
        bail!("textlint found problems in src/ (rules: .textlintrc.yml, glossary: prh.yml)");
    }
    println!("textlint: no problems in src/");
    Ok(())
}

fn bless(root: &Path, packages: &[&str]) -> Result<()> {
    // Recordings of one compiler only: the compile errors and panic messages shown in the
    // book are its exact words. Re-recording a few listings with another compiler would mix
    // two; re-recording all of them moves the book to this one.
    let current = book_support::current_rustc();
    let recorded = book_support::recorded_rustc();
    if !packages.is_empty()
        && let Some(recorded) = &recorded
        && book_support::release(recorded) != book_support::release(&current)
    {
        bail!(
            "the recordings were made with `{recorded}`, this is `{current}`: re-record them \
             all with `cargo xtask bless` (no names), or use the recorded compiler"
        );
    }
    let mut dirs = xtask::listing_dirs(root)?;
    if !packages.is_empty() {
        let mut chosen = Vec::new();
        for dir in dirs {
            if packages.contains(&package_name(&dir)?.as_str()) {
                chosen.push(dir);
            }
        }
        if chosen.len() != packages.len() {
            bail!("not every name in {packages:?} is a listing's package");
        }
        dirs = chosen;
    }
    // Build once, so the runs below print only the programs' own output.
    let mut build = Command::new("cargo");
    build.args(["build", "--bins"]);
    if packages.is_empty() {
        build.arg("--workspace");
    }
    for package in packages {
        build.args(["--package", package]);
    }
    let status = build.current_dir(root).status()?;
    if !status.success() {
        bail!("cargo build failed");
    }
    for dir in &dirs {
        let output = dir.join("output.txt");
        if output.exists() {
            let recorded = fs::read_to_string(&output)?;
            let first = recorded.lines().next().unwrap_or_default();
            let cmd = book_support::parse_command(first)
                .map_err(|e| anyhow::anyhow!("{}: {e}", output.display()))?;
            let mut cargo = Command::new("cargo");
            cargo.args(["run", "--quiet", "--package", &cmd.package]);
            if cmd.release {
                cargo.arg("--release");
            }
            let run = cargo
                .arg("--")
                .args(&cmd.args)
                .current_dir(root)
                .stdin(Stdio::null())
                .stderr(Stdio::inherit())
                .output()?;
            if !run.status.success() {
                bail!("`{}` failed: {}", cmd.command, run.status);
            }
            let stdout = String::from_utf8(run.stdout).context("output is not UTF-8")?;
            fs::write(&output, format!("{}\n{stdout}", cmd.command))?;
            println!("recorded {}", output.strip_prefix(root)?.display());
        }
        // Recordings that a listing's own tests compare (sessions, compile errors) are
        // re-recorded by running those tests with the variable that makes them write.
        let rel = dir.strip_prefix(root)?.display();
        if xtask::tests_mention(dir, "assert_matches_recording") {
            test_recording(root, dir, (book_support::BLESS_VAR, "1"))?;
            println!("recorded the sessions of {rel}");
        }
        if dir.join("tests").join("ui").is_dir() {
            test_recording(root, dir, ("TRYBUILD", "overwrite"))?;
            println!("recorded {rel}/tests/ui/*.stderr");
        }
    }
    if packages.is_empty() || recorded.is_none() {
        let file = root.join(book_support::RECORDED_FILE);
        fs::write(
            &file,
            format!(
                "# The compiler `cargo xtask bless` last re-recorded the outputs with (written by bless).\n\
                 # The exact compiler text shown in the book (listings/*/compile-fail/tests/ui/*.stderr, panic\n\
                 # messages in output.txt) is compared only on this release; see README.\n\
                 {current}\n"
            ),
        )?;
        println!("recorded {}: {current}", book_support::RECORDED_FILE);
    }
    Ok(())
}

/// Runs the tests of the listing in `dir` with `env` set, so that they write what they
/// would otherwise compare.
fn test_recording(root: &Path, dir: &Path, env: (&str, &str)) -> Result<()> {
    let package = package_name(dir)?;
    let status = Command::new("cargo")
        .args(["test", "--quiet", "--package", &package])
        .env(env.0, env.1)
        .current_dir(root)
        .status()?;
    if !status.success() {
        bail!("re-recording with {}={} in {package} failed", env.0, env.1);
    }
    Ok(())
}

/// The `name = "…"` of a listing's `[package]`.
fn package_name(dir: &Path) -> Result<String> {
    let manifest = fs::read_to_string(dir.join("Cargo.toml"))?;
    manifest
        .lines()
        .find_map(|l| l.strip_prefix("name = \""))
        .and_then(|rest| rest.strip_suffix('"'))
        .map(str::to_owned)
        .with_context(|| format!("no package name in {}", dir.display()))
}
