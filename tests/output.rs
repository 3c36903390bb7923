//! The drift test: every listing that has an `output.txt` is run as the file's first line
//! says (`$ cargo run [--release] -p NAME [-- ARGS]`) and what it prints is compared with the
//! recording, exactly except for what the listing declares to vary in its `Cargo.toml`:
//!
//! ```toml
//! # the elapsed time, and the lines of the two threads (they run concurrently)
//! [package.metadata.output]
//! durations = true                  # `352.0ms`, `1.2s` → [ELAPSED]
//! ratios = true                     # `1.97倍` → [RATIO]倍
//! pids = true                       # `PID: 4242` → [PID]
//! redact = [{ as = "[CORES]", pattern = '並列に動けるスレッド数: (?<redacted>\d+)' }]
//! any-order = ['^スレッド[AB]: ']    # lines printed by concurrent workers
//! alone = true                      # measures speed: runs while no other listing does
//! ```
//!
//! One test per listing, named after its package: `cargo test --test output -- spawn-join`
//! checks one. The programs mostly wait (they show concurrency with sleeps), so this binary
//! has its own `main` (libtest-mimic) and runs several at once; the listings that measure
//! the speed of computation (`alone = true`) run one at a time, before the others start.
//! `--test-threads N` (or `RUST_TEST_THREADS`) sets how many run at once.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::{Arc, RwLock};

use book_support::{OutputTxt, Varies};
use libtest_mimic::{Arguments, Failed, Trial};

/// How many listings run at once by default.
const AT_ONCE: usize = 6;

/// Held shared while a listing runs, and exclusively while one that runs `alone` does.
static TURN: RwLock<()> = RwLock::new(());

fn main() -> ExitCode {
    let mut args = Arguments::from_args();
    args.test_threads = args.test_threads.or_else(|| {
        std::env::var("RUST_TEST_THREADS")
            .ok()
            .and_then(|n| n.parse().ok())
            .or(Some(AT_ONCE))
    });
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let listings = match listings(root) {
        Ok(listings) => listings,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let selected: Vec<&Listing> = listings
        .iter()
        .filter(|l| !args.list && !args.is_filtered_out(&Trial::test(&l.package, || Ok(()))))
        .collect();
    let builds = Arc::new(Builds::new(root, &selected));
    // The listings that run alone first: each waits for the runs before it to end.
    let mut trials: Vec<(bool, Trial)> = listings
        .into_iter()
        .map(|listing| {
            let builds = Arc::clone(&builds);
            let alone = listing.alone();
            let trial = Trial::test(listing.package.clone(), move || check(&listing, &builds));
            (alone, trial.with_kind(if alone { "alone" } else { "" }))
        })
        .collect();
    trials.sort_by_key(|(alone, _)| !alone);
    let trials = trials.into_iter().map(|(_, trial)| trial).collect();
    libtest_mimic::run(&args, trials).exit_code()
}

/// A listing with an `output.txt` (or one that declares what varies without having one).
struct Listing {
    package: String,
    dir: PathBuf,
    /// Whether `output.txt` records a release build.
    release: bool,
    /// `[package.metadata.output]` of its `Cargo.toml`.
    declared: Option<toml::Value>,
}

impl Listing {
    /// Whether it declares `alone = true`.
    fn alone(&self) -> bool {
        let alone = self.declared.as_ref().and_then(|d| d.get("alone"));
        alone.and_then(toml::Value::as_bool).unwrap_or(false)
    }
}

/// Every listing under `listings/*/*` that has an `output.txt` or declares what varies.
fn listings(root: &Path) -> Result<Vec<Listing>, String> {
    let mut found = Vec::new();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root.join("listings"))
        .map_err(|e| format!("listings/: {e}"))?
        .filter_map(|section| std::fs::read_dir(section.ok()?.path()).ok())
        .flatten()
        .filter_map(|listing| Some(listing.ok()?.path()))
        .filter(|dir| dir.join("Cargo.toml").is_file())
        .collect();
    dirs.sort();
    for dir in dirs {
        let manifest = dir.join("Cargo.toml");
        let text = std::fs::read_to_string(&manifest).map_err(|e| format!("{e}"))?;
        let manifest: toml::Table = text
            .parse()
            .map_err(|e| format!("{}: {e}", manifest.display()))?;
        let package = &manifest["package"];
        let declared = package
            .get("metadata")
            .and_then(|m| m.get("output"))
            .cloned();
        let has_output = dir.join("output.txt").is_file();
        if !has_output && declared.is_none() {
            continue;
        }
        let release = has_output && OutputTxt::read(&dir).is_ok_and(|o| o.command.release);
        found.push(Listing {
            package: package["name"].as_str().unwrap_or_default().to_owned(),
            dir,
            release,
            declared,
        });
    }
    Ok(found)
}

/// The binaries the selected listings run, built once before any of them runs.
struct Builds {
    /// The directory of the debug binaries, or why they could not be built.
    debug: Result<PathBuf, String>,
    /// The same for the release binaries.
    release: Result<PathBuf, String>,
}

impl Builds {
    /// Builds what `selected` needs into the target directory this test was built in.
    ///
    /// The debug binaries are built as `cargo test` builds them (`--workspace --bins --tests`
    /// resolves the dependencies' features the same way), so after `cargo test` this finds
    /// everything up to date.
    fn new(root: &Path, selected: &[&Listing]) -> Self {
        let exe = std::env::current_exe().expect("the test binary's path");
        // <target>/<profile>/deps/output-<hash>
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("<target>/<profile>/deps");
        let target = profile_dir.parent().expect("<target>/<profile>");
        let build = |args: &[&str]| -> Result<(), String> {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut command = Command::new(cargo);
            command
                .args(["build", "--quiet", "--target-dir"])
                .arg(target)
                .args(args)
                .current_dir(root);
            let done = book_support::try_run_command(command, book_support::BUILD_TIMEOUT)?;
            if done.status.success() {
                Ok(())
            } else {
                Err(format!(
                    "`cargo build {}` failed:\n{}",
                    args.join(" "),
                    done.stderr
                ))
            }
        };
        let debug = if selected.iter().any(|l| !l.release) {
            let mut args = vec!["--workspace", "--bins", "--tests"];
            match profile_dir.file_name().and_then(|n| n.to_str()) {
                Some("debug") => {}
                Some("release") => args.push("--release"),
                Some(other) => args.extend(["--profile", other]),
                None => {}
            }
            build(&args).map(|()| profile_dir.to_owned())
        } else {
            Err("not built (no listing selected needs it)".into())
        };
        let measured: Vec<&str> = selected
            .iter()
            .filter(|l| l.release)
            .flat_map(|l| ["--package", l.package.as_str()])
            .collect();
        let release = if measured.is_empty() {
            Err("not built (no listing selected needs it)".into())
        } else {
            let mut args = vec!["--release", "--bins"];
            args.extend(measured);
            build(&args).map(|()| target.join("release"))
        };
        Self { debug, release }
    }
}

/// Runs the listing and compares its output with `output.txt`.
fn check(listing: &Listing, builds: &Builds) -> Result<(), Failed> {
    let recorded = OutputTxt::read(&listing.dir).map_err(|e| {
        format!(
            "{e}\n(the listing declares [package.metadata.output]; record its output with \
             `cargo xtask bless {}`)",
            listing.package
        )
    })?;
    if recorded.command.package != listing.package {
        return Err(format!(
            "{}: the command runs package {}, not {}",
            recorded.path.display(),
            recorded.command.package,
            listing.package
        )
        .into());
    }
    let varies = declared_varies(listing.declared.as_ref()).map_err(|e| {
        format!(
            "{}/Cargo.toml: [package.metadata.output]: {e}",
            listing.dir.display()
        )
    })?;
    let dir = if listing.release {
        &builds.release
    } else {
        &builds.debug
    };
    let bin = dir.as_ref()?.join(format!(
        "{}{}",
        listing.package,
        std::env::consts::EXE_SUFFIX
    ));
    // The listing's turn to run, until the end of this function.
    let (_alone, _shared);
    if listing.alone() {
        _alone = TURN.write().unwrap_or_else(|e| e.into_inner());
    } else {
        _shared = TURN.read().unwrap_or_else(|e| e.into_inner());
    }
    Ok(book_support::check_output(&bin, &recorded, &varies)?)
}

/// The [`Varies`] that `[package.metadata.output]` declares (nothing varies without one).
fn declared_varies(declared: Option<&toml::Value>) -> Result<Varies, String> {
    let mut varies = Varies::nothing();
    let Some(declared) = declared else {
        return Ok(varies);
    };
    let table = declared.as_table().ok_or("must be a table")?;
    for (key, value) in table {
        match key.as_str() {
            "alone" => {
                value.as_bool().ok_or("alone must be true or false")?;
            }
            "durations" | "ratios" | "pids" => {
                let on = value
                    .as_bool()
                    .ok_or_else(|| format!("{key} must be true or false"))?;
                if on {
                    varies = match key.as_str() {
                        "durations" => varies.durations(),
                        "ratios" => varies.ratios(),
                        _ => varies.pids(),
                    };
                }
            }
            "redact" => {
                let wrong =
                    || "redact must be a list of { as = \"[NAME]\", pattern = '…' }".to_string();
                for entry in value.as_array().ok_or_else(wrong)? {
                    let placeholder = entry.get("as").and_then(|v| v.as_str()).ok_or_else(wrong)?;
                    let pattern = entry
                        .get("pattern")
                        .and_then(|v| v.as_str())
                        .ok_or_else(wrong)?;
                    regex::Regex::new(pattern).map_err(|e| format!("redact {placeholder}: {e}"))?;
                    // Placeholders live as long as the test process (snapbox wants `'static`).
                    varies = varies.redact(placeholder.to_owned().leak(), pattern);
                }
            }
            "any-order" => {
                let wrong = || "any-order must be a list of patterns".to_string();
                for pattern in value.as_array().ok_or_else(wrong)? {
                    let pattern = pattern.as_str().ok_or_else(wrong)?;
                    regex::Regex::new(pattern).map_err(|e| format!("any-order: {e}"))?;
                    varies = varies.any_order(pattern);
                }
            }
            other => {
                return Err(format!(
                    "unknown key {other:?} (known: durations, ratios, pids, redact, any-order, alone)"
                ));
            }
        }
    }
    Ok(varies)
}
